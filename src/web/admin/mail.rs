//! The outbox as administrators see it: counts per unit and status, the failing messages with
//! their last error, and a retry. Addresses are never shown.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;
use serde::Deserialize;

use crate::error::AppError;
use crate::mail::outbox::{self, MailStatus};
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{csrf_field, notice, staff_page};
use crate::web::view::done;

#[derive(Deserialize)]
pub struct OutboxQuery {
    status: Option<String>,
    ok: Option<String>,
}

pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<OutboxQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let status = q
        .status
        .as_deref()
        .and_then(MailStatus::parse)
        .unwrap_or(MailStatus::Failed);
    let (summary, entries) = state
        .with_conn(move |conn| {
            Ok((
                outbox::summary(conn)?,
                outbox::list(conn, Some(status), 200)?,
            ))
        })
        .await?;
    let mut units: Vec<(String, String)> = summary
        .iter()
        .map(|(c, n, _, _)| (c.clone(), n.clone()))
        .collect();
    units.dedup();
    let statuses = MailStatus::ALL;
    let label = |s: MailStatus| match s {
        MailStatus::Queued => lang.pick("Đang chờ", "Queued"),
        MailStatus::Sending => lang.pick("Đang gửi", "Sending"),
        MailStatus::Sent => lang.pick("Đã gửi", "Sent"),
        MailStatus::Failed => lang.pick("Lỗi", "Failing"),
        MailStatus::Cancelled => lang.pick("Đã hủy", "Cancelled"),
    };
    let body = html! {
        (notice(lang, q.ok.as_deref()))
        p.muted { (lang.pick(
            "Thư mời và thư nhắc khảo sát. Thư lỗi tạm thời được gửi lại với thời gian chờ tăng dần; thư bị từ chối hẳn được đánh dấu lỗi.",
            "Survey invitations and reminders. Temporary failures are retried with growing delays; refused messages are marked failing.")) }
        table #outbox-summary {
            thead { tr { th { (lang.pick("Đơn vị", "Unit")) } @for s in statuses { th { (label(s)) } } } }
            tbody { @for (code, name) in &units { tr {
                td { (code) " " (name) }
                @for s in statuses { td { (summary.iter().find(|(c, _, st, _)| c == code && *st == s).map(|r| r.3).unwrap_or(0)) } }
            } } }
        }
        nav.pager { @for s in statuses { a href=(format!("/admin/outbox?status={s}")) aria-current=[(s == status).then_some("page")] { (label(s)) } } }
        table #outbox-entries {
            thead { tr { th { (lang.pick("Loại", "Kind")) } th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Hồ sơ", "Dossier")) } th { (lang.pick("Lần gửi", "Attempts")) } th { (lang.pick("Hạn gửi / đã gửi", "Due / sent")) } th { (lang.pick("Lỗi gần nhất", "Last error")) } th {} } }
            tbody { @for e in &entries { tr {
                td { (e.kind) " · " (e.channel) } td { (e.unit_code) } td { (e.dossier_code) } td { (e.attempts) }
                td { (e.sent_at.unwrap_or(e.due_at).format("%Y-%m-%d %H:%M")) }
                td { (e.last_error.as_deref().unwrap_or("")) }
                td { @if e.status == MailStatus::Failed {
                    form.inline method="post" action=(format!("/admin/outbox/{}/retry", e.id)) {
                        (csrf_field(&user))
                        button.link type="submit" { (lang.pick("Gửi lại", "Retry")) }
                    }
                } }
            } } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/admin/outbox",
            lang.pick("Thư mời khảo sát", "Survey e-mails"),
            body,
        ),
    ))
}

pub async fn retry(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (id, actor) = (path.into_inner(), user.actor());
    state
        .with_conn(move |conn| outbox::retry(conn, &actor, Some(&id)))
        .await?;
    Ok(done("/admin/outbox?status=queued", "saved"))
}
