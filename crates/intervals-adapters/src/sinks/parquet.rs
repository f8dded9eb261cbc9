//! The Parquet sink (`parquet:DIR`): one Parquet file per window in Hive-style partition folders,
//! each written by temporary file and rename, each being its window's checkpoint.
//!
//! # Layout
//!
//! ```text
//! DIR/org=<org>/interval_date=<YYYY-MM-DD>/<granularity>-<start>-<end>-<fingerprint>.parquet
//! DIR/org=emea/interval_date=2025-03-10/PT30M-20250310T000000Z-20250311T000000Z-5d0c9e1b7a3f2e44.parquet
//! ```
//!
//! - `org` is the org label, with every byte other than `A-Z a-z 0-9 . _ -` percent-encoded (`%2F`)
//!   as Hive escapes partition values. It is a partition column only: it is not stored in the files.
//! - `interval_date` is the date of the window's start in the query's time zone.
//! - `<start>` and `<end>` are the window's bounds in UTC (`20250310T000000Z`, whole seconds: windows
//!   are whole buckets), `<granularity>` is the ISO form (`PT30M`) and `<fingerprint>` the query's.
//!
//! # Columns
//!
//! The data contract's long layout with typed columns, rows in its order (group columns, then
//! `interval_start`, then `metric`), which the file declares as its sorting columns:
//!
//! | column | Parquet type |
//! |---|---|
//! | one per groupBy dimension, in order (`user_id`, `media_type`, `queue_id`) | required BYTE_ARRAY (STRING) |
//! | `interval_start`, `interval_end` | required INT64 TIMESTAMP(MICROS, adjusted to UTC) |
//! | `metric` (`tHandle`, or `metric:qualifier`) | required BYTE_ARRAY (STRING) |
//! | `count` | optional INT64 |
//! | `sum`, `min`, `max` | optional DOUBLE |
//!
//! One row group per file, Snappy-compressed; the key-value metadata names the org, the window
//! and the query's fingerprint and time zone. Several queries may share `DIR` (their files differ
//! by fingerprint), but a reader that takes the folder as one table expects one schema: keep one
//! group-by per `DIR`. A run reading two queries (conversation metrics and status metrics, the
//! latter grouped by userId alone) writes one file per window and query, the status files in the
//! columns of the run's layout query ([`ParquetSink::with_layout`]), `""` in the dimensions status
//! has not, so the folder keeps one schema. A window replace touches the files of its own
//! fingerprint only, so re-reading one query never removes the other's file of the same window.
//!
//! # Guarantees
//!
//! - **All or nothing per window.** A window is written to a hidden temporary file
//!   (`.<name>.<random>.tmp`) in its folder, synced, and renamed into place, the folder then
//!   synced. A killed run leaves no partial `.parquet` file, at most hidden `.tmp` leftovers, which
//!   this sink and Hive-style readers (Spark, DuckDB, pyarrow) ignore.
//! - **Replace.** Writing a window again replaces its file. Before the rename, files of the same
//!   fingerprint whose window lies inside the new one (written by an earlier run with smaller
//!   windows, e.g. another `--max-window`) are deleted, so a re-read with larger windows leaves no
//!   duplicates. A crash between those deletions and the rename leaves a gap that no checkpoint
//!   claims, so the next run fetches it again. A file whose window only partly overlaps the new
//!   one is kept whole (its overlap is then stored twice): resumed runs fetch only the gaps
//!   between checkpointed windows, so this happens only when a range is re-read (`--refetch`)
//!   with windows that straddle earlier ones. Partition folders emptied by deletions stay.
//! - **The file is the checkpoint.** [`CheckpointStore::completed_windows`] parses file names; it
//!   reads no file.
//! - `WriteStats::rows_deleted` counts the rows of the replaced files (read back) whose group,
//!   `interval_start` and `metric` the new window no longer has.
//! - Memory is bounded by one window; file work runs on tokio's blocking threads.
//! - Windows written concurrently must not overlap (the ingest plan's never do).

