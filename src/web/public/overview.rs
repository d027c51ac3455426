//! `/public`: the province overview of the newest release.

use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::{
    PublicQuery, href, interval, method_note, nothing_published, pct, public_page, release_line,
    unit_name,
};
use crate::error::AppError;
use crate::publish::release;
use crate::web::AppState;
use crate::web::lang::page_lang;
use crate::web::view::unit_kind_label;

pub async fn overview(
    state: web::Data<AppState>,
    req: HttpRequest,
    q: web::Query<PublicQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let id = q.release_id();
    let shown = state
        .with_read_conn(move |conn| release::shown(conn, id.as_deref()))
        .await?;
    let Some(doc) = shown else {
        return Ok(nothing_published(&req, lang));
    };
    let province = doc.units.iter().find(|u| u.kind == "province");
    let body = html! {
        (release_line(lang, &doc))
        @if let Some(p) = province {
            section.kpi aria-labelledby="province-index" {
                h2 #province-index { (unit_name(lang, &p.name_vi, &p.name_en)) }
                p.big { span.label { (lang.pick("Chỉ số SIPAS", "SIPAS index")) } strong { (pct(&p.index)) } }
                p { (lang.pick("Khoảng tin cậy 95 %: ", "95 % interval: ")) (interval(&p.index)) " · n = " (p.index.n) }
                p { (lang.pick("Tỷ lệ hài lòng theo Quyết định 766: ", "Decision 766 rate: "))
                    (p.dossier_rate.rate.map(|v| format!("{v:.1} %")).unwrap_or_else(|| "—".into()))
                    " (" (p.dossier_rate.dossiers) (lang.pick(" hồ sơ)", " dossiers)")) }
                p { a href=(href(lang, &format!("/public/units/{}", p.code))) { (lang.pick("Chi tiết của tỉnh", "Province details")) } }
            }
        }
        h2 { (lang.pick("Kết quả theo đơn vị", "Results by unit")) }
        @for kind in crate::units::UNIT_KINDS.iter().filter(|k| **k != "province") {
            @let units: Vec<_> = doc.units.iter().filter(|u| u.kind == *kind).collect();
            @if !units.is_empty() {
                table {
                    caption { (unit_kind_label(kind, lang)) " · " a href=(href(lang, &format!("/public/ranking?kind={kind}"))) { (lang.pick("xếp hạng", "ranking")) } }
                    thead { tr { th scope="col" { (lang.pick("Đơn vị", "Unit")) } th scope="col" { (lang.pick("Chỉ số", "Index")) } th scope="col" { "n" } } }
                    tbody { @for u in units { tr {
                        th scope="row" { a href=(href(lang, &format!("/public/units/{}", u.code))) { (unit_name(lang, &u.name_vi, &u.name_en)) } }
                        td { (pct(&u.index)) }
                        td { (u.index.n) }
                    } } }
                }
            }
        }
        (method_note(lang, &doc))
        p { a href=(href(lang, "/public/releases")) { (lang.pick("Tải dữ liệu (JSON, CSV) và các đợt công bố", "Download the data (JSON, CSV) and all releases")) } }
    };
    Ok(public_page(
        &req,
        lang,
        lang.pick("Kết quả khảo sát sự hài lòng", "Satisfaction results"),
        body,
    ))
}
