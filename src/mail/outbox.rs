//! The outbox: one row per e-mail that is due, written in the same transaction as its cause.
//!
//! Status moves queued → sending → sent (or back to queued with a later `due_at` after a
//! transient failure, or failed after the last attempt or a permanent refusal); cancelled when
//! the citizen answered, opted out, or the survey expired first. A message is `sending` under a
//! lease (`claimed_by`, `claimed_until`): several instances share the outbox, and only the holder
//! of a live lease may send a message or record its outcome.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;

use crate::accounts::actor::Actor;
use crate::db::DbConn;
use crate::db::schema::phone_contacts;
use crate::db::schema::{outbox, procedures, survey_tokens, transactions, units};
use crate::db_run;
use crate::error::AppResult;

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbox)]
pub struct NewOutboxRow {
    pub id: String,
    pub kind: String,
    pub transaction_id: String,
    pub unit_id: String,
    pub message_id: String,
    pub status: String,
    pub attempts: i64,
    pub due_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

/// The invitation (now) and the reminder (`reminder_before` the expiry, unless that is too soon
/// to be useful) of a newly registered transaction.
pub fn rows_for(
    transaction_id: &str,
    unit_id: &str,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
    reminder_before: Duration,
    host: &str,
) -> Vec<NewOutboxRow> {
    let row = |kind: &str, due_at| {
        let id = uuid::Uuid::new_v4().to_string();
        NewOutboxRow {
            message_id: format!("<{id}@{host}>"),
            id,
            kind: kind.into(),
            transaction_id: transaction_id.into(),
            unit_id: unit_id.into(),
            status: MailStatus::Queued.as_str().into(),
            attempts: 0,
            due_at,
            created_at: now,
        }
    };
    let mut rows = vec![row("invitation", now)];
    let reminder_at = expires_at - reminder_before;
    if reminder_at > now + Duration::hours(1) {
        rows.push(row("reminder", reminder_at));
    }
    rows
}

/// A due message with everything needed to write it.
#[derive(Debug, Clone)]
pub struct DueMail {
    pub id: String,
    pub kind: String,
    pub transaction_id: String,
    pub message_id: String,
    pub attempts: i64,
    pub email: Option<String>,
    pub opted_out: bool,
    pub spent: bool,
    pub expires_at: NaiveDateTime,
    pub unit_vi: String,
    pub unit_en: String,
    pub procedure_vi: String,
    pub procedure_en: String,
}

type DueRow = (
    String,
    String,
    String,
    String,
    i64,
    Option<String>,
    bool,
    Option<NaiveDateTime>,
    NaiveDateTime,
    String,
    String,
    String,
    String,
);

/// The default lease (`mail_lease_seconds`): how long a claim keeps other senders (other
/// instances) off a message. The sender renews it before each attempt; one SMTP attempt is
/// bounded by the transport's timeouts, far inside it.
pub const LEASE: Duration = Duration::minutes(5);

#[derive(QueryableByName)]
struct ClaimedId {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

/// Claims up to `limit` messages due at `now` for sender `instance` until `now + lease`: queued
/// ones, and ones left `sending` by a sender whose lease ran out (it died mid-send). PostgreSQL
/// skips rows another sender is claiming at that moment (`FOR UPDATE SKIP LOCKED`) rather than
/// waiting for them; SQLite runs one writing statement at a time anyway.
pub fn claim_due(
    conn: &mut DbConn,
    instance: &str,
    now: NaiveDateTime,
    lease: Duration,
    limit: i64,
) -> QueryResult<Vec<String>> {
    claim_due_on(conn, Channels::Email, instance, now, lease, limit)
}

/// Which messages a sender handles: e-mail, or SMS and Zalo (see [`super::phone_sender`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channels {
    Email,
    Phone,
}

impl Channels {
    fn sql(self) -> &'static str {
        match self {
            Self::Email => "channel = 'email'",
            Self::Phone => "channel IN ('sms', 'zalo')",
        }
    }
}

