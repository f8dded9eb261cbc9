//! The PostgreSQL sink (`postgres://...`): schema applied by versioned migrations on connect
//! (`migrations/postgres`), one row per grain with a jsonb `metrics` column, each window bulk
//! loaded with COPY into a session-local staging table and merged with `INSERT ... ON CONFLICT`,
//! rows and checkpoint in one transaction.
//!
//! A window write, in one transaction:
//! 1. count the stored grains of the window's scope (sent first; the grains are formed meanwhile);
//! 2. COPY the grains into the session's `pg_temp.intervals_staging`, streamed in chunks;
//! 3. `INSERT ... SELECT FROM staging ON CONFLICT DO UPDATE SET metrics = metrics - requested ||
//!    fetched`, skipping rows whose value would not change (a re-read writes nothing), counting
//!    the grains it inserted;
//! 4. unless every stored grain of the scope was among the staged ones (the usual re-read), find
//!    the stored grains holding one of the query's metrics that the window no longer returns (a
//!    hash anti-join, forced so that no plan depends on table statistics); they lose the query's
//!    metrics (`metrics - requested`) and are deleted when nothing is left;
//! 5. upsert the checkpoint.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use intervals_app::{CheckpointStore, DirectoryWriter, Sink, SinkError, WindowKey, WriteStats};
use intervals_domain::{is_uuid, rfc3339, AggregateQuery, MetricRow, Queue, TimeWindow, User};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, Row};

use super::csv::dedup_by_id;
use super::grain::{dimension_scopes, grains, is_uuid_text, DimensionScope, Grain, DIMENSION_COLUMNS};
use super::sqlite::migrate_message;

use crate::leases::PgLeaseStore;
use crate::outputs::{redact_url, Capabilities, Leases, MetricsContext, OutputConfig, OutputKind, Store, SQL_LOOK};
use intervals_app::WindowTarget;
use std::fmt;
use std::sync::Arc;

static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The value of `user_id` / `queue_id` when the query does not group by it.
pub(crate) const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

const OWN_OBJECTS: &[&str] = &[
    "agent_intervals",
    "ingest_windows",
    "ingest_queries",
    "qualified_metric_keys",
    "ingest_leases",
    "users",
    "queues",
    "interval_metrics",
    "agent_interval_summary",
    "agent_utilization",
];

const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);

/// Creates the session's staging table (once per connection; emptied at each commit). Public to
/// the benchmark, which runs it through psql as the reference.
#[doc(hidden)]
pub const STAGING_TABLE: &str = "SET LOCAL client_min_messages = warning; SET LOCAL jit = off; \
    CREATE TEMP TABLE IF NOT EXISTS intervals_staging ( \
        user_id uuid NOT NULL, media_type text NOT NULL, queue_id uuid NOT NULL, \
        interval_start timestamptz NOT NULL, interval_end timestamptz NOT NULL, metrics jsonb NOT NULL \
    ) ON COMMIT DELETE ROWS";

const COPY: &str =
    "COPY pg_temp.intervals_staging (user_id, media_type, queue_id, interval_start, interval_end, metrics) \
    FROM STDIN";

/// The merge of the staged grains: `$1` org, `$2` granularity, `$3` fetched_at, `$4` the metric
/// keys the query owns. Public to the benchmark, which runs it through psql as the reference.
#[doc(hidden)]
pub const UPSERT_FROM_STAGING: &str = "INSERT INTO agent_intervals AS a \
    (org, user_id, media_type, queue_id, granularity, interval_start, interval_end, metrics, fetched_at) \
    SELECT $1, s.user_id, s.media_type, s.queue_id, $2, s.interval_start, s.interval_end, s.metrics, $3 \
    FROM pg_temp.intervals_staging AS s \
    ON CONFLICT (org, granularity, interval_start, user_id, media_type, queue_id) DO UPDATE SET \
        metrics = (a.metrics - $4::text[]) || EXCLUDED.metrics, \
        interval_end = EXCLUDED.interval_end, \
        fetched_at = EXCLUDED.fetched_at \
    WHERE a.metrics IS DISTINCT FROM (a.metrics - $4::text[]) || EXCLUDED.metrics \
       OR a.interval_end IS DISTINCT FROM EXCLUDED.interval_end";

