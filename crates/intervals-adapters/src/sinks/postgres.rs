//! The PostgreSQL sink (`postgres://...`): schema applied by versioned migrations on connect
//! (`migrations/postgres`), one row per grain in `interval_grains` (the common metrics' statistics
//! in typed columns, any other metric in the jsonb `other_metrics`: [`TYPED_KEYS`]), each window
//! bulk loaded with a binary COPY into a session-local staging table and merged with `INSERT ... ON
//! CONFLICT`, rows and checkpoint in one transaction.
//!
//! A window write, in one transaction:
//! 1. count the stored grains of the window's scope (sent first; the grains are formed meanwhile);
//! 2. COPY the grains into the session's `pg_temp.grains_staging` (binary format: nothing to
//!    format here nor to parse there), streamed in chunks;
//! 3. `INSERT ... SELECT FROM staging ON CONFLICT DO UPDATE`, which sets the typed columns of the
//!    query's metrics and `other_metrics - requested || fetched`, skipping rows whose values would
//!    not change (a re-read writes nothing), counting the grains it inserted;
//! 4. unless every stored grain of the scope was among the staged ones (the usual re-read), find
//!    the stored grains holding one of the query's metrics that the window no longer returns (a
//!    hash anti-join, forced so that no plan depends on table statistics); they lose the query's
//!    metrics and are deleted when nothing is left;
//! 5. upsert the checkpoint.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use intervals_app::{CheckpointStore, DirectoryWriter, Sink, SinkError, WindowKey, WriteStats};
use intervals_domain::{is_uuid, AggregateQuery, MetricName, MetricRow, Queue, TimeWindow, User};
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Executor, Row};

use super::csv::dedup_by_id;
use super::grain::{
    dimension_scopes, fits, grains, is_uuid_text, owned_columns, push_rows_json, spares_userless_grains, typed_columns,
    DimensionScope, Grain, Stat, TypedKeyFinder, DIMENSION_COLUMNS, FIRST_COLUMN, TYPED_COLUMNS, TYPED_KEYS,
};
use super::sqlite::migrate_message;

use crate::leases::PgLeaseStore;
use crate::outputs::{redact_url, Capabilities, Leases, MetricsContext, OutputConfig, OutputKind, Store, SQL_LOOK};
use intervals_app::WindowTarget;
use std::fmt;
use std::sync::Arc;

pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/postgres");

/// The value of `user_id` / `queue_id` when the query does not group by it.
pub(crate) const NIL_UUID: &str = "00000000-0000-0000-0000-000000000000";

