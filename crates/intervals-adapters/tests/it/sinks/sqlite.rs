//! The SQLite sink on temporary files: storage shape, window replace, atomic checkpoints,
//! concurrency, directory upserts and refusing foreign schemas.

use std::path::Path;
use std::sync::Arc;

use intervals_adapters::sinks::SqliteSink;
use intervals_app::{CheckpointStore, DirectorySink, Sink, SinkError, WriteStats};
use intervals_domain::{Queue, Stats, User};
use serde_json::json;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use super::support::{key, query, row, stats_row, window, AGENT_A, AGENT_B, AGENT_C, ORG, QUEUE_1};

/// (user_id, metric, count, sum, max) from `interval_metrics`.
type LongRow = (String, String, Option<i64>, Option<f64>, Option<f64>);
/// (user_id, handle_ms, handle_count, acw_ms, hold_ms, talk_ms) from `agent_interval_summary`.
type SummaryRow = (String, Option<f64>, Option<i64>, Option<f64>, Option<f64>, Option<f64>);
/// Every column of `agent_intervals` but fetched_at.
type StoredRow = (String, String, String, String, String, String, String, String);

const DAY: (&str, &str) = ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z");
const NEXT_DAY: (&str, &str) = ("2025-03-11T00:00:00Z", "2025-03-12T00:00:00Z");

async fn db(path: &Path) -> SqlitePool {
    SqlitePool::connect_with(SqliteConnectOptions::new().filename(path)).await.unwrap()
}

/// (user_id, media_type, queue_id, interval_start, metrics) of every stored grain, in key order.
async fn stored(path: &Path) -> Vec<(String, String, String, String, serde_json::Value)> {
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT user_id, media_type, queue_id, interval_start, metrics FROM agent_intervals \
         ORDER BY interval_start, user_id, media_type, queue_id",
    )
    .fetch_all(&db(path).await)
    .await
    .unwrap();
    rows.into_iter().map(|(u, m, q, s, j)| (u, m, q, s, serde_json::from_str(&j).unwrap())).collect()
}

fn grain(
    user: &str,
    media: &str,
    start: &str,
    metrics: serde_json::Value,
) -> (String, String, String, String, serde_json::Value) {
    (user.to_owned(), media.to_owned(), String::new(), start.to_owned(), metrics)
}

