//! The CSV sink (`csv:PATH`, `csv:-`): the data contract's long or wide layout, globally sorted,
//! written to a temporary file beside the target and renamed by `finish` (stdout is streamed at
//! `finish`).

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::io::{self, Write};
use std::ops::Range;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;

use async_trait::async_trait;
use intervals_app::{DirectoryWriter, Sink, SinkError, WindowKey, WriteStats};
#[cfg(debug_assertions)]
use intervals_domain::{format_number, long_record};
use intervals_domain::{
    has_observation_columns, long_header, rfc3339, wide_header, wide_record, wide_runs, AggregateQuery, MetricName,
    MetricRow, Queue, TimeWindow, User,
};

use super::file::{SortedFile, WholeFile};
use super::output::Destination;
use super::spill::{push_group_key, push_metric_key, push_sort_key, push_start_key, RunBuilder};

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
/// metric, count, sum, min, max, and `ratio`, `numerator`, `denominator`, `target` when `query`
/// asks for an observation metric) in the data contract's order ([`long_order`]), so that the run
/// needs no sort. Nothing is allocated per row: a group's CSV fields and sort key are written once
/// per group, a bucket's times once per bucket ([`BucketTexts`]), numbers as `format_number`
/// writes them; each line is checked against `long_record` through the csv crate in debug builds.
fn long_records(query: &AggregateQuery, rows: &[MetricRow], run: &mut RunBuilder) -> io::Result<()> {
    let observations = has_observation_columns(query);
    let order = long_order(rows);
    run.in_key_order();
    let mut buckets = BucketTexts::default();
    let (mut group_fields, mut group_key) = (Vec::new(), Vec::new());
    let mut last_group: Option<&Arc<[String]>> = None;
    let mut metric_key = Vec::new();
    #[cfg(debug_assertions)]
    let mut check = LineWriter::new();
    for &i in &order {
        let row = &rows[i as usize];
        if !last_group.is_some_and(|g| Arc::ptr_eq(g, row.shared_group())) {
            group_fields.clear();
            group_key.clear();
            for value in row.group() {
                push_csv_field(&mut group_fields, value.as_bytes());
                group_fields.push(b',');
            }
            push_group_key(&mut group_key, row.group());
            last_group = Some(row.shared_group());
        }
        let key = run.key();
        key.extend_from_slice(&group_key);
        push_start_key(key, row.bucket().start());
        push_metric_key(key, row);

        #[cfg(debug_assertions)]
        let line_start = run.bytes().len();
        let out = run.bytes();
        out.extend_from_slice(&group_fields);
        out.extend_from_slice(buckets.get(row.bucket()));
        match row.qualifier() {
            // Metric names need no quotes; a qualifier comes from the API and may.
            None => out.extend_from_slice(row.metric().as_str().as_bytes()),
            Some(_) => {
                metric_key.clear();
                push_metric_key(&mut metric_key, row);
                push_csv_field(out, &metric_key);
            }
        }
        let s = row.stats();
        out.push(b',');
        if let Some(c) = s.count {
            push_u64(out, c);
        }
        for x in [s.sum, s.min, s.max] {
            out.push(b',');
            if let Some(x) = x {
                push_number(out, x);
            }
        }
        if observations {
            for x in [s.ratio, s.numerator, s.denominator, s.target] {
                out.push(b',');
                if let Some(x) = x {
                    push_number(out, x);
                }
            }
        }
        out.push(b'\n');
        #[cfg(debug_assertions)]
        {
            let mut want = Vec::new();
            check.line(long_record(query, row), &mut want)?;
            debug_assert_eq!(
                String::from_utf8_lossy(&run.bytes()[line_start..]),
                String::from_utf8_lossy(&want),
                "the line of {row:?}"
            );
        }
        run.end_record();
    }
    Ok(())
}

