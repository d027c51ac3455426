//! The collector organisation's home: who it is and who types for it. Collectors read no results.

pub mod entry;
pub mod samples;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::AppState;
use super::access::CurrentUser;
use super::layout::html_response;
use super::staff::staff_page;
use crate::accounts::users;
use crate::collector_orgs;
use crate::error::AppError;
use crate::paper::custody;
use crate::web::lang::page_lang;

pub async fn home(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let org_id = user.0.user.collector_org_id.clone();
    // Only samples the organisation was handed forms of (administrators: all).
    let scope = samples::collector_scope(&user);
    let samples = state
        .with_conn(move |conn| Ok(custody::visible_samples(conn, scope.as_deref())?))
        .await?;
    let (org, members) = state
        .with_conn(move |conn| {
            let Some(org_id) = org_id else {
                return Ok((None, Vec::new()));
            };
            let org = collector_orgs::find(conn, &org_id)?;
            let members = users::of_collector_org(conn, &org_id)?;
            Ok((org, members))
        })
        .await?;
    let title = org
        .as_ref()
        .map(|o| o.name(lang).to_string())
        .unwrap_or_else(|| {
            lang.pick("Thu thập phiếu giấy", "Paper collection")
                .to_string()
        });
    let body = html! {
        p.muted { (lang.pick(
            "Đơn vị thu thập độc lập phát phiếu giấy cho mẫu khảo sát do Sở Nội vụ chọn, thu lại và nhập liệu. Tài khoản thu thập không xem được kết quả khảo sát.",
            "The independent collector hands paper forms to the sample drawn by Home Affairs, collects them and types them in. Collector accounts cannot read survey results.")) }
        h2 { (lang.pick("Mẫu cần phát phiếu", "Samples to deliver")) }
        table #samples {
            thead { tr { th { (lang.pick("Kỳ", "Period")) } th { (lang.pick("Chọn lúc", "Drawn")) } th { (lang.pick("Số phiếu", "Forms")) } th {} } }
            tbody { @for s in &samples { tr {
                td { (s.period_code) }
                td { (s.created_at.format("%Y-%m-%d")) }
                td { (s.units.iter().map(|u| u.5 + u.6).sum::<i64>()) }
                td { a href=(format!("/paper/samples/{}", s.id)) { (lang.pick("Danh sách, in phiếu", "Worklist, print forms")) } }
            } } }
        }
        h2 { (lang.pick("Nhân viên nhập liệu", "Data-entry staff")) }
        table {
            thead { tr { th { (lang.pick("Tên đăng nhập", "Username")) } th { (lang.pick("Họ tên", "Name")) } th { (lang.pick("Trạng thái", "Status")) } } }
            tbody { @for m in &members { tr {
                td { (m.username) } td { (m.display_name) }
                td { @if m.active { (lang.pick("Hoạt động", "Active")) } @else { (lang.pick("Đã khóa", "Deactivated")) } }
            } } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(lang, &user, "/collector", &title, body),
    ))
}
