//! Use cases of the batches of paper forms a collector organisation delivers and collects: the
//! list with custody counts, a new batch, one batch, and the deliveries and returns recorded by
//! scanning serials. A collector sees and changes only its own organisation's batches (another
//! organisation's are "not found"); administrators see all and hand units over.
//!
//! These writes touch only the custody tables, never a response or a rollup, so each is a plain
//! transaction on a pooled connection; the group commit is kept for the writes of the index.

use super::custody::{self, Batch, BatchRequest, Custody, Marked};
use super::sampling::{self, StoredSample};
use super::status::CustodyStep;
use crate::accounts::Actor;
use crate::collector_orgs::{self, CollectorOrg};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::services::Services;

/// What the batches page shows: the batches with their unit code and custody, the samples a
/// batch can be made from, and the organisations an administrator can hand one to.
#[derive(Debug)]
pub struct Overview {
    pub batches: Vec<(Batch, String, Custody)>,
    pub samples: Vec<StoredSample>,
    pub orgs: Vec<CollectorOrg>,
}

/// Use case: the actor's batches and what a new one can be made of (`GET /paper/batches`).
pub async fn overview(services: &Services, actor: Actor) -> AppResult<Overview> {
    services
        .with_conn(move |conn| {
            let scope = actor.paper_scope();
            let mut samples = sampling::list(conn)?;
            if let Some(org) = scope {
                // A collector is offered only samples it was handed forms of.
                let handed = custody::handed_forms(conn, org, None)?;
                samples.retain(|s| handed.iter().any(|(id, _, _)| *id == s.id));
            }
            Ok(Overview {
                batches: custody::list(conn, scope)?,
                samples,
                orgs: collector_orgs::list(conn)?,
            })
        })
        .await
}

/// A new batch as asked for, read from the form.
#[derive(Debug, Clone)]
pub struct NewBatch {
    pub sample_id: String,
    /// Upper-case unit code.
    pub unit_code: String,
    /// The organisation an administrator hands the forms to (a collector's own is implied).
    pub collector_org_id: Option<String>,
    pub collector_name: String,
    pub include_reserve: bool,
    /// Share of forms keyed twice, within 0–1.
    pub double_share: f64,
}

impl NewBatch {
    /// Reads the batch form; an empty share means every form is keyed twice.
    pub fn parse(
        sample: &str,
        unit: &str,
        org: &str,
        collector_name: &str,
        double_share: &str,
        include_reserve: bool,
    ) -> AppResult<Self> {
        let double_share: f64 = match double_share.trim() {
            "" => 1.0,
            v => v
                .replace(',', ".")
                .parse()
                .ok()
                .filter(|share: &f64| share.is_finite())
                .ok_or_else(|| {
                    AppError::field(
                        "double_share",
                        Msg::new(
                            "Tỷ lệ phải là số từ 0 đến 1.",
                            "The share must be a number from 0 to 1.",
                        ),
                    )
                })?,
        };
        Ok(Self {
            sample_id: sample.trim().to_string(),
            unit_code: unit.trim().to_ascii_uppercase(),
            collector_org_id: Some(org.trim())
                .filter(|o| !o.is_empty())
                .map(str::to_string),
            collector_name: collector_name.to_string(),
            include_reserve,
            double_share: double_share.clamp(0.0, 1.0),
        })
    }
}

/// Use case: puts the not yet issued forms of a sample's unit in a new batch
/// (`POST /paper/batches`). Administrators hand units over to an organisation; a collector may
/// only issue the rest of a unit already handed to its own (its reserve list, say).
pub async fn create(services: &Services, actor: Actor, request: NewBatch) -> AppResult<Batch> {
    services
        .with_conn(move |conn| {
            let unit = crate::units::find_by_code(conn, &request.unit_code)?.ok_or_else(|| {
                AppError::field(
                    "unit",
                    Msg::new(
                        "Không có đơn vị với mã này.",
                        "There is no unit with this code.",
                    ),
                )
            })?;
            let org = match actor.paper_scope() {
                Some(own) => {
                    if !custody::unit_handed(conn, own, &request.sample_id, &unit.id)? {
                        return Err(AppError::NotFound(Msg::new(
                            "Không có mẫu hoặc đơn vị này.",
                            "No such sample or unit.",
                        )));
                    }
                    own.to_string()
                }
                None => request.collector_org_id.clone().ok_or_else(|| {
                    AppError::field(
                        "org",
                        Msg::new(
                            "Chọn đơn vị thu thập nhận lô phiếu.",
                            "Choose the collector organisation that takes the batch.",
                        ),
                    )
                })?,
            };
            if collector_orgs::find(conn, &org)?.is_none() {
                return Err(AppError::field(
                    "org",
                    Msg::new(
                        "Không có đơn vị thu thập này.",
                        "No such collector organisation.",
                    ),
                ));
            }
            custody::create_batch(
                conn,
                &actor.audit(),
                &BatchRequest {
                    sample_id: request.sample_id,
                    unit_id: unit.id,
                    collector_org_id: org,
                    collector_name: request.collector_name,
                    include_reserve: request.include_reserve,
                    double_share: request.double_share,
                },
            )
        })
        .await
}

/// A batch the actor may see, or "not found" (another organisation's batch says no more).
fn own_batch(conn: &mut DbConn, actor: &Actor, id: &str) -> AppResult<Batch> {
    let not_found = || AppError::NotFound(Msg::new("Không có lô phiếu này.", "No such batch."));
    let batch = custody::find(conn, id)?.ok_or_else(not_found)?;
    if actor
        .paper_scope()
        .is_some_and(|org| org != batch.collector_org_id)
    {
        return Err(not_found());
    }
    Ok(batch)
}

/// Use case: one batch with its custody counts (`GET /paper/batches/{id}`).
pub async fn open(services: &Services, actor: Actor, id: String) -> AppResult<(Batch, Custody)> {
    services
        .with_conn(move |conn| {
            let batch = own_batch(conn, &actor, &id)?;
            let counts = custody::custody(conn, &batch.id)?;
            Ok((batch, counts))
        })
        .await
}

/// Use case: records that the scanned forms of a batch were delivered, or returned
/// (`POST /paper/batches/{id}/delivered|returned`); serials not of the batch are reported back.
pub async fn record(
    services: &Services,
    actor: Actor,
    id: String,
    step: CustodyStep,
    serials: Vec<String>,
) -> AppResult<(Batch, Marked)> {
    services
        .with_conn(move |conn| {
            let batch = own_batch(conn, &actor, &id)?;
            let marked = custody::mark(conn, &actor.audit(), &batch.id, &serials, step)?;
            Ok((batch, marked))
        })
        .await
}
