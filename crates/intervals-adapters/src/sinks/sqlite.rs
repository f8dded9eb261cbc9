//! The SQLite sink (`sqlite:PATH`, the embedded default): one file in WAL mode, schema applied by
//! versioned migrations (`migrations/sqlite`), each window's rows and checkpoint in one
//! transaction, committed with `synchronous=FULL` (a committed window survives power loss). Grain
//! times are Unix seconds (`start_s`); checkpoints and users keep RFC 3339 UTC text.
//!
//! A window replace reads the stored grains in the window's scope, merges them in Rust (the
//! query's metrics replaced by the fetched ones, other metrics kept, empty grains deleted), and
//! writes only what changed. Schema v5 stores typed columns for the common metrics and `other_metrics`
//! (JSON) for the rest, as PostgreSQL does; a window is written in multi-row `INSERT OR REPLACE`
//! statements of fixed sizes.

use std::collections::HashMap;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use intervals_app::{CheckpointStore, DirectoryWriter, Sink, SinkError, WindowKey, WriteStats};
use intervals_domain::{rfc3339, Granularity, MetricRow, Queue, TimeWindow, User};
use serde_json::{Map, Value};
use sqlx::migrate::{MigrateError, Migrator};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};
use sqlx::Row;

use super::csv::dedup_by_id;
use super::grain::{
    dimension_scopes, fits, grains, is_requested, may_remove, owned_columns, push_json_string, push_rows_json,
    typed_columns, DimensionScope, Grain, Stat, TypedKeyFinder, DIMENSION_COLUMNS, FIRST_COLUMN, TYPED_COLUMNS,
    TYPED_KEYS,
};
use super::output::parent_of;

use crate::leases::SqliteLeaseStore;
use crate::outputs::{file_path, Capabilities, Leases, MetricsContext, OutputConfig, OutputKind, Store, SQL_LOOK};
use intervals_app::WindowTarget;
use std::sync::Arc;

pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations/sqlite");

/// Tables and views the migrations create; finding one without our migration history means the
/// database belongs to someone else.
const OWN_OBJECTS: &[&str] = &[
    "agent_intervals",
    "ingest_windows",
    "ingest_queries",
    "users",
    "queues",
    "interval_metrics",
    "agent_interval_summary",
    "agent_utilization",
];

/// Writes rows, checkpoints, users and queues into a SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteSink {
    pool: SqlitePool,
    describe: String,
}

impl SqliteSink {
    /// Opens (creating if needed) the database at `path` and applies the migrations. Fails with
    /// [`SinkError::Unavailable`] when the file cannot be opened and with [`SinkError::Schema`]
    /// when it holds tables of the same names that our migrations did not create (nothing is
    /// changed then).
    pub async fn open(path: impl Into<PathBuf>) -> Result<SqliteSink, SinkError> {
        let path = path.into();
        let describe = format!("sqlite:{}", path.display());
        let unavailable = |message: String| SinkError::unavailable(describe.clone(), message);
        let folder = parent_of(&path);
        if !folder.is_dir() {
            return Err(unavailable(format!("the folder {} does not exist", folder.display())));
        }
        if path.is_dir() {
            return Err(unavailable(format!("{} is a folder, not a file", path.display())));
        }
        let options = SqliteConnectOptions::from_str("sqlite:")
            .map_err(|e| unavailable(e.to_string()))?
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            // Room for a window's pages, so that a write does not spill them to the log mid-transaction.
            .pragma("cache_size", format!("-{}", CACHE_KIB))
            .busy_timeout(Duration::from_secs(60))
            .foreign_keys(true);
        let options = super::statements_at_debug(options);
        // Two runs started together on a new file race to create it: one may find the file locked while
        // the other switches it to WAL, or fail a migration the other has just applied. Both are retried
        // (a few times, briefly); anything else is reported at once.
        let mut attempt = 1;
        loop {
            let opened = async {
                let pool =
                    SqlitePoolOptions::new().max_connections(4).connect_with(options.clone()).await.map_err(|e| {
                        let race = is_busy(&e);
                        (race, unavailable(disk_trouble(&e).unwrap_or_else(|| e.to_string())).caused_by(e))
                    })?;
                let sink = SqliteSink { pool, describe: describe.clone() };
                sink.migrate().await?;
                Ok::<_, (bool, SinkError)>(sink)
            }
            .await;
            match opened {
                Ok(sink) => {
                    tracing::debug!(target = %sink.describe, "sqlite sink ready");
                    return Ok(sink);
                }
                Err((true, e)) if attempt < OPEN_ATTEMPTS => {
                    tracing::debug!(target = %describe, attempt, error = %e, "another process is creating the database");
                    tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
                    attempt += 1;
                }
                Err((_, e)) => return Err(e),
            }
        }
    }

