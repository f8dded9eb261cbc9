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
//! | `ratio`, `numerator`, `denominator`, `target` (observation metrics: `oServiceLevel`) | optional DOUBLE |
//!
//! Files written by versions before the ratio columns lack the last four: they are read back (when a
//! window replaces some of their rows) as rows without those statistics, and written again, if at
//! all, with them.
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
use intervals_domain::{AggregateQuery, Dimension, Granularity, MetricRow, TimeWindow, Tz};
use parquet::basic::Compression;
use parquet::data_type::{ByteArray, ByteArrayType, DataType, DoubleType, Int64Type};
use parquet::errors::ParquetError;
use parquet::file::metadata::{KeyValue, SortingColumn};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::file::writer::{SerializedFileWriter, SerializedRowGroupWriter};
use parquet::record::{Field, RowAccessor};
use parquet::schema::parser::parse_message_type;
use parquet::schema::types::Type;

use super::file::in_layout;
use super::grain::{dimension_scopes, is_requested, DimensionScope, DIMENSION_COLUMNS};
use super::output::{parent_of, temp_beside};
use crate::outputs::{Capabilities, Leases, MetricsContext, OutputConfig, OutputKind};
use intervals_app::WindowTarget;

/// The extension of window files.
const EXTENSION: &str = ".parquet";
/// The lock file in each org's folder, held while a window replaces files (hidden, so readers skip it).
const LOCK_FILE: &str = ".genesys-intervals.lock";
/// The longest window a file can hold (`--max-window` is at most P366D).
const MAX_WINDOW_DAYS: i64 = 366;
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
        let org_dir = self.org_dir(key.org());
        let time_zone = key.query().time_zone();
        let (folder, path) =
            window_path(&org_dir, key.query().granularity().as_iso(), window, key.fingerprint(), time_zone);
        let metadata = vec![
            KeyValue::new("genesys_intervals.org".to_owned(), key.org().to_owned()),
            KeyValue::new("genesys_intervals.window".to_owned(), window.to_iso_interval()),
            KeyValue::new("genesys_intervals.fingerprint".to_owned(), key.fingerprint().to_owned()),
            KeyValue::new("genesys_intervals.time_zone".to_owned(), time_zone.name().to_owned()),
        ];
        let job = WindowWrite {
            describe: self.describe.clone(),
            org_dir,
            path,
            folder,
            fingerprint: key.fingerprint().to_owned(),
            window,
            time_zone,
            scope: ReplaceScope::new(key.query(), group_by, window),
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
    /// Its query's granularity, as in the name (`PT30M`).
    granularity: String,
    fingerprint: String,
    window: TimeWindow,
}

/// The granularity, fingerprint and window of a window file's name; `None` for hidden files
/// (temporary files) and other names.
fn parse_file_name(name: &str) -> Option<(&str, &str, TimeWindow)> {
    if name.starts_with('.') {
        return None;
    }
    let mut parts = name.strip_suffix(EXTENSION)?.split('-');
    let (granularity, start, end, fingerprint) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || fingerprint.is_empty() || Granularity::parse(granularity).is_err() {
        return None;
    }
    let parse = |s: &str| NaiveDateTime::parse_from_str(s, COMPACT_UTC).ok().map(|t| t.and_utc());
    let window = TimeWindow::new(parse(start)?, parse(end)?).ok()?;
    Some((granularity, fingerprint, window))
}

/// The folder and path of the file of `window` of the query `fingerprint`:
/// `org_dir/interval_date=<local date of the start>/<granularity>-<start>-<end>-<fingerprint>.parquet`.
fn window_path(
    org_dir: &Path,
    granularity: &str,
    window: TimeWindow,
    fingerprint: &str,
    time_zone: Tz,
) -> (PathBuf, PathBuf) {
    let local_start = window.start().with_timezone(&time_zone);
    let folder = org_dir.join(format!("interval_date={}", local_start.format("%Y-%m-%d")));
    let name = format!(
        "{granularity}-{}-{}-{fingerprint}{EXTENSION}",
        window.start().format(COMPACT_UTC),
        window.end().format(COMPACT_UTC),
    );
    let path = folder.join(name);
    (folder, path)
}

