//! The language of the page a request asks for. Below both access control and error pages,
//! which each answer in it.

use crate::i18n::Lang;

/// The page language: `?lang=` first, then the `sipas_lang` cookie the switch link sets.
pub fn page_lang(req: &actix_web::HttpRequest) -> Lang {
    let from_query = req
        .query_string()
        .split('&')
        .find_map(|kv| kv.strip_prefix("lang="));
    match from_query {
        Some(code) => Lang::from_param(Some(code)),
        None => Lang::from_param(req.cookie(LANG_COOKIE).as_ref().map(|c| c.value())),
    }
}

pub const LANG_COOKIE: &str = "sipas_lang";
