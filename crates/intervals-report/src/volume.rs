//! Section 2: handled interactions per bucket (stacked by media type) and the average handle time
//! (all media) on a second axis, drawn by plotters' SVG backend.
//!
//! Text: plotters is built without its `ttf` feature, so it lays labels out with its "naive" font (a
//! width estimate from the character count) and the SVG backend writes each label as a `<text>`
//! element that the browser sets in the page's own font. No font file, no system font lookup.
//!
//! Size: the chart is drawn at an integer multiple `scale` of its on-screen width so that every bucket
//! gets at least two whole device pixels (plotters rounds coordinates to integers), and shown at 100 %
//! of the container through its `viewBox`; fonts and strokes are scaled by the same factor.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc, Weekday};
use intervals_domain::report::VolumeBucket;
use intervals_domain::TimeWindow;
use plotters::coord::combinators::BindKeyPoints;
use plotters::prelude::*;

use crate::text::{self, Local};

/// The chart's width on screen, CSS pixels.
const WIDTH: u32 = 1040;
/// The chart's height on screen, CSS pixels.
const HEIGHT: u32 = 340;
/// At most this many labelled ticks on the time axis.
const MAX_TIME_LABELS: usize = 12;

/// Media types in the order of their colours: the same media type has the same colour in every report.
const KNOWN_MEDIA: &[&str] = &["voice", "chat", "email", "message", "callback", "video", "cobrowse", "screenshare"];
/// Colour-blind-safe categorical colours (Tableau 10).
const PALETTE: &[(u8, u8, u8)] = &[
    (0x4e, 0x79, 0xa7),
    (0xf2, 0x8e, 0x2b),
    (0x59, 0xa1, 0x4f),
    (0xb0, 0x7a, 0xa1),
    (0x76, 0xb7, 0xb2),
    (0xed, 0xc9, 0x48),
    (0x9c, 0x75, 0x5f),
    (0xff, 0x9d, 0xa7),
    (0xba, 0xb0, 0xac),
    (0xe1, 0x57, 0x59),
];
const AHT_LINE: RGBColor = RGBColor(0x1f, 0x29, 0x37);
const GAP_FILL: RGBColor = RGBColor(0xdc, 0x26, 0x26);
const GRID: RGBColor = RGBColor(0xe5, 0xe7, 0xeb);
const AXIS: RGBColor = RGBColor(0x9c, 0xa3, 0xaf);
const INK: RGBColor = RGBColor(0x4b, 0x55, 0x63);

/// One series of the legend: its label and CSS colour.
pub(crate) struct Series {
    pub(crate) label: String,
    pub(crate) colour: String,
}

/// The drawn chart and what its legend lists.
pub(crate) struct VolumeChart {
    /// The `<svg>` element; `None` if plotters failed.
    pub(crate) svg: Option<String>,
    /// The media types, bottom of the stack first.
    pub(crate) media: Vec<Series>,
    /// Whether any bucket has an AHT (the line is drawn).
    pub(crate) has_aht: bool,
    /// Whether a part of the range is shaded as not fetched.
    pub(crate) has_gaps: bool,
    /// Total handled in the chart.
    pub(crate) handled: u64,
    /// AHT over the whole chart, ms.
    pub(crate) aht_ms: Option<f64>,
}

/// The chart of `volume` over the buckets starting at `starts` (in order; the last ends at `end`), with
/// the buckets `gaps` touch shaded; `None` when no bucket of the range has a row.
pub(crate) fn chart(
    volume: &[VolumeBucket],
    starts: &[DateTime<Utc>],
    end: DateTime<Utc>,
    gaps: &[TimeWindow],
    local: &Local,
) -> Option<VolumeChart> {
    let data = Data::collect(volume, starts)?;
    let ticks = TimeTicks::choose(starts, local);
    let gap_spans = gap_spans(starts, end, gaps);
    // Drawing into a String cannot fail in practice; the page says so rather than panic.
    let svg = draw(&data, &ticks, &gap_spans).ok();
    let media = data
        .media
        .iter()
        .enumerate()
        .map(|(i, m)| Series {
            label: if m.is_empty() { "all media".to_owned() } else { m.clone() },
            colour: css(data.colours[i]),
        })
        .collect();
    let (sum, n) = data.aht.iter().fold((0.0, 0.0), |(s, n), (sum, count)| (s + sum, n + count));
    Some(VolumeChart {
        svg,
        media,
        has_aht: data.aht.iter().any(|(_, n)| *n > 0.0),
        has_gaps: !gap_spans.is_empty(),
        handled: data.stacks.iter().flatten().sum(),
        aht_ms: (n > 0.0).then(|| sum / n),
    })
}

