//! The durable write path for responses, with group commit.
//!
//! One fsync costs milliseconds, so committing each submission alone caps throughput at a few
//! hundred per second. A single writer thread drains a queue, stores everything waiting in one
//! database transaction (each submission in its own savepoint, so one bad submission never
//! spoils the others), commits once, and only then answers each waiting request. A citizen's
//! "thank you" therefore always means the answer is on disk.
//!
//! On PostgreSQL every statement is a round trip to the server, so the batch is written
//! set-based: all tokens spent in one statement, all responses, signals rows, ratings and mail
//! stops in one statement each, every rollup cell once (see [`RollupDelta::apply`]), and the
//! registrations likewise. Only when a statement of this optimistic path fails (a token spent
//! twice is not a failure: it is refused) is the batch written again one job per savepoint, so
//! that one bad job spoils nothing else. SQLite runs in-process, where a statement costs
//! microseconds: it keeps the per-job savepoints.

use std::thread::JoinHandle;

use chrono::{FixedOffset, NaiveDateTime};
use diesel::prelude::*;
use tokio::sync::{mpsc, oneshot};

use super::response::{NewResponse, Submission, SubmitOutcome, UNSATISFIED_RATING};
use super::stored;
use super::transaction::NewDossier;
use crate::db::retry::{is_transient, retry_transient};
use crate::db::schema::{responses, survey_tokens};
use crate::db::statements::{Column, RateDossier, SetStatement, SpendToken};
use crate::db::{DbConn, DbPool};
use crate::error::AppError;
use crate::integrity::Fingerprint;
use crate::rollup::{DossierChange, RollupDelta};
use crate::{db_run, set_sql};

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
        let stored = retry_transient(conn, |conn| {
            store_one(conn, &self.submission, &self.answers)
        });
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

/// A new dossier waiting for its group commit (`POST /api/v1/transactions`).
struct RegisterJob {
    dossier: std::sync::Arc<NewDossier>,
    /// Who asked for the survey link (see [`crate::integrity::record_issuer`]).
    issuer: Option<Fingerprint>,
    /// An API key whose "last used" time is due, with that time.
    key_use: Option<(String, NaiveDateTime)>,
    result: Option<QueryResult<()>>,
    reply: oneshot::Sender<Result<QueryResult<()>, AppError>>,
}

impl BatchJob for RegisterJob {
    fn write(&mut self, conn: &mut DbConn, delta: &mut RollupDelta, _: FixedOffset) {
        let result = retry_transient(conn, |conn| {
            let mut own = RollupDelta::default();
            self.dossier.insert(conn, &mut own)?;
            if let Some(issuer) = &self.issuer {
                crate::integrity::record_issuer(conn, &self.dossier.token_issue().0, issuer)?;
            }
            if let Some((id, at)) = &self.key_use {
                crate::api_keys::record_use(conn, id, *at)?;
            }
            Ok(own)
        });
        self.result = Some(result.map(|own| delta.merge(own)));
    }

    fn reply(self: Box<Self>, committed: Result<(), String>) {
        let result = match (committed, self.result) {
            (Ok(()), Some(result)) => Ok(result),
            (Ok(()), None) => Err(AppError::Internal(anyhow::anyhow!(
                "the registration was not written"
            ))),
            (Err(e), _) => Err(AppError::Internal(anyhow::anyhow!(
                "the group commit failed: {e}"
            ))),
        };
        let _ = self.reply.send(result);
    }
}

/// A queued write, by kind: submissions and registrations can be written set-based.
enum Job {
    Submit(Box<SubmitJob>),
    Register(Box<RegisterJob>),
    Other(Box<dyn BatchJob>),
}

impl Job {
    fn write(&mut self, conn: &mut DbConn, delta: &mut RollupDelta, utc_offset: FixedOffset) {
        match self {
            Job::Submit(job) => job.write(conn, delta, utc_offset),
            Job::Register(job) => job.write(conn, delta, utc_offset),
            Job::Other(job) => job.write(conn, delta, utc_offset),
        }
    }

    fn reply(self, committed: Result<(), String>) {
        match self {
            Job::Submit(job) => job.reply(committed),
            Job::Register(job) => job.reply(committed),
            Job::Other(job) => job.reply(committed),
        }
    }

