//! The users aggregates API (section 5): status time consistent with the conversation data, its
//! truth, the endpoint, its jobs, validation and permission.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use chrono::{DateTime, Duration, Utc};
use intervals_domain::{
    AggregateQuery, Filters, Granularity, MetricRow, QuerySet, Stats, TimeWindow, Tz, USER_STATUS_METRICS,
};
use intervals_sim::{agent_ids, truth_csv, truth_rows, truth_set_rows, SimConfig, ORG_PRESENCES};
use proptest::prelude::*;
use serde_json::{json, Value};

use crate::common::{
    assert_error_body, body_for, day, dims, metrics, query, rows_of, small_config, start, utc, window, Harness,
    QUERY_PATH, USERS_QUERY_PATH,
};

const USERS_JOBS: &str = "/api/v2/analytics/users/aggregates/jobs";
const ZONES: [Tz; 4] = [Tz::UTC, Tz::Europe__Dublin, Tz::Asia__Kathmandu, Tz::America__New_York];
const GRANULARITIES: [Granularity; 4] = [Granularity::Pt15m, Granularity::Pt30m, Granularity::Pt1h, Granularity::P1d];

fn proptest_config(cases: u32) -> ProptestConfig {
    // A fixed seed (unless PROPTEST_RNG_SEED is set) and no failure file: the same cases on every run.
    ProptestConfig {
        cases,
        failure_persistence: None,
        rng_seed: match ProptestConfig::default().rng_seed {
            proptest::test_runner::RngSeed::Random => proptest::test_runner::RngSeed::Fixed(42),
            chosen => chosen,
        },
        ..ProptestConfig::default()
    }
}

fn status_query(g: Granularity, tz: Tz) -> AggregateQuery {
    query(USER_STATUS_METRICS, &["userId"], g, tz)
}

fn edges(from: DateTime<Utc>, g: Granularity, tz: Tz, buckets: usize) -> Vec<DateTime<Utc>> {
    let mut out = vec![g.ceil(from, tz)];
    while out.len() <= buckets {
        let last = *out.last().unwrap();
        out.push(g.next(last, tz));
    }
    out
}

fn ms(row: &MetricRow) -> u64 {
    row.stats().sum.expect("a status value has a sum") as u64
}

/// Milliseconds per (user, metric key), over every bucket.
fn per_user(rows: &[MetricRow]) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for r in rows {
        *out.entry((r.group()[0].clone(), r.metric_key())).or_default() += ms(r);
    }
    out
}

fn get(totals: &BTreeMap<(String, String), u64>, user: &str, key: &str) -> u64 {
    totals.get(&(user.to_owned(), key.to_owned())).copied().unwrap_or(0)
}

/// One simulator shared by the HTTP property, on its own runtime thread.
struct Shared {
    rt: tokio::runtime::Runtime,
    harness: Harness,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let config = SimConfig { agents: 12, shift_time_zone: Tz::America__New_York, ..small_config() };
        let harness = rt.block_on(start(config));
        Shared { rt, harness }
    })
}

