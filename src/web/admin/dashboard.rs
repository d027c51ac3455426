//! `GET /admin`: the province dashboard, the administrator's landing page. One service call
//! ([`crate::report::overview::province_overview`]) and the rendering; every block links to the
//! page with the details.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use crate::error::AppError;
use crate::i18n::Lang;
use crate::i18n::format as fmt;
use crate::report::charts;
use crate::report::figures::Figure;
use crate::report::overview::{ProvinceOverview, spread};
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::staff_page;
use crate::web::view::{figure_text, period_picker};

#[derive(Deserialize)]
pub struct DashboardQuery {
    period: Option<String>,
}

/// The province's local offset, parsed once at start-up (see `policies`).
pub(crate) fn offset(state: &AppState) -> chrono::FixedOffset {
    state.policies.utc_offset
}

pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    query: web::Query<DashboardQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let offset = offset(&state);
    let overview =
        crate::report::queries::province_overview(&state, query.into_inner().period).await?;
    let body = render(lang, &overview, offset);
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/admin",
            lang.pick("Tổng quan tỉnh", "Province overview"),
            body,
        ),
    ))
}

fn unit_name<'a>(lang: Lang, vi: &'a str, en: &'a str) -> &'a str {
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
}

fn render(lang: Lang, o: &ProvinceOverview, offset: chrono::FixedOffset) -> Markup {
    let label = o.period.label();
    let q = format!("?period={label}");
    let report_href = |id: &str| format!("/reports/units/{id}{q}");
    html! {
        (period_picker(lang, "/admin", &o.period))
        p.muted { (lang.pick("Kỳ đang xem: ", "Period shown: ")) strong #dashboard-period { (label) }
            " (" (fmt::date(lang, o.period.from)) " – " (fmt::date(lang, o.period.to)) ")" }
        (summary_cards(lang, o, &q))
        (province_block(lang, o, &q))
        section aria-labelledby="h-spread" {
            h2 #h-spread { (lang.pick("Phân bố các đơn vị", "How units are spread")) }
            (spread_block(lang, o))
        }
        section aria-labelledby="h-weak-units" {
            h2 #h-weak-units { (lang.pick("Các đơn vị thấp nhất", "Weakest units")) }
            @if o.weakest_units.is_empty() {
                p.muted { (lang.pick("Chưa có đơn vị nào đủ số phiếu trong kỳ.", "No unit has enough responses in this period.")) }
            } @else {
                table #weakest-units {
                    thead { tr { th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Chỉ số (KTC 95 %)", "Index (95 % CI)")) } th { "n" } } }
                    tbody { @for r in &o.weakest_units { tr {
                        td { a href=(report_href(&r.unit.id)) { (unit_name(lang, &r.unit.name_vi, &r.unit.name_en)) } }
                        td { (figure_text(lang, &r.index)) }
                        td { (fmt::count(lang, r.index.n)) }
                    } } }
                }
            }
            p { a href=(format!("/reports/ranking{q}")) { (lang.pick("Xếp hạng đầy đủ →", "Full ranking →")) } }
        }
        section aria-labelledby="h-weak-items" {
            h2 #h-weak-items { (lang.pick("Các tiêu chí thấp nhất của tỉnh", "The province's weakest items")) }
            @if o.weakest_items.is_empty() {
                p.muted { (lang.pick("Chưa đủ số liệu.", "Not enough data yet.")) }
            } @else {
                table #weakest-items {
                    thead { tr { th { (lang.pick("Tiêu chí", "Item")) } th { (lang.pick("Tỷ lệ hài lòng", "Satisfied")) } th { "n" } } }
                    tbody { @for i in &o.weakest_items { tr {
                        td { (i.code) " " (unit_name(lang, &i.text_vi, &i.text_en)) }
                        td { (figure_text(lang, &i.satisfied)) }
                        td { (fmt::count(lang, i.satisfied.n)) }
                    } } }
                }
                @if let Some(p) = &o.province {
                    p { a href=(report_href(&p.unit.id)) { (lang.pick("Báo cáo của tỉnh →", "The province's report →")) } }
                }
            }
        }
        section aria-labelledby="h-sample" {
            h2 #h-sample { (lang.pick("Đơn vị chưa đạt cỡ mẫu", "Units below their required sample")) }
            @if o.below_sample.is_empty() {
                p #below-sample-none { (lang.pick("Mọi đơn vị có hồ sơ đều đạt cỡ mẫu.", "Every unit with dossiers has its required sample.")) }
            } @else {
                table #below-sample {
                    thead { tr { th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Đã có", "Achieved")) } th { (lang.pick("Cần", "Required")) } th { (lang.pick("Hồ sơ (N)", "Dossiers (N)")) } } }
                    tbody { @for r in &o.below_sample { tr {
                        td { a href=(report_href(&r.unit.id)) { (unit_name(lang, &r.unit.name_vi, &r.unit.name_en)) } }
                        td { (fmt::count(lang, r.sample.achieved)) }
                        td { (fmt::count(lang, r.sample.required)) }
                        td { (fmt::count(lang, r.sample.population)) }
                    } } }
                }
            }
        }
        section aria-labelledby="h-paper" {
            h2 #h-paper { (lang.pick("Tiến độ thu phiếu giấy", "Paper collection progress")) }
            (paper_block(lang, o))
        }
        section aria-labelledby="h-flagged" {
            h2 #h-flagged { (lang.pick("Đơn vị có dấu hiệu thổi phồng kết quả", "Units flagged by the integrity signals")) }
            @if o.flagged.is_empty() {
                p #flagged-none { (lang.pick("Không đơn vị nào bị gắn cờ trong kỳ.", "No unit is flagged in this period.")) }
            } @else {
                ul #flagged-units { @for u in &o.flagged { li {
                    a href=(format!("/admin/integrity/units/{}{q}", u.unit.id)) { (unit_name(lang, &u.unit.name_vi, &u.unit.name_en)) }
                    " — "
                    (u.flags().iter().map(|f| crate::integrity::units::flag_title(f, lang)).collect::<Vec<_>>().join(", "))
                } } }
            }
            p { a href=(format!("/admin/integrity{q}")) { (lang.pick("Bảng độ tin cậy →", "Integrity panel →")) } }
        }
        section aria-labelledby="h-cases" {
            h2 #h-cases { (lang.pick("Phản hồi chưa hài lòng quá hạn xử lý", "Overdue bad-rating cases")) }
            p #overdue-cases {
                (lang.pick("Quá hạn: ", "Overdue: ")) @if o.overdue.is_empty() { "0" } @else { strong.err { (o.overdue.len()) } }
                " · " (lang.pick("Đang mở: ", "Open: ")) (o.open_cases)
            }
            @if !o.overdue.is_empty() {
                table #overdue-list {
                    thead { tr { th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Hạn xử lý", "Due")) } th { (lang.pick("Trễ (ngày)", "Days late")) } th { (lang.pick("Mức đánh giá", "Rating")) } } }
                    tbody { @for c in o.overdue.iter().take(10) { tr {
                        td { a href=(format!("/cases/{}", c.case.id)) { (unit_name(lang, &c.unit_vi, &c.unit_en)) } }
                        td { (fmt::date(lang, c.case.due_on)) }
                        td { (c.days_late) }
                        td { (c.case.overall_level) "/5" }
                    } } }
                }
            }
            p { a href="/cases" { (lang.pick("Tất cả các trường hợp →", "All cases →")) } }
        }
        section aria-labelledby="h-mail" {
            h2 #h-mail { (lang.pick("Thư mời không gửi được", "Stuck mail")) }
            p #stuck-mail {
                (lang.pick("Thư đã ngừng gửi lại: ", "Messages given up on: "))
                @if o.stuck_mail > 0 { strong.err { (o.stuck_mail) } } @else { "0" }
            }
            @if !o.stuck_examples.is_empty() {
                table {
                    thead { tr { th { (lang.pick("Đơn vị", "Unit")) } th { (fmt::local_time_heading(lang, offset)) } th { (lang.pick("Lần thử", "Attempts")) } } }
                    tbody { @for m in &o.stuck_examples { tr {
                        td { (m.unit_code) }
                        td { (fmt::date(lang, (m.due_at + offset).date())) " " ((m.due_at + offset).format("%H:%M")) }
                        td { (m.attempts) }
                    } } }
                }
            }
            p { a href="/admin/outbox?status=failed" { (lang.pick("Hộp thư đi →", "Outbox →")) } }
        }
        section aria-labelledby="h-system" {
            h2 #h-system { (lang.pick("Số liệu hệ thống", "System counts")) }
            (totals_table(lang, o))
        }
    }
}

