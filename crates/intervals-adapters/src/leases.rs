//! Per-org leases (`ingest_leases`), so that daemons sharing a database never ingest the same org at
//! once: [`PgLeaseStore`] for replicas sharing PostgreSQL, [`SqliteLeaseStore`] for the one daemon of
//! a SQLite file (a second one started on the same file by mistake waits for the lease).
//!
//! One upsert takes, renews or takes over a lease: it writes the row when there is none, when the
//! row is the caller's, or when the row has expired; expiry is judged by the database's `now()`,
//! so replicas need not agree on time. Releasing deletes the caller's row. The table comes with
//! the PostgreSQL migrations ([`crate::sinks::PostgresSink`] applies them on connect).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use intervals_app::{LeaseError, LeaseGrant, LeaseStore, SinkError};
use sqlx::postgres::PgPool;

use crate::sinks::PostgresSink;

const ACQUIRE: &str = "INSERT INTO ingest_leases AS l (org, holder, expires_at) \
    VALUES ($1, $2, now() + make_interval(secs => $3)) \
    ON CONFLICT (org) DO UPDATE SET holder = EXCLUDED.holder, expires_at = EXCLUDED.expires_at \
    WHERE l.holder = EXCLUDED.holder OR l.expires_at <= now() \
    RETURNING expires_at";

const CURRENT: &str = "SELECT holder, expires_at FROM ingest_leases WHERE org = $1";

const RELEASE: &str = "DELETE FROM ingest_leases WHERE org = $1 AND holder = $2";

/// The PostgreSQL [`LeaseStore`].
#[derive(Debug, Clone)]
pub struct PgLeaseStore {
    pool: PgPool,
    describe: String,
}

impl PgLeaseStore {
    /// Connects to `url` the way [`PostgresSink::connect`] does (migrations applied, errors
    /// without the password).
    pub async fn connect(url: &str) -> Result<PgLeaseStore, SinkError> {
        let sink = PostgresSink::connect(url).await?;
        PgLeaseStore::from_pool(sink.pool().clone()).await
    }

    /// A lease store on an existing pool (e.g. [`PostgresSink::pool`]) whose database has the
    /// migrations applied; fails with `SinkError::Schema` when `ingest_leases` is missing.
    pub async fn from_pool(pool: PgPool) -> Result<PgLeaseStore, SinkError> {
        let options = pool.connect_options();
        let user = options.get_username();
        let describe = format!(
            "postgres://{user}@{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or(user)
        );
        sqlx::query("SELECT org, holder, expires_at FROM ingest_leases LIMIT 0").execute(&pool).await.map_err(|e| {
            let message = format!("no usable ingest_leases table ({e}); connect the PostgreSQL sink first");
            SinkError::schema(describe.clone(), message).caused_by(e)
        })?;
        Ok(PgLeaseStore { pool, describe })
    }

    /// Who holds `org`'s lease and until when (expired leases included), if anyone.
    pub async fn holder(&self, org: &str) -> Result<Option<(String, DateTime<Utc>)>, LeaseError> {
        sqlx::query_as(CURRENT).bind(org).fetch_optional(&self.pool).await.map_err(|e| self.error(e))
    }

    fn error(&self, e: sqlx::Error) -> LeaseError {
        LeaseError::new(self.describe.clone(), e.to_string()).caused_by(e)
    }
}

#[async_trait]
impl LeaseStore for PgLeaseStore {
    async fn acquire(&self, org: &str, holder: &str, ttl: Duration) -> Result<LeaseGrant, LeaseError> {
        // Not a retry of a failure (the caller's next tick is that): a release by another replica
        // between the two statements leaves nothing to report, so the pair is read again, a bounded
        // number of times.
        for _ in 0..3 {
            let taken: Option<(DateTime<Utc>,)> = sqlx::query_as(ACQUIRE)
                .bind(org)
                .bind(holder)
                .bind(ttl.as_secs_f64())
                .fetch_optional(&self.pool)
                .await
                .map_err(|e| self.error(e))?;
            if let Some((expires_at,)) = taken {
                return Ok(LeaseGrant::Held { expires_at });
            }
            if let Some((holder, expires_at)) = self.holder(org).await? {
                return Ok(LeaseGrant::HeldBy { holder, expires_at });
            }
        }
        Err(LeaseError::new(self.describe.clone(), format!("lease of {org:?}: the row kept changing; try again")))
    }

    async fn release(&self, org: &str, holder: &str) -> Result<(), LeaseError> {
        sqlx::query(RELEASE).bind(org).bind(holder).execute(&self.pool).await.map_err(|e| self.error(e))?;
        Ok(())
    }
}

const SQLITE_NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

/// The SQLite [`LeaseStore`]: the same upsert as PostgreSQL's, in the sink's own file, with the
/// file's clock (`julianday('now')`).
#[derive(Debug, Clone)]
pub struct SqliteLeaseStore {
    pool: sqlx::SqlitePool,
    describe: String,
}

impl SqliteLeaseStore {
    /// Leases in `sink`'s file (its migrations create `ingest_leases`).
    pub fn new(sink: &crate::sinks::SqliteSink) -> SqliteLeaseStore {
        SqliteLeaseStore { pool: sink.pool().clone(), describe: intervals_app::Sink::describe(sink) }
    }

    fn error(&self, e: sqlx::Error) -> LeaseError {
        LeaseError::new(self.describe.clone(), e.to_string()).caused_by(e)
    }
}

fn from_millis(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

#[async_trait]
impl LeaseStore for SqliteLeaseStore {
    async fn acquire(&self, org: &str, holder: &str, ttl: Duration) -> Result<LeaseGrant, LeaseError> {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let acquire = format!(
            "INSERT INTO ingest_leases AS l (org, holder, expires_at) VALUES (?1, ?2, {SQLITE_NOW_MS} + ?3) \
             ON CONFLICT (org) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE l.holder = excluded.holder OR l.expires_at <= {SQLITE_NOW_MS} \
             RETURNING expires_at"
        );
        // One connection, one transaction: SQLite serialises writers, so no other daemon can slip
        // between the upsert and the read of the current holder.
        let mut tx = self.pool.begin().await.map_err(|e| self.error(e))?;
        let taken: Option<(i64,)> = sqlx::query_as(&acquire)
            .bind(org)
            .bind(holder)
            .bind(ttl_ms)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.error(e))?;
        let grant = match taken {
            Some((expires_at,)) => LeaseGrant::Held { expires_at: from_millis(expires_at) },
            None => {
                let (holder, expires_at): (String, i64) =
                    sqlx::query_as("SELECT holder, expires_at FROM ingest_leases WHERE org = ?1")
                        .bind(org)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(|e| self.error(e))?;
                LeaseGrant::HeldBy { holder, expires_at: from_millis(expires_at) }
            }
        };
        tx.commit().await.map_err(|e| self.error(e))?;
        Ok(grant)
    }

    async fn release(&self, org: &str, holder: &str) -> Result<(), LeaseError> {
        sqlx::query("DELETE FROM ingest_leases WHERE org = ?1 AND holder = ?2")
            .bind(org)
            .bind(holder)
            .execute(&self.pool)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }
}
