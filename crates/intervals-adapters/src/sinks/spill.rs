//! Sorted runs on disk and their k-way merge: how the file sinks write globally sorted output with
//! memory bounded by one window's rows.
//!
//! A file sink formats each window's rows into records (a sort key and the output bytes, e.g. one
//! CSV line) in a [`RunBuilder`]; [`Runs::add`] sorts them by key and writes them as one run file
//! in a private temporary folder. [`Runs::merge`] streams the output bytes of all runs back in one
//! global key order, so `finish` only copies bytes. Writing a window of a query again replaces its
//! run (each query of a window has its own). The folder and its runs are removed when [`Runs`] is
//! dropped.
//!
//! Sort keys ([`push_sort_key`]) are bytes whose plain byte order is the data contract's order:
//! group columns, then `interval_start`, then metric.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Mutex;

use intervals_domain::{MetricRow, TimeWindow};

/// At most this many runs are open at once; more are merged in several passes.
pub(crate) const MAX_FAN_IN: usize = 64;

/// Appends the sort key of `row`: each group value (0x00 escaped as 0x00 0x01) ended by
/// 0x00 0x00, the bucket start as order-preserving big-endian bytes, then (with `metric`) the
/// metric key. Byte order of keys = the data contract's row order.
pub(crate) fn push_sort_key(out: &mut Vec<u8>, row: &MetricRow, metric: bool) {
    for value in row.group() {
        for &b in value.as_bytes() {
            out.push(b);
            if b == 0 {
                out.push(1);
            }
        }
        out.extend_from_slice(&[0, 0]);
    }
    let start = row.bucket().start();
    out.extend_from_slice(&((start.timestamp() as u64) ^ (1 << 63)).to_be_bytes());
    out.extend_from_slice(&start.timestamp_subsec_nanos().to_be_bytes());
    if metric {
        out.extend_from_slice(row.metric().as_str().as_bytes());
        if let Some(q) = row.qualifier() {
            out.push(b':');
            out.extend_from_slice(q.as_bytes());
        }
    }
}

/// The records of one window before sorting: keys and output bytes in two buffers.
#[derive(Debug, Default)]
pub(crate) struct RunBuilder {
    keys: Vec<u8>,
    bytes: Vec<u8>,
    index: Vec<(Range<usize>, Range<usize>)>,
    key_start: usize,
    bytes_start: usize,
}

impl RunBuilder {
    /// An empty builder sized for about `records` records.
    pub(crate) fn with_capacity(records: usize) -> Self {
        RunBuilder {
            keys: Vec::with_capacity(records * 64),
            bytes: Vec::with_capacity(records * 128),
            index: Vec::with_capacity(records),
            key_start: 0,
            bytes_start: 0,
        }
    }

    /// The key buffer of the record being built.
    pub(crate) fn key(&mut self) -> &mut Vec<u8> {
        &mut self.keys
    }

    /// The output buffer of the record being built.
    pub(crate) fn bytes(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }

    /// Ends the record: what was appended to [`RunBuilder::key`] and [`RunBuilder::bytes`] since
    /// the last call.
    pub(crate) fn end_record(&mut self) {
        let key = self.key_start..self.keys.len();
        let bytes = self.bytes_start..self.bytes.len();
        self.index.push((key, bytes));
        self.key_start = self.keys.len();
        self.bytes_start = self.bytes.len();
    }
}

/// The sorted runs of one output, in a temporary folder.
#[derive(Debug)]
pub(crate) struct Runs {
    dir: tempfile::TempDir,
    /// By query fingerprint and window.
    runs: Mutex<BTreeMap<(String, TimeWindow), PathBuf>>,
    next: AtomicU64,
}

impl Runs {
    /// A new, empty set of runs in a hidden temporary folder inside `parent`.
    pub(crate) fn new_in(parent: &Path) -> io::Result<Runs> {
        let dir = tempfile::Builder::new().prefix(".genesys-intervals-runs-").tempdir_in(parent)?;
        Ok(Runs { dir, runs: Mutex::new(BTreeMap::new()), next: AtomicU64::new(0) })
    }

