//! Reading rollups into tallies: one grouped query per table for any set of units, so a report
//! costs the same whatever the number of stored responses.

use std::collections::{HashMap, HashSet};

use chrono::{FixedOffset, NaiveDateTime};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double};

use super::figures::Tally;
use super::period::Period;
use crate::db::DbConn;
use crate::db::schema::{
    rollup_scores, rollups, rollups_monthly, rollups_procedure, transactions, units,
};
use crate::db_run;

/// The cell a tally belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CellKey {
    pub unit_id: String,
    pub channel: String,
    pub respondent_type: String,
}

/// Tallies per (unit, channel, respondent type).
#[derive(Debug, Default, Clone)]
pub struct Tallies(pub HashMap<CellKey, Tally>);

impl Tallies {
    /// The sum of the cells `keep` accepts.
    pub fn total(&self, keep: impl Fn(&CellKey) -> bool) -> Tally {
        let mut out = Tally::default();
        for (key, tally) in &self.0 {
            if keep(key) {
                out.merge(tally);
            }
        }
        out
    }
}

/// Channels collected at the counter (what agencies control) and by the independent collector.
pub const COUNTER_CHANNELS: &[&str] = &["qr", "link", "kiosk"];
pub const INDEPENDENT_CHANNELS: &[&str] = &["paper", "phone", "interview"];

/// The units a report of `unit_id` covers: itself, everything below it, and every unit merged
/// into any of those (so history before a merger stays in the successor's figures).
pub fn scope(conn: &mut DbConn, unit_id: &str) -> QueryResult<Vec<String>> {
    let all: Vec<(String, Option<String>, Option<String>)> = db_run!(conn: { units::table.select((units::id, units::parent_id, units::merged_into_id)).load(conn) })?;
    let mut covered: HashSet<String> = HashSet::from([unit_id.to_string()]);
    loop {
        let before = covered.len();
        for (id, parent, merged) in &all {
            let joined = parent.as_ref().is_some_and(|p| covered.contains(p))
                || merged.as_ref().is_some_and(|m| covered.contains(m));
            if joined {
                covered.insert(id.clone());
            }
        }
        if covered.len() == before {
            break;
        }
    }
    let mut out: Vec<String> = covered.into_iter().collect();
    out.sort();
    Ok(out)
}

/// Loads tallies of `form_code` for `unit_ids` (all units when `None`) over `period`.
pub fn load(
    conn: &mut DbConn,
    form_code: &str,
    unit_ids: Option<&[String]>,
    period: &Period,
) -> QueryResult<Tallies> {
    type CountRow = (String, String, String, String, i64, i64);
    type ScoreRow = (String, String, String, String, i64, f64, f64);
    let ids: Vec<String> = match unit_ids {
        Some(ids) => ids.to_vec(),
        None => db_run!(conn: { units::table.select(units::id).load(conn) })?,
    };
    let (counts, scores): (Vec<CountRow>, Vec<ScoreRow>) = db_run!(conn: {
        let counts: Vec<CountRow> = if period.whole_months() {
            rollups_monthly::table
                .filter(rollups_monthly::form_code.eq(form_code))
                .filter(rollups_monthly::month.between(period.from, period.to))
                .filter(rollups_monthly::unit_id.eq_any(&ids))
                .group_by((rollups_monthly::unit_id, rollups_monthly::channel, rollups_monthly::respondent_type, rollups_monthly::question_code, rollups_monthly::level))
                .select((rollups_monthly::unit_id, rollups_monthly::channel, rollups_monthly::respondent_type, rollups_monthly::question_code, rollups_monthly::level, sql::<BigInt>("CAST(SUM(n) AS BIGINT)")))
                .load(conn)?
        } else {
            rollups::table
                .filter(rollups::form_code.eq(form_code))
                .filter(rollups::day.between(period.from, period.to))
                .filter(rollups::unit_id.eq_any(&ids))
                .group_by((rollups::unit_id, rollups::channel, rollups::respondent_type, rollups::question_code, rollups::level))
                .select((rollups::unit_id, rollups::channel, rollups::respondent_type, rollups::question_code, rollups::level, sql::<BigInt>("CAST(SUM(n) AS BIGINT)")))
                .load(conn)?
        };
        let grain = if period.whole_months() { "month" } else { "day" };
        let scores: Vec<ScoreRow> = rollup_scores::table
            .filter(rollup_scores::grain.eq(grain))
            .filter(rollup_scores::form_code.eq(form_code))
            .filter(rollup_scores::period.between(period.from, period.to))
            .filter(rollup_scores::unit_id.eq_any(&ids))
            .group_by((rollup_scores::unit_id, rollup_scores::channel, rollup_scores::respondent_type, rollup_scores::element_code))
            .select((
                rollup_scores::unit_id, rollup_scores::channel, rollup_scores::respondent_type, rollup_scores::element_code,
                sql::<BigInt>("CAST(SUM(n) AS BIGINT)"), sql::<Double>("SUM(score_sum)"), sql::<Double>("SUM(score_sq_sum)"),
            ))
            .load(conn)?;
        QueryResult::Ok((counts, scores))
    })?;
    let mut tallies = Tallies::default();
    for (unit_id, channel, respondent_type, question, level, n) in counts {
        let key = CellKey {
            unit_id,
            channel,
            respondent_type,
        };
        tallies
            .0
            .entry(key)
            .or_default()
            .add_count(&question, level, n.max(0) as u64);
    }
    for (unit_id, channel, respondent_type, element, n, sum, sq) in scores {
        let key = CellKey {
            unit_id,
            channel,
            respondent_type,
        };
        tallies
            .0
            .entry(key)
            .or_default()
            .add_score(&element, n.max(0) as u64, sum, sq);
    }
    Ok(tallies)
}

