//! Finding out what a survey link is worth: open, already used, expired or unknown.

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::token::SurveyToken;
use crate::db::DbConn;
use crate::db::schema::{procedures, response_signals, survey_tokens, units};
use crate::db_run;
use crate::forms::{Form, FormRegistry};
use crate::integrity::signals::RecentProbe;

/// An unanswered, unexpired survey and what its page shows.
#[derive(Debug, Clone)]
pub struct OpenSurvey {
    pub token_hash: String,
    pub transaction_id: Option<String>,
    pub unit_id: String,
    pub unit_name_vi: String,
    pub unit_name_en: String,
    pub procedure_id: Option<String>,
    pub procedure_name_vi: Option<String>,
    pub procedure_name_en: Option<String>,
    pub form: Arc<Form>,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// Keyed hashes of the counter that issued the link, for the integrity screening (read
    /// here so a submission costs one lookup).
    pub issuer_network: Option<String>,
    pub issuer_device: Option<String>,
    /// Set for a respondent group's campaign link (see `crate::groups`): answered apart from
    /// citizens.
    pub campaign_id: Option<String>,
}

#[derive(Debug, Clone)]
pub enum TokenState {
    Open(Box<OpenSurvey>),
    Used,
    Expired,
    /// A campaign link already answered (its page says so in campaign terms).
    CampaignUsed,
    /// A campaign link after the campaign's end.
    CampaignExpired,
    Unknown,
}

type Row = (
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    i64,
    NaiveDateTime,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Reads the state of `token` at `now`.
pub fn lookup(
    conn: &mut DbConn,
    forms: &FormRegistry,
    token: &SurveyToken,
    now: NaiveDateTime,
) -> anyhow::Result<TokenState> {
    // No address has an empty keyed hash: the probe's subquery finds nothing at once.
    let nobody = RecentProbe {
        network_hash: String::new(),
        since: now,
        need: 1,
    };
    Ok(read(conn, forms, token, now, &nobody)?.0)
}

/// Reads the state of `token` at `now` and, in the same statement, whether the submitter's
/// network reached the burst threshold (`probe`): an answer costs one read, which on
/// PostgreSQL is one round trip and one backend wake-up instead of two.
pub fn lookup_for_answer(
    conn: &mut DbConn,
    forms: &FormRegistry,
    token: &SurveyToken,
    now: NaiveDateTime,
    probe: &RecentProbe,
) -> anyhow::Result<(TokenState, bool)> {
    read(conn, forms, token, now, probe)
}

fn read(
    conn: &mut DbConn,
    forms: &FormRegistry,
    token: &SurveyToken,
    now: NaiveDateTime,
    probe: &RecentProbe,
) -> anyhow::Result<(TokenState, bool)> {
    let hash = token.hash();
    // The `need`-th earlier answer from the network in the window, if there is one: reading
    // at most `need` index entries, however busy the address.
    let nth_recent = response_signals::table
        .filter(response_signals::network_hash.eq(probe.network_hash.clone()))
        .filter(response_signals::submitted_at.ge(probe.since))
        .select(response_signals::submitted_at)
        .offset((probe.need - 1).max(0))
        .single_value();
    let row: Option<(Row, Option<NaiveDateTime>)> = db_run!(conn: {
        survey_tokens::table
            .inner_join(units::table.on(units::id.eq(survey_tokens::unit_id)))
            .left_join(procedures::table.on(procedures::id.nullable().eq(survey_tokens::procedure_id)))
            .filter(survey_tokens::token_hash.eq(&hash))
            .select((
                (
                    survey_tokens::token_hash,
                    survey_tokens::transaction_id,
                    survey_tokens::unit_id,
                    units::name_vi,
                    units::name_en,
                    survey_tokens::procedure_id,
                    procedures::name_vi.nullable(),
                    procedures::name_en.nullable(),
                    survey_tokens::form_code,
                    survey_tokens::form_version,
                    survey_tokens::issued_at,
                    survey_tokens::expires_at,
                    survey_tokens::spent_at,
                    survey_tokens::issuer_network,
                    survey_tokens::issuer_device,
                    survey_tokens::campaign_id,
                ),
                nth_recent.clone(),
            ))
            .first(conn)
            .optional()
    })?;
    let Some((row, nth_recent)) = row else {
        return Ok((TokenState::Unknown, false));
    };
    let recent_reached = probe.need <= 0 || nth_recent.is_some();
    let (
        token_hash,
        transaction_id,
        unit_id,
        unit_name_vi,
        unit_name_en,
        procedure_id,
        pvi,
        pen,
        form_code,
        version,
        issued_at,
        expires_at,
        spent_at,
        issuer_network,
        issuer_device,
        campaign_id,
    ) = row;
    if spent_at.is_some() {
        let state = match campaign_id {
            Some(_) => TokenState::CampaignUsed,
            None => TokenState::Used,
        };
        return Ok((state, recent_reached));
    }
    if expires_at <= now {
        let state = match campaign_id {
            Some(_) => TokenState::CampaignExpired,
            None => TokenState::Expired,
        };
        return Ok((state, recent_reached));
    }
    let form = forms.find(conn, &form_code, version)?.ok_or_else(|| {
        anyhow::anyhow!("form {form_code} v{version} of an issued token is not in the database")
    })?;
    let open = TokenState::Open(Box::new(OpenSurvey {
        token_hash,
        transaction_id,
        unit_id,
        unit_name_vi,
        unit_name_en,
        procedure_id,
        procedure_name_vi: pvi,
        procedure_name_en: pen,
        form,
        issued_at,
        expires_at,
        issuer_network,
        issuer_device,
        campaign_id,
    }));
    Ok((open, recent_reached))
}

/// Whether a token was ever issued (used, expired or not): QR codes stay printable.
pub fn exists(conn: &mut DbConn, token_hash: &str) -> diesel::QueryResult<bool> {
    use diesel::dsl::exists as sql_exists;
    db_run!(conn: {
        diesel::select(sql_exists(survey_tokens::table.find(token_hash))).get_result(conn)
    })
}
