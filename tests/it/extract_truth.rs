//! The real binary against the simulator: what it writes equals `sim truth`, byte for byte.

use intervals_domain::{Dimension, MetricName, MetricRow, Stats, TimeWindow};
use sqlx::Row;

use crate::support::{assert_same_csv, expect_exit, long_csv, run, Extraction, Sim};

/// Extracts into a CSV file and compares it with the truth; returns stderr.
async fn extract_csv_equals_truth(extraction: Extraction, wide: bool) -> String {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let mut cmd = sim.cli(&["extract", "--out", &format!("csv:{}", path.display())]);
    cmd.args(extraction.args());
    if wide {
        cmd.args(["--format", "wide"]);
    }
    let stderr = expect_exit(&run(cmd).await, 0);
    let written = std::fs::read_to_string(&path).unwrap();
    let expected = if wide { extraction.truth_wide_csv(&sim) } else { extraction.truth_csv(&sim) };
    assert!(expected.lines().count() > 10, "the truth should not be trivially empty:\n{expected}");
    assert_same_csv(&written, &expected, &format!("{extraction:?} wide={wide}"));
    stderr
}

#[tokio::test]
async fn pt15m_long_csv() {
    extract_csv_equals_truth(Extraction { granularity: "PT15M", ..Extraction::default() }, false).await;
}

#[tokio::test]
async fn pt30m_long_csv() {
    let stderr = extract_csv_equals_truth(Extraction::default(), false).await;
    assert!(stderr.contains("Done"), "summary: {stderr}");
}

#[tokio::test]
async fn pt1h_long_csv() {
    extract_csv_equals_truth(Extraction { granularity: "PT1H", ..Extraction::default() }, false).await;
}

#[tokio::test]
async fn p1d_long_csv() {
    extract_csv_equals_truth(Extraction { granularity: "P1D", from: "2025-03-08", ..Extraction::default() }, false)
        .await;
}

#[tokio::test]
async fn group_by_user_only() {
    extract_csv_equals_truth(Extraction { group_by: "userId", ..Extraction::default() }, false).await;
}

#[tokio::test]
async fn group_by_user_and_queue() {
    extract_csv_equals_truth(Extraction { group_by: "userId,queueId", ..Extraction::default() }, false).await;
}

#[tokio::test]
async fn europe_dublin_across_the_spring_dst_week() {
    // Sunday 2025-03-30 has 46 half-hours in Dublin.
    let week = Extraction { from: "2025-03-27", to: "2025-04-03", time_zone: "Europe/Dublin", ..Extraction::default() };
    extract_csv_equals_truth(week.clone(), false).await;
    extract_csv_equals_truth(Extraction { granularity: "P1D", ..week }, false).await;
}

#[tokio::test]
async fn europe_dublin_across_the_autumn_dst_week() {
    // Sunday 2025-10-26 has 50 half-hours in Dublin.
    let week = Extraction { from: "2025-10-23", to: "2025-10-30", time_zone: "Europe/Dublin", ..Extraction::default() };
    extract_csv_equals_truth(week, false).await;
}

#[tokio::test]
async fn wide_csv() {
    extract_csv_equals_truth(Extraction::default(), true).await;
}

#[tokio::test]
async fn csv_to_stdout() {
    let sim = Sim::small().await;
    let extraction = Extraction::default();
    let mut cmd = sim.cli(&["extract", "--out", "csv:-"]);
    cmd.args(extraction.args());
    let out = run(cmd).await;
    expect_exit(&out, 0);
    assert_same_csv(&String::from_utf8(out.stdout).unwrap(), &extraction.truth_csv(&sim), "csv:-");
}

/// Reads the `interval_metrics` view back as rows of `extraction`'s query.
fn rows_from_view(extraction: &Extraction, records: Vec<ViewRecord>) -> Vec<MetricRow> {
    let query = extraction.query();
    records
        .into_iter()
        .map(|r| {
            let group = query
                .group_by()
                .iter()
                .map(|d| match *d {
                    Dimension::USER_ID => r.user_id.clone(),
                    Dimension::MEDIA_TYPE => r.media_type.clone(),
                    _ => r.queue_id.clone(),
                })
                .collect();
            let bucket = TimeWindow::new(r.start, r.end).unwrap();
            let stats =
                Stats { count: r.count.map(|c| c as u64), sum: r.sum, min: r.min, max: r.max, ..Stats::default() };
            let (metric, qualifier) = match r.metric.split_once(':') {
                Some((metric, qualifier)) => (metric, Some(qualifier.to_owned())),
                None => (r.metric.as_str(), None),
            };
            MetricRow::new(group, bucket, MetricName::parse(metric).unwrap(), qualifier, stats)
        })
        .collect()
}

struct ViewRecord {
    user_id: String,
    media_type: String,
    queue_id: String,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    metric: String,
    count: Option<i64>,
    sum: Option<f64>,
    min: Option<f64>,
    max: Option<f64>,
}

