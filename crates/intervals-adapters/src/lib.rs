//! Implementations of the intervals-app ports.
//!
//! - [`genesys`]: the Genesys Cloud HTTP client (auth, regions, aggregates, jobs, users, queues) behind
//!   `MetricSource`. Wire DTOs (serde) live here and never leave this crate.
//! - [`sinks`]: CSV, JSON Lines, SQLite and PostgreSQL behind `Sink`, `CheckpointStore` and
//!   `DirectorySink`.

pub mod genesys;
pub mod sinks;
