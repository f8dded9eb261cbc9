//! The same extraction into every output, side by side: CPU, peak RSS and bytes per stored metric
//! value of `extract` into CSV, SQLite, Parquet and (with DATABASE_URL) PostgreSQL.
//!
//! ```text
//! cargo xtask bench outputs_bench [-- --agents 1000 --days 30]
//! cargo run --release -p intervals-adapters --example outputs_bench -- [--agents N] [--days D]
//!     [--rounds 3] [--outputs csv,sqlite,parquet,postgres] [--metrics ...] [--concurrency 4]
//! ```
//! Also from OUTPUTS_BENCH_AGENTS, _DAYS, _ROUNDS, _OUTPUTS, _METRICS, _CONCURRENCY (flags win).
//! Metrics: the CLI's default conversation metrics (tHandle, tAcw, tHeldComplete, tTalkComplete,
//! nConnected) by userId and mediaType, PT30M, UTC, day windows, 4 at a time, no pacing.
//!
//! The simulator runs in this process, on a thread of its own. Each extraction runs in a child
//! process (this program started again), as `genesys-intervals extract --out URL` would: the Genesys
//! client behind the retry loop, the `Ingestor`, the output opened through the output registry. So
//! the child's CPU (user + system, every thread, its whole life: startup is a few milliseconds) and
//! its peak resident set (VmHWM) are the extraction's alone, the simulator's not in them. For
//! PostgreSQL the server's work is elsewhere: "server CPU" is the CPU of the child's backends (read
//! from /proc before the child disconnects, so only for a server on this machine).
//!
//! Bytes per value: what the output holds on disk after the run, divided by the metric values
//! written: the CSV file; the SQLite file (its -wal is checkpointed at the end); every Parquet file;
//! for PostgreSQL every table of the database with its indexes and TOAST
//! (`pg_total_relation_size`). Each round runs every output once, alternating; the table shows each
//! output's round with the least CPU and the spread over the rounds.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{Result, Scratch, SimThread};

/// The variable that makes this program the child: `URL|BASE_URL|DAYS|METRICS|CONCURRENCY`.
const CHILD: &str = "OUTPUTS_BENCH_CHILD";

#[derive(Clone, Debug)]
struct Line {
    rows: u64,
    cpu: Duration,
    server: Option<Duration>,
    wall: Duration,
    peak_rss_mib: f64,
    bytes: u64,
}

/// The child: one extraction, then `RESULT rows cpu_ms peak_kib server_ms` on stdout.
async fn child(spec: &str) -> Result<()> {
    let parts: Vec<&str> = spec.split('|').collect();
    let [url, base_url, days, metrics, concurrency] = parts[..] else {
        return Err(format!("{CHILD}: bad value {spec:?}").into());
    };
    let queries = support::queries(metrics)?;
    let client = support::client(base_url)?;
    client.authenticate().await?;
    let plan = support::plan(days.parse()?)?;
    let target = support::open_target(url, &queries).await?;
    let report = support::ingest(&client, target, &queries, &plan, concurrency.parse()?).await?;
    let server = if url.starts_with("postgres") { backends_cpu(url).await? } else { Duration::ZERO };
    let cpu = support::process_cpu();
    let peak = support::peak_rss_mib();
    println!("RESULT {} {} {} {}", report.rows, cpu.as_millis(), (peak * 1024.0) as u64, server.as_millis());
    Ok(())
}

/// CPU of the backends connected to the database of `url` (this process's, while still connected).
async fn backends_cpu(url: &str) -> Result<Duration> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(url).await?;
    let pids: Vec<i32> = sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut conn)
    .await?;
    Ok(pids.into_iter().filter_map(|p| u32::try_from(p).ok()).filter_map(support::postgres_cpu).sum())
}

fn disk_bytes(path: &Path) -> u64 {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            std::fs::read_dir(path).map(|entries| entries.flatten().map(|e| disk_bytes(&e.path())).sum()).unwrap_or(0)
        }
        Ok(m) => m.len(),
        Err(_) => 0,
    }
}

