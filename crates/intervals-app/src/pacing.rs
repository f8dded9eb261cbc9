//! Request pacing, so a long run does not provoke 429s in the first place.
//!
//! Genesys allows a number of requests per minute per token (300 by default, but read it from the
//! `inin-ratelimit-allowed` header: it varies) and reports the current count and the seconds until
//! the count resets on every response. The [`Pacer`] keeps requests at least `60 s / allowed`
//! apart, with 10 % headroom; when a response says the count is close to the limit, it holds
//! every request until the reported reset. Callers [`Pacer::acquire`] before each request and
//! [`Pacer::observe`] each response's headers. All waiting uses `tokio::time`.
//!
//! A turn is reserved when a caller starts waiting for it, and given back when the wait is
//! abandoned (its future dropped: a retry deadline, a stop), so abandoned waits never push the
//! turns of later requests back. Inside a call of [`crate::with_retry`], a turn that would come at
//! or after the call's deadline is refused at once ([`SourceError::Held`]: nothing is sent).

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::ports::{seconds, SourceError};
use crate::retry::{call_deadline, waiting_for, wall_clock, Waiting};

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
    /// The latest turn taken (its wait over).
    last_taken: Option<Instant>,
    /// Turns reserved by callers still waiting for them, by reservation number.
    reserved: Vec<(u64, Instant)>,
    next_reservation: u64,
    blocked_until: Option<Instant>,
}

impl State {
    /// The first free turn: `spacing` after the latest turn taken or reserved, not before a hold
    /// ends, not before now.
    fn next_turn(&self, now: Instant) -> Instant {
        let spacing = spacing_for(self.allowed);
        let latest = self.reserved.iter().map(|(_, at)| *at).chain(self.last_taken).max();
        let mut at = now;
        if let Some(latest) = latest {
            at = at.max(latest + spacing);
        }
        if let Some(until) = self.blocked_until {
            at = at.max(until);
        }
        at
    }
}

/// A reserved turn: taken when its wait completes, given back when dropped before.
struct Reservation<'a> {
    pacer: &'a Pacer,
    id: u64,
    at: Instant,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut state = self.pacer.lock();
        let before = state.reserved.len();
        state.reserved.retain(|(id, _)| *id != self.id);
        if state.reserved.len() == before {
            return;
        }
        if Instant::now() >= self.at {
            // The turn came: it was taken (the wait completed, or was dropped just as it did).
            state.last_taken = Some(state.last_taken.map_or(self.at, |t| t.max(self.at)));
        }
    }
}

impl Pacer {
    /// The Genesys default, assumed until a response's `inin-ratelimit-allowed` says otherwise:
    /// the one definition of it (both binaries' pacers and the `extract --dry-run` estimate use it).
    pub const DEFAULT_REQUESTS_PER_MINUTE: u32 = 300;
    /// Fraction of the allowed rate the pacer aims for.
    pub const HEADROOM: f64 = 0.9;

    /// A pacer assuming `requests_per_minute` (at least 1) until a response says otherwise.
    pub fn new(requests_per_minute: u32) -> Self {
        Pacer {
            state: Mutex::new(State {
                allowed: requests_per_minute.max(1),
                last_taken: None,
                reserved: Vec::new(),
                next_reservation: 0,
                blocked_until: None,
            }),
        }
    }

