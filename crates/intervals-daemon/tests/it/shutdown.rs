//! A shutdown in the middle of a backfill lets the window being read be written, stops there,
//! releases the lease and returns.

use std::time::Duration;

use sqlx::PgPool;

use super::support::{checkpoints, config_text, lease, settings, sim, stored, truth, within, ManualClock, Running};

const ORG: &str = "emea";

#[sqlx::test(migrations = false)]
async fn shutdown_drains_the_window_in_flight_and_releases_the_lease(pool: PgPool) {
    // Every API call takes 200 ms, so the shutdown lands while windows are being read.
    let sim = sim("2025-03-12T10:07:00Z", |c| c.latency = Duration::from_millis(200)).await;
    let text = config_text(&[(ORG, &sim, "backfill_from = \"2025-02-20\"")]);
    let query = settings(&text).orgs[0].reads[0].queries.layout().clone();
    let clock = ManualClock::at("2025-03-12T10:07:00Z");
    let mut daemon = Running::start(settings(&text), &pool, clock, "replica-a").await;
    let stats = daemon.stats[0].clone();

    // Start a tick without waiting for it; shut down once the first window is written.
    daemon.trigger();
    within(stats.wait_until(|s| s.windows_written >= 1)).await;
    assert!(daemon.org(ORG).lease_held);
    daemon.shutdown().await.expect("clean shutdown");

    let s = stats.snapshot();
    assert!(s.windows_written < 21, "the tick of 21 windows stopped early: {s:?}");
    assert_eq!(s.ticks, 1);
    assert!(!s.lease_held);
    assert_eq!(s.last_success, None, "an interrupted tick is not a success");
    assert_eq!(lease(&pool, ORG).await, None, "lease released");
    let written = checkpoints(&pool, ORG).await;
    assert_eq!(written.len() as u64, s.windows_written, "every window counted was committed with its checkpoint");
    for w in written {
        assert_eq!(stored(&pool, ORG, w).await, truth(&sim, &query, w), "window {w} is complete");
    }
}
