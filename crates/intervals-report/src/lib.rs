//! Draws a [`Report`] (per-agent, per-interval contact-centre figures) as one self-contained HTML page:
//! inline CSS and SVG, no script, no font, no URL, so it opens offline, prints, and can be mailed.
//!
//! The page has a header (org, range and granularity in the report's time zone, where the rows were
//! read) and four sections: coverage (what each query has stored, gaps flagged), volume and average
//! handle time per interval (a plotters chart), the agents-by-interval heat map (plain SVG), and the
//! agent table with the org median.
//!
//! Pure: no IO, no clock, no environment. The same report gives the same bytes: no hash-map order, no
//! time of rendering, every number at a fixed precision, and NaN or infinity shown as missing (a dash).
//! Text from the data (org, names, descriptions) is escaped by the template engine (maud).

mod heat;
mod page;
mod text;
mod volume;

use intervals_domain::report::Report;

/// The whole page, `<!DOCTYPE html>` to `</html>`.
pub fn render_html(report: &Report) -> String {
    page::render(report)
}
