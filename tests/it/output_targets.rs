//! What the binaries do with the paths they write (`report --out`, `extract --out csv:/parquet:`):
//! a device, a FIFO or a symbolic link is written through and never replaced, `-` is standard
//! output, new files honour the umask, a FIFO with no reader can be interrupted, and a folder that
//! cannot be written is exit 4 before anything is read or sent.

use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::support::{clean_cli, expect_exit, run, spawn_watching, text, watch_log, Extraction, Sim};

/// A SQLite store with one small extraction, and the folder it is in.
async fn stored() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("r.db").display());
    let sim = Sim::small().await;
    let mut cmd = sim.cli(&["extract", "--out", &db]);
    cmd.args(Extraction::default().args());
    expect_exit(&run(cmd).await, 0);
    (dir, db)
}

/// `report --db DB --out OUT`.
fn report(db: &str, out: &str) -> Command {
    clean_cli(&["report", "--db", db, "--out", out, "--time-zone", "UTC"])
}

/// `cmd` run by `sh` under `umask 077`.
fn under_umask_077(cmd: &Command) -> Command {
    let mut sh = Command::new("sh");
    sh.arg("-c").arg("umask 077 && exec \"$0\" \"$@\"").arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => sh.env(key, value),
            None => sh.env_remove(key),
        };
    }
    sh
}

fn mkfifo(path: &Path) {
    assert!(Command::new("mkfifo").arg(path).status().unwrap().success(), "mkfifo");
}

/// Reads a FIFO to its end on a thread (the reader a writer waits for).
fn read_fifo(path: &Path) -> std::thread::JoinHandle<String> {
    let path = path.to_path_buf();
    std::thread::spawn(move || std::fs::read_to_string(path).unwrap())
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn a_report_writes_through_links_fifos_and_devices_and_dash_is_stdout() {
    let (dir, db) = stored().await;

    // `-`: the page on standard output, no file named `-`.
    let mut cmd = report(&db, "-");
    cmd.current_dir(dir.path());
    let out = run(cmd).await;
    expect_exit(&out, 0);
    assert!(text(&out.stdout).starts_with("<!DOCTYPE html>"), "{}", text(&out.stdout));
    assert!(!dir.path().join("-").exists(), "a file named - was written");
    assert!(text(&out.stderr).contains("written to standard output"), "{}", text(&out.stderr));

    // A link to a file: the file gets the page, the link stays a link.
    let (real, link) = (dir.path().join("real.html"), dir.path().join("link.html"));
    std::fs::write(&real, "old").unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    expect_exit(&run(report(&db, &link.display().to_string())).await, 0);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::read_to_string(&real).unwrap().starts_with("<!DOCTYPE html>"));

    // A link to a character device: written through, the device and the link stay what they were.
    let null_link = dir.path().join("null.html");
    std::os::unix::fs::symlink("/dev/null", &null_link).unwrap();
    expect_exit(&run(report(&db, &null_link.display().to_string())).await, 0);
    assert!(std::fs::symlink_metadata(&null_link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device(), "/dev/null was replaced");

    // A FIFO: its reader gets the page, the FIFO stays a FIFO.
    let fifo = dir.path().join("pipe.html");
    mkfifo(&fifo);
    let reader = read_fifo(&fifo);
    expect_exit(&run(report(&db, &fifo.display().to_string())).await, 0);
    assert!(reader.join().unwrap().starts_with("<!DOCTYPE html>"));
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
}

#[tokio::test]
async fn new_files_honour_the_umask_and_are_never_wider_than_0644() {
    let (dir, db) = stored().await;
    let page = dir.path().join("umask.html");
    expect_exit(&run(under_umask_077(&report(&db, &page.display().to_string()))).await, 0);
    assert_eq!(mode(&page), 0o600, "report under umask 077");
    // Without a restrictive umask a report is for sharing: 0644 (the test process's umask is 022 or
    // narrower; never wider than 0644).
    let shared = dir.path().join("shared.html");
    expect_exit(&run(report(&db, &shared.display().to_string())).await, 0);
    assert_eq!(mode(&shared) & !0o644, 0, "{:o}", mode(&shared));
    // A report written again keeps no more permission than the file had.
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o600)).unwrap();
    expect_exit(&run(report(&db, &shared.display().to_string())).await, 0);
    assert_eq!(mode(&shared), 0o600, "a replaced report widened its mode");

    let sim = Sim::small().await;
    let csv = dir.path().join("out.csv");
    let parquet = dir.path().join("pq");
    for out in [format!("csv:{}", csv.display()), format!("parquet:{}", parquet.display())] {
        let mut cmd = sim.cli(&["extract", "--out", &out]);
        cmd.args(Extraction::default().args());
        expect_exit(&run(under_umask_077(&cmd)).await, 0);
    }
    assert_eq!(mode(&csv), 0o600, "CSV under umask 077");
    let mut files = 0;
    for date in std::fs::read_dir(parquet.join("org=default")).unwrap() {
        let date = date.unwrap().path();
        if !date.is_dir() {
            continue; // the org's lock file
        }
        for file in std::fs::read_dir(date).unwrap() {
            assert_eq!(mode(&file.unwrap().path()), 0o600, "Parquet under umask 077");
            files += 1;
        }
    }
    assert!(files > 0);
}

#[tokio::test]
async fn a_report_into_a_folder_that_cannot_be_written_is_exit_4_and_a_missing_one_exit_2() {
    let (_dir, db) = stored().await;
    // /proc refuses new files even to root.
    let out = run(report(&db, "/proc/report.html")).await;
    let stderr = expect_exit(&out, 4);
    assert!(stderr.contains("/proc/report.html") && stderr.contains("cannot write the report"), "{stderr}");
    let out = run(report(&db, "/nonexistent-folder-for-a-test/report.html")).await;
    let stderr = expect_exit(&out, 2);
    assert!(stderr.contains("does not exist"), "{stderr}");
}

#[tokio::test]
async fn a_fifo_output_without_a_reader_waits_and_stops_on_sigint_or_sigterm() {
    for signal in ["INT", "TERM"] {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe.csv");
        mkfifo(&fifo);
        let sim = Sim::small().await;
        let mut cmd = sim.cli(&["extract", "--out", &format!("csv:{}", fifo.display()), "--log-format", "json"]);
        cmd.args(Extraction::default().args());
        let mut child = spawn_watching(cmd);
        let (waiting, stderr) =
            watch_log(child.stderr.take().unwrap(), "waiting for a reader to open the FIFO (Ctrl-C stops)", 1);
        waiting.await.expect("the run says it waits for a reader");
        let killed = Command::new("kill").arg(format!("-{signal}")).arg(child.id().to_string()).status().unwrap();
        assert!(killed.success());
        let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
        let stderr = stderr.await.unwrap();
        assert_eq!(status.code(), Some(130), "SIG{signal}: {stderr}");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
    }
}
