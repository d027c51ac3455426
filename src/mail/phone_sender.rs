//! The SMS and Zalo sender: the same outbox, leases and backoff as e-mail (see
//! [`super::sender`]), plus quiet hours, and the number erased once nothing is due for it.

use std::thread::JoinHandle;
use std::time::Duration;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::outbox::{self, Channels, MailStatus};
use super::phone::{self, PhoneChannel, PhoneNumber};
use super::quiet_hours::QuietHours;
use super::sender::SenderStatus;
use super::short_text::ShortInvitation;
use super::sms::{PhoneSendError, SmsGateway};
use super::zalo::{ZaloParams, ZaloZns};
use crate::config::Settings;
use crate::db::schema::{outbox as outbox_t, phone_contacts, procedures, survey_tokens};
use crate::db::schema::{transactions, units};
use crate::db::{DbConn, DbPool};
use crate::db_run;
use crate::secret::ServerSecret;
use crate::survey::token::SurveyToken;

/// What the phone sender needs besides the database.
pub struct PhonePolicy {
    pub sms: Option<SmsGateway>,
    pub zalo: Option<ZaloZns>,
    pub quiet: Option<QuietHours>,
    pub utc_offset: chrono::FixedOffset,
    pub public_base: String,
    pub secret: ServerSecret,
    pub max_attempts: i64,
    pub retry_base: chrono::Duration,
    pub instance: String,
    pub lease: chrono::Duration,
}

impl PhonePolicy {
    pub fn from_settings(settings: &Settings, secret: ServerSecret) -> anyhow::Result<Self> {
        Ok(Self {
            sms: SmsGateway::from_settings(settings)?,
            zalo: ZaloZns::from_settings(settings)?,
            quiet: QuietHours::parse(&settings.phone_quiet_hours)?,
            utc_offset: settings.utc_offset_value()?,
            public_base: settings.public_base(),
            secret,
            max_attempts: settings.mail_max_attempts,
            retry_base: chrono::Duration::seconds(settings.mail_retry_base_seconds),
            instance: super::sender::instance_name(),
            lease: chrono::Duration::seconds(settings.mail_lease_seconds),
        })
    }

    /// Whether any phone transport is configured (else the sender does not run).
    pub fn enabled(&self) -> bool {
        self.sms.is_some() || self.zalo.is_some()
    }

    pub fn quiet_at(&self, now: NaiveDateTime) -> bool {
        self.quiet.is_some_and(|q| q.contains(now, self.utc_offset))
    }
}

/// Outcome counts of one pass.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PhonePass {
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    pub cancelled: usize,
    /// True when the pass sent nothing because of quiet hours.
    pub quiet: bool,
}

/// A claimed phone message with everything needed to write it.
struct DuePhone {
    id: String,
    kind: String,
    channel: String,
    transaction_id: String,
    attempts: i64,
    phone: Option<String>,
    opted_out: bool,
    spent: bool,
    expires_at: NaiveDateTime,
    unit_vi: String,
    procedure_vi: String,
}

const CLAIM_BATCH: i64 = 20;

/// Sends every phone message due at `now`, unless `now` is in the quiet hours.
pub fn run_once(
    conn: &mut DbConn,
    client: &reqwest::blocking::Client,
    policy: &PhonePolicy,
    now: NaiveDateTime,
) -> anyhow::Result<PhonePass> {
    let mut pass = PhonePass::default();
    sweep_expired(conn, now)?;
    if policy.quiet_at(now) {
        pass.quiet = true;
        return Ok(pass);
    }
    let me = policy.instance.as_str();
    loop {
        let ids = outbox::claim_due_on(conn, Channels::Phone, me, now, policy.lease, CLAIM_BATCH)?;
        if ids.is_empty() {
            break;
        }
        let due = claimed(conn, me, &ids)?;
        for message in &due {
            match deliver(conn, client, policy, message, now)? {
                Some(Delivered::Sent) => pass.sent += 1,
                Some(Delivered::Retried) => pass.retried += 1,
                Some(Delivered::Failed) => pass.failed += 1,
                Some(Delivered::Cancelled) => pass.cancelled += 1,
                None => {}
            }
        }
        for id in ids.iter().filter(|id| !due.iter().any(|m| &m.id == *id)) {
            outbox::mark_failed(conn, id, me, "survey not found")?;
            pass.failed += 1;
        }
        if (ids.len() as i64) < CLAIM_BATCH {
            break;
        }
    }
    Ok(pass)
}

enum Delivered {
    Sent,
    Retried,
    Failed,
    Cancelled,
}

