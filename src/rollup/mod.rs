//! Turning stored responses into rollup increments, and applying them in the same transaction.
//!
//! Rollups are monthly (by the province's local month): one cell per unit, form version,
//! channel and respondent type, one per unit, form version and procedure (each holding every
//! question's counts by level and the respondents' score moments, see [`CellCounts`]), and the
//! dossier counts of the Decision 766 rate. Increments of a whole batch are summed in memory
//! first, so a batch of a thousand responses rewrites a few dozen cells.

use std::collections::HashMap;

use chrono::{FixedOffset, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use diesel::upsert::excluded;

pub mod cell;
pub mod rebuild;

use self::cell::CellCounts;
use crate::calendar::{local_day, month_of};
use crate::db::DbConn;
use crate::db::retry::retry_transient;
use crate::db::schema::{dossier_rollups, rollup_cells, rollup_procedure_cells};
use crate::db_run;
use crate::set_sql;
use crate::survey::response::Submission;

/// The question code under which whole responses are counted (level 0).
pub const RESPONSES_COUNTER: &str = "_responses";

/// A cell of the main rollups: who answered, about which unit, when and how. Ordered, because
/// every writer locks cells in this one order (see [`RollupDelta::apply`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CellKey {
    pub unit_id: String,
    pub form_code: String,
    pub form_version: i64,
    pub month: NaiveDate,
    pub channel: String,
    pub respondent_type: String,
}

