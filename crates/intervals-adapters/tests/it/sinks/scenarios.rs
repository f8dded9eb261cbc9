//! The scenarios every database sink must pass, written once against the ports (`Sink`,
//! `CheckpointStore`, `DirectoryWriter`); each backend reads back what it stored through [`Stored`]
//! and calls them from thin tests of the same names.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use intervals_app::{CheckpointStore, DirectoryWriter, Sink, SinkError, WindowKey, WriteStats};
use intervals_domain::{rfc3339, AggregateQuery, MetricRow, Queue, Stats, User};
use serde_json::json;

use super::support::{
    key, query, row, stats_row, status_query, status_row, t, window, AGENT_A, AGENT_B, AGENT_C, DAY, NEXT_DAY, ORG,
    QUEUE_1,
};

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

/// (org, user_id, media_type, user_name) from `agent_interval_summary`.
pub(crate) type SummaryNameRow = (String, String, String, Option<String>);

/// A row of `agent_utilization`; times in ms (read as doubles whatever the backend's type).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Utilization {
    pub(crate) org: String,
    pub(crate) user_id: String,
    pub(crate) interval_start: String,
    pub(crate) interval_end: String,
    /// on_queue_ms, idle_ms, interacting_ms, communicating_ms, not_responding_ms, off_queue_ms.
    pub(crate) status: [f64; 6],
    /// handle_ms, acw_ms, hold_ms, talk_ms.
    pub(crate) conversation: [f64; 4],
    pub(crate) handle_count: i64,
    pub(crate) occupancy: Option<f64>,
    pub(crate) handle_per_on_queue: Option<f64>,
}

/// The columns of `agent_utilization`, in the contract's order.
pub(crate) const UTILIZATION_COLUMNS: [&str; 18] = [
    "org",
    "user_id",
    "granularity",
    "interval_start",
    "interval_end",
    "on_queue_ms",
    "idle_ms",
    "interacting_ms",
    "communicating_ms",
    "not_responding_ms",
    "off_queue_ms",
    "handle_ms",
    "handle_count",
    "acw_ms",
    "hold_ms",
    "talk_ms",
    "occupancy",
    "handle_per_on_queue",
];

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
    /// `agent_interval_summary`'s names, ordered by org, user_id, media_type.
    async fn summary_names(&self) -> Vec<SummaryNameRow>;
    /// `agent_utilization`, ordered by org, user_id, interval_start.
    async fn utilization(&self) -> Vec<Utilization>;
    /// The column names of a view, in order.
    async fn view_columns(&self, view: &str) -> Vec<String>;
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

