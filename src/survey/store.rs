//! How an answer is stored: its token spent, the response, its integrity signals and case, the
//! dossier's rating and the end of the dossier's mail, and what it adds to the rollups.
//!
//! Two shapes of the same writes: one answer at a time ([`store_one`], SQLite's group commit,
//! bulk loads and the slow path), and a whole batch in a handful of statements
//! ([`store_many`], PostgreSQL's group commit), where every statement is a round trip.

use chrono::{FixedOffset, NaiveDateTime};
use diesel::prelude::*;

use super::response::{NewResponse, Submission, SubmitOutcome, UNSATISFIED_RATING};
use super::stored;
use crate::db::DbConn;
use crate::db::schema::{responses, survey_tokens};
use crate::db::statements::{Column, RateDossier, SetStatement, SpendToken};
use crate::rollup::{DossierChange, RollupDelta};
use crate::{db_run, set_sql};

set_sql!(
    /// Spends every token of a batch that is neither spent nor expired at its submission's
    /// time; returns the ones spent.
    SpendTokens,
    diesel::sql_types::Text,
    "UPDATE survey_tokens AS t SET spent_at = v.at \
     FROM unnest(?::text[], ?::timestamp[]) AS v(h, at) \
     WHERE t.token_hash = v.h AND t.spent_at IS NULL AND t.expires_at > v.at \
     RETURNING t.token_hash"
);

set_sql!(
    /// Whether each of some tokens is unspent (so refused as expired), for the refused ones.
    TokenStates,
    (diesel::sql_types::Text, diesel::sql_types::Bool),
    "SELECT token_hash, spent_at IS NULL FROM survey_tokens WHERE token_hash = ANY(?::text[])"
);

set_sql!(
    /// A batch's responses in one statement.
    InsertResponses,
    diesel::sql_types::Integer,
    "INSERT INTO responses (id, unit_id, procedure_id, form_code, form_version, channel, \
     respondent_type, language, issued_at, opened_at, submitted_at, provenance, answers) \
     SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::int8[], ?::text[], \
     ?::text[], ?::text[], ?::timestamp[], ?::timestamp[], ?::timestamp[], ?::text[], ?::text[])"
);

set_sql!(
    /// Stores the overall rating of each dossier not yet rated; returns the dossiers rated
    /// with their unit, completion and due times.
    RateDossiers,
    (
        diesel::sql_types::Text,
        diesel::sql_types::Text,
        diesel::sql_types::Timestamp,
        diesel::sql_types::Nullable<diesel::sql_types::Timestamp>
    ),
    "UPDATE transactions AS t SET rating = v.rating \
     FROM unnest(?::text[], ?::int8[]) AS v(id, rating) \
     WHERE t.id = v.id AND t.rating IS NULL \
     RETURNING t.id, t.unit_id, t.completed_at, t.due_at"
);

