//! One year x 1,000 agents into PostgreSQL through the daemon's backfill (`docs/benchmarks.md`,
//! "One year x 1,000 agents into PostgreSQL").
//!
//! The daemon runs in this process exactly as `genesys-intervalsd` wires it (`Daemon::start` opens
//! the store from the config's `database_url`, the Genesys client behind the retry loop, one
//! window at a time, on a current-thread runtime as its `main.rs` builds), ticked by hand: one tick backfills the first `--early` days, a second one the
//! rest of `--days`. The simulator runs in a child process (this same executable, re-run with
//! `SCALE_BENCH_SIM_AGENTS` set), so that this process's CPU and peak RSS are the daemon's alone;
//! the default conversation metrics, PT30M, UTC, no rate limit, on loopback.
//!
//! Printed: rows (metric values) per second end to end, the daemon's CPU (user + system, from
//! `/proc/self/stat`) per value, the PostgreSQL backends' CPU (`/proc/<pid>/stat` of the backends
//! connected to the benchmark's database: a server on this machine only), peak RSS (`VmHWM`, reset
//! per phase through `/proc/self/clear_refs`) and RSS sampled through the run, table and index
//! sizes, bytes per stored metric value, the time of a one-day window replace at the start of the
//! year (table small) and at both ends once the year is stored (re-written with the same values,
//! and with every value changed), and what reading the responses alone costs (HTTP and parsing into
//! rows, no sink), for the share of CPU and memory that is parsing.
//!
//! ```text
//! cargo xtask bench scale_bench                         # 365 days x 1,000 agents, about 5 minutes
//! cargo xtask bench scale_bench -- --days 30 --agents 200
//! DATABASE_URL=postgres://... cargo run --release -p intervals-daemon --example scale_bench -- --keep 1
//! ```
//!
//! Flags (or `SCALE_BENCH_DAYS`, `_AGENTS`, `_EARLY`, `_ROUNDS`, `_SAMPLE`, `_FIRST`, `_KEEP`):
//! `--days` (365), `--agents` (1000), `--early` (7: days stored before the first replace), `--rounds`
//! (3 replaces of each kind, the median shown), `--sample` (7: days read without a sink), `--first`
//! (2025-01-06), `--keep` (0; 1 keeps the database), `--memory N` (instead of the backfill: N days
//! read and written one at a time through the same client and sink, with RSS and peak RSS after
//! the read and after the write of each: where the daemon's memory goes). Unknown flags are
//! ignored with a note (`cargo xtask bench -- ARGS` passes the same ARGS to every benchmark).

use std::collections::HashMap;
use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use intervals_adapters::genesys::{GenesysClient, GenesysConfig, Secret};
use intervals_app::daemon::OrgStats;
use intervals_app::{CheckpointedSink, MetricSource, Pacer, WindowKey};
use intervals_daemon::{Daemon, DaemonSettings, RunOptions, TickMode};
use intervals_domain::{AggregateQuery, MetricRow, Stats, TimeWindow};
use sqlx::Connection;
use tokio::sync::{oneshot, watch};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

const BENCH: &str = "scale_bench";
const ORG: &str = "bench";
const SIM_ENV: &str = "SCALE_BENCH_SIM_AGENTS";
const SIM_ID: &str = "bench-client";
const SIM_SECRET: &str = "bench-secret";
const KNOWN: &[&str] = &["days", "agents", "early", "rounds", "sample", "first", "keep", "memory"];

fn main() -> Result<()> {
    if let Ok(agents) = std::env::var(SIM_ENV) {
        return serve_simulator(agents.parse()?);
    }
    let args = Args::parse()?;
    // The daemon's `main.rs` runs a current-thread runtime; `SCALE_BENCH_RUNTIME=multi` (a thread
    // per core) or `=N` (N worker threads) measures the others.
    let runtime = match std::env::var("SCALE_BENCH_RUNTIME").as_deref() {
        Ok("multi") => tokio::runtime::Builder::new_multi_thread().enable_all().build()?,
        Ok(n) if n.parse::<usize>().is_ok() => {
            tokio::runtime::Builder::new_multi_thread().worker_threads(n.parse()?).enable_all().build()?
        }
        _ => tokio::runtime::Builder::new_current_thread().enable_all().build()?,
    };
    runtime.block_on(run(args))
}

