//! The aggregate query's response: shape and keys (section 2.5), buckets, groupings, zones and
//! the moments at which metrics are counted (section 2.6).

use std::collections::BTreeSet;

use intervals_domain::{Granularity, TimeWindow, Tz};
use intervals_sim::{truth_rows, SimConfig};
use serde_json::{json, Value};

use crate::common::{
    body_for, day, query, rows_of, small_config, sorted_keys as keys, standard_query, start, totals, utc, window,
    ALL_METRICS, QUERY_PATH,
};

#[tokio::test]
async fn response_has_the_documented_shape_and_keys() {
    let h = start(small_config()).await;
    let body = json!({
        "interval": "2025-03-10T00:00:00.000Z/2025-03-11T00:00:00.000Z",
        "granularity": "PT30M",
        "timeZone": "UTC",
        "groupBy": ["userId", "mediaType"],
        "metrics": ["tHandle", "nConnected", "tAcw", "tHeldComplete", "tNotResponding"],
        "flattenMultivaluedDimensions": true
    });
    let raw = h.post(QUERY_PATH, &body).await.text().await.unwrap();
    assert!(raw.starts_with("{\"results\":[{\"group\":{\"userId\":"), "{}", &raw[..80]);
    assert!(raw.contains("{\"metric\":\"tHandle\",\"stats\":{\"max\":"), "section 2.8 key order");
    assert!(raw.contains("{\"metric\":\"nConnected\",\"stats\":{\"count\":"));
    let resp: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(keys(&resp), ["results"]);
    let results = resp["results"].as_array().unwrap();
    assert!(!results.is_empty());
    let order = ["tHandle", "nConnected", "tAcw", "tHeldComplete"];
    for r in results {
        assert_eq!(keys(r), ["data", "group"]);
        assert_eq!(keys(&r["group"]), ["mediaType", "userId"]);
        assert!(intervals_domain::is_uuid(r["group"]["userId"].as_str().unwrap()));
        assert!(intervals_sim::SIM_MEDIA_TYPES.contains(&r["group"]["mediaType"].as_str().unwrap()));
        let data = r["data"].as_array().unwrap();
        assert!(!data.is_empty() && data.len() < 48, "empty buckets are left out");
        let mut previous = String::new();
        for d in data {
            assert_eq!(keys(d), ["interval", "metrics"]);
            let interval = d["interval"].as_str().unwrap();
            assert!(interval.ends_with(":00.000Z") && interval.contains(".000Z/"), "{interval}");
            let w = TimeWindow::parse_iso_interval(interval).unwrap();
            assert_eq!(w.duration(), chrono::Duration::minutes(30));
            assert!(*interval > *previous, "buckets in order");
            previous = interval.to_owned();
            let metrics = d["metrics"].as_array().unwrap();
            assert!(!metrics.is_empty());
            let names: Vec<&str> = metrics.iter().map(|m| m["metric"].as_str().unwrap()).collect();
            let expected: Vec<&str> = order.iter().copied().filter(|n| names.contains(n)).collect();
            assert_eq!(names, expected, "only requested metrics with data, in request order");
            for m in metrics {
                assert_eq!(keys(m), ["metric", "stats"]);
                let stats = &m["stats"];
                if m["metric"] == "nConnected" {
                    assert_eq!(keys(stats), ["count"]);
                } else {
                    assert_eq!(keys(stats), ["count", "max", "min", "sum"]);
                    let (max, min, sum) = (
                        stats["max"].as_u64().unwrap(),
                        stats["min"].as_u64().unwrap(),
                        stats["sum"].as_u64().unwrap(),
                    );
                    let count = stats["count"].as_u64().unwrap();
                    assert!(count >= 1 && min <= max && max <= sum && sum <= count * max);
                }
            }
        }
    }
}

#[tokio::test]
async fn nothing_matched_leaves_results_out() {
    let h = start(small_config()).await;
    // Nobody works between 03:30 and 05:30 in the shift zone (UTC here).
    let body = json!({
        "interval": "2025-03-10T03:30:00Z/2025-03-10T05:30:00Z",
        "granularity": "PT30M",
        "groupBy": ["userId"],
        "metrics": ALL_METRICS,
    });
    assert_eq!(h.query_ok(&body).await, json!({}));
    // A valid metric the simulator has no data for.
    let body = json!({"interval": "2025-03-10T00:00:00Z/2025-03-11T00:00:00Z", "metrics": ["tFlowOut", "tAcd"]});
    assert_eq!(h.query_ok(&body).await, json!({}));
}

