//! The CSV sink: both layouts byte for byte against golden files, global order across windows
//! written in any order, temporary file + rename, and no half file on any failure.

use std::sync::Arc;

use intervals_adapters::sinks::{CsvDirectory, CsvLayout, CsvSink, CsvTarget};
use intervals_app::{DirectoryWriter, Sink, SinkError};
use intervals_domain::{long_header, long_record, MetricRow, Queue, Stats, User};

use super::support::{
    files_in, golden, golden_query, golden_windows, key, query, row, service_level, stats_row, status_query,
    status_row, AGENT_A, AGENT_B, DAY, ORG, QUEUE_1,
};

/// Writes the golden windows concurrently (the second day first).
async fn write_golden(sink: &CsvSink) {
    let w = golden_windows();
    let (a, b) = tokio::join!(sink.write_window(&w[0].0, &w[0].1), sink.write_window(&w[1].0, &w[1].1));
    a.unwrap();
    b.unwrap();
}

#[tokio::test]
async fn long_layout_matches_the_golden_file_and_appears_only_at_finish() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.csv");
    let sink = CsvSink::create(CsvTarget::Path(target.clone()), golden_query(), CsvLayout::Long).unwrap();
    assert_eq!(sink.describe(), format!("csv:{}", target.display()));
    write_golden(&sink).await;
    assert!(!target.exists(), "the target must not exist before finish");
    sink.finish().await.unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), golden("long.csv"));
    drop(sink);
    assert_eq!(files_in(dir.path()), vec!["out.csv"]);
}

#[tokio::test]
async fn wide_layout_matches_the_golden_file() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("wide.csv");
    let sink = CsvSink::create(CsvTarget::Path(target.clone()), golden_query(), CsvLayout::Wide).unwrap();
    write_golden(&sink).await;
    sink.finish().await.unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), golden("wide.csv"));
}

#[tokio::test]
async fn writing_a_window_again_replaces_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.csv");
    let sink = CsvSink::create(CsvTarget::Path(target.clone()), golden_query(), CsvLayout::Long).unwrap();
    let (day2, day1) = {
        let mut w = golden_windows();
        let day1 = w.pop().unwrap();
        (w.pop().unwrap(), day1)
    };
    let stale = vec![row(&[AGENT_B, "voice"], "2025-03-10T10:00:00Z", "tAcw", 1, 1.0)];
    sink.write_window(&day1.0, &stale).await.unwrap();
    sink.write_window(&day2.0, &day2.1).await.unwrap();
    sink.write_window(&day1.0, &day1.1).await.unwrap();
    sink.finish().await.unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), golden("long.csv"));
}

#[tokio::test]
async fn many_windows_merge_in_several_passes_into_the_contract_order() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("many.csv");
    let q = query("tHandle,tAcw", "userId,mediaType", &[]);
    let sink = CsvSink::create(CsvTarget::Path(target.clone()), q.clone(), CsvLayout::Long).unwrap();
    let agents = [AGENT_B, AGENT_A];
    let mut all: Vec<MetricRow> = Vec::new();
    // 150 one-bucket windows (more than the merge's fan-in), written newest first.
    for i in (0..150).rev() {
        let start = chrono::DateTime::parse_from_rfc3339("2025-03-10T00:00:00Z").unwrap().to_utc()
            + chrono::Duration::minutes(30 * i);
        let end = start + chrono::Duration::minutes(30);
        let (s, e) = (intervals_domain::rfc3339(start), intervals_domain::rfc3339(end));
        let rows: Vec<MetricRow> = agents
            .iter()
            .flat_map(|a| {
                [row(&[a, "voice"], &s, "tHandle", i as u64, i as f64 * 1.5), row(&[a, "voice"], &s, "tAcw", 1, 2.0)]
            })
            .collect();
        sink.write_window(&key(&q, &s, &e), &rows).await.unwrap();
        all.extend(rows);
    }
    sink.finish().await.unwrap();

    all.sort_by(|a, b| a.cmp_long(b));
    let mut expected = long_header(&q).join(",") + "\n";
    for r in &all {
        expected += &(long_record(&q, r).join(",") + "\n");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), expected);
    drop(sink);
    assert_eq!(files_in(dir.path()), vec!["many.csv"]);
}