/// A cell of the procedure rollups.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcedureCellKey {
    pub unit_id: String,
    pub form_code: String,
    pub form_version: i64,
    pub month: NaiveDate,
    pub procedure_id: String,
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
    cells: HashMap<CellKey, CellCounts>,
    procedure_cells: HashMap<ProcedureCellKey, CellCounts>,
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
        let unsatisfied = rating == Some(crate::survey::response::UNSATISFIED_RATING);
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
        let key = CellKey {
            unit_id: r.unit_id.clone(),
            form_code: r.form_code.clone(),
            form_version: r.form_version,
            month,
            channel: r.channel.clone(),
            respondent_type: r.respondent_type.clone().unwrap_or_default(),
        };
        count_into(self.cells.entry(key).or_default(), submission, sign);
        if let Some(procedure) = &r.procedure_id {
            let key = ProcedureCellKey {
                unit_id: r.unit_id.clone(),
                form_code: r.form_code.clone(),
                form_version: r.form_version,
                month,
                procedure_id: procedure.clone(),
            };
            count_into(
                self.procedure_cells.entry(key).or_default(),
                submission,
                sign,
            );
        }
    }

    /// Adds another delta's increments (a job's, once its savepoint held).
    pub fn merge(&mut self, other: RollupDelta) {
        for (key, counts) in other.cells {
            self.cells.entry(key).or_default().merge(&counts);
        }
        for (key, counts) in other.procedure_cells {
            self.procedure_cells.entry(key).or_default().merge(&counts);
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

    /// Whether the batch changes no rollup at all.
    pub fn is_empty(&self) -> bool {
        self.cells.is_empty() && self.procedure_cells.is_empty() && self.dossiers.is_empty()
    }

    /// Writes every increment; call inside the transaction that stored the responses.
    ///
    /// Cells are locked in one global order (sorted keys), whoever writes, so two writers on
    /// one database (two instances, or the writer and an administrator's correction) wait for
    /// each other instead of deadlocking. Should PostgreSQL still abort the step (deadlock
    /// 40P01 or serialization failure 40001, e.g. against a tool that locks in another order),
    /// it runs in a savepoint and is tried again a few times: rolling back to the savepoint
    /// frees the locks it took, and the batch's other writes stay.
    pub fn apply(self, conn: &mut DbConn) -> QueryResult<()> {
        if self.is_empty() {
            return Ok(());
        }
        let mut cells: Vec<_> = self.cells.into_iter().collect();
        cells.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut procedure_cells: Vec<_> = self.procedure_cells.into_iter().collect();
        procedure_cells.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let mut dossiers: Vec<_> = self.dossiers.into_iter().collect();
        dossiers.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        match conn {
            DbConn::Postgres(_) => retry_transient(conn, |conn| {
                let DbConn::Postgres(pg) = conn else {
                    return Err(diesel::result::Error::QueryBuilderError(
                        "set-based rollups are for PostgreSQL".into(),
                    ));
                };
                apply_pg(pg, &cells, &procedure_cells, &dossiers)
            }),
            // One writer at a time on SQLite (`BEGIN IMMEDIATE`): nothing can deadlock.
            DbConn::Sqlite(_) => {
                for (key, delta) in &cells {
                    apply_cell(conn, key, delta)?;
                }
                for (key, delta) in &procedure_cells {
                    apply_procedure_cell(conn, key, delta)?;
                }
                apply_dossiers_one_by_one(conn, &dossiers)
            }
        }
    }
}

set_sql!(
    /// Creates the missing cells and locks every cell of the batch in the given (sorted) order,
    /// returning their stored counts: one statement for the whole batch.
    LockCells,
    (
        diesel::sql_types::Text,
        diesel::sql_types::Text,
        diesel::sql_types::BigInt,
        diesel::sql_types::Date,
        diesel::sql_types::Text,
        diesel::sql_types::Text,
        diesel::sql_types::Binary
    ),
    "INSERT INTO rollup_cells AS c (unit_id, form_code, form_version, month, channel, \
     respondent_type, responses, counts) \
     SELECT k.u, k.f, k.v, k.m, k.ch, k.r, 0, ? \
     FROM unnest(?::text[], ?::text[], ?::int8[], ?::date[], ?::text[], ?::text[]) \
     WITH ORDINALITY AS k(u, f, v, m, ch, r, i) ORDER BY k.i \
     ON CONFLICT (unit_id, form_code, month, form_version, channel, respondent_type) \
     DO UPDATE SET responses = c.responses \
     RETURNING c.unit_id, c.form_code, c.form_version, c.month, c.channel, c.respondent_type, \
     c.counts"
);

set_sql!(
    /// Writes back cells locked by [`LockCells`].
    WriteCells,
    diesel::sql_types::Integer,
    "UPDATE rollup_cells AS c SET responses = v.n, counts = v.counts \
     FROM unnest(?::text[], ?::text[], ?::int8[], ?::date[], ?::text[], ?::text[], ?::int8[], \
     ?::bytea[]) AS v(u, f, fv, m, ch, r, n, counts) \
     WHERE c.unit_id = v.u AND c.form_code = v.f AND c.form_version = v.fv AND c.month = v.m \
     AND c.channel = v.ch AND c.respondent_type = v.r"
);

set_sql!(
    /// As [`LockCells`], for procedure cells.
    LockProcedureCells,
    (
        diesel::sql_types::Text,
        diesel::sql_types::Text,
        diesel::sql_types::BigInt,
        diesel::sql_types::Date,
        diesel::sql_types::Text,
        diesel::sql_types::Binary
    ),
    "INSERT INTO rollup_procedure_cells AS c (unit_id, form_code, form_version, month, \
     procedure_id, responses, counts) \
     SELECT k.u, k.f, k.v, k.m, k.p, 0, ? \
     FROM unnest(?::text[], ?::text[], ?::int8[], ?::date[], ?::text[]) \
     WITH ORDINALITY AS k(u, f, v, m, p, i) ORDER BY k.i \
     ON CONFLICT (unit_id, form_code, month, procedure_id, form_version) \
     DO UPDATE SET responses = c.responses \
     RETURNING c.unit_id, c.form_code, c.form_version, c.month, c.procedure_id, c.counts"
);

set_sql!(
    /// Writes back cells locked by [`LockProcedureCells`].
    WriteProcedureCells,
    diesel::sql_types::Integer,
    "UPDATE rollup_procedure_cells AS c SET responses = v.n, counts = v.counts \
     FROM unnest(?::text[], ?::text[], ?::int8[], ?::date[], ?::text[], ?::int8[], ?::bytea[]) \
     AS v(u, f, fv, m, p, n, counts) \
     WHERE c.unit_id = v.u AND c.form_code = v.f AND c.form_version = v.fv AND c.month = v.m \
     AND c.procedure_id = v.p"
);

set_sql!(
    /// Adds a batch's dossier counts, unit-months in the given (sorted) order.
    AddDossiers,
    diesel::sql_types::Integer,
    "INSERT INTO dossier_rollups AS d (unit_id, month, dossiers, rated_unsatisfied, late, \
     unsatisfied_or_late) \
     SELECT k.u, k.m, k.d, k.ru, k.l, k.ul \
     FROM unnest(?::text[], ?::date[], ?::int8[], ?::int8[], ?::int8[], ?::int8[]) \
     WITH ORDINALITY AS k(u, m, d, ru, l, ul, i) ORDER BY k.i \
     ON CONFLICT (unit_id, month) DO UPDATE SET dossiers = d.dossiers + excluded.dossiers, \
     rated_unsatisfied = d.rated_unsatisfied + excluded.rated_unsatisfied, \
     late = d.late + excluded.late, \
     unsatisfied_or_late = d.unsatisfied_or_late + excluded.unsatisfied_or_late"
);

type CellRow = (String, String, i64, NaiveDate, String, String, Vec<u8>);
type ProcedureCellRow = (String, String, i64, NaiveDate, String, Vec<u8>);

/// The whole batch's rollups in five statements, whatever the number of cells: lock (creating
/// missing cells) and read every cell in key order, add in memory, write back.
fn apply_pg(
    conn: &mut diesel::PgConnection,
    cells: &[(CellKey, CellCounts)],
    procedure_cells: &[(ProcedureCellKey, CellCounts)],
    dossiers: &[((String, NaiveDate), DossierChange)],
) -> QueryResult<()> {
    use crate::db::statements::{Column, SetStatement};
    let empty = CellCounts::default().encode();
    if !cells.is_empty() {
        let stored: Vec<CellRow> = SetStatement::<LockCells>::new(vec![
            Column::OneBytes(&empty),
            Column::Text(cells.iter().map(|(k, _)| k.unit_id.as_str()).collect()),
            Column::Text(cells.iter().map(|(k, _)| k.form_code.as_str()).collect()),
            Column::Int(cells.iter().map(|(k, _)| k.form_version).collect()),
            Column::Date(cells.iter().map(|(k, _)| k.month).collect()),
            Column::Text(cells.iter().map(|(k, _)| k.channel.as_str()).collect()),
            Column::Text(
                cells
                    .iter()
                    .map(|(k, _)| k.respondent_type.as_str())
                    .collect(),
            ),
        ])
        .load(conn)?;
        let mut by_key: HashMap<CellKey, CellCounts> = HashMap::with_capacity(stored.len());
        for (unit_id, form_code, form_version, month, channel, respondent_type, counts) in stored {
            let key = CellKey {
                unit_id,
                form_code,
                form_version,
                month,
                channel,
                respondent_type,
            };
            by_key.insert(key, CellCounts::decode(&counts).map_err(unreadable)?);
        }
        let mut merged = Vec::with_capacity(cells.len());
        for (key, delta) in cells {
            let mut cell = by_key.remove(key).ok_or_else(|| missing_cell("rollup"))?;
            cell.merge(delta);
            merged.push(cell);
        }
        SetStatement::<WriteCells>::new(vec![
            Column::Text(cells.iter().map(|(k, _)| k.unit_id.as_str()).collect()),
            Column::Text(cells.iter().map(|(k, _)| k.form_code.as_str()).collect()),
            Column::Int(cells.iter().map(|(k, _)| k.form_version).collect()),
            Column::Date(cells.iter().map(|(k, _)| k.month).collect()),
            Column::Text(cells.iter().map(|(k, _)| k.channel.as_str()).collect()),
            Column::Text(
                cells
                    .iter()
                    .map(|(k, _)| k.respondent_type.as_str())
                    .collect(),
            ),
            Column::Int(
                merged
                    .iter()
                    .map(|c| c.count(RESPONSES_COUNTER, 0))
                    .collect(),
            ),
            Column::Bytes(merged.iter().map(CellCounts::encode).collect()),
        ])
        .execute(conn)?;
    }
    if !procedure_cells.is_empty() {
        let cells = procedure_cells;
        let stored: Vec<ProcedureCellRow> = SetStatement::<LockProcedureCells>::new(vec![
            Column::OneBytes(&empty),
            Column::Text(cells.iter().map(|(k, _)| k.unit_id.as_str()).collect()),
            Column::Text(cells.iter().map(|(k, _)| k.form_code.as_str()).collect()),
            Column::Int(cells.iter().map(|(k, _)| k.form_version).collect()),
            Column::Date(cells.iter().map(|(k, _)| k.month).collect()),
            Column::Text(cells.iter().map(|(k, _)| k.procedure_id.as_str()).collect()),
        ])
        .load(conn)?;
        let mut by_key: HashMap<ProcedureCellKey, CellCounts> =
            HashMap::with_capacity(stored.len());
        for (unit_id, form_code, form_version, month, procedure_id, counts) in stored {
            let key = ProcedureCellKey {
                unit_id,
                form_code,
                form_version,
                month,
                procedure_id,
            };
            by_key.insert(key, CellCounts::decode(&counts).map_err(unreadable)?);
        }
        let mut merged = Vec::with_capacity(cells.len());
        for (key, delta) in cells {
            let mut cell = by_key
                .remove(key)
                .ok_or_else(|| missing_cell("procedure rollup"))?;
            cell.merge(delta);
            merged.push(cell);
        }
        SetStatement::<WriteProcedureCells>::new(vec![
            Column::Text(cells.iter().map(|(k, _)| k.unit_id.as_str()).collect()),
            Column::Text(cells.iter().map(|(k, _)| k.form_code.as_str()).collect()),
            Column::Int(cells.iter().map(|(k, _)| k.form_version).collect()),
            Column::Date(cells.iter().map(|(k, _)| k.month).collect()),
            Column::Text(cells.iter().map(|(k, _)| k.procedure_id.as_str()).collect()),
            Column::Int(
                merged
                    .iter()
                    .map(|c| c.count(RESPONSES_COUNTER, 0))
                    .collect(),
            ),
            Column::Bytes(merged.iter().map(CellCounts::encode).collect()),
        ])
        .execute(conn)?;
    }
    if !dossiers.is_empty() {
        SetStatement::<AddDossiers>::new(vec![
            Column::Text(dossiers.iter().map(|((u, _), _)| u.as_str()).collect()),
            Column::Date(dossiers.iter().map(|((_, m), _)| *m).collect()),
            Column::Int(dossiers.iter().map(|(_, c)| c.dossiers).collect()),
            Column::Int(dossiers.iter().map(|(_, c)| c.rated_unsatisfied).collect()),
            Column::Int(dossiers.iter().map(|(_, c)| c.late).collect()),
            Column::Int(
                dossiers
                    .iter()
                    .map(|(_, c)| c.unsatisfied_or_late)
                    .collect(),
            ),
        ])
        .execute(conn)?;
    }
    Ok(())
}

fn missing_cell(what: &'static str) -> diesel::result::Error {
    diesel::result::Error::DeserializationError(
        format!("a locked {what} cell was not returned").into(),
    )
}

/// The dossier counts on SQLite, one upsert per unit-month.
fn apply_dossiers_one_by_one(
    conn: &mut DbConn,
    dossiers: &[((String, NaiveDate), DossierChange)],
) -> QueryResult<()> {
    db_run!(conn: {
        for ((unit, month), c) in dossiers {
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

/// Adds one response's counts and scores to a cell.
fn count_into(cell: &mut CellCounts, submission: &Submission, sign: i64) {
    for (question, level) in counted_levels(submission) {
        cell.add(question, level, sign);
    }
    for (element, score) in &submission.scores {
        cell.add_score(
            element,
            sign,
            sign as f64 * score,
            sign as f64 * score * score,
        );
    }
}

fn unreadable(e: self::cell::CellError) -> diesel::result::Error {
    diesel::result::Error::DeserializationError(Box::new(e))
}

/// The compare-and-swap loop shared by both cell tables (`$c`: the table's module, `$target`:
/// the row): read, add `$delta`, write back only if the value is still the one read.
macro_rules! swap_in_delta {
    ($conn:ident, $c:ident, $target:ident, $delta:ident) => {{
        loop {
            let stored: Vec<u8> = $target.select($c::counts).first($conn)?;
            let mut cell = CellCounts::decode(&stored).map_err(unreadable)?;
            cell.merge($delta);
            let swapped = diesel::update($target.filter($c::counts.eq(&stored)))
                .set((
                    $c::responses.eq(cell.count(RESPONSES_COUNTER, 0)),
                    $c::counts.eq(cell.encode()),
                ))
                .execute($conn)?;
            if swapped == 1 {
                break;
            }
        }
        QueryResult::Ok(())
    }};
}

/// Adds `delta` to one stored cell: the cell is created if missing, then read, added to and
/// written back only if nobody changed it in between (compare and swap, retried), so concurrent
/// writers never lose counts on PostgreSQL; on SQLite the write transaction is exclusive anyway.
fn apply_cell(conn: &mut DbConn, key: &CellKey, delta: &CellCounts) -> QueryResult<()> {
    use rollup_cells as c;
    db_run!(conn: {
        let target = c::table.find((&key.unit_id, &key.form_code, key.month, key.form_version, &key.channel, &key.respondent_type));
        diesel::insert_into(c::table)
            .values((
                c::unit_id.eq(&key.unit_id), c::form_code.eq(&key.form_code), c::form_version.eq(key.form_version),
                c::month.eq(key.month), c::channel.eq(&key.channel), c::respondent_type.eq(&key.respondent_type),
                c::responses.eq(0), c::counts.eq(CellCounts::default().encode()),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?;
        swap_in_delta!(conn, c, target, delta)
    })
}

/// As [`apply_cell`], for a procedure cell.
fn apply_procedure_cell(
    conn: &mut DbConn,
    key: &ProcedureCellKey,
    delta: &CellCounts,
) -> QueryResult<()> {
    use rollup_procedure_cells as c;
    db_run!(conn: {
        let target = c::table.find((&key.unit_id, &key.form_code, key.month, &key.procedure_id, key.form_version));
        diesel::insert_into(c::table)
            .values((
                c::unit_id.eq(&key.unit_id), c::form_code.eq(&key.form_code), c::form_version.eq(key.form_version),
                c::month.eq(key.month), c::procedure_id.eq(&key.procedure_id),
                c::responses.eq(0), c::counts.eq(CellCounts::default().encode()),
            ))
            .on_conflict_do_nothing()
            .execute(conn)?;
        swap_in_delta!(conn, c, target, delta)
    })
}

/// Every stored rollup cell with its counts, optionally of one unit (for checks and tools).
pub fn stored_cells(
    conn: &mut DbConn,
    unit_id: Option<&str>,
) -> QueryResult<Vec<(CellKey, CellCounts)>> {
    type Row = (String, String, i64, NaiveDate, String, String, Vec<u8>);
    let rows: Vec<Row> = db_run!(conn: {
        let mut q = rollup_cells::table.into_boxed();
        if let Some(unit) = unit_id {
            q = q.filter(rollup_cells::unit_id.eq(unit.to_string()));
        }
        q.select((
            rollup_cells::unit_id, rollup_cells::form_code, rollup_cells::form_version, rollup_cells::month,
            rollup_cells::channel, rollup_cells::respondent_type, rollup_cells::counts,
        ))
        .load(conn)
    })?;
    rows.into_iter()
        .map(
            |(unit_id, form_code, form_version, month, channel, respondent_type, counts)| {
                let cell = CellCounts::decode(&counts).map_err(unreadable)?;
                let key = CellKey {
                    unit_id,
                    form_code,
                    form_version,
                    month,
                    channel,
                    respondent_type,
                };
                Ok((key, cell))
            },
        )
        .collect()
}

/// The sum of one count over stored cells that `keep` accepts.
pub fn stored_count(
    conn: &mut DbConn,
    keep: impl Fn(&CellKey) -> bool,
    question: &str,
    level: i64,
) -> QueryResult<i64> {
    Ok(stored_cells(conn, None)?
        .iter()
        .filter(|(key, _)| keep(key))
        .map(|(_, cell)| cell.count(question, level))
        .sum())
}
