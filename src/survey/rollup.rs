//! Turning stored responses into rollup increments, and applying them in the same transaction.
//!
//! Rollups are monthly (by local month): per unit, form version, channel, respondent type,
//! question and level; per procedure; respondent score moments per element; dossier counts.
//! Increments of a whole batch are summed in memory first, so a batch of a thousand similar
//! responses costs a few hundred upserts, not tens of thousands.

use std::collections::HashMap;

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::upsert::excluded;

use super::writer::Submission;
use crate::db::DbConn;
use crate::db::schema::{dossier_rollups, rollup_scores, rollups_monthly, rollups_procedure};
use crate::db_run;

/// The question code under which whole responses are counted (level 0).
pub const RESPONSES_COUNTER: &str = "_responses";

/// (unit, form, version, period, channel, respondent type, question, level)
type CountKey = (String, String, i64, NaiveDate, String, String, String, i64);
/// (unit, form, version, month, procedure, question, level)
type ProcedureKey = (String, String, i64, NaiveDate, String, String, i64);
/// (grain, period, unit, form, version, channel, respondent type, element)
type ScoreKey = (
    &'static str,
    NaiveDate,
    String,
    String,
    i64,
    String,
    String,
    String,
);

/// The local day of a UTC timestamp.
pub fn local_day(at: NaiveDateTime, utc_offset: FixedOffset) -> NaiveDate {
    (at + chrono::Duration::seconds(utc_offset.local_minus_utc().into())).date()
}

pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// What one response adds to the counts: (question, level) pairs, the whole response first
/// under [`RESPONSES_COUNTER`]. Rollups and the direct counts of partial months both use it, so
/// they count alike by construction.
pub fn counted_levels(submission: &Submission) -> impl Iterator<Item = (&str, i64)> {
    std::iter::once((RESPONSES_COUNTER, 0)).chain(submission.answers.iter().flat_map(|a| {
        a.rollup_levels
            .iter()
            .map(move |level| (a.question_code.as_str(), *level))
    }))
}

/// Summed increments of a batch.
#[derive(Default)]
pub struct RollupDelta {
    monthly: HashMap<CountKey, i64>,
    by_procedure: HashMap<ProcedureKey, i64>,
    scores: HashMap<ScoreKey, (i64, f64, f64)>,
    dossiers: HashMap<(String, NaiveDate), DossierChange>,
}

/// Changes to one unit-month's dossier counts (Decision 766 rate).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DossierChange {
    pub dossiers: i64,
    pub rated_unsatisfied: i64,
    pub late: i64,
    pub unsatisfied_or_late: i64,
}

impl DossierChange {
    /// What one dossier adds when it is first counted, with whatever rating it already has.
    pub fn of_dossier(
        completed_at: NaiveDateTime,
        due_at: Option<NaiveDateTime>,
        rating: Option<i64>,
    ) -> Self {
        let late = due_at.is_some_and(|due| completed_at > due);
        let unsatisfied = rating == Some(super::writer::UNSATISFIED_RATING);
        Self {
            dossiers: 1,
            rated_unsatisfied: i64::from(unsatisfied),
            late: i64::from(late),
            unsatisfied_or_late: i64::from(late || unsatisfied),
        }
    }
}

impl RollupDelta {
    pub fn add(&mut self, submission: &Submission, utc_offset: FixedOffset) {
        self.add_signed(submission, utc_offset, 1);
    }

    /// Adds (`sign` = 1) or takes back (`sign` = −1) a response's counts: a correction is the
    /// old answers taken back and the new ones added, in one transaction.
    pub fn add_signed(&mut self, submission: &Submission, utc_offset: FixedOffset, sign: i64) {
        let r = &submission.response;
        let month = month_of(local_day(r.submitted_at, utc_offset));
        let kind = r.respondent_type.clone().unwrap_or_default();
        for (question, level) in counted_levels(submission) {
            let key = (
                r.unit_id.clone(),
                r.form_code.clone(),
                r.form_version,
                month,
                r.channel.clone(),
                kind.clone(),
                question.to_string(),
                level,
            );
            *self.monthly.entry(key).or_insert(0) += sign;
            if let Some(procedure) = &r.procedure_id {
                let key = (
                    r.unit_id.clone(),
                    r.form_code.clone(),
                    r.form_version,
                    month,
                    procedure.clone(),
                    question.to_string(),
                    level,
                );
                *self.by_procedure.entry(key).or_insert(0) += sign;
            }
        }
        for (element, score) in &submission.scores {
            let key = (
                "month",
                month,
                r.unit_id.clone(),
                r.form_code.clone(),
                r.form_version,
                r.channel.clone(),
                kind.clone(),
                element.clone(),
            );
            let entry = self.scores.entry(key).or_insert((0, 0.0, 0.0));
            entry.0 += sign;
            entry.1 += sign as f64 * score;
            entry.2 += sign as f64 * score * score;
        }
    }

    /// Adds another delta's increments (a job's, once its savepoint held).
    pub fn merge(&mut self, other: RollupDelta) {
        for (k, n) in other.monthly {
            *self.monthly.entry(k).or_insert(0) += n;
        }
        for (k, n) in other.by_procedure {
            *self.by_procedure.entry(k).or_insert(0) += n;
        }
        for (k, (n, sum, sq)) in other.scores {
            let e = self.scores.entry(k).or_insert((0, 0.0, 0.0));
            e.0 += n;
            e.1 += sum;
            e.2 += sq;
        }
        for ((unit, month), c) in other.dossiers {
            let e = self.dossiers.entry((unit, month)).or_default();
            e.dossiers += c.dossiers;
            e.rated_unsatisfied += c.rated_unsatisfied;
            e.late += c.late;
            e.unsatisfied_or_late += c.unsatisfied_or_late;
        }
    }

