//! Request pacing, so a long run does not provoke 429s in the first place.
//!
//! Genesys allows a number of requests per minute per token (300 by default, but read it from the
//! `inin-ratelimit-allowed` header: it varies) and reports the current count and the seconds until
//! the count resets on every response. The [`Pacer`] keeps requests at least `60 s / allowed`
//! apart, with 10 % headroom; when a response says the count is close to the limit, it holds
//! every request until the reported reset. Callers [`Pacer::acquire`] before each request and
//! [`Pacer::observe`] each response's headers. All waiting uses `tokio::time`.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// What a response's `inin-ratelimit-*` headers said (each may be missing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// `inin-ratelimit-allowed`: requests allowed per window (minute).
    pub allowed: Option<u32>,
    /// `inin-ratelimit-count`: requests counted so far in the current window.
    pub count: Option<u32>,
    /// `inin-ratelimit-reset`: time until the count resets.
    pub reset: Option<Duration>,
}

/// Spreads requests over time according to the server's rate limit. Share one `Arc<Pacer>` among
/// everything that uses the same token.
#[derive(Debug)]
pub struct Pacer {
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    allowed: u32,
    next_slot: Option<Instant>,
    blocked_until: Option<Instant>,
}

impl Pacer {
    /// The Genesys default, assumed until a response's `inin-ratelimit-allowed` says otherwise:
    /// the one definition of it (both binaries' pacers and the `extract --dry-run` estimate use it).
    pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 300;
    /// Fraction of the allowed rate the pacer aims for.
    pub const HEADROOM: f64 = 0.9;

    /// A pacer assuming `requests_per_minute` (at least 1) until a response says otherwise.
    pub fn new(requests_per_minute: u32) -> Self {
        Pacer { state: Mutex::new(State { allowed: requests_per_minute.max(1), next_slot: None, blocked_until: None }) }
    }

    /// Waits for this request's turn: at least [`Pacer::spacing`] after the previous request's
    /// turn, and not before a hold set by [`Pacer::observe`] or [`Pacer::pause_for`] ends.
    pub async fn acquire(&self) {
        let at = {
            let mut state = self.lock();
            let now = Instant::now();
            let mut at = now;
            if let Some(slot) = state.next_slot {
                at = at.max(slot);
            }
            if let Some(until) = state.blocked_until {
                at = at.max(until);
            }
            state.next_slot = Some(at + spacing_for(state.allowed));
            at
        };
        tokio::time::sleep_until(at).await;
    }

    /// Takes in a response's rate-limit headers: adopts `allowed`, and when `count` comes within
    /// 5 % (at least one request) of `allowed`, holds every request until `reset` has passed.
    pub fn observe(&self, info: RateLimitInfo) {
        let mut state = self.lock();
        if let Some(allowed) = info.allowed.filter(|a| *a > 0) {
            if allowed != state.allowed {
                tracing::debug!(allowed, previous = state.allowed, "rate limit per minute changed");
            }
            state.allowed = allowed;
        }
        if let (Some(count), Some(reset)) = (info.count, info.reset) {
            let allowed = state.allowed;
            let reserve = (allowed / 20).max(1);
            if count.saturating_add(reserve) >= allowed {
                let until = Instant::now() + reset;
                if state.blocked_until.is_none_or(|b| b < until) {
                    tracing::info!(
                        count,
                        allowed,
                        wait_ms = u64::try_from(reset.as_millis()).unwrap_or(u64::MAX),
                        "rate limit nearly used up; holding requests until it resets"
                    );
                    state.blocked_until = Some(until);
                }
            }
        }
    }

    /// Holds every request for `duration` from now (e.g. after a 429 with `Retry-After`).
    pub fn pause_for(&self, duration: Duration) {
        let mut state = self.lock();
        let until = Instant::now() + duration;
        if state.blocked_until.is_none_or(|b| b < until) {
            state.blocked_until = Some(until);
        }
    }

    /// The limit currently assumed, requests per minute.
    pub fn allowed_per_minute(&self) -> u32 {
        self.lock().allowed
    }