type DueRow = (
    (String, String, String, String, i64),
    Option<String>,
    bool,
    Option<NaiveDateTime>,
    NaiveDateTime,
    String,
    String,
);

fn claimed(conn: &mut DbConn, instance: &str, ids: &[String]) -> QueryResult<Vec<DuePhone>> {
    let rows: Vec<DueRow> = db_run!(conn: {
        outbox_t::table
            .inner_join(transactions::table.on(transactions::id.eq(outbox_t::transaction_id)))
            .inner_join(units::table.on(units::id.eq(outbox_t::unit_id)))
            .inner_join(procedures::table.on(procedures::id.eq(transactions::procedure_id)))
            .inner_join(survey_tokens::table.on(survey_tokens::transaction_id.eq(transactions::id.nullable())))
            .left_join(phone_contacts::table.on(phone_contacts::transaction_id.eq(outbox_t::transaction_id)))
            .filter(outbox_t::id.eq_any(ids))
            .filter(outbox_t::status.eq(MailStatus::Sending.as_str()))
            .filter(outbox_t::claimed_by.eq(instance))
            .order(outbox_t::due_at.asc())
            .select((
                (outbox_t::id, outbox_t::kind, outbox_t::channel, outbox_t::transaction_id, outbox_t::attempts),
                phone_contacts::phone.nullable(), transactions::mail_opted_out, survey_tokens::spent_at,
                survey_tokens::expires_at, units::name_vi, procedures::name_vi,
            ))
            .load(conn)
    })?;
    Ok(rows
        .into_iter()
        .map(
            |(
                (id, kind, channel, transaction_id, attempts),
                phone,
                opted_out,
                spent,
                expires_at,
                unit_vi,
                procedure_vi,
            )| DuePhone {
                id,
                kind,
                channel,
                transaction_id,
                attempts,
                phone,
                opted_out,
                spent: spent.is_some(),
                expires_at,
                unit_vi,
                procedure_vi,
            },
        )
        .collect())
}

/// Sends (or cancels) one claimed message and records what happened; `None`: the claim was
/// lost to another instance, which records it.
fn deliver(
    conn: &mut DbConn,
    client: &reqwest::blocking::Client,
    policy: &PhonePolicy,
    message: &DuePhone,
    now: NaiveDateTime,
) -> anyhow::Result<Option<Delivered>> {
    let me = policy.instance.as_str();
    let finish = |conn: &mut DbConn,
                  outcome: Delivered,
                  record: &dyn Fn(&mut DbConn) -> QueryResult<bool>| {
        conn.write_transaction(|conn| {
            let held = record(conn)?;
            phone::forget_numbers_if_done(conn, &[&message.transaction_id])?;
            QueryResult::Ok(held.then_some(outcome))
        })
    };
    let stop =
        message.phone.is_none() || message.opted_out || message.spent || message.expires_at <= now;
    if stop {
        return Ok(finish(conn, Delivered::Cancelled, &|c| {
            outbox::cancel(c, &message.id, me)
        })?);
    }
    if !outbox::begin_attempt(conn, &message.id, me, crate::db::now() + policy.lease)? {
        tracing::warn!(id = %message.id, "phone message claim expired and was taken over; not sending");
        return Ok(None);
    }
    let attempts = message.attempts + 1;
    match send(conn, client, policy, message) {
        Ok(()) => {
            let sent_at = crate::db::now();
            Ok(finish(conn, Delivered::Sent, &|c| {
                outbox::mark_sent(c, &message.id, me, sent_at)
            })?)
        }
        Err(PhoneSendError::Transient { error, retry_after }) if attempts < policy.max_attempts => {
            tracing::warn!(id = %message.id, attempts, error = %error, "phone message not sent; will retry");
            let mut wait = super::sender::backoff(policy.retry_base, attempts);
            if let Some(after) = retry_after.and_then(|d| chrono::Duration::from_std(d).ok()) {
                wait = wait.max(after);
            }
            Ok(
                outbox::mark_retry(conn, &message.id, me, now + wait, &error)?
                    .then_some(Delivered::Retried),
            )
        }
        Err(PhoneSendError::Transient { error, .. } | PhoneSendError::Permanent(error)) => {
            tracing::error!(id = %message.id, attempts, error = %error, "phone message failed for good");
            crate::metrics::mail_send_failed(&message.channel);
            Ok(outbox::mark_failed(conn, &message.id, me, &error)?.then_some(Delivered::Failed))
        }
    }
}

