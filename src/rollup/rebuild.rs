//! Filling the rollups from the stored dossiers and responses, on a database that has data but
//! no rollups yet (an upgrade, a restore from an older backup).

use chrono::{FixedOffset, NaiveDateTime};
use diesel::prelude::*;

use super::{DossierChange, RollupDelta};
use crate::db::DbConn;
use crate::db::schema::{dossier_rollups, responses, rollup_cells, transactions};
use crate::db_run;
use crate::forms::FormRegistry;
use crate::survey::stored::{STORED_COLUMNS, StoredResponse};

/// Which part of a rollup rebuild a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RebuildStep {
    Dossiers,
    Responses,
}

/// Fills rollups that are missing while the data behind them is stored: after the migration
/// that introduced the current rollup tables, dossier rollups from the dossiers and rollup cells
/// from the responses (local months need the UTC offset, a setting SQL migrations cannot see).
/// Each kind in one transaction, so an interrupted run is simply done again at the next start.
/// `progress` hears how many rows are counted so far. Returns (dossiers, responses) counted.
pub fn rebuild_missing_rollups(
    conn: &mut DbConn,
    forms: &FormRegistry,
    offset: FixedOffset,
    progress: &mut dyn FnMut(RebuildStep, u64),
) -> QueryResult<(u64, u64)> {
    let dossiers = conn.write_transaction(|conn| {
        let present: Option<String> = db_run!(conn: {
            dossier_rollups::table.select(dossier_rollups::unit_id).first(conn).optional()
        })?;
        if present.is_some() {
            return Ok(0);
        }
        let mut delta = RollupDelta::default();
        let mut counted = 0;
        let mut after = String::new();
        loop {
            type Row = (String, String, NaiveDateTime, Option<NaiveDateTime>, Option<i64>);
            let page: Vec<Row> = db_run!(conn: {
                transactions::table
                    .filter(transactions::id.gt(&after))
                    .order(transactions::id)
                    .limit(10_000)
                    .select((transactions::id, transactions::unit_id, transactions::completed_at, transactions::due_at, transactions::rating))
                    .load(conn)
            })?;
            let Some(last) = page.last() else { break };
            after = last.0.clone();
            for (_, unit, completed, due, rating) in &page {
                delta.add_dossier(unit, *completed, offset, DossierChange::of_dossier(*completed, *due, *rating));
                counted += 1;
            }
            progress(RebuildStep::Dossiers, counted);
        }
        delta.apply(conn)?;
        QueryResult::Ok(counted)
    })?;
    let responses = conn.write_transaction(|conn| {
        let present: Option<String> = db_run!(conn: {
            rollup_cells::table.select(rollup_cells::unit_id).first(conn).optional()
        })?;
        if present.is_some() {
            return Ok(0);
        }
        let mut counted = 0;
        let mut after = String::new();
        loop {
            let page: Vec<StoredResponse> = db_run!(conn: {
                // Only what the published figures count: held, rejected and apart-kept
                // group answers stay out, as when they were stored.
                responses::table
                    .filter(responses::id.gt(&after))
                    .filter(responses::status.eq(crate::survey::response::ResponseStatus::Counted.as_str()))
                    .order(responses::id)
                    .limit(10_000)
                    .select(STORED_COLUMNS)
                    .load(conn)
            })?;
            let Some(last) = page.last() else { break };
            after = last.id.clone();
            let mut delta = RollupDelta::default();
            for row in &page {
                if let Some(submission) = row.to_submission(conn, forms)? {
                    delta.add(&submission, offset);
                    counted += 1;
                }
            }
            delta.apply(conn)?;
            progress(RebuildStep::Responses, counted);
        }
        QueryResult::Ok(counted)
    })?;
    Ok((dossiers, responses))
}
