//! Two daemon replicas sharing one database never ingest the same org at once.

use sqlx::PgPool;
use tokio::sync::watch;

use super::support::{config_text, lease, settings, sim, stored, truth, window, ManualClock, Running};

const ORG: &str = "emea";

#[sqlx::test(migrations = false)]
async fn replicas_share_an_org_through_its_lease(pool: PgPool) {
    let sim = sim("2025-03-12T10:07:00Z", |_| {}).await;
    let text = config_text(&[(ORG, &sim, "backfill_from = \"2025-03-08\"")]);
    let query = settings(&text).orgs[0].reads[0].queries.layout().clone();
    let clock = ManualClock::at("2025-03-12T10:07:00Z");
    let (ticks, rx) = watch::channel(0u64);
    let a = Running::start_with(settings(&text), &pool, clock.clone(), "replica-a", rx.clone()).await;
    let b = Running::start_with(settings(&text), &pool, clock.clone(), "replica-b", rx).await;

    // Both tick at the same moment: exactly one reads, the other skips.
    ticks.send_modify(|n| *n += 1);
    a.wait_ticks(1).await;
    b.wait_ticks(1).await;
    let (sa, sb) = (a.org(ORG), b.org(ORG));
    assert_ne!(sa.lease_held, sb.lease_held, "exactly one holds the lease: {sa:?} {sb:?}");
    let (holder, other, holder_name) = if sa.lease_held { (a, b, "replica-a") } else { (b, a, "replica-b") };
    let (sh, so) = (holder.org(ORG), other.org(ORG));
    assert_eq!((so.ticks_skipped, so.windows_written), (1, 0), "the other replica read nothing");
    assert!(so.ready, "a replica that skipped is ready");
    assert_eq!(sh.windows_written, 5, "four days and today, each read once");
    assert_eq!(sim.stats().aggregate_queries, sh.windows_written, "no window was read twice");
    assert_eq!(lease(&pool, ORG).await, Some((holder_name.to_owned(), true)));
    let range = window("2025-03-08T00:00:00Z", "2025-03-12T10:00:00Z");
    assert_eq!(stored(&pool, ORG, range).await, truth(&sim, &query, range));

    // Ticking again while the holder runs: the other keeps skipping.
    ticks.send_modify(|n| *n += 1);
    holder.wait_ticks(2).await;
    other.wait_ticks(2).await;
    assert_eq!(other.org(ORG).ticks_skipped, 2);

    // The holder shuts down and releases the lease; the other takes over at its next tick.
    holder.shutdown().await.unwrap();
    assert_eq!(lease(&pool, ORG).await, None, "released on shutdown");
    ticks.send_modify(|n| *n += 1);
    other.wait_ticks(3).await;
    let taken = other.org(ORG);
    assert!(taken.lease_held);
    assert_eq!(taken.ticks_skipped, 2);
    assert_eq!(taken.windows_written, 4, "the daily lookback of its first tick with the lease; backfill was done");
    assert!(lease(&pool, ORG).await.is_some_and(|(h, live)| h != holder_name && live));
    other.shutdown().await.unwrap();
}