    /// Forgets what an attempt that did not commit wrote, before the batch is tried again.
    fn reset(&mut self) {
        match self {
            Job::Submit(job) => job.outcome = None,
            Job::Register(job) => job.result = None,
            Job::Other(_) => {}
        }
    }
}

/// How many times a whole batch aborted by a deadlock or serialization failure is tried again
/// (each step already retries in its own savepoint; this covers the rest).
const BATCH_RETRIES: usize = 3;

/// Writes and commits one batch; each job keeps its own outcome for its reply.
fn commit_batch(conn: &mut DbConn, batch: &mut [Job], utc_offset: FixedOffset) -> QueryResult<()> {
    let mut attempt = 0;
    loop {
        let committed = conn.write_transaction(|conn| -> QueryResult<()> {
            let mut delta = RollupDelta::default();
            if matches!(conn, DbConn::Postgres(_)) {
                write_set_based(conn, batch, &mut delta, utc_offset);
                for job in batch.iter_mut().filter(|j| matches!(j, Job::Other(_))) {
                    job.write(conn, &mut delta, utc_offset);
                }
            } else {
                for job in batch.iter_mut() {
                    job.write(conn, &mut delta, utc_offset);
                }
            }
            delta.apply(conn)
        });
        match committed {
            // A closure job ran once and cannot run again: only batches without one retry.
            Err(e)
                if attempt < BATCH_RETRIES
                    && is_transient(&e)
                    && !batch.iter().any(|j| matches!(j, Job::Other(_))) =>
            {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "batch aborted by a concurrent writer, trying again");
                batch.iter_mut().for_each(Job::reset);
            }
            other => return other,
        }
    }
}

