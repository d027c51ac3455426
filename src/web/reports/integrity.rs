//! The integrity panel for the province (`/admin/integrity`): units ranked by the evidence of
//! inflated counter results, the numbers behind every flag, the trend, and the review of held
//! responses; and the cases opened by bad ratings (`/cases`), which agencies follow up.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use maud::{Markup, html};
use serde::Deserialize;

use crate::error::AppResult;
use crate::i18n::Lang;
use crate::integrity::cases::{CaseFile, CaseList, CaseStatus, FollowUp};
use crate::integrity::panel::{self, Panel, UnitHistory};
use crate::integrity::review::Decision;
use crate::integrity::units::{UnitIntegrity, flag_explanation, flag_title};
use crate::integrity::{Signal, cases};
use crate::report::period::Period;
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{csrf_field, staff_page};
use crate::web::view::done;

#[derive(Deserialize)]
pub struct PanelQuery {
    period: Option<String>,
}

fn offset(state: &AppState) -> chrono::FixedOffset {
    state.policies.utc_offset
}

/// A stored UTC time as the province's local time.
fn local_time(state: &AppState, at: chrono::NaiveDateTime) -> String {
    (at + offset(state)).format("%Y-%m-%d %H:%M").to_string()
}

fn pct(lang: Lang, v: Option<f64>) -> String {
    crate::i18n::format::share(lang, v)
}

fn p_text(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.0001 => "< 0.0001".into(),
        Some(p) => format!("{p:.4}"),
        None => "—".into(),
    }
}

fn unit_name(u: &crate::report::UnitRef, lang: Lang) -> &str {
    match lang {
        Lang::Vi => &u.name_vi,
        Lang::En => &u.name_en,
    }
}

fn period_form(lang: Lang, action: &str, period: &Period) -> Markup {
    html! {
        form.filters method="get" action=(action) {
            label for="period" { (lang.pick("Kỳ", "Period")) }
            input #period name="period" value=(period.label());
            button type="submit" { (lang.pick("Xem", "Show")) }
        }
    }
}

/// `GET /admin/integrity`: units most at risk first.
pub async fn panel(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<PanelQuery>,
) -> AppResult<HttpResponse> {
    let lang = page_lang(&req);
    let Panel {
        period,
        units: assessed,
        held,
        overdue_cases: overdue,
    } = panel::panel(&state, q.into_inner().period).await?;
    let flagged = assessed.iter().filter(|u| u.flagged).count();
    let body = html! {
        p { (lang.pick(
            "Các dấu hiệu cho thấy kết quả khảo sát tại quầy có thể bị làm đẹp. Mỗi dấu hiệu được kiểm định chính xác (một phía) so với mức một đơn vị phục vụ trung thực vẫn có; vì mỗi kỳ kiểm định nhiều đơn vị × nhiều dấu hiệu, p được hiệu chỉnh đa kiểm định (Benjamini–Hochberg, q) và chỉ gắn cờ khi q ≤ 1 %, nên dao động ngẫu nhiên hầu như không bao giờ gắn cờ một đơn vị trung thực. Đơn vị được xếp theo mức bằng chứng (tổng −log₁₀ p của các dấu hiệu bị gắn cờ).",
            "Signs that counter survey results may be inflated. Each signal is tested exactly (one-sided) against what honest service still produces; since every period tests many units × several signals, the p-values are adjusted for multiple testing (Benjamini–Hochberg q-values) and a signal is flagged only when q ≤ 1 %, so chance almost never flags an honest unit. Units are ranked by evidence (the sum of −log₁₀ p of their flagged signals).")) }
        (period_form(lang, "/admin/integrity", &period))
        p #integrity-summary {
            (lang.pick("Đơn vị bị gắn cờ: ", "Units flagged: ")) strong { (flagged) } " / " (assessed.len())
            " · " (lang.pick("Phiếu chờ xem xét: ", "Responses held for review: ")) strong { (held) }
            " · " a href="/cases" { (lang.pick("Phản hồi quá hạn xử lý: ", "Overdue cases: ")) strong { (overdue) } }
        }
        table #integrity-units {
            thead { tr {
                th { "#" } th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Bằng chứng", "Evidence")) }
                th { (lang.pick("Dấu hiệu", "Signals")) } th { (lang.pick("q nhỏ nhất", "Smallest q")) } th { (lang.pick("Phiếu tại quầy", "Counter answers")) }
                th { (lang.pick("Chờ xem xét", "Held")) } th { (lang.pick("Phiếu / hồ sơ", "Answers / dossier")) }
                th { (lang.pick("Chênh lệch quầy – giấy", "Counter – paper gap")) }
            } }
            tbody { @for (i, u) in assessed.iter().enumerate() { tr class=[u.flagged.then_some("flagged")] {
                td { (i + 1) }
                td { a href=(format!("/admin/integrity/units/{}?period={}", u.unit.id, period.label())) { (u.unit.code) " " (unit_name(&u.unit, lang)) } }
                td { (crate::i18n::format::decimal(lang, u.evidence, 1)) }
                td { @for f in u.flags() { span.flag title=(flag_explanation(f, lang)) { (flag_title(f, lang)) } " " } }
                td.q { (p_text(u.min_q())) }
                td { (u.screened) }
                td { (u.held) }
                td { (pct(lang, u.issue.rate)) }
                td { (gap_text(lang, u)) }
            } } }
        }
        h2 { (lang.pick("Các dấu hiệu", "The signals")) }
        dl {
            @for s in Signal::ALL { dt { (s.title(lang)) } dd { (s.explanation(lang)) } }
            @for f in ["issue_rate", "gap", "kiosk_burst"] { dt { (flag_title(f, lang)) } dd { (flag_explanation(f, lang)) } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/admin/integrity",
            lang.pick("Độ tin cậy kết quả", "Trustworthy results"),
            body,
        ),
    ))
}

