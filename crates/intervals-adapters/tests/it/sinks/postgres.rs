//! The PostgreSQL sink against a real server (`#[sqlx::test]`: a fresh database per test, from
//! DATABASE_URL): storage shape, window replace, atomic checkpoints, concurrency, directory
//! upserts, refusing foreign schemas, and connection errors without secrets.

use intervals_adapters::sinks::PostgresSink;
use intervals_app::{CheckpointStore, DirectorySink, Sink, SinkError, WriteStats};
use intervals_domain::{MetricName, MetricRow, Queue, Stats, User};
use serde_json::json;
use sqlx::PgPool;

use super::support::{key, query, row, stats_row, t, window, AGENT_A, AGENT_B, AGENT_C, ORG, QUEUE_1};

/// (user_id, metric, count, sum, max) from `interval_metrics`.
type LongRow = (String, String, Option<i64>, Option<f64>, Option<f64>);
/// (user_id, handle_ms, handle_count, acw_ms, hold_ms, talk_ms) from `agent_interval_summary`.
type SummaryRow = (String, Option<f64>, Option<i64>, Option<f64>, Option<f64>, Option<f64>);
/// (org, id, name, email, division_id) from `users`.
type UserRow = (String, String, String, Option<String>, Option<String>);

const DAY: (&str, &str) = ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z");
const NEXT_DAY: (&str, &str) = ("2025-03-11T00:00:00Z", "2025-03-12T00:00:00Z");
const NIL: &str = "00000000-0000-0000-0000-000000000000";

type Grain = (String, String, String, String, serde_json::Value);

