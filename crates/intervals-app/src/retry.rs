//! The retry policy every source call goes through: the source classifies, this one loop retries.
//!
//! - [`SourceError::RateLimited`] (429): wait exactly `retry_after`, then try again. These waits are the
//!   server's explicit instruction, so they are bounded by the overall deadline only, not by
//!   `max_attempts`.
//! - [`SourceError::Transient`] (502/503/504, timeouts, resets, truncated or unparsable bodies): wait
//!   `retry_after` when the response carried one, otherwise a capped exponential backoff with full
//!   jitter (a uniform wait in `[0, min(max_delay, base_delay * 2^n)]`); at most `max_attempts`
//!   attempts end in a transient failure.
//! - Anything else returns at once.
//!
//! The whole call, attempts and waits alike, ends within `deadline` of the start of the first attempt:
//! an attempt still running then is abandoned (dropped) and the call fails as
//! [`SourceError::Transient`] (`gave up after 2 attempts: no answer within the 300 s deadline`), and
//! no wait starts that would end at or after the deadline: a 429 whose `Retry-After` reaches past
//! it gives up at once, without waiting, and the last error is returned. A transient failure returned after
//! giving up says so and why (`gave up after 8 attempts (the most allowed): ...`); a 429 returned
//! is always one whose wait would have passed the deadline, and its message says so. All waits use
//! `tokio::time`, so tests run in paused time.

use std::collections::hash_map::RandomState;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use intervals_domain::{AggregateQuery, MetricRow, Queue, TimeWindow, User};
use tokio::time::Instant;

use crate::ports::{seconds, DirectorySource, MetricSource, SourceError};

/// How often and how long to retry, as data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Backoff cap of the first transient retry; doubles with each further transient failure.
    pub base_delay: Duration,
    /// Largest backoff cap of a transient retry.
    pub max_delay: Duration,
    /// Most attempts that may end in a transient failure (the first attempt included); `1` = no
    /// transient retries. Rate-limited attempts do not count (see the module docs).
    pub max_attempts: u32,
    /// Overall budget of a call, from the start of its first attempt: an attempt still running when
    /// it passes is abandoned (the call fails as `Transient`), and no wait is started that would end
    /// at or after it. Default [`RetryPolicy::DEFAULT_DEADLINE`] (5 minutes).
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    /// 1 s base, 60 s cap, 8 attempts, [`RetryPolicy::DEFAULT_DEADLINE`] (5 minutes).
    fn default() -> Self {
        RetryPolicy {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_attempts: 8,
            deadline: RetryPolicy::DEFAULT_DEADLINE,
        }
    }
}

impl RetryPolicy {
    /// The default `deadline`: 5 minutes per call (for the CLI, per window: `--window-deadline`).
    /// Long enough for a slow answer (the client's whole-request timeout is 60 s) retried a few
    /// times, or for several 429 waits of up to a minute; short enough that a server that never
    /// answers costs a window 5 minutes, not the 8 request timeouts and their backoff (some 9
    /// minutes) that `max_attempts` alone would allow.
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);

    /// The backoff cap after `transient_failures` transient failures (1 = the first failure):
    /// `min(max_delay, base_delay * 2^(n-1))`.
    pub fn backoff_cap(&self, transient_failures: u32) -> Duration {
        let exponent = transient_failures.saturating_sub(1).min(31);
        self.base_delay.saturating_mul(1u32 << exponent).min(self.max_delay)
    }
}

/// What the retry loop did, for progress output and metrics. Shared by every call of a run.
#[derive(Debug, Default)]
pub struct RetryCounters {
    retries: AtomicU64,
    rate_limited: AtomicU64,
    transient: AtomicU64,
    gave_up: AtomicU64,
}

impl RetryCounters {
    /// Retries started (after a 429 or a transient failure).
    pub fn retries(&self) -> u64 {
        self.retries.load(Ordering::Relaxed)
    }

    /// Attempts that ended in a 429 (`RateLimited`), whether retried or not.
    pub fn rate_limited(&self) -> u64 {
        self.rate_limited.load(Ordering::Relaxed)
    }

    /// Attempts that ended in a transient failure, whether retried or not.
    pub fn transient(&self) -> u64 {
        self.transient.load(Ordering::Relaxed)
    }

    /// Calls that failed with a retryable error after the policy's budget ran out.
    pub fn gave_up(&self) -> u64 {
        self.gave_up.load(Ordering::Relaxed)
    }
}

