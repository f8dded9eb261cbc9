//! The page: the header and the four sections, as one maud template with inline CSS.

use chrono::{DateTime, Utc};
use intervals_domain::report::{median_line, AgentLine, CoverageLine, HeatMeasure, MedianLine, Report};
use intervals_domain::{Granularity, TimeWindow};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::heat;
use crate::text::{self, Local, DASH};
use crate::volume::{self, VolumeChart};

/// Gaps listed per query before the rest are counted.
const MAX_GAPS_LISTED: usize = 12;

const STYLE: &str = include_str!("page.css");

/// What the sections share: the report, its clock and its buckets.
struct Context<'a> {
    report: &'a Report,
    local: Local,
    /// The start of every bucket of the range, in order.
    starts: Vec<DateTime<Utc>>,
}

pub(crate) fn render(report: &Report) -> String {
    let buckets = report.range.buckets(report.granularity, report.time_zone);
    let starts: Vec<DateTime<Utc>> = buckets.iter().map(TimeWindow::start).collect();
    let local = Local::new(report.time_zone, starts.iter().copied().chain([report.range.end()]));
    let cx = Context { report, local, starts };
    let gaps: Vec<TimeWindow> = report.coverage.iter().flat_map(|c| c.gaps.iter().copied()).collect();
    let chart = volume::chart(&report.volume, &cx.starts, report.range.end(), &gaps, &cx.local);
    let title = format!("{} \u{2014} contact-centre intervals", report.org);
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="color-scheme" content="light";
                title { (title) }
                style { (PreEscaped(STYLE)) (PreEscaped(colour_classes())) }
            }
            body {
                main {
                    (header(&cx, chart.as_ref()))
                    (coverage(&cx))
                    (volume_section(&cx, chart.as_ref()))
                    (heat_section(&cx))
                    (agents(&cx))
                    footer {
                        "Drawn from the stored intervals by genesys-intervals. All times are local to "
                        (report.time_zone.name()) ". A dash (" (DASH) ") means no data, never zero."
                    }
                }
            }
        }
    }
    .into_string()
}

/// The heat map's colour classes, for its cells (SVG `fill`) and its legend (CSS `background`).
fn colour_classes() -> String {
    heat::COLOURS.iter().enumerate().map(|(k, c)| format!(".q{k}{{fill:{c}}}.sw.q{k}{{background:{c}}}")).collect()
}

fn granularity_words(g: Granularity) -> &'static str {
    match g {
        Granularity::Pt15m => "15-minute intervals",
        Granularity::Pt30m => "30-minute intervals",
        Granularity::Pt1h => "hourly intervals",
        Granularity::P1d => "daily intervals",
    }
}

/// Distinct local days among the bucket starts.
fn local_days(cx: &Context<'_>) -> usize {
    let mut days: Vec<_> = cx.starts.iter().map(|s| cx.local.at(*s).date_naive()).collect();
    days.dedup();
    days.len()
}

struct GapSummary {
    gaps: usize,
    queries_with_gaps: usize,
    missing: chrono::Duration,
}

fn gap_summary(coverage: &[CoverageLine]) -> GapSummary {
    GapSummary {
        gaps: coverage.iter().map(|c| c.gaps.len()).sum(),
        queries_with_gaps: coverage.iter().filter(|c| !c.gaps.is_empty()).count(),
        missing: coverage.iter().flat_map(|c| &c.gaps).map(TimeWindow::duration).sum(),
    }
}

