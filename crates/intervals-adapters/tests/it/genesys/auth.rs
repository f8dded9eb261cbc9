//! OAuth client credentials: renewal before expiry, one renewal on a 401, clear refusals.

use std::time::Duration;

use intervals_adapters::genesys::{Environment, GenesysClient};
use intervals_app::{DirectorySource, MetricSource, RetryCounters, RetryPolicy, SourceError};
use tokio::time::Instant;

use super::support::{self, empty_results, handle_query, hour_windows, Canned, Fake, AGGREGATES, TOKEN};

#[tokio::test(start_paused = true)]
async fn a_token_expiring_mid_run_is_renewed_before_the_api_refuses_it() {
    let config = intervals_sim::SimConfig { token_ttl: Duration::from_secs(60), ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    let client = support::client(&sim.base_url(), |_| {});
    let query = handle_query();
    for window in hour_windows(12, 1) {
        let rows = client.query(&query, window).await.unwrap();
        assert_eq!(support::sorted(rows), sim.truth(&query, window));
        tokio::time::sleep(Duration::from_secs(20)).await;
    }
    let stats = sim.stats();
    assert_eq!(stats.unauthorized, 0, "the client let a token expire: {stats:?}");
    assert_eq!(stats.aggregate_queries, 12);
    // 240 s of work with 60 s tokens renewed at 54 s.
    assert!(stats.token_requests >= 4, "{stats:?}");
    assert_eq!(client.tokens_issued(), stats.token_requests);
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_is_renewed_once_and_the_call_succeeds() {
    let fake = Fake::start(|req, seen| {
        if req.path == TOKEN {
            let n = seen.iter().filter(|s| s.path == TOKEN).count() + 1;
            return Canned::token(&format!("tok-{n}"), 3600);
        }
        if req.authorization == "Bearer tok-1" {
            Canned::error(401, "Invalid login credentials.", "ctx-401")
        } else {
            empty_results()
        }
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let rows = client.query(&handle_query(), hour_windows(1, 1)[0]).await.unwrap();
    assert!(rows.is_empty());
    assert_eq!(fake.seen_at(TOKEN).len(), 2);
    let api: Vec<String> = fake.seen_at(AGGREGATES).into_iter().map(|s| s.authorization).collect();
    assert_eq!(api, ["Bearer tok-1", "Bearer tok-2"]);
    // The new token is cached: the next call needs no token request.
    client.query(&handle_query(), hour_windows(1, 1)[0]).await.unwrap();
    assert_eq!(fake.seen_at(TOKEN).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_token_refused_twice_is_unauthorized() {
    let fake = Fake::start(|req, _| {
        if req.path == TOKEN {
            Canned::token("tok", 3600)
        } else {
            Canned::error(401, "Invalid login credentials.", "ctx-401")
        }
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let err = client.query(&handle_query(), hour_windows(1, 1)[0]).await.unwrap_err();
    let SourceError::Unauthorized { message, context_id, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("the API refused the token twice"), "{message}");
    assert_eq!(context_id.as_deref(), Some("ctx-401"));
    assert_eq!(fake.seen_at(TOKEN).len(), 2);
    assert_eq!(fake.seen_at(AGGREGATES).len(), 2);
}

#[tokio::test(start_paused = true)]
async fn wrong_client_credentials_are_refused_by_the_login_service() {
    let sim = intervals_sim::spawn(support::sim_config(), 0).await.unwrap();
    let client =
        intervals_adapters::genesys::GenesysClient::new(support::config(&sim.base_url(), "not-the-secret")).unwrap();
    let err = client.query(&handle_query(), hour_windows(1, 1)[0]).await.unwrap_err();
    let SourceError::Unauthorized { message, .. } = &err else { panic!("{err:?}") };
    assert!(
        message.contains(
            "the login service refused the client credentials \
             (check GENESYS_CLIENT_ID/GENESYS_CLIENT_SECRET and the environment)"
        ),
        "{message}"
    );
    assert!(message.contains("HTTP 401") && message.contains("invalid_client"), "{message}");
    assert!(!err.is_retryable());
    let stats = sim.stats();
    assert_eq!((stats.token_requests, stats.aggregate_queries), (1, 0));
    // The same check before any work.
    assert!(matches!(client.authenticate().await, Err(SourceError::Unauthorized { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_login_url_that_is_not_a_login_service_is_refused_with_the_same_hint() {
    let fake = Fake::start(|_, _| Canned::json(404, serde_json::json!({"message": "No resource found"}))).await;
    let mut cfg = support::config(&fake.base_url, "s3cret-s3cret");
    cfg.environment = Environment::from_urls(&fake.base_url, &format!("{}/wrong", fake.base_url)).unwrap();
    let client = intervals_adapters::genesys::GenesysClient::new(cfg).unwrap();
    let err = client.users().await.unwrap_err();
    assert!(err.to_string().contains("check GENESYS_CLIENT_ID/GENESYS_CLIENT_SECRET and the environment"), "{err}");
    assert!(err.to_string().contains("HTTP 404"), "{err}");
    assert_eq!(fake.seen()[0].path, "/wrong/oauth/token");
}

#[tokio::test(start_paused = true)]
async fn the_token_request_is_client_credentials_with_basic_auth() {
    let fake = Fake::start(|req, _| if req.path == TOKEN { Canned::token("tok", 3600) } else { empty_results() }).await;
    let client = support::client(&fake.base_url, |_| {});
    client.authenticate().await.unwrap();
    let token = &fake.seen_at(TOKEN)[0];
    assert_eq!(token.method, "POST");
    assert_eq!(token.body, "grant_type=client_credentials");
    use base64::Engine;
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", support::SIM_ID, support::SIM_SECRET));
    assert_eq!(token.authorization, format!("Basic {basic}"));
}

/// 10-second tokens, a 60/min limit, 8 requests in flight: the pacer holds requests for seconds, so a
/// token taken before that wait would be stale when sent. The token is taken when a request goes out.
#[tokio::test(start_paused = true)]
async fn short_tokens_under_a_rate_limit_with_many_requests_in_flight_are_never_refused() {
    let config =
        intervals_sim::SimConfig { token_ttl: Duration::from_secs(10), rate_per_minute: 60, ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    let client = support::client(&sim.base_url(), |cfg| {
        cfg.pacer = std::sync::Arc::new(intervals_app::Pacer::new(60));
        cfg.max_concurrency = 8;
    });
    let query = handle_query();
    let mut tasks = tokio::task::JoinSet::new();
    for window in hour_windows(48, 1) {
        let (client, query) = (client.clone(), query.clone());
        tasks.spawn(async move { (window, client.query(&query, window).await) });
    }
    while let Some(done) = tasks.join_next().await {
        let (window, rows) = done.unwrap();
        assert_eq!(support::sorted(rows.unwrap()), sim.truth(&query, window));
    }
    let stats = sim.stats();
    assert_eq!((stats.unauthorized, stats.rate_limited), (0, 0), "{stats:?}");
    assert_eq!(stats.aggregate_queries, 48);
}

/// A login service that accepts connections and never answers: `login` gives up at its deadline
/// (not after eight 60 s request timeouts), as a source error no window can avoid.
#[tokio::test(start_paused = true)]
async fn a_login_service_that_never_answers_is_unauthorized_at_the_deadline() {
    // The kernel completes the handshakes; nobody ever reads or answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let login = format!("http://{}", silent.local_addr().unwrap());
    let fake = Fake::start(|_, _| empty_results()).await;
    let mut cfg = support::config(&fake.base_url, support::SIM_SECRET);
    cfg.environment = Environment::from_urls(&fake.base_url, &login).unwrap();
    let client = GenesysClient::new(cfg).unwrap();
    let policy = RetryPolicy { deadline: Duration::from_secs(30), ..RetryPolicy::default() };
    let counters = RetryCounters::default();
    let start = Instant::now();
    let err = client.login(&policy, &counters).await.unwrap_err();
    assert_eq!(start.elapsed(), Duration::from_secs(30));
    let SourceError::Unauthorized { message, context_id: None, .. } = &err else { panic!("{err:?}") };
    assert_eq!(
        *message,
        format!(
            "cannot get an access token from {login}: transient failure: gave up after 1 attempt: no answer within \
             the 30 s deadline"
        )
    );
    let cause = std::error::Error::source(&err).expect("the login's last failure is the cause");
    assert!(cause.to_string().contains("no answer within the 30 s deadline"), "{cause}");
    assert_eq!((client.tokens_issued(), counters.gave_up()), (0, 1));
    assert!(fake.seen().is_empty(), "no API request without a token");
}

#[tokio::test(start_paused = true)]
async fn a_login_service_failing_with_503_is_unauthorized_after_the_retries() {
    let fake = Fake::start(|_, _| Canned::error(503, "Service Unavailable", "ctx-login")).await;
    let client = support::client(&fake.base_url, |_| {});
    let policy = RetryPolicy { max_attempts: 3, ..RetryPolicy::default() };
    let err = client.login(&policy, &RetryCounters::default()).await.unwrap_err();
    let SourceError::Unauthorized { message, .. } = &err else { panic!("{err:?}") };
    let expected = format!(
        "cannot get an access token from {}: transient failure: gave up after 3 attempts (the most allowed): \
         POST /oauth/token HTTP 503: Service Unavailable [code some.code] (contextId ctx-login)",
        fake.base_url
    );
    assert_eq!(message, &expected);
    assert_eq!(fake.seen_at(TOKEN).len(), 3);
}

#[tokio::test(start_paused = true)]
async fn login_does_not_retry_refused_credentials_and_keeps_the_refusal() {
    let sim = intervals_sim::spawn(support::sim_config(), 0).await.unwrap();
    let client = GenesysClient::new(support::config(&sim.base_url(), "not-the-secret")).unwrap();
    let err = client.login(&RetryPolicy::default(), &RetryCounters::default()).await.unwrap_err();
    let SourceError::Unauthorized { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.starts_with("the login service refused the client credentials"), "{message}");
    assert_eq!(sim.stats().token_requests, 1);
    client.login(&RetryPolicy::default(), &RetryCounters::default()).await.unwrap_err();
    let client = support::client(&sim.base_url(), |_| {});
    client.login(&RetryPolicy::default(), &RetryCounters::default()).await.unwrap();
    assert_eq!(client.tokens_issued(), 1);
}

/// A login host that does not resolve (a mistyped environment; `.invalid` is never looked up) is
/// refused at the first login without a retry, naming the host and what to check.
#[tokio::test]
async fn an_unresolvable_login_host_is_refused_at_once_naming_it() {
    let config =
        intervals_adapters::genesys::GenesysConfig::for_environment(Environment::parse("nonexistent.invalid").unwrap())
            .credentials("id", intervals_adapters::genesys::Secret::new("secret"));
    let client = GenesysClient::new(config).unwrap();
    let counters = RetryCounters::default();
    let err = client.login(&RetryPolicy::default(), &counters).await.unwrap_err();
    let SourceError::Unauthorized { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("the host login.nonexistent.invalid does not resolve"), "{message}");
    assert!(message.contains("--environment"), "{message}");
    assert_eq!(counters.retries(), 0, "not retried");
}
