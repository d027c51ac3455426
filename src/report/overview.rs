//! The province dashboard's figures (`/admin`): for one period, the province index with its
//! interval and trend, how the units are spread, the weakest units and items, units below their
//! required sample, the paper collection's progress, the units the integrity signals flag,
//! overdue bad-rating cases and stuck mail. Everything comes from the functions the detailed
//! pages use (rankings, unit reports, the integrity panel, custody, the outbox), so the
//! dashboard never disagrees with the page it links to.

use chrono::NaiveDate;
use serde::Serialize;

use super::figures::Figure;
use super::period::Period;
use super::{RankingRow, ReportOptions, Slice, UnitReport};
use crate::db::DbConn;
use crate::error::AppResult;
use crate::forms::FormRegistry;
use crate::integrity::IntegrityPolicy;
use crate::integrity::cases::{self, Case};
use crate::integrity::units::UnitIntegrity;
use crate::mail::outbox::{self, OutboxEntry};
use crate::paper::custody::{self, Custody};
use crate::units::{self, Unit};

/// How many rows each "weakest" list shows.
pub const SHORT_LIST: usize = 5;

/// One rated item of the province, for the weakest-items list.
#[derive(Debug, Clone, Serialize)]
pub struct ItemRow {
    pub element: String,
    pub code: String,
    pub text_vi: String,
    pub text_en: String,
    pub satisfied: Figure,
}

/// An overdue case with the name of its unit.
#[derive(Debug, Clone)]
pub struct OverdueCase {
    pub case: Case,
    pub unit_code: String,
    pub unit_vi: String,
    pub unit_en: String,
    pub days_late: i64,
}

/// Everything the province dashboard shows for one period.
#[derive(Debug, Clone)]
pub struct ProvinceOverview {
    pub period: Period,
    /// The report of the province's root unit (index, interval, change, 12-month trend).
    pub province: Option<UnitReport>,
    /// Every unit ranked within its kind (centre, departments, communes), in that order.
    pub units: Vec<RankingRow>,
    pub weakest_units: Vec<RankingRow>,
    pub weakest_items: Vec<ItemRow>,
    /// Units with dossiers whose achieved sample is below the required one.
    pub below_sample: Vec<RankingRow>,
    /// Paper forms at or past each custody step, over every batch.
    pub paper: Custody,
    pub paper_batches: usize,
    pub flagged: Vec<UnitIntegrity>,
    pub overdue: Vec<OverdueCase>,
    pub open_cases: usize,
    /// Messages given up on (status `failed`) and the latest of them.
    pub stuck_mail: usize,
    pub stuck_examples: Vec<OutboxEntry>,
    /// Units, procedures, accounts, registered dossiers, responses (the former `/admin` table).
    pub totals: [i64; 5],
    /// The audit chain: events verified, or where it breaks.
    pub chain: Result<i64, String>,
}

/// The root of the unit tree: the province (the one unit without a parent, preferring kind
/// `province`).
fn province_unit(all: &[Unit]) -> Option<&Unit> {
    all.iter()
        .find(|u| u.parent_id.is_none() && u.kind == "province")
        .or_else(|| all.iter().find(|u| u.parent_id.is_none()))
}

/// The unit kinds ranked on the dashboard, in display order.
const RANKED_KINDS: [&str; 3] = ["centre", "department", "commune"];

/// The rated items of a report's SIPAS figures, weakest first (suppressed ones left out).
pub fn weakest_items(report: &UnitReport, limit: usize) -> Vec<ItemRow> {
    let Some(sipas) = &report.sipas else {
        return Vec::new();
    };
    let mut items: Vec<ItemRow> = sipas
        .elements
        .iter()
        .flat_map(|e| {
            e.items.iter().map(|i| ItemRow {
                element: e.code.clone(),
                code: i.code.clone(),
                text_vi: i.text_vi.clone(),
                text_en: i.text_en.clone(),
                satisfied: i.satisfied.clone(),
            })
        })
        .filter(|i| i.satisfied.value.is_some())
        .collect();
    items.sort_by(|a, b| {
        a.satisfied
            .value
            .partial_cmp(&b.satisfied.value)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.code.cmp(&b.code))
    });
    items.truncate(limit);
    items
}