/// Writes rows, checkpoints, users and queues into PostgreSQL.
#[derive(Debug, Clone)]
pub struct PostgresSink {
    pool: PgPool,
    describe: String,
}

impl PostgresSink {
    /// Connects to `url` (`postgres://user:password@host:port/db?sslmode=...`) and applies the
    /// migrations. Errors name host and port, never the password.
    pub async fn connect(url: &str) -> Result<PostgresSink, SinkError> {
        let options = PgConnectOptions::from_str(url).map_err(|e| {
            SinkError::unavailable(crate::outputs::redact_url(url), format!("invalid PostgreSQL URL: {e}"))
        })?;
        let options = super::statements_at_debug(options);
        let describe = describe(&options);
        let host_port = format!("{}:{}", options.get_host(), options.get_port());
        let unavailable = |message: String| SinkError::unavailable(describe.clone(), message);
        let mut conn = match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(e)) => return Err(unavailable(format!("cannot connect to {host_port}: {e}"))),
            Err(_) => {
                return Err(unavailable(format!(
                    "cannot connect to {host_port}: no answer within {}s",
                    CONNECT_TIMEOUT.as_secs()
                )))
            }
        };
        migrate(&mut conn, &describe).await?;
        let _ = conn.close().await;
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .acquire_timeout(Duration::from_secs(60))
            .connect_lazy_with(options);
        tracing::debug!(target = %describe, "postgres sink ready");
        Ok(PostgresSink { pool, describe })
    }

    /// A sink on an existing pool (e.g. from `#[sqlx::test]`); applies the migrations.
    pub async fn from_pool(pool: PgPool) -> Result<PostgresSink, SinkError> {
        let describe = describe(&pool.connect_options());
        let mut conn = pool.acquire().await.map_err(|e| SinkError::unavailable(describe.clone(), e.to_string()))?;
        migrate(&mut conn, &describe).await?;
        drop(conn);
        Ok(PostgresSink { pool, describe })
    }

    /// The connection pool (for other Postgres adapters of the same database, such as leases).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn write_error(&self, e: impl std::fmt::Display) -> SinkError {
        SinkError::write(self.describe.clone(), e.to_string())
    }

    fn read_error(&self, e: impl std::error::Error + Send + Sync + 'static) -> SinkError {
        SinkError::read(self.describe.clone(), e.to_string()).caused_by(e)
    }

    /// Removes the query's metric `keys` from the `stale` grains and deletes those left empty;
    /// returns how many were deleted.
    async fn strip_stale(
        &self,
        conn: &mut PgConnection,
        org: &str,
        granularity: &str,
        stale: &[(DateTime<Utc>, String, String, String)],
        keys: &[String],
        now: DateTime<Utc>,
    ) -> Result<u64, SinkError> {
        let starts: Vec<DateTime<Utc>> = stale.iter().map(|k| k.0).collect();
        let users: Vec<&str> = stale.iter().map(|k| k.1.as_str()).collect();
        let media: Vec<&str> = stale.iter().map(|k| k.2.as_str()).collect();
        let queues: Vec<&str> = stale.iter().map(|k| k.3.as_str()).collect();
        let grains = "unnest($3::timestamptz[], $4::text[], $5::text[], $6::text[]) \
            AS s(interval_start, user_id, media_type, queue_id)";
        let same = "a.org = $1 AND a.granularity = $2 AND a.interval_start = s.interval_start \
            AND a.user_id = s.user_id::uuid AND a.media_type = s.media_type AND a.queue_id = s.queue_id::uuid";
        sqlx::query(&format!(
            "UPDATE agent_intervals AS a SET metrics = a.metrics - $7::text[], fetched_at = $8 FROM {grains} WHERE {same}"
        ))
        .bind(org)
        .bind(granularity)
        .bind(&starts)
        .bind(&users)
        .bind(&media)
        .bind(&queues)
        .bind(keys)
        .bind(now)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.write_error(e))?;
        let deleted = sqlx::query(&format!(
            "DELETE FROM agent_intervals AS a USING {grains} WHERE {same} AND a.metrics = '{{}}'::jsonb"
        ))
        .bind(org)
        .bind(granularity)
        .bind(&starts)
        .bind(&users)
        .bind(&media)
        .bind(&queues)
        .execute(&mut *conn)
        .await
        .map_err(|e| self.write_error(e))?
        .rows_affected();
        Ok(deleted)
    }

    /// COPYs the window's grains into the staging table, one line per grain in primary-key order,
    /// streamed in chunks so that the server parses one chunk while the next is formatted.
    /// Returns how many grains were staged and whether all of them lie in the window's scope.
    async fn copy_grains(
        &self,
        conn: &mut PgConnection,
        query: &AggregateQuery,
        window: TimeWindow,
        fetched: &[Grain<'_>],
    ) -> Result<(u64, bool), SinkError> {
        const CHUNK: usize = 256 * 1024;
        if fetched.is_empty() {
            return Ok((0, true));
        }
        let all_in_scope = fetched.iter().all(|g| Scope::holds(query, window, g.dims, g.bucket.start()));
        let mut copy = conn.copy_in_raw(COPY).await.map_err(|e| self.write_error(e))?;
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
        let mut json = String::with_capacity(512);
        let mut times: Option<(DateTime<Utc>, String, String)> = None;
        for g in fetched {
            let ids = uuid_value("userId", g.dims[0]).and_then(|u| Ok((u, uuid_value("queueId", g.dims[2])?)));
            let (user, queue) = match ids {
                Ok(ids) => ids,
                Err(e) => {
                    let _ = copy.abort(e.clone()).await;
                    return Err(self.write_error(e));
                }
            };
            // Grains come sorted by bucket: format each bucket's times once.
            let (_, start, end) = match &times {
                Some((t, _, _)) if *t == g.bucket.start() => times.as_ref().expect("just matched"),
                _ => times.insert((g.bucket.start(), rfc3339(g.bucket.start()), rfc3339(g.bucket.end()))),
            };
            for field in [user, g.dims[1], queue, start, end] {
                push_copy_text(&mut buf, field);
                buf.push(b'\t');
            }
            json.clear();
            g.push_metrics_json(&mut json);
            push_copy_text(&mut buf, &json);
            buf.push(b'\n');
            if buf.len() >= CHUNK {
                copy.send(buf.as_slice()).await.map_err(|e| self.write_error(e))?;
                buf.clear();
            }
        }
        if !buf.is_empty() {
            copy.send(buf.as_slice()).await.map_err(|e| self.write_error(e))?;
        }
        copy.finish().await.map_err(|e| self.write_error(e))?;
        Ok((fetched.len() as u64, all_in_scope))
    }
}

