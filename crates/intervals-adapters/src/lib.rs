//! Implementations of the intervals-app ports.
//!
//! - [`genesys`]: the Genesys Cloud HTTP client (auth, regions, aggregates, jobs, users, queues) behind
//!   `MetricSource`. Wire DTOs (serde) live here and never leave this crate.
//! - [`sinks`]: CSV, JSON Lines, SQLite and PostgreSQL behind `Sink`, `CheckpointStore` and
//!   `DirectorySink`.
//! - [`leases`]: PostgreSQL per-org leases behind `LeaseStore` (daemon replicas).

pub mod genesys;
pub mod leases;
pub mod sinks;
