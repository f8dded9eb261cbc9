//! Everything a command needs, parsed and validated before any request is sent.
//!
//! Precedence: command-line flag, then environment variable (for the `GENESYS_*` ones), then the
//! `--config` file, then the default.

use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use chrono::{Days, Utc};
use intervals_app::RetryPolicy;
use intervals_domain::{
    BuiltQueries, Filters, MaxWindow, MetricFamily, OrgLabel, Plan, PlanRequest, Preset, QuerySet, QuerySpec,
    SpecField, TimeSpec, Tz,
};
use intervals_runtime::{ConfigList, CLIENT_ID_ENV, CLIENT_SECRET_ENV};
use serde::Deserialize;

use crate::args::{CsvFormat, ExtractArgs, OutputArgs, SourceArgs};
use crate::exit::CliError;
use intervals_adapters::outputs::{OutputSpec, Registry};

/// Where `extract`, `users` and `queues` write when `--out` is not given: the embedded default.
pub(crate) const DEFAULT_OUT: &str = "sqlite:genesys-intervals.db";

/// [`intervals_domain::DEFAULT_METRICS`] as a flag value (`tHandle,tAcw,...`): the default of
/// `--metrics`, shown in the help.
pub(crate) fn default_metrics() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| intervals_domain::DEFAULT_METRICS.join(","))
}

/// Windows and requests in flight when `--concurrency` is not given.
const DEFAULT_CONCURRENCY: usize = 4;
/// Days extracted by `--demo` when no range is given: the last full week.
const DEMO_DAYS: u64 = 7;

/// A `--config` file. Keys mirror the long flags with underscores.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    from: Option<String>,
    to: Option<String>,
    granularity: Option<String>,
    preset: Option<String>,
    metrics: Option<ConfigList>,
    group_by: Option<ConfigList>,
    media_types: Option<ConfigList>,
    queue_ids: Option<ConfigList>,
    user_ids: Option<ConfigList>,
    time_zone: Option<String>,
    out: Option<String>,
    format: Option<CsvFormat>,
    org: Option<String>,
    max_window: Option<String>,
    concurrency: Option<usize>,
    window_deadline: Option<u64>,
    environment: Option<String>,
    api_url: Option<String>,
    login_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

impl ConfigFile {
    pub(crate) fn load(path: Option<&Path>) -> Result<ConfigFile, CliError> {
        let Some(path) = path else { return Ok(ConfigFile::default()) };
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read --config {}: {e}", path.display())))?;
        toml::from_str(&text).map_err(|e| CliError::usage(format!("invalid --config {}: {e}", path.display())))
    }
}

/// Credentials, kept out of `Debug`.
#[derive(Clone)]
pub(crate) struct Credentials {
    pub(crate) client_id: String,
    pub(crate) client_secret: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("client_id", &self.client_id).field("client_secret", &"[redacted]").finish()
    }
}

/// Where data comes from.
#[derive(Debug, Clone)]
pub(crate) enum SourceSettings {
    /// The in-process simulator.
    Demo,
    /// Genesys Cloud (or a simulator at a URL).
    Genesys {
        environment: Option<String>,
        api_url: Option<String>,
        login_url: Option<String>,
        credentials: Credentials,
    },
}

/// Settings common to commands that read from a source and write to a sink.
#[derive(Debug, Clone)]
pub(crate) struct IoSettings {
    pub(crate) source: SourceSettings,
    pub(crate) out: OutputSpec,
    pub(crate) org: OrgLabel,
    pub(crate) concurrency: usize,
    /// The retry deadline of each source call (`--window-deadline`).
    pub(crate) window_deadline: Duration,
}

