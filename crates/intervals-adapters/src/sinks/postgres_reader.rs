//! Reading a PostgreSQL store back for the report ([`IntervalsReader`]): every answer is aggregated
//! by PostgreSQL over `interval_grains`, never row by row in Rust. Every agent's sums, of both
//! families, come from one pass over the range per (agent, UTC time of day); status sums are read
//! from the agents' own grains (where status keys live) directly: the same sums as
//! `agent_utilization`, faster than going through the view, which joins every grain of the bucket.
//!
//! A value is read from its typed column, else from `other_metrics` (where a key whose statistics
//! do not fit its columns is kept: migration 5), as the views do.

use std::collections::HashMap;
use std::str::FromStr;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use intervals_app::{AgentSlot, IntervalsReader, SinkError, StoredSeries, StoredWindow};
use intervals_domain::report::VolumeBucket;
use intervals_domain::{Granularity, TimeWindow};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{PgPool, Row};

use super::reading::{check_schema_version, slot_of};
use crate::outputs::redact_url;

/// The nil UUID: how PostgreSQL stores "not grouped by user".
const NO_USER: &str = "00000000-0000-0000-0000-000000000000";

/// A PostgreSQL store opened for reading.
#[derive(Debug, Clone)]
pub(crate) struct PostgresReader {
    pool: PgPool,
    describe: String,
}

impl PostgresReader {
    /// Connects to `url` for reading, creating and changing nothing (a role with only SELECT
    /// works): a database without genesys-intervals' tables, or whose schema is older or newer than
    /// this version's, is [`SinkError::Schema`]; a role that may not read them is
    /// [`SinkError::Unavailable`] naming the grant it needs.
    pub(crate) async fn open(url: &str) -> Result<PostgresReader, SinkError> {
        let describe = redact_url(url);
        let options =
            PgConnectOptions::from_str(url).map_err(|e| SinkError::unavailable(describe.clone(), e.to_string()))?;
        let pool = PgPoolOptions::new()
            .max_connections(4)
            .acquire_timeout(std::time::Duration::from_secs(30))
            .connect_lazy_with(super::statements_at_debug(options));
        let unavailable = |e: sqlx::Error| SinkError::unavailable(describe.clone(), explained(&e)).caused_by(e);
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() \
             ORDER BY table_name",
        )
        .fetch_all(&pool)
        .await
        .map_err(unavailable)?;
        let ours = ["_sqlx_migrations", "agent_intervals"].iter().all(|t| tables.iter().any(|n| n == t));
        if !ours {
            let found =
                if tables.is_empty() { "no tables".to_owned() } else { format!("tables {}", tables.join(", ")) };
            return Err(SinkError::schema(
                describe,
                format!(
                    "not a genesys-intervals database ({found}; a role sees only the tables it may read); pass \
                     the database `extract` wrote (--db)"
                ),
            ));
        }
        let applied: i64 =
            sqlx::query_scalar("SELECT coalesce(max(version), 0)::int8 FROM _sqlx_migrations WHERE success")
                .fetch_one(&pool)
                .await
                .map_err(unavailable)?;
        check_schema_version(&describe, applied, &super::postgres::MIGRATOR)?;
        Ok(PostgresReader { pool, describe })
    }

    fn read_error(&self, e: sqlx::Error) -> SinkError {
        SinkError::read(self.describe.clone(), explained(&e)).caused_by(e)
    }
}

/// The message of `e`, with the grant a role lacks when the server refused it a table (SQLSTATE
/// 42501).
fn explained(e: &sqlx::Error) -> String {
    match e.as_database_error().and_then(|d| d.code()).as_deref() {
        Some("42501") => format!(
            "{e}: the role may not read genesys-intervals' tables; grant it, e.g. `GRANT USAGE ON SCHEMA public TO \
             reporter; GRANT SELECT ON ALL TABLES IN SCHEMA public TO reporter;`"
        ),
        _ => e.to_string(),
    }
}

