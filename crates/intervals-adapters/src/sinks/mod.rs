//! Sinks: where rows go, and the registry entry of each output.
//!
//! | output | `--out` | offers |
//! |---|---|---|
//! | [`SqliteSink`] | `sqlite:PATH` | rows + checkpoints, users/queues, a lease for one daemon |
//! | [`PostgresSink`] | `postgres://...` | rows + checkpoints, users/queues, leases shared by replicas |
//! | [`ParquetSink`] | `parquet:DIR` | rows + checkpoints (one file per window) |
//! | [`CsvSink`], [`CsvDirectory`] | `csv:PATH`, `csv:-` | rows (long or wide), users/queues |
//! | [`JsonlSink`], [`JsonlDirectory`] | `jsonl:PATH` | rows, users/queues |
//!
//! Each module holds its sink and its output kind (the `OutputKind` the registry resolves a URL to);
//! [`builtin_outputs`] is the list the registry starts from. Adding an output is a module and its two
//! lines here (`mod` and the entry); `docs/writing-a-sink.md` walks through it.
//!
//! File sinks (CSV, JSON Lines) keep memory bounded by one window: each window's rows are formatted,
//! sorted and spilled as a run beside the target (`spill`), and `finish` merges the runs into a
//! temporary file that is then renamed over the target (`output`, `file`). Database sinks store one
//! row per grain (typed columns for the common metrics, JSON for the rest: SQLite's `agent_intervals`, PostgreSQL's
//! `interval_grains`) and apply the data contract's window replace
//! (`grain`) in one transaction with the window's checkpoint. Parquet writes one file per window by
//! rename, and the file is the checkpoint. The database outputs can also be read back for the report
//! (`sqlite_reader`, `postgres_reader`, sharing `reading`): every answer is summed in the database.

use std::sync::Arc;
use std::time::Duration;

use crate::outputs::OutputKind;

mod csv;
mod file;
mod grain;
mod jsonl;
pub mod output;
mod parquet;
mod postgres;
mod postgres_reader;
mod reading;
mod spill;
mod sqlite;
mod sqlite_reader;

pub use self::csv::{CsvDirectory, CsvLayout, CsvSink, CsvTarget};
pub use self::jsonl::{JsonlDirectory, JsonlSink};
pub use self::parquet::ParquetSink;
pub use self::postgres::PostgresSink;
#[doc(hidden)]
pub use self::postgres::{staging_copy, staging_table, upsert_from_staging};
pub use self::sqlite::SqliteSink;

/// The outputs of this crate, in the order their forms are listed in help and errors.
pub(crate) fn builtin_outputs() -> Vec<Arc<dyn OutputKind>> {
    vec![
        Arc::new(sqlite::SqliteKind),
        Arc::new(csv::CsvKind),
        Arc::new(jsonl::JsonlKind),
        Arc::new(parquet::ParquetKind),
        Arc::new(postgres::PostgresKind),
    ]
}

/// A statement slower than this is logged as slow (at DEBUG, like every statement).
const SLOW_STATEMENT: Duration = Duration::from_secs(1);

/// `options` with sqlx's statement logging at DEBUG only. sqlx logs every statement at DEBUG and, by
/// default, one slower than a second (a lock held by another writer, a busy server) as a WARN with its
/// whole SQL text: that is for whoever asks (`RUST_LOG=sqlx=debug`), not for the default log. Every
/// pool and connection the database outputs open (sinks, readers; the leases share the sinks' pools)
/// is built from options passed through here; a pool handed to `from_pool` keeps its own settings.
pub(crate) fn statements_at_debug<O: sqlx::ConnectOptions>(options: O) -> O {
    options.log_statements(log::LevelFilter::Debug).log_slow_statements(log::LevelFilter::Debug, SLOW_STATEMENT)
}
