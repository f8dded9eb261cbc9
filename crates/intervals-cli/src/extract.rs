//! `genesys-intervals extract`.

use std::sync::Arc;

use intervals_adapters::genesys::MAX_USER_PREDICATES;
use intervals_adapters::genesys::{ConfigError, Environment};
use intervals_adapters::outputs::{redact_url, OutputSpec};
use intervals_app::{IngestReport, IngestRequest, Ingestor, Pacer, ProgressObserver};
use intervals_domain::{rfc3339, AggregateQuery, Plan, QuerySet};

use crate::args::ExtractArgs;
use crate::exit::CliError;
use crate::progress::ProgressDisplay;
use crate::settings::{extract_settings, ExtractSettings, SourceSettings};
use crate::wiring;

/// Plans of more than this many requests need `--yes` (the dry run shows them without it); the
/// daemon's `allow_large_backfill` guards the same number.
pub(crate) const LARGE_RUN_REQUESTS: usize = intervals_domain::LARGE_PLAN_REQUESTS;

/// The `--demo` source, as the plan and the summary name it.
const DEMO_SOURCE: &str = "the built-in simulator (--demo: 50 synthetic agents, seed 42)";

pub(crate) async fn run(args: &ExtractArgs) -> Result<(), CliError> {
    let settings = extract_settings(args)?;
    if settings.dry_run {
        print_plan(&settings);
        return Ok(());
    }
    check_size(&settings.plan, requests_per_window(&settings.queries), args.yes)?;
    // The source first: its configuration (environment, URLs) is checked without sending anything,
    // so a usage error leaves no output behind (a new database file, tables in PostgreSQL).
    let source = wiring::open_source(&settings.io, settings.use_jobs).await?;
    // Then the login, still before the output is opened: a login service that refuses, never
    // answers or does not resolve (a mistyped --environment) is exit 3 with nothing created.
    source.login().await?;
    let target = wiring::open_metrics(&settings.io.out, Arc::clone(settings.queries.layout()), settings.format).await?;
    let target = if settings.refetch { target.ignoring_checkpoints() } else { target };
    let names = match settings.io.source {
        SourceSettings::Demo => demo_names(&settings, &source).await?,
        SourceSettings::Genesys { .. } => None,
    };
    let progress = Arc::new(ProgressDisplay::new(args.output.progress));
    let ingestor =
        Ingestor::new(Arc::clone(&source.source), target, Arc::clone(&progress) as Arc<dyn ProgressObserver>);
    let request = IngestRequest {
        org: settings.io.org.to_string(),
        queries: settings.queries.clone(),
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
    print_summary(&settings, &report, retries, rate_limited, names);
    let resumable = settings.io.out.capabilities().checkpoints;
    if report.interrupted {
        return Err(CliError::Interrupted { resumable });
    }
    if !report.failed.is_empty() {
        return Err(CliError::WindowsFailed { failed: report.failed.len(), resumable });
    }
    Ok(())
}

/// The requests one window of the plan takes: one per query, times the batches of user ids a
/// filter by user needs (the API takes [`MAX_USER_PREDICATES`] per request).
fn requests_per_window(queries: &QuerySet) -> usize {
    queries.requests_per_window(MAX_USER_PREDICATES)
}

/// `one per window`, or how many a window takes.
fn per_window(requests_per_window: usize) -> String {
    match requests_per_window {
        1 => "one per window".to_owned(),
        n => format!("{n} per window"),
    }
}

/// `--demo` into a database also syncs the simulated users and queues (what `genesys-intervals
/// users` and `queues` do), so the views show names from the start; files hold metrics only.
async fn demo_names(settings: &ExtractSettings, source: &wiring::OpenSource) -> Result<Option<(u64, u64)>, CliError> {
    let caps = settings.io.out.capabilities();
    if !(caps.checkpoints && caps.directory) {
        return Ok(None);
    }
    let directory = wiring::open_directory(&settings.io.out).await?;
    let users = directory.write_users(settings.io.org.as_str(), &source.directory.users().await?).await?;
    let queues = directory.write_queues(settings.io.org.as_str(), &source.directory.queues().await?).await?;
    directory.finish().await?;
    Ok(Some((users, queues)))
}

/// Refuses a plan of more than [`LARGE_RUN_REQUESTS`] requests unless `yes`, showing its size.
fn check_size(plan: &Plan, requests_per_window: usize, yes: bool) -> Result<(), CliError> {
    let requests = plan.windows().len() * requests_per_window;
    if yes || requests <= LARGE_RUN_REQUESTS {
        return Ok(());
    }
    Err(CliError::usage(format!(
        "this run sends {} requests ({}) for {} .. {}, about {} at the default limit of {} \
         requests/min; a run of more than {} requests needs --yes: pass --yes to go ahead (--dry-run shows the plan)",
        thousands(requests),
        per_window(requests_per_window),
        rfc3339(plan.range().start()),
        rfc3339(plan.range().end()),
        estimate(requests),
        Pacer::DEFAULT_REQUESTS_PER_MINUTE,
        thousands(LARGE_RUN_REQUESTS),
    )))
}

/// The least time `requests` take when the pacer spaces them for the default rate limit (with its
/// headroom), in a unit a person reads.
fn estimate(requests: usize) -> String {
    let per_minute = f64::from(Pacer::DEFAULT_REQUESTS_PER_MINUTE) * Pacer::HEADROOM;
    human_duration(requests as f64 * 60.0 / per_minute)
}

/// `< 1 s`, whole seconds under 2 minutes, whole minutes under 2 hours, then hours.
fn human_duration(seconds: f64) -> String {
    if seconds < 1.0 {
        "< 1 s".to_owned()
    } else if seconds < 120.0 {
        format!("{seconds:.0} s")
    } else if seconds < 2.0 * 3600.0 {
        format!("{:.0} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// `18263` as `18,263`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Where the requests would go, for the dry run: never a secret.
fn describe_source(source: &SourceSettings) -> String {
    match source {
        SourceSettings::Demo => DEMO_SOURCE.to_owned(),
        SourceSettings::Genesys { environment, api_url, login_url, .. } => {
            match Environment::resolve(environment.as_deref(), api_url.as_deref(), login_url.as_deref()) {
                Ok(env) => {
                    let urls = format!("API {}, login {}", redact_url(env.api_url()), redact_url(env.login_url()));
                    match environment.as_deref().map(str::trim).filter(|e| !e.is_empty()) {
                        Some(name) if api_url.is_none() => format!("Genesys Cloud {name} ({urls})"),
                        _ => urls,
                    }
                }
                Err(ConfigError::NoEnvironment) => {
                    "not set (a run needs --environment or GENESYS_ENVIRONMENT, or --api-url and --login-url)"
                        .to_owned()
                }
                Err(e) => format!("not usable: {e}"),
            }
        }
    }
}

/// Whether the credentials a run needs are there, for the dry run: never their values.
fn describe_credentials(source: &SourceSettings) -> &'static str {
    match source {
        SourceSettings::Demo => "not needed (--demo)",
        SourceSettings::Genesys { credentials, .. }
            if !credentials.client_id.trim().is_empty() && !credentials.client_secret.trim().is_empty() =>
        {
            "set"
        }
        SourceSettings::Genesys { .. } => {
            "not set (a run needs GENESYS_CLIENT_ID and GENESYS_CLIENT_SECRET, or client_id and client_secret \
             in the --config file)"
        }
    }
}

/// What an interrupted or failed run kept in `out`, and what running it again does.
fn rerun_advice(out: &OutputSpec, interrupted: bool) -> String {
    if out.capabilities().checkpoints {
        let action = if interrupted { "continue" } else { "retry the failed windows" };
        format!(
            "the windows written are kept in {out}: run the same command again to {action}; finished windows are \
             not fetched again"
        )
    } else {
        format!(
            "nothing was written to {out}: CSV and JSON Lines are written only when every window succeeded; run \
             again to start over"
        )
    }
}

fn print_plan(s: &ExtractSettings) {
    let qs = &s.queries;
    let windows = s.plan.windows();
    let buckets: usize = windows.iter().map(|w| w.bucket_count(qs.granularity(), qs.time_zone())).sum();
    let per_window_requests = requests_per_window(qs);
    let requests = windows.len() * per_window_requests;
    let rate = Pacer::DEFAULT_REQUESTS_PER_MINUTE;
    println!("Plan (dry run: nothing is sent)");
    println!("  range:       {} .. {}", rfc3339(s.plan.range().start()), rfc3339(s.plan.range().end()));
    if let Some((requested, _)) = s.plan.adjustment() {
        println!("  note:        requested {requested} was rounded outward to whole {} buckets", qs.granularity());
    }
    println!("  granularity: {} in {}", qs.granularity(), qs.time_zone());
    if let Some(preset) = s.preset {
        println!(
            "  preset:      {} (by {}; --metrics and --group-by win over it)",
            preset,
            preset.group_by().join(",")
        );
    }
    for q in qs.queries() {
        print_query(q);
    }
    println!(
        "  windows:     {} of at most {} ({} buckets)",
        thousands(windows.len()),
        s.max_window,
        thousands(buckets)
    );
    println!(
        "  requests:    {} ({}, all agents at once; more only if the API asks to split)",
        thousands(requests),
        per_window(per_window_requests)
    );
    println!(
        "  est. time:   {} at the default limit of {rate} requests/min (more if responses are slow)",
        estimate(requests)
    );
    if requests > LARGE_RUN_REQUESTS {
        println!("  note:        more than {} requests: the run needs --yes", thousands(LARGE_RUN_REQUESTS));
    }
    println!("  source:      {}", describe_source(&s.io.source));
    println!("  credentials: {}", describe_credentials(&s.io.source));
    println!("  output:      {} (org {:?})", s.io.out, s.io.org.as_str());
    for w in windows.iter().take(10) {
        println!("    {w}");
    }
    if windows.len() > 10 {
        println!("    ... and {} more", windows.len() - 10);
    }
}

/// One query of the plan: its endpoint, metrics, grouping, filters and fingerprint.
fn print_query(q: &AggregateQuery) {
    let join = |items: &[String]| items.join(",");
    let endpoint = match q.family() {
        intervals_domain::MetricFamily::Conversation => "conversations/aggregates",
        intervals_domain::MetricFamily::UserStatus => "users/aggregates",
    };
    println!("  query:       {} metrics ({endpoint}), fingerprint {}", q.family(), q.fingerprint());
    println!("    metrics:     {}", q.metrics().iter().map(|m| m.as_str()).collect::<Vec<_>>().join(","));
    println!("    group by:    {}", q.group_by().iter().map(|d| d.as_str()).collect::<Vec<_>>().join(","));
    if !q.filters().media_types().is_empty() {
        println!("    media types: {}", join(q.filters().media_types()));
    }
    if !q.filters().queue_ids().is_empty() {
        println!("    queues:      {}", join(q.filters().queue_ids()));
    }
    let users = q.filters().user_ids();
    if !users.is_empty() {
        println!(
            "    users:       {} ({} per request, {} requests per window)",
            users.len(),
            MAX_USER_PREDICATES,
            users.len().div_ceil(MAX_USER_PREDICATES)
        );
    }
}

fn print_summary(s: &ExtractSettings, r: &IngestReport, retries: u64, rate_limited: u64, names: Option<(u64, u64)>) {
    let q = &s.queries;
    let mut out = String::new();
    let complete = !r.interrupted && r.failed.is_empty();
    // An output without checkpoints is written at the end only: until then rows are merely fetched.
    let kept = complete || s.io.out.capabilities().checkpoints;
    let written = if kept { "written" } else { "fetched" };
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
        s.io.org.as_str()
    ));
    let families: Vec<&str> = q.queries().iter().map(|q| q.family().describe()).collect();
    let per_query = match families.len() {
        1 => String::new(),
        n => format!(" ({} windows x {n} queries: {})", r.windows_total / n, families.join(" and ")),
    };
    out.push_str(&format!(
        "  windows:  {} planned{per_query}, {} already done, {} {written}{}, {} failed\n",
        r.windows_total,
        r.windows_skipped,
        r.windows_written,
        if r.windows_split > 0 { format!(" ({} split)", r.windows_split) } else { String::new() },
        r.failed.len()
    ));
    out.push_str(&format!("  rows:     {} metric values {written}, {} stale grains removed\n", r.rows, r.rows_deleted));
    out.push_str(&format!(
        "  requests: {} ({} retries, {} rate-limited) in {:.1} s\n",
        r.source_calls + retries,
        retries,
        rate_limited,
        r.elapsed.as_secs_f64()
    ));
    for f in &r.failed {
        out.push_str(&format!("  FAILED {} ({} query): {}\n", f.window, f.family, f.error));
    }
    if matches!(s.io.source, SourceSettings::Demo) {
        out.push_str(&format!("  source:   {DEMO_SOURCE}\n"));
    }
    if let Some((users, queues)) = names {
        out.push_str(&format!("  names:    {users} users and {queues} queues synced (the users and queues tables)\n"));
    }
    if kept {
        out.push_str(&format!("  data:     {}\n", s.io.out));
    }
    if complete {
        if let Some(hint) = s.io.out.config().look_hint() {
            out.push_str(&format!("  look:     {hint}\n"));
        }
        if names.is_some() {
            // The demo into a database: the report reads it back.
            let db = s.io.out.to_string();
            let db = if db == crate::settings::DEFAULT_OUT { String::new() } else { format!(" --db {db}") };
            out.push_str(&format!(
                "  report:   genesys-intervals report{db} --time-zone {} --out report.html\n",
                q.time_zone()
            ));
        }
    } else {
        out.push_str(&format!("  next:     {}\n", rerun_advice(&s.io.out, r.interrupted)));
    }
    eprint!("{out}");
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use intervals_adapters::outputs::Registry;
    use intervals_domain::{Granularity, MaxWindow, Plan, PlanRequest, TimeSpec, Tz};

    use super::{check_size, estimate, human_duration, rerun_advice, thousands, LARGE_RUN_REQUESTS};
    use crate::args::Cli;

    fn daily_plan(from: &str, to: &str) -> Plan {
        Plan::new(PlanRequest {
            from: TimeSpec::parse(from).unwrap(),
            to: TimeSpec::parse(to).unwrap(),
            granularity: Granularity::P1d,
            time_zone: Tz::UTC,
            max_window: MaxWindow::DEFAULT,
        })
        .unwrap()
    }

    #[test]
    fn durations_read_in_a_sensible_unit() {
        let table: &[(f64, &str)] = &[
            (0.0, "< 1 s"),
            (0.4, "< 1 s"),
            (1.0, "1 s"),
            (1.6, "2 s"),
            (59.0, "59 s"),
            (119.0, "119 s"),
            (120.0, "2 min"),
            (487.0, "8 min"),
            (3600.0, "60 min"),
            (7199.0, "120 min"),
            (7200.0, "2.0 h"),
            (4.5 * 3600.0, "4.5 h"),
        ];
        for (seconds, want) in table {
            assert_eq!(human_duration(*seconds), *want, "{seconds} s");
        }
        // At the default 300 requests/min, paced with 10 % headroom.
        assert_eq!(estimate(1), "< 1 s");
        assert_eq!(estimate(7), "2 s");
        assert_eq!(estimate(2_192), "8 min");
        assert_eq!(estimate(18_263), "68 min");
        assert_eq!(estimate(100_000), "6.2 h");
    }

    #[test]
    fn thousands_are_separated() {
        let table: &[(usize, &str)] =
            &[(0, "0"), (7, "7"), (999, "999"), (1_000, "1,000"), (18_263, "18,263"), (1_234_567, "1,234,567")];
        for (n, want) in table {
            assert_eq!(thousands(*n), *want);
        }
    }

    #[test]
    fn a_large_run_needs_yes() {
        // 2020 has 366 days: 2,000 windows is the largest plan that runs without --yes.
        let small = daily_plan("2020-01-01", "2025-06-23");
        assert_eq!(small.windows().len(), LARGE_RUN_REQUESTS);
        assert!(check_size(&small, 1, false).is_ok());

        let six_years = daily_plan("2019-01-01", "2025-01-01");
        assert_eq!(six_years.windows().len(), 2_192);
        let err = check_size(&six_years, 1, false).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert_eq!(
            err.to_string(),
            "this run sends 2,192 requests (one per window) for 2019-01-01T00:00:00Z .. 2025-01-01T00:00:00Z, about \
             8 min at the default limit of 300 requests/min; a run of more than 2,000 requests needs --yes: pass \
             --yes to go ahead (--dry-run shows the plan)"
        );
        assert!(check_size(&six_years, 1, true).is_ok());
    }

    #[test]
    fn the_help_states_the_limit_of_yes() {
        let mut cli = Cli::command();
        let help = cli.find_subcommand_mut("extract").unwrap().render_long_help().to_string();
        let limit =
            format!("--yes\n          Go ahead with a run of more than {} requests", thousands(LARGE_RUN_REQUESTS));
        assert!(help.contains(&limit), "{help}");
    }

    #[test]
    fn an_unfinished_run_says_what_was_kept() {
        let parse = |out: &str| Registry::builtin().parse(out).unwrap();
        // (output, interrupted, advice)
        let table: &[(&str, bool, &str)] = &[
            (
                "csv:x.csv",
                true,
                "nothing was written to csv:x.csv: CSV and JSON Lines are written only when every window succeeded; \
                 run again to start over",
            ),
            (
                "csv:x.csv",
                false,
                "nothing was written to csv:x.csv: CSV and JSON Lines are written only when every window succeeded; \
                 run again to start over",
            ),
            (
                "csv:-",
                true,
                "nothing was written to csv:-: CSV and JSON Lines are written only when every window succeeded; run \
                 again to start over",
            ),
            (
                "jsonl:x.jsonl",
                true,
                "nothing was written to jsonl:x.jsonl: CSV and JSON Lines are written only when every window \
                 succeeded; run again to start over",
            ),
            (
                "sqlite:x.db",
                true,
                "the windows written are kept in sqlite:x.db: run the same command again to continue; finished \
                 windows are not fetched again",
            ),
            (
                "sqlite:x.db",
                false,
                "the windows written are kept in sqlite:x.db: run the same command again to retry the failed \
                 windows; finished windows are not fetched again",
            ),
            (
                "parquet:out",
                true,
                "the windows written are kept in parquet:out: run the same command again to continue; finished \
                 windows are not fetched again",
            ),
        ];
        for (out, interrupted, want) in table {
            assert_eq!(rerun_advice(&parse(out), *interrupted), *want, "{out}, interrupted: {interrupted}");
        }
    }

    #[test]
    fn the_exit_message_agrees_with_the_output() {
        use crate::exit::CliError;
        let table: &[(CliError, u8, &str)] = &[
            (CliError::Interrupted { resumable: true }, 130, "interrupted; run the same command again to continue"),
            (
                CliError::Interrupted { resumable: false },
                130,
                "interrupted; nothing was written: run again to start over",
            ),
            (
                CliError::WindowsFailed { failed: 2, resumable: true },
                1,
                "2 window(s) failed; run the same command again to retry them",
            ),
            (
                CliError::WindowsFailed { failed: 2, resumable: false },
                1,
                "2 window(s) failed; nothing was written: run again to start over",
            ),
        ];
        for (err, code, want) in table {
            assert_eq!(err.to_string(), *want);
            assert_eq!(err.exit_code(), *code);
        }
    }
}
