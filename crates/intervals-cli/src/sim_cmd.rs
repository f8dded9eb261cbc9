//! `genesys-intervals sim serve` and `sim truth`.

use std::time::Duration;

use intervals_domain::{Filters, MaxWindow, Plan, PlanRequest, QuerySpec, TimeSpec};
use intervals_runtime::shutdown_signal;
use intervals_sim::SimConfig;

use crate::args::{SimOrgArgs, SimServeArgs, SimTruthArgs};
use crate::exit::CliError;
use crate::settings::{build_queries, split};

fn org_config(org: &SimOrgArgs) -> SimConfig {
    SimConfig { agents: org.agents, seed: org.seed, ..SimConfig::default() }
}

pub(crate) async fn serve(args: &SimServeArgs) -> Result<(), CliError> {
    if !(0.0..=1.0).contains(&args.fail_rate) {
        return Err(CliError::usage("--fail-rate must be between 0 and 1"));
    }
    if args.rate_per_minute == 0 {
        return Err(CliError::usage("--rate-per-minute must be at least 1"));
    }
    let defaults = SimConfig::default();
    let config = SimConfig {
        rate_per_minute: args.rate_per_minute,
        fail_rate: args.fail_rate,
        latency: Duration::from_millis(args.latency_ms),
        max_span_days: args.max_span_days,
        token_ttl: Duration::from_secs(args.token_ttl),
        client_id: args.client_id.clone().unwrap_or(defaults.client_id),
        client_secret: args.client_secret.clone().unwrap_or(defaults.client_secret),
        ..org_config(&args.org)
    };
    let sim = intervals_sim::spawn(config, args.port)
        .await
        .map_err(|e| CliError::usage(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
    println!("listening on {}", sim.base_url());
    tracing::info!(url = %sim.base_url(), agents = args.org.agents, seed = args.org.seed, "simulator started");
    shutdown_signal().await;
    sim.shutdown().await;
    Ok(())
}

pub(crate) fn truth(args: &SimTruthArgs) -> Result<(), CliError> {
    let usage = |e: intervals_domain::DomainError| CliError::usage(e.to_string());
    let filters = Filters::new(
        &split(args.media_type.as_deref().unwrap_or_default()),
        &split(args.queue_id.as_deref().unwrap_or_default()),
    )
    .and_then(|f| f.with_user_ids(&split(args.user_id.as_deref().unwrap_or_default())))
    .map_err(usage)?;
    // The queries `extract` makes of the same flags, defaults and presets included.
    let spec = QuerySpec {
        preset: args.preset.as_deref(),
        metrics: args.metrics.as_deref(),
        group_by: args.group_by.as_deref(),
        granularity: args.granularity.as_deref(),
        time_zone: args.time_zone.as_deref(),
        default_preset: None,
    };
    let queries = build_queries(&spec, filters)?.queries;
    let plan = Plan::new(PlanRequest {
        from: TimeSpec::parse(&args.from).map_err(usage)?,
        to: TimeSpec::parse(&args.to).map_err(usage)?,
        granularity: queries.granularity(),
        time_zone: queries.time_zone(),
        max_window: MaxWindow::DEFAULT,
    })
    .map_err(usage)?;
    print!("{}", intervals_sim::truth_csv(&org_config(&args.org), &queries, plan.range()));
    Ok(())
}