    /// Waits for this request's turn: at least [`Pacer::spacing`] after the previous request's
    /// turn, and not before a hold set by [`Pacer::observe`] or [`Pacer::pause_for`] ends. Dropping
    /// the future before the turn comes gives the turn back.
    ///
    /// Inside a call of [`crate::with_retry`], a turn that would come at or after the call's
    /// deadline is refused at once, without reserving it: [`SourceError::Held`] (`rate limited until
    /// 10:00:52 UTC ...; nothing was sent`). While it waits, the call knows it is waiting for the
    /// rate limit ([`crate::retry::waiting_for`]).
    pub async fn acquire(&self) -> Result<(), SourceError> {
        let reservation = {
            let mut state = self.lock();
            let now = Instant::now();
            let at = state.next_turn(now);
            if let Some((deadline, budget)) = call_deadline() {
                if at > now && at >= deadline {
                    let wait = at - now;
                    let message = format!(
                        "rate limited until {} ({} from now), past the {} deadline of this request: nothing was \
                         sent (the client holds its requests after a 429 or near the limit)",
                        wall_clock(at),
                        seconds(wait),
                        seconds(budget)
                    );
                    return Err(SourceError::Held { message, wait });
                }
            }
            let id = state.next_reservation;
            state.next_reservation += 1;
            state.reserved.push((id, at));
            Reservation { pacer: self, id, at }
        };
        if reservation.at > Instant::now() {
            waiting_for(Some(Waiting::RateLimit { until: reservation.at }));
            tokio::time::sleep_until(reservation.at).await;
            waiting_for(None);
        }
        drop(reservation);
        Ok(())
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
    use crate::{with_retry, RetryCounters, RetryPolicy};

    async fn run(pacer: &Pacer, n: usize) -> Vec<Duration> {
        let start = Instant::now();
        let mut at = Vec::new();
        for _ in 0..n {
            pacer.acquire().await.unwrap();
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
        pacer.acquire().await.unwrap();
        let start = Instant::now();
        pacer.observe(RateLimitInfo { allowed: Some(60), count: Some(58), reset: Some(Duration::from_secs(20)) });
        pacer.acquire().await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(20));
        // Far from the limit: no hold, only spacing.
        pacer.observe(RateLimitInfo { allowed: Some(60), count: Some(3), reset: Some(Duration::from_secs(40)) });
        let t = Instant::now();
        pacer.acquire().await.unwrap();
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
                    pacer.acquire().await.unwrap();
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
                    pacer.acquire().await.unwrap();
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

    /// Waits abandoned by their callers (a deadline) give their turns back: the first request
    /// after a hold goes when the hold ends, not after the turns of every abandoned wait.
    #[tokio::test(start_paused = true)]
    async fn abandoned_waits_give_their_turns_back() {
        let pacer = Arc::new(Pacer::default());
        let start = Instant::now();
        pacer.pause_for(Duration::from_secs(52));
        let abandoned: Vec<_> = (0..100)
            .map(|_| {
                let pacer = pacer.clone();
                tokio::spawn(async move { tokio::time::timeout(Duration::from_secs(5), pacer.acquire()).await })
            })
            .collect();
        for wait in abandoned {
            assert!(wait.await.unwrap().is_err(), "still held at 5 s");
        }
        pacer.acquire().await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(52));
        let t = Instant::now();
        pacer.acquire().await.unwrap();
        assert_eq!(t.elapsed(), pacer.spacing(), "the turn taken counts");
    }

    /// Inside a retry call, a turn that would come after the call's deadline is refused at once,
    /// saying until when requests are held and that nothing was sent; nothing is reserved.
    #[tokio::test(start_paused = true)]
    async fn a_turn_past_the_call_deadline_is_refused_at_once() {
        let pacer = Pacer::default();
        let policy = RetryPolicy { deadline: Duration::from_secs(5), ..RetryPolicy::default() };
        let counters = RetryCounters::default();
        pacer.pause_for(Duration::from_secs(52));
        let start = Instant::now();
        let err = with_retry(&policy, &counters, || pacer.acquire()).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO, "no wait");
        let SourceError::Held { message, wait } = &err else { panic!("{err:?}") };
        assert_eq!(*wait, Duration::from_secs(52));
        assert!(message.starts_with("rate limited until "), "{message}");
        assert!(message.contains("(52 s from now), past the 5 s deadline"), "{message}");
        assert!(message.contains("nothing was sent"), "{message}");
        assert!(!message.contains("no answer"), "{message}");
        assert_eq!((counters.retries(), counters.gave_up()), (0, 1));
        // A turn before the deadline is waited for.
        let policy = RetryPolicy { deadline: Duration::from_secs(60), ..RetryPolicy::default() };
        with_retry(&policy, &counters, || pacer.acquire()).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(52));
    }

    /// The daemon's case: one 429 asks for 52 s; windows with a 5 s deadline come every second. The
    /// windows during the hold fail at once (held, nothing sent), and the first one after it sends
    /// and succeeds, as does every later one (the server is back).
    #[tokio::test(start_paused = true)]
    async fn one_429_with_a_long_retry_after_does_not_starve_short_deadlines() {
        let pacer = Pacer::default();
        let policy = RetryPolicy { deadline: Duration::from_secs(5), ..RetryPolicy::default() };
        let counters = RetryCounters::default();
        let sent = std::sync::Mutex::new(Vec::new());
        let start = Instant::now();
        let request = || async {
            pacer.acquire().await?;
            let mut sent = sent.lock().unwrap();
            sent.push(start.elapsed());
            if sent.len() == 1 {
                // What the client does with a 429: hold every request (the server's value, at most 60 s).
                pacer.pause_for(Duration::from_secs(52));
                return Err(SourceError::RateLimited { retry_after: Duration::from_secs(52), context_id: None });
            }
            Ok(())
        };
        let mut outcomes = Vec::new();
        for tick in 0..120u64 {
            tokio::time::sleep_until(start + Duration::from_secs(tick)).await;
            let t = Instant::now();
            let outcome = with_retry(&policy, &counters, request).await;
            match &outcome {
                Err(SourceError::Held { .. }) => assert_eq!(t.elapsed(), Duration::ZERO, "tick {tick}: at once"),
                _ => assert!(t.elapsed() < policy.deadline, "tick {tick} took {:?}", t.elapsed()),
            }
            outcomes.push(outcome);
        }
        assert!(matches!(outcomes[0], Err(SourceError::RateLimited { .. })), "{:?}", outcomes[0]);
        // Ticks 1 to 47 would wait past their deadline: held, at once. Tick 48 waits 4 s and goes.
        for (tick, outcome) in outcomes.iter().enumerate().take(48).skip(1) {
            let Err(SourceError::Held { message, .. }) = outcome else { panic!("tick {tick}: {outcome:?}") };
            assert!(message.starts_with("rate limited until") && message.contains("nothing was sent"), "{message}");
        }
        assert!(outcomes[48..].iter().all(Result::is_ok), "{:?}", &outcomes[48..]);
        let sent = sent.lock().unwrap();
        assert_eq!(sent.len(), 1 + 72, "one request per tick once the hold is over");
        assert_eq!(sent[1], Duration::from_secs(52), "the first request after the hold goes when it ends");
    }
}
