//! The report use case: pick what to show from what is stored, read it aggregated through
//! [`IntervalsReader`], and shape it into a [`Report`] (times of day in the display zone, agents'
//! totals added up from their slots and sorted, gaps found). Drawing it is a renderer's job.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Duration, NaiveTime, Offset, TimeZone, Utc};
use intervals_domain::report::{AgentLine, CoverageLine, HeatMap, HeatMeasure, HeatRow, Report};
use intervals_domain::{rfc3339, Granularity, TimeSpec, TimeWindow, Tz};

use crate::ingest::uncovered;
use crate::ports::{AgentSlot, IntervalsReader, SinkError, StoredSeries};

/// What to report on; `None` picks from what is stored.
#[derive(Debug, Clone)]
pub struct ReportRequest {
    /// The org label; the only one stored when `None`.
    pub org: Option<String>,
    /// Inclusive start; local midnight before the first stored bucket when `None`.
    pub from: Option<TimeSpec>,
    /// Exclusive end; local midnight after the last stored bucket when `None`.
    pub to: Option<TimeSpec>,
    /// The bucket size; PT30M, or the only one stored, when `None`.
    pub granularity: Option<Granularity>,
    /// The zone dates are read in and times are shown in.
    pub time_zone: Tz,
}

/// Why no report was made. Every message says what is stored instead.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The store holds no intervals at all.
    #[error("{source_name} holds no intervals yet: run `genesys-intervals extract` (or the daemon) into it first")]
    NothingStored { source_name: String },
    /// The choice (org, granularity or range) matches nothing stored.
    #[error("{message}; stored in {source_name}:\n{stored}")]
    NotStored { message: String, source_name: String, stored: String },
    /// The range is empty or inverted.
    #[error("--from ({from}) must be before --to ({to})")]
    EmptyRange { from: String, to: String },
    /// Reading failed.
    #[error(transparent)]
    Store(#[from] SinkError),
}

/// Builds the report of `request` from `reader`; `source_name` says where it read (no password).
pub async fn build_report(
    reader: &dyn IntervalsReader,
    source_name: &str,
    request: &ReportRequest,
) -> Result<Report, ReportError> {
    let inventory = reader.inventory().await?;
    if inventory.is_empty() {
        return Err(ReportError::NothingStored { source_name: source_name.to_owned() });
    }
    let series = choose(&inventory, source_name, request)?;
    let tz = request.time_zone;
    // What is stored, widened to whole local days: the first and last buckets with data rarely start
    // and end the days that were extracted.
    let from = request.from.map_or(Granularity::P1d.floor(series.span.start(), tz), |f| f.resolve(tz));
    let to = request.to.map_or(Granularity::P1d.ceil(series.span.end(), tz), |t| t.resolve(tz));
    let range =
        TimeWindow::new(from, to).map_err(|_| ReportError::EmptyRange { from: rfc3339(from), to: rfc3339(to) })?;
    if range.end() <= series.span.start() || range.start() >= series.span.end() {
        return Err(not_stored(
            format!(
                "org {:?} has no {} intervals between {} and {}",
                series.org,
                series.granularity,
                rfc3339(range.start()),
                rfc3339(range.end())
            ),
            source_name,
            &inventory,
        ));
    }
    let (org, granularity) = (series.org.as_str(), series.granularity);

    let coverage = coverage(reader, org, granularity, range).await?;
    let volume = {
        let mut v = reader.volume(org, granularity, range).await?;
        v.sort_by(|a, b| a.start.cmp(&b.start).then_with(|| a.media_type.cmp(&b.media_type)));
        v
    };
    // The slots of every part, with the part's UTC offset: the heat map and the agents' totals.
    let mut slots = Vec::new();
    for (part, offset_minutes) in offset_parts(range, tz) {
        slots.extend(reader.agent_slots(org, granularity, part).await?.into_iter().map(|s| (s, offset_minutes)));
    }
    let names = reader.user_names(org).await?;
    let mut agents = agent_lines(slots.iter().map(|(s, _)| s), &names);
    agents.sort_by(|a, b| b.handled.cmp(&a.handled).then_with(|| a.user_id.cmp(&b.user_id)));
    let heat_map = heat_map(&slots, granularity, &agents);
    Ok(Report {
        org: org.to_owned(),
        range,
        granularity,
        time_zone: tz,
        source: source_name.to_owned(),
        coverage,
        volume,
        heat_map,
        agents,
    })
}

