//! Implementations of the intervals-app ports.
//!
//! - [`genesys`]: the Genesys Cloud HTTP client (auth, regions, aggregates, jobs, users, queues) behind
//!   `MetricSource`. Wire DTOs (serde) live here and never leave this crate.
//! - [`sinks`]: CSV, JSON Lines, Parquet, SQLite and PostgreSQL behind `Sink`, `CheckpointStore` and
//!   `DirectoryWriter`, each with its output kind.
//! - [`leases`]: per-org leases behind `LeaseStore` (PostgreSQL for daemon replicas, SQLite for one).
//! - [`outputs`]: the registry of outputs, the only way the binaries open a sink.

pub mod genesys;
pub mod leases;
pub mod outputs;
pub mod sinks;