// ---------------------------------------------------------------------------------------------
// Arguments

struct Args {
    days: u32,
    agents: usize,
    early: u32,
    rounds: usize,
    sample: u32,
    first: NaiveDate,
    keep: bool,
    /// Days read and written one by one, with RSS after each step, instead of the backfill.
    memory: u32,
}

impl Args {
    fn parse() -> Result<Args> {
        let mut given = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            let name = flag.trim_start_matches('-').to_owned();
            if KNOWN.contains(&name.as_str()) {
                given.insert(name, value);
            } else {
                eprintln!("{BENCH}: ignoring {flag} {value} (known: --{})", KNOWN.join(", --"));
            }
        }
        let get = |name: &str, default: &str| -> String {
            given
                .get(name)
                .cloned()
                .or_else(|| std::env::var(format!("SCALE_BENCH_{}", name.to_uppercase())).ok())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
        };
        let number = |name: &str, default: &str| -> Result<u64> {
            let text = get(name, default);
            text.parse::<u64>().map_err(|_| format!("--{name}: not a number: {text:?}").into())
        };
        let args = Args {
            days: number("days", "365")? as u32,
            agents: number("agents", "1000")? as usize,
            early: number("early", "7")? as u32,
            rounds: number("rounds", "3")?.max(1) as usize,
            sample: number("sample", "7")? as u32,
            first: NaiveDate::parse_from_str(&get("first", "2025-01-06"), "%Y-%m-%d")?,
            keep: number("keep", "0")? != 0,
            memory: number("memory", "0")? as u32,
        };
        if args.days < 2 || args.early == 0 || args.early >= args.days || args.agents == 0 {
            return Err("need --days >= 2, 1 <= --early < --days and --agents >= 1".into());
        }
        Ok(args)
    }
}

// ---------------------------------------------------------------------------------------------
// The simulator, in a child process

/// The child: a simulator of `agents` agents without a rate limit; prints its URL, serves until
/// its standard input closes, then prints its own CPU.
fn serve_simulator(agents: usize) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let config = intervals_sim::SimConfig {
            agents,
            rate_per_minute: 0,
            client_id: SIM_ID.to_owned(),
            client_secret: SIM_SECRET.to_owned(),
            ..intervals_sim::SimConfig::default()
        };
        let sim = intervals_sim::spawn(config, 0).await?;
        println!("{}", sim.base_url());
        std::io::stdout().flush()?;
        tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut sink);
        })
        .await?;
        println!("cpu {}", process_cpu().as_secs_f64());
        sim.shutdown().await;
        Ok(())
    })
}

struct SimChild {
    child: Child,
    url: String,
}

impl SimChild {
    fn start(agents: usize) -> Result<SimChild> {
        let mut child = Command::new(std::env::current_exe()?)
            .env(SIM_ENV, agents.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        BufReader::new(child.stdout.as_mut().ok_or("no stdout")?).read_line(&mut line)?;
        let url = line.trim().to_owned();
        if !url.starts_with("http://") {
            let _ = child.kill();
            return Err(format!("the simulator did not start: {line:?}").into());
        }
        Ok(SimChild { child, url })
    }

    /// Stops the simulator; returns its CPU.
    fn stop(mut self) -> Duration {
        drop(self.child.stdin.take());
        let mut out = String::new();
        if let Some(stdout) = self.child.stdout.as_mut() {
            let _ = stdout.read_to_string(&mut out);
        }
        let _ = self.child.wait();
        out.lines()
            .find_map(|l| l.strip_prefix("cpu ")?.trim().parse::<f64>().ok())
            .map_or(Duration::ZERO, Duration::from_secs_f64)
    }
}

// ---------------------------------------------------------------------------------------------
// /proc

/// One tick of `utime`/`stime` (USER_HZ = 100).
const TICK: Duration = Duration::from_millis(10);

fn stat_cpu(text: &str) -> Option<(String, Duration)> {
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((text[open + 1..close].to_owned(), TICK * ticks as u32))
}

/// User + system CPU of this process, every thread.
fn process_cpu() -> Duration {
    std::fs::read_to_string("/proc/self/stat").ok().and_then(|t| stat_cpu(&t)).map_or(Duration::ZERO, |(_, c)| c)
}

fn postgres_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_cpu(&text).filter(|(name, _)| name.starts_with("postgres")).map(|(_, c)| c)
}

