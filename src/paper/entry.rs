//! Keying paper forms: the serial first (unknown or forged serials are refused), answers checked
//! by the same validator as the web survey, optional double entry by a second person without
//! seeing the first, and only then a response in the index. Disagreements go to
//! [`super::disputes`].
//!
//! Why a typing goes through the group commit (`services.writer`) rather than a transaction of
//! its own: a typing that completes a form stores a response and moves the rollup cells that
//! every citizen's answer moves too. The writer thread is the one writer of those cells (on
//! SQLite the only writer of the file, so a second writing connection would queue behind its
//! batches on the busy timeout; on PostgreSQL the batch applies all its cells in one sorted
//! pass); in the batch the typing shares the fsync, is ordered with every submission, and keeps
//! its own savepoint, so a refused typing spoils nothing else. It also makes the pass rule
//! exact: the writer decides on the entries as stored at that moment, so two typists saving the
//! same form at once cannot both take the same pass. Bulk loads (CSV import, the demo) hold
//! their own connection and use [`save`], one transaction for the whole file.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

pub use super::keyed::{PaperForm, Pass, Refusal, find};
use super::status::FormStatus;
use crate::accounts::Actor;
use crate::audit;
use crate::db::DbConn;
use crate::db::schema::{paper_batches, paper_entries, paper_forms};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::Form;
use crate::forms::answers::{self, AnswerProblems, ValidAnswers};
use crate::i18n::Msg;
use crate::rollup::RollupDelta;
use crate::services::Services;
use crate::survey::response::{NewResponse, Submission};
use crate::survey::writer::insert_responses;

// ---------------------------------------------------------------- use cases

/// Use case: opens a form for typing (`GET /paper/entry/{serial}`): found by its serial among
/// the forms the actor's organisation was handed, and theirs to key now (see
/// [`PaperForm::next_pass`]); a form they may not key is a conflict that says why.
pub async fn open_form(services: &Services, actor: Actor, serial: String) -> AppResult<PaperForm> {
    let forms = services.forms.clone();
    services
        .with_conn(move |conn| {
            let paper = find(conn, &forms, &actor, &serial)?;
            paper.next_pass(actor.account_id())?;
            Ok(paper)
        })
        .await
}

/// What became of a typing.
#[derive(Debug)]
pub enum Keyed {
    Saved {
        serial: String,
        saved: Saved,
    },
    /// Answers out of the form's rules, or a blank form not confirmed: nothing stored.
    Refused(Box<Refusal>),
}

/// Use case: saves one typing of a form (`POST /paper/entry/{serial}`) through the group commit.
pub async fn save_typing(
    services: &Services,
    actor: Actor,
    serial: String,
    typing: Typing,
) -> AppResult<Keyed> {
    let forms = services.forms.clone();
    let finder = actor.clone();
    let paper = services
        .with_conn(move |conn| find(conn, &forms, &finder, &serial))
        .await?;
    let valid = match check(&paper, &typing) {
        Ok(valid) => valid,
        Err((problems, issues)) => {
            return Ok(Keyed::Refused(Box::new(Refusal {
                paper,
                given: typing.answers,
                problems,
                issues,
            })));
        }
    };
    let offset = services.policies.utc_offset;
    let serial = paper.serial.clone();
    let saved = services
        .writer
        .run(move |conn, delta| write_typing(conn, &actor, &paper, &valid, &typing, delta, offset))
        .await??;
    Ok(Keyed::Saved { serial, saved })
}

/// Use case: the typist takes back their own latest typing of a form
/// (`POST /paper/entry/{serial}/undo`); returns the form's serial.
pub async fn undo(services: &Services, actor: Actor, serial: String) -> AppResult<String> {
    let forms = services.forms.clone();
    let finder = actor.clone();
    let paper = services
        .with_conn(move |conn| find(conn, &forms, &finder, &serial))
        .await?;
    let offset = services.policies.utc_offset;
    let serial = paper.serial.clone();
    services
        .writer
        .run(move |conn, delta| undo_last(conn, &actor, &paper, delta, offset))
        .await??;
    Ok(serial)
}

