//! CPU per agent-day of an extraction that reads conversation metrics and status time (a "mixed"
//! run), against the conversation-only and status-only runs, in-process: the simulator on a thread
//! of its own, the Genesys client, the `Ingestor` and a SQLite (and, with DATABASE_URL, PostgreSQL)
//! output opened through the output registry, as `genesys-intervals extract` does.
//!
//! ```text
//! cargo xtask bench mixed_bench [-- --agents 1000 --days 7]
//! cargo run --release -p intervals-adapters --example mixed_bench -- [--agents N] [--days D]
//!     [--only sqlite|postgres] [--runs conversation,status,mixed] [--rounds 3] [--concurrency 4]
//! ```
//! Also from MIXED_BENCH_AGENTS, _DAYS, _ONLY, _RUNS, _ROUNDS, _CONCURRENCY (flags win). PT30M, UTC,
//! day windows, 4 windows at a time (the CLI's default), no pacing (the simulator has no rate limit).
//!
//! - conversation: tHandle, tAcw, tHeldComplete, tTalkComplete, nConnected by userId and mediaType
//! - status: tAgentRoutingStatus, tSystemPresence by userId
//! - mixed: both (two queries per window, conversation first)
//!
//! Each run extracts into a new store (a new SQLite file, a new PostgreSQL database). Every round
//! does every run once, alternating, and the table shows each run's round with the least client +
//! sink CPU (the machine is shared: interference only ever adds), with the spread over the rounds.
//!
//! For each run: wall time; CPU of this process split into the simulator's threads (measured per
//! thread from /proc/self/task) and the rest, "client + sink" (HTTP, JSON parsing, the Ingestor,
//! the sink's encoding, and for SQLite the database engine itself); and, for PostgreSQL on this
//! machine, the CPU of the server backends of the benchmark's database (a separate process).

#[path = "support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use intervals_adapters::genesys::GenesysClient;
use intervals_domain::Plan;
use support::{ms, Result, Scratch, SimThread};

#[derive(Clone)]
struct Line {
    output: &'static str,
    run: &'static str,
    requests: u64,
    rows: u64,
    wall: Duration,
    sim: Duration,
    client_sink: Duration,
    server: Option<Duration>,
}

/// What every run shares.
struct Bench {
    sim: SimThread,
    client: GenesysClient,
    plan: Plan,
    concurrency: usize,
}

