//! The background sender: drains due outbox rows, sends them, and records the outcome. A failed
//! send waits base·2^(attempt−1) before the next try; after the last attempt, or a permanent
//! refusal, the message is marked failed and shown to administrators.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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

fn backoff(base: chrono::Duration, attempts: i64) -> chrono::Duration {
    base * 2i32.saturating_pow(attempts.clamp(1, 20) as u32 - 1)
}

/// Sends everything due at `now`.
pub fn run_once(
    conn: &mut DbConn,
    policy: &MailPolicy,
    now: NaiveDateTime,
) -> anyhow::Result<Pass> {
    let mut pass = Pass::default();
    outbox::sweep_expired(conn, now)?;
    for mail in outbox::due(conn, now, 50)? {
        let stop = mail.email.is_none() || mail.opted_out || mail.spent || mail.expires_at <= now;
        if stop {
            conn.write_transaction(|conn| {
                outbox::cancel(conn, &mail.id)?;
                outbox::forget_address_if_done(conn, &mail.transaction_id)
            })?;
            pass.cancelled += 1;
            continue;
        }
        if !outbox::claim(conn, &mail.id)? {
            continue;
        }
        let attempts = mail.attempts + 1;
        match send(policy, &mail) {
            Ok(()) => {
                conn.write_transaction(|conn| {
                    outbox::mark_sent(conn, &mail.id, crate::db::now())?;
                    outbox::forget_address_if_done(conn, &mail.transaction_id)
                })?;
                pass.sent += 1;
            }
            Err(SendError::Transient(e)) if attempts < policy.max_attempts => {
                tracing::warn!(id = %mail.id, attempts, error = %e, "mail not sent; will retry");
                outbox::mark_retry(
                    conn,
                    &mail.id,
                    now + backoff(policy.retry_base, attempts),
                    &e,
                )?;
                pass.retried += 1;
            }
            Err(SendError::Transient(e) | SendError::Permanent(e)) => {
                tracing::error!(id = %mail.id, attempts, error = %e, "mail failed for good");
                outbox::mark_failed(conn, &mail.id, &e)?;
                pass.failed += 1;
            }
        }
    }
    Ok(pass)
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

/// The running sender thread.
pub struct MailSender {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl MailSender {
    /// Starts the loop; messages interrupted by a crash are queued again first.
    pub fn start(pool: DbPool, policy: MailPolicy, poll: Duration) -> anyhow::Result<Self> {
        outbox::requeue_interrupted(&mut pool.get()?)?;
        tracing::info!(transport = %policy.transport.describe(), "mail sender started");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("sipas-mail".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    crate::metrics::mail_heartbeat(); // read by /readyz
                    let result = pool
                        .get()
                        .and_then(|mut conn| run_once(&mut conn, &policy, crate::db::now()));
                    if let Err(e) = result {
                        tracing::error!(error = format!("{e:#}"), "mail pass failed");
                    }
                    let mut slept = Duration::ZERO;
                    while slept < poll && !flag.load(Ordering::Relaxed) {
                        let step = Duration::from_millis(50).min(poll - slept);
                        std::thread::sleep(step);
                        slept += step;
                    }
                }
            })?;
        Ok(Self {
            stop,
            handle: Some(handle),
        })
    }

    /// Finishes the current pass and stops.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for MailSender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
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