use std::borrow::Cow;
use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{Duration, NaiveDate, NaiveDateTime};
use intervals_app::{CheckpointStore, Sink, SinkError, WindowKey, WriteStats};
use intervals_domain::{AggregateQuery, Dimension, MetricRow, TimeWindow};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DataType, DoubleType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::record::RowAccessor;
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::Type;

use super::file::in_layout;
use crate::outputs::{Capabilities, Leases, MetricsContext, OutputConfig, OutputKind};
use intervals_app::WindowTarget;

/// The extension of window files.
const EXTENSION: &str = ".parquet";
/// Window bounds in file names: compact ISO 8601 in UTC.
const COMPACT_UTC: &str = "%Y%m%dT%H%M%SZ";
/// The name of the schema's root (the reader's projections must use it too).
const MESSAGE: &str = "interval_metrics";

/// Writes each window of a query as one Parquet file under `DIR`, and reads its checkpoints back
/// from the file names.
#[derive(Debug)]
pub struct ParquetSink {
    dir: PathBuf,
    describe: String,
    layout: Option<Arc<AggregateQuery>>,
}

impl ParquetSink {
    /// A Parquet output in `dir`, created when missing. Fails with [`SinkError::Unavailable`]
    /// naming the path when the folder cannot be created or written to. The sink takes each
    /// window's query from its [`WindowKey`].
    pub fn create(dir: impl Into<PathBuf>) -> Result<ParquetSink, SinkError> {
        let dir = dir.into();
        let describe = format!("parquet:{}", dir.display());
        let unavailable = |what: &str, e: io::Error| {
            SinkError::unavailable(describe.clone(), format!("{what} {}: {e}", dir.display())).caused_by(e)
        };
        fs::create_dir_all(&dir).map_err(|e| unavailable("cannot create the folder", e))?;
        // Probe: a hidden file, removed when dropped.
        tempfile::Builder::new()
            .prefix(".genesys-intervals-probe-")
            .suffix(".tmp")
            .tempfile_in(&dir)
            .map_err(|e| unavailable("cannot write in the folder", e))?;
        Ok(ParquetSink { dir, describe, layout: None })
    }

    /// Writes every window in the columns of `layout`: the rows of another query whose group-by
    /// is within the layout's (the status query of a run, grouped by userId alone) get `""` in the
    /// dimensions it lacks; a query that does not fit is refused. Without a layout, each window's
    /// file has its own query's columns.
    pub fn with_layout(mut self, layout: Arc<AggregateQuery>) -> ParquetSink {
        self.layout = Some(layout);
        self
    }

    /// `DIR/org=<org>`.
    fn org_dir(&self, org: &str) -> PathBuf {
        self.dir.join(format!("org={}", escape_partition_value(org)))
    }
}

#[async_trait]
impl Sink for ParquetSink {
    async fn write_window(&self, key: &WindowKey, rows: &[MetricRow]) -> Result<WriteStats, SinkError> {
        let write_error = |message| SinkError::write(self.describe.clone(), message);
        let (group_by, rows) = match &self.layout {
            Some(layout) => (layout.group_by(), in_layout(layout, key, rows).map_err(write_error)?),
            None => (key.query().group_by(), Cow::Borrowed(rows)),
        };
        let columns = Columns::new(group_by, &rows).map_err(write_error)?;
        let window = key.window();
        let local_start = window.start().with_timezone(&key.query().time_zone());
        let org_dir = self.org_dir(key.org());
        let folder = org_dir.join(format!("interval_date={}", local_start.format("%Y-%m-%d")));
        let name = format!(
            "{}-{}-{}-{}{EXTENSION}",
            key.query().granularity().as_iso(),
            window.start().format(COMPACT_UTC),
            window.end().format(COMPACT_UTC),
            key.fingerprint(),
        );
        let metadata = vec![
            KeyValue::new("genesys_intervals.org".to_owned(), key.org().to_owned()),
            KeyValue::new("genesys_intervals.window".to_owned(), window.to_iso_interval()),
            KeyValue::new("genesys_intervals.fingerprint".to_owned(), key.fingerprint().to_owned()),
            KeyValue::new("genesys_intervals.time_zone".to_owned(), key.query().time_zone().name().to_owned()),
        ];
        let job = WindowWrite {
            describe: self.describe.clone(),
            org_dir,
            path: folder.join(name),
            folder,
            fingerprint: key.fingerprint().to_owned(),
            window,
            metadata,
            columns,
        };
        let rows_deleted = off_runtime(&self.describe, SinkError::write, move || job.run()).await?;
        Ok(WriteStats { rows_deleted })
    }