fn gap_text(lang: Lang, u: &UnitIntegrity) -> String {
    match u
        .gap
        .as_ref()
        .and_then(|g| g.difference.map(|d| (d, g.p_value)))
    {
        Some((d, p)) => format!(
            "{} (p = {})",
            crate::i18n::format::signed(lang, d, 1),
            p_text(p)
        ),
        None => "—".into(),
    }
}

/// `GET /admin/integrity/units/{id}`: the numbers behind each flag, the trend, held responses.
pub async fn unit(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<PanelQuery>,
) -> AppResult<HttpResponse> {
    let lang = page_lang(&req);
    let unit_id = path.into_inner();
    let UnitHistory {
        period,
        unit,
        current,
        trend,
        held,
    } = panel::unit_history(&state, unit_id.clone(), q.into_inner().period).await?;
    let back = format!("/admin/integrity/units/{unit_id}?period={}", period.label());
    let body = html! {
        p { a href=(format!("/admin/integrity?period={}", period.label())) { "← " (lang.pick("Tất cả đơn vị", "All units")) } }
        (period_form(lang, &format!("/admin/integrity/units/{unit_id}"), &period))
        @match &current {
            None => { p { (lang.pick("Không có phiếu tại quầy hay hồ sơ trong kỳ này.", "No counter answers or dossiers in this period.")) } }
            Some(u) => {
                p #unit-verdict {
                    @if u.flagged { strong.err { (lang.pick("Bị gắn cờ", "Flagged")) } } @else { (lang.pick("Không bị gắn cờ", "Not flagged")) }
                    " · " (lang.pick("Bằng chứng: ", "Evidence: ")) (crate::i18n::format::decimal(lang, u.evidence, 1))
                }
                table #unit-signals {
                    thead { tr {
                        th { (lang.pick("Dấu hiệu", "Signal")) } th { (lang.pick("Số phiếu", "Answers")) } th { (lang.pick("Tỷ lệ", "Share")) }
                        th { (lang.pick("Mức chấp nhận", "Tolerated")) } th { "p" } th { abbr title=(lang.pick("p đã hiệu chỉnh đa kiểm định (Benjamini–Hochberg) trên toàn bảng của kỳ", "p adjusted for multiple testing (Benjamini–Hochberg) over the whole panel of the period")) { "q" } }
                        th { (lang.pick("Cờ", "Flag")) } th { (lang.pick("Ý nghĩa", "Meaning")) }
                    } }
                    tbody {
                        @for s in &u.shares { tr class=[s.flagged.then_some("flagged")] {
                            td { (flag_title(s.signal, lang)) } td { (s.count) " / " (s.n) } td { (pct(lang, s.share())) }
                            td { (pct(lang, Some(s.baseline))) } td { (p_text(s.p_value)) } td.q { (p_text(s.q_value)) }
                            td { @if s.flagged { "⚑" } } td { (flag_explanation(s.signal, lang)) }
                        } }
                        tr class=[u.issue.flagged.then_some("flagged")] {
                            td { (flag_title("issue_rate", lang)) }
                            td { (u.issue.answers) " / " (u.issue.dossiers) }
                            td { (pct(lang, u.issue.rate)) " [" (pct(lang, u.issue.rate_low)) " – " (pct(lang, u.issue.rate_high)) "]" }
                            td {
                                (lang.pick("Đơn vị cùng cấp: ", "Units of its kind: ")) (pct(lang, u.issue.peer_rate))
                                @if let Some(sd) = u.issue.peer_spread { " ± " (pct(lang, Some(sd))) }
                                " (" (u.issue.peers) (lang.pick(" đơn vị)", " units)"))
                            }
                            td { (p_text(u.issue.p_value)) } td.q { (p_text(u.issue.q_value)) } td { @if u.issue.flagged { "⚑" } }
                            td { (flag_explanation("issue_rate", lang)) }
                        }
                        tr class=[u.gap_flagged.then_some("flagged")] {
                            td { (flag_title("gap", lang)) }
                            td { @if let Some(g) = &u.gap { (g.counter.n) " / " (g.independent.n) } }
                            td { @if let Some(g) = &u.gap {
                                (g.counter.value.map(|v| crate::i18n::format::decimal(lang, v, 1)).unwrap_or("—".into())) " – "
                                (g.independent.value.map(|v| crate::i18n::format::decimal(lang, v, 1)).unwrap_or("—".into()))
                            } }
                            td { "0" } td { (p_text(u.gap_p_value)) } td.q { (p_text(u.gap_q_value)) } td { @if u.gap_flagged { "⚑" } }
                            td { (flag_explanation("gap", lang)) }
                        }
                    }
                }
            }
        }
        h2 { (lang.pick("Diễn biến 6 tháng", "Six-month trend")) }
        table #unit-trend {
            thead { tr { th { (lang.pick("Tháng", "Month")) } th { (lang.pick("Bằng chứng", "Evidence")) } th { (lang.pick("Dấu hiệu", "Signals")) } } }
            tbody { @for (label, u) in &trend { tr {
                td { (label) }
                td { (u.as_ref().map(|u| crate::i18n::format::decimal(lang, u.evidence, 1)).unwrap_or("—".into())) }
                td { @if let Some(u) = u { @for f in u.flags() { (flag_title(f, lang)) "; " } } }
            } } }
        }
        h2 { (lang.pick("Phiếu chờ xem xét", "Responses held for review")) }
        @if held.is_empty() { p { (lang.pick("Không có phiếu nào đang chờ.", "No response is waiting.")) } }
        @else {
            table #held-responses {
                thead { tr {
                    th { (lang.pick("Gửi lúc", "Submitted")) } th { (lang.pick("Kênh", "Channel")) }
                    th { (lang.pick("Giây từ khi cấp", "Seconds after issue")) } th { (lang.pick("Giây trả lời", "Seconds answering")) }
                    th { (lang.pick("Dấu hiệu", "Signals")) } th { (lang.pick("Quyết định", "Decision")) }
                } }
                tbody { @for h in &held { tr {
                    td { (h.submitted_at.format("%Y-%m-%d %H:%M")) } td { (h.channel) }
                    td { (h.seconds_from_issue.map(|s| s.to_string()).unwrap_or_default()) }
                    td { (h.seconds_answering.map(|s| s.to_string()).unwrap_or_default()) }
                    td { @for s in h.signals.split(',').filter(|s| !s.is_empty()) { (flag_title(s, lang)) "; " } }
                    td {
                        form.inline method="post" action=(format!("/admin/integrity/responses/{}", h.response_id)) {
                            (csrf_field(&user))
                            input type="hidden" name="back" value=(back);
                            button type="submit" name="decision" value="accept" { (lang.pick("Chấp nhận", "Accept")) }
                        }
                        form.inline method="post" action=(format!("/admin/integrity/responses/{}", h.response_id)) {
                            (csrf_field(&user))
                            input type="hidden" name="back" value=(back);
                            input name="reason" required placeholder=(lang.pick("Lý do loại", "Reason to reject")) aria-label=(lang.pick("Lý do loại", "Reason to reject"));
                            button type="submit" name="decision" value="reject" { (lang.pick("Loại", "Reject")) }
                        }
                    }
                } } }
            }
        }
    };
    let title = format!("{} — {}", lang.pick("Độ tin cậy", "Integrity"), unit.code);
    Ok(html_response(
        StatusCode::OK,
        staff_page(lang, &user, "/admin/integrity", &title, body),
    ))
}

