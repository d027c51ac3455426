//! Review of held responses: an administrator accepts one (its counts enter the rollups in the
//! same transaction, as a correction's do) or rejects it with a reason (it stays stored, out of
//! the index). Every decision is an audit event.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

use super::signals::Review;
use crate::audit;
use crate::db::DbConn;
use crate::db::schema::{response_signals, responses};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::FormRegistry;
use crate::i18n::Msg;
use crate::rollup::RollupDelta;
use crate::survey::response::ResponseStatus;
use crate::survey::stored::StoredResponse;

/// A held response as the review list shows it: signals and timings, no answers' origin.
#[derive(Debug, Clone, Queryable)]
pub struct HeldResponse {
    pub response_id: String,
    pub unit_id: String,
    pub channel: String,
    pub submitted_at: NaiveDateTime,
    pub seconds_from_issue: Option<i64>,
    pub seconds_answering: Option<i64>,
    pub signals: String,
}

/// Held responses of `unit_ids` (all units when `None`), oldest first.
pub fn held(
    conn: &mut DbConn,
    unit_ids: Option<&[String]>,
    limit: i64,
) -> QueryResult<Vec<HeldResponse>> {
    db_run!(conn: {
        let mut q = response_signals::table
            .filter(response_signals::review.eq(Review::Held.as_str()))
            .into_boxed();
        if let Some(ids) = unit_ids {
            q = q.filter(response_signals::unit_id.eq_any(ids));
        }
        q.order((response_signals::submitted_at.asc(), response_signals::response_id.asc()))
            .limit(limit)
            .select((
                response_signals::response_id, response_signals::unit_id, response_signals::channel,
                response_signals::submitted_at, response_signals::seconds_from_issue,
                response_signals::seconds_answering, response_signals::signals,
            ))
            .load(conn)
    })
}

/// The decision on a held response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Accept,
    Reject { reason: String },
}

impl Decision {
    /// The review form's buttons: `accept`, or `reject` with an optional reason.
    pub fn parse(decision: &str, reason: Option<&str>) -> AppResult<Self> {
        match decision {
            "accept" => Ok(Self::Accept),
            "reject" => Ok(Self::Reject {
                reason: reason.unwrap_or_default().to_string(),
            }),
            _ => Err(AppError::field(
                "decision",
                Msg::new("Quyết định không hợp lệ.", "Unknown decision."),
            )),
        }
    }
}

fn not_held() -> AppError {
    AppError::Conflict(Msg::new(
        "Phiếu này không ở trạng thái chờ xem xét (có thể đã được quyết định).",
        "This response is not waiting for review (it may have been decided already).",
    ))
}

/// Applies a decision: in one transaction the review is recorded, the response's status
/// changes, an accepted response's counts are added to the rollups, and the audit event is
/// written.
pub fn decide(
    conn: &mut DbConn,
    forms: &FormRegistry,
    actor: &audit::Actor,
    response_id: &str,
    decision: &Decision,
    utc_offset: chrono::FixedOffset,
) -> AppResult<()> {
    let reason = match decision {
        Decision::Accept => None,
        Decision::Reject { reason } => {
            let reason = reason.trim();
            if reason.is_empty() || reason.chars().count() > 500 {
                return Err(AppError::field(
                    "reason",
                    Msg::new(
                        "Hãy ghi lý do loại phiếu (tối đa 500 ký tự).",
                        "Give the reason for rejecting (at most 500 characters).",
                    ),
                ));
            }
            Some(reason.to_string())
        }
    };
    let (review, status) = match decision {
        Decision::Accept => (Review::Accepted, ResponseStatus::Counted),
        Decision::Reject { .. } => (Review::Rejected, ResponseStatus::Rejected),
    };
    let now = crate::db::now();
    conn.write_transaction(|conn| -> AppResult<()> {
        let updated = db_run!(conn: {
            diesel::update(response_signals::table.find(response_id).filter(response_signals::review.eq(Review::Held.as_str())))
                .set((
                    response_signals::review.eq(review.as_str()),
                    response_signals::reviewed_by.eq(&actor.name),
                    response_signals::reviewed_at.eq(Some(now)),
                    response_signals::review_reason.eq(&reason),
                ))
                .execute(conn)
        })?;
        if updated == 0 {
            return Err(not_held());
        }
        db_run!(conn: {
            diesel::update(responses::table.find(response_id).filter(responses::status.eq(ResponseStatus::Held.as_str())))
                .set(responses::status.eq(status.as_str()))
                .execute(conn)
        })?;
        if *decision == Decision::Accept {
            let submission = StoredResponse::load(conn, response_id)?
                .to_submission(conn, forms)?
                .ok_or_else(|| {
                    AppError::Internal(anyhow::anyhow!(
                        "stored answers of {response_id} unreadable"
                    ))
                })?;
            let mut delta = RollupDelta::default();
            delta.add(&submission, utc_offset);
            delta.apply(conn)?;
        }
        audit::record(
            conn,
            actor,
            if reason.is_some() { "response.reject" } else { "response.accept" },
            "response",
            response_id,
            Some(json!({"review": Review::Held.as_str()})),
            Some(json!({"review": review.as_str(), "reason": reason})),
        )?;
        Ok(())
    })
}
