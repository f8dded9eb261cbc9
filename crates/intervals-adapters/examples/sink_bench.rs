//! Speed of the sinks on synthetic rows.
//!
//! ```text
//! cargo run --release --example sink_bench -p intervals-adapters -- [--agents 2000] [--days 1] [--only csv]
//! ```
//! Rows: agents x days x 48 half-hour buckets x 6 metrics, one window per day, grouped by userId
//! and mediaType.
//!
//! - (a) PostgreSQL (needs DATABASE_URL, a role that may create databases): in a scratch database,
//!   upserts every window into the already populated table with changed values, against a
//!   reference run in the same process: psql `\copy` of the same grains into the same staging
//!   table + the same `INSERT ... ON CONFLICT`. Goal: sink / reference <= 1.25.
//! - (b) SQLite: values per second, first load and upsert into the populated file. Goal >= 100,000.
//! - (c) CSV (long): rows per second from the first write to the renamed file. Goal >= 1,000,000.

use std::error::Error;
use std::io::Write as _;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, TimeZone, Utc};
use intervals_adapters::sinks::{
    staging_copy, staging_table, upsert_from_staging, CsvLayout, CsvSink, CsvTarget, PostgresSink, SqliteSink,
};
use intervals_app::{Sink, WindowKey};
use intervals_domain::{AggregateQuery, Filters, Granularity, MetricName, MetricRow, Stats, TimeWindow, Tz};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

const METRICS: &str = "tHandle,tAcw,tHeldComplete,tTalkComplete,tAnswered,nConnected";
const ORG: &str = "bench";

struct Args {
    agents: usize,
    days: usize,
    only: Option<String>,
}

fn args() -> Result<Args> {
    let mut out = Args { agents: 2000, days: 1, only: None };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--agents" => out.agents = value.parse()?,
            "--days" => out.days = value.parse()?,
            "--only" => out.only = Some(value),
            other => {
                return Err(
                    format!("unknown argument {other}; use --agents N --days D [--only postgres|sqlite|csv]").into()
                )
            }
        }
    }
    Ok(out)
}

/// One window per day; `variant` changes every value.
fn windows(q: &Arc<AggregateQuery>, a: &Args, variant: u64) -> Vec<(WindowKey, Vec<MetricRow>)> {
    let metrics = q.metrics().to_vec();
    let first = Utc.with_ymd_and_hms(2025, 3, 10, 0, 0, 0).unwrap();
    (0..a.days)
        .map(|d| {
            let start = first + Duration::days(d as i64);
            let window = TimeWindow::new(start, start + Duration::days(1)).unwrap();
            let mut rows = Vec::with_capacity(a.agents * 48 * metrics.len());
            for agent in 0..a.agents {
                let user = format!("5e1f0000-0000-4000-8000-{agent:012x}");
                for b in 0..48 {
                    let s = start + Duration::minutes(30 * b);
                    let bucket = TimeWindow::new(s, s + Duration::minutes(30)).unwrap();
                    for (i, m) in metrics.iter().enumerate() {
                        rows.push(MetricRow::new(
                            vec![user.clone(), "voice".to_owned()],
                            bucket,
                            *m,
                            None,
                            stats(*m, agent as u64 + b as u64 + i as u64 + variant),
                        ));
                    }
                }
            }
            (WindowKey::new(ORG, q.clone(), window), rows)
        })
        .collect()
}

fn stats(m: MetricName, seed: u64) -> Stats {
    let count = 1 + seed % 9;
    if !m.is_timer() {
        return Stats { count: Some(count), ..Stats::default() };
    }
    let min = 1000.0 + (seed % 97) as f64 * 250.0;
    let max = min + 60_000.0 + (seed % 13) as f64 * 1000.0;
    Stats {
        count: Some(count),
        sum: Some(min * count as f64 + 500.0),
        min: Some(min),
        max: Some(max),
        ..Stats::default()
    }
}

fn rate(n: u64, d: StdDuration) -> f64 {
    n as f64 / d.as_secs_f64()
}

