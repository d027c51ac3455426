//! Admin pages for units: list and search, create, rename, move, merge, close or reopen, the
//! form issued at the counter, and the unit's counter API keys.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use maud::{Markup, html};
use serde::Deserialize;

use crate::accounts::actor::Actor;
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::units::manage::{
    self, CounterForm, Merge, MoveTo, NewUnitInput, Rename, UnitDetail, Validity,
};
use crate::units::{self, UNIT_KINDS, Unit};
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{
    ListQuery, PER_PAGE, csrf_field, error_box, notice, pager, search_box, staff_page,
};
use crate::web::view::{done, failed_status, unit_kind_label};

fn status_text(unit: &Unit, lang: Lang) -> String {
    match (&unit.valid_to, &unit.merged_into_id) {
        (Some(end), Some(_)) => format!("{} {end}", lang.pick("Đã sáp nhập sau", "Merged after")),
        (Some(end), None) => format!("{} {end}", lang.pick("Ngừng hoạt động sau", "Closed after")),
        _ => lang.pick("Đang hoạt động", "Active").to_string(),
    }
}

fn kind_select(lang: Lang, selected: &str) -> Markup {
    html! {
        select #kind name="kind" {
            @for kind in UNIT_KINDS {
                option value=(kind) selected[*kind == selected] { (unit_kind_label(kind, lang)) }
            }
        }
    }
}

struct ListView {
    units: Vec<Unit>,
    more: bool,
    /// Today in the province, the default start of a new unit.
    today: NaiveDate,
}

