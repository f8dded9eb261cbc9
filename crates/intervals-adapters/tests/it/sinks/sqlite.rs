//! The SQLite sink on temporary files: storage shape, window replace, atomic checkpoints,
//! concurrency, directory upserts and refusing foreign schemas. The scenarios shared with the
//! other database sinks live in `scenarios`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use intervals_adapters::sinks::SqliteSink;
use intervals_app::{CheckpointStore, Sink, SinkError};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
use sqlx::Row;

use super::scenarios::{
    self, CheckpointRow, Grain, LongRow, QueueRow, Stored, SummaryNameRow, SummaryRow, UserRow, Utilization,
};
use super::support::{key, query, row, window, AGENT_A, AGENT_B, DAY, ORG};

/// Every column of `agent_intervals` but fetched_at.
type StoredRow = (String, String, String, String, String, String, String, String);

async fn db(path: &Path) -> SqlitePool {
    SqlitePool::connect_with(SqliteConnectOptions::new().filename(path)).await.unwrap()
}

/// The database file of a sink, read back with fresh connections.
struct File(PathBuf);

/// A sink on a new file of a new temporary folder (kept alive by the returned guard).
async fn open() -> (SqliteSink, File, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("intervals.db");
    let sink = SqliteSink::open(&path).await.unwrap();
    (sink, File(path), dir)
}

impl File {
    async fn all<T>(&self, sql: &str) -> Vec<T>
    where
        T: for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow> + Send + Unpin,
    {
        sqlx::query_as(sql).fetch_all(&db(&self.0).await).await.unwrap()
    }
}

impl Stored for File {
    const NO_QUEUE: &'static str = "";

    async fn grains(&self) -> Vec<Grain> {
        let rows: Vec<(String, String, String, String, String)> = self
            .all(
                "SELECT user_id, media_type, queue_id, interval_start, metrics FROM agent_intervals \
                 ORDER BY interval_start, user_id, media_type, queue_id",
            )
            .await;
        rows.into_iter().map(|(u, m, q, s, j)| (u, m, q, s, serde_json::from_str(&j).unwrap())).collect()
    }

    async fn long_rows(&self) -> Vec<LongRow> {
        self.all(
            "SELECT user_id, metric, count, CAST(sum AS REAL), CAST(max AS REAL) FROM interval_metrics \
             ORDER BY user_id, metric",
        )
        .await
    }

    async fn metric_values(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM interval_metrics").fetch_one(&db(&self.0).await).await.unwrap()
    }

    async fn summary_rows(&self) -> Vec<SummaryRow> {
        self.all(
            "SELECT user_id, CAST(handle_ms AS REAL), handle_count, CAST(acw_ms AS REAL), CAST(hold_ms AS REAL), \
             CAST(talk_ms AS REAL) FROM agent_interval_summary ORDER BY user_id",
        )
        .await
    }

    async fn summary_names(&self) -> Vec<SummaryNameRow> {
        self.all(
            "SELECT org, user_id, media_type, user_name FROM agent_interval_summary ORDER BY org, user_id, media_type",
        )
        .await
    }

    /// The times read as REAL: SQLite sums JSON integers into integers.
    async fn utilization(&self) -> Vec<Utilization> {
        let rows = sqlx::query(
            "SELECT org, user_id, interval_start, interval_end,                     CAST(on_queue_ms AS REAL), CAST(idle_ms AS REAL), CAST(interacting_ms AS REAL),                     CAST(communicating_ms AS REAL), CAST(not_responding_ms AS REAL), CAST(off_queue_ms AS REAL),                     CAST(handle_ms AS REAL), CAST(acw_ms AS REAL), CAST(hold_ms AS REAL), CAST(talk_ms AS REAL),                     handle_count, occupancy, handle_per_on_queue              FROM agent_utilization ORDER BY org, user_id, interval_start",
        )
        .fetch_all(&db(&self.0).await)
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
        sqlx::query_scalar("SELECT name FROM pragma_table_info(?) ORDER BY cid")
            .bind(view)
            .fetch_all(&db(&self.0).await)
            .await
            .unwrap()
    }

    async fn checkpoints(&self) -> Vec<CheckpointRow> {
        self.all("SELECT org, fingerprint, rows FROM ingest_windows").await
    }

    async fn mark_row_versions(&self) {
        sqlx::query("UPDATE agent_intervals SET fetched_s = 0").execute(&db(&self.0).await).await.unwrap();
    }

    /// The fetched_at of every grain: a rewritten row no longer says 1970.
    async fn row_versions(&self) -> String {
        sqlx::query_scalar(
            "SELECT group_concat(fetched_at, ',') FROM (SELECT fetched_at FROM agent_intervals ORDER BY user_id)",
        )
        .fetch_one(&db(&self.0).await)
        .await
        .unwrap()
    }

    async fn fail_checkpoints(&self) {
        let pool = db(&self.0).await;
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
    }

    async fn users(&self) -> Vec<UserRow> {
        self.all("SELECT org, id, name, email, division_id FROM users ORDER BY org, id").await
    }

