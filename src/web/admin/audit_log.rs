//! The audit log browser: filter by person, action, object and time; the chain's state on top.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;

use crate::audit::{self, AuditFilter, AuditPage};
use crate::error::AppError;
use crate::web::AppState;
use crate::web::access::{CurrentUser, urlencode};
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::staff_page;

#[derive(Deserialize, Default)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    object_type: String,
    #[serde(default)]
    object_id: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    until: String,
    #[serde(default)]
    page: i64,
}

const PER_PAGE: i64 = 50;

pub async fn browse(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<AuditQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let filter = AuditFilter::parse(
        &q.actor,
        &q.action,
        &q.object_type,
        &q.object_id,
        &q.from,
        &q.until,
    );
    let page = q.page.max(0);
    let AuditPage {
        events,
        more,
        actions,
        chain,
    } = state
        .with_conn(move |conn| Ok(audit::browse(conn, &filter, page, PER_PAGE)?))
        .await?;
    let link = |p: i64| {
        format!(
            "/admin/audit?actor={}&action={}&object_type={}&object_id={}&from={}&until={}&page={p}",
            urlencode(&q.actor),
            urlencode(&q.action),
            urlencode(&q.object_type),
            urlencode(&q.object_id),
            urlencode(&q.from),
            urlencode(&q.until)
        )
    };
    let body = html! {
        @let checks = html! { ul { @for line in chain.lines() { li { (line.get(lang)) } } } };
        @match chain.result() {
            Ok(n) => div.notice role="status" {
                p { (lang.pick("Chuỗi băm toàn vẹn: ", "Hash chain intact: ")) (n) (lang.pick(" sự kiện.", " events.")) }
                (checks)
            },
            Err(b) => div.alert role="alert" {
                p { (lang.pick("Chuỗi băm bị phá vỡ: ", "Hash chain broken: ")) (b.to_string()) }
                (checks)
            },
        }
        form.search method="get" action="/admin/audit" {
            label for="actor" { (lang.pick("Người thực hiện", "Actor")) }
            input #actor type="text" name="actor" value=(q.actor);
            label for="action" { (lang.pick("Hành động", "Action")) }
            select #action name="action" {
                option value="" { (lang.pick("Tất cả", "All")) }
                @for a in &actions { option value=(a) selected[*a == q.action] { (a) } }
            }
            label for="object_type" { (lang.pick("Đối tượng", "Object")) }
            input #object_type type="text" name="object_type" value=(q.object_type) size="10";
            label for="object_id" { "ID" }
            input #object_id type="text" name="object_id" value=(q.object_id) size="10";
            label for="from" { (lang.pick("Từ", "From")) }
            input #from type="date" name="from" value=(q.from);
            label for="until" { (lang.pick("Đến", "Until")) }
            input #until type="date" name="until" value=(q.until);
            button type="submit" { (lang.pick("Lọc", "Filter")) }
        }
        table {
            thead { tr {
                th { "#" } th { (lang.pick("Thời điểm (UTC)", "Time (UTC)")) } th { (lang.pick("Người thực hiện", "Actor")) }
                th { (lang.pick("Hành động", "Action")) } th { (lang.pick("Đối tượng", "Object")) } th { (lang.pick("Trước", "Before")) } th { (lang.pick("Sau", "After")) }
            } }
            tbody { @for e in &events { tr {
                td { (e.seq) }
                td { (e.at.format("%Y-%m-%d %H:%M:%S")) }
                td { (e.actor_name) }
                td { (e.action) }
                td { (e.object_type) " " code { (e.object_id) } }
                td { code { (e.old_value.as_deref().unwrap_or("")) } }
                td { code { (e.new_value.as_deref().unwrap_or("")) } }
            } } }
        }
        nav.pager {
            @if page > 0 { a href=(link(page - 1)) rel="prev" { "← " (lang.pick("Trang trước", "Previous")) } }
            span { (lang.pick("Trang", "Page")) " " (page + 1) }
            @if more { a href=(link(page + 1)) rel="next" { (lang.pick("Trang sau", "Next")) " →" } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/admin/audit",
            lang.pick("Nhật ký thay đổi", "Audit log"),
            body,
        ),
    ))
}
