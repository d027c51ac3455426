//! An agency's home page figures (`/agency`): its units at a glance for one period, the units
//! whose index changed significantly since the previous period (the unit report's own change
//! test), the agency's weakest items, and its open and overdue bad-rating cases.

use chrono::NaiveDate;

use super::overview::{ItemRow, SHORT_LIST, weakest_items};
use super::period::Period;
use super::{ReportOptions, Slice, UnitReport};
use crate::accounts::Role;
use crate::accounts::actor::Actor;
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::forms::FormRegistry;
use crate::i18n::Msg;
use crate::integrity::cases::{self, Case};
use crate::units::{self, Unit};

/// More units than this are listed without their figures (a department's subtree is small;
/// an administrator looking at the whole province has the province dashboard instead).
pub const MAX_UNITS_WITH_FIGURES: usize = 40;

/// One unit of the agency, with its report for the period when computed.
#[derive(Debug, Clone)]
pub struct UnitGlance {
    pub unit: Unit,
    pub report: Option<UnitReport>,
    /// Dossiers registered and surveys answered, all time.
    pub dossiers: i64,
    pub answered: i64,
}

/// Everything the agency home shows.
#[derive(Debug, Clone)]
pub struct AgencyHome {
    pub period: Period,
    /// The agency's own unit (the root of its scope); `None` for an administrator.
    pub root: Option<Unit>,
    pub units: Vec<UnitGlance>,
    /// Units whose index changed significantly since the previous period.
    pub changes: Vec<UnitGlance>,
    pub weakest_items: Vec<ItemRow>,
    pub open_cases: Vec<Case>,
    pub overdue_cases: usize,
}

/// The units a results reader may see: everything for administrators, the subtree for an
/// agency, nothing for anyone else (403).
pub fn scope_of(conn: &mut DbConn, actor: &Actor) -> AppResult<(Option<Unit>, Vec<Unit>)> {
    match (actor.role, &actor.unit_id) {
        (Role::Admin, _) => Ok((None, units::list(conn)?)),
        (Role::Agency, Some(root)) => {
            let root_unit = units::find(conn, root)?;
            Ok((root_unit, units::subtree(conn, root)?))
        }
        _ => Err(AppError::Forbidden(Msg::new(
            "Không có quyền xem kết quả.",
            "You may not read results.",
        ))),
    }
}

/// Gathers the agency home of `user` for `period`; `today` (local) decides what is overdue.
pub fn agency_home(
    conn: &mut DbConn,
    forms: &FormRegistry,
    opts: &ReportOptions,
    actor: &Actor,
    period: &Period,
    today: NaiveDate,
) -> AppResult<AgencyHome> {
    let (root, scope) = scope_of(conn, actor)?;
    let with_figures = scope.len() <= MAX_UNITS_WITH_FIGURES;
    let mut glances = Vec::with_capacity(scope.len());
    for unit in scope {
        // A unit closed before the period has nothing to show in it.
        let active =
            unit.valid_from <= period.to && unit.valid_to.is_none_or(|end| end >= period.from);
        let report = if with_figures && active {
            Some(super::unit_report(
                conn,
                forms,
                opts,
                &unit,
                period,
                &Slice::default(),
            )?)
        } else {
            None
        };
        let (dossiers, answered) = super::activity::unit_counts(conn, &unit.id)?;
        glances.push(UnitGlance {
            unit,
            report,
            dossiers,
            answered,
        });
    }
    let changes = glances
        .iter()
        .filter(|g| {
            g.report
                .as_ref()
                .and_then(|r| r.change.as_ref())
                .is_some_and(|c| c.significant)
        })
        .cloned()
        .collect();
    let weakest = match &root {
        Some(root) => glances
            .iter()
            .find(|g| g.unit.id == root.id)
            .and_then(|g| g.report.as_ref())
            .map(|r| weakest_items(r, SHORT_LIST))
            .unwrap_or_default(),
        None => Vec::new(),
    };
    let ids: Vec<String> = glances.iter().map(|g| g.unit.id.clone()).collect();
    let open_cases = cases::list(conn, &ids, true)?;
    let overdue_cases = open_cases.iter().filter(|c| c.overdue(today)).count();
    Ok(AgencyHome {
        period: *period,
        root,
        units: glances,
        changes,
        weakest_items: weakest,
        open_cases,
        overdue_cases,
    })
}
