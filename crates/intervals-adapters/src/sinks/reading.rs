//! What the database readers share: the sums each query returns, merged into the report's lines
//! (conversation sums from `agent_intervals`, status sums from `agent_utilization`).

use std::collections::{BTreeMap, HashMap};

use intervals_app::AgentSlot;
use intervals_domain::report::AgentLine;

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
