//! Reads that may go to a streaming replica (`DATABASE_REPLICA_URL`): reports, rankings and
//! exports, the heavy reads, so that they scale out without touching the primary's writers.
//! When the replica does not answer, reads fall back to the primary (logged) and the replica
//! is tried again after a pause, so a replica outage costs one connection timeout, not one per
//! request.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use anyhow::{anyhow, bail};
use diesel::r2d2::Pool;

use super::pg_manager::PgManager;
use super::{DatabaseUrl, DbConn, DbPool};

/// How long a replica that did not answer is left alone.
const RETRY_AFTER_MILLIS: i64 = 30_000;
/// How long a read waits for a replica connection before using the primary.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The pool for heavy reads: the replica when one is configured and answers, else the primary.
#[derive(Clone)]
pub struct ReadPool {
    primary: DbPool,
    replica: Option<Arc<Replica>>,
}

struct Replica {
    pool: Pool<PgManager>,
    /// Unix milliseconds before which the replica is not tried (it just failed).
    down_until: AtomicI64,
}

impl ReadPool {
    /// Reads from `primary` only.
    pub fn primary_only(primary: DbPool) -> Self {
        Self {
            primary,
            replica: None,
        }
    }

    /// Reads from the replica at `replica_url` (PostgreSQL, and only beside a PostgreSQL
    /// primary). Connects lazily: a replica that is down at start does not stop the service.
    pub fn new(primary: DbPool, replica_url: Option<&str>, max_size: u32) -> anyhow::Result<Self> {
        let Some(url) = replica_url.map(str::trim).filter(|u| !u.is_empty()) else {
            return Ok(Self::primary_only(primary));
        };
        let DatabaseUrl::Postgres(url) =
            DatabaseUrl::parse(url).map_err(|e| anyhow!("DATABASE_REPLICA_URL: {e}"))?
        else {
            bail!("DATABASE_REPLICA_URL must be a postgres:// URL (a streaming replica)");
        };
        if !matches!(primary, DbPool::Postgres(_)) {
            bail!("DATABASE_REPLICA_URL needs a PostgreSQL DATABASE_URL");
        }
        let pool = Pool::builder()
            .max_size(max_size.max(2))
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .build_unchecked(PgManager::checked_every_time(url));
        Ok(Self {
            primary,
            replica: Some(Arc::new(Replica {
                pool,
                down_until: AtomicI64::new(0),
            })),
        })
    }

    /// Whether reads are set to go to a replica.
    pub fn has_replica(&self) -> bool {
        self.replica.is_some()
    }

    /// A connection for heavy reads: the replica's, unless there is none or it does not answer.
    pub fn get(&self) -> anyhow::Result<DbConn> {
        if let Some(replica) = &self.replica {
            let now = chrono::Utc::now().timestamp_millis();
            if replica.down_until.load(Ordering::Relaxed) <= now {
                match replica.pool.get() {
                    Ok(conn) => return Ok(DbConn::Postgres(conn)),
                    Err(e) => {
                        replica
                            .down_until
                            .store(now + RETRY_AFTER_MILLIS, Ordering::Relaxed);
                        tracing::warn!(
                            error = %e,
                            retry_in_seconds = RETRY_AFTER_MILLIS / 1000,
                            "the read replica does not answer; reading from the primary"
                        );
                    }
                }
            }
        }
        self.primary.get()
    }
}