/// A validated `extract`.
#[derive(Debug, Clone)]
pub(crate) struct ExtractSettings {
    pub(crate) io: IoSettings,
    pub(crate) queries: QuerySet,
    /// The preset that filled what was not given (`--preset`, or utilization for `--demo`).
    pub(crate) preset: Option<Preset>,
    pub(crate) plan: Plan,
    pub(crate) format: CsvFormat,
    pub(crate) max_window: MaxWindow,
    pub(crate) dry_run: bool,
    pub(crate) refetch: bool,
    pub(crate) use_jobs: bool,
}

pub(crate) fn io_settings(
    source: &SourceArgs,
    output: &OutputArgs,
    config: &mut ConfigFile,
    needs_credentials: bool,
) -> Result<IoSettings, CliError> {
    let out_text = output.out.clone().or(config.out.take()).unwrap_or_else(|| DEFAULT_OUT.to_owned());
    let out = Registry::builtin().parse(&out_text).map_err(|e| CliError::usage(format!("--out: {e}")))?;
    let org = org_label(&source.org.clone().or(config.org.take()).unwrap_or_else(|| "default".to_owned()))?;
    let concurrency = source.concurrency.or(config.concurrency).unwrap_or(DEFAULT_CONCURRENCY);
    if !(1..=32).contains(&concurrency) {
        return Err(CliError::usage(format!("--concurrency must be between 1 and 32, got {concurrency}")));
    }
    let window_deadline = window_deadline(source.window_deadline.or(config.window_deadline))?;
    let source = if source.demo {
        SourceSettings::Demo
    } else {
        let environment = source.environment.clone().or(config.environment.take());
        let api_url = source.api_url.clone().or(config.api_url.take());
        let login_url = source.login_url.clone().or(config.login_url.take());
        if needs_credentials && environment.is_none() && api_url.is_none() {
            return Err(CliError::usage(
                "no Genesys Cloud environment: set --environment (e.g. mypurecloud.ie) or GENESYS_ENVIRONMENT, \
                 or --api-url and --login-url; or try --demo",
            ));
        }
        let client_id = env_or(CLIENT_ID_ENV, config.client_id.take());
        let client_secret = env_or(CLIENT_SECRET_ENV, config.client_secret.take());
        let credentials = match (client_id, client_secret) {
            (Some(client_id), Some(client_secret)) => Credentials { client_id, client_secret },
            _ if !needs_credentials => Credentials { client_id: String::new(), client_secret: String::new() },
            (id, _) => {
                let missing = if id.is_none() { CLIENT_ID_ENV } else { CLIENT_SECRET_ENV };
                return Err(CliError::usage(format!(
                    "missing credentials: set {missing} (an OAuth client-credentials client; see docs/genesys-setup.md), \
                     or client_id/client_secret in the --config file"
                )));
            }
        };
        SourceSettings::Genesys { environment, api_url, login_url, credentials }
    };
    Ok(IoSettings { source, out, org, concurrency, window_deadline })
}

/// `--window-deadline` in seconds, 1 to 86400; the retry policy's default when not given.
fn window_deadline(seconds: Option<u64>) -> Result<Duration, CliError> {
    match seconds {
        None => Ok(RetryPolicy::DEFAULT_DEADLINE),
        Some(s @ 1..=86_400) => Ok(Duration::from_secs(s)),
        Some(s) => Err(CliError::usage(format!("--window-deadline must be between 1 and 86400 seconds, got {s}"))),
    }
}

fn env_or(name: &str, fallback: Option<String>) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty()).or(fallback)
}

