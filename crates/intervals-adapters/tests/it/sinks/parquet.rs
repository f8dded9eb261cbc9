//! The Parquet sink: typed columns read back with the parquet crate, byte-identical rewrites,
//! checkpoints from file names, larger windows replacing the smaller files they cover, partition
//! folders, and folders that cannot be used.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use intervals_adapters::sinks::ParquetSink;
use intervals_app::{CheckpointStore, Sink, SinkError, WindowKey};
use intervals_domain::{AggregateQuery, Filters, Granularity, MetricRow, Stats, TimeWindow, Tz};
use parquet::basic::{LogicalType, Repetition, TimeUnit, Type as PhysicalType};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;

use super::support::{
    files_in, golden_query, golden_windows, key, query, row, service_level, stats_row, status_query, status_row,
    window, AGENT_A, AGENT_B, DAY, NEXT_DAY, ORG, QUEUE_1,
};

/// `DIR/org=emea/interval_date=<date>`.
fn partition(dir: &Path, date: &str) -> PathBuf {
    dir.join(format!("org={ORG}")).join(format!("interval_date={date}"))
}

/// The file name of a PT30M window of `fingerprint`.
fn file_name(start: &str, end: &str, fingerprint: &str) -> String {
    format!("PT30M-{start}-{end}-{fingerprint}.parquet")
}

/// Every row of a Parquet file as (column, value) pairs.
fn read_rows(path: &Path) -> Vec<Vec<(String, Field)>> {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    reader.get_row_iter(None).unwrap().map(|r| r.unwrap().into_columns()).collect()
}

/// What the file must hold for `rows`: the long layout, typed, in the data contract's order.
fn expected_rows(group_columns: &[&str], rows: &[MetricRow]) -> Vec<Vec<(String, Field)>> {
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| a.cmp_long(b));
    let double = |x: Option<f64>| x.map_or(Field::Null, Field::Double);
    rows.iter()
        .map(|r| {
            let mut out: Vec<(String, Field)> =
                group_columns.iter().zip(r.group()).map(|(c, v)| (c.to_string(), Field::Str(v.clone()))).collect();
            let s = r.stats();
            out.extend([
                ("interval_start".to_owned(), Field::TimestampMicros(r.bucket().start().timestamp_micros())),
                ("interval_end".to_owned(), Field::TimestampMicros(r.bucket().end().timestamp_micros())),
                ("metric".to_owned(), Field::Str(r.metric_key())),
                ("count".to_owned(), s.count.map_or(Field::Null, |c| Field::Long(c as i64))),
                ("sum".to_owned(), double(s.sum)),
                ("min".to_owned(), double(s.min)),
                ("max".to_owned(), double(s.max)),
                ("ratio".to_owned(), double(s.ratio)),
                ("numerator".to_owned(), double(s.numerator)),
                ("denominator".to_owned(), double(s.denominator)),
                ("target".to_owned(), double(s.target)),
            ]);
            out
        })
        .collect()
}

async fn completed(sink: &ParquetSink, org: &str, fingerprint: &str, range: (&str, &str)) -> Vec<TimeWindow> {
    sink.completed_windows(org, fingerprint, window(range.0, range.1)).await.unwrap()
}

