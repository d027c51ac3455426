//! `/admin/releases`: administrators freeze a period's results into a signed release (or a
//! correction of the latest one) and see every release.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use crate::error::AppError;
use crate::i18n::Lang;
use crate::publish::release::{self, ReleaseSummary};
use crate::publish::signing;
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{csrf_field, error_box, notice, staff_page};
use crate::web::view::{done, failed_status};

#[derive(Debug, Deserialize)]
pub struct OkQuery {
    pub ok: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ReleaseForm {
    pub period: String,
    #[serde(default)]
    pub note: String,
}

fn releases_page(
    lang: Lang,
    user: &CurrentUser,
    rows: &[ReleaseSummary],
    form: Option<&ReleaseForm>,
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        p { (lang.pick(
            "Công bố chốt số liệu của một kỳ (giống báo cáo nội bộ, đã ẩn ô nhỏ) thành bản không thay đổi, được ký số, hiển thị công khai tại ",
            "A release freezes a period's figures (as in the staff reports, small cells hidden) into an immutable, signed snapshot, shown publicly at "))
            a href="/public" { "/public" } ". "
            (lang.pick("Công bố lại cùng kỳ là đính chính: đợt mới liệt kê các số liệu thay đổi.", "Releasing the same period again is a correction: the new release lists the figures that changed.")) }
        h2 { (lang.pick("Công bố một kỳ", "Release a period")) }
        (error_box(lang, error))
        form.stack method="post" action="/admin/releases" {
            (csrf_field(user))
            label for="period" { (lang.pick("Kỳ (2026, 2026-Q3, 2026-07)", "Period (2026, 2026-Q3, 2026-07)")) }
            input #period type="text" name="period" required value=(form.map(|f| f.period.as_str()).unwrap_or(""));
            label for="note" { (lang.pick("Ghi chú (lý do đính chính, nếu có)", "Note (reason for a correction, if any)")) }
            textarea #note name="note" { (form.map(|f| f.note.as_str()).unwrap_or("")) }
            button type="submit" { (lang.pick("Công bố", "Publish")) }
        }
        h2 { (lang.pick("Các đợt đã công bố", "Releases")) }
        table #admin-releases {
            thead { tr {
                th { (lang.pick("Kỳ", "Period")) } th { (lang.pick("Lần", "Release")) } th { (lang.pick("Thời điểm", "Created")) }
                th { (lang.pick("Người công bố", "By")) } th { "SHA-256" }
            } }
            tbody { @for r in rows { tr {
                td { a href=(format!("/public/releases/{}", r.id)) { (r.period) } }
                td { (r.sequence) @if r.corrects.is_some() { " " (lang.pick("(đính chính)", "(correction)")) } }
                td { (r.created_at.format("%Y-%m-%d %H:%M")) }
                td { (r.created_by) }
                td { code { (r.sha256.get(..16).unwrap_or(&r.sha256)) "…" } }
            } } }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/releases",
        lang.pick("Công bố kết quả", "Published releases"),
        body,
    )
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let rows = state.with_conn(release::list).await?;
    Ok(html_response(
        StatusCode::OK,
        releases_page(page_lang(&req), &user, &rows, None, q.ok.as_deref(), None),
    ))
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<ReleaseForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let actor = user.0.user.actor();
    let forms = state.forms.clone();
    let opts = state.policies.report;
    let key_file = signing::key_path(&state.settings)?;
    let (period, note) = (form.period.clone(), form.note.clone());
    match state
        .with_conn(move |conn| {
            release::create(conn, &forms, &opts, &key_file, &actor, &period, &note)
        })
        .await
    {
        Ok(_) => Ok(done("/admin/releases", "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let rows = state.with_conn(release::list).await?;
            Ok(html_response(
                failed_status(&e),
                releases_page(page_lang(&req), &user, &rows, Some(&form), None, Some(&e)),
            ))
        }
    }
}
