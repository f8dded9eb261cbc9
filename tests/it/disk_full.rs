//! A full disk: the write that does not fit ends the run with exit 4 and a message naming the output
//! and the cause, and nothing already written is lost. A full disk is simulated without root: the
//! CLI runs with a file size limit (RLIMIT_FSIZE, `ulimit -f`) and SIGXFSZ ignored, so a write past
//! the limit fails with EFBIG ("File too large") the way one on a full disk fails with ENOSPC.
//!
//! [`FullDisk`] is what the fault suite (`chaos.rs`) runs the CLI on: a real full disk, a tiny tmpfs
//! over the output's folder (ENOSPC), when this process may mount one (root), else the same file
//! size limit.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use intervals_domain::TimeWindow;
use intervals_sim::SimConfig;

use crate::extract_truth::sqlite_long_csv;
use crate::parquet_output::{files_under, parquet_long_csv, temporary_files, window_files};
use crate::resume::{long_extraction, WINDOWS};
use crate::support::{assert_same_csv, expect_exit, long_csv, run, Extraction, Sim};

/// `cmd` run as `program leading... <cmd's program> <cmd's args>...`, with `cmd`'s environment and
/// folder.
fn wrapped<S: AsRef<OsStr>>(cmd: &Command, program: &str, leading: &[S]) -> Command {
    let mut outer = Command::new(program);
    outer.args(leading).arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => outer.env(key, value),
            None => outer.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        outer.current_dir(dir);
    }
    outer
}

/// `cmd` run through `sh` with writes limited to files of `limit` bytes and SIGXFSZ ignored (an
/// ignored signal stays ignored across `exec`). The workspace forbids `unsafe`, hence no `pre_exec`;
/// POSIX `ulimit -f` counts blocks of 512 bytes.
fn with_file_size_limit(cmd: &Command, limit: u64) -> Command {
    assert_eq!(limit % 512, 0, "ulimit -f counts blocks of 512 bytes");
    let blocks = (limit / 512).to_string();
    wrapped(cmd, "sh", &["-c", r#"trap '' XFSZ; ulimit -f "$1" || exit 125; shift; exec "$@""#, "sh", &blocks])
}

/// How a run meets a full disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FullDisk {
    /// A tmpfs of this many bytes over the output's folder, mounted in a mount namespace of the
    /// child's own (`unshare --mount`; root only), so nothing is left mounted whatever happens:
    /// once the folder holds that much (files the run found there included), writes fail with
    /// ENOSPC. The folder's content is copied in before the run and back out after it.
    Tmpfs(u64),
    /// A file size limit of this many bytes ([`with_file_size_limit`]): a write past it fails with
    /// EFBIG.
    FileSizeLimit(u64),
}

impl FullDisk {
    /// A tmpfs of `tmpfs` bytes when this process can mount one, else a file size limit of `limit`
    /// bytes and the reason there is no tmpfs.
    pub(crate) fn pick(tmpfs: u64, limit: u64) -> (FullDisk, Option<String>) {
        match tmpfs_refusal() {
            None => (FullDisk::Tmpfs(tmpfs), None),
            Some(reason) => (FullDisk::FileSizeLimit(limit), Some(reason.clone())),
        }
    }

    /// `cmd`, writing into `dir`, on this full disk.
    pub(crate) fn command(&self, cmd: &Command, dir: &Path) -> Command {
        match *self {
            FullDisk::FileSizeLimit(limit) => with_file_size_limit(cmd, limit),
            FullDisk::Tmpfs(bytes) => {
                // `under` shows the real folder while the tmpfs hides it.
                const SCRIPT: &str = r#"dir=$1 under=$2 size=$3; shift 3
mount --bind "$dir" "$under" && mount -t tmpfs -o "size=$size" tmpfs "$dir" && cp -a "$under/." "$dir/" || exit 125
"$@"; rc=$?
find "$under" -mindepth 1 -delete && cp -a "$dir/." "$under/" || exit 125
exit $rc"#;
                let under = underneath(dir);
                std::fs::create_dir_all(dir).unwrap();
                std::fs::create_dir_all(&under).unwrap();
                let size = bytes.to_string();
                let leading: [&OsStr; 10] = [
                    "--mount".as_ref(),
                    "--propagation".as_ref(),
                    "private".as_ref(),
                    "sh".as_ref(),
                    "-c".as_ref(),
                    SCRIPT.as_ref(),
                    "sh".as_ref(),
                    dir.as_os_str(),
                    under.as_os_str(),
                    size.as_ref(),
                ];
                wrapped(cmd, "unshare", &leading)
            }
        }
    }

    /// The OS error a CSV or Parquet output reports.
    pub(crate) fn os_error(&self) -> &'static str {
        match self {
            FullDisk::Tmpfs(_) => "No space left on device (os error 28)",
            FullDisk::FileSizeLimit(_) => "File too large (os error 27)",
        }
    }

    /// The cause a SQLite output reports.
    pub(crate) fn sqlite_cause(&self) -> &'static str {
        match self {
            FullDisk::Tmpfs(_) => "no space left on device (SQLite: database or disk is full, code 13)",
            FullDisk::FileSizeLimit(_) => "could not be written: the disk is full, the file has reached a size limit",
        }
    }

    pub(crate) fn describe(&self) -> String {
        match self {
            FullDisk::Tmpfs(bytes) => format!("tmpfs {} KiB", bytes >> 10),
            FullDisk::FileSizeLimit(bytes) => format!("ulimit -f {} KiB", bytes >> 10),
        }
    }
}

