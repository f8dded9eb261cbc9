//! Sinks: where rows go.
//!
//! | sink | `--out` | implements |
//! |---|---|---|
//! | [`CsvSink`] | `csv:PATH`, `csv:-` | `Sink`, `DirectorySink` |
//! | [`JsonlSink`] | `jsonl:PATH` | `Sink`, `DirectorySink` |
//! | [`SqliteSink`] | `sqlite:PATH` | `Sink`, `CheckpointStore`, `DirectorySink` |
//! | [`PostgresSink`] | `postgres://...` | `Sink`, `CheckpointStore`, `DirectorySink` |
//!
//! File sinks (CSV, JSON Lines) keep memory bounded by one window: each window's rows are formatted, sorted
//! and spilled as a run beside the target (`spill`), and `finish` merges the runs into a
//! temporary file that is then renamed over the target (`output`, `file`). Database sinks store
//! one row per grain (`agent_intervals`, metrics as JSON) and apply the data contract's window
//! replace (`grain`) in one transaction with the window's checkpoint.
//!
//! `docs/writing-a-sink.md` explains how to add a sink.

mod csv;
mod file;
mod grain;
mod jsonl;
mod output;
mod postgres;
mod spill;
mod sqlite;

pub use self::csv::{CsvLayout, CsvSink, CsvTarget};
pub use self::jsonl::JsonlSink;
pub use self::postgres::PostgresSink;
#[doc(hidden)]
pub use self::postgres::{STAGING_TABLE, UPSERT_FROM_STAGING};
pub use self::sqlite::SqliteSink;
