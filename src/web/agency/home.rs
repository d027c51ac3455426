//! `GET /agency`: an agency's home. Its units at a glance for one period, what changed
//! significantly since the previous period, its weakest items and its open and overdue cases;
//! one service call ([`crate::report::agency_home::agency_home`]) and the rendering.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use crate::error::AppError;
use crate::i18n::Lang;
use crate::i18n::format as fmt;
use crate::report::agency_home::{AgencyHome, UnitGlance};
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::staff_page;
use crate::web::view::{figure_text, period_picker, unit_kind_label};

#[derive(Deserialize)]
pub struct HomeQuery {
    period: Option<String>,
}

pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    query: web::Query<HomeQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let (home, today) =
        crate::report::queries::agency_home(&state, &user.actor(), query.into_inner().period)
            .await?;
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/agency",
            lang.pick("Đơn vị của tôi", "My units"),
            render(lang, &home, today),
        ),
    ))
}

fn index_of(g: &UnitGlance) -> Option<&crate::report::figures::Figure> {
    g.report
        .as_ref()
        .and_then(|r| r.sipas.as_ref())
        .map(|s| &s.index)
}

fn render(lang: Lang, h: &AgencyHome, today: chrono::NaiveDate) -> Markup {
    let label = h.period.label();
    let q = format!("?period={label}");
    html! {
        @if let Some(root) = &h.root { p.meta { strong { (root.name(lang)) } } }
        (period_picker(lang, "/agency", &h.period))
        p.muted { (lang.pick("Kỳ đang xem: ", "Period shown: ")) strong #home-period { (label) }
            " (" (fmt::date(lang, h.period.from)) " – " (fmt::date(lang, h.period.to)) ")" }
        section aria-labelledby="h-units" {
            h2 #h-units { (lang.pick("Các đơn vị", "Units at a glance")) }
            p.muted { (lang.pick(
                "Các đơn vị thuộc phạm vi của tài khoản. Chọn “Báo cáo” để xem chỉ số hài lòng của đơn vị.",
                "The units within this account's scope. Choose “Report” to see a unit's satisfaction index.")) }
            table #units {
                thead { tr {
                    th { (lang.pick("Mã", "Code")) } th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Loại", "Kind")) }
                    th { (lang.pick("Chỉ số SIPAS (KTC 95 %)", "SIPAS index (95 % CI)")) }
                    th { (lang.pick("Cỡ mẫu", "Sample")) }
                    th { (lang.pick("Hồ sơ đã đăng ký", "Registered dossiers")) } th { (lang.pick("Phiếu đã trả lời", "Surveys answered")) } th { (lang.pick("Báo cáo", "Report")) }
                } }
                tbody { @for g in &h.units { @let u = &g.unit; tr {
                    td { a href=(format!("/agency/units/{}", u.id)) { (u.code) } }
                    td { (u.name(lang)) @if let Some(end) = u.valid_to { " " span.muted { "(" (lang.pick("đã ngừng", "closed")) " " (fmt::date(lang, end)) ")" } } }
                    td { (unit_kind_label(&u.kind, lang)) }
                    td { @match index_of(g) { Some(f) => (figure_text(lang, f)), None => "—" } }
                    td { @match &g.report {
                        Some(r) if r.sample.population > 0 => {
                            (fmt::count(lang, r.sample.achieved)) " / " (fmt::count(lang, r.sample.required))
                            @if !r.sample.sufficient { " " span.flag { (lang.pick("chưa đạt", "below")) } }
                        }
                        _ => "—",
                    } }
                    td { (g.dossiers) }
                    td { (g.answered) }
                    td { a href=(format!("/reports/units/{}{q}", u.id)) aria-label=(format!("{} {}", lang.pick("Báo cáo", "Report"), u.code)) { (lang.pick("Báo cáo", "Report")) } }
                } } }
            }
        }
        section aria-labelledby="h-changes" {
            h2 #h-changes { (lang.pick("Thay đổi so với kỳ trước", "Changes since the previous period")) }
            @if h.changes.is_empty() {
                p #changes-none { (lang.pick(
                    "Không đơn vị nào thay đổi có ý nghĩa thống kê so với kỳ trước.",
                    "No unit changed significantly since the previous period.")) }
            } @else {
                ul #changes { @for g in &h.changes {
                    @if let Some(c) = g.report.as_ref().and_then(|r| r.change.as_ref()) { li {
                        a href=(format!("/reports/units/{}{q}", g.unit.id)) { (g.unit.name(lang)) } ": "
                        @if let Some(d) = c.difference {
                            strong class=(if d < 0.0 { "flag" } else { "up" }) { (fmt::signed(lang, d, 1)) (lang.pick(" điểm", " points")) }
                        }
                        " " (lang.pick("so với ", "against ")) (c.previous_period)
                        " (" (fmt::percent(lang, c.previous.value)) " → " (fmt::percent(lang, index_of(g).and_then(|f| f.value))) ")"
                    } }
                } }
            }
            p.muted { (lang.pick(
                "Chỉ liệt kê thay đổi có ý nghĩa thống kê (kiểm định ở mức 5 %), như trong báo cáo đơn vị.",
                "Only statistically significant changes (tested at 5 %), as in the unit report.")) }
        }
        section aria-labelledby="h-items" {
            h2 #h-items { (lang.pick("Các tiêu chí thấp nhất", "Weakest items")) }
            @if h.weakest_items.is_empty() {
                p.muted { (lang.pick("Chưa đủ số liệu.", "Not enough data yet.")) }
            } @else {
                table #weakest-items {
                    thead { tr { th { (lang.pick("Tiêu chí", "Item")) } th { (lang.pick("Tỷ lệ hài lòng", "Satisfied")) } th { "n" } } }
                    tbody { @for i in &h.weakest_items { tr {
                        td { (i.code) " " (match lang { Lang::Vi => &i.text_vi, Lang::En => &i.text_en }) }
                        td { (figure_text(lang, &i.satisfied)) }
                        td { (fmt::count(lang, i.satisfied.n)) }
                    } } }
                }
            }
        }
        section aria-labelledby="h-cases" {
            h2 #h-cases { (lang.pick("Phản hồi chưa hài lòng", "Bad-rating cases")) }
            p #case-counts { (lang.pick("Đang mở: ", "Open: ")) (h.open_cases.len()) " · " (lang.pick("Quá hạn: ", "Overdue: "))
                @if h.overdue_cases > 0 { strong.err { (h.overdue_cases) } } @else { "0" } }
            @if !h.open_cases.is_empty() {
                table #open-cases {
                    thead { tr { th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Hạn xử lý", "Due")) } th { (lang.pick("Mức đánh giá", "Rating")) } th { (lang.pick("Tình trạng", "State")) } } }
                    tbody { @for c in h.open_cases.iter().take(15) { tr {
                        td { a href=(format!("/cases/{}", c.id)) { (h.units.iter().find(|g| g.unit.id == c.unit_id).map(|g| g.unit.name(lang)).unwrap_or("—")) } }
                        td { (fmt::date(lang, c.due_on)) }
                        td { (c.overall_level) "/5" }
                        td { @if c.overdue(today) { strong.err { (lang.pick("Quá hạn", "Overdue")) } } @else { (lang.pick("Trong hạn", "On time")) } }
                    } } }
                }
            }
            p { a href="/cases" { (lang.pick("Tất cả các trường hợp →", "All cases →")) } }
        }
    }
}