/// What [`store_one`] does for each submission, for a whole batch in a handful of statements
/// (PostgreSQL only); returns each submission's outcome, in order, and counts the stored ones.
/// A link submitted twice in one batch is spent by the first submission, and the others are
/// refused as [`store_one`] would refuse them one after the other.
pub(super) fn store_many(
    conn: &mut DbConn,
    jobs: &[(&Submission, &str)],
    delta: &mut RollupDelta,
    utc_offset: FixedOffset,
) -> QueryResult<Vec<SubmitOutcome>> {
    use std::collections::{HashMap, HashSet};
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let DbConn::Postgres(pg) = conn else {
        return Err(diesel::result::Error::QueryBuilderError(
            "the set-based writer is for PostgreSQL".into(),
        ));
    };
    let pg: &mut diesel::PgConnection = pg;
    // Each token once, by its first submission, in one (sorted) order.
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        if let Some(hash) = &job.0.token_hash {
            first_of.entry(hash.as_str()).or_insert(i);
        }
    }
    let mut spending: Vec<(&str, NaiveDateTime)> = first_of
        .iter()
        .map(|(hash, i)| (*hash, jobs[*i].0.response.submitted_at))
        .collect();
    spending.sort_unstable();
    let spent: HashSet<String> = if spending.is_empty() {
        HashSet::new()
    } else {
        SetStatement::<SpendTokens>::new(vec![
            Column::Text(spending.iter().map(|(h, _)| *h).collect()),
            Column::Time(spending.iter().map(|(_, at)| *at).collect()),
        ])
        .load::<String>(pg)?
        .into_iter()
        .collect()
    };
    let refused: Vec<&str> = spending
        .iter()
        .map(|(h, _)| *h)
        .filter(|h| !spent.contains(*h))
        .collect();
    // Refused: an unspent token has expired; a spent or unknown one is used.
    let unspent: HashMap<String, bool> = if refused.is_empty() {
        HashMap::new()
    } else {
        SetStatement::<TokenStates>::new(vec![Column::Text(refused)])
            .load::<(String, bool)>(pg)?
            .into_iter()
            .collect()
    };
    let outcomes: Vec<SubmitOutcome> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| match &job.0.token_hash {
            None => SubmitOutcome::Stored,
            Some(hash) if spent.contains(hash) => {
                if first_of.get(hash.as_str()) == Some(&i) {
                    SubmitOutcome::Stored
                } else {
                    SubmitOutcome::AlreadyUsed
                }
            }
            Some(hash) if unspent.get(hash) == Some(&true) => SubmitOutcome::Expired,
            Some(_) => SubmitOutcome::AlreadyUsed,
        })
        .collect();
    let stored: Vec<(&Submission, &str)> = jobs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == SubmitOutcome::Stored)
        .map(|(j, _)| *j)
        .collect();
    if stored.is_empty() {
        return Ok(outcomes);
    }
    let rs: Vec<&NewResponse> = stored.iter().map(|j| &j.0.response).collect();
    SetStatement::<InsertResponses>::new(vec![
        Column::Text(rs.iter().map(|r| r.id.as_str()).collect()),
        Column::Text(rs.iter().map(|r| r.unit_id.as_str()).collect()),
        Column::NullText(rs.iter().map(|r| r.procedure_id.as_deref()).collect()),
        Column::Text(rs.iter().map(|r| r.form_code.as_str()).collect()),
        Column::Int(rs.iter().map(|r| r.form_version).collect()),
        Column::Text(rs.iter().map(|r| r.channel.as_str()).collect()),
        Column::NullText(rs.iter().map(|r| r.respondent_type.as_deref()).collect()),
        Column::Text(rs.iter().map(|r| r.language.as_str()).collect()),
        Column::NullTime(rs.iter().map(|r| r.issued_at).collect()),
        Column::NullTime(rs.iter().map(|r| r.opened_at).collect()),
        Column::Time(rs.iter().map(|r| r.submitted_at).collect()),
        Column::NullText(rs.iter().map(|r| r.provenance.as_deref()).collect()),
        Column::Text(stored.iter().map(|j| j.1).collect()),
    ])
    .execute(pg)?;
    let screened: Vec<_> = stored
        .iter()
        .filter_map(|j| {
            let s = j.0;
            s.screening
                .as_ref()
                .map(|screening| (&s.response, s.response.form_code.as_str(), screening))
        })
        .collect();
    crate::integrity::store_many(conn, &screened)?;
    let DbConn::Postgres(pg) = conn else {
        return Err(diesel::result::Error::QueryBuilderError(
            "the set-based writer is for PostgreSQL".into(),
        ));
    };
    let pg: &mut diesel::PgConnection = pg;
    // Each dossier rated once (by its first answer), in one (sorted) order.
    let mut ratings: Vec<(&str, i64)> = stored
        .iter()
        .filter_map(|j| {
            let (id, rating) = j.0.dossier_rating.as_ref()?;
            Some((id.as_str(), *rating))
        })
        .collect();
    ratings.sort_by(|a, b| a.0.cmp(b.0));
    ratings.dedup_by(|later, earlier| later.0 == earlier.0);
    let mut rated: Vec<RatedDossier> = Vec::new();
    if !ratings.is_empty() {
        let rows: Vec<(String, String, NaiveDateTime, Option<NaiveDateTime>)> =
            SetStatement::<RateDossiers>::new(vec![
                Column::Text(ratings.iter().map(|(id, _)| *id).collect()),
                Column::Int(ratings.iter().map(|(_, r)| *r).collect()),
            ])
            .load(pg)?;
        let rating_of: HashMap<&str, i64> = ratings.iter().copied().collect();
        for (id, unit_id, completed_at, due_at) in rows {
            let rating = rating_of.get(id.as_str()).copied().unwrap_or_default();
            rated.push(RatedDossier {
                unit_id,
                completed_at,
                late: due_at.is_some_and(|due| completed_at > due),
                unsatisfied: rating == UNSATISFIED_RATING,
            });
        }
    }
    // An answer ends all mail about its dossier and erases the citizen's address.
    let mut answered: Vec<&str> = stored
        .iter()
        .filter_map(|j| j.0.transaction_id.as_deref())
        .collect();
    answered.sort_unstable();
    answered.dedup();
    crate::mail::outbox::stop_all_many(conn, &answered)?;
    for job in &stored {
        if job.0.counts_now() {
            delta.add(job.0, utc_offset);
        }
    }
    for rated in rated {
        delta.add_dossier(
            &rated.unit_id,
            rated.completed_at,
            utc_offset,
            rated.change(),
        );
    }
    Ok(outcomes)
}

