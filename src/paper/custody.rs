//! Batches of paper forms and their custody: issued → delivered → returned → keyed → verified,
//! counted per batch, so the province sees how many forms came back from each unit.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::serial;
use super::status::{CustodyStep, FormStatus, MemberRole};
use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::db::schema::{
    paper_batches, paper_forms, sample_members, samples, survey_periods, units,
};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;

/// Whether a form is keyed twice: a stable pseudo-random choice from its serial, so the share
/// holds on average and nobody can pick which forms get checked.
pub fn needs_double_entry(serial: &str, share: f64) -> bool {
    if share >= 1.0 {
        return true;
    }
    let digest = Sha256::digest(serial.as_bytes());
    let x =
        u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) as f64 / u32::MAX as f64;
    x < share
}

#[derive(Debug, Clone, Serialize, Queryable)]
pub struct Batch {
    pub id: String,
    pub code: String,
    pub sample_id: String,
    pub unit_id: String,
    pub collector_org_id: String,
    pub collector_name: String,
    pub created_by: String,
    pub created_at: NaiveDateTime,
}

/// Forms of a batch at or past each custody step.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Custody {
    pub issued: i64,
    pub delivered: i64,
    pub returned: i64,
    pub keyed: i64,
    pub verified: i64,
}

impl Custody {
    /// Returned ÷ issued, in percent.
    pub fn return_rate(&self) -> Option<f64> {
        (self.issued > 0)
            .then(|| (self.returned as f64 / self.issued as f64 * 1000.0).round() / 10.0)
    }
}

/// The custody step a stored status reached (an unknown one counts as the furthest, as before
/// statuses were typed: the CHECK constraint allows none).
fn rank(status: &str) -> u8 {
    FormStatus::parse(status).map_or(4, FormStatus::rank)
}

/// A batch to hand out.
#[derive(Debug, Clone)]
pub struct BatchRequest {
    pub sample_id: String,
    pub unit_id: String,
    pub collector_org_id: String,
    /// The person delivering and collecting the forms.
    pub collector_name: String,
    pub include_reserve: bool,
    /// Share of forms keyed twice (1.0: every form).
    pub double_share: f64,
}

/// Puts the not yet issued forms of a sample's unit in a new batch for a collector.
pub fn create_batch(conn: &mut DbConn, actor: &Actor, request: &BatchRequest) -> AppResult<Batch> {
    let (sample_id, unit_id, collector_org_id) = (
        request.sample_id.as_str(),
        request.unit_id.as_str(),
        request.collector_org_id.as_str(),
    );
    let (collector_name, include_reserve, double_share) = (
        request.collector_name.as_str(),
        request.include_reserve,
        request.double_share,
    );
    if collector_name.trim().is_empty() {
        return Err(AppError::field(
            "collector_name",
            Msg::new(
                "Vui lòng nhập tên nhân viên phát phiếu.",
                "Please enter the collector's name.",
            ),
        ));
    }
    conn.write_transaction(|conn| {
        let (period_code, unit_code): (String, String) = db_run!(conn: {
            let period: String = samples::table
                .inner_join(survey_periods::table.on(survey_periods::id.eq(samples::period_id)))
                .filter(samples::id.eq(sample_id))
                .select(survey_periods::code)
                .first(conn)?;
            let unit: String = units::table.find(unit_id).select(units::code).first(conn)?;
            QueryResult::Ok((period, unit))
        })
        .map_err(|_| AppError::NotFound(Msg::new("Không có mẫu hoặc đơn vị này.", "No such sample or unit.")))?;
        let roles: Vec<&str> = if include_reserve {
            vec![MemberRole::Main.as_str(), MemberRole::Reserve.as_str()]
        } else {
            vec![MemberRole::Main.as_str()]
        };
        let members: Vec<(String, String)> = db_run!(conn: {
            sample_members::table
                .left_join(paper_forms::table.on(paper_forms::member_id.eq(sample_members::id)))
                .filter(sample_members::sample_id.eq(sample_id))
                .filter(sample_members::unit_id.eq(unit_id))
                .filter(sample_members::role.eq_any(&roles))
                .filter(paper_forms::member_id.is_null())
                .order(sample_members::position.asc())
                .select((sample_members::id, sample_members::serial))
                .load(conn)
        })?;
        if members.is_empty() {
            return Err(AppError::Conflict(Msg::new("Mọi phiếu của đơn vị trong mẫu này đã được giao.", "Every form of this unit in the sample has been handed out.")));
        }
        let existing: i64 = db_run!(conn: { paper_batches::table.filter(paper_batches::sample_id.eq(sample_id)).count().get_result(conn) })?;
        let id = uuid::Uuid::new_v4().to_string();
        let code = format!("{period_code}-{unit_code}-{:03}", existing + 1);
        let now = crate::db::now();
        db_run!(conn: {
            diesel::insert_into(paper_batches::table)
                .values((
                    paper_batches::id.eq(&id),
                    paper_batches::code.eq(&code),
                    paper_batches::sample_id.eq(sample_id),
                    paper_batches::unit_id.eq(unit_id),
                    paper_batches::collector_org_id.eq(collector_org_id),
                    paper_batches::collector_name.eq(collector_name.trim()),
                    paper_batches::created_by.eq(&actor.name),
                    paper_batches::created_at.eq(now),
                ))
                .execute(conn)?;
            for (member_id, serial) in &members {
                diesel::insert_into(paper_forms::table)
                    .values((
                        paper_forms::member_id.eq(member_id),
                        paper_forms::batch_id.eq(&id),
                        paper_forms::status.eq(FormStatus::Issued.as_str()),
                        paper_forms::double_entry.eq(needs_double_entry(serial, double_share)),
                        paper_forms::updated_at.eq(now),
                    ))
                    .execute(conn)?;
            }
            QueryResult::Ok(())
        })?;
        audit::record(conn, actor, "batch.create", "paper_batch", &id, None, Some(json!({ "code": code, "forms": members.len(), "collector": collector_name.trim() })))?;
        find(conn, &id)?.ok_or_else(|| AppError::Internal(anyhow::anyhow!("batch vanished")))
    })
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Batch>> {
    db_run!(conn: {
        paper_batches::table
            .find(id)
            .select((paper_batches::id, paper_batches::code, paper_batches::sample_id, paper_batches::unit_id, paper_batches::collector_org_id, paper_batches::collector_name, paper_batches::created_by, paper_batches::created_at))
            .first(conn)
            .optional()
    })
}

/// What a custody update did.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Marked {
    pub changed: usize,
    pub unchanged: usize,
    /// Serials that are not forms of this batch (typos, forgeries, another batch's forms).
    pub unknown: Vec<String>,
}