impl Bench {
    /// One extraction of `metrics` into the store at `url`; `scratch` is its PostgreSQL database.
    async fn run(
        &self,
        output: &'static str,
        run: &'static str,
        metrics: &str,
        url: &str,
        mut scratch: Option<&mut Scratch>,
    ) -> Result<Line> {
        let queries = support::queries(metrics)?;
        let target = support::open_target(url, &queries).await?;
        let backends0 = match scratch.as_deref_mut() {
            Some(s) => s.backends().await?,
            None => Default::default(),
        };
        let (wall0, cpu0, sim0) = (Instant::now(), support::process_cpu(), self.sim.cpu());
        let report = support::ingest(&self.client, target, &queries, &self.plan, self.concurrency).await?;
        let (wall, cpu, sim) = (wall0.elapsed(), support::process_cpu() - cpu0, self.sim.cpu() - sim0);
        let server = match scratch {
            Some(s) => {
                let backends1 = s.backends().await?;
                (!backends1.is_empty()).then(|| support::backends_delta(&backends0, &backends1))
            }
            None => None,
        };
        Ok(Line {
            output,
            run,
            requests: report.source_calls,
            rows: report.rows,
            wall,
            sim,
            client_sink: cpu.saturating_sub(sim),
            server,
        })
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = support::Args::parse("mixed_bench", &["agents", "days", "only", "runs", "rounds", "concurrency"])?;
    let agents = args.number("agents", "MIXED_BENCH_AGENTS", 1_000)?;
    let days = args.number("days", "MIXED_BENCH_DAYS", 7)?;
    let rounds = args.number("rounds", "MIXED_BENCH_ROUNDS", 3)?;
    let concurrency = args.number("concurrency", "MIXED_BENCH_CONCURRENCY", support::CONCURRENCY)?;
    let only = args.get("only", "MIXED_BENCH_ONLY", "");
    let wanted = args.get("runs", "MIXED_BENCH_RUNS", "conversation,status,mixed");
    let runs: Vec<(&'static str, &'static str)> =
        [("conversation", support::CONVERSATION), ("status", support::STATUS), ("mixed", support::MIXED)]
            .into_iter()
            .filter(|(run, _)| wanted.split(',').any(|w| w.trim() == *run))
            .collect();
    let agent_days = (agents * days) as f64;
    let mut notes = Vec::new();
    let postgres = match support::database_url() {
        _ if !(only.is_empty() || only == "postgres") => None,
        None => {
            notes.push("PostgreSQL skipped: set DATABASE_URL (cargo xtask bench sets one)".to_owned());
            None
        }
        Some(url) => Some(url),
    };
    let sqlite = only.is_empty() || only == "sqlite";

    let sim = SimThread::start(agents)?;
    let client = support::client(sim.base_url())?;
    client.authenticate().await?;
    let bench = Bench { sim, client, plan: support::plan(days)?, concurrency };

    let mut all: Vec<Line> = Vec::new();
    for round in 1..=rounds {
        for &(run, metrics) in &runs {
            if sqlite {
                eprintln!("mixed_bench: round {round}/{rounds}, SQLite, {run}");
                let dir = tempfile::tempdir()?;
                let url = format!("sqlite:{}", dir.path().join("mixed.db").display());
                all.push(bench.run("SQLite", run, metrics, &url, None).await?);
            }
            if let Some(admin_url) = &postgres {
                eprintln!("mixed_bench: round {round}/{rounds}, PostgreSQL, {run}");
                let mut scratch = Scratch::create(admin_url, "mixed_bench").await?;
                let url = scratch.url().to_owned();
                let line = bench.run("PostgreSQL", run, metrics, &url, Some(&mut scratch)).await;
                if round == 1 && run == runs[0].0 {
                    notes.push(format!("PostgreSQL {}", scratch.version()));
                }
                scratch.drop().await;
                all.push(line?);
            }
        }
    }
    bench.sim.stop();

    // Per output and run: the round with the least client + sink CPU, and the spread.
    let mut best: Vec<(Line, Duration, Duration)> = Vec::new();
    for output in ["SQLite", "PostgreSQL"] {
        for &(run, _) in &runs {
            let of: Vec<&Line> = all.iter().filter(|l| l.output == output && l.run == run).collect();
            if let Some(b) = of.iter().min_by_key(|l| l.client_sink) {
                let worst = of.iter().map(|l| l.client_sink).max().unwrap_or_default();
                best.push(((*b).clone(), b.client_sink, worst));
            }
        }
    }

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "mixed_bench: {agents} agents x {days} days = {} agent-days, PT30M, day windows, {concurrency} at a time, \
         best of {rounds} round(s); nproc = {cores}; peak RSS {:.0} MiB",
        agents * days,
        support::peak_rss_mib()
    );
    for n in &notes {
        println!("{n}");
    }
    println!(
        "CPU is user + system from /proc: sim = the simulator's threads; client + sink = the rest of this process \
         (for SQLite, the database engine too); server = PostgreSQL backends of the benchmark database"
    );
    println!(
        "| output | run | requests | metric rows | wall s | sim CPU s | client + sink CPU s (rounds) | \
         client + sink ms/agent-day | server CPU s | server ms/agent-day |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (l, lo, hi) in &best {
        let (server, server_per) = match l.server {
            Some(s) => (format!("{:.2}", s.as_secs_f64()), ms(s.div_f64(agent_days))),
            None => (String::new(), String::new()),
        };
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.2} ({:.2}-{:.2}) | {} | {server} | {server_per} |",
            l.output,
            l.run,
            l.requests,
            l.rows,
            l.wall.as_secs_f64(),
            l.sim.as_secs_f64(),
            l.client_sink.as_secs_f64(),
            lo.as_secs_f64(),
            hi.as_secs_f64(),
            ms(l.client_sink.div_f64(agent_days)),
        );
    }
    for output in ["SQLite", "PostgreSQL"] {
        let of = |run: &str| best.iter().map(|(l, _, _)| l).find(|l| l.output == output && l.run == run);
        let per = |d: Duration| d.as_secs_f64() * 1e3 / agent_days;
        if let (Some(c), Some(s), Some(m)) = (of("conversation"), of("status"), of("mixed")) {
            let (pc, ps, pm) = (per(c.client_sink), per(s.client_sink), per(m.client_sink));
            let mut line = format!(
                "{output}: mixed {pm:.2} ms client + sink CPU per agent-day, conversation-only {pc:.2} ({:.2}x: \
                 status time adds {:.2} ms); conversation + status run apart {:.2}",
                pm / pc,
                pm - pc,
                pc + ps
            );
            if let (Some(sc), Some(sm)) = (c.server, m.server) {
                let (qc, qm) = (per(sc), per(sm));
                line.push_str(&format!("; server {qm:.2} ms mixed, {qc:.2} conversation-only ({:.2}x)", qm / qc));
            }
            println!("{line}");
        }
    }
    Ok(())
}
