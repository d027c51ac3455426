//! Admin pages for user accounts: list and search, create (first password shown once), edit
//! role and scope, deactivate, reset password.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use crate::accounts::manage::{self, AccountDetail, AccountInput, AccountList};
use crate::accounts::{Role, password};
use crate::collector_orgs::CollectorOrg;
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{
    ListQuery, PER_PAGE, csrf_field, error_box, notice, pager, search_box, staff_page,
};
use crate::web::view::{done, failed_status};

/// Fields shared by the create and edit forms.
#[derive(Deserialize, Default)]
pub struct UserForm {
    #[serde(default)]
    username: String,
    display_name: String,
    role: String,
    #[serde(default)]
    unit: String,
    #[serde(default)]
    collector_org: String,
    #[serde(default)]
    active: Option<String>,
}

impl UserForm {
    fn input(&self) -> AppResult<AccountInput> {
        AccountInput::parse(
            &self.username,
            &self.display_name,
            &self.role,
            &self.unit,
            &self.collector_org,
            self.active.is_some(),
        )
    }
}

fn role_fields(
    lang: Lang,
    orgs: &[CollectorOrg],
    role: &str,
    unit_code: &str,
    org_id: &str,
) -> Markup {
    html! {
        label for="role" { (lang.pick("Vai trò", "Role")) }
        select #role name="role" {
            @for r in Role::ALL { option value=(r.as_str()) selected[r.as_str() == role] { (r.label(lang)) } }
        }
        label for="unit" { (lang.pick("Mã đơn vị (với vai trò cơ quan)", "Unit code (agency role)")) }
        input #unit type="text" name="unit" value=(unit_code);
        label for="collector_org" { (lang.pick("Đơn vị thu thập (với vai trò thu thập)", "Collector organisation (collector role)")) }
        select #collector_org name="collector_org" {
            option value="" { "—" }
            @for o in orgs { option value=(o.id) selected[o.id == org_id] { (o.code) " — " (o.name(lang)) } }
        }
    }
}

