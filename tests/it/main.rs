//! The workspace's end-to-end suite: real binaries against the simulator and PostgreSQL.
//! Needs `DATABASE_URL` (a superuser on a throwaway server); `cargo xtask ci` provides one.

mod bad_input;
mod chaos;
mod corrections;
mod demo;
mod disk_full;
mod extract_truth;
mod hostile;
mod more_commands;
mod output_targets;
mod parquet_output;
mod postgres_smoke;
mod queue;
mod report;
mod resume;
mod sql_logging;
mod support;
mod utilization;
