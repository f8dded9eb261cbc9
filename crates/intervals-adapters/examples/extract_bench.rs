//! CPU per 1,000 agent-days of `extract` into a long CSV, in-process: the simulator on a thread of
//! its own (its CPU subtracted, as in `mixed_bench`), the Genesys client behind the retry loop, the
//! `Ingestor` and a `csv:` output opened through the output registry, as `genesys-intervals
//! extract --out csv:PATH` does.
//!
//! ```text
//! cargo xtask bench extract_bench [-- --agents 1000 --days 30]
//! cargo run --release -p intervals-adapters --example extract_bench -- [--agents N] [--days D]
//!     [--short-days D] [--rounds 5] [--concurrency 4] [--metrics tHandle,tAcw,tHeldComplete]
//!     [--verify yes|no] [--keep DIR]
//! ```
//! Also from EXTRACT_BENCH_AGENTS, _DAYS, _SHORT_DAYS, _ROUNDS, _CONCURRENCY, _METRICS, _VERIFY,
//! _KEEP (flags win). Metrics tHandle, tAcw, tHeldComplete by userId and mediaType, PT30M, UTC, day
//! windows, 4 windows at a time (the CLI's default), no pacing (the simulator has no rate limit).
//!
//! Every round extracts the short range (`--short-days`, default 10) and then the long one
//! (`--days`), each into a new CSV file in a temporary folder. For each range it prints: client +
//! sink CPU (user + system of this process from /proc, less the simulator's threads) per 1,000
//! agent-days, best round and the spread over the rounds (the machine is shared: interference
//! only ever adds); wall time; rows; output bytes and their SHA-256 (the same bytes in every round,
//! checked); and the peak resident set of the process (VmHWM, reset before each run through
//! `/proc/self/clear_refs`, the smallest over the rounds: the simulator's memory is in it too).
//!
//! `--verify yes` (the default) also compares the long range's file with the simulator's truth
//! (`intervals_sim::truth_csv`, computed after the timed runs). `--keep DIR` copies each range's
//! output there (`extract-<days>d.csv`) for `cmp` between builds.

#[path = "support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use intervals_adapters::genesys::GenesysClient;
use intervals_domain::QuerySet;
use intervals_sim::SimConfig;
use sha2::{Digest, Sha256};
use support::{Result, SimThread};

/// The metrics of the issue's target: three conversation timers.
const METRICS: &str = "tHandle,tAcw,tHeldComplete";

/// One extraction's figures.
#[derive(Clone)]
struct Run {
    cpu: Duration,
    wall: Duration,
    rows: u64,
    requests: u64,
    bytes: u64,
    sha256: String,
    peak_rss_mib: f64,
}

/// Resets the process's peak resident set (VmHWM) to its current resident set. False when the
/// kernel refuses (then VmHWM is the peak since the process started).
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", b"5").is_ok()
}

fn sha256_of(path: &Path) -> Result<(u64, String)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        hasher.update(&buf[..n]);
    }
    Ok((total, format!("{:x}", hasher.finalize())))
}

