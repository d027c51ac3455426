//! Report pages, their JSON and CSV: the agency dashboard, the printable report, the province
//! ranking, and the response-level export for administrators.
//!
//! Agencies see their own unit and the units below it; any other unit is "not found".

pub mod integrity;
pub mod response_export;

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use super::AppState;
use super::access::CurrentUser;
use super::layout::{html_response, page};
use super::staff::staff_page;
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::report::figures::{Figure, FormFigures};
use crate::report::period::Period;
use crate::report::queries::{self, Ranking, UnitReportPage};
use crate::report::{RankingRow, UnitReport, charts, export};
use crate::web::lang::page_lang;
use crate::web::view::{ci, pct, unit_kind_label};

#[derive(Deserialize, Default, Clone)]
pub struct ReportQuery {
    period: Option<String>,
    channel: Option<String>,
    respondent_type: Option<String>,
    procedure: Option<String>,
    kind: Option<String>,
    /// `include`: also count responses held for review.
    held: Option<String>,
}

impl ReportQuery {
    /// The typed query of the report use cases.
    fn parsed(&self) -> AppResult<queries::ReportQuery> {
        queries::ReportQuery::parse(
            self.period.as_deref(),
            self.channel.as_deref(),
            self.respondent_type.as_deref(),
            self.procedure.as_deref(),
            self.held.as_deref(),
        )
    }

    fn ranking(&self) -> AppResult<queries::RankingQuery> {
        queries::RankingQuery::parse(self.period.as_deref(), self.kind.as_deref())
    }
}

/// Loads the report of a unit the user may read (404 for others).
async fn load_report(
    state: &AppState,
    user: &CurrentUser,
    unit_id: String,
    q: &ReportQuery,
) -> AppResult<UnitReportPage> {
    queries::unit_report(state, &user.actor(), unit_id, q.parsed()?).await
}

fn filter_form(
    lang: Lang,
    action: &str,
    q: &ReportQuery,
    period: &str,
    procedures: &[crate::procedures::Procedure],
) -> Markup {
    let chosen = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    html! {
        form.search method="get" action=(action) {
            label for="period" { (lang.pick("Kỳ", "Period")) }
            input #period type="text" name="period" value=(period) size="12";
            label for="channel" { (lang.pick("Kênh", "Channel")) }
            select #channel name="channel" {
                option value="" { (lang.pick("Tất cả", "All")) }
                option value="counter" selected[chosen(&q.channel, "counter")] { (lang.pick("Tại quầy (điện tử)", "Counter e-survey")) }
                option value="independent" selected[chosen(&q.channel, "independent")] { (lang.pick("Độc lập (phiếu giấy)", "Independent (paper)")) }
                @for c in crate::survey::channel::Channel::ALL.iter().filter(|c| **c != crate::survey::channel::Channel::Group) {
                    option value=(c.code()) selected[chosen(&q.channel, c.code())] { (lang.pick(c.label().0, c.label().1)) }
                }
            }
            label for="respondent_type" { (lang.pick("Người trả lời", "Respondent")) }
            select #respondent_type name="respondent_type" {
                option value="" { (lang.pick("Tất cả", "All")) }
                option value="individual" selected[chosen(&q.respondent_type, "individual")] { (lang.pick("Cá nhân", "Individuals")) }
                option value="organisation" selected[chosen(&q.respondent_type, "organisation")] { (lang.pick("Tổ chức", "Organisations")) }
            }
            label for="procedure" { (lang.pick("Thủ tục", "Procedure")) }
            select #procedure name="procedure" {
                option value="" { (lang.pick("Tất cả", "All")) }
                @for p in procedures { option value=(p.code) selected[chosen(&q.procedure, &p.code)] { (p.code) } }
            }
            label for="held" { (lang.pick("Phiếu chờ xem xét", "Responses held for review")) }
            select #held name="held" {
                option value="" { (lang.pick("Không tính", "Left out")) }
                option value="include" selected[chosen(&q.held, "include")] { (lang.pick("Tính cả", "Counted in")) }
            }
            button type="submit" { (lang.pick("Xem", "Show")) }
        }
    }
}

