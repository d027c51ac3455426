//! Trying again what PostgreSQL aborted only because of concurrent writers.

use diesel::QueryResult;

use super::DbConn;

/// How many times a step aborted by a deadlock or serialization failure is tried again.
const TRANSIENT_RETRIES: usize = 8;

/// Whether PostgreSQL aborted a statement only because of concurrent writers (SQLSTATE 40001
/// or 40P01), so that trying again can succeed. diesel names 40001; 40P01 has no kind of its
/// own, so it is told by its message.
pub fn is_transient(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        Error::DatabaseError(_, info) => info.message().contains("deadlock detected"),
        _ => false,
    }
}

/// Runs `work` in a savepoint and tries it again (a few times, after a short pause) when
/// PostgreSQL aborts it as a deadlock victim or a serialization failure; `work` must be
/// repeatable.
pub fn retry_transient<T>(
    conn: &mut DbConn,
    mut work: impl FnMut(&mut DbConn) -> QueryResult<T>,
) -> QueryResult<T> {
    let mut attempt = 0;
    loop {
        match conn.write_transaction(&mut work) {
            Err(e) if attempt < TRANSIENT_RETRIES && is_transient(&e) => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "transient database error, trying again");
                std::thread::sleep(std::time::Duration::from_millis(
                    2 * attempt as u64 + rand::random::<u64>() % 5,
                ));
            }
            other => return other,
        }
    }
}