    /// Nothing to do: every window is durable once written.
    async fn finish(&self) -> Result<(), SinkError> {
        Ok(())
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

#[async_trait]
impl CheckpointStore for ParquetSink {
    /// The windows of the `fingerprint` files in `DIR/org=<org>/interval_date=*/` that lie inside
    /// `range`, sorted; hidden and unparsable names are ignored.
    async fn completed_windows(
        &self,
        org: &str,
        fingerprint: &str,
        range: TimeWindow,
    ) -> Result<Vec<TimeWindow>, SinkError> {
        let org_dir = self.org_dir(org);
        let fingerprint = fingerprint.to_owned();
        let describe = self.describe.clone();
        off_runtime(&self.describe, SinkError::read, move || {
            let files = window_files(&org_dir, &fingerprint, range)
                .map_err(|e| SinkError::read(describe, format!("listing {}: {e}", org_dir.display())).caused_by(e))?;
            let mut windows: Vec<TimeWindow> = files.into_iter().map(|f| f.window).collect();
            windows.dedup();
            Ok(windows)
        })
        .await
    }
}

/// Runs blocking file work on tokio's blocking threads; a cancelled task is reported with
/// `error` (a panic is resumed).
async fn off_runtime<T: Send + 'static>(
    describe: &str,
    error: fn(String, String) -> SinkError,
    work: impl FnOnce() -> Result<T, SinkError> + Send + 'static,
) -> Result<T, SinkError> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => Err(error(describe.to_owned(), format!("the file task did not complete: {e}"))),
    }
}

/// A partition value as Hive writes it in a folder name: bytes other than `A-Z a-z 0-9 . _ -`
/// as `%XX`.
fn escape_partition_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A window file found on disk.
#[derive(Debug)]
struct WindowFile {
    path: PathBuf,
    window: TimeWindow,
}

/// The fingerprint and window of a window file's name; `None` for hidden files (temporary files)
/// and other names.
fn parse_file_name(name: &str) -> Option<(&str, TimeWindow)> {
    if name.starts_with('.') {
        return None;
    }
    let mut parts = name.strip_suffix(EXTENSION)?.split('-');
    let (_granularity, start, end, fingerprint) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || fingerprint.is_empty() {
        return None;
    }
    let parse = |s: &str| NaiveDateTime::parse_from_str(s, COMPACT_UTC).ok().map(|t| t.and_utc());
    let window = TimeWindow::new(parse(start)?, parse(end)?).ok()?;
    Some((fingerprint, window))
}

/// The files of `fingerprint` in `org_dir`'s partition folders whose window lies inside `range`,
/// sorted by window. Only the date folders that can hold such a window are listed: a local date
/// is within a day of the UTC date.
fn window_files(org_dir: &Path, fingerprint: &str, range: TimeWindow) -> io::Result<Vec<WindowFile>> {
    let first = (range.start() - Duration::days(1)).date_naive();
    let last = (range.end() + Duration::days(1)).date_naive();
    let mut found = Vec::new();
    let dates = match fs::read_dir(org_dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        dates => dates?,
    };
    for entry in dates {
        let entry = entry?;
        let name = entry.file_name();
        let date = name
            .to_str()
            .and_then(|n| n.strip_prefix("interval_date="))
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        let Some(date) = date else { continue };
        if date < first || date > last || !entry.file_type()?.is_dir() {
            continue;
        }
        for file in fs::read_dir(entry.path())? {
            let file = file?;
            let name = file.file_name();
            let Some((found_fingerprint, window)) = name.to_str().and_then(parse_file_name) else { continue };
            if found_fingerprint == fingerprint && range.covers(&window) {
                found.push(WindowFile { path: file.path(), window });
            }
        }
    }
    found.sort_by_key(|f| f.window);
    Ok(found)
}

