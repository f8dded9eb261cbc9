//! `--out parquet:DIR`: the files read back with the parquet crate equal the truth; a rerun
//! touches no file; a run killed with SIGKILL resumes to the truth; users and queues are refused.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use intervals_domain::{MetricName, MetricRow, Stats, TimeWindow};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use crate::resume::{long_extraction, resume_after_kill, slow_sim, WINDOWS};
use crate::support::{assert_same_csv, expect_exit, long_csv, run, Extraction, Sim};

const ORG: &str = "emea";

/// Every file under `dir` (hidden ones included), sorted.
pub(crate) fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let entry = entry.unwrap();
            if entry.file_type().unwrap().is_dir() {
                folders.push(entry.path());
            } else {
                found.push(entry.path());
            }
        }
    }
    found.sort();
    found
}

pub(crate) fn is_hidden(path: &Path) -> bool {
    path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'))
}

/// The temporary files under `dir`: hidden files other than the lock file each org's folder keeps
/// (`.genesys-intervals.lock`, which stays by design).
pub(crate) fn temporary_files(dir: &Path) -> Vec<PathBuf> {
    let is_lock = |p: &Path| p.file_name().is_some_and(|n| n == ".genesys-intervals.lock");
    files_under(dir).into_iter().filter(|p| is_hidden(p) && !is_lock(p)).collect()
}

/// The window files under `dir` (`.parquet`, not hidden).
pub(crate) fn window_files(dir: &Path) -> Vec<PathBuf> {
    files_under(dir).into_iter().filter(|p| !is_hidden(p) && p.extension().is_some_and(|e| e == "parquet")).collect()
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    files_under(dir).into_iter().map(|p| (p.clone(), std::fs::read(&p).unwrap())).collect()
}

fn utc_micros(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).expect("a timestamp in range")
}

/// Reads every window file under `dir` with the parquet crate's row reader and formats the rows as
/// the long CSV of `extraction`'s query. Checks on the way that each file holds the long layout's
/// columns (group columns first, the ratio columns last), sits in `org=<org>/interval_date=<date of its rows>`, and keeps
/// its rows in the contract's order.
pub(crate) fn parquet_long_csv(dir: &Path, org: &str, extraction: &Extraction) -> String {
    let query = extraction.query();
    // The long layout's columns, with the ratio columns that every Parquet file has.
    let mut header = intervals_domain::long_header(&query);
    if !intervals_domain::has_observation_columns(&query) {
        header.extend(intervals_domain::OBSERVATION_COLUMNS.map(String::from));
    }
    let groups = query.group_by().len();
    let mut rows = Vec::new();
    for path in window_files(dir) {
        let folder = path.parent().unwrap();
        assert_eq!(
            folder.parent().unwrap(),
            dir.join(format!("org={org}")),
            "{}: not in the org partition",
            path.display()
        );
        let date = folder
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_prefix("interval_date="))
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            .unwrap_or_else(|| panic!("{}: not in an interval_date partition", path.display()));
        let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
        let mut file_rows = Vec::new();
        for row in reader.get_row_iter(None).unwrap() {
            let columns = row.unwrap().into_columns();
            let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, header, "{}: columns", path.display());
            let mut fields = columns.into_iter().map(|(_, f)| f);
            let mut next = || fields.next().unwrap();
            let group: Vec<String> = (0..groups)
                .map(|_| match next() {
                    Field::Str(s) => s,
                    other => panic!("{}: a group value {other:?}", path.display()),
                })
                .collect();
            let mut timestamp = || match next() {
                Field::TimestampMicros(t) => utc_micros(t),
                other => panic!("{}: a timestamp {other:?}", path.display()),
            };
            let (start, end) = (timestamp(), timestamp());
            let metric = match next() {
                Field::Str(s) => s,
                other => panic!("{}: a metric {other:?}", path.display()),
            };
            let count = match next() {
                Field::Long(c) => Some(u64::try_from(c).unwrap()),
                Field::Null => None,
                other => panic!("{}: a count {other:?}", path.display()),
            };
            let mut double = || match next() {
                Field::Double(x) => Some(x),
                Field::Null => None,
                other => panic!("{}: a double {other:?}", path.display()),
            };
            let (sum, min, max) = (double(), double(), double());
            let stats = Stats {
                count,
                sum,
                min,
                max,
                ratio: double(),
                numerator: double(),
                denominator: double(),
                target: double(),
            };
            assert!(start.date_naive() >= date, "{}: a row before its partition's day (UTC query)", path.display());
            let (name, qualifier) = match metric.split_once(':') {
                Some((name, qualifier)) => (name.to_owned(), Some(qualifier.to_owned())),
                None => (metric, None),
            };
            let bucket = TimeWindow::new(start, end).unwrap();
            file_rows.push(MetricRow::new(group, bucket, MetricName::parse(&name).unwrap(), qualifier, stats));
        }
        assert!(
            file_rows.windows(2).all(|w| w[0].cmp_long(&w[1]).is_lt()),
            "{}: rows are not in the contract's order",
            path.display()
        );
        rows.extend(file_rows);
    }
    long_csv(&query, rows)
}