/// [`claim_due`] for the messages of `channels`.
pub fn claim_due_on(
    conn: &mut DbConn,
    channels: Channels,
    instance: &str,
    now: NaiveDateTime,
    lease: Duration,
    limit: i64,
) -> QueryResult<Vec<String>> {
    use diesel::sql_types::{BigInt, Text, Timestamp};
    // Numbered parameters: `$n` on PostgreSQL, `?n` on SQLite.
    let (p, lock) = match conn {
        DbConn::Postgres(_) => ('$', " FOR UPDATE SKIP LOCKED"),
        DbConn::Sqlite(_) => ('?', ""),
    };
    let sql = format!(
        "UPDATE outbox SET status = '{sending}', claimed_by = {p}1, claimed_until = {p}3 \
         WHERE id IN (SELECT id FROM outbox \
             WHERE {channels} AND ((status = '{queued}' AND due_at <= {p}2) \
                OR (status = '{sending}' AND (claimed_until IS NULL OR claimed_until < {p}2))) \
             ORDER BY due_at LIMIT {p}4{lock}) \
         RETURNING id",
        channels = channels.sql(),
        sending = MailStatus::Sending.as_str(),
        queued = MailStatus::Queued.as_str(),
    );
    let claimed: Vec<ClaimedId> = db_run!(conn: {
        diesel::sql_query(&sql)
            .bind::<Text, _>(instance)
            .bind::<Timestamp, _>(now)
            .bind::<Timestamp, _>(now + lease)
            .bind::<BigInt, _>(limit)
            .load(conn)
    })?;
    Ok(claimed.into_iter().map(|c| c.id).collect())
}

/// The messages of `ids` that `instance` holds, with everything needed to write them, oldest
/// due first.
pub fn claimed(conn: &mut DbConn, instance: &str, ids: &[String]) -> QueryResult<Vec<DueMail>> {
    let rows: Vec<DueRow> = db_run!(conn: {
        outbox::table
            .inner_join(transactions::table.on(transactions::id.eq(outbox::transaction_id)))
            .inner_join(units::table.on(units::id.eq(outbox::unit_id)))
            .inner_join(procedures::table.on(procedures::id.eq(transactions::procedure_id)))
            .inner_join(survey_tokens::table.on(survey_tokens::transaction_id.eq(transactions::id.nullable())))
            .filter(outbox::id.eq_any(ids))
            .filter(outbox::status.eq(MailStatus::Sending.as_str()))
            .filter(outbox::claimed_by.eq(instance))
            .order(outbox::due_at.asc())
            .select((
                outbox::id, outbox::kind, outbox::transaction_id, outbox::message_id, outbox::attempts,
                transactions::email, transactions::mail_opted_out, survey_tokens::spent_at, survey_tokens::expires_at,
                units::name_vi, units::name_en, procedures::name_vi, procedures::name_en,
            ))
            .load(conn)
    })?;
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                kind,
                transaction_id,
                message_id,
                attempts,
                email,
                opted_out,
                spent,
                expires_at,
                unit_vi,
                unit_en,
                procedure_vi,
                procedure_en,
            )| DueMail {
                id,
                kind,
                transaction_id,
                message_id,
                attempts,
                email,
                opted_out,
                spent: spent.is_some(),
                expires_at,
                unit_vi,
                unit_en,
                procedure_vi,
                procedure_en,
            },
        )
        .collect())
}

/// Counts an attempt and renews the lease to `until`, right before sending; false when the
/// message is no longer this sender's (its lease ran out and another sender took it), in which
/// case it must not be sent.
pub fn begin_attempt(
    conn: &mut DbConn,
    id: &str,
    instance: &str,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    let n = db_run!(conn: {
        diesel::update(
            outbox::table
                .find(id)
                .filter(outbox::status.eq(MailStatus::Sending.as_str()))
                .filter(outbox::claimed_by.eq(instance)),
        )
        .set((outbox::attempts.eq(outbox::attempts + 1), outbox::claimed_until.eq(until)))
        .execute(conn)
    })?;
    Ok(n == 1)
}

/// The outcome of a message `instance` holds; each returns false (and changes nothing) when the
/// message is no longer held by it.
pub fn mark_sent(
    conn: &mut DbConn,
    id: &str,
    instance: &str,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    finish(conn, id, instance, MailStatus::Sent, None, Some(now), None)
}

pub fn mark_retry(
    conn: &mut DbConn,
    id: &str,
    instance: &str,
    due_at: NaiveDateTime,
    error: &str,
) -> QueryResult<bool> {
    finish(
        conn,
        id,
        instance,
        MailStatus::Queued,
        Some(error),
        None,
        Some(due_at),
    )
}

pub fn mark_failed(conn: &mut DbConn, id: &str, instance: &str, error: &str) -> QueryResult<bool> {
    finish(
        conn,
        id,
        instance,
        MailStatus::Failed,
        Some(error),
        None,
        None,
    )
}