/// (user_id, media_type, queue_id, interval_start, metrics) of every stored grain, in key order.
async fn stored(pool: &PgPool) -> Vec<Grain> {
    let rows: Vec<(String, String, String, String, String)> = sqlx::query_as(
        "SELECT user_id::text, media_type, queue_id::text, \
                to_char(interval_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), metrics::text \
         FROM agent_intervals ORDER BY interval_start, user_id, media_type, queue_id",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    rows.into_iter().map(|(u, m, q, s, j)| (u, m, q, s, serde_json::from_str(&j).unwrap())).collect()
}

fn grain(user: &str, media: &str, start: &str, metrics: serde_json::Value) -> Grain {
    (user.to_owned(), media.to_owned(), NIL.to_owned(), start.to_owned(), metrics)
}

#[sqlx::test(migrations = false)]
async fn stores_one_row_per_grain_and_reads_back_through_both_views(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    assert!(sink.describe().starts_with("postgres://"), "{}", sink.describe());
    let q = query("tHandle,tAcw,tHeldComplete,tHeld", "userId,mediaType", &[]);
    let handle =
        Stats { count: Some(5), sum: Some(1450300.0), min: Some(95000.0), max: Some(612000.0), ..Stats::default() };
    let nine = "2025-03-10T09:00:00Z";
    let rows = vec![
        stats_row(&[AGENT_A, "voice"], nine, "tHandle", handle),
        row(&[AGENT_A, "voice"], nine, "tAcw", 4, 120000.0),
        row(&[AGENT_A, "voice"], nine, "tHeld", 2, 7000.0),
        row(&[AGENT_B, "chat"], "2025-03-10T09:30:00Z", "tHeldComplete", 1, 5000.5),
        row(&[AGENT_B, "chat"], "2025-03-10T09:30:00Z", "tHeld", 3, 6000.0),
    ];
    let stats = sink.write_window(&key(&q, DAY.0, DAY.1), &rows).await.unwrap();
    assert_eq!(stats, WriteStats { values_written: 5, rows_deleted: 0 });

    assert_eq!(
        stored(&pool).await,
        vec![
            grain(
                AGENT_A,
                "voice",
                nine,
                json!({"tAcw": {"count": 4, "sum": 120000}, "tHeld": {"count": 2, "sum": 7000},
                       "tHandle": {"count": 5, "sum": 1450300, "min": 95000, "max": 612000}})
            ),
            grain(
                AGENT_B,
                "chat",
                "2025-03-10T09:30:00Z",
                json!({"tHeld": {"count": 3, "sum": 6000}, "tHeldComplete": {"count": 1, "sum": 5000.5}})
            ),
        ]
    );
    let meta: (String, String, String) = sqlx::query_as(
        "SELECT org, granularity, to_char(interval_end AT TIME ZONE 'UTC', 'HH24:MI') FROM agent_intervals \
         ORDER BY interval_start LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(meta, (ORG.into(), "PT30M".into(), "09:30".into()));

    let long: Vec<LongRow> = sqlx::query_as(
        "SELECT user_id::text, metric, count, sum::float8, max::float8 FROM interval_metrics ORDER BY user_id, metric",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        long,
        vec![
            (AGENT_A.into(), "tAcw".into(), Some(4), Some(120000.0), None),
            (AGENT_A.into(), "tHandle".into(), Some(5), Some(1450300.0), Some(612000.0)),
            (AGENT_A.into(), "tHeld".into(), Some(2), Some(7000.0), None),
            (AGENT_B.into(), "tHeld".into(), Some(3), Some(6000.0), None),
            (AGENT_B.into(), "tHeldComplete".into(), Some(1), Some(5000.5), None),
        ]
    );

    // hold_ms prefers tHeldComplete, falls back to tHeld; NULL where not read.
    let summary: Vec<SummaryRow> = sqlx::query_as(
        "SELECT user_id::text, handle_ms::float8, handle_count, acw_ms::float8, hold_ms::float8, talk_ms::float8 \
         FROM agent_interval_summary ORDER BY user_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        summary,
        vec![
            (AGENT_A.into(), Some(1450300.0), Some(5), Some(120000.0), Some(7000.0), None),
            (AGENT_B.into(), None, None, None, Some(5000.5), None),
        ]
    );

    let checkpoints: Vec<(String, String, i64)> =
        sqlx::query_as("SELECT org, fingerprint, rows FROM ingest_windows").fetch_all(&pool).await.unwrap();
    assert_eq!(checkpoints, vec![(ORG.into(), q.fingerprint(), 5)]);
}

#[sqlx::test(migrations = false)]
async fn window_replace_updates_changes_removes_vanished_rows_and_a_rerun_changes_nothing(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
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
    assert_eq!(stored(&pool).await, expected);

    // A re-run with the same answer writes no new row version.
    let versions = || async {
        sqlx::query_scalar::<_, String>("SELECT string_agg(xmin::text, ',' ORDER BY user_id) FROM agent_intervals")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = versions().await;
    let stats = sink.write_window(&k, &second).await.unwrap();
    assert_eq!(stats.rows_deleted, 0);
    assert_eq!(stored(&pool).await, expected);
    assert_eq!(versions().await, before);
    let checkpoints: i64 = sqlx::query_scalar("SELECT count(*) FROM ingest_windows").fetch_one(&pool).await.unwrap();
    assert_eq!(checkpoints, 1);
}

#[sqlx::test(migrations = false)]
async fn window_replace_keeps_the_metrics_of_other_queries_on_the_same_grain(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
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
        stored(&pool).await,
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

    let stats = sink
        .write_window(&key(&handle, DAY.0, DAY.1), &[row(&[AGENT_B, "voice"], nine, "tHandle", 2, 9.0)])
        .await
        .unwrap();
    assert_eq!(stats.rows_deleted, 0);
    assert_eq!(
        stored(&pool).await,
        vec![
            grain(AGENT_A, "voice", nine, json!({"tAcw": {"count": 3, "sum": 30}})),
            grain(AGENT_B, "voice", nine, json!({"tHandle": {"count": 2, "sum": 9}})),
        ]
    );

    let stats = sink.write_window(&key(&acw, DAY.0, DAY.1), &[]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(stored(&pool).await, vec![grain(AGENT_B, "voice", nine, json!({"tHandle": {"count": 2, "sum": 9}}))]);
}

#[sqlx::test(migrations = false)]
async fn window_replace_stays_inside_the_window_the_filters_and_the_ungrouped_dimensions(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
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
    assert_eq!(stored(&pool).await.len(), 4);

    let stats = sink.write_window(&key(&voice, DAY.0, DAY.1), &[]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(
        stored(&pool).await,
        vec![
            grain(AGENT_A, "", nine, json!({"tHandle": {"count": 4, "sum": 4}})),
            grain(AGENT_A, "chat", nine, json!({"tHandle": {"count": 2, "sum": 2}})),
            grain(AGENT_A, "voice", next_nine, json!({"tHandle": {"count": 3, "sum": 3}})),
        ]
    );

    let stats = sink.write_window(&key(&per_user, DAY.0, DAY.1), &[]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(
        stored(&pool).await,
        vec![
            grain(AGENT_A, "chat", nine, json!({"tHandle": {"count": 2, "sum": 2}})),
            grain(AGENT_A, "voice", next_nine, json!({"tHandle": {"count": 3, "sum": 3}})),
        ]
    );
}

#[sqlx::test(migrations = false)]
async fn queue_ids_are_uuids_and_queue_filters_scope_the_replace(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    let other_queue = "9f000000-0000-4000-8000-000000000002";
    let all = query("tHandle", "userId,queueId", &[]);
    let one = std::sync::Arc::new(
        intervals_domain::AggregateQuery::new(
            vec![MetricName::parse("tHandle").unwrap()],
            intervals_domain::AggregateQuery::parse_group_by("userId,queueId").unwrap(),
            intervals_domain::Granularity::Pt30m,
            intervals_domain::Tz::UTC,
            intervals_domain::Filters::new(&[], &[QUEUE_1.to_owned()]).unwrap(),
        )
        .unwrap(),
    );
    let nine = "2025-03-10T09:00:00Z";
    sink.write_window(
        &key(&all, DAY.0, DAY.1),
        &[row(&[AGENT_A, QUEUE_1], nine, "tHandle", 1, 1.0), row(&[AGENT_A, other_queue], nine, "tHandle", 2, 2.0)],
    )
    .await
    .unwrap();
    let stats = sink.write_window(&key(&one, DAY.0, DAY.1), &[]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    let left: Vec<(String, String)> =
        sqlx::query_as("SELECT media_type, queue_id::text FROM agent_intervals").fetch_all(&pool).await.unwrap();
    assert_eq!(left, vec![(String::new(), other_queue.to_owned())]);

    let err = sink
        .write_window(&key(&all, DAY.0, DAY.1), &[row(&["agent-7", QUEUE_1], nine, "tHandle", 1, 1.0)])
        .await
        .unwrap_err();
    assert!(matches!(&err, SinkError::Write { message, .. } if message.contains("not a UUID")), "{err}");
}

#[sqlx::test(migrations = false)]
async fn qualified_keys_of_a_requested_metric_are_replaced_too(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    let q = query("tHandle", "userId", &[]);
    let nine = "2025-03-10T09:00:00Z";
    let qualified = |q: &str| {
        MetricRow::new(
            vec![AGENT_A.to_owned()],
            window(nine, "2025-03-10T09:30:00Z"),
            MetricName::parse("tHandle").unwrap(),
            Some(q.to_owned()),
            Stats { count: Some(1), ..Stats::default() },
        )
    };
    sink.write_window(&key(&q, DAY.0, DAY.1), &[qualified("x"), row(&[AGENT_A], nine, "tHandle", 2, 2.0)])
        .await
        .unwrap();
    assert_eq!(stored(&pool).await[0].4, json!({"tHandle": {"count": 2, "sum": 2}, "tHandle:x": {"count": 1}}));
    sink.write_window(&key(&q, DAY.0, DAY.1), &[row(&[AGENT_A], nine, "tHandle", 3, 3.0)]).await.unwrap();
    assert_eq!(stored(&pool).await[0].4, json!({"tHandle": {"count": 3, "sum": 3}}));
}

#[sqlx::test(migrations = false)]
async fn a_failing_checkpoint_leaves_neither_rows_nor_checkpoint(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    let q = query("tHandle", "userId,mediaType", &[]);
    let nine = "2025-03-10T09:00:00Z";
    sink.write_window(&key(&q, DAY.0, DAY.1), &[row(&[AGENT_A, "voice"], nine, "tHandle", 5, 100.0)]).await.unwrap();
    let before = stored(&pool).await;

    sqlx::query(
        "CREATE FUNCTION fail_checkpoint() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'injected checkpoint failure'; END $$",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "CREATE TRIGGER fail_checkpoint BEFORE INSERT OR UPDATE ON ingest_windows \
         FOR EACH ROW EXECUTE FUNCTION fail_checkpoint()",
    )
    .execute(&pool)
    .await
    .unwrap();

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
    let err = sink
        .write_window(&key(&q, DAY.0, DAY.1), &[row(&[AGENT_B, "voice"], nine, "tHandle", 9, 9.0)])
        .await
        .unwrap_err();
    assert!(matches!(err, SinkError::Write { .. }));

    assert_eq!(stored(&pool).await, before);
    let done = sink.completed_windows(ORG, &q.fingerprint(), window(DAY.0, "2025-03-20T00:00:00Z")).await.unwrap();
    assert_eq!(done, vec![window(DAY.0, DAY.1)]);

    // The sink's connections are still usable after the failures.
    sqlx::query("DROP TRIGGER fail_checkpoint ON ingest_windows").execute(&pool).await.unwrap();
    sink.write_window(&key(&q, DAY.0, DAY.1), &[row(&[AGENT_B, "voice"], nine, "tHandle", 9, 9.0)]).await.unwrap();
    assert_eq!(stored(&pool).await, vec![grain(AGENT_B, "voice", nine, json!({"tHandle": {"count": 9, "sum": 9}}))]);
}

fn day_rows(day: &str, agents: usize) -> Vec<MetricRow> {
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

#[sqlx::test(migrations = false)]
async fn two_writers_on_different_windows_at_the_same_time(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    let q = query("tHandle,tAcw", "userId,mediaType", &[]);
    let (k1, k2) = (key(&q, DAY.0, DAY.1), key(&q, NEXT_DAY.0, NEXT_DAY.1));
    let (r1, r2) = (day_rows("2025-03-10", 40), day_rows("2025-03-11", 40));
    let (a, b) = tokio::join!(sink.write_window(&k1, &r1), sink.write_window(&k2, &r2));
    assert_eq!(a.unwrap().values_written, 40 * 48 * 2);
    assert_eq!(b.unwrap().values_written, 40 * 48 * 2);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM agent_intervals").fetch_one(&pool).await.unwrap();
    assert_eq!(count, 2 * 40 * 48);
    let values: i64 = sqlx::query_scalar("SELECT count(*) FROM interval_metrics").fetch_one(&pool).await.unwrap();
    assert_eq!(values, 2 * 40 * 48 * 2);
    let done = sink.completed_windows(ORG, &q.fingerprint(), window(DAY.0, NEXT_DAY.1)).await.unwrap();
    assert_eq!(done, vec![window(DAY.0, DAY.1), window(NEXT_DAY.0, NEXT_DAY.1)]);
}

#[sqlx::test(migrations = false)]
async fn completed_windows_are_those_of_the_org_and_fingerprint_inside_the_range(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    let q = query("tHandle", "userId", &[]);
    let other = query("tAcw", "userId", &[]);
    for (s, e) in [DAY, NEXT_DAY, ("2025-03-12T00:00:00Z", "2025-03-13T00:00:00Z")] {
        sink.write_window(&key(&q, s, e), &[]).await.unwrap();
    }
    sink.write_window(&key(&other, DAY.0, DAY.1), &[]).await.unwrap();
    let in_range = sink.completed_windows(ORG, &q.fingerprint(), window(DAY.0, "2025-03-12T00:00:00Z")).await.unwrap();
    assert_eq!(in_range, vec![window(DAY.0, DAY.1), window(NEXT_DAY.0, NEXT_DAY.1)]);
    assert!(sink.completed_windows("apac", &q.fingerprint(), window(DAY.0, NEXT_DAY.1)).await.unwrap().is_empty());
    assert_eq!(in_range[0].start(), t(DAY.0));
}

#[sqlx::test(migrations = false)]
async fn users_and_queues_are_upserted_by_org_and_id(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    let user = |id: &str, name: &str| User {
        id: id.into(),
        name: name.into(),
        email: None,
        state: "active".into(),
        division_id: Some("div-1".into()),
        division_name: Some("Home".into()),
    };
    assert_eq!(sink.write_users(ORG, &[user(AGENT_A, "ann"), user(AGENT_B, "bob")]).await.unwrap(), 2);
    assert_eq!(sink.write_users(ORG, &[user(AGENT_A, "anne"), user(AGENT_A, "anna")]).await.unwrap(), 1);
    assert_eq!(sink.write_users("apac", &[user(AGENT_A, "other org")]).await.unwrap(), 1);
    let users: Vec<UserRow> =
        sqlx::query_as("SELECT org, id::text, name, email, division_id FROM users ORDER BY org, id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        users,
        vec![
            ("apac".into(), AGENT_A.into(), "other org".into(), None, Some("div-1".into())),
            (ORG.into(), AGENT_A.into(), "anna".into(), None, Some("div-1".into())),
            (ORG.into(), AGENT_B.into(), "bob".into(), None, Some("div-1".into())),
        ]
    );
    let queue = Queue { id: QUEUE_1.into(), name: "Sales".into(), division_id: None, division_name: None };
    assert_eq!(sink.write_queues(ORG, &[queue]).await.unwrap(), 1);
    let renamed = Queue { id: QUEUE_1.into(), name: "Sales EMEA".into(), division_id: None, division_name: None };
    assert_eq!(sink.write_queues(ORG, &[renamed]).await.unwrap(), 1);
    let queues: Vec<(String, String)> =
        sqlx::query_as("SELECT id::text, name FROM queues").fetch_all(&pool).await.unwrap();
    assert_eq!(queues, vec![(QUEUE_1.into(), "Sales EMEA".into())]);
}

#[sqlx::test(migrations = false)]
async fn a_table_of_the_same_name_without_our_history_is_a_schema_error_and_is_left_alone(pool: PgPool) {
    sqlx::query("CREATE TABLE agent_intervals (id serial PRIMARY KEY, note text)").execute(&pool).await.unwrap();
    sqlx::query("INSERT INTO agent_intervals (note) VALUES ('keep me')").execute(&pool).await.unwrap();

    let err = PostgresSink::from_pool(pool.clone()).await.unwrap_err();
    assert!(matches!(&err, SinkError::Schema { message, .. } if message.contains("agent_intervals")), "{err}");

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(tables, vec!["agent_intervals".to_owned()]);
    let note: String = sqlx::query_scalar("SELECT note FROM agent_intervals").fetch_one(&pool).await.unwrap();
    assert_eq!(note, "keep me");
}

#[sqlx::test(migrations = false)]
async fn migrations_apply_once_and_a_second_sink_reuses_them(pool: PgPool) {
    let first = PostgresSink::from_pool(pool.clone()).await.unwrap();
    let q = query("tHandle", "userId", &[]);
    first
        .write_window(&key(&q, DAY.0, DAY.1), &[row(&[AGENT_A], "2025-03-10T09:00:00Z", "tHandle", 1, 1.0)])
        .await
        .unwrap();
    let applied = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT string_agg(version::text || ':' || installed_on::text, ',') FROM _sqlx_migrations",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let before = applied().await;
    let second = PostgresSink::from_pool(pool.clone()).await.unwrap();
    assert_eq!(second.completed_windows(ORG, &q.fingerprint(), window(DAY.0, DAY.1)).await.unwrap().len(), 1);
    assert_eq!(applied().await, before, "nothing is applied twice");
    assert!(before.starts_with("20250301000001:"), "{before}");
}

#[tokio::test]
async fn an_unreachable_server_is_named_by_host_and_port_without_the_password() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let err = PostgresSink::connect("postgres://bob:hunter2@127.0.0.1:1/metrics").await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(matches!(err, SinkError::Unavailable { .. }), "{shown}");
    assert!(shown.contains("127.0.0.1:1"), "{shown}");
    assert!(!shown.contains("hunter2"), "{shown}");

    let err = PostgresSink::connect("postgres://bob:hunter2@127.0.0.1:notaport/metrics").await.unwrap_err();
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
}

#[sqlx::test(migrations = false)]
async fn a_row_outside_the_filters_does_not_hide_a_vanished_one(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    let all = query("tHandle", "userId,mediaType", &[]);
    let voice = query("tHandle", "userId,mediaType", &["voice"]);
    let nine = "2025-03-10T09:00:00Z";
    sink.write_window(
        &key(&all, DAY.0, DAY.1),
        &[row(&[AGENT_A, "voice"], nine, "tHandle", 1, 1.0), row(&[AGENT_A, "chat"], nine, "tHandle", 2, 2.0)],
    )
    .await
    .unwrap();
    // The voice window no longer has A's voice grain but (against its filter) returns A's chat
    // grain: as many stored grains in scope as matched ones, yet one of them vanished.
    let stats = sink
        .write_window(&key(&voice, DAY.0, DAY.1), &[row(&[AGENT_A, "chat"], nine, "tHandle", 3, 3.0)])
        .await
        .unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(stored(&pool).await, vec![grain(AGENT_A, "chat", nine, json!({"tHandle": {"count": 3, "sum": 3}}))]);
}
