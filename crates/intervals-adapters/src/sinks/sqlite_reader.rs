//! Reading a SQLite store back for the report ([`IntervalsReader`]): every answer is aggregated by
//! SQLite over `agent_intervals`, never row by row in Rust. Every agent's sums, of both families, come
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

fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&Utc)).map_err(|e| format!("{text:?}: {e}"))
}

#[async_trait]
impl IntervalsReader for SqliteReader {
    async fn inventory(&self) -> Result<Vec<StoredSeries>, SinkError> {
        let rows = sqlx::query(
            "SELECT org, granularity, min(interval_start) AS first, max(interval_end) AS last, count(*) AS grains \
             FROM agent_intervals GROUP BY org, granularity ORDER BY org, granularity",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.read_error(e))?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let bad = |m: String| SinkError::read(self.describe.clone(), m);
            let granularity: String = row.get("granularity");
            let (first, last): (String, String) = (row.get("first"), row.get("last"));
            let span = TimeWindow::new(instant(&first).map_err(bad)?, instant(&last).map_err(bad)?)
                .map_err(|e| bad(e.to_string()))?;
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
            "SELECT interval_start, media_type, \
                    CAST(sum(json_extract(metrics, '$.tHandle.count')) AS INTEGER) AS handled, \
                    CAST(sum(json_extract(metrics, '$.tHandle.sum')) AS REAL) AS handle_ms \
             FROM agent_intervals \
             WHERE org = ?1 AND granularity = ?2 AND interval_start >= ?3 AND interval_start < ?4 \
               AND json_extract(metrics, '$.tHandle') IS NOT NULL \
             GROUP BY interval_start, media_type",
        )
        .bind(org)
        .bind(granularity.as_iso())
        .bind(rfc3339(range.start()))
        .bind(rfc3339(range.end()))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.read_error(e))?;
        let bad = |m: String| SinkError::read(self.describe.clone(), m);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let start: String = row.get("interval_start");
            out.push(VolumeBucket {
                start: instant(&start).map_err(bad)?,
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
        // One pass over the range: each grain's JSON read once, into numbers, before the grouping
        // sorts them (a sort carrying the JSON text costs more than the reads).
        let rows = sqlx::query(
            "WITH x AS MATERIALIZED ( \
               SELECT user_id, substr(interval_start, 12, 5) AS hhmm, \
                      json_extract(metrics, '$.tHandle.count') AS handled, \
                      json_extract(metrics, '$.tHandle.sum') AS handle_ms, \
                      json_extract(metrics, '$.tAcw.sum') AS acw_ms, \
                      coalesce(json_extract(metrics, '$.tHeldComplete.sum'), \
                               json_extract(metrics, '$.tHeld.sum')) AS hold_ms, \
                      media_type = '' AND queue_id = '' \
                        AND (instr(metrics, '\"tAgentRoutingStatus:') > 0 \
                             OR instr(metrics, '\"tSystemPresence:') > 0) AS is_status, \
                      json_extract(metrics, '$.\"tSystemPresence:ON_QUEUE\".sum') AS on_queue_ms, \
                      json_extract(metrics, '$.\"tAgentRoutingStatus:INTERACTING\".sum') AS interacting_ms, \
                      json_extract(metrics, '$.\"tAgentRoutingStatus:COMMUNICATING\".sum') AS communicating_ms, \
                      json_extract(metrics, '$.\"tAgentRoutingStatus:IDLE\".sum') AS idle_ms \
               FROM agent_intervals \
               WHERE org = ?1 AND granularity = ?2 AND interval_start >= ?3 AND interval_start < ?4 \
                 AND user_id <> '') \
             SELECT user_id, hhmm, \
                    CAST(sum(handled) AS INTEGER) AS handled, \
                    CAST(sum(handle_ms) AS REAL) AS handle_ms, \
                    CAST(sum(acw_ms) AS REAL) AS acw_ms, \
                    CAST(sum(hold_ms) AS REAL) AS hold_ms, \
                    max(is_status) AS has_status, \
                    CAST(sum(on_queue_ms) AS REAL) AS on_queue_ms, \
                    CAST(sum(interacting_ms) AS REAL) AS interacting_ms, \
                    CAST(sum(coalesce(interacting_ms, 0) + coalesce(communicating_ms, 0) + coalesce(idle_ms, 0)) \
                         AS REAL) AS base_ms \
             FROM x GROUP BY user_id, hhmm",
        )
        .bind(org)
        .bind(granularity.as_iso())
        .bind(rfc3339(range.start()))
        .bind(rfc3339(range.end()))
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