/// Moves the listed forms of a batch forward to `step` (delivered or returned); a form already
/// there or further on is left as it is.
pub fn mark(
    conn: &mut DbConn,
    actor: &Actor,
    batch_id: &str,
    serials: &[String],
    step: CustodyStep,
) -> AppResult<Marked> {
    let status = step.as_str();
    conn.write_transaction(|conn| {
        let mut result = Marked::default();
        let now = crate::db::now();
        for raw in serials.iter().filter(|s| !s.trim().is_empty()) {
            let Some(serial) = serial::normalize(raw) else {
                result.unknown.push(raw.trim().to_string());
                continue;
            };
            let found: Option<(String, String)> = db_run!(conn: {
                paper_forms::table
                    .inner_join(sample_members::table.on(sample_members::id.eq(paper_forms::member_id)))
                    .filter(paper_forms::batch_id.eq(batch_id))
                    .filter(sample_members::serial.eq(&serial))
                    .select((paper_forms::member_id, paper_forms::status))
                    .first(conn)
                    .optional()
            })?;
            match found {
                None => result.unknown.push(serial),
                Some((_, current)) if rank(&current) >= step.status().rank() => result.unchanged += 1,
                Some((member_id, _)) => {
                    db_run!(conn: {
                        diesel::update(paper_forms::table.find(&member_id))
                            .set((paper_forms::status.eq(status), paper_forms::updated_at.eq(now)))
                            .execute(conn)
                    })?;
                    result.changed += 1;
                }
            }
        }
        audit::record(conn, actor, &format!("batch.{status}"), "paper_batch", batch_id, None, Some(json!({ "changed": result.changed, "unknown": result.unknown.len() })))?;
        Ok(result)
    })
}

/// Custody counts of a batch.
pub fn custody(conn: &mut DbConn, batch_id: &str) -> QueryResult<Custody> {
    let statuses: Vec<String> = db_run!(conn: {
        paper_forms::table.filter(paper_forms::batch_id.eq(batch_id)).select(paper_forms::status).load(conn)
    })?;
    let at_least = |r: u8| statuses.iter().filter(|s| rank(s) >= r).count() as i64;
    Ok(Custody {
        issued: statuses.len() as i64,
        delivered: at_least(1),
        returned: at_least(2),
        keyed: at_least(3),
        verified: at_least(4),
    })
}