pub fn cancel(conn: &mut DbConn, id: &str, instance: &str) -> QueryResult<bool> {
    finish(conn, id, instance, MailStatus::Cancelled, None, None, None)
}

/// Ends `instance`'s claim on a message with `status`.
fn finish(
    conn: &mut DbConn,
    id: &str,
    instance: &str,
    status: MailStatus,
    error: Option<&str>,
    sent_at: Option<NaiveDateTime>,
    due_at: Option<NaiveDateTime>,
) -> QueryResult<bool> {
    let n = db_run!(conn: {
        let held = outbox::table
            .find(id)
            .filter(outbox::status.eq(MailStatus::Sending.as_str()))
            .filter(outbox::claimed_by.eq(instance));
        let fields = (
            outbox::status.eq(status.as_str()),
            outbox::last_error.eq(error),
            outbox::sent_at.eq(sent_at),
            outbox::claimed_by.eq(None::<String>),
            outbox::claimed_until.eq(None::<NaiveDateTime>),
        );
        match due_at {
            Some(due) => diesel::update(held).set((fields, outbox::due_at.eq(due))).execute(conn),
            None => diesel::update(held).set(fields).execute(conn),
        }
    })?;
    Ok(n == 1)
}

/// Erases the transaction's address once no message for it is queued, being sent or waiting
/// for an administrator's retry.
pub fn forget_address_if_done(conn: &mut DbConn, transaction_id: &str) -> QueryResult<bool> {
    let pending: i64 = db_run!(conn: {
        outbox::table
            .filter(outbox::transaction_id.eq(transaction_id))
            .filter(outbox::channel.eq("email"))
            .filter(outbox::status.eq(MailStatus::Queued.as_str()).or(outbox::status.eq(MailStatus::Sending.as_str())).or(outbox::status.eq(MailStatus::Failed.as_str())))
            .count()
            .get_result(conn)
    })?;
    if pending > 0 {
        return Ok(false);
    }
    db_run!(conn: {
        diesel::update(transactions::table.find(transaction_id)).set(transactions::email.eq(None::<String>)).execute(conn)
    })?;
    Ok(true)
}

/// Stops all mail for a transaction (answered, opted out, expired) and erases the address.
pub fn stop_all(conn: &mut DbConn, transaction_id: &str) -> QueryResult<()> {
    // Runs for every answer, and most dossiers never asked for mail: two cached reads find out
    // whether anything is to do (diesel prepares every UPDATE afresh, so those run only then).
    let (mail_waiting, address): (bool, Option<Option<String>>) = db_run!(conn: {
        let waiting = diesel::select(diesel::dsl::exists(
            outbox::table
                .filter(outbox::transaction_id.eq(transaction_id))
                .filter(outbox::status.eq(MailStatus::Queued.as_str()).or(outbox::status.eq(MailStatus::Failed.as_str()))),
        ))
        .get_result(conn)?;
        let address = transactions::table
            .find(transaction_id)
            .select(transactions::email)
            .first(conn)
            .optional()?;
        QueryResult::Ok((waiting, address))
    })?;
    if mail_waiting {
        db_run!(conn: {
            diesel::update(outbox::table.filter(outbox::transaction_id.eq(transaction_id)).filter(outbox::status.eq(MailStatus::Queued.as_str()).or(outbox::status.eq(MailStatus::Failed.as_str()))))
                .set(outbox::status.eq(MailStatus::Cancelled.as_str()))
                .execute(conn)
        })?;
    }
    if mail_waiting || matches!(address, Some(Some(_))) {
        forget_address_if_done(conn, transaction_id)?;
    }
    if mail_waiting {
        forget_numbers_if_done(conn, &[transaction_id])?;
    }
    Ok(())
}

