//! Simulator speed: CPU per one-day PT30M query for 1,000 agents over real HTTP (conversation
//! aggregates, and user status aggregates), and memory of a 30-day, 5,000-agent backfill served
//! window by window.
//!
//! `cargo xtask bench sim_bench` (release). Goals (issue: simulator): one query "well under a
//! second of CPU"; backfill memory independent of the range.

use std::time::{Duration, Instant};

use chrono::{NaiveDate, TimeZone, Utc};
use intervals_domain::{
    AggregateQuery, Dimension, Filters, Granularity, MetricFamily, MetricName, TimeWindow, Tz, USER_STATUS_METRICS,
};
use intervals_sim::{spawn, SimConfig};
use serde_json::json;

fn cpu_time() -> Duration {
    // utime + stime of this process, from /proc (Linux); zero elsewhere.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit_once(')').map(|(_, r)| r.split_whitespace().collect()).unwrap_or_default();
    let ticks: u64 = fields.get(11).and_then(|u| u.parse().ok()).unwrap_or(0)
        + fields.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    Duration::from_millis(ticks * 10) // USER_HZ is 100 on Linux
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn query(family: MetricFamily) -> AggregateQuery {
    let (metrics, group_by): (&[&str], _) = match family {
        MetricFamily::Conversation => (
            &["tHandle", "tAcw", "tHeldComplete", "tTalkComplete", "nConnected", "tAnswered"],
            vec![Dimension::USER_ID, Dimension::MEDIA_TYPE],
        ),
        MetricFamily::UserStatus => (USER_STATUS_METRICS, vec![Dimension::USER_ID]),
    };
    AggregateQuery::new(
        metrics.iter().map(|m| MetricName::parse(m).unwrap()).collect(),
        group_by,
        Granularity::Pt30m,
        Tz::UTC,
        Filters::none(),
    )
    .unwrap()
}

fn path(family: MetricFamily) -> &'static str {
    match family {
        MetricFamily::Conversation => "/api/v2/analytics/conversations/aggregates/query",
        MetricFamily::UserStatus => "/api/v2/analytics/users/aggregates/query",
    }
}

fn day(d: NaiveDate) -> TimeWindow {
    let start = Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap());
    TimeWindow::new(start, start + chrono::Duration::days(1)).unwrap()
}

async fn serve_days(agents: usize, days: u32, family: MetricFamily) -> (Duration, Duration, usize) {
    let config = SimConfig { agents, rate_per_minute: 0, ..SimConfig::default() };
    let sim = spawn(config.clone(), 0).await.unwrap();
    let http = reqwest::Client::new();
    let token: serde_json::Value = http
        .post(format!("{}/oauth/token", sim.base_url()))
        .basic_auth(&config.client_id, Some(&config.client_secret))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["access_token"].as_str().unwrap().to_owned();
    let q = query(family);
    let (cpu0, wall0) = (cpu_time(), Instant::now());
    let mut bytes = 0;
    let first = NaiveDate::from_ymd_opt(2025, 3, 3).unwrap();
    for i in 0..days {
        let w = day(first + chrono::Days::new(u64::from(i)));
        let body = json!({
            "interval": w.to_iso_interval(),
            "granularity": "PT30M",
            "timeZone": "UTC",
            "groupBy": q.group_by().iter().map(|d| d.as_str()).collect::<Vec<_>>(),
            "metrics": q.metrics().iter().map(|m| m.as_str()).collect::<Vec<_>>(),
        });
        let resp = http
            .post(format!("{}{}", sim.base_url(), path(family)))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        bytes += resp.bytes().await.unwrap().len();
    }
    let out = (cpu_time() - cpu0, wall0.elapsed(), bytes);
    sim.shutdown().await;
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    println!("simulator benchmark on {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
    for (family, what) in [(MetricFamily::Conversation, "conversation"), (MetricFamily::UserStatus, "user status")] {
        let (cpu, wall, bytes) = serve_days(1_000, 1, family).await;
        println!(
            "one-day PT30M {what} query, 1,000 agents: {:.0} ms CPU (client+server), {:.0} ms wall, {:.1} MB response  [goal: well under 1 s CPU]",
            cpu.as_secs_f64() * 1e3,
            wall.as_secs_f64() * 1e3,
            bytes as f64 / 1e6
        );
    }
    for (days, family, what) in [
        (3, MetricFamily::Conversation, "conversation"),
        (30, MetricFamily::Conversation, "conversation"),
        (30, MetricFamily::UserStatus, "user status"),
    ] {
        let (cpu, wall, bytes) = serve_days(5_000, days, family).await;
        println!(
            "{days}-day {what} backfill, 5,000 agents, day windows: {:.1} s CPU, {:.1} s wall, {:.0} MB served, peak RSS so far {:.0} MiB",
            cpu.as_secs_f64(),
            wall.as_secs_f64(),
            bytes as f64 / 1e6,
            peak_rss_mib(),
        );
    }
    println!("(memory is bounded when the peak after 30 days is about the peak after 3 days)");
}
