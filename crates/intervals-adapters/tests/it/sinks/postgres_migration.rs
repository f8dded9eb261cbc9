//! Migration 5 (compact grains) against a real server: a database written by the previous schema
//! (migrations 1 to 4, grains in `agent_intervals.metrics`) is converted in place, and every view
//! gives the same rows, columns and types before and after; metrics and statistics without typed
//! columns are kept, before and after the conversion.

use std::borrow::Cow;
use std::path::Path;

use intervals_adapters::sinks::PostgresSink;
use intervals_app::Sink;
use intervals_domain::{MetricName, MetricRow, Stats};
use serde_json::json;
use sqlx::migrate::Migrator;
use sqlx::PgPool;

use super::support::{key, query, stats_row, status_query, status_row, window, AGENT_A, AGENT_B, DAY, ORG, QUEUE_1};

const NIL: &str = "00000000-0000-0000-0000-000000000000";

/// A grain as the previous sink stored it: user_id, media_type, queue_id, granularity,
/// interval_start, interval_end, what it shows, metrics.
type OldGrain = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    serde_json::Value,
);
/// A grain of `interval_grains`: media type and granularity, handle_count, acw_min, other_metrics.
type Placed = (String, Option<i32>, Option<f64>, Option<serde_json::Value>);

/// Applies the migrations before `version` only: the schema a previous release left.
async fn migrate_before(pool: &PgPool, version: i64) {
    let all = Migrator::new(Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))).await.unwrap();
    let old: Vec<_> = all.migrations.iter().filter(|m| m.version < version).cloned().collect();
    assert_eq!(old.len(), 4, "migrations 1 to 4 precede the compact grains");
    let migrator = Migrator { migrations: Cow::Owned(old), ..all };
    migrator.run(pool).await.unwrap();
}