/// The indices of `rows` in the data contract's order (group values, then `interval_start`, then
/// metric key: the byte order of [`push_sort_key`]), rows with equal keys in their given order,
/// as a stable sort by those keys gives them. Strings are compared per distinct group and metric
/// key (groups told apart by their shared values, [`MetricRow::shared_group`]), not per row.
fn long_order(rows: &[MetricRow]) -> Vec<u32> {
    // Number each distinct group and metric key as met.
    let mut groups: Vec<&[String]> = Vec::new();
    let mut group_ids: HashMap<*const String, u32> = HashMap::new();
    let mut metrics: Vec<(MetricName, Option<&str>)> = Vec::new();
    let mut row_ids: Vec<(u32, u32)> = Vec::with_capacity(rows.len());
    let mut last: Option<(&Arc<[String]>, u32)> = None;
    for row in rows {
        let group = match last {
            Some((g, id)) if Arc::ptr_eq(g, row.shared_group()) => id,
            _ => {
                let next = groups.len() as u32;
                let id = *group_ids.entry(Arc::as_ptr(row.shared_group()).cast::<String>()).or_insert(next);
                if id == next {
                    groups.push(row.group());
                }
                last = Some((row.shared_group(), id));
                id
            }
        };
        let metric = (row.metric(), row.qualifier());
        let metric = match metrics.iter().position(|m| *m == metric) {
            Some(at) => at,
            None => {
                metrics.push(metric);
                metrics.len() - 1
            }
        } as u32;
        row_ids.push((group, metric));
    }
    // Rank them by value (equal values, equal ranks).
    let group_rank = ranks(&groups, |a, b| a.cmp(b));
    let metric_keys: Vec<String> = metrics
        .iter()
        .map(|(m, q)| match q {
            None => m.as_str().to_owned(),
            Some(q) => format!("{m}:{q}"),
        })
        .collect();
    let metric_rank = ranks(&metric_keys, |a, b| a.cmp(b));
    let mut keys: Vec<(u32, i64, u32, u32, u32)> = rows
        .iter()
        .zip(&row_ids)
        .enumerate()
        .map(|(i, (row, &(group, metric)))| {
            let start = row.bucket().start();
            (
                group_rank[group as usize],
                start.timestamp(),
                start.timestamp_subsec_nanos(),
                metric_rank[metric as usize],
                u32::try_from(i).expect("fewer than 2^32 rows in a window"),
            )
        })
        .collect();
    sort_nearly_sorted(&mut keys);
    keys.into_iter().map(|k| k.4).collect()
}

/// Sorts `keys` (all distinct: the last field is the row's index). An API answers group by group
/// and bucket by bucket, in order or nearly, with the metrics of a bucket in its own order: when
/// group and bucket never go back, only the runs of one group and bucket are sorted (a few keys
/// each); otherwise the whole list is.
fn sort_nearly_sorted(keys: &mut [(u32, i64, u32, u32, u32)]) {
    let bucket = |k: &(u32, i64, u32, u32, u32)| (k.0, k.1, k.2);
    if !keys.windows(2).all(|w| bucket(&w[0]) <= bucket(&w[1])) {
        keys.sort_unstable();
        return;
    }
    for run in keys.chunk_by_mut(|a, b| bucket(a) == bucket(b)) {
        if run.len() > 1 {
            run.sort_unstable();
        }
    }
}

/// The rank of each item in `items` by `cmp`: equal items get the same rank.
fn ranks<T>(items: &[T], cmp: impl Fn(&T, &T) -> Ordering) -> Vec<u32> {
    let mut by_value: Vec<usize> = (0..items.len()).collect();
    by_value.sort_unstable_by(|&a, &b| cmp(&items[a], &items[b]));
    let mut rank = vec![0; items.len()];
    let mut current = 0;
    for (n, pair) in by_value.iter().enumerate() {
        if n > 0 && cmp(&items[by_value[n - 1]], &items[*pair]) != Ordering::Equal {
            current += 1;
        }
        rank[*pair] = current;
    }
    rank
}

/// The CSV text `interval_start,interval_end,` of each bucket met, formatted once. Looked up by
/// bucket in a sorted table, starting from the last one found (rows come bucket after bucket).
#[derive(Default)]
struct BucketTexts {
    /// Buckets in order, with where their text is in `text`.
    table: Vec<(TimeWindow, Range<usize>)>,
    text: Vec<u8>,
    last: usize,
}

impl BucketTexts {
    fn get(&mut self, bucket: TimeWindow) -> &[u8] {
        let at = match self.table.get(self.last) {
            Some((b, _)) if *b == bucket => self.last,
            _ => match self.table.get(self.last + 1) {
                Some((b, _)) if *b == bucket => self.last + 1,
                _ => match self.table.binary_search_by(|(b, _)| b.cmp(&bucket)) {
                    Ok(at) => at,
                    Err(at) => {
                        // RFC 3339 times hold no character that needs quotes.
                        let start = self.text.len();
                        let _ = write!(self.text, "{},{},", rfc3339(bucket.start()), rfc3339(bucket.end()));
                        self.table.insert(at, (bucket, start..self.text.len()));
                        at
                    }
                },
            },
        };
        self.last = at;
        &self.text[self.table[at].1.clone()]
    }
}

