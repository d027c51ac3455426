//! Corrections of verified paper forms by administrators: the answers are replaced, the rollups
//! take the old answers back and add the new ones in the same transaction, and the audit log
//! keeps old → new.
//!
//! Like every write that moves counts in the index, a correction goes through the group commit
//! (`services.writer`; see [`super::entry`] for why).

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde_json::json;

use super::keyed::{PaperForm, Refusal, find};
use crate::accounts::Actor;
use crate::audit;
use crate::db::DbConn;
use crate::db::schema::{paper_forms, responses};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::Form;
use crate::forms::answers::{AnswerValue, ValidAnswers, validate};
use crate::i18n::Msg;
use crate::rollup::RollupDelta;
use crate::services::Services;
use crate::survey::response::Submission;
use crate::survey::stored::{self, StoredResponse};

/// A verified form opened for correction, with its answers as stored.
#[derive(Debug)]
pub struct Correction {
    pub paper: PaperForm,
    /// The current answers as form pairs, to fill the form with.
    pub current: Vec<(String, String)>,
}

/// Use case: opens a verified form for correction (`GET /paper/forms/{serial}/correct`).
pub async fn open(services: &Services, actor: Actor, serial: String) -> AppResult<Correction> {
    let forms = services.forms.clone();
    services
        .with_conn(move |conn| {
            let paper = find(conn, &forms, &actor, &serial)?;
            let current = current(conn, &paper)?;
            Ok(Correction { paper, current })
        })
        .await
}

/// What became of a correction.
#[derive(Debug)]
pub enum Corrected {
    /// The new answers are stored and counted.
    Saved { serial: String },
    /// The answers break the form's rules: nothing changed.
    Refused(Box<Refusal>),
}

/// The opening of the use cases that store an administrator's answers for one form (a
/// correction, an adjudication): the form found among the actor's, `may` asked of it, then the
/// answers checked by the form's rules. `Err` inside: refused answers, with what the page
/// shows again.
pub(super) async fn form_with_answers(
    services: &Services,
    actor: &Actor,
    serial: String,
    answers: Vec<(String, String)>,
    may: impl FnOnce(&PaperForm) -> AppResult<()>,
) -> AppResult<Result<(PaperForm, ValidAnswers), Box<Refusal>>> {
    let forms = services.forms.clone();
    let finder = actor.clone();
    let paper = services
        .with_conn(move |conn| find(conn, &forms, &finder, &serial))
        .await?;
    may(&paper)?;
    Ok(match validate(&paper.form, &answers) {
        Ok(valid) => Ok((paper, valid)),
        Err(problems) => Err(Box::new(Refusal {
            paper,
            given: answers,
            problems,
            issues: Vec::new(),
        })),
    })
}

/// Use case: replaces the answers of a verified paper form (`POST /paper/forms/{serial}/correct`).
pub async fn correct(
    services: &Services,
    actor: Actor,
    serial: String,
    answers: Vec<(String, String)>,
) -> AppResult<Corrected> {
    let (paper, valid) =
        match form_with_answers(services, &actor, serial, answers, |_| Ok(())).await? {
            Ok(checked) => checked,
            Err(refusal) => return Ok(Corrected::Refused(refusal)),
        };
    let offset = services.policies.utc_offset;
    let serial = paper.serial.clone();
    services
        .writer
        .run(move |conn, delta| write_correction(conn, &actor, &paper, &valid, delta, offset))
        .await??;
    Ok(Corrected::Saved { serial })
}

/// The current answers of a verified form, as form pairs (for the correction page).
pub fn current(conn: &mut DbConn, paper: &PaperForm) -> AppResult<Vec<(String, String)>> {
    let response_id = response_of(conn, paper)?;
    let stored = stored::decode(&StoredResponse::load(conn, &response_id)?.answers)
        .map_err(|e| AppError::Internal(anyhow::anyhow!("stored answers unreadable: {e}")))?;
    Ok(stored
        .into_iter()
        .flat_map(|(code, vi, vt)| {
            let values: Vec<String> = match (vt, vi) {
                (Some(t), _) => t.split(',').map(str::to_string).collect(),
                (None, Some(v)) => vec![v.to_string()],
                _ => Vec::new(),
            };
            values.into_iter().map(move |v| (code.clone(), v))
        })
        .collect())
}

fn response_of(conn: &mut DbConn, paper: &PaperForm) -> AppResult<String> {
    let id: Option<Option<String>> = db_run!(conn: {
        paper_forms::table.find(&paper.member_id).select(paper_forms::response_id).first(conn).optional()
    })?;
    id.flatten().ok_or_else(|| {
        AppError::Conflict(Msg::new(
            "Phiếu này chưa được xác nhận nên chưa thể sửa.",
            "This form is not verified yet, so it cannot be corrected.",
        ))
    })
}

/// A stored response as the submission that created it, so its counts can be taken back.
fn stored_submission(conn: &mut DbConn, form: &Form, response_id: &str) -> AppResult<Submission> {
    StoredResponse::load(conn, response_id)?
        .to_submission_of(form)
        .ok_or_else(|| {
            AppError::Internal(anyhow::anyhow!(
                "stored answers of {response_id} unreadable"
            ))
        })
}

fn comparable(list: &[AnswerValue]) -> BTreeMap<String, String> {
    list.iter()
        .map(|a| {
            (
                a.question_code.clone(),
                a.value_text
                    .clone()
                    .or(a.value_int.map(|v| v.to_string()))
                    .unwrap_or_default(),
            )
        })
        .collect()
}

/// Replaces the answers of a verified paper form in the caller's transaction; the old counts
/// are taken back and the new ones added through `delta`.
pub fn write_correction(
    conn: &mut DbConn,
    admin: &Actor,
    paper: &PaperForm,
    valid: &ValidAnswers,
    delta: &mut RollupDelta,
    utc_offset: chrono::FixedOffset,
) -> AppResult<()> {
    let response_id = response_of(conn, paper)?;
    let old = stored_submission(conn, &paper.form, &response_id)?;
    let mut new = old.clone();
    new.response.respondent_type = valid.respondent_type.clone();
    new.scores = crate::forms::scoring::respondent_scores(&paper.form, &valid.answers);
    new.answers = valid.answers.clone();
    delta.add_signed(&old, utc_offset, -1);
    delta.add_signed(&new, utc_offset, 1);
    db_run!(conn: {
        diesel::update(responses::table.find(&response_id))
            .set((responses::respondent_type.eq(&valid.respondent_type), responses::answers.eq(stored::encode(&valid.answers))))
            .execute(conn)
    })?;
    audit::record(
        conn,
        &admin.audit(),
        "paper.correct",
        "paper_form",
        &paper.serial,
        Some(json!(comparable(&old.answers))),
        Some(json!(comparable(&valid.answers))),
    )?;
    Ok(())
}

/// Removes a paper response in the caller's transaction and takes its counts back out of the
/// rollups through `delta` (undo of a form).
pub fn remove_response(
    conn: &mut DbConn,
    form: &Form,
    response_id: &str,
    delta: &mut RollupDelta,
    utc_offset: chrono::FixedOffset,
) -> AppResult<()> {
    let submission = stored_submission(conn, form, response_id)?;
    delta.add_signed(&submission, utc_offset, -1);
    db_run!(conn: {
        diesel::update(paper_forms::table.filter(paper_forms::response_id.eq(response_id)))
            .set(paper_forms::response_id.eq(None::<String>))
            .execute(conn)?;
        diesel::delete(responses::table.find(response_id)).execute(conn)
    })?;
    Ok(())
}