fn header(cx: &Context<'_>, chart: Option<&VolumeChart>) -> Markup {
    let r = cx.report;
    let days = local_days(cx);
    let summary = gap_summary(&r.coverage);
    let median = median_line(&r.agents);
    html! {
        header.page {
            p.kicker { "Contact-centre interval report" }
            h1 { (r.org) }
            dl.meta {
                div { dt { "Range" } dd { (cx.local.full(r.range.start())) " \u{2013} " (cx.local.full(r.range.end())) } }
                div { dt { "Time zone" } dd { (r.time_zone.name()) } }
                div {
                    dt { "Granularity" }
                    dd { (r.granularity.as_iso()) " \u{00b7} " (granularity_words(r.granularity)) " \u{00b7} "
                        (text::count(cx.starts.len() as u64)) " intervals over " (days) (if days == 1 { " day" } else { " days" }) }
                }
                div { dt { "Read from" } dd.mono { (r.source) } }
            }
            div.kpis {
                div.kpi {
                    span.value { (chart.map_or_else(|| DASH.to_owned(), |c| text::count(c.handled))) }
                    span.label { "handled" }
                }
                div.kpi {
                    span.value { (text::duration_ms(chart.and_then(|c| c.aht_ms))) }
                    span.label { "average handle time" }
                }
                div.kpi {
                    span.value { (text::count(r.agents.len() as u64)) }
                    span.label { "agents" }
                }
                div.kpi {
                    span.value { (text::percent(median.and_then(|m| m.occupancy))) }
                    span.label { "median occupancy" }
                }
                @if r.coverage.is_empty() {
                    div.kpi.bad { span.value { "Unknown" } span.label { "coverage: no checkpoints" } }
                } @else if summary.gaps > 0 {
                    div.kpi.bad {
                        span.value { "Incomplete" }
                        span.label { (summary.gaps) (if summary.gaps == 1 { " gap, " } else { " gaps, " }) (text::span(summary.missing)) " not fetched" }
                    }
                } @else {
                    div.kpi.ok { span.value { "Complete" } span.label { "coverage" } }
                }
            }
            nav {
                a href="#coverage" { "Coverage" }
                a href="#volume" { "Volume and AHT" }
                a href="#heat-map" { "Heat map" }
                a href="#agents" { "Agents" }
            }
        }
    }
}

