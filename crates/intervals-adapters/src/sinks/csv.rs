//! The CSV sink (`csv:PATH`, `csv:-`): the data contract's long or wide layout, globally sorted,
//! written to a temporary file beside the target and renamed by `finish` (stdout is streamed at
//! `finish`).

use std::borrow::Cow;
use std::cell::RefCell;
use std::io::{self, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use async_trait::async_trait;
use intervals_app::{DirectoryWriter, Sink, SinkError, WindowKey, WriteStats};
use intervals_domain::{
    long_header, long_record, rfc3339, wide_header, wide_record, wide_runs, AggregateQuery, MetricRow, Queue,
    TimeWindow, User,
};

use super::file::{SortedFile, WholeFile};
use super::grain::{push_number, push_u64};
use super::output::Destination;
use super::spill::{push_sort_key, RunBuilder};

use crate::outputs::{file_path, Capabilities, Leases, MetricsContext, OutputConfig, OutputKind};
use intervals_app::WindowTarget;

/// Where a CSV goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CsvTarget {
    /// A file, replaced atomically when the run succeeds.
    Path(PathBuf),
    /// Standard output (`csv:-`), written at the end of the run.
    Stdout,
}

/// The CSV layout (`--format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CsvLayout {
    /// One row per group, bucket and metric (the default).
    #[default]
    Long,
    /// One row per group and bucket, `<metric>_count,<metric>_sum` per requested metric.
    Wide,
}

/// Writes the rows of one query as CSV. In the long layout, also the rows of the run's other
/// query (status metrics, grouped by userId alone), in this query's columns: `""` where that query
/// has no dimension.
#[derive(Debug)]
pub struct CsvSink {
    query: Arc<AggregateQuery>,
    layout: CsvLayout,
    file: SortedFile,
}

impl CsvSink {
    /// A CSV of `query`'s rows in `layout`. For a file, the temporary file beside it is created
    /// now, so an unwritable folder fails here.
    pub fn create(target: CsvTarget, query: Arc<AggregateQuery>, layout: CsvLayout) -> Result<CsvSink, SinkError> {
        let file = SortedFile::create(destination(&target), describe(&target), Arc::clone(&query))?;
        Ok(CsvSink { query, layout, file })
    }
}

/// Writes users or queues as CSV (`genesys-intervals users --out csv:users.csv`): each call replaces
/// the file as a whole.
#[derive(Debug)]
pub struct CsvDirectory {
    file: WholeFile,
}

impl CsvDirectory {
    /// A users or queues CSV at `target`; an unwritable folder fails here.
    pub fn create(target: CsvTarget) -> Result<CsvDirectory, SinkError> {
        Ok(CsvDirectory { file: WholeFile::create(destination(&target), describe(&target))? })
    }
}

fn destination(target: &CsvTarget) -> Destination {
    match target {
        CsvTarget::Path(p) => Destination::File(p.clone()),
        CsvTarget::Stdout => Destination::Stdout,
    }
}

fn describe(target: &CsvTarget) -> String {
    match target {
        CsvTarget::Path(p) => format!("csv:{}", p.display()),
        CsvTarget::Stdout => "csv:-".to_owned(),
    }
}

fn csv_writer<W: Write>(out: W) -> ::csv::Writer<W> {
    ::csv::WriterBuilder::new().terminator(::csv::Terminator::Any(b'\n')).buffer_capacity(1 << 16).from_writer(out)
}

/// Writes single CSV lines (with their `\n`) into a buffer of the caller's.
struct LineWriter {
    csv: ::csv::Writer<LineBuffer>,
    buffer: LineBuffer,
}

/// The csv writer's output, shared with [`LineWriter`] so that each line can be taken out.
#[derive(Clone, Default)]
struct LineBuffer(Rc<RefCell<Vec<u8>>>);

impl Write for LineBuffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl LineWriter {
    fn new() -> Self {
        let buffer = LineBuffer::default();
        LineWriter { csv: csv_writer(buffer.clone()), buffer }
    }

    fn line<I, T>(&mut self, fields: I, out: &mut Vec<u8>) -> io::Result<()>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        self.csv.write_record(fields)?;
        self.csv.flush()?;
        let mut line = self.buffer.0.borrow_mut();
        out.extend_from_slice(&line);
        line.clear();
        Ok(())
    }
}

