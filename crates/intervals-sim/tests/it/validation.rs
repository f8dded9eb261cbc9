//! Every validation error of the aggregate query answers 400 with an ErrorBody.

use intervals_sim::SimConfig;
use serde_json::{json, Value};

use crate::common::{assert_error_body, small_config, start, Harness, QUERY_PATH};

fn valid() -> Value {
    json!({
        "interval": "2025-03-10T00:00:00.000Z/2025-03-11T00:00:00.000Z",
        "granularity": "PT30M",
        "timeZone": "UTC",
        "groupBy": ["userId", "mediaType"],
        "metrics": ["tHandle", "tAcw"]
    })
}

fn with(key: &str, value: Value) -> Value {
    let mut body = valid();
    body[key] = value;
    body
}

fn without(key: &str) -> Value {
    let mut body = valid();
    body.as_object_mut().unwrap().remove(key);
    body
}

async fn check(h: &Harness, cases: &[(Value, &str)]) {
    for (body, needle) in cases {
        h.expect_400(body, needle).await;
    }
}

#[tokio::test]
async fn interval_errors() {
    let h = start(small_config()).await;
    h.query_ok(&valid()).await;
    check(
        &h,
        &[
            (without("interval"), "interval is required"),
            (with("interval", json!("")), "interval is required"),
            (with("interval", json!("PT30M")), "expected <start>/<end>"),
            (with("interval", json!("2025-03-10/2025-03-11")), "not an RFC 3339 timestamp"),
            (with("interval", json!("2025-03-10T00:00:00/2025-03-11T00:00:00")), "not an RFC 3339 timestamp"),
            (with("interval", json!("2025-03-11T00:00:00Z/2025-03-10T00:00:00Z")), "start must be before end"),
            (with("interval", json!("2025-03-10T00:00:00Z/2025-03-10T00:00:00Z")), "start must be before end"),
            (with("interval", json!(42)), "Invalid request body"),
        ],
    )
    .await;
}

#[tokio::test]
async fn granularity_and_time_zone_errors() {
    let h = start(small_config()).await;
    for ok in ["PT15M", "PT30M", "PT1H", "P1D", "pt30m"] {
        h.query_ok(&with("granularity", json!(ok))).await;
    }
    check(
        &h,
        &[
            (with("granularity", json!("30m")), "PT30M"),
            (with("granularity", json!("half-hour")), "accepted values are PT15M, PT30M, PT1H, P1D"),
            (with("granularity", json!("P1M")), "not supported by the simulator"),
            (with("granularity", json!("PT5M")), "not supported by the simulator"),
            (with("timeZone", json!("Mars/Olympus_Mons")), "unknown time zone"),
            (with("timeZone", json!("+02:00")), "unknown time zone"),
        ],
    )
    .await;
}

#[tokio::test]
async fn metric_and_group_by_errors() {
    let h = start(small_config()).await;
    check(
        &h,
        &[
            (without("metrics"), "metrics is required"),
            (with("metrics", json!([])), "metrics is required"),
            (with("metrics", json!(["tHold"])), "tHeld"),
            (with("metrics", json!(["tHandle", "handleTime"])), "use tHandle"),
            (with("metrics", json!(["thandle"])), "case-sensitive"),
            (with("metrics", json!("tHandle")), "Invalid request body"),
            (with("groupBy", json!(["agentId"])), "userId"),
            (with("groupBy", json!(["userId", "interval"])), "interval is not a dimension"),
            (with("groupBy", json!(["wrapUpCode"])), "not supported by the simulator"),
            (with("groupBy", json!(["userId", "direction"])), "not supported by the simulator"),
        ],
    )
    .await;
}

