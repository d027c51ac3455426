//! The durable write path for responses, with group commit.
//!
//! One fsync costs milliseconds, so committing each submission alone caps throughput at a few
//! hundred per second. A single writer thread drains a queue, stores everything waiting in one
//! database transaction (each submission in its own savepoint, so one bad submission never
//! spoils the others), commits once, and only then answers each waiting request. A citizen's
//! "thank you" therefore always means the answer is on disk.

use std::thread::JoinHandle;

use chrono::{FixedOffset, NaiveDateTime};
use diesel::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::rollup::{DossierChange, RollupDelta};
use super::statements::{RateDossier, SpendToken};
use super::stored;
use crate::db::schema::{responses, survey_tokens};
use crate::db::{DbConn, DbPool};
use crate::db_run;
use crate::error::AppError;
use crate::forms::answers::AnswerValue;

/// "Không hài lòng" on the 3-level dossier scale: what Decision 766 subtracts.
pub const UNSATISFIED_RATING: i64 = 1;

/// A response ready to be stored, from any channel.
#[derive(Debug, Clone)]
pub struct NewResponse {
    pub id: String,
    pub unit_id: String,
    pub procedure_id: Option<String>,
    pub form_code: String,
    pub form_version: i64,
    pub channel: String,
    pub respondent_type: Option<String>,
    pub language: String,
    pub issued_at: Option<NaiveDateTime>,
    pub opened_at: Option<NaiveDateTime>,
    pub submitted_at: NaiveDateTime,
    /// For paper and other assisted channels: who collected, typed and checked it (JSON).
    pub provenance: Option<String>,
}

/// One submission: spend the token (if any), store the response and its answers.
#[derive(Debug, Clone)]
pub struct Submission {
    pub token_hash: Option<String>,
    pub response: NewResponse,
    pub answers: Vec<AnswerValue>,
    /// Instrument A stores the overall rating on the dossier for the Decision 766 rate.
    pub dossier_rating: Option<(String, i64)>,
    /// The respondent's element and index scores (see `forms::scoring`).
    pub scores: Vec<(String, f64)>,
    /// The dossier answered about, so its pending mail stops (never stored on the response).
    pub transaction_id: Option<String>,
    /// Integrity signals of an e-survey answer (see `crate::integrity`); stored with it.
    pub screening: Option<crate::integrity::Screening>,
}

impl Submission {
    /// Whether the response enters the rollups now; a held one waits for review.
    pub fn counts_now(&self) -> bool {
        !self.screening.as_ref().is_some_and(|s| s.held)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    Stored,
    AlreadyUsed,
    Expired,
}

/// Work that shares a group commit: it writes inside the batch's transaction (in its own
/// savepoint), and hears whether the batch committed only after the commit.
trait BatchJob: Send {
    /// Writes; an `Err` spoils only this job's savepoint, never the batch.
    fn write(&mut self, conn: &mut DbConn, delta: &mut RollupDelta, utc_offset: FixedOffset);
    /// Answers the waiting request once the batch's fate is known.
    fn reply(self: Box<Self>, committed: Result<(), String>);
}

/// A submission waiting for its group commit.
struct SubmitJob {
    submission: Submission,
    /// The answers as stored, encoded by the request's thread: the single writer thread only
    /// writes.
    answers: String,
    outcome: Option<Result<SubmitOutcome, String>>,
    /// Carries the submission back too, so that the request's thread, not the writer, frees it.
    reply: oneshot::Sender<(Result<SubmitOutcome, String>, Submission)>,
}

impl BatchJob for SubmitJob {
    fn write(&mut self, conn: &mut DbConn, delta: &mut RollupDelta, utc_offset: FixedOffset) {
        let stored =
            conn.write_transaction(|conn| store_one(conn, &self.submission, &self.answers));
        self.outcome = Some(match stored {
            Ok((outcome, rated)) => {
                count(delta, &self.submission, outcome, rated, utc_offset);
                Ok(outcome)
            }
            Err(e) => Err(e.to_string()),
        });
    }

