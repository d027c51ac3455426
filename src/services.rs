//! What every use case needs besides its input: the databases, the survey forms, the server
//! secret, the policies and the group commit. Built once at start-up; cheap to clone. Use
//! cases (`survey::submission`, `survey::registration`, …) take it, whatever calls them: an
//! HTTP handler, the command line or a test.

use std::sync::Arc;

use crate::db::replica::ReadPool;
use crate::db::{DbConn, DbPool};
use crate::error::AppError;
use crate::forms::FormRegistry;
use crate::i18n::Msg;
use crate::policies::Policies;
use crate::secret::ServerSecret;
use crate::survey::writer::{ResponseWriter, WriterThread};

#[derive(Clone)]
pub struct Services {
    pub pool: DbPool,
    /// Heavy reads (reports, rankings, exports): the replica when configured, else `pool`.
    pub reads: ReadPool,
    pub forms: Arc<FormRegistry>,
    /// Built once from the settings at start-up (see [`crate::policies`]).
    pub policies: Arc<Policies>,
    pub secret: ServerSecret,
    /// The group commit every durable answer and registration goes through.
    pub writer: ResponseWriter,
}

/// No pooled connection came in time: the service is overloaded.
fn overloaded(cause: impl std::fmt::Display) -> AppError {
    AppError::Unavailable(Msg::new(
        "Hệ thống đang quá tải, vui lòng thử lại sau ít phút.",
        "The service is overloaded; please try again in a few minutes.",
    ))
    .with_cause(cause)
}

async fn blocking<T, F>(work: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, AppError> + Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("blocking task failed: {e}")))?
}

impl Services {
    /// Starts the group commit (its writer thread, on a connection of `pool`) and gathers the
    /// services around it; the server and the command line build theirs here. Stop the
    /// thread with [`WriterThread::shutdown`] once every clone is dropped.
    pub fn start(
        pool: DbPool,
        reads: ReadPool,
        forms: Arc<FormRegistry>,
        policies: Arc<Policies>,
        secret: ServerSecret,
        max_batch: usize,
    ) -> anyhow::Result<(Self, WriterThread)> {
        let (writer, writer_thread) =
            ResponseWriter::start(pool.clone(), max_batch, policies.utc_offset)?;
        let services = Self {
            pool,
            reads,
            forms,
            policies,
            secret,
            writer,
        };
        Ok((services, writer_thread))
    }

    /// Runs blocking database work off the async workers.
    pub async fn with_conn<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        let pool = self.pool.clone();
        blocking(move || {
            let mut conn = pool.get().map_err(overloaded)?;
            work(&mut conn)
        })
        .await
    }

    /// Like [`Self::with_conn`] for heavy reads that may lag the primary by a moment (reports,
    /// rankings, exports): on the read replica when one is configured and answers.
    pub async fn with_read_conn<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        let reads = self.reads.clone();
        blocking(move || {
            let mut conn = reads.get().map_err(overloaded)?;
            work(&mut conn)
        })
        .await
    }

    /// Runs a read of a few rows by key (a survey token and what screening needs). On SQLite,
    /// with a connection idle, it runs right here on the caller's thread: such a read takes
    /// microseconds and in WAL mode never waits for the writer, while the trip to the blocking
    /// pool costs two thread switches, about a fifth of an answer's CPU under load. PostgreSQL
    /// reads (a network round trip) and SQLite reads with every connection busy go to the
    /// blocking pool as with [`Self::with_conn`].
    pub async fn with_quick_read<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        match self.pool.try_get_sqlite() {
            Some(mut conn) => work(&mut conn),
            None => self.with_conn(work).await,
        }
    }
}
