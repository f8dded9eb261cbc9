//! What the page says, checked against numbers the tests compute from the report themselves.

use intervals_domain::report::{AgentLine, HeatMeasure, HeatRow, Report};
use intervals_report::render_html;

use crate::fixture::{self, small_report, HOSTILE_ID, HOSTILE_NAME, NAMED_ID, NO_STATUS_ID};
use crate::html::{decode, row_with, table_rows};

const DASH: &str = "\u{2014}";

fn clock(ms: f64) -> String {
    let s = (ms / 1000.0).round() as i64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

fn pct(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => None,
        n if n % 2 == 1 => Some(v[n / 2]),
        n => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

/// The cells the agent table should show for `a`, from its raw fields.
fn expected_cells(a: &AgentLine) -> Vec<String> {
    let share = |part: f64| if a.handle_ms > 0.0 { pct(part / a.handle_ms) } else { DASH.to_owned() };
    vec![
        a.name.clone().unwrap_or_else(|| "(no name)".to_owned()),
        a.user_id.clone(),
        a.handled.to_string(),
        if a.handled > 0 { clock(a.handle_ms / a.handled as f64) } else { DASH.to_owned() },
        share(a.acw_ms),
        share(a.hold_ms),
        a.on_queue_ms.map_or(DASH.to_owned(), |ms| format!("{:.1}", ms / 3_600_000.0)),
        match (a.interacting_ms, a.occupancy_base_ms) {
            (Some(i), Some(b)) if b > 0.0 => pct(i / b),
            _ => DASH.to_owned(),
        },
    ]
}

#[test]
fn agent_table_shows_the_reports_numbers_in_the_reports_order() {
    let report = small_report();
    let html = render_html(&report);
    let rows = table_rows(&html, "agents");
    // Header, median, then one row per agent in the caller's order.
    assert_eq!(rows.len(), 2 + report.agents.len());
    for (k, agent) in report.agents.iter().enumerate() {
        assert_eq!(rows[2 + k], expected_cells(agent), "agent {}", agent.user_id);
    }
    // Spot checks, by hand, of what the fixture's numbers give.
    assert_eq!(&row_with(&rows, NAMED_ID)[2..], ["58", "5:01", "12.2%", "5.0%", "13.8", "80.0%"]);
}

#[test]
fn the_median_row_comes_first_and_is_styled_apart() {
    let report = small_report();
    let html = render_html(&report);
    let rows = table_rows(&html, "agents");
    let a = &report.agents;
    let handle_shares = |f: fn(&AgentLine) -> f64| median(a.iter().map(|l| f(l) / l.handle_ms).collect());
    let expected = vec![
        "Org median \u{00b7} 3 agents".to_owned(),
        format!("{}", median(a.iter().map(|l| l.handled as f64).collect()).unwrap()),
        clock(median(a.iter().map(|l| l.handle_ms / l.handled as f64).collect()).unwrap()),
        pct(handle_shares(|l| l.acw_ms).unwrap()),
        pct(handle_shares(|l| l.hold_ms).unwrap()),
        format!("{:.1}", median(a.iter().filter_map(|l| l.on_queue_ms).map(|ms| ms / 3_600_000.0).collect()).unwrap()),
        pct(median(a.iter().filter_map(|l| Some(l.interacting_ms? / l.occupancy_base_ms?)).collect()).unwrap()),
    ];
    assert_eq!(rows[1], expected);
    assert_eq!(rows[1][5], "12.9", "on-queue median of the two agents with status data");
    assert!(html.contains("<tr class=\"median\">"), "the median row has its own class");
}

#[test]
fn missing_values_are_dashes_never_zeros() {
    let html = render_html(&small_report());
    let rows = table_rows(&html, "agents");
    let no_status = row_with(&rows, NO_STATUS_ID);
    assert_eq!(no_status[0], "(no name)");
    assert_eq!(no_status[6], DASH, "on queue");
    assert_eq!(no_status[7], DASH, "occupancy");
    // A real zero stays a zero: the hostile agent has no hold time at all.
    assert_eq!(row_with(&rows, HOSTILE_ID)[5], "0.0%");
}

#[test]
fn coverage_gaps_are_flagged() {
    let report = small_report();
    let html = render_html(&report);
    let rows = table_rows(&html, "coverage");
    assert_eq!(rows.len(), 1 + report.coverage.len());
    let with_gap = row_with(&rows, "3f2a9c1d7e5b4a60");
    assert!(with_gap[3].contains("1 gap"), "{with_gap:?}");
    assert!(with_gap[3].contains("Tue 3 Jun 09:00\u{2013}12:00"), "the gap in local time: {with_gap:?}");
    assert_eq!(with_gap[2], "3");
    assert_eq!(with_gap[4], "Wed 4 Jun 2025 06:12 CEST");
    assert_eq!(row_with(&rows, "9b1e0d4c2a7f3e18")[3], "none");
    assert!(html.contains("<tr class=\"has-gaps\">"));
    assert!(html.contains("<span class=\"badge bad\">"));
    assert!(html.contains("Incomplete"));
    // The chart shades the gap and says what the shading means.
    assert!(html.contains("<span class=\"sw gap\"></span>not fetched yet"));
}

#[test]
fn a_complete_report_says_so() {
    let mut report = small_report();
    report.coverage.iter_mut().for_each(|c| c.gaps.clear());
    let html = render_html(&report);
    assert!(html.contains("Complete."));
    assert!(!html.contains("<tr class=\"has-gaps\">"));
    assert!(!html.contains("<span class=\"sw gap\">"), "no shading in the chart's legend");
}

#[test]
fn the_page_has_no_script_and_no_url() {
    let html = render_html(&small_report());
    let lower = html.to_lowercase();
    for needle in ["<script", "http://", "https://", "@import", "src=", "<link", "<iframe", "<img"] {
        assert!(!lower.contains(needle), "the page contains {needle}");
    }
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.ends_with("</html>"));
}

#[test]
fn text_from_the_data_is_escaped() {
    let mut report = small_report();
    report.org = "<b>acme</b> & \"friends\"".to_owned();
    report.coverage[0].description = Some("<img onerror=x>".to_owned());
    report.source = "sqlite:'<x>'.db".to_owned();
    let html = render_html(&report);
    assert!(!html.contains("<script"), "the hostile name was not escaped");
    assert!(!html.contains("<b>acme"));
    assert!(!html.contains("<img"));
    assert!(!html.contains("<x>"));
    assert!(html.contains("&lt;script&gt;alert(&quot;pwn&quot;)&lt;/script&gt; O'Neil &amp; &quot;Co&quot;"));
    assert!(html.contains("&lt;b&gt;acme&lt;/b&gt; &amp; &quot;friends&quot;"));
    // In the table, the tooltip of the heat map, and the heat map's label (shortened).
    let rows = table_rows(&html, "agents");
    assert_eq!(row_with(&rows, HOSTILE_ID)[0], HOSTILE_NAME);
    assert!(decode(&html).matches(HOSTILE_NAME).count() >= 2);
}

#[test]
fn bad_numbers_never_reach_the_page() {
    let mut report = small_report();
    report.agents[0].handle_ms = f64::NAN;
    report.agents[1].on_queue_ms = Some(f64::INFINITY);
    report.agents[1].interacting_ms = Some(f64::NAN);
    report.heat_map.rows[0].cells[0] = Some(f64::NAN);
    report.heat_map.rows[0].cells[1] = Some(f64::NEG_INFINITY);
    report.volume[0].handle_ms = f64::INFINITY;
    report.volume[1].handle_ms = f64::NAN;
    let html = render_html(&report);
    assert!(!html.contains("NaN"), "NaN on the page");
    // Rust writes infinity as `inf`: no such word anywhere (`info`, `interval`... are fine).
    let word = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric());
    for (at, _) in html.match_indices("inf") {
        assert!(word(html[..at].chars().next_back()) || word(html[at + 3..].chars().next()), "inf at {at}");
    }
    let rows = table_rows(&html, "agents");
    let first = row_with(&rows, NAMED_ID);
    assert_eq!(first[3], DASH, "AHT of a NaN handle time");
    assert_eq!(row_with(&rows, HOSTILE_ID)[6], DASH, "infinite on-queue time");
    assert_eq!(row_with(&rows, HOSTILE_ID)[7], DASH, "NaN occupancy");
}

