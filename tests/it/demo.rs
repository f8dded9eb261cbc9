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
    assert!(stderr.contains("7 planned"), "a week by default: {stderr}");
}
