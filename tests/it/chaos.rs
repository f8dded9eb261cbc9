//! The fault suite: each case injects faults (503s, truncated bodies, expiring tokens, a rate limit,
//! `kill -9`, a PostgreSQL restart, a full disk, hostile servers), lets the real binary (or the
//! daemon) finish, and compares what it stored with the simulator's truth. Each case returns a
//! [`ChaosRow`]; `difference` (lines that differ from the truth, or from nothing where nothing may
//! be written) must be 0.
//!
//! Every case is a test of its own at the small scale: the fast subset of the normal tests.
//! `chaos_table` runs them all at the scale `GENESYS_CHAOS` names (`small`, or `full` for
//! [`Scale::FULL`]) and prints the table; `cargo xtask chaos` sets the variable. Without it (the
//! normal tests) the table is not run again: its cases already ran as tests of their own.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Output, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use intervals_daemon::{Daemon, DaemonSettings, RunOptions, TickMode};
use intervals_e2e::{PgServer, Tuning};
use intervals_sim::SimConfig;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

use crate::disk_full::{
    assert_clear_failure, extract as extract_fast, fast_sim, sqlite_windows, truth_within, FullDisk,
};
use crate::extract_truth::{pg_url, postgres_long_csv, sqlite_long_csv};
use crate::hostile::{silent_server, HostileServer, Hostility, HUGE_BODY};
use crate::parquet_output::{files_under, parquet_long_csv, temporary_files, window_files};
use crate::resume::{long_extraction, WINDOWS};
use crate::support::{
    clean_cli, expect_exit, run, spawn_watching, text, watch_windows_written, Extraction, Sim, CLIENT_ID, CLIENT_SECRET,
};

const MIXED: &str = "tHandle,tAcw,tHeldComplete,tTalkComplete,nConnected,tAgentRoutingStatus,tSystemPresence";

/// How long a test waits for something it polls for before it fails instead.
const PATIENCE: Duration = Duration::from_secs(120);

/// How big each case is.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scale {
    name: &'static str,
    agents: usize,
    /// `--from` and `--to` (dates) of the fault case.
    from: &'static str,
    to: &'static str,
    /// Lifetime of the simulator's access tokens in the fault case.
    token_ttl: Duration,
    /// `--from` and `--to` of the killed runs.
    kill_from: &'static str,
    kill_to: &'static str,
    /// One `kill -9` per entry, each in a run of its own.
    kills: &'static [KillAt],
    /// `--to` of the run whose database restarts (from `kill_from`, one window a day), and how
    /// many windows it commits before.
    restart_to: &'static str,
    restart_after: u64,
    /// The daemon's first tick backfills up to `daemon_ready` (it is then ready); the clock moves on
    /// to `daemon_to`, and its database restarts after `daemon_after` windows of that backfill.
    daemon_ready: &'static str,
    daemon_to: &'static str,
    daemon_after: u64,
}

impl Scale {
    /// The fast subset: seconds per case.
    pub(crate) const SMALL: Scale = Scale {
        name: "small",
        agents: 12,
        from: "2025-03-10",
        to: "2025-03-13",
        token_ttl: Duration::from_secs(2),
        kill_from: "2025-02-01",
        kill_to: "2025-02-05",
        kills: &[KillAt::Committed(2), KillAt::Sent(2), KillAt::Answered(3)],
        restart_to: "2025-02-07",
        restart_after: 3,
        daemon_ready: "2025-02-03",
        daemon_to: "2025-02-08",
        daemon_after: 3,
    };

    /// `GENESYS_CHAOS=full`: 150 agents, 30 days, 10 kills.
    pub(crate) const FULL: Scale = Scale {
        name: "full",
        agents: 150,
        from: "2025-03-01",
        to: "2025-03-31",
        token_ttl: Duration::from_secs(10),
        kill_from: "2025-03-01",
        kill_to: "2025-03-31",
        kills: &[
            KillAt::Committed(1),
            KillAt::Sent(2),
            KillAt::Answered(3),
            KillAt::Committed(4),
            KillAt::Sent(5),
            KillAt::Answered(1),
            KillAt::Committed(2),
            KillAt::Sent(3),
            KillAt::Answered(4),
            KillAt::Committed(5),
        ],
        restart_to: "2025-03-31",
        restart_after: 12,
        daemon_ready: "2025-03-06",
        daemon_to: "2025-03-31",
        daemon_after: 20,
    };

