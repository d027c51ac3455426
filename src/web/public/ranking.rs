//! `/public/ranking?kind=department`: the ranking of one unit level with rank ranges.

use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::{
    PublicQuery, href, interval, method_note, nothing_published, pct, public_page, release_line,
    unit_name,
};
use crate::error::AppError;
use crate::i18n::Msg;
use crate::publish::release;
use crate::web::AppState;
use crate::web::lang::page_lang;
use crate::web::view::unit_kind_label;

pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PublicQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let kind = q
        .kind
        .clone()
        .filter(|k| !k.trim().is_empty())
        .unwrap_or_else(|| "department".into());
    if !crate::units::UNIT_KINDS.contains(&kind.as_str()) {
        return Err(AppError::field(
            "kind",
            Msg::new("Loại đơn vị không hợp lệ.", "Unknown unit kind."),
        ));
    }
    let id = q.release_id();
    let shown = state
        .with_read_conn(move |conn| release::shown(conn, id.as_deref()))
        .await?;
    let Some(doc) = shown else {
        return Ok(nothing_published(&req, lang));
    };
    let ranking = doc.rankings.iter().find(|x| x.kind == kind);
    let release_param = q
        .release_id()
        .map(|id| format!("&release={id}"))
        .unwrap_or_default();
    let body = html! {
        (release_line(lang, &doc))
        nav aria-label=(lang.pick("Cấp đơn vị", "Unit level")) {
            p { @for k in doc.rankings.iter().map(|x| x.kind.as_str()) {
                @if k == kind { strong aria-current="page" { (unit_kind_label(k, lang)) } } @else { a href=(href(lang, &format!("/public/ranking?kind={k}{release_param}"))) { (unit_kind_label(k, lang)) } }
                " "
            } }
        }
        p { (lang.pick(
            "Hai đơn vị chỉ được xếp trên dưới khi khoảng tin cậy 95 % của chúng không chồng lên nhau. Đơn vị có khoảng chồng lên nhau có chung một khoảng thứ hạng (ví dụ 3–5): số liệu không cho phép phân biệt chúng. Đơn vị chưa đủ cỡ mẫu được liệt kê cuối bảng, không xếp hạng.",
            "Two units are ordered only when their 95 % intervals do not overlap. Units whose intervals overlap share a rank range (e.g. 3–5): the data cannot tell them apart. Units below their required sample are listed last, unranked.")) }
        @match ranking {
            None => p { (lang.pick("Không có đơn vị nào ở cấp này.", "No units at this level.")) },
            Some(ranking) => table #public-ranking {
                caption { (unit_kind_label(&kind, lang)) " · " (doc.release.period) }
                thead { tr {
                    th scope="col" { (lang.pick("Hạng", "Rank")) }
                    th scope="col" { (lang.pick("Đơn vị", "Unit")) }
                    th scope="col" { (lang.pick("Chỉ số", "Index")) }
                    th scope="col" { (lang.pick("KTC 95 %", "95 % CI")) }
                    th scope="col" { "n" }
                } }
                tbody { @for row in &ranking.rows {
                    @let unit = doc.unit(&row.unit_code);
                    tr class=[(!row.sufficient).then_some("unranked")] {
                        td { (row.rank_label()) @if row.tied { " " span.muted { (lang.pick("(ngang)", "(tied)")) } } }
                        th scope="row" { a href=(href(lang, &format!("/public/units/{}", row.unit_code))) {
                            (unit.map(|u| unit_name(lang, &u.name_vi, &u.name_en)).unwrap_or(&row.unit_code)) } }
                        td { (pct(&row.index)) }
                        td { (interval(&row.index)) }
                        td { (row.index.n) }
                    }
                } }
            },
        }
        (method_note(lang, &doc))
    };
    Ok(public_page(
        &req,
        lang,
        lang.pick("Xếp hạng đơn vị", "Unit ranking"),
        body,
    ))
}
