//! The daemon's config file (TOML), parsed and validated into domain types before anything is
//! started. Every problem is reported at once, each naming the org and the key.
//!
//! ```toml
//! database_url = "postgres://..."        # or env DATABASE_URL; or "sqlite:PATH" for one replica
//! listen = "127.0.0.1:9187"
//! [[org]]
//! label = "emea"
//! environment = "mypurecloud.ie"         # or api_url / login_url
//! client_id_env = "EMEA_CLIENT_ID"
//! client_secret_env = "EMEA_CLIENT_SECRET"
//! backfill_from = "2025-01-01"
//! [[org.query]]                          # one more read of the org (query 2)
//! preset = "queue"
//! ```
//!
//! An org's top-level query keys define its first read (query 1); each `[[org.query]]` adds one
//! more (query 2, 3, ...): its query-shape keys (`preset`, `metrics`, `group_by`, `media_types`,
//! `user_ids`) are its own (unset means the defaults, as for an org), its time and schedule keys
//! default to the org's.

use std::fmt;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use intervals_adapters::genesys::MAX_USER_PREDICATES;
use intervals_adapters::genesys::{ClientConfig, Secret};
use intervals_adapters::outputs::{redact_url, OutputSpec, Registry};
use intervals_app::daemon::{OrgRead, Schedule, ScheduleRequest};
use intervals_app::Pacer;
use intervals_domain::{rfc3339, Filters, OrgLabel, QuerySpec, SpecField, TimeSpec, TimeWindow, LARGE_PLAN_REQUESTS};
use intervals_runtime::ConfigList;
use serde::Deserialize;

/// `listen` when the file has none.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9187";
// `metrics`, `group_by`, `granularity`, `time_zone` and `preset` when an org has none: the CLI's
// defaults and presets, defined once in the domain (`QuerySpec`).
pub use intervals_domain::{DEFAULT_GRANULARITY, DEFAULT_GROUP_BY, DEFAULT_METRICS, DEFAULT_TIME_ZONE};
/// `client_id_env` when an org has none: the CLI's variable.
pub use intervals_runtime::CLIENT_ID_ENV as DEFAULT_CLIENT_ID_ENV;
/// `client_secret_env` when an org has none: the CLI's variable.
pub use intervals_runtime::CLIENT_SECRET_ENV as DEFAULT_CLIENT_SECRET_ENV;
/// `tick_seconds` when an org has none.
pub const DEFAULT_TICK_SECONDS: u64 = 300;
/// `lookback_hours` when an org has none.
pub const DEFAULT_LOOKBACK_HOURS: u32 = 6;
/// `daily_lookback_days` when an org has none.
pub const DEFAULT_DAILY_LOOKBACK_DAYS: u32 = 3;
/// `lease_seconds` when an org has none.
pub const DEFAULT_LEASE_SECONDS: u64 = 60;
/// `window_deadline_seconds` when an org has none: the retry policy's default deadline.
pub const DEFAULT_WINDOW_DEADLINE_SECONDS: u64 = intervals_app::RetryPolicy::DEFAULT_DEADLINE.as_secs();

/// The file as written. Unknown keys are rejected.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    database_url: Option<String>,
    listen: Option<String>,
    #[serde(default)]
    org: Vec<FileOrg>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOrg {
    label: Option<String>,
    environment: Option<String>,
    api_url: Option<String>,
    login_url: Option<String>,
    client_id_env: Option<String>,
    client_secret_env: Option<String>,
    preset: Option<String>,
    metrics: Option<ConfigList>,
    group_by: Option<ConfigList>,
    granularity: Option<String>,
    time_zone: Option<String>,
    media_types: Option<ConfigList>,
    user_ids: Option<ConfigList>,
    backfill_from: Option<String>,
    backfill_to: Option<String>,
    tick_seconds: Option<u64>,
    lookback_hours: Option<u32>,
    daily_lookback_days: Option<u32>,
    include_open_buckets: Option<bool>,
    lease_seconds: Option<u64>,
    window_deadline_seconds: Option<u64>,
    allow_large_backfill: Option<bool>,
    /// More reads of the org (`[[org.query]]`).
    #[serde(default)]
    query: Vec<FileQuery>,
}