/// As [`stop_all`] for many transactions at once (the group commit's answers): two statements
/// whatever their number. Cancels their queued and failed mail, then erases the address of
/// each whose mail is all done.
pub fn stop_all_many(conn: &mut DbConn, transaction_ids: &[&str]) -> QueryResult<()> {
    if transaction_ids.is_empty() {
        return Ok(());
    }
    db_run!(conn: {
        diesel::update(
            outbox::table
                .filter(outbox::transaction_id.eq_any(transaction_ids))
                .filter(outbox::status.eq_any(CANCELLABLE)),
        )
        .set(outbox::status.eq(MailStatus::Cancelled.as_str()))
        .execute(conn)?;
        let pending = outbox::table
            .filter(outbox::transaction_id.eq(transactions::id))
            .filter(outbox::channel.eq("email"))
            .filter(outbox::status.eq_any(PENDING));
        diesel::update(
            transactions::table
                .filter(transactions::id.eq_any(transaction_ids))
                .filter(transactions::email.is_not_null())
                .filter(diesel::dsl::not(diesel::dsl::exists(pending))),
        )
        .set(transactions::email.eq(None::<String>))
        .execute(conn)
    })?;
    forget_numbers_if_done(conn, transaction_ids)?;
    Ok(())
}

/// The citizen's opt-out through the link in the mail.
pub fn opt_out(conn: &mut DbConn, token_hash: &str) -> QueryResult<bool> {
    conn.write_transaction(|conn| {
        let transaction_id: Option<Option<String>> = db_run!(conn: {
            survey_tokens::table.find(token_hash).select(survey_tokens::transaction_id).first(conn).optional()
        })?;
        let Some(Some(transaction_id)) = transaction_id else { return Ok(false) };
        db_run!(conn: {
            diesel::update(transactions::table.find(&transaction_id)).set(transactions::mail_opted_out.eq(true)).execute(conn)
        })?;
        stop_all(conn, &transaction_id)?;
        Ok(true)
    })
}

/// Stops mail for surveys that expired and erases their addresses.
pub fn sweep_expired(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    let expired: Vec<String> = db_run!(conn: {
        transactions::table
            .inner_join(survey_tokens::table.on(survey_tokens::transaction_id.eq(transactions::id.nullable())))
            .filter(transactions::email.is_not_null())
            .filter(survey_tokens::expires_at.le(now))
            .select(transactions::id)
            .limit(500)
            .load(conn)
    })?;
    for id in &expired {
        conn.write_transaction(|conn| stop_all(conn, id))?;
    }
    Ok(expired.len())
}

