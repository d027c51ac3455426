//! `POST /api/v1/stickers/attach`: the counter software tells which dossier a token book's
//! sticker went with (API key, like `/api/v1/transactions`).

use actix_web::{HttpRequest, HttpResponse, web};

use super::super::AppState;
use crate::counter::attach::attach;
use crate::counter::books::AttachRequest;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;

pub async fn attach_sticker(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> AppResult<HttpResponse> {
    let key = super::super::api::bearer_key(&req)?;
    let body: serde_json::Value = serde_json::from_slice(&body).map_err(|e| {
        AppError::bad_request(
            "body",
            Msg::new(
                format!("Nội dung không phải JSON hợp lệ: {e}"),
                format!("The body is not valid JSON: {e}"),
            ),
        )
    })?;
    let request = AttachRequest::from_json(&body)?;
    let attached = attach(&state, key, request).await?;
    Ok(HttpResponse::Ok().json(attached))
}