/// The rows of the range's buckets, per bucket and media type.
struct Data {
    media: Vec<String>,
    colours: Vec<RGBColor>,
    /// Per bucket, handled per media type (in `media` order).
    stacks: Vec<Vec<u64>>,
    /// Per bucket, (handle ms, handled) of the rows with a finite handle time.
    aht: Vec<(f64, f64)>,
}

impl Data {
    fn collect(volume: &[VolumeBucket], starts: &[DateTime<Utc>]) -> Option<Data> {
        let rows: Vec<(usize, &VolumeBucket)> =
            volume.iter().filter_map(|b| starts.binary_search(&b.start).ok().map(|i| (i, b))).collect();
        if rows.is_empty() {
            return None;
        }
        let mut names: Vec<&str> = rows.iter().map(|(_, b)| b.media_type.as_str()).collect();
        names.sort_by_key(|m| (KNOWN_MEDIA.iter().position(|k| k == m).unwrap_or(KNOWN_MEDIA.len()), *m));
        names.dedup();
        let index: BTreeMap<&str, usize> = names.iter().enumerate().map(|(i, m)| (*m, i)).collect();
        let colours = names
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let slot = KNOWN_MEDIA.iter().position(|k| k == m).unwrap_or(i);
                let (r, g, b) = PALETTE[slot % PALETTE.len()];
                RGBColor(r, g, b)
            })
            .collect();
        let mut stacks = vec![vec![0u64; names.len()]; starts.len()];
        let mut aht = vec![(0.0, 0.0); starts.len()];
        for (i, b) in rows {
            let m = index[b.media_type.as_str()];
            stacks[i][m] = stacks[i][m].saturating_add(b.handled);
            if b.handle_ms.is_finite() && b.handled > 0 {
                aht[i].0 += b.handle_ms;
                aht[i].1 += b.handled as f64;
            }
        }
        Some(Data { media: names.into_iter().map(str::to_owned).collect(), colours, stacks, aht })
    }

    fn aht_seconds(&self, i: usize) -> Option<f64> {
        let (sum, n) = self.aht[i];
        (n > 0.0).then(|| sum / n / 1000.0).filter(|v| v.is_finite())
    }
}

/// The time axis: which bucket starts are labelled, which get a light grid line, and their labels.
struct TimeTicks {
    bold: Vec<usize>,
    light: Vec<usize>,
    labels: BTreeMap<usize, String>,
}

