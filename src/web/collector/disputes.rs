//! Adjudication of forms whose two typings disagree, and the typists' statistics.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::views::{PageQuery, Shown, actor, entry_form, form_pairs, refused};
use crate::error::AppError;
use crate::forms::answers::AnswerProblems;
use crate::paper::disputes::{self, Resolved};
use crate::paper::entry;
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{notice, staff_page};
use crate::web::view::done;

// ---------------------------------------------------------------- adjudication and typists

pub async fn disputes(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let rows = disputes::list(&state, actor(&user)).await?;
    let body = html! {
        (notice(lang, q.ok.as_deref()))
        p.muted { (lang.pick("Phiếu có hai lần nhập khác nhau. Người thứ ba (không phải người đã nhập) đối chiếu phiếu giấy và chọn câu trả lời đúng.",
                             "Forms whose two typings differ. A third person (not one of the typists) checks the paper form and decides.")) }
        table #disputes {
            thead { tr { th { (lang.pick("Số phiếu", "Serial")) } th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Lô", "Batch")) } } }
            tbody { @for (serial, unit, batch) in &rows { tr {
                td { a href=(format!("/paper/disputes/{serial}")) { (serial) } } td { (unit) } td { (batch) }
            } } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/paper/disputes",
            lang.pick("Phân xử khác biệt", "Adjudication"),
            body,
        ),
    ))
}

pub async fn dispute(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let disputes::Dispute {
        paper,
        differences,
        first,
    } = disputes::open(&state, actor(&user), path.into_inner()).await?;
    let body = html! {
        table #differences {
            thead { tr { th { (lang.pick("Câu", "Question")) } th { (lang.pick("Lần nhập 1", "Typing 1")) } th { (lang.pick("Lần nhập 2", "Typing 2")) } } }
            tbody { @for (code, a, b) in &differences { tr { td { (code) } td { (a) } td { (b) } } } }
        }
        p.muted { (lang.pick("Phiếu dưới đây điền sẵn lần nhập 1; sửa các câu khác biệt theo phiếu giấy rồi lưu.", "The form below holds typing 1; fix the differing answers from the paper form and save.")) }
        (entry_form(lang, &user, &format!("/paper/disputes/{}", paper.serial), &paper.form, &Shown { given: &first, problems: &AnswerProblems::new(), issues: &[], blank_confirm: false }))
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/paper/disputes",
            &format!(
                "{} {}",
                lang.pick("Phân xử phiếu", "Adjudicate form"),
                paper.serial
            ),
            body,
        ),
    ))
}

pub async fn resolve(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let answers = form_pairs(&body)?;
    match disputes::resolve(&state, actor(&user), path.into_inner(), answers).await? {
        Resolved::Saved { .. } => Ok(done("/paper/disputes", "saved")),
        Resolved::Refused(refusal) => Ok(refused(
            page_lang(&req),
            &user,
            "/paper/disputes",
            &format!("/paper/disputes/{}", refusal.paper.serial),
            &refusal,
        )),
    }
}

pub async fn typists(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let rows = entry::typists(&state, actor(&user)).await?;
    let body = html! {
        table #typists {
            thead { tr { th { (lang.pick("Người nhập", "Typist")) } th { (lang.pick("Số phiếu", "Forms")) } th { (lang.pick("Thời gian trung vị / phiếu", "Median time per form")) } th { (lang.pick("Tỷ lệ khác biệt khi nhập hai lần", "Disagreement rate in double entry")) } } }
            tbody { @for (name, s) in &rows { tr {
                td { (name) } td { (s.forms) }
                td { (s.median_seconds.map(|v| format!("{v:.0} s")).unwrap_or_else(|| "—".into())) }
                td { (s.disagreement_rate.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "—".into())) }
            } } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/paper/typists",
            lang.pick("Năng suất nhập liệu", "Typist statistics"),
            body,
        ),
    ))
}
