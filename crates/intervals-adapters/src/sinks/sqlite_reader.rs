//! Reading a SQLite store back for the report ([`IntervalsReader`]): every answer is aggregated by
//! SQLite over `agent_intervals`, never row by row in Rust. Its stored columns are read (schema v5:
//! Unix seconds, typed columns, and `other_metrics` for a key whose statistics do not fit them), never
//! the generated ones. Every agent's sums, of both families, come
//! from one pass over the range per (agent, UTC time of day); status sums are read from the agents'
//! own grains (where status keys live) directly: the same sums as `agent_utilization`, much faster
//! than going through the view, which joins every grain of the bucket.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use intervals_app::{AgentSlot, IntervalsReader, SinkError, StoredSeries, StoredWindow};
use intervals_domain::report::VolumeBucket;
use intervals_domain::{rfc3339, Granularity, TimeWindow};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{Connection, Row};

use super::reading::{check_schema_version, slot_of};

/// The typed columns of the status keys.
const STATUS_COLUMNS: [&str; 15] = [
    "routing_idle_sum",
    "routing_interacting_sum",
    "routing_communicating_sum",
    "routing_not_responding_sum",
    "routing_off_queue_sum",
    "presence_available_sum",
    "presence_away_sum",
    "presence_busy_sum",
    "presence_offline_sum",
    "presence_idle_sum",
    "presence_on_queue_sum",
    "presence_meal_sum",
    "presence_training_sum",
    "presence_meeting_sum",
    "presence_break_sum",
];

/// A SQLite store opened for reading.
#[derive(Debug, Clone)]
pub(crate) struct SqliteReader {
    pool: SqlitePool,
    describe: String,
}

impl SqliteReader {
    /// Opens the store at `path` for reading, creating and changing nothing (a read-only file or
    /// folder works): a missing file is [`SinkError::Unavailable`]; a database genesys-intervals did
    /// not create, or one whose schema is older or newer than this version's, is
    /// [`SinkError::Schema`] naming what to do.
    pub(crate) async fn open(path: &Path) -> Result<SqliteReader, SinkError> {
        let describe = format!("sqlite:{}", path.display());
        if !path.is_file() {
            return Err(SinkError::unavailable(
                describe,
                format!("there is no database at {}: run `genesys-intervals extract` into it first", path.display()),
            ));
        }
        let unavailable = |e: sqlx::Error| SinkError::unavailable(describe.clone(), e.to_string()).caused_by(e);
        // A store in WAL mode in a folder that cannot be written, whose shared-memory file is gone,
        // opens only as immutable (nobody can write it there anyway).
        let (options, tables) = match tables_of(&read_only_options(path, false)?).await {
            Ok(tables) => (read_only_options(path, false)?, tables),
            Err(first) => match tables_of(&read_only_options(path, true)?).await {
                Ok(tables) => {
                    tracing::debug!(target = %describe, error = %first, "read as immutable");
                    (read_only_options(path, true)?, tables)
                }
                Err(_) => return Err(unavailable(first)),
            },
        };
        let ours = ["_sqlx_migrations", "agent_intervals"].iter().all(|t| tables.iter().any(|n| n == t));
        if !ours {
            let found =
                if tables.is_empty() { "no tables".to_owned() } else { format!("tables {}", tables.join(", ")) };
            return Err(SinkError::schema(
                describe,
                format!("not a genesys-intervals database ({found}); pass the database `extract` wrote (--db)"),
            ));
        }
        let pool = SqlitePoolOptions::new().max_connections(4).connect_with(options).await.map_err(unavailable)?;
        let applied: i64 = sqlx::query_scalar("SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success")
            .fetch_one(&pool)
            .await
            .map_err(unavailable)?;
        check_schema_version(&describe, applied, &super::sqlite::MIGRATOR)?;
        Ok(SqliteReader { pool, describe })
    }

    fn read_error(&self, e: sqlx::Error) -> SinkError {
        SinkError::read(self.describe.clone(), e.to_string()).caused_by(e)
    }
}