fn send(
    conn: &mut DbConn,
    client: &reqwest::blocking::Client,
    policy: &PhonePolicy,
    message: &DuePhone,
) -> Result<(), PhoneSendError> {
    let phone = PhoneNumber::from_stored(message.phone.clone().unwrap_or_default());
    let token = SurveyToken::for_transaction(&policy.secret, &message.transaction_id);
    let opt_out_url = format!("{}/s/{}/unsubscribe", policy.public_base, token.as_str());
    let until = (message.expires_at + policy.utc_offset)
        .format("%d/%m")
        .to_string();
    let reminder = message.kind == "reminder";
    // A row queued for a channel no longer configured goes by the other one, if any.
    let channel = match (
        PhoneChannel::from_stored(&message.channel),
        &policy.zalo,
        &policy.sms,
    ) {
        (Some(PhoneChannel::Zalo), Some(_), _) | (_, Some(_), None) => PhoneChannel::Zalo,
        (_, _, Some(_)) => PhoneChannel::Sms,
        _ => {
            return Err(PhoneSendError::Permanent(
                "no SMS or Zalo transport configured".into(),
            ));
        }
    };
    // The link says which invitation brought the citizen: the answer's channel.
    let survey_url = format!(
        "{}/s/{}?via={}",
        policy.public_base,
        token.as_str(),
        channel.as_str()
    );
    match (channel, &policy.zalo, &policy.sms) {
        (PhoneChannel::Zalo, Some(zalo), _) => {
            let params = ZaloParams {
                unit: message.unit_vi.clone(),
                procedure: message.procedure_vi.clone(),
                survey_url,
                token: token.as_str().to_string(),
                opt_out_url,
                until,
            };
            zalo.send(conn, client, &phone, &params, reminder, &message.id)
        }
        (_, _, Some(sms)) => {
            let text = ShortInvitation {
                reminder,
                unit: &message.unit_vi,
                procedure: &message.procedure_vi,
                survey_url: &survey_url,
                opt_out_url: &opt_out_url,
                until: &until,
            }
            .text();
            sms.send(client, &phone, &text, &message.id)
        }
        _ => Err(PhoneSendError::Permanent(
            "no SMS or Zalo transport configured".into(),
        )),
    }
}

/// Stops phone messages of surveys that expired and erases their numbers.
fn sweep_expired(conn: &mut DbConn, now: NaiveDateTime) -> QueryResult<usize> {
    let expired: Vec<String> = db_run!(conn: {
        phone_contacts::table
            .inner_join(survey_tokens::table.on(survey_tokens::transaction_id.eq(phone_contacts::transaction_id.nullable())))
            .filter(survey_tokens::expires_at.le(now))
            .select(phone_contacts::transaction_id)
            .limit(500)
            .load(conn)
    })?;
    for id in &expired {
        conn.write_transaction(|conn| outbox::stop_all(conn, id))?;
    }
    Ok(expired.len())
}

/// The running phone sender thread.
pub struct PhoneSender {
    /// Its heartbeat (read by `/readyz`) and stop flag, as the mail sender's.
    status: SenderStatus,
    handle: Option<JoinHandle<()>>,
}

impl PhoneSender {
    /// Starts the loop when a transport is configured; `None` otherwise.
    pub fn start(
        pool: DbPool,
        policy: PhonePolicy,
        poll: Duration,
    ) -> anyhow::Result<Option<Self>> {
        if !policy.enabled() {
            return Ok(None);
        }
        tracing::info!(
            sms = policy.sms.is_some(),
            zalo = policy.zalo.is_some(),
            instance = %policy.instance,
            "phone sender started"
        );
        let status = SenderStatus::default();
        let flag = status.clone();
        let handle = std::thread::Builder::new()
            .name("sipas-phone".into())
            .spawn(move || {
                // Built on this thread: a blocking client owns a runtime that must not be
                // dropped inside the server's async one.
                let client = match reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(15))
                    .build()
                {
                    Ok(client) => client,
                    Err(e) => {
                        tracing::error!(error = %e, "phone sender cannot build its HTTP client");
                        return;
                    }
                };
                while !flag.stopping() {
                    flag.beat();
                    let result = pool.get().and_then(|mut conn| {
                        run_once(&mut conn, &client, &policy, crate::db::now())
                    });
                    if let Err(e) = result {
                        tracing::error!(error = format!("{e:#}"), "phone pass failed");
                    }
                    let mut slept = Duration::ZERO;
                    while slept < poll && !flag.stopping() {
                        let step = Duration::from_millis(50).min(poll - slept);
                        std::thread::sleep(step);
                        slept += step;
                    }
                }
            })?;
        Ok(Some(Self {
            status,
            handle: Some(handle),
        }))
    }

    /// The sender's heartbeat, for the application state.
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

impl Drop for PhoneSender {
    fn drop(&mut self) {
        self.status.request_stop();
    }
}
