//! Signed-in sessions: a random cookie whose SHA-256 is the key of a row, with an idle timeout
//! and an absolute lifetime, and the synchronizer token that protects every form post.

use chrono::{Duration, NaiveDateTime};
use data_encoding::BASE32_NOPAD;
use diesel::prelude::*;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::users::User;
use crate::db::DbConn;
use crate::db::schema::{sessions, users};
use crate::db_run;

pub const COOKIE_NAME: &str = "sipas_session";
/// Signed out after this long without a request.
pub const IDLE_TIMEOUT: Duration = Duration::minutes(30);
/// Signed out after this long whatever happens.
pub const ABSOLUTE_LIFETIME: Duration = Duration::hours(12);

fn random_text(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    BASE32_NOPAD.encode(&buf).to_ascii_lowercase()
}

pub fn hash_token(token: &str) -> String {
    crate::forms::definition::hex(&Sha256::digest(token.as_bytes()))
}

/// A live session with its user.
#[derive(Debug, Clone)]
pub struct Session {
    pub token_hash: String,
    pub csrf_token: String,
    pub user: User,
}

/// Starts a session; returns the cookie value (never stored).
pub fn create(conn: &mut DbConn, user_id: &str, now: NaiveDateTime) -> QueryResult<String> {
    let token = random_text(32);
    let hash = hash_token(&token);
    let csrf = random_text(24);
    db_run!(conn: {
        diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?;
        diesel::insert_into(sessions::table)
            .values((
                sessions::token_hash.eq(&hash),
                sessions::user_id.eq(user_id),
                sessions::csrf_token.eq(&csrf),
                sessions::created_at.eq(now),
                sessions::last_seen_at.eq(now),
                sessions::expires_at.eq(now + ABSOLUTE_LIFETIME),
            ))
            .execute(conn)
    })?;
    Ok(token)
}

/// The session of a cookie if it is live and its user active; refreshes the idle timer (at most
/// once a minute, to keep reads cheap).
pub fn lookup(conn: &mut DbConn, token: &str, now: NaiveDateTime) -> QueryResult<Option<Session>> {
    let hash = hash_token(token);
    let row: Option<(String, NaiveDateTime, NaiveDateTime, User)> = db_run!(conn: {
        sessions::table
            .inner_join(users::table.on(users::id.eq(sessions::user_id)))
            .filter(sessions::token_hash.eq(&hash))
            .select((sessions::csrf_token, sessions::last_seen_at, sessions::expires_at, User::as_select()))
            .first(conn)
            .optional()
    })?;
    let Some((csrf_token, last_seen, expires_at, user)) = row else {
        return Ok(None);
    };
    if expires_at <= now || last_seen + IDLE_TIMEOUT <= now || !user.active {
        end(conn, &hash)?;
        return Ok(None);
    }
    if now - last_seen > Duration::minutes(1) {
        db_run!(conn: {
            diesel::update(sessions::table.find(&hash)).set(sessions::last_seen_at.eq(now)).execute(conn)
        })?;
    }
    Ok(Some(Session {
        token_hash: hash,
        csrf_token,
        user,
    }))
}

/// Ends a session by its hash.
pub fn end(conn: &mut DbConn, token_hash: &str) -> QueryResult<usize> {
    db_run!(conn: { diesel::delete(sessions::table.find(token_hash)).execute(conn) })
}
