//! Status metrics through the users aggregates API (`/api/v2/analytics/users/aggregates/...`): the
//! request, lenient responses with qualifiers, batches of at most 100 user ids (for both families),
//! classification like the conversation endpoint, and users jobs. Against the scripted fake (the
//! simulator does not serve the users endpoints).

use std::sync::Arc;
use std::time::Duration;

use intervals_adapters::genesys::{JobSettings, JobSource, MAX_USER_PREDICATES};
use intervals_app::{MetricSource, RetryCounters, RetryPolicy, RetryingSource, SourceError};
use intervals_domain::{AggregateQuery, Dimension, Filters, Granularity, MetricRow, TimeWindow, Tz};
use serde_json::{json, Value};

use super::support::{self, window, Canned, Fake, Seen, AGGREGATES, TOKEN, USER_AGGREGATES};

const USERS_JOBS: &str = "/api/v2/analytics/users/aggregates/jobs";
const CONVERSATION_JOBS: &str = "/api/v2/analytics/conversations/aggregates/jobs";
/// The first PT30M bucket of [`hour`].
const BUCKET: &str = "2025-03-10T00:00:00.000Z/2025-03-10T00:30:00.000Z";

fn hour() -> TimeWindow {
    window("2025-03-10T00:00:00Z", "2025-03-10T01:00:00Z")
}

/// `n` distinct user ids, in the order `Filters` keeps them.
fn user_ids(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("6f1e2d3c-4b5a-4968-8776-{i:012x}")).collect()
}

/// Routing status and system presence per user, PT30M, UTC, filtered by `users` (none: all).
fn status_query(users: &[String]) -> AggregateQuery {
    AggregateQuery::new(
        AggregateQuery::parse_metrics("tAgentRoutingStatus,tSystemPresence").unwrap(),
        vec![Dimension::USER_ID],
        Granularity::Pt30m,
        "UTC".parse::<Tz>().unwrap(),
        Filters::none().with_user_ids(users).unwrap(),
    )
    .unwrap()
}

/// tHandle per user and media type, chat only, filtered by `users`.
fn chat_query(users: &[String]) -> AggregateQuery {
    AggregateQuery::new(
        AggregateQuery::parse_metrics("tHandle").unwrap(),
        vec![Dimension::USER_ID, Dimension::MEDIA_TYPE],
        Granularity::Pt30m,
        "UTC".parse::<Tz>().unwrap(),
        Filters::new(&["chat".to_owned()], &[]).unwrap().with_user_ids(users).unwrap(),
    )
    .unwrap()
}

fn body(seen: &Seen) -> Value {
    serde_json::from_str(&seen.body).unwrap()
}

/// The values of the request's userId clause (empty: not filtered by user).
fn users_sent(request: &Value) -> Vec<String> {
    let clauses = request["filter"]["clauses"].as_array().cloned().unwrap_or_default();
    clauses
        .iter()
        .filter(|c| c["predicates"][0]["dimension"] == "userId")
        .flat_map(|c| c["predicates"].as_array().unwrap().iter().map(|p| p["value"].as_str().unwrap().to_owned()))
        .collect()
}

/// A response with one bucket for each user the request names: the status query's shape on the
/// users endpoints, the conversation one elsewhere.
fn answer_for(path: &str, request: &Value) -> Value {
    let status = path.starts_with("/api/v2/analytics/users/");
    let results: Vec<Value> = users_sent(request)
        .iter()
        .map(|user| {
            if status {
                json!({"group": {"userId": user}, "data": [{"interval": BUCKET, "metrics": [
                    {"metric": "tAgentRoutingStatus", "qualifier": "IDLE", "stats": {"sum": 1000}}]}]})
            } else {
                json!({"group": {"userId": user, "mediaType": "chat"}, "data": [{"interval": BUCKET, "metrics": [
                    {"metric": "tHandle", "stats": {"count": 1, "sum": 1000}}]}]})
            }
        })
        .collect();
    if status {
        json!({"systemToOrganizationMappings": {"ON_QUEUE": ["org-presence-1"]}, "results": results})
    } else {
        json!({"results": results})
    }
}

/// Users of the rows, in order.
fn row_users(rows: &[MetricRow]) -> Vec<String> {
    rows.iter().map(|r| r.group()[0].clone()).collect()
}

