//! The edge check of every request's text ([`crate::text`]), as one middleware so that no
//! handler (the sign-in form included) can forget it: the path may hold no control character
//! and no invalid UTF-8; the query string and a urlencoded form body no invalid UTF-8 and no
//! control character other than tab, line feed and carriage return (free text spans lines, and
//! the sign-in page must still open, then refuse to follow, a `next` such as `/\t/evil`).
//! Fields that must be one line are checked where they are used (`text::Lines::Single`).
//! Refusals are 422 (control character) or 400 (invalid UTF-8) and name the field; the error
//! middleware shows them as a page or, under `/api/`, as the JSON error.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, ResponseError, web};
use percent_encoding::percent_decode;

use super::AppState;
use crate::error::{AppError, AppResult};
use crate::text::{self, Lines};

/// Largest form body read when the settings are not at hand (they always are in the app).
const FALLBACK_LIMIT: usize = 64 * 1024;

/// Checks a request path (still percent-encoded, as on the wire): every decoded segment must be
/// UTF-8 without control characters.
pub fn check_path(raw: &str) -> AppResult<()> {
    let decoded: Vec<u8> = percent_decode(raw.as_bytes()).collect();
    let path = text::utf8("path", &decoded)?;
    text::check("path", path, Lines::Single)
}

/// Checks a urlencoded list (`a=1&b=2`, a query string or a form body): names and values must
/// decode to UTF-8, names hold no control character, values none but what `lines` allows.
pub fn check_urlencoded(raw: &[u8], lines: Lines, whole: &str) -> AppResult<()> {
    for pair in raw.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = decode_component(name);
        let name = text::utf8(whole, &name)?;
        text::check(whole, name, Lines::Single)?;
        let value = decode_component(value);
        let value = text::utf8(name, &value)?;
        text::check(name, value, lines)?;
    }
    Ok(())
}

/// `application/x-www-form-urlencoded` decoding of one name or value, to raw bytes.
fn decode_component(raw: &[u8]) -> Vec<u8> {
    let plus_as_space: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&plus_as_space).collect()
}

fn is_form(req: &ServiceRequest) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

type Res<B> = ServiceResponse<EitherBody<B>>;

fn refuse<B>(req: ServiceRequest, error: AppError) -> Res<B> {
    req.into_response(error.error_response())
        .map_into_right_body()
}

/// The middleware: refuses a request whose path, query or form body breaks the rule above,
/// before any handler or database sees it.
pub async fn screen<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<Res<B>, actix_web::Error> {
    let checked = check_path(req.uri().path())
        .and_then(|()| check_urlencoded(req.query_string().as_bytes(), Lines::Multi, "query"));
    if let Err(e) = checked {
        return Ok(refuse(req, e));
    }
    if is_form(&req) {
        let limit = req
            .app_data::<web::Data<AppState>>()
            .map_or(FALLBACK_LIMIT, |s| s.settings.max_body_bytes);
        let mut payload = req.take_payload();
        let mut body = web::BytesMut::new();
        use futures_util::StreamExt;
        while let Some(chunk) = payload.next().await {
            let Ok(chunk) = chunk else {
                let e = AppError::bad_request(
                    "body",
                    crate::i18n::Msg::new(
                        "Không đọc được nội dung gửi lên.",
                        "The request body could not be read.",
                    ),
                );
                return Ok(refuse(req, e));
            };
            if body.len() + chunk.len() > limit {
                let response = super::errors::render(req.request(), StatusCode::PAYLOAD_TOO_LARGE);
                return Ok(req.into_response(response).map_into_right_body());
            }
            body.extend_from_slice(&chunk);
        }
        let body = body.freeze();
        if let Err(e) = check_urlencoded(&body, Lines::Multi, "body") {
            return Ok(refuse(req, e));
        }
        req.set_payload(actix_web::dev::Payload::from(body));
    }
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_queries_and_paths_are_screened() {
        assert!(check_urlencoded(b"a=1&b=S%E1%BB%9F+T%C6%B0&c", Lines::Single, "q").is_ok());
        assert!(check_urlencoded(b"comment=d%C3%B2ng%0D%0Ahai", Lines::Multi, "body").is_ok());
        let nul = check_urlencoded(b"x=1&comment=a%00b", Lines::Multi, "body").unwrap_err();
        assert_eq!(nul.status_code(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(nul.to_string().contains("`comment`"), "{nul}");
        let bad = check_urlencoded(b"comment=%FF%FE", Lines::Multi, "body").unwrap_err();
        assert_eq!(bad.status_code(), StatusCode::BAD_REQUEST);
        assert!(check_urlencoded(b"q=a%0Ab", Lines::Single, "query").is_err());
        assert!(check_urlencoded(b"a%00=1", Lines::Single, "query").is_err());
        assert!(check_path("/reports/units/ab%20c").is_ok());
        assert!(check_path("/reports/units/%00").is_err());
        assert!(check_path("/reports/units/%C3").is_err());
    }
}