    /// The connection pool (the SQLite lease store shares it).
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Moves what the write-ahead log holds into the database file and empties the log, so a finished
    /// run leaves one self-contained file (the `-wal` beside it is empty). Best effort: a reader holding
    /// the log open only delays it, and committed data is safe either way.
    async fn checkpoint_wal(&self) {
        if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(&self.pool).await {
            tracing::debug!(target = %self.describe, error = %e, "the write-ahead log was not checkpointed");
        }
    }

    /// Applies the migrations; the flag of an error says whether it came from racing another process
    /// (then opening again can succeed).
    async fn migrate(&self) -> Result<(), (bool, SinkError)> {
        let schema = |message: String| SinkError::schema(self.describe.clone(), message);
        let names: Vec<String> = sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| match disk_trouble(&e) {
                Some(message) => (false, SinkError::write(self.describe.clone(), message).caused_by(e)),
                None => (is_busy(&e), schema(e.to_string()).caused_by(e)),
            })?;
        let has_history = names.iter().any(|n| n == "_sqlx_migrations");
        let foreign: Vec<&str> =
            OWN_OBJECTS.iter().copied().filter(|o| names.iter().any(|n| n.eq_ignore_ascii_case(o))).collect();
        if !has_history && !foreign.is_empty() {
            return Err((
                false,
                schema(format!(
                    "{} already exist{} but {} not created by genesys-intervals (no migration history); nothing \
                     was changed: use another database file",
                    foreign.join(", "),
                    if foreign.len() == 1 { "s" } else { "" },
                    if foreign.len() == 1 { "was" } else { "were" },
                )),
            ));
        }
        let applied_before = self.applied_migrations().await;
        if let Err(e) = MIGRATOR.run(&self.pool).await {
            if let MigrateError::Execute(db) | MigrateError::ExecuteMigration(db, _) = &e {
                if let Some(message) = disk_trouble(db) {
                    return Err((false, SinkError::write(self.describe.clone(), message)));
                }
            }
            // Another process applied migrations meanwhile (the history grew under us): a race.
            let race = matches!(&e, MigrateError::Execute(db) if is_busy(db))
                || self.applied_migrations().await > applied_before;
            return Err((race, schema(migrate_message(&e))));
        }
        for check in [
            "SELECT org, user_id, media_type, queue_id, granularity, interval_start, interval_end, metrics, fetched_at \
             FROM agent_intervals LIMIT 0",
            "SELECT org, fingerprint, window_start, window_end, rows, fetched_at FROM ingest_windows LIMIT 0",
        ] {
            sqlx::query(check).fetch_all(&self.pool).await.map_err(|e| (false, schema(e.to_string()).caused_by(e)))?;
        }
        Ok(())
    }

    /// How many migrations the history records as applied (0 without a history).
    async fn applied_migrations(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
            .fetch_one(&self.pool)
            .await
            .unwrap_or(0)
    }

    /// Writes one chunk of grain rows (a size of [`INSERT_SIZES`]).
    async fn insert(
        &self,
        tx: &mut sqlx::SqliteConnection,
        org: &str,
        granularity: &str,
        fetched_s: i64,
        rows: &[GrainRow<'_>],
    ) -> Result<(), SinkError> {
        let typed = typed_range(rows);
        let sql = insert_statement(rows.len(), typed.clone());
        let mut insert = sqlx::query(&sql);
        for g in rows {
            insert = insert.bind(org).bind(granularity).bind(fetched_s);
            insert = insert.bind(&*g.dims[0]).bind(&*g.dims[1]).bind(&*g.dims[2]).bind(g.start).bind(g.end);
            for t in &g.typed[typed.clone()] {
                insert = match *t {
                    Num::Null => insert.bind(None::<i64>),
                    Num::Int(v) => insert.bind(v),
                    Num::Real(v) => insert.bind(v),
                };
            }
            insert = insert.bind(g.other.as_deref());
        }
        insert.execute(&mut *tx).await.map_err(|e| self.write_error(e))?;
        Ok(())
    }

    fn write_error(&self, e: impl std::fmt::Display + 'static) -> SinkError {
        let disk = (&e as &dyn std::any::Any).downcast_ref::<sqlx::Error>().and_then(disk_trouble);
        match disk {
            Some(message) => SinkError::write(
                self.describe.clone(),
                format!("{message} to continue: what was committed before is kept"),
            ),
            None => SinkError::write(self.describe.clone(), e.to_string()),
        }
    }

    fn read_error(&self, e: impl std::error::Error + Send + Sync + 'static) -> SinkError {
        SinkError::read(self.describe.clone(), e.to_string()).caused_by(e)
    }
}