#[tokio::test]
async fn a_window_reads_back_with_typed_columns_in_the_contract_order() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::create(dir.path()).unwrap();
    assert_eq!(sink.describe(), format!("parquet:{}", dir.path().display()));
    let (day_key, day_rows) = golden_windows().pop().unwrap();
    assert_eq!(day_key.window(), window(DAY.0, DAY.1));
    let stats = sink.write_window(&day_key, &day_rows).await.unwrap();
    assert_eq!(stats.rows_deleted, 0);
    sink.finish().await.unwrap();

    let folder = partition(dir.path(), "2025-03-10");
    let name = file_name("20250310T000000Z", "20250311T000000Z", &golden_query().fingerprint());
    assert_eq!(files_in(&folder), vec![name.clone()], "no temporary file is left");
    let path = folder.join(&name);

    let reader = SerializedFileReader::new(std::fs::File::open(&path).unwrap()).unwrap();
    let columns = reader.metadata().file_metadata().schema_descr().columns().to_vec();
    let string = Some(LogicalType::String);
    let timestamp = Some(LogicalType::timestamp(true, TimeUnit::MICROS));
    let expected_schema = [
        ("user_id", PhysicalType::BYTE_ARRAY, &string, Repetition::REQUIRED),
        ("media_type", PhysicalType::BYTE_ARRAY, &string, Repetition::REQUIRED),
        ("interval_start", PhysicalType::INT64, &timestamp, Repetition::REQUIRED),
        ("interval_end", PhysicalType::INT64, &timestamp, Repetition::REQUIRED),
        ("metric", PhysicalType::BYTE_ARRAY, &string, Repetition::REQUIRED),
        ("count", PhysicalType::INT64, &None, Repetition::OPTIONAL),
        ("sum", PhysicalType::DOUBLE, &None, Repetition::OPTIONAL),
        ("min", PhysicalType::DOUBLE, &None, Repetition::OPTIONAL),
        ("max", PhysicalType::DOUBLE, &None, Repetition::OPTIONAL),
        ("ratio", PhysicalType::DOUBLE, &None, Repetition::OPTIONAL),
        ("numerator", PhysicalType::DOUBLE, &None, Repetition::OPTIONAL),
        ("denominator", PhysicalType::DOUBLE, &None, Repetition::OPTIONAL),
        ("target", PhysicalType::DOUBLE, &None, Repetition::OPTIONAL),
    ];
    let schema: Vec<_> = columns
        .iter()
        .map(|c| {
            (c.name(), c.physical_type(), c.logical_type_ref().cloned(), c.self_type().get_basic_info().repetition())
        })
        .collect();
    let expected_schema: Vec<_> = expected_schema.iter().map(|(n, p, l, r)| (*n, *p, (*l).clone(), *r)).collect();
    assert_eq!(schema, expected_schema);
    assert_eq!(reader.metadata().num_row_groups(), 1);
    let sorting: Vec<i32> =
        reader.metadata().row_group(0).sorting_columns().unwrap().iter().map(|s| s.column_idx).collect();
    assert_eq!(sorting, vec![0, 1, 2, 4], "user_id, media_type, interval_start, metric");
    let metadata = reader.metadata().file_metadata().key_value_metadata().unwrap();
    let value = |k: &str| metadata.iter().find(|kv| kv.key == k).and_then(|kv| kv.value.clone());
    assert_eq!(value("genesys_intervals.org").as_deref(), Some(ORG));
    assert_eq!(value("genesys_intervals.fingerprint"), Some(golden_query().fingerprint()));

    assert_eq!(read_rows(&path), expected_rows(&["user_id", "media_type"], &day_rows));
}

#[tokio::test]
async fn writing_a_window_again_replaces_its_file_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::create(dir.path()).unwrap();
    let (day_key, mut day_rows) = golden_windows().pop().unwrap();
    sink.write_window(&day_key, &day_rows).await.unwrap();
    let folder = partition(dir.path(), "2025-03-10");
    let path = folder.join(file_name("20250310T000000Z", "20250311T000000Z", day_key.fingerprint()));
    let first = std::fs::read(&path).unwrap();

    day_rows.reverse();
    let stats = sink.write_window(&day_key, &day_rows).await.unwrap();
    assert_eq!(stats.rows_deleted, 0);
    assert_eq!(std::fs::read(&path).unwrap(), first, "same rows in another order, same bytes");

    // A grain the API no longer returns is gone, and counted.
    let fewer: Vec<MetricRow> = day_rows.iter().filter(|r| r.group()[0] != AGENT_B).cloned().collect();
    assert_eq!(day_rows.len() - fewer.len(), 1);
    let stats = sink.write_window(&day_key, &fewer).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(read_rows(&path), expected_rows(&["user_id", "media_type"], &fewer));
    assert_eq!(files_in(&folder).len(), 1);
}

#[tokio::test]
async fn an_empty_window_is_a_file_without_rows_and_a_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::create(dir.path()).unwrap();
    let q = query("tHandle", "userId", &[]);
    sink.write_window(&key(&q, DAY.0, DAY.1), &[]).await.unwrap();
    let path =
        partition(dir.path(), "2025-03-10").join(file_name("20250310T000000Z", "20250311T000000Z", &q.fingerprint()));
    assert!(read_rows(&path).is_empty());
    assert_eq!(completed(&sink, ORG, &q.fingerprint(), DAY).await, vec![window(DAY.0, DAY.1)]);
}