/// Adds what a stored submission changes to the batch's rollups.
pub(super) fn count(
    delta: &mut RollupDelta,
    submission: &Submission,
    outcome: SubmitOutcome,
    rated: Option<RatedDossier>,
    utc_offset: FixedOffset,
) {
    if outcome == SubmitOutcome::Stored && submission.counts_now() {
        delta.add(submission, utc_offset);
    }
    if let Some(rated) = rated {
        delta.add_dossier(
            &rated.unit_id,
            rated.completed_at,
            utc_offset,
            rated.change(),
        );
    }
}

/// Stores one submission whose link the caller already claimed (a book sticker, see
/// `counter::books`), inside a job of the group commit ([`super::writer::ResponseWriter::run`]): the response,
/// its screening, the dossier's rating and the end of its mail, counted in `delta` as a
/// request's answer is.
pub fn store_claimed(
    conn: &mut DbConn,
    delta: &mut RollupDelta,
    submission: &Submission,
    utc_offset: FixedOffset,
) -> QueryResult<SubmitOutcome> {
    let answers = stored::encode(&submission.answers);
    let (outcome, rated) = store_one(conn, submission, &answers)?;
    count(delta, submission, outcome, rated, utc_offset);
    Ok(outcome)
}

/// Stores submissions in one transaction and returns each one's outcome; an error means
/// nothing was committed (for bulk loads; requests go through [`super::writer::ResponseWriter`]).
pub fn store_batch(
    conn: &mut DbConn,
    batch: &[Submission],
    utc_offset: FixedOffset,
) -> anyhow::Result<Vec<SubmitOutcome>> {
    let outcomes = conn.write_transaction(|conn| -> QueryResult<Vec<SubmitOutcome>> {
        let mut delta = RollupDelta::default();
        let mut outcomes = Vec::with_capacity(batch.len());
        for submission in batch {
            // Each submission in its own savepoint: one failure never spoils the batch.
            let answers = stored::encode(&submission.answers);
            let (outcome, rated) =
                conn.write_transaction(|conn| store_one(conn, submission, &answers))?;
            count(&mut delta, submission, outcome, rated, utc_offset);
            outcomes.push(outcome);
        }
        delta.apply(conn)?;
        Ok(outcomes)
    })?;
    Ok(outcomes)
}

/// Inserts responses with their answers, many rows per statement (bulk loads share this with
/// the request path, so both store exactly the same columns).
pub fn insert_responses(conn: &mut DbConn, batch: &[&Submission]) -> QueryResult<()> {
    // SQLite takes at most 32,766 bound values per statement: 13 columns × 1,000 rows.
    for chunk in batch.chunks(1000) {
        let answers: Vec<String> = chunk.iter().map(|s| stored::encode(&s.answers)).collect();
        let rows: Vec<ResponseValues<'_>> = chunk
            .iter()
            .zip(&answers)
            .map(|(s, answers)| response_values(s, answers))
            .collect();
        db_run!(conn: { diesel::insert_into(responses::table).values(rows).execute(conn) })?;
    }
    Ok(())
}

