//! Brakes on password guessing: failed sign-ins are counted per account name and per network
//! address over a sliding window. Unknown account names are counted too, so the answer never
//! tells whether an account exists.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::login_failures;
use crate::db_run;

pub const WINDOW: Duration = Duration::minutes(15);
pub const MAX_PER_ACCOUNT: i64 = 5;
pub const MAX_PER_ADDRESS: i64 = 30;

/// Minutes until another attempt is allowed, or `None` if one is allowed now.
pub fn blocked_for(
    conn: &mut DbConn,
    username: &str,
    address: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<i64>> {
    let since = now - WINDOW;
    let by_account: Vec<NaiveDateTime> = db_run!(conn: {
        login_failures::table
            .filter(login_failures::username.eq(username))
            .filter(login_failures::at.gt(since))
            .select(login_failures::at)
            .order(login_failures::at.asc())
            .load(conn)
    })?;
    let by_address: Vec<NaiveDateTime> = db_run!(conn: {
        login_failures::table
            .filter(login_failures::address.eq(address))
            .filter(login_failures::at.gt(since))
            .select(login_failures::at)
            .order(login_failures::at.asc())
            .load(conn)
    })?;
    let wait = |times: &[NaiveDateTime], max: i64| -> Option<i64> {
        if (times.len() as i64) < max {
            return None;
        }
        // Free again when the oldest failure that still counts leaves the window.
        let oldest = times[times.len() - max as usize];
        Some(((oldest + WINDOW - now).num_seconds().max(1) + 59) / 60)
    };
    Ok(wait(&by_account, MAX_PER_ACCOUNT).max(wait(&by_address, MAX_PER_ADDRESS)))
}

pub fn record_failure(
    conn: &mut DbConn,
    username: &str,
    address: &str,
    now: NaiveDateTime,
) -> QueryResult<()> {
    db_run!(conn: {
        diesel::delete(login_failures::table.filter(login_failures::at.le(now - WINDOW))).execute(conn)?;
        diesel::insert_into(login_failures::table)
            .values((
                login_failures::id.eq(uuid::Uuid::new_v4().to_string()),
                login_failures::username.eq(username),
                login_failures::address.eq(address),
                login_failures::at.eq(now),
            ))
            .execute(conn)
            .map(|_| ())
    })
}

/// Checks the limits and counts this attempt as a failure in one step, under a lock per account
/// name (SQLite: the write lock; PostgreSQL: an advisory lock). `Err(minutes)` when blocked.
/// A successful sign-in then clears the account's failures.
pub fn reserve_attempt(
    conn: &mut DbConn,
    username: &str,
    address: &str,
    now: NaiveDateTime,
) -> QueryResult<Result<(), i64>> {
    conn.write_transaction(|conn| {
        if let DbConn::Postgres(c) = conn {
            diesel::sql_query("SELECT pg_advisory_xact_lock(hashtext($1))")
                .bind::<diesel::sql_types::Text, _>(format!("login:{username}"))
                .execute(&mut ***c)?;
        }
        if let Some(minutes) = blocked_for(conn, username, address, now)? {
            return Ok(Err(minutes));
        }
        record_failure(conn, username, address, now)?;
        Ok(Ok(()))
    })
}

/// A successful sign-in clears the account's failures (not the address's).
pub fn clear_account(conn: &mut DbConn, username: &str) -> QueryResult<()> {
    db_run!(conn: {
        diesel::delete(login_failures::table.filter(login_failures::username.eq(username))).execute(conn).map(|_| ())
    })
}
