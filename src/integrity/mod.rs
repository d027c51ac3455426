//! Trustworthy results (issue #8): signals that a counter inflates its e-survey results, the
//! quarantine that keeps suspect responses out of the index until someone has looked at them,
//! and cases that make sure bad ratings are followed up.
//!
//! Every e-survey submission is *screened* before it is queued for the writer: the facts behind
//! each signal (time since the link was issued, answering time, straight-lining, whether it came
//! from the device or network of the counter that registered the dossier, bursts from one
//! address) travel with the submission, and the writer stores them in the same transaction as
//! the response ([`store`]). A held response is stored but not added to the rollups.
//!
//! Network addresses are never stored: only an HMAC under the server secret, keyed with the day,
//! so equal addresses can be compared on the day they matter but a person cannot be followed
//! across days.

pub mod cases;
pub mod contact;
pub mod panel;
pub mod review;
pub mod signals;
pub mod simulate;
pub mod units;

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

pub use self::signals::{
    HoldRules, NewCase, RecentProbe, ResponseFacts, Review, Screening, Signal,
};
use crate::db::DbConn;
use crate::db::schema::{response_signals, responses, survey_tokens};
use crate::db_run;
use crate::forms::answers::AnswerValue;
use crate::forms::{Form, QuestionType};
use crate::secret::ServerSecret;
use crate::survey::response::NewResponse;
use crate::survey::response::ResponseStatus;

/// Thresholds and rules of the screening, from the settings.
#[derive(Debug, Clone)]
pub struct IntegrityPolicy {
    pub fast_seconds: i64,
    pub seconds_per_question: f64,
    pub burst_count: i64,
    pub burst_minutes: i64,
    pub hold: HoldRules,
    pub case_deadline_days: i64,
    pub utc_offset: chrono::FixedOffset,
}

impl IntegrityPolicy {
    /// Fails on an unknown hold rule, so a typo stops the start (see [`crate::policies`]).
    pub fn from_settings(
        s: &crate::config::Settings,
        utc_offset: chrono::FixedOffset,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            fast_seconds: s.integrity_fast_seconds,
            seconds_per_question: s.integrity_seconds_per_question,
            burst_count: s.integrity_burst_count,
            burst_minutes: s.integrity_burst_minutes,
            hold: HoldRules::parse(&s.hold_rules)?,
            case_deadline_days: s.case_deadline_days,
            utc_offset,
        })
    }
}

/// Keyed hashes of a client on one day: of its network address, and of the address with the
/// user agent (a device). Hex of the first 128 bits of HMAC-SHA256.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub network: String,
    pub device: String,
}

pub fn fingerprint(
    secret: &ServerSecret,
    day: NaiveDate,
    address: &str,
    user_agent: &str,
) -> Fingerprint {
    let short = |mac: [u8; 32]| crate::forms::definition::hex(&mac[..16]);
    Fingerprint {
        network: short(secret.mac("integrity-network", &format!("{day}|{address}"))),
        device: short(secret.mac("integrity-device", &format!("{day}|{address}|{user_agent}"))),
    }
}

/// Records who registered a dossier (keyed hashes only), in the registration's transaction.
pub fn record_issuer(conn: &mut DbConn, token_hash: &str, issuer: &Fingerprint) -> QueryResult<()> {
    db_run!(conn: {
        diesel::update(survey_tokens::table.find(token_hash))
            .set((survey_tokens::issuer_network.eq(&issuer.network), survey_tokens::issuer_device.eq(&issuer.device)))
            .execute(conn)
    })?;
    Ok(())
}

/// Where a submission came from, compared with where its link was issued.
#[derive(Debug, Clone, Default)]
pub struct SubmitContext {
    pub same_device: bool,
    pub same_network: bool,
    /// Keyed by the day of submission, for bursts.
    pub network_hash: Option<String>,
    /// Submissions from the same network address within the burst window, before this one,
    /// counted up to the burst threshold (`burst_count - 1`) and 0 below it: only whether the
    /// threshold is reached is read.
    pub recent_from_network: i64,
}