fn sipas_body(
    lang: Lang,
    r: &UnitReport,
    s: &FormFigures,
    suggestions: &[(String, String)],
) -> Markup {
    let name = |vi: &str, en: &str| {
        if lang == Lang::Vi {
            vi.to_string()
        } else {
            en.to_string()
        }
    };
    let element_rows: Vec<(String, &Figure)> = s
        .elements
        .iter()
        .map(|e| {
            (
                format!("{} {}", e.code, name(&e.title_vi, &e.title_en)),
                &e.index,
            )
        })
        .collect();
    let mut items: Vec<_> = s
        .elements
        .iter()
        .flat_map(|e| e.items.iter())
        .filter(|i| i.satisfied.value.is_some())
        .collect();
    items.sort_by(|a, b| {
        a.satisfied
            .value
            .partial_cmp(&b.satisfied.value)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let trend_points: Vec<(String, &Figure)> = r
        .trend
        .iter()
        .map(|t| (t.month.clone(), &t.index))
        .collect();
    html! {
        section.kpi aria-label=(lang.pick("Chỉ số chung", "Overall index")) {
            p.big { span.label { (lang.pick("Chỉ số SIPAS", "SIPAS index")) } strong #sipas-index { (pct(lang, &s.index)) } }
            p { (lang.pick("Khoảng tin cậy 95 %: ", "95 % interval: ")) (ci(lang, &s.index)) " · n = " span #sipas-n { (s.index.n) } }
            @if let Some(c) = &r.change {
                p {
                    (lang.pick("So với ", "Compared with ")) (c.previous_period) ": "
                    @if let Some(d) = c.difference { (crate::i18n::format::signed(lang, d, 1)) (lang.pick(" điểm", " points")) } @else { "—" }
                    @if c.significant { " " strong.flag { (lang.pick("(thay đổi có ý nghĩa thống kê)", "(statistically significant)")) } }
                    @else if c.difference.is_some() { " " span.muted { (lang.pick("(chưa đủ bằng chứng là thay đổi thật)", "(not distinguishable from noise)")) } }
                }
            }
            @if !r.sample.sufficient {
                p.alert role="note" {
                    (lang.pick("Cỡ mẫu chưa đạt: ", "Sample below requirement: ")) (r.sample.achieved) " / " (r.sample.required)
                    (lang.pick(" phiếu cần thiết (N = ", " responses required (N = ")) (r.sample.population) ")."
                }
            } @else {
                p.muted { (lang.pick("Cỡ mẫu: ", "Sample: ")) (r.sample.achieved) " / " (r.sample.required) (lang.pick(" cần thiết", " required")) }
            }
        }
        h2 { (lang.pick("Các yếu tố", "Elements")) }
        (PreEscaped(charts::bars_with_id("", lang, lang.pick("Chỉ số theo yếu tố (%)", "Index by element (%)"), &element_rows)))
        table #elements {
            thead { tr { th { (lang.pick("Yếu tố", "Element")) } th { "%" } th { (lang.pick("KTC 95 %", "95 % CI")) } th { "n" } } }
            tbody { @for e in &s.elements { tr { td { (e.code) " " (name(&e.title_vi, &e.title_en)) } td { (pct(lang, &e.index)) } td { (ci(lang, &e.index)) } td { (e.index.n) } } } }
        }
        h2 { (lang.pick("Các tiêu chí thấp nhất", "Weakest items")) }
        table #weakest {
            thead { tr { th { (lang.pick("Tiêu chí", "Item")) } th { "%" } th { (lang.pick("Điểm TB", "Mean")) } th { "n" } th { (lang.pick("Phân bố 1–5", "Levels 1–5")) } } }
            tbody { @for i in items.iter().take(5) { tr {
                td { (i.code) " " (name(&i.text_vi, &i.text_en)) }
                td { (pct(lang, &i.satisfied)) }
                td { (i.mean.map(|m| format!("{m:.2}")).unwrap_or_default()) }
                td { (i.satisfied.n) }
                td { (i.distribution.as_ref().map(|d| d.iter().map(u64::to_string).collect::<Vec<_>>().join(" · ")).unwrap_or_default()) }
            } } }
        }
        h2 { (lang.pick("Xu hướng 12 tháng", "12-month trend")) }
        (PreEscaped(charts::trend_with_id("", lang, lang.pick("Chỉ số SIPAS theo tháng (%)", "SIPAS index by month (%)"), &trend_points)))
        details { summary { (lang.pick("Số liệu của biểu đồ", "Chart data")) }
            table { tbody { @for t in &r.trend { tr { td { (t.month) } td { (pct(lang, &t.index)) } td { "n = " (t.index.n) } } } } }
        }
        @if let Some(g) = &r.gap {
            h2 { (lang.pick("Tại quầy so với thu thập độc lập", "Counter versus independent collection")) }
            table #channels {
                tr { th { (lang.pick("Khảo sát điện tử tại quầy", "Counter e-survey")) } td { (pct(lang, &g.counter)) } td { (ci(lang, &g.counter)) } td { "n = " (g.counter.n) } }
                tr { th { (lang.pick("Phiếu giấy (bưu điện)", "Paper (post office)")) } td { (pct(lang, &g.independent)) } td { (ci(lang, &g.independent)) } td { "n = " (g.independent.n) } }
            }
            @if g.significant {
                p.alert { (lang.pick("Chênh lệch có ý nghĩa thống kê: ", "Statistically significant gap: ")) (g.difference.map(|d| crate::i18n::format::signed(lang, d, 1)).unwrap_or_default()) (lang.pick(" điểm. Kết quả tại quầy có thể bị thổi phồng.", " points. Counter results may be inflated.")) }
            }
        }
        @for c in s.choices.iter().filter(|c| c.code == "EXPECT") {
            h2 { (lang.pick("Mong đợi cải thiện", "Expected improvements")) }
            table #expectations { tbody { @for (_, vi, en, n) in &c.options { tr { td { (if lang == Lang::Vi { vi } else { en }) } td { (n.map(|n| n.to_string()).unwrap_or_else(|| "—".into())) } } } } }
        }
        @if !suggestions.is_empty() {
            h2 { (lang.pick("Góp ý gần đây", "Recent suggestions")) }
            ul.suggestions { @for (month, text) in suggestions { li { span.muted { (month) } " — " (text) } } }
        }
    }
}

/// Each channel apart (and the one-tap kiosk, in or out of the index as the province set).
fn channels_body(lang: Lang, r: &UnitReport) -> Markup {
    let label = |c: &str| crate::survey::channel::Channel::label_of(c, lang);
    let k = &r.kiosk;
    html! {
        h2 { (lang.pick("Theo kênh", "By channel")) }
        table #by-channel {
            thead { tr { th { (lang.pick("Mẫu phiếu", "Form")) } th { (lang.pick("Kênh", "Channel")) } th { "%" } th { (lang.pick("KTC 95 %", "95 % CI")) } th { "n" } } }
            tbody {
                @for c in &r.channels { tr data-channel=(c.channel) {
                    td { (c.form) } td { (label(&c.channel)) } td { (pct(lang, &c.index)) } td { (ci(lang, &c.index)) } td { (c.index.n) }
                } }
            }
        }
        h2 { (lang.pick("Máy đánh giá một chạm", "One-tap kiosk")) }
        table #kiosk {
            tr { th { (lang.pick("Số lượt chạm", "Taps")) } td #kiosk-taps { (k.taps) } }
            tr { th { (lang.pick("Tỷ lệ hài lòng", "Satisfied")) } td { (crate::i18n::format::percent(lang, k.satisfied_share)) } }
            tr { th { (lang.pick("Phân bố 1–5", "Faces 1–5")) } td { (k.by_face.iter().map(u64::to_string).collect::<Vec<_>>().join(" · ")) } }
            tr { th { (lang.pick("Tỷ trọng trong tổng số ý kiến", "Weight among all answers")) } td { (crate::i18n::format::percent(lang, k.weight)) } }
            tr { th { (lang.pick("Lượt chạm bị từ chối (quá nhanh)", "Taps refused (too fast)")) } td { (k.refused) } }
            tr { th { (lang.pick("Tính vào chỉ số SIPAS", "Counted in the SIPAS index")) } td #kiosk-in-index { (if r.kiosk_in_index { lang.pick("có", "yes") } else { lang.pick("không (báo cáo riêng)", "no (reported apart)") }) } }
        }
    }
}

fn report_body(lang: Lang, r: &UnitReport, suggestions: &[(String, String)]) -> Markup {
    html! {
        @match &r.sipas {
            Some(s) => (sipas_body(lang, r, s, suggestions)),
            None => p { (lang.pick("Chưa có mẫu phiếu SIPAS.", "No SIPAS form is loaded.")) },
        }
        (channels_body(lang, r))
        h2 { (lang.pick("Đánh giá giải quyết hồ sơ (Quyết định 766)", "Dossier handling rate (Decision 766)")) }
        table #dossier-rate {
            tr { th { (lang.pick("Tỷ lệ hài lòng", "Satisfaction rate")) } td #dossier-rate-value { (crate::i18n::format::percent(lang, r.dossier_rate.rate)) } }
            tr { th { (lang.pick("Số hồ sơ", "Dossiers")) } td { (r.dossier_rate.counts.dossiers) } }
            tr { th { (lang.pick("Đánh giá không hài lòng", "Rated unsatisfied")) } td { (r.dossier_rate.counts.rated_unsatisfied) } }
            tr { th { (lang.pick("Trễ hạn", "Completed late")) } td { (r.dossier_rate.counts.late) } }
        }
    }
}

pub async fn unit_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let id = path.into_inner();
    let UnitReportPage {
        report: r,
        suggestions,
        procedures,
    } = load_report(&state, &user, id.clone(), &q).await?;
    let base = format!("/reports/units/{id}");
    let query = req.query_string();
    let body = html! {
        p.muted { (r.unit.code) " · " (lang.pick("Kỳ ", "Period ")) (r.period) " (" (r.from) " → " (r.to) ")" }
        (filter_form(lang, &base, &q, &r.period, &procedures))
        p {
            a href=(format!("{base}/print?{query}")) { (lang.pick("Bản in", "Printable report")) } " · "
            a href=(format!("{base}/export.csv?{query}")) { "CSV" } " · "
            a href=(format!("{base}/export.xlsx?{query}")) { "XLSX" } " · "
            a href=(format!("/api/v1/reports/units/{id}?{query}")) { "JSON" }
        }
        (report_body(lang, &r, &suggestions))
    };
    let title = if lang == Lang::Vi {
        r.unit.name_vi.clone()
    } else {
        r.unit.name_en.clone()
    };
    let nav_path = if user.actor().is_admin() {
        "/reports/ranking"
    } else {
        "/agency"
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(lang, &user, nav_path, &title, body),
    ))
}

