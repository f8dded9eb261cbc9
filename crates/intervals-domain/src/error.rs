//! Why a domain value could not be built. Every message says what to do instead.

/// A rejected input or response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Not one of PT15M, PT30M, PT1H, P1D.
    #[error("invalid granularity {input:?}: {hint}")]
    InvalidGranularity { input: String, hint: String },
    /// Not a date or RFC 3339 timestamp.
    #[error("invalid time {input:?}: {hint}")]
    InvalidTime { input: String, hint: String },
    /// Unknown IANA zone.
    #[error("unknown time zone {input:?}: use an IANA name such as UTC, Europe/Dublin or America/New_York")]
    InvalidTimeZone { input: String },
    /// A preset that does not exist.
    #[error("unknown preset {input:?}: use one of {known}")]
    UnknownPreset { input: String, known: String },
    /// Bad `--max-window`.
    #[error("invalid max window {input:?}: {hint}")]
    InvalidMaxWindow { input: String, hint: String },
    /// from >= to.
    #[error("--from ({from}) must be before --to ({to})")]
    FromNotBeforeTo { from: String, to: String },
    /// A range end before the first day Genesys Cloud holds analytics data for.
    #[error(
        "{flag} ({at}) is before {earliest} in {zone}: Genesys Cloud has no analytics data before {earliest}; \
         use a later {flag}"
    )]
    BeforeAnalyticsData { flag: &'static str, at: String, earliest: chrono::NaiveDate, zone: String },
    /// A range end more than one day after now.
    #[error(
        "{flag} ({at}) is more than one day after now ({now}): there is no analytics data from the future; \
         use a {flag} no later than {latest}"
    )]
    AfterAnalyticsData { flag: &'static str, at: String, now: String, latest: String },
    /// A blank org label.
    #[error("the org label must not be empty (it names files and database keys)")]
    EmptyOrgLabel,
    /// An org label longer than [`crate::OrgLabel::MAX_CHARS`] characters.
    #[error("the org label must be at most {max} characters (it names files and database keys), got {chars}")]
    OrgLabelTooLong { chars: usize, max: usize },
    /// An org label with a control character (a newline would forge log lines).
    #[error(
        "the org label must not contain control characters (it names files and database keys, and is printed in \
         log lines), got {input:?}"
    )]
    OrgLabelControl { input: String },
    /// A window with start >= end.
    #[error("empty time window: start {start} is not before end {end}")]
    EmptyWindow { start: String, end: String },
    /// A malformed ISO interval.
    #[error("invalid interval {input:?}: {why}")]
    InvalidInterval { input: String, why: String },
    /// Unknown metric name.
    #[error("unknown metric {input:?}: {hint}")]
    UnknownMetric { input: String, hint: String },
    /// Unknown dimension name.
    #[error("unknown dimension {input:?}: {hint}")]
    UnknownDimension { input: String, hint: String },
    /// A dimension this tool cannot group by.
    #[error("cannot group by {input:?}: {hint}")]
    InvalidGroupBy { input: String, hint: String },
    /// A bad filter value.
    #[error("invalid filter value {input:?}: {hint}")]
    InvalidFilter { input: String, hint: String },
    /// No metric requested.
    #[error("no metrics requested: name at least one, e.g. tHandle,tAcw,tHeldComplete")]
    NoMetrics,
    /// Conversation and status metrics in one [`crate::AggregateQuery`] (a [`crate::QuerySet`] splits them).
    #[error(
        "{first} and {other} are read from different endpoints (conversation and users aggregates): \
         one query holds metrics of one family"
    )]
    MixedFamilies { first: String, other: String },
    /// A queue figure (`nOffered`, `tAbandon`, `oServiceLevel`, ...) asked per agent: grouped by userId
    /// or filtered by user id.
    #[error(
        "{metric} is a queue figure with no agent (an interaction offered to a queue is counted before any \
         agent answers it, and an abandoned one never reaches an agent), so it cannot be {how}: group by \
         queueId,mediaType (--group-by queueId,mediaType), or use the queue preset (--preset queue)"
    )]
    QueueMetricPerAgent { metric: String, how: &'static str },
    /// A name given twice.
    #[error("{what} {name} is listed twice")]
    Duplicate { what: &'static str, name: String },
    /// The API's response does not follow the contract.
    #[error("unexpected response from the analytics API: {0}")]
    BadResponse(String),
    /// The response holds a bucket that is not one bucket of the query's grid inside the requested
    /// window: storing it would write rows nobody asked for (or at the wrong place).
    #[error("the analytics API answered the window {window} with the bucket {bucket}, which {why}")]
    BucketOutsideWindow { window: String, bucket: String, why: &'static str },
}