    fn reply(self: Box<Self>, committed: Result<(), String>) {
        let SubmitJob {
            submission,
            outcome,
            reply,
            ..
        } = *self;
        let result = committed
            .and_then(|()| outcome.unwrap_or_else(|| Err("the submission was not written".into())));
        let _ = reply.send((result, submission));
    }
}

/// Any other write that wants to share the group commit (e.g. registering a dossier).
struct ClosureJob<T, E, F> {
    work: Option<F>,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<Result<T, E>, AppError>>,
}

impl<T, E, F> BatchJob for ClosureJob<T, E, F>
where
    T: Send + 'static,
    E: From<diesel::result::Error> + Send + 'static,
    F: FnOnce(&mut DbConn, &mut RollupDelta) -> Result<T, E> + Send + 'static,
{
    fn write(&mut self, conn: &mut DbConn, delta: &mut RollupDelta, _: FixedOffset) {
        let Some(work) = self.work.take() else {
            return;
        };
        // Counts go to the batch only if the job's savepoint holds.
        let mut own = RollupDelta::default();
        let result = conn.write_transaction(|conn| work(conn, &mut own));
        if result.is_ok() {
            delta.merge(own);
        }
        self.result = Some(result);
    }

    fn reply(self: Box<Self>, committed: Result<(), String>) {
        let ClosureJob { result, reply, .. } = *self;
        let result = match (committed, result) {
            (Ok(()), Some(result)) => Ok(result),
            (Ok(()), None) => Err(AppError::Internal(anyhow::anyhow!("the write was not run"))),
            (Err(e), _) => Err(AppError::Internal(anyhow::anyhow!(
                "the group commit failed: {e}"
            ))),
        };
        let _ = reply.send(result);
    }
}

enum Message {
    Job(Box<dyn BatchJob>),
    /// Sent by [`WriterThread::shutdown`]: everything queued before it is still stored.
    Shutdown,
}

/// Handle to the writer thread; cheap to clone into every request.
#[derive(Clone)]
pub struct ResponseWriter {
    queue: mpsc::Sender<Message>,
}

/// Joins the writer thread once every [`ResponseWriter`] is dropped (graceful shutdown).
pub struct WriterThread {
    handle: JoinHandle<()>,
    queue: mpsc::Sender<Message>,
}

impl WriterThread {
    /// Stores everything already queued, then stops the thread.
    pub async fn shutdown(self) {
        let _ = self.queue.send(Message::Shutdown).await;
        let _ = tokio::task::spawn_blocking(move || self.handle.join()).await;
    }
}

impl ResponseWriter {
    /// Starts the writer on its own connection. `utc_offset` decides which local month a
    /// response counts for in the rollups.
    pub fn start(
        pool: DbPool,
        max_batch: usize,
        utc_offset: FixedOffset,
    ) -> anyhow::Result<(Self, WriterThread)> {
        let (queue, mut receiver) = mpsc::channel::<Message>(max_batch * 4);
        let mut conn = pool.get()?;
        let handle = std::thread::Builder::new()
            .name("sipas-writer".into())
            .spawn(move || {
                let mut batch: Vec<Box<dyn BatchJob>> = Vec::with_capacity(max_batch);
                let mut stopping = false;
                while !stopping {
                    match receiver.blocking_recv() {
                        Some(Message::Job(job)) => batch.push(job),
                        Some(Message::Shutdown) | None => break,
                    }
                    while batch.len() < max_batch {
                        match receiver.try_recv() {
                            Ok(Message::Job(job)) => batch.push(job),
                            Ok(Message::Shutdown) => {
                                stopping = true;
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let size = batch.len();
                    let commit_started = std::time::Instant::now();
                    let committed = conn
                        .write_transaction(|conn| -> QueryResult<()> {
                            let mut delta = RollupDelta::default();
                            for job in batch.iter_mut() {
                                job.write(conn, &mut delta, utc_offset);
                            }
                            delta.apply(conn)
                        })
                        .map_err(|e| {
                            tracing::error!(error = %e, size, "batch commit failed");
                            e.to_string()
                        });
                    crate::metrics::writer_batch(size, commit_started.elapsed());
                    for job in batch.drain(..) {
                        job.reply(committed.clone());
                    }
                }
            })?;
        Ok((
            Self {
                queue: queue.clone(),
            },
            WriterThread { handle, queue },
        ))
    }

    /// Jobs waiting for the writer thread (for `/metrics`).
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }

    async fn enqueue(&self, job: Box<dyn BatchJob>) -> anyhow::Result<()> {
        self.queue
            .send(Message::Job(job))
            .await
            .map_err(|_| anyhow::anyhow!("the response writer has stopped"))
    }

    /// Queues a submission and waits until it is committed (or refused).
    pub async fn submit(&self, submission: Submission) -> anyhow::Result<SubmitOutcome> {
        let (reply, answer) = oneshot::channel();
        let answers = stored::encode(&submission.answers);
        self.enqueue(Box::new(SubmitJob {
            submission,
            answers,
            outcome: None,
            reply,
        }))
        .await?;
        let (result, _freed_here) = answer
            .await
            .map_err(|_| anyhow::anyhow!("the response writer dropped a submission"))?;
        result.map_err(|e| anyhow::anyhow!("storing the response failed: {e}"))
    }

    /// Runs `work` inside the next group commit (in its own savepoint, rolled back if it
    /// fails) and returns its result once committed: many small durable writes then share one
    /// fsync. The outer error means the batch did not commit.
    pub async fn run<T, E, F>(&self, work: F) -> Result<Result<T, E>, AppError>
    where
        T: Send + 'static,
        E: From<diesel::result::Error> + Send + 'static,
        F: FnOnce(&mut DbConn, &mut RollupDelta) -> Result<T, E> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Box::new(ClosureJob {
            work: Some(work),
            result: None,
            reply,
        }))
        .await?;
        answer.await.map_err(|_| {
            AppError::Internal(anyhow::anyhow!("the response writer dropped a write"))
        })?
    }
}

/// Adds what a stored submission changes to the batch's rollups.
fn count(
    delta: &mut RollupDelta,
    submission: &Submission,
    outcome: SubmitOutcome,
    rated: Option<RatedDossier>,
    utc_offset: FixedOffset,
) {
    if outcome == SubmitOutcome::Stored && submission.counts_now() {
        delta.add(submission, utc_offset);
    }
    if let Some(rated) = rated {
        delta.add_dossier(
            &rated.unit_id,
            rated.completed_at,
            utc_offset,
            rated.change(),
        );
    }
}

/// Stores submissions in one transaction and returns each one's outcome; an error means
/// nothing was committed (for bulk loads; requests go through [`ResponseWriter`]).
pub fn store_batch(
    conn: &mut DbConn,
    batch: &[Submission],
    utc_offset: FixedOffset,
) -> anyhow::Result<Vec<SubmitOutcome>> {
    let outcomes = conn.write_transaction(|conn| -> QueryResult<Vec<SubmitOutcome>> {
        let mut delta = RollupDelta::default();
        let mut outcomes = Vec::with_capacity(batch.len());
        for submission in batch {
            // Each submission in its own savepoint: one failure never spoils the batch.
            let answers = stored::encode(&submission.answers);
            let (outcome, rated) =
                conn.write_transaction(|conn| store_one(conn, submission, &answers))?;
            if outcome == SubmitOutcome::Stored && submission.counts_now() {
                delta.add(submission, utc_offset);
            }
            if let Some(rated) = rated {
                delta.add_dossier(
                    &rated.unit_id,
                    rated.completed_at,
                    utc_offset,
                    rated.change(),
                );
            }
            outcomes.push(outcome);
        }
        delta.apply(conn)?;
        Ok(outcomes)
    })?;
    Ok(outcomes)
}

/// Inserts responses with their answers, many rows per statement (bulk loads share this with
/// the request path, so both store exactly the same columns).
pub fn insert_responses(conn: &mut DbConn, batch: &[&Submission]) -> QueryResult<()> {
    // SQLite takes at most 32,766 bound values per statement: 13 columns × 1,000 rows.
    for chunk in batch.chunks(1000) {
        let answers: Vec<String> = chunk.iter().map(|s| stored::encode(&s.answers)).collect();
        let rows: Vec<ResponseValues<'_>> = chunk
            .iter()
            .zip(&answers)
            .map(|(s, answers)| response_values(s, answers))
            .collect();
        db_run!(conn: { diesel::insert_into(responses::table).values(rows).execute(conn) })?;
    }
    Ok(())
}

type ResponseValues<'a> = (
    diesel::dsl::Eq<responses::id, &'a String>,
    diesel::dsl::Eq<responses::unit_id, &'a String>,
    diesel::dsl::Eq<responses::procedure_id, &'a Option<String>>,
    diesel::dsl::Eq<responses::form_code, &'a String>,
    diesel::dsl::Eq<responses::form_version, i64>,
    diesel::dsl::Eq<responses::channel, &'a String>,
    diesel::dsl::Eq<responses::respondent_type, &'a Option<String>>,
    diesel::dsl::Eq<responses::language, &'a String>,
    diesel::dsl::Eq<responses::issued_at, Option<NaiveDateTime>>,
    diesel::dsl::Eq<responses::opened_at, Option<NaiveDateTime>>,
    diesel::dsl::Eq<responses::submitted_at, NaiveDateTime>,
    diesel::dsl::Eq<responses::provenance, &'a Option<String>>,
    diesel::dsl::Eq<responses::answers, &'a str>,
);