/// One `[[org.query]]` table: one more read of the org.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileQuery {
    // What to read: never inherited from the org (a queue query must not read the agent metrics).
    preset: Option<String>,
    metrics: Option<ConfigList>,
    group_by: Option<ConfigList>,
    media_types: Option<ConfigList>,
    user_ids: Option<ConfigList>,
    // When to read it: the org's when unset.
    granularity: Option<String>,
    time_zone: Option<String>,
    backfill_from: Option<String>,
    backfill_to: Option<String>,
    lookback_hours: Option<u32>,
    daily_lookback_days: Option<u32>,
    include_open_buckets: Option<bool>,
}

/// The keys of one read (the org's own, or a `[[org.query]]` with the org's time keys filled in).
#[derive(Debug, Default)]
struct ReadKeys {
    preset: Option<String>,
    metrics: Option<ConfigList>,
    group_by: Option<ConfigList>,
    media_types: Option<ConfigList>,
    user_ids: Option<ConfigList>,
    granularity: Option<String>,
    time_zone: Option<String>,
    backfill_from: Option<String>,
    backfill_to: Option<String>,
    lookback_hours: Option<u32>,
    daily_lookback_days: Option<u32>,
    include_open_buckets: Option<bool>,
}

/// Everything wrong with a config file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid config{}:\n  - {}", .source_name.as_ref().map(|s| format!(" {s}")).unwrap_or_default(), .problems.join("\n  - "))]
pub struct ConfigError {
    /// The file, when read from one.
    pub source_name: Option<String>,
    /// One line per problem, each naming the org and key.
    pub problems: Vec<String>,
}

impl ConfigError {
    fn one(problem: impl Into<String>) -> Self {
        ConfigError { source_name: None, problems: vec![problem.into()] }
    }
}

/// The validated daemon configuration.
#[derive(Clone)]
pub struct DaemonSettings {
    /// Where the data goes, as written (never shown: it may hold a password).
    pub database_url: Secret,
    /// The same, resolved by the output registry to an output that keeps checkpoints.
    pub output: OutputSpec,
    /// Where `/healthz`, `/readyz` and `/metrics` are served (port 0 = any free port).
    pub listen: SocketAddr,
    /// The orgs to keep current, in file order.
    pub orgs: Vec<OrgSettings>,
    /// What is valid but likely not what was meant (`--check` prints them, the start logs them).
    pub warnings: Vec<String>,
}

impl fmt::Debug for DaemonSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DaemonSettings")
            .field("database_url", &self.output.to_string())
            .field("listen", &self.listen)
            .field("orgs", &self.orgs)
            .finish()
    }
}

/// One org, validated.
#[derive(Debug, Clone)]
pub struct OrgSettings {
    /// Stored in the `org` column; the lease key (the CLI's `--org` rule: [`OrgLabel`]).
    pub label: OrgLabel,
    /// Genesys Cloud environment (`mypurecloud.ie`, `eu-west-1`).
    pub environment: Option<String>,
    /// API base URL override.
    pub api_url: Option<String>,
    /// Login base URL override.
    pub login_url: Option<String>,
    /// The OAuth client id (read from the variable named by `client_id_env`).
    pub client_id: String,
    /// The OAuth client secret (read from the variable named by `client_secret_env`).
    pub client_secret: Secret,
    /// What to read and when: query 1 (the org's own keys), then one per `[[org.query]]`, in file
    /// order. Never empty; no two reads share a query fingerprint.
    pub reads: Vec<OrgRead>,
    /// Time between ticks.
    pub tick: Duration,
    /// Lease lifetime.
    pub lease_ttl: Duration,
    /// Most time one window's request may take, retries and waits included (the retry deadline).
    pub window_deadline: Duration,
    /// Whether a first backfill of more than [`LARGE_PLAN_REQUESTS`] requests may run
    /// (`allow_large_backfill`).
    pub allow_large_backfill: bool,
}

