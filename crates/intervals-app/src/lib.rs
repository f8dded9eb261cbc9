//! Use cases of genesys-intervals and the ports they need.
//!
//! `ingest` plans windows, skips checkpointed ones, fetches with bounded concurrency, splits on
//! `TooLarge`, writes rows and checkpoints, and reports progress. `retry` and `pacing` are the
//! policies every source call goes through. Nothing here names reqwest, sqlx, csv, clap or axum.

pub mod daemon;
pub mod ingest;
pub mod pacing;
pub mod ports;
pub mod report;
pub mod retry;

pub use ports::{
    AgentSlot, Cause, CheckpointStore, CheckpointedSink, Clock, DirectorySource, DirectoryWriter, IntervalsReader,
    LeaseError, MetricSource, Sink, SinkError, SourceError, StoredSeries, StoredWindow, SystemClock, WindowKey,
    WindowTarget, WriteStats,
};

pub use ingest::{
    FailedWindow, IngestError, IngestReport, IngestRequest, Ingestor, NoProgress, Progress, ProgressObserver,
    WindowReport,
};
pub use pacing::{Pacer, RateLimitInfo};
pub use ports::{LeaseGrant, LeaseStore};
pub use report::{build_report, ReportError, ReportRequest};
pub use retry::{
    call_deadline, waiting_for, with_retry, RetryCounters, RetryPolicy, RetryingDirectory, RetryingSource, Waiting,
};
