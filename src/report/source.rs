//! Reading rollups into tallies: one grouped query per table for any set of units, so a report
//! costs the same whatever the number of stored responses.

use std::collections::{HashMap, HashSet};

use chrono::FixedOffset;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::figures::Tally;
use super::period::Period;
use super::slots::SlotTallies;
use crate::db::DbConn;
use crate::db::schema::{
    dossier_rollups, responses, rollup_cells, rollup_procedure_cells, transactions, units,
};
use crate::db_run;
use crate::forms::FormRegistry;
use crate::rollup::counted_levels;
use crate::survey::channel::Channel;
use crate::survey::response::ResponseStatus;
use crate::survey::stored::{STORED_COLUMNS, StoredResponse};

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
pub const COUNTER_CHANNELS: &[&str] = Channel::COUNTER_CODES;
pub const INDEPENDENT_CHANNELS: &[&str] = Channel::INDEPENDENT_CODES;

/// Which units sit below (or were merged into) each unit, loaded once so that many scopes
/// cost one query.
pub struct UnitTree {
    below: HashMap<String, Vec<String>>,
}

impl UnitTree {
    pub fn load(conn: &mut DbConn) -> QueryResult<Self> {
        let rows: Vec<(String, Option<String>, Option<String>)> = db_run!(conn: {
            units::table.select((units::id, units::parent_id, units::merged_into_id)).load(conn)
        })?;
        let mut below: HashMap<String, Vec<String>> = HashMap::new();
        for (id, parent, merged) in rows {
            for up in [parent, merged].into_iter().flatten() {
                below.entry(up).or_default().push(id.clone());
            }
        }
        Ok(Self { below })
    }

    /// The units a report of `unit_id` covers: itself, everything below it, and every unit
    /// merged into any of those (so history before a merger stays in the successor's figures).
    pub fn scope(&self, unit_id: &str) -> Vec<String> {
        let mut covered: HashSet<&str> = HashSet::from([unit_id]);
        let mut queue = vec![unit_id];
        while let Some(next) = queue.pop() {
            for child in self.below.get(next).into_iter().flatten() {
                if covered.insert(child) {
                    queue.push(child);
                }
            }
        }
        let mut out: Vec<String> = covered.into_iter().map(str::to_string).collect();
        out.sort();
        out
    }
}

/// The units a report of `unit_id` covers (see [`UnitTree::scope`]).
pub fn scope(conn: &mut DbConn, unit_id: &str) -> QueryResult<Vec<String>> {
    Ok(UnitTree::load(conn)?.scope(unit_id))
}

/// Loads tallies of `form_code` for `unit_ids` (all units when `None`) over `period`: whole
/// months from the monthly rollups, the partial months at the edges of a custom range from the
/// responses of those days (bounded by two months, whatever the history stored).
pub fn load(
    conn: &mut DbConn,
    forms: &FormRegistry,
    form_code: &str,
    unit_ids: Option<&[String]>,
    period: &Period,
    utc_offset: FixedOffset,
) -> QueryResult<Tallies> {
    load_with_held(conn, forms, form_code, unit_ids, period, utc_offset, false)
}

/// As [`load`]; with `include_held`, responses held for review are counted too (from the
/// responses themselves, as the edge days are: held ones are few).
pub fn load_with_held(
    conn: &mut DbConn,
    forms: &FormRegistry,
    form_code: &str,
    unit_ids: Option<&[String]>,
    period: &Period,
    utc_offset: FixedOffset,
    include_held: bool,
) -> QueryResult<Tallies> {
    let slots = load_slots(conn, forms, form_code, unit_ids, period, utc_offset, Some)?;
    let mut tallies = Tallies(slots.into_tallies());
    if include_held {
        count_responses(
            conn,
            forms,
            form_code,
            unit_ids,
            period,
            utc_offset,
            ResponseStatus::Held,
            &mut tallies,
        )?;
    }
    Ok(tallies)
}

/// As [`load`], as slot sums, each cell summed under the key `key_of` gives it (or left out):
/// for readers that group thousands of cells (rankings).
pub fn load_slots<K: Eq + std::hash::Hash>(
    conn: &mut DbConn,
    forms: &FormRegistry,
    form_code: &str,
    unit_ids: Option<&[String]>,
    period: &Period,
    utc_offset: FixedOffset,
    mut key_of: impl FnMut(CellKey) -> Option<K>,
) -> QueryResult<SlotTallies<K>> {
    let (whole, edges) = period.split_months();
    let mut slots = SlotTallies::default();
    if let Some(months) = whole {
        load_months(conn, form_code, unit_ids, &months, &mut key_of, &mut slots)?;
    }
    for edge in edges {
        let mut days = Tallies::default();
        count_responses(
            conn,
            forms,
            form_code,
            unit_ids,
            &edge,
            utc_offset,
            ResponseStatus::Counted,
            &mut days,
        )?;
        for (key, tally) in days.0 {
            if let Some(key) = key_of(key) {
                slots.add_tally(key, &tally);
            }
        }
    }
    Ok(slots)
}

fn unit_filter(conn: &mut DbConn, unit_ids: Option<&[String]>) -> QueryResult<Vec<String>> {
    match unit_ids {
        Some(ids) => Ok(ids.to_vec()),
        None => db_run!(conn: { units::table.select(units::id).load(conn) }),
    }
}