    /// The scale `GENESYS_CHAOS` names (`full`, else small); `None` when it is not set.
    pub(crate) fn requested() -> Option<Scale> {
        match std::env::var("GENESYS_CHAOS").as_deref() {
            Ok("full") => Some(Scale::FULL),
            Ok(v) if !v.trim().is_empty() => Some(Scale::SMALL),
            _ => None,
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub(crate) struct ChaosRow {
    pub(crate) case: String,
    /// Faults injected: 503s, truncated bodies, 401s of expired tokens, kills, restarts, full
    /// disks, spoiled answers, hung windows.
    pub(crate) faults: u64,
    /// The exit codes of the case's runs, in order (`4, 0`: the faulty run, then the rerun); for
    /// the daemon, the `/readyz` statuses it went through.
    pub(crate) exit: String,
    /// HTTP requests the simulator (or the hostile server) received, over every run of the case.
    pub(crate) requests: u64,
    /// Retries the client reported (`requests: N (R retries, ...)` of the summaries).
    pub(crate) retries: u64,
    /// Lines that differ between what was stored and the truth, or what should be there (the
    /// previous file; nothing at all) after a faulty run (0 expected).
    pub(crate) difference: u64,
    /// What else the case measured.
    pub(crate) note: String,
    pub(crate) elapsed: Duration,
    /// The bound the case asserted on how long the faulty part took, if any.
    pub(crate) bound: Option<Duration>,
}

/// Lines in one text and not the other, counted as multisets (0 when equal).
pub(crate) fn differing_lines(actual: &str, expected: &str) -> u64 {
    let mut counts: HashMap<&str, i64> = HashMap::new();
    for line in actual.lines() {
        *counts.entry(line).or_default() += 1;
    }
    for line in expected.lines() {
        *counts.entry(line).or_default() -= 1;
    }
    let diff = counts.values().map(|c| c.unsigned_abs()).sum();
    if diff > 0 {
        let mut extra: Vec<_> = counts.iter().filter(|(_, c)| **c != 0).collect();
        extra.sort();
        for (line, c) in extra.iter().take(5) {
            eprintln!("  {} {line}", if **c > 0 { "stored, not in truth:" } else { "in truth, not stored:" });
        }
    }
    diff
}

/// The retries a run's summary reports (`  requests: N (R retries, L rate-limited) in ...`);
/// `None` when it has no summary (it stopped before).
fn retries_in(stderr: &str) -> Option<u64> {
    stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("requests: "))
        .and_then(|rest| rest.split_once('(')?.1.split_once(" retries").map(|(n, _)| n.trim().parse().ok()))
        .flatten()
}

fn retries_of(stderr: &str) -> u64 {
    retries_in(stderr).unwrap_or_else(|| panic!("no `requests:` line in the summary:\n{stderr}"))
}

/// `future`, or a panic naming `what` after [`PATIENCE`].
async fn within<F: std::future::Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(PATIENCE, future).await.unwrap_or_else(|_| panic!("{what}: still waiting after {PATIENCE:?}"))
}

/// Polls `check` (every 20 ms) until it holds; panics naming `what` after [`PATIENCE`].
async fn poll<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    within(what, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Case 1: 503s, truncated bodies, expiring tokens and a rate limit, at concurrency 8.

pub(crate) async fn faults(scale: Scale) -> ChaosRow {
    let started = Instant::now();
    let sim = Sim::start(SimConfig {
        agents: scale.agents,
        // Its fault sequence (by request number) has a truncated body and 503s among the first
        // requests, so that even the small scale meets every kind.
        seed: 8,
        fail_rate: 0.2,
        truncate_rate: 0.05,
        rate_per_minute: 60,
        token_ttl: scale.token_ttl,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("faults.db");
    let extraction = Extraction { from: scale.from, to: scale.to, metrics: MIXED, ..Extraction::default() };
    let mut cmd = sim.cli(&["extract", "--out", &format!("sqlite:{}", db.display()), "--concurrency", "8"]);
    cmd.args(extraction.args());
    let stderr = expect_exit(&run(cmd).await, 0);
    let stats = sim.running.stats();
    let difference = differing_lines(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim));
    assert_eq!(stats.rate_limited, 0, "the pacer keeps under the rate limit: {stats:?}");
    assert!(stats.service_unavailable + stats.truncated > 0, "faults were injected: {stats:?}");
    ChaosRow {
        case: format!("503 20% + truncated 5% + token {}s + 60/min, c=8, mixed -> sqlite", scale.token_ttl.as_secs()),
        faults: stats.service_unavailable + stats.truncated + stats.unauthorized,
        exit: "0".to_owned(),
        requests: stats.requests,
        retries: retries_of(&stderr),
        difference,
        note: format!(
            "{} 503, {} truncated, {} 401, {} tokens, {} 429",
            stats.service_unavailable, stats.truncated, stats.unauthorized, stats.token_requests, stats.rate_limited
        ),
        elapsed: started.elapsed(),
        bound: None,
    }
}

/// Case 1b: truncated bodies on the jobs path (`--use-jobs`): every step (submission, status
/// polls, result pages) asked again, the result exact.
pub(crate) async fn jobs_truncated(scale: Scale) -> ChaosRow {
    let started = Instant::now();
    let sim = Sim::start(SimConfig {
        agents: scale.agents,
        seed: 8,
        truncate_rate: 0.2,
        rate_per_minute: 100_000,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jobs.db");
    let extraction = Extraction { from: scale.from, to: scale.to, metrics: MIXED, ..Extraction::default() };
    let mut cmd = sim.cli(&["extract", "--use-jobs", "--out", &format!("sqlite:{}", db.display())]);
    cmd.args(extraction.args());
    let stderr = expect_exit(&run(cmd).await, 0);
    let stats = sim.running.stats();
    let difference = differing_lines(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim));
    assert!(stats.truncated > 0, "faults were injected: {stats:?}");
    let retries = retries_of(&stderr);
    assert!(retries >= stats.truncated, "every truncated body was retried: {retries} retries, {stats:?}");
    ChaosRow {
        case: "truncated 20%, --use-jobs, mixed -> sqlite".to_owned(),
        faults: stats.truncated,
        exit: "0".to_owned(),
        requests: stats.requests,
        retries,
        difference,
        note: format!("{} truncated (submissions, status polls, result pages)", stats.truncated),
        elapsed: started.elapsed(),
        bound: None,
    }
}

// ---------------------------------------------------------------------------------------------
// Case 2: kill -9 at several moments of a window's life, then a run to the end.

/// When a `kill -9` lands, by the log line (`--log-format json`, debug) it follows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum KillAt {
    /// Just after the n-th window was committed (`window written`): between windows.
    Committed(usize),
    /// Just after the n-th API request was sent (`genesys request sent`): the request in flight.
    Sent(usize),
    /// Just after the n-th answer was read (`genesys request`): while it is parsed and written.
    Answered(usize),
}

impl KillAt {
    /// The `"message"` field of the log line.
    fn message(self) -> &'static str {
        match self {
            KillAt::Committed(_) => "\"message\":\"window written\"",
            KillAt::Sent(_) => "\"message\":\"genesys request sent\"",
            KillAt::Answered(_) => "\"message\":\"genesys request\"",
        }
    }

    fn nth(self) -> usize {
        match self {
            KillAt::Committed(n) | KillAt::Sent(n) | KillAt::Answered(n) => n,
        }
    }

    /// Windows the killed run committed (one request per window, one at a time).
    fn committed(self) -> usize {
        match self {
            KillAt::Committed(n) => n,
            KillAt::Sent(n) | KillAt::Answered(n) => n - 1,
        }
    }
}

/// The killed extraction: mixed metrics, one window per day and query.
fn kill_extraction(scale: Scale) -> Extraction {
    Extraction {
        from: scale.kill_from,
        to: scale.kill_to,
        granularity: "PT1H",
        metrics: MIXED,
        ..Extraction::default()
    }
}

/// Windows x queries of the killed extraction.
fn kill_windows(scale: Scale) -> u64 {
    let days = kill_extraction(scale).range().duration().num_days() as u64;
    days * 2
}

async fn kill_sim(scale: Scale) -> Sim {
    // The latency leaves a kill that follows a `window written` line time to land before the next
    // window is written, and one that follows `genesys request sent` time to land before the answer.
    Sim::start(SimConfig {
        agents: scale.agents,
        seed: 11,
        latency: Duration::from_millis(100),
        ..SimConfig::default()
    })
    .await
}

/// Starts `extraction` into `out` (one window at a time, debug logs as JSON), waits (by reading
/// its log, not the clock) for the moment `at`, and kills it with SIGKILL. A kill mid-request also
/// waits until the simulator has received the request (it is then in the simulator's latency).
async fn extract_and_kill_at(sim: &Sim, extraction: &Extraction, out: &str, at: KillAt) {
    let received_before = sim.requests();
    let mut cmd = sim.cli(&["extract", "--out", out, "--concurrency", "1", "--log-format", "json"]);
    cmd.args(extraction.args()).env("RUST_LOG", "intervals_app=debug,intervals_adapters=debug");
    let mut child = spawn_watching(cmd);
    let stderr = child.stderr.take().unwrap();
    let (message, nth) = (at.message(), at.nth());
    let seen = tokio::task::spawn_blocking(move || {
        let mut seen = 0;
        for line in BufReader::new(stderr).lines() {
            if line.unwrap().contains(message) {
                seen += 1;
                if seen == nth {
                    break;
                }
            }
        }
        seen
    })
    .await
    .unwrap();
    assert_eq!(seen, nth, "the extraction ended before it could be killed at {at:?}");
    if let KillAt::Sent(n) = at {
        // The run's login, then its n requests.
        let expected = received_before + 1 + n as u64;
        within("the request in flight", async {
            while sim.requests() < expected {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await;
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the child was killed");
}

/// Kills the extraction into `out` at each of `scale.kills`, then runs it to the end; returns the
/// row with its difference still to be measured.
async fn kill_then_finish(scale: Scale, sim: &Sim, out: &str, what: &str) -> ChaosRow {
    let started = Instant::now();
    let extraction = kill_extraction(scale);
    let windows = kill_windows(scale);
    let committed: usize = scale.kills.iter().map(|k| k.committed()).sum();
    assert!(committed < windows as usize, "the kills leave work for the last run");
    for &at in scale.kills {
        extract_and_kill_at(sim, &extraction, out, at).await;
    }
    let mut last = sim.cli(&["extract", "--out", out]);
    last.args(extraction.args());
    let stderr = expect_exit(&run(last).await, 0);
    assert!(stderr.contains("already done"), "{stderr}");
    let stats = sim.running.stats();
    let answered = stats.aggregate_queries + stats.user_aggregate_queries;
    // A request in flight at a kill reached the simulator but, killed during its latency, maybe
    // not the handler: count what the server received.
    let sent = stats.requests - stats.token_requests - stats.directory_requests;
    let extra = sent.saturating_sub(windows);
    let kills = scale.kills.len() as u64;
    assert!(answered >= windows, "every window was read: {answered} of {windows}");
    assert!(extra <= kills, "at most the request in flight is lost per kill: {extra} extra for {kills} kills");
    let count = |f: fn(&KillAt) -> bool| scale.kills.iter().filter(|k| f(k)).count();
    ChaosRow {
        case: format!("kill -9 x{kills}, mixed -> {what}, then a last run"),
        faults: kills,
        exit: format!("killed x{kills}, 0"),
        requests: stats.requests,
        retries: retries_of(&stderr),
        difference: 0,
        note: format!(
            "kills {} between windows, {} mid-request, {} mid-write; {sent} aggregate requests for {windows} \
             windows: {extra} extra; {} logins",
            count(|k| matches!(k, KillAt::Committed(_))),
            count(|k| matches!(k, KillAt::Sent(_))),
            count(|k| matches!(k, KillAt::Answered(_))),
            stats.token_requests
        ),
        elapsed: started.elapsed(),
        bound: None,
    }
}

pub(crate) async fn kills_sqlite(scale: Scale) -> ChaosRow {
    let sim = kill_sim(scale).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("killed.db");
    let mut row = kill_then_finish(scale, &sim, &format!("sqlite:{}", db.display()), "sqlite").await;
    let extraction = kill_extraction(scale);
    row.difference = differing_lines(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim));
    row
}

/// A database of its own on the server of `DATABASE_URL` (as `#[sqlx::test]` makes them), dropped
/// by [`FreshDatabase::drop_now`].
struct FreshDatabase {
    admin: PgConnectOptions,
    name: String,
    opts: PgConnectOptions,
}

impl FreshDatabase {
    async fn create(label: &str) -> FreshDatabase {
        static SEQ: AtomicU64 = AtomicU64::new(0);
        let url = std::env::var("DATABASE_URL").expect("DATABASE_URL (cargo xtask test sets it)");
        let admin = PgConnectOptions::from_str(&url).expect("DATABASE_URL").disable_statement_logging();
        let name = format!("chaos_{label}_{}_{}", std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let mut conn = admin.connect().await.expect("connect to DATABASE_URL");
        sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await.expect("create database");
        conn.close().await.ok();
        let opts = admin.clone().database(&name);
        FreshDatabase { admin, name, opts }
    }

    async fn drop_now(self) {
        if let Ok(mut conn) = self.admin.connect().await {
            let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name))
                .execute(&mut conn)
                .await;
        }
    }
}

pub(crate) async fn kills_postgres(scale: Scale) -> ChaosRow {
    let sim = kill_sim(scale).await;
    let db = FreshDatabase::create("kills").await;
    let mut row = kill_then_finish(scale, &sim, &pg_url(&db.opts), "postgres").await;
    let extraction = kill_extraction(scale);
    let pool = sqlx::PgPool::connect_with(db.opts.clone()).await.unwrap();
    row.difference = differing_lines(&postgres_long_csv(&pool, &extraction).await, &extraction.truth_csv(&sim));
    pool.close().await;
    db.drop_now().await;
    row
}

// ---------------------------------------------------------------------------------------------
// Case 3: an API that accepts connections and never answers.

/// How long a run against a hostile server may take (its windows' deadline is 2 s).
const HOSTILE_BOUND: Duration = Duration::from_secs(30);

/// A run against an API that never answers ends at the window deadline with exit 1 and stores no
/// row; the same command against the real API afterwards is exact.
pub(crate) async fn silent_api(scale: Scale) -> ChaosRow {
    let started = Instant::now();
    let sim = Sim::start(SimConfig { agents: scale.agents, seed: 7, ..SimConfig::default() }).await;
    let silent = silent_server().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("silent.db");
    let out = format!("sqlite:{}", db.display());
    let extraction = Extraction::default();

    let mut hung = clean_cli(&["extract", "--out", &out, "--window-deadline", "2", "--progress", "never"]);
    hung.args(["--api-url", &silent, "--login-url", &sim.running.base_url()])
        .env("GENESYS_CLIENT_ID", CLIENT_ID)
        .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET)
        .args(extraction.args());
    let t = Instant::now();
    let stderr = expect_exit(&run(hung).await, 1);
    let hung_for = t.elapsed();
    assert!(hung_for < HOSTILE_BOUND, "bounded by the 2 s deadline: {hung_for:?}\n{stderr}");
    let failed = stderr.lines().filter(|l| l.contains("FAILED")).count() as u64;
    assert!(failed > 0, "{stderr}");
    let mut retries = retries_of(&stderr);
    let mut difference = stored_rows(&db, &extraction).await;

    let mut again = sim.cli(&["extract", "--out", &out]);
    again.args(extraction.args());
    let stderr = expect_exit(&run(again).await, 0);
    retries += retries_of(&stderr);
    difference += differing_lines(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim));
    ChaosRow {
        case: "API never answers (2 s deadline) -> sqlite, then a run".to_owned(),
        faults: failed,
        exit: "1, 0".to_owned(),
        requests: sim.requests(),
        retries,
        difference,
        note: format!("exit 1 after {:.1} s, nothing stored", hung_for.as_secs_f64()),
        elapsed: started.elapsed(),
        bound: Some(HOSTILE_BOUND),
    }
}

/// The rows a SQLite output holds (0 when the file was never created): what a run that must write
/// nothing wrote.
async fn stored_rows(db: &std::path::Path, extraction: &Extraction) -> u64 {
    if !db.exists() {
        return 0;
    }
    let stored = sqlite_long_csv(db, extraction).await;
    // An empty long CSV is its header alone.
    differing_lines(&stored, &(stored.lines().next().unwrap_or("").to_owned() + "\n"))
}

// ---------------------------------------------------------------------------------------------
// Case 4: PostgreSQL restarts in the middle of a run (a private server: see `PgServer`).
//
// Where a restart lands decides what a client sees. Between windows, the sink's pool waits for the
// server to come back (up to its 60 s acquire timeout) and the run goes on. In the middle of a
// window's transaction, the session is terminated and the window cannot be committed: the run ends
// with exit 4. To land there every time, the test takes an exclusive lock on `ingest_windows` (a
// window's checkpoint, the last thing its transaction writes, after its rows), waits until the
// run's transaction waits for it, and then stops the server.

/// A private PostgreSQL server, started off the async threads. A case that cannot start one fails,
/// naming why: it never passes without having run (CI installs the server binaries, `.ci/run`).
async fn private_server(case: &str) -> Arc<PgServer> {
    match tokio::task::spawn_blocking(|| PgServer::create(Tuning::Test)).await.unwrap() {
        Ok(server) => Arc::new(server),
        Err(reason) => panic!(
            "`{case}` needs a private PostgreSQL server and cannot start one: {reason} (install the server \
             binaries: initdb, pg_ctl, postgres)"
        ),
    }
}

/// Runs a blocking `PgServer` step off the async threads, panicking with its reason.
async fn server_step(server: &Arc<PgServer>, step: fn(&PgServer) -> Result<(), String>) {
    let server = Arc::clone(server);
    tokio::task::spawn_blocking(move || step(&server)).await.unwrap().unwrap_or_else(|e| panic!("{e}"));
}

fn server_options(server: &PgServer) -> PgConnectOptions {
    PgConnectOptions::from_str(&server.url()).unwrap().disable_statement_logging()
}

/// Locks the checkpoints (held by the returned connection's open transaction), and waits until
/// another session waits for that lock: a window's transaction, its rows written and not committed.
async fn hold_the_next_window(server: &PgServer) -> sqlx::PgConnection {
    let opts = server_options(server);
    let mut locker = opts.connect().await.unwrap();
    locker.execute("BEGIN; LOCK TABLE ingest_windows IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let mut watcher = opts.connect().await.unwrap();
    within("a window's transaction waiting for the lock", async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
            )
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if waiting > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    let _ = watcher.close().await;
    locker
}

/// The checkpointed windows of a PostgreSQL output.
async fn postgres_windows(pool: &sqlx::PgPool) -> Vec<intervals_domain::TimeWindow> {
    let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> =
        sqlx::query_as("SELECT window_start, window_end FROM ingest_windows ORDER BY window_start")
            .fetch_all(pool)
            .await
            .unwrap();
    rows.into_iter().map(|(s, e)| intervals_domain::TimeWindow::new(s, e).unwrap()).collect()
}

/// The run whose database restarts: one window per day (conversation metrics, so the windows
/// committed are those of the one query).
fn restart_extraction(scale: Scale) -> Extraction {
    Extraction { from: scale.kill_from, to: scale.restart_to, granularity: "PT1H", ..Extraction::default() }
}

/// The run ends with exit 4 and a message naming the database; the windows committed before stay,
/// exactly; with the server back, the same command fetches the rest and the result is exact.
pub(crate) async fn postgres_restart_cli(scale: Scale) -> ChaosRow {
    let case = "PostgreSQL restart mid-window (CLI) -> postgres, then a rerun".to_owned();
    let started = Instant::now();
    let server = private_server(&case).await;
    let sim = kill_sim(scale).await;
    let extraction = restart_extraction(scale);
    let windows = extraction.range().duration().num_days() as u64;
    assert!(scale.restart_after < windows, "the restart comes before the end");
    let out = server.url();

    let mut cmd = sim.cli(&["extract", "--out", &out, "--concurrency", "1", "--log-format", "json"]);
    cmd.args(extraction.args()).env("RUST_LOG", "intervals_app=debug");
    let mut child = spawn_watching(cmd);
    let after = scale.restart_after;
    let (committed, reader) = watch_windows_written(child.stderr.take().unwrap(), after as usize);
    within("the windows before the restart", committed).await.expect("the run ended before the restart");
    let locker = hold_the_next_window(&server).await;

    // The restart, as the run sees it: its session terminated, new connections refused.
    server_step(&server, PgServer::stop).await;
    let went_away = Instant::now();
    drop(locker);
    let status = within("the run's end", tokio::task::spawn_blocking(move || child.wait().unwrap())).await.unwrap();
    let ended_after = went_away.elapsed();
    let stderr = reader.await.unwrap();
    assert_eq!(status.code(), Some(4), "exit 4 when the database goes away mid-window:\n{stderr}");
    let bound = Duration::from_secs(30);
    assert!(ended_after < bound, "the run ended {ended_after:?} after the database went away");
    let error = stderr.lines().find(|l| l.starts_with("error: ")).unwrap_or_else(|| panic!("no error line:\n{stderr}"));
    assert!(
        error.starts_with(&format!("error: write to {out} failed: ")),
        "names the database and what failed: {error}"
    );
    assert!(error.contains("terminating connection due to administrator command"), "says why: {error}");
    assert!(
        error.ends_with("the windows committed before are kept and the next run continues from them"),
        "says what was kept and what to do: {error}"
    );
    server_step(&server, PgServer::start).await;

    // What was committed stays, exactly.
    let pool = sqlx::PgPool::connect_with(server_options(&server)).await.unwrap();
    let kept = postgres_windows(&pool).await;
    assert!(
        (after..windows).contains(&(kept.len() as u64)),
        "{} windows kept of {windows}, {after} committed before the restart",
        kept.len()
    );
    let mut difference =
        differing_lines(&postgres_long_csv(&pool, &extraction).await, &truth_within(&sim, &extraction, &kept));
    let queries_first = sim.aggregate_queries();

    let mut again = sim.cli(&["extract", "--out", &out]);
    again.args(extraction.args());
    let rerun = expect_exit(&run(again).await, 0);
    assert!(rerun.contains(&format!("{} already done", kept.len())), "{rerun}");
    assert_eq!(sim.aggregate_queries() - queries_first, windows - kept.len() as u64, "only the rest is fetched");
    difference += differing_lines(&postgres_long_csv(&pool, &extraction).await, &extraction.truth_csv(&sim));
    pool.close().await;
    let cause = error.rsplit(": ").next().unwrap_or("").split("; ").next().unwrap_or("");
    ChaosRow {
        case,
        faults: 1,
        exit: "4, 0".to_owned(),
        requests: sim.requests(),
        retries: retries_in(&stderr).unwrap_or(0) + retries_of(&rerun),
        difference,
        note: format!(
            "exit 4 {:.1} s after the stop (\"{cause}\"); {} of {windows} windows kept",
            ended_after.as_secs_f64(),
            kept.len()
        ),
        elapsed: started.elapsed(),
        bound: Some(bound),
    }
}

// ---------------------------------------------------------------------------------------------
// Case 5: PostgreSQL restarts while the daemon backfills.

/// A clock the test moves.
#[derive(Debug)]
struct SettableClock(Mutex<DateTime<Utc>>);

impl SettableClock {
    fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap() = now;
    }
}

impl intervals_app::Clock for SettableClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap()
    }
}

