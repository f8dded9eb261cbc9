//! The real binary: `--check`, exit codes before any work, and a run stopped by SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use sqlx::PgPool;

use super::support::{lease, within};

const BIN: &str = env!("CARGO_BIN_EXE_genesys-intervalsd");

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("daemon.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn daemon(config: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.arg("--config").arg(config).env_remove("DATABASE_URL").env_remove("RUST_LOG");
    cmd.env("SIM_ID", "sim-client").env("SIM_SECRET", "sim-secret");
    cmd
}

const CONFIG: &str = r#"
database_url = "postgres://intervals:hunter2@127.0.0.1:1/intervals"
listen = "127.0.0.1:0"
[[org]]
label = "emea"
api_url = "http://127.0.0.1:1"
client_id_env = "SIM_ID"
client_secret_env = "SIM_SECRET"
backfill_from = "2025-01-01"
"#;

#[test]
fn check_validates_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let out = daemon(&write_config(&dir, CONFIG)).arg("--check").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "config OK: 1 org(s): emea\n");

    let out = daemon(&write_config(&dir, &CONFIG.replace("backfill_from", "granularity = \"30m\"\nbackfill_from")))
        .arg("--check")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("org \"emea\": granularity: invalid granularity \"30m\": use PT30M"), "{stderr}");

    let out = daemon(&write_config(&dir, CONFIG)).env_remove("SIM_SECRET").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "missing credential variables stop the start");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("org \"emea\": client_secret_env: the environment variable SIM_SECRET is not set"),
        "{stderr}"
    );

    let out = daemon(&dir.path().join("missing.toml")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let out = Command::new(BIN).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "--config is required");
}

#[test]
fn an_unreachable_database_exits_4_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = daemon(&write_config(&dir, CONFIG)).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.1:1") && !stderr.contains("hunter2"), "{stderr}");
}

/// A URL of the test's own database: DATABASE_URL with its database name replaced.
fn url_of(pool: &PgPool) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL");
    let name = pool.connect_options().get_database().unwrap().to_owned();
    let (head, query) = base.split_once('?').map_or((base.as_str(), None), |(h, q)| (h, Some(q)));
    let (scheme, rest) = head.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    match query {
        Some(q) => format!("{scheme}://{authority}/{name}?{q}"),
        None => format!("{scheme}://{authority}/{name}"),
    }
}

#[sqlx::test(migrations = false)]
async fn sigterm_drains_releases_the_lease_and_exits_0(pool: PgPool) {
    let sim = intervals_sim::spawn(intervals_sim::SimConfig { agents: 10, ..Default::default() }, 0).await.unwrap();
    // A week back: weekdays with work whatever today is.
    let from = (chrono::Utc::now() - chrono::Duration::days(7)).format("%Y-%m-%d");
    let text = format!(
        "database_url = \"{db}\"\nlisten = \"127.0.0.1:0\"\n[[org]]\nlabel = \"emea\"\napi_url = \"{url}\"\n\
         client_id_env = \"SIM_ID\"\nclient_secret_env = \"SIM_SECRET\"\nbackfill_from = \"{from}\"\n",
        db = url_of(&pool),
        url = sim.base_url()
    );
    let dir = tempfile::tempdir().unwrap();
    let mut child = daemon(&write_config(&dir, &text))
        .arg("--log-format")
        .arg("json")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // Read the log until the first tick is done, noting the address it listens on.
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, mut lines_rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            if lines_tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut addr = None;
    let mut log = Vec::new();
    within(async {
        while let Some(line) = lines_rx.recv().await {
            let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
            if json["message"] == "listening" {
                addr = json["address"].as_str().map(str::to_owned);
            }
            let done = json["message"] == "tick done" || json["level"] == "ERROR";
            log.push(line);
            if done {
                break;
            }
        }
    })
    .await;
    let addr = addr.unwrap_or_else(|| panic!("no listening line in {log:#?}"));
    let (status, body) = super::support::get(&format!("http://{addr}/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(lease(&pool, "emea").await.map(|(_, live)| live), Some(true));
    assert!(log.iter().all(|l| !l.contains("sim-secret")), "no secret in the log");

    let kill = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status().unwrap();
    assert!(kill.success());
    let status = within(tokio::task::spawn_blocking(move || child.wait())).await.unwrap().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(lease(&pool, "emea").await, None, "lease released on SIGTERM");
    let rows: (i64,) =
        sqlx::query_as("SELECT count(*) FROM agent_intervals WHERE org = 'emea'").fetch_one(&pool).await.unwrap();
    assert!(rows.0 > 0);
}