#[tokio::test]
async fn stores_one_row_per_grain_and_reads_back_through_both_views() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intervals.db");
    let sink = SqliteSink::open(&path).await.unwrap();
    assert_eq!(sink.describe(), format!("sqlite:{}", path.display()));
    let q = query("tHandle,tAcw,tHeldComplete", "userId,mediaType", &[]);
    let handle =
        Stats { count: Some(5), sum: Some(1450300.0), min: Some(95000.0), max: Some(612000.0), ..Stats::default() };
    let rows = vec![
        stats_row(&[AGENT_A, "voice"], "2025-03-10T09:00:00Z", "tHandle", handle),
        row(&[AGENT_A, "voice"], "2025-03-10T09:00:00Z", "tAcw", 4, 120000.0),
        row(&[AGENT_B, "chat"], "2025-03-10T09:30:00Z", "tHeldComplete", 1, 5000.5),
    ];
    let stats = sink.write_window(&key(&q, DAY.0, DAY.1), &rows).await.unwrap();
    assert_eq!(stats, WriteStats { values_written: 3, rows_deleted: 0 });

    let pool = db(&path).await;
    let grains: Vec<StoredRow> = sqlx::query_as(
        "SELECT org, user_id, media_type, queue_id, granularity, interval_start, interval_end, metrics \
         FROM agent_intervals ORDER BY interval_start",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let expected_a =
        r#"{"tAcw":{"count":4,"sum":120000},"tHandle":{"count":5,"sum":1450300,"min":95000,"max":612000}}"#;
    assert_eq!(
        grains,
        vec![
            (
                ORG.into(),
                AGENT_A.into(),
                "voice".into(),
                "".into(),
                "PT30M".into(),
                "2025-03-10T09:00:00Z".into(),
                "2025-03-10T09:30:00Z".into(),
                expected_a.into()
            ),
            (
                ORG.into(),
                AGENT_B.into(),
                "chat".into(),
                "".into(),
                "PT30M".into(),
                "2025-03-10T09:30:00Z".into(),
                "2025-03-10T10:00:00Z".into(),
                r#"{"tHeldComplete":{"count":1,"sum":5000.5}}"#.into()
            ),
        ]
    );

    let long: Vec<LongRow> = sqlx::query_as(
        "SELECT user_id, metric, count, CAST(sum AS REAL), CAST(max AS REAL) FROM interval_metrics \
         ORDER BY user_id, metric",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        long,
        vec![
            (AGENT_A.into(), "tAcw".into(), Some(4), Some(120000.0), None),
            (AGENT_A.into(), "tHandle".into(), Some(5), Some(1450300.0), Some(612000.0)),
            (AGENT_B.into(), "tHeldComplete".into(), Some(1), Some(5000.5), None),
        ]
    );

    let summary: Vec<SummaryRow> = sqlx::query_as(
        "SELECT user_id, CAST(handle_ms AS REAL), handle_count, CAST(acw_ms AS REAL), CAST(hold_ms AS REAL), \
         CAST(talk_ms AS REAL) FROM agent_interval_summary ORDER BY user_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        summary,
        vec![
            (AGENT_A.into(), Some(1450300.0), Some(5), Some(120000.0), None, None),
            (AGENT_B.into(), None, None, None, Some(5000.5), None),
        ]
    );

    let checkpoints: Vec<(String, String, String, String, i64)> =
        sqlx::query_as("SELECT org, fingerprint, window_start, window_end, rows FROM ingest_windows")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(checkpoints, vec![(ORG.into(), q.fingerprint(), DAY.0.into(), DAY.1.into(), 3)]);
}

#[tokio::test]
async fn window_replace_updates_changes_removes_vanished_rows_and_a_rerun_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intervals.db");
    let sink = SqliteSink::open(&path).await.unwrap();
    let q = query("tHandle,tAcw", "userId,mediaType", &[]);
    let k = key(&q, DAY.0, DAY.1);
    let nine = "2025-03-10T09:00:00Z";
    let first = vec![
        row(&[AGENT_A, "voice"], nine, "tHandle", 5, 100.0),
        row(&[AGENT_A, "voice"], nine, "tAcw", 1, 10.0),
        row(&[AGENT_B, "voice"], nine, "tHandle", 2, 20.0),
        row(&[AGENT_C, "voice"], "2025-03-10T09:30:00Z", "tHandle", 1, 1.0),
    ];
    sink.write_window(&k, &first).await.unwrap();

    let second =
        vec![row(&[AGENT_A, "voice"], nine, "tHandle", 6, 120.0), row(&[AGENT_B, "voice"], nine, "tHandle", 2, 20.0)];
    let stats = sink.write_window(&k, &second).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    let expected = vec![
        grain(AGENT_A, "voice", nine, json!({"tHandle": {"count": 6, "sum": 120}})),
        grain(AGENT_B, "voice", nine, json!({"tHandle": {"count": 2, "sum": 20}})),
    ];
    assert_eq!(stored(&path).await, expected);

    // A re-run with the same answer touches no row.
    let pool = db(&path).await;
    sqlx::query("UPDATE agent_intervals SET fetched_at = 'untouched'").execute(&pool).await.unwrap();
    let stats = sink.write_window(&k, &second).await.unwrap();
    assert_eq!(stats.rows_deleted, 0);
    assert_eq!(stored(&path).await, expected);
    let touched: i64 = sqlx::query_scalar("SELECT count(*) FROM agent_intervals WHERE fetched_at <> 'untouched'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(touched, 0);
    let checkpoints: i64 = sqlx::query_scalar("SELECT count(*) FROM ingest_windows").fetch_one(&pool).await.unwrap();
    assert_eq!(checkpoints, 1);
}