/// Seven minutes past midnight (UTC) of `date`: every bucket of the days before has closed.
fn just_after(date: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{date}T00:07:00Z")).unwrap().with_timezone(&Utc)
}

/// GET `url`: status and body.
async fn get(url: &str) -> (u16, String) {
    let response = within(url, reqwest::get(url)).await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// The daemon of a chaos case, started in this process (as its own tests drive it): one org,
/// `chaos`, reading [`MIXED`] by userId,mediaType at PT1H from `kill_from` with one-second
/// interval ticks and no lookback, its clock set by the test.
struct ChaosDaemon {
    readyz: String,
    healthz: String,
    metrics_url: String,
    stats: Arc<intervals_app::daemon::OrgStats>,
    clock: Arc<SettableClock>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<(), intervals_daemon::DaemonError>>,
}

impl ChaosDaemon {
    /// Starts it on `database_url` against `sim`; `extra` is more of the org's keys.
    async fn start(database_url: &str, sim: &Sim, scale: Scale, extra: &str) -> ChaosDaemon {
        let metrics: Vec<String> = MIXED.split(',').map(|m| format!("\"{m}\"")).collect();
        let config = format!(
            "database_url = \"{database_url}\"\nlisten = \"127.0.0.1:0\"\n[[org]]\nlabel = \"chaos\"\n\
             api_url = \"{api}\"\nlogin_url = \"{api}\"\nclient_id_env = \"SIM_ID\"\nclient_secret_env = \"SIM_SECRET\"\n\
             metrics = [{metrics}]\ngroup_by = [\"userId\", \"mediaType\"]\ngranularity = \"PT1H\"\ntime_zone = \"UTC\"\n\
             backfill_from = \"{from}\"\ntick_seconds = 1\nlookback_hours = 0\ndaily_lookback_days = 0\n{extra}",
            api = sim.running.base_url(),
            metrics = metrics.join(", "),
            from = scale.kill_from,
        );
        let env = |name: &str| match name {
            "SIM_ID" => Some(CLIENT_ID.to_owned()),
            "SIM_SECRET" => Some(CLIENT_SECRET.to_owned()),
            _ => None,
        };
        let settings = DaemonSettings::parse(&config, &env).unwrap_or_else(|e| panic!("{e}\n{config}"));
        let clock = Arc::new(SettableClock(Mutex::new(just_after(scale.daemon_ready))));
        let options = RunOptions {
            clock: Arc::clone(&clock) as Arc<dyn intervals_app::Clock>,
            ticks: TickMode::Interval,
            holder: "chaos-replica".to_owned(),
            drain_timeout: Duration::from_secs(5),
            storage: None,
        };
        let daemon = Daemon::start(settings, options).await.unwrap_or_else(|e| panic!("start: {e}"));
        let (readyz, healthz, metrics_url) = (
            format!("http://{}/readyz", daemon.local_addr()),
            format!("http://{}/healthz", daemon.local_addr()),
            format!("http://{}/metrics", daemon.local_addr()),
        );
        let stats = Arc::clone(&daemon.org_stats()[0]);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(daemon.run(async move {
            let _ = stopped.await;
        }));
        ChaosDaemon { readyz, healthz, metrics_url, stats, clock, stop, task }
    }

    /// Stops it and waits until it has drained and released its lease.
    async fn stop(self) {
        let _ = self.stop.send(());
        within("the daemon's stop", self.task)
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("the daemon stopped uncleanly: {e}"));
    }
}

