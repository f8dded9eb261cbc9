//! Tests of the sinks.

mod csv;
mod jsonl;
mod parquet;
mod postgres;
mod postgres_migration;
mod scenarios;
mod sqlite;
mod sqlite_migration;
pub(crate) mod support;