/// A run reading conversation metrics (by userId, mediaType) and status metrics (by userId alone):
/// one header, the status rows with an empty media_type, in the contract's order; writing one
/// query's window again replaces that query's rows only.
#[tokio::test]
async fn a_mixed_run_has_one_header_and_status_rows_with_an_empty_media_type() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("mixed.csv");
    let conversation = query("tHandle", "userId,mediaType", &[]);
    let status = status_query();
    let sink = CsvSink::create(CsvTarget::Path(target.clone()), conversation.clone(), CsvLayout::Long).unwrap();
    let nine = "2025-03-10T09:00:00Z";
    let status_rows = |idle: f64| {
        vec![
            status_row(AGENT_B, nine, "tAgentRoutingStatus", "OFF_QUEUE", 1_800_000.0),
            status_row(AGENT_A, nine, "tSystemPresence", "ON_QUEUE", 1_500_000.0),
            status_row(AGENT_A, nine, "tAgentRoutingStatus", "IDLE", idle),
        ]
    };
    let conversation_rows = |handle: f64| {
        vec![row(&[AGENT_A, "voice"], nine, "tHandle", 2, handle), row(&[AGENT_B, "chat"], nine, "tHandle", 1, 5.0)]
    };
    let (status_key, conversation_key) = (key(&status, DAY.0, DAY.1), key(&conversation, DAY.0, DAY.1));
    sink.write_window(&status_key, &status_rows(1.0)).await.unwrap();
    sink.write_window(&conversation_key, &conversation_rows(1.0)).await.unwrap();
    sink.write_window(&status_key, &status_rows(300_000.0)).await.unwrap();
    sink.write_window(&conversation_key, &conversation_rows(600_000.0)).await.unwrap();
    sink.finish().await.unwrap();
    let bucket = "2025-03-10T09:00:00Z,2025-03-10T09:30:00Z";
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        format!(
            "user_id,media_type,interval_start,interval_end,metric,count,sum,min,max\n\
             {AGENT_A},,{bucket},tAgentRoutingStatus:IDLE,,300000,,\n\
             {AGENT_A},,{bucket},tSystemPresence:ON_QUEUE,,1500000,,\n\
             {AGENT_A},voice,{bucket},tHandle,2,600000,,\n\
             {AGENT_B},,{bucket},tAgentRoutingStatus:OFF_QUEUE,,1800000,,\n\
             {AGENT_B},chat,{bucket},tHandle,1,5,,\n"
        )
    );
}

#[tokio::test]
async fn the_wide_layout_refuses_the_status_query() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CsvSink::create(CsvTarget::Path(dir.path().join("wide.csv")), golden_query(), CsvLayout::Wide).unwrap();
    let status = [status_row(AGENT_A, "2025-03-10T09:00:00Z", "tSystemPresence", "ON_QUEUE", 1.0)];
    let err = sink.write_window(&key(&status_query(), DAY.0, DAY.1), &status).await.unwrap_err();
    assert!(matches!(&err, SinkError::Write { message, .. } if message.contains("wide layout")), "{err}");
}

#[tokio::test]
async fn no_rows_give_the_header_alone() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("empty.csv");
    let q = golden_query();
    let sink = CsvSink::create(CsvTarget::Path(target.clone()), q.clone(), CsvLayout::Long).unwrap();
    sink.write_window(&key(&q, "2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"), &[]).await.unwrap();
    sink.finish().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&target).unwrap(),
        "user_id,media_type,interval_start,interval_end,metric,count,sum,min,max\n"
    );
}

#[tokio::test]
async fn a_sink_dropped_without_finish_leaves_no_file_and_an_old_target_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.csv");
    std::fs::write(&target, "previous run\n").unwrap();
    let sink = CsvSink::create(CsvTarget::Path(target.clone()), golden_query(), CsvLayout::Long).unwrap();
    write_golden(&sink).await;
    assert!(files_in(dir.path()).len() > 1, "temporary files live beside the target while running");
    drop(sink);
    assert_eq!(files_in(dir.path()), vec!["out.csv"]);
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "previous run\n");

    // Finishing replaces the old content.
    let sink = CsvSink::create(CsvTarget::Path(target.clone()), golden_query(), CsvLayout::Long).unwrap();
    write_golden(&sink).await;
    sink.finish().await.unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), golden("long.csv"));
}