/// Appends `field` as the csv writer of this sink writes it ([`csv_writer`]): in quotes, with
/// quotes doubled, when it holds a delimiter, a quote or a line break; as it is otherwise.
fn push_csv_field(out: &mut Vec<u8>, field: &[u8]) {
    if field.iter().any(|&b| matches!(b, b',' | b'"' | b'\n' | b'\r')) {
        out.push(b'"');
        for &b in field {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(field);
    }
}

/// Appends the decimal digits of `n`, two at a time.
fn push_u64(out: &mut Vec<u8>, mut n: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        i -= 2;
        digits[i..i + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        i -= 1;
        digits[i] = b'0' + n as u8;
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends `x` as [`format_number`] writes it.
fn push_number(out: &mut Vec<u8>, x: f64) {
    #[cfg(debug_assertions)]
    let at = out.len();
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        let i = x as i64;
        if i < 0 {
            out.push(b'-');
        }
        push_u64(out, i.unsigned_abs());
    } else {
        let _ = write!(out, "{x}");
    }
    #[cfg(debug_assertions)]
    debug_assert_eq!(&out[at..], format_number(x).as_bytes());
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
                CsvLayout::Long => long_records(query, rows, run),
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
                        safe(org),
                        u.id.clone(),
                        safe(&u.name),
                        safe(&opt(&u.email)),
                        safe(&u.state),
                        opt(&u.division_id),
                        safe(&opt(&u.division_name)),
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
                        safe(org),
                        q.id.clone(),
                        safe(&q.name),
                        opt(&q.division_id),
                        safe(&opt(&q.division_name)),
                    ])?;
                }
                w.flush()
            })
            .await?;
        Ok(queues.len() as u64)
    }
}

