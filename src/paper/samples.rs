//! Use cases of the paper samples: an administrator draws a sample of the people served and
//! reads every sample; administrators and collectors open one, download its worklist and print
//! its forms. A collector organisation sees only what it was handed (its batches): the worklist
//! carries dossier codes, so another organisation's units, and samples it was given nothing of,
//! are "not found", as for an agency outside its subtree.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;

use super::custody;
use super::sampling::{self, SampleRequest, SampleSummary, StoredSample, WorklistRow};
use crate::accounts::{Actor, User, users};
use crate::collector_orgs::{self, CollectorOrg};
use crate::error::{AppError, AppResult};
use crate::forms::Form;
use crate::i18n::Msg;
use crate::periods::SurveyPeriod;
use crate::services::Services;

/// Use case: every sample and the periods a new one can be drawn for (`GET /admin/samples`).
pub async fn overview(services: &Services) -> AppResult<(Vec<StoredSample>, Vec<SurveyPeriod>)> {
    services
        .with_conn(|conn| Ok((sampling::list(conn)?, crate::periods::list(conn)?)))
        .await
}

/// The sample form as posted: text fields, read into a [`SampleRequest`] by [`Self::parse`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct DrawFields {
    pub period: String,
    pub units: String,
    #[serde(default)]
    pub margin: String,
    #[serde(default)]
    pub quota: String,
    #[serde(default)]
    pub reserve: String,
    #[serde(default)]
    pub seed: String,
    pub by_procedure: Option<String>,
}

fn number<T: std::str::FromStr>(field: &str, text: &str) -> AppResult<Option<T>> {
    let t = text.trim().replace(',', ".");
    if t.is_empty() {
        return Ok(None);
    }
    t.parse().map(Some).map_err(|_| {
        AppError::field(
            field,
            Msg::new("Giá trị phải là một số.", "The value must be a number."),
        )
    })
}

impl DrawFields {
    /// The request to draw: unit codes split on commas, spaces or semicolons; numbers with a
    /// decimal point or comma; empty ones take `default_margin` and a fifth in reserve. The
    /// ranges are the draw's to check.
    pub fn parse(&self, default_margin: f64) -> AppResult<SampleRequest> {
        Ok(SampleRequest {
            period_code: self.period.trim().to_string(),
            unit_codes: self
                .units
                .split([',', ' ', ';'])
                .map(|c| c.trim().to_ascii_uppercase())
                .filter(|c| !c.is_empty())
                .collect(),
            seed: number("seed", &self.seed)?,
            margin: number("margin", &self.margin)?.unwrap_or(default_margin),
            quota: number("quota", &self.quota)?,
            reserve_share: number("reserve", &self.reserve)?.unwrap_or(0.2),
            by_procedure: self.by_procedure.is_some(),
            form_code: "sipas".into(),
        })
    }
}

/// Use case: an administrator draws a sample (`POST /admin/samples`).
pub async fn draw(
    services: &Services,
    actor: Actor,
    request: SampleRequest,
) -> AppResult<SampleSummary> {
    let (secret, forms, offset) = (
        services.secret.clone(),
        services.forms.clone(),
        services.policies.utc_offset,
    );
    services
        .with_conn(move |conn| {
            sampling::draw(conn, &secret, &forms, &actor.audit(), &request, offset)
        })
        .await
}

/// A sample as the actor may see it: for a collector, only the units and serials handed to its
/// organisation (`None`: everything).
#[derive(Debug)]
pub struct VisibleSample {
    pub sample: StoredSample,
    serials: Option<HashSet<String>>,
}

impl VisibleSample {
    fn shows(&self, serial: &str) -> bool {
        self.serials.as_ref().is_none_or(|s| s.contains(serial))
    }
}

fn no_sample() -> AppError {
    AppError::NotFound(Msg::new("Không có mẫu này.", "No such sample."))
}

/// Use case: one sample as the actor may see it (`GET /paper/samples/{id}`).
pub async fn open(services: &Services, actor: Actor, id: String) -> AppResult<VisibleSample> {
    services
        .with_conn(move |conn| {
            let (sample, serials) =
                custody::visible_sample(conn, actor.paper_scope(), &id)?.ok_or_else(no_sample)?;
            Ok(VisibleSample { sample, serials })
        })
        .await
}

/// The worklist rows the actor may see (of one unit, if given); a unit with none is "not found".
async fn visible_rows(
    services: &Services,
    visible: &VisibleSample,
    unit: Option<String>,
) -> AppResult<Vec<WorklistRow>> {
    if let Some(u) = &unit
        && !visible.sample.units.iter().any(|s| &s.0 == u)
    {
        return Err(AppError::NotFound(Msg::new(
            "Không có đơn vị này trong mẫu.",
            "No such unit in this sample.",
        )));
    }
    let id = visible.sample.id.clone();
    let mut rows = services
        .with_conn(move |conn| Ok(sampling::worklist(conn, &id, unit.as_deref())?))
        .await?;
    rows.retain(|r| visible.shows(&r.serial));
    Ok(rows)
}

/// Use case: a sample's worklist as the actor may see it, of one unit or all
/// (`GET /paper/samples/{id}/worklist.csv`).
pub async fn worklist(
    services: &Services,
    actor: Actor,
    id: String,
    unit: Option<String>,
) -> AppResult<(StoredSample, Vec<WorklistRow>)> {
    let visible = open(services, actor, id).await?;
    let rows = visible_rows(services, &visible, unit).await?;
    Ok((visible.sample, rows))
}

/// What the printed forms of one unit need.
#[derive(Debug)]
pub struct PrintRun {
    pub sample: StoredSample,
    pub form: Arc<Form>,
    pub rows: Vec<WorklistRow>,
}

/// Use case: the paper forms of one unit of a sample, to print (`GET /paper/samples/{id}/forms`).
pub async fn print(
    services: &Services,
    actor: Actor,
    id: String,
    unit: Option<String>,
) -> AppResult<PrintRun> {
    let visible = open(services, actor, id).await?;
    let unit = unit.ok_or_else(|| {
        AppError::field(
            "unit",
            Msg::new("Chọn một đơn vị để in.", "Choose a unit to print."),
        )
    })?;
    let rows = visible_rows(services, &visible, Some(unit)).await?;
    let form = services
        .forms
        .latest(&visible.sample.form_code)
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("sample form missing")))?;
    Ok(PrintRun {
        sample: visible.sample,
        form,
        rows,
    })
}

/// The collector organisation's home: who it is, who types for it, and the samples it was
/// handed forms of (administrators: every sample).
#[derive(Debug)]
pub struct CollectorHome {
    pub org: Option<CollectorOrg>,
    pub members: Vec<User>,
    pub samples: Vec<StoredSample>,
}

/// Use case: the collector's home page (`GET /collector`).
pub async fn collector_home(services: &Services, actor: Actor) -> AppResult<CollectorHome> {
    services
        .with_conn(move |conn| {
            let samples = custody::visible_samples(conn, actor.paper_scope())?;
            let (org, members) = match &actor.collector_org_id {
                Some(org_id) => (
                    collector_orgs::find(conn, org_id)?,
                    users::of_collector_org(conn, org_id)?,
                ),
                None => (None, Vec::new()),
            };
            Ok(CollectorHome {
                org,
                members,
                samples,
            })
        })
        .await
}
