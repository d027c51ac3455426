//! Corrections of verified paper forms by administrators: the answers are replaced, the rollups
//! take the old answers back and add the new ones in the same transaction, and the audit log
//! keeps old → new.

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde_json::json;

use super::keyed::PaperForm;
use crate::accounts::User;
use crate::audit;
use crate::db::DbConn;
use crate::db::schema::{paper_forms, responses};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::Form;
use crate::forms::answers::{AnswerProblems, AnswerValue, validate};
use crate::i18n::Msg;
use crate::rollup::RollupDelta;
use crate::survey::response::Submission;
use crate::survey::stored::{self, StoredResponse};

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

/// Replaces the answers of a verified paper form.
pub fn correct(
    conn: &mut DbConn,
    admin: &User,
    paper: &PaperForm,
    input: &[(String, String)],
    utc_offset: chrono::FixedOffset,
) -> Result<(), Result<AnswerProblems, AppError>> {
    let valid = validate(&paper.form, input).map_err(Ok)?;
    conn.write_transaction(|conn| -> AppResult<()> {
        let response_id = response_of(conn, paper)?;
        let old = stored_submission(conn, &paper.form, &response_id)?;
        let mut new = old.clone();
        new.response.respondent_type = valid.respondent_type.clone();
        new.scores = crate::forms::scoring::respondent_scores(&paper.form, &valid.answers);
        new.answers = valid.answers.clone();
        let mut delta = RollupDelta::default();
        delta.add_signed(&old, utc_offset, -1);
        delta.add_signed(&new, utc_offset, 1);
        db_run!(conn: {
            diesel::update(responses::table.find(&response_id))
                .set((responses::respondent_type.eq(&valid.respondent_type), responses::answers.eq(stored::encode(&valid.answers))))
                .execute(conn)
        })?;
        delta.apply(conn)?;
        audit::record(conn, &admin.actor(), "paper.correct", "paper_form", &paper.serial, Some(json!(comparable(&old.answers))), Some(json!(comparable(&valid.answers))))?;
        Ok(())
    })
    .map_err(Err)
}

/// Removes a paper response and takes its counts back out of the rollups (undo of a form).
pub fn remove_response(
    conn: &mut DbConn,
    form: &Form,
    response_id: &str,
    utc_offset: chrono::FixedOffset,
) -> AppResult<()> {
    let submission = stored_submission(conn, form, response_id)?;
    let mut delta = RollupDelta::default();
    delta.add_signed(&submission, utc_offset, -1);
    db_run!(conn: {
        diesel::update(paper_forms::table.filter(paper_forms::response_id.eq(response_id)))
            .set(paper_forms::response_id.eq(None::<String>))
            .execute(conn)?;
        diesel::delete(responses::table.find(response_id)).execute(conn)
    })?;
    delta.apply(conn)?;
    Ok(())
}