/// The daemon (in this process, as its own tests drive it; interval ticks every second) backfills
/// from `kill_from`; once ready, its clock moves on, and its database restarts in the middle of that
/// backfill: it keeps running, `/readyz` says 503 and why while the database is away, and once it
/// is back the daemon catches up by itself, ready again, with exactly the truth stored.
pub(crate) async fn postgres_restart_daemon(scale: Scale) -> ChaosRow {
    let case = "PostgreSQL restart mid-backfill (daemon), mixed -> postgres".to_owned();
    let started = Instant::now();
    let server = private_server(&case).await;
    let sim = Sim::start(SimConfig {
        agents: scale.agents,
        seed: 13,
        rate_per_minute: 0,
        latency: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await;
    let extraction = Extraction {
        from: scale.kill_from,
        to: scale.daemon_to,
        granularity: "PT1H",
        metrics: MIXED,
        ..Extraction::default()
    };
    let daemon = ChaosDaemon::start(&server.url(), &sim, scale, "lease_seconds = 5\n").await;
    let (readyz, healthz, metrics_url, stats, clock) = (
        daemon.readyz.clone(),
        daemon.healthz.clone(),
        daemon.metrics_url.clone(),
        Arc::clone(&daemon.stats),
        Arc::clone(&daemon.clock),
    );

    // Ready after the first backfill; then the clock moves on, and a longer backfill starts.
    within("the first tick", stats.wait_until(|s| s.ready)).await;
    assert_eq!(get(&readyz).await.0, 200);
    let before = stats.snapshot().windows_written;
    clock.set(just_after(scale.daemon_to));
    within("the backfill", stats.wait_until(|s| s.windows_written >= before + scale.daemon_after)).await;
    let locker = hold_the_next_window(&server).await;
    server_step(&server, PgServer::stop).await;
    let went_away = Instant::now();
    drop(locker);

    // Away: the tick fails, the daemon says so and keeps running.
    within("the failed tick", stats.wait_until(|s| s.ticks_failed >= 1)).await;
    let (status, body) = get(&readyz).await;
    assert_eq!(status, 503, "not ready while the database is away: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let reason = json["orgs"][0]["reason"].as_str().unwrap_or_default().to_owned();
    assert!(
        reason.starts_with(&format!("the last tick failed: write to {} failed: ", server.url())),
        "the reason names the database: {body}"
    );
    assert_eq!(get(&healthz).await, (200, "ok\n".to_owned()), "alive");
    let (_, metrics) = get(&metrics_url).await;
    assert!(metrics.contains("genesys_intervals_ready{org=\"chaos\"} 0"), "{metrics}");
    assert!(!daemon.task.is_finished(), "the daemon keeps running");
    let away = went_away.elapsed();

    // Back: the daemon catches up by itself.
    server_step(&server, PgServer::start).await;
    let back = Instant::now();
    let bound = Duration::from_secs(60);
    poll("ready again", || async { get(&readyz).await.0 == 200 }).await;
    let caught_up = back.elapsed();
    assert!(caught_up < bound, "ready {caught_up:?} after the database came back");
    let s = stats.snapshot();
    daemon.stop().await;

    let pool = sqlx::PgPool::connect_with(server_options(&server)).await.unwrap();
    let difference = differing_lines(&postgres_long_csv(&pool, &extraction).await, &extraction.truth_csv(&sim));
    pool.close().await;
    let short: String = reason.chars().take(60).collect();
    ChaosRow {
        case,
        faults: 1,
        exit: "200, 503, 200".to_owned(),
        requests: sim.requests(),
        retries: 0,
        difference,
        note: format!(
            "503 \"{short}...\" {:.1} s after the stop; 200 {:.1} s after the start; {} ticks, {} failed, {} windows",
            away.as_secs_f64(),
            caught_up.as_secs_f64(),
            s.ticks,
            s.ticks_failed,
            s.windows_written
        ),
        elapsed: started.elapsed(),
        bound: Some(bound),
    }
}

// ---------------------------------------------------------------------------------------------
// Case 6: a full disk (see `disk_full.rs`): exit 4, what was there before intact, no temporary
// file left; with room again, the same command completes to the truth.

/// Runs `cmd` on `disk` in `dir`: its stderr (exit 4 asserted) and how long it took.
async fn on_full_disk(disk: FullDisk, cmd: &std::process::Command, dir: &std::path::Path) -> (String, Duration) {
    let t = Instant::now();
    let stderr = expect_exit(&run(disk.command(cmd, dir)).await, 4);
    (stderr, t.elapsed())
}

fn full_disk_note(disk: FullDisk, fallback: Option<String>, what: String) -> String {
    match fallback {
        Some(reason) => format!("{what}; {reason}"),
        None => format!("{what}; ENOSPC ({})", disk.describe()),
    }
}

const FULL_DISK_BOUND: Duration = Duration::from_secs(30);

/// CSV: the run fails while it writes its sorted runs or the final file; the previous file is
/// untouched and nothing is left beside it.
pub(crate) async fn full_disk_csv() -> ChaosRow {
    let started = Instant::now();
    let (disk, fallback) = FullDisk::pick(1 << 20, 256 << 10);
    let sim = fast_sim().await;
    let extraction = long_extraction();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("out");
    std::fs::create_dir(&dir).unwrap();
    let path = dir.join("out.csv");
    let out = format!("csv:{}", path.display());
    let previous = "a previous extraction\n".repeat(1000);
    std::fs::write(&path, &previous).unwrap();

    let (stderr, took) = on_full_disk(disk, &extract_fast(&sim, &out), &dir).await;
    assert!(took < FULL_DISK_BOUND, "{took:?}");
    assert_clear_failure(&stderr, &out, disk.os_error());
    assert_eq!(files_under(&dir), vec![path.clone()], "nothing left beside the target");
    let mut difference = differing_lines(&std::fs::read_to_string(&path).unwrap(), &previous);

    let rerun = expect_exit(&run(extract_fast(&sim, &out)).await, 0);
    difference += differing_lines(&std::fs::read_to_string(&path).unwrap(), &extraction.truth_csv(&sim));
    ChaosRow {
        case: "full disk -> csv, then room again".to_owned(),
        faults: 1,
        exit: "4, 0".to_owned(),
        requests: sim.requests(),
        retries: retries_in(&stderr).unwrap_or(0) + retries_of(&rerun),
        difference,
        note: full_disk_note(disk, fallback, "previous file intact, no temp file left".to_owned()),
        elapsed: started.elapsed(),
        bound: Some(FULL_DISK_BOUND),
    }
}

/// Parquet: the window file that does not fit fails the run; the window files written before stay,
/// no temporary file is left, and the same command then fetches only the rest.
pub(crate) async fn full_disk_parquet() -> ChaosRow {
    let started = Instant::now();
    let (disk, fallback) = FullDisk::pick(96 << 10, 8 << 10);
    let sim = fast_sim().await;
    let extraction = long_extraction();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pq");
    std::fs::create_dir(&dir).unwrap();
    let out = format!("parquet:{}", dir.display());

    let (stderr, took) = on_full_disk(disk, &extract_fast(&sim, &out), &dir).await;
    assert!(took < FULL_DISK_BOUND, "{took:?}");
    assert_clear_failure(&stderr, &out, disk.os_error());
    let kept = window_files(&dir).len() as u64;
    assert!((1..WINDOWS).contains(&kept), "{kept} window files kept:\n{stderr}");
    let hidden = temporary_files(&dir);
    assert!(hidden.is_empty(), "temporary files left over: {hidden:?}");
    let queries_first = sim.aggregate_queries();

    let rerun = expect_exit(&run(extract_fast(&sim, &out)).await, 0);
    assert!(rerun.contains(&format!("{kept} already done")), "{rerun}");
    assert_eq!(sim.aggregate_queries() - queries_first, WINDOWS - kept, "only the rest is fetched");
    let difference = differing_lines(&parquet_long_csv(&dir, "default", &extraction), &extraction.truth_csv(&sim));
    ChaosRow {
        case: "full disk -> parquet, then room again".to_owned(),
        faults: 1,
        exit: "4, 0".to_owned(),
        requests: sim.requests(),
        retries: retries_in(&stderr).unwrap_or(0) + retries_of(&rerun),
        difference,
        note: full_disk_note(disk, fallback, format!("{kept} of {WINDOWS} window files kept, no temp file left")),
        elapsed: started.elapsed(),
        bound: Some(FULL_DISK_BOUND),
    }
}

/// SQLite: the transaction that does not fit fails the run; the windows committed before stay,
/// exactly, in an intact database, and the same command then fetches only the rest.
pub(crate) async fn full_disk_sqlite() -> ChaosRow {
    let started = Instant::now();
    // Small enough that the 20 windows do not fit: since schema v5 they take about 300 KiB with the log.
    let (disk, fallback) = FullDisk::pick(384 << 10, 384 << 10);
    let sim = fast_sim().await;
    let extraction = long_extraction();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    let db = dir.join("full.db");
    let out = format!("sqlite:{}", db.display());

    let (stderr, took) = on_full_disk(disk, &extract_fast(&sim, &out), &dir).await;
    assert!(took < FULL_DISK_BOUND, "{took:?}");
    assert_clear_failure(&stderr, &out, disk.sqlite_cause());
    assert!(stderr.contains("make room, then run again to continue: what was committed before is kept"), "{stderr}");
    let kept = sqlite_windows(&db).await;
    assert!((1..WINDOWS as usize).contains(&kept.len()), "{} windows kept of {WINDOWS}:\n{stderr}", kept.len());
    let mut difference =
        differing_lines(&sqlite_long_csv(&db, &extraction).await, &truth_within(&sim, &extraction, &kept));
    let queries_first = sim.aggregate_queries();

    let rerun = expect_exit(&run(extract_fast(&sim, &out)).await, 0);
    assert!(rerun.contains(&format!("{} already done", kept.len())), "{rerun}");
    assert_eq!(sim.aggregate_queries() - queries_first, WINDOWS - kept.len() as u64, "only the rest is fetched");
    difference += differing_lines(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim));
    ChaosRow {
        case: "full disk -> sqlite, then room again".to_owned(),
        faults: 1,
        exit: "4, 0".to_owned(),
        requests: sim.requests(),
        retries: retries_in(&stderr).unwrap_or(0) + retries_of(&rerun),
        difference,
        note: full_disk_note(disk, fallback, format!("{} of {WINDOWS} windows kept, database intact", kept.len())),
        elapsed: started.elapsed(),
        bound: Some(FULL_DISK_BOUND),
    }
}

// ---------------------------------------------------------------------------------------------
// Case 7: hostile servers (see `hostile.rs`): each ends in bounded time with a clear exit code and
// message, and writes nothing wrong.

/// What a hostile run must leave in its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaves {
    /// No row; the same command against the simulator itself then writes the truth.
    Nothing,
    /// The truth (the answers were right, however delivered).
    Truth,
}

/// What a hostile case expects of its run.
struct Expect {
    exit: i32,
    /// Text the run's stderr holds (its error, or its FAILED lines).
    says: &'static [&'static str],
    leaves: Leaves,
}