/// The set-based path (PostgreSQL): the batch's submissions and registrations in a savepoint,
/// a few statements in all; if any of them fails, the savepoint is rolled back and each job is
/// written alone in its own savepoint (the slow path), so one bad job spoils nothing else.
fn write_set_based(
    conn: &mut DbConn,
    batch: &mut [Job],
    delta: &mut RollupDelta,
    utc_offset: FixedOffset,
) {
    let written = retry_transient(conn, |conn| {
        let mut own = RollupDelta::default();
        let registrations: Vec<&RegisterJob> = batch
            .iter()
            .filter_map(|j| match j {
                Job::Register(job) => Some(&**job),
                _ => None,
            })
            .collect();
        register_many(conn, &registrations, &mut own)?;
        let submissions: Vec<&SubmitJob> = batch
            .iter()
            .filter_map(|j| match j {
                Job::Submit(job) => Some(&**job),
                _ => None,
            })
            .collect();
        let outcomes = store_many(conn, &submissions, &mut own, utc_offset)?;
        Ok((own, outcomes))
    });
    match written {
        Ok((own, outcomes)) => {
            delta.merge(own);
            let mut outcomes = outcomes.into_iter();
            for job in batch.iter_mut() {
                match job {
                    Job::Submit(job) => {
                        job.outcome = outcomes.next().map(Ok);
                    }
                    Job::Register(job) => job.result = Some(Ok(())),
                    Job::Other(_) => {}
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, size = batch.len(), "set-based batch failed, writing it job by job");
            for job in batch.iter_mut().filter(|j| !matches!(j, Job::Other(_))) {
                job.write(conn, delta, utc_offset);
            }
        }
    }
}

/// The batch's registrations, set-based (see [`super::transaction::insert_many`]).
fn register_many(
    conn: &mut DbConn,
    jobs: &[&RegisterJob],
    delta: &mut RollupDelta,
) -> QueryResult<()> {
    if jobs.is_empty() {
        return Ok(());
    }
    let dossiers: Vec<_> = jobs
        .iter()
        .map(|j| (&*j.dossier, j.issuer.as_ref()))
        .collect();
    super::transaction::insert_many(conn, &dossiers, delta)?;
    // A key's use is stamped at most once a minute: rarely more than one per batch.
    let mut uses: Vec<(&str, NaiveDateTime)> = jobs
        .iter()
        .filter_map(|j| j.key_use.as_ref().map(|(id, at)| (id.as_str(), *at)))
        .collect();
    uses.sort();
    uses.dedup_by(|later, earlier| {
        later.0 == earlier.0 && {
            earlier.1 = earlier.1.max(later.1);
            true
        }
    });
    for (id, at) in uses {
        crate::api_keys::record_use(conn, id, at)?;
    }
    Ok(())
}

set_sql!(
    /// Spends every token of a batch that is neither spent nor expired at its submission's
    /// time; returns the ones spent.
    SpendTokens,
    diesel::sql_types::Text,
    "UPDATE survey_tokens AS t SET spent_at = v.at \
     FROM unnest(?::text[], ?::timestamp[]) AS v(h, at) \
     WHERE t.token_hash = v.h AND t.spent_at IS NULL AND t.expires_at > v.at \
     RETURNING t.token_hash"
);

set_sql!(
    /// Whether each of some tokens is unspent (so refused as expired), for the refused ones.
    TokenStates,
    (diesel::sql_types::Text, diesel::sql_types::Bool),
    "SELECT token_hash, spent_at IS NULL FROM survey_tokens WHERE token_hash = ANY(?::text[])"
);

set_sql!(
    /// A batch's responses in one statement.
    InsertResponses,
    diesel::sql_types::Integer,
    "INSERT INTO responses (id, unit_id, procedure_id, form_code, form_version, channel, \
     respondent_type, language, issued_at, opened_at, submitted_at, provenance, answers) \
     SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::int8[], ?::text[], \
     ?::text[], ?::text[], ?::timestamp[], ?::timestamp[], ?::timestamp[], ?::text[], ?::text[])"
);

set_sql!(
    /// Stores the overall rating of each dossier not yet rated; returns the dossiers rated
    /// with their unit, completion and due times.
    RateDossiers,
    (
        diesel::sql_types::Text,
        diesel::sql_types::Text,
        diesel::sql_types::Timestamp,
        diesel::sql_types::Nullable<diesel::sql_types::Timestamp>
    ),
    "UPDATE transactions AS t SET rating = v.rating \
     FROM unnest(?::text[], ?::int8[]) AS v(id, rating) \
     WHERE t.id = v.id AND t.rating IS NULL \
     RETURNING t.id, t.unit_id, t.completed_at, t.due_at"
);

/// What [`store_one`] does for each submission, for a whole batch in a handful of statements
/// (PostgreSQL only); returns each submission's outcome, in order, and counts the stored ones.
/// A link submitted twice in one batch is spent by the first submission, and the others are
/// refused as [`store_one`] would refuse them one after the other.
fn store_many(
    conn: &mut DbConn,
    jobs: &[&SubmitJob],
    delta: &mut RollupDelta,
    utc_offset: FixedOffset,
) -> QueryResult<Vec<SubmitOutcome>> {
    use std::collections::{HashMap, HashSet};
    if jobs.is_empty() {
        return Ok(Vec::new());
    }
    let DbConn::Postgres(pg) = conn else {
        return Err(diesel::result::Error::QueryBuilderError(
            "the set-based writer is for PostgreSQL".into(),
        ));
    };
    let pg: &mut diesel::PgConnection = pg;
    // Each token once, by its first submission, in one (sorted) order.
    let mut first_of: HashMap<&str, usize> = HashMap::new();
    for (i, job) in jobs.iter().enumerate() {
        if let Some(hash) = &job.submission.token_hash {
            first_of.entry(hash.as_str()).or_insert(i);
        }
    }
    let mut spending: Vec<(&str, NaiveDateTime)> = first_of
        .iter()
        .map(|(hash, i)| (*hash, jobs[*i].submission.response.submitted_at))
        .collect();
    spending.sort_unstable();
    let spent: HashSet<String> = if spending.is_empty() {
        HashSet::new()
    } else {
        SetStatement::<SpendTokens>::new(vec![
            Column::Text(spending.iter().map(|(h, _)| *h).collect()),
            Column::Time(spending.iter().map(|(_, at)| *at).collect()),
        ])
        .load::<String>(pg)?
        .into_iter()
        .collect()
    };
    let refused: Vec<&str> = spending
        .iter()
        .map(|(h, _)| *h)
        .filter(|h| !spent.contains(*h))
        .collect();
    // Refused: an unspent token has expired; a spent or unknown one is used.
    let unspent: HashMap<String, bool> = if refused.is_empty() {
        HashMap::new()
    } else {
        SetStatement::<TokenStates>::new(vec![Column::Text(refused)])
            .load::<(String, bool)>(pg)?
            .into_iter()
            .collect()
    };
    let outcomes: Vec<SubmitOutcome> = jobs
        .iter()
        .enumerate()
        .map(|(i, job)| match &job.submission.token_hash {
            None => SubmitOutcome::Stored,
            Some(hash) if spent.contains(hash) => {
                if first_of.get(hash.as_str()) == Some(&i) {
                    SubmitOutcome::Stored
                } else {
                    SubmitOutcome::AlreadyUsed
                }
            }
            Some(hash) if unspent.get(hash) == Some(&true) => SubmitOutcome::Expired,
            Some(_) => SubmitOutcome::AlreadyUsed,
        })
        .collect();
    let stored: Vec<&SubmitJob> = jobs
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| **o == SubmitOutcome::Stored)
        .map(|(j, _)| *j)
        .collect();
    if stored.is_empty() {
        return Ok(outcomes);
    }
    let rs: Vec<&NewResponse> = stored.iter().map(|j| &j.submission.response).collect();
    SetStatement::<InsertResponses>::new(vec![
        Column::Text(rs.iter().map(|r| r.id.as_str()).collect()),
        Column::Text(rs.iter().map(|r| r.unit_id.as_str()).collect()),
        Column::NullText(rs.iter().map(|r| r.procedure_id.as_deref()).collect()),
        Column::Text(rs.iter().map(|r| r.form_code.as_str()).collect()),
        Column::Int(rs.iter().map(|r| r.form_version).collect()),
        Column::Text(rs.iter().map(|r| r.channel.as_str()).collect()),
        Column::NullText(rs.iter().map(|r| r.respondent_type.as_deref()).collect()),
        Column::Text(rs.iter().map(|r| r.language.as_str()).collect()),
        Column::NullTime(rs.iter().map(|r| r.issued_at).collect()),
        Column::NullTime(rs.iter().map(|r| r.opened_at).collect()),
        Column::Time(rs.iter().map(|r| r.submitted_at).collect()),
        Column::NullText(rs.iter().map(|r| r.provenance.as_deref()).collect()),
        Column::Text(stored.iter().map(|j| j.answers.as_str()).collect()),
    ])
    .execute(pg)?;
    let screened: Vec<_> = stored
        .iter()
        .filter_map(|j| {
            let s = &j.submission;
            s.screening
                .as_ref()
                .map(|screening| (&s.response, s.response.form_code.as_str(), screening))
        })
        .collect();
    crate::integrity::store_many(conn, &screened)?;
    let DbConn::Postgres(pg) = conn else {
        return Err(diesel::result::Error::QueryBuilderError(
            "the set-based writer is for PostgreSQL".into(),
        ));
    };
    let pg: &mut diesel::PgConnection = pg;
    // Each dossier rated once (by its first answer), in one (sorted) order.
    let mut ratings: Vec<(&str, i64)> = stored
        .iter()
        .filter_map(|j| {
            let (id, rating) = j.submission.dossier_rating.as_ref()?;
            Some((id.as_str(), *rating))
        })
        .collect();
    ratings.sort_by(|a, b| a.0.cmp(b.0));
    ratings.dedup_by(|later, earlier| later.0 == earlier.0);
    let mut rated: Vec<RatedDossier> = Vec::new();
    if !ratings.is_empty() {
        let rows: Vec<(String, String, NaiveDateTime, Option<NaiveDateTime>)> =
            SetStatement::<RateDossiers>::new(vec![
                Column::Text(ratings.iter().map(|(id, _)| *id).collect()),
                Column::Int(ratings.iter().map(|(_, r)| *r).collect()),
            ])
            .load(pg)?;
        let rating_of: HashMap<&str, i64> = ratings.iter().copied().collect();
        for (id, unit_id, completed_at, due_at) in rows {
            let rating = rating_of.get(id.as_str()).copied().unwrap_or_default();
            rated.push(RatedDossier {
                unit_id,
                completed_at,
                late: due_at.is_some_and(|due| completed_at > due),
                unsatisfied: rating == UNSATISFIED_RATING,
            });
        }
    }
    // An answer ends all mail about its dossier and erases the citizen's address.
    let mut answered: Vec<&str> = stored
        .iter()
        .filter_map(|j| j.submission.transaction_id.as_deref())
        .collect();
    answered.sort_unstable();
    answered.dedup();
    crate::mail::outbox::stop_all_many(conn, &answered)?;
    for job in &stored {
        if job.submission.counts_now() {
            delta.add(&job.submission, utc_offset);
        }
    }
    for rated in rated {
        delta.add_dossier(
            &rated.unit_id,
            rated.completed_at,
            utc_offset,
            rated.change(),
        );
    }
    Ok(outcomes)
}

