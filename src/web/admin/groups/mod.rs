//! Admin pages for respondent groups and their campaigns (see `crate::groups`): create and edit
//! groups, create campaigns (which issues their single-use links), download the links as CSV or
//! print them with their QR codes, and read a campaign's results per rated unit.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use chrono::NaiveDate;
use maud::{Markup, PreEscaped, html};
use serde::Deserialize;

use crate::web::admin::{done, failed_status};
use crate::error::{AppError, AppResult};
use crate::groups::{self, Campaign, CampaignInput, GroupInput, RespondentGroup};
use crate::i18n::{Lang, Msg};
use crate::report::export::{Cell, to_csv};
use crate::web::AppState;
use crate::web::access::CurrentUser;
use crate::web::lang::page_lang;
use crate::web::layout::{html_response, page};
use crate::web::reports::{ci, pct};
use crate::web::staff::{csrf_field, error_box, notice, staff_page};

/// Registers the pages (access rules are in `access::RULES`, all for administrators).
pub fn routes(cfg: &mut web::ServiceConfig) {
    let get = crate::web::get_or_head;
    let post = web::post;
    cfg.service(
        web::resource("/admin/groups")
            .route(get().to(groups_list))
            .route(post().to(group_create)),
    )
    .service(
        web::resource("/admin/groups/{id}")
            .route(get().to(group_show))
            .route(post().to(group_update)),
    )
    .service(
        web::resource("/admin/campaigns")
            .route(get().to(campaigns_list))
            .route(post().to(campaign_create)),
    )
    .service(web::resource("/admin/campaigns/{id}").route(get().to(campaign_show)))
    .service(web::resource("/admin/campaigns/{id}/invitees").route(post().to(campaign_invite)))
    .service(web::resource("/admin/campaigns/{id}/links.csv").route(get().to(links_csv)))
    .service(web::resource("/admin/campaigns/{id}/print").route(get().to(links_print)));
}

#[derive(Deserialize)]
pub struct OkQuery {
    ok: Option<String>,
}

fn offset(state: &AppState) -> AppResult<chrono::FixedOffset> {
    Ok(state.policies.utc_offset)
}

// ---------------------------------------------------------------- groups

#[derive(Deserialize)]
pub struct GroupForm {
    code: String,
    name_vi: String,
    name_en: String,
    #[serde(default)]
    description: String,
    include_in_index: Option<String>,
}

impl GroupForm {
    fn input(&self) -> GroupInput {
        GroupInput {
            code: self.code.clone(),
            name_vi: self.name_vi.clone(),
            name_en: self.name_en.clone(),
            description: self.description.clone(),
            include_in_index: self.include_in_index.is_some(),
        }
    }
}

fn included_label(lang: Lang, included: bool) -> &'static str {
    if included {
        lang.pick("Có, tính vào chỉ số", "Yes, in the index")
    } else {
        lang.pick("Không, báo cáo riêng", "No, reported apart")
    }
}

fn group_fields(lang: Lang, g: Option<&RespondentGroup>) -> Markup {
    html! {
        label for="code" { (lang.pick("Mã nhóm (ví dụ DB-HDND)", "Group code (e.g. DB-HDND)")) }
        input #code type="text" name="code" value=(g.map(|g| g.code.as_str()).unwrap_or("")) required;
        label for="name_vi" { (lang.pick("Tên tiếng Việt", "Vietnamese name")) }
        input #name_vi type="text" name="name_vi" value=(g.map(|g| g.name_vi.as_str()).unwrap_or("")) required;
        label for="name_en" { (lang.pick("Tên tiếng Anh", "English name")) }
        input #name_en type="text" name="name_en" value=(g.map(|g| g.name_en.as_str()).unwrap_or("")) required;
        label for="description" { (lang.pick("Mô tả", "Description")) }
        textarea #description name="description" maxlength="2000" { (g.map(|g| g.description.as_str()).unwrap_or("")) }
        label.check {
            input type="checkbox" name="include_in_index" value="on" checked[g.is_some_and(|g| g.include_in_index)];
            (lang.pick("Tính câu trả lời của nhóm vào chỉ số hài lòng của người dân", "Count the group's answers in the citizen satisfaction index"))
        }
        p.hint { (lang.pick(
            "Mặc định không: câu trả lời của nhóm chỉ xuất hiện trong kết quả đợt khảo sát của nhóm, không vào chỉ số, xếp hạng hay báo cáo của người dân. Khi đổi thiết lập, các câu trả lời đã có được chuyển vào (hoặc ra khỏi) chỉ số ngay.",
            "Off by default: the group's answers appear only in its campaign results, never in the citizen index, rankings or reports. Changing the setting moves the answers already given into (or out of) the index at once.")) }
    }
}

