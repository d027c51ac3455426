//! The page shell shared by every HTML page: language, viewport, one small stylesheet.

use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use maud::{DOCTYPE, Markup, html};

use crate::i18n::Lang;

/// A whole page. `switch_href` is the same page in the other language, when there is one.
pub fn page(lang: Lang, title: &str, switch_href: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang.code()) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="robots" content="noindex";
                title { (title) " · SIPAS" }
                link rel="stylesheet" href=(concat!("/static/sipas.css?v=", env!("CARGO_PKG_VERSION")));
            }
            body {
                header.top {
                    span.brand { "SIPAS" }
                    @if let Some(href) = switch_href {
                        a.lang href=(href) hreflang=(lang.other().code()) lang=(lang.other().code()) {
                            (lang.pick("English", "Tiếng Việt"))
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page with only a heading and a paragraph, for outcomes and errors.
pub fn message_page(
    lang: Lang,
    status: StatusCode,
    title: &str,
    text: &str,
    switch_href: Option<&str>,
) -> HttpResponse {
    let body = html! {
        h1 { (title) }
        p { (text) }
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page(lang, title, switch_href, body).into_string())
}

pub fn html_response(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}
