//! Agent utilization end to end: status metrics from the users aggregates API beside the handling
//! metrics, the real binary against the simulator, compared with `sim truth`; and the
//! `agent_utilization` view against arithmetic done here from the truth.

use std::collections::BTreeMap;
use std::time::Duration;

use intervals_sim::SimConfig;
use sqlx::Row;

use crate::extract_truth::{pg_url, postgres_long_csv, sqlite_long_csv};
use crate::resume::extract_and_kill;
use crate::support::{assert_same_csv, expect_exit, run, Extraction, Sim};

const STATUS: &str = "tAgentRoutingStatus,tSystemPresence,tOrganizationPresence";
const MIXED: &str = "tHandle,tAcw,tHeldComplete,tTalkComplete,nConnected,tAgentRoutingStatus,tSystemPresence";

fn mixed() -> Extraction {
    Extraction { metrics: MIXED, ..Extraction::default() }
}

/// Extracts `extraction` into `out` and expects success; returns stderr.
async fn extract(sim: &Sim, extraction: &Extraction, out: &str) -> String {
    let mut cmd = sim.cli(&["extract", "--out", out]);
    cmd.args(extraction.args());
    expect_exit(&run(cmd).await, 0)
}

#[tokio::test]
async fn status_metrics_alone_into_csv_equal_the_truth() {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("status.csv");
    let extraction = Extraction { metrics: STATUS, group_by: "userId", ..Extraction::default() };
    let stderr = extract(&sim, &extraction, &format!("csv:{}", path.display())).await;
    let expected = extraction.truth_csv(&sim);
    assert!(expected.contains(",tAgentRoutingStatus:INTERACTING,"), "the truth has routing status:\n{expected}");
    assert!(expected.contains(",tSystemPresence:ON_QUEUE,"));
    assert_same_csv(&std::fs::read_to_string(&path).unwrap(), &expected, "status csv");
    assert_eq!((sim.aggregate_queries(), sim.user_aggregate_queries()), (0, 2), "two days, users endpoint only");
    assert!(stderr.contains("Done"), "{stderr}");
}

#[tokio::test]
async fn a_mixed_run_into_csv_has_one_set_of_columns() {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mixed.csv");
    let stderr = extract(&sim, &mixed(), &format!("csv:{}", path.display())).await;
    let written = std::fs::read_to_string(&path).unwrap();
    assert!(written.starts_with("user_id,media_type,interval_start,"), "{}", &written[..80]);
    assert_same_csv(&written, &mixed().truth_csv(&sim), "mixed csv");
    assert!(stderr.contains("planned (2 windows x 2 queries: conversation and user status)"), "{stderr}");
}

#[tokio::test]
async fn a_mixed_run_into_sqlite_equals_the_truth_and_a_rerun_changes_nothing() {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("mixed.db");
    let out = format!("sqlite:{}", db.display());
    extract(&sim, &mixed(), &out).await;
    assert_same_csv(&sqlite_long_csv(&db, &mixed()).await, &mixed().truth_csv(&sim), "sqlite");
    let before = (sim.aggregate_queries(), sim.user_aggregate_queries());
    assert_eq!(before, (2, 2), "one conversation and one users query per day");

    let stderr = extract(&sim, &mixed(), &out).await;
    assert_eq!((sim.aggregate_queries(), sim.user_aggregate_queries()), before, "nothing fetched again");
    assert!(stderr.contains("4 already done"), "{stderr}");
    assert_same_csv(&sqlite_long_csv(&db, &mixed()).await, &mixed().truth_csv(&sim), "sqlite after rerun");
}

#[sqlx::test(migrations = false)]
async fn a_mixed_run_into_postgres_equals_the_truth_twice(
    _pool_opts: sqlx::postgres::PgPoolOptions,
    opts: sqlx::postgres::PgConnectOptions,
) {
    let sim = Sim::small().await;
    let url = pg_url(&opts);
    extract(&sim, &mixed(), &url).await;
    let pool = sqlx::PgPool::connect_with(opts).await.unwrap();
    let truth = mixed().truth_csv(&sim);
    assert_same_csv(&postgres_long_csv(&pool, &mixed()).await, &truth, "postgres");
    let mut again = sim.cli(&["extract", "--out", &url, "--refetch"]);
    again.args(mixed().args());
    expect_exit(&run(again).await, 0);
    assert_eq!(sim.user_aggregate_queries(), 4, "--refetch reads the status windows again");
    assert_same_csv(&postgres_long_csv(&pool, &mixed()).await, &truth, "postgres after a refetch");
}

