//! The JSON API for counter (one-stop) systems.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::json;

use super::AppState;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::survey::registration::{self, Caller};
use crate::survey::transaction::TransactionRequest;

/// The bearer key of the request, or 401.
pub(crate) fn bearer_key(req: &HttpRequest) -> AppResult<String> {
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

/// `POST /api/v1/transactions`: registers a completed transaction and returns its survey link.
/// 201 when created, 200 with the same survey when the (unit, dossier code) was already known.
pub async fn create_transaction(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let caller = Caller {
        api_key: bearer_key(&req)?,
        address: super::access::client_address(&req, &state.settings.trusted_proxies),
        user_agent: super::access::user_agent(&req),
    };
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
    let issued = registration::register(&state, caller, request).await?;
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
