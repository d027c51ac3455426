//! The one error type of the service: each variant is a kind of reason a user can be told,
//! with a message in Vietnamese and English. No HTTP here: the web edge maps each kind to a
//! status (`web::error_status`), the CLI prints the message. Causes stay in the logs.

use crate::i18n::Msg;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// A request field is missing or wrong (422 for content, 400 for shape).
    #[error("invalid field `{field}`: {}", message.en)]
    InvalidField {
        field: String,
        message: Msg,
        /// The input could not be read at all (not just a value out of its rules).
        malformed: bool,
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
            malformed: false,
        }
    }

    pub fn bad_request(field: impl Into<String>, message: Msg) -> Self {
        Self::InvalidField {
            field: field.into(),
            message,
            malformed: true,
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

pub type AppResult<T> = Result<T, AppError>;

/// A JSON request body as an object with only the `fields` an API lists: anything else is
/// refused rather than ignored (a misspelt `email` would otherwise mean an invitation silently
/// never sent), naming the first unknown field.
pub fn json_object<'a>(
    body: &'a serde_json::Value,
    fields: &[&str],
) -> AppResult<&'a serde_json::Map<String, serde_json::Value>> {
    let serde_json::Value::Object(body) = body else {
        return Err(AppError::bad_request(
            "body",
            Msg::new(
                "Nội dung yêu cầu phải là một đối tượng JSON.",
                "The request body must be a JSON object.",
            ),
        ));
    };
    if let Some(unknown) = body.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(AppError::field(
            unknown.as_str(),
            Msg::new(
                format!(
                    "Trường `{unknown}` không có trong API (các trường: {}).",
                    fields.join(", ")
                ),
                format!(
                    "Unknown field `{unknown}` (the fields are: {}).",
                    fields.join(", ")
                ),
            ),
        ));
    }
    Ok(body)
}