/// What `agent_utilization` must show for `status` and `conversation` rows (each of one org and
/// of the queries written), computed here: one row per agent and bucket with status values, the
/// status qualifiers summed into their columns, the conversation metrics summed over the agent's
/// grains of the bucket (hold: tHeldComplete, else tHeld, per grain; talk likewise).
fn expected_utilization(org: &str, status: &[MetricRow], conversation: &[&[MetricRow]]) -> Vec<Utilization> {
    let columns = [
        "tSystemPresence:ON_QUEUE",
        "tAgentRoutingStatus:IDLE",
        "tAgentRoutingStatus:INTERACTING",
        "tAgentRoutingStatus:COMMUNICATING",
        "tAgentRoutingStatus:NOT_RESPONDING",
        "tAgentRoutingStatus:OFF_QUEUE",
    ];
    let mut by_bucket: BTreeMap<(String, DateTime<Utc>), Utilization> = BTreeMap::new();
    for r in status {
        let u = by_bucket.entry((r.group()[0].clone(), r.bucket().start())).or_insert_with(|| Utilization {
            org: org.to_owned(),
            user_id: r.group()[0].clone(),
            interval_start: rfc3339(r.bucket().start()),
            interval_end: rfc3339(r.bucket().end()),
            status: [0.0; 6],
            conversation: [0.0; 4],
            handle_count: 0,
            occupancy: None,
            handle_per_on_queue: None,
        });
        if let Some(i) = columns.iter().position(|c| *c == r.metric_key()) {
            u.status[i] += r.stats().sum.unwrap();
        }
    }
    // Each conversation grain: (user, rest of the group, bucket) -> metric -> stats.
    let mut grains: BTreeMap<(Vec<String>, DateTime<Utc>), BTreeMap<String, Stats>> = BTreeMap::new();
    for r in conversation.iter().flat_map(|rows| rows.iter()) {
        grains.entry((r.group().to_vec(), r.bucket().start())).or_default().insert(r.metric_key(), *r.stats());
    }
    for ((group, start), metrics) in &grains {
        let Some(u) = by_bucket.get_mut(&(group[0].clone(), *start)) else { continue };
        let sum = |m: &str| metrics.get(m).and_then(|s| s.sum);
        u.conversation[0] += sum("tHandle").unwrap_or(0.0);
        u.conversation[1] += sum("tAcw").unwrap_or(0.0);
        u.conversation[2] += sum("tHeldComplete").or(sum("tHeld")).unwrap_or(0.0);
        u.conversation[3] += sum("tTalkComplete").or(sum("tTalk")).unwrap_or(0.0);
        u.handle_count += metrics.get("tHandle").and_then(|s| s.count).unwrap_or(0) as i64;
    }
    let ratio = |a: f64, b: f64| (b != 0.0).then(|| a / b);
    by_bucket
        .into_values()
        .map(|mut u| {
            let [on_queue, idle, interacting, communicating, _, _] = u.status;
            u.occupancy = ratio(interacting, interacting + communicating + idle);
            u.handle_per_on_queue = ratio(u.conversation[0], on_queue);
            u
        })
        .collect()
}

fn status_day(interacting_a: f64) -> Vec<MetricRow> {
    let (nine, half_past) = ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z");
    vec![
        // A at 09:00: on queue, all routing statuses, and a presence the view does not show.
        status_row(AGENT_A, nine, "tSystemPresence", "ON_QUEUE", 1_500_000.0),
        status_row(AGENT_A, nine, "tSystemPresence", "AVAILABLE", 300_000.0),
        status_row(AGENT_A, nine, "tAgentRoutingStatus", "IDLE", 300_000.0),
        status_row(AGENT_A, nine, "tAgentRoutingStatus", "INTERACTING", interacting_a),
        status_row(AGENT_A, nine, "tAgentRoutingStatus", "COMMUNICATING", 100_000.0),
        status_row(AGENT_A, nine, "tAgentRoutingStatus", "NOT_RESPONDING", 20_000.0),
        status_row(AGENT_A, nine, "tAgentRoutingStatus", "OFF_QUEUE", 280_000.0),
        // A at 09:30: idle on queue, no conversation.
        status_row(AGENT_A, half_past, "tSystemPresence", "ON_QUEUE", 600_000.0),
        status_row(AGENT_A, half_past, "tAgentRoutingStatus", "IDLE", 600_000.0),
        // B at 09:00: away and off queue, so both ratios have a zero denominator.
        status_row(AGENT_B, nine, "tSystemPresence", "AWAY", 1_800_000.0),
        status_row(AGENT_B, nine, "tAgentRoutingStatus", "OFF_QUEUE", 1_800_000.0),
    ]
}

fn conversation_day(handle_a_voice: f64) -> Vec<MetricRow> {
    let nine = "2025-03-10T09:00:00Z";
    let handle = |count, sum| Stats { count: Some(count), sum: Some(sum), ..Stats::default() };
    vec![
        // A at 09:00 on two media types; chat has tHeld only (the fallback).
        stats_row(&[AGENT_A, "voice"], nine, "tHandle", handle(2, handle_a_voice)),
        row(&[AGENT_A, "voice"], nine, "tAcw", 2, 60_000.0),
        row(&[AGENT_A, "voice"], nine, "tHeldComplete", 1, 5_000.0),
        row(&[AGENT_A, "voice"], nine, "tHeld", 1, 6_000.0),
        row(&[AGENT_A, "voice"], nine, "tTalkComplete", 2, 500_000.0),
        stats_row(&[AGENT_A, "chat"], nine, "tHandle", handle(1, 300_000.0)),
        row(&[AGENT_A, "chat"], nine, "tHeld", 1, 7_000.0),
        row(&[AGENT_A, "chat"], nine, "tTalkComplete", 1, 200_000.0),
        // C: conversations without status time: no utilization row.
        stats_row(&[AGENT_C, "voice"], nine, "tHandle", handle(1, 1_000.0)),
    ]
}