proptest! {
    #![proptest_config(proptest_config(24))]

    #[test]
    fn routing_time_equals_presence_time_and_no_bucket_holds_more_than_its_length(
        zone in 0usize..ZONES.len(),
        shift_zone in 0usize..ZONES.len(),
        gran in 0usize..GRANULARITIES.len(),
        start_offset_hours in 0i64..96,
        buckets in 1usize..60,
        non_acd in prop::sample::select(vec![0.0, 0.25]),
    ) {
        let (tz, g) = (ZONES[zone], GRANULARITIES[gran]);
        let buckets = if g == Granularity::P1d { buckets.min(3) } else { buckets };
        let config = SimConfig { agents: 12, shift_time_zone: ZONES[shift_zone], non_acd_fraction: non_acd, ..small_config() };
        let e = edges(utc(2025, 3, 7, 0, 0) + Duration::hours(start_offset_hours), g, tz, buckets);
        let whole = window(e[0], *e.last().unwrap());
        let rows = truth_rows(&config, &status_query(g, tz), whole);
        let mut per_bucket: BTreeMap<(String, DateTime<Utc>), [u64; 3]> = BTreeMap::new();
        for r in &rows {
            prop_assert!(r.qualifier().is_some(), "{r:?}");
            prop_assert_eq!(*r.stats(), Stats { sum: Some(ms(r) as f64), ..Stats::default() });
            prop_assert!(ms(r) > 0, "no zero values: {r:?}");
            prop_assert!(whole.covers(&r.bucket()) && r.bucket().is_aligned(g, tz));
            let i = USER_STATUS_METRICS.iter().position(|m| *m == r.metric().as_str()).unwrap();
            per_bucket.entry((r.group()[0].clone(), r.bucket().start())).or_default()[i] += ms(r);
        }
        for ((user, start), [routing, org, system]) in &per_bucket {
            let length = (g.next(*start, tz) - *start).num_milliseconds() as u64;
            prop_assert_eq!(routing, system, "routing = presence for {} at {}", user, start);
            prop_assert_eq!(org, system, "org presence = system presence for {} at {}", user, start);
            prop_assert!(*system <= length, "{} ms in a bucket of {} ms ({} at {})", system, length, user, start);
        }
    }

    #[test]
    fn the_half_hours_of_a_day_add_up_to_the_day_for_every_status(
        day_offset in 0i64..40,
        shift_zone in 0usize..ZONES.len(),
        kathmandu in any::<bool>(),
    ) {
        let tz = if kathmandu { Tz::Asia__Kathmandu } else { Tz::UTC };
        let config = SimConfig { agents: 12, shift_time_zone: ZONES[shift_zone], ..small_config() };
        let e = edges(utc(2025, 2, 20, 0, 0) + Duration::days(day_offset), Granularity::P1d, tz, 1);
        let d = window(e[0], e[1]);
        let halves = truth_rows(&config, &status_query(Granularity::Pt30m, tz), d);
        let days = truth_rows(&config, &status_query(Granularity::P1d, tz), d);
        prop_assert_eq!(d.bucket_count(Granularity::Pt30m, tz), 48);
        prop_assert!(days.iter().all(|r| r.bucket() == d));
        let folded = per_user(&halves);
        let daily = per_user(&days);
        prop_assert_eq!(folded, daily);
    }

    #[test]
    fn interacting_time_covers_each_agent_days_handle_time(
        day_offset in 0i64..60,
        seed in 0u64..1000,
        non_acd in prop::sample::select(vec![0.0, 0.3]),
    ) {
        // Agents work on their day from 05:45 UTC at the earliest until about 03:00 the next day at
        // the latest, so from 04:00 to 04:00 is one agent-day for each of them.
        let config = SimConfig { agents: 20, seed, non_acd_fraction: non_acd, ..small_config() };
        let from = utc(2025, 3, 1, 4, 0) + Duration::days(day_offset);
        let w = window(from, from + Duration::days(1));
        let handle = truth_rows(&config, &query(&["tHandle"], &["userId"], Granularity::Pt1h, Tz::UTC), w);
        let status = per_user(&truth_rows(&config, &status_query(Granularity::Pt1h, Tz::UTC), w));
        let mut handled: BTreeMap<String, u64> = BTreeMap::new();
        for r in &handle {
            *handled.entry(r.group()[0].clone()).or_default() += r.stats().sum.unwrap() as u64;
        }
        for (user, handle_ms) in &handled {
            let interacting = get(&status, user, "tAgentRoutingStatus:INTERACTING");
            let communicating = get(&status, user, "tAgentRoutingStatus:COMMUNICATING");
            if non_acd == 0.0 {
                prop_assert_eq!(communicating, 0);
                prop_assert!(interacting >= *handle_ms, "{}: interacting {} < handle {}", user, interacting, handle_ms);
            } else {
                let working = interacting + communicating;
                prop_assert!(working >= *handle_ms, "{}: interacting + communicating {} < handle {}", user, working, handle_ms);
            }
        }
        for user in status.keys().map(|(u, _)| u.clone()).collect::<std::collections::BTreeSet<_>>() {
            let on_queue = get(&status, &user, "tSystemPresence:ON_QUEUE");
            let breaks = get(&status, &user, "tSystemPresence:BREAK");
            let meal = get(&status, &user, "tSystemPresence:MEAL");
            let total: u64 = ["ON_QUEUE", "BREAK", "MEAL"].iter().map(|p| get(&status, &user, &format!("tSystemPresence:{p}"))).sum();
            let all_presence: u64 = status.iter().filter(|((u, k), _)| *u == user && k.starts_with("tSystemPresence:")).map(|(_, v)| v).sum();
            prop_assert_eq!(total, all_presence, "only ON_QUEUE, BREAK and MEAL");
            prop_assert_eq!(get(&status, &user, "tAgentRoutingStatus:OFF_QUEUE"), breaks + meal, "off queue = pauses");
            prop_assert!(breaks <= 30 * 60_000 && meal <= 30 * 60_000, "{}: breaks {} meal {}", user, breaks, meal);
            let shift = (8 * 60 + 30) * 60_000;
            prop_assert!(total >= shift && total <= shift + 3 * 3_600_000, "{}: a day of {} ms", user, total);
            prop_assert!(on_queue > 0);
        }
    }
}

