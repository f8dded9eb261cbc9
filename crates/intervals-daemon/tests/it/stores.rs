//! The daemon's store chosen by `database_url` alone: the same config against SQLite and against
//! PostgreSQL reaches the same truth; outputs without checkpoints are refused at parse; two
//! daemons on one SQLite file share an org through the lease in the file.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use intervals_daemon::DaemonSettings;
use intervals_domain::TimeWindow;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgPool, SqliteConnection};
use tokio::sync::watch;

use super::support::{self, config_text, settings, sim, t, truth, window, Facts, ManualClock, Running};

const ORG: &str = "emea";
const NOW: &str = "2025-03-12T10:07:00Z";
/// A bounded backfill that ends before the lookbacks start: three day windows, read with
/// checkpoints, and nothing else to read at [`NOW`].
const BACKFILL: &str = "backfill_from = \"2025-03-05\"\nbackfill_to = \"2025-03-08\"";

/// The whole config file: `database_url` first, then one org on `sim` with [`BACKFILL`].
fn config_with(database_url: &str, sim: &intervals_sim::RunningSim) -> String {
    format!("database_url = \"{database_url}\"\n{}", config_text(&[(ORG, sim, BACKFILL)]))
}

/// A daemon's database, opened by its `database_url` to read back what the daemon stored.
enum Db {
    Sqlite(PathBuf),
    Postgres(PgPool),
}

impl Db {
    async fn open(url: &str) -> Db {
        match url.strip_prefix("sqlite:") {
            Some(path) => Db::Sqlite(PathBuf::from(path)),
            None => Db::Postgres(PgPool::connect(url).await.unwrap()),
        }
    }

    async fn sqlite(path: &std::path::Path) -> SqliteConnection {
        SqliteConnection::connect(&format!("sqlite://{}?mode=ro", path.display())).await.unwrap()
    }

    /// What the `interval_metrics` view holds for `org` in `range`.
    async fn stored(&self, org: &str, range: TimeWindow) -> Facts {
        let path = match self {
            Db::Postgres(pool) => return support::stored(pool, org, range).await,
            Db::Sqlite(path) => path,
        };
        type Row = (String, String, String, String, Option<i64>, Option<f64>, Option<f64>, Option<f64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT user_id, media_type, interval_start, metric, count, CAST(sum AS REAL), CAST(min AS REAL), \
                    CAST(max AS REAL) \
             FROM interval_metrics WHERE org = ?1",
        )
        .bind(org)
        .fetch_all(&mut Db::sqlite(path).await)
        .await
        .unwrap();
        rows.into_iter()
            .map(|(u, m, s, k, c, sum, min, max)| ((u, m, utc(&s), k), (c, sum, min, max)))
            .filter(|((_, _, start, _), _)| range.start() <= *start && *start < range.end())
            .collect()
    }

    /// The checkpointed windows of `org`, sorted.
    async fn checkpoints(&self, org: &str) -> Vec<TimeWindow> {
        let path = match self {
            Db::Postgres(pool) => return support::checkpoints(pool, org).await,
            Db::Sqlite(path) => path,
        };
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT window_start, window_end FROM ingest_windows WHERE org = ?1 ORDER BY window_start, window_end",
        )
        .bind(org)
        .fetch_all(&mut Db::sqlite(path).await)
        .await
        .unwrap();
        rows.iter().map(|(a, b)| TimeWindow::new(utc(a), utc(b)).unwrap()).collect()
    }

    /// The lease row of `org`: holder and whether it is still running (by the database's clock).
    async fn lease(&self, org: &str) -> Option<(String, bool)> {
        let path = match self {
            Db::Postgres(pool) => return support::lease(pool, org).await,
            Db::Sqlite(path) => path,
        };
        sqlx::query_as(
            "SELECT holder, expires_at > CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER) \
             FROM ingest_leases WHERE org = ?1",
        )
        .bind(org)
        .fetch_optional(&mut Db::sqlite(path).await)
        .await
        .unwrap()
    }
}

fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text).unwrap_or_else(|e| panic!("{text:?}: {e}")).with_timezone(&Utc)
}

/// The URL of the `#[sqlx::test]` database: `DATABASE_URL` (credentials and parameters kept) with
/// the test's database name.
fn test_database_url(opts: &PgConnectOptions) -> String {
    let base = std::env::var("DATABASE_URL").expect("DATABASE_URL (run with cargo xtask test)");
    let (scheme, rest) = base.split_once("://").expect("a postgres:// URL");
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let params = tail.split_once('?').map(|(_, q)| format!("?{q}")).unwrap_or_default();
    format!("{scheme}://{authority}/{}{params}", opts.get_database().expect("a test database"))
}

/// One scenario for any store: the daemon opens `database_url` itself, backfills a bounded range to
/// completion in one tick, stores exactly the truth with one checkpoint per day, reads nothing
/// more at the next tick, and releases its lease on shutdown.
async fn backfill_reaches_the_truth(database_url: &str) {
    let sim = sim(NOW, |_| {}).await;
    let settings = settings(&config_with(database_url, &sim));
    let query = settings.orgs[0].reads[0].queries.layout().clone();
    let mut daemon = Running::start_configured(settings, ManualClock::at(NOW), "replica-a", None).await;
    let db = Db::open(database_url).await;

    daemon.tick().await;
    let range = window("2025-03-05T00:00:00Z", "2025-03-08T00:00:00Z");
    let expected = truth(&sim, &query, range);
    assert!(expected.len() > 100, "the simulator produced data: {}", expected.len());
    let everything = window("2025-03-01T00:00:00Z", "2025-03-13T00:00:00Z");
    assert_eq!(db.stored(ORG, everything).await, expected, "{database_url}: after the backfill");
    let days = ["2025-03-05", "2025-03-06", "2025-03-07", "2025-03-08"]
        .windows(2)
        .map(|d| window(&format!("{}T00:00:00Z", d[0]), &format!("{}T00:00:00Z", d[1])))
        .collect::<Vec<_>>();
    assert_eq!(db.checkpoints(ORG).await, days, "{database_url}: one checkpoint per day window");
    let first = daemon.org(ORG);
    assert!(first.ready && first.lease_held, "{first:?}");
    assert_eq!((first.windows_written, first.ticks_failed), (3, 0), "{first:?}");
    assert_eq!(first.last_success, Some(t(NOW)));
    assert_eq!(db.lease(ORG).await, Some(("replica-a".to_owned(), true)), "{database_url}: the lease");

    // The backfill is complete and the lookbacks lie after backfill_to: nothing more to read.
    daemon.tick().await;
    assert_eq!(daemon.org(ORG).windows_written, 3);
    assert_eq!(sim.stats().aggregate_queries, 3, "each day read once");
    assert_eq!(db.stored(ORG, everything).await, expected);
    daemon.shutdown().await.unwrap();
    assert_eq!(db.lease(ORG).await, None, "{database_url}: released on shutdown");
}

#[tokio::test]
async fn backfill_into_sqlite_reaches_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    backfill_reaches_the_truth(&format!("sqlite:{}", dir.path().join("d.db").display())).await;
}

#[sqlx::test(migrations = false)]
async fn backfill_into_postgres_reaches_the_truth(_pool: PgPoolOptions, opts: PgConnectOptions) {
    backfill_reaches_the_truth(&test_database_url(&opts)).await;
}

/// An org that parses with any environment.
const ORG_SECTION: &str =
    "[[org]]\nlabel = \"emea\"\nenvironment = \"mypurecloud.ie\"\nbackfill_from = \"2025-01-01\"\n";

fn any_env(_: &str) -> Option<String> {
    Some("unused".to_owned())
}

#[test]
fn an_output_without_checkpoints_is_refused_at_parse() {
    let text = format!("database_url = \"csv:x.csv\"\n{ORG_SECTION}");
    let problems = DaemonSettings::parse(&text, &any_env).expect_err("csv keeps no checkpoints").problems;
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(
        problems[0].starts_with("database_url:") && problems[0].contains("csv") && problems[0].contains("checkpoints"),
        "{problems:#?}"
    );
}