/// What the first tick of one read of an org reads when nothing is stored yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackfillSize {
    /// From `backfill_from` to the newest bucket read.
    pub range: TimeWindow,
    /// Request windows (at most a local day each).
    pub windows: usize,
    /// Requests per window: one per query, times the batches of user ids.
    pub per_window: usize,
}

impl BackfillSize {
    /// Requests the first tick sends.
    pub fn requests(&self) -> usize {
        self.windows * self.per_window
    }
}

/// What the first tick of an org reads when nothing is stored yet: each read's, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirstBackfill {
    /// One per read that has closed buckets to read (`(query number, size)`, numbered from 1).
    pub reads: Vec<(usize, BackfillSize)>,
}

impl FirstBackfill {
    /// Requests the first tick sends, all reads together.
    pub fn requests(&self) -> usize {
        self.reads.iter().map(|(_, size)| size.requests()).sum()
    }

    /// Request windows, all reads together.
    pub fn windows(&self) -> usize {
        self.reads.iter().map(|(_, size)| size.windows).sum()
    }

    /// From the earliest start to the latest end of the reads' ranges.
    pub fn range(&self) -> Option<TimeWindow> {
        let start = self.reads.iter().map(|(_, s)| s.range.start()).min()?;
        let end = self.reads.iter().map(|(_, s)| s.range.end()).max()?;
        TimeWindow::new(start, end).ok()
    }
}

impl OrgSettings {
    /// What the first tick at `now` reads when nothing is stored yet, every read's; `None` when
    /// nothing has closed yet in any read.
    pub fn first_backfill(&self, now: DateTime<Utc>) -> Option<FirstBackfill> {
        let reads: Vec<(usize, BackfillSize)> = self
            .reads
            .iter()
            .enumerate()
            .filter_map(|(i, read)| {
                let (range, windows) = read.schedule.first_tick(now)?;
                let per_window = read.queries.requests_per_window(MAX_USER_PREDICATES);
                Some((i + 1, BackfillSize { range, windows, per_window }))
            })
            .collect();
        (!reads.is_empty()).then_some(FirstBackfill { reads })
    }

    /// Why this org's first backfill may not run at `now`: more than [`LARGE_PLAN_REQUESTS`]
    /// requests without `allow_large_backfill` (the CLI's `--yes` rule).
    fn backfill_refusal(&self, now: DateTime<Utc>) -> Option<String> {
        let first = self.first_backfill(now)?;
        if self.allow_large_backfill || first.requests() <= LARGE_PLAN_REQUESTS {
            return None;
        }
        let range = first.range()?;
        let shape = match first.reads.as_slice() {
            [(_, size)] => match size.per_window {
                1 => format!("{} windows, one per window", thousands(size.windows)),
                n => format!("{} windows, {n} per window", thousands(size.windows)),
            },
            reads => {
                let each: Vec<String> =
                    reads.iter().map(|(n, size)| format!("query {n}: {}", thousands(size.requests()))).collect();
                format!("{} windows; {}", thousands(first.windows()), each.join(", "))
            }
        };
        Some(format!(
            "org {:?}: backfill_from: the backfill from {} to {} sends {} requests ({shape}), about {} \
             at the default limit of {} requests/min; a backfill of more than {} requests needs \
             allow_large_backfill = true in this [[org]] (or a later backfill_from)",
            self.label.as_str(),
            rfc3339(range.start()),
            rfc3339(range.end()),
            thousands(first.requests()),
            estimate(first.requests()),
            Pacer::DEFAULT_REQUESTS_PER_MINUTE,
            thousands(LARGE_PLAN_REQUESTS),
        ))
    }

    /// One line per query of each read, for `--check`:
    /// `query 2: conversation: tHandle, tAcw by queueId, mediaType; PT30M in UTC; from 2025-01-01T00:00:00Z`.
    pub fn describe_reads(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (i, read) in self.reads.iter().enumerate() {
            let s = &read.schedule;
            let mut when = format!("from {}", rfc3339(s.backfill_from()));
            if let Some(to) = s.backfill_to() {
                when.push_str(&format!(" to {}", rfc3339(to)));
            }
            for query in read.queries.queries() {
                lines.push(format!(
                    "query {}: {}; {when}; fingerprint {}",
                    i + 1,
                    query.describe(),
                    query.fingerprint()
                ));
            }
        }
        lines
    }