#[tokio::test]
async fn checkpoints_are_the_files_of_that_org_and_fingerprint_inside_the_range() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::create(dir.path()).unwrap();
    let q = query("tHandle", "userId", &[]);
    let other_query = query("tAcw", "userId", &[]);
    let fp = q.fingerprint();
    let rows = |start: &str| vec![row(&[AGENT_A], start, "tHandle", 1, 10.0)];
    sink.write_window(&key(&q, DAY.0, DAY.1), &rows(DAY.0)).await.unwrap();
    sink.write_window(&key(&q, NEXT_DAY.0, NEXT_DAY.1), &rows(NEXT_DAY.0)).await.unwrap();
    sink.write_window(&key(&other_query, DAY.0, DAY.1), &[]).await.unwrap();
    let apac = WindowKey::new("apac", q.clone(), window("2025-03-12T00:00:00Z", "2025-03-13T00:00:00Z"));
    sink.write_window(&apac, &[]).await.unwrap();

    // Leftovers of a killed run, and things that are not window files.
    let folder = partition(dir.path(), "2025-03-12");
    std::fs::create_dir_all(&folder).unwrap();
    let leftover = file_name("20250312T000000Z", "20250313T000000Z", &fp);
    std::fs::write(folder.join(format!(".{leftover}.a1b2c3.tmp")), b"PAR1").unwrap();
    std::fs::write(folder.join(format!(".{leftover}")), b"PAR1").unwrap();
    std::fs::write(folder.join("README.txt"), b"").unwrap();
    std::fs::create_dir_all(dir.path().join(format!("org={ORG}")).join("_spark_metadata")).unwrap();

    let day = window(DAY.0, DAY.1);
    let next_day = window(NEXT_DAY.0, NEXT_DAY.1);
    let all = (DAY.0, "2025-03-14T00:00:00Z");
    assert_eq!(completed(&sink, ORG, &fp, all).await, vec![day, next_day]);
    assert_eq!(completed(&sink, ORG, &fp, DAY).await, vec![day]);
    assert_eq!(completed(&sink, ORG, &fp, (DAY.0, "2025-03-11T12:00:00Z")).await, vec![day], "only whole windows");
    assert_eq!(completed(&sink, ORG, &fp, ("2025-03-20T00:00:00Z", "2025-03-21T00:00:00Z")).await, vec![]);
    assert_eq!(completed(&sink, ORG, &other_query.fingerprint(), all).await, vec![day]);
    assert_eq!(completed(&sink, "apac", &fp, all).await, vec![apac.window()]);
    assert_eq!(completed(&sink, "amer", &fp, all).await, vec![], "an org never written");
}

#[tokio::test]
async fn a_larger_window_removes_the_smaller_files_it_covers() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::create(dir.path()).unwrap();
    let q = query("tHandle", "userId", &[]);
    let other_query = query("tAcw", "userId", &[]);
    let (morning, noon) = ("2025-03-10T09:00:00Z", "2025-03-10T12:00:00Z");
    sink.write_window(&key(&q, DAY.0, noon), &[row(&[AGENT_A], morning, "tHandle", 1, 10.0)]).await.unwrap();
    sink.write_window(&key(&q, noon, DAY.1), &[row(&[AGENT_B], noon, "tHandle", 2, 20.0)]).await.unwrap();
    sink.write_window(&key(&q, NEXT_DAY.0, NEXT_DAY.1), &[]).await.unwrap();
    sink.write_window(&key(&other_query, DAY.0, noon), &[]).await.unwrap();
    let folder = partition(dir.path(), "2025-03-10");
    assert_eq!(files_in(&folder).len(), 3);

    // The day again, in one window: AGENT_A's row is still there, AGENT_B's is not.
    let day_rows = [row(&[AGENT_A], morning, "tHandle", 1, 10.0), row(&[AGENT_A], noon, "tHandle", 3, 30.0)];
    let stats = sink.write_window(&key(&q, DAY.0, DAY.1), &day_rows).await.unwrap();
    assert_eq!(stats.rows_deleted, 1);
    assert_eq!(
        files_in(&folder),
        vec![
            file_name("20250310T000000Z", "20250310T120000Z", &other_query.fingerprint()),
            file_name("20250310T000000Z", "20250311T000000Z", &q.fingerprint()),
        ]
    );
    assert_eq!(
        completed(&sink, ORG, &q.fingerprint(), (DAY.0, NEXT_DAY.1)).await,
        vec![window(DAY.0, DAY.1), window(NEXT_DAY.0, NEXT_DAY.1)]
    );
    let path = folder.join(file_name("20250310T000000Z", "20250311T000000Z", &q.fingerprint()));
    assert_eq!(read_rows(&path), expected_rows(&["user_id"], &day_rows));
}

#[tokio::test]
async fn partitions_use_the_local_date_and_an_escaped_org() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::create(dir.path()).unwrap();
    let tokyo = Arc::new(
        AggregateQuery::new(
            AggregateQuery::parse_metrics("nConnected").unwrap(),
            AggregateQuery::parse_group_by("userId,queueId").unwrap(),
            Granularity::P1d,
            Tz::Asia__Tokyo,
            Filters::none(),
        )
        .unwrap(),
    );
    // Local midnight of 10 March in Tokyo is still 9 March in UTC.
    let day = window("2025-03-09T15:00:00Z", "2025-03-10T15:00:00Z");
    let rows = [MetricRow::new(
        vec![AGENT_A.to_owned(), String::new()],
        day,
        intervals_domain::MetricName::parse("nConnected").unwrap(),
        None,
        Stats { count: Some(4), ..Stats::default() },
    )];
    let key = WindowKey::new("emea/prod 1", tokyo.clone(), day);
    sink.write_window(&key, &rows).await.unwrap();
    let folder = dir.path().join("org=emea%2Fprod%201").join("interval_date=2025-03-10");
    let name = format!("P1D-20250309T150000Z-20250310T150000Z-{}.parquet", tokyo.fingerprint());
    assert_eq!(files_in(&folder), vec![name.clone()]);
    assert_eq!(read_rows(&folder.join(name)), expected_rows(&["user_id", "queue_id"], &rows));
    let range = window("2025-03-09T00:00:00Z", "2025-03-11T00:00:00Z");
    assert_eq!(sink.completed_windows("emea/prod 1", &tokyo.fingerprint(), range).await.unwrap(), vec![day]);
}

