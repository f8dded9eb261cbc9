//! Paging: users (state=any) and queues, and async aggregate jobs.

use std::time::Duration;

use intervals_adapters::genesys::JobSettings;
use intervals_app::{DirectorySource, MetricSource, SourceError};

use super::support::{self, handle_query, window, Canned, Fake, TOKEN};

const JOBS: &str = "/api/v2/analytics/conversations/aggregates/jobs";

#[tokio::test(start_paused = true)]
async fn users_are_read_page_by_page_in_any_state() {
    let config = intervals_sim::SimConfig { agents: 250, ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    let client = support::client(&sim.base_url(), |_| {});
    let users = client.users().await.unwrap();
    assert_eq!(users.len(), 250);
    assert_eq!(users, intervals_sim::users(sim.config()));
    assert!(users.iter().any(|u| u.state != "active"), "state=any must include inactive or deleted agents");
    assert_eq!(sim.stats().directory_requests, 3, "pages of 100");
}

#[tokio::test(start_paused = true)]
async fn queues_are_read_page_by_page() {
    let config = intervals_sim::SimConfig { queues: 30, ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    let client = support::client(&sim.base_url(), |cfg| cfg.page_size = 7);
    let queues = client.queues().await.unwrap();
    assert_eq!(queues, intervals_sim::queues(sim.config()));
    assert_eq!(sim.stats().directory_requests, 5, "30 queues in pages of 7");
}

#[tokio::test(start_paused = true)]
async fn page_count_is_followed_when_there_is_no_next_uri() {
    let fake = Fake::start(|req, _| {
        if req.path == TOKEN {
            return Canned::token("tok", 3600);
        }
        let page = if req.query.contains("pageNumber=2") { 2 } else { 1 };
        Canned::json(
            200,
            serde_json::json!({"entities": [{"id": format!("q{page}"), "name": format!("Queue {page}")}],
                               "pageSize": 1, "pageNumber": page, "total": 2, "pageCount": 2}),
        )
    })
    .await;
    let client = support::client(&fake.base_url, |cfg| cfg.page_size = 1);
    let queues = client.queues().await.unwrap();
    let ids: Vec<&str> = queues.iter().map(|q| q.id.as_str()).collect();
    assert_eq!(ids, ["q1", "q2"]);
    let queries: Vec<String> = fake.seen_at("/api/v2/routing/queues").into_iter().map(|s| s.query).collect();
    assert_eq!(queries, ["pageSize=1&pageNumber=1", "pageSize=1&pageNumber=2"]);
}

#[tokio::test(start_paused = true)]
async fn a_job_is_polled_then_read_page_by_page() {
    let config = intervals_sim::SimConfig { job_delay: Duration::from_secs(20), ..support::sim_config() };
    let sim = intervals_sim::spawn(config, 0).await.unwrap();
    let client = support::client(&sim.base_url(), |cfg| {
        cfg.jobs = JobSettings { page_size: 7, ..JobSettings::default() };
    });
    let query = handle_query();
    let range = window("2025-03-10T00:00:00Z", "2025-03-12T00:00:00Z");
    let mut rows = client.query_via_job(&query, range).await.unwrap();
    rows.sort_by(|a, b| a.cmp_long(b));
    assert!(!rows.is_empty());
    assert_eq!(rows, sim.truth(&query, range));
    let mut sync_rows = client.query(&query, range).await.unwrap();
    sync_rows.sort_by(|a, b| a.cmp_long(b));
    assert_eq!(rows, sync_rows);
    let stats = sim.stats();
    assert_eq!(stats.jobs, 1);
    // 20 agents x up to 4 media types in pages of 7 groups: several result pages, plus polls at
    // 0, 1, 3, 7, 15, 30 s (backoff doubling to 15 s).
    let groups = {
        let mut g: Vec<&[String]> = rows.iter().map(|r| r.group()).collect();
        g.dedup();
        g.len()
    };
    let pages = groups.div_ceil(7);
    assert!(pages >= 3, "{groups} groups");
    assert_eq!(stats.job_requests as usize, 6 + pages, "{stats:?}");
    assert!(client.active_jobs().is_empty());
}

fn job_fake(state: &'static str) -> impl Fn(&support::Seen, &[support::Seen]) -> Canned + Send + Sync {
    move |req, _| match (req.method.as_str(), req.path.as_str()) {
        (_, TOKEN) => Canned::token("tok", 3600),
        ("POST", JOBS) => Canned::json(202, serde_json::json!({"jobId": "job-1"})),
        ("GET", p) if p == format!("{JOBS}/job-1") => {
            Canned::json(200, serde_json::json!({"state": state, "errorMessage": "boom"}))
        }
        ("DELETE", _) => Canned { status: 204, headers: Vec::new(), body: String::new() },
        _ => Canned::error(404, "No resource", "ctx"),
    }
}

fn deletes(fake: &Fake) -> usize {
    fake.seen().iter().filter(|s| s.method == "DELETE" && s.path == format!("{JOBS}/job-1")).count()
}

#[tokio::test(start_paused = true)]
async fn a_job_that_does_not_finish_in_time_is_cancelled() {
    let fake = Fake::start(job_fake("QUEUED")).await;
    let client = support::client(&fake.base_url, |cfg| {
        cfg.jobs = JobSettings { timeout: Duration::from_secs(60), ..JobSettings::default() };
    });
    let err = client.query_via_job(&handle_query(), support::hour_windows(1, 24)[0]).await.unwrap_err();
    assert!(
        matches!(&err, SourceError::Transient { message, .. } if message.contains("did not finish within 60s")),
        "{err:?}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(deletes(&fake), 1);
    assert!(client.active_jobs().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_failed_job_reports_its_error_message() {
    let fake = Fake::start(job_fake("FAILED")).await;
    let client = support::client(&fake.base_url, |_| {});
    let err = client.query_via_job(&handle_query(), support::hour_windows(1, 24)[0]).await.unwrap_err();
    assert!(matches!(&err, SourceError::Invalid { message, .. } if message.contains("job-1 failed: boom")), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn an_abandoned_job_is_cancelled_when_its_future_is_dropped() {
    let fake = Fake::start(job_fake("PENDING")).await;
    let client = support::client(&fake.base_url, |_| {});
    let query = handle_query();
    let abandoned =
        tokio::time::timeout(Duration::from_secs(10), client.query_via_job(&query, support::hour_windows(1, 24)[0]))
            .await;
    assert!(abandoned.is_err(), "the job never finishes");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(deletes(&fake), 1);
    assert!(client.active_jobs().is_empty());
}

#[tokio::test(start_paused = true)]
async fn active_jobs_are_cancelled_on_shutdown() {
    let fake = Fake::start(job_fake("PENDING")).await;
    let client = support::client(&fake.base_url, |_| {});
    let running = {
        let client = client.clone();
        tokio::spawn(async move { client.query_via_job(&handle_query(), support::hour_windows(1, 24)[0]).await })
    };
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(client.active_jobs(), ["job-1"]);
    assert_eq!(client.cancel_active_jobs().await, 1);
    assert_eq!(deletes(&fake), 1);
    running.abort();
}
