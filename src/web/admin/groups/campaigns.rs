//! Campaign pages: create a group's campaign (which issues its links), invite more people, and
//! read its results per rated unit.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use maud::{Markup, html};
use serde::Deserialize;

use super::{OkQuery, included_label};
use crate::error::{AppError, AppResult};
use crate::groups::manage::{self, CampaignReport, Choices};
use crate::groups::{self, Campaign, CampaignInput, RespondentGroup};
use crate::i18n::{Lang, Msg};
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::html_response;
use crate::web::staff::{csrf_field, error_box, notice, staff_page};
use crate::web::view::{ci, done, failed_status, pct};

// ---------------------------------------------------------------- campaigns

pub(super) fn campaign_table(lang: Lang, rows: &[(Campaign, RespondentGroup)]) -> Markup {
    html! {
        @if rows.is_empty() {
            p { (lang.pick("Chưa có đợt khảo sát nào.", "No campaigns yet.")) }
        } @else {
            table.campaigns {
                thead { tr {
                    th { (lang.pick("Đợt khảo sát", "Campaign")) }
                    th { (lang.pick("Nhóm", "Group")) }
                    th { (lang.pick("Thời gian", "Dates")) }
                    th { (lang.pick("Mẫu phiếu", "Form")) }
                    th { (lang.pick("Số người mời", "Invitees")) }
                } }
                tbody { @for (c, g) in rows { tr {
                    td { a href=(format!("/admin/campaigns/{}", c.id)) { (c.name(lang)) } }
                    td { (g.code) }
                    td { (c.starts_on) " → " (c.ends_on) }
                    td { (c.form_code) " v" (c.form_version) }
                    td { (c.invitees) }
                } } }
            }
        }
    }
}

/// The campaign form as posted: repeated `units` fields (checkboxes), so it is read by hand.
#[derive(Debug, Default)]
struct CampaignFields {
    group: String,
    name_vi: String,
    name_en: String,
    form: String,
    period: String,
    starts_on: String,
    ends_on: String,
    units: Vec<String>,
    invitees: String,
}

impl CampaignFields {
    fn parse(body: &[u8]) -> AppResult<Self> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).map_err(|_| {
            AppError::bad_request(
                "form",
                Msg::new("Dữ liệu gửi lên không hợp lệ.", "Invalid form data."),
            )
        })?;
        let mut f = Self::default();
        for (k, v) in pairs {
            match k.as_str() {
                "group" => f.group = v,
                "name_vi" => f.name_vi = v,
                "name_en" => f.name_en = v,
                "form" => f.form = v,
                "period" => f.period = v,
                "starts_on" => f.starts_on = v,
                "ends_on" => f.ends_on = v,
                "invitees" => f.invitees = v,
                // Checkboxes, or codes typed in one field separated by commas.
                "units" => f.units.extend(
                    v.split([',', ';', ' '])
                        .map(str::trim)
                        .filter(|c| !c.is_empty())
                        .map(str::to_string),
                ),
                _ => {}
            }
        }
        Ok(f)
    }

    fn input(&self) -> AppResult<CampaignInput> {
        let date = |name: &str, v: &str| -> AppResult<Option<NaiveDate>> {
            let v = v.trim();
            if v.is_empty() {
                return Ok(None);
            }
            NaiveDate::parse_from_str(v, "%Y-%m-%d")
                .map(Some)
                .map_err(|_| {
                    AppError::field(
                        name,
                        Msg::new(
                            "Ngày phải có dạng NNNN-TT-NN.",
                            "Dates look like YYYY-MM-DD.",
                        ),
                    )
                })
        };
        let invitees = self.invitees.trim().parse::<i64>().map_err(|_| {
            AppError::field(
                "invitees",
                Msg::new(
                    "Số người được mời phải là một số nguyên.",
                    "The number of invitees must be a whole number.",
                ),
            )
        })?;
        Ok(CampaignInput {
            group_code: self.group.clone(),
            name_vi: self.name_vi.clone(),
            name_en: self.name_en.clone(),
            form_code: self.form.clone(),
            period_code: Some(self.period.clone()),
            starts_on: date("starts_on", &self.starts_on)?,
            ends_on: date("ends_on", &self.ends_on)?,
            unit_codes: self.units.clone(),
            invitees,
        })
    }
}

