//! Shared helpers: start a simulator, get a token, send queries, read responses as domain rows.

use chrono::{DateTime, TimeZone, Utc};
use intervals_domain::{
    AggregateQuery, AggregateResponse, BucketData, Dimension, Filters, Granularity, GroupResult, MetricData,
    MetricFamily, MetricName, MetricRow, Stats, TimeWindow, Tz,
};
use intervals_sim::{spawn, RunningSim, SimConfig};
use serde_json::{json, Value};

pub(crate) const QUERY_PATH: &str = "/api/v2/analytics/conversations/aggregates/query";
pub(crate) const USERS_QUERY_PATH: &str = "/api/v2/analytics/users/aggregates/query";

/// The synchronous query path of `query`'s family.
pub(crate) fn query_path(query: &AggregateQuery) -> &'static str {
    match query.family() {
        MetricFamily::Conversation => QUERY_PATH,
        MetricFamily::UserStatus => USERS_QUERY_PATH,
    }
}

/// A running simulator, an HTTP client and a valid token.
pub(crate) struct Harness {
    pub(crate) sim: RunningSim,
    pub(crate) http: reqwest::Client,
    pub(crate) token: String,
}

pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().expect("client")
}

/// A small org (fast to generate).
pub(crate) fn small_config() -> SimConfig {
    SimConfig { agents: 20, rate_per_minute: 0, ..SimConfig::default() }
}

pub(crate) async fn start(config: SimConfig) -> Harness {
    let sim = spawn(config, 0).await.expect("simulator starts");
    let http = client();
    let token = fetch_token(&http, &sim).await;
    Harness { sim, http, token }
}

pub(crate) async fn fetch_token(http: &reqwest::Client, sim: &RunningSim) -> String {
    let resp = request_token(http, &sim.base_url(), &sim.config().client_id, &sim.config().client_secret).await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.expect("token json");
    body["access_token"].as_str().expect("access_token").to_owned()
}

pub(crate) async fn request_token(http: &reqwest::Client, base: &str, id: &str, secret: &str) -> reqwest::Response {
    http.post(format!("{base}/oauth/token"))
        .basic_auth(id, Some(secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .expect("token request")
}

impl Harness {
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sim.base_url())
    }

    pub(crate) async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.post(self.url(path)).bearer_auth(&self.token).json(body).send().await.expect("request")
    }

    pub(crate) async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).bearer_auth(&self.token).send().await.expect("request")
    }

    /// POSTs an aggregate query body; asserts 200 and returns the JSON.
    pub(crate) async fn query_ok(&self, body: &Value) -> Value {
        self.query_ok_at(QUERY_PATH, body).await
    }

    /// POSTs a query body to `path`; asserts 200 and returns the JSON.
    pub(crate) async fn query_ok_at(&self, path: &str, body: &Value) -> Value {
        let resp = self.post(path, body).await;
        let status = resp.status();
        let text = resp.text().await.expect("body");
        assert_eq!(status, 200, "query failed: {text}");
        serde_json::from_str(&text).expect("json body")
    }

    /// The rows the simulator serves for `query` over `window` (from the endpoint of its family).
    pub(crate) async fn rows(&self, query: &AggregateQuery, window: TimeWindow) -> Vec<MetricRow> {
        let body = self.query_ok_at(query_path(query), &body_for(query, window)).await;
        rows_of(query, &body)
    }

    /// POSTs an invalid body; asserts a 400 ErrorBody whose message contains `needle`.
    pub(crate) async fn expect_400(&self, body: &Value, needle: &str) -> Value {
        self.expect_400_at(QUERY_PATH, body, needle).await
    }

    /// POSTs an invalid body to `path`; asserts a 400 ErrorBody whose message contains `needle`.
    pub(crate) async fn expect_400_at(&self, path: &str, body: &Value, needle: &str) -> Value {
        let resp = self.post(path, body).await;
        assert_eq!(resp.status(), 400, "expected 400 for {body}");
        let corr = resp.headers()["inin-correlation-id"].to_str().unwrap().to_owned();
        let err: Value = resp.json().await.expect("ErrorBody json");
        assert_error_body(&err, 400, "bad.request", &corr);
        let message = err["message"].as_str().unwrap();
        assert!(message.contains(needle), "message {message:?} should contain {needle:?}");
        err
    }
}

/// Asserts the ErrorBody shape of section 3.3 / 7.3.
pub(crate) fn assert_error_body(err: &Value, status: u16, code: &str, corr: &str) {
    assert_eq!(sorted_keys(err), ["code", "contextId", "details", "errors", "message", "status"], "ErrorBody keys");
    assert_eq!(err["status"], status);
    assert_eq!(err["code"], code);
    assert_eq!(err["contextId"], corr);
    assert_eq!(err["details"], json!([]));
    assert_eq!(err["errors"], json!([]));
}