fn status_mib(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Resets `VmHWM` to the current RSS (Linux 4.0+); false when not possible.
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

/// Samples RSS every 200 ms while a phase runs: the largest value in each tenth of the phase's
/// progress (days written), to show whether memory grows with the range.
struct RssSampler {
    stop: Arc<AtomicBool>,
    progress: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Vec<f64>>>,
}

impl RssSampler {
    fn start(total: u64) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicU64::new(0));
        let (s, p) = (Arc::clone(&stop), Arc::clone(&progress));
        let thread = std::thread::spawn(move || {
            let mut tenths = vec![0.0f64; 10];
            while !s.load(Ordering::Relaxed) {
                let done = p.load(Ordering::Relaxed).min(total.saturating_sub(1));
                let tenth = (done * 10 / total.max(1)) as usize;
                let rss = status_mib("VmRSS:");
                if rss > tenths[tenth.min(9)] {
                    tenths[tenth.min(9)] = rss;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
            tenths
        });
        RssSampler { stop, progress, thread: Some(thread) }
    }

    fn finish(mut self) -> Vec<f64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok()).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// The benchmark's own database in the cluster of `DATABASE_URL`, and the CPU of its backends.
struct Scratch {
    admin: sqlx::PgConnection,
    name: String,
    url: String,
    version: String,
    /// CPU of each backend when first seen in the current phase (0 for one that started in it).
    baseline: HashMap<u32, Duration>,
    /// CPU of each backend when last seen.
    last: HashMap<u32, Duration>,
}

impl Scratch {
    async fn create(admin_url: &str) -> Result<Scratch> {
        let mut admin = sqlx::PgConnection::connect(admin_url).await?;
        let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&mut admin).await?;
        let name = format!("scale_bench_{}", std::process::id());
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
        let url = with_database(admin_url, &name)?;
        Ok(Scratch { admin, name, url, version, baseline: HashMap::new(), last: HashMap::new() })
    }

    async fn backends(&mut self) -> Result<HashMap<u32, Duration>> {
        let pids: Vec<i32> = sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1")
            .bind(&self.name)
            .fetch_all(&mut self.admin)
            .await?;
        Ok(pids.into_iter().filter_map(|p| u32::try_from(p).ok()).filter_map(|p| Some((p, postgres_cpu(p)?))).collect())
    }

    /// Starts counting the backends' CPU for a phase.
    async fn phase_start(&mut self) -> Result<()> {
        self.baseline = self.backends().await?;
        self.last = self.baseline.clone();
        Ok(())
    }

    /// Notes the backends' CPU now (a backend that ends between two looks loses what it used since
    /// the last one: look often).
    async fn look(&mut self) -> Result<()> {
        for (pid, cpu) in self.backends().await? {
            self.baseline.entry(pid).or_insert(Duration::ZERO);
            self.last.insert(pid, cpu);
        }
        Ok(())
    }

    fn phase_cpu(&self) -> Duration {
        self.last.iter().map(|(pid, cpu)| cpu.saturating_sub(self.baseline.get(pid).copied().unwrap_or_default())).sum()
    }

    async fn drop(mut self) {
        let _ =
            sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut self.admin).await;
    }
}

