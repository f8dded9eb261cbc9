//! What stops the start, with its exit code: bad credentials (3), an unreachable database (4),
//! a listen address in use (2).

use std::sync::Arc;

use intervals_app::SystemClock;
use intervals_daemon::{Daemon, RunOptions, StartError, TickMode};
use sqlx::PgPool;
use tokio::sync::watch;

use super::support::{config_text, settings, sim, storage};

fn options(storage: Option<intervals_daemon::Storage>) -> RunOptions {
    RunOptions {
        clock: Arc::new(SystemClock),
        ticks: TickMode::Manual(watch::channel(0).1),
        holder: "replica-a".into(),
        drain_timeout: std::time::Duration::from_secs(1),
        storage,
    }
}

#[sqlx::test(migrations = false)]
async fn bad_credentials_stop_the_start_with_exit_code_3(pool: PgPool) {
    let sim = sim("2025-03-12T10:07:00Z", |_| {}).await;
    let text = config_text(&[("emea", &sim, "backfill_from = \"2025-03-11\"")])
        .replace("client_secret_env = \"SIM_SECRET\"", "client_secret_env = \"WRONG_SECRET\"");
    let err = Daemon::start(settings(&text), options(Some(storage(&pool).await))).await.unwrap_err();
    assert!(matches!(err, StartError::Source { ref org, .. } if org == "emea"), "{err:?}");
    assert_eq!(err.exit_code(), 3);
    let message = err.to_string();
    assert!(message.contains("emea") && !message.contains("not-the-secret"), "{message}");
    assert_eq!(sim.stats().aggregate_queries, 0);
}

#[tokio::test]
async fn an_unreachable_database_stops_the_start_with_exit_code_4() {
    let sim = sim("2025-03-12T10:07:00Z", |_| {}).await;
    let text = format!(
        "database_url = \"postgres://intervals:hunter2@127.0.0.1:1/intervals\"\n{}",
        config_text(&[("emea", &sim, "backfill_from = \"2025-03-11\"")])
    );
    let err = Daemon::start(settings(&text), options(None)).await.unwrap_err();
    assert!(matches!(err, StartError::Database(_)), "{err:?}");
    assert_eq!(err.exit_code(), 4);
    let message = err.to_string();
    assert!(message.contains("127.0.0.1:1") && !message.contains("hunter2"), "{message}");
    assert_eq!(sim.stats().requests, 0, "nothing was asked of the source");
}

#[sqlx::test(migrations = false)]
async fn a_listen_address_in_use_stops_the_start_with_exit_code_2(pool: PgPool) {
    let sim = sim("2025-03-12T10:07:00Z", |_| {}).await;
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let text = config_text(&[("emea", &sim, "backfill_from = \"2025-03-11\"")])
        .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{}\"", taken.local_addr().unwrap()));
    let err = Daemon::start(settings(&text), options(Some(storage(&pool).await))).await.unwrap_err();
    assert!(matches!(err, StartError::Config(ref m) if m.starts_with("listen:")), "{err:?}");
    assert_eq!(err.exit_code(), 2);
}