/// A text field as spreadsheet-safe CSV writers write it (OWASP's advice against CSV injection): a
/// value that starts with `=`, `+`, `-`, `@`, a tab or a carriage return, which a spreadsheet would
/// read as a formula, gets a leading `'`, which spreadsheets show as text and do not display.
/// Names come from the org's admins; ids never start with these.
pub(crate) fn safe(value: &str) -> String {
    match value.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{value}"),
        _ => value.to_owned(),
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
        Capabilities { checkpoints: false, directory: true, leases: Leases::None, wide_layout: true, read_back: false }
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

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Duration, Utc};
    use intervals_domain::{format_number, long_record, Stats};

    use super::*;

    /// A small deterministic generator (the tests need variety, not quality).
    struct Lcg(u64);

    impl Lcg {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2025-03-10T00:00:00Z").unwrap().with_timezone(&Utc) + Duration::minutes(minutes)
    }

    fn bucket(n: i64) -> TimeWindow {
        TimeWindow::new(at(30 * n), at(30 * n + 30)).unwrap()
    }

    fn metric(name: &str) -> MetricName {
        MetricName::parse(name).unwrap()
    }

    /// What the csv crate writes for a record of `fields`.
    fn csv_line(fields: &[&str]) -> Vec<u8> {
        let mut out = Vec::new();
        LineWriter::new().line(fields, &mut out).unwrap();
        out
    }

    #[test]
    fn fields_are_quoted_as_the_csv_writer_quotes_them() {
        let fields = [
            "",
            "a",
            "a,b",
            "a\"b",
            "\"",
            "\"\"",
            "a\nb",
            "a\rb",
            "\r\n",
            " lead",
            "trail ",
            "tab\there",
            "semi;colon",
            "#hash",
            "ünïcødé",
            "'single'",
            "a,\"b\"\r\n,c",
            "x\u{0}y",
            ",",
            "\\",
        ];
        for field in fields {
            let mut ours = Vec::new();
            push_csv_field(&mut ours, field.as_bytes());
            ours.extend_from_slice(b",x\n");
            assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&csv_line(&[field, "x"])), "{field:?}");
        }
    }

    #[test]
    fn numbers_are_written_as_format_number_writes_them() {
        for n in
            [0, 1, 9, 10, 11, 99, 100, 101, 999, 1_000, 65_536, 1_234_567_890, 12_345_678_901_234_567_890, u64::MAX]
        {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        let xs = [
            0.0,
            -0.0,
            1.0,
            -1.0,
            1.5,
            -1.5,
            0.1 + 0.2,
            1e15,
            8.999e15,
            9e15,
            -9e15 + 1.0,
            1e21,
            123_456_789.25,
            f64::MAX,
            f64::MIN_POSITIVE,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for x in xs {
            let mut out = Vec::new();
            push_number(&mut out, x);
            assert_eq!(String::from_utf8(out).unwrap(), format_number(x), "{x}");
        }
    }

    /// Rows in the order an API could send them: groups (some with equal values in different
    /// allocations, as two pages would give), buckets and metrics shuffled or not.
    fn rows(seed: u64, groups_in_order: bool) -> Vec<MetricRow> {
        let mut rng = Lcg(seed);
        let values = ["u1", "u2", "u10", "u1,x", "u\"q", "", "u\u{0}z", "u"];
        let media = ["voice", "chat", ""];
        let mut groups: Vec<Vec<String>> = Vec::new();
        for v in values {
            for m in media {
                groups.push(vec![v.to_owned(), m.to_owned()]);
            }
        }
        if groups_in_order {
            groups.sort();
        } else {
            for i in (1..groups.len()).rev() {
                groups.swap(i, rng.below(i + 1));
            }
        }
        let names = ["tHandle", "tAcw", "tHeldComplete", "tTalkComplete"];
        let qualifiers = [None, Some("IDLE"), Some("A,B"), Some("")];
        let mut rows = Vec::new();
        for g in &groups {
            // Two allocations of the same values for some groups.
            for _ in 0..1 + usize::from(rng.below(4) == 0) {
                let shared: Arc<[String]> = g.clone().into();
                let first = rng.below(5) as i64;
                for b in first..first + 1 + rng.below(4) as i64 {
                    let n = 1 + rng.below(4);
                    for k in 0..n {
                        let name = if groups_in_order { names[k] } else { names[rng.below(names.len())] };
                        let qualifier = qualifiers[rng.below(qualifiers.len())].map(Arc::<str>::from);
                        let mut stats = Stats {
                            count: Some(rng.below(10) as u64),
                            sum: Some(rng.below(100_000) as f64 / 4.0),
                            ..Stats::default()
                        };
                        if rng.below(3) == 0 {
                            let denominator = 1 + rng.below(9);
                            let numerator = rng.below(denominator + 1);
                            stats.ratio = Some(numerator as f64 / denominator as f64);
                            stats.numerator = Some(numerator as f64);
                            stats.denominator = Some(denominator as f64);
                            stats.target = [None, Some(0.8), Some(0.95)][rng.below(3)];
                        }
                        rows.push(MetricRow::shared(Arc::clone(&shared), bucket(b), metric(name), qualifier, stats));
                    }
                }
            }
        }
        rows
    }

    /// The order a stable sort by the sort key bytes gives.
    fn by_sort_key(rows: &[MetricRow]) -> Vec<u32> {
        let keys: Vec<Vec<u8>> = rows
            .iter()
            .map(|r| {
                let mut key = Vec::new();
                push_sort_key(&mut key, r, true);
                key
            })
            .collect();
        let mut order: Vec<u32> = (0..rows.len() as u32).collect();
        order.sort_by(|a, b| keys[*a as usize].cmp(&keys[*b as usize]));
        order
    }

    #[test]
    fn long_order_is_a_stable_sort_by_the_sort_key() {
        for seed in 0..40 {
            for in_order in [false, true] {
                let rows = rows(seed, in_order);
                assert_eq!(long_order(&rows), by_sort_key(&rows), "seed {seed}, groups in order: {in_order}");
            }
        }
        assert!(long_order(&[]).is_empty());
    }

    #[test]
    fn long_records_are_the_csv_lines_of_long_record_in_key_order() {
        let query = |metrics: &str| {
            AggregateQuery::new(
                AggregateQuery::parse_metrics(metrics).unwrap(),
                AggregateQuery::parse_group_by("queueId,mediaType").unwrap(),
                intervals_domain::Granularity::Pt30m,
                intervals_domain::Tz::UTC,
                intervals_domain::Filters::none(),
            )
            .unwrap()
        };
        // Without an observation metric, and with one (four more columns on every line).
        let queries = [query("tHandle,tAcw"), query("tHandle,oServiceLevel")];
        for seed in 0..10 {
            let query = &queries[seed as usize % 2];
            let rows = rows(seed, seed % 4 < 2);
            let mut run = RunBuilder::with_capacity(rows.len());
            long_records(query, &rows, &mut run).unwrap();
            let mut want = RunBuilder::with_capacity(rows.len());
            for i in by_sort_key(&rows) {
                let row = &rows[i as usize];
                push_sort_key(want.key(), row, true);
                let line = csv_line(&long_record(query, row).iter().map(String::as_str).collect::<Vec<_>>());
                want.bytes().extend_from_slice(&line);
                want.end_record();
            }
            assert_eq!(run.records(), want.records(), "seed {seed}");
        }
    }

    #[test]
    fn bucket_texts_are_found_in_any_order() {
        let mut texts = BucketTexts::default();
        for n in [3, 4, 5, 0, 5, 5, 9, 1, 3, 2, 2, 8, 0] {
            let b = bucket(n);
            let want = format!("{},{},", rfc3339(b.start()), rfc3339(b.end()));
            assert_eq!(String::from_utf8_lossy(texts.get(b)), want, "bucket {n}");
        }
        assert_eq!(texts.table.len(), 8);
        assert!(texts.table.windows(2).all(|w| w[0].0 < w[1].0));
    }
}