/// `url` with its database replaced by `name` (query string kept).
fn with_database(url: &str, name: &str) -> Result<String> {
    let scheme_end = url.find("://").ok_or("DATABASE_URL is not a URL")? + 3;
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let path_start = base[scheme_end..].find('/').map_or(base.len(), |p| scheme_end + p);
    Ok(format!("{}/{name}{query}", &base[..path_start]))
}

// ---------------------------------------------------------------------------------------------
// The daemon

fn daemon_settings(db_url: &str, sim_url: &str, from: NaiveDate, to: NaiveDate) -> Result<DaemonSettings> {
    let text = format!(
        "database_url = \"{db_url}\"\nlisten = \"127.0.0.1:0\"\n\n[[org]]\nlabel = \"{ORG}\"\n\
         api_url = \"{sim_url}\"\nlogin_url = \"{sim_url}\"\n\
         client_id_env = \"SCALE_BENCH_ID\"\nclient_secret_env = \"SCALE_BENCH_SECRET\"\n\
         backfill_from = \"{from}\"\nbackfill_to = \"{to}\"\nlookback_hours = 0\ndaily_lookback_days = 0\n"
    );
    let env = |name: &str| match name {
        "SCALE_BENCH_ID" => Some(SIM_ID.to_owned()),
        "SCALE_BENCH_SECRET" => Some(SIM_SECRET.to_owned()),
        _ => None,
    };
    DaemonSettings::parse(&text, &env).map_err(|e| format!("{e}").into())
}

/// What one phase of backfill cost.
struct Phase {
    days: u32,
    windows: u64,
    values: u64,
    wall: Duration,
    cpu: Duration,
    server_cpu: Duration,
    peak_mib: f64,
    rss_tenths: Vec<f64>,
}

/// Starts the daemon backfilling `[from, to)`, ticks it once, waits for the tick, stops it.
async fn backfill(scratch: &mut Scratch, sim_url: &str, from: NaiveDate, to: NaiveDate) -> Result<Phase> {
    let settings = daemon_settings(&scratch.url, sim_url, from, to)?;
    let days = (to - from).num_days() as u32;
    scratch.phase_start().await?;
    let peak_reset = reset_peak();
    let sampler = RssSampler::start(u64::from(days));
    let (cpu0, t0) = (process_cpu(), Instant::now());

    let (tick_tx, tick_rx) = watch::channel(0u64);
    let mut options = RunOptions::new("scale-bench");
    options.ticks = TickMode::Manual(tick_rx);
    let daemon = Daemon::start(settings, options).await.map_err(|e| e.to_string())?;
    let stats: Arc<OrgStats> = daemon.org_stats().remove(0);
    let before = stats.snapshot();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(daemon.run(async move {
        let _ = stop_rx.await;
    }));
    tick_tx.send_modify(|n| *n += 1);
    let ticked = stats.wait_until(|s| s.ticks > before.ticks);
    tokio::pin!(ticked);
    let mut looks = tokio::time::interval(Duration::from_secs(2));
    loop {
        tokio::select! {
            () = &mut ticked => break,
            _ = looks.tick() => {
                scratch.look().await?;
                sampler.progress.store(stats.snapshot().windows_written - before.windows_written, Ordering::Relaxed);
            }
        }
    }
    scratch.look().await?;
    let after = stats.snapshot();
    let _ = stop_tx.send(());
    task.await?.map_err(|e| e.to_string())?;
    let (wall, cpu) = (t0.elapsed(), process_cpu() - cpu0);
    let rss_tenths = sampler.finish();
    if after.ticks_failed > before.ticks_failed || after.windows_failed > before.windows_failed {
        return Err(format!("the backfill failed: {:?}", after.last_error).into());
    }
    Ok(Phase {
        days,
        windows: after.windows_written - before.windows_written,
        values: after.rows_written - before.rows_written,
        wall,
        cpu,
        server_cpu: scratch.phase_cpu(),
        peak_mib: if peak_reset { status_mib("VmHWM:") } else { f64::NAN },
        rss_tenths,
    })
}

// ---------------------------------------------------------------------------------------------
// One-day window replaces

