//! Turning stored responses into rollup increments, and applying them in the same transaction.
//!
//! Increments of a whole batch are summed in memory first, so a batch of a thousand similar
//! responses costs a few hundred upserts, not tens of thousands.

use std::collections::HashMap;

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::upsert::excluded;

use super::writer::Submission;
use crate::db::DbConn;
use crate::db::schema::{rollup_scores, rollups, rollups_monthly, rollups_procedure};
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

/// Summed increments of a batch.
#[derive(Default)]
pub struct RollupDelta {
    daily: HashMap<CountKey, i64>,
    monthly: HashMap<CountKey, i64>,
    by_procedure: HashMap<ProcedureKey, i64>,
    scores: HashMap<ScoreKey, (i64, f64, f64)>,
}

impl RollupDelta {
    pub fn add(&mut self, submission: &Submission, utc_offset: FixedOffset) {
        self.add_signed(submission, utc_offset, 1);
    }

    /// Adds (`sign` = 1) or takes back (`sign` = −1) a response's counts: a correction is the
    /// old answers taken back and the new ones added, in one transaction.
    pub fn add_signed(&mut self, submission: &Submission, utc_offset: FixedOffset, sign: i64) {
        let r = &submission.response;
        let day = local_day(r.submitted_at, utc_offset);
        let month = month_of(day);
        let kind = r.respondent_type.clone().unwrap_or_default();
        let mut count = |question: &str, level: i64| {
            for (map, period) in [(&mut self.daily, day), (&mut self.monthly, month)] {
                let key = (
                    r.unit_id.clone(),
                    r.form_code.clone(),
                    r.form_version,
                    period,
                    r.channel.clone(),
                    kind.clone(),
                    question.to_string(),
                    level,
                );
                *map.entry(key).or_insert(0) += sign;
            }
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
        };
        count(RESPONSES_COUNTER, 0);
        for answer in &submission.answers {
            for level in &answer.rollup_levels {
                count(&answer.question_code, *level);
            }
        }
        for (element, score) in &submission.scores {
            for (grain, period) in [("day", day), ("month", month)] {
                let key = (
                    grain,
                    period,
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
    }

    /// Upserts every increment; call inside the transaction that stored the responses.
    pub fn apply(self, conn: &mut DbConn) -> QueryResult<()> {
        db_run!(conn: {
            for ((unit, form, version, day, channel, kind, question, level), n) in self.daily {
                diesel::insert_into(rollups::table)
                    .values((
                        rollups::unit_id.eq(unit), rollups::form_code.eq(form), rollups::form_version.eq(version),
                        rollups::day.eq(day), rollups::channel.eq(channel), rollups::respondent_type.eq(kind),
                        rollups::question_code.eq(question), rollups::level.eq(level), rollups::n.eq(n),
                    ))
                    .on_conflict((rollups::unit_id, rollups::form_code, rollups::form_version, rollups::day, rollups::channel, rollups::respondent_type, rollups::question_code, rollups::level))
                    .do_update()
                    .set(rollups::n.eq(rollups::n + excluded(rollups::n)))
                    .execute(conn)?;
            }
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
            QueryResult::Ok(())
        })
    }
}
