//! Neither the client secret nor a token ever reaches logs, error text or Debug output.

use std::sync::Arc;

use base64::Engine;
use intervals_adapters::genesys::GenesysClient;
use intervals_app::{DirectorySource, MetricSource, RetryCounters, RetryPolicy, RetryingDirectory, RetryingSource};

use super::support::{self, handle_query, hour_windows, Canned, Fake, Logs, AGGREGATES, TOKEN};

const TOKEN_CANARY: &str = "tok-CANARY-7f3e9a";
const WRONG_SECRET: &str = "wrong-secret-CANARY-41c2";

#[tokio::test(start_paused = true)]
async fn secrets_and_tokens_never_reach_logs_or_errors() {
    let (logs, _guard) = Logs::capture();
    let mut texts: Vec<String> = Vec::new();

    // A normal run against the simulator, with a 429 on the way (retry logged with its reason).
    let config = intervals_sim::SimConfig { rate_per_minute: 2, ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    let client = support::client(&sim.base_url(), support::unpaced);
    texts.push(format!("{client:?}"));
    let counters = Arc::new(RetryCounters::default());
    let directory = RetryingDirectory::new(Arc::new(client.clone()), RetryPolicy::default(), counters.clone());
    let source = Arc::new(RetryingSource::new(Arc::new(client), RetryPolicy::default(), counters));
    let mut tasks = tokio::task::JoinSet::new();
    for window in hour_windows(3, 1) {
        let source = source.clone();
        tasks.spawn(async move { source.query(&handle_query(), window).await.map(|_| ()) });
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap().unwrap();
    }
    directory.users().await.unwrap();
    assert!(sim.stats().rate_limited > 0);

    // Wrong secret: the login service refuses.
    let wrong = GenesysClient::new(support::config(&sim.base_url(), WRONG_SECRET)).unwrap();
    let err = wrong.users().await.unwrap_err();
    texts.push(format!("{err} {err:?}"));

    // A server that echoes the token in its errors, refusing it twice.
    let fake = Fake::start(|req, _| {
        if req.path == TOKEN {
            Canned::token(TOKEN_CANARY, 3600)
        } else {
            Canned::error(401, &format!("token {TOKEN_CANARY} is not valid"), TOKEN_CANARY)
        }
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let err = client.query(&handle_query(), hour_windows(1, 1)[0]).await.unwrap_err();
    texts.push(format!("{err} {err:?}"));
    assert!(fake.seen_at(AGGREGATES)[0].authorization.contains(TOKEN_CANARY), "the canary was used");

    let logged = logs.text();
    assert!(logged.contains("obtained an access token"), "logs were captured:\n{logged}");
    assert!(logged.contains("retrying"), "retries were logged:\n{logged}");
    let basic =
        |secret: &str| base64::engine::general_purpose::STANDARD.encode(format!("{}:{secret}", support::SIM_ID));
    for text in texts.iter().chain([&logged]) {
        for needle in
            [support::SIM_SECRET, WRONG_SECRET, TOKEN_CANARY, &basic(support::SIM_SECRET), &basic(WRONG_SECRET)]
        {
            assert!(!text.contains(needle), "{needle:?} leaked into:\n{text}");
        }
    }
}

/// Every level of an error's chain, its `Display` and its `Debug`, outermost first.
fn chain_texts(err: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut texts = Vec::new();
    let mut level = Some(err);
    while let Some(e) = level {
        texts.push(format!("{e} {e:?}"));
        level = e.source();
    }
    texts
}

/// A source error keeps the error behind it as its cause (`source()`), and no level of that chain
/// shows the client secret: not a transport error's URL, not a parse error quoting the body.
#[tokio::test(start_paused = true)]
async fn causes_are_kept_and_never_show_a_secret() {
    // A refused connection: the OS error is in the chain, under the transport error.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let client = support::client(&base_url, |_| {});
    let refused = client.authenticate().await.unwrap_err();
    assert!(matches!(refused, intervals_app::SourceError::Transient { .. }), "{refused:?}");
    let refused_chain = chain_texts(&refused);
    assert!(refused_chain.len() >= 3, "the transport error and what is below it: {refused_chain:#?}");
    assert!(
        refused_chain[1..].iter().any(|t| t.contains("os error") || t.to_lowercase().contains("refused")),
        "the OS error is a cause: {refused_chain:#?}"
    );

    // A token answer whose field quotes the secret where a number belongs: the parse error would
    // quote it back.
    let fake = Fake::start(|req, _| {
        if req.path == TOKEN {
            Canned::json(200, serde_json::json!({"access_token": TOKEN_CANARY, "expires_in": support::SIM_SECRET}))
        } else {
            Canned::error(500, "unexpected", "ctx")
        }
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let garbled = client.authenticate().await.unwrap_err();
    assert!(matches!(garbled, intervals_app::SourceError::Transient { .. }), "{garbled:?}");
    let garbled_chain = chain_texts(&garbled);
    assert!(garbled_chain.len() >= 2, "the parse error is the cause: {garbled_chain:#?}");
    assert!(garbled_chain[1].contains("invalid type"), "{garbled_chain:#?}");

    for text in refused_chain.iter().chain(&garbled_chain) {
        assert!(!text.contains(support::SIM_SECRET), "the secret leaked into a cause: {text}");
    }
}