/// A column of optional values: the values present and a definition level per row.
#[derive(Debug, Default)]
struct Nullable<T> {
    values: Vec<T>,
    levels: Vec<i16>,
}

impl<T> Nullable<T> {
    fn with_capacity(rows: usize) -> Self {
        Nullable { values: Vec::with_capacity(rows), levels: Vec::with_capacity(rows) }
    }

    fn push(&mut self, value: Option<T>) {
        self.levels.push(i16::from(value.is_some()));
        self.values.extend(value);
    }
}

/// One window's rows as Parquet columns, in the data contract's order.
#[derive(Debug)]
struct Columns {
    /// The groupBy dimensions' column names.
    group_names: Vec<String>,
    /// One column per groupBy dimension.
    groups: Vec<Vec<ByteArray>>,
    starts: Vec<i64>,
    ends: Vec<i64>,
    metrics: Vec<ByteArray>,
    count: Nullable<i64>,
    sum: Nullable<f64>,
    min: Nullable<f64>,
    max: Nullable<f64>,
}

impl Columns {
    /// Sorts `rows` (grouped by `group_by`) and splits them into columns. Equal consecutive group
    /// values share one buffer.
    fn new(group_by: &[Dimension], rows: &[MetricRow]) -> Result<Columns, String> {
        let group_names: Vec<String> = group_by.iter().map(|d| d.column_name()).collect();
        if let Some(row) = rows.iter().find(|r| r.group().len() != group_names.len()) {
            return Err(format!(
                "a row has {} group values, but the query groups by {} dimensions",
                row.group().len(),
                group_names.len()
            ));
        }
        let mut sorted: Vec<(&MetricRow, String)> = rows.iter().map(|r| (r, r.metric_key())).collect();
        sorted.sort_by(|(a, a_metric), (b, b_metric)| {
            a.group()
                .cmp(b.group())
                .then(a.bucket().start().cmp(&b.bucket().start()))
                .then_with(|| a_metric.cmp(b_metric))
        });
        let n = sorted.len();
        let mut columns = Columns {
            groups: vec![Vec::with_capacity(n); group_names.len()],
            group_names,
            starts: Vec::with_capacity(n),
            ends: Vec::with_capacity(n),
            metrics: Vec::with_capacity(n),
            count: Nullable::with_capacity(n),
            sum: Nullable::with_capacity(n),
            min: Nullable::with_capacity(n),
            max: Nullable::with_capacity(n),
        };
        for (row, metric) in sorted {
            for (column, value) in columns.groups.iter_mut().zip(row.group()) {
                let shared = match column.last() {
                    Some(last) if last.data() == value.as_bytes() => last.clone(),
                    _ => ByteArray::from(value.as_str()),
                };
                column.push(shared);
            }
            columns.starts.push(row.bucket().start().timestamp_micros());
            columns.ends.push(row.bucket().end().timestamp_micros());
            columns.metrics.push(ByteArray::from(metric.into_bytes()));
            let stats = row.stats();
            let count = stats.count.map(i64::try_from).transpose().map_err(|_| {
                format!(
                    "count {} of {} does not fit a Parquet INT64",
                    stats.count.unwrap_or_default(),
                    row.metric_key()
                )
            })?;
            columns.count.push(count);
            columns.sum.push(stats.sum);
            columns.min.push(stats.min);
            columns.max.push(stats.max);
        }
        Ok(columns)
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    /// The identity of row `i` ([`row_key`]).
    fn key(&self, i: usize, out: &mut Vec<u8>) {
        out.clear();
        row_key(out, self.groups.iter().map(|c| c[i].data()), self.starts[i], self.metrics[i].data());
    }
}

/// Appends a row's identity (group values, `interval_start`, metric) as unambiguous bytes.
fn row_key<'a>(out: &mut Vec<u8>, group: impl Iterator<Item = &'a [u8]>, start: i64, metric: &[u8]) {
    for value in group {
        out.extend_from_slice(&(value.len() as u64).to_le_bytes());
        out.extend_from_slice(value);
    }
    out.extend_from_slice(&start.to_le_bytes());
    out.extend_from_slice(metric);
}

