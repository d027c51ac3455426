//! The start-up lock: migrations, the survey-form sync, the secret check and the rollup rebuild
//! run by one instance at a time, so instances started together on one database neither fail on
//! each other's half-done work nor do the same work twice (a rollup rebuild done twice would
//! double every published figure).
//!
//! PostgreSQL: a session advisory lock held on a connection of its own, outside the pool, keyed
//! by the schema, so two sipas databases in one PostgreSQL database do not wait for each other.
//! If the holder dies its connection closes and the server releases the lock. SQLite: a lock
//! within this process only; a SQLite database serves one process (see README, "Production").

use std::sync::{Mutex, MutexGuard};

use anyhow::Context;
use diesel::prelude::*;
use diesel::sql_types::Bool;

use super::DatabaseUrl;

/// Serialises start-up work of SQLite databases within this process (tests start many apps).
static SQLITE_STARTUP: Mutex<()> = Mutex::new(());

/// Held while an instance does its start-up work; released when dropped.
pub struct StartupLock {
    _held: Held,
}

enum Held {
    Postgres(PgConnection),
    Sqlite(#[allow(dead_code)] MutexGuard<'static, ()>),
}

#[derive(QueryableByName)]
struct Acquired {
    #[diesel(sql_type = Bool)]
    acquired: bool,
}

/// The lock key: one per schema (the first of the connection's `search_path` that exists).
const KEY_SQL: &str = "hashtextextended('sipas-startup:' || coalesce(current_schema(), ''), 0)";

impl StartupLock {
    /// Waits until no other instance on the same database is starting, then returns the lock.
    /// `what` names the work in the log line written while waiting.
    pub fn acquire(url: &DatabaseUrl, what: &str) -> anyhow::Result<Self> {
        let held = match url {
            DatabaseUrl::Sqlite(_) => Held::Sqlite(
                SQLITE_STARTUP
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner()),
            ),
            DatabaseUrl::Postgres(url) => {
                let mut conn = PgConnection::establish(url)
                    .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL: {e}"))?;
                let got: Acquired = diesel::sql_query(format!(
                    "SELECT pg_try_advisory_lock({KEY_SQL}) AS acquired"
                ))
                .get_result(&mut conn)
                .context("cannot take the start-up lock")?;
                if !got.acquired {
                    tracing::info!(
                        work = what,
                        "another instance is starting on this database; waiting for it"
                    );
                    diesel::sql_query(format!("SELECT pg_advisory_lock({KEY_SQL})"))
                        .execute(&mut conn)
                        .context("cannot take the start-up lock")?;
                }
                Held::Postgres(conn)
            }
        };
        Ok(Self { _held: held })
    }
}

impl Drop for StartupLock {
    fn drop(&mut self) {
        // Closing the connection releases the lock too; unlocking first makes the release
        // independent of how long the connection takes to close.
        if let Held::Postgres(conn) = &mut self._held {
            let _ =
                diesel::sql_query(format!("SELECT pg_advisory_unlock({KEY_SQL})")).execute(conn);
        }
    }
}