const OWN_OBJECTS: &[&str] = &[
    "interval_grains",
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
pub fn staging_table() -> String {
    let typed: Vec<String> = typed_columns()
        .map(|(stat, c)| format!("{c} {}", if stat == Stat::Count { "int4" } else { "float8" }))
        .collect();
    format!(
        "SET LOCAL client_min_messages = warning; SET LOCAL jit = off; \
         CREATE TEMP TABLE IF NOT EXISTS grains_staging ( \
             user_id uuid NOT NULL, media_type text NOT NULL, queue_id uuid NOT NULL, \
             interval_start timestamptz NOT NULL, interval_end timestamptz, {}, other_metrics jsonb \
         ) ON COMMIT DELETE ROWS",
        typed.join(", ")
    )
}

/// The columns of the staging table, in order.
fn staging_columns() -> String {
    let typed: Vec<&str> = typed_columns().map(|(_, c)| c).collect();
    format!("user_id, media_type, queue_id, interval_start, interval_end, {}, other_metrics", typed.join(", "))
}

/// The COPY of the staged grains (binary format).
fn copy_statement() -> String {
    format!("COPY pg_temp.grains_staging ({}) FROM STDIN (FORMAT binary)", staging_columns())
}

/// The merge of the staged grains for a query of `metrics`: `$1` org, `$2` granularity, `$3`
/// fetched_at, `$4` the metric keys the query owns (its metrics and their qualified forms). The
/// typed columns of the query's metrics are replaced, the others kept; `other_metrics` loses the
/// query's keys and takes the fetched ones. Public to the benchmark, which runs it through psql
/// as the reference.
#[doc(hidden)]
pub fn upsert_from_staging(metrics: &[MetricName]) -> String {
    let typed: Vec<&str> = typed_columns().map(|(_, c)| c).collect();
    let owned = owned_columns(metrics);
    let other = "nullif(coalesce(a.other_metrics - $4::text[], '{}'::jsonb) \
                 || coalesce(EXCLUDED.other_metrics, '{}'::jsonb), '{}'::jsonb)";
    let set: String = owned.iter().map(|c| format!("{c} = EXCLUDED.{c}, ")).collect();
    let old: String = owned.iter().map(|c| format!("a.{c}, ")).collect();
    let new: String = owned.iter().map(|c| format!("EXCLUDED.{c}, ")).collect();
    let staged: Vec<String> = typed.iter().map(|c| format!("s.{c}")).collect();
    format!(
        "INSERT INTO interval_grains AS a \
         (org, granularity, fetched_at, {staging}) \
         SELECT $1, $2, $3, s.user_id, s.media_type, s.queue_id, s.interval_start, s.interval_end, {staged}, \
                s.other_metrics \
         FROM pg_temp.grains_staging AS s \
         ON CONFLICT (org, granularity, interval_start, user_id, media_type, queue_id) DO UPDATE SET \
             {set}other_metrics = {other}, interval_end = EXCLUDED.interval_end, fetched_at = EXCLUDED.fetched_at \
         WHERE ({old}a.other_metrics, a.interval_end) IS DISTINCT FROM ({new}{other}, EXCLUDED.interval_end)",
        staging = staging_columns(),
        staged = staged.join(", "),
    )
}

/// The grains of `rows` as the staging table's binary COPY: what the sink sends. Public to the
/// benchmark, which loads it through psql as the reference.
#[doc(hidden)]
pub fn staging_copy(query: &AggregateQuery, rows: &[MetricRow]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut encoder = GrainEncoder::new(query);
    out.extend_from_slice(COPY_HEADER);
    for g in &grains(query, rows) {
        encoder.push(&mut out, g)?;
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    Ok(out)
}

/// The binary COPY header: signature, flags, header extension length.
const COPY_HEADER: &[u8] = b"PGCOPY\n\xff\r\n\0\0\0\0\0\0\0\0\0";
/// Microseconds from the Unix epoch to PostgreSQL's (2000-01-01T00:00:00Z).
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Encodes grains as rows of the staging table's binary COPY.
struct GrainEncoder {
    /// The nominal length of the query's buckets: `interval_end` is sent only when a bucket has
    /// another (a P1D bucket on a day that changes the UTC offset).
    length: chrono::TimeDelta,
    /// The grain's rows that go to `other_metrics` (reused).
    others: Vec<usize>,
    /// The grain's JSON (reused).
    json: String,
    /// Which typed key a row's metric is (names seen before skip the search).
    keys: TypedKeyFinder,
}

/// A typed column's value.
#[derive(Debug, Clone, Copy)]
enum Typed {
    Null,
    Int(i32),
    Float(f64),
}

impl GrainEncoder {
    fn new(query: &AggregateQuery) -> GrainEncoder {
        let length = match query.granularity() {
            intervals_domain::Granularity::Pt15m => chrono::TimeDelta::minutes(15),
            intervals_domain::Granularity::Pt30m => chrono::TimeDelta::minutes(30),
            intervals_domain::Granularity::Pt1h => chrono::TimeDelta::hours(1),
            intervals_domain::Granularity::P1d => chrono::TimeDelta::hours(24),
        };
        GrainEncoder {
            length,
            others: Vec::with_capacity(8),
            json: String::with_capacity(256),
            keys: TypedKeyFinder::default(),
        }
    }

    /// Which typed key `row` is, if any.
    fn typed_key(&mut self, row: &MetricRow) -> Option<usize> {
        self.keys.find(row)
    }

    /// Appends `g` as one row of the staging table; an id that is not a UUID is an error.
    fn push(&mut self, out: &mut Vec<u8>, g: &Grain<'_>) -> Result<(), String> {
        let user = uuid_value("userId", g.dims[0])?;
        let queue = uuid_value("queueId", g.dims[2])?;
        let mut typed = [Typed::Null; TYPED_COLUMNS];
        self.others.clear();
        for (i, row) in g.rows.iter().enumerate() {
            match self.typed_key(row).filter(|k| fits(&TYPED_KEYS[*k], row.stats(), i32::MAX as u64)) {
                Some(k) => {
                    let s = row.stats();
                    for (j, (stat, _)) in TYPED_KEYS[k].columns.iter().enumerate() {
                        typed[FIRST_COLUMN[k] + j] = match stat {
                            Stat::Count => s.count.map_or(Typed::Null, |c| Typed::Int(c as i32)),
                            Stat::Sum => finite(s.sum),
                            Stat::Min => finite(s.min),
                            Stat::Max => finite(s.max),
                        };
                    }
                }
                None => self.others.push(i),
            }
        }
        out.reserve(2 + 4 * (6 + TYPED_COLUMNS) + 16 + 16 + 8 + 8 + 8 + 8 * TYPED_COLUMNS);
        out.extend_from_slice(&(5 + TYPED_COLUMNS as i16 + 1).to_be_bytes());
        push_field(out, &uuid_bytes(user));
        push_field(out, g.dims[1].as_bytes());
        push_field(out, &uuid_bytes(queue));
        push_field(out, &pg_micros(g.bucket.start()).to_be_bytes());
        if g.bucket.end() - g.bucket.start() == self.length {
            out.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            push_field(out, &pg_micros(g.bucket.end()).to_be_bytes());
        }
        for value in typed {
            match value {
                Typed::Null => out.extend_from_slice(&(-1i32).to_be_bytes()),
                Typed::Int(v) => push_field(out, &v.to_be_bytes()),
                Typed::Float(v) => push_field(out, &v.to_bits().to_be_bytes()),
            }
        }
        if self.others.is_empty() {
            out.extend_from_slice(&(-1i32).to_be_bytes());
        } else {
            self.json.clear();
            self.json.push('\u{1}'); // jsonb's binary format: a version byte, then the text
            push_rows_json(&mut self.json, self.others.iter().map(|i| g.rows[*i]));
            push_field(out, self.json.as_bytes());
        }
        Ok(())
    }
}

fn finite(v: Option<f64>) -> Typed {
    v.filter(|v| v.is_finite()).map_or(Typed::Null, Typed::Float)
}

/// Appends one field of a binary COPY row: its length, then its bytes.
fn push_field(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
    out.extend_from_slice(bytes);
}

/// The 16 bytes of a UUID checked by [`is_uuid_text`] (8-4-4-4-12 hex digits).
fn uuid_bytes(text: &str) -> [u8; 16] {
    const DIGITS: [usize; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];
    fn hex(b: u8) -> u8 {
        match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => 0,
        }
    }
    let t = text.as_bytes();
    let mut out = [0u8; 16];
    if t.len() == 36 {
        for (byte, at) in out.iter_mut().zip(DIGITS) {
            *byte = hex(t[at]) << 4 | hex(t[at + 1]);
        }
    }
    out
}

/// A timestamptz in binary: microseconds since 2000-01-01T00:00:00Z.
fn pg_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros() - PG_EPOCH_MICROS
}

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
            // The driver's error is the cause (`caused by: error communicating with database: Connection
            // refused (os error 111)`): the binaries print the chain.
            Ok(Err(e)) => return Err(unavailable(format!("cannot connect to {host_port}")).caused_by(e)),
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
        let mut conn =
            pool.acquire().await.map_err(|e| SinkError::unavailable(describe.clone(), e.to_string()).caused_by(e))?;
        migrate(&mut conn, &describe).await?;
        drop(conn);
        Ok(PostgresSink { pool, describe })
    }

    /// The connection pool (for other Postgres adapters of the same database, such as leases).
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    fn write_error(&self, e: sqlx::Error) -> SinkError {
        let message = match connection_lost(&e) {
            true => format!("{e}; {LOST_ADVICE}"),
            false => e.to_string(),
        };
        SinkError::write(self.describe.clone(), message).caused_by(e)
    }

    fn read_error(&self, e: impl std::error::Error + Send + Sync + 'static) -> SinkError {
        SinkError::read(self.describe.clone(), e.to_string()).caused_by(e)
    }

    /// Removes the query's metrics (typed columns `owned`, other keys `keys`) from the `stale`
    /// grains and deletes those left empty; returns how many were deleted.
    #[allow(clippy::too_many_arguments)]
    async fn strip_stale(
        &self,
        conn: &mut PgConnection,
        org: &str,
        granularity: &str,
        stale: &[(DateTime<Utc>, String, String, String)],
        owned: &[&str],
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
        let cleared: String = owned.iter().map(|c| format!("{c} = NULL, ")).collect();
        sqlx::query(&format!(
            "UPDATE interval_grains AS a SET {cleared}\
             other_metrics = nullif(coalesce(a.other_metrics - $7::text[], '{{}}'::jsonb), '{{}}'::jsonb), \
             fetched_at = $8 FROM {grains} WHERE {same}"
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
            "DELETE FROM interval_grains AS a USING {grains} WHERE {same} AND num_nonnulls({}, a.other_metrics) = 0",
            typed_columns().map(|(_, c)| format!("a.{c}")).collect::<Vec<_>>().join(", ")
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

    /// COPYs the window's grains into the staging table (binary format), one row per grain in
    /// primary-key order, streamed in chunks so that the server reads one chunk while the next is
    /// encoded. Returns how many grains were staged and whether all of them lie in the window's
    /// scope.
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
        let mut copy = conn.copy_in_raw(&copy_statement()).await.map_err(|e| self.write_error(e))?;
        let mut buf: Vec<u8> = Vec::with_capacity(CHUNK + 4096);
        buf.extend_from_slice(COPY_HEADER);
        let mut encoder = GrainEncoder::new(query);
        for g in fetched {
            if let Err(e) = encoder.push(&mut buf, g) {
                let _ = copy.abort(e.clone()).await;
                return Err(SinkError::write(self.describe.clone(), e));
            }
            if buf.len() >= CHUNK {
                copy.send(buf.as_slice()).await.map_err(|e| self.write_error(e))?;
                buf.clear();
            }
        }
        buf.extend_from_slice(&(-1i16).to_be_bytes());
        copy.send(buf.as_slice()).await.map_err(|e| self.write_error(e))?;
        copy.finish().await.map_err(|e| self.write_error(e))?;
        Ok((fetched.len() as u64, all_in_scope))
    }
}

/// The window replace's scope in SQL: `$1` org, `$2` granularity, `$3` start, `$4` end, then one
/// array per filtered dimension (values in [`Scope::filters`]).
struct Scope {
    predicate: String,
    filters: Vec<Vec<String>>,
    /// What of the scope a vanished row may be removed from ([`super::grain::may_remove`]).
    removable: &'static str,
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
        let removable =
            if spares_userless_grains(query) { " AND a.user_id <> '00000000-0000-0000-0000-000000000000'" } else { "" };
        debug_assert!(removable.is_empty() || removable.contains(NIL_UUID));
        Scope { predicate, filters, removable }
    }

    /// How many grains the scope holds (any metrics).
    fn count_sql(&self) -> String {
        format!("SELECT count(*) FROM interval_grains AS a WHERE {}", self.predicate)
    }

    /// The keys of the scope's grains that hold one of the query's metrics (a typed column of
    /// `owned`, or one of the keys in the parameter after the filters) and are not staged.
    fn stale_sql(&self, owned: &[&str]) -> String {
        let typed = if owned.is_empty() {
            "false".to_owned()
        } else {
            format!("num_nonnulls({}) > 0", owned.iter().map(|c| format!("a.{c}")).collect::<Vec<_>>().join(", "))
        };
        format!(
            "SELECT a.interval_start, a.user_id::text, a.media_type, a.queue_id::text FROM interval_grains AS a \
             WHERE {}{} AND ({typed} OR a.other_metrics ?| ${}::text[]) \
               AND NOT EXISTS (SELECT 1 FROM pg_temp.grains_staging AS s \
                   WHERE s.interval_start = a.interval_start AND s.user_id = a.user_id \
                     AND s.media_type = a.media_type AND s.queue_id = a.queue_id)",
            self.predicate,
            self.removable,
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

/// The server's refusal when a migration failed for want of a privilege (SQLSTATE 42501).
fn permission_denied(e: &sqlx::migrate::MigrateError) -> Option<String> {
    use sqlx::migrate::MigrateError;
    let db = match e {
        MigrateError::Execute(sqlx::Error::Database(db))
        | MigrateError::ExecuteMigration(sqlx::Error::Database(db), _) => db,
        _ => return None,
    };
    (db.code().as_deref() == Some("42501")).then(|| db.message().to_owned())
}

/// Applies the migrations on `conn`: a database holding objects of our names without our
/// migration history is refused, and so is a role that may not change the schema (nothing changed).
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
    MIGRATOR.run_direct(&mut *conn).await.map_err(|e| match permission_denied(&e) {
        // Not an incompatible schema: a role that may not change this one.
        Some(db) => SinkError::unavailable(
            describe.to_owned(),
            format!(
                "the role may not create or change genesys-intervals' tables ({db}); nothing was changed: grant \
                 it, e.g. `GRANT CREATE ON SCHEMA public TO etl`, or let a role that may run the first write \
                 (`report` needs only SELECT)"
            ),
        ),
        None => schema(migrate_message(&e)),
    })?;
    for check in [
        "SELECT org, user_id, media_type, queue_id, granularity, interval_start, interval_end, other_metrics, \
         fetched_at FROM interval_grains LIMIT 0",
        "SELECT org, fingerprint, window_start, window_end, rows, fetched_at FROM ingest_windows LIMIT 0",
    ] {
        sqlx::query(check).execute(&mut *conn).await.map_err(|e| schema(e.to_string()))?;
    }
    Ok(())
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
        let owned = owned_columns(query.metrics());

        let mut tx = self.pool.begin().await.map_err(|e| self.write_error(e))?;
        // A plain string runs as a simple query: several statements, no prepare.
        (&mut *tx).execute(staging_table().as_str()).await.map_err(|e| self.write_error(e))?;
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
                "WITH merged AS ({} RETURNING (a.xmax = 0) AS inserted) \
                 SELECT count(*) FILTER (WHERE inserted) FROM merged",
                upsert_from_staging(query.metrics())
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
            let stale_sql = scope.stale_sql(&owned);
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
                deleted = self.strip_stale(&mut tx, key.org(), granularity, &stale, &owned, &keys, now).await?;
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
            return Err(SinkError::write(self.describe.clone(), format!("user id {:?} is not a UUID", bad.id)));
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
            return Err(SinkError::write(self.describe.clone(), format!("queue id {:?} is not a UUID", bad.id)));
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
        Capabilities { checkpoints: true, directory: true, leases: Leases::Shared, wide_layout: false, read_back: true }
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

/// What a write that lost its connection adds to the error: the window's transaction was rolled
/// back, so nothing of it is stored, and what was committed before stays.
const LOST_ADVICE: &str = "the connection to the database was lost (a restart, a failover, the network); the \
                           windows committed before are kept and the next run continues from them";

/// Whether `e` means the server or the connection went away, rather than a statement failing:
/// IO errors, a pool that gave up waiting, and SQLSTATE classes 08 (connection exception) and 57P
/// (operator intervention: `57P01` admin shutdown, `57P02` crash shutdown, `57P03` cannot connect now).
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::connection_lost;

    #[test]
    fn a_lost_connection_is_told_apart_from_a_failed_statement() {
        let io = || std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert!(connection_lost(&sqlx::Error::Io(io())));
        assert!(connection_lost(&sqlx::Error::PoolTimedOut));
        assert!(connection_lost(&sqlx::Error::PoolClosed));
        assert!(!connection_lost(&sqlx::Error::RowNotFound));
        assert!(!connection_lost(&sqlx::Error::Protocol("unexpected message".into())));
    }
}
