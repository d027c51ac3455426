//! Respondent groups (issue #8, item 5): besides citizens answering after a transaction, the
//! province invites named groups (council delegates, leaders, ...) to rate units in a
//! *campaign*, each invitee with one single-use link per unit to rate.
//!
//! Why one link per invitee and unit (not one link rating every unit in turn): a link is then
//! exactly a dossier's survey token without the dossier, so the survey page, its validation, the
//! single-use spending of the token and the QR endpoints are reused unchanged; a half-finished
//! round needs no server-side state, and an invitee who rates only some units leaves nothing
//! inconsistent behind.
//!
//! A group answer is stored like any response, with channel [`GROUP_CHANNEL`] and its group and
//! campaign. It stays out of the citizen index (status `group`: never in the rollups, which
//! every published figure reads) unless its group is configured to be included (status
//! `counted`, in the rollups). Changing the setting moves the group's stored answers in or out
//! of the rollups in the same transaction, through the response writer so that no submission
//! can slip between the two.
//!
//! Group answers are not screened for integrity and open no bad-rating case: the signals look
//! for counters inflating their own dossier surveys (links issued at a counter, answered on its
//! network, in bursts), while campaign links are issued by the province and often answered
//! together at a meeting on one network; and a case is the agency's follow-up of one citizen's
//! transaction, which a delegate's rating of a whole agency is not. The campaign results page
//! shows those ratings to the province instead.

pub mod manage;

use std::collections::{BTreeMap, HashMap};

