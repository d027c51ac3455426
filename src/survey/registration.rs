//! Use case: a counter system registers a completed transaction and gets its single-use survey
//! link (`POST /api/v1/transactions`, and `serve --demo` for its printed example).
//!
//! The key is checked and the request validated on a read; a new dossier is written through
//! the group commit (one fsync for many registrations, the key's "last used" time included);
//! a (unit, dossier code) registered before returns the survey it already has.

use std::sync::Arc;

use chrono::NaiveDateTime;

use super::transaction::{
    IssuePolicy, IssuedSurvey, NewDossier, Registration, TransactionRequest, prepare,
};
use crate::api_keys;
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::forms::FormRegistry;
use crate::i18n::Msg;
use crate::integrity::Fingerprint;
use crate::rollup::RollupDelta;
use crate::secret::ServerSecret;
use crate::services::Services;

/// Who is registering: the counter system's API key and, for the integrity signals, where the
/// request came from.
pub struct Caller {
    pub api_key: String,
    pub address: String,
    pub user_agent: String,
}

/// Registers `request` for `caller`; `created` on the result tells a new dossier from one
/// registered before.
pub async fn register(
    services: &Services,
    caller: Caller,
    request: TransactionRequest,
) -> AppResult<IssuedSurvey> {
    let now = crate::db::now();
    let (forms, secret, policy) = (
        services.forms.clone(),
        services.secret.clone(),
        services.policies.issue.clone(),
    );
    let key = caller.api_key.clone();
    // Reads only, on the caller's thread where the database allows (see `with_quick_read`).
    let (key_use, registration) = services
        .with_quick_read(move |conn| {
            let api_key = api_keys::find_active(conn, &key)?.ok_or_else(|| {
                AppError::Unauthorized(Msg::new(
                    "Khóa API không hợp lệ hoặc đã bị thu hồi.",
                    "The API key is not valid or has been revoked.",
                ))
            })?;
            let key_use = api_key.use_to_record(now).then(|| api_key.id.clone());
            let registration = prepare(conn, &forms, &secret, &api_key.unit_id, &policy, &request);
            Ok((key_use, registration))
        })
        .await?;
    match registration {
        Err(refused) => {
            record_key_use(services, key_use, now).await?;
            Err(refused)
        }
        Ok(Registration::Existing(issued)) => {
            record_key_use(services, key_use, now).await?;
            Ok(issued)
        }
        Ok(Registration::New(dossier)) => {
            let dossier: Arc<NewDossier> = Arc::from(dossier);
            // Who registered it, as keyed hashes only: answers later sent from the same machine
            // or network are an integrity signal.
            let (_, issued_at) = dossier.token_issue();
            let issuer = crate::integrity::fingerprint(
                &services.secret,
                issued_at.date(),
                &caller.address,
                &caller.user_agent,
            );
            write_new(services, dossier, Some(issuer), key_use.map(|id| (id, now))).await
        }
    }
}

/// Writes a new dossier through the group commit; a write that lost a race with the same
/// dossier registered at once elsewhere settles on the survey that won.
async fn write_new(
    services: &Services,
    dossier: Arc<NewDossier>,
    issuer: Option<Fingerprint>,
    key_use: Option<(String, NaiveDateTime)>,
) -> AppResult<IssuedSurvey> {
    let inserted = services
        .writer
        .register(dossier.clone(), issuer, key_use)
        .await?;
    match inserted {
        Ok(()) => Ok(dossier.issued()),
        Err(_) => {
            let secret = services.secret.clone();
            services
                .with_conn(move |conn| dossier.settle(conn, &secret, inserted))
                .await
        }
    }
}

/// Writes down a key's use when the registration itself writes nothing (already registered,
/// or refused): through the group commit, at most once a minute per key.
async fn record_key_use(
    services: &Services,
    key_use: Option<String>,
    now: NaiveDateTime,
) -> AppResult<()> {
    let Some(id) = key_use else {
        return Ok(());
    };
    services
        .writer
        .run(move |conn, _| api_keys::record_use(conn, &id, now))
        .await?
        .map_err(AppError::from)
}

/// [`register`] on a connection the caller holds, without the group commit: for bulk
/// preparation (load tests, crash tests) where thousands of registrations share one
/// transaction. The key's unit is given, not looked up. Same checks, same writes.
pub fn register_on_connection(
    conn: &mut DbConn,
    forms: &FormRegistry,
    secret: &ServerSecret,
    key_unit_id: &str,
    policy: &IssuePolicy,
    request: &TransactionRequest,
) -> AppResult<IssuedSurvey> {
    match prepare(conn, forms, secret, key_unit_id, policy, request)? {
        Registration::Existing(issued) => Ok(issued),
        Registration::New(dossier) => {
            let inserted = conn.write_transaction(|conn| {
                let mut delta = RollupDelta::default();
                dossier.insert(conn, &mut delta)?;
                delta.apply(conn)
            });
            dossier.settle(conn, secret, inserted)
        }
    }
}