#[derive(Deserialize)]
pub struct DecisionForm {
    decision: String,
    reason: Option<String>,
    back: Option<String>,
}

/// `POST /admin/integrity/responses/{id}`: accept or reject a held response.
pub async fn decide(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<DecisionForm>,
) -> AppResult<HttpResponse> {
    let decision = Decision::parse(&form.decision, form.reason.as_deref())?;
    panel::review(&state, &user.actor(), path.into_inner(), decision).await?;
    // Only our own pages are redirected to.
    let back = form
        .back
        .clone()
        .filter(|b| b.starts_with("/admin/integrity"))
        .unwrap_or_else(|| "/admin/integrity".into());
    Ok(done(&back, "saved"))
}

/// `GET /cases`: cases of the user's units, open ones first by deadline.
pub async fn cases_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
) -> AppResult<HttpResponse> {
    let lang = page_lang(&req);
    let today = crate::calendar::local_day(crate::db::now(), offset(&state));
    let actor = user.actor();
    let CaseList {
        cases: list,
        unit_names: names,
    } = state
        .with_conn(move |conn| cases::list_for(conn, &actor))
        .await?;
    let body = html! {
        p { (lang.pick(
            "Mỗi phiếu đánh giá chung \"Không hài lòng\" hoặc \"Rất không hài lòng\" mở một trường hợp để cơ quan xem xét và ghi lại việc đã làm trước hạn (tính theo ngày làm việc). Chỉ có câu trả lời và góp ý, không có thông tin về người trả lời, trừ khi người trả lời chủ động đề nghị được liên hệ lại.",
            "Every overall rating of \"Dissatisfied\" or \"Very dissatisfied\" opens a case for the agency to look into and record what it did before the deadline (in working days). Only the answers and the comment are kept, nothing about who answered, unless they asked to be contacted.")) }
        table #cases {
            thead { tr {
                th { (lang.pick("Đơn vị", "Unit")) } th { (lang.pick("Ngày", "Day")) } th { (lang.pick("Mức", "Level")) }
                th { (lang.pick("Hạn", "Due")) } th { (lang.pick("Trạng thái", "Status")) }
                th { (lang.pick("Xin liên hệ lại", "Asks to be contacted")) } th {}
            } }
            tbody { @for c in &list { tr class=[c.overdue(today).then_some("flagged")] {
                td { (names.get(&c.unit_id).map(|n| format!("{} {}", n.0, n.1)).unwrap_or_default()) }
                td { (c.opened_at.format("%Y-%m-%d")) } td { (c.overall_level) }
                td { (c.due_on) }
                td { @if c.overdue(today) { strong.err { (lang.pick("Quá hạn", "Overdue")) } }
                     @else if c.status == CaseStatus::Open { (lang.pick("Đang xử lý", "Open")) }
                     @else { (lang.pick("Đã đóng", "Closed")) } }
                // Whether to call, never whom: the contact itself is on the case's page only.
                td { @if c.contact.is_some() { (lang.pick("Có", "Yes")) } }
                td { a href=(format!("/cases/{}", c.id)) { (lang.pick("Xem", "Open")) } }
            } } }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/cases",
            lang.pick("Phản hồi chưa hài lòng", "Bad-rating cases"),
            body,
        ),
    ))
}

