//! PostgreSQL connections for the pools: checked with a round trip only after they sat idle.
//!
//! r2d2's default check runs `SELECT 1` on every check-out, i.e. a second round trip and
//! backend wake-up on every request (about a tenth of the PostgreSQL CPU of an answer under
//! load). A connection returned to the pool moments ago is almost surely alive, so, as
//! HikariCP does (its "alive bypass window"), the check runs only for a connection idle longer
//! than [`VALIDATE_AFTER_IDLE`]; that still catches connections a restarted or failed-over
//! server closed while the service was quiet. A connection that dies while busy fails the
//! query that finds it dead; every failed query is noted (diesel's instrumentation), and a
//! connection that saw one is checked when it comes back to the pool and dropped if dead, so
//! a dead connection fails at most one request.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::PgConnection;
use diesel::connection::{Connection, InstrumentationEvent};
use diesel::r2d2::{ConnectionManager, ManageConnection};

/// How long a connection may sit in the pool before its next check-out is checked.
pub const VALIDATE_AFTER_IDLE: Duration = Duration::from_millis(500);

/// Opens and checks the pools' PostgreSQL connections (see the module documentation).
#[derive(Debug)]
pub struct PgManager {
    inner: ConnectionManager<PgConnection>,
    validate_after_idle: Duration,
}

impl PgManager {
    /// For the primary's pool: connections are checked after [`VALIDATE_AFTER_IDLE`].
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            inner: ConnectionManager::new(url),
            validate_after_idle: VALIDATE_AFTER_IDLE,
        }
    }

    /// Checks every check-out: for the replica's pool, whose callers fall back to the primary
    /// only when no live connection can be had (heavy reads, where one round trip is nothing).
    pub fn checked_every_time(url: impl Into<String>) -> Self {
        Self {
            inner: ConnectionManager::new(url),
            validate_after_idle: Duration::ZERO,
        }
    }
}

/// A pooled PostgreSQL connection, when it was last returned to the pool, and whether a query
/// failed on it since.
pub struct PgPooled {
    conn: PgConnection,
    returned_at: Instant,
    query_failed: Arc<AtomicBool>,
}

impl Deref for PgPooled {
    type Target = PgConnection;
    fn deref(&self) -> &PgConnection {
        &self.conn
    }
}

impl DerefMut for PgPooled {
    fn deref_mut(&mut self) -> &mut PgConnection {
        &mut self.conn
    }
}

impl ManageConnection for PgManager {
    type Connection = PgPooled;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<PgPooled, Self::Error> {
        let mut conn = self.inner.connect()?;
        let query_failed = Arc::new(AtomicBool::new(false));
        let noted = query_failed.clone();
        conn.set_instrumentation(move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::FinishQuery { error: Some(_), .. } = event {
                noted.store(true, Ordering::Relaxed);
            }
        });
        Ok(PgPooled {
            conn,
            returned_at: Instant::now(),
            query_failed,
        })
    }

    fn is_valid(&self, conn: &mut PgPooled) -> Result<(), Self::Error> {
        if conn.returned_at.elapsed() < self.validate_after_idle {
            return Ok(());
        }
        self.inner.is_valid(&mut conn.conn)
    }

    /// Called by r2d2 when a connection comes back to the pool: the idle clock starts here, and
    /// a connection on which a query failed (a constraint, or a closed connection) is checked.
    fn has_broken(&self, conn: &mut PgPooled) -> bool {
        conn.returned_at = Instant::now();
        if self.inner.has_broken(&mut conn.conn) {
            return true;
        }
        conn.query_failed.swap(false, Ordering::Relaxed)
            && self.inner.is_valid(&mut conn.conn).is_err()
    }
}
