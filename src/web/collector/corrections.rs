//! Corrections of verified paper forms by administrators.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::entry::load_form;
use super::views::{Shown, entry_form, form_pairs, refused};
use crate::error::AppError;
use crate::forms::answers::AnswerProblems;
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::admin::done;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::staff_page;

// ---------------------------------------------------------------- corrections (administrators)

pub async fn correction_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let p = paper.clone();
    let current = state
        .with_conn(move |conn| crate::paper::correction::current(conn, &p))
        .await?;
    let body = html! {
        p.muted { (lang.pick("Sửa câu trả lời của phiếu đã xác nhận. Chỉ số được tính lại ngay; nhật ký lưu giá trị cũ và mới.",
                             "Correct a verified form. The index is updated at once; the audit log keeps old and new values.")) }
        (entry_form(lang, &user, &format!("/paper/forms/{}/correct", paper.serial), &paper.form, &Shown { given: &current, problems: &AnswerProblems::new(), issues: &[], blank_confirm: false }))
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/admin/samples",
            &format!(
                "{} {}",
                lang.pick("Sửa phiếu", "Correct form"),
                paper.serial
            ),
            body,
        ),
    ))
}

pub async fn correct(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let pairs = form_pairs(&body)?;
    let paper = load_form(&state, &user, path.into_inner()).await?;
    let admin = user.0.user.clone();
    let offset = state.policies.utc_offset;
    let (p, answers) = (paper.clone(), pairs.clone());
    match state
        .with_conn(move |conn| {
            Ok(crate::paper::correction::correct(
                conn, &admin, &p, &answers, offset,
            ))
        })
        .await?
    {
        Ok(()) => Ok(done(
            &format!("/paper/forms/{}/correct", paper.serial),
            "saved",
        )),
        Err(Ok(problems)) => {
            let shown = Shown {
                given: &pairs,
                problems: &problems,
                issues: &[],
                blank_confirm: false,
            };
            Ok(refused(
                lang,
                &user,
                "/admin/samples",
                &format!("/paper/forms/{}/correct", paper.serial),
                &paper,
                &shown,
            ))
        }
        Err(Err(e)) => Err(e),
    }
}
