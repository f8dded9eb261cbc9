//! The JSON Lines sink: golden file, valid JSON with the long layout's fields in order,
//! temporary file + rename, directory files.

use intervals_adapters::sinks::{JsonlDirectory, JsonlSink};
use intervals_app::{DirectoryWriter, Sink, SinkError};
use intervals_domain::{Queue, Stats, User};

use super::support::{
    files_in, golden, golden_query, golden_windows, key, query, row, stats_row, status_query, status_row, AGENT_A,
    AGENT_B, DAY, ORG, QUEUE_1,
};

async fn write_golden(sink: &JsonlSink) {
    let w = golden_windows();
    let (a, b) = tokio::join!(sink.write_window(&w[0].0, &w[0].1), sink.write_window(&w[1].0, &w[1].1));
    a.unwrap();
    b.unwrap();
}

#[tokio::test]
async fn rows_match_the_golden_file_and_appear_only_at_finish() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.jsonl");
    let sink = JsonlSink::create(&target, golden_query()).unwrap();
    assert_eq!(sink.describe(), format!("jsonl:{}", target.display()));
    write_golden(&sink).await;
    assert!(!target.exists());
    sink.finish().await.unwrap();
    let content = std::fs::read_to_string(&target).unwrap();
    assert_eq!(content, golden("long.jsonl"));
    drop(sink);
    assert_eq!(files_in(dir.path()), vec!["out.jsonl"]);
}

#[tokio::test]
async fn every_line_is_an_object_with_the_long_fields_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.jsonl");
    let sink = JsonlSink::create(&target, golden_query()).unwrap();
    write_golden(&sink).await;
    sink.finish().await.unwrap();
    let fields = ["user_id", "media_type", "interval_start", "interval_end", "metric", "count", "sum", "min", "max"];
    let content = std::fs::read_to_string(&target).unwrap();
    for line in content.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let object = value.as_object().unwrap();
        assert_eq!(object.len(), fields.len(), "{line}");
        // Key order as written (serde_json's map sorts keys, so look at the text).
        let positions: Vec<usize> = fields.iter().map(|f| line.find(&format!("\"{f}\":")).unwrap()).collect();
        assert!(positions.windows(2).all(|p| p[0] < p[1]), "{line}");
        assert!(object["count"].is_u64(), "{line}");
    }
    assert_eq!(content.lines().count(), 6);
}

/// A run reading conversation metrics (by userId, mediaType) and status metrics (by userId alone):
/// every line has the same keys, status lines an empty media_type; writing one query's window again
/// replaces that query's lines only.
#[tokio::test]
async fn a_mixed_run_has_the_same_keys_on_every_line_and_an_empty_media_type_for_status() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mixed.jsonl");
    let conversation = query("tHandle", "userId,mediaType", &[]);
    let sink = JsonlSink::create(&target, conversation.clone()).unwrap();
    let nine = "2025-03-10T09:00:00Z";
    let (status_key, conversation_key) = (key(&status_query(), DAY.0, DAY.1), key(&conversation, DAY.0, DAY.1));
    sink.write_window(&status_key, &[status_row(AGENT_B, nine, "tSystemPresence", "AWAY", 1.0)]).await.unwrap();
    sink.write_window(&conversation_key, &[row(&[AGENT_A, "voice"], nine, "tHandle", 2, 600_000.0)]).await.unwrap();
    sink.write_window(&status_key, &[status_row(AGENT_A, nine, "tAgentRoutingStatus", "IDLE", 300_000.0)])
        .await
        .unwrap();
    sink.finish().await.unwrap();
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&target).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let line = |user: &str, media: &str, metric: &str, count: serde_json::Value, sum: u64| {
        serde_json::json!({"user_id": user, "media_type": media, "interval_start": nine,
            "interval_end": "2025-03-10T09:30:00Z", "metric": metric, "count": count, "sum": sum,
            "min": null, "max": null})
    };
    assert_eq!(
        lines,
        vec![
            line(AGENT_A, "", "tAgentRoutingStatus:IDLE", serde_json::Value::Null, 300_000),
            line(AGENT_A, "voice", "tHandle", 2.into(), 600_000),
        ]
    );
    assert!(!lines.iter().any(|l| l["user_id"] == AGENT_B), "the status window's first write was replaced");
}

