//! Bilingual bodies for the errors actix produces by itself (unknown route, wrong method, body
//! too large, malformed query): API paths get the JSON error shape, pages get an HTML page.
//! Responses our handlers already rendered (JSON or HTML) pass through untouched.

use actix_web::body::{BoxBody, EitherBody};
use actix_web::dev::ServiceResponse;
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_TYPE, HeaderValue};
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use super::layout::message_page;
use crate::i18n::{Lang, Msg};

fn message_for(status: StatusCode) -> Msg {
    match status {
        StatusCode::UNAUTHORIZED => Msg::new(
            "Cần đăng nhập để dùng địa chỉ này.",
            "You must sign in to use this address.",
        ),
        StatusCode::FORBIDDEN => Msg::new(
            "Tài khoản không được phép dùng địa chỉ này.",
            "This account may not use this address.",
        ),
        StatusCode::NOT_FOUND => Msg::new(
            "Không tìm thấy trang hoặc tài nguyên yêu cầu.",
            "The requested page or resource was not found.",
        ),
        StatusCode::METHOD_NOT_ALLOWED => Msg::new(
            "Phương thức HTTP này không được hỗ trợ tại địa chỉ này.",
            "This HTTP method is not supported at this address.",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => Msg::new(
            "Nội dung gửi lên quá lớn.",
            "The request body is too large.",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Msg::new(
            "Định dạng nội dung không được hỗ trợ.",
            "The content type is not supported.",
        ),
        s if s.is_client_error() => Msg::new("Yêu cầu không hợp lệ.", "The request is not valid."),
        _ => Msg::new(
            "Đã xảy ra lỗi trong hệ thống. Vui lòng thử lại sau.",
            "Something went wrong on our side. Please try again later.",
        ),
    }
}

/// The same error for a request, in the form its caller reads.
pub fn render(req: &HttpRequest, status: StatusCode) -> HttpResponse {
    let message = message_for(status);
    if req.path().starts_with("/api/") {
        let code = status
            .canonical_reason()
            .unwrap_or("error")
            .to_ascii_lowercase()
            .replace(' ', "_");
        return HttpResponse::build(status).json(
            json!({ "error": { "code": code, "message": message.vi, "message_en": message.en } }),
        );
    }
    let lang = Lang::from_param(
        req.query_string()
            .split('&')
            .find_map(|kv| kv.strip_prefix("lang=")),
    );
    let title = match status {
        StatusCode::NOT_FOUND => lang.pick("Không tìm thấy trang", "Page not found"),
        _ => lang.pick(
            "Không thể xử lý yêu cầu",
            "The request could not be handled",
        ),
    };
    message_page(lang, status, title, message.get(lang), None)
}

/// Default service: unknown routes.
pub async fn not_found(req: HttpRequest) -> HttpResponse {
    render(&req, StatusCode::NOT_FOUND)
}

fn already_rendered(res: &ServiceResponse<impl actix_web::body::MessageBody>) -> bool {
    res.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with("text/html"))
}

fn rewrite<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>>
where
    B: actix_web::body::MessageBody + 'static,
{
    let status = res.status();
    let page_error = (!res.request().path().starts_with("/api/"))
        .then(|| res.response().extensions().get::<Msg>().cloned())
        .flatten();
    if page_error.is_none() && already_rendered(&res) {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let (req, _) = res.into_parts();
    let mut replacement = match page_error {
        // An `AppError` from a page handler: its own message, as a page.
        Some(message) => {
            let lang = crate::web::lang::page_lang(&req);
            let title = match status {
                StatusCode::NOT_FOUND => lang.pick("Không tìm thấy", "Not found"),
                StatusCode::FORBIDDEN => lang.pick("Không có quyền truy cập", "Access denied"),
                _ => lang.pick(
                    "Không thể xử lý yêu cầu",
                    "The request could not be handled",
                ),
            };
            message_page(lang, status, title, message.get(lang), None)
        }
        None => render(&req, status),
    };
    replacement.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    let response: HttpResponse<EitherBody<B, BoxBody>> = replacement.map_into_right_body();
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(
        req, response,
    )))
}

/// Middleware giving every plain-text error a bilingual body.
pub fn handlers<B>() -> ErrorHandlers<B>
where
    B: actix_web::body::MessageBody + 'static,
{
    ErrorHandlers::new().default_handler(rewrite)
}
