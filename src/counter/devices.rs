//! Pairing a counter device (the screen facing the citizen) to one desk of one unit: staff
//! create a short single-use code; the device types it and gets a long-lived credential, kept
//! in a cookie, of which only a hash is stored. The credential opens that desk and no other.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use rand::Rng;
use sha2::{Digest, Sha256};

use super::DeskCode;
use crate::db::DbConn;
use crate::db::schema::{counter_devices, counter_pairings};
use crate::db_run;

/// How long a pairing code may wait to be typed on the device.
pub const PAIRING_TTL: Duration = Duration::minutes(15);

/// Letters of pairing codes: no 0/O, 1/I/L, easy to read aloud and to type on a tablet.
const CODE_ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const CODE_LEN: usize = 8;

fn hash(text: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(text.as_bytes()))
}

/// A code as people type it: upper case, without spaces or dashes.
fn normalise_code(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// A new pairing code, shown once to the staff member (`ABCD-EFGH`).
#[derive(Debug, Clone)]
pub struct PairingCode {
    pub code: String,
    pub expires_at: NaiveDateTime,
}

/// Creates a pairing code for `desk` of `unit_id`; `created_by` is the staff member's id.
pub fn create_pairing(
    conn: &mut DbConn,
    unit_id: &str,
    desk: &DeskCode,
    created_by: &str,
    now: NaiveDateTime,
) -> QueryResult<PairingCode> {
    let mut rng = rand::rng();
    let raw: String = (0..CODE_LEN)
        .map(|_| CODE_ALPHABET[rng.random_range(0..CODE_ALPHABET.len())] as char)
        .collect();
    let expires_at = now + PAIRING_TTL;
    db_run!(conn: {
        diesel::insert_into(counter_pairings::table)
            .values((
                counter_pairings::code_hash.eq(hash(&raw)),
                counter_pairings::unit_id.eq(unit_id),
                counter_pairings::desk.eq(desk.as_str()),
                counter_pairings::created_by.eq(created_by),
                counter_pairings::created_at.eq(now),
                counter_pairings::expires_at.eq(expires_at),
            ))
            .execute(conn)
    })?;
    Ok(PairingCode {
        code: format!("{}-{}", &raw[..4], &raw[4..]),
        expires_at,
    })
}

/// A device's credential, handed over once (as a cookie) when it pairs.
#[derive(Debug, Clone)]
pub struct PairedDevice {
    pub credential: String,
    pub desk: DeskCode,
}

/// Why a pairing code was not accepted (all the same to the device: unknown, used or old).
#[derive(Debug, PartialEq, Eq)]
pub enum PairingRefused {
    UnknownOrUsed,
}

/// Spends a pairing code and registers the device; the code works once, within its time.
pub fn pair(
    conn: &mut DbConn,
    typed: &str,
    now: NaiveDateTime,
) -> QueryResult<Result<PairedDevice, PairingRefused>> {
    let code_hash = hash(&normalise_code(typed));
    conn.write_transaction(|conn| {
        let found: Option<(String, String)> = db_run!(conn: {
            counter_pairings::table
                .find(&code_hash)
                .filter(counter_pairings::used_at.is_null())
                .filter(counter_pairings::expires_at.gt(now))
                .select((counter_pairings::unit_id, counter_pairings::desk))
                .first(conn)
                .optional()
        })?;
        let Some((unit_id, desk)) = found else {
            return Ok(Err(PairingRefused::UnknownOrUsed));
        };
        // Spent atomically: of two devices typing the same code, one wins.
        let spent = db_run!(conn: {
            diesel::update(counter_pairings::table.find(&code_hash).filter(counter_pairings::used_at.is_null()))
                .set(counter_pairings::used_at.eq(Some(now)))
                .execute(conn)
        })?;
        if spent != 1 {
            return Ok(Err(PairingRefused::UnknownOrUsed));
        }
        let credential = data_encoding::BASE64URL_NOPAD.encode(&rand::random::<[u8; 32]>());
        db_run!(conn: {
            diesel::insert_into(counter_devices::table)
                .values((
                    counter_devices::id.eq(uuid::Uuid::now_v7().to_string()),
                    counter_devices::unit_id.eq(&unit_id),
                    counter_devices::desk.eq(&desk),
                    counter_devices::credential_hash.eq(hash(&credential)),
                    counter_devices::created_at.eq(now),
                ))
                .execute(conn)
        })?;
        Ok(Ok(PairedDevice {
            credential,
            desk: DeskCode(desk),
        }))
    })
}

/// The unit and desk a live credential opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub id: String,
    pub unit_id: String,
    pub desk: DeskCode,
}

pub fn authenticate(conn: &mut DbConn, credential: &str) -> QueryResult<Option<Device>> {
    let row: Option<(String, String, String)> = db_run!(conn: {
        counter_devices::table
            .filter(counter_devices::credential_hash.eq(hash(credential)))
            .filter(counter_devices::revoked_at.is_null())
            .select((counter_devices::id, counter_devices::unit_id, counter_devices::desk))
            .first(conn)
            .optional()
    })?;
    Ok(row.map(|(id, unit_id, desk)| Device {
        id,
        unit_id,
        desk: DeskCode(desk),
    }))
}

/// A paired device as staff see it.
#[derive(Debug, Clone)]
pub struct DeviceEntry {
    pub id: String,
    pub desk: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn list(conn: &mut DbConn, unit_id: &str) -> QueryResult<Vec<DeviceEntry>> {
    let rows: Vec<(String, String, NaiveDateTime, Option<NaiveDateTime>)> = db_run!(conn: {
        counter_devices::table
            .filter(counter_devices::unit_id.eq(unit_id))
            .order((counter_devices::desk.asc(), counter_devices::created_at.desc()))
            .select((counter_devices::id, counter_devices::desk, counter_devices::created_at, counter_devices::revoked_at))
            .load(conn)
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, desk, created_at, revoked_at)| DeviceEntry {
            id,
            desk,
            created_at,
            revoked_at,
        })
        .collect())
}

/// Revokes a device of `unit_id`; false when there is no such live device in that unit.
pub fn revoke(
    conn: &mut DbConn,
    unit_id: &str,
    device_id: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    let n = db_run!(conn: {
        diesel::update(
            counter_devices::table
                .find(device_id)
                .filter(counter_devices::unit_id.eq(unit_id))
                .filter(counter_devices::revoked_at.is_null()),
        )
        .set(counter_devices::revoked_at.eq(Some(now)))
        .execute(conn)
    })?;
    Ok(n == 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_typed_loosely() {
        assert_eq!(normalise_code(" abcd-efgh "), "ABCDEFGH");
        assert_eq!(hash(&normalise_code("abcd efgh")), hash("ABCDEFGH"));
    }
}