/// `genesys-intervals extract --out parquet:DIR` for `extraction`, run from `cwd`.
fn extract_parquet(sim: &Sim, dir: &Path, cwd: &Path, extraction: &Extraction) -> std::process::Command {
    let mut cmd = sim.cli(&["extract", "--org", ORG, "--out", &format!("parquet:{}", dir.display())]);
    cmd.args(extraction.args()).current_dir(cwd);
    cmd
}

#[tokio::test]
async fn parquet_equals_truth_and_rerun_changes_no_file() {
    let sim = Sim::small().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("out");
    let extraction = Extraction { to: "2025-03-13", ..Extraction::default() };
    let stderr = expect_exit(&run(extract_parquet(&sim, &dir, work.path(), &extraction)).await, 0);
    assert_eq!(window_files(&dir).len(), 3, "one file per day window: {:?}\n{stderr}", files_under(&dir));
    assert!(temporary_files(&dir).is_empty(), "no temporary file left: {:?}", files_under(&dir));
    let expected = extraction.truth_csv(&sim);
    assert!(expected.lines().count() > 10, "the truth should not be trivially empty:\n{expected}");
    assert_same_csv(&parquet_long_csv(&dir, ORG, &extraction), &expected, "parquet");

    let before = snapshot(&dir);
    let queries_before = sim.aggregate_queries();
    let stderr = expect_exit(&run(extract_parquet(&sim, &dir, work.path(), &extraction)).await, 0);
    assert_eq!(sim.aggregate_queries(), queries_before, "a finished extraction is not fetched again: {stderr}");
    let after = snapshot(&dir);
    assert_eq!(after.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>(), "the rerun added or removed files");
    for (path, bytes) in &before {
        assert!(after[path] == *bytes, "{}: the rerun changed its content", path.display());
    }
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        1,
        "nothing written next to the output (the CLI's cwd)"
    );
}

/// The probe's sequences that stored grains twice: `--refetch` with a smaller `--max-window`, two
/// runs at once with other `--max-window`s, a run with another `--time-zone` (same buckets, another
/// fingerprint). After each, the folder read as one table equals the truth.
#[tokio::test]
async fn parquet_read_again_with_other_windows_or_zones_never_holds_a_grain_twice() {
    let sim = Sim::small().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("out");
    let extraction = Extraction { to: "2025-03-13", ..Extraction::default() };
    let expected = extraction.truth_csv(&sim);
    let extract = |extra: &[&str], zone: &'static str| {
        let mut cmd = extract_parquet(&sim, &dir, work.path(), &Extraction { time_zone: zone, ..extraction.clone() });
        cmd.args(extra);
        cmd
    };
    expect_exit(&run(extract(&[], "UTC")).await, 0);
    expect_exit(&run(extract(&["--refetch", "--max-window", "PT6H"], "UTC")).await, 0);
    assert_same_csv(&parquet_long_csv(&dir, ORG, &extraction), &expected, "after --refetch --max-window PT6H");

    let (a, b) = tokio::join!(
        run(extract(&["--refetch", "--max-window", "P2D"], "UTC")),
        run(extract(&["--refetch", "--max-window", "PT4H"], "UTC"))
    );
    expect_exit(&a, 0);
    expect_exit(&b, 0);
    assert_same_csv(&parquet_long_csv(&dir, ORG, &extraction), &expected, "after two runs at once");

    // London keeps UTC in March: the same buckets under another fingerprint.
    expect_exit(&run(extract(&["--refetch"], "Europe/London")).await, 0);
    assert_same_csv(&parquet_long_csv(&dir, ORG, &extraction), &expected, "after another --time-zone");
}

#[tokio::test]
async fn parquet_resumes_after_kill_9() {
    let sim = slow_sim().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("resume");
    let (first, second) = resume_after_kill(&sim, &format!("parquet:{}", dir.display())).await;
    assert_eq!(window_files(&dir).len() as u64, WINDOWS, "one file per window: {:?}", files_under(&dir));
    let hidden = temporary_files(&dir);
    assert!(hidden.is_empty(), "temporary files left over: {hidden:?}");
    // Windows written before the kill were not fetched again; at most the one in flight was.
    assert!(first + second <= WINDOWS + 1, "first run {first} + second run {second} queries for {WINDOWS} windows");
    assert!(second < WINDOWS, "the second run skipped finished windows");
    let extraction = long_extraction();
    // resume_after_kill runs without --org: the CLI's default org.
    assert_same_csv(
        &parquet_long_csv(&dir, "default", &extraction),
        &extraction.truth_csv(&sim),
        "parquet after resume",
    );
}

#[tokio::test]
async fn users_and_queues_are_refused_by_the_parquet_output() {
    let sim = Sim::small().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("dims");
    for what in ["users", "queues"] {
        let mut cmd = sim.cli(&[what, "--out", &format!("parquet:{}", dir.display())]);
        cmd.current_dir(work.path());
        let stderr = expect_exit(&run(cmd).await, 2);
        assert!(stderr.contains("parquet") && stderr.contains("cannot hold users or queues"), "{what}: {stderr}");
    }
    assert_eq!(sim.requests(), 0, "no request may be sent for an output that cannot hold them");
    assert!(!dir.exists(), "nothing is created");
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0, "nothing written in the CLI's cwd");
}