/// The files of `fingerprint` in `org_dir`'s partition folders whose window lies inside `range`,
/// sorted by window.
fn window_files(org_dir: &Path, fingerprint: &str, range: TimeWindow) -> io::Result<Vec<WindowFile>> {
    // A local date is within a day of the UTC date.
    let dates = (range.start() - Duration::days(1)).date_naive()..=(range.end() + Duration::days(1)).date_naive();
    let mut found = files_in(org_dir, dates)?;
    found.retain(|f| f.fingerprint == fingerprint && range.covers(&f.window));
    Ok(found)
}

/// The files of any query in `org_dir`'s partition folders whose window overlaps `window`, sorted
/// by window. A file starts at most [`MAX_WINDOW_DAYS`] (and a day of zone offset) before it ends.
fn overlapping_files(org_dir: &Path, window: TimeWindow) -> io::Result<Vec<WindowFile>> {
    let first = (window.start() - Duration::days(MAX_WINDOW_DAYS + 1)).date_naive();
    let last = (window.end() + Duration::days(1)).date_naive();
    let mut found = files_in(org_dir, first..=last)?;
    found.retain(|f| f.window.start() < window.end() && window.start() < f.window.end());
    Ok(found)
}

/// The window files in the partition folders of `org_dir` whose date is in `dates`, sorted by
/// window.
fn files_in(org_dir: &Path, dates: std::ops::RangeInclusive<NaiveDate>) -> io::Result<Vec<WindowFile>> {
    let mut found = Vec::new();
    let folders = match fs::read_dir(org_dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(found),
        folders => folders?,
    };
    for entry in folders {
        let entry = entry?;
        let name = entry.file_name();
        let date = name
            .to_str()
            .and_then(|n| n.strip_prefix("interval_date="))
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok());
        let Some(date) = date else { continue };
        if !dates.contains(&date) || !entry.file_type()?.is_dir() {
            continue;
        }
        for file in fs::read_dir(entry.path())? {
            let file = file?;
            let name = file.file_name();
            let Some((granularity, fingerprint, window)) = name.to_str().and_then(parse_file_name) else { continue };
            found.push(WindowFile {
                path: file.path(),
                granularity: granularity.to_owned(),
                fingerprint: fingerprint.to_owned(),
                window,
            });
        }
    }
    found.sort_by(|a, b| a.window.cmp(&b.window).then_with(|| a.path.cmp(&b.path)));
    Ok(found)
}

/// A column of optional values: the values present and a definition level per row.
#[derive(Debug, Default)]
struct Nullable<T> {
    values: Vec<T>,
    levels: Vec<i16>,
    /// Per row, the index its value has (or would have) in `values`.
    ranks: Vec<u32>,
}

impl<T: Copy> Nullable<T> {
    fn with_capacity(rows: usize) -> Self {
        Nullable { values: Vec::with_capacity(rows), levels: Vec::with_capacity(rows), ranks: Vec::with_capacity(rows) }
    }

    fn push(&mut self, value: Option<T>) {
        self.ranks.push(self.values.len() as u32);
        self.levels.push(i16::from(value.is_some()));
        self.values.extend(value);
    }

