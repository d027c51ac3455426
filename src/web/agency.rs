//! An agency's own pages: the units in its scope (its unit and those below it) with how many
//! dossiers were registered and surveys answered. Another unit's page is "not found" to it.

pub mod home;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::AppState;
use super::access::CurrentUser;
use super::admin::units::kind_label;
use super::layout::html_response;
use super::staff::staff_page;
use crate::accounts::Role;
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::report::activity;
use crate::units::{self, Unit};
use crate::web::lang::page_lang;

/// The units a results reader may see: everything for admins, the subtree for agencies.
fn scope(conn: &mut DbConn, user: &CurrentUser) -> AppResult<Vec<Unit>> {
    let u = &user.0.user;
    match (u.role(), &u.unit_id) {
        (Role::Admin, _) => Ok(units::list(conn)?),
        (Role::Agency, Some(root)) => Ok(units::subtree(conn, root)?),
        _ => Err(AppError::Forbidden(Msg::new(
            "Không có quyền xem kết quả.",
            "You may not read results.",
        ))),
    }
}

pub async fn home(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let viewer = user.clone();
    let rows = state
        .with_conn(move |conn| {
            let units = scope(conn, &viewer)?;
            let mut rows = Vec::with_capacity(units.len());
            for unit in units {
                let (dossiers, answered) = activity::unit_counts(conn, &unit.id)?;
                rows.push((unit, dossiers, answered));
            }
            Ok(rows)
        })
        .await?;
    let body = html! {
        p.muted { (lang.pick(
            "Các đơn vị thuộc phạm vi của tài khoản. Chọn “Báo cáo” để xem chỉ số hài lòng của đơn vị.",
            "The units within this account's scope. Choose “Report” to see a unit's satisfaction index.")) }
        table {
            thead { tr {
                th { (lang.pick("Mã", "Code")) } th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Loại", "Kind")) }
                th { (lang.pick("Hồ sơ đã đăng ký", "Registered dossiers")) } th { (lang.pick("Phiếu đã trả lời", "Surveys answered")) } th {}
            } }
            tbody { @for (u, dossiers, answered) in &rows { tr {
                td { a href=(format!("/agency/units/{}", u.id)) { (u.code) } }
                td { (u.name(lang)) @if u.valid_to.is_some() { " " span.muted { "(" (lang.pick("đã ngừng", "closed")) " " (u.valid_to.map(|d| d.to_string()).unwrap_or_default()) ")" } } }
                td { (kind_label(&u.kind, lang)) }
                td { (dossiers) }
                td { (answered) }
                td { a href=(format!("/reports/units/{}", u.id)) { (lang.pick("Báo cáo", "Report")) } }
            } } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/agency",
            lang.pick("Đơn vị của tôi", "My units"),
            body,
        ),
    ))
}

pub async fn unit(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let id = path.into_inner();
    let viewer = user.0.user.clone();
    let (unit, dossiers, by_channel) = state
        .with_conn(move |conn| {
            // Another agency's unit does not exist as far as this user can tell.
            let not_found =
                || AppError::NotFound(Msg::new("Không có đơn vị này.", "No such unit."));
            if !viewer.can_read_unit(conn, &id)? {
                return Err(not_found());
            }
            let unit = units::find(conn, &id)?.ok_or_else(not_found)?;
            let (dossiers, _) = activity::unit_counts(conn, &id)?;
            let by_channel = activity::unit_answers_by_form_and_channel(conn, &id)?;
            Ok((unit, dossiers, by_channel))
        })
        .await?;
    let body = html! {
        table {
            tr { th { (lang.pick("Mã", "Code")) } td { (unit.code) } }
            tr { th { (lang.pick("Loại", "Kind")) } td { (kind_label(&unit.kind, lang)) } }
            tr { th { (lang.pick("Hiệu lực", "Validity")) } td { (unit.valid_from) " → " @if let Some(t) = unit.valid_to { (t) } @else { "…" } } }
            tr { th { (lang.pick("Hồ sơ đã đăng ký", "Registered dossiers")) } td { (dossiers) } }
        }
        h2 { (lang.pick("Phiếu trả lời theo mẫu phiếu và kênh", "Responses by form and channel")) }
        table {
            thead { tr { th { (lang.pick("Mẫu phiếu", "Form")) } th { (lang.pick("Kênh", "Channel")) } th { (lang.pick("Số phiếu", "Responses")) } } }
            tbody { @for (form, channel, n) in &by_channel { tr { td { (form) } td { (channel) } td { (n) } } } }
        }
        p { a href=(format!("/agency/units/{}/counter", unit.id)) { (lang.pick("Màn hình quầy của đơn vị", "The unit's counter screens")) } }
        p { a href=(format!("/agency/units/{}/books", unit.id)) { (lang.pick("Sổ phiếu in sẵn của đơn vị", "The unit's token books")) } }
        p { a href="/agency" { (lang.pick("← Danh sách đơn vị", "← All my units")) } }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(lang, &user, "/agency", unit.name(lang), body),
    ))
}