/// The page cache of each connection, KiB (SQLite's default is 2,000).
const CACHE_KIB: u32 = 4 * 1024;

/// How often opening a database is tried when another process is creating it at the same time.
const OPEN_ATTEMPTS: u32 = 6;

/// SQLite's "database is busy / locked" (codes 5 and 6): another connection holds the lock.
fn is_busy(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => matches!(db.code().as_deref(), Some("5" | "6" | "261" | "517")),
        _ => false,
    }
}

/// A full disk, or a write the file system refused, said as such (SQLite only says "database or disk
/// is full" or "disk I/O error", naming neither the file nor the OS error); `None` for any other error.
fn disk_trouble(e: &sqlx::Error) -> Option<String> {
    let sqlx::Error::Database(db) = e else { return None };
    let code: u32 = db.code()?.parse().ok()?;
    // SQLite's unix VFS reports a write failing with ENOSPC as SQLITE_FULL (13), and one failing with
    // any other OS error (EFBIG, EDQUOT, EIO) as SQLITE_IOERR_WRITE; the others are SQLITE_IOERR_FSYNC,
    // _DIR_FSYNC, _TRUNCATE, _SHMSIZE and _SHMMAP.
    let cause = match code {
        13 => "no space left on device",
        778 | 1034 | 1290 | 1546 | 4874 | 5386 => {
            "the database file, or its -wal or -shm file beside it, could not be written: the disk is full, the \
             file has reached a size limit (ulimit -f) or a quota, or the device failed"
        }
        _ => return None,
    };
    Some(format!("{cause} (SQLite: {}, code {code}); make room, then run again", db.message()))
}

/// A migration failure, explained.
pub(crate) fn migrate_message(e: &MigrateError) -> String {
    match e {
        MigrateError::VersionMissing(v) => format!(
            "the database has migration {v}, which this version of genesys-intervals does not know (a newer \
             version, or another tool's migrations); nothing was changed"
        ),
        MigrateError::VersionMismatch(v) => {
            format!("migration {v} in the database differs from this version's; nothing was changed")
        }
        MigrateError::Dirty(v) => format!("migration {v} was left half-applied; repair the database first"),
        other => format!("applying the schema failed; nothing was changed: {other}"),
    }
}

/// A typed column's value: SQLite keeps an integral number as an INTEGER (what the JSON of
/// schema v4 held for it: `1450300`, not `1450300.0`), any other as a REAL.
#[derive(Debug, Clone, Copy)]
enum Num {
    Null,
    Int(i64),
    Real(f64),
}

impl PartialEq for Num {
    fn eq(&self, other: &Num) -> bool {
        match (self, other) {
            (Num::Null, Num::Null) => true,
            (Num::Int(a), Num::Int(b)) => a == b,
            (Num::Real(a), Num::Real(b)) => a.to_bits() == b.to_bits(),
            _ => false,
        }
    }
}

impl Num {
    /// A statistic as stored: integral values below 2^63 as INTEGER (as the JSON of before).
    fn of(v: Option<f64>) -> Num {
        match v.filter(|v| v.is_finite()) {
            None => Num::Null,
            Some(x) if x.fract() == 0.0 && x.abs() < 9.2e18 => Num::Int(x as i64),
            Some(x) => Num::Real(x),
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, Num::Null)
    }
}

/// One grain as stored: its key, its end when not the granularity's length after its start, its
/// typed columns and the JSON object of its other metrics.
#[derive(Debug, Clone)]
struct GrainRow<'a> {
    dims: [std::borrow::Cow<'a, str>; 3],
    start: i64,
    end: Option<i64>,
    typed: [Num; TYPED_COLUMNS],
    other: Option<String>,
}

