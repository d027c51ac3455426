//! The report reads staff ask for, as use cases: one unit's report (within the reader's scope),
//! the province ranking, the province overview, an agency's home and a unit's activity. Each
//! takes the [`Services`] and a parsed query; heavy reads go to the read replica when one is
//! configured. Periods left empty default to the data (latest year or month with answers).

use chrono::NaiveDate;

use super::agency_home::AgencyHome;
use super::overview::ProvinceOverview;
use super::period::Period;
use super::{RankingRow, Slice, UnitReport};
use crate::accounts::actor::{Actor, outside_scope};
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::procedures::Procedure;
use crate::services::Services;
use crate::units::{self, UNIT_KINDS, Unit};

/// An optional text filter: empty is absent.
fn given(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

/// A period as typed, `None` when left empty (the use case picks one from the data).
fn parse_period(text: Option<&str>) -> AppResult<Option<Period>> {
    match given(text) {
        Some(text) => Period::parse(&text)
            .map(Some)
            .ok_or_else(super::latest::bad_period),
        None => Ok(None),
    }
}

/// What a unit's report is asked for: the period and the slice of answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportQuery {
    pub period: Option<Period>,
    /// `counter`, `independent`, or one channel name.
    pub channel: Option<String>,
    /// `individual` or `organisation`.
    pub respondent_type: Option<String>,
    /// A procedure by code (resolved by the use case).
    pub procedure_code: Option<String>,
    /// Also count responses held for review.
    pub include_held: bool,
}

impl ReportQuery {
    pub fn parse(
        period: Option<&str>,
        channel: Option<&str>,
        respondent_type: Option<&str>,
        procedure: Option<&str>,
        held: Option<&str>,
    ) -> AppResult<Self> {
        Ok(Self {
            period: parse_period(period)?,
            channel: given(channel),
            respondent_type: given(respondent_type),
            procedure_code: given(procedure),
            include_held: held == Some("include"),
        })
    }
}

/// The ranking asked for: a period and a level of units (`department` by default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankingQuery {
    pub period: Option<Period>,
    pub kind: String,
}

impl RankingQuery {
    pub fn parse(period: Option<&str>, kind: Option<&str>) -> AppResult<Self> {
        let period = parse_period(period)?;
        let kind = given(kind).unwrap_or_else(|| "department".into());
        if !UNIT_KINDS.contains(&kind.as_str()) {
            return Err(AppError::field(
                "kind",
                Msg::new("Loại đơn vị không hợp lệ.", "Unknown unit kind."),
            ));
        }
        Ok(Self { period, kind })
    }
}

fn local_today(services: &Services) -> NaiveDate {
    crate::calendar::local_day(crate::db::now(), services.policies.utc_offset)
}

/// The period asked for, else the year of the latest answer (pages open on data), else the
/// current year.
async fn period_or_latest_year(services: &Services, asked: Option<Period>) -> AppResult<Period> {
    if let Some(period) = asked {
        return Ok(period);
    }
    let offset = services.policies.utc_offset;
    let this_year = local_today(services).format("%Y").to_string();
    services
        .with_read_conn(move |conn| {
            super::latest::latest_year(conn, offset)?
                .or_else(|| Period::parse(&this_year))
                .ok_or_else(super::latest::bad_period)
        })
        .await
}

/// A unit's report with the latest suggestions and the procedures its filter offers.
#[derive(Debug)]
pub struct UnitReportPage {
    pub report: UnitReport,
    pub suggestions: Vec<(String, String)>,
    pub procedures: Vec<Procedure>,
}

/// `GET /reports/units/{id}` (and its print, CSV, XLSX and JSON forms): the report of a unit
/// the actor may read; any other unit is "not found".
pub async fn unit_report(
    services: &Services,
    actor: &Actor,
    unit_id: String,
    query: ReportQuery,
) -> AppResult<UnitReportPage> {
    let period = period_or_latest_year(services, query.period).await?;
    let (forms, opts, actor) = (
        services.forms.clone(),
        services.policies.report,
        actor.clone(),
    );
    services
        .with_read_conn(move |conn| {
            actor.require_unit(conn, &unit_id)?;
            let unit = units::find(conn, &unit_id)?.ok_or_else(outside_scope)?;
            let procedure_id = match &query.procedure_code {
                Some(code) => Some(
                    crate::procedures::find_by_code(conn, code)?
                        .ok_or_else(|| {
                            AppError::field(
                                "procedure",
                                Msg::new("Không có thủ tục này.", "No such procedure."),
                            )
                        })?
                        .id,
                ),
                None => None,
            };
            let slice = Slice {
                channel: query.channel,
                respondent_type: query.respondent_type,
                procedure_id,
                include_held: query.include_held,
            };
            let (report, suggestions) =
                super::dashboard(conn, &forms, &opts, &unit, &period, &slice)?;
            Ok(UnitReportPage {
                report,
                suggestions,
                procedures: crate::procedures::list(conn)?,
            })
        })
        .await
}

/// The ranking of one level of units over a period.
#[derive(Debug)]
pub struct Ranking {
    pub period: Period,
    pub kind: String,
    pub rows: Vec<RankingRow>,
}

/// `GET /reports/ranking` (and its CSV, XLSX and JSON forms).
pub async fn ranking(services: &Services, query: RankingQuery) -> AppResult<Ranking> {
    let period = period_or_latest_year(services, query.period).await?;
    let (forms, opts) = (services.forms.clone(), services.policies.report);
    let kind = query.kind;
    services
        .with_read_conn(move |conn| {
            let rows = super::ranking(conn, &forms, &opts, &kind, &period)?;
            Ok(Ranking { period, kind, rows })
        })
        .await
}

