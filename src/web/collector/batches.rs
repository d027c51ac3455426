//! A collector organisation's batches of paper forms and their custody (delivered, returned).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::views::{PageQuery, actor};
use crate::error::AppError;
use crate::i18n::Lang;
use crate::paper::batches::{self, NewBatch, Overview};
use crate::paper::status::CustodyStep;
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{csrf_field, error_box, notice, staff_page};
use crate::web::view::{done, failed_status};

fn batches_page(
    lang: Lang,
    user: &CurrentUser,
    overview: &Overview,
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let (rows, samples, orgs) = (&overview.batches, &overview.samples, &overview.orgs);
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
            @if actor(user).paper_scope().is_none() {
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

pub async fn batches(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let overview = batches::overview(&state, actor(&user)).await?;
    Ok(html_response(
        StatusCode::OK,
        batches_page(page_lang(&req), &user, &overview, q.ok.as_deref(), None),
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
    let created = match NewBatch::parse(
        &f.sample,
        &f.unit,
        &f.org,
        &f.collector_name,
        &f.double_share,
        f.include_reserve.is_some(),
    ) {
        Ok(request) => batches::create(&state, actor(&user), request).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(b) => Ok(done(&format!("/paper/batches/{}", b.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let overview = batches::overview(&state, actor(&user)).await?;
            Ok(html_response(
                failed_status(&e),
                batches_page(page_lang(&req), &user, &overview, None, Some(&e)),
            ))
        }
    }
}

pub async fn batch(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<PageQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let (b, c) = batches::open(&state, actor(&user), path.into_inner()).await?;
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
        @for (step, label) in [(CustodyStep::Delivered, lang.pick("Ghi nhận đã giao", "Record deliveries")), (CustodyStep::Returned, lang.pick("Ghi nhận đã thu về", "Record returns"))] {
            @let status = step.as_str();
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

/// Records a custody step and goes back to the batch, naming the serials that are not its own.
async fn record(
    state: &AppState,
    user: &CurrentUser,
    id: String,
    serials: String,
    step: CustodyStep,
) -> Result<HttpResponse, AppError> {
    let list: Vec<String> = serials.lines().map(str::to_string).collect();
    let (b, marked) = batches::record(state, actor(user), id, step, list).await?;
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
    let serials = form.into_inner().serials;
    record(
        &state,
        &user,
        path.into_inner(),
        serials,
        CustodyStep::Delivered,
    )
    .await
}

pub async fn returned(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<SerialsForm>,
) -> Result<HttpResponse, AppError> {
    let serials = form.into_inner().serials;
    record(
        &state,
        &user,
        path.into_inner(),
        serials,
        CustodyStep::Returned,
    )
    .await
}