use chrono::{FixedOffset, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::db::schema::{
    campaign_links, campaign_units, campaigns, respondent_groups, responses, survey_tokens, units,
};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::FormRegistry;
use crate::i18n::{Lang, Msg};
use crate::report::figures::{FormFigures, Tally, compute};
use crate::report::period::Period;
use crate::rollup::{RollupDelta, counted_levels};
use crate::secret::ServerSecret;
use crate::survey::response::{ResponseStatus, Submission, SubmitOutcome};
use crate::survey::stored::{STORED_COLUMNS, StoredResponse};
use crate::survey::token::SurveyToken;

/// The channel of every group answer: neither a counter nor an independent channel, so it never
/// enters the counter/paper comparison, even when the group is included in the index.
pub const GROUP_CHANNEL: &str = "group";
/// Most invitees and units of one campaign, and most links issued at once.
pub const MAX_INVITEES: i64 = 1000;
pub const MAX_UNITS: usize = 200;
pub const MAX_LINKS: i64 = 20_000;

#[derive(Debug, Clone, Queryable, Selectable, Serialize, PartialEq)]
#[diesel(table_name = respondent_groups)]
pub struct RespondentGroup {
    pub id: String,
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub description: String,
    /// Whether the group's answers count in the citizen index (default: no).
    pub include_in_index: bool,
    pub created_at: NaiveDateTime,
}

impl RespondentGroup {
    pub fn name(&self, lang: Lang) -> &str {
        match lang {
            Lang::Vi => &self.name_vi,
            Lang::En => &self.name_en,
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, PartialEq)]
#[diesel(table_name = campaigns)]
pub struct Campaign {
    pub id: String,
    pub group_id: String,
    pub name_vi: String,
    pub name_en: String,
    pub form_code: String,
    pub form_version: i64,
    pub period_id: Option<String>,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    pub invitees: i64,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

impl Campaign {
    pub fn name(&self, lang: Lang) -> &str {
        match lang {
            Lang::Vi => &self.name_vi,
            Lang::En => &self.name_en,
        }
    }
}

fn field(name: &str, vi: &str, en: &str) -> AppError {
    AppError::field(name, Msg::new(vi, en))
}

fn no_group() -> AppError {
    AppError::NotFound(Msg::new(
        "Không có nhóm người trả lời này.",
        "No such respondent group.",
    ))
}

fn no_campaign() -> AppError {
    AppError::NotFound(Msg::new("Không có đợt khảo sát này.", "No such campaign."))
}

// ---------------------------------------------------------------- groups

pub fn list_groups(conn: &mut DbConn) -> QueryResult<Vec<RespondentGroup>> {
    db_run!(conn: {
        respondent_groups::table.order(respondent_groups::code).select(RespondentGroup::as_select()).load(conn)
    })
}

pub fn find_group(conn: &mut DbConn, id: &str) -> QueryResult<Option<RespondentGroup>> {
    db_run!(conn: {
        respondent_groups::table.find(id).select(RespondentGroup::as_select()).first(conn).optional()
    })
}

pub fn find_group_by_code(conn: &mut DbConn, code: &str) -> QueryResult<Option<RespondentGroup>> {
    db_run!(conn: {
        respondent_groups::table
            .filter(respondent_groups::code.eq(code))
            .select(RespondentGroup::as_select())
            .first(conn)
            .optional()
    })
}

/// What an administrator enters for a group.
#[derive(Debug, Clone, Default)]
pub struct GroupInput {
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub description: String,
    pub include_in_index: bool,
}

fn check_group(input: &GroupInput) -> AppResult<()> {
    if !crate::periods::is_short_code(&input.code) {
        return Err(field(
            "code",
            "Mã nhóm dài 2–32 ký tự: chữ, số, - và _.",
            "The group code has 2–32 characters: letters, digits, - and _.",
        ));
    }
    let name_ok = |n: &str| !n.trim().is_empty() && n.chars().count() <= 200;
    if !name_ok(&input.name_vi) || !name_ok(&input.name_en) {
        return Err(field(
            "name_vi",
            "Vui lòng nhập tên nhóm bằng tiếng Việt và tiếng Anh (tối đa 200 ký tự).",
            "Please enter the group's Vietnamese and English names (at most 200 characters).",
        ));
    }
    if input.description.chars().count() > 2000 {
        return Err(field(
            "description",
            "Mô tả tối đa 2000 ký tự.",
            "The description has at most 2000 characters.",
        ));
    }
    Ok(())
}

/// Creates (`id` = None) or changes a group, with an audit event. When "include in the citizen
/// index" changes, the group's stored answers move into (or out of) the rollups through
/// `delta`: run it inside the response writer ([`crate::survey::writer::ResponseWriter::run`]),
/// which applies `delta` in the same transaction and orders it with every submission.
pub fn save_group(
    conn: &mut DbConn,
    forms: &FormRegistry,
    actor: &Actor,
    id: Option<&str>,
    input: &GroupInput,
    delta: &mut RollupDelta,
    utc_offset: FixedOffset,
) -> AppResult<RespondentGroup> {
    let mut input = input.clone();
    input.code = input.code.trim().to_ascii_uppercase();
    check_group(&input)?;
    let old = match id {
        Some(id) => Some(find_group(conn, id)?.ok_or_else(no_group)?),
        None => None,
    };
    if let Some(existing) = find_group_by_code(conn, &input.code)?
        && old.as_ref().is_none_or(|o| o.id != existing.id)
    {
        return Err(field(
            "code",
            "Mã nhóm đã tồn tại.",
            "This group code already exists.",
        ));
    }
    let id = old
        .as_ref()
        .map(|o| o.id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let (name_vi, name_en, description) = (
        input.name_vi.trim(),
        input.name_en.trim(),
        input.description.trim(),
    );
    db_run!(conn: {
        if old.is_some() {
            diesel::update(respondent_groups::table.find(&id))
                .set((
                    respondent_groups::code.eq(&input.code),
                    respondent_groups::name_vi.eq(name_vi),
                    respondent_groups::name_en.eq(name_en),
                    respondent_groups::description.eq(description),
                    respondent_groups::include_in_index.eq(input.include_in_index),
                ))
                .execute(conn)
        } else {
            diesel::insert_into(respondent_groups::table)
                .values((
                    respondent_groups::id.eq(&id),
                    respondent_groups::code.eq(&input.code),
                    respondent_groups::name_vi.eq(name_vi),
                    respondent_groups::name_en.eq(name_en),
                    respondent_groups::description.eq(description),
                    respondent_groups::include_in_index.eq(input.include_in_index),
                    respondent_groups::created_at.eq(crate::db::now()),
                ))
                .execute(conn)
        }
    })?;
    let moved = match &old {
        Some(o) if o.include_in_index != input.include_in_index => {
            move_answers(conn, forms, &id, input.include_in_index, delta, utc_offset)?
        }
        _ => 0,
    };
    let new = find_group(conn, &id)?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("group vanished")))?;
    let view = |g: &RespondentGroup| serde_json::to_value(g).unwrap_or_default();
    let mut new_view = view(&new);
    if moved > 0 {
        new_view["answers_moved"] = json!(moved);
    }
    audit::record(
        conn,
        actor,
        if old.is_some() {
            "group.update"
        } else {
            "group.create"
        },
        "respondent_group",
        &id,
        old.as_ref().map(view),
        Some(new_view),
    )?;
    Ok(new)
}

/// Moves every stored answer of the group into the rollups (`include`) or out of them, and sets
/// their status accordingly. Returns how many moved.
fn move_answers(
    conn: &mut DbConn,
    forms: &FormRegistry,
    group_id: &str,
    include: bool,
    delta: &mut RollupDelta,
    utc_offset: FixedOffset,
) -> AppResult<usize> {
    let (from, sign) = if include {
        (ResponseStatus::Apart, 1)
    } else {
        (ResponseStatus::Counted, -1)
    };
    let (from, to) = (from.as_str(), ResponseStatus::of_group(include).as_str());
    let rows: Vec<StoredResponse> = db_run!(conn: {
        responses::table
            .filter(responses::respondent_group_id.eq(group_id))
            .filter(responses::status.eq(from))
            .select(STORED_COLUMNS)
            .load(conn)
    })?;
    for row in &rows {
        let submission = row.to_submission(conn, forms)?.ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "stored answers of {} cannot be counted (form {} v{} not loaded?)",
                row.id,
                row.form_code,
                row.form_version
            ))
        })?;
        delta.add_signed(&submission, utc_offset, sign);
    }
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    for chunk in ids.chunks(500) {
        db_run!(conn: {
            diesel::update(responses::table.filter(responses::id.eq_any(chunk)).filter(responses::status.eq(from)))
                .set(responses::status.eq(to))
                .execute(conn)
        })?;
    }
    Ok(rows.len())
}