fn campaigns_page(
    lang: Lang,
    user: &CurrentUser,
    forms: &crate::forms::FormRegistry,
    c: &Choices,
    given: &CampaignFields,
    error: Option<&AppError>,
) -> Markup {
    let mut form_codes: Vec<&String> = forms.codes().collect();
    form_codes.sort();
    form_codes.dedup();
    let body = html! {
        p { a href="/admin/groups" { (lang.pick("← Nhóm người trả lời", "← Respondent groups")) } }
        (campaign_table(lang, &c.campaigns))
        h2 { (lang.pick("Tạo đợt khảo sát", "Create a campaign")) }
        p.hint { (lang.pick(
            "Mỗi người được mời nhận một liên kết dùng một lần cho mỗi đơn vị được đánh giá (kèm mã QR). Liên kết dùng được đến hết ngày kết thúc.",
            "Each invitee gets one single-use link per unit to rate (with its QR code). Links work until the end date."))
        }
        @if c.groups.is_empty() {
            p { a href="/admin/groups" { (lang.pick("Hãy tạo một nhóm người trả lời trước.", "Create a respondent group first.")) } }
        }
        (error_box(lang, error))
        form.stack method="post" action="/admin/campaigns" {
            (csrf_field(user))
            label for="group" { (lang.pick("Nhóm người trả lời", "Respondent group")) }
            select #group name="group" required {
                @for g in &c.groups { option value=(g.code) selected[given.group == g.code] { (g.code) " — " (g.name(lang)) } }
            }
            label for="name_vi" { (lang.pick("Tên đợt (tiếng Việt)", "Campaign name (Vietnamese)")) }
            input #name_vi type="text" name="name_vi" value=(given.name_vi) required;
            label for="name_en" { (lang.pick("Tên đợt (tiếng Anh)", "Campaign name (English)")) }
            input #name_en type="text" name="name_en" value=(given.name_en) required;
            label for="form" { (lang.pick("Mẫu phiếu", "Survey form")) }
            select #form name="form" {
                @for code in &form_codes {
                    @if let Some(f) = forms.latest(code) {
                        option value=(code) selected[given.form == **code] { (f.title.get(lang)) " (" (code) " v" (f.version) ")" }
                    }
                }
            }
            label for="period" { (lang.pick("Kỳ khảo sát (hoặc nhập ngày bên dưới)", "Survey period (or enter dates below)")) }
            select #period name="period" {
                option value="" { "—" }
                @for p in &c.periods { option value=(p.code) selected[given.period == p.code] { (p.code) " — " (p.name(lang)) " (" (p.starts_on) " → " (p.ends_on) ")" } }
            }
            label for="starts_on" { (lang.pick("Từ ngày", "From")) }
            input #starts_on type="date" name="starts_on" value=(given.starts_on);
            label for="ends_on" { (lang.pick("Đến ngày", "Until")) }
            input #ends_on type="date" name="ends_on" value=(given.ends_on);
            fieldset #units {
                legend { (lang.pick("Các đơn vị được đánh giá", "Units to rate")) }
                @for u in &c.units {
                    label.check {
                        input type="checkbox" name="units" value=(u.code) checked[given.units.contains(&u.code)];
                        (u.code) " — " (u.name(lang))
                    }
                }
            }
            label for="invitees" { (lang.pick("Số người được mời", "Number of invitees")) }
            input #invitees type="number" name="invitees" min="1" max=(groups::MAX_INVITEES) value=(given.invitees) required;
            button type="submit" { (lang.pick("Tạo đợt và cấp liên kết", "Create and issue links")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/campaigns",
        lang.pick("Đợt khảo sát theo nhóm", "Group campaigns"),
        body,
    )
}

#[derive(Deserialize)]
pub struct CampaignsQuery {
    group: Option<String>,
}

pub async fn campaigns_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<CampaignsQuery>,
) -> Result<HttpResponse, AppError> {
    let c = manage::campaign_choices(&state).await?;
    let given = CampaignFields {
        group: q.group.clone().unwrap_or_default(),
        ..CampaignFields::default()
    };
    Ok(html_response(
        StatusCode::OK,
        campaigns_page(page_lang(&req), &user, &state.forms, &c, &given, None),
    ))
}