#[tokio::test]
async fn a_folder_that_cannot_be_created_or_written_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("not-a-folder");
    std::fs::write(&file, b"").unwrap();
    for target in [file.clone(), file.join("out")] {
        let err = ParquetSink::create(&target).unwrap_err();
        assert!(matches!(err, SinkError::Unavailable { .. }), "{err}");
        assert!(err.to_string().contains(&target.display().to_string()), "{err}");
    }

    // A read-only folder (root writes anyway, so only where the permission holds).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let read_only = dir.path().join("read-only");
        std::fs::create_dir(&read_only).unwrap();
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o555)).unwrap();
        if std::fs::File::create(read_only.join("probe")).is_err() {
            let err = ParquetSink::create(&read_only).unwrap_err();
            assert!(matches!(err, SinkError::Unavailable { .. }), "{err}");
        }
        std::fs::set_permissions(&read_only, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    // A missing folder is created.
    let nested = dir.path().join("a").join("b");
    ParquetSink::create(&nested).unwrap();
    assert!(files_in(&nested).is_empty(), "the probe file is removed");
}

#[tokio::test]
async fn the_registry_resolves_parquet_urls_to_a_checkpointed_output() {
    use intervals_adapters::outputs::{MetricsContext, Registry};
    use intervals_adapters::sinks::CsvLayout;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("parquet:{}", dir.path().join("lake").display());
    let spec = Registry::builtin().parse(&url).unwrap();
    assert_eq!((spec.scheme(), spec.to_string()), ("parquet", url.clone()));
    assert!(spec.capabilities().checkpoints && !spec.capabilities().directory);
    let refusal = spec.store_refusal().expect("no leases: the daemon refuses it up front");
    assert!(refusal.contains("parquet") && refusal.contains("no leases"), "{refusal}");
    let cx = MetricsContext { query: golden_query(), layout: CsvLayout::Long };
    let target = spec.config().open_metrics(&cx).await.unwrap();
    assert!(target.checkpoints().is_some(), "a window's file is its checkpoint");
    // Opened with the run's layout: a status window gets its columns.
    let status = [status_row(AGENT_A, "2025-03-10T09:00:00Z", "tSystemPresence", "ON_QUEUE", 1.0)];
    target.sink().write_window(&key(&status_query(), DAY.0, DAY.1), &status).await.unwrap();
    let name = file_name("20250310T000000Z", "20250311T000000Z", &status_query().fingerprint());
    let written = read_rows(&partition(&dir.path().join("lake"), "2025-03-10").join(name));
    assert_eq!(written[0][1], ("media_type".to_owned(), Field::Str(String::new())));
    let file = dir.path().join("x.parquet");
    std::fs::write(&file, b"").unwrap();
    let err = Registry::builtin().parse(&format!("parquet:{}", file.display())).unwrap_err();
    assert!(err.contains("not a folder"), "{err}");
}