    /// The value of row `i`.
    fn get(&self, i: usize) -> Option<T> {
        (self.levels[i] > 0).then(|| self.values[self.ranks[i] as usize])
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
    /// `ratio`, `numerator`, `denominator`, `target`, in that order.
    ratios: [Nullable<f64>; 4],
}

/// The columns after the group columns, as this version writes them.
const STAT_COLUMNS: [&str; 11] = [
    "interval_start",
    "interval_end",
    "metric",
    "count",
    "sum",
    "min",
    "max",
    "ratio",
    "numerator",
    "denominator",
    "target",
];

/// The columns after the group columns in files of earlier versions (no ratio columns).
const STAT_COLUMNS_WITHOUT_RATIOS: usize = 7;

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
            ratios: std::array::from_fn(|_| Nullable::with_capacity(n)),
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
            for (column, value) in
                columns.ratios.iter_mut().zip([stats.ratio, stats.numerator, stats.denominator, stats.target])
            {
                column.push(value);
            }
        }
        Ok(columns)
    }

    /// No rows, in these group columns.
    fn empty(group_names: &[String]) -> Columns {
        Columns {
            group_names: group_names.to_vec(),
            groups: vec![Vec::new(); group_names.len()],
            starts: Vec::new(),
            ends: Vec::new(),
            metrics: Vec::new(),
            count: Nullable::default(),
            sum: Nullable::default(),
            min: Nullable::default(),
            max: Nullable::default(),
            ratios: Default::default(),
        }
    }

    /// Appends row `i` of `other` (in the same columns).
    fn push_row(&mut self, other: &Columns, i: usize) {
        for (column, from) in self.groups.iter_mut().zip(&other.groups) {
            column.push(from[i].clone());
        }
        self.starts.push(other.starts[i]);
        self.ends.push(other.ends[i]);
        self.metrics.push(other.metrics[i].clone());
        self.count.push(other.count.get(i));
        for (to, from) in [(&mut self.sum, &other.sum), (&mut self.min, &other.min), (&mut self.max, &other.max)] {
            to.push(from.get(i));
        }
        for (to, from) in self.ratios.iter_mut().zip(&other.ratios) {
            to.push(from.get(i));
        }
    }

    fn len(&self) -> usize {
        self.starts.len()
    }

    /// The identities of every row ([`row_key`]).
    fn keys(&self) -> HashSet<Vec<u8>> {
        let mut keys = HashSet::with_capacity(self.len());
        for i in 0..self.len() {
            let mut key = Vec::new();
            self.key(i, &mut key);
            keys.insert(key);
        }
        keys
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
            "  optional int64 count;\n  optional double sum;\n  optional double min;\n  optional double max;\n  \
             optional double ratio;\n  optional double numerator;\n  optional double denominator;\n  \
             optional double target;\n",
        );
    }
    parse_message_type(&format!("message {MESSAGE} {{\n{fields}}}"))
}

/// Which stored rows a new window replaces: those of the same org, granularity and columns whose
/// bucket lies inside the window, whose metric the window's query asked for, and whose dimension
/// values the query covers (its filters; `""` in a dimension it does not group by). The same rule
/// as the databases' window replace, whatever the fingerprint of the file holding them.
#[derive(Debug)]
struct ReplaceScope {
    window: TimeWindow,
    granularity: Granularity,
    /// The new window's query: its metrics and [`dimension_scopes`], the databases' rule.
    query: AggregateQuery,
    /// Per group column of the layout, its place in [`DIMENSION_COLUMNS`].
    columns: Vec<usize>,
}

impl ReplaceScope {
    fn new(query: &AggregateQuery, layout: &[Dimension], window: TimeWindow) -> ReplaceScope {
        let columns = layout
            .iter()
            .map(|d| {
                DIMENSION_COLUMNS
                    .iter()
                    .position(|(c, _)| c == d)
                    .expect("a query groups by storable dimensions only (AggregateQuery::new)")
            })
            .collect();
        ReplaceScope { window, granularity: query.granularity(), query: query.clone(), columns }
    }

    /// Whether row `i` of `columns` is replaced.
    fn covers(&self, columns: &Columns, i: usize) -> bool {
        let (start, end) = (columns.starts[i], columns.ends[i]);
        if start < self.window.start().timestamp_micros() || end > self.window.end().timestamp_micros() {
            return false;
        }
        let scopes = dimension_scopes(&self.query);
        let dims_covered = self.columns.iter().zip(&columns.groups).all(|(&at, column)| {
            let value = column[i].data();
            match scopes[at] {
                DimensionScope::Any => true,
                DimensionScope::OneOf(values) => values.iter().any(|v| v.as_bytes() == value),
                DimensionScope::Empty => value.is_empty(),
            }
        });
        dims_covered
            && std::str::from_utf8(columns.metrics[i].data()).is_ok_and(|m| is_requested(m, self.query.metrics()))
    }
}

/// What a window write does to a file that overlaps it.
enum Change {
    /// Delete the file: every row it holds is replaced.
    Delete(PathBuf),
    /// Replace the file, under its own name, with what it keeps (the temporary file).
    Rewrite { path: PathBuf, temp: tempfile::NamedTempFile },
    /// Delete the file and put its rows outside the window into pieces of its own query, named for
    /// the windows they cover (so its checkpoints claim exactly what it still holds).
    Split { path: PathBuf, pieces: Vec<(PathBuf, tempfile::NamedTempFile)> },
}

