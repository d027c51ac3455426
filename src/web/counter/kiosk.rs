//! `GET/POST /counter/{desk}/kiosk`: the one-tap kiosk of a desk (a tablet paired like the
//! screen). Plain forms: one tap is one POST, then an optional follow-up item, then the page
//! resets itself for the next person (a refresh), with or without script.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{DOCTYPE, Markup, html};

use super::super::AppState;
use super::super::layout::html_response;
use crate::counter::kiosk::{
    FOLLOW_UPS, KioskPolicy, Tapped, device_for_desk, follow_up_at_desk, tap_at_desk,
};
use crate::error::AppError;

/// Seconds the follow-up question waits before the kiosk resets by itself.
const FOLLOW_UP_SECONDS: u32 = 20;
/// Seconds the thank-you shows.
const THANKS_SECONDS: u32 = 3;

fn policy(state: &AppState) -> KioskPolicy {
    KioskPolicy {
        faces: if state.settings.kiosk_faces == 3 {
            3
        } else {
            5
        },
        min_gap: chrono::Duration::seconds(state.settings.kiosk_tap_seconds.max(0)),
    }
}

/// The faces of a scale, best last: (value, Vietnamese, English, mouth curve).
fn faces(count: i64) -> Vec<(i64, &'static str, &'static str, i32)> {
    if count == 3 {
        vec![
            (1, "Không hài lòng", "Unsatisfied", -8),
            (2, "Bình thường", "Neutral", 0),
            (3, "Hài lòng", "Satisfied", 8),
        ]
    } else {
        vec![
            (1, "Rất không hài lòng", "Very unsatisfied", -10),
            (2, "Không hài lòng", "Unsatisfied", -5),
            (3, "Bình thường", "Neutral", 0),
            (4, "Hài lòng", "Satisfied", 5),
            (5, "Rất hài lòng", "Very satisfied", 10),
        ]
    }
}

/// A face drawn in SVG: eyes and a mouth curving up (`curve` > 0) or down.
fn face_svg(curve: i32) -> Markup {
    let (mouth_y, control_y) = (34 - curve / 2, 34 + curve);
    let colour = match curve {
        c if c > 0 => "#1b7a3a",
        0 => "#8a6d00",
        _ => "#b3261e",
    };
    html! {
        svg viewBox="0 0 48 48" width="96" height="96" aria-hidden="true" focusable="false" {
            circle cx="24" cy="24" r="22" fill="#fff" stroke=(colour) stroke-width="3" {}
            circle cx="17" cy="19" r="3" fill=(colour) {}
            circle cx="31" cy="19" r="3" fill=(colour) {}
            path d=(format!("M14 {mouth_y} Q24 {control_y} 34 {mouth_y}")) fill="none" stroke=(colour) stroke-width="3" stroke-linecap="round" {}
        }
    }
}

fn shell(desk: &str, refresh: Option<(u32, String)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="vi" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                // The reset for the next person: by script (which offers more time), else by a
                // refresh.
                @if let Some((seconds, to)) = &refresh {
                    noscript { meta http-equiv="refresh" content=(format!("{seconds};url={to}")); }
                    script src=(concat!("/static/kiosk.js?v=", env!("CARGO_PKG_VERSION"))) defer {}
                }
                title { "Quầy " (desk) " · Đánh giá / Rate us" }
                link rel="stylesheet" href=(concat!("/static/counter.css?v=", env!("CARGO_PKG_VERSION")));
            }
            body.kiosk data-reset-to=[refresh.as_ref().map(|(_, to)| to.clone())] data-reset-seconds=[refresh.as_ref().map(|(s, _)| *s)] {
                main {
                    (body)
                    @if refresh.is_some() {
                        p { button #more-time type="button" hidden { "Cần thêm thời gian / More time" } }
                    }
                }
            }
        }
    }
}

fn no_store(mut response: HttpResponse) -> HttpResponse {
    response.headers_mut().insert(
        actix_web::http::header::CACHE_CONTROL,
        actix_web::http::header::HeaderValue::from_static("no-store"),
    );
    response
}

fn home(desk: &str) -> String {
    format!("/counter/{desk}/kiosk")
}

fn faces_page(desk: &str, count: i64, problem: Option<&str>) -> Markup {
    shell(
        desk,
        None,
        html! {
            h1 { "Ông/Bà có hài lòng với sự phục vụ hôm nay không?" }
            p.en lang="en" { "How satisfied are you with today's service?" }
            @if let Some(problem) = problem { p.alert role="alert" { (problem) } }
            form.faces method="post" action=(home(desk)) {
                @for (value, vi, en, curve) in faces(count) {
                    button type="submit" name="face" value=(value) {
                        (face_svg(curve))
                        span.vi { (vi) }
                        span.en lang="en" { (en) }
                    }
                }
            }
            p.muted { "Ẩn danh: không ghi lại thông tin cá nhân. / Anonymous: nothing personal is recorded." }
        },
    )
}

