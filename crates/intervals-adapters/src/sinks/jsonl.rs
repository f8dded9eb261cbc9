//! The JSON Lines sink (`jsonl:PATH`): one object per row with the long layout's fields, in the
//! data contract's order, written to a temporary file beside the target and renamed by `finish`.
//!
//! ```text
//! {"user_id":"6f1c…","media_type":"voice","interval_start":"2025-03-10T09:00:00Z","interval_end":"2025-03-10T09:30:00Z","metric":"tHandle","count":5,"sum":1450300,"min":95000,"max":612000}
//! ```
//! Group columns use their snake_case names in groupBy order; an absent statistic is `null`. A query
//! asking for an observation metric (`oServiceLevel`) adds `ratio`, `numerator`, `denominator` and
//! `target` to every object, after `max`, as the long CSV adds its columns.
//! The smallest file sink; `docs/writing-a-sink.md` walks through adding an output.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use intervals_app::{DirectoryWriter, Sink, SinkError, WindowKey, WriteStats};
use intervals_domain::{format_number, has_observation_columns, AggregateQuery, MetricRow, Queue, User};

use super::csv::{dedup_by_id, BucketTimes};
use super::file::{SortedFile, WholeFile};
use super::grain::push_json_string;
use super::output::Destination;
use super::spill::{push_sort_key, RunBuilder};

use crate::outputs::{file_path, Capabilities, Leases, MetricsContext, OutputConfig, OutputKind};
use intervals_app::WindowTarget;

/// Writes the rows of one query as JSON Lines, and those of the run's other query (status
/// metrics, grouped by userId alone) with the same keys: `""` where that query has no dimension.
#[derive(Debug)]
pub struct JsonlSink {
    query: Arc<AggregateQuery>,
    file: SortedFile,
}

impl JsonlSink {
    /// A JSON Lines file of `query`'s rows at `path`. The temporary file beside it is created now,
    /// so an unwritable folder fails here.
    pub fn create(path: impl Into<PathBuf>, query: Arc<AggregateQuery>) -> Result<JsonlSink, SinkError> {
        let path = path.into();
        let describe = format!("jsonl:{}", path.display());
        let file = SortedFile::create(Destination::File(path), describe, Arc::clone(&query))?;
        Ok(JsonlSink { query, file })
    }
}

/// Writes users or queues as JSON Lines: each call replaces the file as a whole.
#[derive(Debug)]
pub struct JsonlDirectory {
    file: WholeFile,
}

impl JsonlDirectory {
    /// A users or queues file at `path`; an unwritable folder fails here.
    pub fn create(path: impl Into<PathBuf>) -> Result<JsonlDirectory, SinkError> {
        let path = path.into();
        let describe = format!("jsonl:{}", path.display());
        Ok(JsonlDirectory { file: WholeFile::create(Destination::File(path), describe)? })
    }
}

/// One record per row: the sort key of the data contract's order and the JSON line.
fn json_records(query: &AggregateQuery, rows: &[MetricRow], run: &mut RunBuilder) -> io::Result<()> {
    let columns: Vec<String> = query.group_by().iter().map(|d| d.column_name()).collect();
    let observations = has_observation_columns(query);
    let mut times = BucketTimes::default();
    let mut line = String::with_capacity(256);
    for row in rows {
        push_sort_key(run.key(), row, true);
        line.clear();
        let (start, end) = times.get(row.bucket());
        let mut obj = JsonObject::new(&mut line);
        for (column, value) in columns.iter().zip(row.group()) {
            obj.string(column, value);
        }
        obj.string("interval_start", start);
        obj.string("interval_end", end);
        obj.string("metric", &row.metric_key());
        let s = row.stats();
        obj.raw("count", s.count.map(|c| c.to_string()));
        for (name, value) in [("sum", s.sum), ("min", s.min), ("max", s.max)] {
            obj.raw(name, value.filter(|v| v.is_finite()).map(format_number));
        }
        if observations {
            let ratios =
                [("ratio", s.ratio), ("numerator", s.numerator), ("denominator", s.denominator), ("target", s.target)];
            for (name, value) in ratios {
                obj.raw(name, value.filter(|v| v.is_finite()).map(format_number));
            }
        }
        obj.end();
        line.push('\n');
        run.bytes().extend_from_slice(line.as_bytes());
        run.end_record();
    }
    Ok(())
}

/// A JSON object written field by field, keys in the order given.
struct JsonObject<'a> {
    out: &'a mut String,
    first: bool,
}