/// Everything the blocking part of a window write needs, owned.
struct WindowWrite {
    describe: String,
    org_dir: PathBuf,
    folder: PathBuf,
    path: PathBuf,
    fingerprint: String,
    window: TimeWindow,
    time_zone: Tz,
    scope: ReplaceScope,
    metadata: Vec<KeyValue>,
    columns: Columns,
}

impl WindowWrite {
    /// Writes the temporary file; then, holding the org's lock, takes the rows it replaces out of
    /// the files that overlap it and renames it into place; returns the rows removed. Blocking.
    fn run(self) -> Result<u64, SinkError> {
        let io_error = |what: &str, path: &Path, e: io::Error| {
            SinkError::write(self.describe.clone(), format!("{what} {}: {e}", path.display())).caused_by(e)
        };
        fs::create_dir_all(&self.folder).map_err(|e| io_error("cannot create", &self.folder, e))?;
        let temp = self.encode_temp(&self.path, &self.columns, &self.metadata)?;

        // One writer at a time per org, across processes: a run and a concurrent one with other
        // windows never both keep a grain.
        let lock_path = self.org_dir.join(LOCK_FILE);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io_error("cannot open the lock file", &lock_path, e))?;
        lock.lock().map_err(|e| io_error("cannot lock", &lock_path, e))?;

        let overlapping =
            overlapping_files(&self.org_dir, self.window).map_err(|e| io_error("cannot list", &self.org_dir, e))?;
        let mut new_keys: Option<HashSet<Vec<u8>>> = None;
        let mut rows_deleted = 0;
        let mut changes = Vec::new();
        for file in overlapping {
            let (change, stale) = self.change_for(&file, &mut new_keys)?;
            rows_deleted += stale;
            changes.extend(change);
        }