/// The header line of `layout`.
fn header(query: &AggregateQuery, layout: CsvLayout) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    let fields = match layout {
        CsvLayout::Long => long_header(query),
        CsvLayout::Wide => wide_header(query),
    };
    LineWriter::new().line(fields, &mut out)?;
    Ok(out)
}

/// The RFC 3339 texts of the last bucket seen (rows come bucket by bucket).
#[derive(Default)]
pub(crate) struct BucketTimes {
    last: Option<(TimeWindow, String, String)>,
}

impl BucketTimes {
    /// `rfc3339` of the bucket's start and end.
    pub(crate) fn get(&mut self, bucket: TimeWindow) -> (&str, &str) {
        let (_, start, end) = match self.last {
            Some((b, _, _)) if b == bucket => self.last.as_ref().expect("just matched"),
            _ => self.last.insert((bucket, rfc3339(bucket.start()), rfc3339(bucket.end()))),
        };
        (start, end)
    }
}

/// Long records: the fields of [`long_record`] (group columns, `interval_start`, `interval_end`,
/// metric, count, sum, min, max), without allocating a record per row: `rfc3339` once per bucket,
/// numbers as `format_number` writes them (checked against `long_record` in debug builds).
fn long_records(rows: &[MetricRow], run: &mut RunBuilder) -> io::Result<()> {
    let mut csv = LineWriter::new();
    let mut times = BucketTimes::default();
    // count, sum, min, max: reused buffers, filled as format_number would.
    let mut numbers: [String; 4] = Default::default();
    for row in rows {
        push_sort_key(run.key(), row, true);
        let s = row.stats();
        let metric: Cow<'_, str> = match row.qualifier() {
            None => Cow::Borrowed(row.metric().as_str()),
            Some(_) => Cow::Owned(row.metric_key()),
        };
        for n in &mut numbers {
            n.clear();
        }
        if let Some(c) = s.count {
            push_u64(&mut numbers[0], c);
        }
        for (n, x) in numbers[1..].iter_mut().zip([s.sum, s.min, s.max]) {
            if let Some(x) = x {
                push_number(n, x);
            }
        }
        let (start, end) = times.get(row.bucket());
        let [count, sum, min, max] = &numbers;
        let tail = [start, end, &metric, count, sum, min, max];
        debug_assert!(row
            .group()
            .iter()
            .map(String::as_str)
            .chain(tail)
            .eq(long_record(row).iter().map(String::as_str)));
        csv.line(row.group().iter().map(String::as_str).chain(tail), run.bytes())?;
        run.end_record();
    }
    Ok(())
}

/// Wide records: one per group and bucket ([`wide_runs`], [`wide_record`]). A bucket lies in one
/// window, so a window's rows hold every metric of its groups and buckets.
fn wide_records(query: &AggregateQuery, rows: &[MetricRow], run: &mut RunBuilder) -> io::Result<()> {
    let mut sorted = rows.to_vec();
    sorted.sort_by(|a, b| a.cmp_long(b));
    let mut csv = LineWriter::new();
    for group in wide_runs(&sorted) {
        if let Some(record) = wide_record(query, group) {
            push_sort_key(run.key(), &group[0], false);
            csv.line(&record, run.bytes())?;
            run.end_record();
        }
    }
    Ok(())
}

#[async_trait]
impl Sink for CsvSink {
    async fn write_window(&self, key: &WindowKey, rows: &[MetricRow]) -> Result<WriteStats, SinkError> {
        let query = &self.query;
        let layout = self.layout;
        if layout == CsvLayout::Wide && key.fingerprint() != query.fingerprint() {
            // Its columns are this query's metrics: another query's rows have none.
            return Err(SinkError::write(
                self.file.describe().to_owned(),
                format!(
                    "the wide layout holds the metrics of the query {} only, not those of {}",
                    query.fingerprint(),
                    key.fingerprint()
                ),
            ));
        }
        self.file
            .write_window(key, rows, |rows, run| match layout {
                CsvLayout::Long => long_records(rows, run),
                CsvLayout::Wide => wide_records(query, rows, run),
            })
            .await
    }