#[tokio::test]
async fn window_replace_keeps_the_metrics_of_other_queries_on_the_same_grain() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intervals.db");
    let sink = SqliteSink::open(&path).await.unwrap();
    let handle = query("tHandle", "userId,mediaType", &[]);
    let acw = query("tAcw", "userId,mediaType", &[]);
    let nine = "2025-03-10T09:00:00Z";
    sink.write_window(
        &key(&handle, DAY.0, DAY.1),
        &[row(&[AGENT_A, "voice"], nine, "tHandle", 5, 100.0), row(&[AGENT_B, "voice"], nine, "tHandle", 1, 7.0)],
    )
    .await
    .unwrap();
    sink.write_window(&key(&acw, DAY.0, DAY.1), &[row(&[AGENT_A, "voice"], nine, "tAcw", 3, 30.0)]).await.unwrap();
    assert_eq!(
        stored(&path).await,
        vec![
            grain(
                AGENT_A,
                "voice",
                nine,
                json!({"tAcw": {"count": 3, "sum": 30}, "tHandle": {"count": 5, "sum": 100}})
            ),
            grain(AGENT_B, "voice", nine, json!({"tHandle": {"count": 1, "sum": 7}})),
        ]
    );

    // tHandle no longer returned for A: A keeps tAcw; B changes.
    let stats = sink
        .write_window(&key(&handle, DAY.0, DAY.1), &[row(&[AGENT_B, "voice"], nine, "tHandle", 2, 9.0)])
        .await
        .unwrap();
    assert_eq!(stats.rows_deleted, 0);
    assert_eq!(
        stored(&path).await,
        vec![
            grain(AGENT_A, "voice", nine, json!({"tAcw": {"count": 3, "sum": 30}})),
            grain(AGENT_B, "voice", nine, json!({"tHandle": {"count": 2, "sum": 9}})),
        ]
    );

    // tAcw gone too: A has no metric left and is deleted; B is not tAcw's business.
    let stats = sink.write_window(&key(&acw, DAY.0, DAY.1), &[]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(stored(&path).await, vec![grain(AGENT_B, "voice", nine, json!({"tHandle": {"count": 2, "sum": 9}}))]);
}

#[tokio::test]
async fn window_replace_stays_inside_the_window_the_filters_and_the_ungrouped_dimensions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intervals.db");
    let sink = SqliteSink::open(&path).await.unwrap();
    let all = query("tHandle", "userId,mediaType", &[]);
    let voice = query("tHandle", "userId,mediaType", &["voice"]);
    let per_user = query("tHandle", "userId", &[]);
    let nine = "2025-03-10T09:00:00Z";
    let next_nine = "2025-03-11T09:00:00Z";
    sink.write_window(
        &key(&all, DAY.0, DAY.1),
        &[row(&[AGENT_A, "voice"], nine, "tHandle", 1, 1.0), row(&[AGENT_A, "chat"], nine, "tHandle", 2, 2.0)],
    )
    .await
    .unwrap();
    sink.write_window(&key(&all, NEXT_DAY.0, NEXT_DAY.1), &[row(&[AGENT_A, "voice"], next_nine, "tHandle", 3, 3.0)])
        .await
        .unwrap();
    sink.write_window(&key(&per_user, DAY.0, DAY.1), &[row(&[AGENT_A], nine, "tHandle", 4, 4.0)]).await.unwrap();
    assert_eq!(stored(&path).await.len(), 4);

    // --media-type voice, nothing came back: only the voice grain of that day goes.
    let stats = sink.write_window(&key(&voice, DAY.0, DAY.1), &[]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(
        stored(&path).await,
        vec![
            grain(AGENT_A, "", nine, json!({"tHandle": {"count": 4, "sum": 4}})),
            grain(AGENT_A, "chat", nine, json!({"tHandle": {"count": 2, "sum": 2}})),
            grain(AGENT_A, "voice", next_nine, json!({"tHandle": {"count": 3, "sum": 3}})),
        ]
    );

    // Grouped by user only: its scope is media_type = '' and nothing else.
    let stats = sink.write_window(&key(&per_user, DAY.0, DAY.1), &[]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(
        stored(&path).await,
        vec![
            grain(AGENT_A, "chat", nine, json!({"tHandle": {"count": 2, "sum": 2}})),
            grain(AGENT_A, "voice", next_nine, json!({"tHandle": {"count": 3, "sum": 3}})),
        ]
    );
}

#[tokio::test]
async fn a_failing_checkpoint_leaves_neither_rows_nor_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intervals.db");
    let sink = SqliteSink::open(&path).await.unwrap();
    let q = query("tHandle", "userId,mediaType", &[]);
    let nine = "2025-03-10T09:00:00Z";
    sink.write_window(&key(&q, DAY.0, DAY.1), &[row(&[AGENT_A, "voice"], nine, "tHandle", 5, 100.0)]).await.unwrap();
    let before = stored(&path).await;

    let pool = db(&path).await;
    for event in ["INSERT", "UPDATE"] {
        sqlx::query(&format!(
            "CREATE TRIGGER fail_checkpoint_{event} BEFORE {event} ON ingest_windows \
             BEGIN SELECT RAISE(ABORT, 'injected checkpoint failure'); END"
        ))
        .execute(&pool)
        .await
        .unwrap();
    }
    pool.close().await;

    // A new window: its rows must not appear.
    let err = sink
        .write_window(
            &key(&q, NEXT_DAY.0, NEXT_DAY.1),
            &[row(&[AGENT_A, "voice"], "2025-03-11T09:00:00Z", "tHandle", 1, 1.0)],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, SinkError::Write { message, .. } if message.contains("injected checkpoint failure")),
        "{err}"
    );
    // A rewrite of a done window: its old values must stay.
    let err = sink
        .write_window(&key(&q, DAY.0, DAY.1), &[row(&[AGENT_B, "voice"], nine, "tHandle", 9, 9.0)])
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Write { .. }));

    assert_eq!(stored(&path).await, before);
    let done = sink.completed_windows(ORG, &q.fingerprint(), window(DAY.0, "2025-03-20T00:00:00Z")).await.unwrap();
    assert_eq!(done, vec![window(DAY.0, DAY.1)]);
}

