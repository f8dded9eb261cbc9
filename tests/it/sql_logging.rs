//! No SQL text in the logs at the default level. sqlx logs every statement at DEBUG, and by default a
//! statement that takes a second or more as a WARN carrying the whole statement: a store held by
//! someone else (another writer of the SQLite file, a lock in PostgreSQL) would put SQL into every
//! operator's log. The outputs log statements, slow or not, at DEBUG only: `RUST_LOG=sqlx=debug`
//! shows them.

use std::io::Read;
use std::process::{Command, Output};
use std::time::Duration;

use sqlx::{Connection, Executor};

use crate::extract_truth::pg_url;
use crate::support::{expect_exit, run, spawn_watching, Extraction, Sim};

/// What shows that a log line carries SQL text.
const SQL: &[&str] = &["INSERT INTO", "SELECT ", "DELETE FROM", "UPDATE ", "CREATE TABLE"];

/// The log lines of a run with `--log-format json` (the summary, in plain text, names a sample query).
fn log_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with('{')).collect()
}

/// The log lines that carry SQL text or come from sqlx's statement logger.
fn lines_with_sql(stderr: &str) -> Vec<&str> {
    log_lines(stderr)
        .into_iter()
        .filter(|l| SQL.iter().any(|s| l.contains(s)) || l.contains("\"target\":\"sqlx::query\""))
        .collect()
}

#[track_caller]
fn assert_no_sql(stderr: &str, what: &str) {
    let found = lines_with_sql(stderr);
    assert!(
        found.is_empty(),
        "{what}: SQL in the log at the default level:\n{}\n\nstderr:\n{stderr}",
        found.join("\n")
    );
}

/// Runs `cmd` (stderr piped) while `hold` keeps the store busy; returns its output once both ended.
async fn run_while<F>(cmd: Command, hold: F) -> Output
where
    F: std::future::Future<Output = ()>,
{
    let mut child = spawn_watching(cmd);
    let mut stderr = child.stderr.take().unwrap();
    let reader = tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        stderr.read_to_end(&mut all).unwrap();
        all
    });
    hold.await;
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    Output { status, stdout: Vec::new(), stderr: reader.await.unwrap() }
}

fn demo_extract(db: &std::path::Path) -> Command {
    let mut cmd = Command::new(crate::support::binary("genesys-intervals"));
    cmd.args(["extract", "--demo", "--from", "2025-03-10", "--to", "2025-03-11", "--progress", "never"])
        .args(["--log-format", "json", "--out", &format!("sqlite:{}", db.display())])
        .env_remove("RUST_LOG")
        .env_remove("GENESYS_CLIENT_ID")
        .env_remove("GENESYS_CLIENT_SECRET")
        .env_remove("GENESYS_ENVIRONMENT");
    cmd
}

/// `extract --demo` into `db` while another connection holds the file's write lock for 2.5 s (from
/// before the run starts until well after it needs the lock); returns stderr.
async fn demo_extract_while_locked(db: &std::path::Path, rust_log: Option<&str>) -> String {
    let url = format!("sqlite://{}", db.display());
    let mut holder: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let mut cmd = demo_extract(db);
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    }
    let started = std::time::Instant::now();
    let out = run_while(cmd, async {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        holder.execute("COMMIT").await.unwrap();
    })
    .await;
    let stderr = expect_exit(&out, 0);
    assert!(started.elapsed() >= Duration::from_secs(2), "the run waited for the lock");
    stderr
}

/// Another writer holds the SQLite file for a few seconds (a second `extract`, a backup, a `sqlite3`
/// shell): the users sync of `extract --demo` waits for it past sqlx's slow-statement threshold. That
/// wait is not worth SQL text in the log; with `RUST_LOG=sqlx=debug` the statements are there, the
/// slow one too.
#[tokio::test]
async fn sqlite_extract_logs_no_sql_at_the_default_level_even_when_statements_are_slow() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("busy.db");
    let stderr = expect_exit(&run(demo_extract(&db)).await, 0);
    assert_no_sql(&stderr, "first run");

    let stderr = demo_extract_while_locked(&db, None).await;
    assert_no_sql(&stderr, "a run that waited for the lock");

    // At debug, sqlx's statements are there (this is where they belong), the slow one included.
    let stderr = demo_extract_while_locked(&db, Some("info,sqlx=debug")).await;
    let found = lines_with_sql(&stderr);
    assert!(
        found.iter().any(|l| l.contains("SELECT ") && !l.contains("slow statement")),
        "statements at debug:\n{stderr}"
    );
    assert!(
        found.iter().any(|l| l.contains("slow statement") && l.contains("INSERT INTO users")),
        "the slow statement at debug:\n{stderr}"
    );
    assert!(found.iter().all(|l| l.contains("\"level\":\"DEBUG\"")), "only at debug:\n{}", found.join("\n"));
}

/// Waits until a backend of this database waits for a lock (the CLI, blocked by `LOCK TABLE`).
async fn wait_for_a_lock_wait(pool: &sqlx::PgPool) {
    for _ in 0..600 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
        )
        .fetch_one(pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the extraction never waited for the lock");
}

/// A statement of `extract` into PostgreSQL waits on a lock another session holds (a migration, a
/// long report query, a replica): no SQL text in the log at the default level; at debug it is there.
#[sqlx::test(migrations = false)]
async fn postgres_extract_logs_no_sql_at_the_default_level_even_when_statements_are_slow(
    _o: sqlx::postgres::PgPoolOptions,
    opts: sqlx::postgres::PgConnectOptions,
) {
    let sim = Sim::small().await;
    let out = pg_url(&opts);
    let extraction = Extraction { from: "2025-03-10", to: "2025-03-11", ..Extraction::default() };
    let extract = |rust_log: Option<&str>| {
        let mut cmd = sim.cli(&["extract", "--out", &out, "--log-format", "json", "--refetch"]);
        cmd.args(extraction.args());
        if let Some(filter) = rust_log {
            cmd.env("RUST_LOG", filter);
        }
        cmd
    };
    let stderr = expect_exit(&run(extract(None)).await, 0);
    assert_no_sql(&stderr, "first run");

    let pool = sqlx::PgPool::connect_with(opts.clone()).await.unwrap();
    let mut holder = sqlx::PgConnection::connect_with(&opts).await.unwrap();
    holder.execute("BEGIN").await.unwrap();
    holder.execute("LOCK TABLE ingest_windows, agent_intervals IN ACCESS EXCLUSIVE MODE").await.unwrap();
    let out = run_while(extract(None), async {
        wait_for_a_lock_wait(&pool).await;
        tokio::time::sleep(Duration::from_millis(1500)).await;
        holder.execute("ROLLBACK").await.unwrap();
    })
    .await;
    let stderr = expect_exit(&out, 0);
    assert_no_sql(&stderr, "a run that waited for a lock");

    let stderr = expect_exit(&run(extract(Some("info,sqlx=debug"))).await, 0);
    let found = lines_with_sql(&stderr);
    assert!(found.iter().any(|l| l.contains("INSERT INTO")), "statements at debug:\n{stderr}");
    assert!(found.iter().all(|l| l.contains("\"level\":\"DEBUG\"")), "only at debug:\n{}", found.join("\n"));
}