/// The answers to the first questions, one card each, each a link to its details.
fn summary_cards(lang: Lang, o: &ProvinceOverview, q: &str) -> Markup {
    let index = o
        .province
        .as_ref()
        .and_then(|p| p.sipas.as_ref())
        .and_then(|s| s.index.value);
    let province_href = o
        .province
        .as_ref()
        .map(|p| format!("/reports/units/{}{q}", p.unit.id))
        .unwrap_or_else(|| "/reports/ranking".into());
    let verified =
        (o.paper.issued > 0).then(|| o.paper.verified as f64 * 100.0 / o.paper.issued as f64);
    html! {
        ul.cards #summary {
            li { a href=(province_href) { (lang.pick("Chỉ số SIPAS của tỉnh", "Province SIPAS index")) strong { (fmt::percent(lang, index)) } } }
            li { a href="#h-weak-units" { (lang.pick("Đơn vị thấp nhất", "Weakest unit"))
                strong.small { (o.weakest_units.first().map(|r| unit_name(lang, &r.unit.name_vi, &r.unit.name_en)).unwrap_or("—")) } } }
            li { a href="#h-sample" { (lang.pick("Chưa đạt cỡ mẫu", "Below required sample")) strong { (o.below_sample.len()) } } }
            li { a href=(format!("/admin/integrity{q}")) { (lang.pick("Đơn vị bị gắn cờ", "Units flagged")) strong { (o.flagged.len()) } } }
            li { a href="/cases" { (lang.pick("Phản hồi quá hạn xử lý", "Overdue cases")) strong { (o.overdue.len()) } } }
            li { a href="/paper/batches" { (lang.pick("Phiếu giấy đã kiểm tra", "Paper forms verified")) strong { (fmt::percent(lang, verified)) } } }
            li { a href="/admin/outbox?status=failed" { (lang.pick("Thư không gửi được", "Stuck mail")) strong { (o.stuck_mail) } } }
        }
    }
}