/// The real folder `dir` seen from under a tmpfs: a hidden sibling.
fn underneath(dir: &Path) -> PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    dir.with_file_name(format!(".{name}.underneath"))
}

/// Why no tmpfs can be mounted for a child (not root, no `unshare`, a container that forbids it);
/// `None` when one can. Tried once per process.
fn tmpfs_refusal() -> &'static Option<String> {
    static PROBE: OnceLock<Option<String>> = OnceLock::new();
    PROBE.get_or_init(|| {
        let root =
            Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if !root {
            return Some("not root: no tmpfs, a file size limit (ulimit -f) instead".to_owned());
        }
        let dir = tempfile::tempdir().unwrap();
        let probe = Command::new("unshare")
            .args([
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                r#"mount -t tmpfs -o size=4096 tmpfs "$1""#,
                "sh",
            ])
            .arg(dir.path())
            .stdin(Stdio::null())
            .output();
        match probe {
            Ok(out) if out.status.success() => None,
            Ok(out) => Some(format!(
                "cannot mount a tmpfs ({}): a file size limit (ulimit -f) instead",
                String::from_utf8_lossy(&out.stderr).trim()
            )),
            Err(e) => Some(format!("cannot run unshare ({e}): a file size limit (ulimit -f) instead")),
        }
    })
}

/// The twenty one-day windows of [`long_extraction`], served without delay nor pacing.
pub(crate) async fn fast_sim() -> Sim {
    Sim::start(SimConfig { agents: 8, seed: 11, rate_per_minute: 100_000, ..SimConfig::default() }).await
}

pub(crate) fn extract(sim: &Sim, out: &str) -> Command {
    let mut cmd = sim.cli(&["extract", "--out", out, "--concurrency", "1"]);
    cmd.args(long_extraction().args());
    cmd
}

/// The checkpointed windows of a SQLite output.
pub(crate) async fn sqlite_windows(db: &Path) -> Vec<TimeWindow> {
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    let ok: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut conn).await.unwrap();
    assert_eq!(ok, "ok", "the database is intact");
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT window_start, window_end FROM ingest_windows ORDER BY window_start")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    let parse = |t: &str| chrono::DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&chrono::Utc);
    rows.iter().map(|(s, e)| TimeWindow::new(parse(s), parse(e)).unwrap()).collect()
}

