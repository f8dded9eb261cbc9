//! Pure types and rules of genesys-intervals: bucket sizes, time windows and window planning,
//! metric and dimension names, queries, statistics and rows, the CSV data contract, and the
//! daemon's schedule (what to read at time T).
//!
//! This crate does no IO, spawns nothing and knows no wire format: values are valid by
//! construction (parse, don't validate), and adapters convert into them at the boundary.

mod directory;
mod error;
mod format;
mod granularity;
mod names;
mod org;
mod plan;
mod query;
pub mod report;
mod row;
mod schedule;
mod settings;
mod window;

pub use directory::{Queue, User};
pub use error::DomainError;
pub use format::{
    format_number, has_observation_columns, long_header, long_record, wide_header, wide_record, wide_runs,
    OBSERVATION_COLUMNS,
};
pub use granularity::Granularity;
pub use names::{
    Dimension, MetricFamily, MetricName, DEFAULT_METRICS, DIMENSIONS, METRICS, QUEUE_ONLY_METRICS, USER_STATUS_METRICS,
    UTILIZATION_METRICS,
};
pub use org::OrgLabel;
pub use plan::{parse_time_zone, MaxWindow, Plan, PlanRequest, TimeSpec, EARLIEST_DATA, LARGE_PLAN_REQUESTS};
pub use query::{is_uuid, AggregateQuery, Filters, QuerySet, MEDIA_TYPES, STORABLE_DIMENSIONS};
pub use row::{AggregateResponse, BucketData, GroupResult, MetricData, MetricRow, ResponseRows, Stats};
pub use schedule::{Schedule, ScheduleError, ScheduleRequest, TickWork, MAX_DAILY_LOOKBACK_DAYS, MAX_LOOKBACK_HOURS};
pub use settings::{
    BuiltQueries, Preset, QuerySpec, SpecError, SpecField, DEFAULT_GRANULARITY, DEFAULT_GROUP_BY, DEFAULT_TIME_ZONE,
    QUEUE_METRICS,
};
pub use window::{rfc3339, TimeWindow};

/// Re-exported so callers name zones without depending on chrono-tz themselves.
pub use chrono_tz::Tz;
