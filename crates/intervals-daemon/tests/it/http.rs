//! /healthz, /readyz and /metrics; a failing org does not stop the others.

use sqlx::PgPool;

use super::support::{config_text, get, settings, sim, stored, truth, window, ManualClock, Running};

#[sqlx::test(migrations = false)]
async fn endpoints_report_health_readiness_and_metrics(pool: PgPool) {
    let sim = sim("2025-03-12T10:07:00Z", |_| {}).await;
    let text = config_text(&[("emea", &sim, "backfill_from = \"2025-03-11\"")]);
    let clock = ManualClock::at("2025-03-12T10:07:00Z");
    let mut daemon = Running::start(settings(&text), &pool, clock, "replica-a").await;

    assert_eq!(get(&daemon.url("/healthz")).await, (200, "ok\n".to_owned()));
    let (status, body) = get(&daemon.url("/readyz")).await;
    assert_eq!(status, 503, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["ready"], false);
    assert_eq!(json["orgs"][0]["org"], "emea");
    assert_eq!(json["orgs"][0]["reason"], "no tick has completed yet");

    daemon.tick().await;
    let (status, body) = get(&daemon.url("/readyz")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&body).unwrap()["ready"], true);

    let (status, metrics) = get(&daemon.url("/metrics")).await;
    assert_eq!(status, 200);
    let s = daemon.org("emea");
    assert!(s.windows_written >= 2 && s.rows_written > 0, "{s:?}");
    for line in [
        format!("genesys_intervals_windows_written_total{{org=\"emea\"}} {}", s.windows_written),
        "genesys_intervals_windows_failed_total{org=\"emea\"} 0".to_owned(),
        format!("genesys_intervals_rows_written_total{{org=\"emea\"}} {}", s.rows_written),
        "genesys_intervals_ticks_total{org=\"emea\",outcome=\"ran\"} 1".to_owned(),
        "genesys_intervals_ticks_total{org=\"emea\",outcome=\"skipped\"} 0".to_owned(),
        // 2025-03-12T10:07:00Z, the injected clock.
        "genesys_intervals_last_success_timestamp_seconds{org=\"emea\"} 1741774020".to_owned(),
        "genesys_intervals_retries_total{org=\"emea\"} 0".to_owned(),
        "genesys_intervals_rate_limited_total{org=\"emea\"} 0".to_owned(),
        "genesys_intervals_lease_held{org=\"emea\"} 1".to_owned(),
        "genesys_intervals_ready{org=\"emea\"} 1".to_owned(),
        "# TYPE genesys_intervals_windows_written_total counter".to_owned(),
    ] {
        assert!(metrics.lines().any(|l| l == line), "missing {line:?} in\n{metrics}");
    }
    daemon.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_failing_org_does_not_stop_the_others(pool: PgPool) {
    let good = sim("2025-03-12T10:07:00Z", |_| {}).await;
    // This org's OAuth client lacks the analytics permission (the token itself is granted).
    let denied = sim("2025-03-12T10:07:00Z", |c| c.analytics_permission = false).await;
    let text = config_text(&[
        ("good", &good, "backfill_from = \"2025-03-11\""),
        ("denied", &denied, "backfill_from = \"2025-03-11\""),
    ]);
    let query = settings(&text).orgs[0].reads[0].queries.layout().clone();
    let clock = ManualClock::at("2025-03-12T10:07:00Z");
    let mut daemon = Running::start(settings(&text), &pool, clock, "replica-a").await;
    daemon.tick().await;

    let range = window("2025-03-11T00:00:00Z", "2025-03-12T10:00:00Z");
    assert_eq!(stored(&pool, "good", range).await, truth(&good, &query, range), "the good org was ingested");
    assert!(stored(&pool, "denied", range).await.is_empty());
    let d = daemon.org("denied");
    assert_eq!((d.ticks, d.ticks_failed, d.ready), (1, 1, false));
    assert!(d.last_error.as_deref().unwrap_or("").contains("analytics:conversationAggregate:view"), "{d:?}");

    let (status, body) = get(&daemon.url("/readyz")).await;
    assert_eq!(status, 503);
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let orgs = json["orgs"].as_array().unwrap();
    assert_eq!(orgs[0]["ready"], true);
    assert_eq!(orgs[1]["ready"], false);
    assert!(orgs[1]["reason"].as_str().unwrap().contains("analytics:conversationAggregate:view"), "{body}");
    let (_, metrics) = get(&daemon.url("/metrics")).await;
    assert!(metrics.contains("genesys_intervals_ticks_total{org=\"denied\",outcome=\"failed\"} 1"), "{metrics}");

    // Retried on the next tick (still refused): the good org keeps going.
    daemon.tick().await;
    assert_eq!(daemon.org("denied").ticks_failed, 2);
    assert_eq!(daemon.org("good").ticks, 2);
    daemon.shutdown().await.unwrap();
}

#[sqlx::test(migrations = false)]
async fn a_missing_status_permission_keeps_the_conversation_query_going(pool: PgPool) {
    // The OAuth client may read conversation aggregates, not users aggregates (status time).
    let sim = sim("2025-03-12T10:07:00Z", |c| c.user_aggregate_permission = false).await;
    let text = config_text(&[("emea", &sim, "backfill_from = \"2025-03-11\"")]).replace(
        "metrics = [\"tHandle\", \"tAcw\", \"nConnected\"]",
        "metrics = [\"tHandle\", \"tAcw\", \"nConnected\", \"tAgentRoutingStatus\"]",
    );
    let conversation = settings(&text).orgs[0].reads[0].queries.queries()[0].clone();
    let clock = ManualClock::at("2025-03-12T10:07:00Z");
    let mut daemon = Running::start(settings(&text), &pool, clock, "replica-a").await;
    daemon.tick().await;

    let range = window("2025-03-11T00:00:00Z", "2025-03-12T10:00:00Z");
    assert_eq!(stored(&pool, "emea", range).await, truth(&sim, &conversation, range), "conversations ingested");
    assert_eq!(sim.stats().user_aggregate_queries, 1, "one refused status request per tick, not one per window");
    let s = daemon.org("emea");
    assert_eq!((s.ticks, s.ticks_failed), (1, 0), "{s:?}");

    // Ready (the org makes progress), with the missing permission named.
    let (status, body) = get(&daemon.url("/readyz")).await;
    assert_eq!(status, 200, "{body}");
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    let org = &json["orgs"][0];
    assert_eq!(org["ready"], true, "{body}");
    assert_eq!(org["missing_permissions"], serde_json::json!(["analytics:userAggregate:view"]), "{body}");
    assert!(org["warning"].as_str().unwrap_or("").contains("analytics:userAggregate:view"), "{body}");
    let (_, metrics) = get(&daemon.url("/metrics")).await;
    let line = "genesys_intervals_missing_permission{org=\"emea\",permission=\"analytics:userAggregate:view\"} 1";
    assert!(metrics.lines().any(|l| l == line), "missing {line:?} in\n{metrics}");

    // The next tick asks once more (the permission may have been granted meanwhile), once.
    daemon.tick().await;
    assert_eq!(sim.stats().user_aggregate_queries, 2);
    assert_eq!(daemon.org("emea").ticks_failed, 0);
    daemon.shutdown().await.unwrap();
}