fn list_page(
    lang: Lang,
    user: &CurrentUser,
    q: &ListQuery,
    view: &ListView,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, q.ok.as_deref()))
        (search_box(lang, "/admin/units", &q.q))
        table {
            thead { tr {
                th { (lang.pick("Mã", "Code")) } th { (lang.pick("Tên", "Name")) } th { (lang.pick("Loại", "Kind")) }
                th { (lang.pick("Hiệu lực từ", "Valid from")) } th { (lang.pick("Trạng thái", "Status")) }
            } }
            tbody {
                @for u in &view.units {
                    tr {
                        td { a href=(format!("/admin/units/{}", u.id)) { (u.code) } }
                        td { (u.name(lang)) }
                        td { (unit_kind_label(&u.kind, lang)) }
                        td { (u.valid_from) }
                        td { (status_text(u, lang)) }
                    }
                }
            }
        }
        (pager(lang, "/admin/units", &q.q, q.page, view.more))
        h2 { (lang.pick("Thêm đơn vị", "Add a unit")) }
        (error_box(lang, error))
        form.stack method="post" action="/admin/units" {
            (csrf_field(user))
            label for="code" { (lang.pick("Mã đơn vị (chữ in hoa, số, -)", "Unit code (capitals, digits, -)")) }
            input #code type="text" name="code" required;
            label for="name_vi" { (lang.pick("Tên tiếng Việt", "Vietnamese name")) }
            input #name_vi type="text" name="name_vi" required;
            label for="name_en" { (lang.pick("Tên tiếng Anh", "English name")) }
            input #name_en type="text" name="name_en" required;
            label for="kind" { (lang.pick("Loại", "Kind")) }
            (kind_select(lang, "department"))
            label for="parent" { (lang.pick("Mã đơn vị cấp trên", "Parent unit code")) }
            input #parent type="text" name="parent";
            label for="valid_from" { (lang.pick("Hiệu lực từ ngày", "Valid from")) }
            input #valid_from type="date" name="valid_from" value=(view.today);
            button type="submit" { (lang.pick("Thêm đơn vị", "Add unit")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/units",
        lang.pick("Đơn vị", "Units"),
        body,
    )
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let (query, page) = (q.q.clone(), q.page);
    let (units, more) = state
        .with_conn(move |conn| Ok(units::search(conn, &query, page, PER_PAGE)?))
        .await?;
    Ok(html_response(
        StatusCode::OK,
        list_page(
            lang,
            &user,
            &q,
            &ListView {
                units,
                more,
                today: today(&state),
            },
            None,
        ),
    ))
}

#[derive(Deserialize)]
pub struct CreateForm {
    code: String,
    name_vi: String,
    name_en: String,
    kind: String,
    #[serde(default)]
    parent: String,
    valid_from: String,
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<CreateForm>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let actor = user.actor();
    let input = NewUnitInput::parse(
        &form.code,
        &form.name_vi,
        &form.name_en,
        &form.kind,
        &form.parent,
        &form.valid_from,
    );
    let result = match input {
        Ok(input) => {
            state
                .with_conn(move |conn| manage::create(conn, &actor, &input))
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(unit) => Ok(done(&format!("/admin/units/{}", unit.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let (units, more) = state
                .with_conn(|conn| Ok(units::search(conn, "", 0, PER_PAGE)?))
                .await?;
            let q = ListQuery::default();
            Ok(html_response(
                failed_status(&e),
                list_page(
                    lang,
                    &user,
                    &q,
                    &ListView {
                        units,
                        more,
                        today: today(&state),
                    },
                    Some(&e),
                ),
            ))
        }
    }
}

fn detail_page(
    lang: Lang,
    user: &CurrentUser,
    d: &UnitDetail,
    forms: &[String],
    ok: Option<&str>,
    error: Option<&AppError>,
    new_key: Option<&str>,
) -> Markup {
    let u = &d.unit;
    let base = format!("/admin/units/{}", u.id);
    let body = html! {
        (notice(lang, ok))
        (error_box(lang, error))
        @if let Some(key) = new_key {
            div.notice role="status" {
                p { strong { (lang.pick("Khóa API mới — chỉ hiển thị một lần, hãy sao chép ngay:", "New API key — shown only once, copy it now:")) } }
                p.secret { (key) }
            }
        }
        table {
            tr { th { (lang.pick("Mã", "Code")) } td { (u.code) } }
            tr { th { (lang.pick("Tên", "Name")) } td { (u.name_vi) " / " (u.name_en) } }
            tr { th { (lang.pick("Loại", "Kind")) } td { (unit_kind_label(&u.kind, lang)) } }
            tr { th { (lang.pick("Cấp trên", "Parent")) } td {
                @if let Some(p) = &d.parent { a href=(format!("/admin/units/{}", p.id)) { (p.code) " — " (p.name(lang)) } } @else { "—" }
            } }
            tr { th { (lang.pick("Hiệu lực", "Validity")) } td { (u.valid_from) " → " @if let Some(t) = u.valid_to { (t) } @else { "…" } } }
            tr { th { (lang.pick("Trạng thái", "Status")) } td {
                (status_text(u, lang))
                @if let Some(m) = &d.merged_into { " → " a href=(format!("/admin/units/{}", m.id)) { (m.code) } }
            } }
            tr { th { (lang.pick("Đơn vị trực thuộc", "Units below")) } td {
                @for c in &d.children { a href=(format!("/admin/units/{}", c.id)) { (c.code) } " " }
            } }
        }
        h2 { (lang.pick("Đổi tên", "Rename")) }
        form.stack method="post" action=(format!("{base}/rename")) {
            (csrf_field(user))
            label for="name_vi" { (lang.pick("Tên tiếng Việt", "Vietnamese name")) }
            input #name_vi type="text" name="name_vi" value=(u.name_vi) required;
            label for="name_en" { (lang.pick("Tên tiếng Anh", "English name")) }
            input #name_en type="text" name="name_en" value=(u.name_en) required;
            label for="kind" { (lang.pick("Loại", "Kind")) }
            (kind_select(lang, &u.kind))
            button type="submit" { (lang.pick("Lưu", "Save")) }
        }
        h2 { (lang.pick("Chuyển cấp trên", "Move")) }
        form.stack method="post" action=(format!("{base}/move")) {
            (csrf_field(user))
            label for="parent" { (lang.pick("Mã đơn vị cấp trên mới (để trống: cấp cao nhất)", "New parent unit code (empty: top level)")) }
            input #parent type="text" name="parent" value=(d.parent.as_ref().map(|p| p.code.as_str()).unwrap_or(""));
            button type="submit" { (lang.pick("Chuyển", "Move")) }
        }
        h2 { (lang.pick("Sáp nhập", "Merge")) }
        form.stack method="post" action=(format!("{base}/merge")) {
            (csrf_field(user))
            label for="target" { (lang.pick("Sáp nhập vào đơn vị (mã)", "Merge into unit (code)")) }
            input #target type="text" name="target" required;
            label for="effective" { (lang.pick("Từ ngày", "From")) }
            input #effective type="date" name="effective" required;
            button type="submit" { (lang.pick("Sáp nhập", "Merge")) }
        }
        h2 { (lang.pick("Ngừng / mở lại hoạt động", "Close or reopen")) }
        form.stack method="post" action=(format!("{base}/validity")) {
            (csrf_field(user))
            label for="valid_to" { (lang.pick("Ngày hoạt động cuối cùng (để trống: mở lại)", "Last day of activity (empty: reopen)")) }
            input #valid_to type="date" name="valid_to" value=(u.valid_to.map(|d| d.to_string()).unwrap_or_default());
            button type="submit" { (lang.pick("Lưu", "Save")) }
        }
        h2 { (lang.pick("Mẫu phiếu tại quầy", "Form issued at the counter")) }
        form.stack method="post" action=(format!("{base}/counter-form")) {
            (csrf_field(user))
            label for="form" { (lang.pick("Mẫu phiếu", "Form")) }
            select #form name="form" {
                option value="" selected[u.counter_form.is_none()] { (lang.pick("Mặc định của hệ thống", "Service default")) }
                @for code in forms { option value=(code) selected[u.counter_form.as_deref() == Some(code.as_str())] { (code) } }
            }
            button type="submit" { (lang.pick("Lưu", "Save")) }
        }
        h2 { (lang.pick("Thư mời khảo sát", "E-mail invitations")) }
        form.stack method="post" action=(format!("{base}/invitations")) {
            (csrf_field(user))
            label { input type="checkbox" name="enabled" value="on" checked[u.invitations_enabled]; " " (lang.pick("Gửi thư mời và thư nhắc khi hồ sơ có địa chỉ thư điện tử", "Send an invitation and a reminder when a dossier has an e-mail address")) }
            button type="submit" { (lang.pick("Lưu", "Save")) }
        }
        h2 { (lang.pick("Khóa API của hệ thống một cửa", "Counter system API keys")) }
        table {
            thead { tr { th { (lang.pick("Nhãn", "Label")) } th { (lang.pick("Tạo lúc", "Created")) } th { (lang.pick("Dùng lần cuối", "Last used")) } th { (lang.pick("Trạng thái", "Status")) } th {} } }
            tbody {
                @for k in &d.keys {
                    tr {
                        td { (k.label) }
                        td { (k.created_at.format("%Y-%m-%d %H:%M")) }
                        td { @if let Some(t) = k.last_used_at { (t.format("%Y-%m-%d %H:%M")) } @else { (lang.pick("Chưa dùng", "Never")) } }
                        td { @if k.revoked_at.is_some() { (lang.pick("Đã thu hồi", "Revoked")) } @else { (lang.pick("Đang dùng", "Active")) } }
                        td { @if k.revoked_at.is_none() {
                            form.inline method="post" action=(format!("/admin/api-keys/{}/revoke", k.id)) {
                                (csrf_field(user))
                                button.link type="submit" { (lang.pick("Thu hồi", "Revoke")) }
                            }
                        } }
                    }
                }
            }
        }
        form.stack method="post" action=(format!("{base}/api-keys")) {
            (csrf_field(user))
            label for="label" { (lang.pick("Nhãn (tên hệ thống một cửa)", "Label (counter system name)")) }
            input #label type="text" name="label" required;
            button type="submit" { (lang.pick("Tạo khóa API", "Create API key")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/units",
        &format!("{} — {}", u.code, u.name(lang)),
        body,
    )
}

async fn render_detail(
    state: &AppState,
    lang: Lang,
    user: &CurrentUser,
    id: String,
    ok: Option<&str>,
    error: Option<&AppError>,
    new_key: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let detail = state
        .with_conn(move |conn| manage::detail(conn, &id))
        .await?;
    let forms: Vec<String> = state.forms.codes().cloned().collect();
    let status = error.map(failed_status).unwrap_or(StatusCode::OK);
    Ok(html_response(
        status,
        detail_page(lang, user, &detail, &forms, ok, error, new_key),
    ))
}

#[derive(Deserialize)]
pub struct OkQuery {
    ok: Option<String>,
}

pub async fn detail(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    render_detail(
        &state,
        page_lang(&req),
        &user,
        path.into_inner(),
        q.ok.as_deref(),
        None,
        None,
    )
    .await
}

/// A unit change: one use case of `units::manage` on a validated input.
type Change<T> = fn(&mut DbConn, &Actor, &str, &T) -> AppResult<Unit>;

/// Runs a unit change on its parsed input and answers with a redirect, or the page with the
/// error (of the form or of the change).
async fn apply<T: Send + 'static>(
    state: &AppState,
    req: &HttpRequest,
    user: &CurrentUser,
    id: String,
    input: AppResult<T>,
    change: Change<T>,
) -> Result<HttpResponse, AppError> {
    let (actor, unit_id) = (user.actor(), id.clone());
    let result = match input {
        Ok(input) => {
            state
                .with_conn(move |conn| change(conn, &actor, &unit_id, &input))
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(done(&format!("/admin/units/{id}"), "saved")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => render_detail(state, page_lang(req), user, id, None, Some(&e), None).await,
    }
}

#[derive(Deserialize)]
pub struct RenameForm {
    name_vi: String,
    name_en: String,
    kind: String,
}

pub async fn rename(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<RenameForm>,
) -> Result<HttpResponse, AppError> {
    let input = Rename::parse(&form.name_vi, &form.name_en, &form.kind);
    apply(
        &state,
        &req,
        &user,
        path.into_inner(),
        input,
        manage::rename,
    )
    .await
}

#[derive(Deserialize)]
pub struct MoveForm {
    #[serde(default)]
    parent: String,
}

pub async fn move_unit(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<MoveForm>,
) -> Result<HttpResponse, AppError> {
    let input = Ok(MoveTo::parse(&form.parent));
    apply(
        &state,
        &req,
        &user,
        path.into_inner(),
        input,
        manage::move_to,
    )
    .await
}

#[derive(Deserialize)]
pub struct MergeForm {
    target: String,
    effective: String,
}

pub async fn merge(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<MergeForm>,
) -> Result<HttpResponse, AppError> {
    let input = Merge::parse(&form.target, &form.effective);
    apply(&state, &req, &user, path.into_inner(), input, manage::merge).await
}

#[derive(Deserialize)]
pub struct ValidityForm {
    #[serde(default)]
    valid_to: String,
}

pub async fn validity(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<ValidityForm>,
) -> Result<HttpResponse, AppError> {
    let input = Validity::parse(&form.valid_to);
    let id = path.into_inner();
    apply(&state, &req, &user, id, input, manage::set_validity).await
}

#[derive(Deserialize)]
pub struct CounterFormForm {
    #[serde(default)]
    form: String,
}

pub async fn counter_form(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<CounterFormForm>,
) -> Result<HttpResponse, AppError> {
    let input = CounterForm::parse(&form.form, &state.forms);
    let id = path.into_inner();
    apply(&state, &req, &user, id, input, manage::choose_counter_form).await
}

#[derive(Deserialize)]
pub struct InvitationsForm {
    #[serde(default)]
    enabled: Option<String>,
}

pub async fn invitations(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<InvitationsForm>,
) -> Result<HttpResponse, AppError> {
    let enabled = Ok(form.enabled.is_some());
    let id = path.into_inner();
    apply(&state, &req, &user, id, enabled, manage::set_invitations).await
}

#[derive(Deserialize)]
pub struct KeyForm {
    label: String,
}

pub async fn create_key(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<KeyForm>,
) -> Result<HttpResponse, AppError> {
    let (id, actor, label) = (path.into_inner(), user.actor(), form.into_inner().label);
    let unit_id = id.clone();
    let key = state
        .with_conn(move |conn| manage::issue_api_key(conn, &actor, &unit_id, &label))
        .await?;
    render_detail(&state, page_lang(&req), &user, id, None, None, Some(&key)).await
}

pub async fn revoke_key(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (id, actor) = (path.into_inner(), user.actor());
    let unit_id = state
        .with_conn(move |conn| manage::revoke_api_key(conn, &actor, &id))
        .await?;
    Ok(done(&format!("/admin/units/{unit_id}"), "revoked"))
}

fn today(state: &AppState) -> NaiveDate {
    let offset = state.policies.utc_offset;
    crate::calendar::local_day(crate::db::now(), offset)
}