// ---------------------------------------------------------------- campaigns

pub fn list_campaigns(
    conn: &mut DbConn,
    group_id: Option<&str>,
) -> QueryResult<Vec<(Campaign, RespondentGroup)>> {
    db_run!(conn: {
        let mut q = campaigns::table
            .inner_join(respondent_groups::table.on(respondent_groups::id.eq(campaigns::group_id)))
            .into_boxed();
        if let Some(g) = group_id {
            q = q.filter(campaigns::group_id.eq(g.to_string()));
        }
        q.order((campaigns::created_at.desc(), campaigns::id))
            .select((Campaign::as_select(), RespondentGroup::as_select()))
            .load(conn)
    })
}

pub fn find_campaign(conn: &mut DbConn, id: &str) -> QueryResult<Option<Campaign>> {
    db_run!(conn: {
        campaigns::table.find(id).select(Campaign::as_select()).first(conn).optional()
    })
}

/// A campaign with its group and units (code order), or NotFound.
pub fn campaign_detail(
    conn: &mut DbConn,
    id: &str,
) -> AppResult<(Campaign, RespondentGroup, Vec<crate::units::Unit>)> {
    let campaign = find_campaign(conn, id)?.ok_or_else(no_campaign)?;
    let group = find_group(conn, &campaign.group_id)?.ok_or_else(no_group)?;
    let unit_ids: Vec<String> = db_run!(conn: {
        campaign_units::table
            .filter(campaign_units::campaign_id.eq(&campaign.id))
            .select(campaign_units::unit_id)
            .load(conn)
    })?;
    let mut rated: Vec<crate::units::Unit> = crate::units::list(conn)?
        .into_iter()
        .filter(|u| unit_ids.contains(&u.id))
        .collect();
    rated.sort_by(|a, b| a.code.cmp(&b.code));
    Ok((campaign, group, rated))
}

/// What an administrator enters for a campaign. Either a period (its dates) or both dates.
#[derive(Debug, Clone, Default)]
pub struct CampaignInput {
    pub group_code: String,
    pub name_vi: String,
    pub name_en: String,
    pub form_code: String,
    pub period_code: Option<String>,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    pub unit_codes: Vec<String>,
    pub invitees: i64,
}