    /// The Genesys client configuration (no credentials yet).
    pub fn client_config(&self) -> Result<ClientConfig, intervals_adapters::genesys::ConfigError> {
        ClientConfig::new(self.environment.as_deref(), self.api_url.as_deref(), self.login_url.as_deref())
    }
}

/// Reads environment variables; injected so tests need not touch the process environment.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

impl DaemonSettings {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path, env: Env<'_>) -> Result<DaemonSettings, ConfigError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            source_name: Some(name.clone()),
            problems: vec![format!("cannot read the file: {e}")],
        })?;
        DaemonSettings::parse(&text, env).map_err(|e| ConfigError { source_name: Some(name), ..e })
    }

    /// Checks what depends on the clock: no org's first backfill at `now` sends more than
    /// [`LARGE_PLAN_REQUESTS`] requests unless its `allow_large_backfill` is set. `--check` and
    /// [`crate::Daemon::start`] call it.
    pub fn check_backfill_sizes(&self, now: DateTime<Utc>) -> Result<(), ConfigError> {
        let problems: Vec<String> = self.orgs.iter().filter_map(|org| org.backfill_refusal(now)).collect();
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ConfigError { source_name: None, problems })
        }
    }

    /// Parses and validates a config text.
    pub fn parse(text: &str, env: Env<'_>) -> Result<DaemonSettings, ConfigError> {
        let file: FileConfig =
            toml::from_str(text).map_err(|e| ConfigError::one(e.to_string().trim_end().to_owned()))?;
        let mut problems = Vec::new();

        let mut warnings = Vec::new();
        let (from_file, from_env) = (nonblank(file.database_url), nonblank(env("DATABASE_URL")));
        if from_file.is_some() && from_env.is_some() {
            warnings.push(
                "database_url is set in the config file and in the DATABASE_URL environment variable: the file's wins"
                    .to_owned(),
            );
        }
        let database_url = match from_file.or(from_env) {
            // The documentation's placeholder, copied as it is, must not hide DATABASE_URL.
            Some(url) if url.contains("...") => {
                problems.push(format!(
                    "database_url: {:?} is a placeholder: write the real URL (postgres://user:password@host:port/db \
                     or sqlite:PATH), or remove the key to use the DATABASE_URL environment variable",
                    redact_url(&url)
                ));
                None
            }
            Some(url) => match Registry::builtin().parse(&url) {
                Ok(output) => match output.store_refusal() {
                    None => Some((Secret::new(url), output)),
                    Some(refusal) => {
                        problems.push(format!("database_url: {refusal}"));
                        None
                    }
                },
                Err(e) => {
                    problems.push(format!(
                        "database_url: {e} (the daemon writes to {})",
                        Registry::builtin().store_forms()
                    ));
                    None
                }
            },
            None => {
                problems.push(
                    "database_url: not set; set database_url in the config file or the DATABASE_URL environment \
                     variable"
                        .to_owned(),
                );
                None
            }
        };
        let listen_text = nonblank(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.to_owned());
        let listen = match listen_text.parse::<SocketAddr>() {
            Ok(addr) => Some(addr),
            Err(_) => {
                problems.push(format!(
                    "listen: {listen_text:?} is not an address: use IP:PORT such as 127.0.0.1:9187 or 0.0.0.0:9187 \
                     (port 0 = any free port)"
                ));
                None
            }
        };
        if file.org.is_empty() {
            problems.push("no [[org]] section: add one per Genesys Cloud org to keep current".to_owned());
        }
        let mut orgs: Vec<OrgSettings> = Vec::new();
        let mut labels: Vec<String> = Vec::new();
        for (i, org) in file.org.into_iter().enumerate() {
            let name = match nonblank(org.label.clone()) {
                Some(label) => format!("org {label:?}"),
                None => format!("org #{}", i + 1),
            };
            if let Some(label) = nonblank(org.label.clone()) {
                if labels.contains(&label) {
                    problems.push(format!("{name}: label: used by another [[org]]; labels must be unique"));
                }
                labels.push(label);
            }
            match parse_org(org, env) {
                Ok(settings) => orgs.push(settings),
                Err(list) => problems.extend(list.into_iter().map(|p| format!("{name}: {p}"))),
            }
        }
        match (problems.is_empty(), database_url, listen) {
            (true, Some((database_url, output)), Some(listen)) => {
                Ok(DaemonSettings { database_url, output, listen, orgs, warnings })
            }
            _ => Err(ConfigError { source_name: None, problems }),
        }
    }
}

