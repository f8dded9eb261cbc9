//! OAuth client credentials (section 1.1) and bearer-token checks.

use std::time::Duration;

use intervals_sim::{spawn, SimConfig};
use serde_json::Value;

use crate::common::{
    assert_error_body, body_for, client, day, request_token, small_config, standard_query, start, QUERY_PATH,
};

#[tokio::test]
async fn token_response_has_the_oauth_fields_and_works_as_bearer() {
    let config = SimConfig { token_ttl: Duration::from_secs(3600), ..small_config() };
    let sim = spawn(config, 0).await.unwrap();
    let http = client();
    let resp = request_token(&http, &sim.base_url(), "sim-client", "sim-secret").await;
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["access_token", "expires_in", "token_type"]);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 3600);
    let token = body["access_token"].as_str().unwrap();
    let resp = http
        .post(format!("{}{QUERY_PATH}", sim.base_url()))
        .bearer_auth(token)
        .json(&body_for(&standard_query(), day(2025, 3, 10)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(sim.stats().token_requests, 1);
}

#[tokio::test]
async fn configured_credentials_are_the_only_ones_accepted() {
    let config = SimConfig { client_id: "id-1".into(), client_secret: "s3cret".into(), ..small_config() };
    let sim = spawn(config, 0).await.unwrap();
    let http = client();
    let base = sim.base_url();
    assert_eq!(request_token(&http, &base, "id-1", "s3cret").await.status(), 200);
    for (id, secret) in [("id-1", "wrong"), ("sim-client", "sim-secret"), ("", "")] {
        let resp = request_token(&http, &base, id, secret).await;
        assert_eq!(resp.status(), 401, "{id}:{secret}");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client");
    }
    // No Authorization header at all.
    let resp = http
        .post(format!("{base}/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(!format!("{:?}", sim.config()).contains("s3cret"), "Debug must not show the secret");
}

#[tokio::test]
async fn grant_type_must_be_client_credentials() {
    let sim = spawn(small_config(), 0).await.unwrap();
    let http = client();
    for body in ["grant_type=password", "", "scope=analytics"] {
        let resp = http
            .post(format!("{}/oauth/token", sim.base_url()))
            .basic_auth("sim-client", Some("sim-secret"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 400, "{body}");
        let json: Value = resp.json().await.unwrap();
        assert_eq!(json["error"], "unsupported_grant_type");
    }
}

#[tokio::test]
async fn api_calls_without_or_with_an_unknown_token_get_401_error_bodies() {
    let h = start(small_config()).await;
    let body = body_for(&standard_query(), day(2025, 3, 10));

    let resp = h.http.post(h.url(QUERY_PATH)).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let corr = resp.headers()["inin-correlation-id"].to_str().unwrap().to_owned();
    let err: Value = resp.json().await.unwrap();
    assert_error_body(&err, 401, "authentication.required", &corr);

    for token in ["not-a-token", &format!("{}x", h.token)] {
        let resp = h.http.post(h.url(QUERY_PATH)).bearer_auth(token).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 401);
        let corr = resp.headers()["inin-correlation-id"].to_str().unwrap().to_owned();
        let err: Value = resp.json().await.unwrap();
        assert_error_body(&err, 401, "bad.credentials", &corr);
    }
    let resp = h.http.get(h.url("/api/v2/users")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(h.sim.stats().unauthorized, 4);
}

#[tokio::test(start_paused = true)]
async fn tokens_expire_after_the_configured_ttl() {
    let config = SimConfig { token_ttl: Duration::from_secs(300), ..small_config() };
    let h = start(config).await;
    assert_eq!(h.get("/api/v2/routing/queues").await.status(), 200);
    tokio::time::advance(Duration::from_secs(299)).await;
    assert_eq!(h.get("/api/v2/routing/queues").await.status(), 200);
    tokio::time::advance(Duration::from_secs(2)).await;
    let resp = h.get("/api/v2/routing/queues").await;
    assert_eq!(resp.status(), 401);
    let corr = resp.headers()["inin-correlation-id"].to_str().unwrap().to_owned();
    let err: Value = resp.json().await.unwrap();
    assert_error_body(&err, 401, "bad.credentials", &corr);
    assert!(err["message"].as_str().unwrap().contains("expired"));
    // A new token works.
    let fresh = crate::common::fetch_token(&h.http, &h.sim).await;
    let resp = h.http.get(h.url("/api/v2/routing/queues")).bearer_auth(fresh).send().await.unwrap();
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_role_without_the_aggregate_permission_gets_403_naming_it() {
    let h = start(SimConfig { analytics_permission: false, ..small_config() }).await;
    for path in [QUERY_PATH, "/api/v2/analytics/conversations/aggregates/jobs"] {
        let resp = h.post(path, &body_for(&standard_query(), day(2025, 3, 10))).await;
        assert_eq!(resp.status(), 403, "{path}");
        let corr = resp.headers()["inin-correlation-id"].to_str().unwrap().to_owned();
        let err: Value = resp.json().await.unwrap();
        assert_error_body(&err, 403, "missing.any.permissions", &corr);
        assert!(err["message"].as_str().unwrap().contains("analytics:conversationAggregate:view"), "{err}");
    }
    // Listing users needs no permission.
    assert_eq!(h.get("/api/v2/users").await.status(), 200);
}
