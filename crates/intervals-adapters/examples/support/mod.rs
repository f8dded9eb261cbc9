//! What `mixed_bench` and `report_bench` share: the simulator on a thread of its own (so its CPU can
//! be told apart from the client's and the sink's), CPU clocks read from `/proc`, a client and an
//! ingestion through the same `Ingestor` the CLI drives, and scratch PostgreSQL databases.
//!
//! Not a benchmark itself (cargo builds `examples/*.rs` and `examples/*/main.rs`; this is neither).

#![allow(dead_code)] // each benchmark uses a part

use std::collections::HashMap;
use std::error::Error;
use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use intervals_adapters::genesys::{GenesysClient, GenesysConfig, Secret};
use intervals_adapters::outputs::{MetricsContext, Registry};
use intervals_adapters::sinks::CsvLayout;
use intervals_app::{
    IngestReport, IngestRequest, Ingestor, MetricSource, NoProgress, Pacer, RetryCounters, RetryPolicy, RetryingSource,
    WindowTarget,
};
use intervals_domain::{AggregateQuery, Filters, Granularity, MaxWindow, Plan, PlanRequest, QuerySet, TimeSpec, Tz};
use intervals_sim::SimConfig;

pub(crate) type Result<T> = std::result::Result<T, Box<dyn Error>>;

/// The org label every benchmark row is stored under.
pub(crate) const ORG: &str = "bench";
/// The conversation metrics of the CLI's and the daemon's default.
pub(crate) const CONVERSATION: &str = "tHandle,tAcw,tHeldComplete,tTalkComplete,nConnected";
/// The status metrics `--demo` adds (routing status and system presence).
pub(crate) const STATUS: &str = "tAgentRoutingStatus,tSystemPresence";
/// Both families: what `--demo` reads, and what the report needs for occupancy.
pub(crate) const MIXED: &str =
    "tHandle,tAcw,tHeldComplete,tTalkComplete,nConnected,tAgentRoutingStatus,tSystemPresence";
/// The first day read (a Monday; the simulator's clock is real time, so it is all in the past).
pub(crate) const FIRST_DAY: (i32, u32, u32) = (2025, 3, 3);
/// Windows fetched at once, and requests in flight: the CLI's default.
pub(crate) const CONCURRENCY: usize = 4;

const SIM_ID: &str = "bench-client";
const SIM_SECRET: &str = "bench-secret";
/// The name of every thread of the simulator's runtime (its own thread and its blocking pool).
const SIM_THREAD: &str = "sim-rt";

// ---------------------------------------------------------------------------------------------
// Arguments

/// `--name value` pairs from the command line; `env` names the variable read when a flag is absent.
/// Flags this benchmark does not know are reported and ignored: `cargo xtask bench -- ARGS` hands
/// the same arguments to every benchmark.
pub(crate) struct Args {
    given: HashMap<String, String>,
}

impl Args {
    pub(crate) fn parse(bench: &str, known: &[&str]) -> Result<Args> {
        let mut given = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(flag) = it.next() {
            let value = it.next().ok_or(format!("{flag} needs a value"))?;
            let name = flag.trim_start_matches('-').to_owned();
            if known.contains(&name.as_str()) {
                given.insert(name, value);
            } else {
                eprintln!("{bench}: ignoring {flag} {value} (known: --{})", known.join(", --"));
            }
        }
        Ok(Args { given })
    }

    /// The flag's value, else the environment variable's, else `default`.
    pub(crate) fn get(&self, name: &str, env: &str, default: &str) -> String {
        self.given
            .get(name)
            .cloned()
            .or_else(|| std::env::var(env).ok().filter(|v| !v.is_empty()))
            .unwrap_or_else(|| default.to_owned())
    }

