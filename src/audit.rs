//! The audit log: every change a person makes is an append-only event with old and new values,
//! chained by SHA-256 so that a changed, removed or reordered event is detected by `verify`.
//!
//! `record` must run inside the transaction of the change it describes (see
//! [`DbConn::write_transaction`]); the head row serialises writers and marks the chain's end.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::db::DbConn;
use crate::db::schema::{audit_events, audit_head};
use crate::db_run;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: Option<String>,
    pub name: String,
}

impl Actor {
    /// Changes made from the command line, by whoever runs it on the server.
    pub fn cli() -> Self {
        let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Self {
            id: None,
            name: format!("cli:{who}"),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, PartialEq)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

fn event_hash(e: &AuditEvent) -> String {
    let canonical = json!([
        e.seq,
        e.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        e.actor_id,
        e.actor_name,
        e.action,
        e.object_type,
        e.object_id,
        e.old_value,
        e.new_value,
        e.prev_hash,
    ]);
    crate::forms::definition::hex(&Sha256::digest(canonical.to_string().as_bytes()))
}

/// Appends an event; call inside the transaction of the change.
pub fn record(
    conn: &mut DbConn,
    actor: &Actor,
    action: &str,
    object_type: &str,
    object_id: &str,
    old: Option<Value>,
    new: Option<Value>,
) -> QueryResult<i64> {
    let (seq, prev_hash): (i64, String) = db_run!(conn: {
        diesel::update(audit_head::table.find(1i64)).set(audit_head::seq.eq(audit_head::seq + 1)).execute(conn)?;
        audit_head::table.find(1i64).select((audit_head::seq, audit_head::hash)).first(conn)
    })?;
    let mut event = AuditEvent {
        seq,
        at: crate::db::now(),
        actor_id: actor.id.clone(),
        actor_name: actor.name.clone(),
        action: action.to_string(),
        object_type: object_type.to_string(),
        object_id: object_id.to_string(),
        old_value: old.map(|v| v.to_string()),
        new_value: new.map(|v| v.to_string()),
        prev_hash,
        hash: String::new(),
    };
    event.hash = event_hash(&event);
    db_run!(conn: {
        diesel::insert_into(audit_events::table)
            .values((
                audit_events::seq.eq(event.seq),
                audit_events::at.eq(event.at),
                audit_events::actor_id.eq(&event.actor_id),
                audit_events::actor_name.eq(&event.actor_name),
                audit_events::action.eq(&event.action),
                audit_events::object_type.eq(&event.object_type),
                audit_events::object_id.eq(&event.object_id),
                audit_events::old_value.eq(&event.old_value),
                audit_events::new_value.eq(&event.new_value),
                audit_events::prev_hash.eq(&event.prev_hash),
                audit_events::hash.eq(&event.hash),
            ))
            .execute(conn)?;
        diesel::update(audit_head::table.find(1i64)).set(audit_head::hash.eq(&event.hash)).execute(conn)
    })?;
    Ok(seq)
}

/// The first break found in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub problem: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit event {}: {}", self.seq, self.problem)
    }
}

/// Walks the whole chain; `Ok(n)` is the number of intact events.
pub fn verify(conn: &mut DbConn) -> QueryResult<Result<i64, ChainBreak>> {
    const PAGE: i64 = 1000;
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_string();
    loop {
        let page: Vec<AuditEvent> = db_run!(conn: {
            audit_events::table
                .filter(audit_events::seq.ge(expected_seq))
                .order(audit_events::seq.asc())
                .limit(PAGE)
                .select(AuditEvent::as_select())
                .load(conn)
        })?;
        let done = (page.len() as i64) < PAGE;
        for event in page {
            if event.seq != expected_seq {
                return Ok(Err(ChainBreak {
                    seq: expected_seq,
                    problem: format!(
                        "is missing (deleted); the chain continues at event {}",
                        event.seq
                    ),
                }));
            }
            if event.prev_hash != prev_hash {
                return Ok(Err(ChainBreak {
                    seq: event.seq,
                    problem:
                        "does not follow the event before it (that event was changed or removed)"
                            .into(),
                }));
            }
            if event_hash(&event) != event.hash {
                return Ok(Err(ChainBreak {
                    seq: event.seq,
                    problem: "was changed after it was written".into(),
                }));
            }
            prev_hash = event.hash;
            expected_seq += 1;
        }
        if done {
            break;
        }
    }
    let (head_seq, head_hash): (i64, String) = db_run!(conn: { audit_head::table.find(1i64).select((audit_head::seq, audit_head::hash)).first(conn) })?;
    if head_seq != expected_seq - 1 || head_hash != prev_hash {
        return Ok(Err(ChainBreak {
            seq: expected_seq,
            problem: format!(
                "is missing: the log ends at event {} but {} were written",
                expected_seq - 1,
                head_seq
            ),
        }));
    }
    Ok(Ok(expected_seq - 1))
}

/// Filters for browsing the log; empty strings mean "any".
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub from: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
}

/// One page of events, newest first, and whether more follow.
pub fn list(
    conn: &mut DbConn,
    filter: &AuditFilter,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<AuditEvent>, bool)> {
    let mut rows: Vec<AuditEvent> = db_run!(conn: {
        let mut query = audit_events::table.select(AuditEvent::as_select()).into_boxed();
        if !filter.actor.is_empty() {
            query = query.filter(audit_events::actor_name.like(format!("%{}%", filter.actor)));
        }
        if !filter.action.is_empty() {
            query = query.filter(audit_events::action.eq(&filter.action));
        }
        if !filter.object_type.is_empty() {
            query = query.filter(audit_events::object_type.eq(&filter.object_type));
        }
        if !filter.object_id.is_empty() {
            query = query.filter(audit_events::object_id.eq(&filter.object_id));
        }
        if let Some(from) = filter.from {
            query = query.filter(audit_events::at.ge(from));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit_events::at.lt(until));
        }
        query
            .order(audit_events::seq.desc())
            .offset(page.max(0) * per_page)
            .limit(per_page + 1)
            .load(conn)
    })?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

/// The distinct actions recorded, for the filter's drop-down.
pub fn actions(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    db_run!(conn: {
        audit_events::table.select(audit_events::action).distinct().order(audit_events::action.asc()).load(conn)
    })
}