#[tokio::test]
async fn an_unwritable_target_fails_before_any_work_and_a_failed_rename_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-folder").join("out.csv");
    let err = CsvSink::create(CsvTarget::Path(missing), golden_query(), CsvLayout::Long).unwrap_err();
    assert!(matches!(err, SinkError::Unavailable { .. }), "{err}");
    let err = CsvSink::create(CsvTarget::Path(dir.path().to_path_buf()), golden_query(), CsvLayout::Long).unwrap_err();
    assert!(matches!(&err, SinkError::Unavailable { message, .. } if message.contains("folder")), "{err}");

    // The target becomes a folder while the run goes on: the final rename fails, cleanly.
    let target = dir.path().join("out.csv");
    let sink = CsvSink::create(CsvTarget::Path(target.clone()), golden_query(), CsvLayout::Long).unwrap();
    write_golden(&sink).await;
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("keep"), "x").unwrap();
    let err = sink.finish().await.unwrap_err();
    assert!(matches!(err, SinkError::Write { .. }), "{err}");
    drop(sink);
    assert_eq!(files_in(dir.path()), vec!["out.csv"]);
    assert_eq!(files_in(&target), vec!["keep"]);
}

#[tokio::test]
async fn rows_of_another_query_and_writes_after_finish_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sink = CsvSink::create(CsvTarget::Path(dir.path().join("out.csv")), golden_query(), CsvLayout::Long).unwrap();
    // Grouped by queueId, which the file has no column for.
    let other = query("tTalk", "userId,queueId", &[]);
    let err = sink.write_window(&key(&other, "2025-03-10T00:00:00Z", "2025-03-11T00:00:00Z"), &[]).await.unwrap_err();
    assert!(matches!(err, SinkError::Write { .. }), "{err}");
    sink.finish().await.unwrap();
    let (k, rows) = golden_windows().remove(0);
    assert!(sink.write_window(&k, &rows).await.is_err());
    assert!(sink.finish().await.is_err());
}

/// Names an admin typed that a spreadsheet would run as formulas are written as text (a leading `'`).
#[tokio::test]
async fn names_that_a_spreadsheet_would_run_are_written_as_text() {
    let dir = tempfile::tempdir().unwrap();
    let users_path = dir.path().join("users.csv");
    let sink = CsvDirectory::create(CsvTarget::Path(users_path.clone())).unwrap();
    let user = |id: &str, name: &str| User {
        id: id.into(),
        name: name.into(),
        email: Some("@evil".into()),
        state: "active".into(),
        division_id: None,
        division_name: Some("-2+3".into()),
    };
    sink.write_users(ORG, &[user(AGENT_A, "=HYPERLINK(\"http://x\")"), user(AGENT_B, "+1 Bob")]).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&users_path).unwrap(),
        format!(
            "org,id,name,email,state,division_id,division_name\n\
             {ORG},{AGENT_A},\"'=HYPERLINK(\"\"http://x\"\")\",'@evil,active,,'-2+3\n\
             {ORG},{AGENT_B},'+1 Bob,'@evil,active,,'-2+3\n"
        )
    );
    let queues_path = dir.path().join("queues.csv");
    let sink = CsvDirectory::create(CsvTarget::Path(queues_path.clone())).unwrap();
    let queue = Queue { id: QUEUE_1.into(), name: "\tSales".into(), division_id: None, division_name: None };
    sink.write_queues(ORG, &[queue]).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&queues_path).unwrap(),
        format!("org,id,name,division_id,division_name\n{ORG},{QUEUE_1},'\tSales,,\n")
    );
}

#[tokio::test]
async fn users_and_queues_are_written_as_csv_files() {
    let dir = tempfile::tempdir().unwrap();
    let users_path = dir.path().join("users.csv");
    let sink = Arc::new(CsvDirectory::create(CsvTarget::Path(users_path.clone())).unwrap());
    let user = |id: &str, name: &str, email: Option<&str>| User {
        id: id.into(),
        name: name.into(),
        email: email.map(String::from),
        state: "active".into(),
        division_id: Some("d1".into()),
        division_name: Some("Home, Sweet".into()),
    };
    let written = sink
        .write_users(
            ORG,
            &[user(AGENT_B, "Bob", None), user(AGENT_A, "Ann", Some("ann@x.example")), user(AGENT_B, "Bobby", None)],
        )
        .await
        .unwrap();
    assert_eq!(written, 2);
    sink.finish().await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&users_path).unwrap(),
        format!(
            "org,id,name,email,state,division_id,division_name\n\
             {ORG},{AGENT_A},Ann,ann@x.example,active,d1,\"Home, Sweet\"\n\
             {ORG},{AGENT_B},Bobby,,active,d1,\"Home, Sweet\"\n"
        )
    );
    drop(sink);

    let queues_path = dir.path().join("queues.csv");
    let sink = CsvDirectory::create(CsvTarget::Path(queues_path.clone())).unwrap();
    let queue = Queue { id: QUEUE_1.into(), name: "Sales".into(), division_id: None, division_name: None };
    assert_eq!(sink.write_queues(ORG, &[queue]).await.unwrap(), 1);
    assert_eq!(
        std::fs::read_to_string(&queues_path).unwrap(),
        format!("org,id,name,division_id,division_name\n{ORG},{QUEUE_1},Sales,,\n")
    );
    drop(sink);
    assert_eq!(files_in(dir.path()), vec!["queues.csv", "users.csv"]);
}