/// Runs `child` to its end off the async threads.
async fn wait_output(child: Child) -> Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()).await.unwrap()
}

/// One hostile run into a fresh SQLite file (two one-day windows, one at a time, 2 s window
/// deadline), then what it stored, then (if it was to write nothing) the same command against the
/// simulator itself. Returns the row and the server (for what it measured).
async fn hostile_case(scale: Scale, hostility: Hostility, case: &str, expect: Expect) -> (ChaosRow, HostileServer) {
    let started = Instant::now();
    let sim =
        Sim::start(SimConfig { agents: scale.agents, seed: 7, rate_per_minute: 100_000, ..SimConfig::default() }).await;
    let server = HostileServer::start(hostility, &sim).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hostile.db");
    let out = format!("sqlite:{}", db.display());
    let extraction = Extraction::default();

    let mut cmd = server.cli(&["extract", "--out", &out, "--window-deadline", "2", "--concurrency", "1"]);
    cmd.args(extraction.args()).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let t = Instant::now();
    let child = cmd.spawn().expect("spawn binary");
    server.watch(child.id());
    let output = within(case, wait_output(child)).await;
    let took = t.elapsed();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(expect.exit), "{case}: exit code; stderr:\n{stderr}");
    assert!(took < HOSTILE_BOUND, "{case}: {took:?}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for says in expect.says {
        assert!(stderr.contains(says), "{case}: says {says:?}:\n{stderr}");
    }
    let mut retries = retries_in(&stderr).unwrap_or(0);
    let mut exit = expect.exit.to_string();
    let difference = match expect.leaves {
        Leaves::Truth => differing_lines(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim)),
        Leaves::Nothing => {
            let mut difference = stored_rows(&db, &extraction).await;
            let mut again = sim.cli(&["extract", "--out", &out]);
            again.args(extraction.args());
            let rerun = expect_exit(&run(again).await, 0);
            retries += retries_of(&rerun);
            exit += ", 0";
            difference += differing_lines(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim));
            difference
        }
    };
    let written = match expect.leaves {
        Leaves::Nothing => "nothing written",
        Leaves::Truth => "the truth written",
    };
    let row = ChaosRow {
        case: case.to_owned(),
        faults: server.faults(),
        exit,
        requests: server.requests() + sim.requests() - server.forwarded(),
        retries,
        difference,
        note: format!("exit {} after {:.1} s, {written}", expect.exit, took.as_secs_f64()),
        elapsed: started.elapsed(),
        bound: Some(HOSTILE_BOUND),
    };
    (row, server)
}

