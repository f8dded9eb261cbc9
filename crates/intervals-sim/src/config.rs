//! What the simulated org and server look like.

use std::fmt;
use std::time::Duration;

use intervals_domain::Tz;

/// Configuration of a simulated Genesys Cloud org and its API server.
///
/// Every field maps to a `genesys-intervals sim serve` flag or has a fixed default there.
/// `Debug` never prints the client secret.
#[derive(Clone, PartialEq)]
pub struct SimConfig {
    /// Number of agents (users who take interactions). `--agents`.
    pub agents: usize,
    /// Seed of every generated id, name and figure. `--seed`.
    pub seed: u64,
    /// Requests per sliding minute per access token; 0 = unlimited. `--rate-per-minute`.
    pub rate_per_minute: u32,
    /// Share of API requests answered 503 (0..=1), decided by a seeded sequence. `--fail-rate`.
    pub fail_rate: f64,
    /// Share of successful API responses whose JSON body is cut short (0..=1).
    pub truncate_rate: f64,
    /// Latency added to every API request. `--latency-ms`.
    pub latency: Duration,
    /// Longest interval a synchronous aggregate query may span, in days (`None` = no limit).
    /// `--max-span-days`.
    pub max_span_days: Option<u32>,
    /// Lifetime of an access token. `--token-ttl`.
    pub token_ttl: Duration,
    /// OAuth client id accepted by `/oauth/token`. `--client-id`.
    pub client_id: String,
    /// OAuth client secret accepted by `/oauth/token`. `--client-secret`.
    pub client_secret: String,
    /// Zone in which agents work their shifts (and in which `reprocess` dates are read).
    pub shift_time_zone: Tz,
    /// Share of interactions (0..=1) whose figures appear only `late_delay` after the close of the
    /// UTC half-hour in which each happened.
    pub late_fraction: f64,
    /// How late the late share appears.
    pub late_delay: Duration,
    /// Number of routing queues.
    pub queues: usize,
    /// Share of interactions (0..=1) that are non-ACD calls: `purpose` = `user`, no `queueId`.
    pub non_acd_fraction: f64,
    /// How long an async aggregate job takes: `QUEUED` for the first half, `PENDING` for the
    /// second, then `FULFILLED`.
    pub job_delay: Duration,
    /// Whether the OAuth client's role holds `analytics:conversationAggregate:view`; when false the
    /// aggregate query and jobs endpoints answer 403 naming the permission.
    pub analytics_permission: bool,
    /// Whether the OAuth client's role holds `analytics:userAggregate:view`; when false the users
    /// aggregate query and jobs endpoints (only they) answer 403 naming the permission.
    pub user_aggregate_permission: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            agents: 50,
            seed: 42,
            rate_per_minute: 300,
            fail_rate: 0.0,
            truncate_rate: 0.0,
            latency: Duration::ZERO,
            max_span_days: None,
            token_ttl: Duration::from_secs(24 * 3600),
            client_id: "sim-client".to_owned(),
            client_secret: "sim-secret".to_owned(),
            shift_time_zone: Tz::UTC,
            late_fraction: 0.0,
            late_delay: Duration::from_secs(3600),
            queues: 8,
            non_acd_fraction: 0.0,
            job_delay: Duration::ZERO,
            analytics_permission: true,
            user_aggregate_permission: true,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("agents", &self.agents)
            .field("seed", &self.seed)
            .field("rate_per_minute", &self.rate_per_minute)
            .field("fail_rate", &self.fail_rate)
            .field("truncate_rate", &self.truncate_rate)
            .field("latency", &self.latency)
            .field("max_span_days", &self.max_span_days)
            .field("token_ttl", &self.token_ttl)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("shift_time_zone", &self.shift_time_zone)
            .field("late_fraction", &self.late_fraction)
            .field("late_delay", &self.late_delay)
            .field("queues", &self.queues)
            .field("non_acd_fraction", &self.non_acd_fraction)
            .field("job_delay", &self.job_delay)
            .field("analytics_permission", &self.analytics_permission)
            .field("user_aggregate_permission", &self.user_aggregate_permission)
            .finish()
    }
}

/// Largest org the simulator builds.
pub const MAX_AGENTS: usize = 1_000_000;
/// Largest number of queues.
pub const MAX_QUEUES: usize = 10_000;

impl SimConfig {
    /// Checks ranges: shares in `0..=1`, at least one agent and one queue, a non-zero token
    /// lifetime, non-empty credentials. Returns what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        let share = |name: &str, x: f64| {
            if (0.0..=1.0).contains(&x) {
                Ok(())
            } else {
                Err(format!("{name} must be between 0 and 1, got {x}"))
            }
        };
        share("fail_rate", self.fail_rate)?;
        share("truncate_rate", self.truncate_rate)?;
        share("late_fraction", self.late_fraction)?;
        share("non_acd_fraction", self.non_acd_fraction)?;
        if self.agents == 0 || self.agents > MAX_AGENTS {
            return Err(format!("agents must be between 1 and {MAX_AGENTS}, got {}", self.agents));
        }
        if self.queues == 0 || self.queues > MAX_QUEUES {
            return Err(format!("queues must be between 1 and {MAX_QUEUES}, got {}", self.queues));
        }
        if self.token_ttl.is_zero() {
            return Err("token_ttl must be positive".to_owned());
        }
        if self.client_id.is_empty() || self.client_secret.is_empty() {
            return Err("client_id and client_secret must not be empty".to_owned());
        }
        if self.max_span_days == Some(0) {
            return Err("max_span_days must be at least 1 (or unset for no limit)".to_owned());
        }
        Ok(())
    }
}
