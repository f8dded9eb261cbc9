//! SQLite migration 5 (compact grains) on a file: a store written by the previous schema (migrations
//! 1 to 4, every metric of a grain in `agent_intervals.metrics`) is converted in place, and every
//! view, and `agent_intervals` by its columns of before, gives the same rows, values and value types
//! before and after; metrics and statistics without typed columns are kept.

use std::borrow::Cow;
use std::path::Path;

use intervals_adapters::sinks::SqliteSink;
use intervals_app::Sink;
use serde_json::json;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use super::support::{key, status_query, status_row, AGENT_A, AGENT_B, DAY, ORG, QUEUE_1};

/// A grain as the previous sink stored it: user_id, media_type, queue_id, granularity,
/// interval_start, interval_end, what it shows, metrics (the text the sink wrote: keys sorted).
type OldGrain =
    (&'static str, &'static str, &'static str, &'static str, &'static str, &'static str, &'static str, &'static str);

/// A grain of schema v5: media type and granularity, handle_count, acw_min, other_metrics.
type Placed = (String, Option<i64>, Option<f64>, Option<String>);

async fn pool(path: &Path) -> SqlitePool {
    SqlitePool::connect_with(SqliteConnectOptions::new().filename(path).create_if_missing(true)).await.unwrap()
}

