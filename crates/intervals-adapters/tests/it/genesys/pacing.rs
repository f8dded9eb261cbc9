//! Pacing from the `inin-ratelimit-*` headers: a long run provokes no 429.

use std::sync::Arc;
use std::time::Duration;

use intervals_app::MetricSource;
use tokio::time::Instant;

use super::support::{self, handle_query, hour_windows};

#[tokio::test(start_paused = true)]
async fn a_run_of_150_requests_at_60_per_minute_gets_no_429() {
    let config = intervals_sim::SimConfig { rate_per_minute: 60, ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    // Default pacer (300/min until the first response says 60), 4 requests in flight, no retries.
    let client = Arc::new(support::client(&sim.base_url(), |cfg| cfg.max_concurrency = 4));
    let query = Arc::new(handle_query());
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for window in hour_windows(150, 1) {
        let (client, query) = (client.clone(), query.clone());
        tasks.spawn(async move { client.query(&query, window).await.map(|_| ()) });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    let stats = sim.stats();
    assert_eq!(stats.rate_limited, 0, "{stats:?}");
    assert_eq!(stats.aggregate_queries, 150);
    assert_eq!(client.pacer().allowed_per_minute(), 60);
    // At most 60 per minute: 150 requests take well over two minutes (and the pacer does not
    // crawl either: about 60 s / 54).
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_secs(150), "{elapsed:?}");
    assert!(elapsed <= Duration::from_secs(200), "{elapsed:?}");
}