proptest! {
    #![proptest_config(proptest_config(8))]

    #[test]
    fn served_status_rows_equal_truth_whatever_the_windowing(
        zone in 0usize..ZONES.len(),
        gran in 0usize..3,
        start_offset_hours in 0i64..72,
        buckets in 2usize..40,
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
        metric_mask in 1u32..8,
    ) {
        let (tz, g) = (ZONES[zone], GRANULARITIES[gran]);
        let names: Vec<&str> = USER_STATUS_METRICS.iter().enumerate().filter(|(i, _)| metric_mask & (1 << i) != 0).map(|(_, m)| *m).collect();
        let q = query(&names, &["userId"], g, tz);
        let e = edges(utc(2025, 3, 8, 0, 0) + Duration::hours(start_offset_hours), g, tz, buckets);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(buckets - 1) + 1).collect();
        points.extend([0, buckets]);
        points.sort_unstable();
        points.dedup();
        let s = shared();
        let mut served: Vec<MetricRow> = Vec::new();
        for pair in points.windows(2) {
            served.extend(s.rt.block_on(s.harness.rows(&q, window(e[pair[0]], e[pair[1]]))));
        }
        served.sort_by(MetricRow::cmp_long);
        prop_assert_eq!(served, truth_rows(s.harness.sim.config(), &q, window(e[0], e[buckets])));
    }
}

#[test]
fn a_day_has_breaks_a_meal_missed_alerts_and_no_status_outside_the_shift() {
    let config = SimConfig { agents: 40, non_acd_fraction: 0.2, ..small_config() };
    let w = window(utc(2025, 3, 10, 4, 0), utc(2025, 3, 11, 4, 0));
    let rows = truth_rows(&config, &status_query(Granularity::Pt15m, Tz::UTC), w);
    let keys: std::collections::BTreeSet<String> = rows.iter().map(MetricRow::metric_key).collect();
    let org = |p: &str| ORG_PRESENCES.iter().find(|(s, _)| *s == p).unwrap().1;
    let expected: Vec<String> = [
        "tAgentRoutingStatus:COMMUNICATING".to_owned(),
        "tAgentRoutingStatus:IDLE".to_owned(),
        "tAgentRoutingStatus:INTERACTING".to_owned(),
        "tAgentRoutingStatus:NOT_RESPONDING".to_owned(),
        "tAgentRoutingStatus:OFF_QUEUE".to_owned(),
        format!("tOrganizationPresence:{}", org("BREAK")),
        format!("tOrganizationPresence:{}", org("MEAL")),
        format!("tOrganizationPresence:{}", org("ON_QUEUE")),
        "tSystemPresence:BREAK".to_owned(),
        "tSystemPresence:MEAL".to_owned(),
        "tSystemPresence:ON_QUEUE".to_owned(),
    ]
    .into_iter()
    .collect::<std::collections::BTreeSet<_>>()
    .into_iter()
    .collect();
    assert_eq!(keys.into_iter().collect::<Vec<_>>(), expected);
    // Agents who do not work that day have no rows at all, and nobody works at 04:00 UTC.
    let working: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.group()[0].as_str()).collect();
    assert!(working.len() < 40 && working.len() > 20, "{} of 40 agents work on a Monday", working.len());
    assert!(rows.iter().all(|r| r.bucket().start() >= utc(2025, 3, 10, 5, 45)));
    // A missed alert is not an interaction: NOT_RESPONDING is short and rare.
    let totals = per_user(&rows);
    let sum = |key: &str| totals.iter().filter(|((_, k), _)| k == key).map(|(_, v)| v).sum::<u64>();
    assert!(sum("tAgentRoutingStatus:NOT_RESPONDING") * 50 < sum("tAgentRoutingStatus:INTERACTING"));
}