enum Message {
    Job(Job),
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

/// Replaces the writer's connection when the server closed it (a restart, a fail-over): the
/// writer keeps one connection for its whole life, so without this every later batch would
/// fail. Checked before every batch and after a failed one.
fn replace_if_dead(pool: &DbPool, conn: &mut DbConn) {
    if conn.is_alive() {
        return;
    }
    match pool.get() {
        Ok(fresh) => {
            tracing::warn!("the writer's database connection was closed; using a new one");
            *conn = fresh;
        }
        Err(e) => tracing::error!(error = %e, "the writer cannot reconnect to the database"),
    }
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
                let mut batch: Vec<Job> = Vec::with_capacity(max_batch);
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
                    // One round trip per batch (not per answer): a batch is never lost to
                    // a connection the server closed since the last one.
                    replace_if_dead(&pool, &mut conn);
                    let committed = commit_batch(&mut conn, &mut batch, utc_offset).map_err(|e| {
                        tracing::error!(error = %e, size, "batch commit failed");
                        e.to_string()
                    });
                    if committed.is_err() {
                        replace_if_dead(&pool, &mut conn);
                    }
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

    async fn enqueue(&self, job: Job) -> anyhow::Result<()> {
        self.queue
            .send(Message::Job(job))
            .await
            .map_err(|_| anyhow::anyhow!("the response writer has stopped"))
    }

    /// Queues a submission and waits until it is committed (or refused).
    pub async fn submit(&self, submission: Submission) -> anyhow::Result<SubmitOutcome> {
        let (reply, answer) = oneshot::channel();
        let answers = stored::encode(&submission.answers);
        self.enqueue(Job::Submit(Box::new(SubmitJob {
            submission,
            answers,
            outcome: None,
            reply,
        })))
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
        self.enqueue(Job::Other(Box::new(ClosureJob {
            work: Some(work),
            result: None,
            reply,
        })))
        .await?;
        answer.await.map_err(|_| {
            AppError::Internal(anyhow::anyhow!("the response writer dropped a write"))
        })?
    }

    /// Registers a checked new dossier in the next group commit, with who asked for its link
    /// and an API key's due "last used" time; set-based with the batch's other registrations.
    /// The outer error means the batch did not commit; the inner one is the dossier's own
    /// (e.g. a unique violation when it was registered meanwhile: see [`NewDossier::settle`]).
    pub async fn register(
        &self,
        dossier: std::sync::Arc<NewDossier>,
        issuer: Option<Fingerprint>,
        key_use: Option<(String, NaiveDateTime)>,
    ) -> Result<QueryResult<()>, AppError> {
        let (reply, answer) = oneshot::channel();
        self.enqueue(Job::Register(Box::new(RegisterJob {
            dossier,
            issuer,
            key_use,
            result: None,
            reply,
        })))
        .await?;
        answer.await.map_err(|_| {
            AppError::Internal(anyhow::anyhow!(
                "the response writer dropped a registration"
            ))
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

/// Stores one submission whose link the caller already claimed (a book sticker, see
/// `counter::books`), inside a job of the group commit ([`ResponseWriter::run`]): the response,
/// its screening, the dossier's rating and the end of its mail, counted in `delta` as a
/// request's answer is.
pub fn store_claimed(
    conn: &mut DbConn,
    delta: &mut RollupDelta,
    submission: &Submission,
    utc_offset: FixedOffset,
) -> QueryResult<SubmitOutcome> {
    let answers = stored::encode(&submission.answers);
    let (outcome, rated) = store_one(conn, submission, &answers)?;
    count(delta, submission, outcome, rated, utc_offset);
    Ok(outcome)
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
