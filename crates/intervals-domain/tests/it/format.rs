//! The CSV data contract as fields: long and wide headers and records, numbers, timestamps, order.

use std::cmp::Ordering;

use intervals_domain::{
    format_number, has_observation_columns, long_header, long_record, wide_header, wide_record, wide_runs, MetricName,
    MetricRow, Stats,
};
use proptest::prelude::*;

use crate::rows::{count_only, example_response, query, timer, AGENT, REQUEST_METRICS};
use crate::win;

fn row(group: &[&str], start: &str, end: &str, metric: &str, qualifier: Option<&str>, stats: Stats) -> MetricRow {
    MetricRow::new(
        group.iter().map(|s| (*s).to_owned()).collect(),
        win(start, end),
        MetricName::parse(metric).expect("metric"),
        qualifier.map(str::to_owned),
        stats,
    )
}

fn csv(fields: &[String]) -> String {
    fields.join(",")
}

#[test]
fn numbers_are_plain_decimals() {
    let table: &[(f64, &str)] = &[
        (0.0, "0"),
        (-0.0, "0"),
        (5.0, "5"),
        (1450300.0, "1450300"),
        (-3.0, "-3"),
        (0.5, "0.5"),
        (1234.5, "1234.5"),
        (0.1, "0.1"),
        (0.8, "0.8"),
        (1.0 / 3.0, "0.3333333333333333"),
        (1e-7, "0.0000001"),
        (123456789012.0, "123456789012"),
        (9007199254740992.0, "9007199254740992"),
        (1e20, "100000000000000000000"),
    ];
    for (x, want) in table {
        assert_eq!(format_number(*x), *want, "{x:e}");
    }
}

#[test]
fn long_header_is_group_columns_then_the_fixed_columns() {
    let table: &[(&str, &str)] = &[
        ("userId,mediaType", "user_id,media_type,interval_start,interval_end,metric,count,sum,min,max"),
        ("userId", "user_id,interval_start,interval_end,metric,count,sum,min,max"),
        ("mediaType,userId", "media_type,user_id,interval_start,interval_end,metric,count,sum,min,max"),
        (
            "userId,mediaType,queueId",
            "user_id,media_type,queue_id,interval_start,interval_end,metric,count,sum,min,max",
        ),
    ];
    for (group_by, want) in table {
        assert_eq!(csv(&long_header(&query("tHandle", group_by))), *want, "{group_by}");
    }
}

#[test]
fn long_records() {
    let g = &[AGENT, "voice"][..];
    let (a, b) = ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z");
    let table: Vec<(MetricRow, String)> = vec![
        (
            row(g, a, b, "tHandle", None, timer(612000.0, 95000.0, 5, 1450300.0)),
            format!("{AGENT},voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,tHandle,5,1450300,95000,612000"),
        ),
        (
            row(g, a, b, "nConnected", None, count_only(6)),
            format!("{AGENT},voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,nConnected,6,,,"),
        ),
        (
            row(g, a, b, "tAcw", None, Stats { sum: Some(1234.5), min: Some(0.25), ..Stats::default() }),
            format!("{AGENT},voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,tAcw,,1234.5,0.25,"),
        ),
        (
            row(g, a, b, "tHandle", Some("OFF_QUEUE"), count_only(1)),
            format!("{AGENT},voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,tHandle:OFF_QUEUE,1,,,"),
        ),
        (
            row(&[AGENT, ""], a, b, "tHandle", None, count_only(0)),
            format!("{AGENT},,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,tHandle,0,,,"),
        ),
        // Timestamps: UTC, Z, whole seconds, whatever offset or precision the bucket came with.
        (
            row(g, "2025-03-30T01:00:00+01:00", "2025-03-30T01:30:00.000+01:00", "tHandle", None, count_only(1)),
            format!("{AGENT},voice,2025-03-30T00:00:00Z,2025-03-30T00:30:00Z,tHandle,1,,,"),
        ),
        (
            row(g, "2025-03-10T09:00:00.250Z", b, "tHandle", None, count_only(1)),
            format!("{AGENT},voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,tHandle,1,,,"),
        ),
    ];
    let q = query("tHandle", "userId,mediaType");
    for (r, want) in &table {
        let record = long_record(&q, r);
        assert_eq!(record.len(), 9, "as many fields as the header");
        assert_eq!(csv(&record), *want);
    }
}