/// `GET /admin`: the province overview of a month (by default the latest with answers).
pub async fn province_overview(
    services: &Services,
    asked_period: Option<String>,
) -> AppResult<ProvinceOverview> {
    let today = local_today(services);
    let offset = services.policies.utc_offset;
    let (forms, opts) = (services.forms.clone(), services.policies.report);
    let policy = services.policies.integrity.clone();
    services
        .with_read_conn(move |conn| {
            let period = super::latest::chosen_or_latest_month(
                conn,
                asked_period.as_deref(),
                today,
                offset,
            )?;
            super::overview::province_overview(conn, &forms, &opts, &policy, &period, today)
        })
        .await
}

/// `GET /agency`: the home of the actor's units for a month (by default the latest with
/// answers); `today` is the local day that decides what is overdue.
pub async fn agency_home(
    services: &Services,
    actor: &Actor,
    asked_period: Option<String>,
) -> AppResult<(AgencyHome, NaiveDate)> {
    let today = local_today(services);
    let offset = services.policies.utc_offset;
    let (forms, opts, actor) = (
        services.forms.clone(),
        services.policies.report,
        actor.clone(),
    );
    let home = services
        .with_read_conn(move |conn| {
            let period = super::latest::chosen_or_latest_month(
                conn,
                asked_period.as_deref(),
                today,
                offset,
            )?;
            super::agency_home::agency_home(conn, &forms, &opts, &actor, &period, today)
        })
        .await?;
    Ok((home, today))
}

/// A unit's registered dossiers and answers, by form and channel.
#[derive(Debug)]
pub struct UnitActivity {
    pub unit: Unit,
    pub dossiers: i64,
    /// `(form, channel, responses)`.
    pub by_channel: Vec<(String, String, i64)>,
}

/// `GET /agency/units/{id}`: the activity of a unit the actor may read.
pub async fn unit_activity(
    services: &Services,
    actor: &Actor,
    unit_id: String,
) -> AppResult<UnitActivity> {
    let actor = actor.clone();
    services
        .with_conn(move |conn| {
            actor.require_unit(conn, &unit_id)?;
            let unit = units::find(conn, &unit_id)?.ok_or_else(outside_scope)?;
            let (dossiers, _) = super::activity::unit_counts(conn, &unit_id)?;
            let by_channel = super::activity::unit_answers_by_form_and_channel(conn, &unit_id)?;
            Ok(UnitActivity {
                unit,
                dossiers,
                by_channel,
            })
        })
        .await
}

/// What the response-level export is asked for: a form the service knows (`sipas` by
/// default) and a period (by default the current year).
#[derive(Clone)]
pub struct ExportQuery {
    pub form: std::sync::Arc<crate::forms::Form>,
    pub period: Option<Period>,
}

impl ExportQuery {
    pub fn parse(
        forms: &crate::forms::FormRegistry,
        form: Option<&str>,
        period: Option<&str>,
    ) -> AppResult<Self> {
        let form = forms.latest(form.unwrap_or("sipas")).ok_or_else(|| {
            AppError::field("form", Msg::new("Không có mẫu phiếu này.", "No such form."))
        })?;
        let period = match period {
            Some(text) => Some(Period::parse(text).ok_or_else(|| {
                AppError::field("period", Msg::new("Kỳ không hợp lệ.", "Invalid period."))
            })?),
            None => None,
        };
        Ok(Self { form, period })
    }
}

/// An export ready to stream: its first line is [`ResponseExport::header`], then its pages.
pub struct OpenedExport {
    pub export: super::response_export::ResponseExport,
    pub form: std::sync::Arc<crate::forms::Form>,
    pub period: Period,
}

/// `GET /admin/export/responses.csv`: opens the export on the read replica (when there is
/// one); the pages are read as the download goes.
pub async fn response_export(services: &Services, query: ExportQuery) -> AppResult<OpenedExport> {
    let period = match query.period {
        Some(period) => period,
        None => Period::parse(&local_today(services).format("%Y").to_string())
            .ok_or_else(super::latest::bad_period)?,
    };
    let (from, until) = period.utc_bounds(services.policies.utc_offset);
    let form = query.form;
    let export_form = form.clone();
    let export = services
        .with_read_conn(move |conn| {
            Ok(super::response_export::ResponseExport::new(
                conn,
                &export_form,
                from,
                until,
            )?)
        })
        .await?;
    Ok(OpenedExport {
        export,
        form,
        period,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_filters_are_absent_and_periods_are_read() {
        let q =
            ReportQuery::parse(Some(" "), Some(""), None, Some(" TT-1 "), Some("include")).unwrap();
        assert_eq!(q.period, None);
        assert_eq!(q.channel, None);
        assert_eq!(q.procedure_code.as_deref(), Some("TT-1"));
        assert!(q.include_held);
        assert!(ReportQuery::parse(Some("sometime"), None, None, None, None).is_err());
        let q = ReportQuery::parse(Some("2026-Q3"), None, None, None, Some("exclude")).unwrap();
        assert_eq!(q.period.map(|p| p.label()).as_deref(), Some("2026-Q3"));
        assert!(!q.include_held);
    }

    #[test]
    fn rankings_are_of_a_known_level() {
        assert_eq!(RankingQuery::parse(None, None).unwrap().kind, "department");
        assert_eq!(
            RankingQuery::parse(None, Some("commune")).unwrap().kind,
            "commune"
        );
        assert!(RankingQuery::parse(None, Some("castle")).is_err());
    }
}