fn client(sim_url: &str) -> Result<GenesysClient> {
    let config = GenesysConfig::new(None, Some(sim_url), Some(sim_url))?
        .credentials(SIM_ID, Secret::new(SIM_SECRET))
        .pacer(Arc::new(Pacer::new(6_000_000)))
        .max_concurrency(2);
    Ok(GenesysClient::new(config)?)
}

fn day_window(day: NaiveDate) -> Result<TimeWindow> {
    let start = day.and_hms_opt(0, 0, 0).ok_or("bad day")?.and_utc();
    Ok(TimeWindow::new(start, start + chrono::Duration::days(1))?)
}

/// `rows` with every value changed (sum + 1, else count + 1): a correction of every grain.
fn changed(rows: &[MetricRow]) -> Vec<MetricRow> {
    rows.iter()
        .map(|r| {
            let s = r.stats();
            let stats = Stats {
                count: if s.sum.is_none() { s.count.map(|c| c + 1) } else { s.count },
                sum: s.sum.map(|v| v + 1.0),
                ..*s
            };
            MetricRow::new(r.group().to_vec(), r.bucket(), r.metric(), r.qualifier().map(str::to_owned), stats)
        })
        .collect()
}

/// The median of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times.get(times.len() / 2).copied().unwrap_or_default()
}

struct Replace {
    day: NaiveDate,
    values: usize,
    same: Duration,
    same_cpu: Duration,
    changed: Duration,
}

/// Re-writes `day` through the sink `rounds` times with the values it holds, then `rounds` times
/// with every value changed and back (each a window replace that updates every grain).
async fn replace(
    sink: &dyn CheckpointedSink,
    source: &GenesysClient,
    query: &Arc<AggregateQuery>,
    day: NaiveDate,
    rounds: usize,
) -> Result<Replace> {
    let window = day_window(day)?;
    let rows = source.query(query, window).await.map_err(|e| e.to_string())?;
    let key = WindowKey::new(ORG, Arc::clone(query), window);
    let other = changed(&rows);
    let mut same = Vec::new();
    let mut same_cpu = Vec::new();
    for _ in 0..rounds {
        let (t0, c0) = (Instant::now(), process_cpu());
        sink.write_window(&key, &rows).await?;
        same.push(t0.elapsed());
        same_cpu.push(process_cpu() - c0);
    }
    let mut changes = Vec::new();
    for _ in 0..rounds {
        for version in [&other, &rows] {
            let t0 = Instant::now();
            sink.write_window(&key, version).await?;
            changes.push(t0.elapsed());
        }
    }
    Ok(Replace { day, values: rows.len(), same: median(same), same_cpu: median(same_cpu), changed: median(changes) })
}

// ---------------------------------------------------------------------------------------------
// The run

async fn run(args: Args) -> Result<()> {
    let admin_url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .ok_or("set DATABASE_URL (cargo xtask bench starts a PostgreSQL and sets it)")?;
    let sim = SimChild::start(args.agents)?;
    let mut scratch = Scratch::create(&admin_url).await?;
    eprintln!(
        "{BENCH}: {} days x {} agents from {}, PostgreSQL {}, database {}",
        args.days, args.agents, args.first, scratch.version, scratch.name
    );
    let result = if args.memory > 0 {
        memory_steps(&args, &sim.url, &scratch).await
    } else {
        measure(&args, &sim.url, &mut scratch).await
    };
    let sim_cpu = sim.stop();
    println!("simulator (child process) CPU: {:.1} s", sim_cpu.as_secs_f64());
    if args.keep {
        println!("kept the database: {}", scratch.url);
    } else {
        scratch.drop().await;
    }
    result
}

