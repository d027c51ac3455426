//! The group commit of survey writes (see [`crate::db::group_commit`]): citizens' answers,
//! dossier registrations and any other small durable write share one transaction and one
//! fsync, and a citizen's "thank you" always means the answer is on disk.
//!
//! On PostgreSQL every statement is a round trip to the server, so a batch's answers and
//! registrations are written set-based: all tokens spent in one statement, all responses,
//! signals rows, ratings and mail stops in one statement each, every rollup cell once (see
//! [`RollupDelta::apply`]). Only when a statement of this optimistic path fails (a token spent
//! twice is not a failure: it is refused) is the batch written again one job per savepoint, so
//! that one bad job spoils nothing else. SQLite runs in-process, where a statement costs
//! microseconds: it keeps the per-job savepoints. Any other write joins as a closure
//! ([`ResponseWriter::run`]) in its own savepoint.

use chrono::{FixedOffset, NaiveDateTime};
use diesel::prelude::*;
use tokio::sync::oneshot;

use super::response::{Submission, SubmitOutcome};
use super::store::{count, store_many, store_one};
use super::stored;
use super::transaction::NewDossier;
use crate::db::group_commit::{Batch, CommitThread, GroupCommit};
use crate::db::retry::retry_transient;
use crate::db::{DbConn, DbPool};
use crate::error::AppError;
use crate::integrity::Fingerprint;
use crate::rollup::RollupDelta;

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

/// Any other write that shares the group commit, as a closure (a paper typing, a group answer,
/// a book sticker): see [`ResponseWriter::run`].
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
    Closure(Box<dyn BatchJob>),
}

impl Job {
    fn write(&mut self, conn: &mut DbConn, delta: &mut RollupDelta, utc_offset: FixedOffset) {
        match self {
            Job::Submit(job) => job.write(conn, delta, utc_offset),
            Job::Register(job) => job.write(conn, delta, utc_offset),
            Job::Closure(job) => job.write(conn, delta, utc_offset),
        }
    }

    fn reply(self, committed: Result<(), String>) {
        match self {
            Job::Submit(job) => job.reply(committed),
            Job::Register(job) => job.reply(committed),
            Job::Closure(job) => job.reply(committed),
        }
    }
}

/// A write queued for the group commit (opaque outside this module).
pub struct QueuedWrite(Job);

/// The thread of the survey group commit, joined at shutdown.
pub type WriterThread = CommitThread<QueuedWrite>;

/// One transaction's worth of survey writes.
struct SurveyBatch {
    jobs: Vec<Job>,
    /// Decides which local month a response counts for in the rollups.
    utc_offset: FixedOffset,
}

impl Batch for SurveyBatch {
    type Job = QueuedWrite;

    fn push(&mut self, job: QueuedWrite) {
        self.jobs.push(job.0);
    }

    fn len(&self) -> usize {
        self.jobs.len()
    }

    fn write(&mut self, conn: &mut DbConn) -> QueryResult<()> {
        let mut delta = RollupDelta::default();
        if matches!(conn, DbConn::Postgres(_)) {
            write_set_based(conn, &mut self.jobs, &mut delta, self.utc_offset);
            for job in self
                .jobs
                .iter_mut()
                .filter(|j| matches!(j, Job::Closure(_)))
            {
                job.write(conn, &mut delta, self.utc_offset);
            }
        } else {
            for job in self.jobs.iter_mut() {
                job.write(conn, &mut delta, self.utc_offset);
            }
        }
        delta.apply(conn)
    }

    /// A closure job ran once and cannot run again: only batches without one are retried.
    fn reset(&mut self) -> bool {
        if self.jobs.iter().any(|j| matches!(j, Job::Closure(_))) {
            return false;
        }
        for job in &mut self.jobs {
            match job {
                Job::Submit(job) => job.outcome = None,
                Job::Register(job) => job.result = None,
                Job::Closure(_) => {}
            }
        }
        true
    }

    fn reply(&mut self, committed: Result<(), String>) {
        for job in self.jobs.drain(..) {
            job.reply(committed.clone());
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
        let submissions: Vec<(&Submission, &str)> = batch
            .iter()
            .filter_map(|j| match j {
                Job::Submit(job) => Some((&job.submission, job.answers.as_str())),
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
                    Job::Closure(_) => {}
                }
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, size = batch.len(), "set-based batch failed, writing it job by job");
            for job in batch.iter_mut().filter(|j| !matches!(j, Job::Closure(_))) {
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

/// Handle to the survey group commit; cheap to clone into every request.
#[derive(Clone)]
pub struct ResponseWriter {
    commit: GroupCommit<QueuedWrite>,
}

impl ResponseWriter {
    /// Starts the writer on its own connection. `utc_offset` decides which local month a
    /// response counts for in the rollups.
    pub fn start(
        pool: DbPool,
        max_batch: usize,
        utc_offset: FixedOffset,
    ) -> anyhow::Result<(Self, WriterThread)> {
        let batch = SurveyBatch {
            jobs: Vec::with_capacity(max_batch),
            utc_offset,
        };
        let (commit, thread) = GroupCommit::start(
            "sipas-writer",
            pool,
            max_batch,
            batch,
            crate::metrics::writer_batch,
        )?;
        Ok((Self { commit }, thread))
    }

    /// Jobs waiting for the writer thread (for `/metrics`).
    pub fn queue_depth(&self) -> usize {
        self.commit.queue_depth()
    }

    async fn enqueue(&self, job: Job) -> anyhow::Result<()> {
        Ok(self.commit.enqueue(QueuedWrite(job)).await?)
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
        self.enqueue(Job::Closure(Box::new(ClosureJob {
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
