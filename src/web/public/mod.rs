//! The public results site, no sign-in: what a release published, nothing else. Every page
//! renders only a signed release document, so a cell the release suppressed cannot appear.
//! Vietnamese first (`?lang=en` for English), no JavaScript, one small stylesheet.

pub mod key;
pub mod overview;
pub mod ranking;
pub mod releases;
pub mod unit;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{html_response, page};
use crate::i18n::Lang;
use crate::publish::document::{Estimate, ReleaseDocument};

/// `?release=` (a release id; default the newest in force) and `?kind=` (ranking level).
#[derive(Debug, Default, Deserialize)]
pub struct PublicQuery {
    pub release: Option<String>,
    pub kind: Option<String>,
}

impl PublicQuery {
    pub fn release_id(&self) -> Option<String> {
        self.release.clone().filter(|r| !r.trim().is_empty())
    }
}

/// The same page in the other language: the query kept, `lang` swapped.
fn switch_href(req: &HttpRequest, lang: Lang) -> String {
    let mut parts: Vec<&str> = req
        .query_string()
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("lang="))
        .collect();
    let lang_part = format!("lang={}", lang.other().code());
    parts.push(&lang_part);
    format!("{}?{}", req.path(), parts.join("&"))
}

/// A link to a public page in the page's language.
pub fn href(lang: Lang, path: &str) -> String {
    match lang {
        Lang::Vi => path.to_string(),
        Lang::En => {
            let sep = if path.contains('?') { '&' } else { '?' };
            format!("{path}{sep}lang=en")
        }
    }
}

/// A public page: the site's navigation, then `body`.
pub fn public_page(req: &HttpRequest, lang: Lang, title: &str, body: Markup) -> HttpResponse {
    let path = req.path();
    let links = [
        ("/public", lang.pick("Tổng quan", "Overview")),
        ("/public/ranking", lang.pick("Xếp hạng", "Ranking")),
        ("/public/releases", lang.pick("Các đợt công bố", "Releases")),
        ("/public/key", lang.pick("Kiểm tra chữ ký", "Verify")),
    ];
    let content = html! {
        nav.public aria-label=(lang.pick("Kết quả công bố", "Published results")) {
            @for (target, label) in links {
                a href=(href(lang, target)) aria-current=[(path == target).then_some("page")] { (label) }
            }
        }
        h1 { (title) }
        (body)
    };
    html_response(
        StatusCode::OK,
        page(lang, title, Some(&switch_href(req, lang)), content),
    )
}

/// The page shown while nothing is published yet.
pub fn nothing_published(req: &HttpRequest, lang: Lang) -> HttpResponse {
    public_page(
        req,
        lang,
        lang.pick("Kết quả khảo sát sự hài lòng", "Satisfaction results"),
        html! { p { (lang.pick("Chưa có kết quả nào được công bố.", "No results have been published yet.")) } },
    )
}

/// An estimate for display: "82.5 %" or "—" (suppressed or no data).
pub fn pct(e: &Estimate) -> String {
    e.value
        .map(|v| format!("{v:.1} %"))
        .unwrap_or_else(|| "—".into())
}

/// "80.1–84.9", empty without an interval.
pub fn interval(e: &Estimate) -> String {
    match (e.value, e.ci_low, e.ci_high) {
        (Some(_), Some(lo), Some(hi)) => format!("{lo:.1}–{hi:.1}"),
        _ => String::new(),
    }
}

/// Period, sequence and publication date of a release, one line.
pub fn release_line(lang: Lang, doc: &ReleaseDocument) -> Markup {
    html! {
        p.meta {
            (lang.pick("Kỳ ", "Period ")) strong { (doc.release.period) }
            " (" (doc.release.from) " → " (doc.release.to) ") · "
            (lang.pick("công bố lần ", "release ")) (doc.release.sequence)
            " · " (doc.release.created_at.get(..10).unwrap_or(&doc.release.created_at))
            @if doc.release.corrects.is_some() {
                " · " a href=(href(lang, &format!("/public/releases/{}", doc.release.id))) { (lang.pick("đính chính — xem thay đổi", "correction — see changes")) }
            }
        }
    }
}

/// The note under every table of figures.
pub fn method_note(lang: Lang, doc: &ReleaseDocument) -> Markup {
    html! {
        p.muted {
            (lang.pick("Tỷ lệ hài lòng = số câu trả lời mức 4–5 ÷ số câu trả lời hợp lệ, với khoảng tin cậy 95 %. Ô có ít hơn ",
                "Satisfaction = answers at levels 4–5 ÷ valid answers, with 95 % intervals. Cells with fewer than "))
            (doc.method.min_n)
            (lang.pick(" câu trả lời không được công bố (—).", " answers are not published (—)."))
        }
    }
}

pub fn unit_name<'a>(lang: Lang, vi: &'a str, en: &'a str) -> &'a str {
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
}
