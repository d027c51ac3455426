//! Keying paper forms: the serial first (unknown or forged serials are refused), answers checked
//! by the same validator as the web survey, optional double entry by a second person without
//! seeing the first, adjudication of disagreements, and only then a response in the index.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

pub use super::keyed::{PaperForm, find};
use crate::accounts::User;
use crate::audit;
use crate::db::DbConn;
use crate::db::schema::{paper_batches, paper_entries, paper_forms, sample_members, units};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::Form;
use crate::forms::answers::{self, AnswerProblems, ValidAnswers};
use crate::i18n::Msg;
use crate::survey::response::{NewResponse, Submission, SubmitOutcome};
use crate::survey::writer::store_batch;

/// Problems beyond the ranges: a blank form, or facts that contradict the answers.
pub fn contradictions(form: &Form, valid: &ValidAnswers) -> Vec<(String, Msg)> {
    let mut out = Vec::new();
    let rated = valid
        .answers
        .iter()
        .filter(|a| {
            form.question(&a.question_code)
                .is_some_and(|q| q.kind.is_scale())
                && a.value_int.is_some_and(|v| v > 0)
        })
        .count();
    if rated == 0 {
        out.push((
            "_form".to_string(),
            Msg::new(
                "Phiếu không có câu trả lời đánh giá nào (phiếu trắng).",
                "The form has no rating at all (blank form).",
            ),
        ));
    }
    out
}

/// Answers in a comparable form: (question, stored value).
fn comparable(valid: &ValidAnswers) -> BTreeMap<String, String> {
    valid
        .answers
        .iter()
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

/// The outcome of saving an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Saved {
    /// Counted in the index now.
    Verified,
    /// Waiting for the second, independent typing.
    AwaitingSecondEntry,
    /// The two typings differ: waiting for adjudication.
    Disputed,
}

/// Why an entry was refused: field problems to show next to the questions.
#[derive(Debug)]
pub enum EntryError {
    Invalid(AnswerProblems, Vec<(String, Msg)>),
    Other(AppError),
}

impl From<AppError> for EntryError {
    fn from(e: AppError) -> Self {
        EntryError::Other(e)
    }
}

impl From<diesel::result::Error> for EntryError {
    fn from(e: diesel::result::Error) -> Self {
        EntryError::Other(e.into())
    }
}

/// One typing of a form as the entry screen sends it.
#[derive(Debug, Clone)]
pub struct Typing {
    pub answers: Vec<(String, String)>,
    /// Accepts a form with no ratings at all (after the typist confirmed it is really blank).
    pub confirm_blank: bool,
    pub started_at: NaiveDateTime,
    pub keystrokes: i64,
}

/// Saves one typing of a form by `typist`.
pub fn save(
    conn: &mut DbConn,
    typist: &User,
    paper: &PaperForm,
    typing: &Typing,
    utc_offset: chrono::FixedOffset,
) -> Result<Saved, EntryError> {
    let (input, confirm_blank, started_at, keystrokes) = (
        &typing.answers,
        typing.confirm_blank,
        typing.started_at,
        typing.keystrokes,
    );
    let valid =
        answers::validate(&paper.form, input).map_err(|p| EntryError::Invalid(p, Vec::new()))?;
    let issues = contradictions(&paper.form, &valid);
    if !issues.is_empty() && !confirm_blank {
        return Err(EntryError::Invalid(AnswerProblems::new(), issues));
    }
    let pass = match (paper.passes.len(), paper.double_entry) {
        (0, _) => 1,
        (1, true) => {
            if paper.passes[0].1 == typist.id {
                return Err(EntryError::Other(AppError::Conflict(Msg::new(
                    "Phiếu này cần một người khác nhập lần thứ hai.",
                    "A different person must key this form the second time.",
                ))));
            }
            2
        }
        _ => {
            return Err(EntryError::Other(AppError::Conflict(Msg::new(
                "Phiếu này đã được nhập đủ.",
                "This form has already been keyed.",
            ))));
        }
    };
    let pairs_json = serde_json::to_string(&comparable(&valid)).unwrap_or_default();
    conn.write_transaction(|conn| -> Result<Saved, EntryError> {
        let now = crate::db::now();
        db_run!(conn: {
            diesel::insert_into(paper_entries::table)
                .values((
                    paper_entries::id.eq(uuid::Uuid::new_v4().to_string()),
                    paper_entries::member_id.eq(&paper.member_id),
                    paper_entries::pass.eq(pass),
                    paper_entries::typist_id.eq(&typist.id),
                    paper_entries::answers.eq(&pairs_json),
                    paper_entries::started_at.eq(started_at.min(now)),
                    paper_entries::saved_at.eq(now),
                    paper_entries::keystrokes.eq(keystrokes.max(0)),
                ))
                .execute(conn)
        })?;
        audit::record(conn, &typist.actor(), &format!("paper.entry{pass}"), "paper_form", &paper.serial, None, Some(json!(comparable(&valid))))?;
        let outcome = if pass == 1 && paper.double_entry {
            set_status(conn, &paper.member_id, "keyed")?;
            Saved::AwaitingSecondEntry
        } else if pass == 2 {
            let first: String = db_run!(conn: {
                paper_entries::table.filter(paper_entries::member_id.eq(&paper.member_id)).filter(paper_entries::pass.eq(1)).select(paper_entries::answers).first(conn)
            })?;
            if first == pairs_json {
                finalize(conn, paper, &valid, utc_offset)?;
                Saved::Verified
            } else {
                set_status(conn, &paper.member_id, "disputed")?;
                Saved::Disputed
            }
        } else {
            finalize(conn, paper, &valid, utc_offset)?;
            Saved::Verified
        };
        Ok(outcome)
    })
}

