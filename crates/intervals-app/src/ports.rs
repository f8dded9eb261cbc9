//! The ports: what the use cases need from the outside world, shaped like the use cases.
//!
//! Adapters implement these traits; binaries pick implementations and hand them over as
//! `Arc<dyn ...>`. No port names a technology (no SQL, no HTTP types).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use intervals_domain::report::VolumeBucket;
use intervals_domain::{AggregateQuery, Granularity, MetricRow, Queue, TimeWindow, User};

/// Where metrics come from (the Genesys analytics API or its simulator).
///
/// Each call is **one attempt**: implementations classify failures into [`SourceError`] and the
/// caller's retry loop ([`crate::retry`]) decides what to do. Token renewal on a 401 is the one
/// retry an implementation does itself.
#[cfg_attr(test, mockall::automock)]
#[async_trait]
pub trait MetricSource: Send + Sync {
    /// The rows of `query` for `window` (one request for all agents).
    async fn query(&self, query: &AggregateQuery, window: TimeWindow) -> Result<Vec<MetricRow>, SourceError>;
}

/// Where the names behind the ids come from: the users and queues directory.
///
/// A port of its own, apart from [`MetricSource`]: reading aggregates another way (async jobs) does
/// not change how the directory is listed. Each call is one attempt, like [`MetricSource::query`].
#[async_trait]
pub trait DirectorySource: Send + Sync {
    /// Every user, whatever their state (paged internally).
    async fn users(&self) -> Result<Vec<User>, SourceError>;
    /// Every routing queue (paged internally).
    async fn queues(&self) -> Result<Vec<Queue>, SourceError>;
}

/// Why a source call failed, by recovery path.
///
/// The variants an underlying error can cause (a transport failure, an unreadable body) keep it as
/// their `cause` (`source()`), scrubbed of secrets by the adapter that classified it. Callers branch
/// on the variant (`matches!`), never on the text.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SourceError {
    /// 429: wait exactly `retry_after` (the server's value as sent, never capped), then try again.
    /// The retry loop returns one only when that wait would end after its deadline, which is what
    /// the message says: `rate limited (HTTP 429): the server asked to wait 100000 s, ...`.
    #[error(
        "rate limited (HTTP 429): the server asked to wait {} before trying again, which would end after the \
         retry deadline; gave up instead of waiting{}",
        seconds(*.retry_after),
        ctx(.context_id)
    )]
    RateLimited { retry_after: Duration, context_id: Option<String> },
    /// 502/503/504, timeouts, resets, truncated bodies: back off and try again.
    #[error("transient failure: {message}{}", ctx(.context_id))]
    Transient {
        message: String,
        retry_after: Option<Duration>,
        context_id: Option<String>,
        #[source]
        cause: Option<Cause>,
    },
    /// 400 on a multi-bucket window: split the window and try the halves.
    #[error("the API rejected the window as too large: {message}{}", ctx(.context_id))]
    TooLarge { message: String, context_id: Option<String> },
    /// 401 after a fresh token, or the token endpoint refused the credentials: give up.
    #[error("not authorized: {message}{}", ctx(.context_id))]
    Unauthorized {
        message: String,
        context_id: Option<String>,
        #[source]
        cause: Option<Cause>,
    },
    /// 403: give up, naming the permission the OAuth client's role lacks.
    #[error("forbidden: the OAuth client's role needs the permission {permission} ({message}){}", ctx(.context_id))]
    Forbidden { permission: String, message: String, context_id: Option<String> },
    /// Nothing was sent: the client holds every request until `until` (its pacer, after a 429 or
    /// near the limit), and waiting for that would pass the call's deadline, so the call gave up
    /// at once. A later call (the next run, the daemon's next tick) may go through.
    #[error("{message}")]
    Held {
        /// `rate limited until 10:00:52 UTC (47 s from now), past this call's 5 s deadline; nothing was sent`.
        message: String,
        /// How long from the moment of the refusal the hold lasts.
        wait: Duration,
    },
    /// The API answered, but with a body larger than the client's cap (`cap` bytes), on a window
    /// that cannot be split further: give up (a smaller window is not possible).
    #[error("{message}{}", ctx(.context_id))]
    BodyTooLarge { message: String, cap: usize, context_id: Option<String> },
    /// Any other rejection (400 on one bucket, 404, ...): give up with the API's message.
    #[error("the API rejected the request: {message}{}", ctx(.context_id))]
    Invalid {
        message: String,
        /// The HTTP status of the refusal, when the API answered with one (`404`: the thing is not
        /// there); `None` for answers off the contract.
        status: Option<u16>,
        context_id: Option<String>,
        #[source]
        cause: Option<Cause>,
    },
}