/// The window replace's scope in SQL: `$1` org, `$2` granularity, `$3` start, `$4` end, then one
/// array per filtered dimension (values in [`Scope::filters`]).
struct Scope {
    predicate: String,
    filters: Vec<Vec<String>>,
}

impl Scope {
    fn of(query: &AggregateQuery) -> Scope {
        let mut predicate =
            String::from("a.org = $1 AND a.granularity = $2 AND a.interval_start >= $3 AND a.interval_start < $4");
        let mut filters: Vec<Vec<String>> = Vec::new();
        for (s, (_, column)) in dimension_scopes(query).iter().zip(DIMENSION_COLUMNS) {
            let is_uuid_column = column != "media_type";
            match s {
                DimensionScope::Any => {}
                DimensionScope::Empty if is_uuid_column => {
                    predicate.push_str(&format!(" AND a.{column} = '{NIL_UUID}'"))
                }
                DimensionScope::Empty => predicate.push_str(&format!(" AND a.{column} = ''")),
                DimensionScope::OneOf(values) => {
                    filters.push(values.to_vec());
                    let cast = if is_uuid_column { "::uuid[]" } else { "" };
                    predicate.push_str(&format!(" AND a.{column} = ANY(${}::text[]{cast})", 4 + filters.len()));
                }
            }
        }
        Scope { predicate, filters }
    }