fn province_block(lang: Lang, o: &ProvinceOverview, q: &str) -> Markup {
    let Some(p) = &o.province else {
        return html! { p.muted { (lang.pick("Chưa có đơn vị gốc của tỉnh.", "No province unit yet.")) } };
    };
    let Some(sipas) = &p.sipas else {
        return html! { p.muted { (lang.pick("Chưa có mẫu phiếu SIPAS.", "No SIPAS form is loaded.")) } };
    };
    let trend: Vec<(String, &Figure)> = p
        .trend
        .iter()
        .map(|t| (fmt::month_label(lang, &t.month), &t.index))
        .collect();
    let elements: Vec<(String, &Figure)> = sipas
        .elements
        .iter()
        .map(|e| {
            (
                format!("{} {}", e.code, unit_name(lang, &e.title_vi, &e.title_en)),
                &e.index,
            )
        })
        .collect();
    html! {
        section.kpi aria-labelledby="h-province" {
            h2 #h-province { (lang.pick("Chỉ số SIPAS của tỉnh", "The province's SIPAS index")) }
            p.big { span.label { (unit_name(lang, &p.unit.name_vi, &p.unit.name_en)) } strong #province-index { (fmt::percent(lang, sipas.index.value)) } }
            p { (lang.pick("Khoảng tin cậy 95 %: ", "95 % interval: ")) span #province-ci { (fmt::interval(lang, sipas.index.ci_low, sipas.index.ci_high)) }
                " · n = " (fmt::count(lang, sipas.index.n)) }
            @if let Some(c) = &p.change {
                p #province-change {
                    (lang.pick("So với ", "Compared with ")) (c.previous_period) ": "
                    @if let Some(d) = c.difference { (fmt::signed(lang, d, 1)) (lang.pick(" điểm", " points")) } @else { "—" }
                    @if c.significant { " " strong.flag { (lang.pick("(thay đổi có ý nghĩa thống kê)", "(statistically significant)")) } }
                    @else if c.difference.is_some() { " " span.muted { (lang.pick("(chưa đủ bằng chứng là thay đổi thật)", "(not distinguishable from noise)")) } }
                }
            }
            p { a href=(format!("/reports/units/{}{q}", p.unit.id)) { (lang.pick("Báo cáo chi tiết của tỉnh →", "The province's full report →")) } }
        }
        h3 { (lang.pick("Xu hướng 12 tháng", "12-month trend")) }
        (PreEscaped(charts::trend_with_id("trend-", lang, lang.pick("Chỉ số SIPAS của tỉnh theo tháng (%)", "Province SIPAS index by month (%)"), &trend)))
        details { summary { (lang.pick("Số liệu của biểu đồ xu hướng", "Trend chart data")) }
            table { tbody { @for t in &p.trend { tr { td { (fmt::month_label(lang, &t.month)) } td { (fmt::percent(lang, t.index.value)) } td { "n = " (fmt::count(lang, t.index.n)) } } } } }
        }
        h3 { (lang.pick("Các yếu tố", "Elements")) }
        (PreEscaped(charts::bars_with_id("elements-", lang, lang.pick("Chỉ số của tỉnh theo yếu tố (%)", "Province index by element (%)"), &elements)))
        details { summary { (lang.pick("Số liệu của biểu đồ yếu tố", "Element chart data")) }
            table { tbody { @for (label, f) in &elements { tr { td { (label) } td { (figure_text(lang, f)) } } } } }
        }
    }
}