tokio::task_local! {
    /// The call of [`with_retry`] the current task runs an attempt of.
    static CALL: Arc<CallState>;
}

/// What the code of an attempt tells the retry loop: the deadline it runs under, and what it is
/// waiting for before it sends anything.
#[derive(Debug)]
struct CallState {
    /// When the whole call ends (the tightest of nested calls).
    deadline: Instant,
    /// The call's budget, for messages.
    budget: Duration,
    waiting: Mutex<Option<Waiting>>,
}

/// What an attempt is waiting for before its request is sent ([`waiting_for`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// A free request slot (the client's concurrency limit).
    Slot,
    /// Its turn in the pacer, which holds it until `until` (the rate limit).
    RateLimit {
        /// When the turn comes.
        until: Instant,
    },
}

/// The deadline and budget of the [`with_retry`] call this task runs an attempt of, if any: the
/// pacer refuses at once a turn that would come after it ([`crate::Pacer::acquire`]).
pub fn call_deadline() -> Option<(Instant, Duration)> {
    CALL.try_with(|call| (call.deadline, call.budget)).ok()
}

/// Tells the [`with_retry`] call this task runs an attempt of (if any) what the attempt waits for
/// before sending anything (`None`: it waits for nothing, or it has sent its request), so that
/// an attempt cut by the deadline says it sent nothing and why instead of "no answer". Set it
/// before the wait and clear it after: a wait cut short leaves it set, which is the point.
pub fn waiting_for(waiting: Option<Waiting>) {
    let _ = CALL.try_with(|call| *call.waiting.lock().unwrap_or_else(|p| p.into_inner()) = waiting);
}

/// `instant` (of tokio's clock) on the wall clock, for messages: `10:00:52 UTC`.
pub fn wall_clock(instant: Instant) -> String {
    let now = Instant::now();
    let at = if instant >= now {
        chrono::Utc::now() + chrono::Duration::from_std(instant - now).unwrap_or(chrono::Duration::MAX)
    } else {
        chrono::Utc::now() - chrono::Duration::from_std(now - instant).unwrap_or(chrono::Duration::zero())
    };
    at.format("%H:%M:%S UTC").to_string()
}

/// Why an attempt cut by the deadline ended, from what it was waiting for.
fn cut_short(waiting: Option<Waiting>, budget: Duration) -> String {
    match waiting {
        None => format!("no answer within the {} deadline", seconds(budget)),
        Some(Waiting::Slot) => format!(
            "nothing was sent: still waiting for a free request slot (the concurrency limit) when the {} deadline \
             passed",
            seconds(budget)
        ),
        Some(Waiting::RateLimit { until }) => format!(
            "nothing was sent: still waiting for the rate limit (requests held until {}) when the {} deadline passed",
            wall_clock(until),
            seconds(budget)
        ),
    }
}

