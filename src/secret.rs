//! The server secret behind survey tokens and demo credentials.
//!
//! Tokens are an HMAC of the transaction id under this secret, which makes the counter API
//! idempotent (a repeated request recomputes the same link) while the database stores only
//! token hashes. Taken from `SIPAS_SECRET` when set (several instances must share it), otherwise
//! generated once and kept in the database. A fingerprint of the secret in use is kept in the
//! database too, so an instance started with another secret refuses to start.

use anyhow::Context;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::db::DbConn;
use crate::db::schema::app_secrets;
use crate::db_run;

const SECRET_NAME: &str = "server_secret";
/// Row holding HMAC(secret, [`CHECK_PURPOSE`]): proves which secret the instances use without
/// revealing it.
const CHECK_NAME: &str = "secret_check";
const CHECK_PURPOSE: &str = "sipas-secret-check";

#[derive(Clone)]
pub struct ServerSecret(Vec<u8>);

impl std::fmt::Debug for ServerSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerSecret(…)")
    }
}

impl ServerSecret {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// The configured secret, or the one stored in the database (created on first use), checked
    /// against the fingerprint the database keeps of the secret its instances use.
    pub fn load(configured: Option<&str>, conn: &mut DbConn) -> anyhow::Result<Self> {
        let secret = match configured {
            Some(secret) => Self(secret.as_bytes().to_vec()),
            None => Self::stored(conn)?,
        };
        secret.check_fingerprint(conn, configured.is_some())?;
        Ok(secret)
    }

    /// The generated secret kept in the database; the first caller creates it, and callers
    /// racing it read the winner's (insert-or-nothing, then read).
    fn stored(conn: &mut DbConn) -> anyhow::Result<Self> {
        let mut fresh = [0u8; 32];
        rand::rng().fill_bytes(&mut fresh);
        let fresh = crate::forms::definition::hex(&fresh);
        let stored: String = db_run!(conn: {
            diesel::insert_into(app_secrets::table)
                .values((
                    app_secrets::name.eq(SECRET_NAME),
                    app_secrets::value.eq(&fresh),
                    app_secrets::created_at.eq(crate::db::now()),
                ))
                .on_conflict(app_secrets::name)
                .do_nothing()
                .execute(conn)?;
            app_secrets::table.find(SECRET_NAME).select(app_secrets::value).first(conn)
        })
        .context("cannot read or create the server secret")?;
        Ok(Self(stored.into_bytes()))
    }

    /// Compares this secret's fingerprint with the one stored by the first instance that ran on
    /// the database (storing it if none is). A mismatch would break silently: survey links,
    /// paper serials, opened-time signatures and integrity fingerprints made by one instance
    /// would not be recognised by another, so the instance refuses to start instead.
    fn check_fingerprint(&self, conn: &mut DbConn, configured: bool) -> anyhow::Result<()> {
        let mine = crate::forms::definition::hex(&self.mac(CHECK_PURPOSE, ""));
        let stored: String = db_run!(conn: {
            diesel::insert_into(app_secrets::table)
                .values((
                    app_secrets::name.eq(CHECK_NAME),
                    app_secrets::value.eq(&mine),
                    app_secrets::created_at.eq(crate::db::now()),
                ))
                .on_conflict(app_secrets::name)
                .do_nothing()
                .execute(conn)?;
            app_secrets::table.find(CHECK_NAME).select(app_secrets::value).first(conn)
        })
        .context("cannot read or store the server secret's fingerprint")?;
        if stored == mine {
            return Ok(());
        }
        let which = if configured {
            "the SIPAS_SECRET (TOML `secret`) set here"
        } else {
            "no SIPAS_SECRET (TOML `secret`) is set here, so the database's generated secret would be used, and it"
        };
        anyhow::bail!(
            "{which} differs from the secret the other instances of this database use: survey \
             links, paper serials and answer signatures would not match. Set the same SIPAS_SECRET \
             on every instance and command. (To change the secret on purpose, which invalidates \
             every issued link and serial, stop all instances and delete the row \
             `{CHECK_NAME}` of table app_secrets.)"
        )
    }

    /// HMAC-SHA256 of `purpose` and `data`; distinct purposes never collide.
    pub fn mac(&self, purpose: &str, data: &str) -> [u8; 32] {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data.as_bytes());
        mac.finalize().into_bytes().into()
    }
}