        // Deletions first, made durable before anything new appears: a crash leaves a gap (which
        // the next run of the new window's query fetches again), never a grain twice.
        let mut touched: Vec<PathBuf> = Vec::new();
        let mut touch = |path: &Path| {
            let folder = parent_of(path).to_path_buf();
            if !touched.contains(&folder) {
                touched.push(folder);
            }
        };
        for change in &changes {
            if let Change::Delete(path) | Change::Split { path, .. } = change {
                match fs::remove_file(path) {
                    Ok(()) => tracing::debug!(
                        target = %self.describe,
                        file = %path.display(),
                        "deleted a window file that the new window replaces"
                    ),
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_error("cannot delete", path, e)),
                }
                touch(path);
            }
        }
        for folder in &touched {
            sync_folder(folder);
        }
        for change in changes {
            match change {
                Change::Delete(_) => {}
                Change::Rewrite { path, temp } => {
                    temp.persist(&path).map_err(|e| io_error("cannot rename into", &path, e.error))?;
                    sync_folder(parent_of(&path));
                }
                Change::Split { pieces, .. } => {
                    for (path, temp) in pieces {
                        temp.persist(&path).map_err(|e| io_error("cannot rename into", &path, e.error))?;
                        sync_folder(parent_of(&path));
                    }
                }
            }
        }
        temp.persist(&self.path).map_err(|e| io_error("cannot rename into", &self.path, e.error))?;
        sync_folder(&self.folder);
        drop(lock);
        Ok(rows_deleted)
    }

    /// What writing this window does to `file`, and how many of its rows go that the new window
    /// does not have again.
    fn change_for(
        &self,
        file: &WindowFile,
        new_keys: &mut Option<HashSet<Vec<u8>>>,
    ) -> Result<(Option<Change>, u64), SinkError> {
        let read_error = |e: ParquetError| {
            SinkError::write(
                self.describe.clone(),
                format!(
                    "cannot read {}, which the new window overlaps (a reader must not see its rows twice): {e}; \
                     move it away and run again",
                    file.path.display()
                ),
            )
            .caused_by(e)
        };
        let same_query = file.fingerprint == self.fingerprint;
        if file.path == self.path || (same_query && self.window.covers(&file.window)) {
            // Replaced whole: the rename, or a deletion. Its rows are counted, not kept.
            let stale = self.stale_rows(&file.path);
            let change = (file.path != self.path).then(|| Change::Delete(file.path.clone()));
            return Ok((change, stale));
        }
        if file.granularity != self.scope.granularity.as_iso() {
            return Ok((None, 0));
        }
        let (stored, metadata) = read_window_file(&file.path).map_err(read_error)?;
        if stored.group_names != self.columns.group_names {
            // Other columns, other grains (one group-by per folder is the contract).
            return Ok((None, 0));
        }
        let (mut kept, mut gone) = (Columns::empty(&stored.group_names), Vec::new());
        for i in 0..stored.len() {
            if self.scope.covers(&stored, i) {
                gone.push(i);
            } else {
                kept.push_row(&stored, i);
            }
        }
        if gone.is_empty() && !same_query {
            return Ok((None, 0));
        }
        let keys = new_keys.get_or_insert_with(|| self.columns.keys());
        let mut key = Vec::new();
        let stale = gone
            .iter()
            .filter(|&&i| {
                stored.key(i, &mut key);
                !keys.contains(&key)
            })
            .count() as u64;
        if same_query {
            // The same query's file straddles the window: its rows before and after it become
            // files of their own, so its checkpoints keep claiming only what it holds.
            let mut pieces = Vec::new();
            let outside = [
                TimeWindow::new(file.window.start(), self.window.start()),
                TimeWindow::new(self.window.end(), file.window.end()),
            ];
            for piece in outside.into_iter().flatten() {
                let mut columns = Columns::empty(&kept.group_names);
                for i in 0..kept.len() {
                    if piece.start().timestamp_micros() <= kept.starts[i]
                        && kept.starts[i] < piece.end().timestamp_micros()
                    {
                        columns.push_row(&kept, i);
                    }
                }
                let (folder, path) =
                    window_path(&self.org_dir, &file.granularity, piece, &file.fingerprint, self.time_zone);
                fs::create_dir_all(&folder).map_err(|e| {
                    SinkError::write(self.describe.clone(), format!("cannot create {}: {e}", folder.display()))
                        .caused_by(e)
                })?;
                let metadata = with_window(&metadata, piece);
                pieces.push((path.clone(), self.encode_temp(&path, &columns, &metadata)?));
            }
            return Ok((Some(Change::Split { path: file.path.clone(), pieces }), stale));
        }
        if kept.len() == 0 && self.window.covers(&file.window) {
            return Ok((Some(Change::Delete(file.path.clone())), stale));
        }
        let temp = self.encode_temp(&file.path, &kept, &metadata)?;
        Ok((Some(Change::Rewrite { path: file.path.clone(), temp }), stale))
    }

    /// `columns` encoded into a synced hidden temporary file beside `path`, created with the
    /// output files' mode (0644 less the umask).
    fn encode_temp(
        &self,
        path: &Path,
        columns: &Columns,
        metadata: &[KeyValue],
    ) -> Result<tempfile::NamedTempFile, SinkError> {
        let mut temp = temp_beside(path).map_err(|e| {
            SinkError::write(
                self.describe.clone(),
                format!("cannot create a temporary file in {}: {e}", parent_of(path).display()),
            )
            .caused_by(e)
        })?;
        encode(temp.as_file_mut(), columns, metadata).map_err(|e| {
            let message = match &e {
                // The file system refused the bytes (a full disk, a size limit): its error, not an encoding one.
                ParquetError::External(io) if io.is::<io::Error>() => {
                    format!(
                        "cannot write {}: {io}; the windows written before are kept: make room, then run again to \
                         continue",
                        path.display()
                    )
                }
                _ => format!("encoding {}: {e}", path.display()),
            };
            SinkError::write(self.describe.clone(), message).caused_by(e)
        })?;
        temp.as_file().sync_all().map_err(|e| {
            SinkError::write(self.describe.clone(), format!("cannot sync {}: {e}", temp.path().display())).caused_by(e)
        })?;
        Ok(temp)
    }

    /// How many rows of the file at `path`, replaced whole, the new window no longer has. A file
    /// that cannot be read is replaced all the same (and counted as nothing).
    fn stale_rows(&self, path: &Path) -> u64 {
        match stale_rows_of(path, &self.columns.group_names, &self.columns.keys()) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(
                    target = %self.describe,
                    file = %path.display(),
                    error = %e,
                    "cannot read a replaced window file; it is replaced all the same"
                );
                0
            }
        }
    }
}