/// A query asking for an observation metric (`o*`) has four more columns, after `max`, on every row
/// (empty where a row has no such statistic); any other query keeps the columns it always had.
#[test]
fn observation_metrics_add_the_ratio_columns_to_the_long_layout() {
    let fixed = "interval_start,interval_end,metric,count,sum,min,max";
    let table: &[(&str, &str, String)] = &[
        (
            "oServiceLevel",
            "queueId,mediaType",
            format!("queue_id,media_type,{fixed},ratio,numerator,denominator,target"),
        ),
        ("nOffered,tAnswered,oServiceLevel", "queueId", format!("queue_id,{fixed},ratio,numerator,denominator,target")),
        ("tHandle,oMediaCount", "userId", format!("user_id,{fixed},ratio,numerator,denominator,target")),
        ("nOffered,tAnswered,tAbandon,tWait,nOverSla", "queueId,mediaType", format!("queue_id,media_type,{fixed}")),
        ("tHandle", "userId,mediaType", format!("user_id,media_type,{fixed}")),
    ];
    for (metrics, group_by, want) in table {
        let q = query(metrics, group_by);
        assert_eq!(csv(&long_header(&q)), *want, "{metrics} / {group_by}");
        assert_eq!(has_observation_columns(&q), want.ends_with("target"), "{metrics}");
    }

    const QUEUE: &str = "2f6c1b1e-3c39-4b5e-9b61-0a8a7d6c2b11";
    let q = query("nOffered,tAnswered,oServiceLevel", "queueId,mediaType");
    let g = &[QUEUE, "voice"][..];
    let (a, b) = ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z");
    let prefix = format!("{QUEUE},voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z");
    let service = Stats {
        ratio: Some(0.75),
        numerator: Some(6.0),
        denominator: Some(8.0),
        target: Some(0.8),
        ..Stats::default()
    };
    let table: Vec<(MetricRow, String)> = vec![
        (row(g, a, b, "oServiceLevel", None, service), format!("{prefix},oServiceLevel,,,,,0.75,6,8,0.8")),
        (
            row(g, a, b, "oServiceLevel", None, Stats { ratio: Some(1.0 / 3.0), ..Stats::default() }),
            format!("{prefix},oServiceLevel,,,,,0.3333333333333333,,,"),
        ),
        (row(g, a, b, "nOffered", None, count_only(8)), format!("{prefix},nOffered,8,,,,,,,")),
        (
            row(g, a, b, "tAnswered", None, timer(9100.0, 1200.0, 6, 21400.0)),
            format!("{prefix},tAnswered,6,21400,1200,9100,,,,"),
        ),
    ];
    for (r, want) in &table {
        let record = long_record(&q, r);
        assert_eq!(record.len(), long_header(&q).len(), "as many fields as the header");
        assert_eq!(csv(&record), *want);
    }
}

/// The wide layout gives an observation metric its ratio columns after its `_count` and `_sum`.
#[test]
fn observation_metrics_add_the_ratio_columns_to_the_wide_layout() {
    let q = query("nOffered,oServiceLevel,tAnswered", "queueId");
    assert_eq!(
        csv(&wide_header(&q)),
        "queue_id,interval_start,interval_end,nOffered_count,nOffered_sum,oServiceLevel_count,oServiceLevel_sum,\
         oServiceLevel_ratio,oServiceLevel_numerator,oServiceLevel_denominator,oServiceLevel_target,\
         tAnswered_count,tAnswered_sum"
    );
    let (a, b) = ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z");
    let service =
        Stats { ratio: Some(0.5), numerator: Some(1.0), denominator: Some(2.0), target: Some(0.9), ..Stats::default() };
    let rows = vec![
        row(&["q"], a, b, "nOffered", None, count_only(3)),
        row(&["q"], a, b, "oServiceLevel", None, service),
        row(&["q"], a, b, "tAnswered", None, timer(3.0, 1.0, 2, 4.0)),
    ];
    let record = wide_record(&q, &rows).expect("a record");
    assert_eq!(record.len(), wide_header(&q).len());
    assert_eq!(csv(&record), "q,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,3,,,,0.5,1,2,0.9,2,4");
    let record = wide_record(&q, &rows[..1]).expect("a record");
    assert_eq!(csv(&record), "q,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,3,,,,,,,,,", "absent: empty");
}