/// Grains as the previous sink wrote them: the typed keys, keys and statistics without typed
/// columns, a count beyond int4, fractional values, status keys (typed and not), a queue grain
/// without user, and buckets whose end is and is not the granularity's length after the start.
async fn old_grains(pool: &PgPool) {
    let rows: [OldGrain; 8] = [
        (
            AGENT_A,
            "voice",
            NIL,
            "PT30M",
            "2025-03-10T09:00:00Z",
            "2025-03-10T09:30:00Z",
            "conversation, typed",
            json!({"tHandle": {"count": 5, "sum": 1450300, "min": 95000, "max": 612000},
                   "tAcw": {"count": 4, "sum": 120000.5, "min": 0.30000000000000004, "max": 60000},
                   "tHeldComplete": {"count": 1, "sum": 5000, "min": 5000, "max": 5000},
                   "tTalkComplete": {"count": 5, "sum": 1200000, "min": 90000, "max": 500000},
                   "nConnected": {"count": 6}}),
        ),
        (
            AGENT_A,
            "chat",
            NIL,
            "PT30M",
            "2025-03-10T09:00:00Z",
            "2025-03-10T09:30:00Z",
            "fallbacks and statistics without columns",
            json!({"tHandle": {"count": 2, "sum": 3000, "ratio": 0.25},
                   "tHeld": {"count": 3, "sum": 6000},
                   "tTalk": {"count": 2, "sum": 4000, "min": 1000, "max": 3000},
                   "nConnected": {"count": 3000000000_u64},
                   "oServiceLevel": {"ratio": 0.8, "numerator": 8, "denominator": 10, "target": 0.8}}),
        ),
        (
            AGENT_A,
            "",
            NIL,
            "PT30M",
            "2025-03-10T09:00:00Z",
            "2025-03-10T09:30:00Z",
            "status, typed and not",
            json!({"tAgentRoutingStatus:IDLE": {"sum": 600000},
                   "tAgentRoutingStatus:INTERACTING": {"sum": 1100000.5},
                   "tAgentRoutingStatus:COMMUNICATING": {"sum": 100000},
                   "tAgentRoutingStatus:SOMETHING_NEW": {"sum": 1},
                   "tSystemPresence:ON_QUEUE": {"sum": 1800000},
                   "tOrganizationPresence:6a3f1c20-0006-4a5e-9c1d-5f0e8d7b0006": {"sum": 1800000}}),
        ),
        (
            AGENT_B,
            "",
            NIL,
            "PT30M",
            "2025-03-10T09:30:00Z",
            "2025-03-10T10:00:00Z",
            "status with a count (no column for it) and conversation grouped by user alone",
            json!({"tAgentRoutingStatus:IDLE": {"count": 2, "sum": 300000},
                   "tSystemPresence:ON_QUEUE": {"sum": 1800000},
                   "tHandle": {"count": 1, "sum": 200000, "min": 200000, "max": 200000}}),
        ),
        (
            NIL,
            "voice",
            QUEUE_1,
            "PT30M",
            "2025-03-10T09:00:00Z",
            "2025-03-10T09:30:00Z",
            "a queue grain",
            json!({"tHandle": {"count": 9, "sum": 9000, "min": 100, "max": 5000}}),
        ),
        (
            AGENT_B,
            "voice",
            NIL,
            "P1D",
            "2025-03-30T00:00:00Z",
            "2025-03-30T23:00:00Z",
            "a 23-hour local day",
            json!({"tHandle": {"count": 1, "sum": 10}}),
        ),
        (
            AGENT_B,
            "voice",
            NIL,
            "P1D",
            "2025-03-31T00:00:00Z",
            "2025-04-01T00:00:00Z",
            "a 24-hour day",
            json!({"tAcw": {"sum": 20}}),
        ),
        (
            AGENT_B,
            "email",
            NIL,
            "PT15M",
            "2025-03-10T09:15:00Z",
            "2025-03-10T09:30:00Z",
            "an empty statistics object",
            json!({"tHandle": {}, "tAcw": {"min": 7}}),
        ),
    ];
    for (user, media, queue, granularity, start, end, _why, metrics) in rows {
        sqlx::query(
            "INSERT INTO agent_intervals (org, user_id, media_type, queue_id, granularity, interval_start, \
             interval_end, metrics, fetched_at) \
             VALUES ($1, $2::uuid, $3, $4::uuid, $5, $6::timestamptz, $7::timestamptz, $8, '2025-03-11T00:00:00Z')",
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
    for k in [
        "tAgentRoutingStatus:IDLE",
        "tAgentRoutingStatus:INTERACTING",
        "tAgentRoutingStatus:COMMUNICATING",
        "tAgentRoutingStatus:SOMETHING_NEW",
        "tSystemPresence:ON_QUEUE",
        "tOrganizationPresence:6a3f1c20-0006-4a5e-9c1d-5f0e8d7b0006",
    ] {
        sqlx::query("INSERT INTO qualified_metric_keys (org, key) VALUES ($1, $2)")
            .bind(ORG)
            .bind(k)
            .execute(pool)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO users (org, id, name, state, fetched_at) VALUES ($1, $2::uuid, 'Ada', 'active', now())")
        .bind(ORG)
        .bind(AGENT_A)
        .execute(pool)
        .await
        .unwrap();
}

/// Every row of `sql`'s result as text, sorted: what the view answers, value for value.
async fn rows_as_text(pool: &PgPool, sql: &str) -> Vec<String> {
    sqlx::query_scalar(&format!("SELECT t::text FROM ({sql}) AS t ORDER BY 1")).fetch_all(pool).await.unwrap()
}

/// The answers of every view, and their columns with types.
async fn views(pool: &PgPool) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (name, sql) in [
        ("interval_metrics", "SELECT * FROM interval_metrics"),
        ("agent_interval_summary", "SELECT * FROM agent_interval_summary"),
        ("agent_utilization", "SELECT * FROM agent_utilization"),
        (
            "agent_intervals",
            "SELECT org, user_id, media_type, queue_id, granularity, interval_start, interval_end, metrics, \
             fetched_at FROM agent_intervals",
        ),
    ] {
        out.push((name.to_owned(), rows_as_text(pool, sql).await));
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text || ' ' || data_type::text FROM information_schema.columns \
             WHERE table_name = $1 ORDER BY ordinal_position",
        )
        .bind(name)
        .fetch_all(pool)
        .await
        .unwrap();
        out.push((format!("{name} columns"), columns));
    }
    out
}

#[sqlx::test(migrations = false)]
async fn migration_5_converts_a_database_of_the_previous_schema_and_the_views_answer_the_same(pool: PgPool) {
    migrate_before(&pool, 20250301000005).await;
    old_grains(&pool).await;
    let before = views(&pool).await;
    assert_eq!(before[0].1.len(), 24, "interval_metrics before: {:#?}", before[0].1);
    assert_eq!(before[4].1.len(), 2, "agent_utilization before: {:#?}", before[4].1);

    // Opening the sink applies migration 5.
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    let after = views(&pool).await;
    for ((name, was), (_, is)) in before.iter().zip(&after) {
        assert_eq!(is, was, "{name}");
    }
    let kind: String = sqlx::query_scalar(
        "SELECT table_type::text FROM information_schema.tables WHERE table_name = 'agent_intervals'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(kind, "VIEW");

    // Where the values went: typed columns when every statistic has one, else other_metrics.
    let placed: Vec<Placed> = sqlx::query_as(
        "SELECT media_type || ' ' || granularity, handle_count, acw_min, other_metrics FROM interval_grains \
         WHERE user_id = $1::uuid ORDER BY interval_start, media_type, granularity",
    )
    .bind(AGENT_A)
    .fetch_all(&pool)
    .await
    .unwrap();
    let find = |what: &str| placed.iter().find(|p| p.0 == what).unwrap_or_else(|| panic!("{what}: {placed:#?}"));
    assert_eq!(find("voice PT30M").1, Some(5));
    assert_eq!(find("voice PT30M").2, Some(0.30000000000000004));
    assert_eq!(find("voice PT30M").3, None, "every key of the typed grain has its columns");
    assert_eq!(
        find("chat PT30M").3,
        Some(json!({"tHandle": {"count": 2, "sum": 3000, "ratio": 0.25}, "tHeld": {"count": 3, "sum": 6000},
                    "tTalk": {"count": 2, "sum": 4000, "min": 1000, "max": 3000},
                    "nConnected": {"count": 3000000000_u64},
                    "oServiceLevel": {"ratio": 0.8, "numerator": 8, "denominator": 10, "target": 0.8}}))
    );
    let ends: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT granularity || ' ' || to_char(interval_start AT TIME ZONE 'UTC', 'MM-DD'), \
                to_char(interval_end AT TIME ZONE 'UTC', 'MM-DD HH24:MI') FROM interval_grains \
         WHERE granularity = 'P1D' ORDER BY interval_start",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        ends,
        vec![("P1D 03-30".to_owned(), Some("03-30 23:00".to_owned())), ("P1D 03-31".to_owned(), None)],
        "an end is stored only when it is not the granularity's length after the start"
    );

    // The converted store takes writes as usual: a re-read of the status window replaces the
    // status keys (typed and not) and keeps the conversation metrics on the same grain.
    let status = status_query();
    let nine = "2025-03-10T09:00:00Z";
    sink.write_window(
        &key(&status, DAY.0, DAY.1),
        &[
            status_row(AGENT_A, nine, "tAgentRoutingStatus", "IDLE", 1.0),
            status_row(AGENT_B, "2025-03-10T09:30:00Z", "tSystemPresence", "ON_QUEUE", 2.0),
        ],
    )
    .await
    .unwrap();
    let metrics: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT metrics FROM agent_intervals WHERE media_type = '' AND granularity = 'PT30M' ORDER BY user_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        metrics,
        vec![
            json!({"tAgentRoutingStatus:IDLE": {"sum": 1},
                   "tOrganizationPresence:6a3f1c20-0006-4a5e-9c1d-5f0e8d7b0006": {"sum": 1800000}}),
            json!({"tSystemPresence:ON_QUEUE": {"sum": 2},
                   "tHandle": {"count": 1, "sum": 200000, "min": 200000, "max": 200000}}),
        ]
    );
}