    /// How many grains the scope holds (any metrics).
    fn count_sql(&self) -> String {
        format!("SELECT count(*) FROM agent_intervals AS a WHERE {}", self.predicate)
    }

    /// The keys of the scope's grains that hold one of the query's metric keys (the parameter
    /// after the filters) and are not staged.
    fn stale_sql(&self) -> String {
        format!(
            "SELECT a.interval_start, a.user_id::text, a.media_type, a.queue_id::text FROM agent_intervals AS a \
             WHERE {} AND a.metrics ?| ${}::text[] \
               AND NOT EXISTS (SELECT 1 FROM pg_temp.intervals_staging AS s \
                   WHERE s.interval_start = a.interval_start AND s.user_id = a.user_id \
                     AND s.media_type = a.media_type AND s.queue_id = a.queue_id)",
            self.predicate,
            5 + self.filters.len()
        )
    }

    /// Whether a fetched grain lies in the scope (the API honours the filters, but this is what
    /// lets a write skip looking for stale grains).
    fn holds(query: &AggregateQuery, window: TimeWindow, dims: [&str; 3], start: DateTime<Utc>) -> bool {
        window.contains(start)
            && dimension_scopes(query).iter().zip(dims).all(|(s, value)| match s {
                DimensionScope::Any => true,
                DimensionScope::Empty => value.is_empty(),
                DimensionScope::OneOf(values) => values.iter().any(|v| v == value),
            })
    }
}

/// `postgres://user@host:port/db`: where the data is, without a password.
fn describe(options: &PgConnectOptions) -> String {
    let user = options.get_username();
    let db = options.get_database().unwrap_or(user);
    format!("postgres://{user}@{}:{}/{db}", options.get_host(), options.get_port())
}

/// `url` with any password replaced by `***` (for URLs that do not even parse).
async fn migrate(conn: &mut PgConnection, describe: &str) -> Result<(), SinkError> {
    let schema = |message: String| SinkError::schema(describe.to_owned(), message);
    let (has_history, found): (bool, Vec<String>) = {
        let row = sqlx::query(
            "SELECT to_regclass('_sqlx_migrations') IS NOT NULL, \
             ARRAY(SELECT n FROM unnest($1::text[]) AS n WHERE to_regclass(quote_ident(n)) IS NOT NULL)",
        )
        .bind(OWN_OBJECTS)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| schema(e.to_string()))?;
        (row.get(0), row.get(1))
    };
    if !has_history && !found.is_empty() {
        return Err(schema(format!(
            "{} already exist{} but {} not created by genesys-intervals (no migration history); nothing was \
             changed: use another database or schema",
            found.join(", "),
            if found.len() == 1 { "s" } else { "" },
            if found.len() == 1 { "was" } else { "were" },
        )));
    }
    // `run_direct` on the connection itself: `run` goes through `Acquire`, whose future the compiler cannot
    // prove `Send` for every lifetime, so the sink could not be opened from an `async_trait` method.
    MIGRATOR.run_direct(&mut *conn).await.map_err(|e| schema(migrate_message(&e)))?;
    for check in [
        "SELECT org, user_id, media_type, queue_id, granularity, interval_start, interval_end, metrics, fetched_at \
         FROM agent_intervals LIMIT 0",
        "SELECT org, fingerprint, window_start, window_end, rows, fetched_at FROM ingest_windows LIMIT 0",
    ] {
        sqlx::query(check).execute(&mut *conn).await.map_err(|e| schema(e.to_string()))?;
    }
    Ok(())
}

/// Appends `value` in COPY text format (backslash, tab, newline and carriage return escaped).
fn push_copy_text(out: &mut Vec<u8>, value: &str) {
    if !value.bytes().any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r')) {
        out.extend_from_slice(value.as_bytes());
        return;
    }
    for b in value.bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b => out.push(b),
        }
    }
}

/// A uuid column's value: the nil UUID for `""`, else the id, which must be a UUID.
fn uuid_value<'a>(column: &str, value: &'a str) -> Result<&'a str, String> {
    if value.is_empty() {
        Ok(NIL_UUID)
    } else if is_uuid_text(value) {
        Ok(value)
    } else {
        Err(format!("{column} {value:?} is not a UUID"))
    }
}