#[test]
fn the_example_response_as_long_csv() {
    let q = query(REQUEST_METRICS, "userId,mediaType");
    let mut rows = example_response().into_rows(&q).expect("rows");
    rows.reverse();
    rows.sort_by(MetricRow::cmp_long);
    let mut lines = vec![csv(&long_header(&q))];
    lines.extend(rows.iter().map(|r| csv(&long_record(&q, r))));
    let want = [
        "user_id,media_type,interval_start,interval_end,metric,count,sum,min,max",
        "6d9f1a2e-0000-4000-8000-000000000001,voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,nConnected,6,,,",
        "6d9f1a2e-0000-4000-8000-000000000001,voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,tAcw,5,118400,4200,61000",
        "6d9f1a2e-0000-4000-8000-000000000001,voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,tAnswered,6,21400,1200,9100",
        "6d9f1a2e-0000-4000-8000-000000000001,voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,tHandle,5,1450300,95000,612000",
        "6d9f1a2e-0000-4000-8000-000000000001,voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,tHeldComplete,2,135000,15000,120000",
        "6d9f1a2e-0000-4000-8000-000000000001,voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z,tTalkComplete,5,1196900,80000,480000",
    ];
    assert_eq!(lines, want);
}

#[test]
fn wide_header_has_count_and_sum_per_metric_in_request_order() {
    let table: &[(&str, &str, &str)] = &[
        (
            "tHandle,tAcw,tHeldComplete",
            "userId,mediaType",
            "user_id,media_type,interval_start,interval_end,tHandle_count,tHandle_sum,tAcw_count,tAcw_sum,\
             tHeldComplete_count,tHeldComplete_sum",
        ),
        ("tAcw,tHandle", "userId", "user_id,interval_start,interval_end,tAcw_count,tAcw_sum,tHandle_count,tHandle_sum"),
        (
            "nConnected",
            "queueId,userId",
            "queue_id,user_id,interval_start,interval_end,nConnected_count,nConnected_sum",
        ),
    ];
    for (metrics, group_by, want) in table {
        assert_eq!(csv(&wide_header(&query(metrics, group_by))), *want, "{metrics} / {group_by}");
    }
}

#[test]
fn wide_records() {
    let q = query("tHandle,tHeld,nConnected", "userId,mediaType");
    let g = &[AGENT, "voice"][..];
    let (a, b) = ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z");
    let prefix = format!("{AGENT},voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z");
    let table: Vec<(&str, Vec<MetricRow>, Option<String>)> = vec![
        ("no rows", vec![], None),
        (
            "all metrics",
            vec![
                row(g, a, b, "nConnected", None, count_only(6)),
                row(g, a, b, "tHandle", None, timer(612000.0, 95000.0, 5, 1450300.0)),
                row(g, a, b, "tHeld", None, timer(1.0, 1.0, 2, 2.5)),
            ],
            Some(format!("{prefix},5,1450300,2,2.5,6,")),
        ),
        (
            "a missing metric is empty",
            vec![row(g, a, b, "tHandle", None, count_only(5))],
            Some(format!("{prefix},5,,,,,")),
        ),
        (
            "qualified rows are left out",
            vec![row(g, a, b, "tHandle", Some("OFF_QUEUE"), count_only(9)), row(g, a, b, "tHeld", None, count_only(1))],
            Some(format!("{prefix},,,1,,,")),
        ),
    ];
    for (name, rows, want) in table {
        let got = wide_record(&q, &rows);
        if let Some(fields) = &got {
            assert_eq!(fields.len(), wide_header(&q).len(), "{name}: as many fields as the header");
        }
        assert_eq!(got.map(|f| csv(&f)), want, "{name}");
    }
}

#[test]
fn wide_runs_group_sorted_rows_by_group_and_bucket() {
    let (a, b, c) = ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z", "2025-03-10T10:00:00Z");
    let mut rows = vec![
        row(&["u2"], a, b, "tHandle", None, count_only(1)),
        row(&["u1"], b, c, "tHandle", None, count_only(1)),
        row(&["u1"], a, b, "tHandle", None, count_only(1)),
        row(&["u1"], a, b, "tAcw", None, count_only(1)),
        row(&["u2"], a, b, "tAcw", None, count_only(1)),
        row(&["u1"], b, c, "tAcw", None, count_only(1)),
    ];
    rows.sort_by(MetricRow::cmp_long);
    let runs: Vec<(String, String, usize)> =
        wide_runs(&rows).map(|run| (run[0].group()[0].clone(), run[0].bucket().to_string(), run.len())).collect();
    let want = vec![
        ("u1".to_owned(), win(a, b).to_string(), 2),
        ("u1".to_owned(), win(b, c).to_string(), 2),
        ("u2".to_owned(), win(a, b).to_string(), 2),
    ];
    assert_eq!(runs, want);
    assert_eq!(wide_runs(&[]).count(), 0);
}

