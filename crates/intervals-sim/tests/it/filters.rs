//! Filters: mediaType, queueId, userId, purpose predicates; and/or; clauses; exists/notExists.

use std::collections::BTreeSet;

use intervals_domain::{AggregateQuery, Filters, Granularity, Tz};
use intervals_sim::{agent_ids, queue_ids, truth_rows, SimConfig};
use serde_json::{json, Value};

use crate::common::{dims, metrics, rows_of, small_config, start, totals, utc, window};

fn base(filter: Value, group_by: &[&str]) -> Value {
    json!({
        "interval": "2025-03-11T00:00:00Z/2025-03-13T00:00:00Z",
        "granularity": "PT1H",
        "groupBy": group_by,
        "metrics": ["tHandle", "nConnected"],
        "filter": filter,
    })
}

fn filtered(media: &[&str], queues: &[String], group_by: &[&str]) -> AggregateQuery {
    let media: Vec<String> = media.iter().map(|m| m.to_string()).collect();
    AggregateQuery::new(
        metrics(&["tHandle", "nConnected"]),
        dims(group_by),
        Granularity::Pt1h,
        Tz::UTC,
        Filters::new(&media, queues).unwrap(),
    )
    .unwrap()
}

fn range() -> intervals_domain::TimeWindow {
    window(utc(2025, 3, 11, 0, 0), utc(2025, 3, 13, 0, 0))
}