fn coverage(cx: &Context<'_>) -> Markup {
    let lines = &cx.report.coverage;
    let summary = gap_summary(lines);
    html! {
        section #coverage {
            h2 { "1. Coverage" }
            p.explain {
                "What each query has stored for this range. A gap is a part of the range not fetched yet: "
                "its numbers are missing from every section below, not zero."
            }
            @if lines.is_empty() {
                p.status.bad { "No query has stored windows in this range: the figures below cannot be checked for completeness." }
            } @else if summary.gaps > 0 {
                p.status.bad {
                    strong { "Incomplete. " }
                    (summary.queries_with_gaps) " of " (lines.len()) (if lines.len() == 1 { " query" } else { " queries" }) (if summary.queries_with_gaps == 1 { " has " } else { " have " })
                    (summary.gaps) (if summary.gaps == 1 { " gap" } else { " gaps" })
                    " (" (text::span(summary.missing)) " in all). Fetch them again before relying on the totals."
                }
            } @else {
                p.status.ok { strong { "Complete. " } "Every query has stored the whole range." }
            }
            @if !lines.is_empty() {
                table.coverage {
                    thead {
                        tr {
                            th { "Query" }
                            th { "Reads" }
                            th.num { "Windows stored" }
                            th { "Not fetched yet" }
                            th { "Last fetched" }
                        }
                    }
                    tbody {
                        @for line in lines {
                            tr.has-gaps[!line.gaps.is_empty()] {
                                td.mono { (line.fingerprint) }
                                td { (line.description.as_deref().unwrap_or(DASH)) }
                                td.num { (text::count(line.windows as u64)) }
                                td { (gap_cell(cx, line)) }
                                td.nowrap { (line.last_fetched.map_or_else(|| DASH.to_owned(), |t| cx.local.full(t))) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn gap_cell(cx: &Context<'_>, line: &CoverageLine) -> Markup {
    if line.gaps.is_empty() {
        return html! { span.badge.ok { "none" } };
    }
    let missing: chrono::Duration = line.gaps.iter().map(TimeWindow::duration).sum();
    let n = line.gaps.len();
    html! {
        span.badge.bad { "\u{26a0} " (n) (if n == 1 { " gap" } else { " gaps" }) " \u{00b7} " (text::span(missing)) }
        ul.gaps {
            @for gap in line.gaps.iter().take(MAX_GAPS_LISTED) {
                li { (cx.local.range(gap.start(), gap.end())) }
            }
            @if n > MAX_GAPS_LISTED {
                li.more { "\u{2026} and " (n - MAX_GAPS_LISTED) " more" }
            }
        }
    }
}

fn volume_section(cx: &Context<'_>, chart: Option<&VolumeChart>) -> Markup {
    html! {
        section #volume {
            h2 { "2. Volume and average handle time" }
            p.explain {
                "Interactions handled per interval, stacked by media type, with the average handle time of all media "
                "(right axis, minutes:seconds; the few intervals far above the rest are drawn at its top). Times are \
                 local to " (cx.report.time_zone.name()) "."
            }
            @match chart {
                None => p.note { "No handled interactions are stored for this range." },
                Some(chart) => {
                    ul.legend {
                        @for series in &chart.media {
                            li { span.sw style={ "background:" (series.colour) } {} (series.label) }
                        }
                        @if chart.has_aht {
                            li { span.sw.line {} "AHT, all media" }
                        }
                        @if chart.has_gaps {
                            li { span.sw.gap {} "not fetched yet" }
                        }
                    }
                    figure.chart-box {
                        @match &chart.svg {
                            Some(svg) => (PreEscaped(svg)),
                            None => p.note { "The chart could not be drawn." },
                        }
                    }
                }
            }
        }
    }
}

fn heat_section(cx: &Context<'_>) -> Markup {
    let map = &cx.report.heat_map;
    let days = local_days(cx);
    let (title, what) = match map.measure {
        HeatMeasure::Occupancy => {
            ("3. Occupancy by interval of the day", "occupancy (interacting over available time)")
        }
        HeatMeasure::AverageHandleMs => (
            "3. Average handle time by interval of the day",
            "average handle time (no status time is stored, so occupancy cannot be shown)",
        ),
    };
    html! {
        section #heat-map {
            h2 { (title) }
            p.explain {
                "Each row is an agent (in the order of the table below), each column an interval of the local day; "
                "the colour is the " (what) ", averaged over the " (days) (if days == 1 { " day" } else { " days" })
                " of the range. Hatched cells have no data, which is not the same as zero."
            }
            @match heat::render(map) {
                Some(markup) => (markup),
                None => p.note { "No agent has interval data in this range." },
            }
        }
    }
}

fn agent_name(line: &AgentLine) -> Option<&str> {
    line.name.as_deref().filter(|n| !n.trim().is_empty())
}

fn agents(cx: &Context<'_>) -> Markup {
    let lines = &cx.report.agents;
    let median: Option<MedianLine> = median_line(lines);
    html! {
        section #agents {
            h2 { "4. Agents" }
            p.explain {
                "Totals over the range, most interactions handled first. ACW and hold are shares of handle time; "
                "occupancy is interacting time over interacting, communicating and idle time. "
                "A dash means no data, not zero."
            }
            @if lines.is_empty() {
                p.note { "No agent has data in this range." }
            } @else {
                table.agents {
                    thead {
                        tr {
                            th { "Agent" }
                            th { "User id" }
                            th.num { "Handled" }
                            th.num { "AHT" }
                            th.num { "ACW" }
                            th.num { "Hold" }
                            th.num { "On queue (h)" }
                            th.num { "Occupancy" }
                        }
                        @if let Some(m) = median {
                            tr.median {
                                th scope="row" colspan="2" { "Org median \u{00b7} " (text::count(lines.len() as u64)) (if lines.len() == 1 { " agent" } else { " agents" }) }
                                td.num { (text::count_f(m.handled)) }
                                td.num { (text::duration_ms(m.aht_ms)) }
                                td.num { (text::percent(m.acw_share)) }
                                td.num { (text::percent(m.hold_share)) }
                                td.num { (text::decimal1(m.on_queue_hours)) }
                                td.num { (text::percent(m.occupancy)) }
                            }
                        }
                    }
                    tbody {
                        @for line in lines {
                            tr {
                                td.agent {
                                    @match agent_name(line) {
                                        Some(name) => (name),
                                        None => span.unnamed { "(no name)" },
                                    }
                                }
                                td.mono.id { (line.user_id) }
                                td.num { (text::count(line.handled)) }
                                td.num { (text::duration_ms(line.aht_ms())) }
                                td.num { (text::percent(line.acw_share())) }
                                td.num { (text::percent(line.hold_share())) }
                                td.num { (text::decimal1(line.on_queue_hours())) }
                                td.num { (text::percent(line.occupancy())) }
                            }
                        }
                    }
                }
            }
        }
    }
}
