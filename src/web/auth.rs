//! Signing in and out, and changing one's own password.

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use super::AppState;
use super::access::{CurrentUser, LOGIN_CSRF_COOKIE, client_address};
use super::layout::{html_response, page};
use super::staff::{csrf_field, error_box, notice, staff_page};
use crate::accounts::sessions::{self, COOKIE_NAME};
use crate::accounts::sign_in::{self, Credentials, PasswordChange, SignIn};
use crate::accounts::{Role, users};
use crate::error::AppError;
use crate::i18n::{Lang, Msg};
use crate::web::lang::page_lang;

fn session_cookie(
    value: &str,
    secure: bool,
    max_age: actix_web::cookie::time::Duration,
) -> Cookie<'static> {
    Cookie::build(COOKIE_NAME, value.to_string())
        .path("/")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Lax)
        .max_age(max_age)
        .finish()
}

/// Where a user lands after signing in.
pub fn home_of(role: Role) -> &'static str {
    match role {
        Role::Admin => "/admin",
        Role::Agency => "/agency",
        Role::Collector => "/collector",
    }
}

/// Only local paths are followed after sign-in (no open redirect).
fn safe_next(next: Option<&str>) -> Option<String> {
    // Browsers drop tabs and line breaks inside URLs, so `/\t/evil` would become `//evil`:
    // refuse any whitespace, control character or backslash outright.
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && n.chars()
                .all(|c| !c.is_control() && !c.is_whitespace() && c != '\\')
    })
    .map(str::to_string)
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
}

fn login_form(
    lang: Lang,
    csrf: &str,
    next: Option<&str>,
    username: &str,
    error: Option<&Msg>,
) -> Markup {
    let title = lang.pick("Đăng nhập", "Sign in");
    let body = html! {
        h1 { (title) }
        p.muted { (lang.pick("Dành cho cán bộ Sở Nội vụ, cơ quan, đơn vị và đơn vị thu thập phiếu.", "For staff of Home Affairs, agencies and collector organisations.")) }
        @if let Some(e) = error { div.alert role="alert" { (e.get(lang)) } }
        form.stack method="post" action="/login" {
            input type="hidden" name="csrf" value=(csrf);
            @if let Some(n) = next { input type="hidden" name="next" value=(n); }
            label for="username" { (lang.pick("Tên đăng nhập", "Username")) }
            input #username type="text" name="username" value=(username) autocomplete="username" required autofocus;
            label for="password" { (lang.pick("Mật khẩu", "Password")) }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" { (title) }
        }
    };
    page(
        lang,
        title,
        Some(&format!("/login?lang={}", lang.other().code())),
        body,
    )
}

fn with_login_csrf(
    status: StatusCode,
    lang: Lang,
    next: Option<&str>,
    username: &str,
    error: Option<&Msg>,
    secure: bool,
) -> HttpResponse {
    let csrf = {
        use rand::RngCore;
        let mut bytes = [0u8; 18];
        rand::rng().fill_bytes(&mut bytes);
        data_encoding::BASE32_NOPAD.encode(&bytes)
    };
    let cookie = Cookie::build(LOGIN_CSRF_COOKIE, csrf.clone())
        .path("/login")
        .http_only(true)
        .secure(secure)
        .same_site(SameSite::Strict)
        .finish();
    let mut response = html_response(status, login_form(lang, &csrf, next, username, error));
    let _ = response.add_cookie(&cookie);
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    response
}

pub async fn login_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    let lang = page_lang(&req);
    let next = safe_next(query.next.as_deref());
    with_login_csrf(
        StatusCode::OK,
        lang,
        next.as_deref(),
        "",
        None,
        state.settings.secure_cookies(),
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let address = client_address(&req, &state.settings.trusted_proxies);
    let form = form.into_inner();
    let username = users::normalize_username(&form.username);
    let credentials = Credentials {
        username: form.username,
        password: form.password,
        address,
        // The session this browser held before: a new sign-in ends it.
        previous_session: req
            .cookie(COOKIE_NAME)
            .map(|c| sessions::hash_token(c.value())),
    };
    let outcome = state
        .with_conn(move |conn| sign_in::sign_in(conn, &credentials))
        .await?;
    let secure = state.settings.secure_cookies();
    match outcome {
        SignIn::SignedIn {
            token,
            role,
            must_change,
        } => {
            let target = if must_change {
                "/account/password".to_string()
            } else {
                safe_next(form.next.as_deref()).unwrap_or_else(|| home_of(role).to_string())
            };
            let mut response = HttpResponse::SeeOther()
                .insert_header((header::LOCATION, target))
                .finish();
            let _ = response.add_cookie(&session_cookie(
                &token,
                secure,
                actix_web::cookie::time::Duration::hours(12),
            ));
            Ok(response)
        }
        SignIn::Refused(message) => Ok(with_login_csrf(
            StatusCode::UNAUTHORIZED,
            lang,
            safe_next(form.next.as_deref()).as_deref(),
            &username,
            Some(&message),
            secure,
        )),
    }
}