fn refused_page(refused: crate::counter::screen::ScreenRefused) -> HttpResponse {
    super::screen::refused_page(refused)
}

fn credential_and_desk(req: &HttpRequest, path: web::Path<String>) -> (Option<String>, String) {
    (super::credential(req), path.into_inner())
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (credential, desk) = credential_and_desk(&req, path);
    let asked = desk.clone();
    let device = state
        .with_conn(move |conn| Ok(device_for_desk(conn, credential.as_deref(), &asked)?))
        .await?;
    if let Err(refused) = device {
        return Ok(refused_page(refused));
    }
    let count = policy(&state).faces;
    Ok(no_store(html_response(
        StatusCode::OK,
        faces_page(&desk, count, None),
    )))
}

fn field(pairs: &[(String, String)], name: &str) -> String {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

pub async fn tap(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (credential, desk) = credential_and_desk(&req, path);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let face = field(&pairs, "face");
    let policy = policy(&state);
    let asked = desk.clone();
    let now = crate::db::now();
    let result = state
        .with_conn(move |conn| {
            tap_at_desk(conn, &policy, credential.as_deref(), &asked, &face, now)
        })
        .await;
    let tapped = match result {
        Ok(Ok(tapped)) => tapped,
        Ok(Err(refused)) => return Ok(refused_page(refused)),
        Err(AppError::InvalidField { .. }) => {
            return Ok(no_store(html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                faces_page(
                    &desk,
                    policy.faces,
                    Some(
                        "Vui lòng chạm vào một trong các khuôn mặt. / Please tap one of the faces.",
                    ),
                ),
            )));
        }
        Err(e) => return Err(e),
    };
    let markup = match &tapped {
        Tapped::Recorded { tap_id } => shell(
            &desk,
            Some((FOLLOW_UP_SECONDS, home(&desk))),
            html! {
                h1 { "Cảm ơn Ông/Bà!" }
                p.en lang="en" { "Thank you!" }
                h2 { "Ông/Bà muốn chúng tôi cải thiện điều gì nhất? (không bắt buộc)" }
                p.en lang="en" { "What should we improve most? (optional)" }
                form.follow-up method="post" action=(format!("{}/follow-up", home(&desk))) {
                    input type="hidden" name="tap" value=(tap_id);
                    @for (code, vi, en) in FOLLOW_UPS {
                        button type="submit" name="answer" value=(code) { span.vi { (vi) } span.en lang="en" { (en) } }
                    }
                }
                p { a.skip href=(home(&desk)) { "Bỏ qua / Skip" } }
            },
        ),
        Tapped::TooSoon { wait_seconds } => shell(
            &desk,
            Some((
                u32::try_from(*wait_seconds).unwrap_or(10).clamp(1, 600),
                home(&desk),
            )),
            html! {
                h1 { "Cảm ơn, ý kiến vừa rồi đã được ghi nhận." }
                p.en lang="en" { "Thank you, the last answer has been recorded." }
                p role="status" { "Vui lòng đợi " (wait_seconds) " giây trước khi đánh giá tiếp. / Please wait " (wait_seconds) " seconds before the next rating." }
            },
        ),
    };
    let status = match tapped {
        Tapped::Recorded { .. } => StatusCode::OK,
        Tapped::TooSoon { .. } => StatusCode::TOO_MANY_REQUESTS,
    };
    Ok(no_store(html_response(status, markup)))
}

pub async fn follow_up(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let (credential, desk) = credential_and_desk(&req, path);
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let (tap_id, answer) = (field(&pairs, "tap"), field(&pairs, "answer"));
    let asked = desk.clone();
    let now = crate::db::now();
    let result = state
        .with_conn(move |conn| {
            follow_up_at_desk(conn, credential.as_deref(), &asked, &tap_id, &answer, now)
        })
        .await?;
    if let Err(refused) = result {
        return Ok(refused_page(refused));
    }
    let markup = shell(
        &desk,
        Some((THANKS_SECONDS, home(&desk))),
        html! {
            h1 { "Cảm ơn Ông/Bà đã góp ý!" }
            p.en lang="en" { "Thank you for your feedback!" }
            p { a href=(home(&desk)) { "Tiếp tục / Continue" } }
        },
    );
    Ok(no_store(html_response(StatusCode::OK, markup)))
}