/// Applies the migrations before `version` only: the schema a previous release left.
async fn migrate_before(pool: &SqlitePool, version: i64) {
    let all = Migrator::new(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/sqlite"))).await.unwrap();
    let old: Vec<_> = all.migrations.iter().filter(|m| m.version < version).cloned().collect();
    assert_eq!(old.len(), 4, "migrations 1 to 4 precede the compact grains");
    let migrator = Migrator { migrations: Cow::Owned(old), ..all };
    migrator.run(pool).await.unwrap();
}

/// Grains as the previous sink wrote them: every typed key, keys and statistics without typed
/// columns, a count beyond 2^63, fractional values, status keys (typed and not, with and without a
/// count), a conversation query grouped by user alone on the status grain, a queue grain without
/// user, absent statistics, an empty statistics object, and buckets whose end is and is not the
/// granularity's length after the start.
const OLD: [OldGrain; 9] = [
    (
        AGENT_A,
        "voice",
        "",
        "PT30M",
        "2025-03-10T09:00:00Z",
        "2025-03-10T09:30:00Z",
        "conversation, typed",
        r#"{"nConnected":{"count":6},"tAcw":{"count":4,"sum":120000.5,"min":0.30000000000000004,"max":60000},"tHandle":{"count":5,"sum":1450300,"min":95000,"max":612000},"tHeldComplete":{"count":1,"sum":5000,"min":5000,"max":5000},"tTalkComplete":{"count":5,"sum":1200000,"min":90000,"max":500000}}"#,
    ),
    (
        AGENT_A,
        "chat",
        "",
        "PT30M",
        "2025-03-10T09:00:00Z",
        "2025-03-10T09:30:00Z",
        "fallbacks, statistics without columns, a count beyond 2^63",
        r#"{"nConnected":{"count":18446744073709551615},"oServiceLevel":{"ratio":0.8,"numerator":8,"denominator":10,"target":0.8},"tHandle":{"count":2,"sum":3000,"ratio":0.25},"tHeld":{"count":3,"sum":6000},"tTalk":{"count":2,"sum":4000,"min":1000,"max":3000}}"#,
    ),
    (
        AGENT_A,
        "",
        "",
        "PT30M",
        "2025-03-10T09:00:00Z",
        "2025-03-10T09:30:00Z",
        "status, typed and not",
        r#"{"tAgentRoutingStatus:COMMUNICATING":{"sum":100000},"tAgentRoutingStatus:IDLE":{"sum":600000},"tAgentRoutingStatus:INTERACTING":{"sum":1100000.5},"tAgentRoutingStatus:SOMETHING_NEW":{"sum":1},"tOrganizationPresence:6a3f1c20-0006-4a5e-9c1d-5f0e8d7b0006":{"sum":1800000},"tSystemPresence:ON_QUEUE":{"sum":1800000}}"#,
    ),
    (
        AGENT_B,
        "",
        "",
        "PT30M",
        "2025-03-10T09:30:00Z",
        "2025-03-10T10:00:00Z",
        "status with a count and conversation grouped by user alone",
        r#"{"tAgentRoutingStatus:IDLE":{"count":2,"sum":300000},"tHandle":{"count":1,"sum":200000,"min":200000,"max":200000},"tSystemPresence:ON_QUEUE":{"sum":1800000}}"#,
    ),
    (
        AGENT_B,
        "",
        "",
        "PT30M",
        "2025-03-10T10:00:00Z",
        "2025-03-10T10:30:00Z",
        "only status keys without columns",
        r#"{"tSystemPresence:SOMETHING_NEW":{"sum":5}}"#,
    ),
    (
        "",
        "voice",
        QUEUE_1,
        "PT30M",
        "2025-03-10T09:00:00Z",
        "2025-03-10T09:30:00Z",
        "a queue grain",
        r#"{"tHandle":{"count":9,"sum":9000,"min":100,"max":5000}}"#,
    ),
    (
        AGENT_B,
        "voice",
        "",
        "P1D",
        "2025-03-30T00:00:00Z",
        "2025-03-30T23:00:00Z",
        "a 23-hour local day",
        r#"{"tHandle":{"count":1,"sum":10}}"#,
    ),
    (
        AGENT_B,
        "voice",
        "",
        "P1D",
        "2025-03-31T00:00:00Z",
        "2025-04-01T00:00:00Z",
        "a 24-hour day",
        r#"{"tAcw":{"sum":20}}"#,
    ),
    (
        AGENT_B,
        "email",
        "",
        "PT15M",
        "2025-03-10T09:15:00Z",
        "2025-03-10T09:30:00Z",
        "an empty statistics object",
        r#"{"tAcw":{"min":7},"tHandle":{}}"#,
    ),
];

async fn old_grains(pool: &SqlitePool) {
    for (user, media, queue, granularity, start, end, _why, metrics) in OLD {
        sqlx::query(
            "INSERT INTO agent_intervals (org, user_id, media_type, queue_id, granularity, interval_start, \
             interval_end, metrics, fetched_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '2025-03-11T00:00:00Z')",
        )
        .bind(ORG)
        .bind(user)
        .bind(media)
        .bind(queue)
        .bind(granularity)
        .bind(start)
        .bind(end)
        .bind(metrics)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO users (org, id, name, state, fetched_at) VALUES (?1, ?2, 'Ada', 'active', '2025-03-11T00:00:00Z')",
    )
    .bind(ORG)
    .bind(AGENT_A)
    .execute(pool)
    .await
    .unwrap();
}

/// One value of a row as text with its type (a REAL by every bit: `{:?}` of the f64 read back).
fn typed_text(row: &sqlx::sqlite::SqliteRow, i: usize) -> String {
    use sqlx::{Row, TypeInfo, ValueRef};
    let raw = row.try_get_raw(i).unwrap();
    if raw.is_null() {
        return "NULL".to_owned();
    }
    match raw.type_info().name() {
        "INTEGER" => format!("integer {}", row.get::<i64, _>(i)),
        "REAL" => format!("real {:?}", row.get::<f64, _>(i)),
        "TEXT" => format!("text {:?}", row.get::<String, _>(i)),
        other => format!("{other} {:?}", row.get::<Vec<u8>, _>(i)),
    }
}

/// Every row of `view` (the named columns) as text, value by value with types, sorted.
async fn rows_as_text(pool: &SqlitePool, view: &str, columns: &[String]) -> Vec<String> {
    let rows = sqlx::query(&format!("SELECT {} FROM {view}", columns.join(", "))).fetch_all(pool).await.unwrap();
    let mut out: Vec<String> =
        rows.iter().map(|r| (0..columns.len()).map(|i| typed_text(r, i)).collect::<Vec<_>>().join(" | ")).collect();
    out.sort();
    out
}

/// The columns of a view or table with their declared types.
async fn columns(pool: &SqlitePool, name: &str) -> Vec<(String, String)> {
    sqlx::query_as("SELECT name, type FROM pragma_table_xinfo(?) ORDER BY cid")
        .bind(name)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// The answers of every view and of `agent_intervals` by the columns it had.
async fn views(pool: &SqlitePool) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for view in ["interval_metrics", "agent_interval_summary", "agent_utilization"] {
        let cols = columns(pool, view).await;
        let names: Vec<String> = cols.iter().map(|(n, _)| n.clone()).collect();
        out.push((view.to_owned(), rows_as_text(pool, view, &names).await));
        out.push((format!("{view} columns"), names));
    }
    let old: Vec<String> =
        ["org", "user_id", "media_type", "queue_id", "granularity", "interval_start", "interval_end", "fetched_at"]
            .map(str::to_owned)
            .to_vec();
    out.push(("agent_intervals".to_owned(), rows_as_text(pool, "agent_intervals", &old).await));
    out
}

/// Every number of `v` as text of 14 significant digits: SQLite writes a REAL with at most 16, so
/// the text `agent_intervals.metrics` shows for a REAL of 17 (0.30000000000000004) is rounded,
/// while the typed column and every view hold the exact value (compared above bit for bit); a
/// count beyond 2^63 - 1 (never sent by the API) is re-read by SQLite as a REAL.
fn rounded(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) => Value::String(format!("{:.13e}", n.as_f64().unwrap())),
        Value::Object(m) => Value::Object(m.into_iter().map(|(k, v)| (k, rounded(v))).collect()),
        other => other,
    }
}

