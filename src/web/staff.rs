//! The frame of every page for signed-in staff: navigation by role, language switch, sign-out,
//! and the small helpers forms and lists share (CSRF field, pager, field errors).

use maud::{Markup, html};

use super::access::CurrentUser;
use super::layout::page;
use crate::accounts::Role;
use crate::error::AppError;
use crate::i18n::Lang;

/// A staff page with the navigation of the user's role.
pub fn staff_page(lang: Lang, user: &CurrentUser, path: &str, title: &str, body: Markup) -> Markup {
    let session = &user.0;
    let role = session.user.role();
    let links: Vec<(&str, &str)> = match role {
        Role::Admin => vec![
            ("/admin", lang.pick("Tổng quan", "Overview")),
            ("/admin/units", lang.pick("Đơn vị", "Units")),
            ("/admin/procedures", lang.pick("Thủ tục", "Procedures")),
            ("/admin/users", lang.pick("Tài khoản", "Users")),
            (
                "/admin/collector-orgs",
                lang.pick("Đơn vị thu thập", "Collectors"),
            ),
            ("/admin/forms", lang.pick("Mẫu phiếu", "Forms")),
            ("/admin/periods", lang.pick("Kỳ khảo sát", "Periods")),
            ("/admin/samples", lang.pick("Mẫu giấy", "Samples")),
            (
                "/admin/groups",
                lang.pick("Nhóm người trả lời", "Respondent groups"),
            ),
            ("/admin/outbox", lang.pick("Thư mời", "E-mails")),
            ("/admin/audit", lang.pick("Nhật ký", "Audit log")),
            ("/admin/releases", lang.pick("Công bố", "Releases")),
            ("/reports/ranking", lang.pick("Xếp hạng", "Ranking")),
            ("/admin/integrity", lang.pick("Độ tin cậy", "Integrity")),
            (
                "/cases",
                lang.pick("Phản hồi chưa hài lòng", "Bad-rating cases"),
            ),
        ],
        Role::Agency => vec![
            ("/agency", lang.pick("Đơn vị của tôi", "My units")),
            (
                "/cases",
                lang.pick("Phản hồi chưa hài lòng", "Bad-rating cases"),
            ),
        ],
        Role::Collector => vec![
            (
                "/collector",
                lang.pick("Thu thập phiếu giấy", "Paper collection"),
            ),
            ("/paper/batches", lang.pick("Lô phiếu", "Batches")),
            ("/paper/entry", lang.pick("Nhập phiếu", "Key forms")),
            ("/paper/disputes", lang.pick("Phân xử", "Adjudication")),
            ("/paper/typists", lang.pick("Năng suất", "Typists")),
        ],
    };
    let switch = format!(
        "{path}{}lang={}",
        if path.contains('?') { "&" } else { "?" },
        lang.other().code()
    );
    let content = html! {
        nav.staff aria-label=(lang.pick("Điều hướng", "Navigation")) {
            @for (href, label) in &links {
                a href=(href) aria-current=[(path == *href || (href.len() > 6 && path.starts_with(href))).then_some("page")] { (label) }
            }
            span.who {
                a href="/account" { (session.user.display_name) }
                form.inline method="post" action="/logout" {
                    (csrf_field(user))
                    button.link type="submit" { (lang.pick("Đăng xuất", "Sign out")) }
                }
            }
        }
        h1 { (title) }
        (body)
    };
    page(lang, title, Some(&switch), content)
}

/// The synchronizer token every staff form carries.
pub fn csrf_field(user: &CurrentUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.0.csrf_token); }
}

/// Previous/next links for a searchable list.
pub fn pager(lang: Lang, base: &str, query: &str, page: i64, more: bool) -> Markup {
    let link = |p: i64| format!("{base}?q={}&page={p}", super::access::urlencode(query));
    html! {
        nav.pager aria-label=(lang.pick("Phân trang", "Pages")) {
            @if page > 0 { a href=(link(page - 1)) rel="prev" { "← " (lang.pick("Trang trước", "Previous")) } }
            span { (lang.pick("Trang", "Page")) " " (page + 1) }
            @if more { a href=(link(page + 1)) rel="next" { (lang.pick("Trang sau", "Next")) " →" } }
        }
    }
}

/// A search box for a list page.
pub fn search_box(lang: Lang, action: &str, query: &str) -> Markup {
    html! {
        form.search method="get" action=(action) role="search" {
            label for="q" { (lang.pick("Tìm kiếm", "Search")) }
            input #q type="search" name="q" value=(query);
            button type="submit" { (lang.pick("Tìm", "Search")) }
        }
    }
}

/// The message of a failed action, shown above the form it came from.
pub fn error_box(lang: Lang, error: Option<&AppError>) -> Markup {
    html! {
        @if let Some(e) = error {
            div.alert role="alert" {
                (e.user_message().get(lang))
                @if let AppError::InvalidField { field, .. } = e { " (" (field) ")" }
            }
        }
    }
}

/// A confirmation after a successful action (`?ok=` on the page redirected to).
pub fn notice(lang: Lang, ok: Option<&str>) -> Markup {
    let text = match ok {
        Some("saved") => Some(lang.pick("Đã lưu thay đổi.", "Changes saved.")),
        Some("created") => Some(lang.pick("Đã tạo mới.", "Created.")),
        Some("revoked") => Some(lang.pick("Đã thu hồi khóa.", "Key revoked.")),
        Some("password") => Some(lang.pick("Đã đổi mật khẩu.", "Password changed.")),
        _ => None,
    };
    html! { @if let Some(t) = text { p.notice role="status" { (t) } } }
}

/// Page number and search text of a list request.
#[derive(Debug, Default, serde::Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub q: String,
    #[serde(default)]
    pub page: i64,
    pub ok: Option<String>,
}

pub const PER_PAGE: i64 = 25;
