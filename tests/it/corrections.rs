//! Late corrections: a reprocessed day is picked up by `--refetch`, and window replace leaves no
//! stale row.

use crate::extract_truth::sqlite_long_csv;
use crate::support::{assert_same_csv, expect_exit, long_csv, run, Extraction, Sim};

#[tokio::test]
async fn refetch_picks_up_a_reprocessed_day() {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.db");
    let out = format!("sqlite:{}", db.display());
    let extraction = Extraction::default();
    let extract = |extra: &[&str]| {
        let mut cmd = sim.cli(&["extract", "--out", &out]);
        cmd.args(extraction.args()).args(extra);
        cmd
    };
    expect_exit(&run(extract(&[])).await, 0);
    let before = extraction.truth_csv(&sim);
    assert_same_csv(&sqlite_long_csv(&db, &extraction).await, &before, "first run");

    sim.running.reprocess(chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap());
    let after = long_csv(&extraction.query(), sim.running.truth(&extraction.query(), extraction.range()));
    assert_ne!(before, after, "reprocessing changes some figures");

    // A plain re-run trusts its checkpoints: nothing is fetched, nothing changes.
    let queries = sim.aggregate_queries();
    expect_exit(&run(extract(&[])).await, 0);
    assert_eq!(sim.aggregate_queries(), queries);
    assert_same_csv(&sqlite_long_csv(&db, &extraction).await, &before, "re-run without --refetch");

    // --refetch reads every window again and replaces what was stored.
    let stderr = expect_exit(&run(extract(&["--refetch"])).await, 0);
    assert_eq!(sim.aggregate_queries(), queries + 2, "{stderr}");
    assert_same_csv(&sqlite_long_csv(&db, &extraction).await, &after, "after --refetch");
}
