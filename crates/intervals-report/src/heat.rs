//! Section 3: agents by interval of the local day, as plain SVG written through the template.
//!
//! Not plotters: a thousand agents by 48 slots is 48,000 cells, and plotters writes every cell as a
//! `<rect>` with its own colour, opacity and stroke (about 90 bytes), with no way to group a row, give
//! it a tooltip, or tell an empty cell from a zero. Here the colours are ten classes of the page's CSS
//! (the legend and the cells share them), a row is one `<g>` (its label, a hatched "no data" band, then
//! the cells), neighbouring cells of the same class are one `<rect>`, and the rows are cut into blocks
//! of [`ROWS_PER_BLOCK`], each with its own time axis, so a long map keeps its header in view and
//! prints without a chart cut through a row.
//!
//! Tooltips: one `<title>` per row (the agent, how many intervals have data, the lowest and highest
//! cell and when), not per cell: 48,000 titles would about double the page for a detail the colour
//! scale already gives.

use chrono::{NaiveTime, Timelike};
use intervals_domain::report::{HeatMap, HeatMeasure, HeatRow};
use maud::{html, Markup};

use crate::text;

/// The colour scale, light (low) to dark (high): ColorBrewer YlGnBu stretched to ten classes.
pub(crate) const COLOURS: [&str; 10] =
    ["#ffffd9", "#eff9b5", "#cfecb3", "#97d6b9", "#5dc0c0", "#31a6c2", "#1f80b8", "#2355a4", "#22318d", "#081d58"];

/// Rows per block (each block is one `<svg>` with its own axis).
pub(crate) const ROWS_PER_BLOCK: usize = 50;

const WIDTH: usize = 1040;
/// Right edge of the agent names.
const LABEL_RIGHT: usize = 206;
/// Left edge of the grid.
const GRID_LEFT: usize = 214;
/// Height of the time axis above each block.
const AXIS_HEIGHT: usize = 22;
/// Longest name shown in full beside a row (the row's tooltip has it all).
const MAX_LABEL_CHARS: usize = 30;

/// How values map to the ten colour classes.
enum Scale {
    /// 0..1 in steps of 10 %.
    Occupancy,
    /// Seconds, `step` per class; the last class is open-ended.
    Duration { step: f64 },
}

impl Scale {
    fn for_map(map: &HeatMap) -> Scale {
        match map.measure {
            HeatMeasure::Occupancy => Scale::Occupancy,
            HeatMeasure::AverageHandleMs => {
                let mut seconds: Vec<f64> = values(map).map(|v| v / 1000.0).collect();
                seconds.sort_by(f64::total_cmp);
                // The 95th percentile sets the top so one long call does not wash the map out.
                let p95 = seconds.get(((seconds.len().saturating_sub(1)) as f64 * 0.95).round() as usize).copied();
                Scale::Duration { step: duration_step(p95.unwrap_or(0.0) / 10.0) }
            }
        }
    }

    fn class(&self, value: f64) -> usize {
        let class = match self {
            Scale::Occupancy => (value * 10.0).floor(),
            Scale::Duration { step } => (value / 1000.0 / step).floor(),
        };
        class.clamp(0.0, 9.0) as usize
    }

    fn legend(&self) -> Vec<String> {
        (0..10)
            .map(|k| match self {
                Scale::Occupancy => format!("{}\u{2013}{}%", k * 10, (k + 1) * 10),
                Scale::Duration { step } if k == 9 => format!("\u{2265} {}", text::clock_seconds(9.0 * step)),
                Scale::Duration { step } => format!(
                    "{}\u{2013}{}",
                    text::clock_seconds(k as f64 * step),
                    text::clock_seconds((k + 1) as f64 * step)
                ),
            })
            .collect()
    }

    fn show(&self, value: f64) -> String {
        match self {
            Scale::Occupancy => text::percent(Some(value)),
            Scale::Duration { .. } => text::duration_ms(Some(value)),
        }
    }
}

/// A class width of whole seconds that reads well as m:ss.
fn duration_step(at_least: f64) -> f64 {
    const STEPS: &[f64] = &[5.0, 10.0, 15.0, 20.0, 30.0, 60.0, 90.0, 120.0, 180.0, 300.0, 600.0, 900.0, 1800.0, 3600.0];
    STEPS.iter().copied().find(|s| *s >= at_least).unwrap_or(3600.0)
}

/// Every finite cell value.
fn values(map: &HeatMap) -> impl Iterator<Item = f64> + '_ {
    map.rows.iter().flat_map(|r| r.cells.iter().flatten().copied()).filter(|v| v.is_finite())
}

/// The legend and the blocks of the map; `None` when there is nothing to draw.
pub(crate) fn render(map: &HeatMap) -> Option<Markup> {
    if map.rows.is_empty() || map.slots.is_empty() {
        return None;
    }
    let scale = Scale::for_map(map);
    let geometry = Geometry::new(map);
    let legend = scale.legend();
    Some(html! {
        ul.legend.heat-legend {
            @for (k, label) in legend.iter().enumerate() {
                li { span class={ "sw q" (k) } {} (label) }
            }
            li { span.sw.nodata {} "no data" }
        }
        @for (block, rows) in map.rows.chunks(ROWS_PER_BLOCK).enumerate() {
            (geometry.block(block, rows, &map.slots, &scale))
        }
    })
}

struct Geometry {
    cell: usize,
    row: usize,
    grid_width: usize,
    /// The slots that get a label on the time axis.
    labelled: Vec<usize>,
}

