//! The report on a big range: a SQLite store (and, with DATABASE_URL, a PostgreSQL one) filled with
//! conversation metrics and status time for 30 days x 1,000 agents at PT30M, then
//! `intervals_app::build_report` (sums read through the store's `IntervalsReader`, opened through the
//! output registry as `genesys-intervals report` opens it) and `intervals_report::render_html`, timed
//! apart, with each `IntervalsReader` method timed on its own. Goal (issue: report): "30 days x
//! 1,000 agents at PT30M renders in seconds".
//!
//! ```text
//! cargo xtask bench report_bench [-- --agents 1000 --days 30]
//! cargo run --release -p intervals-adapters --example report_bench -- [--agents N] [--days D]
//!     [--only sqlite|postgres] [--rounds 2] [--time-zone UTC] [--save DIR]
//! ```
//! Also from REPORT_BENCH_AGENTS, _DAYS, _ONLY, _ROUNDS, _TIME_ZONE, _SAVE (flags win). `--save DIR`
//! writes each page (`report-sqlite.html`, `report-postgres.html`) and keeps the SQLite file there
//! (and the PostgreSQL database, named in the output) for a closer look.
//!
//! The store is filled the way a user fills it: `extract` of the simulator's data (both families,
//! day windows, 4 at a time, the same `Ingestor`), then its users (so the page shows names). Each
//! read is timed `--rounds` times and the best is shown (the machine is shared; interference only
//! ever adds). The first `build_report`, on a store just written, is shown on its own line.

#[path = "support/mod.rs"]
mod support;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use intervals_adapters::genesys::GenesysClient;
use intervals_adapters::outputs::Registry;
use intervals_app::{build_report, DirectorySource, IntervalsReader, ReportRequest};
use intervals_domain::{parse_time_zone, Plan, QuerySet, TimeWindow, Tz};
use sqlx::Connection;
use support::{Result, Scratch, SimThread};

struct Line {
    store: &'static str,
    step: String,
    seconds: Option<f64>,
    figure: String,
}

/// What every store shares.
struct Bench {
    client: GenesysClient,
    queries: QuerySet,
    plan: Plan,
    rounds: usize,
    time_zone: Tz,
    save: Option<PathBuf>,
}

/// The least of `rounds` timings of `f`, and its last result.
async fn best<T, F, Fut>(rounds: usize, mut f: F) -> Result<(Duration, T)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut least = Duration::MAX;
    let mut last = None;
    for _ in 0..rounds {
        let t = Instant::now();
        let out = f().await?;
        least = least.min(t.elapsed());
        last = Some(out);
    }
    Ok((least, last.ok_or("no round")?))
}

impl Bench {
    /// Fills the store at `url`, then times the report on it.
    async fn measure(&self, store: &'static str, url: &str, file_name: &str) -> Result<Vec<Line>> {
        let mut lines = Vec::new();
        let line = |step: &str, d: Duration, figure: String| Line {
            store,
            step: step.to_owned(),
            seconds: Some(d.as_secs_f64()),
            figure,
        };

        eprintln!("report_bench: {store}: filling");
        let target = support::open_target(url, &self.queries).await?;
        let t = Instant::now();
        let ingested = support::ingest(&self.client, target, &self.queries, &self.plan, support::CONCURRENCY).await?;
        lines.push(line(
            "fill: extract both families (simulator in-process)",
            t.elapsed(),
            format!("{} metric rows, {} requests", ingested.rows, ingested.source_calls),
        ));
        let spec = Registry::builtin().parse(url)?;
        let directory = spec.config().open_directory().await?;
        let users = directory.write_users(support::ORG, &self.client.users().await?).await?;
        directory.finish().await?;

        eprintln!("report_bench: {store}: reading");
        let t = Instant::now();
        let reader = spec.config().open_reader().await?.ok_or("this output cannot be read back")?;
        lines.push(line("open the reader (registry, migrations check)", t.elapsed(), String::new()));
        let reader = reader.as_ref();
        let request = ReportRequest { org: None, from: None, to: None, granularity: None, time_zone: self.time_zone };
        let source = spec.to_string();

        let t = Instant::now();
        let report = build_report(reader, &source, &request).await?;
        lines.push(line("build_report, first (store just written)", t.elapsed(), String::new()));
        let (org, granularity, range) = (report.org.clone(), report.granularity, report.range);
        let buckets = range.bucket_count(granularity, self.time_zone);

        let (src, req) = (&source, &request);
        let (d, report) = best(self.rounds, move || async move { Ok(build_report(reader, src, req).await?) }).await?;
        lines.push(line(
            "build_report (all reads below + shaping)",
            d,
            format!(
                "{} agents, {buckets} buckets, {} heat-map slots",
                report.agents.len(),
                report.heat_map.slots.len()
            ),
        ));
        lines.extend(self.methods(reader, store, &org, granularity, range).await?);

        let shown = &report;
        let (d, html) = best(self.rounds, move || async move { Ok(intervals_report::render_html(shown)) }).await?;
        lines.push(line("render_html", d, format!("{:.2} MB page", html.len() as f64 / 1e6)));
        if let Some(dir) = &self.save {
            let path = dir.join(file_name);
            std::fs::write(&path, &html)?;
            eprintln!("report_bench: wrote {}", path.display());
        }
        let grains: u64 = reader.inventory().await?.iter().map(|s| s.grains).sum();
        lines.push(Line {
            store,
            step: "(what is stored)".to_owned(),
            seconds: None,
            figure: format!("{grains} grains, {users} users"),
        });
        Ok(lines)
    }