#[async_trait]
impl Sink for PostgresSink {
    async fn write_window(&self, key: &WindowKey, rows: &[MetricRow]) -> Result<WriteStats, SinkError> {
        let query = key.query();
        let window = key.window();
        let granularity = query.granularity().as_iso();
        let now = Utc::now();
        let names: Vec<&str> = query.metrics().iter().map(|m| m.as_str()).collect();
        let qualified: BTreeSet<String> =
            rows.iter().filter(|r| r.qualifier().is_some()).map(|r| r.metric_key()).collect();
        let scope = Scope::of(query);

        let mut tx = self.pool.begin().await.map_err(|e| self.write_error(e))?;
        // A plain string runs as a simple query: several statements, no prepare.
        (&mut *tx).execute(STAGING_TABLE).await.map_err(|e| self.write_error(e))?;
        if !qualified.is_empty() {
            sqlx::query(
                "INSERT INTO qualified_metric_keys (org, key) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
            )
            .bind(key.org())
            .bind(qualified.iter().collect::<Vec<_>>())
            .execute(&mut *tx)
            .await
            .map_err(|e| self.write_error(e))?;
        }
        // The keys the query owns: its metrics and their qualified forms ever stored.
        let keys: Vec<String> = sqlx::query_scalar(
            "SELECT n FROM unnest($2::text[]) AS n \
             UNION SELECT key FROM qualified_metric_keys WHERE org = $1 AND split_part(key, ':', 1) = ANY($2::text[])",
        )
        .bind(key.org())
        .bind(&names)
        .fetch_all(&mut *tx)
        .await
        .map_err(|e| self.write_error(e))?;

        // How many grains the scope holds before the merge, counted by the server while the
        // grains are formed here...
        let count_sql = scope.count_sql();
        let mut count = sqlx::query_scalar::<_, i64>(&count_sql)
            .bind(key.org())
            .bind(granularity)
            .bind(window.start())
            .bind(window.end());
        for f in &scope.filters {
            count = count.bind(f);
        }
        let (stored, fetched) = tokio::join!(count.fetch_one(&mut *tx), async {
            // Let the count be sent first, whichever branch is polled first.
            tokio::task::yield_now().await;
            grains(query, rows)
        });
        let stored = stored.map_err(|e| self.write_error(e))? as u64;
        let (staged, all_in_scope) = self.copy_grains(&mut tx, query, window, &fetched).await?;

        // ...the merge, counting the grains it inserted...
        let mut inserted = 0;
        if staged > 0 {
            inserted = sqlx::query_scalar::<_, i64>(&format!(
                "WITH merged AS ({UPSERT_FROM_STAGING} RETURNING (a.xmax = 0) AS inserted) \
                 SELECT count(*) FILTER (WHERE inserted) FROM merged"
            ))
            .bind(key.org())
            .bind(granularity)
            .bind(now)
            .bind(&keys)
            .fetch_one(&mut *tx)
            .await
            .map_err(|e| self.write_error(e))? as u64;
        }

        // ...so that when every stored grain of the scope was staged (the usual re-read), there is
        // nothing stale to look for. Otherwise: the grains of the scope holding one of the query's
        // metrics that the window no longer returns, by a hash anti-join whatever the statistics say
        // (a nested loop over a table last analysed when empty would rescan the staging table once
        // per stored grain). They lose the query's metrics; those left empty go.
        let mut deleted = 0;
        let matched = staged - inserted;
        if !(all_in_scope && stored == matched) {
            (&mut *tx)
                .execute("SET LOCAL enable_nestloop = off; SET LOCAL enable_mergejoin = off")
                .await
                .map_err(|e| self.write_error(e))?;
            let stale_sql = scope.stale_sql();
            let mut select = sqlx::query_as::<_, (DateTime<Utc>, String, String, String)>(&stale_sql)
                .bind(key.org())
                .bind(granularity)
                .bind(window.start())
                .bind(window.end());
            for f in &scope.filters {
                select = select.bind(f);
            }
            let stale = select.bind(&keys).fetch_all(&mut *tx).await.map_err(|e| self.write_error(e))?;
            (&mut *tx)
                .execute("RESET enable_nestloop; RESET enable_mergejoin")
                .await
                .map_err(|e| self.write_error(e))?;
            if !stale.is_empty() {
                deleted = self.strip_stale(&mut tx, key.org(), granularity, &stale, &keys, now).await?;
            }
        }

        let query = key.query();
        sqlx::query(
            "INSERT INTO ingest_queries (org, fingerprint, family, granularity, time_zone, description, first_seen) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (org, fingerprint) DO NOTHING",
        )
        .bind(key.org())
        .bind(key.fingerprint())
        .bind(query.family().describe())
        .bind(query.granularity().as_iso())
        .bind(query.time_zone().name())
        .bind(query.describe())
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.write_error(e))?;
        sqlx::query(
            "INSERT INTO ingest_windows (org, fingerprint, window_start, window_end, rows, fetched_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (org, fingerprint, window_start, window_end) DO UPDATE SET \
             rows = EXCLUDED.rows, fetched_at = EXCLUDED.fetched_at",
        )
        .bind(key.org())
        .bind(key.fingerprint())
        .bind(window.start())
        .bind(window.end())
        .bind(rows.len() as i64)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.write_error(e))?;
        tx.commit().await.map_err(|e| self.write_error(e))?;
        Ok(WriteStats { rows_deleted: deleted })
    }

    async fn finish(&self) -> Result<(), SinkError> {
        Ok(())
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

#[async_trait]
impl CheckpointStore for PostgresSink {
    async fn completed_windows(
        &self,
        org: &str,
        fingerprint: &str,
        range: TimeWindow,
    ) -> Result<Vec<TimeWindow>, SinkError> {
        let rows: Vec<(DateTime<Utc>, DateTime<Utc>)> = sqlx::query_as(
            "SELECT window_start, window_end FROM ingest_windows \
             WHERE org = $1 AND fingerprint = $2 AND window_start >= $3 AND window_end <= $4 \
             ORDER BY window_start, window_end",
        )
        .bind(org)
        .bind(fingerprint)
        .bind(range.start())
        .bind(range.end())
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.read_error(e))?;
        rows.into_iter()
            .map(|(s, e)| TimeWindow::new(s, e).map_err(|e| SinkError::schema(self.describe.clone(), e.to_string())))
            .collect()
    }
}