type ResponseValues<'a> = (
    diesel::dsl::Eq<responses::id, &'a String>,
    diesel::dsl::Eq<responses::unit_id, &'a String>,
    diesel::dsl::Eq<responses::procedure_id, &'a Option<String>>,
    diesel::dsl::Eq<responses::form_code, &'a String>,
    diesel::dsl::Eq<responses::form_version, i64>,
    diesel::dsl::Eq<responses::channel, &'a String>,
    diesel::dsl::Eq<responses::respondent_type, &'a Option<String>>,
    diesel::dsl::Eq<responses::language, &'a String>,
    diesel::dsl::Eq<responses::issued_at, Option<NaiveDateTime>>,
    diesel::dsl::Eq<responses::opened_at, Option<NaiveDateTime>>,
    diesel::dsl::Eq<responses::submitted_at, NaiveDateTime>,
    diesel::dsl::Eq<responses::provenance, &'a Option<String>>,
    diesel::dsl::Eq<responses::answers, &'a str>,
);

fn response_values<'a>(submission: &'a Submission, answers: &'a str) -> ResponseValues<'a> {
    let r = &submission.response;
    (
        responses::id.eq(&r.id),
        responses::unit_id.eq(&r.unit_id),
        responses::procedure_id.eq(&r.procedure_id),
        responses::form_code.eq(&r.form_code),
        responses::form_version.eq(r.form_version),
        responses::channel.eq(&r.channel),
        responses::respondent_type.eq(&r.respondent_type),
        responses::language.eq(&r.language),
        responses::issued_at.eq(r.issued_at),
        responses::opened_at.eq(r.opened_at),
        responses::submitted_at.eq(r.submitted_at),
        responses::provenance.eq(&r.provenance),
        responses::answers.eq(answers),
    )
}

/// A dossier that just received its rating, for the dossier rollups.
pub(super) struct RatedDossier {
    unit_id: String,
    completed_at: NaiveDateTime,
    late: bool,
    unsatisfied: bool,
}

impl RatedDossier {
    /// What the rating changes in the Decision 766 counts: a dossier already late was already
    /// subtracted once.
    fn change(&self) -> DossierChange {
        let unsatisfied = i64::from(self.unsatisfied);
        DossierChange {
            rated_unsatisfied: unsatisfied,
            unsatisfied_or_late: if self.late { 0 } else { unsatisfied },
            ..DossierChange::default()
        }
    }
}

/// Spends the token (if any) and stores one response with its answers.
pub(super) fn store_one(
    conn: &mut DbConn,
    submission: &Submission,
    answers: &str,
) -> QueryResult<(SubmitOutcome, Option<RatedDossier>)> {
    db_run!(conn: {
        let now = submission.response.submitted_at;
        if let Some(hash) = &submission.token_hash {
            let spent = SpendToken { token_hash: hash, now }.execute(conn)?;
            if spent == 0 {
                let spent_at: Option<Option<NaiveDateTime>> = survey_tokens::table
                    .find(hash)
                    .select(survey_tokens::spent_at)
                    .first(conn)
                    .optional()?;
                return Ok((match spent_at {
                    Some(None) => SubmitOutcome::Expired,
                    _ => SubmitOutcome::AlreadyUsed,
                }, None));
            }
        }
        QueryResult::Ok(())
    })?;
    // One row as a tuple, not a batch: diesel caches this statement's preparation.
    let row = response_values(submission, answers);
    db_run!(conn: { diesel::insert_into(responses::table).values(row).execute(conn) })?;
    if let Some(screening) = &submission.screening {
        crate::integrity::store(
            conn,
            &submission.response,
            &submission.response.form_code,
            screening,
        )?;
    }
    let outcome = db_run!(conn: {
        let mut rated = None;
        if let Some((transaction_id, rating)) = &submission.dossier_rating {
            let dossier: Option<(String, NaiveDateTime, Option<NaiveDateTime>)> =
                RateDossier { transaction_id, rating: *rating }.get_result(conn).optional()?;
            if let Some((unit_id, completed_at, due_at)) = dossier {
                rated = Some(RatedDossier {
                    unit_id,
                    completed_at,
                    late: due_at.is_some_and(|due| completed_at > due),
                    unsatisfied: *rating == UNSATISFIED_RATING,
                });
            }
        }
        QueryResult::Ok((SubmitOutcome::Stored, rated))
    })?;
    // An answer ends all mail about the dossier and erases the citizen's address.
    if let Some(transaction_id) = &submission.transaction_id {
        crate::mail::outbox::stop_all(conn, transaction_id)?;
    }
    Ok(outcome)
}