pub async fn unit_print(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let UnitReportPage {
        report: r,
        suggestions,
        ..
    } = load_report(&state, &user, path.into_inner(), &q).await?;
    let title = format!(
        "{} — {}",
        if lang == Lang::Vi {
            &r.unit.name_vi
        } else {
            &r.unit.name_en
        },
        r.period
    );
    let body = html! {
        h1 { (lang.pick("Báo cáo chỉ số hài lòng", "Satisfaction report")) }
        p { strong { (if lang == Lang::Vi { &r.unit.name_vi } else { &r.unit.name_en }) } " · " (r.period) " (" (r.from) " → " (r.to) ")" }
        (report_body(lang, &r, &suggestions))
        p.muted { (lang.pick("Tỷ lệ hài lòng = số câu trả lời mức 4–5 ÷ số câu trả lời hợp lệ (không tính “không trả lời”). Ô có ít hơn ", "Satisfaction = answers at levels 4–5 ÷ valid answers (“no answer” excluded). Cells with fewer than ")) (state.settings.report_min_n) (lang.pick(" câu trả lời được ẩn.", " answers are hidden.")) }
    };
    Ok(html_response(
        StatusCode::OK,
        page(lang, &title, None, body),
    ))
}

pub async fn unit_csv(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let r = load_report(&state, &user, path.into_inner(), &q)
        .await?
        .report;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"sipas-{}-{}.csv\"",
                r.unit.code, r.period
            ),
        ))
        .body(export::unit_csv(&r)))
}