/// `5912` as `5,912`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The least time `requests` take at the pacer's default rate (with its headroom): minutes, or
/// hours past two of them.
fn estimate(requests: usize) -> String {
    let per_minute = f64::from(Pacer::DEFAULT_REQUESTS_PER_MINUTE) * Pacer::HEADROOM;
    let minutes = (requests as f64 / per_minute).ceil();
    if minutes < 120.0 {
        format!("{minutes} min")
    } else {
        format!("{:.1} h", minutes / 60.0)
    }
}

fn nonblank(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// One org's keys, or the problems found (each starting with the key).
fn parse_org(org: FileOrg, env: Env<'_>) -> Result<OrgSettings, Vec<String>> {
    let mut problems: Vec<String> = Vec::new();
    let mut bad = |key: &str, message: String| problems.push(format!("{key}: {message}"));

    let label = match nonblank(org.label) {
        None => {
            bad("label", "missing; every [[org]] needs a label (stored in the org column)".to_owned());
            None
        }
        Some(text) => match OrgLabel::parse(&text) {
            Ok(label) => Some(label),
            Err(e) => {
                bad("label", e.to_string());
                None
            }
        },
    };

    let (environment, api_url, login_url) = (nonblank(org.environment), nonblank(org.api_url), nonblank(org.login_url));
    if environment.is_none() && api_url.is_none() {
        bad(
            if login_url.is_some() { "api_url" } else { "environment" },
            "missing: set environment (e.g. mypurecloud.ie or eu-west-1), or api_url (and login_url)".to_owned(),
        );
    } else if let Err(e) = ClientConfig::new(environment.as_deref(), api_url.as_deref(), login_url.as_deref()) {
        let key = if api_url.is_some() || login_url.is_some() { "api_url/login_url" } else { "environment" };
        bad(key, e.to_string());
    }

    let mut credential = |key: &str, default: &str, value: Option<String>| -> Option<String> {
        let var = nonblank(value).unwrap_or_else(|| default.to_owned());
        if !is_env_name(&var) {
            bad(key, format!("{var:?} is not an environment variable name (it names the variable, never the secret)"));
            return None;
        }
        match nonblank(env(&var)) {
            Some(v) => Some(v),
            None => {
                bad(key, format!("the environment variable {var} is not set (or empty)"));
                None
            }
        }
    };
    let client_id = credential("client_id_env", DEFAULT_CLIENT_ID_ENV, org.client_id_env);
    let client_secret = credential("client_secret_env", DEFAULT_CLIENT_SECRET_ENV, org.client_secret_env);

    let tick_seconds = org.tick_seconds.unwrap_or(DEFAULT_TICK_SECONDS);
    if !(1..=86_400).contains(&tick_seconds) {
        bad("tick_seconds", format!("must be between 1 and 86400, got {tick_seconds}"));
    }
    let lease_seconds = org.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
    if !(5..=86_400).contains(&lease_seconds) {
        bad("lease_seconds", format!("must be between 5 and 86400, got {lease_seconds}"));
    }
    let window_deadline_seconds = org.window_deadline_seconds.unwrap_or(DEFAULT_WINDOW_DEADLINE_SECONDS);
    if !(1..=86_400).contains(&window_deadline_seconds) {
        bad("window_deadline_seconds", format!("must be between 1 and 86400, got {window_deadline_seconds}"));
    }

    // Query 1: the org's own keys. Query 2, 3, ...: each [[org.query]], its time keys the org's
    // when unset, its query keys its own.
    let first = ReadKeys {
        preset: org.preset,
        metrics: org.metrics,
        group_by: org.group_by,
        media_types: org.media_types,
        user_ids: org.user_ids,
        granularity: org.granularity,
        time_zone: org.time_zone,
        backfill_from: org.backfill_from,
        backfill_to: org.backfill_to,
        lookback_hours: org.lookback_hours,
        daily_lookback_days: org.daily_lookback_days,
        include_open_buckets: org.include_open_buckets,
    };
    let more: Vec<ReadKeys> = org
        .query
        .into_iter()
        .map(|q| ReadKeys {
            preset: q.preset,
            metrics: q.metrics,
            group_by: q.group_by,
            media_types: q.media_types,
            user_ids: q.user_ids,
            granularity: q.granularity.or_else(|| first.granularity.clone()),
            time_zone: q.time_zone.or_else(|| first.time_zone.clone()),
            backfill_from: q.backfill_from.or_else(|| first.backfill_from.clone()),
            backfill_to: q.backfill_to.or_else(|| first.backfill_to.clone()),
            lookback_hours: q.lookback_hours.or(first.lookback_hours),
            daily_lookback_days: q.daily_lookback_days.or(first.daily_lookback_days),
            include_open_buckets: q.include_open_buckets.or(first.include_open_buckets),
        })
        .collect();
    let mut reads: Vec<Option<OrgRead>> = Vec::new();
    for (i, keys) in std::iter::once(first).chain(more).enumerate() {
        // The org's own keys are named as before; the others with their query number.
        let prefix = if i == 0 { String::new() } else { format!("query {}: ", i + 1) };
        match parse_read(keys, tick_seconds) {
            Ok(read) => reads.push(Some(read)),
            Err(list) => {
                problems.extend(list.into_iter().map(|p| format!("{prefix}{p}")));
                reads.push(None);
            }
        }
    }
    // Two reads with a query of the same fingerprint would read (and store) the same thing twice.
    for (i, read) in reads.iter().enumerate() {
        let Some(read) = read else { continue };
        let earlier = reads[..i].iter().enumerate().find(|(_, other)| {
            other.as_ref().is_some_and(|other| {
                other
                    .queries
                    .queries()
                    .iter()
                    .any(|a| read.queries.queries().iter().any(|b| a.fingerprint() == b.fingerprint()))
            })
        });
        if let Some((j, _)) = earlier {
            problems.push(format!(
                "query {}: reads what query {} reads (same metrics, group_by, granularity, time_zone and filters): \
                 remove one, or make them differ",
                i + 1,
                j + 1
            ));
        }
    }
    let reads: Option<Vec<OrgRead>> = reads.into_iter().collect();

    match (label, client_id, client_secret, reads) {
        (Some(label), Some(client_id), Some(secret), Some(reads)) if problems.is_empty() => Ok(OrgSettings {
            label,
            environment,
            api_url,
            login_url,
            client_id,
            client_secret: Secret::new(secret),
            reads,
            tick: Duration::from_secs(tick_seconds),
            lease_ttl: Duration::from_secs(lease_seconds),
            window_deadline: Duration::from_secs(window_deadline_seconds),
            allow_large_backfill: org.allow_large_backfill.unwrap_or(false),
        }),
        _ => Err(problems),
    }
}

/// One read's keys, or the problems found (each starting with the key).
fn parse_read(keys: ReadKeys, tick_seconds: u64) -> Result<OrgRead, Vec<String>> {
    let mut problems: Vec<String> = Vec::new();
    let mut bad = |key: &str, message: String| problems.push(format!("{key}: {message}"));

    let list = |value: Option<ConfigList>| value.map(ConfigList::items).unwrap_or_default();
    let filters = match Filters::new(&list(keys.media_types), &[]) {
        Ok(f) => match f.with_user_ids(&list(keys.user_ids)) {
            Ok(f) => Some(f),
            Err(e) => {
                bad("user_ids", e.to_string());
                None
            }
        },
        Err(e) => {
            bad("media_types", e.to_string());
            None
        }
    };
    let backfill_from = match nonblank(keys.backfill_from) {
        None => {
            bad("backfill_from", "missing: the first bucket ever wanted, e.g. \"2025-01-01\"".to_owned());
            None
        }
        Some(s) => match TimeSpec::parse(&s) {
            Ok(t) => Some(t),
            Err(e) => {
                bad("backfill_from", e.to_string());
                None
            }
        },
    };
    let backfill_to = match nonblank(keys.backfill_to) {
        None => Some(None),
        Some(s) => match TimeSpec::parse(&s) {
            Ok(t) => Some(Some(t)),
            Err(e) => {
                bad("backfill_to", e.to_string());
                None
            }
        },
    };
    let lookback_hours = keys.lookback_hours.unwrap_or(DEFAULT_LOOKBACK_HOURS);
    let daily_lookback_days = keys.daily_lookback_days.unwrap_or(DEFAULT_DAILY_LOOKBACK_DAYS);
    let include_open_buckets = keys.include_open_buckets.unwrap_or(false);
    if include_open_buckets && u64::from(lookback_hours) * 3600 <= tick_seconds {
        bad(
            "include_open_buckets",
            format!(
                "needs lookback_hours ({lookback_hours} h) longer than tick_seconds ({tick_seconds} s), so that a \
                 bucket read while open is read again once it has closed"
            ),
        );
    }

    let (metrics, group_by) = (keys.metrics.map(|m| m.items().join(",")), keys.group_by.map(|g| g.items().join(",")));
    let (preset, granularity, time_zone) =
        (nonblank(keys.preset), nonblank(keys.granularity), nonblank(keys.time_zone));
    let spec = QuerySpec {
        preset: preset.as_deref(),
        metrics: metrics.as_deref(),
        group_by: group_by.as_deref(),
        granularity: granularity.as_deref(),
        time_zone: time_zone.as_deref(),
        default_preset: None,
    };
    // Built even when the filters are wrong, so that every problem is reported at once.
    let filters_ok = filters.is_some();
    let query = match spec.build(filters.unwrap_or_else(Filters::none)) {
        Ok(built) => filters_ok.then_some(built.queries),
        Err(errors) => {
            for e in errors {
                let key = match e.field {
                    SpecField::Preset => "preset",
                    SpecField::Metrics => "metrics",
                    SpecField::GroupBy => "group_by",
                    SpecField::Granularity => "granularity",
                    SpecField::TimeZone => "time_zone",
                    SpecField::Query => "metrics/group_by",
                };
                bad(key, e.error.to_string());
            }
            None
        }
    };
    let schedule = match (query.as_ref(), backfill_from, backfill_to) {
        (Some(q), Some(from), Some(to)) => {
            let request = ScheduleRequest {
                granularity: q.granularity(),
                time_zone: q.time_zone(),
                backfill_from: from,
                backfill_to: to,
                lookback_hours,
                daily_lookback_days,
                include_open_buckets,
            };
            match Schedule::new(request) {
                Ok(s) => Some(s),
                Err(e) => {
                    let key = match e {
                        intervals_app::daemon::ScheduleError::EmptyBackfill { .. } => "backfill_to",
                        intervals_app::daemon::ScheduleError::BeforeAnalyticsData(_) => "backfill_from",
                        intervals_app::daemon::ScheduleError::LookbackTooLong { .. } => "lookback_hours",
                        intervals_app::daemon::ScheduleError::DailyLookbackTooLong { .. } => "daily_lookback_days",
                    };
                    bad(key, e.to_string());
                    None
                }
            }
        }
        _ => None,
    };
    match (query, schedule) {
        (Some(queries), Some(schedule)) if problems.is_empty() => Ok(OrgRead { queries, schedule }),
        _ => Err(problems),
    }
}