fn load_months<K: Eq + std::hash::Hash>(
    conn: &mut DbConn,
    form_code: &str,
    unit_ids: Option<&[String]>,
    period: &Period,
    key_of: &mut impl FnMut(CellKey) -> Option<K>,
    slots: &mut SlotTallies<K>,
) -> QueryResult<()> {
    type CellRow = (String, String, String, Vec<u8>);
    let unreadable = |e| diesel::result::Error::DeserializationError(Box::new(e));
    db_run!(conn: {
        let mut q = rollup_cells::table
            .filter(rollup_cells::form_code.eq(form_code))
            .filter(rollup_cells::month.between(period.from, period.to))
            .into_boxed();
        if let Some(ids) = unit_ids {
            q = q.filter(rollup_cells::unit_id.eq_any(ids));
        }
        let rows = q
            .select((rollup_cells::unit_id, rollup_cells::channel, rollup_cells::respondent_type, rollup_cells::counts))
            .load_iter::<CellRow, diesel::connection::DefaultLoadingMode>(conn)?;
        for row in rows {
            let (unit_id, channel, respondent_type, counts) = row?;
            if let Some(key) = key_of(CellKey { unit_id, channel, respondent_type }) {
                slots.add_stored_cell(key, &counts).map_err(unreadable)?;
            }
        }
        QueryResult::Ok(())
    })
}

/// Counts the responses of some days (with the given review status) exactly as the rollups
/// would have counted them.
#[allow(clippy::too_many_arguments)]
fn count_responses(
    conn: &mut DbConn,
    forms: &FormRegistry,
    form_code: &str,
    unit_ids: Option<&[String]>,
    days: &Period,
    utc_offset: FixedOffset,
    status: ResponseStatus,
    tallies: &mut Tallies,
) -> QueryResult<()> {
    let ids = unit_filter(conn, unit_ids)?;
    let (from, until) = days.utc_bounds(utc_offset);
    let rows: Vec<StoredResponse> = db_run!(conn: {
        responses::table
            .filter(responses::form_code.eq(form_code))
            .filter(responses::unit_id.eq_any(&ids))
            .filter(responses::status.eq(status.as_str()))
            .filter(responses::submitted_at.ge(from))
            .filter(responses::submitted_at.lt(until))
            .select(STORED_COLUMNS)
            .load(conn)
    })?;
    for row in rows {
        let Some(submission) = row.to_submission(conn, forms)? else {
            continue;
        };
        let key = CellKey {
            unit_id: row.unit_id,
            channel: row.channel,
            respondent_type: row.respondent_type.unwrap_or_default(),
        };
        let tally = tallies.0.entry(key).or_default();
        for (question, level) in counted_levels(&submission) {
            tally.add_count(question, level, 1);
        }
        for (element, score) in &submission.scores {
            tally.add_score(element, 1, *score, score * score);
        }
    }
    Ok(())
}

/// Tallies of one procedure (whole months only; counts without respondent scores).
pub fn load_procedure(
    conn: &mut DbConn,
    form_code: &str,
    unit_ids: &[String],
    period: &Period,
    procedure_id: &str,
) -> QueryResult<Tally> {
    let rows: Vec<Vec<u8>> = db_run!(conn: {
        rollup_procedure_cells::table
            .filter(rollup_procedure_cells::form_code.eq(form_code))
            .filter(rollup_procedure_cells::month.between(period.from, period.to))
            .filter(rollup_procedure_cells::unit_id.eq_any(unit_ids))
            .filter(rollup_procedure_cells::procedure_id.eq(procedure_id))
            .select(rollup_procedure_cells::counts)
            .load(conn)
    })?;
    let mut tally = Tally::default();
    for counts in rows {
        tally
            .add_stored_cell(&counts)
            .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))?;
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

/// Counts dossiers completed in the period (local days) per unit: whole months from the dossier
/// rollups, edge days from the dossiers themselves.
pub fn dossier_counts(
    conn: &mut DbConn,
    unit_ids: Option<&[String]>,
    period: &Period,
    offset: FixedOffset,
) -> QueryResult<HashMap<String, DossierCounts>> {
    type Row = (String, i64, i64, i64, i64);
    let ids = unit_filter(conn, unit_ids)?;
    let (whole, edges) = period.split_months();
    let mut rows: Vec<Row> = Vec::new();
    if let Some(months) = whole {
        let monthly: Vec<Row> = db_run!(conn: {
            dossier_rollups::table
                .filter(dossier_rollups::month.between(months.from, months.to))
                .filter(dossier_rollups::unit_id.eq_any(&ids))
                .group_by(dossier_rollups::unit_id)
                .select((
                    dossier_rollups::unit_id,
                    sql::<BigInt>("CAST(SUM(dossiers) AS BIGINT)"),
                    sql::<BigInt>("CAST(SUM(rated_unsatisfied) AS BIGINT)"),
                    sql::<BigInt>("CAST(SUM(late) AS BIGINT)"),
                    sql::<BigInt>("CAST(SUM(unsatisfied_or_late) AS BIGINT)"),
                ))
                .load(conn)
        })?;
        rows.extend(monthly);
    }
    for edge in edges {
        let (from, until) = edge.utc_bounds(offset);
        let counted: Vec<Row> = db_run!(conn: {
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
        rows.extend(counted);
    }
    let mut out: HashMap<String, DossierCounts> = HashMap::new();
    for (unit, d, u, l, ul) in rows {
        let c = |v: i64| v.max(0) as u64;
        let entry = out.entry(unit).or_default();
        entry.dossiers += c(d);
        entry.rated_unsatisfied += c(u);
        entry.late += c(l);
        entry.unsatisfied_or_late += c(ul);
    }
    Ok(out)
}