/// The options of a read-only connection to `path` (`immutable`: no locking, no WAL index).
fn read_only_options(path: &Path, immutable: bool) -> Result<SqliteConnectOptions, SinkError> {
    let options = SqliteConnectOptions::from_str("sqlite:")
        .map_err(|e| SinkError::unavailable(format!("sqlite:{}", path.display()), e.to_string()))?
        .filename(path)
        .read_only(true)
        .immutable(immutable)
        .busy_timeout(std::time::Duration::from_secs(60));
    Ok(super::statements_at_debug(options))
}

/// The names of the tables of the database `options` open.
async fn tables_of(options: &SqliteConnectOptions) -> Result<Vec<String>, sqlx::Error> {
    let mut conn = sqlx::SqliteConnection::connect_with(options).await?;
    let tables = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .fetch_all(&mut conn)
        .await;
    conn.close().await.ok();
    tables
}

fn unix(seconds: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp(seconds, 0).ok_or_else(|| format!("{seconds}: not a time"))
}

fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| format!("{text:?}: {e}"))
}

#[async_trait]
impl IntervalsReader for SqliteReader {
    async fn inventory(&self) -> Result<Vec<StoredSeries>, SinkError> {
        let rows = sqlx::query(
            "SELECT org, granularity, min(start_s) AS first, \
                    max(coalesce(end_s, start_s + CASE granularity WHEN 'PT15M' THEN 900 WHEN 'PT30M' THEN 1800 \
                                                  WHEN 'PT1H' THEN 3600 ELSE 86400 END)) AS last, \
                    count(*) AS grains \
             FROM agent_intervals GROUP BY org, granularity ORDER BY org, granularity",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.read_error(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let bad = |m: String| SinkError::read(self.describe.clone(), m);
            let granularity: String = row.get("granularity");
            let (first, last): (i64, i64) = (row.get("first"), row.get("last"));
            let span =
                TimeWindow::new(unix(first).map_err(bad)?, unix(last).map_err(bad)?).map_err(|e| bad(e.to_string()))?;
            out.push(StoredSeries {
                org: row.get("org"),
                granularity: Granularity::parse(&granularity).map_err(|e| bad(e.to_string()))?,
                span,
                grains: row.get::<i64, _>("grains") as u64,
            });
        }
        Ok(out)
    }

    async fn coverage(&self, org: &str, range: TimeWindow) -> Result<Vec<StoredWindow>, SinkError> {
        let rows = sqlx::query(
            "SELECT w.fingerprint, w.window_start, w.window_end, w.fetched_at, q.description, q.granularity \
             FROM ingest_windows AS w \
             LEFT JOIN ingest_queries AS q ON q.org = w.org AND q.fingerprint = w.fingerprint \
             WHERE w.org = ?1 AND w.window_end > ?2 AND w.window_start < ?3 \
             ORDER BY w.fingerprint, w.window_start",
        )
        .bind(org)
        .bind(rfc3339(range.start()))
        .bind(rfc3339(range.end()))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.read_error(e))?;
        let bad = |m: String| SinkError::read(self.describe.clone(), m);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let (start, end, fetched): (String, String, String) =
                (row.get("window_start"), row.get("window_end"), row.get("fetched_at"));
            let granularity: Option<String> = row.get("granularity");
            out.push(StoredWindow {
                fingerprint: row.get("fingerprint"),
                description: row.get("description"),
                granularity: granularity.and_then(|g| Granularity::parse(&g).ok()),
                window: TimeWindow::new(instant(&start).map_err(bad)?, instant(&end).map_err(bad)?)
                    .map_err(|e| bad(e.to_string()))?,
                fetched_at: instant(&fetched).map_err(bad)?,
            });
        }
        Ok(out)
    }

    async fn volume(
        &self,
        org: &str,
        granularity: Granularity,
        range: TimeWindow,
    ) -> Result<Vec<VolumeBucket>, SinkError> {
        let rows = sqlx::query(
            "SELECT start_s, media_type, \
                    CAST(sum(coalesce(handle_count, other_metrics ->> '$.tHandle.count')) AS INTEGER) AS handled, \
                    CAST(sum(coalesce(handle_sum, other_metrics ->> '$.tHandle.sum')) AS REAL) AS handle_ms \
             FROM agent_intervals \
             WHERE org = ?1 AND granularity = ?2 AND start_s >= ?3 AND start_s < ?4 \
               AND (coalesce(handle_count, handle_sum, handle_min, handle_max) IS NOT NULL \
                    OR other_metrics ->> '$.tHandle' IS NOT NULL) \
             GROUP BY start_s, media_type",
        )
        .bind(org)
        .bind(granularity.as_iso())
        .bind(range.start().timestamp())
        .bind(range.end().timestamp())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.read_error(e))?;
        let bad = |m: String| SinkError::read(self.describe.clone(), m);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(VolumeBucket {
                start: unix(row.get("start_s")).map_err(bad)?,
                media_type: row.get("media_type"),
                handled: row.get::<Option<i64>, _>("handled").unwrap_or(0).max(0) as u64,
                handle_ms: row.get::<Option<f64>, _>("handle_ms").unwrap_or(0.0),
            });
        }
        Ok(out)
    }

    async fn agent_slots(
        &self,
        org: &str,
        granularity: Granularity,
        range: TimeWindow,
    ) -> Result<Vec<AgentSlot>, SinkError> {
        // One pass over the range in primary-key order: the typed columns, and other_metrics only
        // where a key is there (a statistic its columns do not hold, or tHeld).
        let other = |column: &str, path: &str| format!("coalesce({column}, other_metrics ->> '{path}')");
        let sql = format!(
            "SELECT user_id, printf('%02d:%02d', start_s % 86400 / 3600, start_s % 3600 / 60) AS hhmm, \
                    CAST(sum({handled}) AS INTEGER) AS handled, \
                    CAST(sum({handle}) AS REAL) AS handle_ms, \
                    CAST(sum({acw}) AS REAL) AS acw_ms, \
                    CAST(sum(coalesce(held_complete_sum, other_metrics ->> '$.tHeldComplete.sum', \
                                      other_metrics ->> '$.tHeld.sum')) AS REAL) AS hold_ms, \
                    max(media_type = '' AND queue_id = '' \
                        AND (coalesce({status}) IS NOT NULL \
                             OR coalesce(instr(other_metrics, '\"tAgentRoutingStatus:') > 0 \
                                         OR instr(other_metrics, '\"tSystemPresence:') > 0, 0))) AS has_status, \
                    CAST(sum({on_queue}) AS REAL) AS on_queue_ms, \
                    CAST(sum({interacting}) AS REAL) AS interacting_ms, \
                    CAST(sum(coalesce({interacting}, 0) + coalesce({communicating}, 0) + coalesce({idle}, 0)) \
                         AS REAL) AS base_ms \
             FROM agent_intervals \
             WHERE org = ?1 AND granularity = ?2 AND start_s >= ?3 AND start_s < ?4 AND user_id <> '' \
             GROUP BY user_id, hhmm",
            handled = other("handle_count", "$.tHandle.count"),
            handle = other("handle_sum", "$.tHandle.sum"),
            acw = other("acw_sum", "$.tAcw.sum"),
            status = STATUS_COLUMNS.join(", "),
            on_queue = other("presence_on_queue_sum", "$.\"tSystemPresence:ON_QUEUE\".sum"),
            interacting = other("routing_interacting_sum", "$.\"tAgentRoutingStatus:INTERACTING\".sum"),
            communicating = other("routing_communicating_sum", "$.\"tAgentRoutingStatus:COMMUNICATING\".sum"),
            idle = other("routing_idle_sum", "$.\"tAgentRoutingStatus:IDLE\".sum"),
        );
        let rows = sqlx::query(&sql)
            .bind(org)
            .bind(granularity.as_iso())
            .bind(range.start().timestamp())
            .bind(range.end().timestamp())
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.read_error(e))?;
        Ok(rows.iter().map(slot_of).collect())
    }

    async fn user_names(&self, org: &str) -> Result<HashMap<String, String>, SinkError> {
        Ok(sqlx::query_as("SELECT id, name FROM users WHERE org = ?1")
            .bind(org)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.read_error(e))?
            .into_iter()
            .collect())
    }
}