/// The org and granularity to show.
fn choose<'a>(
    inventory: &'a [StoredSeries],
    source_name: &str,
    request: &ReportRequest,
) -> Result<&'a StoredSeries, ReportError> {
    let orgs: BTreeSet<&str> = inventory.iter().map(|s| s.org.as_str()).collect();
    let org = match &request.org {
        Some(org) if orgs.contains(org.as_str()) => org.as_str(),
        Some(org) => {
            return Err(not_stored(
                format!("org {org:?} is not stored (pass --org with one of the labels below)"),
                source_name,
                inventory,
            ))
        }
        None if orgs.len() == 1 => orgs.first().copied().unwrap_or_default(),
        None => return Err(not_stored("several orgs are stored: pass --org".to_owned(), source_name, inventory)),
    };
    let of_org: Vec<&StoredSeries> = inventory.iter().filter(|s| s.org == org).collect();
    let pick = match request.granularity {
        Some(g) => of_org.iter().find(|s| s.granularity == g),
        None if of_org.len() == 1 => of_org.first(),
        None => of_org.iter().find(|s| s.granularity == Granularity::Pt30m),
    };
    match (pick, request.granularity) {
        (Some(series), _) => Ok(series),
        (None, Some(g)) => Err(not_stored(format!("org {org:?} has no {g} intervals"), source_name, inventory)),
        (None, None) => Err(not_stored(
            format!("org {org:?} is stored at several granularities: pass --granularity"),
            source_name,
            inventory,
        )),
    }
}