#[async_trait]
impl DirectoryWriter for PostgresSink {
    async fn write_users(&self, org: &str, users: &[User]) -> Result<u64, SinkError> {
        let users = dedup_by_id(users, |u| &u.id);
        if let Some(bad) = users.iter().find(|u| !is_uuid(&u.id)) {
            return Err(self.write_error(format!("user id {:?} is not a UUID", bad.id)));
        }
        let col = |f: fn(&User) -> Option<String>| users.iter().map(|u| f(u)).collect::<Vec<Option<String>>>();
        sqlx::query(
            "INSERT INTO users (org, id, name, email, state, division_id, division_name, fetched_at) \
             SELECT $1, u.id::uuid, u.name, u.email, u.state, u.division_id, u.division_name, $2 \
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) \
                  AS u(id, name, email, state, division_id, division_name) \
             ON CONFLICT (org, id) DO UPDATE SET name = EXCLUDED.name, email = EXCLUDED.email, \
             state = EXCLUDED.state, division_id = EXCLUDED.division_id, division_name = EXCLUDED.division_name, \
             fetched_at = EXCLUDED.fetched_at",
        )
        .bind(org)
        .bind(Utc::now())
        .bind(col(|u| Some(u.id.clone())))
        .bind(col(|u| Some(u.name.clone())))
        .bind(col(|u| u.email.clone()))
        .bind(col(|u| Some(u.state.clone())))
        .bind(col(|u| u.division_id.clone()))
        .bind(col(|u| u.division_name.clone()))
        .execute(&self.pool)
        .await
        .map_err(|e| self.write_error(e))?;
        Ok(users.len() as u64)
    }