/// Creates a campaign and issues its links (one per invitee and unit), with one audit event.
/// Call inside a write transaction.
pub fn create_campaign(
    conn: &mut DbConn,
    secret: &ServerSecret,
    forms: &FormRegistry,
    actor: &Actor,
    input: &CampaignInput,
    now: NaiveDateTime,
    utc_offset: FixedOffset,
) -> AppResult<Campaign> {
    let group = find_group_by_code(conn, input.group_code.trim())?.ok_or_else(|| {
        field(
            "group",
            "Chọn một nhóm người trả lời.",
            "Choose a respondent group.",
        )
    })?;
    let name_ok = |n: &str| !n.trim().is_empty() && n.chars().count() <= 200;
    if !name_ok(&input.name_vi) || !name_ok(&input.name_en) {
        return Err(field(
            "name_vi",
            "Vui lòng nhập tên đợt khảo sát bằng tiếng Việt và tiếng Anh (tối đa 200 ký tự).",
            "Please enter the campaign's Vietnamese and English names (at most 200 characters).",
        ));
    }
    let form = forms.latest(input.form_code.trim()).ok_or_else(|| {
        field(
            "form",
            "Chọn một mẫu phiếu đã nạp.",
            "Choose a loaded survey form.",
        )
    })?;
    let period = match input
        .period_code
        .as_deref()
        .map(str::trim)
        .filter(|c| !c.is_empty())
    {
        Some(code) => Some(crate::periods::find_by_code(conn, code)?.ok_or_else(|| {
            field(
                "period",
                "Không có kỳ khảo sát này.",
                "No such survey period.",
            )
        })?),
        None => None,
    };
    let (starts_on, ends_on) = match (&period, input.starts_on, input.ends_on) {
        (_, Some(from), Some(to)) => (from, to),
        (Some(p), None, None) => (p.starts_on, p.ends_on),
        _ => {
            return Err(field(
                "starts_on",
                "Chọn một kỳ khảo sát, hoặc nhập cả ngày bắt đầu và ngày kết thúc.",
                "Choose a survey period, or enter both the start and the end date.",
            ));
        }
    };
    if ends_on < starts_on {
        return Err(field(
            "ends_on",
            "Ngày kết thúc trước ngày bắt đầu.",
            "The end date is before the start date.",
        ));
    }
    let expires_at = Period {
        from: starts_on,
        to: ends_on,
    }
    .utc_bounds(utc_offset)
    .1;
    if expires_at <= now {
        return Err(field(
            "ends_on",
            "Ngày kết thúc đã qua: liên kết sẽ không dùng được.",
            "The end date has passed: the links could not be used.",
        ));
    }
    if !(1..=MAX_INVITEES).contains(&input.invitees) {
        return Err(field(
            "invitees",
            "Số người được mời từ 1 đến 1000.",
            "The number of invitees is between 1 and 1000.",
        ));
    }
    let mut codes: Vec<String> = input
        .unit_codes
        .iter()
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
        .collect();
    codes.sort();
    codes.dedup();
    if codes.is_empty() || codes.len() > MAX_UNITS {
        return Err(field(
            "units",
            "Chọn từ 1 đến 200 đơn vị được đánh giá.",
            "Choose between 1 and 200 units to rate.",
        ));
    }
    let mut rated = Vec::with_capacity(codes.len());
    for code in &codes {
        let unit = crate::units::find_by_code(conn, code)?.ok_or_else(|| {
            AppError::field(
                "units",
                Msg::new(
                    format!("Không có đơn vị mã {code}."),
                    format!("No unit has the code {code}."),
                ),
            )
        })?;
        // Rated from the day the links go out (or the campaign starts, if later).
        let first_day = crate::calendar::local_day(now, utc_offset).max(starts_on);
        if !unit.is_valid_on(first_day) {
            return Err(AppError::field(
                "units",
                Msg::new(
                    format!("Đơn vị {code} không còn hoạt động trong thời gian khảo sát."),
                    format!("Unit {code} is not active during the campaign."),
                ),
            ));
        }
        rated.push(unit);
    }
    if input.invitees * rated.len() as i64 > MAX_LINKS {
        return Err(field(
            "invitees",
            "Quá nhiều liên kết cho một đợt (tối đa 20 000 = số người × số đơn vị).",
            "Too many links for one campaign (at most 20,000 = invitees × units).",
        ));
    }
    let campaign = Campaign {
        id: uuid::Uuid::now_v7().to_string(),
        group_id: group.id.clone(),
        name_vi: input.name_vi.trim().to_string(),
        name_en: input.name_en.trim().to_string(),
        form_code: form.code.clone(),
        form_version: form.version,
        period_id: period.as_ref().map(|p| p.id.clone()),
        starts_on,
        ends_on,
        invitees: input.invitees,
        created_by: actor.name.clone(),
        created_at: now,
    };
    db_run!(conn: {
        diesel::insert_into(campaigns::table)
            .values((
                campaigns::id.eq(&campaign.id),
                campaigns::group_id.eq(&campaign.group_id),
                campaigns::name_vi.eq(&campaign.name_vi),
                campaigns::name_en.eq(&campaign.name_en),
                campaigns::form_code.eq(&campaign.form_code),
                campaigns::form_version.eq(campaign.form_version),
                campaigns::period_id.eq(&campaign.period_id),
                campaigns::starts_on.eq(campaign.starts_on),
                campaigns::ends_on.eq(campaign.ends_on),
                campaigns::invitees.eq(campaign.invitees),
                campaigns::created_by.eq(&campaign.created_by),
                campaigns::created_at.eq(campaign.created_at),
            ))
            .execute(conn)?;
        let rows: Vec<_> = rated
            .iter()
            .map(|u| (campaign_units::campaign_id.eq(&campaign.id), campaign_units::unit_id.eq(&u.id)))
            .collect();
        diesel::insert_into(campaign_units::table).values(rows).execute(conn)
    })?;
    let unit_ids: Vec<String> = rated.iter().map(|u| u.id.clone()).collect();
    let issued = issue_links(
        conn,
        secret,
        &campaign,
        &unit_ids,
        1..=campaign.invitees,
        now,
        expires_at,
    )?;
    let view = json!({
        "group": group.code,
        "name_vi": campaign.name_vi,
        "name_en": campaign.name_en,
        "form": format!("{} v{}", campaign.form_code, campaign.form_version),
        "period": period.as_ref().map(|p| p.code.clone()),
        "starts_on": campaign.starts_on,
        "ends_on": campaign.ends_on,
        "units": codes,
        "invitees": campaign.invitees,
        "links": issued,
    });
    audit::record(
        conn,
        actor,
        "campaign.create",
        "campaign",
        &campaign.id,
        None,
        Some(view),
    )?;
    Ok(campaign)
}

