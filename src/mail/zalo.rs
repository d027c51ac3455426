//! Zalo Notification Service (ZNS) template messages, with the official account's OAuth
//! access token refreshed as needed. Zalo's refresh tokens are single-use: the newest one lives
//! in the database (`zalo_tokens`), where every instance finds it and a restart keeps it.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::phone::PhoneNumber;
use super::sms::PhoneSendError;
use crate::db::DbConn;
use crate::db::schema::zalo_tokens;
use crate::db_run;

/// The one row of `zalo_tokens` (one official account per deployment).
const ROW: &str = "oa";

/// Longest template parameter sent: ZNS refuses longer values (limits are per template).
const PARAM_CHARS: usize = 100;

#[derive(Debug, Clone)]
pub struct ZaloZns {
    base_url: String,
    oauth_url: String,
    app_id: String,
    secret_key: String,
    seed_refresh_token: String,
    template_id: String,
    reminder_template_id: String,
}

/// The facts a ZNS template is filled with (its parameter names are these field names).
#[derive(Debug, serde::Serialize)]
pub struct ZaloParams {
    pub unit: String,
    pub procedure: String,
    pub survey_url: String,
    pub token: String,
    pub opt_out_url: String,
    pub until: String,
}

#[derive(Deserialize)]
struct ZnsAnswer {
    error: i64,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: Option<String>,
    refresh_token: Option<String>,
    /// Seconds, sent by Zalo as a string.
    expires_in: Option<serde_json::Value>,
    error: Option<serde_json::Value>,
    error_description: Option<String>,
}

/// ZNS error codes of an access token that is invalid or expired: refresh and try once more.
const TOKEN_ERRORS: [i64; 2] = [-124, -216];
/// ZNS error codes that no retry will change (bad number, no Zalo account, user blocked ZNS).
const PERMANENT_ERRORS: [i64; 5] = [-108, -109, -118, -119, -139];

fn hash(text: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(text.as_bytes()))
}

fn trimmed(url: &str) -> String {
    url.trim_end_matches('/').to_string()
}