#[tokio::test]
async fn offsets_in_the_interval_mean_the_same_instants() {
    let h = start(small_config()).await;
    let q = standard_query();
    let mut body = body_for(&q, day(2025, 3, 10));
    let z = h.query_ok(&body).await;
    body["interval"] = json!("2025-03-10T02:00:00+02:00/2025-03-10T19:00:00-05:00");
    assert_eq!(h.query_ok(&body).await, z);
    body["interval"] = json!("2025-03-10T05:45:00.000+05:45/2025-03-11T00:00:00Z");
    assert_eq!(h.query_ok(&body).await, z);
}

#[tokio::test]
async fn without_granularity_the_interval_is_one_bucket() {
    let h = start(small_config()).await;
    let q = standard_query();
    let w = day(2025, 3, 11);
    let mut body = body_for(&q, w);
    body.as_object_mut().unwrap().remove("granularity");
    let resp = h.query_ok(&body).await;
    for r in resp["results"].as_array().unwrap() {
        let data = r["data"].as_array().unwrap();
        assert_eq!(data.len(), 1);
        assert_eq!(data[0]["interval"], "2025-03-11T00:00:00.000Z/2025-03-12T00:00:00.000Z");
    }
    let p1d = query(&ALL_METRICS, &["userId", "mediaType"], Granularity::P1d, Tz::UTC);
    assert_eq!(rows_of(&p1d, &resp), truth_rows(h.sim.config(), &p1d, w));
}

#[tokio::test]
async fn any_subset_and_order_of_group_by_works_and_matches_truth() {
    let h = start(small_config()).await;
    let w = window(utc(2025, 3, 12, 6, 0), utc(2025, 3, 12, 18, 0));
    for group in [
        vec!["queueId", "userId"],
        vec!["mediaType"],
        vec!["queueId"],
        vec!["mediaType", "queueId", "userId"],
        vec!["userId"],
    ] {
        let q = query(&["tHandle", "nConnected"], &group, Granularity::Pt1h, Tz::UTC);
        let raw = h.post(QUERY_PATH, &body_for(&q, w)).await.text().await.unwrap();
        let groups = raw.matches("\"group\":{").count();
        assert!(groups > 0);
        assert_eq!(raw.matches(&format!("\"group\":{{\"{}\":", group[0])).count(), groups, "groupBy order");
        let resp: Value = serde_json::from_str(&raw).unwrap();
        for r in resp["results"].as_array().unwrap() {
            let mut expected = group.clone();
            expected.sort_unstable();
            assert_eq!(keys(&r["group"]), expected);
        }
        assert_eq!(rows_of(&q, &resp), truth_rows(h.sim.config(), &q, w), "{group:?}");
    }
}

