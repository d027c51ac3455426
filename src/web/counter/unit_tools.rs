//! What the two staff pages of a unit's counter tools share (`desks`: paired screens and kiosks;
//! `books`: offline token books): one frame, a revoke button per row, and the fields of their
//! one form, which names an `action`.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::{Markup, html};

use crate::i18n::Lang;
use crate::units::Unit;
use crate::web::access::CurrentUser;
use crate::web::layout::html_response;
use crate::web::staff::{csrf_field, staff_page};

/// The page of one tool of `unit`: `notices`, a `heading` over the `table` of what exists (or
/// `none` when it is empty), the `new` form, and the way back to the unit.
pub struct ToolPage<'a> {
    pub unit: &'a Unit,
    pub title: &'static str,
    pub notices: Markup,
    pub heading: &'static str,
    pub none: &'static str,
    pub empty: bool,
    pub table: Markup,
    pub new: Markup,
}

impl ToolPage<'_> {
    pub fn render(self, lang: Lang, user: &CurrentUser) -> HttpResponse {
        let unit_id = &self.unit.id;
        let body = html! {
            (self.notices)
            h2 { (self.heading) }
            @if self.empty { p.muted { (self.none) } } @else { (self.table) }
            (self.new)
            p { a href=(format!("/agency/units/{unit_id}")) { (lang.pick("← Đơn vị", "← Unit")) } }
        };
        let title = format!("{} · {}", self.title, self.unit.name(lang));
        html_response(
            StatusCode::OK,
            staff_page(lang, user, "/agency", &title, body),
        )
    }
}

/// A row's revoke button: posts `action=revoke` and `name=id` to `action`.
pub fn revoke_button(lang: Lang, user: &CurrentUser, action: &str, name: &str, id: &str) -> Markup {
    html! {
        form method="post" action=(action) {
            (csrf_field(user))
            input type="hidden" name="action" value="revoke";
            input type="hidden" name=(name) value=(id);
            button type="submit" { (lang.pick("Thu hồi", "Revoke")) }
        }
    }
}

/// The posted form's fields; a field absent or the body unreadable reads as empty, which the
/// use case refuses as it refuses any bad value.
pub struct ActionForm(Vec<(String, String)>);

impl ActionForm {
    pub fn read(body: &[u8]) -> Self {
        Self(serde_urlencoded::from_bytes(body).unwrap_or_default())
    }

    /// The first value of `name`, or "".
    pub fn field(&self, name: &str) -> String {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }
}
