//! An agency's own pages: the units in its scope (its unit and those below it) with how many
//! dossiers were registered and surveys answered. Another unit's page is "not found" to it.

pub mod home;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::AppState;
use super::access::CurrentUser;
use super::layout::html_response;
use super::staff::staff_page;
use crate::error::AppError;
use crate::report::queries::{self, UnitActivity};
use crate::web::lang::page_lang;
use crate::web::view::unit_kind_label;

pub async fn unit(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let id = path.into_inner();
    let UnitActivity {
        unit,
        dossiers,
        by_channel,
    } = queries::unit_activity(&state, &user.actor(), id).await?;
    let body = html! {
        table {
            tr { th { (lang.pick("Mã", "Code")) } td { (unit.code) } }
            tr { th { (lang.pick("Loại", "Kind")) } td { (unit_kind_label(&unit.kind, lang)) } }
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
