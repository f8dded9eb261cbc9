//! Classification: 400 on a multi-bucket window is TooLarge, on one bucket Invalid; 403 names the
//! permission; every error carries the contextId. Also the exact request on the wire.

use intervals_app::{DirectorySource, MetricSource, SourceError};
use intervals_domain::{Filters, Granularity};

use super::support::{self, empty_results, handle_query, window, Canned, Fake, AGGREGATES, TOKEN};

#[tokio::test(start_paused = true)]
async fn bad_request_is_too_large_on_many_buckets_and_invalid_on_one() {
    let config = intervals_sim::SimConfig { max_span_days: Some(1), ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    let client = support::client(&sim.base_url(), |_| {});

    // Two days of PT30M: 96 buckets, over the limit -> TooLarge (the caller splits).
    let query = handle_query();
    let two_days = window("2025-03-10T00:00:00Z", "2025-03-12T00:00:00Z");
    let err = client.query(&query, two_days).await.unwrap_err();
    let SourceError::TooLarge { message, context_id } = &err else { panic!("{err:?}") };
    assert!(message.contains("more than the maximum of 1 days"), "{message}");
    assert!(context_id.as_deref().is_some_and(|c| !c.is_empty()), "{err:?}");

    // Each half of the split succeeds and together they give the whole range.
    let (a, b) = two_days.split_half(query.granularity(), query.time_zone()).unwrap();
    let mut rows = client.query(&query, a).await.unwrap();
    rows.extend(client.query(&query, b).await.unwrap());
    rows.sort_by(|x, y| x.cmp_long(y));
    assert_eq!(rows, sim.truth(&query, two_days));
    assert!(!rows.is_empty());

    // The local day on which Dublin leaves summer time lasts 25 hours: one P1D bucket that the
    // simulator rejects. It cannot be split, so it is Invalid with the API's message.
    let daily = support::query("tHandle", Granularity::P1d, "Europe/Dublin");
    let long_day = window("2025-10-25T23:00:00Z", "2025-10-27T00:00:00Z");
    assert_eq!(long_day.bucket_count(daily.granularity(), daily.time_zone()), 1);
    let err = client.query(&daily, long_day).await.unwrap_err();
    let SourceError::Invalid { message, context_id, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("The interval spans 25 hours"), "{message}");
    assert!(message.contains("HTTP 400"), "{message}");
    assert!(context_id.is_some());
    assert!(!err.is_retryable());
}

#[tokio::test(start_paused = true)]
async fn forbidden_names_the_missing_permission() {
    let fake = Fake::start(|req, _| match req.path.as_str() {
        TOKEN => Canned::token("tok", 3600),
        _ => Canned::error(403, "You are not authorized to perform the requested action.", "ctx-403")
            .header("inin-correlation-id", "ctx-403"),
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let err = client.query(&handle_query(), support::hour_windows(1, 1)[0]).await.unwrap_err();
    let SourceError::Forbidden { permission, message, context_id } = &err else { panic!("{err:?}") };
    assert_eq!(permission, "analytics:conversationAggregate:view");
    assert!(message.contains("not authorized"), "{message}");
    assert_eq!(context_id.as_deref(), Some("ctx-403"));
    assert!(err.to_string().contains("analytics:conversationAggregate:view"));

    let err = client.queues().await.unwrap_err();
    assert!(matches!(&err, SourceError::Forbidden { permission, .. } if permission == "routing:queue:view"), "{err:?}");
    let err = client.users().await.unwrap_err();
    assert!(matches!(&err, SourceError::Forbidden { .. }), "{err:?}");
    assert!(err.to_string().contains("GET /api/v2/users documents no permission"), "{err}");
    // One attempt each: no retry inside the client.
    assert_eq!(fake.seen().len(), 4);
}

#[tokio::test(start_paused = true)]
async fn the_correlation_header_stands_in_for_a_missing_context_id() {
    let fake = Fake::start(|req, _| match req.path.as_str() {
        TOKEN => Canned::token("tok", 3600),
        _ => Canned { status: 404, headers: vec![("inin-correlation-id", "hdr-404".into())], body: String::new() },
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let err = client.query(&handle_query(), support::hour_windows(1, 1)[0]).await.unwrap_err();
    assert!(matches!(&err, SourceError::Invalid { .. }), "{err:?}");
    assert_eq!(err.context_id(), Some("hdr-404"));
    assert!(err.to_string().contains("(contextId hdr-404)"), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_request_is_serialised_exactly() {
    let fake =
        Fake::start(|req, _| if req.path == TOKEN { Canned::token("tok-9", 3600) } else { empty_results() }).await;
    let client = support::client(&fake.base_url, |_| {});
    let filters = Filters::new(&["voice".into(), "chat".into()], &[]).unwrap();
    let query = intervals_domain::AggregateQuery::new(
        intervals_domain::AggregateQuery::parse_metrics("tHandle,tHeldComplete").unwrap(),
        vec![intervals_domain::Dimension::USER_ID],
        Granularity::Pt15m,
        "America/New_York".parse().unwrap(),
        filters,
    )
    .unwrap();
    client.query(&query, window("2025-03-10T04:00:00Z", "2025-03-11T04:00:00Z")).await.unwrap();
    let sent = &fake.seen_at(AGGREGATES)[0];
    assert_eq!(sent.method, "POST");
    assert_eq!(sent.authorization, "Bearer tok-9");
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({
            "interval": "2025-03-10T04:00:00.000Z/2025-03-11T04:00:00.000Z",
            "granularity": "PT15M",
            "timeZone": "America/New_York",
            "groupBy": ["userId"],
            "filter": {"type": "and", "clauses": [{"type": "or", "predicates": [
                {"type": "dimension", "dimension": "mediaType", "operator": "matches", "value": "chat"},
                {"type": "dimension", "dimension": "mediaType", "operator": "matches", "value": "voice"}
            ]}]},
            "metrics": ["tHandle", "tHeldComplete"]
        })
    );
}

#[tokio::test(start_paused = true)]
async fn a_response_breaking_the_contract_is_invalid_not_transient() {
    let fake = Fake::start(|req, _| match req.path.as_str() {
        TOKEN => Canned::token("tok", 3600),
        _ => Canned::json(200, serde_json::json!({"results": [{"group": {"userId": "u"}, "data": [{"metrics": []}]}]})),
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let err = client.query(&handle_query(), support::hour_windows(1, 1)[0]).await.unwrap_err();
    assert!(matches!(&err, SourceError::Invalid { message, .. } if message.contains("no interval")), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn buckets_outside_the_requested_window_are_never_returned() {
    // A server that answers every window with a bucket of another day, or one off the grid.
    for interval in ["2020-01-01T00:00:00.000Z/2020-01-01T00:30:00.000Z", "2025-03-10T00:10:00Z/2025-03-10T00:40:00Z"] {
        let body = serde_json::json!({"results": [{"group": {"userId": "6f1c6c4e-0d5e-4b8e-9c1e-1b2c3d4e5f60"},
            "data": [{"interval": interval, "metrics": [{"metric": "tHandle", "stats": {"count": 1, "sum": 1000}}]}]}]});
        let fake = Fake::start(move |req, _| match req.path.as_str() {
            TOKEN => Canned::token("tok", 3600),
            AGGREGATES => Canned::json(200, body.clone()),
            _ => Canned::error(404, "no", "ctx"),
        })
        .await;
        let client = support::client(&fake.base_url, |_| {});
        let day = window("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z");
        let err = client.query(&handle_query(), day).await.unwrap_err();
        let SourceError::Transient { message, .. } = &err else { panic!("{interval}: {err:?}") };
        assert!(message.contains(&interval[..16]) && message.contains("2025-03-10"), "{message}");
        assert!(err.is_retryable(), "asked again like a truncated body");
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_over_the_size_limit_is_refused_and_a_window_of_several_buckets_is_split() {
    // 40 kB of JSON against a 16 kB limit (the default limit is 256 MiB: the same code path).
    let big = serde_json::json!({"results": [], "padding": "x".repeat(40_000)});
    let fake = Fake::start(move |req, _| match req.path.as_str() {
        TOKEN => Canned::token("tok", 3600),
        _ => Canned::json(200, big.clone()),
    })
    .await;
    let client = support::client(&fake.base_url, |cfg| cfg.max_body_bytes = 16 << 10);
    let day = window("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z");
    let err = client.query(&handle_query(), day).await.unwrap_err();
    let SourceError::TooLarge { message, .. } = &err else { panic!("{err:?}") };
    assert!(message.contains("response size limit"), "{message}");
    let one_bucket = window("2025-03-10T00:00:00Z", "2025-03-10T00:30:00Z");
    let err = client.query(&handle_query(), one_bucket).await.unwrap_err();
    assert!(matches!(&err, SourceError::BodyTooLarge { cap: 16384, .. }), "{err:?}");
    assert!(!err.is_retryable());
    // The API answered: the message says the answer was over the client's cap, not that it was rejected.
    let text = err.to_string();
    assert!(
        text.starts_with(
            "the response body of POST /api/v2/analytics/conversations/aggregates/query exceeded the cap of 16384 \
             bytes (the response size limit)"
        ),
        "{text}"
    );
    assert!(!text.contains("rejected"), "{text}");
    assert_eq!(intervals_adapters::genesys::DEFAULT_MAX_BODY_BYTES, 256 << 20);
}