fn group_values(resp: &Value, key: &str) -> BTreeSet<String> {
    resp["results"]
        .as_array()
        .map(|rs| rs.iter().filter_map(|r| r["group"][key].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test]
async fn media_type_and_queue_filters_match_truth() {
    let h = start(small_config()).await;
    let config = h.sim.config().clone();
    let queues = queue_ids(&config);
    let group = ["userId", "mediaType", "queueId"];

    let resp = h
        .query_ok(&base(json!({"type": "or", "predicates": [{"dimension": "mediaType", "value": "voice"}]}), &group))
        .await;
    assert_eq!(group_values(&resp, "mediaType"), BTreeSet::from(["voice".to_owned()]));
    let q = filtered(&["voice"], &[], &group);
    assert_eq!(rows_of(&q, &resp), truth_rows(&config, &q, range()));

    let filter = json!({"type": "and", "predicates": [
        {"type": "dimension", "dimension": "queueId", "operator": "matches", "value": queues[1]}]});
    let resp = h.query_ok(&base(filter, &group)).await;
    assert_eq!(group_values(&resp, "queueId"), BTreeSet::from([queues[1].clone()]));
    let q = filtered(&[], &queues[1..2], &group);
    assert_eq!(rows_of(&q, &resp), truth_rows(&config, &q, range()));

    // (voice or chat) and (queue 0 or queue 2): clauses, as an adapter sends them.
    let filter = json!({"type": "and", "clauses": [
        {"type": "or", "predicates": [{"dimension": "mediaType", "value": "voice"}, {"dimension": "mediaType", "value": "chat"}]},
        {"type": "or", "predicates": [{"dimension": "queueId", "value": queues[0]}, {"dimension": "queueId", "value": queues[2]}]}]});
    let resp = h.query_ok(&base(filter, &group)).await;
    let q = filtered(&["voice", "chat"], &[queues[0].clone(), queues[2].clone()], &group);
    let rows = rows_of(&q, &resp);
    assert!(!rows.is_empty());
    assert_eq!(rows, truth_rows(&config, &q, range()));
}

#[tokio::test]
async fn user_filters_select_agents_and_unknown_values_match_nothing() {
    let h = start(small_config()).await;
    let unfiltered = h.query_ok(&json!({"interval": "2025-03-11T00:00:00Z/2025-03-13T00:00:00Z", "granularity": "PT1H", "groupBy": ["userId"], "metrics": ["tHandle", "nConnected"]})).await;
    // Agents who worked in the range, in agent order.
    let working = group_values(&unfiltered, "userId");
    let ids: Vec<String> = agent_ids(h.sim.config()).into_iter().filter(|id| working.contains(id)).collect();
    assert!(ids.len() > 10 && ids.len() < 20, "most agents work on a weekday");
    let one = json!({"type": "and", "predicates": [{"dimension": "userId", "value": ids[3]}]});
    let resp = h.query_ok(&base(one, &["userId"])).await;
    assert_eq!(group_values(&resp, "userId"), BTreeSet::from([ids[3].clone()]));

    let two = json!({"type": "or", "predicates": [{"dimension": "userId", "value": ids[3]}, {"dimension": "userId", "value": ids[5]}]});
    let resp = h.query_ok(&base(two, &["userId"])).await;
    let expected: BTreeSet<String> = [ids[3].clone(), ids[5].clone()].into();
    assert_eq!(group_values(&resp, "userId"), expected);

    // userId and mediaType together: and of predicates.
    let pairs = h
        .query_ok(&base(
            json!({"type": "or", "predicates": [{"dimension": "userId", "value": ids[3]}]}),
            &["userId", "mediaType"],
        ))
        .await;
    let media = pairs["results"][0]["group"]["mediaType"].as_str().unwrap().to_owned();
    let both = json!({"type": "and", "predicates": [{"dimension": "userId", "value": ids[3]}, {"dimension": "mediaType", "value": media}]});
    let resp = h.query_ok(&base(both, &["userId", "mediaType"])).await;
    let results = resp["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0]["group"], json!({"userId": ids[3], "mediaType": media}));
    assert_eq!(results[0], pairs["results"][0]);

    for (dim, value) in [("userId", "00000000-0000-4000-8000-000000000000"), ("mediaType", "fax"), ("queueId", "nope")]
    {
        let f = json!({"type": "and", "predicates": [{"dimension": dim, "value": value}]});
        assert_eq!(h.query_ok(&base(f, &["userId"])).await, json!({}), "{dim}={value}");
    }
    // exists on a dimension every interaction has: no filtering.
    let all = h
        .query_ok(&base(
            json!({"type": "and", "predicates": [{"dimension": "userId", "operator": "exists"}]}),
            &["userId"],
        ))
        .await;
    let f = json!({"type": "and", "predicates": [{"dimension": "direction", "value": "inbound"}]});
    assert_eq!(h.query_ok(&base(f, &["userId"])).await, all);
    assert_eq!(all, unfiltered);
}

#[tokio::test]
async fn purpose_separates_acd_from_non_acd_work_without_queue_id() {
    let h = start(SimConfig { non_acd_fraction: 0.25, ..small_config() }).await;
    let group = ["userId", "queueId"];
    let purpose = |p: &str| json!({"type": "and", "predicates": [{"dimension": "purpose", "value": p}]});
    let agent = h.query_ok(&base(purpose("agent"), &group)).await;
    let user = h.query_ok(&base(purpose("user"), &group)).await;
    let everything = h
        .query_ok(&json!({"interval": "2025-03-11T00:00:00Z/2025-03-13T00:00:00Z", "granularity": "PT1H",
        "groupBy": group, "metrics": ["tHandle", "nConnected"]}))
        .await;

    assert!(agent["results"].as_array().unwrap().iter().all(|r| r["group"]["queueId"].is_string()));
    let user_results = user["results"].as_array().unwrap();
    assert!(!user_results.is_empty());
    assert!(user_results.iter().all(|r| r["group"].get("queueId").is_none()), "non-ACD work has no queueId key");

    let q = AggregateQuery::new(
        metrics(&["tHandle", "nConnected"]),
        dims(&group),
        Granularity::Pt1h,
        Tz::UTC,
        Filters::none(),
    )
    .unwrap();
    let (a, u, all) = (rows_of(&q, &agent), rows_of(&q, &user), rows_of(&q, &everything));
    assert_eq!(totals(&a, "nConnected").0 + totals(&u, "nConnected").0, totals(&all, "nConnected").0);
    assert_eq!(totals(&a, "tHandle").1 + totals(&u, "tHandle").1, totals(&all, "tHandle").1);
    assert_eq!(all, truth_rows(h.sim.config(), &q, range()), "no queue = empty queue_id in rows");
    assert!(all.iter().any(|r| r.group()[1].is_empty()));

    let not_exists = json!({"type": "and", "predicates": [{"dimension": "queueId", "operator": "notExists"}]});
    assert_eq!(h.query_ok(&base(not_exists, &group)).await, user);
    let exists = json!({"type": "and", "predicates": [{"dimension": "queueId", "operator": "exists"}]});
    assert_eq!(h.query_ok(&base(exists, &group)).await, agent);
}