/// Writes a window file: one row group (none for an empty window).
fn encode(out: &mut File, c: &Columns, metadata: &[KeyValue]) -> Result<(), ParquetError> {
    let schema = Arc::new(message_type(&c.group_names, false)?);
    let order_by = (0..=c.group_names.len()).chain([c.group_names.len() + 2]);
    let sorting =
        order_by.map(|i| SortingColumn { column_idx: i as i32, descending: false, nulls_first: false }).collect();
    let properties = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_sorting_columns(Some(sorting))
        .set_key_value_metadata(Some(metadata.to_vec()))
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
        for stat in [&c.sum, &c.min, &c.max].into_iter().chain(&c.ratios) {
            write_column::<DoubleType, _>(&mut group, &stat.values, Some(&stat.levels))?;
        }
        group.close()?;
    }
    writer.close()?;
    Ok(())
}

/// `metadata` with its window entry set to `window`.
fn with_window(metadata: &[KeyValue], window: TimeWindow) -> Vec<KeyValue> {
    let mut out: Vec<KeyValue> = metadata.iter().filter(|kv| kv.key != "genesys_intervals.window").cloned().collect();
    out.push(KeyValue::new("genesys_intervals.window".to_owned(), window.to_iso_interval()));
    out
}

/// Every row of a window file, in its columns, and its key-value metadata. A file of an earlier
/// version, without the ratio columns, reads as rows without those statistics.
fn read_window_file(path: &Path) -> Result<(Columns, Vec<KeyValue>), ParquetError> {
    let reader = SerializedFileReader::new(File::open(path)?)?;
    let file_metadata = reader.metadata().file_metadata();
    let metadata = file_metadata.key_value_metadata().cloned().unwrap_or_default();
    let fields = file_metadata.schema_descr().root_schema().get_fields().to_vec();
    let names: Vec<String> = fields.iter().map(|f| f.name().to_owned()).collect();
    let groups = names.iter().position(|n| n == "interval_start").ok_or_else(|| {
        ParquetError::General("no interval_start column: not a window file of genesys-intervals".to_owned())
    })?;
    let stats = &names[groups..];
    if stats != STAT_COLUMNS && *stats != STAT_COLUMNS[..STAT_COLUMNS_WITHOUT_RATIOS] {
        return Err(ParquetError::General(format!(
            "columns {} after the group columns, where this version writes {} (and earlier ones {})",
            stats.join(","),
            STAT_COLUMNS.join(","),
            STAT_COLUMNS[..STAT_COLUMNS_WITHOUT_RATIOS].join(",")
        )));
    }
    let mut columns = Columns::empty(&names[..groups]);
    for row in reader.get_row_iter(None)? {
        let row = row?;
        for (i, column) in columns.groups.iter_mut().enumerate() {
            column.push(ByteArray::from(row.get_string(i)?.as_str()));
        }
        columns.starts.push(row.get_timestamp_micros(groups)?);
        columns.ends.push(row.get_timestamp_micros(groups + 1)?);
        columns.metrics.push(ByteArray::from(row.get_string(groups + 2)?.as_str()));
        let fields: Vec<&Field> = row.get_column_iter().skip(groups + 3).map(|(_, f)| f).collect();
        columns.count.push(match fields[0] {
            Field::Long(v) => Some(*v),
            _ => None,
        });
        let [ratio, numerator, denominator, target] = &mut columns.ratios;
        let doubles = [&mut columns.sum, &mut columns.min, &mut columns.max, ratio, numerator, denominator, target];
        for (i, stat) in doubles.into_iter().enumerate() {
            // An earlier version's file has no ratio columns: they are absent.
            stat.push(match fields.get(1 + i) {
                Some(Field::Double(v)) => Some(*v),
                _ => None,
            });
        }
    }
    Ok((columns, metadata))
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
        Capabilities { checkpoints: true, directory: false, leases: Leases::None, wide_layout: false, read_back: false }
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
        let (granularity, fingerprint, window) =
            parse_file_name("PT30M-20250310T000000Z-20250311T000000Z-5d0c9e1b7a3f2e44.parquet").expect("parses");
        assert_eq!(granularity, "PT30M");
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