/// What the burst rule must read for a submission from `address` at `now` (see
/// [`context_from`]): the day-keyed network hash and the window.
pub fn recent_probe(
    secret: &ServerSecret,
    policy: &IntegrityPolicy,
    now: NaiveDateTime,
    address: &str,
    user_agent: &str,
) -> RecentProbe {
    let today = fingerprint(secret, now.date(), address, user_agent);
    RecentProbe {
        network_hash: today.network,
        since: now - chrono::Duration::minutes(policy.burst_minutes),
        need: (policy.burst_count - 1).max(0),
    }
}

/// What the screening of a submission needs: the issuer's hashes (keyed with the day the link
/// was issued, read with the token) compared with the submitter's, and whether the submitter's
/// network reached the burst threshold (`recent_reached`, read with the token by the probe).
#[allow(clippy::too_many_arguments)]
pub fn context_from(
    secret: &ServerSecret,
    probe: RecentProbe,
    recent_reached: bool,
    issuer_network: Option<&str>,
    issuer_device: Option<&str>,
    issued_at: NaiveDateTime,
    address: &str,
    user_agent: &str,
) -> SubmitContext {
    let at_issue = fingerprint(secret, issued_at.date(), address, user_agent);
    SubmitContext {
        same_device: issuer_device == Some(at_issue.device.as_str()),
        same_network: issuer_network == Some(at_issue.network.as_str()),
        network_hash: Some(probe.network_hash),
        // Only the threshold is read (a busy address costs the same as a quiet one).
        recent_from_network: if recent_reached { probe.need } else { 0 },
    }
}

/// Fewer rated items than this cannot show straight-lining (the short dossier form has four).
const STRAIGHT_LINE_MIN_ITEMS: usize = 5;

/// Whether every rated item got the same level (at least [`STRAIGHT_LINE_MIN_ITEMS`] of them).
pub fn straight_line(form: &Form, answers: &[AnswerValue]) -> bool {
    let levels: Vec<i64> = answers
        .iter()
        .filter(|a| {
            form.question(&a.question_code)
                .is_some_and(|q| matches!(q.kind, QuestionType::Scale5 | QuestionType::Scale3))
        })
        .filter_map(|a| a.value_int.filter(|l| *l > 0))
        .collect();
    levels.len() >= STRAIGHT_LINE_MIN_ITEMS && levels.iter().all(|l| *l == levels[0])
}

/// Screens one submission: which signals it shows, whether the rules hold it, and whether its
/// overall rating opens a case.
pub fn screen(
    form: &Form,
    response: &NewResponse,
    answers: &[AnswerValue],
    ctx: &SubmitContext,
    policy: &IntegrityPolicy,
) -> Screening {
    let seconds = |from: Option<NaiveDateTime>| {
        from.map(|t| (response.submitted_at - t).num_seconds().max(0))
    };
    let seconds_from_issue = seconds(response.issued_at);
    let seconds_answering = seconds(response.opened_at);
    let questions_answered = answers.len() as i64;
    let straight_line = straight_line(form, answers);
    let facts = ResponseFacts {
        seconds_from_issue,
        seconds_answering,
        questions_answered,
        straight_line,
        same_device: ctx.same_device,
        same_network: ctx.same_network,
        network_hash: ctx.network_hash.clone(),
        burst: ctx.recent_from_network + 1 >= policy.burst_count,
    };
    let signals = signals_of(&facts, policy);
    let held = signals.iter().any(|s| policy.hold.0.contains(s));
    Screening {
        case: case_for(form, response, answers, policy),
        facts,
        signals,
        held,
    }
}

/// The signals the facts show under `policy`'s thresholds.
pub fn signals_of(facts: &ResponseFacts, policy: &IntegrityPolicy) -> Vec<Signal> {
    let mut out = Vec::new();
    if facts.same_device {
        out.push(Signal::SameDevice);
    }
    if facts.same_network {
        out.push(Signal::SameNetwork);
    }
    if facts
        .seconds_from_issue
        .is_some_and(|s| s < policy.fast_seconds)
    {
        out.push(Signal::FastIssue);
    }
    let short = match facts.seconds_answering {
        Some(s) => (s as f64) < policy.seconds_per_question * facts.questions_answered as f64,
        None => true,
    };
    if short {
        out.push(Signal::ShortAnswering);
    }
    if facts.straight_line {
        out.push(Signal::StraightLine);
    }
    if facts.burst {
        out.push(Signal::Burst);
    }
    out
}