#[sqlx::test(migrations = false)]
async fn any_metric_and_statistic_is_stored_and_shown_by_interval_metrics(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    let q = query("tHandle,tAcw,nTransferred,nConnected", "userId,mediaType", &[]);
    let nine = "2025-03-10T09:00:00Z";
    let with =
        |count: Option<u64>, sum: Option<f64>, ratio: Option<f64>| Stats { count, sum, ratio, ..Stats::default() };
    let rows = vec![
        // tHandle with a statistic that has no column: kept whole in other_metrics.
        stats_row(&[AGENT_A, "voice"], nine, "tHandle", with(Some(2), Some(3000.0), Some(0.5))),
        // A metric without typed columns.
        stats_row(&[AGENT_A, "voice"], nine, "nTransferred", with(Some(4), None, None)),
        // A count beyond int4.
        stats_row(&[AGENT_A, "voice"], nine, "nConnected", with(Some(3_000_000_000), None, None)),
        // A typed one, with a qualifier: not the typed key.
        MetricRow::new(
            vec![AGENT_A.to_owned(), "voice".to_owned()],
            window(nine, "2025-03-10T09:30:00Z"),
            MetricName::parse("tAcw").unwrap(),
            Some("x".to_owned()),
            with(Some(1), Some(1.5), None),
        ),
        stats_row(&[AGENT_B, "voice"], nine, "tAcw", with(Some(1), Some(0.1 + 0.2), None)),
    ];
    sink.write_window(&key(&q, DAY.0, DAY.1), &rows).await.unwrap();
    let long: Vec<(String, String, Option<i64>, Option<String>)> =
        sqlx::query_as("SELECT user_id::text, metric, count, sum::text FROM interval_metrics ORDER BY user_id, metric")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        long,
        vec![
            (AGENT_A.to_owned(), "nConnected".to_owned(), Some(3_000_000_000), None),
            (AGENT_A.to_owned(), "nTransferred".to_owned(), Some(4), None),
            (AGENT_A.to_owned(), "tAcw:x".to_owned(), Some(1), Some("1.5".to_owned())),
            (AGENT_A.to_owned(), "tHandle".to_owned(), Some(2), Some("3000".to_owned())),
            (AGENT_B.to_owned(), "tAcw".to_owned(), Some(1), Some("0.30000000000000004".to_owned())),
        ]
    );
    let grains: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT metrics FROM agent_intervals ORDER BY user_id").fetch_all(&pool).await.unwrap();
    assert_eq!(
        grains,
        vec![
            json!({"tHandle": {"count": 2, "sum": 3000, "ratio": 0.5}, "nTransferred": {"count": 4},
                   "nConnected": {"count": 3000000000_u64}, "tAcw:x": {"count": 1, "sum": 1.5}}),
            json!({"tAcw": {"count": 1, "sum": 0.30000000000000004}}),
        ]
    );
    let typed: (Option<i32>, Option<f64>, Option<i32>) =
        sqlx::query_as("SELECT handle_count, acw_sum, connected_count FROM interval_grains WHERE user_id = $1::uuid")
            .bind(AGENT_A)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(typed, (None, None, None), "none of A's values fits its typed columns");

    // A re-read where tHandle now fits its columns moves it there, and the window's other keys
    // that no longer come back are gone.
    sink.write_window(
        &key(&q, DAY.0, DAY.1),
        &[stats_row(&[AGENT_A, "voice"], nine, "tHandle", with(Some(3), Some(4000.0), None))],
    )
    .await
    .unwrap();
    let grains: Vec<serde_json::Value> =
        sqlx::query_scalar("SELECT metrics FROM agent_intervals ORDER BY user_id").fetch_all(&pool).await.unwrap();
    assert_eq!(grains, vec![json!({"tHandle": {"count": 3, "sum": 4000}})]);
    let other: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT other_metrics FROM interval_grains").fetch_one(&pool).await.unwrap();
    assert_eq!(other, None);
}