#[test]
fn long_order_is_group_then_interval_start_then_metric() {
    let (a, b, c) = ("2025-03-10T09:00:00Z", "2025-03-10T09:30:00Z", "2025-03-10T10:00:00Z");
    let s = Stats::default();
    // (left, right, ordering)
    let table: Vec<(MetricRow, MetricRow, Ordering)> = vec![
        (row(&["u1"], b, c, "tHandle", None, s), row(&["u2"], a, b, "nConnected", None, s), Ordering::Less),
        (
            row(&["u1", "voice"], a, b, "tHandle", None, s),
            row(&["u1", "chat"], a, b, "tHandle", None, s),
            Ordering::Greater,
        ),
        (row(&["", "voice"], a, b, "tHandle", None, s), row(&["u1", "chat"], a, b, "tHandle", None, s), Ordering::Less),
        (row(&["u1"], a, b, "tHandle", None, s), row(&["u1"], b, c, "nConnected", None, s), Ordering::Less),
        (row(&["u1"], a, b, "tAcw", None, s), row(&["u1"], a, b, "tHandle", None, s), Ordering::Less),
        (row(&["u1"], a, b, "nConnected", None, s), row(&["u1"], a, b, "tAcw", None, s), Ordering::Less),
        (row(&["u1"], a, b, "tHandle", None, s), row(&["u1"], a, b, "tHandle", Some("x"), s), Ordering::Less),
        (row(&["u1"], a, b, "tHeld", None, s), row(&["u1"], a, b, "tHeldComplete", None, s), Ordering::Less),
        (row(&["u1"], a, b, "tHandle", None, s), row(&["u1"], a, b, "tHandle", None, count_only(1)), Ordering::Equal),
        // A clipped bucket starting at the same instant sorts with it.
        (
            row(&["u1"], a, b, "tAcw", None, s),
            row(&["u1"], a, "2025-03-10T09:10:00Z", "tHandle", None, s),
            Ordering::Less,
        ),
    ];
    for (left, right, want) in &table {
        let q = query("tHandle", "userId");
        assert_eq!(left.cmp_long(right), *want, "{} vs {}", csv(&long_record(&q, left)), csv(&long_record(&q, right)));
        assert_eq!(right.cmp_long(left), want.reverse(), "antisymmetric");
    }
}

proptest! {
    #![proptest_config(crate::proptest_config(256))]

    /// Integral values print as integers; everything finite prints without exponent and parses back.
    #[test]
    fn numbers_round_trip(i in -(1_i64 << 53)..(1_i64 << 53), x in any::<f64>()) {
        #[allow(clippy::cast_precision_loss)]
        let integral = i as f64;
        prop_assert_eq!(format_number(integral), i.to_string());
        if x.is_finite() {
            let s = format_number(x);
            prop_assert!(!s.contains(['e', 'E']), "{}", s);
            prop_assert_eq!(s.parse::<f64>().expect("a number"), x);
            if x.fract() == 0.0 {
                prop_assert!(!s.contains('.'), "{}", s);
            }
        }
    }

    /// Sorting with cmp_long yields non-decreasing (group, interval_start, metric key).
    #[test]
    fn sorting_orders_by_the_contract(
        keys in prop::collection::vec((0_usize..3, 0_usize..3, 0_i64..4, 0_usize..4, any::<bool>()), 0..40),
    ) {
        const USERS: [&str; 3] = ["", "u1", "u2"];
        const MEDIA: [&str; 3] = ["chat", "voice", ""];
        const METRICS: [&str; 4] = ["tHandle", "nConnected", "tAcw", "tHeldComplete"];
        let mut rows: Vec<MetricRow> = keys
            .iter()
            .map(|(u, m, slot, metric, qualified)| {
                let start = crate::utc("2025-03-10T09:00:00Z") + chrono::Duration::minutes(30 * slot);
                MetricRow::new(
                    vec![USERS[*u].to_owned(), MEDIA[*m].to_owned()],
                    intervals_domain::TimeWindow::new(start, start + chrono::Duration::minutes(30)).expect("window"),
                    MetricName::parse(METRICS[*metric]).expect("metric"),
                    qualified.then(|| "q".to_owned()),
                    Stats::default(),
                )
            })
            .collect();
        rows.sort_by(MetricRow::cmp_long);
        let key = |r: &MetricRow| (r.group().to_vec(), r.bucket().start(), r.metric_key());
        for pair in rows.windows(2) {
            prop_assert!(key(&pair[0]) <= key(&pair[1]));
        }
    }
}
