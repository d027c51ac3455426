//! The one error type of the service: each variant is a reason a user can be told, mapped to
//! an HTTP status and a message in Vietnamese and English. Causes stay in the logs.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::json;

use crate::i18n::Msg;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A request field is missing or wrong (422 for content, 400 for shape).
    #[error("invalid field `{field}`: {}", message.en)]
    InvalidField {
        field: String,
        message: Msg,
        status: StatusCode,
    },
    #[error("unauthorized: {}", .0.en)]
    Unauthorized(Msg),
    #[error("forbidden: {}", .0.en)]
    Forbidden(Msg),
    #[error("not found: {}", .0.en)]
    NotFound(Msg),
    #[error("conflict: {}", .0.en)]
    Conflict(Msg),
    #[error("gone: {}", .0.en)]
    Gone(Msg),
    #[error("service unavailable: {}", .0.en)]
    Unavailable(Msg),
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn field(field: impl Into<String>, message: Msg) -> Self {
        Self::InvalidField {
            field: field.into(),
            message,
            status: StatusCode::UNPROCESSABLE_ENTITY,
        }
    }

    pub fn bad_request(field: impl Into<String>, message: Msg) -> Self {
        Self::InvalidField {
            field: field.into(),
            message,
            status: StatusCode::BAD_REQUEST,
        }
    }

    /// What the user is told; internal causes are replaced by a generic message.
    pub fn user_message(&self) -> Msg {
        match self {
            Self::InvalidField { message, .. } => message.clone(),
            Self::Unauthorized(m) | Self::Forbidden(m) | Self::NotFound(m) | Self::Conflict(m) => {
                m.clone()
            }
            Self::Gone(m) | Self::Unavailable(m) => m.clone(),
            Self::Internal(_) => Msg::new(
                "Đã xảy ra lỗi trong hệ thống. Vui lòng thử lại sau.",
                "Something went wrong on our side. Please try again later.",
            ),
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidField { .. } => "invalid_field",
            Self::Unauthorized(_) => "unauthorized",
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Conflict(_) => "conflict",
            Self::Gone(_) => "gone",
            Self::Unavailable(_) => "unavailable",
            Self::Internal(_) => "internal",
        }
    }
}

impl AppError {
    /// Logs the underlying cause of a user-facing error; the user sees only the message.
    pub fn with_cause(self, cause: impl std::fmt::Display) -> Self {
        tracing::warn!(error = %cause, code = self.code(), "request failed");
        self
    }
}

impl From<diesel::result::Error> for AppError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Internal(e.into())
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        Self::Internal(anyhow::anyhow!("blocking task failed: {e}"))
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::InvalidField { status, .. } => *status,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Gone(_) => StatusCode::GONE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// JSON for API clients; HTML pages render their own errors (see `web::pages`).
    fn error_response(&self) -> HttpResponse {
        if let Self::Internal(cause) = self {
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        let message = self.user_message();
        let mut body = json!({
            "code": self.code(),
            "message": message.vi,
            "message_en": message.en,
        });
        if let Self::InvalidField { field, .. } = self {
            body["field"] = json!(field);
        }
        let mut builder = HttpResponse::build(self.status_code());
        if matches!(self, Self::Unauthorized(_)) {
            builder.insert_header(("WWW-Authenticate", "Bearer"));
        }
        let mut response = builder.json(json!({ "error": body }));
        // Pages outside the API show the same message as HTML (see `web::errors`).
        response.extensions_mut().insert(message);
        response
    }
}

pub type AppResult<T> = Result<T, AppError>;