fn set_status(conn: &mut DbConn, member_id: &str, status: &str) -> QueryResult<usize> {
    db_run!(conn: {
        diesel::update(paper_forms::table.find(member_id))
            .set((paper_forms::status.eq(status), paper_forms::updated_at.eq(crate::db::now())))
            .execute(conn)
    })
}

/// The questions where the two typings differ: (code, first, second).
pub fn disagreements(
    conn: &mut DbConn,
    member_id: &str,
) -> QueryResult<Vec<(String, String, String)>> {
    let entries: Vec<(i64, String)> = db_run!(conn: {
        paper_entries::table.filter(paper_entries::member_id.eq(member_id)).filter(paper_entries::pass.le(2)).order(paper_entries::pass.asc()).select((paper_entries::pass, paper_entries::answers)).load(conn)
    })?;
    let parse = |s: &str| serde_json::from_str::<BTreeMap<String, String>>(s).unwrap_or_default();
    let (Some(a), Some(b)) = (
        entries.first().map(|e| parse(&e.1)),
        entries.get(1).map(|e| parse(&e.1)),
    ) else {
        return Ok(Vec::new());
    };
    let mut codes: Vec<&String> = a.keys().chain(b.keys()).collect();
    codes.sort();
    codes.dedup();
    Ok(codes
        .into_iter()
        .filter(|c| a.get(*c) != b.get(*c))
        .map(|c| {
            (
                c.clone(),
                a.get(c).cloned().unwrap_or_default(),
                b.get(c).cloned().unwrap_or_default(),
            )
        })
        .collect())
}

/// The adjudicator's final answers for a disputed form.
pub fn adjudicate(
    conn: &mut DbConn,
    judge: &User,
    paper: &PaperForm,
    input: &[(String, String)],
    utc_offset: chrono::FixedOffset,
) -> Result<(), EntryError> {
    if paper.status != "disputed" {
        return Err(EntryError::Other(AppError::Conflict(Msg::new(
            "Phiếu này không có khác biệt cần xử lý.",
            "This form has no disagreement to resolve.",
        ))));
    }
    if paper.passes.iter().any(|(_, t)| *t == judge.id) {
        return Err(EntryError::Other(AppError::Forbidden(Msg::new(
            "Người đã nhập phiếu không được phân xử phiếu đó.",
            "A typist of this form cannot adjudicate it.",
        ))));
    }
    let valid =
        answers::validate(&paper.form, input).map_err(|p| EntryError::Invalid(p, Vec::new()))?;
    conn.write_transaction(|conn| -> Result<(), EntryError> {
        let now = crate::db::now();
        db_run!(conn: {
            diesel::insert_into(paper_entries::table)
                .values((
                    paper_entries::id.eq(uuid::Uuid::new_v4().to_string()),
                    paper_entries::member_id.eq(&paper.member_id),
                    paper_entries::pass.eq(3),
                    paper_entries::typist_id.eq(&judge.id),
                    paper_entries::answers.eq(serde_json::to_string(&comparable(&valid)).unwrap_or_default()),
                    paper_entries::started_at.eq(now),
                    paper_entries::saved_at.eq(now),
                    paper_entries::keystrokes.eq(0),
                ))
                .execute(conn)
        })?;
        audit::record(conn, &judge.actor(), "paper.adjudicate", "paper_form", &paper.serial, None, Some(json!(comparable(&valid))))?;
        finalize(conn, paper, &valid, utc_offset)?;
        Ok(())
    })
}