/// Runs `op` until it succeeds, fails with an error that is not retryable, or the policy's budget
/// runs out (then the last error is returned, saying that the loop gave up and why). Each attempt
/// runs under what is left of the deadline and is abandoned when it passes. Each retry is logged
/// (`attempt`, `wait_ms`, `reason`, `context_id`).
pub async fn with_retry<T, F, Fut>(policy: &RetryPolicy, counters: &RetryCounters, mut op: F) -> Result<T, SourceError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, SourceError>>,
{
    let started = Instant::now();
    let own_deadline = started.checked_add(policy.deadline);
    let (deadline, budget) = match (call_deadline(), own_deadline) {
        (Some((outer, outer_budget)), Some(own)) if outer < own => (outer, outer_budget),
        (_, Some(own)) => (own, policy.deadline),
        (Some(outer), None) => outer,
        // A deadline beyond what the clock holds: as good as none.
        (None, None) => (started + Duration::from_secs(100 * 365 * 86_400), policy.deadline),
    };
    let call = Arc::new(CallState { deadline, budget, waiting: Mutex::new(None) });
    let mut attempt: u32 = 0;
    let mut transient_failures: u32 = 0;
    loop {
        attempt += 1;
        let remaining = policy.deadline.saturating_sub(started.elapsed());
        waiting_in(&call, None);
        let err = match tokio::time::timeout(remaining, CALL.scope(Arc::clone(&call), op())).await {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(err)) => err,
            Err(_) => {
                counters.transient.fetch_add(1, Ordering::Relaxed);
                let waiting = *call.waiting.lock().unwrap_or_else(|p| p.into_inner());
                let err = SourceError::transient(cut_short(waiting, policy.deadline), None);
                return Err(give_up(counters, attempt, None, err));
            }
        };
        let wait = match &err {
            SourceError::RateLimited { retry_after, .. } => {
                counters.rate_limited.fetch_add(1, Ordering::Relaxed);
                *retry_after
            }
            SourceError::Transient { retry_after, .. } => {
                counters.transient.fetch_add(1, Ordering::Relaxed);
                transient_failures += 1;
                if transient_failures >= policy.max_attempts {
                    return Err(give_up(counters, attempt, Some("the most allowed".to_owned()), err));
                }
                retry_after.unwrap_or_else(|| full_jitter(policy.backoff_cap(transient_failures)))
            }
            SourceError::Held { .. } => {
                return Err(give_up(counters, attempt, Some("held past the deadline".to_owned()), err));
            }
            _ => return Err(err),
        };
        // A wait ending at the deadline itself would leave the next attempt no time at all.
        if started.elapsed().saturating_add(wait) >= policy.deadline {
            let why = format!("waiting {} more would pass the {} deadline", seconds(wait), seconds(policy.deadline));
            return Err(give_up(counters, attempt, Some(why), err));
        }
        counters.retries.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            attempt,
            wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
            reason = %retry_reason(&err),
            context_id = err.context_id().unwrap_or(""),
            "source call failed; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

fn waiting_in(call: &CallState, waiting: Option<Waiting>) {
    *call.waiting.lock().unwrap_or_else(|p| p.into_inner()) = waiting;
}

/// Counts and logs giving up, and says so in the message of a transient failure: `gave up after 3
/// attempts (why): <the last failure>`. A 429 is returned as it is: it only ever leaves the loop when
/// its wait would pass the deadline, and its own message says so.
fn give_up(counters: &RetryCounters, attempt: u32, why: Option<String>, err: SourceError) -> SourceError {
    counters.gave_up.fetch_add(1, Ordering::Relaxed);
    tracing::warn!(
        attempt,
        why = why.as_deref().unwrap_or("the deadline passed during the attempt"),
        reason = %err,
        context_id = err.context_id().unwrap_or(""),
        "source call failed; giving up"
    );
    match err {
        SourceError::Transient { message, retry_after, context_id, cause } => {
            let attempts = if attempt == 1 { "1 attempt".to_owned() } else { format!("{attempt} attempts") };
            let why = why.map(|why| format!(" ({why})")).unwrap_or_default();
            SourceError::Transient {
                message: format!("gave up after {attempts}{why}: {message}"),
                retry_after,
                context_id,
                cause,
            }
        }
        other => other,
    }
}

/// What a retried failure was, for the log line of the retry (a 429's own message is about giving up).
fn retry_reason(err: &SourceError) -> String {
    match err {
        SourceError::RateLimited { retry_after, .. } => {
            format!("rate limited (HTTP 429): the server asked to wait {}", seconds(*retry_after))
        }
        other => other.to_string(),
    }
}

/// A uniform duration in `[0, cap]` (millisecond resolution).
fn full_jitter(cap: Duration) -> Duration {
    let cap_ms = u64::try_from(cap.as_millis()).unwrap_or(u64::MAX);
    if cap_ms == 0 {
        return Duration::ZERO;
    }
    Duration::from_millis(random_u64() % (cap_ms + 1))
}

/// A pseudo-random number (splitmix64 over a per-process random seed and a counter). Jitter only
/// needs to decorrelate clients, not to be unpredictable.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static SEED: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    let seed = *SEED.get_or_init(|| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(0x5eed);
        h.finish()
    });
    let mut z = seed.wrapping_add(COUNTER.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9e37_79b9_7f4a_7c15));
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A [`MetricSource`] that runs every call of an inner source through [`with_retry`].
pub struct RetryingSource {
    inner: Arc<dyn MetricSource>,
    policy: RetryPolicy,
    counters: Arc<RetryCounters>,
}

impl std::fmt::Debug for RetryingSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryingSource").field("policy", &self.policy).field("counters", &self.counters).finish()
    }
}

impl RetryingSource {
    /// Wraps `inner`; `counters` may be shared with progress reporting.
    pub fn new(inner: Arc<dyn MetricSource>, policy: RetryPolicy, counters: Arc<RetryCounters>) -> Self {
        RetryingSource { inner, policy, counters }
    }