fn response_values<'a>(submission: &'a Submission, answers: &'a str) -> ResponseValues<'a> {
    let r = &submission.response;
    (
        responses::id.eq(&r.id),
        responses::unit_id.eq(&r.unit_id),
        responses::procedure_id.eq(&r.procedure_id),
        responses::form_code.eq(&r.form_code),
        responses::form_version.eq(r.form_version),
        responses::channel.eq(&r.channel),
        responses::respondent_type.eq(&r.respondent_type),
        responses::language.eq(&r.language),
        responses::issued_at.eq(r.issued_at),
        responses::opened_at.eq(r.opened_at),
        responses::submitted_at.eq(r.submitted_at),
        responses::provenance.eq(&r.provenance),
        responses::answers.eq(answers),
    )
}

/// A dossier that just received its rating, for the dossier rollups.
struct RatedDossier {
    unit_id: String,
    completed_at: NaiveDateTime,
    late: bool,
    unsatisfied: bool,
}

impl RatedDossier {
    /// What the rating changes in the Decision 766 counts: a dossier already late was already
    /// subtracted once.
    fn change(&self) -> DossierChange {
        let unsatisfied = i64::from(self.unsatisfied);
        DossierChange {
            rated_unsatisfied: unsatisfied,
            unsatisfied_or_late: if self.late { 0 } else { unsatisfied },
            ..DossierChange::default()
        }
    }
}