    pub(crate) fn number(&self, name: &str, env: &str, default: usize) -> Result<usize> {
        let text = self.get(name, env, &default.to_string());
        let n: usize = text.parse().map_err(|_| format!("--{name} ({env}): not a number: {text:?}"))?;
        if n == 0 {
            return Err(format!("--{name} ({env}) must be at least 1").into());
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------------------------------------
// CPU clocks (Linux /proc; zero elsewhere)

/// One tick of `utime`/`stime`: USER_HZ is 100 on Linux.
const TICK: Duration = Duration::from_millis(10);

/// The name and utime + stime of a `/proc/.../stat` text.
fn parse_stat(text: &str) -> Option<(&str, Duration)> {
    let (open, close) = (text.find('(')?, text.rfind(')')?);
    let fields: Vec<&str> = text[close + 1..].split_whitespace().collect();
    // After the name: state is field 3 of proc(5), utime 14 and stime 15.
    let ticks = fields.get(11)?.parse::<u32>().ok()? + fields.get(12)?.parse::<u32>().ok()?;
    Some((&text[open + 1..close], TICK * ticks))
}

/// User + system CPU of this whole process (every thread, the ones gone included).
pub(crate) fn process_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    parse_stat(&text).map_or(Duration::ZERO, |(_, cpu)| cpu)
}

/// User + system CPU of this process's live threads whose name starts with `prefix`.
fn threads_cpu(prefix: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Duration::ZERO };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text).filter(|(name, _)| name.starts_with(prefix)).map(|(_, cpu)| cpu))
        .sum()
}

/// User + system CPU of process `pid` when it is a PostgreSQL process of this machine.
pub(crate) fn postgres_cpu(pid: u32) -> Option<Duration> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text).filter(|(name, _)| name.starts_with("postgres")).map(|(_, cpu)| cpu)
}

/// Peak resident set of this process, MiB.
pub(crate) fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

// ---------------------------------------------------------------------------------------------
// The simulator on its own thread

/// A simulator serving from a current-thread runtime on a thread of its own, whose blocking pool
/// (where it aggregates and serialises) is named like it: [`SimThread::cpu`] is its CPU alone.
pub(crate) struct SimThread {
    base_url: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimThread {
    /// Starts a simulator of `agents` agents, no rate limit, on `127.0.0.1:0`.
    pub(crate) fn start(agents: usize) -> Result<SimThread> {
        let config = SimConfig {
            agents,
            rate_per_minute: 0,
            client_id: SIM_ID.to_owned(),
            client_secret: SIM_SECRET.to_owned(),
            ..SimConfig::default()
        };
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::result::Result<String, String>>();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new().name(SIM_THREAD.to_owned()).spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .thread_name(SIM_THREAD)
                // Keep blocking threads alive: a thread that ends takes its CPU out of the per-thread count.
                .thread_keep_alive(Duration::from_secs(24 * 3600))
                .build();
            let runtime = match runtime {
                Ok(r) => r,
                Err(e) => {
                    let _ = ready_tx.send(Err(e.to_string()));
                    return;
                }
            };
            runtime.block_on(async move {
                match intervals_sim::spawn(config, 0).await {
                    Ok(sim) => {
                        let _ = ready_tx.send(Ok(sim.base_url()));
                        let _ = stopped.await;
                        sim.shutdown().await;
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e.to_string()));
                    }
                }
            });
        })?;
        let base_url = ready_rx.recv().map_err(|_| "the simulator thread ended")??;
        Ok(SimThread { base_url, stop: Some(stop), thread: Some(thread) })
    }

    pub(crate) fn base_url(&self) -> &str {
        &self.base_url
    }

    /// CPU of the simulator's threads so far.
    pub(crate) fn cpu(&self) -> Duration {
        threads_cpu(SIM_THREAD)
    }

    /// Stops the simulator and waits for its thread.
    pub(crate) fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Client, queries, plan, ingestion

/// A client of the simulator whose pacer never holds a request back (the simulator has no limit).
pub(crate) fn client(base_url: &str) -> Result<GenesysClient> {
    let config = GenesysConfig::new(None, Some(base_url), Some(base_url))?
        .credentials(SIM_ID, Secret::new(SIM_SECRET))
        .pacer(Arc::new(Pacer::new(6_000_000)))
        .max_concurrency(CONCURRENCY);
    Ok(GenesysClient::new(config)?)
}

/// `metrics` grouped by userId and mediaType (the status query by userId alone), PT30M, UTC.
pub(crate) fn queries(metrics: &str) -> Result<QuerySet> {
    Ok(QuerySet::new(
        AggregateQuery::parse_metrics(metrics)?,
        AggregateQuery::parse_group_by("userId,mediaType")?,
        Granularity::Pt30m,
        Tz::UTC,
        Filters::none(),
    )?)
}