/// "Không hài lòng" or "Rất không hài lòng" on the overall question opens a case.
fn case_for(
    form: &Form,
    response: &NewResponse,
    answers: &[AnswerValue],
    policy: &IntegrityPolicy,
) -> Option<NewCase> {
    let overall = form.question_with_role(crate::forms::QuestionRole::Overall)?;
    let level = answers
        .iter()
        .find(|a| a.question_code == overall.code)?
        .value_int?;
    let bad = match overall.kind {
        QuestionType::Scale5 => level == 1 || level == 2,
        QuestionType::Scale3 => level == 1,
        _ => false,
    };
    if !bad {
        return None;
    }
    let comment = answers
        .iter()
        .filter(|a| {
            form.question(&a.question_code)
                .is_some_and(|q| q.kind == QuestionType::Text)
        })
        .filter_map(|a| a.value_text.clone())
        .collect::<Vec<_>>();
    let rated: Vec<AnswerValue> = answers
        .iter()
        .filter(|a| {
            form.question(&a.question_code)
                .is_some_and(|q| q.kind != QuestionType::Text)
        })
        .cloned()
        .collect();
    let today = crate::calendar::local_day(response.submitted_at, policy.utc_offset);
    Some(NewCase {
        overall_level: level,
        answers: crate::survey::stored::encode(&rated),
        comment: (!comment.is_empty()).then(|| comment.join("\n")),
        due_on: crate::calendar::add_working_days(today, policy.case_deadline_days),
        contact: None,
    })
}

/// Writer hook: stores the screening of a just-inserted response (its signals, its hold, its
/// case) in the same transaction. Returns whether the response is held (not to be counted).
pub fn store(
    conn: &mut DbConn,
    response: &NewResponse,
    form_code: &str,
    screening: &Screening,
) -> QueryResult<bool> {
    let f = &screening.facts;
    let codes: Vec<&str> = screening.signals.iter().map(|s| s.code()).collect();
    db_run!(conn: {
        diesel::insert_into(response_signals::table)
            .values((
                response_signals::response_id.eq(&response.id),
                response_signals::unit_id.eq(&response.unit_id),
                response_signals::channel.eq(&response.channel),
                response_signals::submitted_at.eq(response.submitted_at),
                response_signals::seconds_from_issue.eq(f.seconds_from_issue),
                response_signals::seconds_answering.eq(f.seconds_answering),
                response_signals::questions_answered.eq(f.questions_answered),
                response_signals::straight_line.eq(f.straight_line),
                response_signals::same_device.eq(f.same_device),
                response_signals::same_network.eq(f.same_network),
                response_signals::network_hash.eq(&f.network_hash),
                response_signals::burst.eq(f.burst),
                response_signals::signals.eq(codes.join(",")),
                response_signals::review.eq(screening.held.then_some(Review::Held.as_str())),
            ))
            .execute(conn)?;
        if screening.held {
            diesel::update(responses::table.find(&response.id))
                .set(responses::status.eq(ResponseStatus::Held.as_str()))
                .execute(conn)?;
        }
        QueryResult::Ok(())
    })?;
    if let Some(case) = &screening.case {
        cases::open(conn, response, form_code, case)?;
    }
    Ok(screening.held)
}

crate::set_sql!(
    /// The signals rows of a whole batch of answers in one statement (see [`store_many`]).
    InsertSignals,
    diesel::sql_types::Integer,
    "INSERT INTO response_signals (response_id, unit_id, channel, submitted_at, \
     seconds_from_issue, seconds_answering, questions_answered, straight_line, same_device, \
     same_network, network_hash, burst, signals, review) \
     SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::timestamp[], ?::int8[], \
     ?::int8[], ?::int8[], ?::bool[], ?::bool[], ?::bool[], ?::text[], ?::bool[], ?::text[], \
     ?::text[])"
);

