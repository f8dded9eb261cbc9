//! The report use case against an in-memory reader: what it picks, what it refuses (naming what is
//! stored), and how times of day follow the display zone across a change of UTC offset.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, NaiveTime, Utc};
use intervals_domain::report::{HeatMeasure, VolumeBucket};
use intervals_domain::{Granularity, TimeSpec, TimeWindow, Tz};

use super::{build_report, offset_parts, ReportError, ReportRequest};
use crate::ports::{AgentSlot, IntervalsReader, SinkError, StoredSeries, StoredWindow};

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn w(a: &str, b: &str) -> TimeWindow {
    TimeWindow::new(t(a), t(b)).unwrap()
}

/// A store holding `inventory`; at 09:00 Dublin time each day (08:00 UTC in summer time, 09:00 UTC
/// in winter), agent a handles one interaction, b and c three each, and a and b spend 30 of 60
/// minutes interacting; c has no status time.
#[derive(Default)]
struct FakeReader {
    inventory: Vec<StoredSeries>,
    windows: Vec<StoredWindow>,
    slot_parts: Mutex<Vec<TimeWindow>>,
}

#[async_trait]
impl IntervalsReader for FakeReader {
    async fn inventory(&self) -> Result<Vec<StoredSeries>, SinkError> {
        Ok(self.inventory.clone())
    }
    async fn coverage(&self, _: &str, range: TimeWindow) -> Result<Vec<StoredWindow>, SinkError> {
        Ok(self
            .windows
            .iter()
            .filter(|s| s.window.end() > range.start() && s.window.start() < range.end())
            .cloned()
            .collect())
    }
    async fn volume(&self, _: &str, _: Granularity, range: TimeWindow) -> Result<Vec<VolumeBucket>, SinkError> {
        Ok(vec![
            VolumeBucket { start: range.start(), media_type: "voice".into(), handled: 2, handle_ms: 10.0 },
            VolumeBucket { start: range.start(), media_type: "chat".into(), handled: 1, handle_ms: 5.0 },
        ])
    }
    async fn agent_slots(&self, _: &str, _: Granularity, range: TimeWindow) -> Result<Vec<AgentSlot>, SinkError> {
        self.slot_parts.lock().unwrap().push(range);
        let summer = range.start() >= t("2025-03-30T01:00:00Z");
        let days = (range.duration().num_hours() as f64 / 24.0).ceil();
        Ok([("a", 1.0, true), ("b", 3.0, true), ("c", 3.0, false)]
            .into_iter()
            .map(|(user, per_day, has_status)| {
                let status = if has_status { days } else { 0.0 };
                AgentSlot {
                    user_id: user.into(),
                    utc_minute: if summer { 8 * 60 } else { 9 * 60 },
                    handled: (per_day * days) as u64,
                    handle_ms: 1000.0 * per_day * days,
                    acw_ms: 100.0 * days,
                    hold_ms: 10.0 * days,
                    has_status,
                    on_queue_ms: 90.0 * status,
                    interacting_ms: 30.0 * status,
                    occupancy_base_ms: 60.0 * status,
                }
            })
            .collect())
    }
    async fn user_names(&self, _: &str) -> Result<HashMap<String, String>, SinkError> {
        Ok(HashMap::from([("a".to_owned(), "Ann".to_owned()), ("b".to_owned(), "Bea".to_owned())]))
    }
}

fn series(org: &str, granularity: Granularity, span: TimeWindow) -> StoredSeries {
    StoredSeries { org: org.into(), granularity, span, grains: 10 }
}

fn request(org: Option<&str>) -> ReportRequest {
    ReportRequest {
        org: org.map(str::to_owned),
        from: None,
        to: None,
        granularity: None,
        time_zone: Tz::Europe__Dublin,
    }
}

fn march() -> TimeWindow {
    w("2025-03-27T00:00:00Z", "2025-04-03T00:00:00Z")
}

#[tokio::test]
async fn an_empty_store_says_so() {
    let err = build_report(&FakeReader::default(), "sqlite:x.db", &request(None)).await.unwrap_err();
    assert!(matches!(err, ReportError::NothingStored { .. }), "{err:?}");
    assert!(err.to_string().contains("sqlite:x.db holds no intervals yet"), "{err}");
}

#[tokio::test]
async fn choices_that_match_nothing_name_what_is_stored() {
    let reader = FakeReader {
        inventory: vec![series("emea", Granularity::Pt30m, march()), series("apac", Granularity::P1d, march())],
        ..FakeReader::default()
    };
    // (request, the message starts with)
    let cases: Vec<(ReportRequest, &str)> = vec![
        (request(None), "several orgs are stored: pass --org"),
        (request(Some("nope")), "org \"nope\" is not stored"),
        (ReportRequest { granularity: Some(Granularity::Pt15m), ..request(Some("emea")) }, "org \"emea\" has no PT15M"),
        (
            ReportRequest {
                from: Some(TimeSpec::parse("2024-01-01").unwrap()),
                to: Some(TimeSpec::parse("2024-01-02").unwrap()),
                ..request(Some("emea"))
            },
            "org \"emea\" has no PT30M intervals between 2024-01-01T00:00:00Z and 2024-01-02T00:00:00Z",
        ),
    ];
    for (req, start) in cases {
        let message = build_report(&reader, "sqlite:x.db", &req).await.unwrap_err().to_string();
        assert!(message.starts_with(start), "{message}");
        assert!(
            message.contains("org \"apac\", P1D: 2025-03-27T00:00:00Z .. 2025-04-03T00:00:00Z (10 rows)"),
            "{message}"
        );
        assert!(message.contains("org \"emea\", PT30M"), "{message}");
    }
    let inverted = ReportRequest {
        from: Some(TimeSpec::parse("2025-03-29").unwrap()),
        to: Some(TimeSpec::parse("2025-03-28").unwrap()),
        ..request(Some("emea"))
    };
    assert!(matches!(build_report(&reader, "x", &inverted).await, Err(ReportError::EmptyRange { .. })));
}

