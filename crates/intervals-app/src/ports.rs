//! The ports: what the use cases need from the outside world, shaped like the use cases.
//!
//! Adapters implement these traits; binaries pick implementations and hand them over as
//! `Arc<dyn ...>`. No port names a technology (no SQL, no HTTP types).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use intervals_domain::{AggregateQuery, MetricRow, Queue, TimeWindow, User};

/// Where metrics come from (the Genesys analytics API or its simulator).
///
/// Each call is **one attempt**: implementations classify failures into [`SourceError`] and the
/// caller's retry loop ([`crate::retry`]) decides what to do. Token renewal on a 401 is the one
/// retry an implementation does itself.
#[async_trait]
pub trait MetricSource: Send + Sync {
    /// The rows of `query` for `window` (one request for all agents).
    async fn query(&self, query: &AggregateQuery, window: TimeWindow) -> Result<Vec<MetricRow>, SourceError>;
    /// Every user, whatever their state (paged internally).
    async fn users(&self) -> Result<Vec<User>, SourceError>;
    /// Every routing queue (paged internally).
    async fn queues(&self) -> Result<Vec<Queue>, SourceError>;
}

/// Why a source call failed, by recovery path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SourceError {
    /// 429: wait exactly `retry_after`, then try again.
    #[error("rate limited; retry after {retry_after:?}{}", ctx(.context_id))]
    RateLimited { retry_after: Duration, context_id: Option<String> },
    /// 502/503/504, timeouts, resets, truncated bodies: back off and try again.
    #[error("transient failure: {message}{}", ctx(.context_id))]
    Transient { message: String, retry_after: Option<Duration>, context_id: Option<String> },
    /// 400 on a multi-bucket window: split the window and try the halves.
    #[error("the API rejected the window as too large: {message}{}", ctx(.context_id))]
    TooLarge { message: String, context_id: Option<String> },
    /// 401 after a fresh token, or the token endpoint refused the credentials: give up.
    #[error("not authorized: {message}{}", ctx(.context_id))]
    Unauthorized { message: String, context_id: Option<String> },
    /// 403: give up, naming the permission the OAuth client's role lacks.
    #[error("forbidden: the OAuth client's role needs the permission {permission} ({message}){}", ctx(.context_id))]
    Forbidden { permission: String, message: String, context_id: Option<String> },
    /// Any other rejection (400 on one bucket, 404, ...): give up with the API's message.
    #[error("the API rejected the request: {message}{}", ctx(.context_id))]
    Invalid { message: String, context_id: Option<String> },
}

fn ctx(context_id: &Option<String>) -> String {
    context_id.as_ref().map(|c| format!(" (contextId {c})")).unwrap_or_default()
}

impl SourceError {
    /// Whether waiting and trying again can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SourceError::RateLimited { .. } | SourceError::Transient { .. })
    }

    /// The API's correlation id, for Genesys support.
    pub fn context_id(&self) -> Option<&str> {
        match self {
            SourceError::RateLimited { context_id, .. }
            | SourceError::Transient { context_id, .. }
            | SourceError::TooLarge { context_id, .. }
            | SourceError::Unauthorized { context_id, .. }
            | SourceError::Forbidden { context_id, .. }
            | SourceError::Invalid { context_id, .. } => context_id.as_deref(),
        }
    }
}

/// Identifies one written window: which org, which query (by fingerprint), which time range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowKey {
    org: String,
    query: Arc<AggregateQuery>,
    fingerprint: String,
    window: TimeWindow,
}

impl WindowKey {
    /// A window of `query` for `org`.
    pub fn new(org: impl Into<String>, query: Arc<AggregateQuery>, window: TimeWindow) -> Self {
        let fingerprint = query.fingerprint();
        WindowKey { org: org.into(), query, fingerprint, window }
    }

    /// The org label stored in the `org` column.
    pub fn org(&self) -> &str {
        &self.org
    }

    /// The query whose rows these are; its metrics, group-by and filters scope a window replace.
    pub fn query(&self) -> &AggregateQuery {
        &self.query
    }

    /// The query's fingerprint.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The time range (whole buckets).
    pub fn window(&self) -> TimeWindow {
        self.window
    }
}

/// What one window write changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteStats {
    /// Metric values written (inserted or updated).
    pub values_written: u64,
    /// Stored grains (or rows) removed because the window no longer returns them.
    pub rows_deleted: u64,
}

/// Where rows go.
#[async_trait]
pub trait Sink: Send + Sync {
    /// Writes the rows of one window, **replacing** what an earlier write of the same window and
    /// query stored, and records the window's checkpoint in the same transaction where the backend
    /// has transactions. Rows may come in any order; windows may come in any order and
    /// concurrently.
    async fn write_window(&self, key: &WindowKey, rows: &[MetricRow]) -> Result<WriteStats, SinkError>;

    /// Completes the run (e.g. merges and renames a CSV file into place). Called once, only
    /// when every window succeeded; a sink dropped without `finish` leaves no partial output
    /// beyond committed windows.
    async fn finish(&self) -> Result<(), SinkError>;

    /// Where the data is, for people (`sqlite:genesys-intervals.db`); never contains a password.
    fn describe(&self) -> String;
}

/// Which windows are already done (resume). Sinks with transactions implement it.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The checkpointed windows of `fingerprint` for `org` that lie inside `range`.
    async fn completed_windows(
        &self,
        org: &str,
        fingerprint: &str,
        range: TimeWindow,
    ) -> Result<Vec<TimeWindow>, SinkError>;
}

/// Where users and queues go (`genesys-intervals users|queues`).
#[async_trait]
pub trait DirectorySink: Send + Sync {
    /// Upserts users (by id) for `org`.
    async fn write_users(&self, org: &str, users: &[User]) -> Result<u64, SinkError>;
    /// Upserts queues (by id) for `org`.
    async fn write_queues(&self, org: &str, queues: &[Queue]) -> Result<u64, SinkError>;
}

/// Why a sink call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// The store cannot be reached or opened (message names host and port or path, never a
    /// password).
    #[error("cannot open {target}: {message}")]
    Unavailable { target: String, message: String },
    /// An existing table does not have the expected shape; nothing was changed.
    #[error("incompatible schema in {target}: {message}")]
    Schema { target: String, message: String },
    /// Writing failed (disk full, permission, constraint); the window was not committed.
    #[error("write to {target} failed: {message}")]
    Write { target: String, message: String },
}

/// A point in time, injected so the use cases never read the clock themselves.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Now, in UTC.
    fn now(&self) -> chrono::DateTime<chrono::Utc>;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::Utc::now()
    }
}

/// The outcome of a lease request: who may ingest an org now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseGrant {
    /// The caller holds the lease (newly taken, taken over after expiry, or renewed) until
    /// `expires_at`, by the store's clock.
    Held { expires_at: chrono::DateTime<chrono::Utc> },
    /// Another holder's lease has not expired yet.
    HeldBy { holder: String, expires_at: chrono::DateTime<chrono::Utc> },
}

/// Per-org leases, so that daemon replicas sharing one store never ingest the same org at once.
///
/// Expiry is judged by the store's own clock (shared by every replica), never by the caller's.
#[async_trait]
pub trait LeaseStore: Send + Sync {
    /// Takes `org`'s lease for `holder` for `ttl`, or renews it when `holder` already has it,
    /// unless another holder's lease is still running.
    async fn acquire(&self, org: &str, holder: &str, ttl: Duration) -> Result<LeaseGrant, SinkError>;

    /// Gives `org`'s lease up if `holder` has it (nothing happens otherwise).
    async fn release(&self, org: &str, holder: &str) -> Result<(), SinkError>;
}