pub(crate) async fn hostile_invalid_json(scale: Scale) -> ChaosRow {
    let expect = Expect { exit: 1, says: &["FAILED", "returned an unparsable body"], leaves: Leaves::Nothing };
    hostile_case(scale, Hostility::InvalidJson, "hostile: invalid JSON in a 200 -> sqlite, then a run", expect).await.0
}

pub(crate) async fn hostile_huge_body(scale: Scale) -> ChaosRow {
    let expect = Expect { exit: 0, says: &[], leaves: Leaves::Truth };
    let (mut row, server) =
        hostile_case(scale, Hostility::HugeBody, "hostile: 50 MB bodies (valid JSON) -> sqlite", expect).await;
    // Read at the second request, after the first 50 MB answer was parsed and written.
    let peak = server.peak_memory();
    let limit = 3 * HUGE_BODY as u64;
    assert!(peak > 0, "the run's memory was read");
    assert!(peak < limit, "peak memory {} MB, over {} MB", peak >> 20, limit >> 20);
    row.note += &format!("; peak RSS {} MiB (< {} MiB)", peak >> 20, limit >> 20);
    row
}

pub(crate) async fn hostile_unauthorized(scale: Scale) -> ChaosRow {
    let expect =
        Expect { exit: 3, says: &["error: not authorized: the API refused the token twice"], leaves: Leaves::Nothing };
    hostile_case(scale, Hostility::Unauthorized, "hostile: 401 forever -> sqlite, then a run", expect).await.0
}

pub(crate) async fn hostile_outside_window(scale: Scale) -> ChaosRow {
    let expect = Expect { exit: 1, says: &["FAILED", "outside"], leaves: Leaves::Nothing };
    hostile_case(scale, Hostility::OutsideWindow, "hostile: a bucket outside the window -> sqlite, then a run", expect)
        .await
        .0
}

pub(crate) async fn hostile_absurd_retry_after(scale: Scale) -> ChaosRow {
    let expect = Expect { exit: 1, says: &["FAILED", "the server asked to wait 1000000000 s before trying again, which would end after the retry deadline; gave up instead of waiting"], leaves: Leaves::Nothing };
    hostile_case(scale, Hostility::AbsurdRetryAfter, "hostile: 429 Retry-After 32 years -> sqlite, then a run", expect)
        .await
        .0
}

