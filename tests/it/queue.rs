//! Queue interval stats end to end: the real binary, grouped by queueId and mediaType, against the
//! simulator; the CSV it writes equals the simulator's truth and `sim truth`, ratio columns included.

use std::process::Command;

use crate::support::{assert_same_csv, binary, expect_exit, run, text, Extraction, Sim};

/// The queue figures and the handling metrics of the queue's interactions.
const QUEUE_METRICS: &str =
    "nOffered,tAnswered,tAbandon,tShortAbandon,tWait,nOverSla,oServiceLevel,tHandle,tTalkComplete,tHeldComplete,tAcw,\
     nTransferred";

/// Extracts `extraction` into a long CSV and checks it against the truth and `sim truth`.
async fn queue_csv_equals_truth(extraction: Extraction) {
    let sim = Sim::small().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("queues.csv");
    let mut cmd = sim.cli(&["extract", "--out", &format!("csv:{}", path.display())]);
    cmd.args(extraction.args());
    expect_exit(&run(cmd).await, 0);
    let written = std::fs::read_to_string(&path).unwrap();
    let expected = extraction.truth_csv(&sim);
    assert!(expected.lines().count() > 100, "the truth should not be trivially empty:\n{expected}");
    assert_same_csv(&written, &expected, &format!("{extraction:?}"));

    let header = written.lines().next().unwrap();
    assert_eq!(
        header,
        "queue_id,media_type,interval_start,interval_end,metric,count,sum,min,max,ratio,numerator,denominator,target"
    );
    let service: Vec<&str> = written.lines().filter(|l| l.contains(",oServiceLevel,")).collect();
    assert!(!service.is_empty());
    for line in &service {
        let fields: Vec<&str> = line.split(',').collect();
        let [count, sum, ratio, numerator, denominator] = [5, 6, 9, 10, 11].map(|i| fields[i]);
        assert_eq!((count, sum), ("", ""), "an observation: no count or sum: {line}");
        let (n, d): (f64, f64) = (numerator.parse().unwrap(), denominator.parse().unwrap());
        assert_eq!(ratio.parse::<f64>().unwrap(), n / d, "{line}");
    }
    assert!(written.lines().any(|l| l.contains(",tAbandon,")) && written.lines().any(|l| l.contains(",nOverSla,")));

    let mut truth = Command::new(binary("genesys-intervals"));
    truth.args(["sim", "truth", "--agents", "12", "--seed", "7"]).args(extraction.args());
    let out = run(truth).await;
    expect_exit(&out, 0);
    assert_same_csv(&text(&out.stdout), &written, "sim truth");
}

fn queue_extraction() -> Extraction {
    Extraction { group_by: "queueId,mediaType", metrics: QUEUE_METRICS, ..Extraction::default() }
}

#[tokio::test]
async fn pt15m_queue_csv() {
    queue_csv_equals_truth(Extraction { granularity: "PT15M", ..queue_extraction() }).await;
}

#[tokio::test]
async fn pt30m_queue_csv() {
    queue_csv_equals_truth(queue_extraction()).await;
}

#[tokio::test]
async fn the_spring_dst_day_in_dublin() {
    // Sunday 2025-03-30 has 46 half-hours in Dublin; the days around it have 48.
    let days = Extraction { from: "2025-03-29", to: "2025-04-01", time_zone: "Europe/Dublin", ..queue_extraction() };
    queue_csv_equals_truth(days.clone()).await;
    queue_csv_equals_truth(Extraction { granularity: "P1D", ..days }).await;
}
