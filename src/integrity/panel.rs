//! The province's integrity panel as use cases: the ranking of units by evidence of inflated
//! counter results, one unit's history (the numbers behind its flags, a six-month trend, its
//! held responses), and the decision on a held response. Each takes the [`Services`] (the
//! period's default is read where heavy reads go) and returns what the page shows.

use chrono::{Datelike, Months, NaiveDate};

use super::cases;
use super::review::{self, Decision, HeldResponse};
use super::units::{UnitIntegrity, assess};
use crate::accounts::actor::Actor;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::report::period::Period;
use crate::services::Services;
use crate::units::{self, Unit};

/// How many months the unit's trend shows, up to the period's end.
pub const TREND_MONTHS: u32 = 6;

/// The panel's period as asked (`YYYY-MM`, a quarter, a year…), by default the latest month
/// with answers, else the current local month.
pub async fn period(services: &Services, asked: Option<String>) -> AppResult<Period> {
    let offset = services.policies.utc_offset;
    let today = today(services);
    services
        .with_read_conn(move |conn| {
            crate::report::latest::chosen_or_latest_month(conn, asked.as_deref(), today, offset)
        })
        .await
}

fn today(services: &Services) -> NaiveDate {
    crate::calendar::local_day(crate::db::now(), services.policies.utc_offset)
}

/// Units most at risk first, with the province's counts of held responses and overdue cases.
#[derive(Debug)]
pub struct Panel {
    pub period: Period,
    pub units: Vec<UnitIntegrity>,
    pub held: usize,
    pub overdue_cases: i64,
}

impl Panel {
    pub fn flagged(&self) -> usize {
        self.units.iter().filter(|u| u.flagged).count()
    }
}

/// `GET /admin/integrity`.
pub async fn panel(services: &Services, asked_period: Option<String>) -> AppResult<Panel> {
    let period = period(services, asked_period).await?;
    let (forms, opts) = (services.forms.clone(), services.policies.report);
    let policy = services.policies.integrity.clone();
    let today = today(services);
    services
        .with_conn(move |conn| {
            Ok(Panel {
                units: assess(conn, &forms, &opts, &policy, &period)?,
                held: review::held(conn, None, 10_000)?.len(),
                overdue_cases: cases::overdue_count(conn, today)?,
                period,
            })
        })
        .await
}

/// One unit's integrity over a period and the months before it.
#[derive(Debug)]
pub struct UnitHistory {
    pub period: Period,
    pub unit: Unit,
    /// `None` when the unit had no counter answers or dossiers in the period.
    pub current: Option<UnitIntegrity>,
    /// Month label and the unit's assessment that month, oldest first.
    pub trend: Vec<(String, Option<UnitIntegrity>)>,
    pub held: Vec<HeldResponse>,
}

/// The months of the trend ending with the month of `last`, oldest first.
fn trend_months(last: NaiveDate) -> Vec<Period> {
    (0..TREND_MONTHS)
        .rev()
        .filter_map(|back| {
            let month = last
                .with_day0(0)
                .and_then(|m| m.checked_sub_months(Months::new(back)))?;
            Period::parse(&month.format("%Y-%m").to_string())
        })
        .collect()
}

/// `GET /admin/integrity/units/{id}`.
pub async fn unit_history(
    services: &Services,
    unit_id: String,
    asked_period: Option<String>,
) -> AppResult<UnitHistory> {
    let period = period(services, asked_period).await?;
    let (forms, opts) = (services.forms.clone(), services.policies.report);
    let policy = services.policies.integrity.clone();
    services
        .with_conn(move |conn| {
            let unit = units::find(conn, &unit_id)?.ok_or_else(|| {
                AppError::NotFound(Msg::new("Không có đơn vị này.", "No such unit."))
            })?;
            let of_unit = |all: Vec<UnitIntegrity>| all.into_iter().find(|u| u.unit.id == unit_id);
            let current = of_unit(assess(conn, &forms, &opts, &policy, &period)?);
            let mut trend = Vec::new();
            for month in trend_months(period.to) {
                let found = of_unit(assess(conn, &forms, &opts, &policy, &month)?);
                trend.push((month.label(), found));
            }
            let held = review::held(conn, Some(std::slice::from_ref(&unit_id)), 200)?;
            Ok(UnitHistory {
                period,
                unit,
                current,
                trend,
                held,
            })
        })
        .await
}

/// `POST /admin/integrity/responses/{id}`: accepts or rejects a held response.
pub async fn review(
    services: &Services,
    actor: &Actor,
    response_id: String,
    decision: Decision,
) -> AppResult<()> {
    let (forms, offset) = (services.forms.clone(), services.policies.utc_offset);
    let actor = actor.audit();
    services
        .with_conn(move |conn| {
            review::decide(conn, &forms, &actor, &response_id, &decision, offset)
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trend_ends_with_the_period_month() {
        let months = trend_months(NaiveDate::from_ymd_opt(2026, 3, 31).unwrap());
        let labels: Vec<String> = months.iter().map(Period::label).collect();
        assert_eq!(
            labels,
            [
                "2025-10", "2025-11", "2025-12", "2026-01", "2026-02", "2026-03"
            ]
        );
    }
}
