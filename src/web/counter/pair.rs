//! `GET/POST /counter/pair`: a device types the pairing code staff created and becomes the
//! screen of that desk (a long-lived credential cookie).

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};

use super::super::AppState;
use super::super::layout::{html_response, page};
use super::DEVICE_COOKIE;
use crate::counter::devices;
use crate::error::AppError;
use crate::i18n::Lang;
use crate::web::lang::page_lang;

fn form(lang: Lang, problem: Option<&str>) -> Markup {
    html! {
        h1 { (lang.pick("Ghép nối màn hình quầy", "Pair a counter screen")) }
        p { (lang.pick(
            "Nhập mã ghép nối do quản trị viên hoặc cơ quan tạo cho quầy này (8 ký tự, dùng một lần, hiệu lực 15 phút).",
            "Type the pairing code an administrator or the agency created for this desk (8 characters, single use, valid for 15 minutes).")) }
        @if let Some(problem) = problem { div.alert role="alert" { (problem) } }
        form method="post" action="/counter/pair" {
            label for="code" { (lang.pick("Mã ghép nối", "Pairing code")) }
            input #code name="code" autocomplete="off" autocapitalize="characters" spellcheck="false" required maxlength="16";
            fieldset {
                legend { (lang.pick("Thiết bị này dùng làm", "Use this device as")) }
                label { input type="radio" name="use" value="screen" checked; " " (lang.pick("Màn hình hiển thị mã QR", "Screen showing the QR code")) }
                label { input type="radio" name="use" value="kiosk"; " " (lang.pick("Máy đánh giá một chạm", "One-tap rating kiosk")) }
            }
            input type="hidden" name="lang" value=(lang.code());
            button type="submit" { (lang.pick("Ghép nối", "Pair")) }
        }
    }
}

pub async fn page_get(req: HttpRequest) -> HttpResponse {
    let lang = page_lang(&req);
    let title = lang.pick("Ghép nối màn hình quầy", "Pair a counter screen");
    let switch = format!("/counter/pair?lang={}", lang.other().code());
    html_response(
        StatusCode::OK,
        page(lang, title, Some(&switch), form(lang, None)),
    )
}

pub async fn submit(
    state: web::Data<AppState>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let lang = Lang::from_param(field("lang").as_deref());
    let typed = field("code").unwrap_or_default();
    // The same pairing serves the desk's screen and its one-tap kiosk.
    let use_as = match field("use").as_deref() {
        Some("kiosk") => "kiosk",
        _ => "screen",
    };
    let now = crate::db::now();
    let paired = state
        .with_conn(move |conn| Ok(devices::pair(conn, &typed, now)?))
        .await?;
    let title = lang.pick("Ghép nối màn hình quầy", "Pair a counter screen");
    match paired {
        Ok(device) => {
            let cookie = Cookie::build(DEVICE_COOKIE, device.credential)
                .path("/counter")
                .http_only(true)
                .secure(state.settings.secure_cookies())
                .same_site(SameSite::Lax)
                // As long as browsers keep a cookie: a screen stays paired until revoked.
                .max_age(actix_web::cookie::time::Duration::days(400))
                .finish();
            Ok(HttpResponse::SeeOther()
                .cookie(cookie)
                .insert_header((
                    header::LOCATION,
                    format!("/counter/{}/{use_as}", device.desk.as_str()),
                ))
                .finish())
        }
        Err(devices::PairingRefused::UnknownOrUsed) => Ok(html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            page(
                lang,
                title,
                None,
                form(
                    lang,
                    Some(lang.pick(
                        "Mã ghép nối không đúng, đã dùng hoặc đã hết hạn. Vui lòng xin mã mới.",
                        "The pairing code is wrong, used or expired. Please ask for a new one.",
                    )),
                ),
            ),
        )),
    }
}