/// Stores the agreed answers as an ordinary response (channel `paper`) with its provenance.
fn finalize(
    conn: &mut DbConn,
    paper: &PaperForm,
    valid: &ValidAnswers,
    utc_offset: chrono::FixedOffset,
) -> AppResult<()> {
    let typists: Vec<String> = db_run!(conn: {
        paper_entries::table.filter(paper_entries::member_id.eq(&paper.member_id)).order(paper_entries::pass.asc()).select(paper_entries::typist_id).load(conn)
    })?;
    let now = crate::db::now();
    let response_id = uuid::Uuid::now_v7().to_string();
    let provenance = json!({
        "collector_org_id": paper.collector_org_id, "collector": paper.collector_name, "batch": paper.batch_code,
        "typists": typists, "keyed_at": now.format("%Y-%m-%dT%H:%M:%S").to_string(),
    });
    let submission = Submission {
        token_hash: None,
        response: NewResponse {
            id: response_id.clone(),
            unit_id: paper.unit_id.clone(),
            procedure_id: Some(paper.procedure_id.clone()),
            form_code: paper.form.code.clone(),
            form_version: paper.form.version,
            channel: "paper".into(),
            respondent_type: valid.respondent_type.clone(),
            language: "vi".into(),
            issued_at: None,
            opened_at: None,
            submitted_at: now,
            provenance: Some(provenance.to_string()),
        },
        scores: crate::forms::scoring::respondent_scores(&paper.form, &valid.answers),
        answers: valid.answers.clone(),
        dossier_rating: None,
        transaction_id: None,
        screening: None,
    };
    let outcome = store_batch(conn, &[submission], utc_offset)?;
    if outcome != [SubmitOutcome::Stored] {
        return Err(AppError::Internal(anyhow::anyhow!(
            "paper response not stored: {outcome:?}"
        )));
    }
    db_run!(conn: {
        diesel::update(paper_forms::table.find(&paper.member_id))
            .set((paper_forms::status.eq("verified"), paper_forms::response_id.eq(Some(&response_id)), paper_forms::updated_at.eq(now)))
            .execute(conn)
    })?;
    Ok(())
}

/// Keying speed and agreement of each typist of an organisation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TypistStat {
    pub typist_id: String,
    pub forms: i64,
    pub median_seconds: Option<f64>,
    /// Share of their double-entered forms where the two typings disagreed.
    pub disagreement_rate: Option<f64>,
}

pub fn typist_stats(conn: &mut DbConn, org_id: Option<&str>) -> QueryResult<Vec<TypistStat>> {
    type Row = (String, String, i64, NaiveDateTime, NaiveDateTime, String);
    let rows: Vec<Row> = db_run!(conn: {
        let mut q = paper_entries::table
            .inner_join(paper_forms::table.on(paper_forms::member_id.eq(paper_entries::member_id)))
            .inner_join(paper_batches::table.on(paper_batches::id.eq(paper_forms::batch_id)))
            .filter(paper_entries::pass.le(2))
            .select((paper_entries::typist_id, paper_entries::member_id, paper_entries::pass, paper_entries::started_at, paper_entries::saved_at, paper_forms::status))
            .into_boxed();
        if let Some(org) = org_id {
            q = q.filter(paper_batches::collector_org_id.eq(org.to_string()));
        }
        q.load(conn)
    })?;
    let mut by_member: BTreeMap<&str, usize> = BTreeMap::new();
    for r in &rows {
        *by_member.entry(r.1.as_str()).or_default() += 1;
    }
    let mut by_typist: BTreeMap<String, (Vec<f64>, i64, i64)> = BTreeMap::new();
    for (typist, member, _, started, saved, status) in &rows {
        let e = by_typist.entry(typist.clone()).or_default();
        e.0.push((*saved - *started).num_milliseconds() as f64 / 1000.0);
        if by_member.get(member.as_str()).copied().unwrap_or(0) >= 2 {
            e.1 += 1;
            let disputed =
                status == "disputed" || (status == "verified" && disagreed_before(conn, member)?);
            if disputed {
                e.2 += 1;
            }
        }
    }
    Ok(by_typist
        .into_iter()
        .map(|(typist_id, (mut secs, doubled, disputed))| {
            secs.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
            TypistStat {
                typist_id,
                forms: secs.len() as i64,
                median_seconds: secs.get(secs.len() / 2).copied(),
                disagreement_rate: (doubled > 0).then(|| disputed as f64 / doubled as f64),
            }
        })
        .collect())
}