/// A symbolic link stays a link: the file it points to is replaced, with the temporary file beside
/// that file, not beside the link.
#[tokio::test]
async fn a_symlink_target_is_followed_and_stays_a_link() {
    let (links, files) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let real = files.path().join("real.csv");
    std::fs::write(&real, "old\n").unwrap();
    let link = links.path().join("out.csv");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let sink = CsvSink::create(CsvTarget::Path(link.clone()), golden_query(), CsvLayout::Long).unwrap();
    write_golden(&sink).await;
    sink.finish().await.unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(), "the link was replaced");
    assert_eq!(std::fs::read_to_string(&real).unwrap(), golden("long.csv"));
    assert_eq!(files_in(links.path()), vec!["out.csv".to_owned()], "nothing left beside the link");
}

/// A FIFO (like a character device) is written through, never replaced by a regular file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_target_is_written_through() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("pipe.csv");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo");
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
    };
    let sink = CsvSink::create(CsvTarget::Path(fifo.clone()), golden_query(), CsvLayout::Long).unwrap();
    write_golden(&sink).await;
    sink.finish().await.unwrap();
    assert_eq!(reader.join().unwrap(), golden("long.csv"));
    use std::os::unix::fs::FileTypeExt;
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo(), "the FIFO was replaced");
}

/// A target that cannot be written is refused when the sink is created (before any request).
#[tokio::test]
async fn a_read_only_target_is_refused_up_front() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("locked.csv");
    std::fs::write(&target, "keep\n").unwrap();
    let mut perms = std::fs::metadata(&target).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&target, perms).unwrap();
    let err = CsvSink::create(CsvTarget::Path(target.clone()), golden_query(), CsvLayout::Long).unwrap_err();
    assert!(matches!(&err, SinkError::Unavailable { message, .. } if message.contains("read-only")), "{err}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep\n");
}

/// A query asking for an observation metric (`oServiceLevel`): the long layout has `ratio,numerator,
/// denominator,target` after `max` on every line (empty where a row has none), the wide layout
/// `oServiceLevel_ratio`, ... after `oServiceLevel_sum`.
#[tokio::test]
async fn observation_metrics_write_their_ratio_columns() {
    let dir = tempfile::tempdir().unwrap();
    let q = query("nOffered,oServiceLevel", "queueId,mediaType", &[]);
    let nine = "2025-03-10T09:00:00Z";
    let service = service_level();
    let rows = vec![
        stats_row(&[QUEUE_1, "voice"], nine, "oServiceLevel", service),
        stats_row(&[QUEUE_1, "voice"], nine, "nOffered", Stats { count: Some(5), ..Stats::default() }),
    ];
    let prefix = format!("{QUEUE_1},voice,2025-03-10T09:00:00Z,2025-03-10T09:30:00Z");
    for (layout, want) in [
        (
            CsvLayout::Long,
            format!(
                "queue_id,media_type,interval_start,interval_end,metric,count,sum,min,max,ratio,numerator,denominator,\
                 target\n{prefix},nOffered,5,,,,,,,\n{prefix},oServiceLevel,,,,,0.75,3,4,0.8\n"
            ),
        ),
        (
            CsvLayout::Wide,
            format!(
                "queue_id,media_type,interval_start,interval_end,nOffered_count,nOffered_sum,oServiceLevel_count,\
                 oServiceLevel_sum,oServiceLevel_ratio,oServiceLevel_numerator,oServiceLevel_denominator,\
                 oServiceLevel_target\n{prefix},5,,,,0.75,3,4,0.8\n"
            ),
        ),
    ] {
        let target = dir.path().join("queue.csv");
        let sink = CsvSink::create(CsvTarget::Path(target.clone()), q.clone(), layout).unwrap();
        sink.write_window(&key(&q, DAY.0, DAY.1), &rows).await.unwrap();
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read_to_string(&target).unwrap(), want, "{layout:?}");
    }
}