/// One `extract` of `days` days into a new CSV file; `keep` receives a copy of it.
async fn extract(
    sim: &SimThread,
    client: &GenesysClient,
    queries: &QuerySet,
    days: usize,
    concurrency: usize,
    keep: Option<&Path>,
) -> Result<Run> {
    let plan = support::plan(days)?;
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("extract.csv");
    let target = support::open_target(&format!("csv:{}", path.display()), queries).await?;
    let rss_reset = reset_peak_rss();
    let (wall0, cpu0, sim0) = (Instant::now(), support::process_cpu(), sim.cpu());
    let report = support::ingest(client, target, queries, &plan, concurrency).await?;
    let (wall, cpu, sim_cpu) = (wall0.elapsed(), support::process_cpu() - cpu0, sim.cpu() - sim0);
    let peak_rss_mib = if rss_reset { support::peak_rss_mib() } else { f64::NAN };
    let (bytes, sha256) = sha256_of(&path)?;
    if let Some(keep) = keep {
        std::fs::create_dir_all(keep)?;
        std::fs::copy(&path, keep.join(format!("extract-{days}d.csv")))?;
    }
    Ok(Run {
        cpu: cpu.saturating_sub(sim_cpu),
        wall,
        rows: report.rows,
        requests: report.source_calls,
        bytes,
        sha256,
        peak_rss_mib,
    })
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = support::Args::parse(
        "extract_bench",
        &["agents", "days", "short-days", "rounds", "concurrency", "metrics", "verify", "keep"],
    )?;
    let agents = args.number("agents", "EXTRACT_BENCH_AGENTS", 1_000)?;
    let days = args.number("days", "EXTRACT_BENCH_DAYS", 30)?;
    let short_days = args.number("short-days", "EXTRACT_BENCH_SHORT_DAYS", 10)?;
    let rounds = args.number("rounds", "EXTRACT_BENCH_ROUNDS", 5)?;
    let concurrency = args.number("concurrency", "EXTRACT_BENCH_CONCURRENCY", support::CONCURRENCY)?;
    let metrics = args.get("metrics", "EXTRACT_BENCH_METRICS", METRICS);
    let verify = args.get("verify", "EXTRACT_BENCH_VERIFY", "yes") != "no";
    let keep = args.get("keep", "EXTRACT_BENCH_KEEP", "");
    let keep = (!keep.is_empty()).then(|| Path::new(&keep).to_path_buf());
    let mut ranges = vec![short_days, days];
    ranges.dedup();

    let queries = support::queries(&metrics)?;
    let sim = SimThread::start(agents)?;
    let client = support::client(sim.base_url())?;
    client.authenticate().await?;

    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); ranges.len()];
    for round in 1..=rounds {
        for (i, &d) in ranges.iter().enumerate() {
            eprintln!("extract_bench: round {round}/{rounds}, {d} days");
            let run = extract(&sim, &client, &queries, d, concurrency, keep.as_deref()).await?;
            if let Some(first) = runs[i].first() {
                if first.sha256 != run.sha256 {
                    return Err(format!("{d} days: round {round} wrote other bytes than round 1").into());
                }
            }
            runs[i].push(run);
        }
    }
    sim.stop();

    let verified = if verify {
        let range = support::plan(days)?.range();
        let config = SimConfig { agents, ..SimConfig::default() };
        let truth = intervals_sim::truth_csv(&config, &queries, range);
        let want = format!("{:x}", Sha256::digest(truth.as_bytes()));
        let got = &runs[ranges.len() - 1][0].sha256;
        if &want != got {
            return Err(format!("{days} days: the output ({got}) is not the simulator's truth ({want})").into());
        }
        "yes: the long range's file is the simulator's truth"
    } else {
        "no"
    };

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "extract_bench: {agents} agents, metrics {metrics} by userId,mediaType, PT30M, UTC, day windows, \
         {concurrency} at a time, csv: long layout; best of {rounds} round(s); nproc = {cores}; verified: {verified}"
    );
    println!(
        "CPU is user + system from /proc, less the simulator's threads (client + sink: HTTP, JSON parsing, the \
         Ingestor, the CSV sink and its merge); peak RSS is VmHWM of the whole process (simulator included), reset \
         before each run, smallest over the rounds"
    );
    println!(
        "| days | agent-days | requests | rows | wall s | client + sink CPU s (rounds) | CPU s per 1,000 agent-days \
         | peak RSS MiB | output bytes | sha256 |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for (d, of) in ranges.iter().zip(&runs) {
        let best = of.iter().min_by_key(|r| r.cpu).expect("one round at least");
        let worst = of.iter().map(|r| r.cpu).max().unwrap_or_default();
        let rss = of.iter().map(|r| r.peak_rss_mib).fold(f64::INFINITY, f64::min);
        let kilo_agent_days = (agents * d) as f64 / 1_000.0;
        println!(
            "| {d} | {} | {} | {} | {:.2} | {:.2} ({:.2}-{:.2}) | {:.4} ({:.4}-{:.4}) | {rss:.0} | {} | {} |",
            agents * d,
            best.requests,
            best.rows,
            best.wall.as_secs_f64(),
            best.cpu.as_secs_f64(),
            best.cpu.as_secs_f64(),
            worst.as_secs_f64(),
            best.cpu.as_secs_f64() / kilo_agent_days,
            best.cpu.as_secs_f64() / kilo_agent_days,
            worst.as_secs_f64() / kilo_agent_days,
            best.bytes,
            best.sha256,
        );
    }
    Ok(())
}