/// One extraction of `days` into a new store of `output`, in a child process.
async fn run(sim: &SimThread, output: &str, days: usize, metrics: &str, concurrency: usize) -> Result<Line> {
    let dir = tempfile::tempdir()?;
    let mut scratch = None;
    let (url, path) = match output {
        "csv" => (format!("csv:{}", dir.path().join("x.csv").display()), Some(dir.path().to_path_buf())),
        "sqlite" => (format!("sqlite:{}", dir.path().join("x.db").display()), Some(dir.path().to_path_buf())),
        "parquet" => (format!("parquet:{}", dir.path().join("p").display()), Some(dir.path().to_path_buf())),
        "postgres" => {
            let admin = support::database_url().ok_or("postgres needs DATABASE_URL")?;
            let s = Scratch::create(&admin, "outputs_bench").await?;
            let url = s.url().to_owned();
            scratch = Some(s);
            (url, None)
        }
        other => return Err(format!("unknown output {other} (csv, sqlite, parquet, postgres)").into()),
    };
    let spec = format!("{url}|{}|{days}|{metrics}|{concurrency}", sim.base_url());
    let started = Instant::now();
    let out = Command::new(std::env::current_exe()?).env(CHILD, spec).output()?;
    let wall = started.elapsed();
    if !out.status.success() {
        return Err(format!("{output}: the child failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find_map(|l| l.strip_prefix("RESULT ")).ok_or("the child printed no RESULT")?;
    let n: Vec<u64> = line.split_whitespace().map(str::parse).collect::<std::result::Result<_, _>>()?;
    let bytes = match (&path, scratch.as_ref()) {
        (Some(p), _) => disk_bytes(p),
        (None, Some(s)) => {
            use sqlx::Connection;
            let mut conn = sqlx::PgConnection::connect(s.url()).await?;
            let size: i64 = sqlx::query_scalar(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::int8 FROM pg_class AS c \
                 JOIN pg_namespace AS n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'm')",
            )
            .fetch_one(&mut conn)
            .await?;
            size as u64
        }
        _ => 0,
    };
    if let Some(s) = scratch {
        s.drop().await;
    }
    Ok(Line {
        rows: n[0],
        cpu: Duration::from_millis(n[1]),
        peak_rss_mib: n[2] as f64 / 1024.0,
        server: (output == "postgres").then(|| Duration::from_millis(n[3])),
        wall,
        bytes,
    })
}

fn main() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    if let Ok(spec) = std::env::var(CHILD) {
        return runtime.block_on(child(&spec));
    }
    runtime.block_on(parent())
}

async fn parent() -> Result<()> {
    let args =
        support::Args::parse("outputs_bench", &["agents", "days", "rounds", "outputs", "metrics", "concurrency"])?;
    let agents = args.number("agents", "OUTPUTS_BENCH_AGENTS", 1_000)?;
    let days = args.number("days", "OUTPUTS_BENCH_DAYS", 30)?;
    let rounds = args.number("rounds", "OUTPUTS_BENCH_ROUNDS", 3)?;
    let concurrency = args.number("concurrency", "OUTPUTS_BENCH_CONCURRENCY", support::CONCURRENCY)?;
    let metrics = args.get("metrics", "OUTPUTS_BENCH_METRICS", support::CONVERSATION);
    let default_outputs =
        if support::database_url().is_some() { "csv,sqlite,parquet,postgres" } else { "csv,sqlite,parquet" };
    let outputs = args.get("outputs", "OUTPUTS_BENCH_OUTPUTS", default_outputs);
    let outputs: Vec<&str> = outputs.split(',').map(str::trim).filter(|o| !o.is_empty()).collect();

    let sim = SimThread::start(agents)?;
    let mut lines: Vec<Vec<Line>> = vec![Vec::new(); outputs.len()];
    for round in 1..=rounds {
        for (i, output) in outputs.iter().enumerate() {
            eprintln!("outputs_bench: round {round}/{rounds}, {output}");
            lines[i].push(run(&sim, output, days, &metrics, concurrency).await?);
        }
    }
    sim.stop();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "outputs_bench: {agents} agents x {days} days, metrics {metrics} by userId,mediaType, PT30M, UTC, day windows, \
         {concurrency} at a time; each extraction in a child process (the simulator's CPU and memory not in it); \
         best of {rounds} round(s) by CPU; nproc = {cores}"
    );
    let csv_cpu =
        outputs.iter().position(|o| *o == "csv").map(|i| lines[i].iter().map(|l| l.cpu).min().unwrap_or_default());
    println!(
        "| output | metric values | CPU s (rounds) | x CSV | server CPU s | wall s | peak RSS MiB (rounds) | bytes on disk | bytes per value |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (output, of) in outputs.iter().zip(&lines) {
        let best = of.iter().min_by_key(|l| l.cpu).expect("one round at least");
        let worst = of.iter().map(|l| l.cpu).max().unwrap_or_default();
        let rss_min = of.iter().map(|l| l.peak_rss_mib).fold(f64::INFINITY, f64::min);
        let rss_max = of.iter().map(|l| l.peak_rss_mib).fold(0.0, f64::max);
        let ratio = csv_cpu
            .filter(|c| !c.is_zero())
            .map_or("-".to_owned(), |c| format!("{:.2}x", best.cpu.as_secs_f64() / c.as_secs_f64()));
        // Zero when the server's processes are not visible here (another machine or container).
        let server = best.server.filter(|s| !s.is_zero()).map_or("-".to_owned(), |s| format!("{:.2}", s.as_secs_f64()));
        println!(
            "| {output} | {} | {:.2} ({:.2}-{:.2}) | {ratio} | {server} | {:.2} | {rss_min:.0} ({rss_min:.0}-{rss_max:.0}) | {} | {:.1} |",
            best.rows,
            best.cpu.as_secs_f64(),
            best.cpu.as_secs_f64(),
            worst.as_secs_f64(),
            best.wall.as_secs_f64(),
            best.bytes,
            best.bytes as f64 / best.rows.max(1) as f64,
        );
    }
    Ok(())
}