fn retrying(client: intervals_adapters::genesys::GenesysClient) -> (RetryingSource, Arc<RetryCounters>) {
    let counters = Arc::new(RetryCounters::default());
    (RetryingSource::new(Arc::new(client), RetryPolicy::default(), counters.clone()), counters)
}

#[tokio::test(start_paused = true)]
async fn a_status_query_goes_to_the_users_endpoint_and_its_qualifiers_become_metric_keys() {
    let fake = Fake::start(|req, _| match req.path.as_str() {
        TOKEN => Canned::token("tok-u", 3600),
        USER_AGGREGATES => Canned::json(
            200,
            json!({"results": [{"group": {"userId": "6f1e2d3c-4b5a-4968-8776-000000000000"}, "data": [{
            "interval": BUCKET,
            "metrics": [
                {"metric": "tAgentRoutingStatus", "qualifier": "IDLE", "stats": {"sum": 600000}},
                {"metric": "tAgentRoutingStatus", "qualifier": "INTERACTING", "stats": {"sum": 1200000}},
                {"metric": "tSystemPresence", "qualifier": "ON_QUEUE", "stats": {"sum": 1800000}}
            ]}]}]}),
        ),
        _ => Canned::error(404, "No resource", "ctx"),
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let users = user_ids(2);
    let rows = client.query(&status_query(&users), hour()).await.unwrap();

    let sent = fake.seen_at(USER_AGGREGATES);
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].authorization, "Bearer tok-u");
    assert_eq!(
        body(&sent[0]),
        json!({
            "interval": "2025-03-10T00:00:00.000Z/2025-03-10T01:00:00.000Z",
            "granularity": "PT30M",
            "timeZone": "UTC",
            "groupBy": ["userId"],
            "filter": {"type": "and", "clauses": [{"type": "or", "predicates": [
                {"type": "dimension", "dimension": "userId", "operator": "matches", "value": users[0]},
                {"type": "dimension", "dimension": "userId", "operator": "matches", "value": users[1]}
            ]}]},
            "metrics": ["tAgentRoutingStatus", "tSystemPresence"]
        }),
        "groupBy userId only, no queryType, sortMetric, limit or flattenMultivaluedDimensions"
    );
    assert!(fake.seen_at(AGGREGATES).is_empty(), "nothing is sent to the conversation endpoint");

    let keys: Vec<(String, Option<f64>)> = rows.iter().map(|r| (r.metric_key(), r.stats().sum)).collect();
    assert_eq!(
        keys,
        [
            ("tAgentRoutingStatus:IDLE".to_owned(), Some(600_000.0)),
            ("tAgentRoutingStatus:INTERACTING".to_owned(), Some(1_200_000.0)),
            ("tSystemPresence:ON_QUEUE".to_owned(), Some(1_800_000.0)),
        ]
    );
    assert!(rows.iter().all(|r| r.group() == [users[0].as_str()] && r.bucket().to_iso_interval() == BUCKET));

    // Without a user filter, no filter at all.
    client.query(&status_query(&[]), hour()).await.unwrap();
    assert!(body(&fake.seen_at(USER_AGGREGATES)[1]).get("filter").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_users_response_is_read_leniently() {
    let fake = Fake::start(|req, seen| {
        if req.path == TOKEN {
            return Canned::token("tok", 3600);
        }
        if !seen.iter().any(|s| s.path == USER_AGGREGATES) {
            // Nothing matched: no results at all.
            return Canned::json(200, json!({"systemToOrganizationMappings": {}}));
        }
        Canned::json(
            200,
            json!({
                "systemToOrganizationMappings": {"ON_QUEUE": ["org-1", "org-2"], "AVAILABLE": ["org-3"]},
                "somethingNew": [1, 2, 3],
                "results": [{"group": {"userId": "u1", "extra": "ignored"}, "data": [{
                    "interval": BUCKET,
                    "metrics": [
                        {"metric": "tSystemPresence", "qualifier": "A_STATUS_NOBODY_KNOWS",
                         "stats": {"sum": 42000, "count": 3, "p99": 11, "weird": "yes"}},
                        {"metric": "tOrganizationPresence", "qualifier": "org-3", "stats": {"sum": 5}},
                        {"metric": "tAgentRoutingStatus", "stats": {"sum": 7}},
                        {"metric": "tAgentRoutingStatus", "qualifier": "IDLE", "stats": {}}
                    ]}]}]
            }),
        )
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    assert!(client.query(&status_query(&[]), hour()).await.unwrap().is_empty(), "absent results: no rows");
    let rows = client.query(&status_query(&[]), hour()).await.unwrap();
    let keys: Vec<(String, Option<f64>, Option<u64>)> =
        rows.iter().map(|r| (r.metric_key(), r.stats().sum, r.stats().count)).collect();
    assert_eq!(
        keys,
        [
            ("tSystemPresence:A_STATUS_NOBODY_KNOWS".to_owned(), Some(42_000.0), Some(3)),
            ("tAgentRoutingStatus".to_owned(), Some(7.0), None),
        ],
        "unknown qualifiers kept as they come, other stats ignored, a metric not asked for dropped, empty stats no row"
    );
    assert_eq!(rows[0].group(), ["u1"]);
}

/// 250 user ids: three requests of 100, 100 and 50 ids for the window, their rows joined, for
/// conversation and status queries alike.
#[tokio::test(start_paused = true)]
async fn more_than_100_users_are_read_in_batches_of_100_and_joined_for_both_families() {
    assert_eq!(MAX_USER_PREDICATES, 100);
    let fake = Fake::start(|req, _| match req.path.as_str() {
        TOKEN => Canned::token("tok", 3600),
        AGGREGATES | USER_AGGREGATES => Canned::json(200, answer_for(&req.path, &body(req))),
        _ => Canned::error(404, "No resource", "ctx"),
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let users = user_ids(250);
    for (query, path) in [(chat_query(&users), AGGREGATES), (status_query(&users), USER_AGGREGATES)] {
        let rows = client.query(&query, hour()).await.unwrap();
        let sent: Vec<Value> = fake.seen_at(path).iter().map(body).collect();
        let batches: Vec<Vec<String>> = sent.iter().map(users_sent).collect();
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [100, 100, 50], "{path}");
        assert_eq!(batches.concat(), users, "{path}: each id in exactly one batch");
        for request in &sent {
            assert_eq!(request["interval"], "2025-03-10T00:00:00.000Z/2025-03-10T01:00:00.000Z");
            assert_eq!(request["groupBy"], json!(query.group_by().iter().map(|d| d.as_str()).collect::<Vec<_>>()));
        }
        if path == AGGREGATES {
            // The media type clause is in every batch, beside its user ids.
            for request in &sent {
                let clauses = request["filter"]["clauses"].as_array().unwrap();
                assert_eq!(clauses.len(), 2);
                assert_eq!(
                    clauses[1]["predicates"],
                    json!([
                    {"type": "dimension", "dimension": "mediaType", "operator": "matches", "value": "chat"}])
                );
            }
        }
        assert_eq!(rows.len(), 250, "{path}");
        assert_eq!(row_users(&rows), users, "{path}: the batches' rows, joined in order");
        let key = if path == AGGREGATES { "tHandle" } else { "tAgentRoutingStatus:IDLE" };
        assert!(rows.iter().all(|r| r.metric_key() == key && r.stats().sum == Some(1000.0)));
    }
}

/// A batch that fails fails the call (no partial rows); the retry loop retries the whole call.
#[tokio::test(start_paused = true)]
async fn a_failed_batch_fails_the_call_and_the_retry_reads_every_batch_again() {
    let fake = Fake::start(|req, seen| {
        if req.path == TOKEN {
            return Canned::token("tok", 3600);
        }
        // The second batch of the first two attempts.
        if [1, 3].contains(&seen.iter().filter(|s| s.path == USER_AGGREGATES).count()) {
            return Canned::error(503, "Service Unavailable", "ctx-503");
        }
        Canned::json(200, answer_for(&req.path, &body(req)))
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let users = user_ids(250);
    let query = status_query(&users);

    let err = client.query(&query, hour()).await.unwrap_err();
    assert!(matches!(&err, SourceError::Transient { context_id: Some(c), .. } if c == "ctx-503"), "{err:?}");
    assert_eq!(fake.seen_at(USER_AGGREGATES).len(), 2, "the third batch is not sent after the second failed");

    let (source, counters) = retrying(client);
    let rows = source.query(&query, hour()).await.unwrap();
    assert_eq!(row_users(&rows), users, "every user once: nothing of the failed attempt is kept");
    assert_eq!((counters.transient(), counters.retries()), (1, 1));
    let batches: Vec<usize> = fake.seen_at(USER_AGGREGATES).iter().map(|s| users_sent(&body(s)).len()).collect();
    assert_eq!(batches, [100, 100, 100, 100, 100, 100, 50], "the retry sends every batch again");
}

#[tokio::test(start_paused = true)]
async fn forbidden_on_the_users_endpoints_names_the_user_aggregate_permission() {
    let fake = Fake::start(|req, _| match req.path.as_str() {
        TOKEN => Canned::token("tok", 3600),
        _ => Canned::error(403, "You are not authorized to perform the requested action.", "ctx-403"),
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let query = status_query(&user_ids(3));
    let sync = client.query(&query, hour()).await.unwrap_err();
    let job = client.query_via_job(&query, hour()).await.unwrap_err();
    for err in [sync, job] {
        let SourceError::Forbidden { permission, message, context_id } = &err else { panic!("{err:?}") };
        assert_eq!(permission, "analytics:userAggregate:view");
        assert!(message.contains("/api/v2/analytics/users/aggregates/"), "{message}");
        assert_eq!(context_id.as_deref(), Some("ctx-403"));
        assert!(err.to_string().contains("needs the permission analytics:userAggregate:view"), "{err}");
    }
    // The conversation endpoint still names its own.
    let err = client.query(&chat_query(&[]), hour()).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::Forbidden { permission, .. } if permission == "analytics:conversationAggregate:view"),
        "{err:?}"
    );
    assert_eq!(fake.seen_at(USER_AGGREGATES).len(), 1);
    assert_eq!(fake.seen_at(USERS_JOBS).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_503_on_the_users_endpoint_is_transient_like_on_the_conversation_endpoint() {
    let fake = Fake::start(|req, seen| {
        if req.path == TOKEN {
            return Canned::token("tok", 3600);
        }
        if !seen.iter().any(|s| s.path == req.path) {
            return Canned::error(503, "Service Unavailable", "ctx-503").header("retry-after", "4");
        }
        Canned::json(200, answer_for(&req.path, &body(req)))
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let users = user_ids(2);

    // One attempt: the 503 as it is, with its Retry-After.
    let err = client.query(&status_query(&users), hour()).await.unwrap_err();
    let SourceError::Transient { message, retry_after, context_id, .. } = &err else { panic!("{err:?}") };
    assert_eq!(
        (message.as_str(), *retry_after, context_id.as_deref()),
        (
            "POST /api/v2/analytics/users/aggregates/query HTTP 503: Service Unavailable [code some.code]",
            Some(Duration::from_secs(4)),
            Some("ctx-503")
        )
    );
    assert!(err.is_retryable());

    // Through the retry loop, on a fresh endpoint of each family: a 503 then a success, alike.
    for (query, path) in [(status_query(&users), USER_AGGREGATES), (chat_query(&users), AGGREGATES)] {
        let fresh = Fake::start({
            let path = path.to_owned();
            move |req, seen| {
                if req.path == TOKEN {
                    return Canned::token("tok", 3600);
                }
                if req.path == path && !seen.iter().any(|s| s.path == path) {
                    return Canned::error(503, "Service Unavailable", "ctx-503").header("retry-after", "4");
                }
                Canned::json(200, answer_for(&req.path, &body(req)))
            }
        })
        .await;
        let (source, counters) = retrying(support::client(&fresh.base_url, |_| {}));
        let rows = source.query(&query, hour()).await.unwrap();
        assert_eq!(row_users(&rows), users, "{path}");
        assert_eq!((counters.transient(), counters.retries()), (1, 1), "{path}");
        let calls = fresh.seen_at(path);
        assert_eq!(calls.len(), 2, "{path}");
        assert_eq!(calls[1].at - calls[0].at, Duration::from_secs(4), "{path}: Retry-After honoured");
    }
}

/// The rest of the send path: a refused token renewed once, a 400 on several buckets is
/// `TooLarge` (on one, `Invalid`), a body over the cap refused.
#[tokio::test(start_paused = true)]
async fn the_users_endpoint_shares_the_token_renewal_and_the_classification() {
    let fake = Fake::start(|req, seen| {
        if req.path == TOKEN {
            let n = seen.iter().filter(|s| s.path == TOKEN).count() + 1;
            return Canned::token(&format!("tok-{n}"), 3600);
        }
        if req.authorization == "Bearer tok-1" {
            return Canned::error(401, "Invalid login credentials.", "ctx-401");
        }
        let request = body(req);
        if request["interval"] != "2025-03-10T00:00:00.000Z/2025-03-10T01:00:00.000Z" {
            return Canned::error(400, "interval too long", "ctx-400");
        }
        Canned::json(200, answer_for(&req.path, &request))
    })
    .await;
    let client = support::client(&fake.base_url, |cfg| cfg.max_body_bytes = 16 << 10);
    let users = user_ids(1);
    let rows = client.query(&status_query(&users), hour()).await.unwrap();
    assert_eq!(row_users(&rows), users);
    let auth: Vec<String> = fake.seen_at(USER_AGGREGATES).into_iter().map(|s| s.authorization).collect();
    assert_eq!(auth, ["Bearer tok-1", "Bearer tok-2"]);

    let day = window("2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z");
    let err = client.query(&status_query(&users), day).await.unwrap_err();
    assert!(matches!(&err, SourceError::TooLarge { message, .. } if message.contains("interval too long")), "{err:?}");
    let one_bucket = window("2025-03-10T01:00:00Z", "2025-03-10T01:30:00Z");
    let err = client.query(&status_query(&users), one_bucket).await.unwrap_err();
    assert!(matches!(&err, SourceError::Invalid { status: Some(400), .. }), "{err:?}");

    // 150 users answer with more than 16 kB.
    let err = client.query(&status_query(&user_ids(150)), hour()).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::TooLarge { message, .. } if message.contains("response size limit")),
        "{err:?}"
    );
}

/// A users job: submitted to the users jobs API with pageSize, polled, its results read over two
/// cursors (three pages), never cancelled once read.
#[tokio::test(start_paused = true)]
async fn a_users_job_is_polled_then_read_over_two_cursors() {
    let users = user_ids(3);
    let page = |user: &str, cursor: Option<&str>| {
        let mut page = json!({
            "systemToOrganizationMappings": {"ON_QUEUE": ["org-1"]},
            "results": [{"group": {"userId": user}, "data": [{"interval": BUCKET, "metrics": [
                {"metric": "tSystemPresence", "qualifier": "ON_QUEUE", "stats": {"sum": 900000}}]}]}]
        });
        if let Some(c) = cursor {
            page["cursor"] = json!(c);
        }
        Canned::json(200, page)
    };
    let fake = Fake::start({
        let users = users.clone();
        move |req, seen| {
            let results = format!("{USERS_JOBS}/job-u/results");
            match (req.method.as_str(), req.path.as_str()) {
                (_, TOKEN) => Canned::token("tok", 3600),
                ("POST", USERS_JOBS) => Canned::json(202, json!({"jobId": "job-u"})),
                ("GET", p) if p == format!("{USERS_JOBS}/job-u") => {
                    let polls = seen.iter().filter(|s| s.path == p).count();
                    Canned::json(200, json!({"state": if polls == 0 { "PENDING" } else { "FULFILLED" }}))
                }
                ("GET", p) if p == results => match req.query.as_str() {
                    "" => page(&users[0], Some("page 2/of 3")),
                    "cursor=page%202%2Fof%203" => page(&users[1], Some("p3")),
                    "cursor=p3" => page(&users[2], None),
                    other => Canned::error(400, &format!("unexpected cursor {other}"), "ctx"),
                },
                _ => Canned::error(404, "No resource", "ctx"),
            }
        }
    })
    .await;
    let client = support::client(&fake.base_url, |cfg| {
        cfg.jobs = JobSettings { page_size: 1, ..JobSettings::default() };
    });
    let query = status_query(&users);
    let rows = JobSource::new(client.clone()).query(&query, hour()).await.unwrap();
    assert_eq!(row_users(&rows), users);
    assert!(rows.iter().all(|r| r.metric_key() == "tSystemPresence:ON_QUEUE" && r.stats().sum == Some(900_000.0)));

    let submitted = fake.seen_at(USERS_JOBS);
    assert_eq!(submitted.len(), 1);
    let request = body(&submitted[0]);
    assert_eq!(request["pageSize"], 1);
    assert_eq!(request["groupBy"], json!(["userId"]));
    assert!(request.get("queryType").is_none());
    assert_eq!(users_sent(&request), users);
    assert_eq!(fake.seen_at(&format!("{USERS_JOBS}/job-u")).len(), 2, "PENDING, then FULFILLED");
    let pages: Vec<String> =
        fake.seen_at(&format!("{USERS_JOBS}/job-u/results")).into_iter().map(|s| s.query).collect();
    assert_eq!(pages, ["", "cursor=page%202%2Fof%203", "cursor=p3"]);
    assert!(fake.seen().iter().all(|s| !s.path.contains("/conversations/")), "nothing on the conversation API");
    assert!(fake.seen().iter().all(|s| s.method != "DELETE"), "a job read is not cancelled");
    assert!(client.active_jobs().is_empty());
}

/// 250 users through jobs: one job per batch of at most 100, for either family, rows joined.
#[tokio::test(start_paused = true)]
async fn jobs_of_more_than_100_users_are_one_job_per_batch() {
    let fake = Fake::start(|req, seen| {
        let jobs_path = |p: &str| [USERS_JOBS, CONVERSATION_JOBS].into_iter().find(|j| p.starts_with(j));
        match (req.method.as_str(), req.path.as_str(), jobs_path(&req.path)) {
            (_, TOKEN, _) => Canned::token("tok", 3600),
            ("POST", p, Some(jobs)) if p == jobs => {
                let n = seen.iter().filter(|s| s.method == "POST" && s.path == jobs).count();
                Canned::json(202, json!({"jobId": format!("job-{n}")}))
            }
            ("GET", p, Some(jobs)) if p.ends_with("/results") => {
                // The results of job-n answer the n-th submission of that API.
                let n: usize = p[jobs.len() + "/job-".len()..p.len() - "/results".len()].parse().unwrap();
                let submission = seen.iter().filter(|s| s.method == "POST" && s.path == jobs).nth(n).unwrap();
                Canned::json(200, answer_for(jobs, &body(submission)))
            }
            ("GET", _, Some(_)) => Canned::json(200, json!({"state": "FULFILLED"})),
            _ => Canned::error(404, "No resource", "ctx"),
        }
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let users = user_ids(250);
    for (query, jobs) in [(status_query(&users), USERS_JOBS), (chat_query(&users), CONVERSATION_JOBS)] {
        let rows = client.query_via_job(&query, hour()).await.unwrap();
        assert_eq!(row_users(&rows), users, "{jobs}");
        let batches: Vec<usize> = fake.seen_at(jobs).iter().map(|s| users_sent(&body(s)).len()).collect();
        assert_eq!(batches, [100, 100, 50], "{jobs}");
    }
    assert!(client.active_jobs().is_empty());
}

/// An abandoned users job is cancelled on the users jobs API, as are active ones on shutdown.
#[tokio::test(start_paused = true)]
async fn users_jobs_are_cancelled_on_their_own_api() {
    let fake = Fake::start(|req, _| match (req.method.as_str(), req.path.as_str()) {
        (_, TOKEN) => Canned::token("tok", 3600),
        ("POST", USERS_JOBS) => Canned::json(202, json!({"jobId": "job-u"})),
        ("GET", _) => Canned::json(200, json!({"state": "PENDING"})),
        ("DELETE", _) => Canned { status: 204, headers: Vec::new(), body: String::new() },
        _ => Canned::error(404, "No resource", "ctx"),
    })
    .await;
    let client = support::client(&fake.base_url, |_| {});
    let query = status_query(&user_ids(1));
    let abandoned = tokio::time::timeout(Duration::from_secs(10), client.query_via_job(&query, hour())).await;
    assert!(abandoned.is_err(), "the job never finishes");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deletes = |fake: &Fake| -> Vec<String> {
        fake.seen().into_iter().filter(|s| s.method == "DELETE").map(|s| s.path).collect()
    };
    assert_eq!(deletes(&fake), [format!("{USERS_JOBS}/job-u")]);
    assert!(client.active_jobs().is_empty());

    let running = {
        let (client, query) = (client.clone(), query.clone());
        tokio::spawn(async move { client.query_via_job(&query, hour()).await })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(client.active_jobs(), ["job-u"]);
    assert_eq!(client.cancel_active_jobs().await, 1);
    assert_eq!(deletes(&fake), [format!("{USERS_JOBS}/job-u"), format!("{USERS_JOBS}/job-u")]);
    running.abort();
}
