//! Keyboard entry of paper forms: the serial first, then the answers; a typist may undo the
//! form just saved.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::views::{PageQuery, Shown, entry_form, form_pairs, refused};
use crate::error::AppError;
use crate::forms::answers::AnswerProblems;
use crate::i18n::Lang;
use crate::paper::entry::{self, EntryError, PaperForm, Saved, Typing};
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

pub(super) async fn load_form(
    state: &AppState,
    user: &CurrentUser,
    serial: String,
) -> Result<PaperForm, AppError> {
    let forms = state.forms.clone();
    let u = user.0.user.clone();
    state
        .with_conn(move |conn| entry::find(conn, &forms, &u, &serial))
        .await
}

pub async fn entry_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let typed_by_me = paper.passes.iter().any(|(_, t)| *t == user.0.user.id);
    let title = format!("{} {}", lang.pick("Phiếu", "Form"), paper.serial);
    if paper.status == "verified"
        || paper.status == "disputed"
        || typed_by_me
        || paper.passes.len() >= 2
        || (paper.passes.len() == 1 && !paper.double_entry)
    {
        let text = if typed_by_me {
            lang.pick(
                "Ông/Bà đã nhập phiếu này.",
                "You have already keyed this form.",
            )
        } else {
            lang.pick(
                "Phiếu này đã được nhập đủ.",
                "This form has been keyed in full.",
            )
        };
        let body = html! { p.notice { (text) } p { a href="/paper/entry" { (lang.pick("Nhập phiếu khác", "Key another form")) } } };
        return Ok(html_response(
            StatusCode::CONFLICT,
            staff_page(lang, &user, "/paper/entry", &title, body),
        ));
    }
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
    let lang = page_lang(&req);
    let pairs = form_pairs(&body)?;
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let started = field("started_at")
        .and_then(|s| s.parse::<i64>().ok())
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.naive_utc())
        .unwrap_or_else(crate::db::now);
    let typing = Typing {
        answers: pairs.clone(),
        confirm_blank: field("confirm_blank").is_some(),
        started_at: started,
        keystrokes: field("keystrokes")
            .and_then(|k| k.parse().ok())
            .unwrap_or(0),
    };
    let typist = user.0.user.clone();
    let offset = state.policies.utc_offset;
    let p = paper.clone();
    let result = state
        .with_conn(move |conn| Ok(entry::save(conn, &typist, &p, &typing, offset)))
        .await?;
    let serial = paper.serial.clone();
    match result {
        Ok(saved) => {
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
        Err(EntryError::Invalid(problems, issues)) => {
            let blank = issues.iter().any(|(k, _)| k == "_form");
            let shown = Shown {
                given: &pairs,
                problems: &problems,
                issues: &issues,
                blank_confirm: blank,
            };
            Ok(refused(
                lang,
                &user,
                "/paper/entry",
                &format!("/paper/entry/{serial}"),
                &paper,
                &shown,
            ))
        }
        Err(EntryError::Other(e)) => Err(e),
    }
}

pub async fn undo(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let typist = user.0.user.clone();
    let offset = state.policies.utc_offset;
    let p = paper.clone();
    state
        .with_conn(move |conn| entry::undo_last(conn, &typist, &p, offset))
        .await?;
    Ok(HttpResponse::SeeOther()
        .insert_header((
            header::LOCATION,
            format!("/paper/entry?ok=undone&last={}", paper.serial),
        ))
        .finish())
}