/// The truth of `extraction` within `windows` only, as the long CSV.
pub(crate) fn truth_within(sim: &Sim, extraction: &Extraction, windows: &[TimeWindow]) -> String {
    let rows =
        extraction.truth_rows(sim).into_iter().filter(|r| windows.iter().any(|w| w.covers(&r.bucket()))).collect();
    long_csv(&extraction.query(), rows)
}

#[track_caller]
pub(crate) fn assert_clear_failure(stderr: &str, out: &str, cause: &str) {
    assert!(stderr.contains(&format!("error: write to {out} failed: ")), "names the output:\n{stderr}");
    assert!(stderr.contains(cause), "names the cause ({cause}):\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// The database outgrows the limit in the middle of the run: exit 4 with the cause; the windows
/// committed before stay, with their checkpoints and exactly their data; with room again, the same
/// command fetches only the rest and the result equals the truth.
#[tokio::test]
async fn sqlite_full_disk_exits_4_keeps_the_committed_windows_and_resumes_to_the_truth() {
    let sim = fast_sim().await;
    let extraction = long_extraction();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("full.db");
    let out = format!("sqlite:{}", db.display());

    // The twenty windows outgrow 256 KiB of -wal file (schema v5 stores a third of the bytes of before).
    let stderr = expect_exit(&run(with_file_size_limit(&extract(&sim, &out), 256 << 10)).await, 4);
    assert_clear_failure(&stderr, &out, "could not be written: the disk is full, the file has reached a size limit");
    assert!(stderr.contains("(SQLite: disk I/O error, code 778)"), "{stderr}");
    assert!(stderr.contains("make room, then run again to continue: what was committed before is kept"), "{stderr}");
    let queries_first = sim.aggregate_queries();

    let kept = sqlite_windows(&db).await;
    assert!((1..WINDOWS as usize).contains(&kept.len()), "{} windows kept of {WINDOWS}:\n{stderr}", kept.len());
    assert_eq!(queries_first, kept.len() as u64 + 1, "one request per window kept, and the one that did not fit");
    assert_same_csv(
        &sqlite_long_csv(&db, &extraction).await,
        &truth_within(&sim, &extraction, &kept),
        "the windows kept",
    );

    let stderr = expect_exit(&run(extract(&sim, &out)).await, 0);
    assert!(stderr.contains(&format!("{} already done", kept.len())), "{stderr}");
    assert_eq!(sim.aggregate_queries() - queries_first, WINDOWS - kept.len() as u64, "only the rest is fetched");
    assert_eq!(sqlite_windows(&db).await.len() as u64, WINDOWS);
    assert_same_csv(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim), "sqlite after resume");
}

/// No room to even create the database (its first page, the -shm index, the schema): exit 4 with the
/// cause, not an "incompatible schema".
#[tokio::test]
async fn sqlite_full_disk_while_creating_the_database_says_so() {
    let sim = fast_sim().await;
    let dir = tempfile::tempdir().unwrap();
    for limit in [512, 4096, 64 * 1024] {
        let db = dir.path().join(format!("new-{limit}.db"));
        let out = format!("sqlite:{}", db.display());
        let stderr = expect_exit(&run(with_file_size_limit(&extract(&sim, &out), limit)).await, 4);
        assert!(
            stderr.contains(&format!("error: cannot open {out}: "))
                || stderr.contains(&format!("error: write to {out} failed: ")),
            "names the output:\n{stderr}"
        );
        assert!(stderr.contains("could not be written: the disk is full"), "names the cause:\n{stderr}");
        assert!(!stderr.contains("incompatible schema") && !stderr.contains("panicked"), "{stderr}");
    }
    assert_eq!(sim.aggregate_queries(), 0, "nothing is fetched for an output that cannot be opened");
}

/// CSV and JSON Lines are written whole, by rename: a write that does not fit (a window's sorted run,
/// or the final file) ends the run with exit 4 and the OS error; no half-written file is left at the
/// target nor beside it, and a previous file there is untouched.
#[tokio::test]
async fn csv_and_jsonl_full_disk_exits_4_and_leave_the_previous_file_intact() {
    let sim = fast_sim().await;
    // CSV: about 840 kB in all, 42 kB per window; JSON Lines twice that.
    for (scheme, limit) in [("csv", 256 * 1024), ("csv", 16 * 1024), ("jsonl", 512 * 1024)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(format!("out.{scheme}"));
        let out = format!("{scheme}:{}", path.display());
        let what = format!("{out} limited to {limit} bytes");

        // No file before: none after.
        let stderr = expect_exit(&run(with_file_size_limit(&extract(&sim, &out), limit)).await, 4);
        assert_clear_failure(&stderr, &out, "File too large (os error 27)");
        assert!(files_under(dir.path()).is_empty(), "{what}: left {:?}", files_under(dir.path()));

        // A previous file: the same after.
        let previous = "a previous extraction\n".repeat(1000);
        std::fs::write(&path, &previous).unwrap();
        let stderr = expect_exit(&run(with_file_size_limit(&extract(&sim, &out), limit)).await, 4);
        assert_clear_failure(&stderr, &out, "File too large (os error 27)");
        assert_eq!(files_under(dir.path()), vec![path.clone()], "{what}: nothing left beside the target");
        assert!(std::fs::read_to_string(&path).unwrap() == previous, "{what}: the previous file changed");
    }

    // With room again, the same command writes the whole file.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    std::fs::write(&path, "a previous extraction\n").unwrap();
    expect_exit(&run(extract(&sim, &format!("csv:{}", path.display()))).await, 0);
    let extraction = long_extraction();
    assert_same_csv(&std::fs::read_to_string(&path).unwrap(), &extraction.truth_csv(&sim), "csv with room again");
}

/// Parquet writes one file per window by rename: a window file that does not fit ends the run with
/// exit 4 naming the file and the OS error; the windows written before stay, no temporary file is
/// left, and the same command with room again completes to the truth.
#[tokio::test]
async fn parquet_full_disk_exits_4_keeps_the_windows_written_and_resumes_to_the_truth() {
    let sim = fast_sim().await;
    let extraction = long_extraction();
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("pq");
    let out = format!("parquet:{}", dir.display());

    // Window files take 0.5 to 14 kB: the first weekday's does not fit in 8 kB, the weekend's do.
    let stderr = expect_exit(&run(with_file_size_limit(&extract(&sim, &out), 8 * 1024)).await, 4);
    assert_clear_failure(&stderr, &out, "File too large (os error 27)");
    assert!(stderr.contains(&format!("cannot write {}", dir.display())), "names the file:\n{stderr}");
    assert!(stderr.contains("the windows written before are kept"), "{stderr}");
    let queries_first = sim.aggregate_queries();
    let kept = window_files(&dir).len() as u64;
    assert!((1..WINDOWS).contains(&kept), "{kept} window files kept:\n{stderr}");
    let hidden = temporary_files(&dir);
    assert!(hidden.is_empty(), "temporary files left over: {hidden:?}");
    assert_eq!(queries_first, kept + 1, "one request per window kept, and the one that did not fit");

    let stderr = expect_exit(&run(extract(&sim, &out)).await, 0);
    assert!(stderr.contains(&format!("{kept} already done")), "{stderr}");
    assert_eq!(sim.aggregate_queries() - queries_first, WINDOWS - kept, "only the rest is fetched");
    assert_eq!(window_files(&dir).len() as u64, WINDOWS);
    assert_same_csv(&parquet_long_csv(&dir, "default", &extraction), &extraction.truth_csv(&sim), "parquet");
}