/// Spends the token (if any) and stores one response with its answers.
fn store_one(
    conn: &mut DbConn,
    submission: &Submission,
    answers: &str,
) -> QueryResult<(SubmitOutcome, Option<RatedDossier>)> {
    db_run!(conn: {
        let now = submission.response.submitted_at;
        if let Some(hash) = &submission.token_hash {
            let spent = SpendToken { token_hash: hash, now }.execute(conn)?;
            if spent == 0 {
                let spent_at: Option<Option<NaiveDateTime>> = survey_tokens::table
                    .find(hash)
                    .select(survey_tokens::spent_at)
                    .first(conn)
                    .optional()?;
                return Ok((match spent_at {
                    Some(None) => SubmitOutcome::Expired,
                    _ => SubmitOutcome::AlreadyUsed,
                }, None));
            }
        }
        QueryResult::Ok(())
    })?;
    // One row as a tuple, not a batch: diesel caches this statement's preparation.
    let row = response_values(submission, answers);
    db_run!(conn: { diesel::insert_into(responses::table).values(row).execute(conn) })?;
    if let Some(screening) = &submission.screening {
        crate::integrity::store(
            conn,
            &submission.response,
            &submission.response.form_code,
            screening,
        )?;
    }
    let outcome = db_run!(conn: {
        let mut rated = None;
        if let Some((transaction_id, rating)) = &submission.dossier_rating {
            let dossier: Option<(String, NaiveDateTime, Option<NaiveDateTime>)> =
                RateDossier { transaction_id, rating: *rating }.get_result(conn).optional()?;
            if let Some((unit_id, completed_at, due_at)) = dossier {
                rated = Some(RatedDossier {
                    unit_id,
                    completed_at,
                    late: due_at.is_some_and(|due| completed_at > due),
                    unsatisfied: *rating == UNSATISFIED_RATING,
                });
            }
        }
        QueryResult::Ok((SubmitOutcome::Stored, rated))
    })?;
    // An answer ends all mail about the dossier and erases the citizen's address.
    if let Some(transaction_id) = &submission.transaction_id {
        crate::mail::outbox::stop_all(conn, transaction_id)?;
    }
    Ok(outcome)
}
