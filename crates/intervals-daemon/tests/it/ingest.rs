//! Backfill then steady state against the simulator, and reprocessing picked up by the daily
//! lookback.

use chrono::NaiveDate;
use sqlx::PgPool;

use super::support::{checkpoints, config_text, settings, sim, stored, t, truth, window, ManualClock, Running};

const ORG: &str = "emea";

#[sqlx::test(migrations = false)]
async fn backfill_then_steady_state_reaches_the_truth(pool: PgPool) {
    let sim = sim("2025-03-12T10:07:00Z", |_| {}).await;
    let settings = settings(&config_text(&[(ORG, &sim, "backfill_from = \"2025-03-10\"")]));
    let query = settings.orgs[0].reads[0].queries.layout().clone();
    let clock = ManualClock::at("2025-03-12T10:07:00Z");
    let mut daemon = Running::start(settings, &pool, clock.clone(), "replica-a").await;

    daemon.tick().await;
    let range = window("2025-03-10T00:00:00Z", "2025-03-12T10:00:00Z");
    let expected = truth(&sim, &query, range);
    assert!(expected.len() > 100, "the simulator produced data: {}", expected.len());
    let everything = window("2025-03-01T00:00:00Z", "2025-03-13T00:00:00Z");
    assert_eq!(stored(&pool, ORG, everything).await, expected, "after the first tick");
    let first = daemon.org(ORG);
    assert!(first.ready && first.lease_held);
    assert_eq!(first.last_success, Some(t("2025-03-12T10:07:00Z")));
    assert_eq!(first.windows_written, 3, "the first tick's daily lookback: two days and today's closed buckets");

    // Ninety minutes later: new buckets, and late data for the last hours has arrived.
    clock.set(t("2025-03-12T11:37:00Z"));
    sim.set_now(t("2025-03-12T11:37:00Z"));
    let corrected = truth(&sim, &query, range);
    assert_ne!(corrected, expected, "late data changed figures the first tick had stored");
    daemon.tick().await;
    let range = window("2025-03-10T00:00:00Z", "2025-03-12T11:30:00Z");
    assert_eq!(stored(&pool, ORG, everything).await, truth(&sim, &query, range), "after the second tick");
    let second = daemon.org(ORG);
    assert_eq!(second.windows_written, 4, "only the 6 h lookback was read: one window");
    assert_eq!(second.daily_lookbacks, 1);

    // The same instant again: re-reading changes nothing.
    let before = stored(&pool, ORG, everything).await;
    daemon.tick().await;
    assert_eq!(stored(&pool, ORG, everything).await, before);
    let windows = checkpoints(&pool, ORG).await;
    assert!(windows.iter().all(|w| w.end() <= t("2025-03-12T11:30:00Z")), "no open bucket: {windows:?}");
    daemon.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_reprocessed_day_within_the_daily_lookback_is_picked_up_once_a_day(pool: PgPool) {
    let sim = sim("2025-03-12T10:07:00Z", |_| {}).await;
    let settings = settings(&config_text(&[(ORG, &sim, "backfill_from = \"2025-03-09\"\ndaily_lookback_days = 3")]));
    let query = settings.orgs[0].reads[0].queries.layout().clone();
    let clock = ManualClock::at("2025-03-12T10:07:00Z");
    let mut daemon = Running::start(settings, &pool, clock.clone(), "replica-a").await;
    daemon.tick().await;

    let day = window("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z");
    let original = truth(&sim, &query, day);
    assert_eq!(stored(&pool, ORG, day).await, original);
    sim.reprocess(NaiveDate::from_ymd_opt(2025, 3, 10).unwrap());
    let reprocessed = truth(&sim, &query, day);
    assert_ne!(reprocessed, original, "reprocessing revised some figures of 10 March");

    // Later the same day: only the 6 h lookback is re-read, 10 March is not.
    clock.set(t("2025-03-12T10:37:00Z"));
    sim.set_now(t("2025-03-12T10:37:00Z"));
    daemon.tick().await;
    assert_eq!(stored(&pool, ORG, day).await, original, "the daily lookback runs once a day");

    // The first tick of the next local day re-reads the last three days.
    clock.set(t("2025-03-13T00:07:00Z"));
    sim.set_now(t("2025-03-13T00:07:00Z"));
    daemon.tick().await;
    assert_eq!(stored(&pool, ORG, day).await, reprocessed, "the corrections landed");
    let everything = window("2025-03-09T00:00:00Z", "2025-03-13T00:00:00Z");
    assert_eq!(stored(&pool, ORG, everything).await, truth(&sim, &query, everything));
    assert_eq!(daemon.org(ORG).daily_lookbacks, 2);
    daemon.shutdown().await.unwrap();
}