struct Line {
    measure: String,
    amount: String,
    seconds: f64,
    figure: String,
    goal: String,
    met: Option<bool>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = args()?;
    let q = Arc::new(AggregateQuery::new(
        AggregateQuery::parse_metrics(METRICS)?,
        AggregateQuery::parse_group_by("userId,mediaType")?,
        Granularity::Pt30m,
        Tz::UTC,
        Filters::none(),
    )?);
    let values = (a.agents * a.days * 48 * q.metrics().len()) as u64;
    eprintln!("generating {} agents x {} day(s) x 48 buckets x {} metrics = {values} values", a.agents, a.days, 6);
    let first = windows(&q, &a, 0);
    let mut lines = Vec::new();
    let mut notes = Vec::new();

    let run = |name: &str| a.only.as_deref().is_none_or(|o| o == name);

    // (a) PostgreSQL.
    match std::env::var("DATABASE_URL") {
        _ if !run("postgres") => {}
        Ok(url) if !url.is_empty() => lines.extend(postgres(&url, &q, &a, &first, values, &mut notes).await?),
        _ => notes.push("(a) PostgreSQL skipped: set DATABASE_URL to a role that may create databases".to_owned()),
    }

    // (b) SQLite.
    if run("sqlite") {
        let dir = tempfile::tempdir()?;
        let sink = SqliteSink::open(dir.path().join("bench.db")).await?;
        let t = Instant::now();
        for (k, rows) in &first {
            sink.write_window(k, rows).await?;
        }
        let load = t.elapsed();
        let changed = windows(&q, &a, 1);
        let t = Instant::now();
        for (k, rows) in &changed {
            sink.write_window(k, rows).await?;
        }
        let upsert = t.elapsed();
        for (name, d) in [("(b) SQLite, first load", load), ("(b) SQLite, upsert into populated file", upsert)] {
            let r = rate(values, d);
            lines.push(Line {
                measure: name.to_owned(),
                amount: format!("{values} values"),
                seconds: d.as_secs_f64(),
                figure: format!("{r:.0} values/s"),
                goal: ">= 100000 values/s".to_owned(),
                met: Some(r >= 100_000.0),
            });
        }
    }

    // (c) CSV.
    if run("csv") {
        let dir = tempfile::tempdir()?;
        let target = dir.path().join("bench.csv");
        let t = Instant::now();
        let sink = CsvSink::create(CsvTarget::Path(target.clone()), q.clone(), CsvLayout::Long)?;
        for (k, rows) in first.iter().rev() {
            sink.write_window(k, rows).await?;
        }
        let spilled = t.elapsed();
        sink.finish().await?;
        notes.push(format!("(c) CSV: runs spilled after {spilled:?}, merged and renamed after {:?}", t.elapsed()));
        let d = t.elapsed();
        let r = rate(values, d);
        let size = std::fs::metadata(&target)?.len();
        lines.push(Line {
            measure: "(c) CSV long, write + sort + merge + rename".to_owned(),
            amount: format!("{values} rows, {} MB", size / 1_000_000),
            seconds: d.as_secs_f64(),
            figure: format!("{r:.0} rows/s"),
            goal: ">= 1000000 rows/s".to_owned(),
            met: Some(r >= 1_000_000.0),
        });
    }

    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("sink_bench: {} agents x {} day(s) x 48 buckets x 6 metrics; nproc = {cores}", a.agents, a.days);
    for n in &notes {
        println!("{n}");
    }
    println!("| measure | amount | seconds | figure | goal | met |");
    println!("|---|---|---:|---:|---|---|");
    for l in &lines {
        let met = match l.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        println!("| {} | {} | {:.2} | {} | {} | {met} |", l.measure, l.amount, l.seconds, l.figure, l.goal);
    }
    Ok(())
}