/// Where memory goes: each day read (HTTP and parsing into rows), then written (grains, encoding,
/// COPY and merge), in a process that does nothing else; RSS after each step and the peak during it.
async fn memory_steps(args: &Args, sim_url: &str, scratch: &Scratch) -> Result<()> {
    let end = args.first + chrono::Days::new(u64::from(args.days));
    let settings = daemon_settings(&scratch.url, sim_url, args.first, end)?;
    let query = Arc::clone(&settings.orgs[0].reads[0].queries.queries()[0]);
    let store = settings.output.config().open_store().await?;
    let source = client(sim_url)?;
    println!("\nstart: RSS {:.0} MiB", status_mib("VmRSS:"));
    println!("| day | values | RSS after reading | peak while reading | RSS after writing | peak while writing | RSS rows dropped |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for d in 0..args.memory {
        let day = args.first + chrono::Days::new(u64::from(d));
        let window = day_window(day)?;
        reset_peak();
        let rows = source.query(&query, window).await.map_err(|e| e.to_string())?;
        let (read_rss, read_peak) = (status_mib("VmRSS:"), status_mib("VmHWM:"));
        reset_peak();
        store.sink.write_window(&WindowKey::new(ORG, Arc::clone(&query), window), &rows).await?;
        let (write_rss, write_peak) = (status_mib("VmRSS:"), status_mib("VmHWM:"));
        let values = rows.len();
        drop(rows);
        println!(
            "| {day} | {values} | {read_rss:.0} MiB | {read_peak:.0} MiB | {write_rss:.0} MiB | {write_peak:.0} MiB | {:.0} MiB |",
            status_mib("VmRSS:")
        );
    }
    Ok(())
}