/// The daemon's probe at the CLI's scale: one 429 asking for 52 s under a 2 s window deadline. The
/// window that got it gives up at once; the next one fails at once too, saying requests are held
/// and that nothing was sent (it used to wait out its deadline in the pacer and say "no answer");
/// no window waits, and the rerun is exact.
pub(crate) async fn hostile_one_long_retry_after(scale: Scale) -> ChaosRow {
    let expect = Expect {
        exit: 1,
        says: &["FAILED", "the server asked to wait 52 s", "rate limited until", "nothing was sent"],
        leaves: Leaves::Nothing,
    };
    let case = "hostile: one 429 Retry-After 52 s, 2 s deadline -> sqlite, then a run";
    let (mut row, server) = hostile_case(scale, Hostility::OneLongRetryAfter, case, expect).await;
    assert_eq!(server.faults(), 1, "one 429");
    assert!(row.note.starts_with("exit 1 after "), "{row:?}");
    let took: f64 = row.note["exit 1 after ".len()..].split(' ').next().unwrap().parse().unwrap();
    assert!(took < 10.0, "no window waited for the hold: {took} s");
    row.note += "; the held window failed at once, nothing sent";
    row
}

pub(crate) async fn hostile_token_expires_at_once(scale: Scale) -> ChaosRow {
    let expect = Expect { exit: 0, says: &[], leaves: Leaves::Truth };
    let (mut row, server) =
        hostile_case(scale, Hostility::TokenExpiresAtOnce, "hostile: token with expires_in 0 -> sqlite", expect).await;
    let logins = server.logins();
    assert!(logins <= 2, "no login per request: {logins} logins");
    row.note += &format!("; {logins} login(s)");
    row
}

// ---------------------------------------------------------------------------------------------
// ---------------------------------------------------------------------------------------------
// Case 6: the daemon's OAuth client may read conversations but not agents' status time.

/// The conversation metrics of [`MIXED`]: what a client without the status permission can read.
const CONVERSATION: &str = "tHandle,tAcw,tHeldComplete,tTalkComplete,nConnected";

