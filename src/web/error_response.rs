//! How a domain error answers over HTTP: the status of its kind, and a JSON body with the
//! message in both languages (pages outside the API turn it into HTML, see [`super::errors`]).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::error::AppError;

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::InvalidField {
                malformed: true, ..
            } => StatusCode::BAD_REQUEST,
            AppError::InvalidField { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound(_) => StatusCode::NOT_FOUND,
            AppError::Conflict(_) => StatusCode::CONFLICT,
            AppError::Gone(_) => StatusCode::GONE,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// JSON for API clients; HTML pages render their own errors (see `web::pages`).
    fn error_response(&self) -> HttpResponse {
        if let AppError::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let message = self.user_message();
        let mut body = json!({
            "code": self.code(),
            "message": message.vi,
            "message_en": message.en,
        });
        if let AppError::InvalidField { field, .. } = self {
            body["field"] = json!(field);
        }
        let mut builder = HttpResponse::build(self.status_code());
        if matches!(self, AppError::Unauthorized(_)) {
            builder.insert_header(("WWW-Authenticate", "Bearer"));
        }
        let mut response = builder.json(json!({ "error": body }));
        // Pages outside the API show the same message as HTML (see `web::errors`).
        response.extensions_mut().insert(message);
        response
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Internal(anyhow::anyhow!("blocking task failed: {e}"))
    }
}