/// Tallies of one procedure (whole months only; counts without respondent scores).
pub fn load_procedure(
    conn: &mut DbConn,
    form_code: &str,
    unit_ids: &[String],
    period: &Period,
    procedure_id: &str,
) -> QueryResult<Tally> {
    let rows: Vec<(String, i64, i64)> = db_run!(conn: {
        rollups_procedure::table
            .filter(rollups_procedure::form_code.eq(form_code))
            .filter(rollups_procedure::month.between(period.from, period.to))
            .filter(rollups_procedure::unit_id.eq_any(unit_ids))
            .filter(rollups_procedure::procedure_id.eq(procedure_id))
            .group_by((rollups_procedure::question_code, rollups_procedure::level))
            .select((rollups_procedure::question_code, rollups_procedure::level, sql::<BigInt>("CAST(SUM(n) AS BIGINT)")))
            .load(conn)
    })?;
    let mut tally = Tally::default();
    for (q, l, n) in rows {
        tally.add_count(&q, l, n.max(0) as u64);
    }
    Ok(tally)
}

/// Dossier counts of the Decision 766 rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct DossierCounts {
    pub dossiers: u64,
    pub rated_unsatisfied: u64,
    pub late: u64,
    /// Rated unsatisfied or late (each dossier subtracted once).
    pub unsatisfied_or_late: u64,
}

/// Counts dossiers completed in the period (local days) per unit.
pub fn dossier_counts(
    conn: &mut DbConn,
    unit_ids: Option<&[String]>,
    period: &Period,
    offset: FixedOffset,
) -> QueryResult<HashMap<String, DossierCounts>> {
    let shift = chrono::Duration::seconds(offset.local_minus_utc().into());
    let from: NaiveDateTime = period.from.and_hms_opt(0, 0, 0).unwrap_or_default() - shift;
    let until: NaiveDateTime = period
        .to
        .succ_opt()
        .unwrap_or(period.to)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        - shift;
    let ids: Vec<String> = match unit_ids {
        Some(ids) => ids.to_vec(),
        None => db_run!(conn: { units::table.select(units::id).load(conn) })?,
    };
    let rows: Vec<(String, i64, i64, i64, i64)> = db_run!(conn: {
        transactions::table
            .filter(transactions::completed_at.ge(from))
            .filter(transactions::completed_at.lt(until))
            .filter(transactions::unit_id.eq_any(&ids))
            .group_by(transactions::unit_id)
            .select((
                transactions::unit_id,
                sql::<BigInt>("CAST(COUNT(*) AS BIGINT)"),
                sql::<BigInt>("CAST(SUM(CASE WHEN rating = 1 THEN 1 ELSE 0 END) AS BIGINT)"),
                sql::<BigInt>("CAST(SUM(CASE WHEN due_at IS NOT NULL AND completed_at > due_at THEN 1 ELSE 0 END) AS BIGINT)"),
                sql::<BigInt>("CAST(SUM(CASE WHEN rating = 1 OR (due_at IS NOT NULL AND completed_at > due_at) THEN 1 ELSE 0 END) AS BIGINT)"),
            ))
            .load(conn)
    })?;
    Ok(rows
        .into_iter()
        .map(|(unit, d, u, l, ul)| {
            let c = |v: i64| v.max(0) as u64;
            (
                unit,
                DossierCounts {
                    dossiers: c(d),
                    rated_unsatisfied: c(u),
                    late: c(l),
                    unsatisfied_or_late: c(ul),
                },
            )
        })
        .collect())
}