/// The schema of a window file, or with `keys_only` the projection of its row identity.
fn message_type(group_names: &[String], keys_only: bool) -> Result<Type, ParquetError> {
    let mut fields = String::new();
    for name in group_names {
        fields.push_str(&format!("  required binary {name} (STRING);\n"));
    }
    fields.push_str("  required int64 interval_start (TIMESTAMP(MICROS,true));\n");
    if !keys_only {
        fields.push_str("  required int64 interval_end (TIMESTAMP(MICROS,true));\n");
    }
    fields.push_str("  required binary metric (STRING);\n");
    if !keys_only {
        fields.push_str(
            "  optional int64 count;\n  optional double sum;\n  optional double min;\n  optional double max;\n",
        );
    }
    parse_message_type(&format!("message {MESSAGE} {{\n{fields}}}"))
}

/// Everything the blocking part of a window write needs, owned.
struct WindowWrite {
    describe: String,
    org_dir: PathBuf,
    folder: PathBuf,
    path: PathBuf,
    fingerprint: String,
    window: TimeWindow,
    metadata: Vec<KeyValue>,
    columns: Columns,
}

impl WindowWrite {
    /// Writes the temporary file, deletes the files it covers, renames it into place; returns the
    /// rows removed. Blocking.
    fn run(self) -> Result<u64, SinkError> {
        let io_error = |what: &str, path: &Path, e: io::Error| {
            SinkError::write(self.describe.clone(), format!("{what} {}: {e}", path.display())).caused_by(e)
        };
        fs::create_dir_all(&self.folder).map_err(|e| io_error("cannot create", &self.folder, e))?;
        let file_name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut temp = tempfile::Builder::new()
            .prefix(&format!(".{file_name}."))
            .suffix(".tmp")
            .tempfile_in(&self.folder)
            .map_err(|e| io_error("cannot create a temporary file in", &self.folder, e))?;
        self.encode(temp.as_file_mut()).map_err(|e| {
            let message = match &e {
                // The file system refused the bytes (a full disk, a size limit): its error, not an encoding one.
                ParquetError::External(io) if io.is::<io::Error>() => {
                    format!(
                        "cannot write {}: {io}; the windows written before are kept: make room, then run again to \
                         continue",
                        self.path.display()
                    )
                }
                _ => format!("encoding {}: {e}", self.path.display()),
            };
            SinkError::write(self.describe.clone(), message).caused_by(e)
        })?;
        let synced: io::Result<()> = (|| {
            temp.as_file().sync_all()?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                temp.as_file().set_permissions(fs::Permissions::from_mode(0o644))?;
            }
            Ok(())
        })();
        synced.map_err(|e| io_error("cannot sync", temp.path(), e))?;

