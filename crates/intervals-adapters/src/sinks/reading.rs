//! What the database readers share: the sums each query returns, merged into the report's lines
//! (conversation sums from `agent_intervals`, status sums from `agent_utilization`).

use std::collections::{BTreeMap, HashMap};

use intervals_app::AgentSlot;
use intervals_domain::report::AgentLine;
use sqlx::{ColumnIndex, Decode, Row, Type};

/// Conversation sums of one agent (and time of day).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ConversationTotals {
    pub(crate) handled: u64,
    pub(crate) handle_ms: f64,
    pub(crate) acw_ms: f64,
    pub(crate) hold_ms: f64,
}

/// Status sums of one agent (and time of day).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct StatusTotals {
    pub(crate) on_queue_ms: f64,
    pub(crate) interacting_ms: f64,
    /// INTERACTING + COMMUNICATING + IDLE.
    pub(crate) base_ms: f64,
}

/// A number column of a row of either database, 0 when NULL or when the query has no such column.
fn number<R, T>(row: &R, column: &str) -> T
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> Option<T>: Decode<'r, R::Database> + Type<R::Database>,
    T: Default,
{
    row.try_get::<Option<T>, _>(column).ok().flatten().unwrap_or_default()
}

/// The conversation sums of a row with the columns `handled`, `handle_ms` and, where the query has
/// them, `acw_ms`, `hold_ms`.
pub(crate) fn conversation_of<R>(row: &R) -> ConversationTotals
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
{
    ConversationTotals {
        handled: number::<R, i64>(row, "handled").max(0) as u64,
        handle_ms: number(row, "handle_ms"),
        acw_ms: number(row, "acw_ms"),
        hold_ms: number(row, "hold_ms"),
    }
}

/// The status sums of a row with the columns `interacting_ms`, `base_ms` and, where the query has
/// it, `on_queue_ms`.
pub(crate) fn status_of<R>(row: &R) -> StatusTotals
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
{
    StatusTotals {
        on_queue_ms: number(row, "on_queue_ms"),
        interacting_ms: number(row, "interacting_ms"),
        base_ms: number(row, "base_ms"),
    }
}

/// The agent of a row (`user_id`), and with `hhmm` its time of day in minutes.
pub(crate) fn agent_of<R>(row: &R) -> String
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    row.get("user_id")
}

/// The key of a per-slot row: its agent and the minute of `hhmm`.
pub(crate) fn slot_of<R>(row: &R) -> (String, u32)
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
{
    (agent_of(row), minute_of(&row.get::<String, _>("hhmm")))
}

/// `"09:30"` as minutes after midnight (0 for anything else: the stores always write `HH:MM`).
pub(crate) fn minute_of(hhmm: &str) -> u32 {
    let mut parts = hhmm.split(':').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(h), Some(m)) if h < 24 && m < 60 => h * 60 + m,
        _ => 0,
    }
}

/// One slot per (agent, minute) present in either list, ordered by agent and minute.
pub(crate) fn merge_slots(
    conversation: impl Iterator<Item = ((String, u32), ConversationTotals)>,
    status: impl Iterator<Item = ((String, u32), StatusTotals)>,
) -> Vec<AgentSlot> {
    let mut slots: BTreeMap<(String, u32), (ConversationTotals, StatusTotals)> = BTreeMap::new();
    for (key, c) in conversation {
        slots.entry(key).or_default().0 = c;
    }
    for (key, s) in status {
        slots.entry(key).or_default().1 = s;
    }
    slots
        .into_iter()
        .map(|((user_id, utc_minute), (c, s))| AgentSlot {
            user_id,
            utc_minute,
            handled: c.handled,
            handle_ms: c.handle_ms,
            interacting_ms: s.interacting_ms,
            occupancy_base_ms: s.base_ms,
        })
        .collect()
}

/// One line per agent present in either list, with its name where `names` has it, ordered by
/// agent. Status columns are `None` for an agent without status time.
pub(crate) fn merge_agents(
    conversation: impl Iterator<Item = (String, ConversationTotals)>,
    status: impl Iterator<Item = (String, StatusTotals)>,
    names: &HashMap<String, String>,
) -> Vec<AgentLine> {
    let mut agents: BTreeMap<String, (ConversationTotals, Option<StatusTotals>)> = BTreeMap::new();
    for (user, c) in conversation {
        agents.entry(user).or_default().0 = c;
    }
    for (user, s) in status {
        agents.entry(user).or_default().1 = Some(s);
    }
    agents
        .into_iter()
        .map(|(user_id, (c, s))| AgentLine {
            name: names.get(&user_id).cloned(),
            user_id,
            handled: c.handled,
            handle_ms: c.handle_ms,
            acw_ms: c.acw_ms,
            hold_ms: c.hold_ms,
            on_queue_ms: s.map(|s| s.on_queue_ms),
            interacting_ms: s.map(|s| s.interacting_ms),
            occupancy_base_ms: s.map(|s| s.base_ms),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_of_day_read_as_minutes() {
        for (text, want) in [("00:00", 0), ("09:30", 570), ("23:45", 1425), ("24:00", 0), ("x", 0)] {
            assert_eq!(minute_of(text), want, "{text}");
        }
    }

    #[test]
    fn agents_without_status_time_have_no_status_columns() {
        let names = HashMap::from([("a".to_owned(), "Ann".to_owned())]);
        let conversation = [("a".to_owned(), ConversationTotals { handled: 2, handle_ms: 10.0, ..Default::default() })];
        let status = [("b".to_owned(), StatusTotals { on_queue_ms: 5.0, interacting_ms: 1.0, base_ms: 2.0 })];
        let lines = merge_agents(conversation.into_iter(), status.into_iter(), &names);
        assert_eq!(lines.len(), 2);
        assert_eq!((lines[0].name.as_deref(), lines[0].handled, lines[0].on_queue_ms), (Some("Ann"), 2, None));
        assert_eq!((lines[1].name.as_deref(), lines[1].handled, lines[1].occupancy()), (None, 0, Some(0.5)));
    }
}
