//! `/public/units/{code}`: one unit in a release (elements, weakest items, trend across
//! releases, counter against independent paper), and its embeddable badge.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::html;

use super::{
    PublicQuery, href, interval, method_note, nothing_published, pct, public_page, release_line,
    unit_name,
};
use crate::error::AppError;
use crate::i18n::Msg;
use crate::publish::{open_data, release};
use crate::web::AppState;
use crate::web::lang::page_lang;
use crate::web::view::unit_kind_label;

fn no_unit() -> AppError {
    AppError::NotFound(Msg::new(
        "Đợt công bố này không có đơn vị này.",
        "This release has no such unit.",
    ))
}

pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<PublicQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let code = path.into_inner();
    let id = q.release_id();
    let (shown, history) = state
        .with_read_conn(move |conn| {
            Ok((
                release::shown(conn, id.as_deref())?,
                release::history(conn)?,
            ))
        })
        .await?;
    let Some(doc) = shown else {
        return Ok(nothing_published(&req, lang));
    };
    let u = doc.unit(&code).ok_or_else(no_unit)?;
    let mut weakest: Vec<_> = u
        .elements
        .iter()
        .flat_map(|e| e.items.iter())
        .filter(|i| i.satisfied.value.is_some())
        .collect();
    weakest.sort_by(|a, b| {
        a.satisfied
            .value
            .partial_cmp(&b.satisfied.value)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let trend: Vec<(String, String, u64)> = history
        .iter()
        .filter_map(|d| {
            d.unit(&code)
                .map(|x| (d.release.period.clone(), pct(&x.index), x.index.n))
        })
        .collect();
    let rank = doc.rank_of(&code);
    let body = html! {
        (release_line(lang, &doc))
        p.muted { (u.code) " · " (unit_kind_label(&u.kind, lang)) }
        section.kpi aria-label=(lang.pick("Chỉ số chung", "Overall index")) {
            p.big { span.label { (lang.pick("Chỉ số SIPAS", "SIPAS index")) } strong #public-index { (pct(&u.index)) } }
            p { (lang.pick("Khoảng tin cậy 95 %: ", "95 % interval: ")) (interval(&u.index)) " · n = " (u.index.n) }
            @if let Some((kind, row)) = rank {
                p { (lang.pick("Thứ hạng trong cấp ", "Rank among ")) (unit_kind_label(kind, lang)) ": " strong { (row.rank_label()) }
                    @if row.tied { " " span.muted { (lang.pick("(không phân biệt được với các đơn vị cùng khoảng)", "(cannot be told apart from units in the same range)")) } }
                    @if !row.sufficient { " " span.muted { (lang.pick("(chưa đủ cỡ mẫu, không xếp hạng)", "(sample too small, not ranked)")) } }
                }
            }
            p { (lang.pick("Cỡ mẫu: ", "Sample: ")) (u.sample.achieved) " / " (u.sample.required) (lang.pick(" cần thiết", " required"))
                @if !u.sample.sufficient { " — " strong.flag { (lang.pick("chưa đạt", "not reached")) } } }
            p { (lang.pick("Tỷ lệ hài lòng theo Quyết định 766: ", "Decision 766 rate: "))
                (u.dossier_rate.rate.map(|v| format!("{v:.1} %")).unwrap_or_else(|| "—".into()))
                " (" (u.dossier_rate.dossiers) (lang.pick(" hồ sơ)", " dossiers)")) }
        }
        h2 { (lang.pick("Các yếu tố", "Elements")) }
        table #public-elements {
            thead { tr { th scope="col" { (lang.pick("Yếu tố", "Element")) } th scope="col" { "%" } th scope="col" { (lang.pick("KTC 95 %", "95 % CI")) } th scope="col" { "n" } } }
            tbody { @for e in &u.elements { tr {
                th scope="row" { (e.code) " " (unit_name(lang, &e.title_vi, &e.title_en)) }
                td { (pct(&e.index)) } td { (interval(&e.index)) } td { (e.index.n) }
            } } }
        }
        h2 { (lang.pick("Các tiêu chí thấp nhất", "Weakest items")) }
        @if weakest.is_empty() {
            p { (lang.pick("Chưa đủ câu trả lời để công bố.", "Not enough answers to publish.")) }
        } @else {
            table #public-weakest {
                thead { tr { th scope="col" { (lang.pick("Tiêu chí", "Item")) } th scope="col" { "%" } th scope="col" { "n" } } }
                tbody { @for i in weakest.iter().take(5) { tr {
                    th scope="row" { (i.code) " " (unit_name(lang, &i.text_vi, &i.text_en)) }
                    td { (pct(&i.satisfied)) } td { (i.satisfied.n) }
                } } }
            }
        }
        h2 { (lang.pick("Qua các đợt công bố", "Across releases")) }
        table #public-trend {
            thead { tr { th scope="col" { (lang.pick("Kỳ", "Period")) } th scope="col" { (lang.pick("Chỉ số", "Index")) } th scope="col" { "n" } } }
            tbody { @for (period, value, n) in &trend { tr { th scope="row" { (period) } td { (value) } td { (n) } } } }
        }
        @if let Some(c) = &u.channels {
            h2 { (lang.pick("Tại quầy so với thu thập độc lập", "Counter versus independent collection")) }
            table #public-channels {
                thead { tr { th scope="col" { (lang.pick("Kênh", "Channel")) } th scope="col" { (lang.pick("Chỉ số", "Index")) } th scope="col" { (lang.pick("KTC 95 %", "95 % CI")) } th scope="col" { "n" } } }
                tbody {
                    tr { th scope="row" { (lang.pick("Khảo sát điện tử tại quầy", "Counter e-survey")) } td { (pct(&c.counter)) } td { (interval(&c.counter)) } td { (c.counter.n) } }
                    tr { th scope="row" { (lang.pick("Phiếu giấy (độc lập)", "Paper (independent)")) } td { (pct(&c.independent)) } td { (interval(&c.independent)) } td { (c.independent.n) } }
                }
            }
            @if c.significant {
                p { strong { (lang.pick("Chênh lệch có ý nghĩa thống kê: ", "Statistically significant gap: ")) }
                    (c.difference.map(|d| format!("{d:+.1}")).unwrap_or_default()) (lang.pick(" điểm.", " points.")) }
            }
        }
        (method_note(lang, &doc))
        h2 { (lang.pick("Huy hiệu cho trang web của đơn vị", "Badge for the unit's website")) }
        p { img src=(format!("/public/units/{}/badge.svg", u.code)) alt=(format!("SIPAS {} {}: {}", u.code, doc.release.period, pct(&u.index))); }
        p.muted { (lang.pick("Nhúng bằng: ", "Embed with: ")) code { "<img src=\"" (state.public_base()) "/public/units/" (u.code) "/badge.svg\" alt=\"SIPAS\">" } }
        p { a href=(href(lang, "/public")) { (lang.pick("← Tổng quan", "← Overview")) } }
    };
    Ok(public_page(
        &req,
        lang,
        unit_name(lang, &u.name_vi, &u.name_en),
        body,
    ))
}

/// `/public/units/{code}/badge.svg`: index, n and period of the newest release in force.
pub async fn badge(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let code = path.into_inner();
    let shown = state
        .with_read_conn(|conn| release::shown(conn, None))
        .await?;
    let not_published = || {
        AppError::NotFound(Msg::new(
            "Chưa có kết quả công bố.",
            "Nothing is published yet.",
        ))
    };
    let doc = shown.ok_or_else(not_published)?;
    let u = doc.unit(&code).ok_or_else(no_unit)?;
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"))
        .body(open_data::badge(&u.code, &doc.release.period, &u.index)))
}
