//! What the database readers share: the schema check of a store opened for reading (a reader never
//! migrates: `report` works with a read-only role or file), and a row of their one per-slot
//! statement read as an [`AgentSlot`] (conversation sums and status sums of one agent at one UTC
//! time of day).

use intervals_app::{AgentSlot, SinkError};
use sqlx::migrate::Migrator;
use sqlx::{ColumnIndex, Decode, Row, Type};

/// Checks that a store whose last applied migration is `applied` has the schema `migrator` ends
/// with: a reader reads that schema and changes nothing, so an older store is refused with the
/// command that upgrades it, and a newer one with the advice to upgrade the tool.
pub(crate) fn check_schema_version(describe: &str, applied: i64, migrator: &Migrator) -> Result<(), SinkError> {
    let latest = migrator.iter().map(|m| m.version).max().unwrap_or_default();
    if applied < latest {
        return Err(SinkError::schema(
            describe,
            format!(
                "the store's schema is at migration {applied}, this version of genesys-intervals reads {latest}; \
                 reading never changes a store: run `genesys-intervals extract` (or the daemon) on it once, with \
                 a role or file it may write, and it upgrades the store first"
            ),
        ));
    }
    if applied > latest {
        return Err(SinkError::schema(
            describe,
            format!(
                "the store's schema is at migration {applied}, newer than this version of genesys-intervals knows \
                 ({latest}): use the newer genesys-intervals that wrote it"
            ),
        ));
    }
    Ok(())
}

/// A number column of a row of either database, 0 when NULL.
fn number<R, T>(row: &R, column: &str) -> T
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> Option<T>: Decode<'r, R::Database> + Type<R::Database>,
    T: Default,
{
    row.try_get::<Option<T>, _>(column).ok().flatten().unwrap_or_default()
}

/// The slot of a row with the columns `user_id`, `hhmm` (UTC `HH:MM`), `handled`, `handle_ms`,
/// `acw_ms`, `hold_ms`, `has_status` (0 or 1), `on_queue_ms`, `interacting_ms` and `base_ms`.
pub(crate) fn slot_of<R>(row: &R) -> AgentSlot
where
    R: Row,
    for<'a> &'a str: ColumnIndex<R>,
    for<'r> String: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<i64>: Decode<'r, R::Database> + Type<R::Database>,
    for<'r> Option<f64>: Decode<'r, R::Database> + Type<R::Database>,
{
    AgentSlot {
        user_id: row.get("user_id"),
        utc_minute: minute_of(&row.get::<String, _>("hhmm")),
        handled: number::<R, i64>(row, "handled").max(0) as u64,
        handle_ms: number(row, "handle_ms"),
        acw_ms: number(row, "acw_ms"),
        hold_ms: number(row, "hold_ms"),
        has_status: number::<R, i64>(row, "has_status") > 0,
        on_queue_ms: number(row, "on_queue_ms"),
        interacting_ms: number(row, "interacting_ms"),
        occupancy_base_ms: number(row, "base_ms"),
    }
}

/// `"09:30"` as minutes after midnight (0 for anything else: the stores always write `HH:MM`).
pub(crate) fn minute_of(hhmm: &str) -> u32 {
    let mut parts = hhmm.split(':').map(|p| p.parse::<u32>().ok());
    match (parts.next().flatten(), parts.next().flatten()) {
        (Some(h), Some(m)) if h < 24 && m < 60 => h * 60 + m,
        _ => 0,
    }
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
}