    /// The policy in use.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The shared counters.
    pub fn counters(&self) -> &Arc<RetryCounters> {
        &self.counters
    }
}

#[async_trait]
impl MetricSource for RetryingSource {
    async fn query(&self, query: &AggregateQuery, window: TimeWindow) -> Result<Vec<MetricRow>, SourceError> {
        with_retry(&self.policy, &self.counters, || self.inner.query(query, window)).await
    }
}

/// A [`DirectorySource`] that runs every call of an inner directory through [`with_retry`].
pub struct RetryingDirectory {
    inner: Arc<dyn DirectorySource>,
    policy: RetryPolicy,
    counters: Arc<RetryCounters>,
}

impl std::fmt::Debug for RetryingDirectory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RetryingDirectory").field("policy", &self.policy).field("counters", &self.counters).finish()
    }
}

impl RetryingDirectory {
    /// Wraps `inner`; `counters` may be shared with progress reporting.
    pub fn new(inner: Arc<dyn DirectorySource>, policy: RetryPolicy, counters: Arc<RetryCounters>) -> Self {
        RetryingDirectory { inner, policy, counters }
    }
}

#[async_trait]
impl DirectorySource for RetryingDirectory {
    async fn users(&self) -> Result<Vec<User>, SourceError> {
        with_retry(&self.policy, &self.counters, || self.inner.users()).await
    }

