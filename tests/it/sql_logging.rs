//! No SQL text in the logs at the default level. sqlx logs every statement at DEBUG, and by default a
//! statement that takes a second or more as a WARN carrying the whole statement: a store held by
//! someone else (another writer of the SQLite file, a lock in PostgreSQL) would put SQL into every
//! operator's log. The outputs log statements, slow or not, at DEBUG only: `RUST_LOG=sqlx=debug`
//! shows them.

use std::process::{Command, Output};
use std::time::Duration;

use sqlx::{Connection, Executor};

use crate::extract_truth::pg_url;
use crate::support::{expect_exit, run, spawn_watching, watch_log, Extraction, Sim};

/// sqlx's slow-statement threshold (1 s by default), with a margin: a statement kept waiting this
/// long is one sqlx would log, with its SQL, at WARN.
const SLOW: Duration = Duration::from_millis(1300);

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

/// Runs `cmd` (stderr piped) while `hold` keeps the store busy; `hold` is given a receiver that fires
/// when the run logs `message`. Returns the run's output once both ended.
async fn run_while<H, F>(cmd: Command, message: &str, hold: H) -> Output
where
    H: FnOnce(tokio::sync::oneshot::Receiver<()>) -> F,
    F: std::future::Future<Output = ()>,
{
    let mut child = spawn_watching(cmd);
    let (logged, reader) = watch_log(child.stderr.take().unwrap(), message, 1);
    hold(logged).await;
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    Output { status, stdout: Vec::new(), stderr: reader.await.unwrap().into_bytes() }
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

/// `extract --demo` into `db` while another connection holds the file's write lock, from before the
/// run starts until the run has waited for it past sqlx's slow-statement threshold: its first write
/// (the users sync) comes right after the login, so the lock is held for [`SLOW`] after the run logs
/// that it obtained its token (SQLite shows no waiting writer to poll for); returns stderr.
async fn demo_extract_while_locked(db: &std::path::Path, rust_log: Option<&str>) -> String {
    let url = format!("sqlite://{}", db.display());
    let mut holder: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    holder.execute("BEGIN IMMEDIATE").await.unwrap();
    let mut cmd = demo_extract(db);
    if let Some(filter) = rust_log {
        cmd.env("RUST_LOG", filter);
    }
    let mut waited = Duration::ZERO;
    let out = run_while(cmd, "obtained an access token", |logged| async {
        tokio::time::timeout(Duration::from_secs(60), logged)
            .await
            .expect("the run logs its login within a minute")
            .expect("the run logged its login");
        let writing = std::time::Instant::now();
        // The run's users sync is now blocked on the lock: keep it so past the threshold.
        tokio::time::sleep_until((writing + SLOW).into()).await;
        holder.execute("COMMIT").await.unwrap();
        waited = writing.elapsed();
    })
    .await;
    let stderr = expect_exit(&out, 0);
    assert!(waited >= SLOW, "the run waited for the lock");
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

/// Waits until a backend of this database has waited for a lock (the CLI, blocked by `LOCK TABLE`)
/// for [`SLOW`], by the server's own clock: its statement is then one sqlx finds slow. Polls the
/// server (every 50 ms) for at most a minute.
async fn wait_for_a_slow_lock_wait(pool: &sqlx::PgPool) {
    let polled = async {
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() \
                 AND clock_timestamp() - query_start >= make_interval(secs => $1)",
            )
            .bind(SLOW.as_secs_f64())
            .fetch_one(pool)
            .await
            .unwrap();
            if waiting > 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(60), polled)
        .await
        .expect("the extraction never waited for the lock long enough to be slow");
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
    let out = run_while(extract(None), "planned extraction", |_| async {
        wait_for_a_slow_lock_wait(&pool).await;
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
