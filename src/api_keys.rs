//! API keys of counter systems. Each key is bound to one unit; only its SHA-256 is stored, so
//! the key is shown once, when created.

use chrono::NaiveDateTime;
use data_encoding::BASE32_NOPAD;
use diesel::prelude::*;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::db::schema::api_keys;
use crate::db_run;
use crate::secret::ServerSecret;
use serde_json::json;

/// Prefix that makes a leaked key recognisable in logs and secret scanners.
pub const KEY_PREFIX: &str = "sipas_";

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = api_keys)]
pub struct ApiKey {
    pub id: String,
    pub unit_id: String,
    pub key_hash: String,
    pub label: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

fn hash_key(key: &str) -> String {
    crate::forms::definition::hex(&Sha256::digest(key.as_bytes()))
}

fn random_key() -> String {
    let mut bytes = [0u8; 20];
    rand::rng().fill_bytes(&mut bytes);
    format!(
        "{KEY_PREFIX}{}",
        BASE32_NOPAD.encode(&bytes).to_ascii_lowercase()
    )
}

/// Creates a key for `unit_id` and returns the key text (never stored).
pub fn create(conn: &mut DbConn, actor: &Actor, unit_id: &str, label: &str) -> QueryResult<String> {
    let key = random_key();
    let label = if label.trim().is_empty() {
        "counter"
    } else {
        label.trim()
    };
    conn.write_transaction(|conn| {
        insert(conn, unit_id, label, &key)?;
        let id: String = db_run!(conn: {
            api_keys::table.filter(api_keys::key_hash.eq(hash_key(&key))).select(api_keys::id).first(conn)
        })?;
        audit::record(conn, actor, "api_key.create", "api_key", &id, None, Some(json!({ "unit_id": unit_id, "label": label })))?;
        Ok(key)
    })
}

fn insert(conn: &mut DbConn, unit_id: &str, label: &str, key: &str) -> QueryResult<usize> {
    let hash = hash_key(key);
    db_run!(conn: {
        diesel::insert_into(api_keys::table)
            .values((
                api_keys::id.eq(uuid::Uuid::new_v4().to_string()),
                api_keys::unit_id.eq(unit_id),
                api_keys::key_hash.eq(&hash),
                api_keys::label.eq(label),
                api_keys::created_at.eq(crate::db::now()),
            ))
            .on_conflict(api_keys::key_hash)
            .do_nothing()
            .execute(conn)
    })
}

/// The demo key of a unit: derived from the server secret so `sipas demo` can print it again on
/// every run without storing it.
pub fn ensure_demo_key(
    conn: &mut DbConn,
    secret: &ServerSecret,
    unit_id: &str,
) -> QueryResult<String> {
    let mac = secret.mac("demo-api-key", unit_id);
    let key = format!(
        "{KEY_PREFIX}demo_{}",
        BASE32_NOPAD.encode(&mac[..20]).to_ascii_lowercase()
    );
    insert(conn, unit_id, "demo", &key)?;
    Ok(key)
}

/// The active key matching `key`, if any. A read only, so that registration (the counters'
/// hot path) needs no write before its group commit; see [`ApiKey::use_to_record`].
pub fn find_active(conn: &mut DbConn, key: &str) -> QueryResult<Option<ApiKey>> {
    let hash = hash_key(key.trim());
    db_run!(conn: {
        api_keys::table
            .filter(api_keys::key_hash.eq(&hash))
            .filter(api_keys::revoked_at.is_null())
            .select(ApiKey::as_select())
            .first(conn)
            .optional()
    })
}

impl ApiKey {
    /// Whether a use at `now` should be written down: at most once a minute per key, which is
    /// all the "last used" column needs.
    pub fn use_to_record(&self, now: NaiveDateTime) -> bool {
        self.last_used_at
            .is_none_or(|t| now - t > chrono::Duration::minutes(1))
    }
}

/// Writes down that a key was used at `now`.
pub fn record_use(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> QueryResult<()> {
    db_run!(conn: {
        diesel::update(api_keys::table.find(id)).set(api_keys::last_used_at.eq(now)).execute(conn)
    })?;
    Ok(())
}

/// Revokes a key by id; returns false if no active key had that id.
pub fn revoke(conn: &mut DbConn, actor: &Actor, id: &str) -> QueryResult<bool> {
    conn.write_transaction(|conn| {
        let changed = db_run!(conn: {
            diesel::update(api_keys::table.find(id).filter(api_keys::revoked_at.is_null()))
                .set(api_keys::revoked_at.eq(crate::db::now()))
                .execute(conn)
        })?;
        if changed == 1 {
            audit::record(conn, actor, "api_key.revoke", "api_key", id, None, None)?;
        }
        Ok(changed == 1)
    })
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<ApiKey>> {
    db_run!(conn: { api_keys::table.find(id).select(ApiKey::as_select()).first(conn).optional() })
}

pub fn list_for_unit(conn: &mut DbConn, unit_id: &str) -> QueryResult<Vec<ApiKey>> {
    db_run!(conn: {
        api_keys::table
            .filter(api_keys::unit_id.eq(unit_id))
            .order(api_keys::created_at.desc())
            .select(ApiKey::as_select())
            .load(conn)
    })
}