impl<'a> JsonObject<'a> {
    fn new(out: &'a mut String) -> Self {
        out.push('{');
        JsonObject { out, first: true }
    }

    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(',');
        }
        self.first = false;
        push_json_string(self.out, key);
        self.out.push(':');
    }

    fn string(&mut self, key: &str, value: &str) {
        self.key(key);
        push_json_string(self.out, value);
    }

    fn opt_string(&mut self, key: &str, value: Option<&str>) {
        match value {
            Some(v) => self.string(key, v),
            None => self.raw(key, None),
        }
    }

    /// A number (already valid JSON) or `null`.
    fn raw(&mut self, key: &str, value: Option<String>) {
        self.key(key);
        self.out.push_str(value.as_deref().unwrap_or("null"));
    }

    fn end(self) {
        self.out.push('}');
    }
}

#[async_trait]
impl Sink for JsonlSink {
    async fn write_window(&self, key: &WindowKey, rows: &[MetricRow]) -> Result<WriteStats, SinkError> {
        let query = &self.query;
        self.file.write_window(key, rows, |rows, run| json_records(query, rows, run)).await
    }

    async fn finish(&self) -> Result<(), SinkError> {
        // JSON Lines have no header.
        self.file.finish(b"").await
    }

    fn describe(&self) -> String {
        self.file.describe().to_owned()
    }
}

#[async_trait]
impl DirectoryWriter for JsonlDirectory {
    /// One object per user (`org,id,name,email,state,division_id,division_name`), sorted by id;
    /// the file is replaced as a whole.
    async fn write_users(&self, org: &str, users: &[User]) -> Result<u64, SinkError> {
        let users = dedup_by_id(users, |u| &u.id);
        self.file
            .write(|out| {
                let mut line = String::new();
                for u in &users {
                    line.clear();
                    let mut obj = JsonObject::new(&mut line);
                    obj.string("org", org);
                    obj.string("id", &u.id);
                    obj.string("name", &u.name);
                    obj.opt_string("email", u.email.as_deref());
                    obj.string("state", &u.state);
                    obj.opt_string("division_id", u.division_id.as_deref());
                    obj.opt_string("division_name", u.division_name.as_deref());
                    obj.end();
                    line.push('\n');
                    out.write_all(line.as_bytes())?;
                }
                Ok(())
            })
            .await?;
        Ok(users.len() as u64)
    }

    /// One object per queue (`org,id,name,division_id,division_name`), sorted by id.
    async fn write_queues(&self, org: &str, queues: &[Queue]) -> Result<u64, SinkError> {
        let queues = dedup_by_id(queues, |q| &q.id);
        self.file
            .write(|out| {
                let mut line = String::new();
                for q in &queues {
                    line.clear();
                    let mut obj = JsonObject::new(&mut line);
                    obj.string("org", org);
                    obj.string("id", &q.id);
                    obj.string("name", &q.name);
                    obj.opt_string("division_id", q.division_id.as_deref());
                    obj.opt_string("division_name", q.division_name.as_deref());
                    obj.end();
                    line.push('\n');
                    out.write_all(line.as_bytes())?;
                }
                Ok(())
            })
            .await?;
        Ok(queues.len() as u64)
    }
}

// --- The output kind (the registry entry is in `sinks/mod.rs`) ------------------------------------

/// `jsonl:PATH`.
pub(crate) struct JsonlKind;

impl OutputKind for JsonlKind {
    fn schemes(&self) -> &'static [&'static str] {
        &["jsonl"]
    }
    fn form(&self) -> &'static str {
        "jsonl:PATH"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities { checkpoints: false, directory: true, leases: Leases::None, wide_layout: false, read_back: false }
    }
    fn parse(&self, url: &str) -> Result<Box<dyn OutputConfig>, String> {
        Ok(Box::new(JsonlConfig { path: file_path(url)? }))
    }
}

#[derive(Debug)]
struct JsonlConfig {
    path: PathBuf,
}

#[async_trait]
impl OutputConfig for JsonlConfig {
    fn describe(&self) -> String {
        format!("jsonl:{}", self.path.display())
    }
    fn look_hint(&self) -> Option<String> {
        Some(format!("head {}", self.path.display()))
    }
    async fn open_metrics(&self, cx: &MetricsContext) -> Result<WindowTarget, SinkError> {
        Ok(WindowTarget::Plain(Arc::new(JsonlSink::create(&self.path, Arc::clone(&cx.query))?)))
    }
    async fn open_directory(&self) -> Result<Arc<dyn DirectoryWriter>, SinkError> {
        Ok(Arc::new(JsonlDirectory::create(&self.path)?))
    }
}
