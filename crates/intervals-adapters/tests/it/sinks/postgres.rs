//! The PostgreSQL sink against a real server (`#[sqlx::test]`: a fresh database per test, from
//! DATABASE_URL): storage shape, window replace, atomic checkpoints, concurrency, directory
//! upserts, refusing foreign schemas, and connection errors without secrets.

use std::sync::Arc;

use intervals_adapters::sinks::PostgresSink;
use intervals_app::{CheckpointStore, Sink, SinkError};
use intervals_domain::{MetricName, MetricRow, Stats};
use serde_json::json;
use sqlx::{PgPool, Row};

use super::scenarios::{
    self, CheckpointRow, Grain, LongRow, QueueRow, Stored, SummaryNameRow, SummaryRow, UserRow, Utilization,
};
use super::support::{key, query, row, window, AGENT_A, AGENT_B, DAY, ORG, QUEUE_1};

const NIL: &str = "00000000-0000-0000-0000-000000000000";

fn grain(user: &str, media: &str, start: &str, metrics: serde_json::Value) -> Grain {
    (user.to_owned(), media.to_owned(), NIL.to_owned(), start.to_owned(), metrics)
}

async fn all<T>(pool: &PgPool, sql: &str) -> Vec<T>
where
    T: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> + Send + Unpin,
{
    sqlx::query_as(sql).fetch_all(pool).await.unwrap()
}

impl Stored for PgPool {
    const NO_QUEUE: &'static str = NIL;

    async fn grains(&self) -> Vec<Grain> {
        let rows: Vec<(String, String, String, String, String)> = all(
            self,
            "SELECT user_id::text, media_type, queue_id::text, \
                    to_char(interval_start AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), metrics::text \
             FROM agent_intervals ORDER BY interval_start, user_id, media_type, queue_id",
        )
        .await;
        rows.into_iter().map(|(u, m, q, s, j)| (u, m, q, s, serde_json::from_str(&j).unwrap())).collect()
    }

    async fn long_rows(&self) -> Vec<LongRow> {
        all(
            self,
            "SELECT user_id::text, metric, count, sum::float8, max::float8 FROM interval_metrics ORDER BY user_id, metric",
        )
        .await
    }

    async fn metric_values(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM interval_metrics").fetch_one(self).await.unwrap()
    }

    async fn summary_rows(&self) -> Vec<SummaryRow> {
        all(
            self,
            "SELECT user_id::text, handle_ms::float8, handle_count, acw_ms::float8, hold_ms::float8, talk_ms::float8 \
             FROM agent_interval_summary ORDER BY user_id",
        )
        .await
    }

    /// A grain not grouped by user reads as '' here, as in SQLite.
    async fn summary_names(&self) -> Vec<SummaryNameRow> {
        all(
            self,
            &format!(
                "SELECT org, CASE WHEN user_id = '{NIL}' THEN '' ELSE user_id::text END, media_type, user_name                  FROM agent_interval_summary ORDER BY org, user_id, media_type"
            ),
        )
        .await
    }

    async fn utilization(&self) -> Vec<Utilization> {
        let utc = |column: &str| format!("to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
        let rows = sqlx::query(&format!(
            "SELECT org, user_id::text, {}, {}, on_queue_ms, idle_ms, interacting_ms, communicating_ms,                     not_responding_ms, off_queue_ms, handle_ms, acw_ms, hold_ms, talk_ms, handle_count, occupancy,                     handle_per_on_queue              FROM agent_utilization ORDER BY org, user_id, interval_start",
            utc("interval_start"),
            utc("interval_end")
        ))
        .fetch_all(self)
        .await
        .unwrap();
        rows.iter()
            .map(|r| Utilization {
                org: r.get(0),
                user_id: r.get(1),
                interval_start: r.get(2),
                interval_end: r.get(3),
                status: std::array::from_fn(|i| r.get(4 + i)),
                conversation: std::array::from_fn(|i| r.get(10 + i)),
                handle_count: r.get(14),
                occupancy: r.get(15),
                handle_per_on_queue: r.get(16),
            })
            .collect()
    }

    async fn view_columns(&self, view: &str) -> Vec<String> {
        sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = $1 ORDER BY ordinal_position",
        )
        .bind(view)
        .fetch_all(self)
        .await
        .unwrap()
    }

    async fn checkpoints(&self) -> Vec<CheckpointRow> {
        all(self, "SELECT org, fingerprint, rows FROM ingest_windows").await
    }

    /// Nothing to prepare: every row version has its own xmin.
    async fn mark_row_versions(&self) {}

    async fn row_versions(&self) -> String {
        sqlx::query_scalar("SELECT string_agg(xmin::text, ',' ORDER BY user_id) FROM interval_grains")
            .fetch_one(self)
            .await
            .unwrap()
    }

    async fn fail_checkpoints(&self) {
        sqlx::query(
            "CREATE FUNCTION fail_checkpoint() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected checkpoint failure'; END $$",
        )
        .execute(self)
        .await
        .unwrap();
        sqlx::query(
            "CREATE TRIGGER fail_checkpoint BEFORE INSERT OR UPDATE ON ingest_windows \
             FOR EACH ROW EXECUTE FUNCTION fail_checkpoint()",
        )
        .execute(self)
        .await
        .unwrap();
    }

    async fn users(&self) -> Vec<UserRow> {
        all(self, "SELECT org, id::text, name, email, division_id FROM users ORDER BY org, id").await
    }

