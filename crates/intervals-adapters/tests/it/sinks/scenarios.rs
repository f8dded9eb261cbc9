//! The scenarios every database sink must pass, written once against the ports (`Sink`,
//! `CheckpointStore`, `DirectoryWriter`); each backend reads back what it stored through [`Stored`]
//! and calls them from thin tests of the same names.

use std::sync::Arc;

use intervals_app::{CheckpointStore, DirectoryWriter, Sink, SinkError, WriteStats};
use intervals_domain::{AggregateQuery, MetricRow, Queue, Stats, User};
use serde_json::json;

use super::support::{key, query, row, stats_row, t, window, AGENT_A, AGENT_B, AGENT_C, DAY, NEXT_DAY, ORG, QUEUE_1};

/// (user_id, media_type, queue_id, interval_start, metrics) of a stored grain.
pub(crate) type Grain = (String, String, String, String, serde_json::Value);
/// (user_id, metric, count, sum, max) from `interval_metrics`.
pub(crate) type LongRow = (String, String, Option<i64>, Option<f64>, Option<f64>);
/// (user_id, handle_ms, handle_count, acw_ms, hold_ms, talk_ms) from `agent_interval_summary`.
pub(crate) type SummaryRow = (String, Option<f64>, Option<i64>, Option<f64>, Option<f64>, Option<f64>);
/// (org, fingerprint, rows) from `ingest_windows`.
pub(crate) type CheckpointRow = (String, String, i64);
/// (org, id, name, email, division_id) from `users`.
pub(crate) type UserRow = (String, String, String, Option<String>, Option<String>);
/// (id, name, division_id, division_name) from `queues`.
pub(crate) type QueueRow = (String, String, Option<String>, Option<String>);

/// What a backend stored, read back with its own SQL, plus the few backend-specific hooks the
/// scenarios need.
pub(crate) trait Stored {
    /// The queue_id of a grain not grouped by queue.
    const NO_QUEUE: &'static str;
    /// Every stored grain, ordered by interval_start, user_id, media_type, queue_id.
    async fn grains(&self) -> Vec<Grain>;
    /// `interval_metrics`, ordered by user_id, metric.
    async fn long_rows(&self) -> Vec<LongRow>;
    /// How many rows `interval_metrics` has.
    async fn metric_values(&self) -> i64;
    /// `agent_interval_summary`, ordered by user_id.
    async fn summary_rows(&self) -> Vec<SummaryRow>;
    /// Every row of `ingest_windows`.
    async fn checkpoints(&self) -> Vec<CheckpointRow>;
    /// Prepares [`Stored::row_versions`] (SQLite: stamps every grain's fetched_at).
    async fn mark_row_versions(&self);
    /// The versions of the stored grain rows, ordered by user_id: changes when any row is rewritten.
    async fn row_versions(&self) -> String;
    /// Makes every insert or update of `ingest_windows` fail with "injected checkpoint failure".
    async fn fail_checkpoints(&self);
    /// `users`, ordered by org, id.
    async fn users(&self) -> Vec<UserRow>;
    /// Every row of `queues`.
    async fn queues(&self) -> Vec<QueueRow>;
}

fn grain<S: Stored>(user: &str, media: &str, start: &str, metrics: serde_json::Value) -> Grain {
    (user.to_owned(), media.to_owned(), S::NO_QUEUE.to_owned(), start.to_owned(), metrics)
}

/// Writes a day of two grains with five values; returns the query written.
pub(crate) async fn stores_one_row_per_grain_and_reads_back_through_both_views<S: Stored>(
    sink: &dyn Sink,
    stored: &S,
) -> Arc<AggregateQuery> {
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
    assert_eq!(stats, WriteStats { rows_deleted: 0 });

    assert_eq!(
        stored.grains().await,
        vec![
            grain::<S>(
                AGENT_A,
                "voice",
                nine,
                json!({"tAcw": {"count": 4, "sum": 120000}, "tHeld": {"count": 2, "sum": 7000},
                       "tHandle": {"count": 5, "sum": 1450300, "min": 95000, "max": 612000}})
            ),
            grain::<S>(
                AGENT_B,
                "chat",
                "2025-03-10T09:30:00Z",
                json!({"tHeld": {"count": 3, "sum": 6000}, "tHeldComplete": {"count": 1, "sum": 5000.5}})
            ),
        ]
    );
    assert_eq!(
        stored.long_rows().await,
        vec![
            (AGENT_A.into(), "tAcw".into(), Some(4), Some(120000.0), None),
            (AGENT_A.into(), "tHandle".into(), Some(5), Some(1450300.0), Some(612000.0)),
            (AGENT_A.into(), "tHeld".into(), Some(2), Some(7000.0), None),
            (AGENT_B.into(), "tHeld".into(), Some(3), Some(6000.0), None),
            (AGENT_B.into(), "tHeldComplete".into(), Some(1), Some(5000.5), None),
        ]
    );
    // hold_ms prefers tHeldComplete, falls back to tHeld; NULL where not read.
    assert_eq!(
        stored.summary_rows().await,
        vec![
            (AGENT_A.into(), Some(1450300.0), Some(5), Some(120000.0), Some(7000.0), None),
            (AGENT_B.into(), None, None, None, Some(5000.5), None),
        ]
    );
    assert_eq!(stored.checkpoints().await, vec![(ORG.into(), q.fingerprint(), 5)]);
    q
}