pub async fn unit_xlsx(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let r = load_report(&state, &user, path.into_inner(), &q)
        .await?
        .report;
    let bytes = export::to_xlsx(&export::unit_table(&r), "SIPAS")?;
    Ok(xlsx_response(
        bytes,
        &format!("sipas-{}-{}.xlsx", r.unit.code, r.period),
    ))
}

fn xlsx_response(bytes: Vec<u8>, filename: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{filename}\""),
        ))
        .body(bytes)
}

pub async fn unit_json(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let r = load_report(&state, &user, path.into_inner(), &q)
        .await?
        .report;
    Ok(HttpResponse::Ok().json(r))
}

async fn load_ranking(
    state: &AppState,
    q: &ReportQuery,
) -> AppResult<(Period, String, Vec<RankingRow>)> {
    let Ranking { period, kind, rows } = queries::ranking(state, q.ranking()?).await?;
    Ok((period, kind, rows))
}

pub async fn ranking_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let (period, kind, rows) = load_ranking(&state, &q).await?;
    let query = req.query_string();
    let body = html! {
        form.search method="get" action="/reports/ranking" {
            label for="period" { (lang.pick("Kỳ", "Period")) }
            input #period type="text" name="period" value=(period.label()) size="12";
            label for="kind" { (lang.pick("Cấp đơn vị", "Unit level")) }
            select #kind name="kind" { @for k in crate::units::UNIT_KINDS { option value=(k) selected[*k == kind] { (unit_kind_label(k, lang)) } } }
            button type="submit" { (lang.pick("Xem", "Show")) }
        }
        p { a href=(format!("/reports/ranking/export.csv?{query}")) { "CSV" } " · " a href=(format!("/reports/ranking/export.xlsx?{query}")) { "XLSX" } " · " a href=(format!("/api/v1/reports/ranking?{query}")) { "JSON" } }
        p.muted { (lang.pick(
            "Đơn vị chưa đủ cỡ mẫu được liệt kê cuối bảng, không xếp hạng. Chênh lệch = tại quầy trừ phiếu giấy; (!) là chênh lệch có ý nghĩa thống kê.",
            "Units below their required sample are listed last, unranked. Gap = counter minus paper; (!) marks a statistically significant gap.")) }
        table #ranking {
            thead { tr {
                th { (lang.pick("Hạng", "Rank")) } th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Chỉ số", "Index")) } th { (lang.pick("KTC 95 %", "95 % CI")) }
                th { "n" } th { (lang.pick("Cần", "Required")) } th { (lang.pick("Tỷ lệ 766", "766 rate")) } th { (lang.pick("Chênh lệch", "Gap")) }
            } }
            tbody { @for r in &rows { tr class=[(!r.sample.sufficient).then_some("unranked")] {
                td { @if let Some(rank) = r.rank { (rank) } @else { span title=(lang.pick("Chưa đủ cỡ mẫu", "Sample too small")) { "—" } } }
                td { a href=(format!("/reports/units/{}?period={}", r.unit.id, period.label())) { (r.unit.code) } " " (if lang == Lang::Vi { &r.unit.name_vi } else { &r.unit.name_en }) }
                td { (pct(lang, &r.index)) }
                td { (ci(lang, &r.index)) }
                td { (r.sample.achieved) }
                td { (r.sample.required) @if !r.sample.sufficient { " " strong.flag { (lang.pick("chưa đủ", "short")) } } }
                td { (crate::i18n::format::percent(lang, r.dossier_rate)) }
                td { (r.gap.map(|g| format!("{g:+.1}")).unwrap_or_else(|| "—".into())) @if r.gap_significant { " (!)" } }
            } } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/reports/ranking",
            lang.pick("Xếp hạng đơn vị", "Unit ranking"),
            body,
        ),
    ))
}

pub async fn ranking_json(
    state: web::Data<AppState>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let (period, kind, rows) = load_ranking(&state, &q).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "period": period.label(), "from": period.from, "to": period.to, "kind": kind, "rows": rows })))
}

pub async fn ranking_xlsx(
    state: web::Data<AppState>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let (period, kind, rows) = load_ranking(&state, &q).await?;
    let bytes = export::to_xlsx(&export::ranking_table(&rows, &period.label()), "Ranking")?;
    Ok(xlsx_response(
        bytes,
        &format!("sipas-ranking-{kind}-{}.xlsx", period.label()),
    ))
}

pub async fn ranking_csv(
    state: web::Data<AppState>,
    q: web::Query<ReportQuery>,
) -> Result<HttpResponse, AppError> {
    let (period, kind, rows) = load_ranking(&state, &q).await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"sipas-ranking-{kind}-{}.csv\"",
                period.label()
            ),
        ))
        .body(export::ranking_csv(&rows, &period.label())))
}
