//! `genesys-intervals report`: the real binary on what `extract` stored; the readers' sums against SQL
//! written here; refusals that say what is stored instead.

use std::collections::BTreeMap;

use intervals_adapters::outputs::Registry;
use intervals_domain::{Granularity, TimeWindow};
use sqlx::Row;

use crate::extract_truth::pg_url;
use crate::support::{clean_cli, expect_exit, run, text, Extraction, Sim};

const MIXED: &str = "tHandle,tAcw,tHeldComplete,tTalkComplete,nConnected,tAgentRoutingStatus,tSystemPresence";

fn mixed() -> Extraction {
    Extraction { metrics: MIXED, ..Extraction::default() }
}

/// A simulator with a mixed extraction stored into `out` (and its users).
async fn stored(out: &str) -> Sim {
    let sim = Sim::small().await;
    let mut cmd = sim.cli(&["extract", "--out", out]);
    cmd.args(mixed().args());
    expect_exit(&run(cmd).await, 0);
    expect_exit(&run(sim.cli(&["users", "--out", out])).await, 0);
    sim
}

/// `report` with `args`; returns (exit code, stderr).
async fn report(args: &[&str]) -> (i32, String) {
    let out = run(clean_cli(&[&["report"], args].concat())).await;
    (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn a_report_of_a_sqlite_store_is_one_offline_html_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("r.db").display());
    stored(&db).await;
    let html_path = dir.path().join("r.html");
    let path = html_path.display().to_string();
    let (code, stderr) = report(&["--db", &db, "--out", &path, "--time-zone", "Europe/Dublin"]).await;
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("(12 agents, 96 buckets of PT30M)"), "{stderr}");
    let first = std::fs::read(&html_path).unwrap();
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&html_path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "a report is for sharing: {mode:o}");
    for needle in ["Coverage", "Occupancy", "conversation: tHandle", "user status: tAgentRoutingStatus"] {
        assert!(String::from_utf8_lossy(&first).contains(needle), "{needle}");
    }
    // Same data, same bytes.
    let (code, _) = report(&["--db", &db, "--out", &path, "--time-zone", "Europe/Dublin"]).await;
    assert_eq!(code, 0);
    assert_eq!(std::fs::read(&html_path).unwrap(), first, "the report is deterministic");
}

#[tokio::test]
async fn choices_that_match_nothing_are_refused_naming_what_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite:{}", dir.path().join("r.db").display());
    stored(&db).await;
    let out = dir.path().join("x.html").display().to_string();
    // (arguments, exit code, the message says)
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--org", "emea"], 2, "org \"emea\" is not stored"),
        (&["--granularity", "PT15M"], 2, "org \"default\" has no PT15M intervals"),
        (&["--from", "2024-01-01", "--to", "2024-01-02"], 2, "has no PT30M intervals between"),
        (&["--from", "2025-03-12", "--to", "2025-03-10"], 2, "must be before"),
        (&["--granularity", "30m"], 2, "--granularity"),
    ];
    for (args, code, needle) in cases {
        let (got, stderr) = report(&[&["--db", &db, "--out", &out], *args].concat()).await;
        assert_eq!(got, *code, "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        if *code == 2 && needle.contains("stored") || needle.contains("between") {
            assert!(
                stderr.contains("org \"default\", PT30M: 2025-03-10T07:00:00Z .. 2025-03-12T00:00:00Z"),
                "{stderr}"
            );
        }
        assert!(!dir.path().join("x.html").exists(), "{args:?}: no report that looks real");
    }
}

#[tokio::test]
async fn stores_that_are_not_ours_or_not_there_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.html").display().to_string();
    let missing = format!("sqlite:{}", dir.path().join("missing.db").display());
    let (code, stderr) = report(&["--db", &missing, "--out", &out]).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("there is no database at"), "{stderr}");
    assert!(!dir.path().join("missing.db").exists(), "nothing is created");

    let foreign = dir.path().join("foreign.db");
    let url = format!("sqlite://{}?mode=rwc", foreign.display());
    let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE invoices (id INTEGER)").execute(&mut conn).await.unwrap();
    let (code, stderr) = report(&["--db", &format!("sqlite:{}", foreign.display()), "--out", &out]).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("not a genesys-intervals database (tables invoices)"), "{stderr}");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(&mut conn).await.unwrap();
    assert_eq!(tables, ["invoices"], "nothing was added to someone else's database");

    let csv = format!("csv:{}", dir.path().join("x.csv").display());
    let (code, stderr) = report(&["--db", &csv, "--out", &out]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("cannot be read back"), "{stderr}");

    let empty = dir.path().join("empty.db");
    expect_exit(&run(clean_cli(&["users", "--demo", "--out", &format!("sqlite:{}", empty.display())])).await, 0);
    let (code, stderr) = report(&["--db", &format!("sqlite:{}", empty.display()), "--out", &out]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("holds no intervals yet"), "{stderr}");
}