impl GrainRow<'_> {
    fn is_empty(&self) -> bool {
        self.other.is_none() && self.typed.iter().all(Num::is_null)
    }
}

/// The nominal length of a bucket of `granularity`, in seconds.
fn nominal_seconds(granularity: Granularity) -> i64 {
    match granularity {
        Granularity::Pt15m => 900,
        Granularity::Pt30m => 1800,
        Granularity::Pt1h => 3600,
        Granularity::P1d => 86_400,
    }
}

/// Forms the stored rows of a window's grains.
struct Encoder {
    length: i64,
    finder: TypedKeyFinder,
    others: Vec<usize>,
}

impl Encoder {
    fn row<'a>(&mut self, g: &Grain<'a>) -> GrainRow<'a> {
        let mut typed = [Num::Null; TYPED_COLUMNS];
        self.others.clear();
        for (i, row) in g.rows.iter().enumerate() {
            match self.finder.find(row).filter(|k| fits(&TYPED_KEYS[*k], row.stats(), i64::MAX as u64)) {
                Some(k) => {
                    let s = row.stats();
                    for (j, (stat, _)) in TYPED_KEYS[k].columns.iter().enumerate() {
                        typed[FIRST_COLUMN[k] + j] = match stat {
                            Stat::Count => s.count.map_or(Num::Null, |c| Num::Int(c as i64)),
                            Stat::Sum => Num::of(s.sum),
                            Stat::Min => Num::of(s.min),
                            Stat::Max => Num::of(s.max),
                        };
                    }
                }
                None => self.others.push(i),
            }
        }
        let other = (!self.others.is_empty()).then(|| {
            let mut json = String::with_capacity(64 * self.others.len());
            push_rows_json(&mut json, self.others.iter().map(|i| g.rows[*i]));
            json
        });
        let (start, end) = (g.bucket.start().timestamp(), g.bucket.end().timestamp());
        GrainRow {
            dims: g.dims.map(std::borrow::Cow::Borrowed),
            start,
            end: (end - start != self.length).then_some(end),
            typed,
            other,
        }
    }
}

/// The typed columns of the conversation keys (the first in [`TYPED_KEYS`]); the status keys' follow.
const CONVERSATION_COLUMNS: usize = 17;

/// Which typed columns an insert statement names: a grain of one family has none of the other's
/// values, and a column left out of an `INSERT OR REPLACE` is NULL.
fn typed_range(rows: &[GrainRow<'_>]) -> std::ops::Range<usize> {
    let has = |range: std::ops::Range<usize>| rows.iter().any(|g| g.typed[range.clone()].iter().any(|t| !t.is_null()));
    match (has(0..CONVERSATION_COLUMNS), has(CONVERSATION_COLUMNS..TYPED_COLUMNS)) {
        (true, false) => 0..CONVERSATION_COLUMNS,
        (false, true) => CONVERSATION_COLUMNS..TYPED_COLUMNS,
        _ => 0..TYPED_COLUMNS,
    }
}

/// Grain rows per insert statement, largest first: a window's rows go in chunks of these sizes
/// only, so each connection prepares (and caches) a few statements, never one per remainder. 256 x
/// 41 parameters are well under SQLite's limit of 32,766.
const INSERT_SIZES: [usize; 3] = [256, 16, 1];

/// `rows` cut into chunks of [`INSERT_SIZES`].
fn insert_chunks<T>(mut rows: &[T]) -> impl Iterator<Item = &[T]> {
    std::iter::from_fn(move || {
        let size = INSERT_SIZES.into_iter().find(|s| *s <= rows.len())?;
        let (chunk, rest) = rows.split_at(size);
        rows = rest;
        Some(chunk)
    })
}

/// `INSERT OR REPLACE ... VALUES (...), ...` of `rows` grain rows naming the typed columns of
/// `typed`: org, granularity, fetched_s, user_id, media_type, queue_id, start_s, end_s, the typed
/// columns, other_metrics. Every column of a written grain is set (the merge is done before), so a
/// stored grain of the same key is replaced whole. The parameters are anonymous (`?`): SQLite finds
/// a numbered one's name by a linear search, which sqlx does for every parameter, quadratic in a
/// statement of thousands.
fn insert_statement(rows: usize, typed: std::ops::Range<usize>) -> String {
    let names: Vec<&str> = typed_columns().map(|(_, c)| c).collect();
    let params = 8 + typed.len() + 1;
    let mut sql = format!(
        "INSERT OR REPLACE INTO agent_intervals (org, granularity, fetched_s, user_id, media_type, queue_id, \
         start_s, end_s, {}, other_metrics) VALUES ",
        names[typed].join(", ")
    );
    let mut one = String::from("(?");
    for _ in 1..params {
        one.push_str(",?");
    }
    one.push(')');
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push_str(&one);
    }
    sql
}

