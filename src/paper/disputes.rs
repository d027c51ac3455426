//! Adjudication of forms whose two typings disagree: a third person, not one of the typists,
//! checks the paper form and decides; the decision is stored as the form's response, through the
//! group commit like every typing (see [`super::entry`] for why).

use std::collections::BTreeMap;

use diesel::prelude::*;
use serde_json::json;

use super::correction::form_with_answers;
use super::entry::{comparable, finalize};
use super::keyed::{PaperForm, Refusal, find};
use super::status::FormStatus;
use crate::accounts::Actor;
use crate::audit;
use crate::db::DbConn;
use crate::db::schema::{paper_batches, paper_entries, paper_forms, sample_members, units};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::answers::ValidAnswers;
use crate::i18n::Msg;
use crate::rollup::RollupDelta;
use crate::services::Services;

/// A disputed form in the list: serial, unit name, batch code.
pub type DisputedForm = (String, String, String);

/// Use case: the disputed forms of the actor's organisation, all for administrators
/// (`GET /paper/disputes`).
pub async fn list(services: &Services, actor: Actor) -> AppResult<Vec<DisputedForm>> {
    services
        .with_conn(move |conn| Ok(disputed(conn, actor.paper_scope())?))
        .await
}

/// A disputed form opened for adjudication.
#[derive(Debug)]
pub struct Dispute {
    pub paper: PaperForm,
    /// (question, first typing, second typing) where they differ.
    pub differences: Vec<(String, String, String)>,
    /// The first typing as form pairs, to start the decision from.
    pub first: Vec<(String, String)>,
}

/// Use case: opens a disputed form for adjudication (`GET /paper/disputes/{serial}`).
pub async fn open(services: &Services, actor: Actor, serial: String) -> AppResult<Dispute> {
    let forms = services.forms.clone();
    services
        .with_conn(move |conn| {
            let paper = find(conn, &forms, &actor, &serial)?;
            may_adjudicate(&paper, &actor)?;
            let differences = disagreements(conn, &paper.member_id)?;
            let first = first_typing(conn, &paper.member_id)?;
            Ok(Dispute {
                paper,
                differences,
                first,
            })
        })
        .await
}

/// What became of an adjudication.
#[derive(Debug)]
pub enum Resolved {
    /// The decided answers are stored and counted.
    Saved { serial: String },
    /// The answers break the form's rules: nothing stored.
    Refused(Box<Refusal>),
}

/// Use case: the adjudicator's final answers for a disputed form (`POST /paper/disputes/{serial}`).
pub async fn resolve(
    services: &Services,
    actor: Actor,
    serial: String,
    answers: Vec<(String, String)>,
) -> AppResult<Resolved> {
    let may = |paper: &PaperForm| may_adjudicate(paper, &actor);
    let (paper, valid) = match form_with_answers(services, &actor, serial, answers, may).await? {
        Ok(checked) => checked,
        Err(refusal) => return Ok(Resolved::Refused(refusal)),
    };
    let offset = services.policies.utc_offset;
    let serial = paper.serial.clone();
    services
        .writer
        .run(move |conn, delta| adjudicate(conn, &actor, &paper, &valid, delta, offset))
        .await??;
    Ok(Resolved::Saved { serial })
}

/// Who may decide a form: only a disputed one, and not one of its typists.
fn may_adjudicate(paper: &PaperForm, judge: &Actor) -> AppResult<()> {
    if paper.status != FormStatus::Disputed {
        return Err(AppError::Conflict(Msg::new(
            "Phiếu này không có khác biệt cần xử lý.",
            "This form has no disagreement to resolve.",
        )));
    }
    if paper.passes.iter().any(|(_, t)| t == judge.account_id()) {
        return Err(AppError::Forbidden(Msg::new(
            "Người đã nhập phiếu không được phân xử phiếu đó.",
            "A typist of this form cannot adjudicate it.",
        )));
    }
    Ok(())
}

/// Stores the adjudicator's decision in the caller's transaction, checked again on the form as
/// stored now (another adjudicator may have decided meanwhile); its counts go to `delta`.
fn adjudicate(
    conn: &mut DbConn,
    judge: &Actor,
    paper: &PaperForm,
    valid: &ValidAnswers,
    delta: &mut RollupDelta,
    utc_offset: chrono::FixedOffset,
) -> AppResult<()> {
    let mut paper = paper.clone();
    paper.refresh(conn)?;
    may_adjudicate(&paper, judge)?;
    let now = crate::db::now();
    db_run!(conn: {
        diesel::insert_into(paper_entries::table)
            .values((
                paper_entries::id.eq(uuid::Uuid::new_v4().to_string()),
                paper_entries::member_id.eq(&paper.member_id),
                paper_entries::pass.eq(3),
                paper_entries::typist_id.eq(judge.account_id()),
                paper_entries::answers.eq(serde_json::to_string(&comparable(valid)).unwrap_or_default()),
                paper_entries::started_at.eq(now),
                paper_entries::saved_at.eq(now),
                paper_entries::keystrokes.eq(0),
            ))
            .execute(conn)
    })?;
    audit::record(
        conn,
        &judge.audit(),
        "paper.adjudicate",
        "paper_form",
        &paper.serial,
        None,
        Some(json!(comparable(valid))),
    )?;
    finalize(conn, &paper, valid, delta, utc_offset)
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
            .filter(paper_forms::status.eq(FormStatus::Disputed.as_str()))
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