/// Per agent: handled, handle, acw, hold (ms), on queue, interacting, occupancy base (ms).
type Totals = BTreeMap<String, (u64, f64, f64, f64, Option<f64>, Option<f64>, Option<f64>)>;

/// The reader's totals per agent: its slots over `range` added up here (what `build_report` does),
/// with names from `user_names`.
async fn reader_totals(url: &str, range: TimeWindow) -> (Totals, BTreeMap<String, Option<String>>) {
    let reader = Registry::builtin().parse(url).unwrap().config().open_reader().await.unwrap().unwrap();
    let slots = reader.agent_slots("default", Granularity::Pt30m, range).await.unwrap();
    let user_names = reader.user_names("default").await.unwrap();
    // The Totals columns, status ones as plain sums, and whether any slot had status time.
    type Sums = (u64, f64, f64, f64, f64, f64, f64, bool);
    let mut sums: BTreeMap<String, Sums> = BTreeMap::new();
    for s in slots {
        let t = sums.entry(s.user_id).or_default();
        t.0 += s.handled;
        t.1 += s.handle_ms;
        t.2 += s.acw_ms;
        t.3 += s.hold_ms;
        t.4 += s.on_queue_ms;
        t.5 += s.interacting_ms;
        t.6 += s.occupancy_base_ms;
        t.7 |= s.has_status;
    }
    let names = sums.keys().map(|user| (user.clone(), user_names.get(user).cloned())).collect();
    let totals = sums
        .into_iter()
        .map(|(user, t)| {
            let status = |v: f64| t.7.then_some(v);
            (user, (t.0, t.1, t.2, t.3, status(t.4), status(t.5), status(t.6)))
        })
        .collect();
    (totals, names)
}

/// The same totals by the test's own SQL over the long `interval_metrics` view.
const TOTALS_SQL: &str = "SELECT user_id, \
    sum(CASE WHEN metric = 'tHandle' THEN count ELSE 0 END) AS handled, \
    sum(CASE WHEN metric = 'tHandle' THEN sum ELSE 0 END) AS handle_ms, \
    sum(CASE WHEN metric = 'tAcw' THEN sum ELSE 0 END) AS acw_ms, \
    sum(CASE WHEN metric = 'tHeldComplete' THEN sum ELSE 0 END) AS hold_ms, \
    sum(CASE WHEN metric = 'tSystemPresence:ON_QUEUE' THEN sum END) AS on_queue_ms, \
    sum(CASE WHEN metric = 'tAgentRoutingStatus:INTERACTING' THEN sum END) AS interacting_ms, \
    sum(CASE WHEN metric IN ('tAgentRoutingStatus:INTERACTING', 'tAgentRoutingStatus:COMMUNICATING', \
                             'tAgentRoutingStatus:IDLE') THEN sum END) AS base_ms, \
    max(CASE WHEN metric LIKE 'tAgentRoutingStatus:%' OR metric LIKE 'tSystemPresence:%' THEN 1 ELSE 0 END) AS has_status \
    FROM interval_metrics WHERE org = 'default' AND granularity = 'PT30M' GROUP BY user_id";

/// The totals of [`TOTALS_SQL`]'s rows (either database; numbers cast to bigint and double), by agent.
fn totals_of<R>(rows: &[R]) -> Totals
where
    R: Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> f64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> Option<f64>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    rows.iter()
        .map(|r| {
            let status = r.get::<i64, _>("has_status") == 1;
            let opt = |c: &str| if status { Some(r.get::<Option<f64>, _>(c).unwrap_or(0.0)) } else { None };
            let t = (
                r.get::<i64, _>("handled") as u64,
                r.get::<f64, _>("handle_ms"),
                r.get::<f64, _>("acw_ms"),
                r.get::<f64, _>("hold_ms"),
                opt("on_queue_ms"),
                opt("interacting_ms"),
                opt("base_ms"),
            );
            (r.get::<String, _>("user_id"), t)
        })
        .collect()
}