    /// The current minimum gap between two requests.
    pub fn spacing(&self) -> Duration {
        spacing_for(self.lock().allowed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Default for Pacer {
    fn default() -> Self {
        Pacer::new(Pacer::DEFAULT_REQUESTS_PER_MINUTE)
    }
}

/// `60 s / (allowed * HEADROOM)`, rounded up to whole milliseconds (tokio's timer resolution).
fn spacing_for(allowed: u32) -> Duration {
    let millis = (60_000.0 / (f64::from(allowed.max(1)) * Pacer::HEADROOM)).ceil();
    // Finite and positive: allowed >= 1.
    Duration::from_millis(millis as u64)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    async fn run(pacer: &Pacer, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..n {
            pacer.acquire().await;
            at.push(start.elapsed());
        }
        at
    }

    #[tokio::test(start_paused = true)]
    async fn default_spacing_is_300_per_minute_with_headroom() {
        let pacer = Pacer::new(Pacer::DEFAULT_REQUESTS_PER_MINUTE);
        let at = run(&pacer, 301).await;
        assert_eq!(at[0], Duration::ZERO);
        // 300 requests take more than a minute: 300 * 60 s / 270.
        assert!(at[300] >= Duration::from_secs(66), "{:?}", at[300]);
        assert!(at[300] <= Duration::from_secs(67), "{:?}", at[300]);
    }

    #[tokio::test(start_paused = true)]
    async fn observed_allowed_changes_the_spacing() {
        let pacer = Pacer::default();
        pacer.observe(RateLimitInfo { allowed: Some(60), count: Some(1), reset: Some(Duration::from_secs(59)) });
        assert_eq!(pacer.allowed_per_minute(), 60);
        let at = run(&pacer, 151).await;
        // No 60-second span holds more than 60 requests.
        for (i, t) in at.iter().enumerate() {
            let in_minute = at[i..].iter().take_while(|u| **u < *t + Duration::from_secs(60)).count();
            assert!(in_minute <= 55, "{in_minute} requests in the minute from {t:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn near_the_limit_it_waits_for_the_reset() {
        let pacer = Pacer::new(60);
        pacer.acquire().await;
        let start = Instant::now();
        pacer.observe(RateLimitInfo { allowed: Some(60), count: Some(58), reset: Some(Duration::from_secs(20)) });
        pacer.acquire().await;
        assert_eq!(start.elapsed(), Duration::from_secs(20));
        // Far from the limit: no hold, only spacing.
        pacer.observe(RateLimitInfo { allowed: Some(60), count: Some(3), reset: Some(Duration::from_secs(40)) });
        let t = Instant::now();
        pacer.acquire().await;
        assert_eq!(t.elapsed(), pacer.spacing());
    }

    #[tokio::test(start_paused = true)]
    async fn pause_for_holds_all_callers() {
        let pacer = Arc::new(Pacer::new(6000));
        pacer.pause_for(Duration::from_secs(42));
        let start = Instant::now();
        let handles: Vec<_> = (0..3)
            .map(|_| {
                let pacer = pacer.clone();
                tokio::spawn(async move {
                    pacer.acquire().await;
                    start.elapsed()
                })
            })
            .collect();
        let mut waits = Vec::new();
        for h in handles {
            waits.push(h.await.unwrap());
        }
        waits.sort();
        assert_eq!(waits[0], Duration::from_secs(42));
        assert!(waits[2] >= Duration::from_secs(42) + pacer.spacing() * 2 - Duration::from_millis(1));
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_callers_share_the_spacing() {
        let pacer = Arc::new(Pacer::new(60));
        let start = Instant::now();
        let handles: Vec<_> = (0..10)
            .map(|_| {
                let pacer = pacer.clone();
                tokio::spawn(async move {
                    pacer.acquire().await;
                    start.elapsed()
                })
            })
            .collect();
        let mut at = Vec::new();
        for h in handles {
            at.push(h.await.unwrap());
        }
        at.sort();
        for pair in at.windows(2) {
            assert!(pair[1] - pair[0] >= pacer.spacing() - Duration::from_millis(1), "{at:?}");
        }
    }
}