/// The stored grains of `media_type <> ''`, i.e. the conversation grains of `conversation_day`.
async fn conversation_grains<S: Stored>(stored: &S) -> Vec<Grain> {
    stored.grains().await.into_iter().filter(|g| !g.1.is_empty()).collect()
}

/// A run with both families: the conversation query (by userId, mediaType) and the status query
/// (by userId alone) write the same window; each rewrite replaces its own keys only; the
/// `agent_utilization` view adds them up, per org, as computed here.
pub(crate) async fn mixed_windows_replace_their_own_keys_and_agent_utilization_adds_them_up<S: Stored>(
    sink: &dyn Sink,
    stored: &S,
) {
    assert_eq!(stored.view_columns("agent_utilization").await, UTILIZATION_COLUMNS);
    let conversation = query("tHandle,tAcw,tHeldComplete,tHeld,tTalkComplete", "userId,mediaType", &[]);
    let status = status_query();
    let (conversation_key, status_key) = (key(&conversation, DAY.0, DAY.1), key(&status, DAY.0, DAY.1));
    let (conv_rows, status_rows) = (conversation_day(600_000.0), status_day(900_000.0));
    sink.write_window(&status_key, &status_rows).await.unwrap();
    sink.write_window(&conversation_key, &conv_rows).await.unwrap();

    let nine = "2025-03-10T09:00:00Z";
    let grains = stored.grains().await;
    let a_status = grains.iter().find(|g| g.0 == AGENT_A && g.1.is_empty() && g.3 == nine).expect("A's status grain");
    assert_eq!(a_status.2, S::NO_QUEUE);
    assert_eq!(a_status.4["tAgentRoutingStatus:INTERACTING"], json!({"sum": 900000}));
    assert_eq!(grains.len(), 6, "A voice, A chat, C voice, A and B status at 09:00, A status at 09:30");

    let expected = expected_utilization(ORG, &status_rows, &[&conv_rows]);
    // The arithmetic above, spelled out for A at 09:00 and checked against the rows: voice and chat
    // summed, hold from tHeldComplete on voice and tHeld on chat.
    let a = &expected[0];
    assert_eq!((a.user_id.as_str(), a.interval_start.as_str()), (AGENT_A, nine));
    assert_eq!(a.status, [1_500_000.0, 300_000.0, 900_000.0, 100_000.0, 20_000.0, 280_000.0]);
    assert_eq!(a.conversation, [900_000.0, 60_000.0, 12_000.0, 700_000.0]);
    assert_eq!(a.handle_count, 3);
    assert_eq!(a.occupancy, Some(900_000.0 / 1_300_000.0));
    assert_eq!(a.handle_per_on_queue, Some(900_000.0 / 1_500_000.0));
    assert_eq!((expected[1].occupancy, expected[1].handle_per_on_queue), (Some(0.0), Some(0.0)), "A at 09:30");
    assert_eq!((expected[2].occupancy, expected[2].handle_per_on_queue), (None, None), "B: zero denominators");
    assert_eq!(expected.len(), 3, "C has no status time");
    assert_eq!(stored.utilization().await, expected);

    // The status window again, changed, without B: only status keys move; B's grain (status only) goes.
    let before = conversation_grains(stored).await;
    let status_rows: Vec<MetricRow> = status_day(1_200_000.0).into_iter().filter(|r| r.group()[0] != AGENT_B).collect();
    let stats = sink.write_window(&status_key, &status_rows).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(conversation_grains(stored).await, before);
    assert_eq!(stored.utilization().await, expected_utilization(ORG, &status_rows, &[&conv_rows]));

    // The conversation window again, changed, without C: status keys stay.
    let status_grains: Vec<Grain> = stored.grains().await.into_iter().filter(|g| g.1.is_empty()).collect();
    let conv_rows: Vec<MetricRow> =
        conversation_day(480_000.0).into_iter().filter(|r| r.group()[0] != AGENT_C).collect();
    let stats = sink.write_window(&conversation_key, &conv_rows).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    let after: Vec<Grain> = stored.grains().await.into_iter().filter(|g| g.1.is_empty()).collect();
    assert_eq!(after, status_grains);
    let emea = expected_utilization(ORG, &status_rows, &[&conv_rows]);
    assert_eq!(emea[0].handle_per_on_queue, Some(780_000.0 / 1_500_000.0));
    assert_eq!(emea[0].occupancy, Some(1_200_000.0 / 1_600_000.0));
    assert_eq!(stored.utilization().await, emea);

    // Another org whose conversation query groups by userId alone: its grain is the status grain,
    // holding both families' keys; each column reads its own keys, so nothing is counted twice.
    let per_user = query("tHandle,tAcw", "userId", &[]);
    let apac = |q: &Arc<AggregateQuery>| WindowKey::new("apac", q.clone(), window(DAY.0, DAY.1));
    let apac_conv = vec![
        stats_row(&[AGENT_A], nine, "tHandle", Stats { count: Some(4), sum: Some(750_000.0), ..Stats::default() }),
        row(&[AGENT_A], nine, "tAcw", 4, 40_000.0),
    ];
    let apac_status: Vec<MetricRow> = status_day(900_000.0).into_iter().filter(|r| r.group()[0] == AGENT_A).collect();
    sink.write_window(&apac(&per_user), &apac_conv).await.unwrap();
    sink.write_window(&apac(&status), &apac_status).await.unwrap();
    let mut all = expected_utilization("apac", &apac_status, &[&apac_conv]);
    assert_eq!(all[0].conversation, [750_000.0, 40_000.0, 0.0, 0.0]);
    assert_eq!(all[0].handle_per_on_queue, Some(0.5));
    all.extend(emea.clone());
    assert_eq!(stored.utilization().await, all);

    // Its status window, now empty: the 09:00 grain keeps its conversation keys (the bucket has no
    // status time any more), the 09:30 grain, status only, goes.
    let stats = sink.write_window(&apac(&status), &[]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(stored.utilization().await, emea);
    let shared = stored.grains().await.into_iter().filter(|g| g.0 == AGENT_A && g.1.is_empty() && g.3 == nine);
    let keys: Vec<Vec<String>> =
        shared.map(|g| g.4.as_object().unwrap().keys().cloned().collect::<Vec<String>>()).collect();
    assert!(keys.contains(&vec!["tAcw".to_owned(), "tHandle".to_owned()]), "{keys:?}");
}

/// `agent_interval_summary.user_name`: NULL until the agent is stored in `users`, then the name of
/// that org's user, on every grain of the agent.
pub(crate) async fn the_summary_names_the_agent_once_users_are_stored<S: Stored>(
    sink: &dyn Sink,
    directory: &dyn DirectoryWriter,
    stored: &S,
) {
    let summary = stored.view_columns("agent_interval_summary").await;
    let classic = [
        "org",
        "user_id",
        "media_type",
        "queue_id",
        "granularity",
        "interval_start",
        "interval_end",
        "handle_ms",
        "handle_count",
        "acw_ms",
        "hold_ms",
        "talk_ms",
        "fetched_at",
        "user_name",
    ];
    assert_eq!(summary, classic);
    let conversation = query("tHandle", "userId,mediaType", &[]);
    let per_media = query("tHandle", "mediaType", &[]);
    let nine = "2025-03-10T09:00:00Z";
    sink.write_window(
        &key(&conversation, DAY.0, DAY.1),
        &[row(&[AGENT_A, "voice"], nine, "tHandle", 1, 1.0), row(&[AGENT_B, "chat"], nine, "tHandle", 2, 2.0)],
    )
    .await
    .unwrap();
    sink.write_window(
        &key(&status_query(), DAY.0, DAY.1),
        &[status_row(AGENT_A, nine, "tSystemPresence", "ON_QUEUE", 9.0)],
    )
    .await
    .unwrap();
    sink.write_window(&key(&per_media, DAY.0, DAY.1), &[row(&["voice"], nine, "tHandle", 3, 3.0)]).await.unwrap();
    let names = |a: Option<&str>, b: Option<&str>| -> Vec<SummaryNameRow> {
        vec![
            (ORG.into(), String::new(), "voice".into(), None),
            (ORG.into(), AGENT_A.into(), String::new(), a.map(String::from)),
            (ORG.into(), AGENT_A.into(), "voice".into(), a.map(String::from)),
            (ORG.into(), AGENT_B.into(), "chat".into(), b.map(String::from)),
        ]
    };
    assert_eq!(stored.summary_names().await, names(None, None));

    let user = |id: &str, name: &str| User {
        id: id.into(),
        name: name.into(),
        email: None,
        state: "active".into(),
        division_id: None,
        division_name: None,
    };
    directory.write_users("apac", &[user(AGENT_B, "Bob in apac")]).await.unwrap();
    directory.write_users(ORG, &[user(AGENT_A, "Ann")]).await.unwrap();
    assert_eq!(stored.summary_names().await, names(Some("Ann"), None));
    directory.write_users(ORG, &[user(AGENT_A, "Anne"), user(AGENT_B, "Bob")]).await.unwrap();
    assert_eq!(stored.summary_names().await, names(Some("Anne"), Some("Bob")));
}

/// Two conversation queries with different group-bys in one store (the daemon's agent query by
/// userId,mediaType and its queue query by queueId,mediaType, both reading tHandle): re-reading
/// either never removes or changes the other's rows, the queue query's non-ACD rows (no queueId,
/// stored with an empty user and queue) included; each still removes its own vanished rows.
pub(crate) async fn two_queries_with_different_group_bys_never_replace_each_others_rows<S: Stored>(
    sink: &dyn Sink,
    stored: &S,
) {
    let agent = query("tHandle", "userId,mediaType", &[]);
    let by_queue = query("tHandle", "queueId,mediaType", &[]);
    let nine = "2025-03-10T09:00:00Z";
    let agents =
        [row(&[AGENT_A, "voice"], nine, "tHandle", 5, 100.0), row(&[AGENT_B, "voice"], nine, "tHandle", 1, 7.0)];
    let queues = [row(&[QUEUE_1, "voice"], nine, "tHandle", 4, 80.0), row(&["", "voice"], nine, "tHandle", 2, 27.0)];
    sink.write_window(&key(&agent, DAY.0, DAY.1), &agents).await.unwrap();
    sink.write_window(&key(&by_queue, DAY.0, DAY.1), &queues).await.unwrap();
    let both = stored.grains().await;
    assert_eq!(both.len(), 4, "{both:#?}");

    // Each re-read of the same figures changes nothing, whichever query is read last.
    for _ in 0..2 {
        let stats = sink.write_window(&key(&agent, DAY.0, DAY.1), &agents).await.unwrap();
        assert_eq!(stats.rows_deleted, 0);
        assert_eq!(stored.grains().await, both, "the agent query's re-read left the queue query's rows");
        let stats = sink.write_window(&key(&by_queue, DAY.0, DAY.1), &queues).await.unwrap();
        assert_eq!(stats.rows_deleted, 0);
        assert_eq!(stored.grains().await, both, "the queue query's re-read left the agent query's rows");
    }

    // Each query's vanished rows go, and only those.
    let stats = sink.write_window(&key(&agent, DAY.0, DAY.1), &agents[..1]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1, "agent B's row");
    let stats = sink.write_window(&key(&by_queue, DAY.0, DAY.1), &queues[1..]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1, "queue 1's row");
    let left = stored.grains().await;
    assert_eq!(left.len(), 2, "{left:#?}");
    assert!(left.contains(&both.iter().find(|g| g.0 == AGENT_A).unwrap().clone()), "agent A kept: {left:#?}");
    let non_acd = both.iter().find(|g| g.0 != AGENT_A && g.0 != AGENT_B && g.2 == S::NO_QUEUE).unwrap();
    assert!(left.contains(non_acd), "the non-ACD row kept: {left:#?}");
    assert_eq!(non_acd.4, json!({"tHandle": {"count": 2, "sum": 27}}));
}