#[test]
fn the_truth_of_a_query_set_is_the_long_csv_of_both_families() {
    let config = small_config();
    let names = metrics(&["tHandle", "tAgentRoutingStatus", "nConnected", "tSystemPresence"]);
    let users = agent_ids(&config)[..3].to_vec();
    let filters = Filters::none().with_user_ids(&users).unwrap();
    let set =
        QuerySet::new(names, dims(&["userId", "mediaType"]), Granularity::Pt30m, Tz::UTC, filters.clone()).unwrap();
    let w = day(2025, 3, 10);
    let rows = truth_set_rows(&config, &set, w);
    let csv = truth_csv(&config, &set, w);
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("user_id,media_type,interval_start,interval_end,metric,count,sum,min,max"));
    let records: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(records.len(), rows.len());
    let status: Vec<&Vec<&str>> = records.iter().filter(|r| r[4].starts_with("tAgentRoutingStatus:")).collect();
    assert!(!status.is_empty());
    assert!(status.iter().all(|r| r[1].is_empty() && r[5].is_empty() && !r[6].is_empty() && r[7..] == ["", ""]));
    assert!(records.iter().any(|r| r[4] == "tSystemPresence:ON_QUEUE"));
    assert!(records.iter().any(|r| r[4] == "tHandle" && r[1] == "voice"));
    assert!(records.iter().all(|r| users.iter().any(|u| u == r[0])), "the user filter holds for both families");
    let mut sorted = rows.clone();
    sorted.sort_by(MetricRow::cmp_long);
    assert_eq!(rows, sorted);
    // Each query's truth, regrouped into the layout.
    let mut expected: Vec<MetricRow> = Vec::new();
    for q in set.queries() {
        let layout = set.layout().group_by();
        expected.extend(truth_rows(&config, q, w).into_iter().map(|r| r.regrouped(q.group_by(), layout)));
    }
    expected.sort_by(MetricRow::cmp_long);
    assert_eq!(rows, expected);
}

#[tokio::test]
async fn the_users_endpoint_answers_what_truth_says_with_the_presence_mappings() {
    let h = start(small_config()).await;
    let q = status_query(Granularity::Pt30m, Tz::UTC);
    let w = day(2025, 3, 10);
    let body = h.query_ok_at(USERS_QUERY_PATH, &body_for(&q, w)).await;
    let mappings = body["systemToOrganizationMappings"].as_object().expect("mappings");
    assert_eq!(mappings.len(), ORG_PRESENCES.len());
    for (system, org) in ORG_PRESENCES {
        assert_eq!(mappings[system], json!([org]), "{system}");
    }
    let first = &body["results"][0];
    assert_eq!(first["group"].as_object().unwrap().keys().collect::<Vec<_>>(), ["userId"]);
    let value = &first["data"][0]["metrics"][0];
    assert!(value["qualifier"].is_string());
    assert_eq!(value["stats"].as_object().unwrap().keys().collect::<Vec<_>>(), ["sum"]);
    assert_eq!(rows_of(&q, &body), truth_rows(h.sim.config(), &q, w));
    assert_eq!(h.sim.stats().user_aggregate_queries, 1);
    assert_eq!(h.sim.stats().aggregate_queries, 0);

    // A user filter, the same for both families.
    let users = agent_ids(h.sim.config())[2..5].to_vec();
    let filters = Filters::none().with_user_ids(&users).unwrap();
    for names in [&["tSystemPresence"][..], &["tHandle", "nConnected"][..]] {
        let group: &[&str] = if names[0] == "tHandle" { &["userId", "mediaType"] } else { &["userId"] };
        let fq = AggregateQuery::new(metrics(names), dims(group), Granularity::Pt1h, Tz::UTC, filters.clone()).unwrap();
        let served = h.rows(&fq, w).await;
        assert!(!served.is_empty());
        assert!(served.iter().all(|r| users.contains(&r.group()[0])), "{names:?}");
        assert_eq!(served, truth_rows(h.sim.config(), &fq, w), "{names:?}");
    }

    // Nothing matched: no results, the mappings still there.
    let night = window(utc(2025, 3, 10, 4, 0), utc(2025, 3, 10, 5, 0));
    let body = h.query_ok_at(USERS_QUERY_PATH, &body_for(&q, night)).await;
    assert_eq!(body.as_object().unwrap().keys().collect::<Vec<_>>(), ["systemToOrganizationMappings"]);
    // No groupBy: one group for the whole org.
    let mut all = body_for(&q, w);
    all.as_object_mut().unwrap().remove("groupBy");
    let body = h.query_ok_at(USERS_QUERY_PATH, &all).await;
    assert_eq!(body["results"].as_array().unwrap().len(), 1);
    assert!(body["results"][0].get("group").is_none());
}