fn ctx(context_id: &Option<String>) -> String {
    context_id.as_ref().map(|c| format!(" (contextId {c})")).unwrap_or_default()
}

/// A duration for people: whole milliseconds below a second (`250 ms`), else seconds with at most one
/// decimal (`300 s`, `4.8 s`, `100000 s`).
pub fn seconds(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        return format!("{} ms", d.as_millis());
    }
    let tenths = (d.as_millis() + 50) / 100;
    match tenths % 10 {
        0 => format!("{} s", tenths / 10),
        decimal => format!("{}.{decimal} s", tenths / 10),
    }
}

impl SourceError {
    /// [`SourceError::Transient`] with no `Retry-After` and no underlying error.
    pub fn transient(message: impl Into<String>, context_id: Option<String>) -> Self {
        SourceError::Transient { message: message.into(), retry_after: None, context_id, cause: None }
    }

    /// [`SourceError::Unauthorized`] with no underlying error.
    pub fn unauthorized(message: impl Into<String>, context_id: Option<String>) -> Self {
        SourceError::Unauthorized { message: message.into(), context_id, cause: None }
    }

    /// [`SourceError::Invalid`] with no underlying error.
    pub fn invalid(message: impl Into<String>, status: Option<u16>, context_id: Option<String>) -> Self {
        SourceError::Invalid { message: message.into(), status, context_id, cause: None }
    }

    /// The same error with `cause` as its source, for the variants an underlying error can cause
    /// (`Transient`, `Unauthorized`, `Invalid`); the others are returned unchanged.
    pub fn caused_by(mut self, cause: Cause) -> Self {
        match &mut self {
            SourceError::Transient { cause: slot, .. }
            | SourceError::Unauthorized { cause: slot, .. }
            | SourceError::Invalid { cause: slot, .. } => *slot = Some(cause),
            SourceError::RateLimited { .. }
            | SourceError::TooLarge { .. }
            | SourceError::Forbidden { .. }
            | SourceError::Held { .. }
            | SourceError::BodyTooLarge { .. } => {}
        }
        self
    }

    /// Whether waiting and trying again can help.
    pub fn is_retryable(&self) -> bool {
        matches!(self, SourceError::RateLimited { .. } | SourceError::Transient { .. } | SourceError::Held { .. })
    }

    /// The API's correlation id, for Genesys support.
    pub fn context_id(&self) -> Option<&str> {
        match self {
            SourceError::RateLimited { context_id, .. }
            | SourceError::Transient { context_id, .. }
            | SourceError::TooLarge { context_id, .. }
            | SourceError::BodyTooLarge { context_id, .. }
            | SourceError::Unauthorized { context_id, .. }
            | SourceError::Forbidden { context_id, .. }
            | SourceError::Invalid { context_id, .. } => context_id.as_deref(),
            SourceError::Held { .. } => None,
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
    /// Stored grains (or rows) removed because the window no longer returns them.
    pub rows_deleted: u64,
}

/// Where rows go.
#[cfg_attr(test, mockall::automock)]
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

/// Which windows are already done (resume).
///
/// Never handed to the use case on its own: a [`CheckpointedSink`] is a sink and its checkpoints in
/// one object, so a sink cannot be paired with another backend's checkpoints.
#[async_trait]
pub trait CheckpointStore: Send + Sync {
    /// The checkpointed windows of `fingerprint` for `org` that lie inside `range`. A failure is a
    /// [`SinkError::Read`].
    async fn completed_windows(
        &self,
        org: &str,
        fingerprint: &str,
        range: TimeWindow,
    ) -> Result<Vec<TimeWindow>, SinkError>;
}

/// A sink that records each window's checkpoint with its rows (in one transaction, or with one
/// rename): what resume and the daemon need. Implemented by every type that is both.
pub trait CheckpointedSink: Sink + CheckpointStore {}

impl<T: Sink + CheckpointStore + ?Sized> CheckpointedSink for T {}

/// Where the ingest use case writes windows: a sink, with its own checkpoints or without any.
#[derive(Clone)]
pub enum WindowTarget {
    /// Rows only (CSV, JSON Lines): every run writes every window.
    Plain(Arc<dyn Sink>),
    /// Rows and checkpoints of one backend (SQLite, PostgreSQL, Parquet): runs resume.
    Checkpointed(Arc<dyn CheckpointedSink>),
}

impl WindowTarget {
    /// The sink.
    pub fn sink(&self) -> &dyn Sink {
        match self {
            WindowTarget::Plain(sink) => sink.as_ref(),
            WindowTarget::Checkpointed(sink) => sink.as_ref(),
        }
    }

    /// The sink's own checkpoints, if it keeps any.
    pub fn checkpoints(&self) -> Option<&dyn CheckpointStore> {
        match self {
            WindowTarget::Plain(_) => None,
            WindowTarget::Checkpointed(sink) => Some(sink.as_ref()),
        }
    }

    /// The same sink with its checkpoints ignored for reading (`--refetch`, the daemon's re-read):
    /// every window is fetched again, and still checkpointed when written.
    pub fn ignoring_checkpoints(&self) -> WindowTarget {
        match self {
            WindowTarget::Plain(sink) => WindowTarget::Plain(Arc::clone(sink)),
            WindowTarget::Checkpointed(sink) => WindowTarget::Plain(Arc::clone(sink) as Arc<dyn Sink>),
        }
    }
}

impl fmt::Debug for WindowTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = if matches!(self, WindowTarget::Plain(_)) { "Plain" } else { "Checkpointed" };
        f.debug_tuple(kind).field(&self.sink().describe()).finish()
    }
}