fn disagreed_before(conn: &mut DbConn, member_id: &str) -> QueryResult<bool> {
    let adjudicated: i64 = db_run!(conn: {
        paper_entries::table.filter(paper_entries::member_id.eq(member_id)).filter(paper_entries::pass.eq(3)).count().get_result(conn)
    })?;
    Ok(adjudicated > 0)
}

/// Disputed forms of an organisation (all for administrators): (serial, unit name, batch code).
pub fn disputed(
    conn: &mut DbConn,
    org_id: Option<&str>,
) -> QueryResult<Vec<(String, String, String)>> {
    db_run!(conn: {
        let mut q = paper_forms::table
            .inner_join(sample_members::table.on(sample_members::id.eq(paper_forms::member_id)))
            .inner_join(paper_batches::table.on(paper_batches::id.eq(paper_forms::batch_id)))
            .inner_join(units::table.on(units::id.eq(sample_members::unit_id)))
            .filter(paper_forms::status.eq("disputed"))
            .select((sample_members::serial, units::name_vi, paper_batches::code))
            .into_boxed();
        if let Some(org) = org_id {
            q = q.filter(paper_batches::collector_org_id.eq(org.to_string()));
        }
        q.order(paper_forms::updated_at.asc()).load(conn)
    })
}

/// The first typing's answers as form pairs, to start an adjudication from.
pub fn first_typing(conn: &mut DbConn, member_id: &str) -> QueryResult<Vec<(String, String)>> {
    let json: Option<String> = db_run!(conn: {
        paper_entries::table.filter(paper_entries::member_id.eq(member_id)).filter(paper_entries::pass.eq(1)).select(paper_entries::answers).first(conn).optional()
    })?;
    let map: BTreeMap<String, String> = json
        .and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default();
    Ok(map
        .into_iter()
        .flat_map(|(code, value)| {
            // Multi-choice answers are stored as "a,b": one pair per option, as a form posts them.
            value
                .split(',')
                .map(|v| (code.clone(), v.to_string()))
                .collect::<Vec<_>>()
        })
        .collect())
}

/// Undoes the typist's own latest typing of a form (a slip noticed right after saving): the
/// entry is removed, and a response it created is taken back out of the index.
pub fn undo_last(
    conn: &mut DbConn,
    typist: &User,
    paper: &PaperForm,
    utc_offset: chrono::FixedOffset,
) -> AppResult<()> {
    conn.write_transaction(|conn| {
        let last: Option<(String, i64, String)> = db_run!(conn: {
            paper_entries::table
                .filter(paper_entries::member_id.eq(&paper.member_id))
                .order(paper_entries::pass.desc())
                .select((paper_entries::id, paper_entries::pass, paper_entries::typist_id))
                .first(conn)
                .optional()
        })?;
        let Some((entry_id, pass, by)) = last else {
            return Err(AppError::Conflict(Msg::new(
                "Phiếu này chưa được nhập.",
                "This form has not been keyed.",
            )));
        };
        if by != typist.id || pass == 3 {
            return Err(AppError::Forbidden(Msg::new(
                "Chỉ người vừa nhập mới hoàn tác được lần nhập của mình.",
                "Only the person who keyed it can undo their own typing.",
            )));
        }
        let response_id: Option<String> = db_run!(conn: {
            paper_forms::table.find(&paper.member_id).select(paper_forms::response_id).first(conn)
        })?;
        if let Some(response_id) = response_id {
            super::correction::remove_response(conn, &paper.form, &response_id, utc_offset)?;
        }
        db_run!(conn: { diesel::delete(paper_entries::table.find(&entry_id)).execute(conn) })?;
        set_status(
            conn,
            &paper.member_id,
            if pass == 1 { "returned" } else { "keyed" },
        )?;
        audit::record(
            conn,
            &typist.actor(),
            "paper.undo",
            "paper_form",
            &paper.serial,
            Some(json!({ "pass": pass })),
            None,
        )?;
        Ok(())
    })
}
