//! Corrections of verified paper forms by administrators.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::views::{Shown, actor, entry_form, form_pairs, refused};
use crate::error::AppError;
use crate::forms::answers::AnswerProblems;
use crate::paper::correction::{self, Corrected, Correction};
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::staff_page;
use crate::web::view::done;

// ---------------------------------------------------------------- corrections (administrators)

pub async fn correction_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let Correction { paper, current } =
        correction::open(&state, actor(&user), path.into_inner()).await?;
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
    let answers = form_pairs(&body)?;
    match correction::correct(&state, actor(&user), path.into_inner(), answers).await? {
        Corrected::Saved { serial } => Ok(done(&format!("/paper/forms/{serial}/correct"), "saved")),
        Corrected::Refused(refusal) => Ok(refused(
            page_lang(&req),
            &user,
            "/admin/samples",
            &format!("/paper/forms/{}/correct", refusal.paper.serial),
            &refusal,
        )),
    }
}
