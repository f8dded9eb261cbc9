//! The CSV sink (`csv:PATH`, `csv:-`): the data contract's long or wide layout, globally sorted,
//! written to a temporary file beside the target and renamed by `finish` (stdout is streamed at
//! `finish`).

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use intervals_app::{DirectorySink, Sink, SinkError, WindowKey, WriteStats};
use intervals_domain::{long_header, long_record, wide_header, wide_record, AggregateQuery, MetricRow, Queue, User};

use super::file::{RowStream, SortedFile};
use super::output::Destination;

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

/// Writes the rows of one query as CSV.
#[derive(Debug)]
pub struct CsvSink {
    query: Option<Arc<AggregateQuery>>,
    layout: CsvLayout,
    file: SortedFile,
}

impl CsvSink {
    /// A CSV of `query`'s rows in `layout`. For a file, the temporary file beside it is created
    /// now, so an unwritable folder fails here.
    pub fn create(target: CsvTarget, query: Arc<AggregateQuery>, layout: CsvLayout) -> Result<CsvSink, SinkError> {
        let fingerprint = Some(query.fingerprint());
        let file = SortedFile::create(destination(&target), describe(&target), fingerprint)?;
        Ok(CsvSink { query: Some(query), layout, file })
    }

    /// A CSV for users or queues only (`genesys-intervals users --out csv:users.csv`).
    pub fn directory(target: CsvTarget) -> Result<CsvSink, SinkError> {
        let file = SortedFile::create(destination(&target), describe(&target), None)?;
        Ok(CsvSink { query: None, layout: CsvLayout::Long, file })
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

fn csv_writer(out: &mut dyn Write) -> ::csv::Writer<&mut dyn Write> {
    ::csv::WriterBuilder::new().terminator(::csv::Terminator::Any(b'\n')).buffer_capacity(1 << 16).from_writer(out)
}

/// Writes the long layout: the header, then one record per row.
fn write_long(query: &AggregateQuery, rows: RowStream<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv_writer(out);
    w.write_record(long_header(query))?;
    for row in rows {
        w.write_record(long_record(&row?))?;
    }
    w.flush()
}

/// Writes the wide layout: the header, then one record per run of rows sharing group and bucket.
fn write_wide(query: &AggregateQuery, rows: RowStream<'_>, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv_writer(out);
    w.write_record(wide_header(query))?;
    let mut run: Vec<MetricRow> = Vec::new();
    for row in rows {
        let row = row?;
        if run.first().is_some_and(|first| first.group() != row.group() || first.bucket() != row.bucket()) {
            if let Some(record) = wide_record(query, &run) {
                w.write_record(record)?;
            }
            run.clear();
        }
        run.push(row);
    }
    if let Some(record) = wide_record(query, &run) {
        w.write_record(record)?;
    }
    w.flush()
}

#[async_trait]
impl Sink for CsvSink {
    async fn write_window(&self, key: &WindowKey, rows: &[MetricRow]) -> Result<WriteStats, SinkError> {
        self.file.write_window(key, rows).await
    }

    async fn finish(&self) -> Result<(), SinkError> {
        let Some(query) = self.query.clone() else { return Ok(()) };
        let layout = self.layout;
        self.file
            .finish(move |rows, out| match layout {
                CsvLayout::Long => write_long(&query, rows, out),
                CsvLayout::Wide => write_wide(&query, rows, out),
            })
            .await
    }

    fn describe(&self) -> String {
        self.file.describe().to_owned()
    }
}

#[async_trait]
impl DirectorySink for CsvSink {
    /// Writes `org,id,name,email,state,division_id,division_name`, one row per user, sorted by id
    /// (a user given twice: the last one wins). The file is replaced as a whole.
    async fn write_users(&self, org: &str, users: &[User]) -> Result<u64, SinkError> {
        let users = dedup_by_id(users, |u| &u.id);
        self.file
            .write_directory(|out| {
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
            .write_directory(|out| {
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