    async fn queues(&self) -> Result<Vec<Queue>, SourceError> {
        with_retry(&self.policy, &self.counters, || self.inner.queues()).await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;

    use super::*;

    fn transient(retry_after: Option<Duration>) -> SourceError {
        SourceError::Transient { message: "503".into(), retry_after, context_id: Some("ctx-1".into()), cause: None }
    }

    fn limited(secs: u64) -> SourceError {
        SourceError::RateLimited { retry_after: Duration::from_secs(secs), context_id: None }
    }

    /// Replays `script` (then succeeds with the attempt number), recording when each attempt ran.
    struct Script {
        outcomes: Mutex<VecDeque<SourceError>>,
        calls: Mutex<Vec<Instant>>,
    }

    impl Script {
        fn new(outcomes: Vec<SourceError>) -> Self {
            Script { outcomes: Mutex::new(outcomes.into()), calls: Mutex::new(Vec::new()) }
        }

        async fn call(&self) -> Result<usize, SourceError> {
            let mut calls = self.calls.lock().unwrap();
            calls.push(Instant::now());
            let n = calls.len();
            drop(calls);
            match self.outcomes.lock().unwrap().pop_front() {
                Some(err) => Err(err),
                None => Ok(n),
            }
        }

        fn gaps(&self) -> Vec<Duration> {
            let calls = self.calls.lock().unwrap();
            calls.windows(2).map(|w| w[1] - w[0]).collect()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limited_waits_exactly_retry_after() {
        let script = Script::new(vec![limited(42), limited(7)]);
        let counters = RetryCounters::default();
        let n = with_retry(&RetryPolicy::default(), &counters, || script.call()).await.unwrap();
        assert_eq!(n, 3);
        assert_eq!(script.gaps(), vec![Duration::from_secs(42), Duration::from_secs(7)]);
        assert_eq!((counters.retries(), counters.rate_limited(), counters.transient()), (2, 2, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn rate_limits_do_not_use_up_attempts() {
        let policy = RetryPolicy { max_attempts: 2, ..RetryPolicy::default() };
        let script = Script::new((0..10).map(|_| limited(1)).collect());
        let counters = RetryCounters::default();
        assert_eq!(with_retry(&policy, &counters, || script.call()).await.unwrap(), 11);
        assert_eq!(counters.rate_limited(), 10);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_backoff_is_capped_exponential_with_full_jitter() {
        let policy = RetryPolicy {
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(8),
            max_attempts: 100,
            deadline: Duration::from_secs(100_000),
        };
        let script = Script::new((0..40).map(|_| transient(None)).collect());
        let counters = RetryCounters::default();
        assert_eq!(with_retry(&policy, &counters, || script.call()).await.unwrap(), 41);
        let gaps = script.gaps();
        for (i, gap) in gaps.iter().enumerate() {
            let cap = policy.backoff_cap(u32::try_from(i).unwrap() + 1);
            assert!(*gap <= cap, "retry {i} waited {gap:?}, more than the cap {cap:?}");
        }
        assert_eq!(policy.backoff_cap(1), Duration::from_secs(1));
        assert_eq!(policy.backoff_cap(3), Duration::from_secs(4));
        assert_eq!(policy.backoff_cap(30), Duration::from_secs(8));
        // Full jitter: the waits at the cap are spread, not all equal to it.
        let capped: Vec<&Duration> = gaps.iter().skip(4).collect();
        assert!(capped.iter().any(|g| **g < Duration::from_secs(6)), "no jitter: {capped:?}");
        assert!(capped.iter().any(|g| **g > Duration::from_secs(2)), "no jitter: {capped:?}");
        assert_eq!(counters.transient(), 40);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_uses_retry_after_when_given() {
        let script = Script::new(vec![transient(Some(Duration::from_secs(13)))]);
        let counters = RetryCounters::default();
        with_retry(&RetryPolicy::default(), &counters, || script.call()).await.unwrap();
        assert_eq!(script.gaps(), vec![Duration::from_secs(13)]);
    }

    #[tokio::test(start_paused = true)]
    async fn transient_gives_up_after_max_attempts() {
        let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
        let script = Script::new((0..10).map(|_| transient(None)).collect());
        let counters = RetryCounters::default();
        let err = with_retry(&policy, &counters, || script.call()).await.unwrap_err();
        assert!(matches!(err, SourceError::Transient { .. }));
        assert_eq!(script.calls.lock().unwrap().len(), 3);
        assert_eq!((counters.retries(), counters.transient(), counters.gave_up()), (2, 3, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_stops_retries_before_waiting_past_it() {
        let policy = RetryPolicy { deadline: Duration::from_secs(100), ..RetryPolicy::default() };
        let script = Script::new(vec![limited(60), limited(60), limited(1)]);
        let start = Instant::now();
        let err = with_retry(&policy, &RetryCounters::default(), || script.call()).await.unwrap_err();
        assert!(matches!(err, SourceError::RateLimited { retry_after, .. } if retry_after == Duration::from_secs(60)));
        assert_eq!(script.calls.lock().unwrap().len(), 2);
        assert_eq!(start.elapsed(), Duration::from_secs(60));
    }

    #[tokio::test(start_paused = true)]
    async fn other_errors_return_at_once() {
        for err in [
            SourceError::TooLarge { message: "x".into(), context_id: None },
            SourceError::unauthorized("x", None),
            SourceError::Forbidden { permission: "p".into(), message: "x".into(), context_id: None },
            SourceError::invalid("x", Some(404), None),
        ] {
            let script = Script::new(vec![err.clone()]);
            let counters = RetryCounters::default();
            let start = Instant::now();
            let returned = with_retry(&RetryPolicy::default(), &counters, || script.call()).await.unwrap_err();
            assert_eq!(std::mem::discriminant(&returned), std::mem::discriminant(&err), "{returned:?}");
            assert_eq!(returned.to_string(), err.to_string(), "returned as it is");
            assert_eq!(start.elapsed(), Duration::ZERO);
            assert_eq!(counters.retries(), 0);
        }
    }

    /// A source that never answers: the call is abandoned exactly at the deadline, saying so.
    #[tokio::test(start_paused = true)]
    async fn an_attempt_that_never_answers_ends_exactly_at_the_deadline() {
        let policy = RetryPolicy { deadline: Duration::from_secs(120), ..RetryPolicy::default() };
        let counters = RetryCounters::default();
        let start = Instant::now();
        let err = with_retry(&policy, &counters, std::future::pending::<Result<(), SourceError>>).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(120));
        let SourceError::Transient { message, retry_after: None, context_id: None, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(message, "gave up after 1 attempt: no answer within the 120 s deadline");
        assert!(err.is_retryable(), "a later call may be answered");
        assert_eq!((counters.retries(), counters.transient(), counters.gave_up()), (0, 1, 1));
    }

    /// Failures and their waits count against the same deadline as the attempt that hangs after them.
    #[tokio::test(start_paused = true)]
    async fn the_deadline_covers_the_waits_and_the_attempt_in_progress() {
        let policy = RetryPolicy { deadline: Duration::from_secs(60), ..RetryPolicy::default() };
        let counters = RetryCounters::default();
        let calls = AtomicU64::new(0);
        let start = Instant::now();
        let err = with_retry(&policy, &counters, || {
            let n = calls.fetch_add(1, Ordering::Relaxed);
            async move {
                if n < 2 {
                    return Err(transient(Some(Duration::from_secs(10))));
                }
                std::future::pending::<Result<(), SourceError>>().await
            }
        })
        .await
        .unwrap_err();
        assert_eq!(start.elapsed(), Duration::from_secs(60));
        assert_eq!(calls.load(Ordering::Relaxed), 3);
        let SourceError::Transient { message, .. } = &err else { panic!("{err:?}") };
        assert_eq!(message, "gave up after 3 attempts: no answer within the 60 s deadline");
        assert_eq!((counters.retries(), counters.transient(), counters.gave_up()), (2, 3, 1));
    }

    /// A `Retry-After` that would end after the deadline is not waited for at all, and the message
    /// names the server's value as sent, however large.
    #[tokio::test(start_paused = true)]
    async fn a_retry_after_past_the_deadline_gives_up_at_once_naming_the_servers_value() {
        let counters = RetryCounters::default();
        for asked in [Duration::from_secs(100_000), Duration::from_secs(301), Duration::MAX] {
            let err = SourceError::RateLimited { retry_after: asked, context_id: Some("ctx-429".into()) };
            let script = Script::new(vec![err.clone()]);
            let start = Instant::now();
            let returned = with_retry(&RetryPolicy::default(), &counters, || script.call()).await.unwrap_err();
            assert!(
                matches!(returned, SourceError::RateLimited { retry_after, .. } if retry_after == asked),
                "{returned:?}"
            );
            assert_eq!(start.elapsed(), Duration::ZERO, "no wait for {asked:?}");
            assert_eq!(script.calls.lock().unwrap().len(), 1);
        }
        assert_eq!((counters.retries(), counters.rate_limited(), counters.gave_up()), (0, 3, 3));
        let message = limited(100_000).to_string();
        assert_eq!(
            message,
            "rate limited (HTTP 429): the server asked to wait 100000 s before trying again, which would end after \
             the retry deadline; gave up instead of waiting"
        );
    }

    /// Giving up rewrites the message, never the cause: `source()` still reaches the error behind it.
    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_given_up_keeps_its_cause() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let failure = SourceError::transient("could not connect", None).caused_by(Arc::new(refused));
        let policy = RetryPolicy { max_attempts: 1, ..RetryPolicy::default() };
        let script = Script::new(vec![failure]);
        let err = with_retry(&policy, &RetryCounters::default(), || script.call()).await.unwrap_err();
        assert!(matches!(err, SourceError::Transient { .. }), "{err:?}");
        let cause = std::error::Error::source(&err).expect("the cause is kept");
        assert_eq!(cause.to_string(), "connection refused");
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_given_up_says_so_and_why() {
        let policy = RetryPolicy { max_attempts: 2, ..RetryPolicy::default() };
        let script = Script::new((0..5).map(|_| transient(None)).collect());
        let err = with_retry(&policy, &RetryCounters::default(), || script.call()).await.unwrap_err();
        let SourceError::Transient { message, retry_after: None, context_id: Some(context_id), .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            (message.as_str(), context_id.as_str()),
            ("gave up after 2 attempts (the most allowed): 503", "ctx-1")
        );
        let policy = RetryPolicy { deadline: Duration::from_secs(100), ..RetryPolicy::default() };
        let script = Script::new(vec![transient(Some(Duration::from_secs(200)))]);
        let start = Instant::now();
        let err = with_retry(&policy, &RetryCounters::default(), || script.call()).await.unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(
            err.to_string(),
            "transient failure: gave up after 1 attempt (waiting 200 s more would pass the 100 s deadline): 503 \
             (contextId ctx-1)"
        );
    }

    /// Durations in messages: milliseconds below a second, else at most one decimal.
    #[tokio::test(start_paused = true)]
    async fn durations_in_messages_have_at_most_one_decimal() {
        let cases = [
            (Duration::from_millis(250), "250 ms"),
            (Duration::from_secs(300), "300 s"),
            (Duration::from_millis(4794), "4.8 s"),
            (Duration::from_secs_f64(4.794_000_000_000_000_5), "4.8 s"),
            (Duration::from_millis(59_960), "60 s"),
            (Duration::from_secs(100_000), "100000 s"),
        ];
        for (d, want) in cases {
            assert_eq!(seconds(d), want, "{d:?}");
        }
        assert!(seconds(Duration::MAX).ends_with(" s"));
        let policy = RetryPolicy { deadline: Duration::from_secs(3), ..RetryPolicy::default() };
        let script = Script::new(vec![transient(Some(Duration::from_secs_f64(4.794_000_000_000_000_5)))]);
        let err = with_retry(&policy, &RetryCounters::default(), || script.call()).await.unwrap_err();
        assert!(err.to_string().contains("(waiting 4.8 s more would pass the 3 s deadline)"), "{err}");
    }

    /// An attempt cut by the deadline before it sent anything says so, and what it waited for.
    #[tokio::test(start_paused = true)]
    async fn an_attempt_cut_before_sending_says_nothing_was_sent() {
        let policy = RetryPolicy { deadline: Duration::from_secs(5), ..RetryPolicy::default() };
        let cut = |waiting: Waiting| async move {
            with_retry(&policy, &RetryCounters::default(), || async move {
                waiting_for(Some(waiting));
                std::future::pending::<Result<(), SourceError>>().await
            })
            .await
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            cut(Waiting::Slot).await,
            "transient failure: gave up after 1 attempt: nothing was sent: still waiting for a free request slot \
             (the concurrency limit) when the 5 s deadline passed"
        );
        let message = cut(Waiting::RateLimit { until: Instant::now() + Duration::from_secs(60) }).await;
        assert!(
            message.contains("nothing was sent: still waiting for the rate limit (requests held until "),
            "{message}"
        );
        assert!(message.ends_with("UTC) when the 5 s deadline passed"), "{message}");
        // Waiting done, request sent: then it is the answer that did not come.
        let message = with_retry(&policy, &RetryCounters::default(), || async {
            waiting_for(Some(Waiting::Slot));
            waiting_for(None);
            std::future::pending::<Result<(), SourceError>>().await
        })
        .await
        .unwrap_err()
        .to_string();
        assert!(message.ends_with("gave up after 1 attempt: no answer within the 5 s deadline"), "{message}");
    }

    #[test]
    fn jitter_stays_within_the_cap() {
        for _ in 0..1000 {
            assert!(full_jitter(Duration::from_millis(250)) <= Duration::from_millis(250));
        }
        assert_eq!(full_jitter(Duration::ZERO), Duration::ZERO);
    }

    struct FlakySource {
        script: Script,
    }

    #[async_trait]
    impl MetricSource for FlakySource {
        async fn query(&self, _: &AggregateQuery, _: TimeWindow) -> Result<Vec<MetricRow>, SourceError> {
            self.script.call().await.map(|_| Vec::new())
        }
    }

    #[async_trait]
    impl DirectorySource for FlakySource {
        async fn users(&self) -> Result<Vec<User>, SourceError> {
            self.script.call().await.map(|_| Vec::new())
        }
        async fn queues(&self) -> Result<Vec<Queue>, SourceError> {
            self.script.call().await.map(|_| Vec::new())
        }
    }

    #[tokio::test(start_paused = true)]
    async fn retrying_source_and_directory_retry_every_method() {
        let flaky = Arc::new(FlakySource { script: Script::new(vec![limited(5), transient(None), limited(2)]) });
        let counters = Arc::new(RetryCounters::default());
        let source = RetryingSource::new(flaky.clone(), RetryPolicy::default(), counters.clone());
        let directory = RetryingDirectory::new(flaky.clone(), RetryPolicy::default(), counters.clone());
        assert!(source.query(&query(), window()).await.unwrap().is_empty());
        assert!(directory.users().await.unwrap().is_empty());
        assert!(directory.queues().await.unwrap().is_empty());
        assert_eq!(counters.retries(), 3);
        assert_eq!(flaky.script.calls.lock().unwrap().len(), 6);
    }

    fn query() -> AggregateQuery {
        use intervals_domain::{Filters, Granularity, MetricName, Tz};
        let metrics = vec![MetricName::parse("tHandle").expect("metric")];
        let group_by = AggregateQuery::parse_group_by("userId").expect("group by");
        AggregateQuery::new(metrics, group_by, Granularity::Pt30m, Tz::UTC, Filters::none()).expect("query")
    }

    fn window() -> TimeWindow {
        use chrono::TimeZone;
        let start = chrono::Utc.with_ymd_and_hms(2025, 3, 10, 0, 0, 0).single().expect("date");
        TimeWindow::new(start, start + chrono::Duration::hours(1)).expect("window")
    }
}
