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
