//! Tests of the sinks.

mod csv;
mod jsonl;
mod parquet;
mod postgres;
mod scenarios;
mod sqlite;
pub(crate) mod support;