#[tokio::test]
async fn filter_shape_errors() {
    let h = start(small_config()).await;
    let pred = |p: Value| with("filter", json!({"type": "and", "predicates": [p]}));
    check(
        &h,
        &[
            // The myth: filter as an array of {dimension, type: "equal", value}.
            (with("filter", json!([{"dimension": "mediaType", "type": "equal", "value": "voice"}])), "Invalid request body"),
            (with("filter", json!({"predicates": [{"dimension": "mediaType", "value": "voice"}]})), "filter.type is required"),
            (with("filter", json!({"type": "xor", "predicates": [{"dimension": "mediaType", "value": "voice"}]})), "invalid filter.type"),
            (with("filter", json!({"type": "and"})), "at least one predicate or clause"),
            (with("filter", json!({"type": "and", "predicates": [], "clauses": []})), "at least one predicate or clause"),
            (pred(json!({"value": "voice"})), "needs a dimension"),
            (pred(json!({"dimension": "agentId", "value": "x"})), "userId"),
            (pred(json!({"dimension": "wrapUpCode", "value": "x"})), "not supported by the simulator"),
            (pred(json!({"dimension": "mediaType", "operator": "equal", "value": "voice"})), "invalid predicate operator"),
            (pred(json!({"dimension": "mediaType", "operator": "matches"})), "needs a value"),
            (pred(json!({"type": "dimension", "dimension": "mediaType", "value": "voice", "range": {"gt": 1}})), "not a range"),
            (pred(json!({"type": "metric", "metric": "tHandle", "range": {"gt": 1}})), "not supported by the simulator"),
            (pred(json!({"type": "banana", "dimension": "mediaType", "value": "voice"})), "invalid predicate type"),
            (pred(json!({"dimension": "mediaType", "value": "voice", "colour": "red"})), "Invalid request body"),
            (with("filter", json!({"type": "and", "clauses": [{"type": "or"}]})), "clause needs at least one predicate"),
            (with("filter", json!({"type": "and", "clauses": [{"predicates": [{"dimension": "mediaType", "value": "voice"}]}]})), "clause.type is required"),
            (
                with("filter", json!({"type": "and", "clauses": [{"type": "or", "predicates": [{"dimension": "mediaType", "value": "voice"}], "clauses": []}]})),
                "Invalid request body",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn other_field_errors() {
    let h = start(small_config()).await;
    h.query_ok(&with("alternateTimeDimension", json!("eventTime"))).await;
    h.query_ok(&with("queryType", json!("groupBy"))).await;
    h.query_ok(&with("views", json!([]))).await;
    check(
        &h,
        &[
            (with("dateFrom", json!("2025-03-10")), "unknown field `dateFrom`"),
            (with("select", json!(["handleTime"])), "unknown field `select`"),
            (with("pageSize", json!(10)), "pageSize"),
            (
                with(
                    "views",
                    json!([{"target": "tHandle", "name": "short", "function": "rangeBound", "range": {"lt": 1000}}]),
                ),
                "views are not supported by the simulator",
            ),
            (with("queryType", json!("topN")), "not supported by the simulator"),
            (with("queryType", json!("everything")), "invalid queryType"),
            (with("alternateTimeDimension", json!("creationTime")), "eventTime"),
            (with("limit", json!(0)), "limit"),
        ],
    )
    .await;
    // Not JSON at all.
    let resp = h
        .http
        .post(h.url(QUERY_PATH))
        .bearer_auth(&h.token)
        .header("content-type", "application/json")
        .body("{\"interval\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    // Wrong content type.
    let resp = h
        .http
        .post(h.url(QUERY_PATH))
        .bearer_auth(&h.token)
        .header("content-type", "text/plain")
        .body(valid().to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 415);
    let corr = resp.headers()["inin-correlation-id"].to_str().unwrap().to_owned();
    let err: Value = resp.json().await.unwrap();
    assert_error_body(&err, 415, "unsupported.media.type", &corr);
    assert!(h.sim.stats().bad_requests >= 9);
}

#[tokio::test]
async fn a_configured_maximum_span_rejects_longer_intervals() {
    let h = start(SimConfig { max_span_days: Some(2), ..small_config() }).await;
    h.query_ok(&with("interval", json!("2025-03-10T00:00:00Z/2025-03-12T00:00:00Z"))).await;
    h.expect_400(&with("interval", json!("2025-03-10T00:00:00Z/2025-03-12T00:30:00Z")), "maximum of 2 days").await;
    let unlimited = start(small_config()).await;
    unlimited.query_ok(&with("interval", json!("2025-03-01T00:00:00Z/2025-03-31T00:00:00Z"))).await;
}

#[tokio::test]
async fn unknown_paths_get_404_error_bodies() {
    let h = start(small_config()).await;
    // The myth endpoints of section 0.
    for path in ["/api/v2/analytics/agents/summary", "/api/v2/analytics/conversations/aggregates"] {
        let resp = h.post(path, &valid()).await;
        assert_eq!(resp.status(), 404, "{path}");
        let corr = resp.headers()["inin-correlation-id"].to_str().unwrap().to_owned();
        let err: Value = resp.json().await.unwrap();
        assert_error_body(&err, 404, "not.found", &corr);
    }
    let resp = h.get(QUERY_PATH).await;
    assert_eq!(resp.status(), 405);
}