pub(crate) fn extract_settings(args: &ExtractArgs) -> Result<ExtractSettings, CliError> {
    let mut config = ConfigFile::load(args.output.config.as_deref())?;
    let pick = |flag: &Option<String>, file: Option<String>, default: &str| {
        flag.clone().or(file).unwrap_or_else(|| default.to_owned())
    };
    let usage = |e: intervals_domain::DomainError| CliError::usage(e.to_string());

    let media = filter_list("--media-type", "media_types", &args.media_type, config.media_types.take())?;
    let queues = filter_list("--queue-id", "queue_ids", &args.queue_id, config.queue_ids.take())?;
    let users = filter_list("--user-id", "user_ids", &args.user_id, config.user_ids.take())?;
    let filters = Filters::new(&media, &queues).and_then(|f| f.with_user_ids(&users)).map_err(usage)?;
    let (metrics, group_by) =
        (config.metrics.take().map(ConfigList::joined), config.group_by.take().map(ConfigList::joined));
    let (granularity, time_zone, preset) = (config.granularity.take(), config.time_zone.take(), config.preset.take());
    let spec = QuerySpec {
        preset: args.preset.as_deref().or(preset.as_deref()),
        metrics: args.metrics.as_deref().or(metrics.as_deref()),
        group_by: args.group_by.as_deref().or(group_by.as_deref()),
        granularity: args.granularity.as_deref().or(granularity.as_deref()),
        time_zone: args.time_zone.as_deref().or(time_zone.as_deref()),
        default_preset: args.source.demo.then_some(Preset::Utilization),
    };
    let BuiltQueries { queries, preset } = build_queries(&spec, filters)?;
    let (granularity, time_zone) = (queries.granularity(), queries.time_zone());
    let max_window = MaxWindow::parse(&pick(&args.max_window, config.max_window.take(), "P1D"))
        .map_err(|e| CliError::usage(format!("--max-window: {e}")))?;

    let from = args.from.clone().or(config.from.take());
    let to = args.to.clone().or(config.to.take());
    let (from, to) = match (from, to) {
        (Some(from), Some(to)) => (
            TimeSpec::parse(&from).map_err(|e| CliError::usage(format!("--from: {e}")))?,
            TimeSpec::parse(&to).map_err(|e| CliError::usage(format!("--to: {e}")))?,
        ),
        (None, None) if args.source.demo => demo_range(time_zone),
        (None, _) => {
            return Err(CliError::usage("--from is required (a date such as 2025-03-10 or an RFC 3339 timestamp)"))
        }
        (_, None) => return Err(CliError::usage("--to is required (exclusive end: a date or an RFC 3339 timestamp)")),
    };
    let request = PlanRequest { from, to, granularity, time_zone, max_window };
    // Before planning, so an absurd range is refused at once (also for --dry-run).
    request.check_bounds(Utc::now()).map_err(usage)?;
    let plan = Plan::new(request).map_err(usage)?;
    let format = args.format.or(config.format).unwrap_or(CsvFormat::Long);
    let io = io_settings(&args.source, &args.output, &mut config, !args.dry_run)?;
    if format == CsvFormat::Wide && !io.out.capabilities().wide_layout {
        return Err(CliError::usage(format!(
            "--format wide applies to CSV output only (--out csv:PATH or csv:-), not to {}",
            io.out.scheme()
        )));
    }
    if format == CsvFormat::Wide {
        if let Some(status) = queries.of_family(MetricFamily::UserStatus) {
            return Err(CliError::usage(format!(
                "--format wide has one column per metric, but status metrics ({}) hold one value per status: \
                 use --format long (the metric column reads tAgentRoutingStatus:IDLE, ...)",
                status.metrics().iter().map(|m| m.as_str()).collect::<Vec<_>>().join(", ")
            )));
        }
    }
    Ok(ExtractSettings {
        io,
        queries,
        preset,
        plan,
        format,
        max_window,
        dry_run: args.dry_run,
        refetch: args.refetch,
        use_jobs: args.use_jobs,
    })
}

/// The last [`DEMO_DAYS`] full days before today in `tz`.
pub(crate) fn demo_range(tz: Tz) -> (TimeSpec, TimeSpec) {
    let today = Utc::now().with_timezone(&tz).date_naive();
    (TimeSpec::Date(today - Days::new(DEMO_DAYS)), TimeSpec::Date(today))
}

