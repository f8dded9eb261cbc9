//! `genesys-intervals extract`.

use std::sync::Arc;

use intervals_app::{IngestReport, IngestRequest, Ingestor, Pacer, ProgressObserver};
use intervals_domain::rfc3339;

use crate::args::ExtractArgs;
use crate::exit::CliError;
use crate::progress::ProgressDisplay;
use crate::settings::{extract_settings, ExtractSettings, SourceSettings};
use crate::wiring;

pub(crate) async fn run(args: &ExtractArgs) -> Result<(), CliError> {
    let settings = extract_settings(args)?;
    if settings.dry_run {
        print_plan(&settings);
        return Ok(());
    }
    // The source first: its configuration (environment, URLs) is checked without sending anything,
    // so a usage error leaves no output behind (a new database file, tables in PostgreSQL).
    let source = wiring::open_source(&settings.io, settings.use_jobs).await?;
    let target = wiring::open_metrics(&settings.io.out, Arc::clone(&settings.query), settings.format).await?;
    let target = if settings.refetch { target.ignoring_checkpoints() } else { target };
    let progress = Arc::new(ProgressDisplay::new(args.output.progress));
    let ingestor =
        Ingestor::new(Arc::clone(&source.source), target, Arc::clone(&progress) as Arc<dyn ProgressObserver>);
    let request = IngestRequest {
        org: settings.io.org.clone(),
        query: Arc::clone(&settings.query),
        plan: settings.plan.clone(),
        concurrency: settings.io.concurrency,
    };
    if let Some((requested, aligned)) = settings.plan.adjustment() {
        tracing::warn!(%requested, %aligned, "range rounded outward to whole buckets");
    }
    let outcome = ingestor.run(&request, intervals_runtime::shutdown_signal()).await;
    progress.finish();
    let report = outcome.map_err(|e| match e {
        intervals_app::IngestError::Source(e) => CliError::Source(e),
        intervals_app::IngestError::Sink(e) => CliError::Sink(e),
    })?;
    let retries = source.counters.retries();
    let rate_limited = source.counters.rate_limited();
    source.shutdown().await;
    print_summary(&settings, &report, retries, rate_limited);
    if report.interrupted {
        return Err(CliError::Interrupted);
    }
    if !report.failed.is_empty() {
        return Err(CliError::WindowsFailed(report.failed.len()));
    }
    Ok(())
}

fn print_plan(s: &ExtractSettings) {
    let q = &s.query;
    let windows = s.plan.windows();
    let buckets: usize = windows.iter().map(|w| w.bucket_count(q.granularity(), q.time_zone())).sum();
    let rate = Pacer::DEFAULT_REQUESTS_PER_MINUTE;
    let minutes = windows.len() as f64 / f64::from(rate);
    println!("Plan (dry run: nothing is sent)");
    println!("  range:       {} .. {}", rfc3339(s.plan.range().start()), rfc3339(s.plan.range().end()));
    if let Some((requested, _)) = s.plan.adjustment() {
        println!("  note:        requested {requested} was rounded outward to whole {} buckets", q.granularity());
    }
    println!("  granularity: {} in {}", q.granularity(), q.time_zone());
    println!("  metrics:     {}", q.metrics().iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","));
    println!("  group by:    {}", q.group_by().iter().map(|d| d.as_str()).collect::<Vec<_>>().join(","));
    if !q.filters().media_types().is_empty() {
        println!("  media types: {}", q.filters().media_types().join(","));
    }
    if !q.filters().queue_ids().is_empty() {
        println!("  queues:      {}", q.filters().queue_ids().join(","));
    }
    println!("  windows:     {} of at most {} ({} buckets)", windows.len(), s.max_window, buckets);
    println!(
        "  requests:    {} (one per window, all agents at once; more only if the API asks to split)",
        windows.len()
    );
    println!(
        "  est. time:   {:.1} min at the default limit of {rate} requests/min (usually less: responses take time too)",
        minutes
    );
    println!("  output:      {} (org {:?})", s.io.out, s.io.org);
    println!("  fingerprint: {}", q.fingerprint());
    for w in windows.iter().take(10) {
        println!("    {w}");
    }
    if windows.len() > 10 {
        println!("    ... and {} more", windows.len() - 10);
    }
}

fn print_summary(s: &ExtractSettings, r: &IngestReport, retries: u64, rate_limited: u64) {
    let q = &s.query;
    let mut out = String::new();
    let status = if r.interrupted {
        "Interrupted"
    } else if r.failed.is_empty() {
        "Done"
    } else {
        "Finished with failures"
    };
    out.push_str(&format!(
        "{status}: {} .. {} ({} buckets in {}), org {:?}\n",
        rfc3339(s.plan.range().start()),
        rfc3339(s.plan.range().end()),
        q.granularity(),
        q.time_zone(),
        s.io.org
    ));
    out.push_str(&format!(
        "  windows:  {} planned, {} already done, {} written{}, {} failed\n",
        r.windows_total,
        r.windows_skipped,
        r.windows_written,
        if r.windows_split > 0 { format!(" ({} split)", r.windows_split) } else { String::new() },
        r.failed.len()
    ));
    out.push_str(&format!("  rows:     {} metric values written, {} stale grains removed\n", r.rows, r.rows_deleted));
    out.push_str(&format!(
        "  requests: {} ({} retries, {} rate-limited) in {:.1} s\n",
        r.source_calls + retries,
        retries,
        rate_limited,
        r.elapsed.as_secs_f64()
    ));
    for f in &r.failed {
        out.push_str(&format!("  FAILED {}: {}\n", f.window, f.error));
    }
    if matches!(s.io.source, SourceSettings::Demo) {
        out.push_str("  source:   the built-in simulator (--demo: 50 synthetic agents, seed 42)\n");
    }
    out.push_str(&format!("  data:     {}\n", s.io.out));
    if !r.interrupted && r.failed.is_empty() {
        if let Some(hint) = s.io.out.config().look_hint() {
            out.push_str(&format!("  look:     {hint}\n"));
        }
    }
    eprint!("{out}");
}
