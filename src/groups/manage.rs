//! The respondent groups' use cases, as the administrator's pages (and tests) call them: list
//! and save groups, create campaigns and invite more people, read a campaign's results and its
//! links. Each takes the services, the acting user and a typed input.

use std::sync::Arc;

use super::{Campaign, CampaignInput, CampaignResults, GroupInput, IssuedLink, RespondentGroup};
use crate::accounts::Actor;
use crate::error::{AppError, AppResult};
use crate::forms::Form;
use crate::i18n::Msg;
use crate::periods::SurveyPeriod;
use crate::services::Services;
use crate::units::Unit;

/// Use case: every respondent group (`GET /admin/groups`).
pub async fn list_groups(services: &Services) -> AppResult<Vec<RespondentGroup>> {
    services
        .with_conn(|conn| Ok(super::list_groups(conn)?))
        .await
}

/// Use case: creates (`id` = None) or changes a group (`POST /admin/groups[/{id}]`). Through the
/// group commit: when "include in the citizen index" changes, the group's stored answers move
/// into or out of the rollups ordered with every submission (see [`super::save_group`]).
pub async fn save_group(
    services: &Services,
    actor: Actor,
    id: Option<String>,
    input: GroupInput,
) -> AppResult<RespondentGroup> {
    let (forms, offset) = (services.forms.clone(), services.policies.utc_offset);
    services
        .writer
        .run(move |conn, delta| {
            super::save_group(
                conn,
                &forms,
                &actor.audit(),
                id.as_deref(),
                &input,
                delta,
                offset,
            )
        })
        .await?
}

/// Use case: a group with its campaigns (`GET /admin/groups/{id}`).
pub async fn open_group(
    services: &Services,
    id: String,
) -> AppResult<(RespondentGroup, Vec<(Campaign, RespondentGroup)>)> {
    services
        .with_conn(move |conn| {
            let group = super::find_group(conn, &id)?.ok_or_else(|| {
                AppError::NotFound(Msg::new(
                    "Không có nhóm người trả lời này.",
                    "No such respondent group.",
                ))
            })?;
            let campaigns = super::list_campaigns(conn, Some(&group.id))?;
            Ok((group, campaigns))
        })
        .await
}

/// What a new campaign can be made of, and the campaigns so far.
#[derive(Debug)]
pub struct Choices {
    pub groups: Vec<RespondentGroup>,
    pub periods: Vec<SurveyPeriod>,
    /// Units still active today, by code.
    pub units: Vec<Unit>,
    pub campaigns: Vec<(Campaign, RespondentGroup)>,
}

/// Use case: the campaigns page (`GET /admin/campaigns`).
pub async fn campaign_choices(services: &Services) -> AppResult<Choices> {
    let today = crate::calendar::local_day(crate::db::now(), services.policies.utc_offset);
    services
        .with_conn(move |conn| {
            let mut units = crate::units::list(conn)?;
            units.retain(|u| u.valid_to.is_none_or(|end| end >= today));
            units.sort_by(|a, b| a.code.cmp(&b.code));
            Ok(Choices {
                groups: super::list_groups(conn)?,
                periods: crate::periods::list(conn)?,
                units,
                campaigns: super::list_campaigns(conn, None)?,
            })
        })
        .await
}

/// Use case: creates a campaign and issues its links, in one transaction
/// (`POST /admin/campaigns`). The links are tokens, not answers: no rollup moves, so a plain
/// transaction rather than the group commit (thousands of links would hold up every answer).
pub async fn create_campaign(
    services: &Services,
    actor: Actor,
    input: CampaignInput,
) -> AppResult<Campaign> {
    let (secret, forms, offset) = (
        services.secret.clone(),
        services.forms.clone(),
        services.policies.utc_offset,
    );
    services
        .with_conn(move |conn| {
            conn.write_transaction(|conn| {
                super::create_campaign(
                    conn,
                    &secret,
                    &forms,
                    &actor.audit(),
                    &input,
                    crate::db::now(),
                    offset,
                )
            })
        })
        .await
}

/// Use case: invites `more` people to a campaign, issuing their links
/// (`POST /admin/campaigns/{id}/invitees`).
pub async fn invite(
    services: &Services,
    actor: Actor,
    campaign_id: String,
    more: i64,
) -> AppResult<Campaign> {
    let (secret, offset) = (services.secret.clone(), services.policies.utc_offset);
    services
        .with_conn(move |conn| {
            conn.write_transaction(|conn| {
                super::add_invitees(
                    conn,
                    &secret,
                    &actor.audit(),
                    &campaign_id,
                    more,
                    crate::db::now(),
                    offset,
                )
            })
        })
        .await
}

/// A campaign with its group, figures and form.
#[derive(Debug)]
pub struct CampaignReport {
    pub campaign: Campaign,
    pub group: RespondentGroup,
    pub results: CampaignResults,
    /// The form version the campaign asks (absent only if its file was removed).
    pub form: Option<Arc<Form>>,
}

/// Use case: a campaign's results per rated unit, cells under `min_n` answers hidden
/// (`GET /admin/campaigns/{id}`).
pub async fn campaign_report(
    services: &Services,
    campaign_id: String,
    min_n: u64,
) -> AppResult<CampaignReport> {
    let forms = services.forms.clone();
    services
        .with_conn(move |conn| {
            let (campaign, group, rated) = super::campaign_detail(conn, &campaign_id)?;
            let results = super::results(conn, &forms, &campaign, &rated, min_n)?;
            let form = forms.find(conn, &campaign.form_code, campaign.form_version)?;
            Ok(CampaignReport {
                campaign,
                group,
                results,
                form,
            })
        })
        .await
}

/// Use case: every link of a campaign, by invitee then unit code
/// (`GET /admin/campaigns/{id}/links.csv`, `…/print`).
pub async fn campaign_links(
    services: &Services,
    campaign_id: String,
) -> AppResult<(Campaign, Vec<IssuedLink>)> {
    let secret = services.secret.clone();
    services
        .with_conn(move |conn| {
            let (campaign, _, _) = super::campaign_detail(conn, &campaign_id)?;
            let links = super::links(conn, &secret, &campaign.id)?;
            Ok((campaign, links))
        })
        .await
}