    /// Counts a dossier completed at `completed_at` (a new one, or one just rated).
    pub fn add_dossier(
        &mut self,
        unit_id: &str,
        completed_at: NaiveDateTime,
        utc_offset: FixedOffset,
        change: DossierChange,
    ) {
        let month = month_of(local_day(completed_at, utc_offset));
        let entry = self
            .dossiers
            .entry((unit_id.to_string(), month))
            .or_default();
        entry.dossiers += change.dossiers;
        entry.rated_unsatisfied += change.rated_unsatisfied;
        entry.late += change.late;
        entry.unsatisfied_or_late += change.unsatisfied_or_late;
    }

    /// Upserts every increment; call inside the transaction that stored the responses.
    pub fn apply(self, conn: &mut DbConn) -> QueryResult<()> {
        db_run!(conn: {
            for ((unit, form, version, month, channel, kind, question, level), n) in self.monthly {
                diesel::insert_into(rollups_monthly::table)
                    .values((
                        rollups_monthly::unit_id.eq(unit), rollups_monthly::form_code.eq(form), rollups_monthly::form_version.eq(version),
                        rollups_monthly::month.eq(month), rollups_monthly::channel.eq(channel), rollups_monthly::respondent_type.eq(kind),
                        rollups_monthly::question_code.eq(question), rollups_monthly::level.eq(level), rollups_monthly::n.eq(n),
                    ))
                    .on_conflict((rollups_monthly::unit_id, rollups_monthly::form_code, rollups_monthly::form_version, rollups_monthly::month, rollups_monthly::channel, rollups_monthly::respondent_type, rollups_monthly::question_code, rollups_monthly::level))
                    .do_update()
                    .set(rollups_monthly::n.eq(rollups_monthly::n + excluded(rollups_monthly::n)))
                    .execute(conn)?;
            }
            for ((unit, form, version, month, procedure, question, level), n) in self.by_procedure {
                diesel::insert_into(rollups_procedure::table)
                    .values((
                        rollups_procedure::unit_id.eq(unit), rollups_procedure::form_code.eq(form), rollups_procedure::form_version.eq(version),
                        rollups_procedure::month.eq(month), rollups_procedure::procedure_id.eq(procedure),
                        rollups_procedure::question_code.eq(question), rollups_procedure::level.eq(level), rollups_procedure::n.eq(n),
                    ))
                    .on_conflict((rollups_procedure::unit_id, rollups_procedure::form_code, rollups_procedure::form_version, rollups_procedure::month, rollups_procedure::procedure_id, rollups_procedure::question_code, rollups_procedure::level))
                    .do_update()
                    .set(rollups_procedure::n.eq(rollups_procedure::n + excluded(rollups_procedure::n)))
                    .execute(conn)?;
            }
            for ((grain, period, unit, form, version, channel, kind, element), (n, sum, sq)) in self.scores {
                diesel::insert_into(rollup_scores::table)
                    .values((
                        rollup_scores::grain.eq(grain), rollup_scores::period.eq(period), rollup_scores::unit_id.eq(unit),
                        rollup_scores::form_code.eq(form), rollup_scores::form_version.eq(version), rollup_scores::channel.eq(channel),
                        rollup_scores::respondent_type.eq(kind), rollup_scores::element_code.eq(element),
                        rollup_scores::n.eq(n), rollup_scores::score_sum.eq(sum), rollup_scores::score_sq_sum.eq(sq),
                    ))
                    .on_conflict((rollup_scores::grain, rollup_scores::period, rollup_scores::unit_id, rollup_scores::form_code, rollup_scores::form_version, rollup_scores::channel, rollup_scores::respondent_type, rollup_scores::element_code))
                    .do_update()
                    .set((
                        rollup_scores::n.eq(rollup_scores::n + excluded(rollup_scores::n)),
                        rollup_scores::score_sum.eq(rollup_scores::score_sum + excluded(rollup_scores::score_sum)),
                        rollup_scores::score_sq_sum.eq(rollup_scores::score_sq_sum + excluded(rollup_scores::score_sq_sum)),
                    ))
                    .execute(conn)?;
            }
            for ((unit, month), c) in self.dossiers {
                diesel::insert_into(dossier_rollups::table)
                    .values((
                        dossier_rollups::unit_id.eq(unit), dossier_rollups::month.eq(month),
                        dossier_rollups::dossiers.eq(c.dossiers), dossier_rollups::rated_unsatisfied.eq(c.rated_unsatisfied),
                        dossier_rollups::late.eq(c.late), dossier_rollups::unsatisfied_or_late.eq(c.unsatisfied_or_late),
                    ))
                    .on_conflict((dossier_rollups::unit_id, dossier_rollups::month))
                    .do_update()
                    .set((
                        dossier_rollups::dossiers.eq(dossier_rollups::dossiers + excluded(dossier_rollups::dossiers)),
                        dossier_rollups::rated_unsatisfied.eq(dossier_rollups::rated_unsatisfied + excluded(dossier_rollups::rated_unsatisfied)),
                        dossier_rollups::late.eq(dossier_rollups::late + excluded(dossier_rollups::late)),
                        dossier_rollups::unsatisfied_or_late.eq(dossier_rollups::unsatisfied_or_late + excluded(dossier_rollups::unsatisfied_or_late)),
                    ))
                    .execute(conn)?;
            }
            QueryResult::Ok(())
        })
    }
}