/// `days` UTC days from [`FIRST_DAY`], one window per day (the CLI's default `--max-window`).
pub(crate) fn plan(days: usize) -> Result<Plan> {
    let (y, m, d) = FIRST_DAY;
    let first = NaiveDate::from_ymd_opt(y, m, d).ok_or("bad first day")?;
    let last = first + chrono::Days::new(days as u64);
    Ok(Plan::new(PlanRequest {
        from: TimeSpec::Date(first),
        to: TimeSpec::Date(last),
        granularity: Granularity::Pt30m,
        time_zone: Tz::UTC,
        max_window: MaxWindow::DEFAULT,
    })?)
}

/// Opens `url` through the output registry for the rows of `queries`, as `extract` does.
pub(crate) async fn open_target(url: &str, queries: &QuerySet) -> Result<WindowTarget> {
    let spec = Registry::builtin().parse(url)?;
    let cx = MetricsContext { query: Arc::clone(queries.layout()), layout: CsvLayout::Long };
    Ok(spec.config().open_metrics(&cx).await?)
}

/// One `extract` run of `queries` over `plan` into `target`, `concurrency` windows at a time: the
/// retry loop and the `Ingestor`, as the CLI wires them. Fails when a window failed.
pub(crate) async fn ingest(
    client: &GenesysClient,
    target: WindowTarget,
    queries: &QuerySet,
    plan: &Plan,
    concurrency: usize,
) -> Result<IngestReport> {
    let source: Arc<dyn MetricSource> = Arc::new(RetryingSource::new(
        Arc::new(client.clone()),
        RetryPolicy::default(),
        Arc::new(RetryCounters::default()),
    ));
    let ingestor = Ingestor::new(source, target, Arc::new(NoProgress));
    let request = IngestRequest { org: ORG.to_owned(), queries: queries.clone(), plan: plan.clone(), concurrency };
    let report = ingestor.run(&request, std::future::pending()).await?;
    if let Some(f) = report.failed.first() {
        return Err(format!("{} window(s) failed, the first {}: {}", report.failed.len(), f.window, f.error).into());
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// PostgreSQL

/// A scratch database in the cluster of `DATABASE_URL` (a role that may create databases), dropped
/// by [`Scratch::drop`].
pub(crate) struct Scratch {
    admin: sqlx::PgConnection,
    name: String,
    url: String,
    version: String,
}

impl Scratch {
    pub(crate) async fn create(admin_url: &str, label: &str) -> Result<Scratch> {
        use sqlx::Connection;
        let mut admin = sqlx::PgConnection::connect(admin_url).await?;
        let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&mut admin).await?;
        let name = format!("{label}_{}", std::process::id());
        sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut admin).await?;
        sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut admin).await?;
        let mut url = url::Url::parse(admin_url)?;
        url.set_path(&format!("/{name}"));
        Ok(Scratch { admin, name, url: url.to_string(), version })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// The database's name.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn version(&self) -> &str {
        &self.version
    }

    /// CPU so far of the server processes connected to this database (when the server runs on this
    /// machine; empty otherwise).
    pub(crate) async fn backends(&mut self) -> Result<HashMap<u32, Duration>> {
        let pids: Vec<i32> = sqlx::query_scalar("SELECT pid FROM pg_stat_activity WHERE datname = $1")
            .bind(&self.name)
            .fetch_all(&mut self.admin)
            .await?;
        Ok(pids.into_iter().filter_map(|p| u32::try_from(p).ok()).filter_map(|p| Some((p, postgres_cpu(p)?))).collect())
    }

    pub(crate) async fn drop(mut self) {
        let _ =
            sqlx::query(&format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)).execute(&mut self.admin).await;
    }
}

/// The CPU the backends of `after` used since `before` (a backend new since then counts whole).
pub(crate) fn backends_delta(before: &HashMap<u32, Duration>, after: &HashMap<u32, Duration>) -> Duration {
    after.iter().map(|(pid, cpu)| cpu.saturating_sub(before.get(pid).copied().unwrap_or_default())).sum()
}

/// `DATABASE_URL`, when set.
pub(crate) fn database_url() -> Option<String> {
    std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty())
}

/// Milliseconds with two decimals.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}