#[tokio::test]
async fn without_group_by_there_is_one_result_without_group() {
    let h = start(small_config()).await;
    let w = day(2025, 3, 12);
    let body = json!({"interval": w.to_iso_interval(), "granularity": "P1D", "metrics": ["nConnected", "tHandle"]});
    let resp = h.query_ok(&body).await;
    let results = resp["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(keys(&results[0]), ["data"]);
    let by_user = query(&["nConnected", "tHandle"], &["userId"], Granularity::P1d, Tz::UTC);
    let truth = truth_rows(h.sim.config(), &by_user, w);
    let served = &results[0]["data"][0]["metrics"];
    assert_eq!(served[0]["stats"]["count"].as_u64().unwrap(), totals(&truth, "nConnected").0);
    assert_eq!(served[1]["stats"]["sum"].as_f64().unwrap(), totals(&truth, "tHandle").1);
}

#[tokio::test]
async fn time_zone_sets_bucket_boundaries_across_dst_and_odd_offsets() {
    let config = SimConfig { shift_time_zone: Tz::America__New_York, ..small_config() };
    let h = start(config).await;
    // Spring forward in New York: 2025-03-09 has 23 hours.
    let ny_day = window(utc(2025, 3, 9, 5, 0), utc(2025, 3, 10, 4, 0));
    let q = query(&["tHandle"], &["userId"], Granularity::P1d, Tz::America__New_York);
    let resp = h.query_ok(&body_for(&q, ny_day)).await;
    let intervals: BTreeSet<&str> = resp["results"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["data"].as_array().unwrap().iter().map(|d| d["interval"].as_str().unwrap()))
        .collect();
    assert_eq!(intervals.into_iter().collect::<Vec<_>>(), ["2025-03-09T05:00:00.000Z/2025-03-10T04:00:00.000Z"]);
    assert_eq!(rows_of(&q, &resp), truth_rows(h.sim.config(), &q, ny_day));
    // Fall back: 2025-11-02 has 25 hours, half-hours straddle the repeated hour correctly.
    let fall = window(utc(2025, 11, 2, 4, 0), utc(2025, 11, 3, 5, 0));
    let q = query(&["nConnected", "tTalk"], &["mediaType"], Granularity::Pt30m, Tz::America__New_York);
    let resp = h.query_ok(&body_for(&q, fall)).await;
    assert_eq!(rows_of(&q, &resp), truth_rows(h.sim.config(), &q, fall));

    // Kathmandu is UTC+05:45: half-hour buckets start at :15 and :45 UTC.
    let ktm = window(utc(2025, 3, 10, 18, 15), utc(2025, 3, 11, 18, 15));
    let q = query(&["nConnected"], &["userId"], Granularity::Pt30m, Tz::Asia__Kathmandu);
    let resp = h.query_ok(&body_for(&q, ktm)).await;
    let results = resp["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for r in results {
        for d in r["data"].as_array().unwrap() {
            let interval = d["interval"].as_str().unwrap();
            assert!(interval[14..16] == *"15" || interval[14..16] == *"45", "{interval}");
        }
    }
    assert_eq!(rows_of(&q, &resp), truth_rows(h.sim.config(), &q, ktm));
}

#[tokio::test]
async fn each_metric_is_counted_at_its_own_moment() {
    let h = start(SimConfig { agents: 40, ..small_config() }).await;
    // 04:00 to 04:00 UTC: no interaction straddles either end (nobody works 03:30-05:30).
    let w = window(utc(2025, 3, 11, 4, 0), utc(2025, 3, 12, 4, 0));
    let q = query(&ALL_METRICS, &["userId"], Granularity::Pt30m, Tz::UTC);
    let rows = h.rows(&q, w).await;
    let (handled, handle_ms) = totals(&rows, "tHandle");
    let (talk_count, talk_ms) = totals(&rows, "tTalk");
    let (held_count, held_ms) = totals(&rows, "tHeld");
    let (held_complete, held_complete_ms) = totals(&rows, "tHeldComplete");
    let (_, acw_ms) = totals(&rows, "tAcw");
    assert!(handled > 100);
    for m in ["nConnected", "tAlert", "tAnswered", "tTalkComplete", "tAcw"] {
        assert_eq!(totals(&rows, m).0, handled, "{m}: one per interaction");
    }
    assert!(talk_count > handled, "tTalk is counted per talk segment");
    assert!(held_count > held_complete && held_complete > 0, "tHeld per hold segment");
    assert_eq!(talk_ms, totals(&rows, "tTalkComplete").1);
    assert_eq!(held_ms, held_complete_ms);
    assert_eq!(handle_ms, talk_ms + held_ms + acw_ms, "tHandle = talk + hold + ACW");

    // Per bucket the parts do not add up, because each is counted at its own moment.
    let mismatched = rows
        .chunk_by(|a, b| a.group() == b.group() && a.bucket() == b.bucket())
        .filter(|chunk| {
            let get =
                |m: &str| chunk.iter().find(|r| r.metric().as_str() == m).and_then(|r| r.stats().sum).unwrap_or(0.0);
            get("tHandle") != get("tTalk") + get("tHeld") + get("tAcw")
        })
        .count();
    assert!(mismatched > 0);
    // Some calls last longer than a bucket: their talk lands in the bucket where it ends.
    let longest =
        rows.iter().filter(|r| r.metric().as_str() == "tTalk").filter_map(|r| r.stats().max).fold(0.0, f64::max);
    assert!(longest > 30.0 * 60_000.0, "a talk segment longer than 30 minutes exists ({longest} ms)");
    assert!(rows.iter().all(|r| r.stats().sum.is_none_or(|s| s.fract() == 0.0)), "whole milliseconds");
}

#[tokio::test]
async fn agents_work_shifts_so_most_buckets_are_empty() {
    let h = start(small_config()).await;
    let w = window(utc(2025, 3, 10, 0, 0), utc(2025, 3, 17, 0, 0));
    let q = query(&["nConnected"], &["userId"], Granularity::Pt30m, Tz::UTC);
    let rows = h.rows(&q, w).await;
    let agents = rows.iter().map(|r| r.group()[0].clone()).collect::<BTreeSet<_>>().len();
    let possible = agents * 7 * 48;
    assert!(rows.len() * 2 < possible, "{} of {possible} agent-buckets have data", rows.len());
    assert!(rows.len() * 5 > possible, "agents do work: {} of {possible}", rows.len());
}