fn list_page(
    lang: Lang,
    user: &CurrentUser,
    q: &ListQuery,
    data: &AccountList,
    error: Option<&AppError>,
    created: Option<(&str, &str)>,
) -> Markup {
    let body = html! {
        (notice(lang, q.ok.as_deref()))
        @if let Some((name, pw)) = created {
            div.notice role="status" {
                p { (lang.pick("Đã tạo tài khoản ", "Created account ")) strong { (name) } ". "
                    (lang.pick("Mật khẩu ban đầu (chỉ hiển thị một lần; người dùng phải đổi khi đăng nhập):", "First password (shown once; the user must change it at sign-in):")) }
                p.secret { (pw) }
            }
        }
        (search_box(lang, "/admin/users", &q.q))
        table {
            thead { tr { th { (lang.pick("Tên đăng nhập", "Username")) } th { (lang.pick("Họ tên", "Name")) } th { (lang.pick("Vai trò", "Role")) } th { (lang.pick("Trạng thái", "Status")) } } }
            tbody {
                @for u in &data.accounts {
                    tr {
                        td { a href=(format!("/admin/users/{}", u.id)) { (u.username) } }
                        td { (u.display_name) }
                        td { (u.role().label(lang)) }
                        td { @if u.active { (lang.pick("Hoạt động", "Active")) } @else { (lang.pick("Đã khóa", "Deactivated")) } }
                    }
                }
            }
        }
        (pager(lang, "/admin/users", &q.q, q.page, data.more))
        h2 { (lang.pick("Tạo tài khoản", "Create an account")) }
        (error_box(lang, error))
        form.stack method="post" action="/admin/users" {
            (csrf_field(user))
            label for="username" { (lang.pick("Tên đăng nhập", "Username")) }
            input #username type="text" name="username" required autocomplete="off";
            label for="display_name" { (lang.pick("Họ tên", "Full name")) }
            input #display_name type="text" name="display_name" required;
            (role_fields(lang, &data.orgs, "agency", "", ""))
            button type="submit" { (lang.pick("Tạo tài khoản", "Create account")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/users",
        lang.pick("Tài khoản", "User accounts"),
        body,
    )
}

pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let (query, page) = (q.q.clone(), q.page);
    let data = state
        .with_conn(move |conn| manage::list(conn, &query, page, PER_PAGE))
        .await?;
    Ok(html_response(
        StatusCode::OK,
        list_page(page_lang(&req), &user, &q, &data, None, None),
    ))
}

pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let actor = user.actor();
    let first_password = password::generate();
    let pw = first_password.clone();
    let result = match form.input() {
        Ok(input) => {
            state
                .with_conn(move |conn| manage::create(conn, &actor, &input, &pw))
                .await
        }
        Err(e) => Err(e),
    };
    let q = ListQuery::default();
    let data = state
        .with_conn(|conn| manage::list(conn, "", 0, PER_PAGE))
        .await?;
    match result {
        Ok(created) => Ok(html_response(
            StatusCode::CREATED,
            list_page(
                lang,
                &user,
                &q,
                &data,
                None,
                Some((&created.username, &first_password)),
            ),
        )),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => Ok(html_response(
            failed_status(&e),
            list_page(lang, &user, &q, &data, Some(&e), None),
        )),
    }
}

fn detail_page(
    lang: Lang,
    user: &CurrentUser,
    d: &AccountDetail,
    ok: Option<&str>,
    error: Option<&AppError>,
    new_password: Option<&str>,
) -> Markup {
    let t = &d.account;
    let body = html! {
        (notice(lang, ok))
        (error_box(lang, error))
        @if let Some(pw) = new_password {
            div.notice role="status" {
                p { (lang.pick("Mật khẩu tạm thời (chỉ hiển thị một lần; người dùng phải đổi khi đăng nhập):", "Temporary password (shown once; the user must change it at sign-in):")) }
                p.secret { (pw) }
            }
        }
        form.stack method="post" action=(format!("/admin/users/{}", t.id)) {
            (csrf_field(user))
            input type="hidden" name="username" value=(t.username);
            label for="display_name" { (lang.pick("Họ tên", "Full name")) }
            input #display_name type="text" name="display_name" value=(t.display_name) required;
            (role_fields(lang, &d.orgs, &t.role, &d.unit_code, t.collector_org_id.as_deref().unwrap_or("")))
            label { input type="checkbox" name="active" value="on" checked[t.active]; " " (lang.pick("Đang hoạt động", "Active")) }
            button type="submit" { (lang.pick("Lưu", "Save")) }
        }
        h2 { (lang.pick("Đặt lại mật khẩu", "Reset password")) }
        form.stack method="post" action=(format!("/admin/users/{}/password", t.id)) {
            (csrf_field(user))
            p.muted { (lang.pick("Tạo mật khẩu tạm thời mới và đăng xuất mọi phiên của người dùng.", "Creates a new temporary password and ends all the user's sessions.")) }
            button type="submit" { (lang.pick("Đặt lại mật khẩu", "Reset password")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/users",
        &format!("{} — {}", t.username, t.display_name),
        body,
    )
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
    let id = path.into_inner();
    let d = state
        .with_conn(move |conn| manage::detail(conn, &id))
        .await?;
    Ok(html_response(
        StatusCode::OK,
        detail_page(page_lang(&req), &user, &d, q.ok.as_deref(), None, None),
    ))
}

pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<UserForm>,
) -> Result<HttpResponse, AppError> {
    let (id, actor) = (path.into_inner(), user.actor());
    let target = id.clone();
    let result = match form.input() {
        Ok(input) => {
            state
                .with_conn(move |conn| manage::update(conn, &actor, &target, &input))
                .await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(done(&format!("/admin/users/{id}"), "saved")),
        Err(e @ (AppError::Internal(_) | AppError::NotFound(_))) => Err(e),
        Err(e) => {
            let d = state
                .with_conn(move |conn| manage::detail(conn, &id))
                .await?;
            Ok(html_response(
                failed_status(&e),
                detail_page(page_lang(&req), &user, &d, None, Some(&e), None),
            ))
        }
    }
}

pub async fn reset_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (id, actor) = (path.into_inner(), user.actor());
    let temporary = password::generate();
    let pw = temporary.clone();
    let d = state
        .with_conn(move |conn| manage::reset_password(conn, &actor, &id, &pw))
        .await?;
    Ok(html_response(
        StatusCode::OK,
        detail_page(page_lang(&req), &user, &d, None, None, Some(&temporary)),
    ))
}