#[tokio::test]
async fn kill_9_during_a_mixed_run_then_a_rerun_is_exact() {
    let sim =
        Sim::start(SimConfig { agents: 8, seed: 11, latency: Duration::from_millis(150), ..SimConfig::default() })
            .await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("killed.db");
    let out = format!("sqlite:{}", db.display());
    let long = Extraction { from: "2025-02-01", to: "2025-02-11", granularity: "PT1H", metrics: MIXED, ..mixed() };
    extract_and_kill(&sim, &long, &out, 5).await;
    let first = sim.aggregate_queries() + sim.user_aggregate_queries();
    assert!(first < 20, "killed before the end: {first} of 20 requests");
    let stderr = extract(&sim, &long, &out).await;
    assert!(stderr.contains("already done"), "{stderr}");
    let total = sim.aggregate_queries() + sim.user_aggregate_queries();
    assert!(total <= 21, "finished windows were not fetched again: {total} requests for 20 windows");
    assert_same_csv(&sqlite_long_csv(&db, &long).await, &long.truth_csv(&sim), "sqlite after kill -9");
}

#[tokio::test]
async fn faults_on_the_users_endpoint_are_handled_like_on_the_conversation_endpoint() {
    let sim = Sim::start(SimConfig {
        agents: 12,
        seed: 7,
        fail_rate: 0.3,
        truncate_rate: 0.2,
        rate_per_minute: 60,
        token_ttl: Duration::from_secs(2),
        ..SimConfig::default()
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("faults.csv");
    let extraction = Extraction { to: "2025-03-14", ..mixed() };
    let mut cmd = sim.cli(&["extract", "--out", &format!("csv:{}", path.display()), "--concurrency", "2"]);
    cmd.args(extraction.args());
    let stderr = expect_exit(&run(cmd).await, 0);
    assert_same_csv(&std::fs::read_to_string(&path).unwrap(), &extraction.truth_csv(&sim), "csv through faults");
    assert!(sim.user_aggregate_queries() >= 4, "every status day was read");
    assert!(stderr.contains("retries"), "{stderr}");
}

#[tokio::test]
async fn a_403_on_the_users_endpoint_exits_3_naming_the_permission_and_keeps_what_was_written() {
    let sim =
        Sim::start(SimConfig { agents: 12, seed: 7, user_aggregate_permission: false, ..SimConfig::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("forbidden.db");
    let mut cmd = sim.cli(&["extract", "--out", &format!("sqlite:{}", db.display()), "--concurrency", "1"]);
    cmd.args(mixed().args());
    let stderr = expect_exit(&run(cmd).await, 3);
    assert!(stderr.contains("analytics:userAggregate:view"), "{stderr}");
    // The first window's conversation rows were written before the users query was refused.
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    let checkpoints: i64 =
        sqlx::query_scalar("SELECT count(*) FROM ingest_windows").fetch_one(&mut conn).await.unwrap();
    assert_eq!(checkpoints, 1, "the conversation window stays written and checkpointed");
    let conversation =
        Extraction { metrics: "tHandle,tAcw,tHeldComplete,tTalkComplete,nConnected", to: "2025-03-11", ..mixed() };
    assert_same_csv(&sqlite_long_csv(&db, &conversation).await, &conversation.truth_csv(&sim), "kept window");
}

#[tokio::test]
async fn more_than_100_user_ids_are_read_in_batches() {
    let sim = Sim::start(SimConfig { agents: 150, seed: 5, ..SimConfig::default() }).await;
    let dir = tempfile::tempdir().unwrap();
    let users_csv = dir.path().join("users.csv");
    let mut cmd = sim.cli(&["users", "--out", &format!("csv:{}", users_csv.display())]);
    cmd.arg("--org").arg("default");
    expect_exit(&run(cmd).await, 0);
    let text = std::fs::read_to_string(&users_csv).unwrap();
    let ids: Vec<&str> = text.lines().skip(1).filter_map(|l| l.split(',').nth(1)).take(130).collect();
    assert_eq!(ids.len(), 130, "{text}");
    let out = dir.path().join("some.csv");
    let day = Extraction { to: "2025-03-11", ..mixed() };
    let mut cmd = sim.cli(&["extract", "--out", &format!("csv:{}", out.display()), "--user-id", &ids.join(",")]);
    cmd.args(day.args());
    expect_exit(&run(cmd).await, 0);
    assert_eq!(
        (sim.aggregate_queries(), sim.user_aggregate_queries()),
        (2, 2),
        "130 ids: two requests of at most 100 per query"
    );
    let filters = intervals_domain::Filters::none()
        .with_user_ids(&ids.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .unwrap();
    let queries = day.queries();
    let filtered = intervals_domain::QuerySet::new(
        queries.metrics().collect(),
        queries.layout().group_by().to_vec(),
        queries.granularity(),
        queries.time_zone(),
        filters,
    )
    .unwrap();
    let truth = intervals_sim::truth_csv(&sim.config, &filtered, day.range());
    let all = day.truth_csv(&sim);
    assert!(truth.lines().count() < all.lines().count(), "the filter keeps fewer agents than the org has");
    assert_same_csv(&std::fs::read_to_string(&out).unwrap(), &truth, "130 agents");
}

/// One row of `agent_utilization` as the test reads it, and as it computes it from the truth.
#[derive(Debug, Clone, PartialEq, Default)]
struct Utilization {
    on_queue_ms: f64,
    idle_ms: f64,
    interacting_ms: f64,
    communicating_ms: f64,
    not_responding_ms: f64,
    off_queue_ms: f64,
    handle_ms: f64,
    handle_count: i64,
    acw_ms: f64,
    hold_ms: f64,
    talk_ms: f64,
    occupancy: Option<f64>,
    handle_per_on_queue: Option<f64>,
}

/// (user_id, interval_start as RFC 3339) -> the view's row, computed from the truth rows by this
/// test's own arithmetic.
fn expected_utilization(sim: &Sim, extraction: &Extraction) -> BTreeMap<(String, String), Utilization> {
    let mut out: BTreeMap<(String, String), Utilization> = BTreeMap::new();
    let mut has_status: BTreeMap<(String, String), bool> = BTreeMap::new();
    for row in extraction.truth_rows(sim) {
        let key = (row.group()[0].clone(), intervals_domain::rfc3339(row.bucket().start()));
        let u = out.entry(key.clone()).or_default();
        let sum = row.stats().sum.unwrap_or(0.0);
        match row.metric_key().as_str() {
            "tSystemPresence:ON_QUEUE" => u.on_queue_ms += sum,
            "tAgentRoutingStatus:IDLE" => u.idle_ms += sum,
            "tAgentRoutingStatus:INTERACTING" => u.interacting_ms += sum,
            "tAgentRoutingStatus:COMMUNICATING" => u.communicating_ms += sum,
            "tAgentRoutingStatus:NOT_RESPONDING" => u.not_responding_ms += sum,
            "tAgentRoutingStatus:OFF_QUEUE" => u.off_queue_ms += sum,
            "tHandle" => {
                u.handle_ms += sum;
                u.handle_count += row.stats().count.unwrap_or(0) as i64;
            }
            "tAcw" => u.acw_ms += sum,
            "tHeldComplete" => u.hold_ms += sum,
            "tTalkComplete" => u.talk_ms += sum,
            _ => {}
        }
        if row.qualifier().is_some() {
            has_status.insert(key, true);
        }
    }
    out.retain(|key, _| has_status.contains_key(key));
    for u in out.values_mut() {
        let base = u.interacting_ms + u.communicating_ms + u.idle_ms;
        u.occupancy = (base > 0.0).then(|| u.interacting_ms / base);
        u.handle_per_on_queue = (u.on_queue_ms > 0.0).then(|| u.handle_ms / u.on_queue_ms);
    }
    out
}

const VIEW_COLUMNS: &str = "on_queue_ms, idle_ms, interacting_ms, communicating_ms, not_responding_ms, off_queue_ms, \
    handle_ms, handle_count, acw_ms, hold_ms, talk_ms, occupancy, handle_per_on_queue";

fn utilization_of(row: &impl UtilizationRow) -> Utilization {
    Utilization {
        on_queue_ms: row.f("on_queue_ms"),
        idle_ms: row.f("idle_ms"),
        interacting_ms: row.f("interacting_ms"),
        communicating_ms: row.f("communicating_ms"),
        not_responding_ms: row.f("not_responding_ms"),
        off_queue_ms: row.f("off_queue_ms"),
        handle_ms: row.f("handle_ms"),
        handle_count: row.i("handle_count"),
        acw_ms: row.f("acw_ms"),
        hold_ms: row.f("hold_ms"),
        talk_ms: row.f("talk_ms"),
        occupancy: row.opt("occupancy"),
        handle_per_on_queue: row.opt("handle_per_on_queue"),
    }
}

/// The columns of one view row, whatever the database.
trait UtilizationRow {
    fn f(&self, column: &str) -> f64;
    fn i(&self, column: &str) -> i64;
    fn opt(&self, column: &str) -> Option<f64>;
}

impl UtilizationRow for sqlx::sqlite::SqliteRow {
    fn f(&self, column: &str) -> f64 {
        self.get::<f64, _>(column)
    }
    fn i(&self, column: &str) -> i64 {
        self.get::<i64, _>(column)
    }
    fn opt(&self, column: &str) -> Option<f64> {
        self.get::<Option<f64>, _>(column)
    }
}

impl UtilizationRow for sqlx::postgres::PgRow {
    fn f(&self, column: &str) -> f64 {
        self.get::<f64, _>(column)
    }
    fn i(&self, column: &str) -> i64 {
        self.get::<i64, _>(column)
    }
    fn opt(&self, column: &str) -> Option<f64> {
        self.get::<Option<f64>, _>(column)
    }
}

#[track_caller]
fn assert_same_utilization(
    got: &BTreeMap<(String, String), Utilization>,
    want: &BTreeMap<(String, String), Utilization>,
    what: &str,
) {
    assert!(want.len() > 100, "the truth should have status rows: {}", want.len());
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>(), "{what}: the same agents and buckets");
    let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
        (None, None) => true,
        _ => false,
    };
    for (key, w) in want {
        let g = &got[key];
        let same = close(g.occupancy, w.occupancy)
            && close(g.handle_per_on_queue, w.handle_per_on_queue)
            && Utilization { occupancy: None, handle_per_on_queue: None, ..g.clone() }
                == Utilization { occupancy: None, handle_per_on_queue: None, ..w.clone() };
        assert!(same, "{what} {key:?}:\n  view:  {g:?}\n  truth: {w:?}");
    }
}

#[tokio::test]
async fn the_sqlite_utilization_view_equals_arithmetic_on_the_truth() {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("util.db");
    extract(&sim, &mixed(), &format!("sqlite:{}", db.display())).await;
    let url = format!("sqlite://{}?mode=ro", db.display());
    let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    let casts: Vec<String> = VIEW_COLUMNS
        .split(", ")
        .map(|c| {
            if c == "handle_count" {
                format!("CAST({c} AS INTEGER) AS {c}")
            } else {
                format!("CAST({c} AS REAL) AS {c}")
            }
        })
        .collect();
    let sql = format!(
        "SELECT user_id, interval_start, {} FROM agent_utilization WHERE org = 'default' AND granularity = 'PT30M'",
        casts.join(", ")
    );
    let rows = sqlx::query(&sql).fetch_all(&mut conn).await.unwrap();
    let got = rows.iter().map(|r| ((r.get("user_id"), r.get("interval_start")), utilization_of(r))).collect();
    assert_same_utilization(&got, &expected_utilization(&sim, &mixed()), "sqlite");
}

#[sqlx::test(migrations = false)]
async fn the_postgres_utilization_view_equals_arithmetic_on_the_truth(
    _pool_opts: sqlx::postgres::PgPoolOptions,
    opts: sqlx::postgres::PgConnectOptions,
) {
    let sim = Sim::small().await;
    extract(&sim, &mixed(), &pg_url(&opts)).await;
    let pool = sqlx::PgPool::connect_with(opts).await.unwrap();
    let casts: Vec<String> = VIEW_COLUMNS
        .split(", ")
        .map(|c| if c == "handle_count" { format!("{c}::bigint AS {c}") } else { format!("{c}::float8 AS {c}") })
        .collect();
    let sql = format!(
        "SELECT user_id::text AS user_id, to_char(interval_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS start, {} \
         FROM agent_utilization WHERE org = 'default' AND granularity = 'PT30M'",
        casts.join(", ")
    );
    let rows = sqlx::query(&sql).fetch_all(&pool).await.unwrap();
    let got = rows.iter().map(|r| ((r.get("user_id"), r.get("start")), utilization_of(r))).collect();
    assert_same_utilization(&got, &expected_utilization(&sim, &mixed()), "postgres");
}