/// Where users and queues go (`genesys-intervals users|queues`), for outputs that can hold them.
#[async_trait]
pub trait DirectoryWriter: Send + Sync {
    /// Upserts users (by id) for `org`.
    async fn write_users(&self, org: &str, users: &[User]) -> Result<u64, SinkError>;
    /// Upserts queues (by id) for `org`.
    async fn write_queues(&self, org: &str, queues: &[Queue]) -> Result<u64, SinkError>;
    /// Completes the output (a file is moved into place). Called once, after the writes succeeded;
    /// databases have nothing to do.
    async fn finish(&self) -> Result<(), SinkError> {
        Ok(())
    }
}

/// Reads back what a store holds, aggregated in the store (the `report` command): every method
/// returns sums over many rows, never the rows themselves, so a year of 1,000 agents stays small.
#[async_trait]
pub trait IntervalsReader: Send + Sync {
    /// What is stored, per org and granularity. Empty for a store with no rows.
    async fn inventory(&self) -> Result<Vec<StoredSeries>, SinkError>;
    /// `org`'s checkpointed windows that overlap `range`, with what their query reads where the
    /// store knows it.
    async fn coverage(&self, org: &str, range: TimeWindow) -> Result<Vec<StoredWindow>, SinkError>;
    /// Handled count and handle time (`tHandle`) per bucket and media type in `range`.
    async fn volume(
        &self,
        org: &str,
        granularity: Granularity,
        range: TimeWindow,
    ) -> Result<Vec<VolumeBucket>, SinkError>;
    /// Per agent and UTC time of day of the bucket start, every sum of both families over the buckets
    /// of `range` (which the caller keeps within one UTC offset of its display zone), one slot per
    /// (agent, time of day) with any grain, in no particular order. The agents' totals are these
    /// slots added up, so a store reads its grains once for both the heat map and the agent table.
    async fn agent_slots(
        &self,
        org: &str,
        granularity: Granularity,
        range: TimeWindow,
    ) -> Result<Vec<AgentSlot>, SinkError>;
    /// The names of `org`'s users by id, as far as the store holds them (empty when it holds none).
    async fn user_names(&self, org: &str) -> Result<HashMap<String, String>, SinkError>;
}

/// The rows stored for one org at one granularity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSeries {
    /// The org label.
    pub org: String,
    /// The bucket size.
    pub granularity: Granularity,
    /// The start of the first bucket and the end of the last.
    pub span: TimeWindow,
    /// Grains (rows of `agent_intervals`).
    pub grains: u64,
}