#[tokio::test]
async fn status_time_is_cut_at_the_clock_and_follows_reprocessing() {
    let h = start(small_config()).await;
    let q = status_query(Granularity::Pt15m, Tz::UTC);
    let w = day(2025, 3, 10);
    let noon = utc(2025, 3, 10, 12, 7);
    h.sim.set_now(noon);
    let served = h.rows(&q, w).await;
    assert_eq!(served, h.sim.truth(&q, w));
    assert!(served.iter().all(|r| r.bucket().start() < noon));
    let open: u64 = served.iter().filter(|r| r.bucket().start() == utc(2025, 3, 10, 12, 0)).map(ms).max().unwrap();
    assert!(open <= 7 * 60_000, "the open bucket holds the time elapsed so far");

    h.sim.set_real_time();
    let before = h.rows(&q, w).await;
    assert_eq!(before, truth_rows(h.sim.config(), &q, w));
    h.sim.reprocess(chrono::NaiveDate::from_ymd_opt(2025, 3, 10).unwrap());
    let after = h.rows(&q, w).await;
    assert_eq!(after, h.sim.truth(&q, w));
    let total = |rows: &[MetricRow], key: &str| rows.iter().filter(|r| r.metric_key() == key).map(ms).sum::<u64>();
    let key = "tAgentRoutingStatus:INTERACTING";
    assert!(total(&after, key) > total(&before, key), "longer ACW, longer interacting");
    let set = QuerySet::single(q.clone());
    assert_eq!(h.sim.truth_set(&set, w), after);
}