pub async fn logout(
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, AppError> {
    let hash = user.0.token_hash.clone();
    state
        .with_conn(move |conn| Ok(sessions::end(conn, &hash)?))
        .await?;
    let mut response = HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .finish();
    let _ = response.add_cookie(&session_cookie(
        "",
        state.settings.secure_cookies(),
        actix_web::cookie::time::Duration::ZERO,
    ));
    Ok(response)
}

#[derive(Deserialize)]
pub struct OkQuery {
    ok: Option<String>,
}

pub async fn account(
    req: HttpRequest,
    user: CurrentUser,
    query: web::Query<OkQuery>,
) -> HttpResponse {
    let lang = page_lang(&req);
    let u = &user.0.user;
    let body = html! {
        (notice(lang, query.ok.as_deref()))
        table {
            tr { th { (lang.pick("Tên đăng nhập", "Username")) } td { (u.username) } }
            tr { th { (lang.pick("Họ tên", "Name")) } td { (u.display_name) } }
            tr { th { (lang.pick("Vai trò", "Role")) } td { (u.role().label(lang)) } }
        }
        p { a href="/account/password" { (lang.pick("Đổi mật khẩu", "Change password")) } }
        p { a href=(home_of(u.role())) { (lang.pick("Về trang làm việc", "Back to my work page")) } }
    };
    html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/account",
            lang.pick("Tài khoản", "Account"),
            body,
        ),
    )
}

fn password_form(lang: Lang, user: &CurrentUser, error: Option<&AppError>) -> Markup {
    let forced = user.0.user.must_change_password;
    let body = html! {
        @if forced {
            p.notice { (lang.pick("Vui lòng đặt mật khẩu mới trước khi tiếp tục.", "Please set a new password before you continue.")) }
        }
        (error_box(lang, error))
        form.stack method="post" action="/account/password" {
            (csrf_field(user))
            label for="current_password" { (lang.pick("Mật khẩu hiện tại", "Current password")) }
            input #current_password type="password" name="current_password" autocomplete="current-password" required;
            label for="new_password" { (lang.pick("Mật khẩu mới (ít nhất 10 ký tự)", "New password (at least 10 characters)")) }
            input #new_password type="password" name="new_password" autocomplete="new-password" minlength="10" required;
            label for="confirm" { (lang.pick("Nhập lại mật khẩu mới", "Repeat the new password")) }
            input #confirm type="password" name="confirm" autocomplete="new-password" required;
            button type="submit" { (lang.pick("Đổi mật khẩu", "Change password")) }
        }
    };
    staff_page(
        lang,
        user,
        "/account/password",
        lang.pick("Đổi mật khẩu", "Change password"),
        body,
    )
}

pub async fn password_page(req: HttpRequest, user: CurrentUser) -> HttpResponse {
    html_response(StatusCode::OK, password_form(page_lang(&req), &user, None))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    current_password: String,
    new_password: String,
    confirm: String,
}

pub async fn change_password(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<PasswordForm>,
) -> HttpResponse {
    let lang = page_lang(&req);
    let form = form.into_inner();
    let session = user.0.clone();
    let change = PasswordChange {
        current: form.current_password,
        new: form.new_password,
        confirm: form.confirm,
        address: client_address(&req, &state.settings.trusted_proxies),
    };
    let result = state
        .with_conn(move |conn| {
            sign_in::change_password(conn, &session.user, &session.token_hash, &change)
        })
        .await;
    match result {
        Ok(()) => HttpResponse::SeeOther()
            .insert_header((header::LOCATION, "/account?ok=password"))
            .finish(),
        Err(AppError::Internal(e)) => {
            let e = AppError::Internal(e);
            html_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                password_form(lang, &user, Some(&e)),
            )
        }
        Err(e) => html_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            password_form(lang, &user, Some(&e)),
        ),
    }
}
