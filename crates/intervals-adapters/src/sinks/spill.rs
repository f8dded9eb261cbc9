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
use std::io::{self, BufRead, BufReader, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use intervals_domain::{MetricRow, TimeWindow};

/// At most this many runs are open at once; more are merged in several passes.
pub(crate) const MAX_FAN_IN: usize = 64;

/// Appends the sort key of `row`: each group value (0x00 escaped as 0x00 0x01) ended by
/// 0x00 0x00, the bucket start as order-preserving big-endian bytes, then (with `metric`) the
/// metric key. Byte order of keys = the data contract's row order.
pub(crate) fn push_sort_key(out: &mut Vec<u8>, row: &MetricRow, metric: bool) {
    push_group_key(out, row.group());
    push_start_key(out, row.bucket().start());
    if metric {
        push_metric_key(out, row);
    }
}

/// The group part of [`push_sort_key`]: each value, 0x00 escaped as 0x00 0x01, ended by 0x00 0x00.
/// No value's bytes contain 0x00 0x00, so a group's key is never the start of another's: keys
/// order as the groups' values do, value by value.
pub(crate) fn push_group_key(out: &mut Vec<u8>, group: &[String]) {
    for value in group {
        let bytes = value.as_bytes();
        if bytes.contains(&0) {
            for &b in bytes {
                out.push(b);
                if b == 0 {
                    out.push(1);
                }
            }
        } else {
            out.extend_from_slice(bytes);
        }
        out.extend_from_slice(&[0, 0]);
    }
}

/// The bucket part of [`push_sort_key`]: the start's seconds (sign bit flipped) and nanoseconds,
/// big-endian, 12 bytes that order as the instants do.
pub(crate) fn push_start_key(out: &mut Vec<u8>, start: DateTime<Utc>) {
    out.extend_from_slice(&((start.timestamp() as u64) ^ (1 << 63)).to_be_bytes());
    out.extend_from_slice(&start.timestamp_subsec_nanos().to_be_bytes());
}

/// The metric part of [`push_sort_key`]: the bytes of [`MetricRow::metric_key`].
pub(crate) fn push_metric_key(out: &mut Vec<u8>, row: &MetricRow) {
    out.extend_from_slice(row.metric().as_str().as_bytes());
    if let Some(q) = row.qualifier() {
        out.push(b':');
        out.extend_from_slice(q.as_bytes());
    }
}

/// The records of one window before sorting: each record's key, then its output bytes, in one
/// buffer, with where each lies. A record is built by appending its key to [`RunBuilder::key`],
/// then its output bytes to [`RunBuilder::bytes`], then [`RunBuilder::end_record`].
#[derive(Debug, Default)]
pub(crate) struct RunBuilder {
    data: Vec<u8>,
    /// Per record: its key and its bytes, in `data`.
    index: Vec<(Range<usize>, Range<usize>)>,
    /// Where the record being built starts, and (once its bytes have begun) where its key ends.
    record_start: usize,
    key_end: Option<usize>,
    /// The records were added in key order ([`RunBuilder::in_key_order`]).
    in_key_order: bool,
}

impl RunBuilder {
    /// An empty builder sized for about `records` records.
    pub(crate) fn with_capacity(records: usize) -> Self {
        RunBuilder { data: Vec::with_capacity(records * 192), index: Vec::with_capacity(records), ..Self::default() }
    }

    /// Says that the records are added in key order (checked in debug builds), so that
    /// [`Runs::add`] writes them as they come without comparing keys.
    pub(crate) fn in_key_order(&mut self) {
        self.in_key_order = true;
    }

    /// The buffer to append the key of the record being built to (before its bytes).
    pub(crate) fn key(&mut self) -> &mut Vec<u8> {
        debug_assert!(self.key_end.is_none(), "a record's key comes before its bytes");
        &mut self.data
    }

    /// The buffer to append the output bytes of the record being built to (after its key).
    pub(crate) fn bytes(&mut self) -> &mut Vec<u8> {
        if self.key_end.is_none() {
            self.key_end = Some(self.data.len());
        }
        &mut self.data
    }

    /// Ends the record: the key and bytes appended since the last call.
    pub(crate) fn end_record(&mut self) {
        let key_end = self.key_end.take().unwrap_or(self.data.len());
        self.index.push((self.record_start..key_end, key_end..self.data.len()));
        self.record_start = self.data.len();
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
        let data = &run.data;
        let in_order =
            |index: &[(Range<usize>, Range<usize>)]| index.is_sorted_by(|a, b| data[a.0.clone()] <= data[b.0.clone()]);
        debug_assert!(!run.in_key_order || in_order(&run.index), "records said to be in key order are not");
        if !run.in_key_order && !in_order(&run.index) {
            run.index.sort_by(|a, b| data[a.0.clone()].cmp(&data[b.0.clone()]));
        }
        let path = self.new_path();
        let written = (|| {
            let mut out = RunWriter::create(&path)?;
            let mut previous: (&[u8], &[u8]) = (&[], &[]);
            for (key, bytes) in &run.index {
                let record = (&data[key.clone()], &data[bytes.clone()]);
                out.write(previous, record)?;
                previous = record;
            }
            out.finish()
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
                let mut run = RunWriter::create(&path)?;
                let (mut key_before, mut bytes_before) = (Vec::new(), Vec::new());
                merge(chunk, |key, bytes| {
                    run.write((&key_before, &bytes_before), (key, bytes))?;
                    key_before.clear();
                    bytes_before.clear();
                    key_before.extend_from_slice(key);
                    bytes_before.extend_from_slice(bytes);
                    Ok(())
                })?;
                run.finish()?;
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

// Run file: its records in key order, each as (shared key, key rest length, key rest, shared
// bytes, bytes rest length, bytes rest), the numbers as LEB128 varints. "Shared" is how many leading
// bytes the key (the bytes) has in common with the previous record's (none for the first record):
// records in key order share most of their key (the group) and often the start of their output
// (the group's columns and the bucket), so a run is about a third of its records' size.

/// Writes a run file, a block of records at a time.
struct RunWriter {
    file: File,
    block: Vec<u8>,
}

/// The size of the blocks written: the same bytes in one large write cost the kernel more.
const BLOCK: usize = 1 << 20;

impl RunWriter {
    fn create(path: &Path) -> io::Result<RunWriter> {
        Ok(RunWriter { file: File::create(path)?, block: Vec::with_capacity(BLOCK + 4096) })
    }

    /// Appends `record` (key, bytes), which follows `previous` in the file.
    fn write(&mut self, previous: (&[u8], &[u8]), record: (&[u8], &[u8])) -> io::Result<()> {
        for (before, now) in [(previous.0, record.0), (previous.1, record.1)] {
            let shared = shared_prefix(before, now);
            push_varint(&mut self.block, shared)?;
            push_varint(&mut self.block, now.len() - shared)?;
            self.block.extend_from_slice(&now[shared..]);
        }
        if self.block.len() >= BLOCK {
            self.file.write_all(&self.block)?;
            self.block.clear();
        }
        Ok(())
    }

    fn finish(mut self) -> io::Result<()> {
        self.file.write_all(&self.block)?;
        self.file.flush()
    }
}

/// How many leading bytes `a` and `b` have in common, compared eight at a time.
fn shared_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let x = u64::from_le_bytes(a[i..i + 8].try_into().expect("eight bytes"))
            ^ u64::from_le_bytes(b[i..i + 8].try_into().expect("eight bytes"));
        if x != 0 {
            return i + (x.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

fn push_varint(out: &mut Vec<u8>, n: usize) -> io::Result<()> {
    let mut n = u32::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "record over 4 GiB"))?;
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
    Ok(())
}

/// Reads a varint; `None` at the end of the file (before its first byte).
fn read_varint(reader: &mut BufReader<File>) -> io::Result<Option<usize>> {
    let mut n: u32 = 0;
    for shift in (0..35).step_by(7) {
        let byte = match reader.buffer().first() {
            Some(&b) => {
                reader.consume(1);
                b
            }
            None => {
                let mut one = [0u8; 1];
                match reader.read_exact(&mut one) {
                    Ok(()) => one[0],
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && shift == 0 => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
        };
        n |= u32::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok(Some(n as usize));
        }
    }
    Err(io::Error::new(io::ErrorKind::InvalidData, "a run file holds a malformed length"))
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

/// Reads the next record into `head`'s buffers, which hold the run's previous record; false at
/// the end of the run.
fn read_record(reader: &mut BufReader<File>, head: &mut Head) -> io::Result<bool> {
    let cut = || io::Error::new(io::ErrorKind::UnexpectedEof, "a run file ends inside a record");
    for (i, buf) in [&mut head.key, &mut head.bytes].into_iter().enumerate() {
        let shared = match read_varint(reader)? {
            Some(n) => n,
            None if i == 0 => return Ok(false),
            None => return Err(cut()),
        };
        let rest = read_varint(reader)?.ok_or_else(cut)?;
        if shared > buf.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "a run file shares more than its previous record"));
        }
        buf.truncate(shared);
        buf.resize(shared + rest, 0);
        reader.read_exact(&mut buf[shared..])?;
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
        // Emit from the run of the smallest record as long as its next record is still the
        // smallest (runs often hold a stretch of records in a row): the heap sees only the turns.
        loop {
            emit(&head.key, &head.bytes)?;
            if !read_record(&mut readers[head.source], &mut head)? {
                break;
            }
            if heap.peek().is_some_and(|next| *next > head) {
                heap.push(head);
                break;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
impl RunBuilder {
    /// Each record's key and bytes, in the order added.
    pub(crate) fn records(&self) -> Vec<(&[u8], &[u8])> {
        self.index.iter().map(|(key, bytes)| (&self.data[key.clone()], &self.data[bytes.clone()])).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(day: u32) -> TimeWindow {
        let start = chrono::NaiveDate::from_ymd_opt(2025, 3, day).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc();
        TimeWindow::new(start, start + chrono::Duration::days(1)).unwrap()
    }

    fn build(records: &[(&str, &str)], in_key_order: bool) -> RunBuilder {
        let mut run = RunBuilder::with_capacity(records.len());
        if in_key_order {
            run.in_key_order();
        }
        for (key, bytes) in records {
            run.key().extend_from_slice(key.as_bytes());
            run.bytes().extend_from_slice(bytes.as_bytes());
            run.end_record();
        }
        run
    }

    fn merged(runs: &Runs) -> String {
        let mut out = Vec::new();
        runs.merge_into(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn a_builder_holds_each_key_and_its_bytes() {
        let run = build(&[("k1", "one\n"), ("", ""), ("key", "")], false);
        assert_eq!(run.records(), [(&b"k1"[..], &b"one\n"[..]), (b"", b""), (b"key", b"")]);
        // Bytes without a key: an empty key.
        let mut run = RunBuilder::default();
        run.bytes().extend_from_slice(b"x");
        run.end_record();
        assert_eq!(run.records(), [(&b""[..], &b"x"[..])]);
    }

    #[test]
    fn a_run_file_gives_back_its_records_whatever_they_share() {
        let long = "g".repeat(300);
        let records: Vec<(String, String)> = [
            ("", ""),
            ("a", "line a\n"),
            ("a", "line a\n"),
            ("ab", "line a2\n"),
            ("abc\u{0}", "x"),
            ("abd", ""),
            (&long[..200], &long[..129]),
            (&long[..], &long[..]),
            (&long[..], "short"),
            ("h", &long[..128]),
        ]
        .iter()
        .map(|(k, b)| (k.to_string(), b.to_string()))
        .collect();
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::new_in(dir.path()).unwrap();
        let refs: Vec<(&str, &str)> = records.iter().map(|(k, b)| (k.as_str(), b.as_str())).collect();
        runs.add("f", window(1), build(&refs, true)).unwrap();
        let path = runs.lock().values().next().unwrap().clone();
        let size = std::fs::metadata(&path).unwrap().len() as usize;
        let whole: usize = records.iter().map(|(k, b)| k.len() + b.len()).sum();
        assert!(size < whole * 2 / 3, "shared starts are stored once: {size} of {whole}");
        let mut reader = BufReader::new(File::open(&path).unwrap());
        let mut head = Head { key: Vec::new(), bytes: Vec::new(), source: 0 };
        let mut back = Vec::new();
        while read_record(&mut reader, &mut head).unwrap() {
            back.push((String::from_utf8(head.key.clone()).unwrap(), String::from_utf8(head.bytes.clone()).unwrap()));
        }
        assert_eq!(back, records);
        // A file cut inside a record is an error, not an end.
        let cut = dir.path().join("cut.bin");
        std::fs::write(&cut, &std::fs::read(&path).unwrap()[..size - 1]).unwrap();
        let mut reader = BufReader::new(File::open(&cut).unwrap());
        let mut head = Head { key: Vec::new(), bytes: Vec::new(), source: 0 };
        let outcome = std::iter::repeat_with(|| read_record(&mut reader, &mut head)).find(|r| !matches!(r, Ok(true)));
        assert_eq!(outcome.unwrap().unwrap_err().kind(), io::ErrorKind::UnexpectedEof);
    }

    #[test]
    fn shared_prefixes_are_counted_to_the_byte() {
        for (a, b, n) in
            [("", "", 0), ("abc", "", 0), ("abcdefghij", "abcdefghij", 10), ("abcdefghij", "abcdefghiX", 9)]
        {
            assert_eq!(shared_prefix(a.as_bytes(), b.as_bytes()), n, "{a:?} {b:?}");
        }
        for i in 0..20 {
            let a = vec![7u8; 20];
            let mut b = a.clone();
            b[i] = 8;
            assert_eq!(shared_prefix(&a, &b), i);
            assert_eq!(shared_prefix(&a[..i], &b), i);
        }
    }

    #[test]
    fn runs_merge_in_key_order_with_ties_in_run_order() {
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::new_in(dir.path()).unwrap();
        // Unsorted, sorted, and sorted-and-said-so runs; stretches of one run in a row; equal keys
        // across runs (the earlier run first) and within a run (their order kept).
        runs.add("f", window(3), build(&[("c", "c3 "), ("a", "a3 "), ("b", "b3 "), ("a", "a3' ")], false)).unwrap();
        runs.add("f", window(1), build(&[("a", "a1 "), ("a", "a1' "), ("b", "b1 "), ("d", "d1 ")], false)).unwrap();
        runs.add("f", window(2), build(&[("b", "b2 "), ("c", "c2 "), ("c", "c2' "), ("e", "e2 ")], true)).unwrap();
        assert_eq!(merged(&runs), "a1 a1' a3 a3' b1 b2 b3 c2 c2' c3 d1 e2 ");
        assert_eq!(merged(&runs), "", "merging takes the runs");
    }

    #[test]
    fn many_runs_merge_in_several_passes_as_in_one() {
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::new_in(dir.path()).unwrap();
        let mut want = Vec::new();
        for n in 0..(MAX_FAN_IN + 5) as u32 {
            let records: Vec<(String, String)> =
                (0..20u32).map(|i| (format!("{:04}", (i * 7 + n * 3) % 50), format!("{n}.{i} "))).collect();
            let mut sorted = records.clone();
            sorted.sort_by(|a, b| a.0.cmp(&b.0));
            want.extend(sorted.into_iter().map(|(k, b)| (k, n, b)));
            let refs: Vec<(&str, &str)> = records.iter().map(|(k, b)| (k.as_str(), b.as_str())).collect();
            let fingerprint = format!("q{n:03}");
            runs.add(&fingerprint, window(1), build(&refs, false)).unwrap();
        }
        want.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let want: String = want.into_iter().map(|(_, _, b)| b).collect();
        assert_eq!(merged(&runs), want);
    }

    #[test]
    fn an_empty_run_removes_the_one_it_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let runs = Runs::new_in(dir.path()).unwrap();
        runs.add("f", window(1), build(&[("a", "a ")], true)).unwrap();
        runs.add("f", window(1), build(&[], false)).unwrap();
        assert_eq!(merged(&runs), "");
    }
}
