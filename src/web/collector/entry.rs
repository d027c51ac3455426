//! Keyboard entry of paper forms: the serial first, then the answers; a typist may undo the
//! form just saved.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::views::{PageQuery, Shown, actor, entry_form, form_pairs, refused};
use crate::error::AppError;
use crate::forms::answers::AnswerProblems;
use crate::i18n::Lang;
use crate::paper::entry::{self, Keyed, Saved, Typing};
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{csrf_field, staff_page};

// ---------------------------------------------------------------- keyboard entry

fn serial_box(
    lang: Lang,
    user: &CurrentUser,
    ok: Option<&str>,
    last: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let saved = match ok {
        Some("verified") => {
            Some(lang.pick("Đã lưu và xác nhận phiếu ", "Saved and verified form "))
        }
        Some("second") => Some(lang.pick(
            "Đã lưu; phiếu cần người thứ hai nhập lại: ",
            "Saved; a second person must key form ",
        )),
        Some("disputed") => Some(lang.pick(
            "Hai lần nhập khác nhau; phiếu chờ phân xử: ",
            "The two typings differ; awaiting adjudication: ",
        )),
        _ => None,
    };
    html! {
        @if let Some(text) = saved {
            p.notice role="status" { (text) strong { (last.unwrap_or("")) } }
            @if let Some(serial) = last {
                form.inline method="post" action=(format!("/paper/entry/{serial}/undo")) {
                    (csrf_field(user))
                    button.link type="submit" { (lang.pick("Hoàn tác phiếu vừa nhập", "Undo the form just saved")) }
                }
            }
        }
        @if ok == Some("undone") { p.notice role="status" { (lang.pick("Đã hoàn tác phiếu ", "Undid form ")) strong { (last.unwrap_or("")) } } }
        @if let Some(e) = error { div.alert role="alert" { (e) } }
        form.stack method="get" action="/paper/entry/open" {
            label for="serial" { (lang.pick("Số phiếu (nhập hoặc quét mã QR)", "Form serial (type or scan the QR code)")) }
            input #serial type="text" name="serial" autocomplete="off" autofocus required;
            button type="submit" { (lang.pick("Mở phiếu", "Open form")) }
        }
    }
}

pub async fn entry_start(
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<PageQuery>,
) -> HttpResponse {
    let lang = page_lang(&req);
    let body = serial_box(lang, &user, q.ok.as_deref(), q.last.as_deref(), None);
    html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/paper/entry",
            lang.pick("Nhập phiếu giấy", "Paper entry"),
            body,
        ),
    )
}

#[derive(Deserialize)]
pub struct OpenQuery {
    serial: String,
}

pub async fn entry_open(
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<OpenQuery>,
) -> HttpResponse {
    match crate::paper::serial::normalize(&q.serial) {
        Some(serial) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, format!("/paper/entry/{serial}")))
            .finish(),
        None => {
            let lang = page_lang(&req);
            let body = serial_box(
                lang,
                &user,
                None,
                None,
                Some(lang.pick(
                    "Số phiếu không hợp lệ (10 ký tự, ví dụ ABCD-EFGH-23).",
                    "Not a serial (10 characters, e.g. ABCD-EFGH-23).",
                )),
            );
            html_response(
                StatusCode::UNPROCESSABLE_ENTITY,
                staff_page(
                    lang,
                    &user,
                    "/paper/entry",
                    lang.pick("Nhập phiếu giấy", "Paper entry"),
                    body,
                ),
            )
        }
    }
}

pub async fn entry_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let serial = path.into_inner();
    let paper = match entry::open_form(&state, actor(&user), serial.clone()).await {
        Ok(paper) => paper,
        Err(AppError::Conflict(why)) => {
            // Keyed in full, or the second typing is someone else's: say so, and offer the next.
            let title = format!("{} {}", lang.pick("Phiếu", "Form"), serial);
            let body = html! { p.notice { (why.get(lang)) } p { a href="/paper/entry" { (lang.pick("Nhập phiếu khác", "Key another form")) } } };
            return Ok(html_response(
                StatusCode::CONFLICT,
                staff_page(lang, &user, "/paper/entry", &title, body),
            ));
        }
        Err(e) => return Err(e),
    };
    let title = format!("{} {}", lang.pick("Phiếu", "Form"), paper.serial);
    let body = html! {
        p.meta { (paper.unit_name) " · " (lang.pick("Lô ", "Batch ")) (paper.batch_code)
            @if paper.double_entry { " · " (lang.pick("nhập hai lần", "double entry")) } }
        (entry_form(lang, &user, &format!("/paper/entry/{}", paper.serial), &paper.form, &Shown { given: &[], problems: &AnswerProblems::new(), issues: &[], blank_confirm: false }))
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(lang, &user, "/paper/entry", &title, body),
    ))
}

pub async fn entry_save(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let typing = Typing::parse(form_pairs(&body)?, crate::db::now());
    match entry::save_typing(&state, actor(&user), path.into_inner(), typing).await? {
        Keyed::Saved { serial, saved } => {
            let ok = match saved {
                Saved::Verified => "verified",
                Saved::AwaitingSecondEntry => "second",
                Saved::Disputed => "disputed",
            };
            Ok(HttpResponse::SeeOther()
                .insert_header((
                    header::LOCATION,
                    format!("/paper/entry?ok={ok}&last={serial}"),
                ))
                .finish())
        }
        Keyed::Refused(refusal) => Ok(refused(
            page_lang(&req),
            &user,
            "/paper/entry",
            &format!("/paper/entry/{}", refusal.paper.serial),
            &refusal,
        )),
    }
}

pub async fn undo(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let serial = entry::undo(&state, actor(&user), path.into_inner()).await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/paper/entry?ok=undone&last={serial}"),
        ))
        .finish())
}