/// A stored grain's typed value (INTEGER, REAL or NULL).
fn num_at(row: &sqlx::sqlite::SqliteRow, i: usize) -> Result<Num, sqlx::Error> {
    use sqlx::{TypeInfo, ValueRef};
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(Num::Null);
    }
    match raw.type_info().name() {
        "INTEGER" => Ok(Num::Int(row.try_get(i)?)),
        _ => Ok(Num::Real(row.try_get(i)?)),
    }
}

#[async_trait]
impl Sink for SqliteSink {
    async fn write_window(&self, key: &WindowKey, rows: &[MetricRow]) -> Result<WriteStats, SinkError> {
        let query = key.query();
        let window = key.window();
        let granularity = query.granularity().as_iso();
        let now = Utc::now();
        let fetched = grains(query, rows);
        let mut encoder = Encoder {
            length: nominal_seconds(query.granularity()),
            finder: TypedKeyFinder::default(),
            others: Vec::with_capacity(8),
        };

        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await.map_err(|e| self.write_error(e))?;

        // What the scope holds now (nothing, for a window read the first time).
        let typed_list: Vec<&str> = typed_columns().map(|(_, c)| c).collect();
        let mut sql = format!(
            "SELECT user_id, media_type, queue_id, start_s, end_s, {}, other_metrics FROM agent_intervals \
             WHERE org = ? AND granularity = ? AND start_s >= ? AND start_s < ?",
            typed_list.join(", ")
        );
        let mut filters: Vec<String> = Vec::new();
        for (scope, (_, column)) in dimension_scopes(query).iter().zip(DIMENSION_COLUMNS) {
            match scope {
                DimensionScope::Any => {}
                DimensionScope::Empty => sql.push_str(&format!(" AND {column} = ''")),
                DimensionScope::OneOf(values) => {
                    sql.push_str(&format!(" AND {column} IN (SELECT value FROM json_each(?))"));
                    filters.push(Value::from(values.to_vec()).to_string());
                }
            }
        }
        let mut select = sqlx::query(&sql)
            .bind(key.org())
            .bind(granularity)
            .bind(window.start().timestamp())
            .bind(window.end().timestamp());
        for f in &filters {
            select = select.bind(f);
        }
        let stored_rows = select.fetch_all(&mut *tx).await.map_err(|e| self.write_error(e))?;
        let mut deletes: Vec<[String; 4]> = Vec::new();
        // The grains to write when some are stored (a re-read); else each chunk's are formed as it is written.
        let mut planned: Option<Vec<GrainRow<'_>>> = None;
        if !stored_rows.is_empty() {
            let mut merged: Vec<GrainRow<'_>> = fetched.iter().map(|g| encoder.row(g)).collect();
            let metrics = query.metrics();
            let owned: Vec<bool> = {
                let owned = owned_columns(metrics);
                typed_columns().map(|(_, c)| owned.contains(&c)).collect()
            };
            let mut stored: HashMap<(String, String, String, i64), GrainRow<'static>> =
                HashMap::with_capacity(stored_rows.len());
            for row in &stored_rows {
                let read = || -> Result<GrainRow<'static>, sqlx::Error> {
                    let mut typed = [Num::Null; TYPED_COLUMNS];
                    for (i, t) in typed.iter_mut().enumerate() {
                        *t = num_at(row, 5 + i)?;
                    }
                    Ok(GrainRow {
                        dims: [
                            row.try_get::<String, _>(0)?.into(),
                            row.try_get::<String, _>(1)?.into(),
                            row.try_get::<String, _>(2)?.into(),
                        ],
                        start: row.try_get(3)?,
                        end: row.try_get(4)?,
                        typed,
                        other: row.try_get(5 + TYPED_COLUMNS)?,
                    })
                };
                let g = read().map_err(|e| self.write_error(e))?;
                stored.insert((g.dims[0].to_string(), g.dims[1].to_string(), g.dims[2].to_string(), g.start), g);
            }
            // The merge: the query's typed columns and keys replaced by the fetched ones, the rest kept;
            // a grain whose values do not change is not written.
            let merge_other = |old: Option<&str>, new: Option<&str>| -> Result<(Option<String>, bool), String> {
                let old_map = old.map(parse_object).transpose()?.unwrap_or_default();
                let mut map: Map<String, Value> = old_map
                    .iter()
                    .filter(|(k, _)| !is_requested(k, metrics))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                if let Some(new) = new {
                    map.extend(parse_object(new)?);
                }
                let changed = map != old_map;
                Ok(((!map.is_empty()).then(|| Value::Object(map).to_string()), changed))
            };
            let mut kept: Vec<GrainRow<'_>> = Vec::with_capacity(merged.len());
            for mut g in merged.drain(..) {
                let k = (g.dims[0].to_string(), g.dims[1].to_string(), g.dims[2].to_string(), g.start);
                match stored.remove(&k) {
                    None => kept.push(g),
                    Some(old) => {
                        let mut changed = old.end != g.end;
                        for (i, t) in g.typed.iter_mut().enumerate() {
                            if !owned[i] {
                                *t = old.typed[i];
                            }
                            changed |= *t != old.typed[i];
                        }
                        if old.other.is_some() {
                            let (other, other_changed) = merge_other(old.other.as_deref(), g.other.as_deref())
                                .map_err(|e| self.write_error(e))?;
                            g.other = other;
                            changed |= other_changed;
                        } else {
                            changed |= g.other.is_some();
                        }
                        if changed {
                            kept.push(g);
                        }
                    }
                }
            }
            merged = kept;
            // Stored grains the window no longer returns lose the query's metrics.
            for (_, mut old) in stored {
                // A query grouped by userId never removes what another query owns in a user-less grain.
                if !may_remove(query, [&*old.dims[0], &*old.dims[1], &*old.dims[2]]) {
                    continue;
                }
                let mut touched = false;
                for (i, t) in old.typed.iter_mut().enumerate() {
                    if owned[i] && !t.is_null() {
                        *t = Num::Null;
                        touched = true;
                    }
                }
                if old.other.is_some() {
                    let (other, changed) = merge_other(old.other.as_deref(), None).map_err(|e| self.write_error(e))?;
                    old.other = other;
                    touched |= changed;
                }
                if !touched {
                    continue;
                }
                if old.is_empty() {
                    let [u, m, q] = old.dims;
                    deletes.push([u.into_owned(), m.into_owned(), q.into_owned(), old.start.to_string()]);
                } else {
                    merged.push(old);
                }
            }
            planned = Some(merged);
        }