    /// Sorts the records by key (stable: equal keys keep their order) and writes them as the run
    /// of `window` of the query with `fingerprint`, replacing an earlier run of the same window and
    /// query (an empty run only removes it). Blocking.
    pub(crate) fn add(&self, fingerprint: &str, window: TimeWindow, mut run: RunBuilder) -> io::Result<()> {
        let id = (fingerprint.to_owned(), window);
        if run.index.is_empty() {
            if let Some(old) = self.lock().remove(&id) {
                let _ = std::fs::remove_file(old);
            }
            return Ok(());
        }
        let keys = &run.keys;
        run.index.sort_by(|a, b| keys[a.0.clone()].cmp(&keys[b.0.clone()]));
        let path = self.new_path();
        let written = (|| {
            let mut out = BufWriter::with_capacity(1 << 20, File::create(&path)?);
            for (key, bytes) in &run.index {
                write_record(&mut out, &run.keys[key.clone()], &run.bytes[bytes.clone()])?;
            }
            out.flush()
        })();
        if let Err(e) = written {
            let _ = std::fs::remove_file(&path);
            return Err(e);
        }
        let old = self.lock().insert(id, path);
        if let Some(old) = old {
            let _ = std::fs::remove_file(old);
        }
        Ok(())
    }

    /// Takes every run and writes their records' bytes to `out` in global key order (merging in
    /// several passes when there are more than [`MAX_FAN_IN`] runs). Blocking.
    pub(crate) fn merge_into(&self, out: &mut dyn Write) -> io::Result<()> {
        let mut paths: Vec<PathBuf> = std::mem::take(&mut *self.lock()).into_values().collect();
        while paths.len() > MAX_FAN_IN {
            let mut next = Vec::with_capacity(paths.len().div_ceil(MAX_FAN_IN));
            for chunk in paths.chunks(MAX_FAN_IN) {
                let path = self.new_path();
                let mut run = BufWriter::with_capacity(1 << 20, File::create(&path)?);
                merge(chunk, |key, bytes| write_record(&mut run, key, bytes))?;
                run.flush()?;
                for p in chunk {
                    let _ = std::fs::remove_file(p);
                }
                next.push(path);
            }
            paths = next;
        }
        merge(&paths, |_, bytes| out.write_all(bytes))
    }

    fn new_path(&self) -> PathBuf {
        let n = self.next.fetch_add(1, AtomicOrdering::Relaxed);
        self.dir.path().join(format!("run-{n:06}.bin"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<(String, TimeWindow), PathBuf>> {
        self.runs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// Run file: records of (u32 key length, key, u32 bytes length, bytes), little-endian, by key.

fn write_record(out: &mut impl Write, key: &[u8], bytes: &[u8]) -> io::Result<()> {
    out.write_all(&len_u32(key.len())?.to_le_bytes())?;
    out.write_all(key)?;
    out.write_all(&len_u32(bytes.len())?.to_le_bytes())?;
    out.write_all(bytes)
}

fn len_u32(len: usize) -> io::Result<u32> {
    u32::try_from(len).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record over 4 GiB"))
}

/// One run's current record; the heap is a max-heap, so the order is reversed (ties: the earlier
/// run first).
#[derive(Debug)]
struct Head {
    key: Vec<u8>,
    bytes: Vec<u8>,
    source: usize,
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key).then_with(|| other.source.cmp(&self.source))
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

/// Reads the next record into `head`'s buffers; false at the end of the run.
fn read_record(reader: &mut impl Read, head: &mut Head) -> io::Result<bool> {
    let mut len = [0u8; 4];
    match reader.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(false),
        Err(e) => return Err(e),
    }
    for (i, buf) in [&mut head.key, &mut head.bytes].into_iter().enumerate() {
        if i == 1 {
            reader.read_exact(&mut len)?;
        }
        buf.clear();
        buf.resize(u32::from_le_bytes(len) as usize, 0);
        reader.read_exact(buf)?;
    }
    Ok(true)
}

/// Calls `emit` with every record of the runs at `paths`, in key order.
fn merge(paths: &[PathBuf], mut emit: impl FnMut(&[u8], &[u8]) -> io::Result<()>) -> io::Result<()> {
    let mut readers = Vec::with_capacity(paths.len());
    let mut heap = BinaryHeap::with_capacity(paths.len());
    for (source, path) in paths.iter().enumerate() {
        let mut reader = BufReader::with_capacity(64 * 1024, File::open(path)?);
        let mut head = Head { key: Vec::new(), bytes: Vec::new(), source };
        if read_record(&mut reader, &mut head)? {
            heap.push(head);
        }
        readers.push(reader);
    }
    while let Some(mut head) = heap.pop() {
        emit(&head.key, &head.bytes)?;
        if read_record(&mut readers[head.source], &mut head)? {
            heap.push(head);
        }
    }
    Ok(())
}