/// `GET /cases/{id}`: the answers and comment of one case, what was done, and the action form.
pub async fn case_page(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    let lang = page_lang(&req);
    let (forms, actor, id) = (state.forms.clone(), user.actor(), path.into_inner());
    let CaseFile {
        case,
        actions,
        form,
    } = state
        .with_conn(move |conn| cases::open_file(conn, &forms, &actor, &id))
        .await?;
    let today = crate::calendar::local_day(crate::db::now(), offset(&state));
    let answers = crate::survey::stored::decode(&case.answers).unwrap_or_default();
    let label = |code: &str| {
        form.as_ref()
            .and_then(|f| f.question(code).map(|q| q.text.get(lang).to_string()))
            .unwrap_or_else(|| code.to_string())
    };
    let body = html! {
        p { a href="/cases" { "← " (lang.pick("Tất cả trường hợp", "All cases")) } }
        p #case-status {
            (lang.pick("Hạn xử lý: ", "Due: ")) strong { (case.due_on) } " · "
            @if case.overdue(today) { strong.err { (lang.pick("Quá hạn", "Overdue")) } }
            @else if case.status == CaseStatus::Open { (lang.pick("Đang xử lý", "Open")) }
            @else { (lang.pick("Đã đóng", "Closed")) }
        }
        @if let Some(c) = &case.comment { h2 { (lang.pick("Góp ý của người dân", "The citizen's comment")) } blockquote #case-comment { (c) } }
        @if let Some(at) = case.contact_consented_at {
            h2 { (lang.pick("Người dân đề nghị được liên hệ lại", "The citizen asks to be contacted")) }
            @if let Some(contact) = &case.contact {
                p #case-contact { strong { (contact) } }
                p.muted { (lang.pick("Đồng ý lúc ", "Agreed at ")) (local_time(&state, at)) ". "
                    (lang.pick(
                        "Chỉ dùng để liên hệ về ý kiến này; không ghi vào nội dung việc đã làm. Thông tin bị xóa khi đóng trường hợp.",
                        "Use it only to get in touch about this answer; do not copy it into the notes. It is deleted when the case is closed.")) }
            } @else {
                p #case-contact.muted { (lang.pick("Thông tin liên hệ đã được xóa khi đóng trường hợp.", "The contact was deleted when the case was closed.")) }
            }
        }
        h2 { (lang.pick("Câu trả lời", "Answers")) }
        table #case-answers { tbody { @for (code, n, t) in &answers { tr {
            td { (label(code)) } td { (t.clone().or(n.map(|n| n.to_string())).unwrap_or_default()) }
        } } } }
        h2 { (lang.pick("Việc đã làm", "Actions taken")) }
        ol #case-actions { @for a in &actions { li {
            (local_time(&state, a.at)) " — " (a.actor_name) ": " (a.note)
            @if a.closes { " " strong { (lang.pick("(đóng)", "(closed)")) } }
        } } }
        @if case.status == CaseStatus::Open {
            form #case-action method="post" action=(format!("/cases/{}", case.id)) {
                (csrf_field(&user))
                label for="note" { (lang.pick("Việc đã làm", "What was done")) }
                textarea #note name="note" required maxlength="2000" {}
                label { input #close type="checkbox" name="close" value="1"; " " (lang.pick("Đóng trường hợp (ghi rõ kết quả xử lý)", "Close the case (say how it was resolved)")) }
                button type="submit" { (lang.pick("Ghi lại", "Record")) }
            }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(
            lang,
            &user,
            "/cases",
            lang.pick("Trường hợp chưa hài lòng", "Bad-rating case"),
            body,
        ),
    ))
}

#[derive(Deserialize)]
pub struct ActionForm {
    note: String,
    close: Option<String>,
}

/// `POST /cases/{id}`: records an action (and closes the case when asked). Audited.
pub async fn case_action(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<ActionForm>,
) -> AppResult<HttpResponse> {
    let (actor, id) = (user.actor(), path.into_inner());
    let input = FollowUp {
        note: form.note.clone(),
        close: form.close.is_some(),
    };
    let case_id = id.clone();
    state
        .with_conn(move |conn| cases::follow_up(conn, &actor, &case_id, &input))
        .await?;
    Ok(done(&format!("/cases/{id}"), "saved"))
}