async fn submit(h: &Harness, path: &str, body: &Value) -> String {
    let resp = h.post(path, body).await;
    assert_eq!(resp.status(), 202);
    resp.json::<Value>().await.unwrap()["jobId"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn users_jobs_page_through_the_same_results() {
    let h = start(small_config()).await;
    let q = status_query(Granularity::Pt30m, Tz::UTC);
    let w = day(2025, 3, 11);
    let sync = h.query_ok_at(USERS_QUERY_PATH, &body_for(&q, w)).await;
    let mut body = body_for(&q, w);
    body["pageSize"] = json!(4);
    let id = submit(&h, USERS_JOBS, &body).await;
    let st: Value = h.get(&format!("{USERS_JOBS}/{id}")).await.json().await.unwrap();
    assert_eq!(st["state"], "FULFILLED");

    let mut collected: Vec<Value> = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            None => format!("{USERS_JOBS}/{id}/results"),
            Some(c) => format!("{USERS_JOBS}/{id}/results?cursor={c}"),
        };
        let resp = h.get(&path).await;
        assert_eq!(resp.status(), 200);
        let page: Value = resp.json().await.unwrap();
        assert_eq!(page["systemToOrganizationMappings"], sync["systemToOrganizationMappings"]);
        collected.extend(page["results"].as_array().unwrap().iter().cloned());
        pages += 1;
        match page.get("cursor").and_then(Value::as_str) {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert!(pages > 1);
    assert_eq!(&collected, sync["results"].as_array().unwrap());
    assert_eq!(rows_of(&q, &json!({"results": collected})), truth_rows(h.sim.config(), &q, w));

    // A job belongs to the API it was submitted to.
    let conversation_jobs = "/api/v2/analytics/conversations/aggregates/jobs";
    assert_eq!(h.get(&format!("{conversation_jobs}/{id}")).await.status(), 404);
    let resp = h.http.delete(h.url(&format!("{USERS_JOBS}/{id}"))).bearer_auth(&h.token).send().await.unwrap();
    assert_eq!(resp.status(), 204);
    let st: Value = h.get(&format!("{USERS_JOBS}/{id}")).await.json().await.unwrap();
    assert_eq!(st["state"], "CANCELLED");
}

#[tokio::test]
async fn the_users_endpoint_validates_like_the_conversation_endpoint() {
    let h = start(small_config()).await;
    let w = day(2025, 3, 10);
    let valid = body_for(&status_query(Granularity::Pt30m, Tz::UTC), w);
    let with = |key: &str, value: Value| {
        let mut b = valid.clone();
        b[key] = value;
        b
    };
    let users = |n: usize| {
        let predicates: Vec<Value> = (0..n)
            .map(|i| json!({"type": "dimension", "dimension": "userId", "operator": "matches", "value": format!("00000000-0000-4000-8000-{i:012}")}))
            .collect();
        with("filter", json!({"type": "or", "predicates": predicates}))
    };
    h.query_ok_at(USERS_QUERY_PATH, &users(100)).await;
    let cases = [
        (users(101), "101 predicates, more than the 100"),
        (with("metrics", json!(["tHandle"])), "invalid metric tHandle for a user aggregation query"),
        (with("metrics", json!(["tSystemPresence", "tStatus"])), "tAgentRoutingStatus"),
        (with("metrics", json!([])), "metrics is required"),
        (with("groupBy", json!(["mediaType"])), "the only dimension is userId"),
        (with("groupBy", json!(["agentId"])), "userId"),
        (
            with("filter", json!({"type": "and", "predicates": [{"dimension": "queueId", "value": "x"}]})),
            "may only use userId",
        ),
        (with("queryType", json!("groupBy")), "unknown field `queryType`"),
        (with("limit", json!(5)), "unknown field `limit`"),
        (with("pageSize", json!(5)), "aggregate jobs only"),
        (with("granularity", json!("PT5M")), "not supported by the simulator"),
        (with("interval", json!("")), "interval is required"),
    ];
    for (body, needle) in &cases {
        h.expect_400_at(USERS_QUERY_PATH, body, needle).await;
    }
    let resp = h.post(USERS_JOBS, &users(101)).await;
    assert_eq!(resp.status(), 400, "the job endpoint validates the same way");
    // A status metric is no conversation metric.
    let mut conversation = valid.clone();
    conversation["groupBy"] = json!(["userId", "mediaType"]);
    h.expect_400_at(QUERY_PATH, &conversation, "it is a user status metric").await;
}

#[tokio::test]
async fn without_the_user_aggregate_permission_only_the_users_endpoints_answer_403() {
    let h = start(SimConfig { user_aggregate_permission: false, ..small_config() }).await;
    let w = day(2025, 3, 10);
    let body = body_for(&status_query(Granularity::Pt30m, Tz::UTC), w);
    for path in [USERS_QUERY_PATH, USERS_JOBS] {
        let resp = h.post(path, &body).await;
        assert_eq!(resp.status(), 403, "{path}");
        let corr = resp.headers()["inin-correlation-id"].to_str().unwrap().to_owned();
        let err: Value = resp.json().await.unwrap();
        assert_error_body(&err, 403, "missing.any.permissions", &corr);
        assert!(err["message"].as_str().unwrap().contains("[analytics:userAggregate:view]"), "{err}");
    }
    let q = crate::common::standard_query();
    assert_eq!(h.rows(&q, w).await, truth_rows(h.sim.config(), &q, w), "conversation queries still work");
    let resp = h.post("/api/v2/analytics/conversations/aggregates/jobs", &body_for(&q, w)).await;
    assert_eq!(resp.status(), 202);
}

#[tokio::test]
async fn faults_apply_to_the_users_endpoint_too() {
    let h = start(SimConfig { fail_rate: 1.0, ..small_config() }).await;
    let body = body_for(&status_query(Granularity::Pt30m, Tz::UTC), day(2025, 3, 10));
    assert_eq!(h.post(USERS_QUERY_PATH, &body).await.status(), 503);
    let resp = h.http.post(h.url(USERS_QUERY_PATH)).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 401, "auth first");
    let limited = start(SimConfig { rate_per_minute: 1, ..small_config() }).await;
    assert_eq!(limited.post(USERS_QUERY_PATH, &body).await.status(), 200);
    assert_eq!(limited.post(USERS_QUERY_PATH, &body).await.status(), 429);
}

#[test]
fn status_and_handle_time_of_the_same_window_tell_the_same_day() {
    // The status day is built from the same interactions: nobody interacts without a status.
    let config = small_config();
    let w: TimeWindow = day(2025, 3, 12);
    let handle = truth_rows(&config, &query(&["tHandle"], &["userId"], Granularity::Pt30m, Tz::UTC), w);
    let status = truth_rows(&config, &status_query(Granularity::Pt30m, Tz::UTC), w);
    for r in &handle {
        let interacting = status.iter().any(|s| {
            s.group() == r.group() && s.metric_key() == "tAgentRoutingStatus:INTERACTING" && s.bucket() == r.bucket()
        });
        assert!(interacting, "handle time ends in a bucket with interacting time: {r:?}");
    }
}