/// The daemon (in this process, one-second ticks, into SQLite) with both families configured and a
/// client whose role lacks `analytics:userAggregate:view`: every users-aggregates request is a 403.
/// The conversation query goes on (stored exactly), `/readyz` stays 200 and names the permission,
/// and each tick asks for status time once, not once per window.
pub(crate) async fn status_permission_missing_daemon(scale: Scale) -> ChaosRow {
    let started = Instant::now();
    let sim = Sim::start(SimConfig {
        agents: scale.agents,
        seed: 17,
        rate_per_minute: 0,
        user_aggregate_permission: false,
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("denied.db");
    let extraction = Extraction {
        from: scale.kill_from,
        to: scale.daemon_ready,
        granularity: "PT1H",
        metrics: CONVERSATION,
        ..Extraction::default()
    };
    let daemon = ChaosDaemon::start(&format!("sqlite:{}", db.display()), &sim, scale, "").await;
    let (readyz, metrics_url, stats) = (daemon.readyz.clone(), daemon.metrics_url.clone(), Arc::clone(&daemon.stats));

    // Two ticks: the backfill, then one that finds nothing new to read but asks for status again.
    within("two ticks", stats.wait_until(|s| s.ticks >= 2)).await;
    let (status, body) = get(&readyz).await;
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let org = &json["orgs"][0];
    assert_eq!(status, 200, "a partial ingest that makes progress is ready: {body}");
    assert_eq!(org["missing_permissions"], serde_json::json!(["analytics:userAggregate:view"]), "{body}");
    let (_, metrics) = get(&metrics_url).await;
    let gauge = "genesys_intervals_missing_permission{org=\"chaos\",permission=\"analytics:userAggregate:view\"} 1";
    assert!(metrics.lines().any(|l| l == gauge), "{metrics}");
    daemon.stop().await;
    let s = stats.snapshot();
    assert_eq!(s.ticks_failed, 0, "{s:?}");

    let stats = sim.running.stats();
    // One refused request per tick (the ticks counted so far, and perhaps one more under way at the stop).
    assert!(stats.user_aggregate_queries <= s.ticks + 1, "{stats:?} for {} ticks", s.ticks);
    let difference = differing_lines(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim));
    ChaosRow {
        case: "403 on status time (daemon), mixed -> sqlite".to_owned(),
        faults: stats.user_aggregate_queries,
        exit: "200".to_owned(),
        requests: stats.requests,
        retries: 0,
        difference,
        note: format!(
            "conversations exact; /readyz 200 naming analytics:userAggregate:view; {} 403s in {} ticks, {} windows",
            stats.user_aggregate_queries, s.ticks, s.windows_written
        ),
        elapsed: started.elapsed(),
        bound: None,
    }
}

// The tests.

#[track_caller]
fn assert_exact(row: &ChaosRow) {
    println!("{}", render(Scale::SMALL, std::slice::from_ref(row)));
    assert_eq!(row.difference, 0, "{row:?}");
}

#[tokio::test]
async fn faults_into_sqlite_are_exact() {
    assert_exact(&faults(Scale::SMALL).await);
}

#[tokio::test]
async fn truncated_bodies_on_the_jobs_path_are_retried_and_exact() {
    assert_exact(&jobs_truncated(Scale::SMALL).await);
}

#[tokio::test]
async fn kills_into_sqlite_are_exact() {
    assert_exact(&kills_sqlite(Scale::SMALL).await);
}

#[tokio::test]
async fn kills_into_postgres_are_exact() {
    assert_exact(&kills_postgres(Scale::SMALL).await);
}

#[tokio::test]
async fn a_silent_api_ends_in_bounded_time_and_stores_nothing() {
    assert_exact(&silent_api(Scale::SMALL).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_window_exits_4_and_a_rerun_is_exact() {
    assert_exact(&postgres_restart_cli(Scale::SMALL).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_mid_backfill_leaves_the_daemon_running_and_it_catches_up() {
    assert_exact(&postgres_restart_daemon(Scale::SMALL).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_status_permission_keeps_the_daemons_conversations_exact() {
    assert_exact(&status_permission_missing_daemon(Scale::SMALL).await);
}

#[tokio::test]
async fn a_full_disk_keeps_the_previous_csv_file() {
    assert_exact(&full_disk_csv().await);
}

#[tokio::test]
async fn a_full_disk_keeps_the_parquet_windows_written() {
    assert_exact(&full_disk_parquet().await);
}

#[tokio::test]
async fn a_full_disk_keeps_the_sqlite_windows_committed() {
    assert_exact(&full_disk_sqlite().await);
}

#[tokio::test]
async fn hostile_invalid_json_fails_the_windows() {
    assert_exact(&hostile_invalid_json(Scale::SMALL).await);
}

#[tokio::test]
async fn hostile_50_mb_bodies_are_read_in_bounded_memory() {
    assert_exact(&hostile_huge_body(Scale::SMALL).await);
}

#[tokio::test]
async fn hostile_401_forever_exits_3() {
    assert_exact(&hostile_unauthorized(Scale::SMALL).await);
}

#[tokio::test]
async fn hostile_buckets_outside_the_window_are_refused() {
    assert_exact(&hostile_outside_window(Scale::SMALL).await);
}

#[tokio::test]
async fn hostile_absurd_retry_after_gives_up_at_once() {
    assert_exact(&hostile_absurd_retry_after(Scale::SMALL).await);
}

#[tokio::test]
async fn hostile_one_long_retry_after_under_a_short_deadline_does_not_starve() {
    assert_exact(&hostile_one_long_retry_after(Scale::SMALL).await);
}

#[tokio::test]
async fn hostile_token_expiring_at_once_is_not_fetched_per_request() {
    assert_exact(&hostile_token_expires_at_once(Scale::SMALL).await);
}

// Case 8: a Parquet folder read again by runs with other windows, at once, and in another zone.

/// One run into `parquet:DIR` of the long extraction in `zone` with `extra` flags.
fn parquet_run(sim: &Sim, dir: &std::path::Path, zone: &'static str, extra: &[&str]) -> std::process::Command {
    let extraction = Extraction { time_zone: zone, ..long_extraction() };
    let mut cmd = sim.cli(&["extract", "--out", &format!("parquet:{}", dir.display())]);
    cmd.args(extraction.args()).args(extra);
    cmd
}

/// The probe's sequences that once stored grains twice: a `--refetch` with smaller windows, two
/// runs at once with other `--max-window`s, a run in another time zone with the same buckets.
/// The folder, read as one table, equals the truth after them.
pub(crate) async fn parquet_overlapping_writers() -> ChaosRow {
    let started = Instant::now();
    let sim = fast_sim().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pq");
    let mut exits = vec![expect_exit(&run(parquet_run(&sim, &dir, "UTC", &[])).await, 0)];
    exits.push(expect_exit(&run(parquet_run(&sim, &dir, "UTC", &["--refetch", "--max-window", "PT6H"])).await, 0));
    let (a, b) = tokio::join!(
        run(parquet_run(&sim, &dir, "UTC", &["--refetch", "--max-window", "P3D"])),
        run(parquet_run(&sim, &dir, "UTC", &["--refetch", "--max-window", "PT4H"]))
    );
    exits.extend([expect_exit(&a, 0), expect_exit(&b, 0)]);
    // Iceland keeps UTC all year: the same buckets under another fingerprint.
    exits.push(expect_exit(&run(parquet_run(&sim, &dir, "Atlantic/Reykjavik", &["--refetch"])).await, 0));
    let extraction = long_extraction();
    let difference = differing_lines(&parquet_long_csv(&dir, "default", &extraction), &extraction.truth_csv(&sim));
    ChaosRow {
        case: "parquet: re-read with other windows, at once, in another zone".to_owned(),
        faults: 4,
        exit: "0, 0, 0+0, 0".to_owned(),
        requests: sim.requests(),
        retries: exits.iter().map(|e| retries_of(e)).sum(),
        difference,
        note: format!("{} window files, each grain once", window_files(&dir).len()),
        elapsed: started.elapsed(),
        bound: None,
    }
}

// Case 9: `report --out` aimed at what is not a regular file.

/// A report written through a link to `/dev/null`, into a FIFO with a reader, and to `-`: the
/// device, the link and the FIFO stay what they were, and the page arrives where it was sent.
/// The difference counts the targets replaced and the pages that did not arrive.
pub(crate) async fn report_to_devices() -> ChaosRow {
    use std::os::unix::fs::FileTypeExt;
    let started = Instant::now();
    let sim = fast_sim().await;
    let work = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", work.path().join("r.db").display());
    let stored = expect_exit(&run(extract_fast(&sim, &db)).await, 0);
    let report = |out: &std::path::Path| clean_cli(&["report", "--db", &db, "--out", &out.display().to_string()]);
    let mut difference = 0;
    let null_link = work.path().join("null.html");
    std::os::unix::fs::symlink("/dev/null", &null_link).unwrap();
    let mut exits = vec![run(report(&null_link)).await.status.code().unwrap_or(-1)];
    difference += u64::from(!std::fs::symlink_metadata(&null_link).unwrap().file_type().is_symlink());
    difference += u64::from(!std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    let fifo = work.path().join("pipe.html");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    exits.push(run(report(&fifo)).await.status.code().unwrap_or(-1));
    difference += u64::from(!reader.join().unwrap().starts_with("<!DOCTYPE html>"));
    difference += u64::from(!std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let mut to_stdout = report(std::path::Path::new("-"));
    to_stdout.current_dir(work.path());
    let out = run(to_stdout).await;
    exits.push(out.status.code().unwrap_or(-1));
    difference += u64::from(!text(&out.stdout).starts_with("<!DOCTYPE html>"));
    difference += u64::from(work.path().join("-").exists());
    difference += exits.iter().filter(|code| **code != 0).count() as u64;
    ChaosRow {
        case: "report --out: a link to /dev/null, a FIFO, -".to_owned(),
        faults: 3,
        exit: exits.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", "),
        requests: sim.requests(),
        retries: retries_of(&stored),
        difference,
        note: "written through, nothing replaced".to_owned(),
        elapsed: started.elapsed(),
        bound: None,
    }
}

#[tokio::test]
async fn parquet_re_read_by_overlapping_writers_holds_each_grain_once() {
    assert_exact(&parquet_overlapping_writers().await);
}

#[tokio::test]
async fn a_report_aimed_at_devices_fifos_and_stdout_replaces_nothing() {
    assert_exact(&report_to_devices().await);
}

/// The table of every case.
pub(crate) fn render(scale: Scale, rows: &[ChaosRow]) -> String {
    let width = rows.iter().map(|r| r.case.len()).max().unwrap_or(4).max(4);
    let exit_width = rows.iter().map(|r| r.exit.len()).max().unwrap_or(4).max(4);
    let mut out = format!("chaos ({} scale)\n", scale.name);
    out += &format!(
        "{:<width$}  {:>6}  {:<exit_width$}  {:>8}  {:>7}  {:>10}  {:>7}  {:>6}  note\n",
        "case", "faults", "exit", "requests", "retries", "difference", "time", "bound"
    );
    for r in rows {
        let bound = r.bound.map_or("-".to_owned(), |b| format!("<{}s", b.as_secs()));
        out += &format!(
            "{:<width$}  {:>6}  {:<exit_width$}  {:>8}  {:>7}  {:>10}  {:>6.1}s  {:>6}  {}\n",
            r.case,
            r.faults,
            r.exit,
            r.requests,
            r.retries,
            r.difference,
            r.elapsed.as_secs_f64(),
            bound,
            r.note
        );
    }
    out
}

#[test]
fn the_table_has_a_line_per_row() {
    let row = ChaosRow {
        case: "a case".to_owned(),
        faults: 3,
        exit: "4, 0".to_owned(),
        requests: 12,
        retries: 2,
        difference: 0,
        note: "a note".to_owned(),
        elapsed: Duration::from_millis(1500),
        bound: Some(Duration::from_secs(30)),
    };
    let other = ChaosRow { case: "another".to_owned(), note: "exact".to_owned(), bound: None, ..row.clone() };
    let table = render(Scale::SMALL, &[row, other]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "{table}");
    assert_eq!(lines[0], "chaos (small scale)");
    assert!(lines[1].starts_with("case   ") && lines[1].ends_with("bound  note"), "{table}");
    assert!(lines[2].starts_with("a case") && lines[2].contains("  4, 0  ") && lines[2].ends_with("<30s  a note"));
    assert!(lines[3].starts_with("another") && lines[3].ends_with("exact"), "{table}");
}

/// Every case at the scale `GENESYS_CHAOS` names, and the table; run by `cargo xtask chaos`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_table() {
    let Some(scale) = Scale::requested() else {
        println!("chaos_table: GENESYS_CHAOS is not set, so the cases ran as tests of their own; `cargo xtask chaos` prints the table");
        return;
    };
    let rows = vec![
        faults(scale).await,
        jobs_truncated(scale).await,
        kills_sqlite(scale).await,
        kills_postgres(scale).await,
        silent_api(scale).await,
        postgres_restart_cli(scale).await,
        postgres_restart_daemon(scale).await,
        status_permission_missing_daemon(scale).await,
        full_disk_csv().await,
        full_disk_parquet().await,
        full_disk_sqlite().await,
        parquet_overlapping_writers().await,
        report_to_devices().await,
        hostile_invalid_json(scale).await,
        hostile_huge_body(scale).await,
        hostile_unauthorized(scale).await,
        hostile_outside_window(scale).await,
        hostile_absurd_retry_after(scale).await,
        hostile_one_long_retry_after(scale).await,
        hostile_token_expires_at_once(scale).await,
    ];
    let table = render(scale, &rows);
    println!("{table}");
    assert!(rows.iter().all(|r| r.difference == 0), "every case equals the truth:\n{table}");
}