/// Use case: the keying statistics of the actor's organisation (all, for administrators), each
/// typist with their display name (`GET /paper/typists`).
pub async fn typists(services: &Services, actor: Actor) -> AppResult<Vec<(String, TypistStat)>> {
    services
        .with_conn(move |conn| {
            let stats = typist_stats(conn, actor.paper_scope())?;
            let mut named = Vec::with_capacity(stats.len());
            for s in stats {
                let name = crate::accounts::users::find(conn, &s.typist_id)?
                    .map(|u| format!("{} ({})", u.display_name, u.username))
                    .unwrap_or_default();
                named.push((name, s));
            }
            Ok(named)
        })
        .await
}

// ---------------------------------------------------------------- rules and writes

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
pub(super) fn comparable(valid: &ValidAnswers) -> BTreeMap<String, String> {
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Saved {
    /// Counted in the index now.
    Verified,
    /// Waiting for the second, independent typing.
    AwaitingSecondEntry,
    /// The two typings differ: waiting for adjudication.
    Disputed,
}

/// Why an entry saved on a held connection ([`save`]) was refused: field problems to show
/// next to the questions, or another reason.
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
    /// The posted fields, in order (multi-choice questions repeat their code); fields that are
    /// not questions are ignored by the validator.
    pub answers: Vec<(String, String)>,
    /// Accepts a form with no ratings at all (after the typist confirmed it is really blank).
    pub confirm_blank: bool,
    pub started_at: NaiveDateTime,
    pub keystrokes: i64,
}

impl Typing {
    /// Reads a posted entry form. Besides the answers the screen sends when the typing started
    /// (seconds since 1970) and how many keys were pressed: figures for the typists' statistics
    /// only, so a missing or unreadable one becomes "now" and 0 rather than losing the typing.
    pub fn parse(fields: Vec<(String, String)>, now: NaiveDateTime) -> Self {
        let field = |name: &str| {
            fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim())
        };
        let started_at = field("started_at")
            .and_then(|s| s.parse::<i64>().ok())
            .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
            .map(|t| t.naive_utc())
            .unwrap_or(now);
        let keystrokes = field("keystrokes")
            .and_then(|k| k.parse().ok())
            .unwrap_or(0);
        let confirm_blank = field("confirm_blank").is_some();
        Self {
            answers: fields,
            confirm_blank,
            started_at,
            keystrokes,
        }
    }
}

/// Checks a typing against its form: the form's own rules, then a blank form needs the
/// typist's confirmation.
fn check(
    paper: &PaperForm,
    typing: &Typing,
) -> Result<ValidAnswers, (AnswerProblems, Vec<(String, Msg)>)> {
    let valid = answers::validate(&paper.form, &typing.answers).map_err(|p| (p, Vec::new()))?;
    let issues = contradictions(&paper.form, &valid);
    if !issues.is_empty() && !typing.confirm_blank {
        return Err((AnswerProblems::new(), issues));
    }
    Ok(valid)
}

/// Saves one typing of a form on a connection the caller holds, in one transaction: for bulk
/// loads (CSV import, the demo) that hold their own connection. Requests use [`save_typing`].
pub fn save(
    conn: &mut DbConn,
    typist: &Actor,
    paper: &PaperForm,
    typing: &Typing,
    utc_offset: chrono::FixedOffset,
) -> Result<Saved, EntryError> {
    let valid = check(paper, typing).map_err(|(p, i)| EntryError::Invalid(p, i))?;
    conn.write_transaction(|conn| -> AppResult<Saved> {
        let mut delta = RollupDelta::default();
        let saved = write_typing(conn, typist, paper, &valid, typing, &mut delta, utc_offset)?;
        delta.apply(conn)?;
        Ok(saved)
    })
    .map_err(EntryError::Other)
}