    async fn finish(&self) -> Result<(), SinkError> {
        let header = header(&self.query, self.layout)
            .map_err(|e| SinkError::write(self.file.describe().to_owned(), e.to_string()).caused_by(e))?;
        self.file.finish(&header).await
    }

    fn describe(&self) -> String {
        self.file.describe().to_owned()
    }
}

#[async_trait]
impl DirectoryWriter for CsvDirectory {
    /// Writes `org,id,name,email,state,division_id,division_name`, one row per user, sorted by id
    /// (a user given twice: the last one wins). The file is replaced as a whole.
    async fn write_users(&self, org: &str, users: &[User]) -> Result<u64, SinkError> {
        let users = dedup_by_id(users, |u| &u.id);
        self.file
            .write(|out| {
                let mut w = csv_writer(out);
                w.write_record(["org", "id", "name", "email", "state", "division_id", "division_name"])?;
                for u in &users {
                    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
                    w.write_record([
                        org.to_owned(),
                        u.id.clone(),
                        u.name.clone(),
                        opt(&u.email),
                        u.state.clone(),
                        opt(&u.division_id),
                        opt(&u.division_name),
                    ])?;
                }
                w.flush()
            })
            .await?;
        Ok(users.len() as u64)
    }

    /// Writes `org,id,name,division_id,division_name`, one row per queue, sorted by id.
    async fn write_queues(&self, org: &str, queues: &[Queue]) -> Result<u64, SinkError> {
        let queues = dedup_by_id(queues, |q| &q.id);
        self.file
            .write(|out| {
                let mut w = csv_writer(out);
                w.write_record(["org", "id", "name", "division_id", "division_name"])?;
                for q in &queues {
                    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
                    w.write_record([
                        org.to_owned(),
                        q.id.clone(),
                        q.name.clone(),
                        opt(&q.division_id),
                        opt(&q.division_name),
                    ])?;
                }
                w.flush()
            })
            .await?;
        Ok(queues.len() as u64)
    }
}

/// The items sorted by id, one per id (the last one given wins).
pub(crate) fn dedup_by_id<T>(items: &[T], id: impl Fn(&T) -> &String) -> Vec<&T> {
    let mut by_id: std::collections::BTreeMap<&str, &T> = std::collections::BTreeMap::new();
    for item in items {
        by_id.insert(id(item).as_str(), item);
    }
    by_id.into_values().collect()
}

// --- The output kind (the registry entry is in `sinks/mod.rs`) ------------------------------------

/// `csv:PATH`, `csv:-`.
pub(crate) struct CsvKind;

impl OutputKind for CsvKind {
    fn schemes(&self) -> &'static [&'static str] {
        &["csv"]
    }
    fn form(&self) -> &'static str {
        "csv:PATH, csv:- (stdout)"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities { checkpoints: false, directory: true, leases: Leases::None, wide_layout: true }
    }
    fn parse(&self, url: &str) -> Result<Box<dyn OutputConfig>, String> {
        let target = match url.split_once(':').map(|(_, p)| p) {
            Some("-") => CsvTarget::Stdout,
            _ => CsvTarget::Path(file_path(url)?),
        };
        Ok(Box::new(CsvConfig { target }))
    }
}

#[derive(Debug)]
struct CsvConfig {
    target: CsvTarget,
}

#[async_trait]
impl OutputConfig for CsvConfig {
    fn describe(&self) -> String {
        match &self.target {
            CsvTarget::Path(p) => format!("csv:{}", p.display()),
            CsvTarget::Stdout => "csv:-".to_owned(),
        }
    }
    fn look_hint(&self) -> Option<String> {
        match &self.target {
            CsvTarget::Path(p) => Some(format!("head {}", p.display())),
            CsvTarget::Stdout => None,
        }
    }
    async fn open_metrics(&self, cx: &MetricsContext) -> Result<WindowTarget, SinkError> {
        let sink = CsvSink::create(self.target.clone(), Arc::clone(&cx.query), cx.layout)?;
        Ok(WindowTarget::Plain(Arc::new(sink)))
    }
    async fn open_directory(&self) -> Result<Arc<dyn DirectoryWriter>, SinkError> {
        Ok(Arc::new(CsvDirectory::create(self.target.clone())?))
    }
}