/// A run reading conversation metrics (by userId, mediaType) and status metrics (by userId alone)
/// into one folder: one file per window and query (the names differ by fingerprint), both with the
/// layout's columns, status rows with an empty media_type; rewriting one query's window leaves the
/// other's file as it was.
#[tokio::test]
async fn a_mixed_run_writes_one_file_per_query_with_the_layouts_columns() {
    let dir = tempfile::tempdir().unwrap();
    let conversation = query("tHandle", "userId,mediaType", &[]);
    let status = status_query();
    let sink = ParquetSink::create(dir.path()).unwrap().with_layout(conversation.clone());
    let nine = "2025-03-10T09:00:00Z";
    let status_rows = |idle: f64| {
        vec![
            status_row(AGENT_A, nine, "tAgentRoutingStatus", "IDLE", idle),
            status_row(AGENT_B, nine, "tSystemPresence", "ON_QUEUE", 1_500_000.0),
        ]
    };
    let conversation_rows = [row(&[AGENT_A, "voice"], nine, "tHandle", 2, 600_000.0)];
    let (status_key, conversation_key) = (key(&status, DAY.0, DAY.1), key(&conversation, DAY.0, DAY.1));
    sink.write_window(&conversation_key, &conversation_rows).await.unwrap();
    sink.write_window(&status_key, &status_rows(1.0)).await.unwrap();

    let folder = partition(dir.path(), "2025-03-10");
    let name = |q: &Arc<AggregateQuery>| file_name("20250310T000000Z", "20250311T000000Z", &q.fingerprint());
    let mut names = vec![name(&conversation), name(&status)];
    names.sort();
    assert_eq!(files_in(&folder), names);
    let in_layout = |rows: Vec<MetricRow>| -> Vec<MetricRow> {
        rows.into_iter().map(|r| r.regrouped(status.group_by(), conversation.group_by())).collect()
    };
    let columns = ["user_id", "media_type"];
    assert_eq!(read_rows(&folder.join(name(&status))), expected_rows(&columns, &in_layout(status_rows(1.0))));
    assert_eq!(read_rows(&folder.join(name(&status)))[0][1], ("media_type".to_owned(), Field::Str(String::new())));

    // The status window again: its file is replaced, the conversation file is untouched.
    let conversation_file = std::fs::read(folder.join(name(&conversation))).unwrap();
    let stats = sink.write_window(&status_key, &status_rows(300_000.0)[..1]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1, "B's row");
    assert_eq!(std::fs::read(folder.join(name(&conversation))).unwrap(), conversation_file);
    let idle_only = in_layout(status_rows(300_000.0)[..1].to_vec());
    assert_eq!(read_rows(&folder.join(name(&status))), expected_rows(&columns, &idle_only));
    for q in [&conversation, &status] {
        assert_eq!(completed(&sink, ORG, &q.fingerprint(), DAY).await, vec![window(DAY.0, DAY.1)]);
    }

    // A query the layout has no columns for is refused.
    let by_queue = query("tHandle", "userId,queueId", &[]);
    let err = sink.write_window(&key(&by_queue, DAY.0, DAY.1), &[]).await.unwrap_err();
    assert!(matches!(&err, SinkError::Write { message, .. } if message.contains("no place")), "{err}");
}

/// Every row a reader of the folder sees (`read_parquet('DIR/**/*.parquet')`: hidden files skipped)
/// as (group values, interval_start, metric, sum), sorted.
fn folder_rows(dir: &Path) -> Vec<(Vec<String>, i64, String, Option<f64>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.is_dir() {
                stack.push(path);
            } else if !name.starts_with('.') && name.ends_with(".parquet") {
                for row in read_rows(&path) {
                    let mut group = Vec::new();
                    let (mut start, mut metric, mut sum) = (0, String::new(), None);
                    for (column, field) in row {
                        match (column.as_str(), field) {
                            ("interval_start", Field::TimestampMicros(t)) => start = t,
                            ("metric", Field::Str(m)) => metric = m,
                            ("sum", Field::Double(s)) => sum = Some(s),
                            (
                                "interval_end" | "count" | "min" | "max" | "sum" | "ratio" | "numerator"
                                | "denominator" | "target",
                                _,
                            ) => {}
                            (_, Field::Str(v)) => group.push(v),
                            (c, f) => panic!("unexpected column {c}: {f:?}"),
                        }
                    }
                    out.push((group, start, metric, sum));
                }
            }
        }
    }
    out.sort_by(|a, b| a.partial_cmp(b).unwrap());
    out
}

/// No grain (group, interval_start, metric) twice in the folder.
fn assert_each_grain_once(dir: &Path) {
    let rows = folder_rows(dir);
    for pair in rows.windows(2) {
        assert!(
            (&pair[0].0, pair[0].1, &pair[0].2) != (&pair[1].0, pair[1].1, &pair[1].2),
            "a reader sees a grain twice: {:?}",
            pair
        );
    }
}

/// The same query, the same UTC half hours, another time zone (same buckets in March in London).
fn in_london(q: &AggregateQuery) -> Arc<AggregateQuery> {
    Arc::new(
        AggregateQuery::new(
            q.metrics().to_vec(),
            q.group_by().to_vec(),
            Granularity::Pt30m,
            "Europe/London".parse::<Tz>().unwrap(),
            q.filters().clone(),
        )
        .unwrap(),
    )
}