#[track_caller]
fn assert_same_totals(got: &Totals, want: &Totals) {
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (user, w) in want {
        let g = &got[user];
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        let close_opt = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => close(a, b),
            (a, b) => a == b,
        };
        let same = g.0 == w.0
            && close(g.1, w.1)
            && close(g.2, w.2)
            && close(g.3, w.3)
            && close_opt(g.4, w.4)
            && close_opt(g.5, w.5)
            && close_opt(g.6, w.6);
        assert!(same, "{user}:\n  reader: {g:?}\n  sql:    {w:?}");
    }
}

#[tokio::test]
async fn the_sqlite_readers_agent_totals_equal_sql_written_by_the_test() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.db");
    let db = format!("sqlite:{}", path.display());
    stored(&db).await;
    let (got, names) = reader_totals(&db, mixed().range()).await;
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    let sql = format!(
        "SELECT user_id, handled, CAST(handle_ms AS REAL) AS handle_ms, CAST(acw_ms AS REAL) AS acw_ms, \
         CAST(hold_ms AS REAL) AS hold_ms, CAST(on_queue_ms AS REAL) AS on_queue_ms, \
         CAST(interacting_ms AS REAL) AS interacting_ms, CAST(base_ms AS REAL) AS base_ms, has_status \
         FROM ({TOTALS_SQL})"
    );
    let rows = sqlx::query(&sql).fetch_all(&mut conn).await.unwrap();
    let mut want = totals_of(&rows);
    want.remove("");
    assert!(want.len() == 12, "{want:?}");
    assert_same_totals(&got, &want);
    assert!(names.values().all(Option::is_some), "every agent is named once users are stored: {names:?}");
}

#[sqlx::test(migrations = false)]
async fn the_postgres_readers_agent_totals_equal_sql_written_by_the_test(
    _pool_opts: sqlx::postgres::PgPoolOptions,
    opts: sqlx::postgres::PgConnectOptions,
) {
    let url = pg_url(&opts);
    stored(&url).await;
    let (got, _) = reader_totals(&url, mixed().range()).await;
    let pool = sqlx::PgPool::connect_with(opts).await.unwrap();
    let sql = TOTALS_SQL
        .replace("SELECT user_id,", "SELECT user_id::text AS user_id,")
        .replace("GROUP BY user_id", "AND user_id <> '00000000-0000-0000-0000-000000000000' GROUP BY user_id");
    let sql = format!(
        "SELECT user_id, handled::bigint AS handled, handle_ms::float8 AS handle_ms, acw_ms::float8 AS acw_ms, \
         hold_ms::float8 AS hold_ms, on_queue_ms::float8 AS on_queue_ms, interacting_ms::float8 AS interacting_ms, \
         base_ms::float8 AS base_ms, has_status::bigint AS has_status FROM ({sql}) AS t"
    );
    let rows = sqlx::query(&sql).fetch_all(&pool).await.unwrap();
    let want = totals_of(&rows);
    assert_eq!(want.len(), 12);
    assert_same_totals(&got, &want);
    let out = tempfile::tempdir().unwrap();
    let html = out.path().join("pg.html").display().to_string();
    let (code, stderr) = report(&["--db", &url, "--out", &html]).await;
    assert_eq!(code, 0, "{stderr}");
}

/// `cmd` with `dir` mounted read-only (root: a read-only bind mount in a mount namespace of the
/// child's own; otherwise the folder and its files lose their write bits for the run, which
/// `restore` gives back).
fn with_read_only_folder(cmd: std::process::Command, dir: &std::path::Path) -> std::process::Command {
    use std::os::unix::fs::PermissionsExt;
    let root = std::process::Command::new("id").arg("-u").output().is_ok_and(|o| text(&o.stdout).trim() == "0");
    if root {
        let mut outer = std::process::Command::new("unshare");
        outer
            .args(["--mount", "--propagation", "private", "sh", "-c"])
            .arg(r#"mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" || exit 125; shift; exec "$@""#)
            .arg("sh")
            .arg(dir)
            .arg(cmd.get_program())
            .args(cmd.get_args());
        outer
    } else {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).unwrap();
        cmd
    }
}

/// Gives a folder and its files their write bits back (after [`with_read_only_folder`]).
fn restore(dir: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        std::fs::set_permissions(entry.unwrap().path(), std::fs::Permissions::from_mode(0o644)).unwrap();
    }
}

