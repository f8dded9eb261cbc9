//! Command-line grammar (clap). Values stay strings here: `settings` parses them into domain types
//! after merging flags, environment and the config file, so every error says which input was bad.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use intervals_runtime::LogFormat;

use crate::settings::default_metrics;

/// Pull per-agent, per-interval handling metrics from the Genesys Cloud analytics API into SQLite,
/// CSV, JSON Lines or PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "genesys-intervals", version, about, long_about = None, propagate_version = true)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Extract interval metrics for a date range (resumable, idempotent).
    Extract(Box<ExtractArgs>),
    /// Sync the users dimension (every state: active, inactive, deleted).
    Users(DirectoryArgs),
    /// Sync the routing queues dimension.
    Queues(DirectoryArgs),
    /// Write a self-contained HTML report of what a database holds (sends no request).
    Report(ReportArgs),
    /// Run or query the built-in Genesys Cloud simulator.
    #[command(subcommand)]
    Sim(SimCommand),
}

/// `genesys-intervals report`.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReportArgs {
    /// The database to read: sqlite:PATH or postgres://... [default: sqlite:genesys-intervals.db].
    #[arg(long, value_name = "URL")]
    pub(crate) db: Option<String>,
    /// Org label to show [default: the only one stored].
    #[arg(long, value_name = "LABEL")]
    pub(crate) org: Option<String>,
    /// Inclusive start: a date (midnight in --time-zone) or an RFC 3339 timestamp [default: the first
    /// stored interval].
    #[arg(long, value_name = "WHEN")]
    pub(crate) from: Option<String>,
    /// Exclusive end [default: the end of the last stored interval].
    #[arg(long, value_name = "WHEN")]
    pub(crate) to: Option<String>,
    /// The range `extract --demo` reads: the last 7 full days (instead of --from/--to).
    #[arg(long, conflicts_with_all = ["from", "to"])]
    pub(crate) demo_range: bool,
    /// Bucket size to show: PT15M, PT30M, PT1H or P1D [default: PT30M, or the only one stored].
    #[arg(long, value_name = "ISO8601")]
    pub(crate) granularity: Option<String>,
    /// IANA zone dates are read in and times are shown in.
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    pub(crate) time_zone: String,
    /// The HTML file to write (replaced whole, never left half-written).
    #[arg(long, value_name = "PATH", default_value = "report.html")]
    pub(crate) out: PathBuf,
}

/// How to reach Genesys Cloud (or the simulator). Credentials come from the environment or the
/// config file, never from the command line.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct SourceArgs {
    /// Genesys Cloud environment (mypurecloud.com, mypurecloud.ie, ...) or region (eu-west-1).
    #[arg(long, env = intervals_runtime::ENVIRONMENT_ENV, value_name = "ENV")]
    pub(crate) environment: Option<String>,
    /// Override the API base URL (e.g. a simulator: http://127.0.0.1:8080).
    #[arg(long, env = intervals_runtime::API_URL_ENV, value_name = "URL")]
    pub(crate) api_url: Option<String>,
    /// Override the login base URL (token endpoint at <URL>/oauth/token).
    #[arg(long, env = intervals_runtime::LOGIN_URL_ENV, value_name = "URL")]
    pub(crate) login_url: Option<String>,
    /// Use an in-process simulator (50 agents, fixed seed): no credentials, no network.
    #[arg(long)]
    pub(crate) demo: bool,
    /// Org label stored in the `org` column.
    #[arg(long, value_name = "LABEL")]
    pub(crate) org: Option<String>,
    /// Requests in flight at once.
    #[arg(long, value_name = "N")]
    pub(crate) concurrency: Option<usize>,
    /// Most time one window's request may take, retries and waits included (also the login and
    /// each users/queues listing); then it fails [default: 300].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) window_deadline: Option<u64>,
}

/// Output and display options shared by commands.
#[derive(Debug, Clone, Default, Args)]
pub(crate) struct OutputArgs {
    /// Where rows go: sqlite:PATH | csv:PATH | csv:- | jsonl:PATH | parquet:DIR | postgres://... [default: sqlite:genesys-intervals.db]
    #[arg(long, value_name = "URL")]
    pub(crate) out: Option<String>,
    /// TOML file with defaults for any of these options (keys as the long flags, with underscores).
    #[arg(long, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,
    /// Progress display on stderr.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub(crate) progress: ProgressMode,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
}

