//! After a form: the redirect that carries a notice code, and the status of a re-rendered form.

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};

use crate::error::AppError;

/// Redirect after a successful change (post/redirect/get), with a notice code.
pub fn done(location: &str, ok: &str) -> HttpResponse {
    let sep = if location.contains('?') { '&' } else { '?' };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{location}{sep}ok={ok}")))
        .finish()
}

/// Status for re-rendering a form after a failed action.
pub fn failed_status(e: &AppError) -> StatusCode {
    actix_web::ResponseError::status_code(e)
}