#[tokio::test]
async fn a_smaller_window_read_again_takes_its_rows_out_of_the_larger_file() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::create(dir.path()).unwrap();
    let q = query("tHandle", "userId", &[]);
    let (six, nine, noon, three) =
        ("2025-03-10T06:00:00Z", "2025-03-10T09:00:00Z", "2025-03-10T12:00:00Z", "2025-03-10T15:00:00Z");
    let day = [row(&[AGENT_A], nine, "tHandle", 1, 10.0), row(&[AGENT_B], three, "tHandle", 2, 20.0)];
    sink.write_window(&key(&q, DAY.0, DAY.1), &day).await.unwrap();
    // `--refetch --max-window PT6H`: the morning again, with a late correction.
    let morning = [row(&[AGENT_A], nine, "tHandle", 1, 11.0)];
    let stats = sink.write_window(&key(&q, six, noon), &morning).await.unwrap();
    assert_eq!(stats.rows_deleted, 0);
    assert_each_grain_once(dir.path());
    let sums: Vec<Option<f64>> = folder_rows(dir.path()).into_iter().map(|r| r.3).collect();
    assert_eq!(sums, vec![Some(11.0), Some(20.0)], "the correction replaced the row, the afternoon stayed");
    // The day file became pieces of the same query: the checkpoints still tile the day, each file
    // claiming what it holds.
    assert_eq!(
        completed(&sink, ORG, &q.fingerprint(), DAY).await,
        vec![window(DAY.0, six), window(six, noon), window(noon, DAY.1)]
    );
    assert_eq!(
        files_in(&partition(dir.path(), "2025-03-10")),
        vec![
            file_name("20250310T000000Z", "20250310T060000Z", &q.fingerprint()),
            file_name("20250310T060000Z", "20250310T120000Z", &q.fingerprint()),
            file_name("20250310T120000Z", "20250311T000000Z", &q.fingerprint()),
        ]
    );
}

#[tokio::test]
async fn another_query_of_the_same_grains_replaces_them_instead_of_adding_them() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::create(dir.path()).unwrap();
    let (nine, ten) = ("2025-03-10T09:00:00Z", "2025-03-10T10:00:00Z");
    let both = query("tHandle,tAcw", "userId", &[]);
    sink.write_window(
        &key(&both, DAY.0, DAY.1),
        &[
            row(&[AGENT_A], nine, "tHandle", 1, 10.0),
            row(&[AGENT_A], nine, "tAcw", 1, 5.0),
            row(&[AGENT_B], ten, "tHandle", 1, 7.0),
        ],
    )
    .await
    .unwrap();
    // Another --time-zone, same buckets, another fingerprint, tHandle only: its tHandle rows
    // replace the stored ones (AGENT_B's is gone from the source now), tAcw stays.
    let handle = in_london(&query("tHandle", "userId", &[]));
    assert_ne!(handle.fingerprint(), both.fingerprint());
    let stats =
        sink.write_window(&key(&handle, DAY.0, DAY.1), &[row(&[AGENT_A], nine, "tHandle", 1, 12.0)]).await.unwrap();
    assert_eq!(stats.rows_deleted, 1, "AGENT_B's tHandle");
    assert_each_grain_once(dir.path());
    let rows: Vec<(String, String, Option<f64>)> =
        folder_rows(dir.path()).into_iter().map(|(g, _, m, s)| (g[0].clone(), m, s)).collect();
    assert_eq!(
        rows,
        vec![
            (AGENT_A.to_owned(), "tAcw".to_owned(), Some(5.0)),
            (AGENT_A.to_owned(), "tHandle".to_owned(), Some(12.0))
        ]
    );
    // The first query's file keeps its name (and checkpoint) with what is still its own.
    assert_eq!(completed(&sink, ORG, &both.fingerprint(), DAY).await, vec![window(DAY.0, DAY.1)]);

    // The whole metric set again in London: the first file has nothing left and goes.
    let both_london = in_london(&both);
    sink.write_window(&key(&both_london, DAY.0, DAY.1), &[row(&[AGENT_A], nine, "tAcw", 1, 6.0)]).await.unwrap();
    assert_each_grain_once(dir.path());
    assert_eq!(completed(&sink, ORG, &both.fingerprint(), DAY).await, vec![]);
    let rows: Vec<(String, Option<f64>)> = folder_rows(dir.path()).into_iter().map(|(_, _, m, s)| (m, s)).collect();
    assert_eq!(rows, vec![("tAcw".to_owned(), Some(6.0))]);
}

#[tokio::test]
async fn files_of_other_columns_or_other_filters_are_not_touched() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::create(dir.path()).unwrap();
    let nine = "2025-03-10T09:00:00Z";
    let by_user = query("tHandle", "userId", &[]);
    sink.write_window(&key(&by_user, DAY.0, DAY.1), &[row(&[AGENT_A], nine, "tHandle", 1, 10.0)]).await.unwrap();
    // Other columns: other grains.
    let by_media = query("tHandle", "userId,mediaType", &[]);
    sink.write_window(&key(&by_media, DAY.0, DAY.1), &[row(&[AGENT_A, "voice"], nine, "tHandle", 1, 10.0)])
        .await
        .unwrap();
    assert_eq!(folder_rows(dir.path()).len(), 2);
    // A filter on a media type replaces that media type's rows only.
    let voice = query("tHandle", "userId,mediaType", &["voice"]);
    let chat = query("tHandle", "userId,mediaType", &["chat"]);
    sink.write_window(&key(&chat, DAY.0, DAY.1), &[row(&[AGENT_A, "chat"], nine, "tHandle", 1, 3.0)]).await.unwrap();
    assert_eq!(folder_rows(dir.path()).len(), 3, "voice stays beside chat");
    sink.write_window(&key(&voice, DAY.0, DAY.1), &[row(&[AGENT_A, "voice"], nine, "tHandle", 1, 4.0)]).await.unwrap();
    assert_each_grain_once(dir.path());
    let sums: Vec<Option<f64>> = folder_rows(dir.path()).into_iter().map(|r| r.3).collect();
    assert_eq!(sums, vec![Some(10.0), Some(3.0), Some(4.0)]);
}