/// (a): sink vs psql reference in a scratch database, alternating three times, best of each.
async fn postgres(
    url: &str,
    q: &Arc<AggregateQuery>,
    a: &Args,
    first: &[(WindowKey, Vec<MetricRow>)],
    values: u64,
    notes: &mut Vec<String>,
) -> Result<Vec<Line>> {
    use sqlx::Connection;
    let psql = if std::path::Path::new("/usr/bin/psql").exists() { "/usr/bin/psql" } else { "psql" };
    let scratch = format!("sink_bench_{}", std::process::id());
    let mut admin = sqlx::PgConnection::connect(url).await?;
    let version: String = sqlx::query_scalar("SHOW server_version").fetch_one(&mut admin).await?;
    sqlx::query(&format!("CREATE DATABASE {scratch}")).execute(&mut admin).await?;
    let mut bench_url = url::Url::parse(url)?;
    bench_url.set_path(&format!("/{scratch}"));
    let bench_url = bench_url.to_string();

    let result = async {
        let sink = PostgresSink::connect(&bench_url).await?;
        let t = Instant::now();
        for (k, rows) in first {
            sink.write_window(k, rows).await?;
        }
        let load = t.elapsed();
        let dir = tempfile::tempdir()?;
        let mut sink_times = Vec::new();
        let mut reference_times = Vec::new();
        for round in 0..3u64 {
            let changed = windows(q, a, 1 + 2 * round);
            let t = Instant::now();
            for (k, rows) in &changed {
                sink.write_window(k, rows).await?;
            }
            sink_times.push(t.elapsed());

            // The reference: the same grains, loaded by psql into the same staging table and merged
            // by the same statement.
            let changed = windows(q, a, 2 + 2 * round);
            let mut scripts = Vec::new();
            for (i, (_, rows)) in changed.iter().enumerate() {
                let data = dir.path().join(format!("grains-{round}-{i}.copy"));
                std::fs::write(&data, staging_copy(q, rows)?)?;
                let keys: Vec<&str> = q.metrics().iter().map(|m| m.as_str()).collect();
                let script = dir.path().join(format!("merge-{round}-{i}.sql"));
                let mut f = std::fs::File::create(&script)?;
                writeln!(f, "BEGIN;")?;
                writeln!(f, "{};", staging_table())?;
                writeln!(f, "\\copy pg_temp.grains_staging FROM '{}' (FORMAT binary)", data.display())?;
                writeln!(
                    f,
                    "PREPARE upsert(text, text, timestamptz, text[]) AS {};",
                    upsert_from_staging(q.metrics())
                )?;
                writeln!(f, "EXECUTE upsert('{ORG}', 'PT30M', now(), '{{{}}}');", keys.join(","))?;
                writeln!(f, "COMMIT;")?;
                scripts.push(script);
            }
            let t = Instant::now();
            for script in &scripts {
                let out = Command::new(psql)
                    .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &bench_url, "-f"])
                    .arg(script)
                    .output()?;
                if !out.status.success() {
                    return Err(format!("psql failed: {}", String::from_utf8_lossy(&out.stderr)).into());
                }
            }
            reference_times.push(t.elapsed());
        }
        sink.pool().close().await;
        Ok::<_, Box<dyn Error>>((load, sink_times, reference_times))
    }
    .await;

    let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {scratch} WITH (FORCE)")).execute(&mut admin).await;
    let (load, sink_times, reference_times) = result?;
    let best = |v: &[StdDuration]| v.iter().min().copied().unwrap_or_default();
    let (s, r) = (best(&sink_times), best(&reference_times));
    let ratio = s.as_secs_f64() / r.as_secs_f64();
    notes.push(format!(
        "(a) PostgreSQL {version}: sink runs {:?}, psql reference runs {:?} (best of each used)",
        sink_times, reference_times
    ));
    Ok(vec![
        Line {
            measure: "(a) PostgreSQL sink, first load".to_owned(),
            amount: format!("{values} values"),
            seconds: load.as_secs_f64(),
            figure: format!("{:.0} values/s", rate(values, load)),
            goal: String::new(),
            met: None,
        },
        Line {
            measure: "(a) PostgreSQL psql \\copy + upsert (reference)".to_owned(),
            amount: format!("{values} values"),
            seconds: r.as_secs_f64(),
            figure: format!("{:.0} values/s", rate(values, r)),
            goal: String::new(),
            met: None,
        },
        Line {
            measure: "(a) PostgreSQL sink, upsert into populated table".to_owned(),
            amount: format!("{values} values"),
            seconds: s.as_secs_f64(),
            figure: format!("{ratio:.2}x reference"),
            goal: "<= 1.25x".to_owned(),
            met: Some(ratio <= 1.25),
        },
    ])
}