        let org = key.org();
        let fetched_s = now.timestamp();
        match &planned {
            Some(planned) => {
                for chunk in insert_chunks(planned) {
                    self.insert(&mut tx, org, granularity, fetched_s, chunk).await?;
                }
            }
            None => {
                let mut chunk_rows: Vec<GrainRow<'_>> = Vec::with_capacity(INSERT_SIZES[0]);
                for chunk in insert_chunks(&fetched) {
                    chunk_rows.clear();
                    chunk_rows.extend(chunk.iter().map(|g| encoder.row(g)));
                    self.insert(&mut tx, org, granularity, fetched_s, &chunk_rows).await?;
                }
            }
        }
        if !deletes.is_empty() {
            sqlx::query(
                "DELETE FROM agent_intervals WHERE org = ?1 AND granularity = ?2 \
                 AND (user_id, media_type, queue_id, start_s) IN \
                 (SELECT value ->> 0, value ->> 1, value ->> 2, CAST(value ->> 3 AS INTEGER) FROM json_each(?3))",
            )
            .bind(org)
            .bind(granularity)
            .bind(json_rows(&deletes))
            .execute(&mut *tx)
            .await
            .map_err(|e| self.write_error(e))?;
        }
        let now = rfc3339(now);
        let (start, end) = (rfc3339(window.start()), rfc3339(window.end()));
        let query = key.query();
        sqlx::query(
            "INSERT INTO ingest_queries (org, fingerprint, family, granularity, time_zone, description, first_seen) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (org, fingerprint) DO NOTHING",
        )
        .bind(key.org())
        .bind(key.fingerprint())
        .bind(query.family().describe())
        .bind(query.granularity().as_iso())
        .bind(query.time_zone().name())
        .bind(query.describe())
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.write_error(e))?;
        sqlx::query(
            "INSERT INTO ingest_windows (org, fingerprint, window_start, window_end, rows, fetched_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
             ON CONFLICT (org, fingerprint, window_start, window_end) DO UPDATE SET \
             rows = excluded.rows, fetched_at = excluded.fetched_at",
        )
        .bind(key.org())
        .bind(key.fingerprint())
        .bind(&start)
        .bind(&end)
        .bind(rows.len() as i64)
        .bind(&now)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.write_error(e))?;
        tx.commit().await.map_err(|e| self.write_error(e))?;
        Ok(WriteStats { rows_deleted: deletes.len() as u64 })
    }

    async fn finish(&self) -> Result<(), SinkError> {
        self.checkpoint_wal().await;
        Ok(())
    }

    fn describe(&self) -> String {
        self.describe.clone()
    }
}