pub(crate) async fn window_replace_updates_changes_removes_vanished_rows_and_a_rerun_changes_nothing<S: Stored>(
    sink: &dyn Sink,
    stored: &S,
) {
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
        grain::<S>(AGENT_A, "voice", nine, json!({"tHandle": {"count": 6, "sum": 120}})),
        grain::<S>(AGENT_B, "voice", nine, json!({"tHandle": {"count": 2, "sum": 20}})),
    ];
    assert_eq!(stored.grains().await, expected);

    // A re-run with the same answer touches no row.
    stored.mark_row_versions().await;
    let before = stored.row_versions().await;
    let stats = sink.write_window(&k, &second).await.unwrap();
    assert_eq!(stats.rows_deleted, 0);
    assert_eq!(stored.grains().await, expected);
    assert_eq!(stored.row_versions().await, before);
    assert_eq!(stored.checkpoints().await.len(), 1);
}

pub(crate) async fn window_replace_keeps_the_metrics_of_other_queries_on_the_same_grain<S: Stored>(
    sink: &dyn Sink,
    stored: &S,
) {
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
        stored.grains().await,
        vec![
            grain::<S>(
                AGENT_A,
                "voice",
                nine,
                json!({"tAcw": {"count": 3, "sum": 30}, "tHandle": {"count": 5, "sum": 100}})
            ),
            grain::<S>(AGENT_B, "voice", nine, json!({"tHandle": {"count": 1, "sum": 7}})),
        ]
    );

    // tHandle no longer returned for A: A keeps tAcw; B changes.
    let stats = sink
        .write_window(&key(&handle, DAY.0, DAY.1), &[row(&[AGENT_B, "voice"], nine, "tHandle", 2, 9.0)])
        .await
        .unwrap();
    assert_eq!(stats.rows_deleted, 0);
    assert_eq!(
        stored.grains().await,
        vec![
            grain::<S>(AGENT_A, "voice", nine, json!({"tAcw": {"count": 3, "sum": 30}})),
            grain::<S>(AGENT_B, "voice", nine, json!({"tHandle": {"count": 2, "sum": 9}})),
        ]
    );

    // tAcw gone too: A has no metric left and is deleted; B is not tAcw's business.
    let stats = sink.write_window(&key(&acw, DAY.0, DAY.1), &[]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(
        stored.grains().await,
        vec![grain::<S>(AGENT_B, "voice", nine, json!({"tHandle": {"count": 2, "sum": 9}}))]
    );
}