/// `agent_intervals.metrics` of every grain, as JSON values (schema v5 writes the typed keys first,
/// then the others: the same object, its keys in another order when both kinds are there).
async fn metrics(pool: &SqlitePool) -> Vec<serde_json::Value> {
    let texts: Vec<String> = sqlx::query_scalar(
        "SELECT metrics FROM agent_intervals ORDER BY granularity, interval_start, user_id, media_type, queue_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    texts.iter().map(|t| rounded(serde_json::from_str(t).unwrap_or_else(|e| panic!("{t}: {e}")))).collect()
}

#[tokio::test]
async fn migration_5_converts_a_store_of_the_previous_schema_and_the_views_answer_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v4.db");
    let db = pool(&path).await;
    migrate_before(&db, 20250301000005).await;
    old_grains(&db).await;
    let before = views(&db).await;
    let metrics_before = metrics(&db).await;
    assert_eq!(before[0].1.len(), 25, "interval_metrics before: {:#?}", before[0].1);
    assert_eq!(before[4].1.len(), 3, "agent_utilization before: {:#?}", before[4].1);
    db.close().await;

    // Opening the sink applies migration 5.
    let sink = SqliteSink::open(&path).await.unwrap();
    let db = pool(&path).await;
    let after = views(&db).await;
    for ((name, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(is, was, "{name}");
    }
    assert_eq!(metrics(&db).await, metrics_before, "agent_intervals.metrics");
    let kind: String = sqlx::query_scalar("SELECT type FROM sqlite_master WHERE name = 'agent_intervals'")
        .fetch_one(&db)
        .await
        .unwrap();
    assert_eq!(kind, "table", "agent_intervals is still a table (its columns of before are generated)");

    // Where the values went: typed columns when every statistic has one, else other_metrics.
    let placed: Vec<Placed> = sqlx::query_as(
        "SELECT media_type || ' ' || granularity, handle_count, acw_min, other_metrics FROM agent_intervals \
         WHERE user_id = ?1 ORDER BY start_s, media_type, granularity",
    )
    .bind(AGENT_A)
    .fetch_all(&db)
    .await
    .unwrap();
    let find = |what: &str| placed.iter().find(|p| p.0 == what).unwrap_or_else(|| panic!("{what}: {placed:#?}"));
    assert_eq!(find("voice PT30M").1, Some(5));
    assert_eq!(find("voice PT30M").2, Some(0.30000000000000004));
    assert_eq!(find("voice PT30M").3, None, "every key of the typed grain has its columns");
    let chat: serde_json::Value = serde_json::from_str(find("chat PT30M").3.as_deref().unwrap()).unwrap();
    assert_eq!(
        chat,
        json!({"nConnected": {"count": 18446744073709551615_u64},
               "oServiceLevel": {"ratio": 0.8, "numerator": 8, "denominator": 10, "target": 0.8},
               "tHandle": {"count": 2, "sum": 3000, "ratio": 0.25}, "tHeld": {"count": 3, "sum": 6000},
               "tTalk": {"count": 2, "sum": 4000, "min": 1000, "max": 3000}})
    );
    let ends: Vec<(String, Option<i64>)> =
        sqlx::query_as("SELECT interval_start, end_s FROM agent_intervals WHERE granularity = 'P1D' ORDER BY start_s")
            .fetch_all(&db)
            .await
            .unwrap();
    assert_eq!(
        ends,
        vec![("2025-03-30T00:00:00Z".to_owned(), Some(1743375600)), ("2025-03-31T00:00:00Z".to_owned(), None)],
        "an end is stored only when it is not the granularity's length after the start"
    );

    // The converted store takes writes as usual: a re-read of the status window replaces the
    // status keys (typed and not) and keeps the conversation metrics on the same grain.
    let status = status_query();
    sink.write_window(
        &key(&status, DAY.0, DAY.1),
        &[
            status_row(AGENT_A, "2025-03-10T09:00:00Z", "tAgentRoutingStatus", "IDLE", 1.0),
            status_row(AGENT_B, "2025-03-10T09:30:00Z", "tSystemPresence", "ON_QUEUE", 2.0),
        ],
    )
    .await
    .unwrap();
    let grains: Vec<(String, String)> = sqlx::query_as(
        "SELECT user_id || ' ' || interval_start, metrics FROM agent_intervals WHERE media_type = '' \
         AND granularity = 'PT30M' ORDER BY user_id, start_s",
    )
    .fetch_all(&db)
    .await
    .unwrap();
    let grains: Vec<(String, serde_json::Value)> =
        grains.into_iter().map(|(k, m)| (k, serde_json::from_str(&m).unwrap())).collect();
    assert_eq!(
        grains,
        vec![
            (
                format!("{AGENT_A} 2025-03-10T09:00:00Z"),
                json!({"tAgentRoutingStatus:IDLE": {"sum": 1},
                       "tOrganizationPresence:6a3f1c20-0006-4a5e-9c1d-5f0e8d7b0006": {"sum": 1800000}})
            ),
            (
                format!("{AGENT_B} 2025-03-10T09:30:00Z"),
                json!({"tSystemPresence:ON_QUEUE": {"sum": 2},
                       "tHandle": {"count": 1, "sum": 200000, "min": 200000, "max": 200000}})
            ),
        ],
        "the status grain of 10:00, whose only key was a status key, is gone"
    );
}