fn parse_object(json: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(json) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(format!("stored metrics are not a JSON object: {json}")),
        Err(e) => Err(format!("stored metrics are not valid JSON ({e}): {json}")),
    }
}

/// `[["a","b"],...]`: rows of strings as one JSON parameter for `json_each`.
fn json_rows<const N: usize>(rows: &[[String; N]]) -> String {
    let mut out = String::with_capacity(rows.len() * (N * 16 + 64));
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        for (j, value) in row.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            push_json_string(&mut out, value);
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// `[[...],...]` with `null` for `None`.
fn json_rows_opt(rows: &[Vec<Option<&str>>]) -> String {
    let mut out = String::from("[");
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        for (j, value) in row.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            match value {
                Some(v) => push_json_string(&mut out, v),
                None => out.push_str("null"),
            }
        }
        out.push(']');
    }
    out.push(']');
    out
}

#[async_trait]
impl CheckpointStore for SqliteSink {
    async fn completed_windows(
        &self,
        org: &str,
        fingerprint: &str,
        range: TimeWindow,
    ) -> Result<Vec<TimeWindow>, SinkError> {
        let rows: Vec<(String, String)> = sqlx::query_as(
            "SELECT window_start, window_end FROM ingest_windows \
             WHERE org = ? AND fingerprint = ? AND window_start >= ? AND window_end <= ? \
             ORDER BY window_start, window_end",
        )
        .bind(org)
        .bind(fingerprint)
        .bind(rfc3339(range.start()))
        .bind(rfc3339(range.end()))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.read_error(e))?;
        rows.into_iter()
            .map(|(s, e)| {
                let parse = |t: &str| DateTime::parse_from_rfc3339(t).map(|t| t.with_timezone(&Utc));
                match (parse(&s), parse(&e)) {
                    (Ok(s), Ok(e)) => TimeWindow::new(s, e).map_err(|e| e.to_string()),
                    _ => Err(format!("bad checkpoint timestamps {s:?} / {e:?}")),
                }
                .map_err(|message| SinkError::schema(self.describe.clone(), message))
            })
            .collect()
    }
}

#[async_trait]
impl DirectoryWriter for SqliteSink {
    async fn write_users(&self, org: &str, users: &[User]) -> Result<u64, SinkError> {
        let users = dedup_by_id(users, |u| &u.id);
        let rows: Vec<Vec<Option<&str>>> = users
            .iter()
            .map(|u| {
                vec![
                    Some(u.id.as_str()),
                    Some(u.name.as_str()),
                    u.email.as_deref(),
                    Some(u.state.as_str()),
                    u.division_id.as_deref(),
                    u.division_name.as_deref(),
                ]
            })
            .collect();
        sqlx::query(
            "INSERT INTO users (org, id, name, email, state, division_id, division_name, fetched_at) \
             SELECT ?1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, ?2 \
             FROM json_each(?3) WHERE true \
             ON CONFLICT (org, id) DO UPDATE SET name = excluded.name, email = excluded.email, \
             state = excluded.state, division_id = excluded.division_id, division_name = excluded.division_name, \
             fetched_at = excluded.fetched_at",
        )
        .bind(org)
        .bind(rfc3339(Utc::now()))
        .bind(json_rows_opt(&rows))
        .execute(&self.pool)
        .await
        .map_err(|e| self.write_error(e))?;
        Ok(users.len() as u64)
    }