fn day_rows(day: &str, agents: usize) -> Vec<intervals_domain::MetricRow> {
    let mut rows = Vec::new();
    for a in 0..agents {
        let user = format!("0a1b2c3d-0000-4000-8000-{a:012x}");
        for h in 0..48 {
            let start = format!("{day}T{:02}:{:02}:00Z", h / 2, (h % 2) * 30);
            rows.push(row(&[&user, "voice"], &start, "tHandle", 1 + h as u64, 1000.0 * h as f64));
            rows.push(row(&[&user, "voice"], &start, "tAcw", 1, 10.0));
        }
    }
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_different_windows_at_the_same_time() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intervals.db");
    let sink = Arc::new(SqliteSink::open(&path).await.unwrap());
    let q = query("tHandle,tAcw", "userId,mediaType", &[]);
    let tasks: Vec<_> = [(DAY, "2025-03-10"), (NEXT_DAY, "2025-03-11")]
        .into_iter()
        .map(|((start, end), day)| {
            let (sink, k, rows) = (sink.clone(), key(&q, start, end), day_rows(day, 40));
            tokio::spawn(async move { sink.write_window(&k, &rows).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().values_written, 40 * 48 * 2);
    }
    assert_eq!(stored(&path).await.len(), 2 * 40 * 48);
    let done = sink.completed_windows(ORG, &q.fingerprint(), window(DAY.0, NEXT_DAY.1)).await.unwrap();
    assert_eq!(done, vec![window(DAY.0, DAY.1), window(NEXT_DAY.0, NEXT_DAY.1)]);
}

#[tokio::test]
async fn completed_windows_are_those_of_the_org_and_fingerprint_inside_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let sink = SqliteSink::open(dir.path().join("intervals.db")).await.unwrap();
    let q = query("tHandle", "userId", &[]);
    let other = query("tAcw", "userId", &[]);
    for (s, e) in [DAY, NEXT_DAY, ("2025-03-12T00:00:00Z", "2025-03-13T00:00:00Z")] {
        sink.write_window(&key(&q, s, e), &[]).await.unwrap();
    }
    sink.write_window(&key(&other, DAY.0, DAY.1), &[]).await.unwrap();
    let in_range = sink.completed_windows(ORG, &q.fingerprint(), window(DAY.0, "2025-03-12T00:00:00Z")).await.unwrap();
    assert_eq!(in_range, vec![window(DAY.0, DAY.1), window(NEXT_DAY.0, NEXT_DAY.1)]);
    assert!(sink.completed_windows("apac", &q.fingerprint(), window(DAY.0, NEXT_DAY.1)).await.unwrap().is_empty());
}

fn user(id: &str, name: &str) -> User {
    User {
        id: id.into(),
        name: name.into(),
        email: Some(format!("{name}@example.com")),
        state: "active".into(),
        division_id: None,
        division_name: None,
    }
}

#[tokio::test]
async fn users_and_queues_are_upserted_by_org_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intervals.db");
    let sink = SqliteSink::open(&path).await.unwrap();
    assert_eq!(sink.write_users(ORG, &[user(AGENT_A, "ann"), user(AGENT_B, "bob")]).await.unwrap(), 2);
    assert_eq!(sink.write_users(ORG, &[user(AGENT_A, "anne")]).await.unwrap(), 1);
    let queue = Queue { id: QUEUE_1.into(), name: "Sales".into(), division_id: Some("d1".into()), division_name: None };
    assert_eq!(sink.write_queues(ORG, &[queue.clone(), queue]).await.unwrap(), 1);
    let pool = db(&path).await;
    let users: Vec<(String, String, String, Option<String>)> =
        sqlx::query_as("SELECT org, id, name, email FROM users ORDER BY id").fetch_all(&pool).await.unwrap();
    assert_eq!(
        users,
        vec![
            (ORG.into(), AGENT_A.into(), "anne".into(), Some("anne@example.com".into())),
            (ORG.into(), AGENT_B.into(), "bob".into(), Some("bob@example.com".into())),
        ]
    );
    let queues: Vec<(String, String, Option<String>, Option<String>)> =
        sqlx::query_as("SELECT id, name, division_id, division_name FROM queues").fetch_all(&pool).await.unwrap();
    assert_eq!(queues, vec![(QUEUE_1.into(), "Sales".into(), Some("d1".into()), None)]);
}