/// A filter's values from its flag or, without it, its config key; none given: no filter (all). A
/// list given but empty (`--user-id ''`, `--queue-id ',,'`) is refused: it would silently read
/// everything.
fn filter_list(
    flag: &str,
    key: &str,
    from_flag: &Option<String>,
    from_file: Option<ConfigList>,
) -> Result<Vec<String>, CliError> {
    let (given, source) = match (from_flag, from_file) {
        (Some(value), _) => (value.clone(), flag.to_owned()),
        (None, Some(list)) => (list.joined(), format!("{key} in --config")),
        (None, None) => return Ok(Vec::new()),
    };
    let values = split(&given);
    if values.is_empty() {
        return Err(CliError::usage(format!(
            "{source}: the list {given:?} holds no value; give at least one, or leave it out to read all"
        )));
    }
    Ok(values)
}

/// `spec` made into queries, a problem named by its flag ([`SpecField`]).
pub(crate) fn build_queries(spec: &QuerySpec<'_>, filters: Filters) -> Result<BuiltQueries, CliError> {
    spec.build(filters).map_err(|errors| {
        // The first problem, as a flag's: the CLI stops at one.
        let e = &errors[0];
        let flag = match e.field {
            SpecField::Preset => "--preset: ",
            SpecField::Metrics => "--metrics: ",
            SpecField::GroupBy => "--group-by: ",
            SpecField::Granularity => "--granularity: ",
            SpecField::TimeZone | SpecField::Query => "",
        };
        CliError::usage(format!("{flag}{}", e.error))
    })
}

pub(crate) fn split(list: &str) -> Vec<String> {
    list.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// `--org`: the domain's rule for org labels (they name files and database keys and are printed in
/// log lines), its message prefixed with the flag.
fn org_label(org: &str) -> Result<OrgLabel, CliError> {
    OrgLabel::parse(org).map_err(|e| CliError::usage(format!("--org: {e}")))
}

#[cfg(test)]
mod org_label_tests {
    use super::org_label;

    #[test]
    fn org_labels_are_short_printable_and_not_empty() {
        let (ascii, accented) = ("x".repeat(64), "é".repeat(64));
        for ok in ["default", "emea", "Org 1", "ünïcödé-ørg", &ascii, &accented] {
            assert_eq!(org_label(ok).unwrap().as_str(), ok);
        }
        // (label, what the message says)
        let (long, long_accented) = ("x".repeat(100_000), "é".repeat(65));
        let table: &[(&str, &str)] = &[
            ("", "must not be empty"),
            ("   ", "must not be empty"),
            (&long, "at most 64 characters (it names files and database keys), got 100000"),
            (&long_accented, "got 65"),
            ("a\nb", "control characters"),
            ("tab\there", "control characters"),
            ("nul\0", "control characters"),
            ("esc\u{1b}[31m", "control characters"),
            ("del\u{7f}", "control characters"),
        ];
        for (label, needle) in table {
            let err = org_label(label).expect_err(label);
            assert_eq!(err.exit_code(), 2);
            let message = err.to_string();
            assert!(
                message.starts_with("--org: the org label must ") && message.contains(needle),
                "{label:?}: {message}"
            );
        }
    }
}

#[cfg(test)]
mod window_deadline_tests {
    use std::time::Duration;

    use super::window_deadline;

    #[test]
    fn the_window_deadline_defaults_to_the_retry_policys_and_is_bounded() {
        assert_eq!(window_deadline(None).unwrap(), intervals_app::RetryPolicy::DEFAULT_DEADLINE);
        assert_eq!(window_deadline(Some(2)).unwrap(), Duration::from_secs(2));
        assert_eq!(window_deadline(Some(86_400)).unwrap(), Duration::from_secs(86_400));
        for bad in [0, 86_401, u64::MAX] {
            let err = window_deadline(Some(bad)).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert_eq!(err.to_string(), format!("--window-deadline must be between 1 and 86400 seconds, got {bad}"));
        }
    }
}