pub(crate) async fn window_replace_stays_inside_the_window_the_filters_and_the_ungrouped_dimensions<S: Stored>(
    sink: &dyn Sink,
    stored: &S,
) {
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
    assert_eq!(stored.grains().await.len(), 4);

    // --media-type voice, nothing came back: only the voice grain of that day goes.
    let stats = sink.write_window(&key(&voice, DAY.0, DAY.1), &[]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(
        stored.grains().await,
        vec![
            grain::<S>(AGENT_A, "", nine, json!({"tHandle": {"count": 4, "sum": 4}})),
            grain::<S>(AGENT_A, "chat", nine, json!({"tHandle": {"count": 2, "sum": 2}})),
            grain::<S>(AGENT_A, "voice", next_nine, json!({"tHandle": {"count": 3, "sum": 3}})),
        ]
    );

    // Grouped by user only: its scope is media_type = '' and nothing else.
    let stats = sink.write_window(&key(&per_user, DAY.0, DAY.1), &[]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(
        stored.grains().await,
        vec![
            grain::<S>(AGENT_A, "chat", nine, json!({"tHandle": {"count": 2, "sum": 2}})),
            grain::<S>(AGENT_A, "voice", next_nine, json!({"tHandle": {"count": 3, "sum": 3}})),
        ]
    );
}

pub(crate) async fn a_failing_checkpoint_leaves_neither_rows_nor_checkpoint<S: Stored>(
    sink: &dyn Sink,
    checkpoints: &dyn CheckpointStore,
    stored: &S,
) {
    let q = query("tHandle", "userId,mediaType", &[]);
    let nine = "2025-03-10T09:00:00Z";
    sink.write_window(&key(&q, DAY.0, DAY.1), &[row(&[AGENT_A, "voice"], nine, "tHandle", 5, 100.0)]).await.unwrap();
    let before = stored.grains().await;

    stored.fail_checkpoints().await;

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

    assert_eq!(stored.grains().await, before);
    let done =
        checkpoints.completed_windows(ORG, &q.fingerprint(), window(DAY.0, "2025-03-20T00:00:00Z")).await.unwrap();
    assert_eq!(done, vec![window(DAY.0, DAY.1)]);
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

/// Two day windows of 40 agents written by two spawned tasks at once.
pub(crate) async fn two_writers_on_different_windows_at_the_same_time<S: Stored>(
    sink: Arc<dyn Sink>,
    checkpoints: &dyn CheckpointStore,
    stored: &S,
) {
    let q = query("tHandle,tAcw", "userId,mediaType", &[]);
    let tasks: Vec<_> = [(DAY, "2025-03-10"), (NEXT_DAY, "2025-03-11")]
        .into_iter()
        .map(|((start, end), day)| {
            let (sink, k, rows) = (sink.clone(), key(&q, start, end), day_rows(day, 40));
            tokio::spawn(async move { sink.write_window(&k, &rows).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap(), WriteStats { rows_deleted: 0 });
    }
    assert_eq!(stored.grains().await.len(), 2 * 40 * 48);
    assert_eq!(stored.metric_values().await, 2 * 40 * 48 * 2);
    let done = checkpoints.completed_windows(ORG, &q.fingerprint(), window(DAY.0, NEXT_DAY.1)).await.unwrap();
    assert_eq!(done, vec![window(DAY.0, DAY.1), window(NEXT_DAY.0, NEXT_DAY.1)]);
}

pub(crate) async fn completed_windows_are_those_of_the_org_and_fingerprint_inside_the_range(
    sink: &dyn Sink,
    checkpoints: &dyn CheckpointStore,
) {
    let q = query("tHandle", "userId", &[]);
    let other = query("tAcw", "userId", &[]);
    for (s, e) in [DAY, NEXT_DAY, ("2025-03-12T00:00:00Z", "2025-03-13T00:00:00Z")] {
        sink.write_window(&key(&q, s, e), &[]).await.unwrap();
    }
    sink.write_window(&key(&other, DAY.0, DAY.1), &[]).await.unwrap();
    let in_range =
        checkpoints.completed_windows(ORG, &q.fingerprint(), window(DAY.0, "2025-03-12T00:00:00Z")).await.unwrap();
    assert_eq!(in_range, vec![window(DAY.0, DAY.1), window(NEXT_DAY.0, NEXT_DAY.1)]);
    assert!(checkpoints
        .completed_windows("apac", &q.fingerprint(), window(DAY.0, NEXT_DAY.1))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(in_range[0].start(), t(DAY.0));
}

pub(crate) async fn users_and_queues_are_upserted_by_org_and_id<S: Stored>(
    directory: &dyn DirectoryWriter,
    stored: &S,
) {
    let user = |id: &str, name: &str, email: bool| User {
        id: id.into(),
        name: name.into(),
        email: email.then(|| format!("{name}@example.com")),
        state: "active".into(),
        division_id: Some("div-1".into()),
        division_name: Some("Home".into()),
    };
    assert_eq!(
        directory.write_users(ORG, &[user(AGENT_A, "ann", true), user(AGENT_B, "bob", false)]).await.unwrap(),
        2
    );
    assert_eq!(directory.write_users(ORG, &[user(AGENT_A, "anne", true)]).await.unwrap(), 1);
    assert_eq!(
        directory.write_users(ORG, &[user(AGENT_A, "anne", true), user(AGENT_A, "anna", true)]).await.unwrap(),
        1
    );
    assert_eq!(directory.write_users("apac", &[user(AGENT_A, "other org", false)]).await.unwrap(), 1);
    assert_eq!(
        stored.users().await,
        vec![
            ("apac".into(), AGENT_A.into(), "other org".into(), None, Some("div-1".into())),
            (ORG.into(), AGENT_A.into(), "anna".into(), Some("anna@example.com".into()), Some("div-1".into())),
            (ORG.into(), AGENT_B.into(), "bob".into(), None, Some("div-1".into())),
        ]
    );

    let queue = Queue { id: QUEUE_1.into(), name: "Sales".into(), division_id: Some("d1".into()), division_name: None };
    assert_eq!(directory.write_queues(ORG, &[queue.clone(), queue]).await.unwrap(), 1);
    assert_eq!(stored.queues().await, vec![(QUEUE_1.into(), "Sales".into(), Some("d1".into()), None)]);
    let renamed = Queue { id: QUEUE_1.into(), name: "Sales EMEA".into(), division_id: None, division_name: None };
    assert_eq!(directory.write_queues(ORG, &[renamed]).await.unwrap(), 1);
    assert_eq!(stored.queues().await, vec![(QUEUE_1.into(), "Sales EMEA".into(), None, None)]);
}
