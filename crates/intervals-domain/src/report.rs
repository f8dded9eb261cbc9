//! What a report shows, as plain values: computed from the stored intervals by the report use case,
//! drawn by a renderer. No IO, no formatting for a medium.

use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use crate::granularity::Granularity;
use crate::window::TimeWindow;

/// Everything one report shows, for one org, granularity and range.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// The org label the rows are stored under.
    pub org: String,
    /// The range shown (whole buckets).
    pub range: TimeWindow,
    /// The bucket size of the rows shown.
    pub granularity: Granularity,
    /// The zone times are shown in.
    pub time_zone: Tz,
    /// Where the rows were read (`sqlite:genesys-intervals.db`; never a password).
    pub source: String,
    /// 1. What is stored per query, and what is not.
    pub coverage: Vec<CoverageLine>,
    /// 2. Volume and handle time per bucket and media type, in time order.
    pub volume: Vec<VolumeBucket>,
    /// 3. Agents by interval of the day.
    pub heat_map: HeatMap,
    /// 4. One line per agent, by handled count (most first), then user id.
    pub agents: Vec<AgentLine>,
}

/// The stored windows of one query (checkpoints) within the range.
#[derive(Debug, Clone, PartialEq)]
pub struct CoverageLine {
    /// The query's fingerprint.
    pub fingerprint: String,
    /// What the query reads, for people (`conversation: tHandle, tAcw by userId, mediaType`), when the
    /// store knows it.
    pub description: Option<String>,
    /// Checkpointed windows inside the range.
    pub windows: usize,
    /// Parts of the range no checkpoint covers, in time order.
    pub gaps: Vec<TimeWindow>,
    /// When the newest of those windows was read from the API.
    pub last_fetched: Option<DateTime<Utc>>,
}

/// Handled interactions of one media type in one bucket (`tHandle` count and sum).
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeBucket {
    /// The bucket's start.
    pub start: DateTime<Utc>,
    /// `voice`, `chat`, ...; `""` when the rows were not grouped by media type.
    pub media_type: String,
    /// Handled interactions (`tHandle` count).
    pub handled: u64,
    /// Total handle time, ms (`tHandle` sum).
    pub handle_ms: f64,
}

impl VolumeBucket {
    /// Average handle time, ms; `None` when nothing was handled.
    pub fn aht_ms(&self) -> Option<f64> {
        ratio(self.handle_ms, self.handled as f64)
    }
}

/// What the heat map's cells hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeatMeasure {
    /// Occupancy (0..1), where status time is stored.
    Occupancy,
    /// Average handle time, ms, where no status time is stored.
    AverageHandleMs,
}

/// Agents (rows) by interval of the local day (columns), averaged over the days of the range.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatMap {
    /// What the cells hold.
    pub measure: HeatMeasure,
    /// The local start of each column's interval, in order (`09:00`, `09:30`, ...).
    pub slots: Vec<NaiveTime>,
    /// One row per agent, in the order of [`Report::agents`].
    pub rows: Vec<HeatRow>,
}

/// One agent's cells: one per slot, `None` where there is no data.
#[derive(Debug, Clone, PartialEq)]
pub struct HeatRow {
    /// The agent.
    pub user_id: String,
    /// The agent's name, where the `users` table has it.
    pub name: Option<String>,
    /// One value per [`HeatMap::slots`] entry.
    pub cells: Vec<Option<f64>>,
}

/// One agent's totals over the range.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentLine {
    /// The agent.
    pub user_id: String,
    /// The agent's name, where the `users` table has it.
    pub name: Option<String>,
    /// Handled interactions (`tHandle` count).
    pub handled: u64,
    /// Handle time, ms.
    pub handle_ms: f64,
    /// After-call work, ms.
    pub acw_ms: f64,
    /// Hold time, ms (`tHeldComplete`, else `tHeld`).
    pub hold_ms: f64,
    /// Time in system presence ON_QUEUE, ms; `None` when no status time is stored.
    pub on_queue_ms: Option<f64>,
    /// Routing status INTERACTING, ms; `None` when no status time is stored.
    pub interacting_ms: Option<f64>,
    /// Routing status INTERACTING + COMMUNICATING + IDLE, ms (occupancy's denominator).
    pub occupancy_base_ms: Option<f64>,
}

impl AgentLine {
    /// Average handle time, ms.
    pub fn aht_ms(&self) -> Option<f64> {
        ratio(self.handle_ms, self.handled as f64)
    }

    /// After-call work as a share of handle time (0..1).
    pub fn acw_share(&self) -> Option<f64> {
        ratio(self.acw_ms, self.handle_ms)
    }

    /// Hold as a share of handle time (0..1).
    pub fn hold_share(&self) -> Option<f64> {
        ratio(self.hold_ms, self.handle_ms)
    }

    /// Hours on queue.
    pub fn on_queue_hours(&self) -> Option<f64> {
        self.on_queue_ms.map(|ms| ms / 3_600_000.0)
    }

    /// INTERACTING / (INTERACTING + COMMUNICATING + IDLE) over the range.
    pub fn occupancy(&self) -> Option<f64> {
        ratio(self.interacting_ms?, self.occupancy_base_ms?)
    }
}

/// The median of each column of `lines` (each over the agents that have a value), as a line for
/// comparison; `None` for no lines. Derived columns (AHT, shares, occupancy) are the medians of the
/// agents' own values, not ratios of medians: [`MedianLine`].
pub fn median_line(lines: &[AgentLine]) -> Option<MedianLine> {
    if lines.is_empty() {
        return None;
    }
    Some(MedianLine {
        handled: median(lines.iter().map(|l| Some(l.handled as f64))),
        aht_ms: median(lines.iter().map(AgentLine::aht_ms)),
        acw_share: median(lines.iter().map(AgentLine::acw_share)),
        hold_share: median(lines.iter().map(AgentLine::hold_share)),
        on_queue_hours: median(lines.iter().map(AgentLine::on_queue_hours)),
        occupancy: median(lines.iter().map(AgentLine::occupancy)),
    })
}

/// The org's median agent: each column the median of the agents' values.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MedianLine {
    /// Handled interactions.
    pub handled: Option<f64>,
    /// Average handle time, ms.
    pub aht_ms: Option<f64>,
    /// After-call work share.
    pub acw_share: Option<f64>,
    /// Hold share.
    pub hold_share: Option<f64>,
    /// Hours on queue.
    pub on_queue_hours: Option<f64>,
    /// Occupancy.
    pub occupancy: Option<f64>,
}

/// The median of the present values (the mean of the middle two for an even count).
pub fn median(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    let mut v: Vec<f64> = values.flatten().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    Some(if v.len() % 2 == 1 { v[mid] } else { (v[mid - 1] + v[mid]) / 2.0 })
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    (denominator > 0.0).then(|| numerator / denominator)
}