    /// Each `IntervalsReader` method over the report's range, best of the rounds.
    async fn methods(
        &self,
        reader: &dyn IntervalsReader,
        store: &'static str,
        org: &str,
        g: intervals_domain::Granularity,
        range: TimeWindow,
    ) -> Result<Vec<Line>> {
        let rounds = self.rounds;
        let mut out = Vec::new();
        let mut push = |step: &str, d: Duration, n: usize, what: &str| {
            out.push(Line {
                store,
                step: format!("  IntervalsReader::{step}"),
                seconds: Some(d.as_secs_f64()),
                figure: format!("{n} {what}"),
            })
        };
        let (d, v) = best(rounds, move || async move { Ok(reader.inventory().await?) }).await?;
        push("inventory", d, v.len(), "series");
        let (d, v) = best(rounds, move || async move { Ok(reader.coverage(org, range).await?) }).await?;
        push("coverage", d, v.len(), "windows");
        let (d, v) = best(rounds, move || async move { Ok(reader.volume(org, g, range).await?) }).await?;
        push("volume", d, v.len(), "bucket x media type sums");
        let (d, v) = best(rounds, move || async move { Ok(reader.agent_slots(org, g, range).await?) }).await?;
        push("agent_slots", d, v.len(), "agent x time-of-day sums");
        let (d, v) = best(rounds, move || async move { Ok(reader.user_names(org).await?) }).await?;
        push("user_names", d, v.len(), "names");
        Ok(out)
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = support::Args::parse("report_bench", &["agents", "days", "only", "rounds", "time-zone", "save"])?;
    let agents = args.number("agents", "REPORT_BENCH_AGENTS", 1_000)?;
    let days = args.number("days", "REPORT_BENCH_DAYS", 30)?;
    let rounds = args.number("rounds", "REPORT_BENCH_ROUNDS", 2)?;
    let only = args.get("only", "REPORT_BENCH_ONLY", "");
    let time_zone = parse_time_zone(&args.get("time-zone", "REPORT_BENCH_TIME_ZONE", "UTC"))?;
    let save = Some(args.get("save", "REPORT_BENCH_SAVE", "")).filter(|s| !s.is_empty()).map(PathBuf::from);
    if let Some(dir) = &save {
        std::fs::create_dir_all(dir)?;
    }
    let mut notes = Vec::new();

    let sim = SimThread::start(agents)?;
    let client = support::client(sim.base_url())?;
    client.authenticate().await?;
    let bench = Bench {
        client,
        queries: support::queries(support::MIXED)?,
        plan: support::plan(days)?,
        rounds,
        time_zone,
        save: save.clone(),
    };

    let mut lines = Vec::new();
    if only.is_empty() || only == "sqlite" {
        let dir = tempfile::tempdir()?;
        let path = save.as_deref().unwrap_or(dir.path()).join("report_bench.db");
        let _ = std::fs::remove_file(&path);
        lines.extend(bench.measure("SQLite", &format!("sqlite:{}", path.display()), "report-sqlite.html").await?);
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite:{}?mode=ro", path.display())).await?;
        let size: i64 =
            sqlx::query_scalar("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
                .fetch_one(&mut conn)
                .await?;
        conn.close().await?;
        notes.push(format!("SQLite database {:.0} MB", size as f64 / 1e6));
    }
    match support::database_url() {
        _ if !(only.is_empty() || only == "postgres") => {}
        None => notes.push("PostgreSQL skipped: set DATABASE_URL (cargo xtask bench sets one)".to_owned()),
        Some(admin_url) => {
            let scratch = Scratch::create(&admin_url, "report_bench").await?;
            notes.push(format!("PostgreSQL {}", scratch.version()));
            let measured = bench.measure("PostgreSQL", scratch.url(), "report-postgres.html").await;
            if measured.is_ok() {
                let mut conn = sqlx::PgConnection::connect(scratch.url()).await?;
                let size: i64 =
                    sqlx::query_scalar("SELECT pg_database_size(current_database())").fetch_one(&mut conn).await?;
                conn.close().await?;
                notes.push(format!("PostgreSQL database {:.0} MB", size as f64 / 1e6));
            }
            if save.is_some() {
                notes.push(format!("PostgreSQL database kept: {}", scratch.name()));
            } else {
                scratch.drop().await;
            }
            lines.extend(measured?);
        }
    }
    sim.stop();

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "report_bench: {agents} agents x {days} days, PT30M, conversation + status, report in {}; best of {rounds} \
         round(s); nproc = {cores}; peak RSS {:.0} MiB",
        time_zone.name(),
        support::peak_rss_mib()
    );
    for n in &notes {
        println!("{n}");
    }
    println!("| store | step | seconds | figure |");
    println!("|---|---|---:|---|");
    for l in &lines {
        let seconds = l.seconds.map(|s| format!("{s:.3}")).unwrap_or_default();
        println!("| {} | {} | {seconds} | {} |", l.store, l.step, l.figure);
    }
    for store in ["SQLite", "PostgreSQL"] {
        let of =
            |step: &str| lines.iter().find(|l| l.store == store && l.step.starts_with(step)).and_then(|l| l.seconds);
        if let (Some(build), Some(render)) = (of("build_report (all"), of("render_html")) {
            let total = build + render;
            println!(
                "{store}: report = build_report {build:.2} s + render_html {render:.2} s = {total:.2} s  \
                 [goal: renders in seconds: {}]",
                if total < 10.0 { "met" } else { "NOT met" }
            );
        }
    }
    Ok(())
}
