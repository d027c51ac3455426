//! Use case: the counter software tells sipas which dossier a book sticker went with
//! (`POST /api/v1/stickers/attach`), so that the sticker's answer rates that dossier for
//! Decision 766, whether the answer came before or after.

use serde_json::Value;

use super::books::{AttachRequest, Attached, attach as attach_sticker};
use crate::api_keys;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::services::Services;

/// Every field of an attachment; any other is refused rather than ignored.
pub const FIELDS: [&str; 3] = ["unit", "dossier_code", "sticker"];

fn text(body: &serde_json::Map<String, Value>, name: &str) -> AppResult<String> {
    let value = match body.get(name) {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Null) | None => String::new(),
        Some(_) => {
            return Err(AppError::bad_request(
                name,
                Msg::new(
                    format!("Trường `{name}` phải là chuỗi ký tự."),
                    format!("The field `{name}` must be a string."),
                ),
            ));
        }
    };
    crate::text::check(name, &value, crate::text::Lines::Single)?;
    if value.is_empty() || value.chars().count() > 512 {
        return Err(AppError::field(
            name,
            Msg::new(
                format!("Trường `{name}` là bắt buộc (tối đa 512 ký tự)."),
                format!("The field `{name}` is required (at most 512 characters)."),
            ),
        ));
    }
    Ok(value)
}

impl AttachRequest {
    /// Checks the JSON body's shape, naming the first bad field.
    pub fn from_json(body: &Value) -> AppResult<Self> {
        let body = crate::error::json_object(body, &FIELDS)?;
        Ok(Self {
            unit: text(body, "unit")?,
            dossier_code: text(body, "dossier_code")?,
            sticker: text(body, "sticker")?,
        })
    }
}

/// Attaches the sticker for the holder of `api_key` (a key of the dossier's unit or above it).
pub async fn attach(
    services: &Services,
    api_key: String,
    request: AttachRequest,
) -> AppResult<Attached> {
    let key_unit = services
        .with_quick_read(move |conn| {
            api_keys::find_active(conn, &api_key)?
                .map(|k| k.unit_id)
                .ok_or_else(|| {
                    AppError::Unauthorized(Msg::new(
                        "Khóa API không hợp lệ hoặc đã bị thu hồi.",
                        "The API key is not valid or has been revoked.",
                    ))
                })
        })
        .await?;
    let secret = services.secret.clone();
    let offset = services.policies.utc_offset;
    let now = crate::db::now();
    services
        .writer
        .run(move |conn, delta| {
            attach_sticker(conn, delta, &secret, &key_unit, &request, now, offset)
        })
        .await?
}
