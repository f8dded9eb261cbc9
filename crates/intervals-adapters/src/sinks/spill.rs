//! Sorted runs on disk and their k-way merge: how the file sinks write globally sorted output with
//! memory bounded by one window's rows.
//!
//! Each window's rows are sorted in the data contract's order (group columns, `interval_start`,
//! metric) and written as one run file in a private temporary folder; [`Runs::merge`] streams the
//! runs back in one global order. Writing a window again replaces its run. The folder and its runs
//! are removed when [`Runs`] is dropped.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::{Mutex, OnceLock};

use chrono::DateTime;
use intervals_domain::{MetricName, MetricRow, Stats, TimeWindow, METRICS};

use super::grain::metric_key_cmp;

/// At most this many runs are open at once; more are merged in several passes.
pub(crate) const MAX_FAN_IN: usize = 64;

/// The data contract's row order: group columns, `interval_start`, metric key.
pub(crate) fn cmp_rows(a: &MetricRow, b: &MetricRow) -> Ordering {
    a.group()
        .cmp(b.group())
        .then_with(|| a.bucket().start().cmp(&b.bucket().start()))
        .then_with(|| metric_key_cmp(a, b))
}

/// The sorted runs of one output, in a temporary folder.
#[derive(Debug)]
pub(crate) struct Runs {
    dir: tempfile::TempDir,
    runs: Mutex<BTreeMap<TimeWindow, PathBuf>>,
    next: AtomicU64,
}

impl Runs {
    /// A new, empty set of runs in a hidden temporary folder inside `parent`.
    pub(crate) fn new_in(parent: &Path) -> io::Result<Runs> {
        let dir = tempfile::Builder::new().prefix(".genesys-intervals-runs-").tempdir_in(parent)?;
        Ok(Runs { dir, runs: Mutex::new(BTreeMap::new()), next: AtomicU64::new(0) })
    }

