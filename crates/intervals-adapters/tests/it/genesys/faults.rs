//! 429 with Retry-After, 503 bursts and truncated bodies, through the app's retry loop.

use std::sync::Arc;
use std::time::Duration;

use intervals_adapters::genesys::{JobSettings, JobSource};
use intervals_app::{
    DirectorySource, MetricSource, RetryCounters, RetryPolicy, RetryingDirectory, RetryingSource, SourceError,
};
use intervals_domain::{AggregateQuery, MetricRow, TimeWindow, User};
use tokio::time::Instant;

use super::support::{self, empty_results, handle_query, hour_windows, Canned, Fake, AGGREGATES, TOKEN};

/// The client's aggregates and directory, each through the one retry loop, counting into the same counters.
struct Retrying {
    source: RetryingSource,
    directory: RetryingDirectory,
}

impl Retrying {
    async fn query(&self, query: &AggregateQuery, window: TimeWindow) -> Result<Vec<MetricRow>, SourceError> {
        self.source.query(query, window).await
    }

    async fn users(&self) -> Result<Vec<User>, SourceError> {
        self.directory.users().await
    }
}

fn retrying(client: intervals_adapters::genesys::GenesysClient) -> (Arc<Retrying>, Arc<RetryCounters>) {
    let counters = Arc::new(RetryCounters::default());
    let policy = RetryPolicy::default();
    let directory = RetryingDirectory::new(Arc::new(client.clone()), policy, counters.clone());
    let source = RetryingSource::new(Arc::new(client), policy, counters.clone());
    (Arc::new(Retrying { source, directory }), counters)
}

#[tokio::test(start_paused = true)]
async fn a_429_is_retried_after_exactly_retry_after() {
    let fake = Fake::start(|req, seen| {
        if req.path == TOKEN {
            return Canned::token("tok", 3600);
        }
        if seen.iter().any(|s| s.path == AGGREGATES) {
            return empty_results();
        }
        Canned::json(
            429,
            serde_json::json!({"message": "Rate limit exceeded the maximum. Retry the request in [7] seconds",
                "code": "too.many.requests.retry.after", "status": 429, "contextId": "ctx-429",
                "details": [], "errors": []}),
        )
        .header("retry-after", "7")
        .header("inin-correlation-id", "ctx-429")
    })
    .await;
    let (source, counters) = retrying(support::client(&fake.base_url, |_| {}));
    source.query(&handle_query(), hour_windows(1, 1)[0]).await.unwrap();
    let calls = fake.seen_at(AGGREGATES);
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].at - calls[0].at, Duration::from_secs(7));
    assert_eq!((counters.rate_limited(), counters.retries()), (1, 1));
}

