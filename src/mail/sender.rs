//! The background sender: drains due outbox rows, sends them, and records the outcome. A failed
//! send waits base·2^(attempt−1) before the next try; after the last attempt, or a permanent
//! refusal, the message is marked failed and shown to administrators.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::NaiveDateTime;
use lettre::message::Mailbox;

use super::message::Invitation;
use super::outbox::{self, DueMail};
use super::transport::{MailTransport, SendError};
use crate::config::Settings;
use crate::db::{DbConn, DbPool};
use crate::secret::ServerSecret;
use crate::survey::token::SurveyToken;

/// What the sender needs besides the database.
pub struct MailPolicy {
    pub transport: MailTransport,
    pub from: Mailbox,
    pub public_base: String,
    pub secret: ServerSecret,
    pub max_attempts: i64,
    pub retry_base: chrono::Duration,
    /// This sender's name in the outbox's claims: unique per process and start.
    pub instance: String,
    /// How long a claim keeps other instances off a message (renewed before each attempt).
    pub lease: chrono::Duration,
}

/// A name for this sender, unique across instances and restarts, readable in the database.
pub fn instance_name() -> String {
    let host = std::env::var("HOSTNAME").unwrap_or_default();
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}:{}:{}", std::process::id(), &id[..12])
}

impl MailPolicy {
    pub fn from_settings(settings: &Settings, secret: ServerSecret) -> anyhow::Result<Self> {
        Ok(Self {
            transport: MailTransport::from_url(settings.smtp_url.as_deref())?,
            from: settings
                .mail_from
                .parse()
                .map_err(|e| anyhow::anyhow!("SIPAS_MAIL_FROM: {e}"))?,
            public_base: settings.public_base(),
            secret,
            max_attempts: settings.mail_max_attempts,
            retry_base: chrono::Duration::seconds(settings.mail_retry_base_seconds),
            instance: instance_name(),
            lease: chrono::Duration::seconds(settings.mail_lease_seconds),
        })
    }
}

/// Outcome counts of one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub cancelled: usize,
}

pub(crate) fn backoff(base: chrono::Duration, attempts: i64) -> chrono::Duration {
    base * 2i32.saturating_pow(attempts.clamp(1, 20) as u32 - 1)
}

/// Messages claimed at once: few, so a pass (and a graceful stop, which waits for it) is short.
const CLAIM_BATCH: i64 = 20;

/// Sends everything due at `now`, claiming messages in small batches under a lease.
pub fn run_once(
    conn: &mut DbConn,
    policy: &MailPolicy,
    now: NaiveDateTime,
) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    outbox::sweep_expired(conn, now)?;
    let me = policy.instance.as_str();
    loop {
        let ids = outbox::claim_due(conn, me, now, policy.lease, CLAIM_BATCH)?;
        if ids.is_empty() {
            break;
        }
        let mails = outbox::claimed(conn, me, &ids)?;
        for mail in &mails {
            let outcome = deliver(conn, policy, mail, now)?;
            match outcome {
                Outcome::Sent => pass.sent += 1,
                Outcome::Retried => pass.retried += 1,
                Outcome::Failed => pass.failed += 1,
                Outcome::Cancelled => pass.cancelled += 1,
                Outcome::Lost => {}
            }
        }
        // Claimed but unreadable (their survey is gone): failing them beats retrying forever.
        for id in ids.iter().filter(|id| !mails.iter().any(|m| &m.id == *id)) {
            outbox::mark_failed(conn, id, me, "survey not found")?;
            pass.failed += 1;
        }
        if (ids.len() as i64) < CLAIM_BATCH {
            break;
        }
    }
    Ok(pass)
}

enum Outcome {
    Sent,
    Retried,
    Failed,
    Cancelled,
    /// The lease ran out and another instance took the message: it sends it, not us.
    Lost,
}

/// Sends (or cancels) one claimed message and records what happened.
fn deliver(
    conn: &mut DbConn,
    policy: &MailPolicy,
    mail: &DueMail,
    now: NaiveDateTime,
) -> anyhow::Result<Outcome> {
    let me = policy.instance.as_str();
    let stop = mail.email.is_none() || mail.opted_out || mail.spent || mail.expires_at <= now;
    if stop {
        let cancelled = conn.write_transaction(|conn| {
            let cancelled = outbox::cancel(conn, &mail.id, me)?;
            outbox::forget_address_if_done(conn, &mail.transaction_id)?;
            diesel::QueryResult::Ok(cancelled)
        })?;
        return Ok(if cancelled {
            Outcome::Cancelled
        } else {
            Outcome::Lost
        });
    }
    // Renewed right before the attempt, so the lease outlasts it whatever waited before.
    if !outbox::begin_attempt(conn, &mail.id, me, crate::db::now() + policy.lease)? {
        tracing::warn!(id = %mail.id, "mail claim expired and was taken over; not sending");
        return Ok(Outcome::Lost);
    }
    let attempts = mail.attempts + 1;
    let recorded = match send(policy, mail) {
        Ok(()) => conn
            .write_transaction(|conn| {
                let held = outbox::mark_sent(conn, &mail.id, me, crate::db::now())?;
                outbox::forget_address_if_done(conn, &mail.transaction_id)?;
                diesel::QueryResult::Ok(held)
            })?
            .then_some(Outcome::Sent),
        Err(SendError::Transient(e)) if attempts < policy.max_attempts => {
            tracing::warn!(id = %mail.id, attempts, error = %e, "mail not sent; will retry");
            let due = now + backoff(policy.retry_base, attempts);
            outbox::mark_retry(conn, &mail.id, me, due, &e)?.then_some(Outcome::Retried)
        }
        Err(SendError::Transient(e) | SendError::Permanent(e)) => {
            tracing::error!(id = %mail.id, attempts, error = %e, "mail failed for good");
            outbox::mark_failed(conn, &mail.id, me, &e)?.then_some(Outcome::Failed)
        }
    };
    Ok(recorded.unwrap_or_else(|| {
        tracing::warn!(id = %mail.id, "mail claim expired during the attempt; outcome not recorded");
        Outcome::Lost
    }))
}