    /// Sorts `rows` and writes them as the run of `window`, replacing an earlier run of the same
    /// window. Blocking: call through [`super::file::blocking`].
    pub(crate) fn add(&self, window: TimeWindow, rows: &[MetricRow]) -> io::Result<()> {
        let mut sorted: Vec<&MetricRow> = rows.iter().collect();
        sorted.sort_by(|a, b| cmp_rows(a, b));
        let path = self.new_path();
        let result = write_run(&path, sorted.into_iter().map(Ok));
        if let Err(e) = result {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let old = self.lock().insert(window, path);
        if let Some(old) = old {
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }

    /// How many windows have a run.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Takes every run and merges them into one sorted stream (in several passes when there are
    /// more than [`MAX_FAN_IN`]). Blocking.
    pub(crate) fn merge(&self) -> io::Result<Merged> {
        let mut paths: Vec<PathBuf> = std::mem::take(&mut *self.lock()).into_values().collect();
        while paths.len() > MAX_FAN_IN {
            let mut next = Vec::with_capacity(paths.len().div_ceil(MAX_FAN_IN));
            for chunk in paths.chunks(MAX_FAN_IN) {
                let path = self.new_path();
                let merged = Merged::open(chunk)?;
                write_run(&path, merged)?;
                for p in chunk {
                    let _ = std::fs::remove_file(p);
                }
                next.push(path);
            }
            paths = next;
        }
        Merged::open(&paths)
    }

    fn new_path(&self) -> PathBuf {
        let n = self.next.fetch_add(1, AtomicOrdering::Relaxed);
        self.dir.path().join(format!("run-{n:06}.bin"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TimeWindow, PathBuf>> {
        self.runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn write_run<R: std::borrow::Borrow<MetricRow>>(
    path: &Path,
    rows: impl Iterator<Item = io::Result<R>>,
) -> io::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut buf = Vec::with_capacity(256);
    for row in rows {
        buf.clear();
        encode(row?.borrow(), &mut buf);
        out.write_all(&buf)?;
    }
    // Runs are scratch data: flushed, never synced.
    out.flush()
}

/// The merged, globally sorted rows of several runs.
#[derive(Debug)]
pub(crate) struct Merged {
    readers: Vec<BufReader<File>>,
    heap: BinaryHeap<Head>,
}

impl Merged {
    fn open(paths: &[PathBuf]) -> io::Result<Merged> {
        let mut readers = Vec::with_capacity(paths.len());
        let mut heap = BinaryHeap::with_capacity(paths.len());
        for (source, path) in paths.iter().enumerate() {
            let mut reader = BufReader::with_capacity(64 * 1024, File::open(path)?);
            if let Some(row) = decode(&mut reader)? {
                heap.push(Head { row, source });
            }
            readers.push(reader);
        }
        Ok(Merged { readers, heap })
    }
}

impl Iterator for Merged {
    type Item = io::Result<MetricRow>;

    fn next(&mut self) -> Option<Self::Item> {
        let Head { row, source } = self.heap.pop()?;
        match decode(&mut self.readers[source]) {
            Ok(Some(next)) => self.heap.push(Head { row: next, source }),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        Some(Ok(row))
    }
}

/// A run's current row; the heap is a max-heap, so the order is reversed.
#[derive(Debug)]
struct Head {
    row: MetricRow,
    source: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_rows(&other.row, &self.row).then_with(|| other.source.cmp(&self.source))
    }
}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Head {}

// Run format, one record per row, little-endian:
//   u8 n, n x (u32 len, bytes)           group values
//   i64 secs, u32 nanos (x2)             bucket start, end
//   u8 len, bytes                        metric name
//   u8 flag [, u32 len, bytes]           qualifier
//   u8 mask, then the present fields     count (u64), sum, min, max, ratio, numerator,
//                                        denominator, target (f64 bits)

fn encode(row: &MetricRow, out: &mut Vec<u8>) {
    let group = row.group();
    out.push(u8::try_from(group.len()).expect("at most 3 group dimensions"));
    for value in group {
        put_bytes(out, value.as_bytes());
    }
    for t in [row.bucket().start(), row.bucket().end()] {
        out.extend_from_slice(&t.timestamp().to_le_bytes());
        out.extend_from_slice(&t.timestamp_subsec_nanos().to_le_bytes());
    }
    let metric = row.metric().as_str().as_bytes();
    out.push(u8::try_from(metric.len()).expect("metric names are short"));
    out.extend_from_slice(metric);
    match row.qualifier() {
        Some(q) => {
            out.push(1);
            put_bytes(out, q.as_bytes());
        }
        None => out.push(0),
    }
    let s = row.stats();
    let floats = [s.sum, s.min, s.max, s.ratio, s.numerator, s.denominator, s.target];
    let mut mask = u8::from(s.count.is_some());
    for (i, f) in floats.iter().enumerate() {
        if f.is_some() {
            mask |= 1 << (i + 1);
        }
    }
    out.push(mask);
    if let Some(c) = s.count {
        out.extend_from_slice(&c.to_le_bytes());
    }
    for f in floats.into_iter().flatten() {
        out.extend_from_slice(&f.to_bits().to_le_bytes());
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&u32::try_from(bytes.len()).expect("values under 4 GiB").to_le_bytes());
    out.extend_from_slice(bytes);
}

fn decode(r: &mut impl Read) -> io::Result<Option<MetricRow>> {
    let mut first = [0u8; 1];
    if r.read(&mut first)? == 0 {
        return Ok(None);
    }
    let mut group = Vec::with_capacity(usize::from(first[0]));
    for _ in 0..first[0] {
        group.push(get_string(r)?);
    }
    let mut times = [DateTime::UNIX_EPOCH; 2];
    for t in &mut times {
        let secs = i64::from_le_bytes(get_array(r)?);
        let nanos = u32::from_le_bytes(get_array(r)?);
        *t = DateTime::from_timestamp(secs, nanos).ok_or_else(|| corrupt("timestamp"))?;
    }
    let bucket = TimeWindow::new(times[0], times[1]).map_err(|_| corrupt("bucket"))?;
    let [len] = get_array::<1>(r)?;
    let mut name = [0u8; 255];
    let name = &mut name[..usize::from(len)];
    r.read_exact(name)?;
    let metric = std::str::from_utf8(name).ok().and_then(metric_by_name).ok_or_else(|| corrupt("metric"))?;
    let qualifier = match get_array::<1>(r)? {
        [0] => None,
        _ => Some(get_string(r)?),
    };
    let [mask] = get_array::<1>(r)?;
    let mut stats = Stats::default();
    if mask & 1 != 0 {
        stats.count = Some(u64::from_le_bytes(get_array(r)?));
    }
    let fields = [
        &mut stats.sum,
        &mut stats.min,
        &mut stats.max,
        &mut stats.ratio,
        &mut stats.numerator,
        &mut stats.denominator,
        &mut stats.target,
    ];
    for (i, field) in fields.into_iter().enumerate() {
        if mask & (1 << (i + 1)) != 0 {
            *field = Some(f64::from_bits(u64::from_le_bytes(get_array(r)?)));
        }
    }
    Ok(Some(MetricRow::new(group, bucket, metric, qualifier, stats)))
}

fn get_array<const N: usize>(r: &mut impl Read) -> io::Result<[u8; N]> {
    let mut buf = [0u8; N];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

fn get_string(r: &mut impl Read) -> io::Result<String> {
    let len = u32::from_le_bytes(get_array(r)?) as usize;
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf)?;
    String::from_utf8(buf).map_err(|_| corrupt("text"))
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("corrupt spill run: bad {what}"))
}

fn metric_by_name(name: &str) -> Option<MetricName> {
    static BY_NAME: OnceLock<HashMap<&'static str, MetricName>> = OnceLock::new();
    BY_NAME
        .get_or_init(|| METRICS.iter().filter_map(|m| MetricName::parse(m).ok().map(|n| (*m, n))).collect())
        .get(name)
        .copied()
}
