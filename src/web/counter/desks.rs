//! `GET/POST /agency/units/{id}/counter`: staff pair counter screens to the unit's desks
//! (a single-use code typed on the device) and revoke them.

use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::unit_tools::{ActionForm, ToolPage, revoke_button};
use crate::counter::staff::{DeskAction, DeskPage, desks};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::staff::csrf_field;

fn render(lang: Lang, user: &CurrentUser, page: &DeskPage) -> HttpResponse {
    let action = format!("/agency/units/{}/counter", page.unit.id);
    ToolPage {
        unit: &page.unit,
        title: lang.pick("Màn hình quầy", "Counter screens"),
        notices: html! {
            @if let Some((desk, code)) = &page.new_code {
                div.notice role="status" {
                    p { (lang.pick("Mã ghép nối cho quầy ", "Pairing code for desk ")) strong { (desk) } ":" }
                    p.pairing-code { code { (code.code) } }
                    p { (lang.pick("Mở ", "Open ")) code { "/counter/pair" } (lang.pick(
                        " trên màn hình của quầy và nhập mã này. Mã dùng một lần, hiệu lực 15 phút.",
                        " on the desk's screen and type this code. Single use, valid for 15 minutes.")) }
                }
            }
            @if page.revoked { div.notice role="status" { (lang.pick("Đã thu hồi thiết bị.", "Device revoked.")) } }
        },
        heading: lang.pick("Thiết bị đã ghép nối", "Paired devices"),
        none: lang.pick("Chưa có thiết bị nào.", "No devices yet."),
        empty: page.devices.is_empty(),
        table: html! {
            table {
                thead { tr { th { (lang.pick("Quầy", "Desk")) } th { (lang.pick("Ghép nối lúc (UTC)", "Paired at (UTC)")) } th { (lang.pick("Trạng thái", "Status")) } th {} } }
                tbody { @for d in &page.devices { tr {
                    td { (d.desk) }
                    td { (d.created_at.format("%Y-%m-%d %H:%M")) }
                    td { @if let Some(at) = d.revoked_at { (lang.pick("đã thu hồi ", "revoked ")) (at.format("%Y-%m-%d %H:%M")) } @else { (lang.pick("đang dùng", "active")) } }
                    td { @if d.revoked_at.is_none() { (revoke_button(lang, user, &action, "device", &d.id)) } }
                } } }
            }
        },
        new: html! {
            h2 { (lang.pick("Ghép nối màn hình hoặc máy đánh giá mới", "Pair a new screen or kiosk")) }
            p.muted { (lang.pick(
                "Cùng một mã ghép nối dùng cho màn hình hiển thị mã QR hoặc máy đánh giá một chạm (/counter/{quầy}/kiosk): chọn trên thiết bị khi nhập mã.",
                "One pairing code serves a QR screen or a one-tap rating kiosk (/counter/{desk}/kiosk): choose on the device when typing the code.")) }
            form method="post" action=(action) {
                (csrf_field(user))
                input type="hidden" name="action" value="pair";
                label for="desk" { (lang.pick("Mã quầy (như trong phần mềm một cửa)", "Desk code (as in the one-stop software)")) }
                input #desk name="desk" required maxlength="32" pattern="[A-Za-z0-9_\\-]{1,32}";
                button type="submit" { (lang.pick("Tạo mã ghép nối", "Create pairing code")) }
            }
        },
    }
    .render(lang, user)
}

pub async fn show(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let viewer = user.0.user.clone();
    let unit_id = path.into_inner();
    let page = state
        .with_conn(move |conn| desks(conn, &viewer, &unit_id, None))
        .await?;
    Ok(render(lang, &user, &page))
}

pub async fn act(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let form = ActionForm::read(&body);
    let action = match form.field("action").as_str() {
        "revoke" => DeskAction::Revoke(form.field("device")),
        _ => DeskAction::Pair(form.field("desk")),
    };
    let viewer = user.0.user.clone();
    let unit_id = path.into_inner();
    let page = state
        .with_conn(move |conn| desks(conn, &viewer, &unit_id, Some(action)))
        .await?;
    Ok(render(lang, &user, &page))
}
