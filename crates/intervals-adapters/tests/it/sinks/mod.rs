//! Tests of the sinks.

mod csv;
mod jsonl;
mod postgres;
mod sqlite;
mod support;