fn spread_block(lang: Lang, o: &ProvinceOverview) -> Markup {
    let buckets = spread(&o.units);
    let with_value = buckets.iter().map(|b| b.2).sum::<usize>();
    if with_value == 0 {
        return html! { p.muted { (lang.pick("Chưa có đơn vị nào có chỉ số trong kỳ.", "No unit has an index in this period.")) } };
    }
    let figures: Vec<Figure> = buckets
        .iter()
        .map(|b| Figure {
            n: b.2 as u64,
            value: Some(b.2 as f64 * 100.0 / with_value as f64),
            ci_low: None,
            ci_high: None,
            se: None,
        })
        .collect();
    let rows: Vec<(String, &Figure)> = buckets
        .iter()
        .zip(&figures)
        .map(|(b, f)| {
            (
                format!(
                    "{}–{} %: {} {}",
                    b.0,
                    b.1,
                    b.2,
                    lang.pick("đơn vị", "units")
                ),
                f,
            )
        })
        .collect();
    html! {
        (PreEscaped(charts::bars_with_id("spread-", lang, lang.pick("Tỷ lệ đơn vị theo mức chỉ số (%)", "Share of units by index band (%)"), &rows)))
        table #spread {
            thead { tr { th { (lang.pick("Mức chỉ số", "Index band")) } th { (lang.pick("Số đơn vị", "Units")) } } }
            tbody { @for b in &buckets { tr { td { (b.0) "–" (b.1) " %" } td { (b.2) } } } }
        }
    }
}

fn paper_block(lang: Lang, o: &ProvinceOverview) -> Markup {
    let c = &o.paper;
    if o.paper_batches == 0 {
        return html! {
            p.muted { (lang.pick("Chưa có lô phiếu giấy nào.", "No paper batch yet.")) }
            p { a href="/admin/samples" { (lang.pick("Chọn mẫu phiếu giấy →", "Draw a paper sample →")) } }
        };
    }
    let share = |n: i64| {
        if c.issued > 0 {
            Some(n as f64 * 100.0 / c.issued as f64)
        } else {
            None
        }
    };
    let steps = [
        (lang.pick("Đã phát", "Issued"), c.issued),
        (lang.pick("Đã giao", "Delivered"), c.delivered),
        (lang.pick("Đã thu về", "Returned"), c.returned),
        (lang.pick("Đã nhập", "Keyed"), c.keyed),
        (lang.pick("Đã kiểm tra", "Verified"), c.verified),
    ];
    html! {
        ol.steps #paper-progress {
            @for (name, n) in steps { li { strong { (name) } ": " (fmt::integer(lang, n)) " (" (fmt::percent(lang, share(n))) ")" } }
        }
        p.muted { (o.paper_batches) (lang.pick(" lô phiếu · tỷ lệ so với số phiếu đã phát.", " batches · shares of the forms issued.")) }
        p { a href="/paper/batches" { (lang.pick("Các lô phiếu →", "Paper batches →")) } }
    }
}

fn totals_table(lang: Lang, o: &ProvinceOverview) -> Markup {
    let labels = [
        (lang.pick("Đơn vị", "Units"), "/admin/units"),
        (
            lang.pick("Thủ tục hành chính", "Procedures"),
            "/admin/procedures",
        ),
        (lang.pick("Tài khoản", "User accounts"), "/admin/users"),
        (
            lang.pick("Hồ sơ đã đăng ký", "Registered transactions"),
            "/reports/ranking",
        ),
        (lang.pick("Phiếu trả lời", "Responses"), "/reports/ranking"),
    ];
    html! {
        table #system-counts {
            @for ((label, href), n) in labels.iter().zip(o.totals) {
                tr { th { a href=(href) { (label) } } td { (fmt::integer(lang, n)) } }
            }
            tr {
                th { a href="/admin/audit" { (lang.pick("Nhật ký thay đổi", "Audit log")) } }
                td {
                    @match &o.chain {
                        Ok(n) => { (lang.pick("Chuỗi toàn vẹn", "Chain intact")) " (" (fmt::integer(lang, *n)) ")" }
                        Err(b) => { strong.err { (lang.pick("Chuỗi bị phá vỡ: ", "Chain broken: ")) (b) } }
                    }
                }
            }
        }
    }
}
