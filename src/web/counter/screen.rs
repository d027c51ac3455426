//! `GET /counter/{desk}/screen`: the citizen-facing screen of a desk. Live through server-sent
//! events (`/counter/{desk}/events`, a small script); without script, it reloads itself.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::super::AppState;
use super::super::layout::{html_response, message_page};
use crate::counter::screen::{ScreenPolicy, ScreenRefused, ScreenView, view};
use crate::error::AppError;
use crate::i18n::Lang;

/// The part of the screen that changes: the QR with the procedure, or a greeting.
pub fn fragment(view: &ScreenView) -> Markup {
    html! {
        @if let Some(s) = &view.survey {
            h1 lang="vi" { "Mời Ông/Bà đánh giá sự phục vụ" }
            p.en lang="en" { "Please rate our service" }
            div.qr role="img" aria-label="Mã QR khảo sát / Survey QR code" data-url=(s.survey_url) { (PreEscaped(&s.qr_svg)) }
            p.procedure lang="vi" { (s.procedure_vi) }
            p.en lang="en" { (s.procedure_en) }
            p lang="vi" { "Quét mã bằng camera điện thoại. Phiếu ẩn danh, mất khoảng 2 phút." }
            p.en lang="en" { "Scan the code with your phone camera. Anonymous, about 2 minutes." }
        } @else {
            h1 lang="vi" { "Quầy " (view.desk) }
            p.en lang="en" { "Desk " (view.desk) }
            p lang="vi" { "Xin chào Ông/Bà." }
            p.en lang="en" { "Welcome." }
        }
    }
}

pub(super) fn refused_page(refused: ScreenRefused) -> HttpResponse {
    match refused {
        ScreenRefused::NotPaired => message_page(
            Lang::Vi,
            StatusCode::UNAUTHORIZED,
            "Thiết bị chưa được ghép nối / Device not paired",
            "Mở /counter/pair và nhập mã ghép nối. / Open /counter/pair and type a pairing code.",
            None,
        ),
        ScreenRefused::OtherDesk => message_page(
            Lang::Vi,
            StatusCode::FORBIDDEN,
            "Không phải quầy của thiết bị này / Not this device's desk",
            "Thiết bị này chỉ hiển thị quầy đã ghép nối. / This device shows only the desk it is paired to.",
            None,
        ),
    }
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let desk = path.into_inner();
    let credential = super::credential(&req);
    let (secret, public_base, show_for) = super::policy_parts(&state);
    let now = crate::db::now();
    let asked = desk.clone();
    let result = state
        .with_conn(move |conn| {
            let policy = ScreenPolicy {
                secret: &secret,
                public_base: &public_base,
                show_for,
            };
            view(conn, &policy, credential.as_deref(), &asked, now).map_err(AppError::Internal)
        })
        .await?;
    let view = match result {
        Ok(view) => view,
        Err(refused) => return Ok(refused_page(refused)),
    };
    let markup = html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                // Without script the page reloads itself; with it, events replace the content.
                noscript { meta http-equiv="refresh" content="2"; }
                title { "Quầy " (view.desk) " · SIPAS" }
                link rel="stylesheet" href=(concat!("/static/sipas.css?v=", env!("CARGO_PKG_VERSION")));
                link rel="stylesheet" href=(concat!("/static/counter.css?v=", env!("CARGO_PKG_VERSION")));
                script src=(concat!("/static/counter-screen.js?v=", env!("CARGO_PKG_VERSION"))) defer {}
            }
            body.counter-screen data-events=(format!("/counter/{}/events", view.desk)) data-key=(view.key()) {
                main #screen aria-live="polite" { (fragment(&view)) }
            }
        }
    };
    let mut response = html_response(StatusCode::OK, markup);
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}