pub(crate) async fn sqlite_long_csv(path: &std::path::Path, extraction: &Extraction) -> String {
    let url = format!("sqlite://{}?mode=ro", path.display());
    let mut conn: sqlx::SqliteConnection = sqlx::Connection::connect(&url).await.unwrap();
    let rows = sqlx::query(
        "SELECT user_id, media_type, queue_id, interval_start, interval_end, metric, count, CAST(sum AS REAL) AS sum, \
                CAST(min AS REAL) AS min, CAST(max AS REAL) AS max \
         FROM interval_metrics",
    )
    .fetch_all(&mut conn)
    .await
    .unwrap();
    let parse = |s: String| chrono::DateTime::parse_from_rfc3339(&s).unwrap().with_timezone(&chrono::Utc);
    let records = rows
        .into_iter()
        .map(|r| ViewRecord {
            user_id: r.get("user_id"),
            media_type: r.get("media_type"),
            queue_id: r.get("queue_id"),
            start: parse(r.get("interval_start")),
            end: parse(r.get("interval_end")),
            metric: r.get("metric"),
            count: r.get("count"),
            sum: r.get("sum"),
            min: r.get("min"),
            max: r.get("max"),
        })
        .collect();
    long_csv(&extraction.query(), rows_from_view(extraction, records))
}

pub(crate) async fn postgres_long_csv(pool: &sqlx::PgPool, extraction: &Extraction) -> String {
    let rows = sqlx::query(
        "SELECT CASE WHEN user_id = '00000000-0000-0000-0000-000000000000' THEN '' ELSE user_id::text END AS user_id, \
                media_type, \
                CASE WHEN queue_id = '00000000-0000-0000-0000-000000000000' THEN '' ELSE queue_id::text END AS queue_id, \
                interval_start, interval_end, metric, count::bigint AS count, sum::float8 AS sum, min::float8 AS min, \
                max::float8 AS max \
         FROM interval_metrics",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    let records = rows
        .into_iter()
        .map(|r| ViewRecord {
            user_id: r.get("user_id"),
            media_type: r.get("media_type"),
            queue_id: r.get("queue_id"),
            start: r.get("interval_start"),
            end: r.get("interval_end"),
            metric: r.get("metric"),
            count: r.get("count"),
            sum: r.get("sum"),
            min: r.get("min"),
            max: r.get("max"),
        })
        .collect();
    long_csv(&extraction.query(), rows_from_view(extraction, records))
}

#[tokio::test]
async fn sqlite_equals_truth_and_rerun_changes_nothing() {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("x.db");
    let extraction = Extraction { group_by: "userId,queueId", ..Extraction::default() };
    let mut cmd = sim.cli(&["extract", "--out", &format!("sqlite:{}", db.display())]);
    cmd.args(extraction.args());
    let stderr = expect_exit(&run(cmd).await, 0);
    assert!(stderr.contains("sqlite3 "), "the summary shows how to look at the data: {stderr}");
    let wal = std::fs::metadata(dir.path().join("x.db-wal")).map(|m| m.len()).unwrap_or(0);
    assert_eq!(wal, 0, "a finished run leaves one self-contained file: the write-ahead log is checkpointed");
    assert_same_csv(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim), "sqlite");

    let queries_before = sim.aggregate_queries();
    let mut again = sim.cli(&["extract", "--out", &format!("sqlite:{}", db.display())]);
    again.args(extraction.args());
    let stderr = expect_exit(&run(again).await, 0);
    assert_eq!(sim.aggregate_queries(), queries_before, "a finished extraction is not fetched again: {stderr}");
    assert_same_csv(&sqlite_long_csv(&db, &extraction).await, &extraction.truth_csv(&sim), "sqlite rerun");
}

pub(crate) fn pg_url(opts: &sqlx::postgres::PgConnectOptions) -> String {
    format!(
        "postgres://{}@{}:{}/{}",
        opts.get_username(),
        opts.get_host(),
        opts.get_port(),
        opts.get_database().unwrap_or("postgres")
    )
}

#[sqlx::test(migrations = false)]
async fn postgres_equals_truth(_pool_opts: sqlx::postgres::PgPoolOptions, opts: sqlx::postgres::PgConnectOptions) {
    let sim = Sim::small().await;
    let extraction =
        Extraction { time_zone: "Europe/Dublin", from: "2025-03-29", to: "2025-04-01", ..Extraction::default() };
    let url = pg_url(&opts);
    let mut cmd = sim.cli(&["extract", "--out", &url]);
    cmd.args(extraction.args());
    expect_exit(&run(cmd).await, 0);
    let pool = sqlx::PgPool::connect_with(opts).await.unwrap();
    assert_same_csv(&postgres_long_csv(&pool, &extraction).await, &extraction.truth_csv(&sim), "postgres");
}

#[tokio::test]
async fn async_jobs_give_the_same_rows() {
    let sim = Sim::small().await;
    let extraction = Extraction::default();
    let mut cmd = sim.cli(&["extract", "--use-jobs", "--out", "csv:-"]);
    cmd.args(extraction.args());
    let out = run(cmd).await;
    expect_exit(&out, 0);
    assert_same_csv(&String::from_utf8(out.stdout).unwrap(), &extraction.truth_csv(&sim), "--use-jobs");
    let stats = sim.running.stats();
    assert_eq!(stats.aggregate_queries, 0, "no synchronous query: {stats:?}");
    assert_eq!(stats.jobs, 2, "one job per day window: {stats:?}");
}
