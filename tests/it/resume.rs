//! kill -9 in the middle of an extraction, then the same command again: the result equals truth,
//! with no duplicates and no refetch of finished windows.

use std::io::{BufRead, BufReader};
use std::time::Duration;

use intervals_sim::SimConfig;

use crate::extract_truth::{pg_url, postgres_long_csv, sqlite_long_csv};
use crate::support::{assert_same_csv, expect_exit, run, spawn_watching, watch_windows_written, Extraction, Sim};

/// Twenty one-day windows, one request at a time, each slowed down by the simulator.
pub(crate) fn long_extraction() -> Extraction {
    Extraction { from: "2025-02-01", to: "2025-02-21", granularity: "PT1H", ..Extraction::default() }
}

pub(crate) const WINDOWS: u64 = 20;

pub(crate) async fn slow_sim() -> Sim {
    Sim::start(SimConfig { agents: 8, seed: 11, latency: Duration::from_millis(150), ..SimConfig::default() }).await
}

/// Starts `extraction`, waits (by reading its log, not the clock) until `after` windows were
/// committed, and kills it with SIGKILL.
pub(crate) async fn extract_and_kill(sim: &Sim, extraction: &Extraction, out: &str, after: usize) {
    let mut cmd = sim.cli(&["extract", "--out", out, "--concurrency", "1", "--log-format", "json"]);
    cmd.args(extraction.args()).env("RUST_LOG", "intervals_app=debug");
    let mut child = spawn_watching(cmd);
    let stderr = child.stderr.take().unwrap();
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen = 0;
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if line.contains("window written") {
                seen += 1;
                if seen == after {
                    break;
                }
            }
        }
        seen
    })
    .await
    .unwrap();
    assert_eq!(seen, after, "the extraction ended before it could be killed");
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed");
}

/// Kills an extraction into `out` after five windows and runs it again to the end; returns the
/// aggregate queries of the first and of the second run.
pub(crate) async fn resume_after_kill(sim: &Sim, out: &str) -> (u64, u64) {
    extract_and_kill(sim, &long_extraction(), out, 5).await;
    let queries_first = sim.aggregate_queries();
    assert!(queries_first < WINDOWS, "killed before the end");
    let mut again = sim.cli(&["extract", "--out", out, "--concurrency", "1"]);
    again.args(long_extraction().args());
    let stderr = expect_exit(&run(again).await, 0);
    let queries_second = sim.aggregate_queries() - queries_first;
    assert!(stderr.contains("already done"), "{stderr}");
    (queries_first, queries_second)
}

#[tokio::test]
async fn sqlite_resumes_after_kill_9() {
    let sim = slow_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("resume.db");
    let out = format!("sqlite:{}", db.display());
    let (first, second) = resume_after_kill(&sim, &out).await;
    let done = checkpoints_sqlite(&db).await;
    assert_eq!(done, WINDOWS, "every window is checkpointed once");
    // Windows committed before the kill were not fetched again; at most the one in flight was.
    assert!(first + second <= WINDOWS + 1, "first run {first} + second run {second} queries for {WINDOWS} windows");
    assert!(second < WINDOWS, "the second run skipped finished windows");
    let extraction = long_extraction();
    assert_same_csv(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim), "sqlite after resume");
}

async fn checkpoints_sqlite(db: &std::path::Path) -> u64 {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM ingest_windows").fetch_one(&mut conn).await.unwrap();
    n as u64
}

#[sqlx::test(migrations = false)]
async fn postgres_resumes_after_kill_9(_o: sqlx::postgres::PgPoolOptions, opts: sqlx::postgres::PgConnectOptions) {
    let sim = slow_sim().await;
    let out = pg_url(&opts);
    let (first, second) = resume_after_kill(&sim, &out).await;
    assert!(first + second <= WINDOWS + 1, "first run {first} + second run {second} queries for {WINDOWS} windows");
    let pool = sqlx::PgPool::connect_with(opts).await.unwrap();
    let done: i64 = sqlx::query_scalar("SELECT count(*) FROM ingest_windows").fetch_one(&pool).await.unwrap();
    assert_eq!(done as u64, WINDOWS);
    let extraction = long_extraction();
    assert_same_csv(&postgres_long_csv(&pool, &extraction).await, &extraction.truth_csv(&sim), "postgres after resume");
}

/// Starts the extraction, waits until `after` windows were committed, stops it with SIGTERM (as
/// Ctrl-C would) and returns its exit code and all of its stderr.
async fn extract_and_stop(sim: &Sim, out: &str, after: usize) -> (Option<i32>, String) {
    let mut cmd = sim.cli(&["extract", "--out", out, "--concurrency", "1", "--log-format", "json"]);
    cmd.args(long_extraction().args()).env("RUST_LOG", "intervals_app=debug");
    let mut child = spawn_watching(cmd);
    let (written, reader) = watch_windows_written(child.stderr.take().unwrap(), after);
    written.await.expect("the extraction ended before it could be stopped");
    let status = std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success(), "kill -TERM");
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    (status.code(), reader.await.unwrap())
}

/// An interrupted run says what it kept: an output with checkpoints keeps the windows written (run
/// again to continue); CSV is written only when every window succeeded, so it kept nothing.
#[tokio::test]
async fn an_interrupted_run_says_what_it_kept() {
    let sim = slow_sim().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("stopped.csv");
    let (code, stderr) = extract_and_stop(&sim, &format!("csv:{}", csv.display()), 3).await;
    assert_eq!(code, Some(130), "{stderr}");
    let next = format!(
        "  next:     nothing was written to csv:{}: CSV and JSON Lines are written only when every window succeeded; \
         run again to start over\n",
        csv.display()
    );
    assert!(stderr.contains(&next), "{stderr}");
    assert!(stderr.contains("error: interrupted; nothing was written: run again to start over"), "{stderr}");
    assert!(!stderr.contains("continue") && !stderr.contains("  data:"), "{stderr}");
    assert!(stderr.contains(" fetched, 0 failed") && !stderr.contains(" written, "), "{stderr}");
    assert!(!csv.exists(), "an interrupted CSV run leaves no file");

    let db = dir.path().join("stopped.db");
    let out = format!("sqlite:{}", db.display());
    let (code, stderr) = extract_and_stop(&sim, &out, 3).await;
    assert_eq!(code, Some(130), "{stderr}");
    let next = format!(
        "  next:     the windows written are kept in {out}: run the same command again to continue; finished \
         windows are not fetched again\n"
    );
    assert!(stderr.contains(&next), "{stderr}");
    assert!(stderr.contains("error: interrupted; run the same command again to continue"), "{stderr}");
    assert!(stderr.contains(&format!("  data:     {out}\n")), "{stderr}");
    let kept = checkpoints_sqlite(&db).await;
    assert!((3..WINDOWS).contains(&kept), "{kept} windows kept");
}