/// Invites `more` people to a campaign: their links are issued, one audit event.
pub fn add_invitees(
    conn: &mut DbConn,
    secret: &ServerSecret,
    actor: &Actor,
    campaign_id: &str,
    more: i64,
    now: NaiveDateTime,
    utc_offset: FixedOffset,
) -> AppResult<Campaign> {
    let (campaign, _, rated) = campaign_detail(conn, campaign_id)?;
    let total = campaign.invitees.saturating_add(more);
    if more < 1 || total > MAX_INVITEES || total * rated.len() as i64 > MAX_LINKS {
        return Err(field(
            "more",
            "Số người mời thêm từ 1, tổng không quá 1000 người và 20 000 liên kết.",
            "Invite at least 1 more; at most 1,000 invitees and 20,000 links in all.",
        ));
    }
    let expires_at = Period {
        from: campaign.starts_on,
        to: campaign.ends_on,
    }
    .utc_bounds(utc_offset)
    .1;
    if expires_at <= now {
        return Err(AppError::Conflict(Msg::new(
            "Đợt khảo sát đã kết thúc, không thể mời thêm.",
            "The campaign has ended; nobody more can be invited.",
        )));
    }
    let updated = db_run!(conn: {
        diesel::update(campaigns::table.find(&campaign.id).filter(campaigns::invitees.eq(campaign.invitees)))
            .set(campaigns::invitees.eq(total))
            .execute(conn)
    })?;
    if updated != 1 {
        return Err(AppError::Conflict(Msg::new(
            "Đợt khảo sát vừa được thay đổi; vui lòng thử lại.",
            "The campaign was just changed; please try again.",
        )));
    }
    let unit_ids: Vec<String> = rated.iter().map(|u| u.id.clone()).collect();
    let issued = issue_links(
        conn,
        secret,
        &campaign,
        &unit_ids,
        campaign.invitees + 1..=total,
        now,
        expires_at,
    )?;
    audit::record(
        conn,
        actor,
        "campaign.invite",
        "campaign",
        &campaign.id,
        Some(json!({"invitees": campaign.invitees})),
        Some(json!({"invitees": total, "links": issued})),
    )?;
    Ok(Campaign {
        invitees: total,
        ..campaign
    })
}

