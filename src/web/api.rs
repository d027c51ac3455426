//! The JSON API for counter (one-stop) systems.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::AppState;
use crate::api_keys;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::survey::transaction::{NewDossier, Registration, TransactionRequest, prepare};

/// The bearer key of the request, or 401.
fn bearer_key(req: &HttpRequest) -> AppResult<String> {
    let missing = || {
        AppError::Unauthorized(Msg::new(
            "Thiếu hoặc sai khóa API (Authorization: Bearer KHÓA).",
            "Missing or malformed API key (Authorization: Bearer KEY).",
        ))
    };
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let key = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .ok_or_else(missing)?;
    Ok(key.trim().to_string())
}

/// Writes down a key's use when the registration itself writes nothing (already registered,
/// or refused): through the group commit, at most once a minute per key.
async fn record_key_use(state: &AppState, key_use: Option<String>) -> AppResult<()> {
    let Some(id) = key_use else {
        return Ok(());
    };
    let now = crate::db::now();
    state
        .writer
        .run(move |conn, _| api_keys::record_use(conn, &id, now))
        .await?
        .map_err(AppError::from)
}

/// `POST /api/v1/transactions`: registers a completed transaction and returns its survey link.
/// 201 when created, 200 with the same survey when the (unit, dossier code) was already known.
pub async fn create_transaction(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let key = bearer_key(&req)?;
    let body: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        AppError::bad_request(
            "body",
            Msg::new(
                format!("Nội dung không phải JSON hợp lệ: {e}"),
                format!("The body is not valid JSON: {e}"),
            ),
        )
    })?;
    let request = TransactionRequest::from_json(&body, crate::db::now())?;
    let forms = state.forms.clone();
    let secret = state.secret.clone();
    let policy = state.policies.issue.clone();
    let checked_secret = secret.clone();
    let now = crate::db::now();
    // Reads only, on the request's thread where the database allows (see `with_quick_read`).
    let (key_use, registration) = state
        .with_quick_read(move |conn| {
            let api_key = api_keys::find_active(conn, &key)?.ok_or_else(|| {
                AppError::Unauthorized(Msg::new(
                    "Khóa API không hợp lệ hoặc đã bị thu hồi.",
                    "The API key is not valid or has been revoked.",
                ))
            })?;
            let key_use = api_key.use_to_record(now).then(|| api_key.id.clone());
            let registration = prepare(
                conn,
                &forms,
                &checked_secret,
                &api_key.unit_id,
                &policy,
                &request,
            );
            Ok((key_use, registration))
        })
        .await?;
    let registration = match registration {
        Ok(registration) => registration,
        Err(e) => {
            record_key_use(&state, key_use).await?;
            return Err(e);
        }
    };
    let issued = match registration {
        Registration::Existing(issued) => {
            record_key_use(&state, key_use).await?;
            issued
        }
        // The write shares the responses' group commit: one fsync for many registrations,
        // the key's "last used" time included.
        Registration::New(dossier) => {
            let dossier: Arc<NewDossier> = Arc::from(dossier);
            let writing = dossier.clone();
            // Who registered it, as keyed hashes only: answers later sent from the same
            // machine or network are an integrity signal.
            let (_, issued_at) = dossier.token_issue();
            let issuer = crate::integrity::fingerprint(
                &state.secret,
                issued_at.date(),
                &super::access::client_address(&req, &state.settings.trusted_proxies),
                &crate::integrity::user_agent(&req),
            );
            let inserted = state
                .writer
                .register(writing, Some(issuer), key_use.map(|id| (id, now)))
                .await?;
            match inserted {
                Ok(()) => dossier.issued(),
                Err(_) => {
                    state
                        .with_conn(move |conn| dossier.settle(conn, &secret, inserted))
                        .await?
                }
            }
        }
    };
    let survey_url = state.survey_url(&issued.token);
    let body = json!({
        "transaction_id": issued.transaction_id,
        "survey_url": survey_url,
        "token": issued.token,
        "expires_at": issued.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "qr_svg_url": format!("{survey_url}/qr.svg"),
        "qr_png_url": format!("{survey_url}/qr.png"),
        "form": issued.form,
        "form_version": issued.form_version,
        "created": issued.created,
    });
    let mut response = if issued.created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response
        .insert_header((header::LOCATION, survey_url))
        .json(body))
}