async fn measure(args: &Args, sim_url: &str, scratch: &mut Scratch) -> Result<()> {
    let first = args.first;
    let early_end = first + chrono::Days::new(u64::from(args.early));
    let end = first + chrono::Days::new(u64::from(args.days));
    let last = end - chrono::Days::new(1);

    // Phase 1: the first days, then a replace on the small table.
    let early = backfill(scratch, sim_url, first, early_end).await?;
    let settings = daemon_settings(&scratch.url, sim_url, first, end)?;
    let query = Arc::clone(&settings.orgs[0].reads[0].queries.queries()[0]);
    let store = settings.output.config().open_store().await?;
    let source = client(sim_url)?;
    let at_start = replace(&*store.sink, &source, &query, first, args.rounds).await?;

    // Phase 2: the rest of the year, then replaces at both ends of the full table.
    let rest = backfill(scratch, sim_url, first, end).await?;
    // Sizes, before the replaces below add row versions.
    let mut conn = sqlx::PgConnection::connect(&scratch.url).await?;
    sqlx::query("VACUUM ANALYZE").execute(&mut conn).await?;
    let values: i64 = sqlx::query_scalar("SELECT coalesce(sum(rows), 0)::bigint FROM ingest_windows WHERE org = $1")
        .bind(ORG)
        .fetch_one(&mut conn)
        .await?;
    let grains: i64 = sqlx::query_scalar("SELECT count(*) FROM agent_intervals WHERE org = $1")
        .bind(ORG)
        .fetch_one(&mut conn)
        .await?;
    let relations: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT c.relname::text, c.relkind::text, \
                (pg_relation_size(c.oid) + coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0))::bigint \
         FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace \
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'i') AND pg_relation_size(c.oid) >= 1048576 \
         ORDER BY 3 DESC",
    )
    .fetch_all(&mut conn)
    .await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::bigint FROM pg_class AS c \
         JOIN pg_namespace AS n ON n.oid = c.relnamespace WHERE n.nspname = current_schema() AND c.relkind = 'r'",
    )
    .fetch_one(&mut conn)
    .await?;

    let end_first = replace(&*store.sink, &source, &query, first, args.rounds).await?;
    let end_last = replace(&*store.sink, &source, &query, last, args.rounds).await?;

    // Reading alone: the same requests, parsed into rows, no sink.
    let sample_days = args.sample.min(args.days);
    let peak_reset = reset_peak();
    let (c0, t0) = (process_cpu(), Instant::now());
    let mut sample_values = 0usize;
    for d in 0..sample_days {
        let window = day_window(first + chrono::Days::new(u64::from(d)))?;
        sample_values += source.query(&query, window).await.map_err(|e| e.to_string())?.len();
    }
    let (read_cpu, read_wall) = (process_cpu() - c0, t0.elapsed());
    let read_peak = if peak_reset { status_mib("VmHWM:") } else { f64::NAN };

    // Report.
    let all_values = early.values + rest.values;
    let all_wall = early.wall + rest.wall;
    let all_cpu = early.cpu + rest.cpu;
    let all_server = early.server_cpu + rest.server_cpu;
    let per_value = |d: Duration, n: u64| d.as_secs_f64() * 1e6 / n.max(1) as f64;
    println!();
    println!("| phase | days | windows | metric values | wall | values/s | daemon CPU | per value | server CPU | per value | peak RSS |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, p) in [("first days", &early), ("rest of the range", &rest)] {
        println!(
            "| {name} | {} | {} | {} | {:.1} s | {:.0} | {:.1} s | {:.2} µs | {:.1} s | {:.2} µs | {:.0} MiB |",
            p.days,
            p.windows,
            p.values,
            p.wall.as_secs_f64(),
            p.values as f64 / p.wall.as_secs_f64(),
            p.cpu.as_secs_f64(),
            per_value(p.cpu, p.values),
            p.server_cpu.as_secs_f64(),
            per_value(p.server_cpu, p.values),
            p.peak_mib
        );
    }
    println!(
        "| **all** | {} | {} | {} | {:.1} s | **{:.0}** | {:.1} s | **{:.2} µs** | {:.1} s | {:.2} µs | **{:.0} MiB** |",
        args.days,
        early.windows + rest.windows,
        all_values,
        all_wall.as_secs_f64(),
        all_values as f64 / all_wall.as_secs_f64(),
        all_cpu.as_secs_f64(),
        per_value(all_cpu, all_values),
        all_server.as_secs_f64(),
        per_value(all_server, all_values),
        early.peak_mib.max(rest.peak_mib)
    );
    let tenths: Vec<String> = rest.rss_tenths.iter().map(|m| format!("{m:.0}")).collect();
    println!("\nRSS (MiB), largest in each tenth of the range: {}", tenths.join(", "));
    println!(
        "\nreading alone (HTTP + parsing into rows, no sink), {sample_days} days: {sample_values} values, {:.2} s wall, \
         {:.2} s CPU = {:.2} µs per value ({:.0} % of the daemon's CPU per value), peak RSS {read_peak:.0} MiB",
        read_wall.as_secs_f64(),
        read_cpu.as_secs_f64(),
        per_value(read_cpu, sample_values as u64),
        100.0 * per_value(read_cpu, sample_values as u64) / per_value(all_cpu, all_values)
    );
    println!(
        "\nstored: {grains} grains, {values} metric values ({:.2} per grain)",
        values as f64 / grains.max(1) as f64
    );
    println!("| relation | kind | size |");
    println!("|---|---|---:|");
    for (name, kind, size) in &relations {
        let kind = if kind == "i" { "index" } else { "table" };
        println!("| {name} | {kind} | {:.1} MB |", *size as f64 / 1e6);
    }
    println!(
        "every table with its indexes and TOAST: {:.1} MB = **{:.1} bytes per metric value**",
        total as f64 / 1e6,
        total as f64 / values.max(1) as f64
    );
    println!("\n| one-day window replace | values | same values (median of {}) | tool CPU | every value changed (median of {}) |", args.rounds, 2 * args.rounds);
    println!("|---|---:|---:|---:|---:|");
    for (name, r) in [
        (format!("{}, table holding {} days", at_start.day, args.early), &at_start),
        (format!("{}, table holding {} days", end_first.day, args.days), &end_first),
        (format!("{}, table holding {} days", end_last.day, args.days), &end_last),
    ] {
        println!(
            "| {name} | {} | {:.3} s | {:.3} s | {:.3} s |",
            r.values,
            r.same.as_secs_f64(),
            r.same_cpu.as_secs_f64(),
            r.changed.as_secs_f64()
        );
    }
    Ok(())
}
