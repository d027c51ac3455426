//! A collector organisation's batches of paper forms and their custody (delivered, returned).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::views::{PageQuery, org_scope};
use crate::error::AppError;
use crate::i18n::{Lang, Msg};
use crate::paper::custody::{self, BatchRequest};
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::admin::done;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{csrf_field, error_box, notice, staff_page};

fn batches_page(
    lang: Lang,
    user: &CurrentUser,
    rows: &[(custody::Batch, String, custody::Custody)],
    samples: &[crate::paper::sampling::StoredSample],
    orgs: &[crate::collector_orgs::CollectorOrg],
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        table #batches {
            thead { tr {
                th { (lang.pick("Lô", "Batch")) } th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Người phát", "Collector")) }
                th { (lang.pick("Đã phát", "Issued")) } th { (lang.pick("Đã giao", "Delivered")) } th { (lang.pick("Đã thu", "Returned")) }
                th { (lang.pick("Đã nhập", "Keyed")) } th { (lang.pick("Đã xác nhận", "Verified")) } th { (lang.pick("Tỷ lệ thu hồi", "Return rate")) }
            } }
            tbody { @for (b, unit, c) in rows { tr {
                td { a href=(format!("/paper/batches/{}", b.id)) { (b.code) } } td { (unit) } td { (b.collector_name) }
                td { (c.issued) } td { (c.delivered) } td { (c.returned) } td { (c.keyed) } td { (c.verified) }
                td { (c.return_rate().map(|r| format!("{r:.1}%")).unwrap_or_else(|| "—".into())) }
            } } }
        }
        h2 { (lang.pick("Tạo lô phiếu", "New batch")) }
        (error_box(lang, error))
        form.stack method="post" action="/paper/batches" {
            (csrf_field(user))
            label for="sample" { (lang.pick("Mẫu", "Sample")) }
            select #sample name="sample" { @for s in samples { option value=(s.id) { (s.period_code) " · " (s.created_at.format("%Y-%m-%d %H:%M")) } } }
            label for="unit" { (lang.pick("Mã đơn vị", "Unit code")) }
            input #unit type="text" name="unit" required;
            @if org_scope(user).is_none() {
                label for="org" { (lang.pick("Đơn vị thu thập", "Collector organisation")) }
                select #org name="org" { @for o in orgs { option value=(o.id) { (o.code) } } }
            }
            label for="collector_name" { (lang.pick("Nhân viên phát và thu phiếu", "Person delivering and collecting")) }
            input #collector_name type="text" name="collector_name" required;
            label for="double_share" { (lang.pick("Tỷ lệ phiếu nhập hai lần (0–1)", "Share keyed twice (0–1)")) }
            input #double_share type="text" name="double_share" value="1";
            label { input type="checkbox" name="include_reserve" value="on"; " " (lang.pick("Gồm cả danh sách dự phòng", "Include the reserve list")) }
            button type="submit" { (lang.pick("Tạo lô", "Create batch")) }
        }
    };
    staff_page(
        lang,
        user,
        "/paper/batches",
        lang.pick("Lô phiếu giấy", "Paper batches"),
        body,
    )
}

type BatchData = (
    Vec<(custody::Batch, String, custody::Custody)>,
    Vec<crate::paper::sampling::StoredSample>,
    Vec<crate::collector_orgs::CollectorOrg>,
);

async fn batch_data(state: &AppState, org: Option<String>) -> Result<BatchData, AppError> {
    state
        .with_conn(move |conn| {
            let mut samples = crate::paper::sampling::list(conn)?;
            if let Some(org) = &org {
                // A collector is offered only samples it was handed forms of.
                let handed = custody::handed_forms(conn, org, None)?;
                samples.retain(|s| handed.iter().any(|(id, _, _)| *id == s.id));
            }
            Ok((
                custody::list(conn, org.as_deref())?,
                samples,
                crate::collector_orgs::list(conn)?,
            ))
        })
        .await
}

pub async fn batches(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let (rows, samples, orgs) = batch_data(&state, org_scope(&user)).await?;
    Ok(html_response(
        StatusCode::OK,
        batches_page(
            page_lang(&req),
            &user,
            &rows,
            &samples,
            &orgs,
            q.ok.as_deref(),
            None,
        ),
    ))
}

#[derive(Deserialize)]
pub struct BatchForm {
    sample: String,
    unit: String,
    #[serde(default)]
    org: String,
    collector_name: String,
    #[serde(default)]
    double_share: String,
    include_reserve: Option<String>,
}

