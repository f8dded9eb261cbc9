//! Async aggregate jobs (section 4): submit, status, cursor-paged results, cancel.

use std::time::Duration;

use intervals_sim::SimConfig;
use serde_json::{json, Value};

use crate::common::{assert_error_body, body_for, day, small_config, standard_query, start, Harness};

const JOBS: &str = "/api/v2/analytics/conversations/aggregates/jobs";

async fn submit(h: &Harness, body: &Value) -> String {
    let resp = h.post(JOBS, body).await;
    assert_eq!(resp.status(), 202);
    let json: Value = resp.json().await.unwrap();
    assert_eq!(json.as_object().unwrap().keys().collect::<Vec<_>>(), ["jobId"]);
    json["jobId"].as_str().unwrap().to_owned()
}

async fn status(h: &Harness, id: &str) -> Value {
    let resp = h.get(&format!("{JOBS}/{id}")).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn results_page_through_cursors_and_equal_the_synchronous_answer() {
    let h = start(small_config()).await;
    let q = standard_query();
    let sync = h.query_ok(&body_for(&q, day(2025, 3, 10))).await;
    let mut body = body_for(&q, day(2025, 3, 10));
    body["pageSize"] = json!(7);
    let id = submit(&h, &body).await;

    let st = status(&h, &id).await;
    assert_eq!(st["state"], "FULFILLED");
    let mut keys: Vec<&str> = st.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["completionDate", "expirationDate", "state", "submissionDate"]);

    let mut collected: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => format!("{JOBS}/{id}/results"),
            Some(c) => format!("{JOBS}/{id}/results?cursor={c}"),
        };
        let resp = h.get(&path).await;
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.unwrap();
        let results = page["results"].as_array().unwrap();
        assert!(results.len() <= 7);
        collected.extend(results.iter().cloned());
        pages += 1;
        match page.get("cursor").and_then(Value::as_str) {
            Some(c) => {
                assert_eq!(results.len(), 7);
                cursor = Some(c.to_owned());
            }
            None => break,
        }
    }
    let expected = sync["results"].as_array().unwrap();
    assert!(pages > 1);
    assert_eq!(&collected, expected);
    assert_eq!(h.sim.stats().jobs, 1);

    let resp = h.get(&format!("{JOBS}/{id}/results?cursor=bogus")).await;
    assert_eq!(resp.status(), 400);
}

#[tokio::test(start_paused = true)]
async fn a_job_is_queued_then_pending_then_fulfilled() {
    let h = start(SimConfig { job_delay: Duration::from_secs(10), ..small_config() }).await;
    let id = submit(&h, &body_for(&standard_query(), day(2025, 3, 10))).await;
    let st = status(&h, &id).await;
    assert_eq!(st["state"], "QUEUED");
    assert!(st.get("completionDate").is_none());
    let resp = h.get(&format!("{JOBS}/{id}/results")).await;
    assert_eq!(resp.status(), 400);
    tokio::time::advance(Duration::from_secs(6)).await;
    assert_eq!(status(&h, &id).await["state"], "PENDING");
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(status(&h, &id).await["state"], "FULFILLED");
    assert_eq!(h.get(&format!("{JOBS}/{id}/results")).await.status(), 200);
}

#[tokio::test]
async fn cancel_answers_204_and_unknown_jobs_404() {
    let h = start(small_config()).await;
    let id = submit(&h, &body_for(&standard_query(), day(2025, 3, 10))).await;
    let resp = h.http.delete(h.url(&format!("{JOBS}/{id}"))).bearer_auth(&h.token).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(status(&h, &id).await["state"], "CANCELLED");
    assert_eq!(h.get(&format!("{JOBS}/{id}/results")).await.status(), 400);

    let unknown = "0b1e3a3c-0000-4000-8000-000000000000";
    for resp in [
        h.get(&format!("{JOBS}/{unknown}")).await,
        h.get(&format!("{JOBS}/{unknown}/results")).await,
        h.http.delete(h.url(&format!("{JOBS}/{unknown}"))).bearer_auth(&h.token).send().await.unwrap(),
    ] {
        assert_eq!(resp.status(), 404);
        let corr = resp.headers()["inin-correlation-id"].to_str().unwrap().to_owned();
        let err: Value = resp.json().await.unwrap();
        assert_error_body(&err, 404, "not.found", &corr);
    }
}

#[tokio::test]
async fn job_bodies_are_validated_like_queries() {
    let h = start(small_config()).await;
    let mut body = body_for(&standard_query(), day(2025, 3, 10));
    body["pageSize"] = json!(0);
    assert_eq!(h.post(JOBS, &body).await.status(), 400);
    body["pageSize"] = json!(50);
    body["metrics"] = json!(["tHold"]);
    assert_eq!(h.post(JOBS, &body).await.status(), 400);
    // Nothing matched: an empty page without cursor.
    let id =
        submit(&h, &json!({"interval": "2025-03-10T04:00:00Z/2025-03-10T05:00:00Z", "metrics": ["tHandle"]})).await;
    let page: Value = h.get(&format!("{JOBS}/{id}/results")).await.json().await.unwrap();
    assert_eq!(page, json!({}));
}
