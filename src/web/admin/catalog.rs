//! Admin pages for the reference data: procedures, collector organisations, survey forms and
//! survey periods.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use crate::collector_orgs::{self, CollectorOrg};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::i18n::{Lang, Msg};
use crate::periods::{self, KINDS, PeriodInput, PeriodStatus, SurveyPeriod};
use crate::procedures::{self, Procedure, ProcedureInput};
use crate::report::activity::FormUsage;
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{
    ListQuery, PER_PAGE, csrf_field, error_box, notice, pager, search_box, staff_page,
};
use crate::web::view::{done, failed_status};

#[derive(Deserialize)]
pub struct OkQuery {
    ok: Option<String>,
}

// ---------------------------------------------------------------- procedures

#[derive(Deserialize)]
pub struct ProcedureForm {
    code: String,
    name_vi: String,
    name_en: String,
    #[serde(default)]
    sector: String,
    #[serde(default)]
    active: Option<String>,
}

impl ProcedureForm {
    fn input(&self, creating: bool) -> ProcedureInput {
        ProcedureInput {
            code: self.code.trim().to_string(),
            name_vi: self.name_vi.clone(),
            name_en: self.name_en.clone(),
            sector: Some(self.sector.trim().to_string()).filter(|s| !s.is_empty()),
            active: creating || self.active.is_some(),
        }
    }
}

fn procedure_fields(lang: Lang, p: Option<&Procedure>) -> Markup {
    html! {
        label for="code" { (lang.pick("Mã thủ tục", "Procedure code")) }
        input #code type="text" name="code" value=(p.map(|p| p.code.as_str()).unwrap_or("")) required;
        label for="name_vi" { (lang.pick("Tên tiếng Việt", "Vietnamese name")) }
        input #name_vi type="text" name="name_vi" value=(p.map(|p| p.name_vi.as_str()).unwrap_or("")) required;
        label for="name_en" { (lang.pick("Tên tiếng Anh", "English name")) }
        input #name_en type="text" name="name_en" value=(p.map(|p| p.name_en.as_str()).unwrap_or("")) required;
        label for="sector" { (lang.pick("Lĩnh vực", "Sector")) }
        input #sector type="text" name="sector" value=(p.and_then(|p| p.sector.as_deref()).unwrap_or(""));
    }
}

fn procedures_page(
    lang: Lang,
    user: &CurrentUser,
    q: &ListQuery,
    rows: &[Procedure],
    more: bool,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, q.ok.as_deref()))
        (search_box(lang, "/admin/procedures", &q.q))
        table {
            thead { tr { th { (lang.pick("Mã", "Code")) } th { (lang.pick("Tên", "Name")) } th { (lang.pick("Lĩnh vực", "Sector")) } th { (lang.pick("Trạng thái", "Status")) } } }
            tbody { @for p in rows { tr {
                td { a href=(format!("/admin/procedures/{}", p.id)) { (p.code) } }
                td { (p.name(lang)) }
                td { (p.sector.as_deref().unwrap_or("")) }
                td { @if p.active { (lang.pick("Đang áp dụng", "In use")) } @else { (lang.pick("Ngừng áp dụng", "Retired")) } }
            } } }
        }
        (pager(lang, "/admin/procedures", &q.q, q.page, more))
        h2 { (lang.pick("Thêm thủ tục", "Add a procedure")) }
        (error_box(lang, error))
        form.stack method="post" action="/admin/procedures" {
            (csrf_field(user))
            (procedure_fields(lang, None))
            button type="submit" { (lang.pick("Thêm", "Add")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/procedures",
        lang.pick("Thủ tục hành chính", "Procedures"),
        body,
    )
}

pub async fn procedures_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let (query, page) = (q.q.clone(), q.page);
    let (rows, more) = state
        .with_conn(move |conn| Ok(procedures::search(conn, &query, page, PER_PAGE)?))
        .await?;
    Ok(html_response(
        StatusCode::OK,
        procedures_page(page_lang(&req), &user, &q, &rows, more, None),
    ))
}