/// Every batch of a collector organisation (or all, for administrators) with its custody.
pub fn list(conn: &mut DbConn, org_id: Option<&str>) -> QueryResult<Vec<(Batch, String, Custody)>> {
    let batches: Vec<(Batch, String)> = db_run!(conn: {
        let mut q = paper_batches::table
            .inner_join(units::table.on(units::id.eq(paper_batches::unit_id)))
            .select(((paper_batches::id, paper_batches::code, paper_batches::sample_id, paper_batches::unit_id, paper_batches::collector_org_id, paper_batches::collector_name, paper_batches::created_by, paper_batches::created_at), units::code))
            .into_boxed();
        if let Some(org) = org_id {
            q = q.filter(paper_batches::collector_org_id.eq(org.to_string()));
        }
        q.order(paper_batches::created_at.desc()).load(conn)
    })?;
    let mut out = Vec::with_capacity(batches.len());
    for (batch, unit_code) in batches {
        let c = custody(conn, &batch.id)?;
        out.push((batch, unit_code, c));
    }
    Ok(out)
}

// ---------------------------------------------------------------- a collector's view

/// `(sample id, unit id, serial)` of every form handed to collector organisation `org`,
/// optionally of one sample: what a collector may see of the samples.
pub fn handed_forms(
    conn: &mut DbConn,
    org: &str,
    sample_id: Option<&str>,
) -> QueryResult<Vec<(String, String, String)>> {
    db_run!(conn: {
        let mut q = paper_forms::table
            .inner_join(sample_members::table.on(sample_members::id.eq(paper_forms::member_id)))
            .inner_join(paper_batches::table.on(paper_batches::id.eq(paper_forms::batch_id)))
            .filter(paper_batches::collector_org_id.eq(org.to_string()))
            .select((sample_members::sample_id, sample_members::unit_id, sample_members::serial))
            .into_boxed();
        if let Some(id) = sample_id {
            q = q.filter(sample_members::sample_id.eq(id.to_string()));
        }
        q.load(conn)
    })
}

/// The samples a reader may see: all of them (`scope` = `None`, administrators), or for a
/// collector organisation only the samples and units it was handed forms of.
pub fn visible_samples(
    conn: &mut DbConn,
    scope: Option<&str>,
) -> QueryResult<Vec<super::sampling::StoredSample>> {
    let mut samples = super::sampling::list(conn)?;
    if let Some(org) = scope {
        let handed = handed_forms(conn, org, None)?;
        let units: std::collections::HashSet<(&str, &str)> = handed
            .iter()
            .map(|(s, u, _)| (s.as_str(), u.as_str()))
            .collect();
        for sample in &mut samples {
            let id = sample.id.clone();
            sample
                .units
                .retain(|u| units.contains(&(id.as_str(), u.0.as_str())));
        }
        samples.retain(|s| !s.units.is_empty());
    }
    Ok(samples)
}

/// One sample as a reader may see it: with `scope`, only the units handed to that collector
/// organisation and the set of their serials; `None` when the sample does not exist for it.
pub fn visible_sample(
    conn: &mut DbConn,
    scope: Option<&str>,
    id: &str,
) -> QueryResult<
    Option<(
        super::sampling::StoredSample,
        Option<std::collections::HashSet<String>>,
    )>,
> {
    let Some(mut sample) = super::sampling::list(conn)?
        .into_iter()
        .find(|s| s.id == id)
    else {
        return Ok(None);
    };
    let Some(org) = scope else {
        return Ok(Some((sample, None)));
    };
    let handed = handed_forms(conn, org, Some(&sample.id))?;
    if handed.is_empty() {
        return Ok(None);
    }
    let units: std::collections::HashSet<&str> =
        handed.iter().map(|(_, u, _)| u.as_str()).collect();
    sample.units.retain(|u| units.contains(u.0.as_str()));
    let serials = handed.into_iter().map(|(_, _, s)| s).collect();
    Ok(Some((sample, Some(serials))))
}

/// Whether forms of `unit_id` in `sample_id` were handed to collector organisation `org`.
pub fn unit_handed(
    conn: &mut DbConn,
    org: &str,
    sample_id: &str,
    unit_id: &str,
) -> QueryResult<bool> {
    Ok(handed_forms(conn, org, Some(sample_id))?
        .iter()
        .any(|(_, u, _)| u == unit_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn double_entry_share_is_respected_on_average() {
        let picked = (0..2000)
            .filter(|i| needs_double_entry(&format!("S{i}"), 0.25))
            .count();
        assert!((400..600).contains(&picked), "{picked}");
        assert!(needs_double_entry("x", 1.0));
        assert!(!needs_double_entry("x", 0.0));
    }

    #[test]
    fn return_rate_is_a_percentage() {
        let c = Custody {
            issued: 8,
            delivered: 8,
            returned: 6,
            keyed: 4,
            verified: 2,
        };
        assert_eq!(c.return_rate(), Some(75.0));
        assert_eq!(Custody::default().return_rate(), None);
    }
}
