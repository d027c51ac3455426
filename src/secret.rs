//! The server secret behind survey tokens and demo credentials.
//!
//! Tokens are an HMAC of the transaction id under this secret, which makes the counter API
//! idempotent (a repeated request recomputes the same link) while the database stores only
//! token hashes. Taken from `SIPAS_SECRET` when set (several instances must share it), otherwise
//! generated once and kept in the database.

use anyhow::Context;
use diesel::prelude::*;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

use crate::db::DbConn;
use crate::db::schema::app_secrets;
use crate::db_run;

const SECRET_NAME: &str = "server_secret";

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

    /// The configured secret, or the one stored in the database (created on first use).
    pub fn load(configured: Option<&str>, conn: &mut DbConn) -> anyhow::Result<Self> {
        if let Some(secret) = configured {
            return Ok(Self(secret.as_bytes().to_vec()));
        }
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
