//! A campaign's links: downloaded as CSV or printed, one page per invitee with a QR code per
//! unit to rate.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{PreEscaped, html};
use serde::Deserialize;

use crate::error::AppError;
use crate::groups::{self, manage};
use crate::i18n::Lang;
use crate::report::export::{Cell, to_csv};
use crate::web::AppState;
use crate::web::lang::page_lang;
use crate::web::layout::{html_response, page};

/// `GET /admin/campaigns/{id}/links.csv`: one row per link, with its QR code's address.
pub async fn links_csv(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (campaign, links) = manage::campaign_links(&state, path.into_inner()).await?;
    let header = [
        "invitee",
        "unit",
        "unit_name",
        "link",
        "qr_svg",
        "qr_png",
        "answered",
    ];
    let mut table = vec![
        header
            .iter()
            .map(|h| Cell::Text(h.to_string()))
            .collect::<Vec<_>>(),
    ];
    for l in links {
        let url = state.survey_url(l.token.as_str());
        table.push(vec![
            Cell::Number(l.invitee as f64),
            Cell::Text(l.unit_code),
            Cell::Text(l.unit_name_vi),
            Cell::Text(url.clone()),
            Cell::Text(format!("{url}/qr.svg")),
            Cell::Text(format!("{url}/qr.png")),
            Cell::Text(if l.answered { "yes" } else { "no" }.into()),
        ]);
    }
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"sipas-campaign-links-{}.csv\"",
                campaign.id
            ),
        ))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(to_csv(&table)))
}

#[derive(Deserialize)]
pub struct PrintQuery {
    invitee: Option<i64>,
}

/// `GET /admin/campaigns/{id}/print`: one page per invitee with a QR code per unit to rate
/// (`?invitee=N` prints one invitee's page).
pub async fn links_print(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
    q: web::Query<PrintQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let (campaign, links) = manage::campaign_links(&state, path.into_inner()).await?;
    let base = state.public_base();
    // Per invitee: each link with its URL and inline QR code.
    type Sheet = (i64, Vec<(groups::IssuedLink, String, String)>);
    let mut pages: Vec<Sheet> = Vec::new();
    for l in links {
        if q.invitee.is_some_and(|n| n != l.invitee) {
            continue;
        }
        let url = state.survey_url(l.token.as_str());
        let svg = crate::survey::qr::svg(&crate::survey::qr::qr_text(&base, &url))?;
        // Inline in HTML: drop the XML declaration in front of the <svg> element.
        let svg = svg
            .find("<svg")
            .map(|i| svg[i..].to_string())
            .unwrap_or(svg);
        match pages.last_mut() {
            Some((n, items)) if *n == l.invitee => items.push((l, url, svg)),
            _ => pages.push((l.invitee, vec![(l, url, svg)])),
        }
    }
    let title = campaign.name(lang).to_string();
    let body = html! {
        link rel="stylesheet" href="/static/paper.css";
        @if pages.is_empty() { p { (lang.pick("Không có liên kết nào.", "No links.")) } }
        @for (invitee, items) in &pages {
            section.paper.invitation {
                header.paper-head {
                    div {
                        p.small { (lang.pick("Phiếu mời đánh giá", "Invitation to rate")) }
                        p.serial { (lang.pick("Người được mời số ", "Invitee no. ")) (invitee) }
                        p.small { (title) " · " (campaign.starts_on) " → " (campaign.ends_on) }
                    }
                }
                p { (lang.pick(
                    "Kính mời Ông/Bà đánh giá sự phục vụ của từng cơ quan dưới đây: quét mã QR (hoặc mở liên kết) của cơ quan đó. Mỗi mã chỉ dùng được một lần; câu trả lời không ghi tên người trả lời.",
                    "You are invited to rate the service of each agency below: scan its QR code (or open its link). Each code works once; answers do not record who gave them.")) }
                @for (l, url, svg) in items {
                    div.pq.link {
                        div.qr { (PreEscaped(svg)) }
                        p { strong { (match lang { Lang::Vi => &l.unit_name_vi, Lang::En => &l.unit_name_en }) } " (" (l.unit_code) ")" }
                        p.small { (url) }
                    }
                }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        page(lang, &title, None, body),
    ))
}
