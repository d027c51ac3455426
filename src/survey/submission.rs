//! Use case: a citizen (or a respondent group's member) answers a survey link once
//! (`POST /s/{token}`).
//!
//! One read finds the link and, for a citizen's answer, what the integrity screening needs;
//! the answers are checked by the form's own rules; the screening decides the signals, a hold
//! and a bad-rating case; the group commit stores the response with its signals, case, rating
//! of the dossier and the stop of pending mail, and only then is the citizen thanked.

use chrono::NaiveDateTime;

use super::channel::Channel;
use super::lookup::{
    OpenSurvey, TokenState, lookup_any, lookup_for_answer, lookup_sticker, recent_reached,
};
use super::response::{NewResponse, Submission, SubmitOutcome};
use super::token::{SurveyToken, verify_opened};
use crate::error::{AppError, AppResult};
use crate::forms::FormKind;
use crate::forms::answers::{self, AnswerProblems, ValidAnswers};
use crate::i18n::Lang;
use crate::integrity::SubmitContext;
use crate::integrity::contact::{ContactProblem, contact_choice};
use crate::services::Services;

/// What the citizen sent, read from the request.
pub struct Answer {
    /// The link's token as it came in the URL (not yet checked).
    pub token: String,
    /// The posted fields, in order (multi-choice questions repeat their name).
    pub fields: Vec<(String, String)>,
    pub language: Lang,
    /// How the link was reached (`?via=`); becomes the response's channel (a sticker of a
    /// token book is always [`Channel::Book`]).
    pub channel: Channel,
    /// The client's address and user agent: hashed for the integrity signals, never stored.
    pub address: String,
    pub user_agent: String,
}