/// Issues one survey token and link per (invitee, unit).
fn issue_links(
    conn: &mut DbConn,
    secret: &ServerSecret,
    campaign: &Campaign,
    unit_ids: &[String],
    invitees: std::ops::RangeInclusive<i64>,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<usize> {
    let mut links = Vec::new();
    for invitee in invitees {
        for unit_id in unit_ids {
            let id = uuid::Uuid::now_v7().to_string();
            let hash = SurveyToken::for_campaign_link(secret, &id).hash();
            links.push((id, invitee, unit_id.clone(), hash));
        }
    }
    // 10 bound values per token row: well under SQLite's limit per statement.
    for chunk in links.chunks(1000) {
        db_run!(conn: {
            let tokens: Vec<_> = chunk
                .iter()
                .map(|(_, _, unit_id, hash)| (
                    survey_tokens::token_hash.eq(hash),
                    survey_tokens::unit_id.eq(unit_id),
                    survey_tokens::form_code.eq(&campaign.form_code),
                    survey_tokens::form_version.eq(campaign.form_version),
                    survey_tokens::issued_at.eq(now),
                    survey_tokens::expires_at.eq(expires_at),
                    survey_tokens::campaign_id.eq(Some(&campaign.id)),
                ))
                .collect();
            diesel::insert_into(survey_tokens::table).values(tokens).execute(conn)?;
            let rows: Vec<_> = chunk
                .iter()
                .map(|(id, invitee, unit_id, hash)| (
                    campaign_links::id.eq(id),
                    campaign_links::campaign_id.eq(&campaign.id),
                    campaign_links::invitee.eq(*invitee),
                    campaign_links::unit_id.eq(unit_id),
                    campaign_links::token_hash.eq(hash),
                ))
                .collect();
            diesel::insert_into(campaign_links::table).values(rows).execute(conn)
        })?;
    }
    Ok(links.len())
}

/// One issued link, as the CSV and the printable page show it.
#[derive(Debug, Clone)]
pub struct IssuedLink {
    pub invitee: i64,
    pub unit_code: String,
    pub unit_name_vi: String,
    pub unit_name_en: String,
    pub token: SurveyToken,
    pub answered: bool,
}

/// Every link of a campaign, by invitee then unit code; tokens recomputed from the link ids.
pub fn links(
    conn: &mut DbConn,
    secret: &ServerSecret,
    campaign_id: &str,
) -> QueryResult<Vec<IssuedLink>> {
    type Row = (String, i64, String, String, String, Option<NaiveDateTime>);
    let rows: Vec<Row> = db_run!(conn: {
        campaign_links::table
            .inner_join(units::table.on(units::id.eq(campaign_links::unit_id)))
            .inner_join(survey_tokens::table.on(survey_tokens::token_hash.eq(campaign_links::token_hash)))
            .filter(campaign_links::campaign_id.eq(campaign_id))
            .order((campaign_links::invitee, units::code))
            .select((campaign_links::id, campaign_links::invitee, units::code, units::name_vi, units::name_en, survey_tokens::spent_at))
            .load(conn)
    })?;
    Ok(rows
        .into_iter()
        .map(|(id, invitee, code, vi, en, spent)| IssuedLink {
            invitee,
            unit_code: code,
            unit_name_vi: vi,
            unit_name_en: en,
            token: SurveyToken::for_campaign_link(secret, &id),
            answered: spent.is_some(),
        })
        .collect())
}

// ---------------------------------------------------------------- answering

/// Stores a group answer given through a campaign link: spends the token, stores the response
/// with its group and campaign, and counts it in `delta` only if its group is included in the
/// index. Run inside the response writer ([`crate::survey::writer::ResponseWriter::run`]).
pub fn store_answer(
    conn: &mut DbConn,
    delta: &mut RollupDelta,
    submission: &Submission,
    campaign_id: &str,
    utc_offset: FixedOffset,
) -> QueryResult<SubmitOutcome> {
    let now = submission.response.submitted_at;
    let Some(hash) = &submission.token_hash else {
        return Ok(SubmitOutcome::AlreadyUsed);
    };
    let group: Option<(String, bool)> = db_run!(conn: {
        let spent = diesel::update(
            survey_tokens::table
                .find(hash)
                .filter(survey_tokens::campaign_id.eq(campaign_id))
                .filter(survey_tokens::spent_at.is_null())
                .filter(survey_tokens::expires_at.gt(now)),
        )
        .set(survey_tokens::spent_at.eq(now))
        .execute(conn)?;
        if spent == 0 {
            let spent_at: Option<Option<NaiveDateTime>> = survey_tokens::table
                .find(hash)
                .select(survey_tokens::spent_at)
                .first(conn)
                .optional()?;
            return Ok(match spent_at {
                Some(None) => SubmitOutcome::Expired,
                _ => SubmitOutcome::AlreadyUsed,
            });
        }
        campaigns::table
            .inner_join(respondent_groups::table.on(respondent_groups::id.eq(campaigns::group_id)))
            .filter(campaigns::id.eq(campaign_id))
            .select((respondent_groups::id, respondent_groups::include_in_index))
            .first(conn)
            .optional()
    })?;
    let Some((group_id, included)) = group else {
        return Err(diesel::result::Error::NotFound);
    };
    crate::survey::store::insert_responses(conn, &[submission])?;
    let status = ResponseStatus::of_group(included).as_str();
    db_run!(conn: {
        diesel::update(responses::table.find(&submission.response.id))
            .set((
                responses::status.eq(status),
                responses::respondent_group_id.eq(&group_id),
                responses::campaign_id.eq(campaign_id),
            ))
            .execute(conn)
    })?;
    if included {
        delta.add(submission, utc_offset);
    }
    Ok(SubmitOutcome::Stored)
}

// ---------------------------------------------------------------- results

/// The group's figures for one rated unit.
#[derive(Debug, Clone, Serialize)]
pub struct UnitResult {
    pub unit_id: String,
    pub unit_code: String,
    pub unit_name_vi: String,
    pub unit_name_en: String,
    /// Links issued for the unit and how many were answered.
    pub issued: u64,
    pub answered: u64,
    pub figures: FormFigures,
}

/// Campaign results: per unit, and for all units together.
#[derive(Debug, Clone, Serialize)]
pub struct CampaignResults {
    pub units: Vec<UnitResult>,
    pub total: FormFigures,
}

/// Computes the campaign's figures from its stored answers (a campaign is small: its answers
/// are read directly, and counted exactly as the rollups count citizens' answers).
pub fn results(
    conn: &mut DbConn,
    forms: &FormRegistry,
    campaign: &Campaign,
    rated: &[crate::units::Unit],
    min_n: u64,
) -> AppResult<CampaignResults> {
    let form = forms
        .find(conn, &campaign.form_code, campaign.form_version)?
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "form {} v{} of campaign {} is not loaded",
                campaign.form_code,
                campaign.form_version,
                campaign.id
            ))
        })?;
    let rows: Vec<StoredResponse> = db_run!(conn: {
        responses::table
            .filter(responses::campaign_id.eq(&campaign.id))
            .filter(responses::status.eq_any([ResponseStatus::Apart.as_str(), ResponseStatus::Counted.as_str()]))
            .select(STORED_COLUMNS)
            .load(conn)
    })?;
    let issued: Vec<(String, Option<NaiveDateTime>)> = db_run!(conn: {
        campaign_links::table
            .inner_join(survey_tokens::table.on(survey_tokens::token_hash.eq(campaign_links::token_hash)))
            .filter(campaign_links::campaign_id.eq(&campaign.id))
            .select((campaign_links::unit_id, survey_tokens::spent_at))
            .load(conn)
    })?;
    let mut link_counts: HashMap<&str, (u64, u64)> = HashMap::new();
    for (unit, spent) in &issued {
        let c = link_counts.entry(unit.as_str()).or_default();
        c.0 += 1;
        c.1 += u64::from(spent.is_some());
    }
    let mut tallies: BTreeMap<String, Tally> = BTreeMap::new();
    let mut total = Tally::default();
    for row in &rows {
        let Some(submission) = row.to_submission_of(&form) else {
            continue;
        };
        let tally = tallies.entry(row.unit_id.clone()).or_default();
        for (question, level) in counted_levels(&submission) {
            tally.add_count(question, level, 1);
            total.add_count(question, level, 1);
        }
        for (element, score) in &submission.scores {
            tally.add_score(element, 1, *score, score * score);
            total.add_score(element, 1, *score, score * score);
        }
    }
    let units = rated
        .iter()
        .map(|u| {
            let (issued, answered) = link_counts.get(u.id.as_str()).copied().unwrap_or((0, 0));
            UnitResult {
                unit_id: u.id.clone(),
                unit_code: u.code.clone(),
                unit_name_vi: u.name_vi.clone(),
                unit_name_en: u.name_en.clone(),
                issued,
                answered,
                figures: compute(
                    &form,
                    tallies.get(&u.id).unwrap_or(&Tally::default()),
                    min_n,
                ),
            }
        })
        .collect();
    Ok(CampaignResults {
        units,
        total: compute(&form, &total, min_n),
    })
}