    async fn write_queues(&self, org: &str, queues: &[Queue]) -> Result<u64, SinkError> {
        let queues = dedup_by_id(queues, |q| &q.id);
        if let Some(bad) = queues.iter().find(|q| !is_uuid(&q.id)) {
            return Err(self.write_error(format!("queue id {:?} is not a UUID", bad.id)));
        }
        let col = |f: fn(&Queue) -> Option<String>| queues.iter().map(|q| f(q)).collect::<Vec<Option<String>>>();
        sqlx::query(
            "INSERT INTO queues (org, id, name, division_id, division_name, fetched_at) \
             SELECT $1, q.id::uuid, q.name, q.division_id, q.division_name, $2 \
             FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS q(id, name, division_id, division_name) \
             ON CONFLICT (org, id) DO UPDATE SET name = EXCLUDED.name, division_id = EXCLUDED.division_id, \
             division_name = EXCLUDED.division_name, fetched_at = EXCLUDED.fetched_at",
        )
        .bind(org)
        .bind(Utc::now())
        .bind(col(|q| Some(q.id.clone())))
        .bind(col(|q| Some(q.name.clone())))
        .bind(col(|q| q.division_id.clone()))
        .bind(col(|q| q.division_name.clone()))
        .execute(&self.pool)
        .await
        .map_err(|e| self.write_error(e))?;
        Ok(queues.len() as u64)
    }
}

// --- The output kind (the registry entry is in `sinks/mod.rs`) ------------------------------------

/// `postgres://...`.
pub(crate) struct PostgresKind;

impl OutputKind for PostgresKind {
    fn schemes(&self) -> &'static [&'static str] {
        &["postgres", "postgresql"]
    }
    fn form(&self) -> &'static str {
        "postgres://USER@HOST:PORT/DB"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities { checkpoints: true, directory: true, leases: Leases::Shared, wide_layout: false }
    }
    fn parse(&self, url: &str) -> Result<Box<dyn OutputConfig>, String> {
        let rest = url.split_once("://").map(|(_, r)| r).ok_or("a PostgreSQL URL starts with postgres://")?;
        if rest.is_empty() || rest.starts_with('/') && !rest.contains("host=") {
            return Err("a PostgreSQL URL needs a host".to_owned());
        }
        // Everything sqlx would refuse when connecting (a port that is not a number, an unknown
        // sslmode) is a usage error now, before anything is sent. Its message never echoes the URL.
        PgConnectOptions::from_str(url).map_err(|e| format!("not a valid PostgreSQL URL ({e})"))?;
        Ok(Box::new(PostgresConfig { url: url.to_owned() }))
    }
}

/// Kept whole (it may hold a password); shown only through [`redact_url`].
struct PostgresConfig {
    url: String,
}

impl PostgresConfig {
    async fn connect(&self) -> Result<PostgresSink, SinkError> {
        PostgresSink::connect(&self.url).await
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.url))
    }
}

#[async_trait]
impl OutputConfig for PostgresConfig {
    fn describe(&self) -> String {
        redact_url(&self.url)
    }
    fn look_hint(&self) -> Option<String> {
        Some(format!("psql \"$DATABASE_URL\" -c \"{SQL_LOOK}\""))
    }
    async fn open_metrics(&self, _: &MetricsContext) -> Result<WindowTarget, SinkError> {
        Ok(WindowTarget::Checkpointed(Arc::new(self.connect().await?)))
    }
    async fn open_directory(&self) -> Result<Arc<dyn DirectoryWriter>, SinkError> {
        Ok(Arc::new(self.connect().await?))
    }
    async fn open_reader(&self) -> Result<Option<Arc<dyn intervals_app::IntervalsReader>>, SinkError> {
        Ok(Some(Arc::new(super::postgres_reader::PostgresReader::open(&self.url).await?)))
    }
    async fn open_store(&self) -> Result<Store, SinkError> {
        let sink = self.connect().await?;
        let leases = PgLeaseStore::from_pool(sink.pool().clone()).await?;
        Ok(Store { sink: Arc::new(sink), leases: Arc::new(leases) })
    }
}