impl TimeTicks {
    fn choose(starts: &[DateTime<Utc>], local: &Local) -> TimeTicks {
        let day_starts: Vec<usize> = (0..starts.len())
            .filter(|&i| {
                let previous = if i == 0 { starts[0] - Duration::seconds(1) } else { starts[i - 1] };
                local.at(previous).date_naive() != local.at(starts[i]).date_naive()
            })
            .collect();
        let at_hour = |i: usize, every: u32| {
            let t = local.at(starts[i]);
            t.minute() == 0 && t.hour().is_multiple_of(every)
        };
        let sub_day = starts.windows(2).any(|w| w[1] - w[0] < Duration::hours(20));
        let mut candidates: Vec<(Vec<usize>, Vec<usize>, bool)> = Vec::new();
        if sub_day {
            for every in [1, 2, 3, 6, 12] {
                let bold: Vec<usize> = (0..starts.len()).filter(|&i| at_hour(i, every)).collect();
                let light = if every >= 3 { (0..starts.len()).filter(|&i| at_hour(i, 1)).collect() } else { vec![] };
                candidates.push((bold, light, false));
            }
        }
        let days_every =
            |n: usize| day_starts.iter().enumerate().filter(|(k, _)| k % n == 0).map(|(_, i)| *i).collect();
        candidates.push((day_starts.clone(), vec![], true));
        candidates.push((days_every(2), day_starts.clone(), true));
        let mondays: Vec<usize> =
            day_starts.iter().copied().filter(|&i| local.at(starts[i]).weekday() == Weekday::Mon).collect();
        candidates.push((mondays, day_starts.clone(), true));
        let firsts: Vec<usize> = day_starts.iter().copied().filter(|&i| local.at(starts[i]).day() == 1).collect();
        candidates.push((firsts, day_starts.clone(), true));

        let chosen = candidates
            .into_iter()
            .find(|(bold, _, _)| !bold.is_empty() && bold.len() <= MAX_TIME_LABELS)
            .unwrap_or_else(|| (vec![0], vec![], false));
        let (bold, light, days) = chosen;
        let labels = bold
            .iter()
            .map(|&i| {
                let label = if days || day_starts.binary_search(&i).is_ok() {
                    local.day(starts[i])
                } else {
                    local.time(starts[i])
                };
                (i, label)
            })
            .collect();
        let light = light.into_iter().filter(|i| bold.binary_search(i).is_err()).collect();
        TimeTicks { bold, light, labels }
    }
}

/// The buckets (as index ranges) that overlap a gap of any query: a bucket partly not fetched is incomplete.
fn gap_spans(starts: &[DateTime<Utc>], end: DateTime<Utc>, gaps: &[TimeWindow]) -> Vec<(usize, usize)> {
    let mut covered = vec![false; starts.len()];
    for gap in gaps.iter().filter(|g| g.start() < end) {
        // The bucket holding the gap's start, then every bucket starting before its end.
        let from = starts.partition_point(|s| *s <= gap.start()).saturating_sub(1);
        let to = starts.partition_point(|s| *s < gap.end());
        covered[from..to].iter_mut().for_each(|c| *c = true);
    }
    let mut spans = Vec::new();
    let mut i = 0;
    while i < covered.len() {
        if covered[i] {
            let from = i;
            while i < covered.len() && covered[i] {
                i += 1;
            }
            spans.push((from, i));
        } else {
            i += 1;
        }
    }
    spans
}

/// The top of the AHT axis, in seconds: the largest value, unless a few quiet intervals (one long call
/// each) would squash the line of every other interval into the bottom of the chart; then one and a
/// half times the 95th percentile, and the few values above are drawn at the top.
fn aht_axis_max(values: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    sorted.sort_by(f64::total_cmp);
    let Some(&max) = sorted.last() else { return 0.0 };
    let p95 = sorted[(sorted.len() - 1) * 95 / 100];
    max.min(p95 * 1.5).max(p95)
}

/// A "nice" step (1, 2 or 5 times a power of ten, at least 1) for about `parts` parts of `max`.
fn nice_step(max: f64, parts: f64) -> f64 {
    let raw = (max / parts).max(1.0);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * magnitude).find(|s| *s >= raw).unwrap_or(10.0 * magnitude)
}

/// A step of whole seconds that reads well as m:ss, for about five parts of `max` seconds.
fn duration_step(max: f64) -> f64 {
    const STEPS: &[f64] =
        &[5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0];
    STEPS.iter().copied().find(|s| s * 5.0 >= max).unwrap_or_else(|| nice_step(max, 5.0))
}

/// The top of an axis (a whole number of `step`s, at least one) and its ticks, both multiplied by `unit`.
/// A maximum within 4 % of a tick gets one more step, so the tallest bar does not touch the frame.
fn ticks_to(max: f64, step: f64, unit: f64) -> (i64, Vec<i64>) {
    let parts = (max * 1.04 / step).ceil().clamp(1.0, 1000.0) as i64;
    let step = (step * unit).round() as i64;
    (parts * step, (0..=parts).map(|k| k * step).collect())
}

/// Sub-units per bucket on the x axis: plotters' integer coordinates need room for a bar's margins and
/// its centre.
const X_UNIT: i64 = 20;