pub async fn campaign_create(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    body: web::Bytes,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let fields = CampaignFields::parse(&body)?;
    let input = fields.input();
    let created = match input {
        Ok(input) => manage::create_campaign(&state, super::actor(&user), input).await,
        Err(e) => Err(e),
    };
    match created {
        Ok(c) => Ok(done(&format!("/admin/campaigns/{}", c.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let c = manage::campaign_choices(&state).await?;
            Ok(html_response(
                failed_status(&e),
                campaigns_page(lang, &user, &state.forms, &c, &fields, Some(&e)),
            ))
        }
    }
}

pub async fn campaign_show(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let lang = page_lang(&req);
    let CampaignReport {
        campaign,
        group,
        results,
        form,
    } = manage::campaign_report(&state, path.into_inner(), state.settings.report_min_n).await?;
    let elements: Vec<(String, String)> = results
        .total
        .elements
        .iter()
        .map(|e| {
            let title = match lang {
                Lang::Vi => &e.title_vi,
                Lang::En => &e.title_en,
            };
            (e.code.clone(), title.clone())
        })
        .collect();
    let issued: u64 = results.units.iter().map(|u| u.issued).sum();
    let answered: u64 = results.units.iter().map(|u| u.answered).sum();
    let ok = match q.ok.as_deref() {
        Some("invited") => Some(lang.pick("Đã cấp thêm liên kết.", "More links issued.")),
        _ => None,
    };
    let body = html! {
        (notice(lang, q.ok.as_deref()))
        @if let Some(t) = ok { p.notice role="status" { (t) } }
        table.facts {
            tr { th { (lang.pick("Nhóm", "Group")) } td { a href=(format!("/admin/groups/{}", group.id)) { (group.code) " — " (group.name(lang)) } } }
            tr { th { (lang.pick("Mẫu phiếu", "Form")) } td { @if let Some(f) = &form { (f.title.get(lang)) } " (" (campaign.form_code) " v" (campaign.form_version) ")" } }
            tr { th { (lang.pick("Thời gian", "Dates")) } td { (campaign.starts_on) " → " (campaign.ends_on) } }
            tr { th { (lang.pick("Số người được mời", "Invitees")) } td { (campaign.invitees) } }
            tr { th { (lang.pick("Liên kết đã cấp / đã trả lời", "Links issued / answered")) } td #links-answered { (issued) " / " (answered) } }
            tr { th { (lang.pick("Tính vào chỉ số của người dân", "In the citizen index")) } td #included { (included_label(lang, group.include_in_index)) } }
        }
        p {
            a href=(format!("/admin/campaigns/{}/links.csv", campaign.id)) { (lang.pick("Tải danh sách liên kết (CSV)", "Download the links (CSV)")) }
            " · "
            a href=(format!("/admin/campaigns/{}/print", campaign.id)) { (lang.pick("In phiếu mời kèm mã QR", "Print the invitations with QR codes")) }
        }
        h2 { (lang.pick("Kết quả theo đơn vị", "Results per unit")) }
        p.hint { (lang.pick(
            "Chỉ số và tỷ lệ hài lòng của riêng nhóm này, tính như chỉ số SIPAS; ô có ít câu trả lời hơn ngưỡng công bố được ẩn (—).",
            "This group's own index and satisfaction, computed as the SIPAS index; cells with fewer answers than the publication threshold are hidden (—)."))
            " (n ≥ " (state.settings.report_min_n) ")"
        }
        table #campaign-results {
            thead { tr {
                th { (lang.pick("Đơn vị", "Unit")) }
                th { (lang.pick("Đã trả lời / liên kết", "Answered / links")) }
                th { (lang.pick("Chỉ số", "Index")) }
                th { (lang.pick("Khoảng tin cậy 95%", "95% interval")) }
                th { (lang.pick("Hài lòng chung", "Overall satisfied")) }
                @for (code, title) in &elements { th title=(title) { (code) } }
            } }
            tbody {
                @for u in &results.units {
                    tr data-unit=(u.unit_code) {
                        td { (u.unit_code) " — " (match lang { Lang::Vi => &u.unit_name_vi, Lang::En => &u.unit_name_en }) }
                        td.n { (u.figures.responses) " / " (u.issued) }
                        td.index { (pct(lang, &u.figures.index)) }
                        td { (ci(lang, &u.figures.index)) }
                        td.overall { @if let Some(o) = &u.figures.overall_question { (pct(lang, &o.satisfied)) } @else { "—" } }
                        @for e in &u.figures.elements { td { (pct(lang, &e.index)) } }
                    }
                }
                tr #campaign-total {
                    th { (lang.pick("Tất cả đơn vị", "All units")) }
                    td.n { (results.total.responses) " / " (issued) }
                    td.index { (pct(lang, &results.total.index)) }
                    td { (ci(lang, &results.total.index)) }
                    td.overall { @if let Some(o) = &results.total.overall_question { (pct(lang, &o.satisfied)) } @else { "—" } }
                    @for e in &results.total.elements { td { (pct(lang, &e.index)) } }
                }
            }
        }
        h2 { (lang.pick("Mời thêm người", "Invite more people")) }
        form.stack method="post" action=(format!("/admin/campaigns/{}/invitees", campaign.id)) {
            (csrf_field(&user))
            label for="more" { (lang.pick("Số người mời thêm", "How many more")) }
            input #more type="number" name="more" min="1" max=(groups::MAX_INVITEES) value="1" required;
            button type="submit" { (lang.pick("Cấp thêm liên kết", "Issue more links")) }
        }
    };
    Ok(html_response(
        StatusCode::OK,
        staff_page(lang, &user, "/admin/campaigns", campaign.name(lang), body),
    ))
}

#[derive(Deserialize)]
pub struct InviteForm {
    more: String,
}

pub async fn campaign_invite(
    state: web::Data<AppState>,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<InviteForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    let more = form.more.trim().parse::<i64>().map_err(|_| {
        AppError::field(
            "more",
            Msg::new(
                "Số người mời thêm phải là một số nguyên.",
                "The number must be a whole number.",
            ),
        )
    })?;
    manage::invite(&state, super::actor(&user), id.clone(), more).await?;
    Ok(done(&format!("/admin/campaigns/{id}"), "invited"))
}