    async fn finish(&self) -> Result<(), SinkError> {
        self.checkpoint_wal().await;
        Ok(())
    }

    async fn write_queues(&self, org: &str, queues: &[Queue]) -> Result<u64, SinkError> {
        let queues = dedup_by_id(queues, |q| &q.id);
        let rows: Vec<Vec<Option<&str>>> = queues
            .iter()
            .map(|q| {
                vec![Some(q.id.as_str()), Some(q.name.as_str()), q.division_id.as_deref(), q.division_name.as_deref()]
            })
            .collect();
        sqlx::query(
            "INSERT INTO queues (org, id, name, division_id, division_name, fetched_at) \
             SELECT ?1, value ->> 0, value ->> 1, value ->> 2, value ->> 3, ?2 \
             FROM json_each(?3) WHERE true \
             ON CONFLICT (org, id) DO UPDATE SET name = excluded.name, division_id = excluded.division_id, \
             division_name = excluded.division_name, fetched_at = excluded.fetched_at",
        )
        .bind(org)
        .bind(rfc3339(Utc::now()))
        .bind(json_rows_opt(&rows))
        .execute(&self.pool)
        .await
        .map_err(|e| self.write_error(e))?;
        Ok(queues.len() as u64)
    }
}

// --- The output kind (the registry entry is in `sinks/mod.rs`) ------------------------------------

/// `sqlite:PATH`.
pub(crate) struct SqliteKind;

impl OutputKind for SqliteKind {
    fn schemes(&self) -> &'static [&'static str] {
        &["sqlite"]
    }
    fn form(&self) -> &'static str {
        "sqlite:PATH"
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            checkpoints: true,
            directory: true,
            leases: Leases::OneDaemon,
            wide_layout: false,
            read_back: true,
        }
    }
    /// A file path; an in-memory database (gone when the run ends) and a path that is not a
    /// regular file (a device, a FIFO, a socket: SQLite needs a file it can lock and sync) are
    /// refused before anything is sent.
    fn parse(&self, url: &str) -> Result<Box<dyn OutputConfig>, String> {
        let path = file_path(url)?;
        let text = path.to_string_lossy();
        if text == ":memory:" || text.contains("mode=memory") {
            return Err(format!(
                "{text} is an in-memory database, gone when the run ends: give the path of a database file \
                 (sqlite:PATH)"
            ));
        }
        match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_file() && !meta.is_dir() => Err(format!(
                "{} is not a regular file (a device, a FIFO or a socket): SQLite needs a database file it can lock \
                 and sync; give the path of a file",
                path.display()
            )),
            _ => Ok(Box::new(SqliteConfig { path })),
        }
    }
}

#[derive(Debug)]
struct SqliteConfig {
    path: PathBuf,
}

#[async_trait]
impl OutputConfig for SqliteConfig {
    fn describe(&self) -> String {
        format!("sqlite:{}", self.path.display())
    }
    fn look_hint(&self) -> Option<String> {
        Some(format!("sqlite3 {} \"{SQL_LOOK}\"", self.path.display()))
    }
    async fn open_metrics(&self, _: &MetricsContext) -> Result<WindowTarget, SinkError> {
        Ok(WindowTarget::Checkpointed(Arc::new(SqliteSink::open(&self.path).await?)))
    }
    async fn open_directory(&self) -> Result<Arc<dyn DirectoryWriter>, SinkError> {
        Ok(Arc::new(SqliteSink::open(&self.path).await?))
    }
    async fn open_reader(&self) -> Result<Option<Arc<dyn intervals_app::IntervalsReader>>, SinkError> {
        Ok(Some(Arc::new(super::sqlite_reader::SqliteReader::open(&self.path).await?)))
    }
    async fn open_store(&self) -> Result<Store, SinkError> {
        let sink = SqliteSink::open(&self.path).await?;
        let leases = SqliteLeaseStore::new(&sink);
        Ok(Store { sink: Arc::new(sink), leases: Arc::new(leases) })
    }
}
