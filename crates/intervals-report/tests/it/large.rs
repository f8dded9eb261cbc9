//! A thousand agents over thirty days of half hours: the page renders, within a sensible size.

use std::time::Instant;

use intervals_report::render_html;

use crate::fixture::large_report;
use crate::html::table_rows;

/// Well above what the page takes (2.9 MiB for this worst case: nearly every heat-map cell filled with
/// random values, so few neighbours merge), well below what a browser chokes on.
const MAX_BYTES: usize = 8 * 1024 * 1024;

#[test]
fn a_thousand_agents_over_thirty_days_render() {
    let report = large_report(1_000, 30);
    assert_eq!(report.range.bucket_count(report.granularity, report.time_zone), 1_440);
    let started = Instant::now();
    let html = render_html(&report);
    let took = started.elapsed();
    let cells: usize = report.heat_map.rows.iter().map(|r| r.cells.iter().flatten().count()).sum();
    println!(
        "1,000 agents x 1,440 buckets ({} volume rows, {cells} heat-map cells): {} bytes ({:.2} MiB) in {took:?}",
        report.volume.len(),
        html.len(),
        html.len() as f64 / 1024.0 / 1024.0,
    );
    assert!(html.len() < MAX_BYTES, "{} bytes", html.len());
    assert_eq!(table_rows(&html, "agents").len(), 2 + 1_000, "header, median, one row per agent");
    assert_eq!(html.matches("<svg class=\"heat\"").count(), 20, "blocks of 50 agents");
    assert!(!html.contains("<script"));
}