#[test]
fn an_empty_report_still_renders() {
    let mut report = small_report();
    report.coverage.clear();
    report.volume.clear();
    report.agents.clear();
    report.heat_map.rows.clear();
    let html = render_html(&report);
    assert!(html.contains("No handled interactions are stored for this range."));
    assert!(html.contains("No agent has interval data in this range."));
    assert!(html.contains("No agent has data in this range."));
    assert!(html.contains("cannot be checked for completeness"));
    assert!(!html.contains("<table class=\"agents\">"));
}

#[test]
fn the_heat_map_shows_handle_time_where_no_status_is_stored() {
    let mut report = small_report();
    report.heat_map.measure = HeatMeasure::AverageHandleMs;
    for row in &mut report.heat_map.rows {
        row.cells = row.cells.iter().map(|c| c.map(|v| 120_000.0 + v * 400_000.0)).collect();
    }
    let html = render_html(&report);
    assert!(html.contains("3. Average handle time by interval of the day"));
    assert!(!html.contains("3. Occupancy"));
}

#[test]
fn heat_map_cells_are_drawn_once_and_empty_cells_are_not_zero() {
    let mut report = small_report();
    // One agent with exactly one zero cell and nothing else.
    report.heat_map.rows = vec![HeatRow {
        user_id: "u".to_owned(),
        name: None,
        cells: (0..report.heat_map.slots.len()).map(|j| (j == 3).then_some(0.0)).collect(),
    }];
    let html = render_html(&report);
    let start = html.find("<section id=\"heat-map\">").unwrap();
    let section = &html[start..start + html[start..].find("</section>").unwrap()];
    // The zero is a lightest-class cell; every other cell is left to the hatched "no data" band.
    assert_eq!(section.matches("class=\"q0\"").count(), 1);
    assert_eq!(section.matches("class=\"q").count(), 1);
    assert!(section.contains("fill=\"url(#nodata-0)\""));
    assert!(section.contains("u: data in 1 of 20 intervals; lowest 0.0% at 09:30, highest 0.0% at 09:30"));
}

#[test]
fn a_range_across_a_clock_change_names_the_offsets() {
    let tz = fixture::paris();
    let mut report: Report = small_report();
    report.range = intervals_domain::TimeWindow::new(
        fixture::local(tz, 2025, 10, 25, 0, 0),
        fixture::local(tz, 2025, 10, 27, 0, 0),
    )
    .unwrap();
    report.coverage[0].gaps = vec![intervals_domain::TimeWindow::new(
        fixture::local(tz, 2025, 10, 26, 1, 0),
        fixture::local(tz, 2025, 10, 26, 4, 0),
    )
    .unwrap()];
    let html = render_html(&report);
    assert!(html.contains("Sun 26 Oct 01:00 CEST\u{2013}04:00 CET"), "the gap with its offsets");
    assert!(html.contains("98 intervals over 2 days"), "a 25-hour day has 50 half hours");
}
