//! Group commit: many small durable writes share one transaction and one fsync.
//!
//! One fsync costs milliseconds, so committing each write alone caps throughput at a few
//! hundred per second. One thread drains a queue, writes everything waiting in one database
//! transaction, commits once, and only then answers each waiting request: an acknowledged
//! write is on disk. What a batch holds and how it is written is the caller's ([`Batch`]);
//! this module only batches, commits, retries and answers, so it knows nothing of sipas.

use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::QueryResult;
use tokio::sync::mpsc;

use super::retry::is_transient;
use super::{DbConn, DbPool};

/// What one transaction of the group commit writes: jobs gathered from the queue.
pub trait Batch: Send + 'static {
    /// One waiting write, with the way back to its request.
    type Job: Send + 'static;

    fn push(&mut self, job: Self::Job);

    fn len(&self) -> usize;

    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes every job inside the batch's one transaction. A job's own failure belongs to
    /// that job (kept for its reply, its writes rolled back to its savepoint); an `Err` here
    /// fails the whole batch.
    fn write(&mut self, conn: &mut DbConn) -> QueryResult<()>;

    /// Forgets what an attempt that did not commit wrote, so that the batch can be written
    /// again; `false` when it cannot be (a job that runs only once).
    fn reset(&mut self) -> bool;

    /// Answers every job with the batch's fate, and empties the batch.
    fn reply(&mut self, committed: Result<(), String>);
}

/// How many times a whole batch aborted by a deadlock or serialization failure is tried again
/// (statements already retry in their own savepoints; this covers the rest).
const BATCH_RETRIES: usize = 3;

enum Message<J> {
    Job(J),
    /// Sent by [`CommitThread::shutdown`]: everything queued before it is still written.
    Shutdown,
}

/// Handle to the group-commit thread; cheap to clone into every request.
pub struct GroupCommit<J> {
    queue: mpsc::Sender<Message<J>>,
}

impl<J> Clone for GroupCommit<J> {
    fn clone(&self) -> Self {
        Self {
            queue: self.queue.clone(),
        }
    }
}

/// Joins the group-commit thread (graceful shutdown).
pub struct CommitThread<J> {
    handle: JoinHandle<()>,
    queue: mpsc::Sender<Message<J>>,
}

impl<J: Send + 'static> CommitThread<J> {
    /// Writes everything already queued, then stops the thread.
    pub async fn shutdown(self) {
        let _ = self.queue.send(Message::Shutdown).await;
        let _ = tokio::task::spawn_blocking(move || self.handle.join()).await;
    }
}

/// The group commit stopped (the process is shutting down).
#[derive(Debug)]
pub struct Stopped;

impl std::fmt::Display for Stopped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the group commit has stopped")
    }
}

impl std::error::Error for Stopped {}

impl<J: Send + 'static> GroupCommit<J> {
    /// Starts the thread on its own connection, writing batches of at most `max_batch` jobs;
    /// `observe` hears each batch's size and commit time (for metrics).
    pub fn start<B>(
        name: &str,
        pool: DbPool,
        max_batch: usize,
        mut batch: B,
        observe: fn(usize, Duration),
    ) -> anyhow::Result<(Self, CommitThread<J>)>
    where
        B: Batch<Job = J>,
    {
        let (queue, mut receiver) = mpsc::channel::<Message<J>>(max_batch * 4);
        let mut conn = pool.get()?;
        let handle = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
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
                    let started = Instant::now();
                    // One round trip per batch (not per write): a batch is never lost to a
                    // connection the server closed since the last one.
                    replace_if_dead(&pool, &mut conn);
                    let committed = commit(&mut conn, &mut batch).map_err(|e| {
                        tracing::error!(error = %e, size, "batch commit failed");
                        e.to_string()
                    });
                    if committed.is_err() {
                        replace_if_dead(&pool, &mut conn);
                    }
                    observe(size, started.elapsed());
                    batch.reply(committed);
                }
            })?;
        Ok((
            Self {
                queue: queue.clone(),
            },
            CommitThread { handle, queue },
        ))
    }

    /// Queues a job; its reply comes through the job's own channel.
    pub async fn enqueue(&self, job: J) -> Result<(), Stopped> {
        self.queue
            .send(Message::Job(job))
            .await
            .map_err(|_| Stopped)
    }

    /// Jobs waiting for the thread (for `/metrics`).
    pub fn queue_depth(&self) -> usize {
        self.queue.max_capacity() - self.queue.capacity()
    }
}

