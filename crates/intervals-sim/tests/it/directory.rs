//! `GET /api/v2/users` and `GET /api/v2/routing/queues` (section 6).

use std::collections::BTreeSet;

use intervals_sim::{agent_ids, queues, users, SimConfig};
use serde_json::{json, Value};

use crate::common::{small_config, start, utc, window, Harness};

async fn get_json(h: &Harness, path: &str) -> Value {
    let resp = h.get(path).await;
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// Follows `nextUri` from `first`, returning all entities and the number of pages.
async fn walk(h: &Harness, first: &str) -> (Vec<Value>, usize) {
    let mut entities = Vec::new();
    let mut path = first.to_owned();
    let mut pages = 0;
    loop {
        let page = get_json(h, &path).await;
        pages += 1;
        let mut keys: Vec<&str> = page.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        for k in ["entities", "firstUri", "lastUri", "pageCount", "pageNumber", "pageSize", "selfUri", "total"] {
            assert!(keys.contains(&k), "{k} in {keys:?}");
        }
        assert_eq!(page["pageNumber"], pages);
        if pages > 1 {
            assert!(page["previousUri"].is_string());
        }
        entities.extend(page["entities"].as_array().unwrap().iter().cloned());
        match page.get("nextUri").and_then(Value::as_str) {
            Some(next) => path = next.to_owned(),
            None => {
                assert_eq!(page["pageCount"], pages);
                break;
            }
        }
    }
    (entities, pages)
}

#[tokio::test]
async fn users_are_paged_and_filtered_by_state() {
    let h = start(SimConfig { agents: 45, ..small_config() }).await;
    let config = h.sim.config().clone();
    let expected = users(&config);

    let (any, pages) = walk(&h, "/api/v2/users?state=any&pageSize=10").await;
    assert_eq!(pages, 5);
    assert_eq!(any.len(), 45);
    let ids: Vec<&str> = any.iter().map(|u| u["id"].as_str().unwrap()).collect();
    assert_eq!(ids, expected.iter().map(|u| u.id.as_str()).collect::<Vec<_>>());
    let all: BTreeSet<String> = agent_ids(&config).into_iter().collect();
    assert_eq!(ids.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>(), all);
    let user = &any[0];
    for k in ["id", "name", "email", "state", "username", "division", "selfUri"] {
        assert!(user.get(k).is_some(), "{k}");
    }
    assert_eq!(user["division"].as_object().unwrap().keys().collect::<Vec<_>>(), ["id", "name", "selfUri"]);

    let count = |state: &str| expected.iter().filter(|u| u.state == state).count();
    assert!(count("inactive") > 0 && count("deleted") > 0);
    for state in ["active", "inactive", "deleted"] {
        let (listed, _) = walk(&h, &format!("/api/v2/users?state={state}&pageSize=25")).await;
        assert_eq!(listed.len(), count(state), "{state}");
        assert!(listed.iter().all(|u| u["state"] == state));
    }
    // Default: active only, pageSize 25.
    let page = get_json(&h, "/api/v2/users").await;
    assert_eq!(page["pageSize"], 25);
    assert_eq!(page["total"], count("active"));
    // Past the last page: empty.
    let page = get_json(&h, "/api/v2/users?state=any&pageNumber=9").await;
    assert_eq!(page["entities"], json!([]));
    // By id, whatever the state.
    let deleted = expected.iter().find(|u| u.state == "deleted").unwrap();
    let page = get_json(&h, &format!("/api/v2/users?state=any&id={}", deleted.id)).await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["entities"][0]["state"], "deleted");

    for bad in ["state=gone", "pageSize=0", "pageSize=501", "pageNumber=0", "pageSize=abc", "sortOrder=sideways"] {
        assert_eq!(h.get(&format!("/api/v2/users?{bad}")).await.status(), 400, "{bad}");
    }
}

#[tokio::test]
async fn deleted_and_inactive_agents_are_still_in_analytics() {
    let h = start(small_config()).await;
    let config = h.sim.config().clone();
    let gone: Vec<String> = users(&config).into_iter().filter(|u| u.state != "active").map(|u| u.id).collect();
    assert!(!gone.is_empty());
    let w = window(utc(2025, 3, 10, 0, 0), utc(2025, 3, 17, 0, 0));
    let resp = get_json_post(&h, &json!({"interval": w.to_iso_interval(), "granularity": "P1D", "groupBy": ["userId"], "metrics": ["nConnected"]})).await;
    let seen: BTreeSet<&str> =
        resp["results"].as_array().unwrap().iter().map(|r| r["group"]["userId"].as_str().unwrap()).collect();
    for id in &gone {
        assert!(seen.contains(id.as_str()), "{id} has analytics data");
    }
}

async fn get_json_post(h: &Harness, body: &Value) -> Value {
    h.query_ok(body).await
}

#[tokio::test]
async fn queues_are_paged_sorted_and_filterable() {
    let h = start(SimConfig { queues: 15, ..small_config() }).await;
    let expected = queues(h.sim.config());
    let (listed, pages) = walk(&h, "/api/v2/routing/queues?pageSize=4").await;
    assert_eq!(pages, 4);
    let names: Vec<&str> = listed.iter().map(|q| q["name"].as_str().unwrap()).collect();
    assert_eq!(names, expected.iter().map(|q| q.name.as_str()).collect::<Vec<_>>());
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted);
    for k in ["id", "name", "division", "memberCount", "joinedMemberCount", "selfUri"] {
        assert!(listed[0].get(k).is_some(), "{k}");
    }
    let page = get_json(&h, "/api/v2/routing/queues?name=*ales").await;
    assert_eq!(page["total"], 1);
    assert_eq!(page["entities"][0]["name"], "Sales");
    let page = get_json(&h, "/api/v2/routing/queues?name=sup*").await;
    assert_eq!(page["total"], 2, "Support and Support 2");
    let page = get_json(&h, "/api/v2/routing/queues?sortOrder=desc&pageSize=100").await;
    assert_eq!(page["entities"][0]["name"], *sorted.last().unwrap());
    assert_eq!(page["total"], 15);
    assert!(page.get("nextUri").is_none());
    assert_eq!(h.sim.stats().directory_requests, 7);
}