#[tokio::test]
async fn the_stored_range_is_shown_when_none_is_given_and_agents_are_sorted_by_handled_count() {
    let fetched = t("2025-04-03T06:00:00Z");
    let window = |a, b| StoredWindow {
        fingerprint: "f1".into(),
        description: Some("conversation: tHandle".into()),
        granularity: Some(Granularity::Pt30m),
        window: w(a, b),
        fetched_at: fetched,
    };
    let reader = FakeReader {
        inventory: vec![series("emea", Granularity::Pt30m, march())],
        windows: vec![
            window("2025-03-27T00:00:00Z", "2025-03-28T00:00:00Z"),
            window("2025-03-29T00:00:00Z", "2025-04-03T00:00:00Z"),
            StoredWindow {
                fingerprint: "other-granularity".into(),
                granularity: Some(Granularity::P1d),
                ..window("2025-03-27T00:00:00Z", "2025-04-03T00:00:00Z")
            },
        ],
        ..FakeReader::default()
    };
    let report = build_report(&reader, "sqlite:x.db", &request(None)).await.unwrap();
    // Widened to whole days in Dublin, where 2025-04-03T00:00Z is 01:00 in the morning.
    let shown = w("2025-03-27T00:00:00Z", "2025-04-03T23:00:00Z");
    assert_eq!((report.org.as_str(), report.range, report.granularity), ("emea", shown, Granularity::Pt30m));
    let users: Vec<&str> = report.agents.iter().map(|a| a.user_id.as_str()).collect();
    assert_eq!(users, ["b", "c", "a"], "most handled first, then by id");
    // The agents' totals are their slots added up over both parts of the range (4 + 5 days: cut
    // where Dublin moves to UTC+1), named where the store has a name.
    let line = |user: &str| report.agents.iter().find(|a| a.user_id == user).unwrap();
    let b = line("b");
    assert_eq!(
        (b.name.as_deref(), b.handled, b.handle_ms, b.acw_ms, b.hold_ms),
        (Some("Bea"), 27, 27_000.0, 900.0, 90.0)
    );
    assert_eq!((b.on_queue_ms, b.interacting_ms, b.occupancy_base_ms), (Some(810.0), Some(270.0), Some(540.0)));
    let c = line("c");
    assert_eq!((c.name.as_deref(), c.handled), (None, 27));
    assert_eq!(
        (c.on_queue_ms, c.interacting_ms, c.occupancy_base_ms),
        (None, None, None),
        "no status time, no status columns"
    );
    assert_eq!((line("a").handled, line("a").occupancy()), (9, Some(0.5)));
    assert_eq!(report.coverage.len(), 1, "a query of another granularity is not this report's");
    let line = &report.coverage[0];
    assert_eq!((line.windows, line.last_fetched), (2, Some(fetched)));
    assert_eq!(
        line.gaps,
        [w("2025-03-28T00:00:00Z", "2025-03-29T00:00:00Z"), w("2025-04-03T00:00:00Z", "2025-04-03T23:00:00Z")]
    );
    let media: Vec<&str> = report.volume.iter().map(|v| v.media_type.as_str()).collect();
    assert_eq!(media, ["chat", "voice"], "time, then media type");
}

#[tokio::test]
async fn times_of_day_follow_the_display_zone_across_a_change_of_offset() {
    let reader = FakeReader { inventory: vec![series("emea", Granularity::Pt30m, march())], ..FakeReader::default() };
    let report = build_report(&reader, "x", &request(None)).await.unwrap();
    assert_eq!(
        *reader.slot_parts.lock().unwrap(),
        [w("2025-03-27T00:00:00Z", "2025-03-30T01:00:00Z"), w("2025-03-30T01:00:00Z", "2025-04-03T23:00:00Z")],
        "read in two parts, cut where Dublin moves to UTC+1"
    );
    let map = &report.heat_map;
    assert_eq!(map.measure, HeatMeasure::Occupancy);
    assert_eq!(map.slots, [NaiveTime::from_hms_opt(9, 0, 0).unwrap()], "09:00 local in both parts");
    let rows: Vec<(&str, Vec<Option<f64>>)> = map.rows.iter().map(|r| (r.user_id.as_str(), r.cells.clone())).collect();
    assert_eq!(rows, [("b", vec![Some(0.5)]), ("c", vec![None]), ("a", vec![Some(0.5)])], "in the agents' order");
}

#[test]
fn a_range_is_cut_at_every_offset_change_and_nowhere_else() {
    let year = w("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
    let parts = offset_parts(year, Tz::Europe__Dublin);
    let cuts: Vec<(String, i64)> = parts.iter().map(|(p, o)| (intervals_domain::rfc3339(p.start()), *o)).collect();
    assert_eq!(
        cuts,
        [
            ("2025-01-01T00:00:00Z".to_owned(), 0),
            ("2025-03-30T01:00:00Z".to_owned(), 60),
            ("2025-10-26T01:00:00Z".to_owned(), 0)
        ]
    );
    assert_eq!(offset_parts(year, Tz::UTC), [(year, 0)]);
    // St John's: a half-hour zone.
    let parts = offset_parts(w("2025-03-01T00:00:00Z", "2025-04-01T00:00:00Z"), Tz::America__St_Johns);
    assert_eq!(parts.iter().map(|(_, o)| *o).collect::<Vec<_>>(), [-210, -150]);
}