pub async fn create_batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<BatchForm>,
) -> Result<HttpResponse, AppError> {
    let f = form.into_inner();
    let actor = user.0.user.actor();
    let scoped = org_scope(&user).is_some();
    let org = org_scope(&user).unwrap_or(f.org.clone());
    let result = state
        .with_conn(move |conn| {
            let unit = crate::units::find_by_code(conn, &f.unit.trim().to_ascii_uppercase())?
                .ok_or_else(|| {
                    AppError::field(
                        "unit",
                        Msg::new(
                            "Không có đơn vị với mã này.",
                            "There is no unit with this code.",
                        ),
                    )
                })?;
            // Administrators hand units over; a collector may only issue the rest of a unit
            // already handed to its organisation (its reserve list, say).
            if scoped && !custody::unit_handed(conn, &org, &f.sample, &unit.id)? {
                return Err(AppError::NotFound(Msg::new(
                    "Không có mẫu hoặc đơn vị này.",
                    "No such sample or unit.",
                )));
            }
            let share: f64 = match f.double_share.trim() {
                "" => 1.0,
                v => v.replace(',', ".").parse().map_err(|_| {
                    AppError::field(
                        "double_share",
                        Msg::new(
                            "Tỷ lệ phải là số từ 0 đến 1.",
                            "The share must be a number from 0 to 1.",
                        ),
                    )
                })?,
            };
            custody::create_batch(
                conn,
                &actor,
                &BatchRequest {
                    sample_id: f.sample,
                    unit_id: unit.id,
                    collector_org_id: org,
                    collector_name: f.collector_name,
                    include_reserve: f.include_reserve.is_some(),
                    double_share: share.clamp(0.0, 1.0),
                },
            )
        })
        .await;
    match result {
        Ok(b) => Ok(done(&format!("/paper/batches/{}", b.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let (rows, samples, orgs) = batch_data(&state, org_scope(&user)).await?;
            Ok(html_response(
                actix_web::ResponseError::status_code(&e),
                batches_page(
                    page_lang(&req),
                    &user,
                    &rows,
                    &samples,
                    &orgs,
                    None,
                    Some(&e),
                ),
            ))
        }
    }
}

async fn own_batch(
    state: &AppState,
    user: &CurrentUser,
    id: String,
) -> Result<(custody::Batch, custody::Custody), AppError> {
    let org = org_scope(user);
    state
        .with_conn(move |conn| {
            let not_found =
                || AppError::NotFound(Msg::new("Không có lô phiếu này.", "No such batch."));
            let batch = custody::find(conn, &id)?.ok_or_else(not_found)?;
            if org.as_ref().is_some_and(|o| *o != batch.collector_org_id) {
                return Err(not_found());
            }
            let c = custody::custody(conn, &batch.id)?;
            Ok((batch, c))
        })
        .await
}

pub async fn batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let (b, c) = own_batch(&state, &user, path.into_inner()).await?;
    let body = html! {
        (notice(lang, q.ok.as_deref()))
        @if let Some(unknown) = &q.last { p.alert { (lang.pick("Số phiếu không thuộc lô này: ", "Serials not in this batch: ")) (unknown) } }
        table #custody {
            tr { th { (lang.pick("Đã phát", "Issued")) } td { (c.issued) } }
            tr { th { (lang.pick("Đã giao tới người dân", "Delivered")) } td { (c.delivered) } }
            tr { th { (lang.pick("Đã thu về", "Returned")) } td { (c.returned) } }
            tr { th { (lang.pick("Đã nhập", "Keyed")) } td { (c.keyed) } }
            tr { th { (lang.pick("Đã xác nhận", "Verified")) } td { (c.verified) } }
            tr { th { (lang.pick("Tỷ lệ thu hồi", "Return rate")) } td { (c.return_rate().map(|r| format!("{r:.1}%")).unwrap_or_else(|| "—".into())) } }
        }
        @for (status, label) in [("delivered", lang.pick("Ghi nhận đã giao", "Record deliveries")), ("returned", lang.pick("Ghi nhận đã thu về", "Record returns"))] {
            h2 { (label) }
            form.stack method="post" action=(format!("/paper/batches/{}/{status}", b.id)) {
                (csrf_field(&user))
                label for=(format!("serials-{status}")) { (lang.pick("Quét hoặc nhập số phiếu, mỗi dòng một số", "Scan or type serials, one per line")) }
                textarea id=(format!("serials-{status}")) name="serials" rows="4" {}
                button type="submit" { (label) }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/paper/batches",
            &format!("{} {}", lang.pick("Lô", "Batch"), b.code),
            body,
        ),
    ))
}

#[derive(Deserialize)]
pub struct SerialsForm {
    serials: String,
}

async fn mark(
    state: &AppState,
    user: &CurrentUser,
    id: String,
    serials: String,
    status: &'static str,
) -> Result<HttpResponse, AppError> {
    let (b, _) = own_batch(state, user, id).await?;
    let actor = user.0.user.actor();
    let list: Vec<String> = serials.lines().map(str::to_string).collect();
    let batch_id = b.id.clone();
    let marked = state
        .with_conn(move |conn| custody::mark(conn, &actor, &batch_id, &list, status))
        .await?;
    let mut location = format!("/paper/batches/{}?ok=saved", b.id);
    if !marked.unknown.is_empty() {
        location.push_str(&format!(
            "&last={}",
            crate::web::access::urlencode(&marked.unknown.join(", "))
        ));
    }
    Ok(HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .finish())
}

pub async fn delivered(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<SerialsForm>,
) -> Result<HttpResponse, AppError> {
    mark(
        &state,
        &user,
        path.into_inner(),
        form.into_inner().serials,
        "delivered",
    )
    .await
}

pub async fn returned(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<SerialsForm>,
) -> Result<HttpResponse, AppError> {
    mark(
        &state,
        &user,
        path.into_inner(),
        form.into_inner().serials,
        "returned",
    )
    .await
}
