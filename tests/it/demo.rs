//! The newcomer's first command: `extract --demo` into SQLite, no credentials, no network.

use std::process::Command;

use crate::support::{binary, expect_exit, run};

#[tokio::test]
async fn demo_extract_into_sqlite_needs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(binary("genesys-intervals"));
    cmd.current_dir(dir.path())
        .args(["extract", "--demo", "--progress", "never"])
        .env_remove("GENESYS_CLIENT_ID")
        .env_remove("GENESYS_CLIENT_SECRET")
        .env_remove("GENESYS_ENVIRONMENT");
    let stderr = expect_exit(&run(cmd).await, 0);
    assert!(dir.path().join("genesys-intervals.db").exists(), "the embedded default is sqlite:genesys-intervals.db");
    assert!(stderr.contains("Done"), "{stderr}");
    assert!(stderr.contains("agent_interval_summary"), "the summary shows a sample query: {stderr}");
    assert!(
        stderr.contains("14 planned (7 windows x 2 queries: conversation and user status)"),
        "a week by default, handling metrics and status time: {stderr}"
    );
    assert!(stderr.contains("names:    50 users and"), "users and queues are synced too: {stderr}");
    assert!(stderr.contains("genesys-intervals report --time-zone UTC --out report.html"), "{stderr}");

    // The report the summary names just works on what the demo stored.
    let mut report = Command::new(binary("genesys-intervals"));
    report.current_dir(dir.path()).args(["report", "--time-zone", "UTC", "--out", "report.html"]);
    let stderr = expect_exit(&run(report).await, 0);
    assert!(stderr.contains("Done: report of org \"default\""), "{stderr}");
    assert!(stderr.contains("(50 agents, 336 buckets of PT30M)"), "{stderr}");
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>") && html.contains("Occupancy"), "{}", &html[..200.min(html.len())]);
    assert!(!html.contains("<script") && !html.contains("http://") && !html.contains("https://"), "opens offline");
}