/// Gathers the dashboard of `period`; `today` (local) decides which cases are overdue.
pub fn province_overview(
    conn: &mut DbConn,
    forms: &FormRegistry,
    opts: &ReportOptions,
    policy: &IntegrityPolicy,
    period: &Period,
    today: NaiveDate,
) -> AppResult<ProvinceOverview> {
    let all = units::list(conn)?;
    let province = match province_unit(&all) {
        Some(root) => Some(super::unit_report(
            conn,
            forms,
            opts,
            root,
            period,
            &Slice::default(),
        )?),
        None => None,
    };
    let mut ranked = Vec::new();
    for kind in RANKED_KINDS {
        ranked.extend(super::ranking(conn, forms, opts, kind, period)?);
    }
    let mut weakest_units: Vec<RankingRow> = ranked
        .iter()
        .filter(|r| r.index.value.is_some())
        .cloned()
        .collect();
    weakest_units.sort_by(|a, b| {
        a.index
            .value
            .partial_cmp(&b.index.value)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.unit.code.cmp(&b.unit.code))
    });
    weakest_units.truncate(SHORT_LIST);
    let below_sample = ranked
        .iter()
        .filter(|r| r.sample.population > 0 && !r.sample.sufficient)
        .cloned()
        .collect();
    let weakest_items = province
        .as_ref()
        .map(|r| weakest_items(r, SHORT_LIST))
        .unwrap_or_default();
    let batches = custody::list(conn, None)?;
    let mut paper = Custody::default();
    for (_, _, c) in &batches {
        paper.issued += c.issued;
        paper.delivered += c.delivered;
        paper.returned += c.returned;
        paper.keyed += c.keyed;
        paper.verified += c.verified;
    }
    let flagged: Vec<UnitIntegrity> =
        crate::integrity::units::assess(conn, forms, opts, policy, period)?
            .into_iter()
            .filter(|u| u.flagged)
            .collect();
    let ids: Vec<String> = all.iter().map(|u| u.id.clone()).collect();
    let open = cases::list(conn, &ids, true)?;
    let open_cases = open.len();
    let mut overdue: Vec<OverdueCase> = open
        .into_iter()
        .filter(|c| c.overdue(today))
        .map(|case| {
            let unit = all.iter().find(|u| u.id == case.unit_id);
            OverdueCase {
                days_late: (today - case.due_on).num_days(),
                unit_code: unit.map(|u| u.code.clone()).unwrap_or_default(),
                unit_vi: unit.map(|u| u.name_vi.clone()).unwrap_or_default(),
                unit_en: unit.map(|u| u.name_en.clone()).unwrap_or_default(),
                case,
            }
        })
        .collect();
    overdue.sort_by_key(|c| std::cmp::Reverse(c.days_late));
    let stuck: usize = outbox::summary(conn)?
        .iter()
        .filter(|(_, _, status, _)| *status == outbox::MailStatus::Failed)
        .map(|(_, _, _, n)| usize::try_from(*n).unwrap_or(0))
        .sum();
    let stuck_examples = outbox::list(conn, Some(outbox::MailStatus::Failed), SHORT_LIST as i64)?;
    let totals = super::activity::province_totals(conn)?;
    let chain = crate::audit::verify(conn)?.map_err(|b| b.to_string());
    Ok(ProvinceOverview {
        totals,
        chain,
        period: *period,
        province,
        units: ranked,
        weakest_units,
        weakest_items,
        below_sample,
        paper,
        paper_batches: batches.len(),
        flagged,
        overdue,
        open_cases,
        stuck_mail: stuck,
        stuck_examples,
    })
}

/// Buckets of the spread of unit indices: (lower bound, upper bound, units).
pub fn spread(rows: &[RankingRow]) -> Vec<(u32, u32, usize)> {
    let bounds = [(0, 60), (60, 70), (70, 80), (80, 90), (90, 101)];
    bounds
        .iter()
        .map(|&(lo, hi)| {
            let n = rows
                .iter()
                .filter_map(|r| r.index.value)
                .filter(|v| *v >= f64::from(lo) && *v < f64::from(hi))
                .count();
            (lo, hi.min(100), n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{SampleFigure, UnitRef};

    fn row(code: &str, value: Option<f64>) -> RankingRow {
        RankingRow {
            rank: None,
            unit: UnitRef {
                id: code.into(),
                code: code.into(),
                name_vi: code.into(),
                name_en: code.into(),
                kind: "commune".into(),
            },
            index: Figure {
                n: 50,
                value,
                ci_low: None,
                ci_high: None,
                se: None,
            },
            sample: SampleFigure {
                population: 0,
                required: 0,
                achieved: 0,
                sufficient: false,
            },
            dossier_rate: None,
            gap: None,
            gap_significant: false,
        }
    }

    #[test]
    fn spread_counts_each_unit_once_and_skips_suppressed_ones() {
        let rows = [
            row("A", Some(55.0)),
            row("B", Some(60.0)),
            row("C", Some(89.9)),
            row("D", Some(100.0)),
            row("E", None),
        ];
        let buckets = spread(&rows);
        assert_eq!(
            buckets,
            vec![
                (0, 60, 1),
                (60, 70, 1),
                (70, 80, 0),
                (80, 90, 1),
                (90, 100, 1)
            ]
        );
    }
}