impl Geometry {
    fn new(map: &HeatMap) -> Geometry {
        let slots = map.slots.len();
        let cell = ((WIDTH - GRID_LEFT - 8) / slots).clamp(3, 40);
        let row = if map.rows.len() <= 40 { 18 } else { 13 };
        let hour_slots = |every: u32| -> Vec<usize> {
            (0..slots).filter(|&j| map.slots[j].minute() == 0 && map.slots[j].hour().is_multiple_of(every)).collect()
        };
        let labelled = [1, 2, 3, 4, 6, 12]
            .into_iter()
            .map(hour_slots)
            .find(|l| l.windows(2).all(|w| (w[1] - w[0]) * cell >= 40))
            .filter(|l| !l.is_empty())
            .unwrap_or_else(|| vec![0]);
        Geometry { cell, row, grid_width: cell * slots, labelled }
    }

    fn block(&self, block: usize, rows: &[HeatRow], slots: &[NaiveTime], scale: &Scale) -> Markup {
        let width = (GRID_LEFT + self.grid_width + 24).max(WIDTH);
        let height = AXIS_HEIGHT + rows.len() * self.row + 2;
        let pattern = format!("nodata-{block}");
        let hatch = format!("url(#{pattern})");
        let first = block * ROWS_PER_BLOCK + 1;
        html! {
            div.heat-block {
                svg.heat viewBox={ "0 0 " (width) " " (height) } role="img"
                    aria-label={ "Heat map, agents " (first) " to " (first + rows.len() - 1) } {
                    defs {
                        pattern id=(pattern) width="6" height="6" patternUnits="userSpaceOnUse"
                            patternTransform="rotate(45)" {
                            rect width="6" height="6" fill="#f9fafb" {}
                            line x1="0" y1="0" x2="0" y2="6" stroke="#d1d5db" stroke-width="2" {}
                        }
                    }
                    g.axis {
                        @for &j in &self.labelled {
                            @let x = GRID_LEFT + j * self.cell;
                            line x1=(x) x2=(x) y1=(AXIS_HEIGHT - 5) y2=(AXIS_HEIGHT) {}
                            text x=(x) y=(AXIS_HEIGHT - 8) { (slots[j].format("%H:%M")) }
                        }
                        line x1=(GRID_LEFT) x2=(GRID_LEFT + self.grid_width) y1=(AXIS_HEIGHT) y2=(AXIS_HEIGHT) {}
                    }
                    @for (i, row) in rows.iter().enumerate() {
                        g transform={ "translate(0," (AXIS_HEIGHT + 1 + i * self.row) ")" } {
                            title { (row_title(row, slots, scale)) }
                            text.name x=(LABEL_RIGHT) y=(self.row - 4) { (short(agent_label(row))) }
                            rect x=(GRID_LEFT) width=(self.grid_width) height=(self.row - 1) fill=(hatch) {}
                            @for (from, to, class) in runs(&row.cells, scale) {
                                rect x=(GRID_LEFT + from * self.cell) width=((to - from) * self.cell)
                                    height=(self.row - 1) class={ "q" (class) } {}
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The cells of a row as runs of one colour class: (first slot, end slot, class), empty cells skipped.
fn runs(cells: &[Option<f64>], scale: &Scale) -> Vec<(usize, usize, usize)> {
    let mut out: Vec<(usize, usize, usize)> = Vec::new();
    for (j, cell) in cells.iter().enumerate() {
        let Some(class) = text::finite(*cell).map(|v| scale.class(v)) else { continue };
        match out.last_mut() {
            Some(last) if last.1 == j && last.2 == class => last.1 = j + 1,
            _ => out.push((j, j + 1, class)),
        }
    }
    out
}

fn agent_label(row: &HeatRow) -> &str {
    row.name.as_deref().filter(|n| !n.trim().is_empty()).unwrap_or(&row.user_id)
}

fn short(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_owned()
    } else {
        let mut cut: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        cut.push('\u{2026}');
        cut
    }
}

/// The row's tooltip: who, how much data, the lowest and highest cell and when.
fn row_title(row: &HeatRow, slots: &[NaiveTime], scale: &Scale) -> String {
    let present: Vec<(usize, f64)> =
        row.cells.iter().enumerate().filter_map(|(j, c)| text::finite(*c).map(|v| (j, v))).collect();
    let who = match row.name.as_deref().filter(|n| !n.trim().is_empty()) {
        Some(name) => format!("{name} ({})", row.user_id),
        None => row.user_id.clone(),
    };
    // First of equals wins, so the text does not depend on anything but the cells.
    let low = present.iter().copied().reduce(|a, b| if b.1 < a.1 { b } else { a });
    let high = present.iter().copied().reduce(|a, b| if b.1 > a.1 { b } else { a });
    match (low, high) {
        (Some((lj, lv)), Some((hj, hv))) => format!(
            "{who}: data in {} of {} intervals; lowest {} at {}, highest {} at {}",
            present.len(),
            slots.len(),
            scale.show(lv),
            slots[lj].format("%H:%M"),
            scale.show(hv),
            slots[hj].format("%H:%M"),
        ),
        _ => format!("{who}: no data"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_and_runs() {
        let s = Scale::Occupancy;
        assert_eq!(s.class(0.0), 0);
        assert_eq!(s.class(0.999), 9);
        assert_eq!(s.class(1.0), 9);
        assert_eq!(s.class(-3.0), 0);
        let cells = [Some(0.11), Some(0.19), None, Some(0.5), Some(f64::NAN), Some(0.0)];
        assert_eq!(runs(&cells, &s), vec![(0, 2, 1), (3, 4, 5), (5, 6, 0)]);
        let d = Scale::Duration { step: 30.0 };
        assert_eq!(d.legend()[0], "0:00–0:30");
        assert_eq!(d.legend()[9], "≥ 4:30");
        assert_eq!(d.class(45_000.0), 1);
    }
}