/// Two writers (two runs with other `--max-window`s) over the same day at once: whatever order
/// their renames land in, a reader never sees a grain twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_with_other_windows_never_keep_a_grain_twice() {
    let dir = tempfile::tempdir().unwrap();
    let q = query("tHandle", "userId", &[]);
    let halves = ["2025-03-10T00:00:00Z", "2025-03-10T06:00:00Z", "2025-03-10T12:00:00Z", "2025-03-10T18:00:00Z"];
    let rows_in = |from: &str, to: &str, sum: f64| -> Vec<MetricRow> {
        let w = window(from, to);
        w.buckets(Granularity::Pt30m, Tz::UTC)
            .into_iter()
            .map(|b| {
                let start = b.start().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                row(&[AGENT_A], &start, "tHandle", 1, sum)
            })
            .collect()
    };
    for round in 0..8 {
        let (one, two) = (ParquetSink::create(dir.path()).unwrap(), ParquetSink::create(dir.path()).unwrap());
        let whole_day = async {
            one.write_window(&key(&q, DAY.0, DAY.1), &rows_in(DAY.0, DAY.1, 1.0)).await.unwrap();
        };
        let quarters = async {
            for (i, from) in halves.iter().enumerate() {
                let to = halves.get(i + 1).copied().unwrap_or(DAY.1);
                two.write_window(&key(&q, from, to), &rows_in(from, to, 2.0)).await.unwrap();
            }
        };
        tokio::join!(whole_day, quarters);
        assert_each_grain_once(dir.path());
        assert_eq!(folder_rows(dir.path()).len(), 48, "round {round}: every half hour once");
    }
}

/// The statistics of an observation metric (`oServiceLevel`: ratio, numerator, denominator,
/// target) are stored in their own nullable columns, and read back.
#[tokio::test]
async fn observation_statistics_have_their_columns() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::create(dir.path()).unwrap();
    let q = query("nOffered,oServiceLevel", "queueId,mediaType", &[]);
    let nine = "2025-03-10T09:00:00Z";
    let service = service_level();
    let rows = vec![
        stats_row(&[QUEUE_1, "voice"], nine, "oServiceLevel", service),
        stats_row(&[QUEUE_1, "voice"], nine, "nOffered", Stats { count: Some(5), ..Stats::default() }),
        stats_row(&[QUEUE_1, "chat"], nine, "oServiceLevel", Stats { ratio: Some(1.0), ..Stats::default() }),
    ];
    sink.write_window(&key(&q, DAY.0, DAY.1), &rows).await.unwrap();
    let path =
        partition(dir.path(), "2025-03-10").join(file_name("20250310T000000Z", "20250311T000000Z", &q.fingerprint()));
    assert_eq!(read_rows(&path), expected_rows(&["queue_id", "media_type"], &rows));
}

