//! Several reads of one org (`[[org.query]]`): an agent query and a queue query, each with its own
//! lookbacks and checkpoints, under the org's one lease, into one SQLite store; each query's
//! stored rows are the simulator's truth for it, and neither replaces the other's rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use intervals_domain::{AggregateQuery, TimeWindow};
use sqlx::{Connection, SqliteConnection};

use super::support::{config_text, settings, sim, t, window, ManualClock, Running};

const ORG: &str = "emea";

/// (user, media type, queue, interval start, metric) -> (count, sum).
type Grains = BTreeMap<(String, String, String, DateTime<Utc>, String), (Option<i64>, Option<f64>)>;

/// What the store holds for the org in `range`, every dimension kept; and what the simulator says
/// each query returns, each row in the dimensions its query groups by (`''` elsewhere).
struct Store(std::path::PathBuf);

impl Store {
    async fn stored(&self, range: TimeWindow) -> Grains {
        let url = format!("sqlite://{}?mode=ro", self.0.display());
        let mut db = SqliteConnection::connect(&url).await.unwrap();
        type Row = (String, String, String, String, String, Option<i64>, Option<f64>);
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT user_id, media_type, queue_id, interval_start, metric, count, CAST(sum AS REAL) \
             FROM interval_metrics WHERE org = ?1",
        )
        .bind(ORG)
        .fetch_all(&mut db)
        .await
        .unwrap();
        rows.into_iter()
            .map(|(u, m, q, s, k, c, sum)| {
                let start = DateTime::parse_from_rfc3339(&s).unwrap().with_timezone(&Utc);
                ((u, m, q, start, k), (c, sum))
            })
            .filter(|((_, _, _, start, _), _)| range.start() <= *start && *start < range.end())
            .collect()
    }

    fn truth(sim: &intervals_sim::RunningSim, queries: &[&AggregateQuery], range: TimeWindow) -> Grains {
        let mut out = Grains::new();
        for query in queries {
            let at = |name: &str| query.group_by().iter().position(|d| d.as_str() == name);
            for r in sim.truth(query, range) {
                let dim = |name: &str| at(name).map(|i| r.group()[i].clone()).unwrap_or_default();
                let key = (dim("userId"), dim("mediaType"), dim("queueId"), r.bucket().start(), r.metric_key());
                let stats = r.stats();
                let previous = out.insert(key.clone(), (stats.count.map(|c| c as i64), stats.sum));
                assert!(previous.is_none(), "two queries' truths share the grain {key:?}");
            }
        }
        out
    }
}

#[tokio::test]
async fn an_agent_query_and_a_queue_query_of_one_org_each_reach_their_truth() {
    let now = "2025-03-12T10:07:00Z";
    // Some non-ACD work: the queue query's groups without a queueId, stored with queue_id ''.
    let sim = sim(now, |c| c.non_acd_fraction = 0.25).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.db");
    // The agent query (the org's keys) re-reads 6 h, the queue query 1 h: the agent's lookback
    // re-reads windows the queue's does not, where a too-wide replace would remove its rows.
    let queue = "[[org.query]]\nmetrics = [\"tHandle\", \"tAcw\"]\ngroup_by = [\"queueId\", \"mediaType\"]\n\
                 lookback_hours = 1\ndaily_lookback_days = 0\n";
    let text = format!(
        "database_url = \"sqlite:{}\"\n{}{queue}",
        path.display(),
        config_text(&[(ORG, &sim, "backfill_from = \"2025-03-11\"\ndaily_lookback_days = 0")])
    );
    let settings = settings(&text);
    assert_eq!(settings.orgs[0].reads.len(), 2);
    let agent = settings.orgs[0].reads[0].queries.layout().clone();
    let by_queue = settings.orgs[0].reads[1].queries.layout().clone();
    let clock = ManualClock::at(now);
    let mut daemon = Running::start_configured(settings, clock.clone(), "replica-a", None).await;
    let store = Store(path);
    let everything = window("2025-03-10T00:00:00Z", "2025-03-13T00:00:00Z");

    daemon.tick().await;
    let range = window("2025-03-11T00:00:00Z", "2025-03-12T10:00:00Z");
    let expected = Store::truth(&sim, &[&agent, &by_queue], range);
    assert!(expected.keys().any(|(u, _, q, _, _)| u.is_empty() && q.is_empty()), "non-ACD rows of the queue query");
    assert!(expected.keys().any(|(u, _, q, _, _)| !u.is_empty() && q.is_empty()), "rows of the agent query");
    assert_eq!(store.stored(everything).await, expected, "after the first tick");
    let first = daemon.org(ORG);
    assert!(first.ready && first.last_success == Some(t(now)), "{first:?}");

    // Ninety minutes later, with late data: each query re-reads its own lookback; the agent's
    // (6 h) re-reads windows where the queue query's rows are those of the first tick.
    let queue_before = Store::truth(&sim, &[&by_queue], window("2025-03-11T00:00:00Z", "2025-03-12T10:00:00Z"));
    clock.set(t("2025-03-12T11:37:00Z"));
    sim.set_now(t("2025-03-12T11:37:00Z"));
    daemon.tick().await;
    let mut expected = Store::truth(&sim, &[&agent], window("2025-03-11T00:00:00Z", "2025-03-12T11:30:00Z"));
    expected.extend(queue_before);
    expected.extend(Store::truth(&sim, &[&by_queue], window("2025-03-12T10:00:00Z", "2025-03-12T11:30:00Z")));
    let stored = store.stored(everything).await;
    let missing: Vec<_> = expected.iter().filter(|(k, v)| stored.get(*k) != Some(*v)).collect();
    let extra: Vec<_> = stored.iter().filter(|(k, _)| !expected.contains_key(*k)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "after the lookbacks: missing or changed {missing:#?}, extra {extra:#?}"
    );
    let second = daemon.org(ORG);
    assert!(second.ready && second.last_success == Some(t("2025-03-12T11:37:00Z")), "{second:?}");
    daemon.shutdown().await.unwrap();
}