/// Writes a checked typing in the caller's transaction: decides the pass on the entries as
/// stored now, records the entry and its audit event, and completes the form when the typings
/// agree (its counts go to `delta`).
fn write_typing(
    conn: &mut DbConn,
    typist: &Actor,
    paper: &PaperForm,
    valid: &ValidAnswers,
    typing: &Typing,
    delta: &mut RollupDelta,
    utc_offset: chrono::FixedOffset,
) -> AppResult<Saved> {
    let mut paper = paper.clone();
    paper.refresh(conn)?;
    let pass = paper.next_pass(typist.account_id())?;
    let pairs_json = serde_json::to_string(&comparable(valid)).unwrap_or_default();
    let now = crate::db::now();
    db_run!(conn: {
        diesel::insert_into(paper_entries::table)
            .values((
                paper_entries::id.eq(uuid::Uuid::new_v4().to_string()),
                paper_entries::member_id.eq(&paper.member_id),
                paper_entries::pass.eq(pass.number()),
                paper_entries::typist_id.eq(typist.account_id()),
                paper_entries::answers.eq(&pairs_json),
                paper_entries::started_at.eq(typing.started_at.min(now)),
                paper_entries::saved_at.eq(now),
                paper_entries::keystrokes.eq(typing.keystrokes.max(0)),
            ))
            .execute(conn)
    })?;
    audit::record(
        conn,
        &typist.audit(),
        &format!("paper.entry{}", pass.number()),
        "paper_form",
        &paper.serial,
        None,
        Some(json!(comparable(valid))),
    )?;
    match pass {
        Pass::First if paper.double_entry => {
            set_status(conn, &paper.member_id, FormStatus::Keyed)?;
            Ok(Saved::AwaitingSecondEntry)
        }
        Pass::First => {
            finalize(conn, &paper, valid, delta, utc_offset)?;
            Ok(Saved::Verified)
        }
        Pass::Second => {
            let first: String = db_run!(conn: {
                paper_entries::table.filter(paper_entries::member_id.eq(&paper.member_id)).filter(paper_entries::pass.eq(1)).select(paper_entries::answers).first(conn)
            })?;
            if first == pairs_json {
                finalize(conn, &paper, valid, delta, utc_offset)?;
                Ok(Saved::Verified)
            } else {
                set_status(conn, &paper.member_id, FormStatus::Disputed)?;
                Ok(Saved::Disputed)
            }
        }
    }
}

pub(super) fn set_status(
    conn: &mut DbConn,
    member_id: &str,
    status: FormStatus,
) -> QueryResult<usize> {
    db_run!(conn: {
        diesel::update(paper_forms::table.find(member_id))
            .set((paper_forms::status.eq(status.as_str()), paper_forms::updated_at.eq(crate::db::now())))
            .execute(conn)
    })
}

/// Stores the agreed answers as an ordinary response (channel `paper`) with its provenance, in
/// the caller's transaction; its counts go to `delta`.
pub(super) fn finalize(
    conn: &mut DbConn,
    paper: &PaperForm,
    valid: &ValidAnswers,
    delta: &mut RollupDelta,
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
    // No token to spend, no dossier to rate, no screening: the response row and its counts.
    insert_responses(conn, &[&submission])?;
    delta.add(&submission, utc_offset);
    db_run!(conn: {
        diesel::update(paper_forms::table.find(&paper.member_id))
            .set((paper_forms::status.eq(FormStatus::Verified.as_str()), paper_forms::response_id.eq(Some(&response_id)), paper_forms::updated_at.eq(now)))
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
            let disputed = status == FormStatus::Disputed.as_str()
                || (status == FormStatus::Verified.as_str() && disagreed_before(conn, member)?);
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

/// Undoes the typist's own latest typing of a form (a slip noticed right after saving), in the
/// caller's transaction: the entry is removed, and a response it created is taken back out of
/// the index through `delta`.
fn undo_last(
    conn: &mut DbConn,
    typist: &Actor,
    paper: &PaperForm,
    delta: &mut RollupDelta,
    utc_offset: chrono::FixedOffset,
) -> AppResult<()> {
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
    if by != typist.account_id() || pass == 3 {
        return Err(AppError::Forbidden(Msg::new(
            "Chỉ người vừa nhập mới hoàn tác được lần nhập của mình.",
            "Only the person who keyed it can undo their own typing.",
        )));
    }
    let response_id: Option<String> = db_run!(conn: {
        paper_forms::table.find(&paper.member_id).select(paper_forms::response_id).first(conn)
    })?;
    if let Some(response_id) = response_id {
        super::correction::remove_response(conn, &paper.form, &response_id, delta, utc_offset)?;
    }
    db_run!(conn: { diesel::delete(paper_entries::table.find(&entry_id)).execute(conn) })?;
    set_status(
        conn,
        &paper.member_id,
        if pass == 1 {
            FormStatus::Returned
        } else {
            FormStatus::Keyed
        },
    )?;
    audit::record(
        conn,
        &typist.audit(),
        "paper.undo",
        "paper_form",
        &paper.serial,
        Some(json!({ "pass": pass })),
        None,
    )?;
    Ok(())
}