        let replaced = window_files(&self.org_dir, &self.fingerprint, self.window)
            .map_err(|e| io_error("cannot list", &self.org_dir, e))?;
        let rows_deleted = self.stale_rows(&replaced);
        let mut touched: Vec<&Path> = Vec::new();
        for file in replaced.iter().filter(|f| f.path != self.path) {
            match fs::remove_file(&file.path) {
                Ok(()) => tracing::debug!(
                    target = %self.describe,
                    file = %file.path.display(),
                    "deleted a window file that the new window covers"
                ),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error("cannot delete", &file.path, e)),
            }
            let folder = file.path.parent().unwrap_or(Path::new("."));
            if !touched.contains(&folder) {
                touched.push(folder);
            }
        }
        // The deletions are durable before the new file appears: a crash leaves a gap, never a duplicate.
        for folder in touched {
            sync_folder(folder);
        }
        temp.persist(&self.path).map_err(|e| io_error("cannot rename into", &self.path, e.error))?;
        sync_folder(&self.folder);
        Ok(rows_deleted)
    }

    /// Writes the Parquet file: one row group (none for an empty window).
    fn encode(&self, out: &mut File) -> Result<(), ParquetError> {
        let c = &self.columns;
        let schema = Arc::new(message_type(&c.group_names, false)?);
        let order_by = (0..=c.group_names.len()).chain([c.group_names.len() + 2]);
        let sorting =
            order_by.map(|i| SortingColumn { column_idx: i as i32, descending: false, nulls_first: false }).collect();
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_sorting_columns(Some(sorting))
            .set_key_value_metadata(Some(self.metadata.clone()))
            .build();
        let mut writer = SerializedFileWriter::new(out, schema, Arc::new(properties))?;
        if c.len() > 0 {
            let mut group = writer.next_row_group()?;
            for values in &c.groups {
                write_column::<ByteArrayType, _>(&mut group, values, None)?;
            }
            write_column::<Int64Type, _>(&mut group, &c.starts, None)?;
            write_column::<Int64Type, _>(&mut group, &c.ends, None)?;
            write_column::<ByteArrayType, _>(&mut group, &c.metrics, None)?;
            write_column::<Int64Type, _>(&mut group, &c.count.values, Some(&c.count.levels))?;
            for stat in [&c.sum, &c.min, &c.max] {
                write_column::<DoubleType, _>(&mut group, &stat.values, Some(&stat.levels))?;
            }
            group.close()?;
        }
        writer.close()?;
        Ok(())
    }

    /// How many rows of the files being replaced the new window no longer has. A file that cannot
    /// be read is replaced all the same (and counted as nothing).
    fn stale_rows(&self, replaced: &[WindowFile]) -> u64 {
        if replaced.is_empty() {
            return 0;
        }
        let mut new_keys = HashSet::with_capacity(self.columns.len());
        for i in 0..self.columns.len() {
            let mut key = Vec::new();
            self.columns.key(i, &mut key);
            new_keys.insert(key);
        }
        let mut stale = 0;
        for file in replaced {
            match stale_rows_of(&file.path, &self.columns.group_names, &new_keys) {
                Ok(n) => stale += n,
                Err(e) => tracing::warn!(
                    target = %self.describe,
                    file = %file.path.display(),
                    error = %e,
                    "cannot read a replaced window file; it is replaced all the same"
                ),
            }
        }
        stale
    }
}

/// Writes one column chunk.
fn write_column<T: DataType, W: Write + Send>(
    group: &mut SerializedRowGroupWriter<'_, W>,
    values: &[T::T],
    levels: Option<&[i16]>,
) -> Result<(), ParquetError> {
    let mut column =
        group.next_column()?.ok_or_else(|| ParquetError::General("more columns than the schema has".to_owned()))?;
    column.typed::<T>().write_batch(values, levels, None)?;
    column.close()
}

/// The rows of the window file at `path` whose identity is not in `keep`.
fn stale_rows_of(path: &Path, group_names: &[String], keep: &HashSet<Vec<u8>>) -> Result<u64, ParquetError> {
    let reader = SerializedFileReader::new(File::open(path)?)?;
    let groups = group_names.len();
    let mut stale = 0;
    let mut key = Vec::new();
    for row in reader.get_row_iter(Some(message_type(group_names, true)?))? {
        let row = row?;
        let group = (0..groups).map(|i| row.get_string(i).map(String::as_bytes)).collect::<Result<Vec<_>, _>>()?;
        key.clear();
        row_key(&mut key, group.into_iter(), row.get_timestamp_micros(groups)?, row.get_string(groups + 1)?.as_bytes());
        if !keep.contains(&key) {
            stale += 1;
        }
    }
    Ok(stale)
}