/// Messages left in `sending` by a sender that died (its lease ran out, or a claim from before
/// leases existed) go back to the queue, same Message-ID on the resend. Messages another live
/// instance is sending keep their lease.
pub fn requeue_interrupted(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    db_run!(conn: {
        diesel::update(
            outbox::table
                .filter(outbox::status.eq(MailStatus::Sending.as_str()))
                .filter(outbox::claimed_until.is_null().or(outbox::claimed_until.lt(now))),
        )
        .set((
            outbox::status.eq(MailStatus::Queued.as_str()),
            outbox::claimed_by.eq(None::<String>),
            outbox::claimed_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
    })
}

/// Where a message stands (see the module's comment for the moves between them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MailStatus {
    Queued,
    Sending,
    Sent,
    Failed,
    Cancelled,
}

impl MailStatus {
    pub const ALL: [MailStatus; 5] = [
        Self::Queued,
        Self::Sending,
        Self::Sent,
        Self::Failed,
        Self::Cancelled,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Sent => "sent",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl std::fmt::Display for MailStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for MailStatus {
    type Error = String;

    /// The column's CHECK allows only the five statuses; anything else is a corrupt row.
    fn try_from(stored: String) -> Result<Self, String> {
        Self::parse(&stored).ok_or_else(|| format!("unknown outbox status {stored:?}"))
    }
}

/// An administrator's retry (console or command line): puts one failed message (`None`: every
/// failed message) back in the queue, audited in the same transaction. Answers how many.
pub fn retry(conn: &mut DbConn, actor: &Actor, id: Option<&str>) -> AppResult<usize> {
    conn.write_transaction(|conn| {
        let requeued = retry_failed(conn, id, crate::db::now())?;
        crate::audit::record(
            conn,
            &actor.audit(),
            "outbox.retry",
            "outbox",
            id.unwrap_or("*"),
            None,
            Some(serde_json::json!({ "requeued": requeued })),
        )?;
        Ok(requeued)
    })
}

/// Puts failed messages back in the queue (administrator's retry); `None` retries all failed.
pub fn retry_failed(conn: &mut DbConn, id: Option<&str>, now: NaiveDateTime) -> QueryResult<usize> {
    db_run!(conn: {
        let target = outbox::table.filter(outbox::status.eq(MailStatus::Failed.as_str())).into_boxed();
        let ids: Vec<String> = match id {
            Some(id) => target.filter(outbox::id.eq(id.to_string())).select(outbox::id).load(conn)?,
            None => target.select(outbox::id).load(conn)?,
        };
        diesel::update(outbox::table.filter(outbox::id.eq_any(&ids)))
            .set((outbox::status.eq(MailStatus::Queued.as_str()), outbox::attempts.eq(0), outbox::due_at.eq(now), outbox::last_error.eq(None::<String>)))
            .execute(conn)
    })
}

/// One outbox row as administrators see it (no address).
#[derive(Debug, Clone, Queryable, Serialize)]
pub struct OutboxEntry {
    pub id: String,
    pub kind: String,
    pub unit_code: String,
    pub dossier_code: String,
    #[diesel(deserialize_as = String)]
    pub status: MailStatus,
    pub attempts: i64,
    pub due_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    /// `email`, `sms` or `zalo`.
    pub channel: String,
}

pub fn list(
    conn: &mut DbConn,
    status: Option<MailStatus>,
    limit: i64,
) -> QueryResult<Vec<OutboxEntry>> {
    db_run!(conn: {
        let mut q = outbox::table
            .inner_join(units::table.on(units::id.eq(outbox::unit_id)))
            .inner_join(transactions::table.on(transactions::id.eq(outbox::transaction_id)))
            .select((
                outbox::id, outbox::kind, units::code, transactions::dossier_code, outbox::status,
                outbox::attempts, outbox::due_at, outbox::sent_at, outbox::last_error, outbox::channel,
            ))
            .into_boxed();
        if let Some(s) = status {
            q = q.filter(outbox::status.eq(s.as_str()));
        }
        q.order(outbox::due_at.desc()).limit(limit).load(conn)
    })
}

/// Messages per unit (code, name) and status.
pub fn summary(conn: &mut DbConn) -> QueryResult<Vec<(String, String, MailStatus, i64)>> {
    let counts: Vec<(String, String, i64)> = db_run!(conn: {
        outbox::table
            .group_by((outbox::unit_id, outbox::status))
            .select((outbox::unit_id, outbox::status, diesel::dsl::count_star()))
            .load(conn)
    })?;
    let names: std::collections::HashMap<String, (String, String)> = db_run!(conn: {
        units::table.select((units::id, units::code, units::name_vi)).load::<(String, String, String)>(conn)
    })?
    .into_iter()
    .map(|(id, code, name)| (id, (code, name)))
    .collect();
    let mut out: Vec<(String, String, MailStatus, i64)> = counts
        .into_iter()
        // The CHECK constraint admits no other status.
        .filter_map(|(unit, status, n)| {
            let status = MailStatus::parse(&status)?;
            let (code, name) = names.get(&unit).cloned().unwrap_or_default();
            Some((code, name, status, n))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// Statuses of a message still to be sent (or waiting for an administrator's retry).
const PENDING: [&str; 3] = [
    MailStatus::Queued.as_str(),
    MailStatus::Sending.as_str(),
    MailStatus::Failed.as_str(),
];
/// Statuses of a message that an answer (or an opt-out) cancels.
const CANCELLABLE: [&str; 2] = [MailStatus::Queued.as_str(), MailStatus::Failed.as_str()];

/// Erases the numbers of `transaction_ids` that have no SMS or Zalo message pending.
pub fn forget_numbers_if_done(conn: &mut DbConn, transaction_ids: &[&str]) -> QueryResult<usize> {
    if transaction_ids.is_empty() {
        return Ok(0);
    }
    db_run!(conn: {
        let pending = outbox::table
            .filter(outbox::transaction_id.eq(phone_contacts::transaction_id))
            .filter(outbox::channel.ne("email"))
            .filter(outbox::status.eq_any(PENDING));
        diesel::delete(
            phone_contacts::table
                .filter(phone_contacts::transaction_id.eq_any(transaction_ids))
                .filter(diesel::dsl::not(diesel::dsl::exists(pending))),
        )
        .execute(conn)
    })
}

#[cfg(test)]
mod tests {
    use super::MailStatus;

    #[test]
    fn every_status_round_trips_and_unknown_is_refused() {
        for status in MailStatus::ALL {
            assert_eq!(MailStatus::parse(status.as_str()), Some(status));
            assert_eq!(MailStatus::try_from(status.to_string()), Ok(status));
        }
        assert_eq!(MailStatus::parse("lost"), None);
        assert!(MailStatus::try_from("Sent".to_string()).is_err());
    }
}