    async fn queues(&self) -> Vec<QueueRow> {
        all(self, "SELECT id::text, name, division_id, division_name FROM queues").await
    }
}

#[sqlx::test(migrations = false)]
async fn stores_one_row_per_grain_and_reads_back_through_both_views(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    assert!(sink.describe().starts_with("postgres://"), "{}", sink.describe());
    scenarios::stores_one_row_per_grain_and_reads_back_through_both_views(&sink, &pool).await;
    let meta: (String, String, String) = sqlx::query_as(
        "SELECT org, granularity, to_char(interval_end AT TIME ZONE 'UTC', 'HH24:MI') FROM agent_intervals \
         ORDER BY interval_start LIMIT 1",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(meta, (ORG.into(), "PT30M".into(), "09:30".into()));
}

#[sqlx::test(migrations = false)]
async fn window_replace_updates_changes_removes_vanished_rows_and_a_rerun_changes_nothing(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    scenarios::window_replace_updates_changes_removes_vanished_rows_and_a_rerun_changes_nothing(&sink, &pool).await;
}

#[sqlx::test(migrations = false)]
async fn window_replace_keeps_the_metrics_of_other_queries_on_the_same_grain(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    scenarios::window_replace_keeps_the_metrics_of_other_queries_on_the_same_grain(&sink, &pool).await;
}

#[sqlx::test(migrations = false)]
async fn two_queries_with_different_group_bys_never_replace_each_others_rows(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    scenarios::two_queries_with_different_group_bys_never_replace_each_others_rows(&sink, &pool).await;
}

#[sqlx::test(migrations = false)]
async fn window_replace_stays_inside_the_window_the_filters_and_the_ungrouped_dimensions(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    scenarios::window_replace_stays_inside_the_window_the_filters_and_the_ungrouped_dimensions(&sink, &pool).await;
}

#[sqlx::test(migrations = false)]
async fn mixed_windows_replace_their_own_keys_and_agent_utilization_adds_them_up(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    scenarios::mixed_windows_replace_their_own_keys_and_agent_utilization_adds_them_up(&sink, &pool).await;
    // The contract's types: times double precision, handle_count bigint, the ratios double precision.
    let types: Vec<(String, String)> = all(
        &pool,
        "SELECT column_name::text, data_type::text FROM information_schema.columns          WHERE table_name = 'agent_utilization' ORDER BY ordinal_position",
    )
    .await;
    let type_of = |c: &str| types.iter().find(|(n, _)| n == c).map(|(_, t)| t.as_str()).unwrap();
    for c in ["on_queue_ms", "idle_ms", "handle_ms", "talk_ms", "occupancy", "handle_per_on_queue"] {
        assert_eq!(type_of(c), "double precision", "{c}");
    }
    assert_eq!(type_of("handle_count"), "bigint");
    assert_eq!(type_of("user_id"), "uuid");
    assert_eq!(type_of("interval_end"), "timestamp with time zone");
}

#[sqlx::test(migrations = false)]
async fn the_summary_names_the_agent_once_users_are_stored(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    scenarios::the_summary_names_the_agent_once_users_are_stored(&sink, &sink, &pool).await;
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
    assert_eq!(pool.grains().await[0].4, json!({"tHandle": {"count": 2, "sum": 2}, "tHandle:x": {"count": 1}}));
    sink.write_window(&key(&q, DAY.0, DAY.1), &[row(&[AGENT_A], nine, "tHandle", 3, 3.0)]).await.unwrap();
    assert_eq!(pool.grains().await[0].4, json!({"tHandle": {"count": 3, "sum": 3}}));
}

#[sqlx::test(migrations = false)]
async fn a_failing_checkpoint_leaves_neither_rows_nor_checkpoint(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    scenarios::a_failing_checkpoint_leaves_neither_rows_nor_checkpoint(&sink, &sink, &pool).await;

    // The sink's connections are still usable after the failures.
    sqlx::query("DROP TRIGGER fail_checkpoint ON ingest_windows").execute(&pool).await.unwrap();
    let q = query("tHandle", "userId,mediaType", &[]);
    let nine = "2025-03-10T09:00:00Z";
    sink.write_window(&key(&q, DAY.0, DAY.1), &[row(&[AGENT_B, "voice"], nine, "tHandle", 9, 9.0)]).await.unwrap();
    assert_eq!(pool.grains().await, vec![grain(AGENT_B, "voice", nine, json!({"tHandle": {"count": 9, "sum": 9}}))]);
}

#[sqlx::test(migrations = false)]
async fn two_writers_on_different_windows_at_the_same_time(pool: PgPool) {
    let sink = Arc::new(PostgresSink::from_pool(pool.clone()).await.unwrap());
    scenarios::two_writers_on_different_windows_at_the_same_time(sink.clone(), &*sink, &pool).await;
}

#[sqlx::test(migrations = false)]
async fn completed_windows_are_those_of_the_org_and_fingerprint_inside_the_range(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    scenarios::completed_windows_are_those_of_the_org_and_fingerprint_inside_the_range(&sink, &sink).await;
}

#[sqlx::test(migrations = false)]
async fn users_and_queues_are_upserted_by_org_and_id(pool: PgPool) {
    let sink = PostgresSink::from_pool(pool.clone()).await.unwrap();
    scenarios::users_and_queues_are_upserted_by_org_and_id(&sink, &pool).await;
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
    assert_eq!(pool.grains().await, vec![grain(AGENT_A, "chat", nine, json!({"tHandle": {"count": 3, "sum": 3}}))]);
}