#[async_trait]
impl IntervalsReader for PostgresReader {
    async fn inventory(&self) -> Result<Vec<StoredSeries>, SinkError> {
        let rows = sqlx::query(
            "SELECT org, granularity, min(interval_start) AS first, \
                    max(coalesce(interval_end, interval_start + interval_grain_length(granularity))) AS last, \
                    count(*) AS grains \
             FROM interval_grains GROUP BY org, granularity ORDER BY org, granularity",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.read_error(e))?;
        let bad = |m: String| SinkError::read(self.describe.clone(), m);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let granularity: String = row.get("granularity");
            let span = TimeWindow::new(row.get("first"), row.get("last")).map_err(|e| bad(e.to_string()))?;
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
             WHERE w.org = $1 AND w.window_end > $2 AND w.window_start < $3 \
             ORDER BY w.fingerprint, w.window_start",
        )
        .bind(org)
        .bind(range.start())
        .bind(range.end())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.read_error(e))?;
        let bad = |m: String| SinkError::read(self.describe.clone(), m);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let granularity: Option<String> = row.get("granularity");
            out.push(StoredWindow {
                fingerprint: row.get("fingerprint"),
                description: row.get("description"),
                granularity: granularity.and_then(|g| Granularity::parse(&g).ok()),
                window: TimeWindow::new(row.get("window_start"), row.get("window_end"))
                    .map_err(|e| bad(e.to_string()))?,
                fetched_at: row.get::<DateTime<Utc>, _>("fetched_at"),
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
                    sum(coalesce(handle_count::bigint, (other_metrics #>> '{tHandle,count}')::bigint))::bigint \
                        AS handled, \
                    sum(coalesce(handle_sum, (other_metrics #>> '{tHandle,sum}')::float8)) AS handle_ms \
             FROM interval_grains \
             WHERE org = $1 AND granularity = $2 AND interval_start >= $3 AND interval_start < $4 \
               AND (num_nonnulls(handle_count, handle_sum, handle_min, handle_max) > 0 OR other_metrics ? 'tHandle') \
             GROUP BY interval_start, media_type",
        )
        .bind(org)
        .bind(granularity.as_iso())
        .bind(range.start())
        .bind(range.end())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.read_error(e))?;
        Ok(rows
            .iter()
            .map(|row| VolumeBucket {
                start: row.get("interval_start"),
                media_type: row.get("media_type"),
                handled: row.get::<Option<i64>, _>("handled").unwrap_or(0).max(0) as u64,
                handle_ms: row.get::<Option<f64>, _>("handle_ms").unwrap_or(0.0),
            })
            .collect())
    }

    async fn agent_slots(
        &self,
        org: &str,
        granularity: Granularity,
        range: TimeWindow,
    ) -> Result<Vec<AgentSlot>, SinkError> {
        // One pass over the range; a status grain is the agent's own (media type and queue empty)
        // with a status key, the keys listed from `qualified_metric_keys` once.
        let rows = sqlx::query(
            "WITH s AS (SELECT coalesce(array_agg(k.key), '{}') AS keys FROM qualified_metric_keys AS k \
                        WHERE k.org = $1 AND split_part(k.key, ':', 1) IN ('tAgentRoutingStatus', 'tSystemPresence')) \
             SELECT user_id::text AS user_id, to_char(interval_start AT TIME ZONE 'UTC', 'HH24:MI') AS hhmm, \
                    sum(coalesce(handle_count::bigint, (other_metrics #>> '{tHandle,count}')::bigint))::bigint \
                        AS handled, \
                    sum(coalesce(handle_sum, (other_metrics #>> '{tHandle,sum}')::float8)) AS handle_ms, \
                    sum(coalesce(acw_sum, (other_metrics #>> '{tAcw,sum}')::float8)) AS acw_ms, \
                    sum(coalesce(held_complete_sum, (other_metrics #>> '{tHeldComplete,sum}')::float8, \
                                 (other_metrics #>> '{tHeld,sum}')::float8)) AS hold_ms, \
                    max(CASE WHEN media_type = '' AND queue_id = $5::uuid \
                              AND (num_nonnulls(routing_idle_sum, routing_interacting_sum, routing_communicating_sum, \
                                                routing_not_responding_sum, routing_off_queue_sum, \
                                                presence_available_sum, presence_away_sum, presence_busy_sum, \
                                                presence_offline_sum, presence_idle_sum, presence_on_queue_sum, \
                                                presence_meal_sum, presence_training_sum, presence_meeting_sum, \
                                                presence_break_sum) > 0 \
                                   OR other_metrics ?| s.keys) THEN 1 ELSE 0 END)::bigint AS has_status, \
                    sum(coalesce(presence_on_queue_sum, \
                                 (other_metrics #>> '{tSystemPresence:ON_QUEUE,sum}')::float8)) AS on_queue_ms, \
                    sum(coalesce(routing_interacting_sum, \
                                 (other_metrics #>> '{tAgentRoutingStatus:INTERACTING,sum}')::float8)) AS interacting_ms, \
                    sum(coalesce(routing_interacting_sum, \
                                 (other_metrics #>> '{tAgentRoutingStatus:INTERACTING,sum}')::float8, 0) \
                      + coalesce(routing_communicating_sum, \
                                 (other_metrics #>> '{tAgentRoutingStatus:COMMUNICATING,sum}')::float8, 0) \
                      + coalesce(routing_idle_sum, (other_metrics #>> '{tAgentRoutingStatus:IDLE,sum}')::float8, 0)) \
                        AS base_ms \
             FROM interval_grains CROSS JOIN s \
             WHERE org = $1 AND granularity = $2 AND interval_start >= $3 AND interval_start < $4 \
               AND user_id <> $5::uuid \
             GROUP BY 1, 2",
        )
        .bind(org)
        .bind(granularity.as_iso())
        .bind(range.start())
        .bind(range.end())
        .bind(NO_USER)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.read_error(e))?;
        Ok(rows.iter().map(slot_of).collect())
    }

    async fn user_names(&self, org: &str) -> Result<HashMap<String, String>, SinkError> {
        Ok(sqlx::query_as("SELECT id::text, name FROM users WHERE org = $1")
            .bind(org)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.read_error(e))?
            .into_iter()
            .collect())
    }
}