fn draw(data: &Data, ticks: &TimeTicks, gaps: &[(usize, usize)]) -> Result<String, Box<dyn std::error::Error>> {
    let n = data.stacks.len();
    let plot_width = WIDTH - 2 * 70;
    let scale = (2 * n as u32).div_ceil(plot_width).max(1);
    let px = |v: u32| v * scale;
    let font = |size: f64| ("sans-serif", size * 1.24 * f64::from(scale)).into_font().color(&INK);
    let x_of = |bucket: usize| bucket as i64 * X_UNIT;

    let max_total = data.stacks.iter().map(|s| s.iter().sum::<u64>()).max().unwrap_or(0) as f64;
    let (y_top, y_ticks) = ticks_to(max_total.max(1.0), nice_step(max_total, 5.0), 1.0);
    let max_aht = aht_axis_max(&(0..n).filter_map(|i| data.aht_seconds(i)).collect::<Vec<_>>());
    // The AHT axis counts milliseconds.
    let (aht_top, aht_ticks) = ticks_to(max_aht.max(1.0), duration_step(max_aht), 1000.0);
    let aht_cap = aht_top as f64 / 1000.0;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (px(WIDTH), px(HEIGHT))).into_drawing_area();
        let x_range = 0..x_of(n);
        let mut chart = ChartBuilder::on(&root)
            .margin_top(px(12))
            .margin_bottom(px(4))
            .margin_left(px(4))
            .margin_right(px(4))
            .x_label_area_size(px(34))
            .y_label_area_size(px(66))
            .right_y_label_area_size(px(66))
            .build_cartesian_2d(
                x_range
                    .clone()
                    .with_key_points(ticks.bold.iter().map(|&i| x_of(i)).collect())
                    .with_light_points(ticks.light.iter().map(|&i| x_of(i))),
                (0..y_top).with_key_points(y_ticks),
            )?
            .set_secondary_coord(x_range, (0..aht_top).with_key_points(aht_ticks));

        let x_label = |x: &i64| ticks.labels.get(&((*x / X_UNIT) as usize)).cloned().unwrap_or_default();
        let y_label = |y: &i64| text::count(*y as u64);
        chart
            .configure_mesh()
            .bold_line_style(GRID.stroke_width(scale))
            .light_line_style(GRID.stroke_width(scale))
            .axis_style(AXIS.stroke_width(scale))
            .set_all_tick_mark_size(px(4))
            .x_label_formatter(&x_label)
            .y_label_formatter(&y_label)
            .label_style(font(11.0))
            .axis_desc_style(font(11.0))
            .y_desc("Handled per interval")
            .draw()?;
        let aht_label = |ms: &i64| text::clock_seconds(*ms as f64 / 1000.0);
        chart
            .configure_secondary_axes()
            .axis_style(AXIS.stroke_width(scale))
            .set_all_tick_mark_size(px(4))
            .y_label_formatter(&aht_label)
            .label_style(font(11.0))
            .axis_desc_style(font(11.0))
            .y_desc("AHT (m:ss)")
            .draw()?;

        chart
            .draw_series(gaps.iter().map(|&(from, to)| {
                Rectangle::new([(x_of(from), 0), (x_of(to), y_top)], GAP_FILL.mix(0.12).filled())
            }))?;
        // Thin bars touch; wide ones get a margin so they read as bars.
        let margin = if plot_width as usize / n.max(1) >= 5 { 3 } else { 0 };
        for (m, colour) in data.colours.iter().enumerate() {
            chart.draw_series(data.stacks.iter().enumerate().filter(|(_, s)| s[m] > 0).map(|(i, s)| {
                let below: u64 = s[..m].iter().sum();
                let top = below + s[m];
                Rectangle::new([(x_of(i) + margin, below as i64), (x_of(i + 1) - margin, top as i64)], colour.filled())
            }))?;
        }
        // Over many buckets the line is dense: thinner, so the bars stay readable beneath it.
        let line = AHT_LINE.stroke_width(if n > 200 { scale } else { 2 * scale });
        let mut runs: Vec<Vec<(i64, i64)>> = Vec::new();
        let mut current: Vec<(i64, i64)> = Vec::new();
        for i in 0..n {
            match data.aht_seconds(i) {
                // Beyond the axis (a quiet interval with one long call): drawn at its top.
                Some(s) => current.push((x_of(i) + X_UNIT / 2, (s.min(aht_cap) * 1000.0).round() as i64)),
                None if !current.is_empty() => runs.push(std::mem::take(&mut current)),
                None => {}
            }
        }
        if !current.is_empty() {
            runs.push(current);
        }
        chart.draw_secondary_series(runs.iter().filter(|r| r.len() > 1).map(|r| PathElement::new(r.clone(), line)))?;
        chart.draw_secondary_series(
            runs.iter().filter(|r| r.len() == 1).map(|r| Circle::new(r[0], px(2), AHT_LINE.filled())),
        )?;
        root.present()?;
    }
    Ok(responsive(&svg, px(WIDTH), px(HEIGHT)))
}