fn send(policy: &MailPolicy, mail: &DueMail) -> Result<(), SendError> {
    let token = SurveyToken::for_transaction(&policy.secret, &mail.transaction_id);
    let survey_url = format!("{}/s/{}?via=link", policy.public_base, token.as_str());
    let opt_out_url = format!("{}/s/{}/unsubscribe", policy.public_base, token.as_str());
    let expires = (mail.expires_at + chrono::Duration::hours(7))
        .format("%d/%m/%Y")
        .to_string();
    let invitation = Invitation {
        reminder: mail.kind == "reminder",
        unit_vi: &mail.unit_vi,
        unit_en: &mail.unit_en,
        procedure_vi: &mail.procedure_vi,
        procedure_en: &mail.procedure_en,
        survey_url: &survey_url,
        opt_out_url: &opt_out_url,
        expires: &expires,
    };
    let to = mail.email.as_deref().unwrap_or_default();
    let message = invitation
        .build(&policy.from, to, &mail.message_id)
        .map_err(|e| SendError::Permanent(e.to_string()))?;
    policy.transport.send(&message)
}

/// What readiness probes and metrics see of a sender: when it last went round its loop, and
/// the flag that stops it. Kept per sender (not process-global) so that two applications in
/// one process, as in the tests, each report their own sender.
#[derive(Clone, Default)]
pub struct SenderStatus {
    /// Milliseconds since the Unix epoch of the last loop turn; 0: never.
    last_turn_ms: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
}

impl SenderStatus {
    pub(crate) fn beat(&self) {
        self.last_turn_ms
            .store(chrono::Utc::now().timestamp_millis(), Ordering::Relaxed);
    }

    /// How long ago the sender last went round its loop; `None` if it never did.
    pub fn age(&self) -> Option<Duration> {
        match self.last_turn_ms.load(Ordering::Relaxed) {
            0 => None,
            beat => Some(Duration::from_millis(
                u64::try_from(chrono::Utc::now().timestamp_millis() - beat).unwrap_or(0),
            )),
        }
    }

    /// Asks the loop to end after its current pass (shutdown; tests that stop the sender).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Relaxed);
    }

    pub(crate) fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The running sender thread.
pub struct MailSender {
    status: SenderStatus,
    handle: Option<JoinHandle<()>>,
}

impl MailSender {
    /// Starts the loop; messages whose sender died mid-send (lease run out) are queued again
    /// first, while those other live instances are sending are left to them.
    pub fn start(pool: DbPool, policy: MailPolicy, poll: Duration) -> anyhow::Result<Self> {
        let requeued = outbox::requeue_interrupted(&mut pool.get()?, crate::db::now())?;
        tracing::info!(
            transport = %policy.transport.describe(),
            instance = %policy.instance,
            requeued,
            "mail sender started"
        );
        let status = SenderStatus::default();
        let flag = status.clone();
        let handle = std::thread::Builder::new()
            .name("sipas-mail".into())
            .spawn(move || {
                while !flag.stopping() {
                    flag.beat(); // read by /readyz and /metrics
                    let result = pool
                        .get()
                        .and_then(|mut conn| run_once(&mut conn, &policy, crate::db::now()));
                    if let Err(e) = result {
                        tracing::error!(error = format!("{e:#}"), "mail pass failed");
                    }
                    let mut slept = Duration::ZERO;
                    while slept < poll && !flag.stopping() {
                        let step = Duration::from_millis(50).min(poll - slept);
                        std::thread::sleep(step);
                        slept += step;
                    }
                }
            })?;
        Ok(Self {
            status,
            handle: Some(handle),
        })
    }

    /// The sender's heartbeat and stop flag, for the application state.
    pub fn status(&self) -> SenderStatus {
        self.status.clone()
    }

    /// Finishes the current pass and stops.
    pub fn stop(mut self) {
        self.status.request_stop();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for MailSender {
    fn drop(&mut self) {
        self.status.request_stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles() {
        let base = chrono::Duration::seconds(60);
        assert_eq!(backoff(base, 1), chrono::Duration::seconds(60));
        assert_eq!(backoff(base, 4), chrono::Duration::seconds(480));
    }
}