fn not_stored(message: String, source_name: &str, inventory: &[StoredSeries]) -> ReportError {
    let stored = inventory
        .iter()
        .map(|s| {
            format!(
                "  org {:?}, {}: {} .. {} ({} rows)",
                s.org,
                s.granularity,
                rfc3339(s.span.start()),
                rfc3339(s.span.end()),
                s.grains
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    ReportError::NotStored { message, source_name: source_name.to_owned(), stored }
}

/// One line per query checkpointed in the range (of this granularity, or of an unknown one).
async fn coverage(
    reader: &dyn IntervalsReader,
    org: &str,
    granularity: Granularity,
    range: TimeWindow,
) -> Result<Vec<CoverageLine>, ReportError> {
    let windows = reader.coverage(org, range).await?;
    let mut by_query: BTreeMap<String, Vec<_>> = BTreeMap::new();
    for w in windows.into_iter().filter(|w| w.granularity.is_none_or(|g| g == granularity)) {
        by_query.entry(w.fingerprint.clone()).or_default().push(w);
    }
    Ok(by_query
        .into_iter()
        .map(|(fingerprint, windows)| {
            let done: Vec<TimeWindow> = windows.iter().map(|w| w.window).collect();
            CoverageLine {
                description: windows.iter().find_map(|w| w.description.clone()),
                windows: windows.len(),
                gaps: uncovered(range, &done),
                last_fetched: windows.iter().map(|w| w.fetched_at).max(),
                fingerprint,
            }
        })
        .collect())
}

/// One line per agent with any slot: the agent's slots added up, named from `names`. The status
/// columns are `None` for an agent none of whose slots holds status time.
fn agent_lines<'a>(slots: impl Iterator<Item = &'a AgentSlot>, names: &HashMap<String, String>) -> Vec<AgentLine> {
    let mut lines: BTreeMap<&str, (AgentLine, bool)> = BTreeMap::new();
    for s in slots {
        let (line, has_status) = lines.entry(s.user_id.as_str()).or_default();
        line.handled += s.handled;
        line.handle_ms += s.handle_ms;
        line.acw_ms += s.acw_ms;
        line.hold_ms += s.hold_ms;
        *line.on_queue_ms.get_or_insert(0.0) += s.on_queue_ms;
        *line.interacting_ms.get_or_insert(0.0) += s.interacting_ms;
        *line.occupancy_base_ms.get_or_insert(0.0) += s.occupancy_base_ms;
        *has_status |= s.has_status;
    }
    lines
        .into_iter()
        .map(|(user_id, (line, has_status))| {
            let status = |v: Option<f64>| v.filter(|_| has_status);
            AgentLine {
                user_id: user_id.to_owned(),
                name: names.get(user_id).cloned(),
                on_queue_ms: status(line.on_queue_ms),
                interacting_ms: status(line.interacting_ms),
                occupancy_base_ms: status(line.occupancy_base_ms),
                ..line
            }
        })
        .collect()
}

/// Agents by local time of day: each part's slots (read by UTC time of day, with the part's UTC
/// offset in minutes) moved to local time, and the sums of the parts added up.
fn heat_map(slots: &[(AgentSlot, i64)], granularity: Granularity, agents: &[AgentLine]) -> HeatMap {
    #[derive(Default, Clone, Copy)]
    struct Sums {
        handled: u64,
        handle_ms: f64,
        interacting_ms: f64,
        base_ms: f64,
        shown: bool,
    }
    let mut cells: HashMap<(String, u32), Sums> = HashMap::new();
    for (slot, offset_minutes) in slots {
        let local = (i64::from(slot.utc_minute) + offset_minutes).rem_euclid(1440) as u32;
        let sums = cells.entry((slot.user_id.clone(), local)).or_default();
        sums.handled += slot.handled;
        sums.handle_ms += slot.handle_ms;
        sums.interacting_ms += slot.interacting_ms;
        sums.base_ms += slot.occupancy_base_ms;
        // A time of day is shown for handled interactions or status time, not for grains holding
        // neither (after-call work alone, say).
        sums.shown |= slot.handled > 0 || slot.has_status;
    }
    let measure =
        if cells.values().any(|s| s.base_ms > 0.0) { HeatMeasure::Occupancy } else { HeatMeasure::AverageHandleMs };
    let minutes: BTreeSet<u32> = cells.iter().filter(|(_, s)| s.shown).map(|((_, m), _)| *m).collect();
    let slots: Vec<u32> = match (minutes.first(), minutes.last(), granularity.fixed_minutes()) {
        // Every slot between the first and last with data, so gaps show as gaps.
        (Some(first), Some(last), Some(step)) if step > 0 => (*first..=*last).step_by(step as usize).collect(),
        _ => minutes.into_iter().collect(),
    };
    let rows = agents
        .iter()
        .map(|agent| HeatRow {
            user_id: agent.user_id.clone(),
            name: agent.name.clone(),
            cells: slots
                .iter()
                .map(|m| {
                    let s = cells.get(&(agent.user_id.clone(), *m))?;
                    match measure {
                        HeatMeasure::Occupancy => (s.base_ms > 0.0).then(|| s.interacting_ms / s.base_ms),
                        HeatMeasure::AverageHandleMs => (s.handled > 0).then(|| s.handle_ms / s.handled as f64),
                    }
                })
                .collect(),
        })
        .collect();
    let slots = slots.into_iter().filter_map(|m| NaiveTime::from_num_seconds_from_midnight_opt(m * 60, 0)).collect();
    HeatMap { measure, slots, rows }
}

/// `range` cut where `tz`'s UTC offset changes, each part with its offset in minutes.
fn offset_parts(range: TimeWindow, tz: Tz) -> Vec<(TimeWindow, i64)> {
    let offset = |t: DateTime<Utc>| i64::from(tz.offset_from_utc_datetime(&t.naive_utc()).fix().local_minus_utc()) / 60;
    let mut parts = Vec::new();
    let (mut start, mut current) = (range.start(), offset(range.start()));
    // Offsets change at most a few times a year and never twice within an hour.
    let mut t = range.start();
    while t < range.end() {
        let next = (t + Duration::hours(1)).min(range.end());
        if next < range.end() && offset(next) != current {
            // Find the first minute with the new offset.
            let (mut lo, mut hi) = (t, next);
            while hi - lo > Duration::minutes(1) {
                let mid = lo + (hi - lo) / 2;
                if offset(mid) == current {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            parts.extend(TimeWindow::new(start, hi).ok().map(|w| (w, current)));
            start = hi;
            current = offset(hi);
        }
        t = next;
    }
    parts.extend(TimeWindow::new(start, range.end()).ok().map(|w| (w, current)));
    parts
}

#[cfg(test)]
mod tests;