/// An object's keys, sorted (serde_json maps do not keep the order).
pub(crate) fn sorted_keys(v: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = v.as_object().expect("object").keys().map(String::as_str).collect();
    keys.sort_unstable();
    keys
}

pub(crate) fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
}

pub(crate) fn window(start: DateTime<Utc>, end: DateTime<Utc>) -> TimeWindow {
    TimeWindow::new(start, end).unwrap()
}

/// A whole UTC day.
pub(crate) fn day(y: i32, m: u32, d: u32) -> TimeWindow {
    let start = utc(y, m, d, 0, 0);
    window(start, start + chrono::Duration::days(1))
}

pub(crate) fn metrics(names: &[&str]) -> Vec<MetricName> {
    names.iter().map(|n| MetricName::parse(n).unwrap()).collect()
}

pub(crate) fn dims(names: &[&str]) -> Vec<Dimension> {
    names.iter().map(|n| Dimension::parse(n).unwrap()).collect()
}

pub(crate) const ALL_METRICS: [&str; 9] =
    ["tHandle", "tAcw", "tHeld", "tHeldComplete", "tTalk", "tTalkComplete", "nConnected", "tAnswered", "tAlert"];

pub(crate) fn query(metric_names: &[&str], group_by: &[&str], granularity: Granularity, tz: Tz) -> AggregateQuery {
    AggregateQuery::new(metrics(metric_names), dims(group_by), granularity, tz, Filters::none()).unwrap()
}

/// The usual per-agent half-hour query.
pub(crate) fn standard_query() -> AggregateQuery {
    query(&ALL_METRICS, &["userId", "mediaType"], Granularity::Pt30m, Tz::UTC)
}

/// The request body a client would send for `query` over `window`.
pub(crate) fn body_for(query: &AggregateQuery, window: TimeWindow) -> Value {
    let mut body = json!({
        "interval": window.to_iso_interval(),
        "granularity": query.granularity().as_iso(),
        "timeZone": query.time_zone().name(),
        "groupBy": query.group_by().iter().map(|d| d.as_str()).collect::<Vec<_>>(),
        "metrics": query.metrics().iter().map(|m| m.as_str()).collect::<Vec<_>>(),
    });
    let f = query.filters();
    let mut clauses = Vec::new();
    for (dim, values) in [("mediaType", f.media_types()), ("queueId", f.queue_ids()), ("userId", f.user_ids())] {
        if !values.is_empty() {
            let predicates: Vec<Value> = values
                .iter()
                .map(|v| json!({"type": "dimension", "dimension": dim, "operator": "matches", "value": v}))
                .collect();
            clauses.push(json!({"type": "or", "predicates": predicates}));
        }
    }
    if !clauses.is_empty() {
        body["filter"] = json!({"type": "and", "clauses": clauses});
    }
    body
}

/// Parses a response body (every field optional) into domain rows, sorted in the CSV order.
pub(crate) fn rows_of(query: &AggregateQuery, body: &Value) -> Vec<MetricRow> {
    let results = body.get("results").and_then(Value::as_array).cloned().unwrap_or_default();
    let parsed = AggregateResponse {
        results: results
            .iter()
            .map(|r| GroupResult {
                group: r
                    .get("group")
                    .and_then(Value::as_object)
                    .map(|g| g.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect())
                    .unwrap_or_default(),
                data: r["data"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|d| BucketData {
                        interval: d["interval"].as_str().unwrap().to_owned(),
                        metrics: d["metrics"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|m| MetricData {
                                metric: m["metric"].as_str().unwrap().to_owned(),
                                qualifier: m.get("qualifier").and_then(Value::as_str).map(str::to_owned),
                                stats: Stats {
                                    count: m["stats"].get("count").and_then(Value::as_u64),
                                    sum: m["stats"].get("sum").and_then(Value::as_f64),
                                    min: m["stats"].get("min").and_then(Value::as_f64),
                                    max: m["stats"].get("max").and_then(Value::as_f64),
                                    ratio: m["stats"].get("ratio").and_then(Value::as_f64),
                                    numerator: m["stats"].get("numerator").and_then(Value::as_f64),
                                    denominator: m["stats"].get("denominator").and_then(Value::as_f64),
                                    target: m["stats"].get("target").and_then(Value::as_f64),
                                },
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect(),
    };
    let mut rows = parsed.into_rows(query).expect("response follows the contract");
    rows.sort_by(|a, b| a.cmp_long(b));
    rows
}

/// Sum of `stats.count` and `stats.sum` of `metric` over rows.
pub(crate) fn totals(rows: &[MetricRow], metric: &str) -> (u64, f64) {
    rows.iter()
        .filter(|r| r.metric().as_str() == metric)
        .fold((0, 0.0), |(c, s), r| (c + r.stats().count.unwrap_or(0), s + r.stats().sum.unwrap_or(0.0)))
}