fn groups_page(
    lang: Lang,
    user: &CurrentUser,
    rows: &[RespondentGroup],
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        p { a href="/admin/campaigns" { (lang.pick("Các đợt khảo sát theo nhóm →", "Group campaigns →")) } }
        table #groups {
            thead { tr {
                th { (lang.pick("Mã", "Code")) }
                th { (lang.pick("Tên", "Name")) }
                th { (lang.pick("Tính vào chỉ số", "In the citizen index")) }
            } }
            tbody { @for g in rows { tr {
                td { a href=(format!("/admin/groups/{}", g.id)) { (g.code) } }
                td { (g.name(lang)) }
                td { (included_label(lang, g.include_in_index)) }
            } } }
        }
        h2 { (lang.pick("Thêm nhóm người trả lời", "Add a respondent group")) }
        (error_box(lang, error))
        form.stack method="post" action="/admin/groups" {
            (csrf_field(user))
            (group_fields(lang, None))
            button type="submit" { (lang.pick("Thêm", "Add")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/groups",
        lang.pick("Nhóm người trả lời", "Respondent groups"),
        body,
    )
}

pub async fn groups_list(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let rows = state
        .with_conn(|conn| Ok(groups::list_groups(conn)?))
        .await?;
    Ok(html_response(
        StatusCode::OK,
        groups_page(page_lang(&req), &user, &rows, q.ok.as_deref(), None),
    ))
}

/// Saves a group through the response writer, so that moving its answers into or out of the
/// index is ordered with every submission (see `groups::save_group`).
async fn save_group(
    state: &AppState,
    user: &CurrentUser,
    id: Option<String>,
    form: GroupForm,
) -> AppResult<RespondentGroup> {
    let (actor, forms, offset) = (user.0.user.actor(), state.forms.clone(), offset(state)?);
    state
        .writer
        .run(move |conn, delta| {
            groups::save_group(
                conn,
                &forms,
                &actor,
                id.as_deref(),
                &form.input(),
                delta,
                offset,
            )
        })
        .await?
}

pub async fn group_create(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse, AppError> {
    match save_group(&state, &user, None, form.into_inner()).await {
        Ok(g) => Ok(done(&format!("/admin/groups/{}", g.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let rows = state
                .with_conn(|conn| Ok(groups::list_groups(conn)?))
                .await?;
            Ok(html_response(
                failed_status(&e),
                groups_page(page_lang(&req), &user, &rows, None, Some(&e)),
            ))
        }
    }
}

fn group_detail(
    lang: Lang,
    user: &CurrentUser,
    g: &RespondentGroup,
    campaigns: &[(Campaign, RespondentGroup)],
    ok: Option<&str>,
    error: Option<&AppError>,
) -> Markup {
    let body = html! {
        (notice(lang, ok))
        @if !g.description.is_empty() { p { (g.description) } }
        h2 { (lang.pick("Các đợt khảo sát của nhóm", "The group's campaigns")) }
        (campaign_table(lang, campaigns))
        p { a href=(format!("/admin/campaigns?group={}", g.code)) { (lang.pick("Tạo đợt khảo sát cho nhóm này", "Create a campaign for this group")) } }
        h2 { (lang.pick("Sửa nhóm", "Edit the group")) }
        (error_box(lang, error))
        form.stack method="post" action=(format!("/admin/groups/{}", g.id)) {
            (csrf_field(user))
            (group_fields(lang, Some(g)))
            button type="submit" { (lang.pick("Lưu", "Save")) }
        }
    };
    staff_page(
        lang,
        user,
        "/admin/groups",
        &format!("{} — {}", g.code, g.name(lang)),
        body,
    )
}

async fn load_group(
    state: &AppState,
    id: String,
) -> AppResult<(RespondentGroup, Vec<(Campaign, RespondentGroup)>)> {
    state
        .with_conn(move |conn| {
            let g = groups::find_group(conn, &id)?.ok_or_else(|| {
                AppError::NotFound(Msg::new(
                    "Không có nhóm người trả lời này.",
                    "No such respondent group.",
                ))
            })?;
            let campaigns = groups::list_campaigns(conn, Some(&g.id))?;
            Ok((g, campaigns))
        })
        .await
}

pub async fn group_show(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    q: web::Query<OkQuery>,
) -> Result<HttpResponse, AppError> {
    let (g, campaigns) = load_group(&state, path.into_inner()).await?;
    Ok(html_response(
        StatusCode::OK,
        group_detail(
            page_lang(&req),
            &user,
            &g,
            &campaigns,
            q.ok.as_deref(),
            None,
        ),
    ))
}

pub async fn group_update(
    state: web::Data<AppState>,
    req: HttpRequest,
    user: CurrentUser,
    path: web::Path<String>,
    form: web::Form<GroupForm>,
) -> Result<HttpResponse, AppError> {
    let id = path.into_inner();
    match save_group(&state, &user, Some(id.clone()), form.into_inner()).await {
        Ok(_) => Ok(done(&format!("/admin/groups/{id}"), "saved")),
        Err(e @ (AppError::Internal(_) | AppError::NotFound(_))) => Err(e),
        Err(e) => {
            let (g, campaigns) = load_group(&state, id).await?;
            Ok(html_response(
                failed_status(&e),
                group_detail(page_lang(&req), &user, &g, &campaigns, None, Some(&e)),
            ))
        }
    }
}

// ---------------------------------------------------------------- campaigns

fn campaign_table(lang: Lang, rows: &[(Campaign, RespondentGroup)]) -> Markup {
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

/// What the campaign form offers to choose from.
struct Choices {
    groups: Vec<RespondentGroup>,
    periods: Vec<crate::periods::SurveyPeriod>,
    units: Vec<crate::units::Unit>,
    campaigns: Vec<(Campaign, RespondentGroup)>,
}

async fn choices(state: &AppState) -> AppResult<Choices> {
    let today = crate::calendar::local_day(crate::db::now(), offset(state)?);
    state
        .with_conn(move |conn| {
            let mut units = crate::units::list(conn)?;
            units.retain(|u| u.valid_to.is_none_or(|end| end >= today));
            units.sort_by(|a, b| a.code.cmp(&b.code));
            Ok(Choices {
                groups: groups::list_groups(conn)?,
                periods: crate::periods::list(conn)?,
                units,
                campaigns: groups::list_campaigns(conn, None)?,
            })
        })
        .await
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
    let c = choices(&state).await?;
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
        Ok(input) => {
            let (secret, forms, actor, offset) = (
                state.secret.clone(),
                state.forms.clone(),
                user.0.user.actor(),
                offset(&state)?,
            );
            state
                .with_conn(move |conn| {
                    conn.write_transaction(|conn| {
                        groups::create_campaign(
                            conn,
                            &secret,
                            &forms,
                            &actor,
                            &input,
                            crate::db::now(),
                            offset,
                        )
                    })
                })
                .await
        }
        Err(e) => Err(e),
    };
    match created {
        Ok(c) => Ok(done(&format!("/admin/campaigns/{}", c.id), "created")),
        Err(e @ AppError::Internal(_)) => Err(e),
        Err(e) => {
            let c = choices(&state).await?;
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
    let id = path.into_inner();
    let (forms, min_n) = (state.forms.clone(), state.settings.report_min_n);
    let (campaign, group, results, form) = state
        .with_conn(move |conn| {
            let (campaign, group, rated) = groups::campaign_detail(conn, &id)?;
            let results = groups::results(conn, &forms, &campaign, &rated, min_n)?;
            let form = forms.find(conn, &campaign.form_code, campaign.form_version)?;
            Ok((campaign, group, results, form))
        })
        .await?;
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
    let (secret, actor, offset) = (state.secret.clone(), user.0.user.actor(), offset(&state)?);
    let target = id.clone();
    state
        .with_conn(move |conn| {
            conn.write_transaction(|conn| {
                groups::add_invitees(
                    conn,
                    &secret,
                    &actor,
                    &target,
                    more,
                    crate::db::now(),
                    offset,
                )
            })
        })
        .await?;
    Ok(done(&format!("/admin/campaigns/{id}"), "invited"))
}

async fn campaign_links(
    state: &AppState,
    id: String,
) -> AppResult<(Campaign, Vec<groups::IssuedLink>)> {
    let secret = state.secret.clone();
    state
        .with_conn(move |conn| {
            let (campaign, _, _) = groups::campaign_detail(conn, &id)?;
            let links = groups::links(conn, &secret, &campaign.id)?;
            Ok((campaign, links))
        })
        .await
}

/// `GET /admin/campaigns/{id}/links.csv`: one row per link, with its QR code's address.
pub async fn links_csv(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let (campaign, links) = campaign_links(&state, path.into_inner()).await?;
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
    let (campaign, links) = campaign_links(&state, path.into_inner()).await?;
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
