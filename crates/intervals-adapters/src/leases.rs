//! Per-org leases in PostgreSQL (`ingest_leases`), so that daemon replicas sharing a database never
//! ingest the same org at once.
//!
//! One upsert takes, renews or takes over a lease: it writes the row when there is none, when the
//! row is the caller's, or when the row has expired; expiry is judged by the database's `now()`,
//! so replicas need not agree on time. Releasing deletes the caller's row. The table comes with
//! the PostgreSQL migrations ([`crate::sinks::PostgresSink`] applies them on connect).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use intervals_app::{LeaseGrant, LeaseStore, SinkError};
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
            SinkError::Schema {
                target: describe.clone(),
                message: format!("no usable ingest_leases table ({e}); connect the PostgreSQL sink first"),
            }
        })?;
        Ok(PgLeaseStore { pool, describe })
    }

    /// Who holds `org`'s lease and until when (expired leases included), if anyone.
    pub async fn holder(&self, org: &str) -> Result<Option<(String, DateTime<Utc>)>, SinkError> {
        sqlx::query_as(CURRENT).bind(org).fetch_optional(&self.pool).await.map_err(|e| self.error(e))
    }

    fn error(&self, e: sqlx::Error) -> SinkError {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => {
                SinkError::Unavailable { target: self.describe.clone(), message: e.to_string() }
            }
            e => SinkError::Write { target: self.describe.clone(), message: format!("lease: {e}") },
        }
    }
}

#[async_trait]
impl LeaseStore for PgLeaseStore {
    async fn acquire(&self, org: &str, holder: &str, ttl: Duration) -> Result<LeaseGrant, SinkError> {
        // A concurrent release between the two statements leaves nothing to report: try again.
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
        Err(SinkError::Write {
            target: self.describe.clone(),
            message: format!("lease of {org:?}: the row kept changing; try again"),
        })
    }

    async fn release(&self, org: &str, holder: &str) -> Result<(), SinkError> {
        sqlx::query(RELEASE).bind(org).bind(holder).execute(&self.pool).await.map_err(|e| self.error(e))?;
        Ok(())
    }
}
