//! Hostile servers: a login service or an API that accepts connections and never answers ends in
//! bounded time (`--window-deadline`) with the exit code of what failed and a message saying why.

use std::process::Command;

use tokio::net::TcpListener;

use crate::support::{clean_cli, expect_exit, run, Sim, CLIENT_ID, CLIENT_SECRET};

/// A server on 127.0.0.1 that accepts every connection and never reads nor answers; its URL.
pub(crate) async fn silent_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    url
}

/// `extract` of one day (one window) with a 2 s deadline, to `out`.
fn extract(api_url: &str, login_url: &str, out: &str) -> Command {
    let mut cmd = clean_cli(&["extract", "--from", "2025-03-10", "--to", "2025-03-11", "--window-deadline", "2"]);
    cmd.args(["--api-url", api_url, "--login-url", login_url, "--out", out, "--progress", "never"])
        .env("GENESYS_CLIENT_ID", CLIENT_ID)
        .env("GENESYS_CLIENT_SECRET", CLIENT_SECRET);
    cmd
}

#[tokio::test]
async fn a_login_service_that_never_answers_exits_3_at_the_deadline() {
    let silent = silent_server().await;
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("x.csv");
    let out = run(extract(&silent, &silent, &format!("csv:{}", csv.display()))).await;
    let stderr = expect_exit(&out, 3);
    assert!(stderr.contains(&format!("cannot get an access token from {silent}")), "{stderr}");
    assert!(stderr.contains("no answer within the 2 s deadline"), "{stderr}");
    assert!(!csv.exists(), "a failed run leaves no CSV file");
}

#[tokio::test]
async fn an_api_that_never_answers_fails_the_window_at_the_deadline() {
    let sim = Sim::small().await;
    let silent = silent_server().await;
    let dir = tempfile::tempdir().unwrap();
    let out = format!("csv:{}", dir.path().join("x.csv").display());
    let out = run(extract(&silent, &sim.running.base_url(), &out)).await;
    let stderr = expect_exit(&out, 1);
    let failed = stderr.lines().find(|l| l.contains("FAILED")).unwrap_or_else(|| panic!("no FAILED line:\n{stderr}"));
    assert!(failed.contains("2025-03-10T00:00:00Z"), "{failed}");
    assert!(failed.contains("gave up after 1 attempt: no answer within the 2 s deadline"), "{failed}");
    assert_eq!(sim.running.stats().token_requests, 1);
}