/// Every file of a folder with its size and a digest of its bytes, but the write-ahead log's files
/// (`-wal`, `-shm`), which SQLite creates beside a WAL database for any reader, and which an empty
/// log leaves meaningless.
fn folder_bytes(dir: &std::path::Path) -> BTreeMap<String, (usize, u64)> {
    use std::hash::{Hash, Hasher};
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.to_string_lossy();
            let wal = name.ends_with("-wal");
            !(name.ends_with("-shm") || wal && std::fs::metadata(p).unwrap().len() == 0)
        })
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut hasher);
            (p.file_name().unwrap().to_string_lossy().into_owned(), (bytes.len(), hasher.finish()))
        })
        .collect()
}

#[tokio::test]
async fn a_report_reads_a_sqlite_store_without_changing_it_even_a_read_only_one() {
    let store = tempfile::tempdir().unwrap();
    let path = store.path().join("r.db");
    let db = format!("sqlite:{}", path.display());
    stored(&db).await;
    let before = folder_bytes(store.path());
    let out = tempfile::tempdir().unwrap();
    let html = out.path().join("r.html").display().to_string();
    let (code, stderr) = report(&["--db", &db, "--out", &html]).await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(folder_bytes(store.path()), before, "a report changed the store's folder");

    let cmd = clean_cli(&["report", "--db", &db, "--out", &html]);
    let ran = run(with_read_only_folder(cmd, store.path())).await;
    restore(store.path());
    expect_exit(&ran, 0);
    assert_eq!(folder_bytes(store.path()), before);

    // A store of an older schema is refused, not upgraded.
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&db).await.unwrap();
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let (code, stderr) = report(&["--db", &db, "--out", &html]).await;
    assert_eq!(code, 4, "{stderr}");
    assert!(stderr.contains("reading never changes a store: run `genesys-intervals extract`"), "{stderr}");
}

#[sqlx::test(migrations = false)]
async fn a_report_reads_postgresql_with_a_role_that_may_only_select(
    _pool_opts: sqlx::postgres::PgPoolOptions,
    opts: sqlx::postgres::PgConnectOptions,
) {
    let url = pg_url(&opts);
    stored(&url).await;
    let pool = sqlx::PgPool::connect_with(opts.clone()).await.unwrap();
    let unique = format!("{}_{}", std::process::id(), chrono::Utc::now().timestamp_micros());
    let (reader, stranger) = (format!("reporter_{unique}"), format!("stranger_{unique}"));
    let db = opts.get_database().unwrap_or("postgres").to_owned();
    for statement in [
        format!("CREATE ROLE {reader} LOGIN"),
        format!("CREATE ROLE {stranger} LOGIN"),
        format!("GRANT CONNECT ON DATABASE \"{db}\" TO {reader}, {stranger}"),
        format!("GRANT USAGE ON SCHEMA public TO {reader}, {stranger}"),
        format!("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}"),
        format!("GRANT SELECT ON _sqlx_migrations, agent_intervals TO {stranger}"),
    ] {
        sqlx::query(&statement).execute(&pool).await.unwrap();
    }
    let as_role = |role: &str| format!("postgres://{role}@{}:{}/{db}", opts.get_host(), opts.get_port());
    let out = tempfile::tempdir().unwrap();
    let html = out.path().join("pg.html").display().to_string();
    let (code, stderr) = report(&["--db", &as_role(&reader), "--out", &html]).await;
    let (stranger_code, stranger_stderr) = report(&["--db", &as_role(&stranger), "--out", &html]).await;
    // Writing needs more than reading: said as a missing grant, not as an incompatible schema.
    let sim = Sim::small().await;
    let mut write = sim.cli(&["extract", "--out", &as_role(&reader)]);
    write.args(mixed().args());
    let written = run(write).await;
    for statement in
        [format!("DROP OWNED BY {reader}, {stranger}"), format!("DROP ROLE {reader}"), format!("DROP ROLE {stranger}")]
    {
        sqlx::query(&statement).execute(&pool).await.unwrap();
    }
    assert_eq!(code, 0, "a read-only role reads the store: {stderr}");
    let write_stderr = expect_exit(&written, 4);
    assert!(write_stderr.contains("the role may not create or change genesys-intervals' tables"), "{write_stderr}");
    assert!(!write_stderr.contains("incompatible schema"), "{write_stderr}");
    assert_eq!(stranger_code, 4, "{stranger_stderr}");
    assert!(stranger_stderr.contains("GRANT SELECT ON ALL TABLES"), "{stranger_stderr}");
}