/// Writes and commits one batch, trying it again when a concurrent writer aborted it.
fn commit<B: Batch>(conn: &mut DbConn, batch: &mut B) -> QueryResult<()> {
    let mut attempt = 0;
    loop {
        match conn.write_transaction(|conn| batch.write(conn)) {
            Err(e) if attempt < BATCH_RETRIES && is_transient(&e) && batch.reset() => {
                attempt += 1;
                tracing::warn!(error = %e, attempt, "batch aborted by a concurrent writer, trying again");
            }
            other => return other,
        }
    }
}

/// Replaces the thread's connection when the server closed it (a restart, a fail-over): the
/// thread keeps one connection for its whole life, so without this every later batch would
/// fail. Checked before every batch and after a failed one.
fn replace_if_dead(pool: &DbPool, conn: &mut DbConn) {
    if conn.is_alive() {
        return;
    }
    match pool.get() {
        Ok(fresh) => {
            tracing::warn!("the group commit's database connection was closed; using a new one");
            *conn = fresh;
        }
        Err(e) => tracing::error!(error = %e, "the group commit cannot reconnect to the database"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::prelude::*;
    use tokio::sync::oneshot;

    /// Writes numbers into a table; a negative number fails the whole batch.
    #[derive(Default)]
    struct Numbers {
        jobs: Vec<(i64, oneshot::Sender<Result<usize, String>>)>,
    }

    impl Batch for Numbers {
        type Job = (i64, oneshot::Sender<Result<usize, String>>);

        fn push(&mut self, job: Self::Job) {
            self.jobs.push(job);
        }

        fn len(&self) -> usize {
            self.jobs.len()
        }

        fn write(&mut self, conn: &mut DbConn) -> QueryResult<()> {
            for (n, _) in &self.jobs {
                if *n < 0 {
                    return Err(diesel::result::Error::RollbackTransaction);
                }
                let insert = diesel::sql_query(format!("INSERT INTO numbers (n) VALUES ({n})"));
                crate::db_run!(conn: { insert.execute(conn) })?;
            }
            Ok(())
        }

        fn reset(&mut self) -> bool {
            true
        }

        fn reply(&mut self, committed: Result<(), String>) {
            let size = self.jobs.len();
            for (_, reply) in self.jobs.drain(..) {
                let _ = reply.send(committed.clone().map(|()| size));
            }
        }
    }

    fn pool() -> (tempfile::TempDir, DbPool) {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = super::super::DatabaseUrl::Sqlite(dir.path().join("g.db"));
        let pool = DbPool::connect(&url, 2).expect("pool");
        let mut conn = pool.get().expect("connection");
        let create = diesel::sql_query("CREATE TABLE numbers (n INTEGER NOT NULL)");
        let conn = &mut conn;
        crate::db_run!(conn: { create.execute(conn) }).expect("table");
        (dir, pool)
    }

    fn count(pool: &DbPool) -> i64 {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = pool.get().expect("connection");
        let query = diesel::sql_query("SELECT count(*) AS n FROM numbers");
        let conn = &mut conn;
        crate::db_run!(conn: { query.get_result::<N>(conn) })
            .expect("count")
            .n
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_writes_share_one_commit_and_hear_its_fate() {
        let (_dir, pool) = pool();
        let (commit, thread) = GroupCommit::start(
            "test-commit",
            pool.clone(),
            64,
            Numbers::default(),
            |_, _| {},
        )
        .expect("started");
        let mut answers = Vec::new();
        for n in 0..50 {
            let (reply, answer) = oneshot::channel();
            commit.enqueue((n, reply)).await.expect("queued");
            answers.push(answer);
        }
        let mut sizes = Vec::new();
        for answer in answers {
            sizes.push(answer.await.expect("answered").expect("committed"));
        }
        assert_eq!(count(&pool), 50);
        // Queued while the thread was busy, later writes shared a batch.
        assert!(
            sizes.iter().any(|s| *s > 1),
            "no batch held more than one write: {sizes:?}"
        );

        // A failing batch answers every one of its jobs with the failure and stores nothing.
        let (reply, answer) = oneshot::channel();
        commit.enqueue((-1, reply)).await.expect("queued");
        assert!(answer.await.expect("answered").is_err());
        assert_eq!(count(&pool), 50);
        thread.shutdown().await;
        let (reply, _answer) = oneshot::channel();
        assert!(commit.enqueue((1, reply)).await.is_err(), "stopped");
    }
}