/// One checkpointed window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWindow {
    /// The query's fingerprint.
    pub fingerprint: String,
    /// What the query reads, for people, when the store recorded it.
    pub description: Option<String>,
    /// The query's granularity, when the store recorded it.
    pub granularity: Option<Granularity>,
    /// The window.
    pub window: TimeWindow,
    /// When it was read from the API.
    pub fetched_at: chrono::DateTime<chrono::Utc>,
}

/// One agent's sums at one time of day ([`IntervalsReader::agent_slots`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentSlot {
    /// The agent.
    pub user_id: String,
    /// Minutes after UTC midnight of the buckets' start (0..1440).
    pub utc_minute: u32,
    /// Handled interactions (`tHandle` count).
    pub handled: u64,
    /// Handle time, ms.
    pub handle_ms: f64,
    /// After-call work, ms.
    pub acw_ms: f64,
    /// Hold time, ms (per grain `tHeldComplete`, else `tHeld`).
    pub hold_ms: f64,
    /// Whether any of the slot's grains holds status time (the agent's own grain, media type and
    /// queue empty, with a `tAgentRoutingStatus:` or `tSystemPresence:` key); the status sums are 0
    /// when not.
    pub has_status: bool,
    /// Time in system presence ON_QUEUE, ms.
    pub on_queue_ms: f64,
    /// Routing status INTERACTING, ms.
    pub interacting_ms: f64,
    /// Routing status INTERACTING + COMMUNICATING + IDLE, ms.
    pub occupancy_base_ms: f64,
}

/// The error behind a port error, kept for its chain (`{:#}` with anyhow, `source()`).
pub type Cause = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Why a sink call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// The store cannot be reached or opened (message names host and port or path, never a
    /// password).
    #[error("cannot open {target}: {message}")]
    Unavailable {
        target: String,
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// An existing table does not have the expected shape; nothing was changed.
    #[error("incompatible schema in {target}: {message}")]
    Schema {
        target: String,
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// Reading what is stored (checkpoints) failed; nothing was written.
    #[error("reading {target} failed: {message}")]
    Read {
        target: String,
        message: String,
        #[source]
        cause: Option<Cause>,
    },
    /// Writing failed (disk full, permission, constraint); the window was not committed.
    #[error("write to {target} failed: {message}")]
    Write {
        target: String,
        message: String,
        #[source]
        cause: Option<Cause>,
    },
}

impl SinkError {
    /// [`SinkError::Unavailable`] with no underlying error.
    pub fn unavailable(target: impl Into<String>, message: impl Into<String>) -> Self {
        SinkError::Unavailable { target: target.into(), message: message.into(), cause: None }
    }

    /// [`SinkError::Schema`] with no underlying error.
    pub fn schema(target: impl Into<String>, message: impl Into<String>) -> Self {
        SinkError::Schema { target: target.into(), message: message.into(), cause: None }
    }

    /// [`SinkError::Read`] with no underlying error.
    pub fn read(target: impl Into<String>, message: impl Into<String>) -> Self {
        SinkError::Read { target: target.into(), message: message.into(), cause: None }
    }

    /// [`SinkError::Write`] with no underlying error.
    pub fn write(target: impl Into<String>, message: impl Into<String>) -> Self {
        SinkError::Write { target: target.into(), message: message.into(), cause: None }
    }

    /// The same error with `cause` as its source.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        let slot = match &mut self {
            SinkError::Unavailable { cause, .. }
            | SinkError::Schema { cause, .. }
            | SinkError::Read { cause, .. }
            | SinkError::Write { cause, .. } => cause,
        };
        *slot = Some(Arc::new(cause));
        self
    }
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
    async fn acquire(&self, org: &str, holder: &str, ttl: Duration) -> Result<LeaseGrant, LeaseError>;

    /// Gives `org`'s lease up if `holder` has it (nothing happens otherwise).
    async fn release(&self, org: &str, holder: &str) -> Result<(), LeaseError>;
}

/// Why a lease call failed: the store could not answer. The lease is then treated as not held.
#[derive(Debug, Clone, thiserror::Error)]
#[error("lease store {target}: {message}")]
pub struct LeaseError {
    target: String,
    message: String,
    #[source]
    cause: Option<Cause>,
}

impl LeaseError {
    /// The store at `target` failed with `message`.
    pub fn new(target: impl Into<String>, message: impl Into<String>) -> Self {
        LeaseError { target: target.into(), message: message.into(), cause: None }
    }

    /// The same error with `cause` as its source.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.cause = Some(Arc::new(cause));
        self
    }
}