pub async fn procedures_create(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<ProcedureForm>,
) -> Result<HttpResponse, AppError> {
    let actor = user.0.user.actor();
    let input = form.input(true);
    match state
        .with_conn(move |conn| procedures::save(conn, &actor, None, &input))
        .await
    {
        Ok(p) => Ok(done(&format!("/admin/procedures/{}", p.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let (rows, more) = state
                .with_conn(|conn| Ok(procedures::search(conn, "", 0, PER_PAGE)?))
                .await?;
            Ok(html_response(
                failed_status(&e),
                procedures_page(
                    page_lang(&req),
                    &user,
                    &ListQuery::default(),
                    &rows,
                    more,
                    Some(&e),
                ),
            ))
        }
    }
}

fn procedure_detail(
    lang: Lang,
    user: &CurrentUser,
    p: &Procedure,
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        (error_box(lang, error))
        form.stack method="post" action=(format!("/admin/procedures/{}", p.id)) {
            (csrf_field(user))
            (procedure_fields(lang, Some(p)))
            label { input type="checkbox" name="active" value="on" checked[p.active]; " " (lang.pick("Đang áp dụng", "In use")) }
            button type="submit" { (lang.pick("Lưu", "Save")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/procedures",
        &format!("{} — {}", p.code, p.name(lang)),
        body,
    )
}

fn find_procedure(conn: &mut DbConn, id: &str) -> AppResult<Procedure> {
    procedures::find(conn, id)?
        .ok_or_else(|| AppError::NotFound(Msg::new("Không có thủ tục này.", "No such procedure.")))
}

pub async fn procedure_show(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let p = state
        .with_conn(move |conn| find_procedure(conn, &id))
        .await?;
    Ok(html_response(
        StatusCode::OK,
        procedure_detail(page_lang(&req), &user, &p, q.ok.as_deref(), None),
    ))
}

pub async fn procedure_update(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<ProcedureForm>,
) -> Result<HttpResponse, AppError> {
    let (id, actor, input) = (path.into_inner(), user.0.user.actor(), form.input(false));
    let target = id.clone();
    match state
        .with_conn(move |conn| procedures::save(conn, &actor, Some(&target), &input))
        .await
    {
        Ok(_) => Ok(done(&format!("/admin/procedures/{id}"), "saved")),
        Err(e @ (AppError::Internal(_) | AppError::NotFound(_))) => Err(e),
        Err(e) => {
            let p = state
                .with_conn(move |conn| find_procedure(conn, &id))
                .await?;
            Ok(html_response(
                failed_status(&e),
                procedure_detail(page_lang(&req), &user, &p, None, Some(&e)),
            ))
        }
    }
}

// ---------------------------------------------------------------- collector organisations

fn orgs_page(
    lang: Lang,
    user: &CurrentUser,
    orgs: &[CollectorOrg],
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        p.muted { (lang.pick("Tổ chức độc lập phát và thu phiếu giấy (ví dụ bưu điện tỉnh).", "Independent bodies that hand out and collect paper forms (e.g. the provincial post office).")) }
        table {
            thead { tr { th { (lang.pick("Mã", "Code")) } th { (lang.pick("Tên", "Name")) } } }
            tbody { @for o in orgs { tr { td { (o.code) } td { (o.name(lang)) } } } }
        }
        h2 { (lang.pick("Thêm đơn vị thu thập", "Add a collector organisation")) }
        (error_box(lang, error))
        form.stack method="post" action="/admin/collector-orgs" {
            (csrf_field(user))
            label for="code" { (lang.pick("Mã", "Code")) }
            input #code type="text" name="code" required;
            label for="name_vi" { (lang.pick("Tên tiếng Việt", "Vietnamese name")) }
            input #name_vi type="text" name="name_vi" required;
            label for="name_en" { (lang.pick("Tên tiếng Anh", "English name")) }
            input #name_en type="text" name="name_en" required;
            button type="submit" { (lang.pick("Thêm", "Add")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/collector-orgs",
        lang.pick("Đơn vị thu thập", "Collector organisations"),
        body,
    )
}

pub async fn orgs_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let orgs = state
        .with_conn(|conn| Ok(collector_orgs::list(conn)?))
        .await?;
    Ok(html_response(
        StatusCode::OK,
        orgs_page(page_lang(&req), &user, &orgs, q.ok.as_deref(), None),
    ))
}

#[derive(Deserialize)]
pub struct OrgForm {
    code: String,
    name_vi: String,
    name_en: String,
}

pub async fn orgs_create(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<OrgForm>,
) -> Result<HttpResponse, AppError> {
    let (actor, f) = (user.0.user.actor(), form.into_inner());
    match state
        .with_conn(move |conn| {
            collector_orgs::create(
                conn,
                &actor,
                &f.code.to_ascii_uppercase(),
                &f.name_vi,
                &f.name_en,
            )
        })
        .await
    {
        Ok(_) => Ok(done("/admin/collector-orgs", "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let orgs = state
                .with_conn(|conn| Ok(collector_orgs::list(conn)?))
                .await?;
            Ok(html_response(
                failed_status(&e),
                orgs_page(page_lang(&req), &user, &orgs, None, Some(&e)),
            ))
        }
    }
}

// ---------------------------------------------------------------- survey forms

pub async fn forms_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let FormUsage {
        responses: counts,
        counter_units,
    } = state
        .with_conn(|conn| Ok(crate::report::activity::form_usage(conn)?))
        .await?;
    let mut forms: Vec<_> = state.forms.all().cloned().collect();
    forms.sort_by(|a, b| (&a.code, b.version).cmp(&(&b.code, a.version)));
    let default = &state.settings.default_counter_form;
    let body = html! {
        p.muted { (lang.pick(
            "Mẫu phiếu được định nghĩa trong thư mục survey-forms/. Phiên bản đã có phiếu trả lời không thể sửa; thay đổi phải tạo phiên bản mới.",
            "Forms are defined in the survey-forms/ folder. A version with responses cannot change; a change needs a new version.")) }
        table {
            thead { tr {
                th { (lang.pick("Mã", "Code")) } th { (lang.pick("Phiên bản", "Version")) } th { (lang.pick("Loại", "Kind")) }
                th { (lang.pick("Tiêu đề", "Title")) } th { (lang.pick("Số câu hỏi", "Questions")) } th { (lang.pick("Phiếu trả lời", "Responses")) }
                th { (lang.pick("Đơn vị dùng tại quầy", "Units issuing it at the counter")) }
            } }
            tbody { @for f in &forms {
                @let latest = state.forms.latest(&f.code).is_some_and(|l| l.version == f.version);
                tr {
                    td { (f.code) }
                    td { (f.version) @if latest { " " strong { (lang.pick("(hiện hành)", "(current)")) } } }
                    td { (f.kind.as_str()) }
                    td { (f.title.get(lang)) }
                    td { (f.questions().count()) }
                    td { (counts.iter().find(|(c, v, _)| *c == f.code && *v == f.version).map(|c| c.2).unwrap_or(0)) }
                    td { @if latest {
                        @for (code, chosen) in &counter_units {
                            @if chosen.as_deref() == Some(f.code.as_str()) || (chosen.is_none() && f.code == *default) { (code) " " }
                        }
                    } }
                }
            } }
        }
        p { (lang.pick("Chọn mẫu phiếu cho từng đơn vị ở trang đơn vị.", "Choose each unit's counter form on the unit's page.")) " " a href="/admin/units" { (lang.pick("Đơn vị", "Units")) } }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/admin/forms",
            lang.pick("Mẫu phiếu khảo sát", "Survey forms"),
            body,
        ),
    ))
}

// ---------------------------------------------------------------- survey periods

#[derive(Deserialize)]
pub struct PeriodForm {
    code: String,
    name_vi: String,
    name_en: String,
    kind: String,
    starts_on: String,
    ends_on: String,
    status: String,
}

impl PeriodForm {
    fn input(&self) -> AppResult<PeriodInput> {
        let date = crate::calendar::parse_day;
        Ok(PeriodInput {
            code: self.code.trim().to_string(),
            name_vi: self.name_vi.clone(),
            name_en: self.name_en.clone(),
            kind: self.kind.clone(),
            starts_on: date("starts_on", &self.starts_on)?,
            ends_on: date("ends_on", &self.ends_on)?,
            status: PeriodStatus::parse_field("status", &self.status)?,
        })
    }
}

fn period_fields(lang: Lang, p: Option<&SurveyPeriod>) -> Markup {
    html! {
        label for="code" { (lang.pick("Mã kỳ (ví dụ 2026, 2026-Q4)", "Period code (e.g. 2026, 2026-Q4)")) }
        input #code type="text" name="code" value=(p.map(|p| p.code.as_str()).unwrap_or("")) required;
        label for="name_vi" { (lang.pick("Tên tiếng Việt", "Vietnamese name")) }
        input #name_vi type="text" name="name_vi" value=(p.map(|p| p.name_vi.as_str()).unwrap_or("")) required;
        label for="name_en" { (lang.pick("Tên tiếng Anh", "English name")) }
        input #name_en type="text" name="name_en" value=(p.map(|p| p.name_en.as_str()).unwrap_or("")) required;
        label for="kind" { (lang.pick("Loại kỳ", "Kind")) }
        select #kind name="kind" { @for k in KINDS { option value=(k) selected[p.is_some_and(|p| p.kind == *k)] { (periods::kind_label(k, lang)) } } }
        label for="starts_on" { (lang.pick("Từ ngày", "From")) }
        input #starts_on type="date" name="starts_on" value=(p.map(|p| p.starts_on.to_string()).unwrap_or_default()) required;
        label for="ends_on" { (lang.pick("Đến ngày", "Until")) }
        input #ends_on type="date" name="ends_on" value=(p.map(|p| p.ends_on.to_string()).unwrap_or_default()) required;
        label for="status" { (lang.pick("Trạng thái", "Status")) }
        select #status name="status" { @for s in PeriodStatus::ALL { option value=(s.as_str()) selected[p.is_some_and(|p| p.status == s)] { (s.label(lang)) } } }
    }
}

fn periods_page(
    lang: Lang,
    user: &CurrentUser,
    rows: &[SurveyPeriod],
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        table {
            thead { tr { th { (lang.pick("Mã", "Code")) } th { (lang.pick("Tên", "Name")) } th { (lang.pick("Loại", "Kind")) } th { (lang.pick("Thời gian", "Dates")) } th { (lang.pick("Trạng thái", "Status")) } } }
            tbody { @for p in rows { tr {
                td { a href=(format!("/admin/periods/{}", p.id)) { (p.code) } }
                td { (p.name(lang)) }
                td { (periods::kind_label(&p.kind, lang)) }
                td { (p.starts_on) " → " (p.ends_on) }
                td { (p.status.label(lang)) }
            } } }
        }
        h2 { (lang.pick("Thêm kỳ khảo sát", "Add a survey period")) }
        (error_box(lang, error))
        form.stack method="post" action="/admin/periods" {
            (csrf_field(user))
            (period_fields(lang, None))
            button type="submit" { (lang.pick("Thêm", "Add")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/periods",
        lang.pick("Kỳ khảo sát", "Survey periods"),
        body,
    )
}

pub async fn periods_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let rows = state.with_conn(|conn| Ok(periods::list(conn)?)).await?;
    Ok(html_response(
        StatusCode::OK,
        periods_page(page_lang(&req), &user, &rows, q.ok.as_deref(), None),
    ))
}

pub async fn periods_create(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<PeriodForm>,
) -> Result<HttpResponse, AppError> {
    let (actor, form) = (user.0.user.actor(), form.into_inner());
    let saved = match form.input() {
        Ok(input) => {
            state
                .with_conn(move |conn| periods::save(conn, &actor, None, &input))
                .await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(p) => Ok(done(&format!("/admin/periods/{}", p.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let rows = state.with_conn(|conn| Ok(periods::list(conn)?)).await?;
            Ok(html_response(
                failed_status(&e),
                periods_page(page_lang(&req), &user, &rows, None, Some(&e)),
            ))
        }
    }
}

fn period_detail(
    lang: Lang,
    user: &CurrentUser,
    p: &SurveyPeriod,
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        (error_box(lang, error))
        form.stack method="post" action=(format!("/admin/periods/{}", p.id)) {
            (csrf_field(user))
            (period_fields(lang, Some(p)))
            button type="submit" { (lang.pick("Lưu", "Save")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/periods",
        &format!("{} — {}", p.code, p.name(lang)),
        body,
    )
}

fn find_period(conn: &mut DbConn, id: &str) -> AppResult<SurveyPeriod> {
    periods::find(conn, id)?
        .ok_or_else(|| AppError::NotFound(Msg::new("Không có kỳ khảo sát này.", "No such period.")))
}

pub async fn period_show(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let p = state.with_conn(move |conn| find_period(conn, &id)).await?;
    Ok(html_response(
        StatusCode::OK,
        period_detail(page_lang(&req), &user, &p, q.ok.as_deref(), None),
    ))
}

pub async fn period_update(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<PeriodForm>,
) -> Result<HttpResponse, AppError> {
    let (id, actor, form) = (path.into_inner(), user.0.user.actor(), form.into_inner());
    let target = id.clone();
    let saved = match form.input() {
        Ok(input) => {
            state
                .with_conn(move |conn| periods::save(conn, &actor, Some(&target), &input))
                .await
        }
        Err(e) => Err(e),
    };
    match saved {
        Ok(_) => Ok(done(&format!("/admin/periods/{id}"), "saved")),
        Err(e @ (AppError::Internal(_) | AppError::NotFound(_))) => Err(e),
        Err(e) => {
            let p = state.with_conn(move |conn| find_period(conn, &id)).await?;
            Ok(html_response(
                failed_status(&e),
                period_detail(page_lang(&req), &user, &p, None, Some(&e)),
            ))
        }
    }
}