    async fn queues(&self) -> Vec<QueueRow> {
        self.all("SELECT id, name, division_id, division_name FROM queues").await
    }
}

#[tokio::test]
async fn stores_one_row_per_grain_and_reads_back_through_both_views() {
    let (sink, file, _dir) = open().await;
    assert_eq!(sink.describe(), format!("sqlite:{}", file.0.display()));
    let q = scenarios::stores_one_row_per_grain_and_reads_back_through_both_views(&sink, &file).await;

    // The text of `metrics` (schema v5: generated from the typed columns, then other_metrics): JSON with the
    // typed keys sorted, then the other keys sorted, and integral numbers without a fraction.
    let grains: Vec<StoredRow> = file
        .all(
            "SELECT org, user_id, media_type, queue_id, granularity, interval_start, interval_end, metrics \
             FROM agent_intervals ORDER BY interval_start",
        )
        .await;
    let expected_a = r#"{"tAcw":{"count":4,"sum":120000},"tHandle":{"count":5,"sum":1450300,"min":95000,"max":612000},"tHeld":{"count":2,"sum":7000}}"#;
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
                r#"{"tHeldComplete":{"count":1,"sum":5000.5},"tHeld":{"count":3,"sum":6000}}"#.into()
            ),
        ]
    );
    let checkpoints: Vec<(String, String, String, String, i64)> =
        file.all("SELECT org, fingerprint, window_start, window_end, rows FROM ingest_windows").await;
    assert_eq!(checkpoints, vec![(ORG.into(), q.fingerprint(), DAY.0.into(), DAY.1.into(), 5)]);
}

#[tokio::test]
async fn window_replace_updates_changes_removes_vanished_rows_and_a_rerun_changes_nothing() {
    let (sink, file, _dir) = open().await;
    scenarios::window_replace_updates_changes_removes_vanished_rows_and_a_rerun_changes_nothing(&sink, &file).await;
}

#[tokio::test]
async fn window_replace_keeps_the_metrics_of_other_queries_on_the_same_grain() {
    let (sink, file, _dir) = open().await;
    scenarios::window_replace_keeps_the_metrics_of_other_queries_on_the_same_grain(&sink, &file).await;
}

#[tokio::test]
async fn two_queries_with_different_group_bys_never_replace_each_others_rows() {
    let (sink, file, _dir) = open().await;
    scenarios::two_queries_with_different_group_bys_never_replace_each_others_rows(&sink, &file).await;
}

#[tokio::test]
async fn window_replace_stays_inside_the_window_the_filters_and_the_ungrouped_dimensions() {
    let (sink, file, _dir) = open().await;
    scenarios::window_replace_stays_inside_the_window_the_filters_and_the_ungrouped_dimensions(&sink, &file).await;
}

#[tokio::test]
async fn mixed_windows_replace_their_own_keys_and_agent_utilization_adds_them_up() {
    let (sink, file, _dir) = open().await;
    scenarios::mixed_windows_replace_their_own_keys_and_agent_utilization_adds_them_up(&sink, &file).await;
}

#[tokio::test]
async fn the_summary_names_the_agent_once_users_are_stored() {
    let (sink, file, _dir) = open().await;
    scenarios::the_summary_names_the_agent_once_users_are_stored(&sink, &sink, &file).await;
}

#[tokio::test]
async fn a_failing_checkpoint_leaves_neither_rows_nor_checkpoint() {
    let (sink, file, _dir) = open().await;
    scenarios::a_failing_checkpoint_leaves_neither_rows_nor_checkpoint(&sink, &sink, &file).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_on_different_windows_at_the_same_time() {
    let (sink, file, _dir) = open().await;
    let sink = Arc::new(sink);
    scenarios::two_writers_on_different_windows_at_the_same_time(sink.clone(), &*sink, &file).await;
}

#[tokio::test]
async fn completed_windows_are_those_of_the_org_and_fingerprint_inside_the_range() {
    let (sink, _file, _dir) = open().await;
    scenarios::completed_windows_are_those_of_the_org_and_fingerprint_inside_the_range(&sink, &sink).await;
}

#[tokio::test]
async fn users_and_queues_are_upserted_by_org_and_id() {
    let (sink, file, _dir) = open().await;
    scenarios::users_and_queues_are_upserted_by_org_and_id(&sink, &file).await;
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
    assert_eq!(File(path).grains().await.len(), 1);
    assert_eq!(again.completed_windows(ORG, &q.fingerprint(), window(DAY.0, DAY.1)).await.unwrap().len(), 1);
}

/// Two runs started together on a new file: both open it (the second waits for or finds the first's
/// schema), in every round, and neither reports a foreign schema or a locked database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_opens_of_a_new_file_at_the_same_time_both_succeed() {
    for round in 0..20 {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.db");
        let (a, b) =
            tokio::join!(tokio::spawn(SqliteSink::open(path.clone())), tokio::spawn(SqliteSink::open(path.clone())));
        for opened in [a.unwrap(), b.unwrap()] {
            if let Err(e) = opened {
                panic!("round {round}: {e}");
            }
        }
    }
}