// The statement's literal is `ResponseStatus::Held` (a set statement is a constant string);
// `hold_rule_tests::hold_statement_sets_the_held_status` keeps the two together.
crate::set_sql!(
    /// Holds a batch's held answers for review.
    HoldResponses,
    diesel::sql_types::Integer,
    "UPDATE responses SET status = 'held' WHERE id = ANY(?::text[])"
);

/// As [`store`] for a whole batch of answers (the group commit's), with the same rows: on
/// PostgreSQL one statement for all signals rows and one for the held answers, instead of one
/// or two per answer; on SQLite (local calls cost nothing) [`store`] for each.
pub fn store_many(
    conn: &mut DbConn,
    batch: &[(&NewResponse, &str, &Screening)],
) -> QueryResult<()> {
    use crate::db::statements::{Column, SetStatement};
    if batch.is_empty() {
        return Ok(());
    }
    let DbConn::Postgres(pg) = conn else {
        for (response, form_code, screening) in batch {
            store(conn, response, form_code, screening)?;
        }
        return Ok(());
    };
    let pg: &mut diesel::PgConnection = pg;
    let codes: Vec<String> = batch
        .iter()
        .map(|(_, _, s)| {
            s.signals
                .iter()
                .map(|s| s.code())
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    let facts = |f: fn(&ResponseFacts) -> bool| batch.iter().map(|(_, _, s)| f(&s.facts)).collect();
    SetStatement::<InsertSignals>::new(vec![
        Column::Text(batch.iter().map(|(r, _, _)| r.id.as_str()).collect()),
        Column::Text(batch.iter().map(|(r, _, _)| r.unit_id.as_str()).collect()),
        Column::Text(batch.iter().map(|(r, _, _)| r.channel.as_str()).collect()),
        Column::Time(batch.iter().map(|(r, _, _)| r.submitted_at).collect()),
        Column::NullInt(
            batch
                .iter()
                .map(|(_, _, s)| s.facts.seconds_from_issue)
                .collect(),
        ),
        Column::NullInt(
            batch
                .iter()
                .map(|(_, _, s)| s.facts.seconds_answering)
                .collect(),
        ),
        Column::Int(
            batch
                .iter()
                .map(|(_, _, s)| s.facts.questions_answered)
                .collect(),
        ),
        Column::Bool(facts(|f| f.straight_line)),
        Column::Bool(facts(|f| f.same_device)),
        Column::Bool(facts(|f| f.same_network)),
        Column::NullText(
            batch
                .iter()
                .map(|(_, _, s)| s.facts.network_hash.as_deref())
                .collect(),
        ),
        Column::Bool(facts(|f| f.burst)),
        Column::Text(codes.iter().map(String::as_str).collect()),
        Column::NullText(
            batch
                .iter()
                .map(|(_, _, s)| s.held.then_some(Review::Held.as_str()))
                .collect(),
        ),
    ])
    .execute(pg)?;
    let held: Vec<&str> = batch
        .iter()
        .filter(|(_, _, s)| s.held)
        .map(|(r, _, _)| r.id.as_str())
        .collect();
    if !held.is_empty() {
        SetStatement::<HoldResponses>::new(vec![Column::Text(held)]).execute(pg)?;
    }
    for (response, form_code, screening) in batch {
        if let Some(case) = &screening.case {
            cases::open(conn, response, form_code, case)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod hold_rule_tests {
    use super::*;

    #[test]
    fn hold_statement_sets_the_held_status() {
        use crate::db::statements::SetSql;
        let held = format!("status = '{}'", ResponseStatus::Held.as_str());
        assert!(HoldResponses::SQL.contains(&held));
    }

    #[test]
    fn none_holds_nothing_and_unknown_codes_are_refused() {
        assert!(HoldRules::parse("none").unwrap().0.is_empty());
        assert!(HoldRules::parse(" NONE ").unwrap().0.is_empty());
        assert_eq!(
            HoldRules::parse("same_device, same_device,fast_issue")
                .unwrap()
                .0
                .len(),
            2
        );
        let err = HoldRules::parse("same_device,typo")
            .unwrap_err()
            .to_string();
        assert!(err.contains("typo"), "{err}");
    }
}