/// Writes `rows` at `path` as a version without the ratio columns wrote window files: the same
/// columns up to `max`, and the key-value metadata of `like` (a file of this version).
fn write_file_without_ratio_columns(path: &Path, like: &Path, group_columns: &[&str], rows: &[MetricRow]) {
    use parquet::data_type::{ByteArray, ByteArrayType, DoubleType, Int64Type};
    use parquet::file::properties::WriterProperties;
    use parquet::file::writer::SerializedFileWriter;
    use parquet::schema::parser::parse_message_type;

    let metadata = SerializedFileReader::new(std::fs::File::open(like).unwrap())
        .unwrap()
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .cloned();
    let mut fields = String::new();
    for c in group_columns {
        fields.push_str(&format!("required binary {c} (STRING); "));
    }
    fields.push_str(
        "required int64 interval_start (TIMESTAMP(MICROS,true)); required int64 interval_end (TIMESTAMP(MICROS,true)); \
         required binary metric (STRING); optional int64 count; optional double sum; optional double min; \
         optional double max;",
    );
    let schema = Arc::new(parse_message_type(&format!("message schema {{ {fields} }}")).unwrap());
    let properties = Arc::new(WriterProperties::builder().set_key_value_metadata(metadata).build());
    let mut rows = rows.to_vec();
    rows.sort_by(|a, b| a.cmp_long(b));
    let mut writer = SerializedFileWriter::new(std::fs::File::create(path).unwrap(), schema, properties).unwrap();
    let mut group = writer.next_row_group().unwrap();
    let optional = |values: Vec<Option<f64>>| -> (Vec<f64>, Vec<i16>) {
        (values.iter().flatten().copied().collect(), values.iter().map(|v| i16::from(v.is_some())).collect())
    };
    for i in 0..group_columns.len() {
        let values: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r.group()[i].as_str())).collect();
        let mut column = group.next_column().unwrap().unwrap();
        column.typed::<ByteArrayType>().write_batch(&values, None, None).unwrap();
        column.close().unwrap();
    }
    for end in [false, true] {
        let values: Vec<i64> =
            rows.iter().map(|r| if end { r.bucket().end() } else { r.bucket().start() }.timestamp_micros()).collect();
        let mut column = group.next_column().unwrap().unwrap();
        column.typed::<Int64Type>().write_batch(&values, None, None).unwrap();
        column.close().unwrap();
    }
    let metrics: Vec<ByteArray> = rows.iter().map(|r| ByteArray::from(r.metric_key().as_str())).collect();
    let mut column = group.next_column().unwrap().unwrap();
    column.typed::<ByteArrayType>().write_batch(&metrics, None, None).unwrap();
    column.close().unwrap();
    let counts: Vec<Option<i64>> = rows.iter().map(|r| r.stats().count.map(|c| c as i64)).collect();
    let levels: Vec<i16> = counts.iter().map(|c| i16::from(c.is_some())).collect();
    let values: Vec<i64> = counts.iter().flatten().copied().collect();
    let mut column = group.next_column().unwrap().unwrap();
    column.typed::<Int64Type>().write_batch(&values, Some(&levels), None).unwrap();
    column.close().unwrap();
    for stat in [|s: &Stats| s.sum, |s: &Stats| s.min, |s: &Stats| s.max] {
        let (values, levels) = optional(rows.iter().map(|r| stat(r.stats())).collect());
        let mut column = group.next_column().unwrap().unwrap();
        column.typed::<DoubleType>().write_batch(&values, Some(&levels), None).unwrap();
        column.close().unwrap();
    }
    group.close().unwrap();
    writer.close().unwrap();
}

/// A file written before the ratio columns existed is still read back when a window replaces part
/// of it: the rows it keeps are written again in this version's columns (the ratios absent).
#[tokio::test]
async fn a_file_without_the_ratio_columns_is_cut_like_any_other() {
    let dir = tempfile::tempdir().unwrap();
    let sink = ParquetSink::create(dir.path()).unwrap();
    let q = query("tHandle", "userId", &[]);
    let (six, nine, noon, three) =
        ("2025-03-10T06:00:00Z", "2025-03-10T09:00:00Z", "2025-03-10T12:00:00Z", "2025-03-10T15:00:00Z");
    let day = [row(&[AGENT_A], nine, "tHandle", 1, 10.0), row(&[AGENT_B], three, "tHandle", 2, 20.0)];
    sink.write_window(&key(&q, DAY.0, DAY.1), &day).await.unwrap();
    let folder = partition(dir.path(), "2025-03-10");
    let day_file = folder.join(file_name("20250310T000000Z", "20250311T000000Z", &q.fingerprint()));
    let old = dir.path().join("old.parquet");
    write_file_without_ratio_columns(&old, &day_file, &["user_id"], &day);
    std::fs::rename(&old, &day_file).unwrap();
    let columns = |path: &Path| -> Vec<String> {
        let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
        reader.metadata().file_metadata().schema_descr().columns().iter().map(|c| c.name().to_owned()).collect()
    };
    assert_eq!(columns(&day_file).len(), 1 + 7, "an earlier version's file");

    let morning = [row(&[AGENT_A], nine, "tHandle", 1, 11.0)];
    let stats = sink.write_window(&key(&q, six, noon), &morning).await.unwrap();
    assert_eq!(stats.rows_deleted, 0);
    assert_each_grain_once(dir.path());
    let sums: Vec<Option<f64>> = folder_rows(dir.path()).into_iter().map(|r| r.3).collect();
    assert_eq!(sums, vec![Some(11.0), Some(20.0)], "the correction replaced the row, the afternoon stayed");
    let afternoon = folder.join(file_name("20250310T120000Z", "20250311T000000Z", &q.fingerprint()));
    assert_eq!(columns(&afternoon).len(), 1 + 11, "what is kept is written with the ratio columns");
    assert_eq!(read_rows(&afternoon), expected_rows(&["user_id"], &day[1..]));
}
