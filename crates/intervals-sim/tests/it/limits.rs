//! Per-token rate limit and headers (section 7), seeded faults, latency, and `/sim/stats`.

use std::time::Duration;

use intervals_sim::{spawn, SimConfig};
use serde_json::{json, Value};

use crate::common::{
    assert_error_body, body_for, client, day, fetch_token, request_token, small_config, standard_query, start,
    QUERY_PATH,
};

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers().get(name).unwrap_or_else(|| panic!("header {name}")).to_str().unwrap().to_owned()
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_is_a_sliding_minute_per_token_with_the_documented_429() {
    let h = start(SimConfig { rate_per_minute: 5, ..small_config() }).await;
    for i in 1..=3 {
        let resp = h.get("/api/v2/routing/queues").await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "inin-ratelimit-allowed"), "5");
        assert_eq!(header(&resp, "inin-ratelimit-count"), i.to_string());
        assert_eq!(header(&resp, "inin-ratelimit-reset"), "60");
    }
    tokio::time::advance(Duration::from_secs(20)).await;
    for i in 4..=5 {
        let resp = h.get("/api/v2/routing/queues").await;
        assert_eq!(resp.status(), 200);
        assert_eq!(header(&resp, "inin-ratelimit-count"), i.to_string());
        assert_eq!(header(&resp, "inin-ratelimit-reset"), "40", "until the oldest request leaves the window");
    }
    let resp = h.get("/api/v2/routing/queues").await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), "40");
    let corr = header(&resp, "inin-correlation-id");
    let body: Value = resp.json().await.unwrap();
    assert_eq!(
        body,
        json!({
            "message": "Rate limit exceeded the maximum. Retry the request in [40] seconds",
            "code": "too.many.requests.retry.after",
            "status": 429,
            "contextId": corr,
            "details": [],
            "errors": []
        })
    );
    assert_error_body(&body, 429, "too.many.requests.retry.after", &corr);

    // Another token has its own minute.
    let other = fetch_token(&h.http, &h.sim).await;
    let resp = h.http.get(h.url("/api/v2/users")).bearer_auth(&other).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "inin-ratelimit-count"), "1");

    // After Retry-After, the three oldest have left the window: three more fit.
    tokio::time::advance(Duration::from_secs(40)).await;
    for _ in 0..3 {
        assert_eq!(h.get("/api/v2/routing/queues").await.status(), 200);
    }
    let resp = h.get("/api/v2/routing/queues").await;
    assert_eq!(resp.status(), 429);
    assert_eq!(header(&resp, "retry-after"), "20");
    assert_eq!(h.sim.stats().rate_limited, 2);
}

#[tokio::test]
async fn every_response_carries_correlation_and_rate_limit_headers() {
    let h = start(small_config()).await;
    let responses = vec![
        request_token(&h.http, &h.sim.base_url(), "sim-client", "sim-secret").await,
        request_token(&h.http, &h.sim.base_url(), "sim-client", "bad").await,
        h.http.get(h.url("/api/v2/users")).send().await.unwrap(),
        h.get("/api/v2/users").await,
        h.get("/nowhere").await,
        h.post(QUERY_PATH, &json!({"metrics": []})).await,
        h.http.get(h.url("/sim/stats")).send().await.unwrap(),
    ];
    let mut ids = std::collections::BTreeSet::new();
    for resp in &responses {
        for name in ["inin-ratelimit-allowed", "inin-ratelimit-count", "inin-ratelimit-reset"] {
            header(resp, name).parse::<u64>().unwrap();
        }
        let corr = header(resp, "ININ-Correlation-Id");
        assert!(intervals_domain::is_uuid(&corr));
        ids.insert(corr);
    }
    assert_eq!(ids.len(), responses.len(), "one correlation id per request");
}

#[tokio::test]
async fn fail_rate_one_answers_every_api_call_with_503() {
    let h = start(SimConfig { fail_rate: 1.0, ..small_config() }).await;
    let resp = h.post(QUERY_PATH, &body_for(&standard_query(), day(2025, 3, 10))).await;
    assert_eq!(resp.status(), 503);
    let corr = header(&resp, "inin-correlation-id");
    let err: Value = resp.json().await.unwrap();
    assert_error_body(&err, 503, "service.unavailable", &corr);
    assert_eq!(h.get("/api/v2/users").await.status(), 503);
    let stats = h.sim.stats();
    assert_eq!(stats.service_unavailable, 2);
    assert_eq!(stats.aggregate_queries, 0, "the fault answers before the handler");
}

