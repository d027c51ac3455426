//! The administrator's console (Department of Home Affairs): units, procedures, accounts,
//! collector organisations, survey forms, periods and the audit log.

pub mod audit_log;
pub mod catalog;
pub mod dashboard;
pub mod groups;
pub mod mail;
pub mod releases;
pub mod units;
pub mod users;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::AppState;
use super::access::CurrentUser;
use super::layout::html_response;
use super::staff::staff_page;
use crate::error::AppError;
use crate::web::lang::page_lang;

/// Redirect after a successful change (post/redirect/get), with a notice code.
pub fn done(location: &str, ok: &str) -> HttpResponse {
    let sep = if location.contains('?') { '&' } else { '?' };
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("{location}{sep}ok={ok}")))
        .finish()
}

/// Status for re-rendering a form after a failed action.
pub fn failed_status(e: &AppError) -> StatusCode {
    actix_web::ResponseError::status_code(e)
}

pub async fn overview(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let today = crate::calendar::local_day(crate::db::now(), state.policies.utc_offset);
    let (counts, chain, overdue) = state
        .with_conn(move |conn| {
            let counts = crate::report::activity::province_totals(conn)?;
            let overdue = crate::integrity::cases::overdue_count(conn, today)?;
            Ok((counts, crate::audit::verify(conn)?, overdue))
        })
        .await?;
    let labels = [
        (lang.pick("Đơn vị", "Units"), "/admin/units"),
        (
            lang.pick("Thủ tục hành chính", "Procedures"),
            "/admin/procedures",
        ),
        (lang.pick("Tài khoản", "User accounts"), "/admin/users"),
        (
            lang.pick("Hồ sơ đã đăng ký", "Registered transactions"),
            "/admin",
        ),
        (lang.pick("Phiếu trả lời", "Responses"), "/admin"),
    ];
    let body = html! {
        table {
            @for ((label, href), n) in labels.iter().zip(counts) {
                tr { th { a href=(href) { (label) } } td { (n) } }
            }
            tr #overdue-cases {
                th { a href="/cases" { (lang.pick("Phản hồi chưa hài lòng quá hạn xử lý", "Overdue bad-rating cases")) } }
                td { @if overdue > 0 { strong.err { (overdue) } } @else { (overdue) } }
            }
            tr {
                th { a href="/admin/audit" { (lang.pick("Nhật ký thay đổi", "Audit log")) } }
                td {
                    @match &chain {
                        Ok(n) => { (lang.pick("Chuỗi toàn vẹn", "Chain intact")) " (" (n) ")" }
                        Err(b) => { strong.err { (lang.pick("Chuỗi bị phá vỡ: ", "Chain broken: ")) (b.to_string()) } }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/admin",
            lang.pick("Quản trị", "Administration"),
            body,
        ),
    ))
}