/// plotters' `<svg width=.. height=.. viewBox=.. xmlns=..>` as an element that scales to its container
/// (inline SVG in HTML needs no namespace attribute, and the page has no URL at all).
fn responsive(svg: &str, width: u32, height: u32) -> String {
    let body = svg.find('>').map_or("", |end| &svg[end + 1..]);
    format!(
        "<svg class=\"chart\" viewBox=\"0 0 {width} {height}\" preserveAspectRatio=\"xMidYMid meet\" role=\"img\" \
         aria-label=\"Handled interactions and average handle time per interval\">{body}"
    )
}

fn css(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn a_few_quiet_intervals_do_not_squash_the_aht_axis() {
        let mut typical: Vec<f64> = (0..100).map(|i| 500.0 + f64::from(i)).collect();
        assert_eq!(aht_axis_max(&typical), 599.0, "no outlier: the largest value");
        typical.extend([5_000.0, 4_000.0]);
        assert_eq!(aht_axis_max(&typical), 595.0 * 1.5, "outliers: 1.5 times the 95th percentile");
        assert_eq!(aht_axis_max(&[]), 0.0);
        assert_eq!(aht_axis_max(&[42.0]), 42.0);
    }

    #[test]
    fn steps() {
        assert_eq!(nice_step(0.0, 5.0), 1.0);
        assert_eq!(nice_step(47.0, 5.0), 10.0);
        assert_eq!(nice_step(1234.0, 5.0), 500.0);
        assert_eq!(duration_step(290.0), 60.0);
        assert_eq!(ticks_to(47.0, 10.0, 1.0), (50, vec![0, 10, 20, 30, 40, 50]));
        assert_eq!(ticks_to(0.5, 5.0, 1000.0), (5000, vec![0, 5000]));
        assert_eq!(ticks_to(25.0, 5.0, 1.0).0, 30, "headroom above the tallest bar");
    }

    #[test]
    fn a_gap_shades_every_bucket_it_touches() {
        let at = |h: u32, m: u32| Utc.with_ymd_and_hms(2025, 6, 2, h, m, 0).unwrap();
        let starts: Vec<DateTime<Utc>> = (8..14).map(|h| at(h, 0)).collect();
        let gap = |a: DateTime<Utc>, b: DateTime<Utc>| TimeWindow::new(a, b).unwrap();
        assert_eq!(gap_spans(&starts, at(14, 0), &[gap(at(9, 15), at(9, 45))]), vec![(1, 2)], "inside one bucket");
        assert_eq!(gap_spans(&starts, at(14, 0), &[gap(at(9, 0), at(11, 0))]), vec![(1, 3)], "aligned");
        assert_eq!(
            gap_spans(&starts, at(14, 0), &[gap(at(6, 0), at(8, 30)), gap(at(12, 30), at(20, 0))]),
            vec![(0, 1), (4, 6)]
        );
        assert_eq!(gap_spans(&starts, at(14, 0), &[gap(at(13, 45), at(21, 0))]), vec![(5, 6)]);
        assert_eq!(gap_spans(&starts, at(14, 0), &[gap(at(14, 0), at(21, 0))]), vec![], "after the range");
        assert_eq!(gap_spans(&starts, at(14, 0), &[gap(at(6, 0), at(8, 0))]), vec![], "before the range");
    }
}
