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
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("config OK: 1 org(s): emea\n"), "{stdout}");
    assert!(stdout.contains("org \"emea\": query 1: conversation: tHandle, tAcw"), "each read listed: {stdout}");

    let queue = format!("{CONFIG}[[org.query]]\npreset = \"queue\"\n");
    let out = daemon(&write_config(&dir, &queue)).arg("--check").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(
        stdout.contains("query 2: conversation: nOffered, tAnswered") && stdout.contains("by queueId, mediaType"),
        "{stdout}"
    );

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

/// Exit 4, and the error printed with its cause (the OS error), never with the password or the
/// client secret.
#[test]
fn an_unreachable_database_exits_4_with_the_os_error_as_its_cause_without_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let out = daemon(&write_config(&dir, CONFIG)).output().unwrap();
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("127.0.0.1:1") && !stderr.contains("hunter2"), "{stderr}");
    assert!(!stderr.contains("sim-secret"), "the client secret leaked: {stderr}");
    let error = stderr.lines().position(|l| l.starts_with("error: cannot open ")).expect(&stderr);
    let cause = stderr.lines().nth(error + 1).unwrap_or_default();
    assert!(cause.starts_with("  caused by: ") && cause.contains("os error"), "{stderr}");
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

#[test]
fn check_refuses_a_large_backfill_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    // Every day since 2010: thousands of requests at the first tick.
    let large = CONFIG.replace("2025-01-01", "2010-01-01");
    let out = daemon(&write_config(&dir, &large)).arg("--check").output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stdout));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("org \"emea\": backfill_from: the backfill from 2010-01-01T00:00:00Z to ")
            && stderr.contains("allow_large_backfill = true"),
        "{stderr}"
    );
    let allowed = format!("{large}allow_large_backfill = true\n");
    let out = daemon(&write_config(&dir, &allowed)).arg("--check").output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));

    let out = daemon(&write_config(&dir, &CONFIG.replace("2025-01-01", "1900-01-01"))).arg("--check").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Genesys Cloud has no analytics data before 2010-01-01"), "{stderr}");
}

/// The real binary on a SQLite file of its own, its JSON log read line by line.
struct Logged {
    child: std::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    log: Vec<String>,
}

impl Logged {
    /// Starts the daemon on `config` (JSON logs on a pipe).
    fn spawn(config: &std::path::Path) -> Logged {
        let mut child = daemon(config)
            .arg("--log-format")
            .arg("json")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                if tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        Logged { child, lines, log: Vec::new() }
    }

    /// The next log line whose message is `message` (panics if the log ends first).
    async fn wait_for(&mut self, message: &str) -> serde_json::Value {
        let found = within(async {
            while let Some(line) = self.lines.recv().await {
                let json: serde_json::Value = serde_json::from_str(&line).unwrap_or_default();
                self.log.push(line);
                if json["message"] == message {
                    return Some(json);
                }
            }
            None
        })
        .await;
        found.unwrap_or_else(|| panic!("the log ended without {message:?}: {:#?}", self.log))
    }

    fn signal(&self, name: &str) {
        let kill = Command::new("kill").arg(format!("-{name}")).arg(self.child.id().to_string()).status().unwrap();
        assert!(kill.success());
    }

    async fn exit_code(self) -> Option<i32> {
        let mut child = self.child;
        within(tokio::task::spawn_blocking(move || child.wait())).await.unwrap().unwrap().code()
    }
}

/// A daemon config on `database_url`, reading the simulator `sim` from a week back.
fn sim_config(database_url: &str, listen: &str, sim: &intervals_sim::RunningSim) -> String {
    let from = (chrono::Utc::now() - chrono::Duration::days(7)).format("%Y-%m-%d");
    format!(
        "database_url = \"{database_url}\"\nlisten = \"{listen}\"\n[[org]]\nlabel = \"emea\"\napi_url = \"{url}\"\n\
         client_id_env = \"SIM_ID\"\nclient_secret_env = \"SIM_SECRET\"\nbackfill_from = \"{from}\"\n",
        url = sim.base_url()
    )
}

async fn sqlite_leases(db: &std::path::Path) -> Vec<String> {
    use sqlx::Connection;
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=ro", db.display())).await.unwrap();
    sqlx::query_scalar("SELECT org FROM ingest_leases").fetch_all(&mut conn).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_and_sigusr1_are_logged_and_ignored_then_sigterm_releases_the_lease() {
    let sim = intervals_sim::spawn(intervals_sim::SimConfig { agents: 4, ..Default::default() }, 0).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let config = write_config(&dir, &sim_config(&format!("sqlite:{}", db.display()), "127.0.0.1:0", &sim));
    let mut daemon = Logged::spawn(&config);
    let addr = daemon.wait_for("listening").await["address"].as_str().unwrap().to_owned();
    daemon.wait_for("tick done").await;
    assert_eq!(sqlite_leases(&db).await, ["emea"]);

    for signal in ["HUP", "USR1"] {
        daemon.signal(signal);
        let line = daemon.wait_for("signal ignored").await;
        assert_eq!(line["signal"], format!("SIG{signal}"), "{line}");
        assert_eq!(
            super::support::get(&format!("http://{addr}/healthz")).await,
            (200, "ok\n".to_owned()),
            "still running after SIG{signal}"
        );
    }
    daemon.signal("TERM");
    daemon.wait_for("lease released").await;
    assert_eq!(daemon.exit_code().await, Some(0));
    assert!(sqlite_leases(&db).await.is_empty(), "lease released on SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listen_address_in_use_exits_2_before_the_database_is_created() {
    let sim = intervals_sim::spawn(intervals_sim::SimConfig { agents: 4, ..Default::default() }, 0).await.unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d.db");
    let config = write_config(&dir, &sim_config(&format!("sqlite:{}", db.display()), &addr, &sim));
    let out = daemon(&config).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("listen: cannot bind {addr}: ")), "{stderr}");
    assert!(!db.exists(), "no database file before the listener is bound");
    assert_eq!(sim.stats().requests, 0, "no login before the listener is bound");
}
