//! Builders shared by the sink tests: queries, rows and windows with readable literals.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use intervals_app::WindowKey;
use intervals_domain::{AggregateQuery, Filters, Granularity, MetricName, MetricRow, Stats, TimeWindow, Tz};

pub(crate) const AGENT_A: &str = "0a1b2c3d-0000-4000-8000-00000000000a";
pub(crate) const AGENT_B: &str = "0a1b2c3d-0000-4000-8000-00000000000b";
pub(crate) const AGENT_C: &str = "0a1b2c3d-0000-4000-8000-00000000000c";
pub(crate) const QUEUE_1: &str = "9f000000-0000-4000-8000-000000000001";
pub(crate) const ORG: &str = "emea";
pub(crate) const DAY: (&str, &str) = ("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z");
pub(crate) const NEXT_DAY: (&str, &str) = ("2025-03-11T00:00:00Z", "2025-03-12T00:00:00Z");

/// A PT30M UTC query.
pub(crate) fn query(metrics: &str, group_by: &str, media_types: &[&str]) -> Arc<AggregateQuery> {
    let media: Vec<String> = media_types.iter().map(|m| m.to_string()).collect();
    Arc::new(
        AggregateQuery::new(
            AggregateQuery::parse_metrics(metrics).unwrap(),
            AggregateQuery::parse_group_by(group_by).unwrap(),
            Granularity::Pt30m,
            Tz::UTC,
            Filters::new(&media, &[]).unwrap(),
        )
        .unwrap(),
    )
}

/// The PT30M UTC status query: `tAgentRoutingStatus,tSystemPresence`, grouped by userId alone.
pub(crate) fn status_query() -> Arc<AggregateQuery> {
    query("tAgentRoutingStatus,tSystemPresence", "userId", &[])
}

/// A status value of the half-hour bucket starting at `start`: `metric:qualifier` with a sum only.
pub(crate) fn status_row(user: &str, start: &str, metric: &str, qualifier: &str, sum: f64) -> MetricRow {
    let plain = stats_row(&[user], start, metric, Stats { sum: Some(sum), ..Stats::default() });
    MetricRow::new(plain.group().to_vec(), plain.bucket(), plain.metric(), Some(qualifier.to_owned()), *plain.stats())
}

pub(crate) fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// `[start, end)`.
pub(crate) fn window(start: &str, end: &str) -> TimeWindow {
    TimeWindow::new(t(start), t(end)).unwrap()
}

pub(crate) fn key(query: &Arc<AggregateQuery>, start: &str, end: &str) -> WindowKey {
    WindowKey::new(ORG, query.clone(), window(start, end))
}

/// A row of the half-hour bucket starting at `start`, with count and sum.
pub(crate) fn row(group: &[&str], start: &str, metric: &str, count: u64, sum: f64) -> MetricRow {
    stats_row(group, start, metric, Stats { count: Some(count), sum: Some(sum), ..Stats::default() })
}

pub(crate) fn stats_row(group: &[&str], start: &str, metric: &str, stats: Stats) -> MetricRow {
    let start = t(start);
    MetricRow::new(
        group.iter().map(|g| g.to_string()).collect(),
        TimeWindow::new(start, start + Duration::minutes(30)).unwrap(),
        MetricName::parse(metric).unwrap(),
        None,
        stats,
    )
}

/// An `oServiceLevel` row's statistics: 3 of 4 within the target of 80 %.
pub(crate) fn service_level() -> Stats {
    Stats { ratio: Some(0.75), numerator: Some(3.0), denominator: Some(4.0), target: Some(0.8), ..Stats::default() }
}

/// The query of the golden files: tHandle, tAcw, nConnected by userId, mediaType.
pub(crate) fn golden_query() -> Arc<AggregateQuery> {
    query("tHandle,tAcw,nConnected", "userId,mediaType", &[])
}

/// The rows of the golden files as two day windows, each deliberately out of order; the second
/// day comes first.
pub(crate) fn golden_windows() -> Vec<(WindowKey, Vec<MetricRow>)> {
    let q = golden_query();
    let nine = "2025-03-10T09:00:00Z";
    let full = |count, sum, min, max| Stats {
        count: Some(count),
        sum: Some(sum),
        min: Some(min),
        max: Some(max),
        ..Stats::default()
    };
    let mut qualified = stats_row(&[AGENT_A, "voice"], nine, "tHandle", Stats { count: Some(1), ..Stats::default() });
    qualified = MetricRow::new(
        qualified.group().to_vec(),
        qualified.bucket(),
        qualified.metric(),
        Some("q".into()),
        *qualified.stats(),
    );
    let day1 = vec![
        stats_row(&[AGENT_B, "voice"], nine, "tHandle", full(5, 1450300.0, 95000.0, 612000.0)),
        qualified,
        stats_row(&[AGENT_A, "voice"], nine, "nConnected", Stats { count: Some(6), ..Stats::default() }),
        row(&[AGENT_A, "chat"], "2025-03-10T09:30:00Z", "tAcw", 1, 2500.5),
        stats_row(&[AGENT_A, "voice"], nine, "tHandle", full(2, 300000.0, 100000.0, 200000.0)),
    ];
    let day2 = vec![stats_row(&[AGENT_A, "voice"], "2025-03-11T00:00:00Z", "tHandle", full(1, 1000.0, 1000.0, 1000.0))];
    vec![
        (key(&q, "2025-03-11T00:00:00Z", "2025-03-12T00:00:00Z"), day2),
        (key(&q, "2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"), day1),
    ]
}

/// The file names in `dir`, sorted (hidden temporary files included).
pub(crate) fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// A golden file's content.
pub(crate) fn golden(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/sinks/golden").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