#[tokio::test]
async fn a_sink_dropped_without_finish_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sink = JsonlSink::create(dir.path().join("out.jsonl"), golden_query()).unwrap();
    write_golden(&sink).await;
    drop(sink);
    assert!(files_in(dir.path()).is_empty());

    let err = JsonlSink::create(dir.path().join("missing").join("out.jsonl"), golden_query()).unwrap_err();
    assert!(matches!(err, SinkError::Unavailable { .. }), "{err}");
}

#[tokio::test]
async fn users_and_queues_are_written_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.jsonl");
    let sink = JsonlDirectory::create(&path).unwrap();
    let user = User {
        id: AGENT_A.into(),
        name: "Ann \"the\" agent".into(),
        email: None,
        state: "inactive".into(),
        division_id: None,
        division_name: None,
    };
    assert_eq!(sink.write_users(ORG, &[user]).await.unwrap(), 1);
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        format!(
            "{{\"org\":\"{ORG}\",\"id\":\"{AGENT_A}\",\"name\":\"Ann \\\"the\\\" agent\",\"email\":null,\
             \"state\":\"inactive\",\"division_id\":null,\"division_name\":null}}\n"
        )
    );
    let queues = dir.path().join("queues.jsonl");
    let sink = JsonlDirectory::create(&queues).unwrap();
    let queue = Queue { id: QUEUE_1.into(), name: "Sales".into(), division_id: Some("d".into()), division_name: None };
    sink.write_queues(ORG, &[queue]).await.unwrap();
    let line: serde_json::Value = serde_json::from_str(std::fs::read_to_string(&queues).unwrap().trim()).unwrap();
    assert_eq!(
        line,
        serde_json::json!({"org": ORG, "id": QUEUE_1, "name": "Sales", "division_id": "d", "division_name": null})
    );
}

/// A query asking for an observation metric (`oServiceLevel`) adds `ratio`, `numerator`,
/// `denominator` and `target` to every object, after `max` (`null` where a row has none).
#[tokio::test]
async fn observation_metrics_add_their_ratio_fields() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("queue.jsonl");
    let q = query("nOffered,oServiceLevel", "queueId", &[]);
    let sink = JsonlSink::create(&target, q.clone()).unwrap();
    let nine = "2025-03-10T09:00:00Z";
    let service =
        Stats { ratio: Some(0.5), numerator: Some(1.0), denominator: Some(2.0), target: Some(0.9), ..Stats::default() };
    let rows = vec![
        stats_row(&[QUEUE_1], nine, "oServiceLevel", service),
        stats_row(&[QUEUE_1], nine, "nOffered", Stats { count: Some(3), ..Stats::default() }),
    ];
    sink.write_window(&key(&q, DAY.0, DAY.1), &rows).await.unwrap();
    sink.finish().await.unwrap();
    let bucket = format!(
        "\"queue_id\":\"{QUEUE_1}\",\"interval_start\":\"2025-03-10T09:00:00Z\",\"interval_end\":\"2025-03-10T09:30:00Z\""
    );
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        format!(
            "{{{bucket},\"metric\":\"nOffered\",\"count\":3,\"sum\":null,\"min\":null,\"max\":null,\"ratio\":null,\
             \"numerator\":null,\"denominator\":null,\"target\":null}}\n\
             {{{bucket},\"metric\":\"oServiceLevel\",\"count\":null,\"sum\":null,\"min\":null,\"max\":null,\
             \"ratio\":0.5,\"numerator\":1,\"denominator\":2,\"target\":0.9}}\n"
        )
    );
}