#[derive(Debug, Args)]
pub(crate) struct ExtractArgs {
    /// Start, inclusive: a date (midnight in --time-zone) or an RFC 3339 timestamp.
    #[arg(long, value_name = "DATE|RFC3339")]
    pub(crate) from: Option<String>,
    /// End, exclusive: a date (midnight in --time-zone) or an RFC 3339 timestamp.
    #[arg(long, value_name = "DATE|RFC3339")]
    pub(crate) to: Option<String>,
    /// Bucket size: PT15M, PT30M, PT1H or P1D [default: PT30M].
    #[arg(long, value_name = "ISO8601")]
    pub(crate) granularity: Option<String>,
    /// A named bundle of group-by and metrics; --metrics and --group-by still win.
    #[arg(long, value_name = "NAME", long_help = preset_help())]
    pub(crate) preset: Option<String>,
    // No `default_value`, so that the --config file can set it: the default is applied in `settings`.
    #[arg(
        long,
        value_name = "LIST",
        help = format!(
            "Comma-separated metrics: conversation metrics and status metrics (tAgentRoutingStatus, \
             tSystemPresence, tOrganizationPresence) [default: the preset's, else {}; with --demo the \
             utilization preset's]",
            default_metrics()
        )
    )]
    pub(crate) metrics: Option<String>,
    /// Comma-separated dimensions from userId, mediaType, queueId [default: the preset's, else
    /// userId,mediaType].
    #[arg(long, value_name = "LIST")]
    pub(crate) group_by: Option<String>,
    /// Keep only these media types (voice, chat, email, message, ...).
    #[arg(long, value_name = "LIST")]
    pub(crate) media_type: Option<String>,
    /// Keep only these queue ids.
    #[arg(long, value_name = "LIST")]
    pub(crate) queue_id: Option<String>,
    /// Keep only these agents (user ids; any number: the users API takes 100 per request, so more are
    /// sent in batches).
    #[arg(long, value_name = "LIST")]
    pub(crate) user_id: Option<String>,
    /// IANA zone for dates and bucket boundaries [default: UTC].
    #[arg(long, value_name = "ZONE")]
    pub(crate) time_zone: Option<String>,
    /// CSV layout.
    #[arg(long, value_enum)]
    pub(crate) format: Option<CsvFormat>,
    /// Largest span of one request: P1D, P7D, PT6H, ... [default: P1D].
    #[arg(long, value_name = "ISO8601")]
    pub(crate) max_window: Option<String>,
    /// Print the plan (windows, requests, estimated time) and send nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Read every window again, even those a checkpoint says are done (picks up late corrections;
    /// each window's stored rows are replaced).
    #[arg(long)]
    pub(crate) refetch: bool,
    /// Read aggregates through async jobs (submit, poll, page) instead of the synchronous query:
    /// for very large backfills. Slower per window.
    #[arg(long)]
    pub(crate) use_jobs: bool,
    /// Go ahead with a run of more than 2,000 requests (without it such a run stops before sending
    /// anything and shows its size; --dry-run never needs it).
    #[arg(long)]
    pub(crate) yes: bool,
    #[command(flatten)]
    pub(crate) source: SourceArgs,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DirectoryArgs {
    #[command(flatten)]
    pub(crate) source: SourceArgs,
    #[command(flatten)]
    pub(crate) output: OutputArgs,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressMode {
    /// A bar on a terminal, periodic log lines otherwise.
    #[default]
    Auto,
    /// Always a bar.
    Always,
    /// Neither bar nor progress lines.
    Never,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CsvFormat {
    /// One row per metric (the default).
    Long,
    /// One row per group and bucket, `<metric>_count,<metric>_sum` columns.
    Wide,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SimCommand {
    /// Serve the simulated Genesys Cloud API on 127.0.0.1 until interrupted.
    Serve(SimServeArgs),
    /// Print the exact long CSV the simulator's data gives for a query.
    Truth(SimTruthArgs),
}

/// The simulated org.
#[derive(Debug, Clone, Args)]
pub(crate) struct SimOrgArgs {
    /// Number of agents.
    #[arg(long, default_value_t = 50)]
    pub(crate) agents: usize,
    /// Seed of the synthetic data.
    #[arg(long, default_value_t = 42)]
    pub(crate) seed: u64,
}

#[derive(Debug, Args)]
pub(crate) struct SimServeArgs {
    /// Port on 127.0.0.1 (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
    #[command(flatten)]
    pub(crate) org: SimOrgArgs,
    /// Requests per minute per token before 429.
    #[arg(long, default_value_t = 300)]
    pub(crate) rate_per_minute: u32,
    /// Share of API requests answered 503 (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) fail_rate: f64,
    /// Added latency per request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub(crate) latency_ms: u64,
    /// Largest interval an aggregate query may span, in days (400 beyond).
    #[arg(long)]
    pub(crate) max_span_days: Option<u32>,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 86_400)]
    pub(crate) token_ttl: u64,
    /// Accepted client id [default: GENESYS_CLIENT_ID, else sim-client].
    #[arg(long, env = intervals_runtime::CLIENT_ID_ENV, hide_env_values = true)]
    pub(crate) client_id: Option<String>,
    /// Accepted client secret [default: GENESYS_CLIENT_SECRET, else sim-secret].
    #[arg(long, env = intervals_runtime::CLIENT_SECRET_ENV, hide_env_values = true)]
    pub(crate) client_secret: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct SimTruthArgs {
    /// Start, inclusive (date or RFC 3339).
    #[arg(long)]
    pub(crate) from: String,
    /// End, exclusive (date or RFC 3339).
    #[arg(long)]
    pub(crate) to: String,
    /// Bucket size [default: PT30M].
    #[arg(long)]
    pub(crate) granularity: Option<String>,
    /// A named bundle of group-by and metrics, as for `extract`.
    #[arg(long, value_name = "NAME")]
    pub(crate) preset: Option<String>,
    /// Dimensions [default: the preset's, else userId,mediaType].
    #[arg(long)]
    pub(crate) group_by: Option<String>,
    /// Metrics [default: the preset's, else those of `extract`].
    #[arg(long)]
    pub(crate) metrics: Option<String>,
    /// IANA zone [default: UTC].
    #[arg(long)]
    pub(crate) time_zone: Option<String>,
    /// Keep only these media types.
    #[arg(long)]
    pub(crate) media_type: Option<String>,
    /// Keep only these queue ids.
    #[arg(long)]
    pub(crate) queue_id: Option<String>,
    /// Keep only these user ids (agents).
    #[arg(long)]
    pub(crate) user_id: Option<String>,
    #[command(flatten)]
    pub(crate) org: SimOrgArgs,
}

/// The long help of `--preset`: every preset with its group-by and metrics, from the domain's table.
fn preset_help() -> String {
    let mut help =
        "A named bundle of group-by and metrics; --metrics and --group-by still win over the preset's:".to_owned();
    for preset in intervals_domain::Preset::ALL {
        help.push_str("\n  ");
        help.push_str(&preset.describe());
    }
    help
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};
    use intervals_domain::{AggregateQuery, DEFAULT_METRICS};

    use super::{Cli, Command, SimCommand};
    use crate::settings::default_metrics;

    #[test]
    fn the_grammar_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_metrics_default_is_the_domain_one_and_valid() {
        let names: Vec<&str> =
            AggregateQuery::parse_metrics(default_metrics()).unwrap().iter().map(|m| m.as_str()).collect();
        assert_eq!(names, DEFAULT_METRICS);

        let mut cli = Cli::command();
        let extract = cli.find_subcommand_mut("extract").unwrap();
        let help = extract.render_long_help().to_string();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            help.contains(&format!(
                "[default: the preset's, else {}; with --demo the utilization preset's]",
                default_metrics()
            )),
            "{help}"
        );
        // Every preset is listed with its group-by and metrics, as the domain defines it.
        for preset in intervals_domain::Preset::ALL {
            assert!(help.contains(&preset.describe()), "{preset}: {help}");
        }

        let cli = Cli::parse_from(["genesys-intervals", "sim", "truth", "--from", "2025-03-10", "--to", "2025-03-11"]);
        let Command::Sim(SimCommand::Truth(truth)) = cli.command else { panic!("not sim truth") };
        assert_eq!(truth.metrics, None, "sim truth takes extract's defaults from the domain");
    }
}