/// Makes renames and deletions in `folder` durable, where the platform can sync a folder.
fn sync_folder(folder: &Path) {
    if let Ok(dir) = File::open(folder) {
        let _ = dir.sync_all();
    }
}

// --- The output kind (the registry entry is in `sinks/mod.rs`) ------------------------------------

/// `parquet:DIR`.
pub(crate) struct ParquetKind;

impl OutputKind for ParquetKind {
    fn schemes(&self) -> &'static [&'static str] {
        &["parquet"]
    }
    fn form(&self) -> &'static str {
        "parquet:DIR"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities { checkpoints: true, directory: false, leases: Leases::None, wide_layout: false }
    }
    fn parse(&self, url: &str) -> Result<Box<dyn OutputConfig>, String> {
        let (_, dir) = url.split_once(':').unwrap_or(("", url));
        let dir = dir.strip_prefix("//").unwrap_or(dir);
        if dir.is_empty() {
            return Err("the folder is empty".to_owned());
        }
        let dir = PathBuf::from(dir);
        if dir.exists() && !dir.is_dir() {
            return Err(format!("{} is a file, not a folder", dir.display()));
        }
        Ok(Box::new(ParquetConfig { dir }))
    }
}

#[derive(Debug)]
struct ParquetConfig {
    dir: PathBuf,
}

#[async_trait]
impl OutputConfig for ParquetConfig {
    fn describe(&self) -> String {
        format!("parquet:{}", self.dir.display())
    }
    fn look_hint(&self) -> Option<String> {
        Some(format!(
            "duckdb -c \"SELECT * FROM read_parquet('{}/**/*.parquet', hive_partitioning = true) LIMIT 10\"",
            self.dir.display()
        ))
    }
    async fn open_metrics(&self, cx: &MetricsContext) -> Result<WindowTarget, SinkError> {
        let sink = ParquetSink::create(&self.dir)?.with_layout(Arc::clone(&cx.query));
        Ok(WindowTarget::Checkpointed(Arc::new(sink)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_values_are_escaped_like_hive() {
        assert_eq!(escape_partition_value("emea-prod_1.x"), "emea-prod_1.x");
        assert_eq!(escape_partition_value("a/b c=é"), "a%2Fb%20c%3D%C3%A9");
    }

    #[test]
    fn file_names_parse_back_and_hidden_names_do_not() {
        let (fingerprint, window) =
            parse_file_name("PT30M-20250310T000000Z-20250311T000000Z-5d0c9e1b7a3f2e44.parquet").expect("parses");
        assert_eq!(fingerprint, "5d0c9e1b7a3f2e44");
        assert_eq!(window.to_iso_interval(), "2025-03-10T00:00:00.000Z/2025-03-11T00:00:00.000Z");
        for bad in [
            ".PT30M-20250310T000000Z-20250311T000000Z-5d0c9e1b7a3f2e44.parquet.abc123.tmp",
            ".PT30M-20250310T000000Z-20250311T000000Z-5d0c9e1b7a3f2e44.parquet",
            "PT30M-20250310T000000Z-20250311T000000Z-5d0c9e1b7a3f2e44.csv",
            "PT30M-20250311T000000Z-20250310T000000Z-5d0c9e1b7a3f2e44.parquet",
            "PT30M-20250310T000000Z-20250311T000000Z.parquet",
            "PT30M-20250310-20250311-5d0c9e1b7a3f2e44.parquet",
        ] {
            assert_eq!(parse_file_name(bad), None, "{bad}");
        }
    }
}