/// The Parquet output keeps checkpoints (its files), so the parse lets it through, yet it has no
/// `open_store`: either the config refuses it before anything starts, as it does csv, or the store
/// opens. Today neither: `Daemon::start` fails (exit 4) saying it "keeps no checkpoints".
#[tokio::test]
async fn a_parquet_database_url_is_refused_at_parse_or_opens() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("database_url = \"parquet:{}\"\n{ORG_SECTION}", dir.path().join("p").display());
    let outcome = DaemonSettings::parse(&text, &any_env);
    let settings = match outcome {
        Err(e) => {
            assert!(e.problems.iter().any(|p| p.starts_with("database_url:") && p.contains("parquet")), "{e}");
            return;
        }
        Ok(settings) => settings,
    };
    // Accepted: then the store must open.
    if let Err(e) = settings.output.config().open_store().await {
        panic!("database_url = parquet:DIR passes the parse but cannot be opened as the store: {e}");
    }
}

#[tokio::test]
async fn two_daemons_on_one_sqlite_file_share_an_org_through_its_lease() {
    let sim = sim(NOW, |_| {}).await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("d.db").display());
    let text = config_with(&url, &sim);
    let query = settings(&text).orgs[0].reads[0].queries.layout().clone();
    let clock = ManualClock::at(NOW);
    let (ticks, rx) = watch::channel(0u64);
    let a = Running::start_configured(settings(&text), clock.clone(), "replica-a", Some(rx.clone())).await;
    let b = Running::start_configured(settings(&text), clock.clone(), "replica-b", Some(rx)).await;
    let db = Db::open(&url).await;

    // Both tick at the same moment: exactly one reads, the other skips.
    ticks.send_modify(|n| *n += 1);
    a.wait_ticks(1).await;
    b.wait_ticks(1).await;
    let (sa, sb) = (a.org(ORG), b.org(ORG));
    assert_ne!(sa.lease_held, sb.lease_held, "exactly one holds the lease: {sa:?} {sb:?}");
    let (holder, other, holder_name) = if sa.lease_held { (a, b, "replica-a") } else { (b, a, "replica-b") };
    let (sh, so) = (holder.org(ORG), other.org(ORG));
    assert_eq!((so.ticks_skipped, so.windows_written, so.ticks_failed), (1, 0, 0), "the other read nothing: {so:?}");
    assert_eq!((sh.windows_written, sh.ticks_failed), (3, 0), "{sh:?}");
    assert_eq!(sim.stats().aggregate_queries, 3, "no window was read twice");
    assert_eq!(db.lease(ORG).await, Some((holder_name.to_owned(), true)));
    let range = window("2025-03-05T00:00:00Z", "2025-03-08T00:00:00Z");
    let everything = window("2025-03-01T00:00:00Z", "2025-03-13T00:00:00Z");
    assert_eq!(db.stored(ORG, everything).await, truth(&sim, &query, range));

    // Ticking again while the holder runs: the other keeps skipping.
    ticks.send_modify(|n| *n += 1);
    holder.wait_ticks(2).await;
    other.wait_ticks(2).await;
    assert_eq!(other.org(ORG).ticks_skipped, 2);

    // The holder shuts down and releases the lease; the other takes it at its next tick.
    holder.shutdown().await.unwrap();
    assert_eq!(db.lease(ORG).await, None, "released on shutdown");
    ticks.send_modify(|n| *n += 1);
    other.wait_ticks(3).await;
    let taken = other.org(ORG);
    assert!(taken.lease_held, "{taken:?}");
    assert_eq!((taken.ticks_skipped, taken.windows_written), (2, 0), "the backfill was done: {taken:?}");
    assert_eq!(sim.stats().aggregate_queries, 3);
    assert!(db.lease(ORG).await.is_some_and(|(h, live)| h != holder_name && live));
    other.shutdown().await.unwrap();
}