async fn statuses(config: SimConfig, n: usize) -> Vec<u16> {
    let h = start(config).await;
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(h.get("/api/v2/routing/queues").await.status().as_u16());
    }
    out
}

#[tokio::test]
async fn faults_follow_a_seeded_sequence() {
    let config = SimConfig { fail_rate: 0.4, ..small_config() };
    let a = statuses(config.clone(), 40).await;
    let b = statuses(config.clone(), 40).await;
    assert_eq!(a, b, "same seed, same faults");
    let failures = a.iter().filter(|s| **s == 503).count();
    assert!((5..=30).contains(&failures), "{failures} of 40 failed");
    assert!(a.iter().all(|s| *s == 200 || *s == 503));
    let c = statuses(SimConfig { seed: 7, ..config }, 40).await;
    assert_ne!(a, c, "another seed, other faults");
}

#[tokio::test]
async fn truncated_bodies_are_cut_short_200s() {
    let body = body_for(&standard_query(), day(2025, 3, 10));
    let clean = start(small_config()).await;
    let full = clean.post(QUERY_PATH, &body).await.bytes().await.unwrap();
    let h = start(SimConfig { truncate_rate: 1.0, ..small_config() }).await;
    let resp = h.post(QUERY_PATH, &body).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(header(&resp, "content-type"), "application/json");
    let cut = resp.bytes().await.unwrap();
    assert!(!cut.is_empty() && cut.len() < full.len());
    assert_eq!(&full[..cut.len()], &cut[..], "a prefix of the real body");
    assert!(serde_json::from_slice::<Value>(&cut).is_err());
    // Errors are not truncated.
    let resp = h.post(QUERY_PATH, &json!({"metrics": ["tHold"]})).await;
    assert_eq!(resp.status(), 400);
    resp.json::<Value>().await.unwrap();
    assert_eq!(h.sim.stats().truncated, 1);
}

#[tokio::test(start_paused = true)]
async fn latency_is_added_to_api_calls() {
    let h = start(SimConfig { latency: Duration::from_millis(2500), ..small_config() }).await;
    let started = tokio::time::Instant::now();
    assert_eq!(h.get("/api/v2/routing/queues").await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(2500));
    let started = tokio::time::Instant::now();
    assert_eq!(h.http.get(h.url("/sim/stats")).send().await.unwrap().status(), 200);
    assert!(started.elapsed() < Duration::from_millis(2500), "admin calls are not delayed");
}

#[tokio::test]
async fn stats_count_what_was_served() {
    let sim = spawn(small_config(), 0).await.unwrap();
    let http = client();
    let token = fetch_token(&http, &sim).await;
    let base = sim.base_url();
    let q = body_for(&standard_query(), day(2025, 3, 10));
    for _ in 0..2 {
        let resp = http.post(format!("{base}{QUERY_PATH}")).bearer_auth(&token).json(&q).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = http.post(format!("{base}{QUERY_PATH}")).json(&q).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let stats: Value = http.get(format!("{base}/sim/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["token_requests"], 1);
    assert_eq!(stats["aggregate_queries"], 2);
    assert_eq!(stats["user_aggregate_queries"], 0);
    assert_eq!(stats["unauthorized"], 1);
    assert_eq!(stats["requests"], 5);
    let mut keys: Vec<&str> = stats.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "aggregate_queries",
            "bad_requests",
            "directory_requests",
            "job_requests",
            "jobs",
            "rate_limited",
            "requests",
            "service_unavailable",
            "token_requests",
            "truncated",
            "unauthorized",
            "user_aggregate_queries"
        ]
    );
    let snapshot = sim.stats();
    assert_eq!(snapshot.requests, 5, "the /sim/stats request itself counts");
    assert_eq!(snapshot.aggregate_queries, 2);
    sim.shutdown().await;
}
