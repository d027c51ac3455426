//! The paper channel's pages, for the collector organisation (and administrators): the home
//! page here (who the organisation is, who types for it; collectors read no results), samples,
//! batches, keyboard entry, adjudication and corrections in their own files. Each handler reads
//! the request, calls one use case of `crate::paper`, and renders.

pub mod batches;
pub mod corrections;
pub mod disputes;
pub mod entry;
pub mod samples;
mod views;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::AppState;
use super::access::CurrentUser;
use super::layout::html_response;
use super::staff::staff_page;
use crate::error::AppError;
use crate::paper::samples::{self as paper_samples, CollectorHome};
use crate::web::lang::page_lang;

/// Registers the paper pages (who may open each one is in `access::RULES`). `/paper/entry/open`
/// comes before `/paper/entry/{serial}`, which would otherwise take it.
pub fn routes(cfg: &mut web::ServiceConfig) {
    let get = crate::web::get_or_head;
    let post = web::post;
    cfg.service(
        web::resource("/admin/samples")
            .route(get().to(samples::list))
            .route(post().to(samples::draw)),
    )
    .service(web::resource("/paper/samples/{id}").route(get().to(samples::show)))
    .service(
        web::resource("/paper/samples/{id}/worklist.csv").route(get().to(samples::worklist_csv)),
    )
    .service(web::resource("/paper/samples/{id}/forms").route(get().to(samples::forms)))
    .service(
        web::resource("/paper/batches")
            .route(get().to(batches::batches))
            .route(post().to(batches::create_batch)),
    )
    .service(web::resource("/paper/batches/{id}").route(get().to(batches::batch)))
    .service(web::resource("/paper/batches/{id}/delivered").route(post().to(batches::delivered)))
    .service(web::resource("/paper/batches/{id}/returned").route(post().to(batches::returned)))
    .service(web::resource("/paper/entry").route(get().to(entry::entry_start)))
    .service(web::resource("/paper/entry/open").route(get().to(entry::entry_open)))
    .service(
        web::resource("/paper/entry/{serial}")
            .route(get().to(entry::entry_page))
            .route(post().to(entry::entry_save)),
    )
    .service(web::resource("/paper/entry/{serial}/undo").route(post().to(entry::undo)))
    .service(web::resource("/paper/disputes").route(get().to(disputes::disputes)))
    .service(
        web::resource("/paper/disputes/{serial}")
            .route(get().to(disputes::dispute))
            .route(post().to(disputes::resolve)),
    )
    .service(web::resource("/paper/typists").route(get().to(disputes::typists)))
    .service(
        web::resource("/paper/forms/{serial}/correct")
            .route(get().to(corrections::correction_page))
            .route(post().to(corrections::correct)),
    );
}

pub async fn home(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let CollectorHome {
        org,
        members,
        samples,
    } = paper_samples::collector_home(&state, views::actor(&user)).await?;
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
