//! The simulator clock, late data and reprocessing: clients can prove they pick up corrections.

use std::time::Duration;

use chrono::NaiveDate;
use intervals_sim::{truth_rows, SimConfig};
use serde_json::{json, Value};

use crate::common::{day, small_config, standard_query, start, totals, utc, window};

#[tokio::test]
async fn late_figures_appear_after_their_bucket_closes() {
    let config = SimConfig { late_fraction: 0.4, late_delay: Duration::from_secs(3600), ..small_config() };
    let h = start(config).await;
    let q = standard_query();
    let morning = window(utc(2025, 3, 10, 0, 0), utc(2025, 3, 10, 12, 0));
    let full = truth_rows(h.sim.config(), &q, morning);

    h.sim.set_now(utc(2025, 3, 10, 12, 0));
    let at_noon = h.rows(&q, morning).await;
    assert_eq!(at_noon, h.sim.truth(&q, morning), "served = truth as of the sim clock");
    assert!(totals(&at_noon, "nConnected").0 < totals(&full, "nConnected").0, "late figures are missing at noon");
    // Buckets closed more than an hour ago are complete.
    let early = |rows: &[intervals_domain::MetricRow]| -> Vec<intervals_domain::MetricRow> {
        rows.iter().filter(|r| r.bucket().end() <= utc(2025, 3, 10, 10, 30)).cloned().collect()
    };
    assert_eq!(early(&at_noon), early(&full));

    h.sim.set_now(utc(2025, 3, 10, 13, 0));
    assert_eq!(h.rows(&q, morning).await, full, "an hour after the last bucket closed, all is there");

    // What has not happened yet is not there either.
    h.sim.set_now(utc(2025, 3, 10, 12, 0));
    let afternoon = window(utc(2025, 3, 10, 12, 0), utc(2025, 3, 11, 0, 0));
    let served = h.rows(&q, afternoon).await;
    assert_eq!(served, h.sim.truth(&q, afternoon));
    assert!(served.len() * 10 < truth_rows(h.sim.config(), &q, afternoon).len());
}

#[tokio::test]
async fn the_clock_is_settable_over_http() {
    let h = start(small_config()).await;
    let clock: Value = h.http.get(h.url("/sim/clock")).send().await.unwrap().json().await.unwrap();
    assert_eq!(clock["mode"], "real");
    let set = |body: Value| {
        let http = h.http.clone();
        let url = h.url("/sim/clock");
        async move { http.post(url).json(&body).send().await.unwrap() }
    };
    let resp = set(json!({"now": "2025-03-10T09:30:00+01:00"})).await;
    assert_eq!(resp.status(), 200);
    let clock: Value = resp.json().await.unwrap();
    assert_eq!(clock, json!({"now": "2025-03-10T08:30:00.000Z", "mode": "frozen"}));
    assert_eq!(h.sim.now(), utc(2025, 3, 10, 8, 30));
    let q = standard_query();
    let w = day(2025, 3, 10);
    assert_eq!(h.rows(&q, w).await, h.sim.truth(&q, w));

    let clock: Value = set(json!({"now": "2025-03-10T08:30:00Z", "advance": true})).await.json().await.unwrap();
    assert_eq!(clock["mode"], "advancing");
    assert!(h.sim.now() >= utc(2025, 3, 10, 8, 30));
    let clock: Value = set(json!({"now": null})).await.json().await.unwrap();
    assert_eq!(clock["mode"], "real");
    assert_eq!(set(json!({"now": "yesterday"})).await.status(), 400);
    assert_eq!(set(json!({"then": "2025-03-10T00:00:00Z"})).await.status(), 400);
}

#[tokio::test]
async fn reprocessing_a_day_revises_its_figures() {
    let h = start(small_config()).await;
    let q = standard_query();
    let monday = day(2025, 3, 10);
    let tuesday = day(2025, 3, 11);
    let before = h.rows(&q, monday).await;
    let tuesday_before = h.rows(&q, tuesday).await;
    assert_eq!(before, truth_rows(h.sim.config(), &q, monday));

    let resp = h.http.post(h.url("/sim/reprocess")).json(&json!({"date": "2025-03-10"})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"date": "2025-03-10", "revision": 1}));

    let after = h.rows(&q, monday).await;
    assert_ne!(after, before);
    assert_eq!(after, h.sim.truth(&q, monday));
    assert_eq!(before, truth_rows(h.sim.config(), &q, monday), "the standalone truth is unrevised");
    assert!(totals(&after, "tAcw").1 > totals(&before, "tAcw").1, "ACW corrections");
    assert_eq!(totals(&after, "tTalk"), totals(&before, "tTalk"), "talk is unchanged");
    assert_eq!(totals(&after, "tHandle").0, totals(&before, "tHandle").0);
    assert_eq!(h.rows(&q, tuesday).await, tuesday_before, "other days are unchanged");

    h.sim.reprocess(NaiveDate::from_ymd_opt(2025, 3, 10).unwrap());
    let again = h.rows(&q, monday).await;
    assert_ne!(again, after, "each reprocessing is a new revision");
    assert_eq!(again, h.sim.truth(&q, monday));

    for bad in [json!({"date": "10/03/2025"}), json!({"day": "2025-03-10"}), json!("2025-03-10")] {
        let resp = h.http.post(h.url("/sim/reprocess")).json(&bad).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
    }
}