#[tokio::test]
async fn a_table_of_the_same_name_without_our_history_is_a_schema_error_and_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("theirs.db");
    let pool =
        SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path).create_if_missing(true)).await.unwrap();
    sqlx::query("CREATE TABLE agent_intervals (id INTEGER PRIMARY KEY, note TEXT)").execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO agent_intervals (note) VALUES ('keep me')").execute(&pool).await.unwrap();

    let err = SqliteSink::open(&path).await.unwrap_err();
    assert!(matches!(&err, SinkError::Schema { message, .. } if message.contains("agent_intervals")), "{err}");

    let tables: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(tables, vec!["agent_intervals".to_owned()]);
    let note: String = sqlx::query_scalar("SELECT note FROM agent_intervals").fetch_one(&pool).await.unwrap();
    assert_eq!(note, "keep me");
}

#[tokio::test]
async fn a_missing_folder_is_reported_and_reopening_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder").join("intervals.db");
    let err = SqliteSink::open(&missing).await.unwrap_err();
    assert!(matches!(&err, SinkError::Unavailable { message, .. } if message.contains("does not exist")), "{err}");

    let path = dir.path().join("intervals.db");
    let q = query("tHandle", "userId", &[]);
    let sink = SqliteSink::open(&path).await.unwrap();
    sink.write_window(&key(&q, DAY.0, DAY.1), &[row(&[AGENT_A], "2025-03-10T09:00:00Z", "tHandle", 1, 1.0)])
        .await
        .unwrap();
    drop(sink);
    let again = SqliteSink::open(&path).await.unwrap();
    assert_eq!(stored(&path).await.len(), 1);
    assert_eq!(again.completed_windows(ORG, &q.fingerprint(), window(DAY.0, DAY.1)).await.unwrap().len(), 1);
}
