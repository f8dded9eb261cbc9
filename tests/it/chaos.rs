//! The fault suite: each case injects faults (503s, truncated bodies, expiring tokens, a rate limit,
//! `kill -9`, a server that never answers), lets the real binary finish, and compares what it stored
//! with the simulator's truth. Each case returns a [`ChaosRow`]; `difference` (lines that differ
//! from the truth) must be 0.
//!
//! Every case is a test of its own at the small scale (the fast subset of the normal tests), and
//! `chaos_table` runs them all at the current scale ([`Scale::current`]: large when
//! `GENESYS_CHAOS=full`, as `cargo xtask chaos` sets it) and prints the table.

use std::collections::HashMap;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use intervals_sim::SimConfig;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::extract_truth::{pg_url, postgres_long_csv, sqlite_long_csv};
use crate::hostile::silent_server;
use crate::resume::extract_and_kill;
use crate::support::{clean_cli, expect_exit, run, Extraction, Sim, CLIENT_ID, CLIENT_SECRET};

const MIXED: &str = "tHandle,tAcw,tHeldComplete,tTalkComplete,nConnected,tAgentRoutingStatus,tSystemPresence";

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
    /// How many `kill -9`, and after how many windows written (by that run) each comes.
    kills: &'static [usize],
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
        kills: &[2, 3],
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
        kills: &[1, 2, 3, 4, 5, 1, 2, 3, 4, 5],
    };

    pub(crate) fn current() -> Scale {
        match std::env::var("GENESYS_CHAOS").as_deref() {
            Ok("full") => Scale::FULL,
            _ => Scale::SMALL,
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub(crate) struct ChaosRow {
    pub(crate) case: String,
    /// Faults injected: 503s, truncated bodies, 401s of expired tokens, kills, hung windows.
    pub(crate) faults: u64,
    /// HTTP requests the simulator received, over every run of the case.
    pub(crate) requests: u64,
    /// Retries the client reported (`requests: N (R retries, ...)` of the summaries).
    pub(crate) retries: u64,
    /// Lines that differ between what was stored and the truth (0 expected).
    pub(crate) difference: u64,
    /// What else the case measured.
    pub(crate) note: String,
    pub(crate) elapsed: Duration,
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

/// The retries a run's summary reports: `  requests: N (R retries, L rate-limited) in ...`.
fn retries_of(stderr: &str) -> u64 {
    stderr
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("requests: "))
        .and_then(|rest| rest.split_once('(')?.1.split_once(" retries").map(|(n, _)| n.trim().parse().ok()))
        .flatten()
        .unwrap_or_else(|| panic!("no `requests:` line in the summary:\n{stderr}"))
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
        requests: stats.requests,
        retries: retries_of(&stderr),
        difference,
        note: format!(
            "{} 503, {} truncated, {} 401, {} tokens, {} 429",
            stats.service_unavailable, stats.truncated, stats.unauthorized, stats.token_requests, stats.rate_limited
        ),
        elapsed: started.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------------
// Case 2: kill -9 at several moments, then a run to the end.

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
    // The latency leaves the kill, which follows a `window written` line, time to land before the
    // next window is written.
    Sim::start(SimConfig {
        agents: scale.agents,
        seed: 11,
        latency: Duration::from_millis(100),
        ..SimConfig::default()
    })
    .await
}

/// Kills the extraction into `out` after each of `scale.kills` windows, then runs it to the end;
/// returns the row with its difference still to be measured.
async fn kill_then_finish(scale: Scale, sim: &Sim, out: &str, what: &str) -> ChaosRow {
    let started = Instant::now();
    let extraction = kill_extraction(scale);
    let windows = kill_windows(scale);
    assert!(scale.kills.iter().sum::<usize>() < windows as usize, "the kills leave work for the last run");
    for &after in scale.kills {
        extract_and_kill(sim, &extraction, out, after).await;
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
    ChaosRow {
        case: format!("kill -9 x{kills}, mixed -> {what}, then a last run"),
        faults: kills,
        requests: stats.requests,
        retries: retries_of(&stderr),
        difference: 0,
        note: format!(
            "{sent} aggregate requests for {windows} windows: {extra} extra; {} logins",
            stats.token_requests
        ),
        elapsed: started.elapsed(),
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
    assert!(hung_for < Duration::from_secs(30), "bounded by the 2 s deadline: {hung_for:?}\n{stderr}");
    let failed = stderr.lines().filter(|l| l.contains("FAILED")).count() as u64;
    assert!(failed > 0, "{stderr}");
    let mut retries = retries_of(&stderr);
    // Nothing was stored: the output holds no row (an empty long CSV is its header alone).
    let empty = sqlite_long_csv(&db, &extraction).await;
    let mut difference = differing_lines(&empty, &(empty.lines().next().unwrap_or("").to_owned() + "\n"));

    let mut again = sim.cli(&["extract", "--out", &out]);
    again.args(extraction.args());
    let stderr = expect_exit(&run(again).await, 0);
    retries += retries_of(&stderr);
    difference += differing_lines(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim));
    ChaosRow {
        case: "API never answers (2 s deadline) -> sqlite, then a run".to_owned(),
        faults: failed,
        requests: sim.requests(),
        retries,
        difference,
        note: format!("exit 1 after {:.1} s, nothing stored", hung_for.as_secs_f64()),
        elapsed: started.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------------
// The tests.

#[track_caller]
fn assert_exact(row: &ChaosRow) {
    assert_eq!(row.difference, 0, "{row:?}");
}

#[tokio::test]
async fn faults_into_sqlite_are_exact() {
    assert_exact(&faults(Scale::SMALL).await);
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

/// The table of every case at the current scale.
pub(crate) fn render(scale: Scale, rows: &[ChaosRow]) -> String {
    let width = rows.iter().map(|r| r.case.len()).max().unwrap_or(4).max(4);
    let mut out = format!("chaos ({} scale)\n", scale.name);
    out += &format!(
        "{:<width$}  {:>6}  {:>8}  {:>7}  {:>10}  {:>7}  note\n",
        "case", "faults", "requests", "retries", "difference", "time"
    );
    for r in rows {
        out += &format!(
            "{:<width$}  {:>6}  {:>8}  {:>7}  {:>10}  {:>6.1}s  {}\n",
            r.case,
            r.faults,
            r.requests,
            r.retries,
            r.difference,
            r.elapsed.as_secs_f64(),
            r.note
        );
    }
    out
}

#[tokio::test]
async fn chaos_table() {
    let scale = Scale::current();
    let rows =
        vec![faults(scale).await, kills_sqlite(scale).await, kills_postgres(scale).await, silent_api(scale).await];
    let table = render(scale, &rows);
    println!("{table}");
    assert!(rows.iter().all(|r| r.difference == 0), "every case equals the truth:\n{table}");
}
