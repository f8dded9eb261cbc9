//! Stats, MetricRow and AggregateResponse::into_rows: results -> group -> data -> interval ->
//! metrics[] to facts.

use intervals_domain::{
    AggregateQuery, AggregateResponse, BucketData, Dimension, DomainError, Filters, Granularity, GroupResult,
    MetricData, MetricName, MetricRow, Stats, TimeWindow, Tz,
};

use crate::win;

pub(crate) const AGENT: &str = "6d9f1a2e-0000-4000-8000-000000000001";

/// The metrics of the request in docs/genesys-api.md section 2.7, in its order.
pub(crate) const REQUEST_METRICS: &str = "tHandle,tAcw,tHeld,tHeldComplete,tTalk,tTalkComplete,nConnected,tAnswered";

pub(crate) fn timer(max: f64, min: f64, count: u64, sum: f64) -> Stats {
    Stats { max: Some(max), min: Some(min), count: Some(count), sum: Some(sum), ..Stats::default() }
}

pub(crate) fn count_only(count: u64) -> Stats {
    Stats { count: Some(count), ..Stats::default() }
}

pub(crate) fn metric(name: &str, stats: Stats) -> MetricData {
    MetricData { metric: name.to_owned(), qualifier: None, stats }
}

fn group(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// docs/genesys-api.md section 2.8, the example response, as domain structs.
pub(crate) fn example_response() -> AggregateResponse {
    AggregateResponse {
        results: vec![GroupResult {
            group: group(&[("userId", AGENT), ("mediaType", "voice")]),
            data: vec![BucketData {
                interval: "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z".to_owned(),
                metrics: vec![
                    metric("nConnected", count_only(6)),
                    metric("tAcw", timer(61000.0, 4200.0, 5, 118400.0)),
                    metric("tAnswered", timer(9100.0, 1200.0, 6, 21400.0)),
                    metric("tHandle", timer(612000.0, 95000.0, 5, 1450300.0)),
                    metric("tHeldComplete", timer(120000.0, 15000.0, 2, 135000.0)),
                    metric("tTalkComplete", timer(480000.0, 80000.0, 5, 1196900.0)),
                ],
            }],
        }],
    }
}

pub(crate) fn query(metrics: &str, group_by: &str) -> AggregateQuery {
    AggregateQuery::new(
        AggregateQuery::parse_metrics(metrics).expect("metrics"),
        AggregateQuery::parse_group_by(group_by).expect("group by"),
        Granularity::Pt30m,
        Tz::UTC,
        Filters::none(),
    )
    .expect("query")
}

fn m(name: &str) -> MetricName {
    MetricName::parse(name).expect("metric")
}

/// (group, metric key, stats) of each row, for compact comparisons.
fn summary(rows: &[MetricRow]) -> Vec<(Vec<String>, String, Stats)> {
    rows.iter().map(|r| (r.group().to_vec(), r.metric_key(), *r.stats())).collect()
}

#[test]
fn the_example_response_becomes_one_row_per_metric() {
    let rows = example_response().into_rows(&query(REQUEST_METRICS, "userId,mediaType")).expect("rows");
    let g = vec![AGENT.to_owned(), "voice".to_owned()];
    // tHeld and tTalk were asked for but not returned: no row, no invented zero.
    let want = vec![
        (g.clone(), "nConnected".to_owned(), count_only(6)),
        (g.clone(), "tAcw".to_owned(), timer(61000.0, 4200.0, 5, 118400.0)),
        (g.clone(), "tAnswered".to_owned(), timer(9100.0, 1200.0, 6, 21400.0)),
        (g.clone(), "tHandle".to_owned(), timer(612000.0, 95000.0, 5, 1450300.0)),
        (g.clone(), "tHeldComplete".to_owned(), timer(120000.0, 15000.0, 2, 135000.0)),
        (g.clone(), "tTalkComplete".to_owned(), timer(480000.0, 80000.0, 5, 1196900.0)),
    ];
    assert_eq!(summary(&rows), want);
    for row in &rows {
        assert_eq!(row.bucket(), win("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"));
        assert_eq!(row.qualifier(), None);
    }
    let handle = &rows[3];
    assert_eq!(handle.metric(), m("tHandle"));
    let stats = handle.stats();
    assert_eq!(
        (stats.count, stats.sum, stats.min, stats.max),
        (Some(5), Some(1450300.0), Some(95000.0), Some(612000.0))
    );
    assert_eq!((stats.ratio, stats.numerator, stats.denominator, stats.target), (None, None, None, None));
}

#[test]
fn grouping_follows_the_query() {
    // (group by, the group values of every row)
    let table: &[(&str, &[&str])] = &[
        ("userId,mediaType", &[AGENT, "voice"]),
        ("mediaType,userId", &["voice", AGENT]),
        ("userId", &[AGENT]),
        ("mediaType", &["voice"]),
        // A dimension the API left out of the group: the empty string.
        ("userId,mediaType,queueId", &[AGENT, "voice", ""]),
        ("queueId", &[""]),
    ];
    for (group_by, values) in table {
        let q = query("tHandle,tAcw", group_by);
        let rows = example_response().into_rows(&q).expect("rows");
        assert_eq!(rows.len(), 2, "{group_by}");
        for row in &rows {
            assert_eq!(row.group(), *values, "{group_by}");
        }
        let row = &rows[0];
        for (i, d) in q.group_by().iter().enumerate() {
            assert_eq!(row.dimension_value(&q, *d), Some(values[i]), "{group_by}: {d}");
        }
        for d in [Dimension::USER_ID, Dimension::MEDIA_TYPE, Dimension::QUEUE_ID] {
            if !q.group_by().contains(&d) {
                assert_eq!(row.dimension_value(&q, d), None, "{group_by}: {d} not grouped");
            }
        }
    }
}

#[test]
fn only_requested_metrics_become_rows() {
    // (requested metrics, metrics of the rows in response order)
    let table: &[(&str, &[&str])] = &[
        ("tHandle,tAcw,tHeldComplete", &["tAcw", "tHandle", "tHeldComplete"]),
        ("tHeldComplete,tHandle", &["tHandle", "tHeldComplete"]),
        ("nConnected", &["nConnected"]),
        ("tHeld,tTalk", &[]),
        (REQUEST_METRICS, &["nConnected", "tAcw", "tAnswered", "tHandle", "tHeldComplete", "tTalkComplete"]),
    ];
    for (requested, want) in table {
        let rows = example_response().into_rows(&query(requested, "userId,mediaType")).expect("rows");
        let got: Vec<String> = rows.iter().map(MetricRow::metric_key).collect();
        assert_eq!(got, *want, "{requested}");
    }
}

#[test]
fn empty_responses_give_no_rows() {
    let q = query("tHandle", "userId");
    let empty_group = GroupResult { group: group(&[("userId", AGENT)]), data: vec![] };
    let empty_bucket = GroupResult {
        group: group(&[("userId", AGENT)]),
        data: vec![BucketData { interval: "2025-03-10T09:00:00Z/2025-03-10T09:30:00Z".to_owned(), metrics: vec![] }],
    };
    let empty_stats = GroupResult {
        group: group(&[("userId", AGENT)]),
        data: vec![BucketData {
            interval: "2025-03-10T09:00:00Z/2025-03-10T09:30:00Z".to_owned(),
            metrics: vec![metric("tHandle", Stats::default())],
        }],
    };
    let table: Vec<(&str, AggregateResponse)> = vec![
        ("no results", AggregateResponse::default()),
        ("a group without data", AggregateResponse { results: vec![empty_group] }),
        ("a bucket without metrics", AggregateResponse { results: vec![empty_bucket] }),
        ("a metric without any statistic", AggregateResponse { results: vec![empty_stats] }),
    ];
    for (name, response) in table {
        assert_eq!(response.into_rows(&q), Ok(vec![]), "{name}");
    }
}

#[test]
fn every_statistic_is_optional() {
    let q = query("oServiceLevel,tHandle,nConnected", "queueId");
    let service = Stats {
        ratio: Some(0.8),
        numerator: Some(8.0),
        denominator: Some(10.0),
        target: Some(0.8),
        ..Stats::default()
    };
    let partial = Stats { sum: Some(1000.0), ..Stats::default() };
    let table: &[(&str, Stats)] = &[
        ("oServiceLevel", service),
        ("tHandle", partial),
        ("nConnected", count_only(0)),
        ("tHandle", Stats { max: Some(5.0), ..Stats::default() }),
        ("tHandle", Stats { min: Some(5.0), ..Stats::default() }),
        ("tHandle", Stats { target: Some(5.0), ..Stats::default() }),
    ];
    for (name, stats) in table {
        let response = AggregateResponse {
            results: vec![GroupResult {
                group: group(&[("queueId", AGENT)]),
                data: vec![BucketData {
                    interval: "2025-03-10T09:00:00Z/2025-03-10T09:30:00Z".to_owned(),
                    metrics: vec![metric(name, *stats)],
                }],
            }],
        };
        let rows = response.into_rows(&q).expect("rows");
        assert_eq!(summary(&rows), vec![(vec![AGENT.to_owned()], (*name).to_owned(), *stats)], "{name} {stats:?}");
    }
}

#[test]
fn stats_emptiness() {
    let table: &[(Stats, bool)] = &[
        (Stats::default(), true),
        (count_only(0), false),
        (Stats { sum: Some(0.0), ..Stats::default() }, false),
        (Stats { ratio: Some(1.0), ..Stats::default() }, false),
        (Stats { numerator: Some(1.0), ..Stats::default() }, false),
        (Stats { denominator: Some(1.0), ..Stats::default() }, false),
        (timer(1.0, 1.0, 1, 1.0), false),
    ];
    for (stats, empty) in table {
        assert_eq!(stats.is_empty(), *empty, "{stats:?}");
    }
}

#[test]
fn qualifiers_and_offsets_are_kept() {
    let q = query("tHandle,tAcw", "userId,mediaType");
    let response = AggregateResponse {
        results: vec![
            GroupResult {
                group: group(&[("mediaType", "chat"), ("userId", AGENT)]),
                data: vec![
                    BucketData {
                        interval: "2025-03-10T10:00:00.000+01:00/2025-03-10T10:30:00.000+01:00".to_owned(),
                        metrics: vec![
                            MetricData {
                                metric: "tHandle".into(),
                                qualifier: Some("OFF_QUEUE".into()),
                                stats: count_only(1),
                            },
                            metric("tAcw", count_only(2)),
                        ],
                    },
                    BucketData {
                        interval: "2025-03-10T09:30:00Z/2025-03-10T10:00:00Z".to_owned(),
                        metrics: vec![metric("tHandle", count_only(3))],
                    },
                ],
            },
            GroupResult {
                group: group(&[("userId", "other"), ("mediaType", "voice")]),
                data: vec![BucketData {
                    interval: "2025-03-10T09:00:00Z/2025-03-10T09:30:00Z".to_owned(),
                    metrics: vec![metric("tHandle", count_only(4))],
                }],
            },
        ],
    };
    let rows = response.into_rows(&q).expect("rows");
    let got: Vec<(Vec<String>, String, Option<&str>, String)> =
        rows.iter().map(|r| (r.group().to_vec(), r.metric_key(), r.qualifier(), r.bucket().to_string())).collect();
    let a = || vec![AGENT.to_owned(), "chat".to_owned()];
    let want = vec![
        (
            a(),
            "tHandle:OFF_QUEUE".to_owned(),
            Some("OFF_QUEUE"),
            "[2025-03-10T09:00:00Z, 2025-03-10T09:30:00Z)".to_owned(),
        ),
        (a(), "tAcw".to_owned(), None, "[2025-03-10T09:00:00Z, 2025-03-10T09:30:00Z)".to_owned()),
        (a(), "tHandle".to_owned(), None, "[2025-03-10T09:30:00Z, 2025-03-10T10:00:00Z)".to_owned()),
        (
            vec!["other".to_owned(), "voice".to_owned()],
            "tHandle".to_owned(),
            None,
            "[2025-03-10T09:00:00Z, 2025-03-10T09:30:00Z)".to_owned(),
        ),
    ];
    assert_eq!(got, want);
    assert_eq!(rows[0].metric(), m("tHandle"), "the metric is the name without its qualifier");
}

#[test]
fn responses_off_contract_are_errors() {
    let q = query("tHandle", "userId");
    let with = |interval: &str, name: &str| AggregateResponse {
        results: vec![GroupResult {
            group: group(&[("userId", AGENT)]),
            data: vec![BucketData { interval: interval.to_owned(), metrics: vec![metric(name, count_only(1))] }],
        }],
    };
    let good = "2025-03-10T09:00:00Z/2025-03-10T09:30:00Z";
    // Unknown metric names, requested or not: the response is not what the contract says.
    for name in ["tHold", "handleTime", "thandle", "", "views"] {
        let err = with(good, name).into_rows(&q).expect_err(name);
        let DomainError::BadResponse(message) = &err else { panic!("{name}: {err:?}") };
        assert!(message.contains(&format!("{name:?}")), "{message}");
        assert!(err.to_string().contains("unexpected response"), "{err}");
    }
    // Bad intervals.
    for interval in
        ["", "PT30M", "2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z/2025-03-10T09:00:00Z", "garbage/garbage"]
    {
        let err = with(interval, "tHandle").into_rows(&q).expect_err(interval);
        assert!(matches!(&err, DomainError::InvalidInterval { input, .. } if input == interval), "{err:?}");
    }
}

#[test]
fn metric_rows_expose_what_they_were_built_from() {
    let bucket = win("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z");
    let stats = timer(3.0, 1.0, 2, 4.0);
    let plain = MetricRow::new(vec![AGENT.into()], bucket, m("tHeld"), None, stats);
    assert_eq!(plain.group(), [AGENT]);
    assert_eq!(plain.bucket(), bucket);
    assert_eq!(plain.metric(), m("tHeld"));
    assert_eq!(plain.qualifier(), None);
    assert_eq!(plain.metric_key(), "tHeld");
    assert_eq!(plain.stats(), &stats);
    let qualified = MetricRow::new(vec![AGENT.into()], bucket, m("tHeld"), Some("q".into()), stats);
    assert_eq!(qualified.qualifier(), Some("q"));
    assert_eq!(qualified.metric_key(), "tHeld:q");
}

#[test]
fn buckets_must_be_buckets_of_the_grid_inside_the_requested_window() {
    let q = query("tHandle", "userId");
    let day = crate::win("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z");
    let response = |interval: &str| AggregateResponse {
        results: vec![GroupResult {
            group: group(&[("userId", AGENT)]),
            data: vec![BucketData {
                interval: interval.to_owned(),
                metrics: vec![metric("tHandle", timer(2.0, 1.0, 2, 3.0))],
            }],
        }],
    };
    // (bucket in the response, what the error says, or None when it is accepted)
    let table: &[(&str, Option<&str>)] = &[
        ("2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z", None),
        ("2025-03-10T00:00:00Z/2025-03-10T00:30:00Z", None),
        ("2025-03-10T23:30:00Z/2025-03-11T00:00:00Z", None),
        ("2020-01-01T00:00:00Z/2020-01-01T00:30:00Z", Some("lies outside it")),
        ("2025-03-11T00:00:00Z/2025-03-11T00:30:00Z", Some("lies outside it")),
        ("2025-03-09T23:30:00Z/2025-03-10T00:00:00Z", Some("lies outside it")),
        ("2025-03-10T00:10:00Z/2025-03-10T00:40:00Z", Some("not one bucket")),
        ("2025-03-10T00:00:00Z/2025-03-10T01:00:00Z", Some("not one bucket")),
    ];
    for (interval, want) in table {
        let got = response(interval).into_rows_within(&q, day);
        match (want, got) {
            (None, Ok(rows)) => assert_eq!(rows.len(), 1, "{interval}"),
            (Some(why), Err(e @ DomainError::BucketOutsideWindow { .. })) => {
                let message = e.to_string();
                assert!(message.contains(why) && message.contains(&interval[..10]), "{interval}: {message}");
            }
            (want, got) => panic!("{interval}: want {want:?}, got {got:?}"),
        }
    }
}

/// docs/genesys-api.md section 5, the users aggregates example response, as domain structs.
fn status_response() -> AggregateResponse {
    let status = |metric: &str, qualifier: &str, sum: f64| MetricData {
        metric: metric.to_owned(),
        qualifier: Some(qualifier.to_owned()),
        stats: Stats { sum: Some(sum), ..Stats::default() },
    };
    AggregateResponse {
        results: vec![GroupResult {
            group: group(&[("userId", AGENT)]),
            data: vec![BucketData {
                interval: "2025-03-10T09:00:00.000Z/2025-03-10T09:30:00.000Z".to_owned(),
                metrics: vec![
                    status("tSystemPresence", "ON_QUEUE", 1_800_000.0),
                    status("tAgentRoutingStatus", "IDLE", 420_000.0),
                    status("tAgentRoutingStatus", "INTERACTING", 1_350_000.0),
                    status("tAgentRoutingStatus", "NOT_RESPONDING", 30_000.0),
                    status("tAgentRoutingStatus", "SOMETHING_NEW", 1.0),
                ],
            }],
        }],
    }
}

#[test]
fn status_values_are_rows_keyed_by_metric_and_qualifier() {
    let q = query("tAgentRoutingStatus,tSystemPresence", "userId");
    let rows = status_response().into_rows_within(&q, win("2025-03-10T09:00:00Z", "2025-03-10T10:00:00Z")).unwrap();
    let keys: Vec<(String, Option<f64>)> = rows.iter().map(|r| (r.metric_key(), r.stats().sum)).collect();
    assert_eq!(
        keys,
        [
            ("tSystemPresence:ON_QUEUE".to_owned(), Some(1_800_000.0)),
            ("tAgentRoutingStatus:IDLE".to_owned(), Some(420_000.0)),
            ("tAgentRoutingStatus:INTERACTING".to_owned(), Some(1_350_000.0)),
            ("tAgentRoutingStatus:NOT_RESPONDING".to_owned(), Some(30_000.0)),
            ("tAgentRoutingStatus:SOMETHING_NEW".to_owned(), Some(1.0)),
        ],
        "unknown qualifiers are kept as they come"
    );
    assert!(rows.iter().all(|r| r.group() == [AGENT] && r.stats().count.is_none()));
}

#[test]
fn a_row_moves_into_the_columns_of_another_query() {
    let status = query("tSystemPresence", "userId");
    let layout = query("tHandle", "mediaType,userId,queueId");
    let row = MetricRow::new(
        vec![AGENT.to_owned()],
        win("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z"),
        MetricName::parse("tSystemPresence").unwrap(),
        Some("ON_QUEUE".to_owned()),
        Stats { sum: Some(5.0), ..Stats::default() },
    );
    let moved = row.clone().regrouped(status.group_by(), layout.group_by());
    assert_eq!(moved.group(), ["", AGENT, ""], "empty in the dimensions a users query cannot group by");
    assert_eq!((moved.metric_key(), moved.stats(), moved.bucket()), (row.metric_key(), row.stats(), row.bucket()));
    assert_eq!(moved.clone().regrouped(layout.group_by(), status.group_by()), row, "and back");
    assert_eq!(row.clone().regrouped(status.group_by(), status.group_by()), row);
}

/// Lord Howe moves its clocks by 30 minutes, so on the day it does, PT1H buckets counted in elapsed
/// hours from the window's start leave the local-hour grid (they start at :30 after the change).
/// Which form the API sends is not documented: both are accepted inside the window, a bucket cut
/// short by the window's end included, and the rows keep the buckets as they came. A response
/// mixing both forms over the same time is refused (that time would count twice).
#[test]
fn lord_howe_dst_days_accept_local_hours_and_elapsed_hours() {
    let q = AggregateQuery::new(
        AggregateQuery::parse_metrics("tHandle").unwrap(),
        AggregateQuery::parse_group_by("userId").unwrap(),
        Granularity::Pt1h,
        "Australia/Lord_Howe".parse::<Tz>().unwrap(),
        Filters::none(),
    )
    .unwrap();
    let response = |intervals: &[&str]| AggregateResponse {
        results: vec![GroupResult {
            group: group(&[("userId", AGENT)]),
            data: intervals
                .iter()
                .map(|interval| BucketData {
                    interval: (*interval).to_owned(),
                    metrics: vec![metric("tHandle", timer(2.0, 1.0, 2, 3.0))],
                })
                .collect(),
        }],
    };
    // 2025-10-05, 23.5 h: local midnight at +10:30 (13:30Z), clocks 02:00 -> 02:30 at 15:30Z,
    // the next midnight at +11 (13:00Z). 2025-04-06, 24.5 h: 02:00 -> 01:30 at 15:00Z.
    let october = crate::win("2025-10-04T13:30:00Z", "2025-10-05T13:00:00Z");
    let april = crate::win("2025-04-05T13:00:00Z", "2025-04-06T13:30:00Z");
    // (window, buckets of one response, what the error says, or None when accepted)
    let table: &[(_, &[&str], Option<&str>)] = &[
        // Local hours: the bucket holding the change is 90 minutes long.
        (october, &["2025-10-04T13:30:00Z/2025-10-04T14:30:00Z"], None),
        (october, &["2025-10-04T14:30:00Z/2025-10-04T16:00:00Z"], None),
        (october, &["2025-10-04T16:00:00Z/2025-10-04T17:00:00Z", "2025-10-05T12:00:00Z/2025-10-05T13:00:00Z"], None),
        // Elapsed hours from the window's start: :30 after the change, the last one cut at the end.
        (october, &["2025-10-04T15:30:00Z/2025-10-04T16:30:00Z", "2025-10-04T16:30:00Z/2025-10-04T17:30:00Z"], None),
        (october, &["2025-10-05T12:30:00Z/2025-10-05T13:00:00Z"], None),
        (april, &["2025-04-05T15:00:00Z/2025-04-05T16:00:00Z", "2025-04-06T13:00:00Z/2025-04-06T13:30:00Z"], None),
        (april, &["2025-04-05T14:00:00Z/2025-04-05T15:30:00Z", "2025-04-06T12:30:00Z/2025-04-06T13:30:00Z"], None),
        // Refused: past the window's end, neither form, a short bucket not at the end, both forms.
        (october, &["2025-10-05T12:30:00Z/2025-10-05T13:30:00Z"], Some("lies outside it")),
        (october, &["2025-10-04T15:00:00Z/2025-10-04T16:00:00Z"], Some("not one bucket")),
        (october, &["2025-10-04T16:30:00Z/2025-10-04T17:00:00Z"], Some("not one bucket")),
        (april, &["2025-04-05T13:20:00Z/2025-04-05T14:20:00Z"], Some("not one bucket")),
        (
            october,
            &["2025-10-04T16:00:00Z/2025-10-04T17:00:00Z", "2025-10-04T15:30:00Z/2025-10-04T16:30:00Z"],
            Some("overlaps another bucket"),
        ),
    ];
    for (window, intervals, want) in table {
        match (want, response(intervals).into_rows_within(&q, *window)) {
            (None, Ok(rows)) => {
                let got: Vec<String> = rows.iter().map(|r| r.bucket().to_string()).collect();
                let expected: Vec<String> =
                    intervals.iter().map(|i| TimeWindow::parse_iso_interval(i).unwrap().to_string()).collect();
                assert_eq!(got, expected, "{intervals:?}");
            }
            (Some(why), Err(e @ DomainError::BucketOutsideWindow { .. })) => {
                assert!(e.to_string().contains(why), "{intervals:?}: {e}");
            }
            (want, got) => panic!("{intervals:?}: want {want:?}, got {got:?}"),
        }
    }
    // A whole day of elapsed hours: 23 of them and the half hour cut at midnight, every one stored.
    let elapsed: Vec<String> = (0..24)
        .map(|h| {
            let start = october.start() + chrono::Duration::hours(h);
            let end = (start + chrono::Duration::hours(1)).min(october.end());
            TimeWindow::new(start, end).unwrap().to_iso_interval()
        })
        .collect();
    let refs: Vec<&str> = elapsed.iter().map(String::as_str).collect();
    let rows = response(&refs).into_rows_within(&q, october).unwrap();
    assert_eq!(rows.len(), 24);
    let total: chrono::Duration = rows.iter().map(|r| r.bucket().duration()).sum();
    assert_eq!(total, october.duration(), "the buckets tile the day");
}