/// A `Retry-After` far past the deadline: the call gives up at once, its message quoting the
/// server's value, and the client holds its other requests for a minute at most, not 100000 s.
#[tokio::test(start_paused = true)]
async fn a_retry_after_past_the_deadline_fails_the_call_at_once_and_holds_the_others_a_minute_at_most() {
    let fake = Fake::start(|req, seen| {
        if req.path == TOKEN {
            return Canned::token("tok", 3600);
        }
        if seen.iter().any(|s| s.path == AGGREGATES) {
            return empty_results();
        }
        Canned::error(429, "Rate limit exceeded the maximum", "ctx-429").header("retry-after", "100000")
    })
    .await;
    let (source, counters) = retrying(support::client(&fake.base_url, |_| {}));
    let windows = hour_windows(2, 1);
    let start = Instant::now();
    let err = source.query(&handle_query(), windows[0]).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::ZERO, "no wait at all");
    let SourceError::RateLimited { retry_after, context_id } = &err else { panic!("{err:?}") };
    assert_eq!((*retry_after, context_id.as_deref()), (Duration::from_secs(100_000), Some("ctx-429")));
    assert!(err.to_string().contains("the server asked to wait 100000 s"), "{err}");
    assert!(err.to_string().contains("gave up instead of waiting"), "{err}");
    assert_eq!((counters.rate_limited(), counters.retries(), counters.gave_up()), (1, 0, 1));
    source.query(&handle_query(), windows[1]).await.unwrap();
    let calls = fake.seen_at(AGGREGATES);
    assert_eq!(calls[1].at - calls[0].at, Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn the_simulators_429s_are_waited_out_and_every_query_succeeds() {
    let config = intervals_sim::SimConfig { rate_per_minute: 5, ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    // No pacing and 8 requests in flight: the first burst runs into the limit.
    let client = support::client(&sim.base_url(), |cfg| {
        support::unpaced(cfg);
        cfg.max_concurrency = 8;
    });
    let (source, counters) = retrying(client);
    let query = Arc::new(handle_query());
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for window in hour_windows(12, 1) {
        let (source, query) = (source.clone(), query.clone());
        tasks.spawn(async move { (window, source.query(&query, window).await) });
    }
    while let Some(done) = tasks.join_next().await {
        let (window, rows) = done.unwrap();
        assert_eq!(support::sorted(rows.unwrap()), sim.truth(&query, window));
    }
    let stats = sim.stats();
    assert!(stats.rate_limited > 0, "{stats:?}");
    assert_eq!(counters.rate_limited(), stats.rate_limited);
    assert_eq!(stats.aggregate_queries, 12);
    // 12 requests at 5 per sliding minute need at least two full minutes.
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_secs(120), "{elapsed:?}");
    assert!(elapsed <= Duration::from_secs(240), "{elapsed:?}");
}

#[tokio::test(start_paused = true)]
async fn bursts_of_503_are_retried_with_backoff() {
    let config = intervals_sim::SimConfig { fail_rate: 0.35, ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    let (source, counters) = retrying(support::client(&sim.base_url(), |_| {}));
    let query = handle_query();
    for window in hour_windows(24, 1) {
        assert_eq!(support::sorted(source.query(&query, window).await.unwrap()), sim.truth(&query, window));
    }
    let stats = sim.stats();
    assert!(stats.service_unavailable >= 3, "{stats:?}");
    assert_eq!(counters.transient(), stats.service_unavailable);
    assert_eq!(counters.rate_limited(), 0);
}

#[tokio::test(start_paused = true)]
async fn truncated_bodies_are_transient_and_retried() {
    let config = intervals_sim::SimConfig { truncate_rate: 0.35, ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    let (source, counters) = retrying(support::client(&sim.base_url(), |_| {}));
    let query = handle_query();
    for window in hour_windows(24, 1) {
        assert_eq!(support::sorted(source.query(&query, window).await.unwrap()), sim.truth(&query, window));
    }
    let users = source.users().await.unwrap();
    assert_eq!(users, intervals_sim::users(sim.config()));
    let stats = sim.stats();
    assert!(stats.truncated >= 3, "{stats:?}");
    assert_eq!(counters.transient(), stats.truncated);
}

#[tokio::test(start_paused = true)]
async fn a_single_attempt_surfaces_the_transient_error() {
    let fake = Fake::start(|req, _| match req.path.as_str() {
        TOKEN => Canned::token("tok", 3600),
        _ => Canned::error(503, "Service Unavailable", "ctx-503").header("retry-after", "4"),
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let err = client.query(&handle_query(), hour_windows(1, 1)[0]).await.unwrap_err();
    let intervals_app::SourceError::Transient { message, retry_after, context_id, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (message.as_str(), *retry_after, context_id.as_deref()),
        (
            "POST /api/v2/analytics/conversations/aggregates/query HTTP 503: Service Unavailable [code some.code]",
            Some(Duration::from_secs(4)),
            Some("ctx-503")
        )
    );
    assert_eq!(fake.seen_at(AGGREGATES).len(), 1);
}

/// With `--use-jobs`, an answer cut short is asked for again on every step (the submission, the
/// status polls, each results page), as on the synchronous path: the rows are exact, every
/// truncated body was one retry, and no job is left behind.
#[tokio::test(start_paused = true)]
async fn truncated_bodies_on_every_job_step_are_retried() {
    let config =
        intervals_sim::SimConfig { truncate_rate: 0.3, job_delay: Duration::from_secs(2), ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    let counters = Arc::new(RetryCounters::default());
    let client = support::client(&sim.base_url(), |cfg| {
        cfg.jobs = JobSettings { page_size: 7, counters: counters.clone(), ..JobSettings::default() };
    });
    let source = JobSource::new(client.clone());
    let query = handle_query();
    for window in hour_windows(12, 1) {
        let rows = source.query(&query, window).await.unwrap_or_else(|e| panic!("{window}: {e}"));
        assert_eq!(support::sorted(rows), sim.truth(&query, window));
    }
    let stats = sim.stats();
    assert!(stats.truncated >= 5, "{stats:?}");
    assert_eq!(counters.transient(), stats.truncated, "{stats:?}");
    assert_eq!(counters.gave_up(), 0);
    assert!(client.active_jobs().is_empty());
}

/// One 429 with `Retry-After: 52` under a 5 s deadline (the daemon's probe): the call that got it
/// gives up at once; the windows after it fail at once too, saying until when requests are held
/// and that nothing was sent (no "no answer within the deadline"); the first window after the hold
/// is sent when it ends, not later.
#[tokio::test(start_paused = true)]
async fn a_long_retry_after_under_a_short_deadline_holds_without_starving() {
    let fake = Fake::start(|req, seen| {
        if req.path == TOKEN {
            return Canned::token("tok", 3600);
        }
        if seen.iter().any(|s| s.path == AGGREGATES) {
            return empty_results();
        }
        Canned::error(429, "Rate limit exceeded the maximum", "ctx-429").header("retry-after", "52")
    })
    .await;
    let counters = Arc::new(RetryCounters::default());
    let policy = RetryPolicy { deadline: Duration::from_secs(5), ..RetryPolicy::default() };
    let source = RetryingSource::new(Arc::new(support::client(&fake.base_url, |_| {})), policy, counters.clone());
    let start = Instant::now();
    let mut held = 0;
    for (tick, window) in hour_windows(120, 1).into_iter().enumerate() {
        tokio::time::sleep_until(start + Duration::from_secs(tick as u64)).await;
        let t = Instant::now();
        match source.query(&handle_query(), window).await {
            Ok(_) => {}
            Err(SourceError::RateLimited { .. }) if tick == 0 => {}
            Err(SourceError::Held { message, .. }) => {
                assert_eq!(t.elapsed(), Duration::ZERO, "tick {tick}: at once");
                assert!(
                    message.starts_with("rate limited until ") && message.contains("nothing was sent"),
                    "{message}"
                );
                held += 1;
            }
            Err(e) => panic!("tick {tick}: {e}"),
        }
    }
    assert_eq!(held, 47, "ticks 1 to 47 would wait past their deadline; tick 48 waits 4 s");
    let calls = fake.seen_at(AGGREGATES);
    assert_eq!(calls[1].at - calls[0].at, Duration::from_secs(52), "sent when the hold ends");
    assert_eq!(calls.len(), 1 + 72);
}
