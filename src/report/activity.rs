//! How much is stored, for the staff home pages: totals of the province, a unit's registered
//! dossiers and answered surveys (from the rollups, never raw answers), and answers per form.

use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{
    dossier_rollups, procedures, responses, rollup_cells, transactions, units, users,
};
use crate::db_run;

/// Counts of units, procedures, accounts, registered transactions and responses.
pub fn province_totals(conn: &mut DbConn) -> QueryResult<[i64; 5]> {
    db_run!(conn: {
        QueryResult::Ok([
            units::table.count().get_result(conn)?,
            procedures::table.count().get_result(conn)?,
            users::table.count().get_result(conn)?,
            transactions::table.count().get_result(conn)?,
            responses::table.count().get_result(conn)?,
        ])
    })
}

/// `SUM(rollup_cells.responses)` as BIGINT on both backends (PostgreSQL's SUM of BIGINT is
/// NUMERIC).
fn sum_n() -> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>
{
    diesel::dsl::sql("CAST(SUM(rollup_cells.responses) AS BIGINT)")
}

/// Registered dossiers and answered surveys of one unit.
pub fn unit_counts(conn: &mut DbConn, unit_id: &str) -> QueryResult<(i64, i64)> {
    db_run!(conn: {
        let dossiers: Option<i64> = dossier_rollups::table
            .filter(dossier_rollups::unit_id.eq(unit_id))
            .select(diesel::dsl::sql::<diesel::sql_types::Nullable<diesel::sql_types::BigInt>>("CAST(SUM(dossiers) AS BIGINT)"))
            .first::<Option<i64>>(conn)?;
        let answered: Option<i64> = rollup_cells::table
            .filter(rollup_cells::unit_id.eq(unit_id))
            .select(sum_n())
            .first::<Option<i64>>(conn)
            .or_else(|_| Ok::<_, diesel::result::Error>(None))?;
        QueryResult::Ok((dossiers.unwrap_or(0), answered.unwrap_or(0)))
    })
}

/// A unit's counted answers per (form, channel).
pub fn unit_answers_by_form_and_channel(
    conn: &mut DbConn,
    unit_id: &str,
) -> QueryResult<Vec<(String, String, i64)>> {
    let rows: Vec<(String, String, Option<i64>)> = db_run!(conn: {
        rollup_cells::table
            .filter(rollup_cells::unit_id.eq(unit_id))
            .group_by((rollup_cells::form_code, rollup_cells::channel))
            .select((rollup_cells::form_code, rollup_cells::channel, sum_n()))
            .load::<(String, String, Option<i64>)>(conn)
    })?;
    Ok(rows
        .into_iter()
        .map(|(f, c, n)| (f, c, n.unwrap_or(0)))
        .collect())
}

/// Stored responses per (form code, form version).
pub fn responses_by_form_version(conn: &mut DbConn) -> QueryResult<Vec<(String, i64, i64)>> {
    db_run!(conn: {
        responses::table
            .group_by((responses::form_code, responses::form_version))
            .select((responses::form_code, responses::form_version, diesel::dsl::count_star()))
            .load(conn)
    })
}

/// How the survey forms are used: responses per form version, and the form each unit issues
/// at the counter (`None`: the service default).
pub struct FormUsage {
    /// `(form code, version, responses)`.
    pub responses: Vec<(String, i64, i64)>,
    /// `(unit code, counter form)`.
    pub counter_units: Vec<(String, Option<String>)>,
}

/// `GET /admin/forms`.
pub fn form_usage(conn: &mut DbConn) -> QueryResult<FormUsage> {
    Ok(FormUsage {
        responses: responses_by_form_version(conn)?,
        counter_units: crate::units::counter_forms(conn)?,
    })
}