impl Answer {
    fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What became of an answer.
#[derive(Debug)]
pub enum Submitted {
    /// Stored durably: a citizen's answer.
    Stored,
    /// Stored durably: a respondent group's answer through a campaign link.
    StoredForGroup,
    /// The link cannot take an answer (unknown, used, expired; for campaigns in their terms).
    Unavailable(TokenState),
    /// Answers or the contact field break the form's rules: shown again with the problems.
    Refused(Box<Refusal>),
}

/// An answer sent back to its author, with what to correct.
#[derive(Debug)]
pub struct Refusal {
    pub token: SurveyToken,
    pub survey: OpenSurvey,
    pub problems: AnswerProblems,
    pub contact_problem: Option<ContactProblem>,
    /// The signed time the form was opened, kept for the next try.
    pub opened: String,
    /// The posted fields, to show the form again as it was filled in.
    pub fields: Vec<(String, String)>,
}

/// Stores `answer` if its link is open and its answers are valid.
pub async fn submit(services: &Services, answer: Answer) -> AppResult<Submitted> {
    let now = crate::db::now();
    let (token, survey, context) = match open_with_context(services, &answer, now).await? {
        (Some(token), TokenState::Open(survey), context) => (token, *survey, context),
        (_, unavailable, _) => return Ok(Submitted::Unavailable(unavailable)),
    };
    let signed_opened = answer.field("opened").unwrap_or_default().to_string();
    let (valid, contact) = match (
        answers::validate(&survey.form, &answer.fields),
        contact_choice(&answer.fields),
    ) {
        (Ok(valid), Ok(contact)) => (valid, contact),
        (checked, contact) => {
            return Ok(Submitted::Refused(Box::new(Refusal {
                token,
                survey,
                problems: checked.err().unwrap_or_default(),
                contact_problem: contact.err(),
                opened: signed_opened,
                fields: answer.fields,
            })));
        }
    };
    let opened_at = verify_opened(&services.secret, &survey.token_hash, &signed_opened)
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
        .map(|t| t.naive_utc())
        .filter(|t| *t <= now);
    if let Some(campaign_id) = survey.campaign_id.clone() {
        return store_group_answer(services, &answer, &survey, valid, opened_at, campaign_id).await;
    }
    let overall = match survey.form.kind {
        FormKind::Transaction => valid.overall,
        _ => None,
    };
    let dossier_rating = match (survey.form.kind, &survey.transaction_id, valid.overall) {
        (FormKind::Transaction, Some(id), Some(level)) => Some((id.clone(), level)),
        _ => None,
    };
    // A book sticker's answer has its own channel, whatever the link's `via` says.
    let channel = match survey.sticker {
        Some(_) => Channel::Book,
        None => answer.channel,
    };
    let mut submission = Submission {
        token_hash: Some(survey.token_hash.clone()),
        response: new_response(&answer, &survey, &valid, channel, opened_at, now),
        scores: crate::forms::scoring::respondent_scores(&survey.form, &valid.answers),
        answers: valid.answers,
        dossier_rating,
        transaction_id: survey.transaction_id.clone(),
        screening: None,
    };
    // Every open survey that is not a campaign's has its context (`open_with_context`).
    let context = context.unwrap_or_default();
    let policy = &services.policies.integrity;
    let mut screening = crate::integrity::screen(
        &survey.form,
        &submission.response,
        &submission.answers,
        &context,
        policy,
    );
    // Kept on the case only, and only if the answer opens one.
    crate::integrity::cases::attach_contact(&mut screening, contact, now);
    submission.screening = Some(screening);
    if let Some(sticker) = survey.sticker {
        return store_sticker_answer(services, submission, sticker, overall).await;
    }
    match services.writer.submit(submission).await? {
        SubmitOutcome::Stored => Ok(Submitted::Stored),
        SubmitOutcome::AlreadyUsed => Ok(Submitted::Unavailable(TokenState::Used)),
        SubmitOutcome::Expired => Ok(Submitted::Unavailable(TokenState::Expired)),
    }
}

/// A book sticker's answer: the sticker is claimed and the answer stored in one job of the
/// group commit (see `crate::counter::books::store_answer`).
async fn store_sticker_answer(
    services: &Services,
    submission: Submission,
    sticker: super::lookup::Sticker,
    overall: Option<i64>,
) -> AppResult<Submitted> {
    use crate::counter::books::{StickerOutcome, store_answer};
    let offset = services.policies.utc_offset;
    let stored = services
        .writer
        .run(move |conn, delta| store_answer(conn, delta, submission, &sticker, overall, offset))
        .await??;
    Ok(match stored {
        StickerOutcome::Stored => Submitted::Stored,
        StickerOutcome::Used => Submitted::Unavailable(TokenState::Used),
        StickerOutcome::Revoked => Submitted::Unavailable(TokenState::Revoked),
    })
}

fn new_response(
    answer: &Answer,
    survey: &OpenSurvey,
    valid: &ValidAnswers,
    channel: Channel,
    opened_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> NewResponse {
    NewResponse {
        id: uuid::Uuid::now_v7().to_string(),
        unit_id: survey.unit_id.clone(),
        procedure_id: survey.procedure_id.clone(),
        form_code: survey.form.code.clone(),
        form_version: survey.form.version,
        channel: channel.code().to_string(),
        respondent_type: valid.respondent_type.clone(),
        language: answer.language.code().to_string(),
        issued_at: Some(survey.issued_at),
        opened_at,
        submitted_at: now,
        provenance: None,
    }
}

/// A respondent group's answer through a campaign link (see `crate::groups`): no dossier, no
/// integrity screening, kept out of the citizen index unless its group is included.
async fn store_group_answer(
    services: &Services,
    answer: &Answer,
    survey: &OpenSurvey,
    valid: ValidAnswers,
    opened_at: Option<NaiveDateTime>,
    campaign_id: String,
) -> AppResult<Submitted> {
    let mut response = new_response(
        answer,
        survey,
        &valid,
        Channel::Group,
        opened_at,
        crate::db::now(),
    );
    response.procedure_id = None;
    let submission = Submission {
        token_hash: Some(survey.token_hash.clone()),
        response,
        scores: crate::forms::scoring::respondent_scores(&survey.form, &valid.answers),
        answers: valid.answers,
        dossier_rating: None,
        transaction_id: None,
        screening: None,
    };
    let offset = services.policies.utc_offset;
    let stored = services
        .writer
        .run(move |conn, delta| {
            crate::groups::store_answer(conn, delta, &submission, &campaign_id, offset)
        })
        .await??;
    Ok(match stored {
        SubmitOutcome::Stored => Submitted::StoredForGroup,
        SubmitOutcome::AlreadyUsed => Submitted::Unavailable(TokenState::CampaignUsed),
        SubmitOutcome::Expired => Submitted::Unavailable(TokenState::CampaignExpired),
    })
}

/// The link's state and, when it is open, the integrity screening's context: one trip to the
/// database for both, as every round trip to the blocking pool costs two thread switches.
async fn open_with_context(
    services: &Services,
    answer: &Answer,
    now: NaiveDateTime,
) -> AppResult<(Option<SurveyToken>, TokenState, Option<SubmitContext>)> {
    let Some(token) = SurveyToken::parse(&answer.token) else {
        return Ok((None, TokenState::Unknown, None));
    };
    let (forms, secret, policy) = (
        services.forms.clone(),
        services.secret.clone(),
        services.policies.integrity.clone(),
    );
    let (address, agent) = (answer.address.clone(), answer.user_agent.clone());
    let probe = crate::integrity::recent_probe(&secret, &policy, now, &address, &agent);
    let lookup_token = token.clone();
    let (found, context) = services
        .with_quick_read(move |conn| {
            let (found, recent_reached) =
                match lookup_for_answer(conn, &forms, &lookup_token, now, &probe)? {
                    // No link row: perhaps a book sticker (checked by its signature).
                    (TokenState::Unknown, _) => (
                        lookup_sticker(conn, &forms, &secret, &lookup_token, now)?,
                        recent_reached(conn, &probe)?,
                    ),
                    known => known,
                };
            let context = match &found {
                // Campaign answers are never screened.
                TokenState::Open(survey) if survey.campaign_id.is_none() => {
                    Some(crate::integrity::context_from(
                        &secret,
                        probe,
                        recent_reached,
                        survey.issuer_network.as_deref(),
                        survey.issuer_device.as_deref(),
                        survey.issued_at,
                        &address,
                        &agent,
                    ))
                }
                _ => None,
            };
            Ok::<_, AppError>((found, context))
        })
        .await?;
    Ok((Some(token), found, context))
}

/// The state of a link, for showing its page (`GET /s/{token}`).
pub async fn open(
    services: &Services,
    raw_token: &str,
) -> AppResult<(Option<SurveyToken>, TokenState)> {
    let Some(token) = SurveyToken::parse(raw_token) else {
        return Ok((None, TokenState::Unknown));
    };
    let (forms, secret) = (services.forms.clone(), services.secret.clone());
    let lookup_token = token.clone();
    let found = services
        .with_quick_read(move |conn| {
            lookup_any(conn, &forms, &secret, &lookup_token, crate::db::now())
                .map_err(AppError::from)
        })
        .await?;
    Ok((Some(token), found))
}