impl ZaloZns {
    pub fn from_settings(settings: &crate::config::Settings) -> anyhow::Result<Option<Self>> {
        let Some(template_id) = settings.zalo_template_id.clone() else {
            return Ok(None);
        };
        let need = |value: &Option<String>, name: &str| {
            value
                .clone()
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| anyhow::anyhow!("zalo_template_id is set: {name} is needed too"))
        };
        Ok(Some(Self {
            base_url: trimmed(&settings.zalo_base_url),
            oauth_url: trimmed(&settings.zalo_oauth_url),
            app_id: need(&settings.zalo_app_id, "zalo_app_id")?,
            secret_key: need(&settings.zalo_secret_key, "zalo_secret_key")?,
            seed_refresh_token: need(&settings.zalo_refresh_token, "zalo_refresh_token")?,
            reminder_template_id: settings
                .zalo_reminder_template_id
                .clone()
                .unwrap_or_else(|| template_id.clone()),
            template_id,
        }))
    }

    /// Sends one template message; `tracking_id` (the outbox id) comes back in Zalo's reports.
    pub fn send(
        &self,
        conn: &mut DbConn,
        client: &reqwest::blocking::Client,
        phone: &PhoneNumber,
        params: &ZaloParams,
        reminder: bool,
        tracking_id: &str,
    ) -> Result<(), PhoneSendError> {
        let cut = |s: &str| s.chars().take(PARAM_CHARS).collect::<String>();
        let body = serde_json::json!({
            "phone": phone.digits(),
            "template_id": if reminder { &self.reminder_template_id } else { &self.template_id },
            "template_data": {
                "unit": cut(&params.unit),
                "procedure": cut(&params.procedure),
                "survey_url": params.survey_url,
                "token": params.token,
                "opt_out_url": params.opt_out_url,
                "until": params.until,
            },
            "tracking_id": tracking_id,
        });
        let mut token = self.access_token(conn, client, None)?;
        for last_try in [false, true] {
            let response = client
                .post(format!("{}/message/template", self.base_url))
                .header("access_token", &token)
                .json(&body)
                .send()
                .map_err(|e| PhoneSendError::from_request(e, "Zalo ZNS"))?;
            if let Some(error) = PhoneSendError::from_status(&response, "Zalo ZNS") {
                return Err(error);
            }
            let answer: ZnsAnswer = response.json().map_err(|e| {
                PhoneSendError::transient(format!("Zalo ZNS answered no JSON: {e}"))
            })?;
            match answer.error {
                0 => return Ok(()),
                code if TOKEN_ERRORS.contains(&code) && !last_try => {
                    token = self.access_token(conn, client, Some(&token))?;
                }
                code if PERMANENT_ERRORS.contains(&code) => {
                    return Err(PhoneSendError::Permanent(format!(
                        "Zalo ZNS error {code}: {}",
                        answer.message
                    )));
                }
                code => {
                    return Err(PhoneSendError::transient(format!(
                        "Zalo ZNS error {code}: {}",
                        answer.message
                    )));
                }
            }
        }
        Err(PhoneSendError::transient(
            "Zalo ZNS refused a freshly refreshed access token",
        ))
    }

    /// A usable access token: the stored one while it is valid and not `rejected`, else a
    /// refreshed one (or the one another instance refreshed meanwhile).
    fn access_token(
        &self,
        conn: &mut DbConn,
        client: &reqwest::blocking::Client,
        rejected: Option<&str>,
    ) -> Result<String, PhoneSendError> {
        let db = |e: diesel::result::Error| PhoneSendError::transient(format!("database: {e}"));
        let now = crate::db::now();
        let stored = self.stored(conn, now).map_err(db)?;
        if let Some(token) = usable(&stored, now, rejected) {
            return Ok(token);
        }
        match self.refresh(client, &stored.refresh_token) {
            Ok(fresh) => {
                let updated = db_run!(conn: {
                    diesel::update(zalo_tokens::table.find(ROW).filter(zalo_tokens::refresh_token.eq(&stored.refresh_token)))
                        .set((
                            zalo_tokens::refresh_token.eq(&fresh.refresh_token),
                            zalo_tokens::access_token.eq(Some(&fresh.access_token)),
                            zalo_tokens::access_expires_at.eq(Some(fresh.expires_at)),
                            zalo_tokens::updated_at.eq(now),
                        ))
                        .execute(conn)
                })
                .map_err(db)?;
                if updated == 0 {
                    tracing::warn!("another instance refreshed the Zalo token at the same time");
                }
                Ok(fresh.access_token)
            }
            Err(error) => {
                // Another instance may have used the same refresh token a moment earlier.
                let again = self.stored(conn, now).map_err(db)?;
                usable(&again, now, rejected).ok_or(error)
            }
        }
    }

    /// The stored tokens; seeded (or re-seeded, when an operator put a new refresh token in
    /// the settings) from the settings.
    fn stored(&self, conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<StoredTokens> {
        let seed_hash = hash(&self.seed_refresh_token);
        conn.write_transaction(|conn| {
            let row: Option<StoredTokens> = db_run!(conn: {
                zalo_tokens::table
                    .find(ROW)
                    .select((zalo_tokens::seed_hash, zalo_tokens::refresh_token, zalo_tokens::access_token, zalo_tokens::access_expires_at))
                    .first::<(String, String, Option<String>, Option<NaiveDateTime>)>(conn)
                    .optional()
            })?
            .map(|(seed, refresh_token, access_token, access_expires_at)| StoredTokens {
                seed,
                refresh_token,
                access_token,
                access_expires_at,
            });
            match row {
                Some(row) if row.seed == seed_hash => Ok(row),
                _ => {
                    db_run!(conn: {
                        diesel::delete(zalo_tokens::table.find(ROW)).execute(conn)?;
                        diesel::insert_into(zalo_tokens::table)
                            .values((
                                zalo_tokens::id.eq(ROW),
                                zalo_tokens::seed_hash.eq(&seed_hash),
                                zalo_tokens::refresh_token.eq(&self.seed_refresh_token),
                                zalo_tokens::updated_at.eq(now),
                            ))
                            .execute(conn)
                    })?;
                    Ok(StoredTokens {
                        seed: seed_hash.clone(),
                        refresh_token: self.seed_refresh_token.clone(),
                        access_token: None,
                        access_expires_at: None,
                    })
                }
            }
        })
    }

    fn refresh(
        &self,
        client: &reqwest::blocking::Client,
        refresh_token: &str,
    ) -> Result<FreshTokens, PhoneSendError> {
        let form = serde_urlencoded::to_string([
            ("refresh_token", refresh_token),
            ("app_id", self.app_id.as_str()),
            ("grant_type", "refresh_token"),
        ])
        .map_err(|e| PhoneSendError::Permanent(e.to_string()))?;
        let response = client
            .post(format!("{}/v4/oa/access_token", self.oauth_url))
            .header("secret_key", &self.secret_key)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(form)
            .send()
            .map_err(|e| PhoneSendError::from_request(e, "Zalo OAuth"))?;
        if let Some(error) = PhoneSendError::from_status(&response, "Zalo OAuth") {
            return Err(error);
        }
        let answer: TokenAnswer = response
            .json()
            .map_err(|e| PhoneSendError::transient(format!("Zalo OAuth answered no JSON: {e}")))?;
        let seconds = match &answer.expires_in {
            Some(serde_json::Value::String(s)) => s.trim().parse::<i64>().ok(),
            Some(serde_json::Value::Number(n)) => n.as_i64(),
            _ => None,
        }
        .unwrap_or(3600);
        match (answer.access_token, answer.refresh_token) {
            (Some(access_token), Some(refresh_token)) => Ok(FreshTokens {
                access_token,
                refresh_token,
                expires_at: crate::db::now() + chrono::Duration::seconds(seconds),
            }),
            _ => Err(PhoneSendError::transient(format!(
                "Zalo OAuth refused the refresh: {} {}",
                answer.error.map(|e| e.to_string()).unwrap_or_default(),
                answer.error_description.unwrap_or_default()
            ))),
        }
    }
}

struct StoredTokens {
    seed: String,
    refresh_token: String,
    access_token: Option<String>,
    access_expires_at: Option<NaiveDateTime>,
}

struct FreshTokens {
    access_token: String,
    refresh_token: String,
    expires_at: NaiveDateTime,
}

/// The stored access token if it has a minute left and is not the one just refused.
fn usable(stored: &StoredTokens, now: NaiveDateTime, rejected: Option<&str>) -> Option<String> {
    let token = stored.access_token.as_deref()?;
    let fresh = stored
        .access_expires_at
        .is_some_and(|at| at > now + chrono::Duration::seconds(60));
    (fresh && rejected != Some(token)).then(|| token.to_string())
}
