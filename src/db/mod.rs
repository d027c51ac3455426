//! Database access for both backends from one code base.
//!
//! The backend is chosen from the URL scheme by us, never by trial, so a mistyped URL is an error
//! rather than a new SQLite file. Code that touches the database is written once inside
//! [`db_run!`], which expands it for each concrete connection type: every diesel feature (upserts,
//! RETURNING) stays available without a lowest-common-denominator backend.

pub mod group_commit;
pub mod lock;
pub mod pg_manager;
pub mod replica;
pub mod retry;
pub mod schema;
pub mod statements;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool, PooledConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use pg_manager::PgManager;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// Where the data lives, parsed from `DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// Accepts `sqlite://relative/path.db`, `sqlite:///absolute/path.db`, `postgres://…` and
    /// `postgresql://…`; anything else is refused with a message that says what is accepted.
    pub fn parse(url: &str) -> anyhow::Result<Self> {
        let url = url.trim();
        if let Some(rest) = url.strip_prefix("sqlite://") {
            if rest.is_empty() {
                bail!("DATABASE_URL `{url}` names no file: use sqlite://data/sipas.db");
            }
            return Ok(Self::Sqlite(PathBuf::from(rest)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(without_loopback_tls(url)));
        }
        bail!(
            "DATABASE_URL `{url}` is not understood: it must start with sqlite:// \
             (e.g. sqlite://data/sipas.db) or postgres:// (e.g. postgres://127.0.0.1:5432/sipas)"
        )
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgresql",
        }
    }
}

/// Adds `sslmode=disable` to a PostgreSQL URL whose server is on this machine (a loopback
/// address or `localhost`) and that names no `sslmode` itself. libpq's default (`prefer`)
/// encrypts even a loopback connection, where the bytes never leave the kernel: it protects
/// nothing and cost a fifth of the submissions per second (BENCHMARKS.md, session 8). A URL
/// that sets `sslmode` (e.g. `require` for a server that accepts only TLS) is kept as it is,
/// and so is any other host.
fn without_loopback_tls(url: &str) -> String {
    let (before_query, query) = url.split_once('?').unwrap_or((url, ""));
    let names_sslmode = query
        .split('&')
        .any(|pair| pair.split('=').next() == Some("sslmode"));
    let authority = before_query
        .split_once("://")
        .map_or("", |(_, rest)| rest.split('/').next().unwrap_or(""));
    // user:password@host:port, or a bracketed IPv6 host.
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host_port.split(':').next().unwrap_or(""),
    };
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    // Several hosts (`h1,h2`) or a host given in the query: left alone.
    let host_in_query = query
        .split('&')
        .any(|pair| pair.split('=').next() == Some("host"));
    if names_sslmode || !loopback || host_in_query {
        return url.to_string();
    }
    let separator = if query.is_empty() {
        if url.ends_with('?') { "" } else { "?" }
    } else {
        "&"
    };
    format!("{url}{separator}sslmode=disable")
}

/// Per-connection SQLite settings: referential integrity, waiting instead of failing on a
/// busy database, fsync on every commit so an acknowledged write survives a power cut, and
/// savepoint journals in memory (the writer opens one per submission; on disk each cost a
/// write to a temporary file, and they hold nothing that must survive a crash).
#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        conn.batch_execute(
            "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 15000; PRAGMA synchronous = FULL; \
             PRAGMA temp_store = MEMORY;",
        )
        .map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A connection pool of either backend.
#[derive(Clone)]
pub enum DbPool {
    Sqlite(Pool<ConnectionManager<SqliteConnection>>),
    Postgres(Pool<PgManager>),
}

/// A pooled connection of either backend; use it through [`db_run!`].
pub enum DbConn {
    Sqlite(PooledConnection<ConnectionManager<SqliteConnection>>),
    Postgres(PooledConnection<PgManager>),
}

/// Runs a block once per backend with `$conn` bound to the concrete diesel connection.
#[macro_export]
macro_rules! db_run {
    ($conn:ident: $body:block) => {
        match $conn {
            $crate::db::DbConn::Sqlite($conn) => {
                let $conn: &mut ::diesel::SqliteConnection = &mut *$conn;
                $body
            }
            $crate::db::DbConn::Postgres($conn) => {
                let $conn: &mut ::diesel::PgConnection = &mut *$conn;
                $body
            }
        }
    };
}

impl DbPool {
    /// Opens the pool; for SQLite creates the file's folder and switches the file to WAL once.
    pub fn connect(url: &DatabaseUrl, max_size: u32) -> anyhow::Result<Self> {
        match url {
            DatabaseUrl::Sqlite(path) => {
                create_parent_dir(path)?;
                let manager = ConnectionManager::<SqliteConnection>::new(path.to_string_lossy());
                let pool = Pool::builder()
                    .max_size(max_size.max(2))
                    .connection_timeout(Duration::from_secs(30))
                    // A connection to a local file cannot go stale: the default check ran a
                    // `SELECT 1` on every checkout, i.e. on every request.
                    .test_on_check_out(false)
                    .connection_customizer(Box::new(SqlitePragmas))
                    .build(manager)
                    .with_context(|| format!("cannot open SQLite database {}", path.display()))?;
                let mut conn = pool.get()?;
                conn.batch_execute("PRAGMA journal_mode = WAL;")
                    .context("cannot switch SQLite to WAL mode")?;
                Ok(Self::Sqlite(pool))
            }
            DatabaseUrl::Postgres(url) => {
                let pool = Pool::builder()
                    .max_size(max_size.max(2))
                    .connection_timeout(Duration::from_secs(30))
                    .build(PgManager::new(url.as_str()))
                    .map_err(|e| anyhow!("cannot connect to PostgreSQL: {e}"))?;
                Ok(Self::Postgres(pool))
            }
        }
    }

    /// A SQLite connection if one is idle right now, without waiting or connecting; `None` on
    /// PostgreSQL. For reads cheap enough to run on a request's own thread.
    pub fn try_get_sqlite(&self) -> Option<DbConn> {
        match self {
            Self::Sqlite(pool) => pool.try_get().map(DbConn::Sqlite),
            Self::Postgres(_) => None,
        }
    }

    pub fn get(&self) -> anyhow::Result<DbConn> {
        Ok(match self {
            Self::Sqlite(pool) => DbConn::Sqlite(pool.get().context("database pool exhausted")?),
            Self::Postgres(pool) => {
                DbConn::Postgres(pool.get().context("database pool exhausted")?)
            }
        })
    }

    pub fn backend_name(&self) -> &'static str {
        match self {
            Self::Sqlite(_) => "sqlite",
            Self::Postgres(_) => "postgresql",
        }
    }
}

fn create_parent_dir(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create folder {}", dir.display()))?;
    }
    Ok(())
}

/// Applies every pending migration of the connection's backend; returns how many ran. On
/// PostgreSQL under an advisory lock (see [`with_migration_lock`]).
pub fn run_migrations(conn: &mut DbConn) -> anyhow::Result<usize> {
    let applied = with_migration_lock(conn, |conn| match conn {
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Postgres(c) => c
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    })?
    .map_err(|e| anyhow!("migration failed: {e}"))?;
    Ok(applied)
}

/// Reverts every applied migration (used by `sipas migrate --down-all` and CI's up→down→up check).
pub fn revert_all_migrations(conn: &mut DbConn) -> anyhow::Result<usize> {
    let reverted = with_migration_lock(conn, |conn| match conn {
        DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|v| v.len()),
        DbConn::Postgres(c) => c
            .revert_all_migrations(POSTGRES_MIGRATIONS)
            .map(|v| v.len()),
    })?
    .map_err(|e| anyhow!("reverting migrations failed: {e}"))?;
    Ok(reverted)
}

/// Runs `work` holding a PostgreSQL session advisory lock (per schema) on `conn`, so that a
/// `sipas migrate` and instances starting on the same database never migrate at once (two
/// `CREATE TABLE`s of one migration fail on the catalogue's unique keys). The lock is released
/// whatever `work` returns. SQLite: one process per database, nothing to take.
fn with_migration_lock<T>(
    conn: &mut DbConn,
    work: impl FnOnce(&mut DbConn) -> T,
) -> anyhow::Result<T> {
    const KEY: &str = "hashtextextended('sipas-migrations:' || coalesce(current_schema(), ''), 0)";
    if let DbConn::Postgres(c) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_lock({KEY})"))
            .execute(&mut ***c)
            .context("cannot take the migration lock")?;
    }
    let result = work(conn);
    if let DbConn::Postgres(c) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_unlock({KEY})"))
            .execute(&mut ***c)
            .context("cannot release the migration lock")?;
    }
    Ok(result)
}

impl DbConn {
    /// Runs `work` in one transaction that takes the write lock up front (SQLite `BEGIN
    /// IMMEDIATE`), so read-then-write sequences never fail on a lock upgrade. Nested calls become
    /// savepoints. Domain code passes the same `&mut DbConn` on, so audit events join the change
    /// they describe.
    pub fn write_transaction<T, E>(
        &mut self,
        work: impl FnOnce(&mut DbConn) -> Result<T, E>,
    ) -> Result<T, E>
    where
        E: From<diesel::result::Error>,
    {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        match self {
            DbConn::Sqlite(c) => {
                let c: &mut SqliteConnection = c;
                let depth = AnsiTransactionManager::transaction_manager_status_mut(c)
                    .transaction_depth()
                    .map_err(E::from)?;
                if depth.is_none() {
                    AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
                } else {
                    AnsiTransactionManager::begin_transaction(c)?;
                }
            }
            DbConn::Postgres(c) => AnsiTransactionManager::begin_transaction(&mut ***c)?,
        }
        let result = work(self);
        let ended = match (&result, &mut *self) {
            (Ok(_), DbConn::Sqlite(c)) => AnsiTransactionManager::commit_transaction(&mut **c),
            (Ok(_), DbConn::Postgres(c)) => AnsiTransactionManager::commit_transaction(&mut ***c),
            (Err(_), DbConn::Sqlite(c)) => AnsiTransactionManager::rollback_transaction(&mut **c),
            (Err(_), DbConn::Postgres(c)) => {
                AnsiTransactionManager::rollback_transaction(&mut ***c)
            }
        };
        // E.g. committed audit events go to the head file only now (see `crate::audit`).
        if !self.in_transaction()
            && let Some(hooks) = self.extensions().remove::<AfterTransaction>()
        {
            for hook in hooks.0 {
                hook(self);
            }
        }
        match result {
            Ok(value) => ended.map(|_| value).map_err(E::from),
            Err(e) => Err(e),
        }
    }
}

/// Work left for when the outermost transaction on a connection has ended, committed or not.
/// The database layer knows nothing above it: the audit log registers its head-file append here.
#[derive(Default)]
struct AfterTransaction(Vec<fn(&mut DbConn)>);

impl DbConn {
    /// Per-connection state that lives as long as the pooled connection (caches, pending work).
    pub fn extensions(&mut self) -> &mut diesel::r2d2::Extensions {
        match self {
            DbConn::Sqlite(c) => PooledConnection::extensions_mut(c),
            DbConn::Postgres(c) => PooledConnection::extensions_mut(c),
        }
    }

    /// Whether the connection still answers (one round trip on PostgreSQL).
    pub fn is_alive(&mut self) -> bool {
        match self {
            DbConn::Sqlite(c) => c.batch_execute("SELECT 1").is_ok(),
            DbConn::Postgres(c) => c.batch_execute("SELECT 1").is_ok(),
        }
    }

    /// Whether a transaction is open on this connection.
    pub fn in_transaction(&mut self) -> bool {
        use diesel::connection::{AnsiTransactionManager, TransactionManager};
        let depth = match self {
            DbConn::Sqlite(c) => {
                AnsiTransactionManager::transaction_manager_status_mut(&mut **c).transaction_depth()
            }
            DbConn::Postgres(c) => {
                AnsiTransactionManager::transaction_manager_status_mut(&mut ***c)
                    .transaction_depth()
            }
        };
        !matches!(depth, Ok(None))
    }

    /// Runs `hook` once the outermost transaction now open ends (once, however often asked).
    pub fn after_transaction(&mut self, hook: fn(&mut DbConn)) {
        let extensions = self.extensions();
        match extensions.get_mut::<AfterTransaction>() {
            Some(hooks) if hooks.0.contains(&hook) => {}
            Some(hooks) => hooks.0.push(hook),
            None => {
                extensions.insert(AfterTransaction(vec![hook]));
            }
        }
    }
}

/// Cheap liveness probe for `/healthz`.
pub fn ping(conn: &mut DbConn) -> QueryResult<()> {
    db_run!(conn: { diesel::sql_query("SELECT 1").execute(conn).map(|_| ()) })
}

/// Current time as stored: naive UTC, truncated to microseconds (PostgreSQL's precision) so a
/// value reads back equal on both backends.
pub fn now() -> chrono::NaiveDateTime {
    use chrono::{SubsecRound, Utc};
    Utc::now().naive_utc().trunc_subsecs(6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_go_without_tls_unless_the_url_says_otherwise() {
        let pg = |u: &str| match DatabaseUrl::parse(u).unwrap() {
            DatabaseUrl::Postgres(url) => url,
            DatabaseUrl::Sqlite(_) => unreachable!(),
        };
        assert_eq!(
            pg("postgres://127.0.0.1:5432/test"),
            "postgres://127.0.0.1:5432/test?sslmode=disable"
        );
        assert_eq!(
            pg("postgresql://sipas:s3cret@localhost/sipas?application_name=a"),
            "postgresql://sipas:s3cret@localhost/sipas?application_name=a&sslmode=disable"
        );
        assert_eq!(
            pg("postgres://[::1]:5433/db"),
            "postgres://[::1]:5433/db?sslmode=disable"
        );
        for kept in [
            "postgres://127.0.0.1:5432/test?sslmode=require",
            "postgres://localhost/db?connect_timeout=5&sslmode=verify-full",
            "postgres://db.example.vn:5432/sipas",
            "postgres://10.0.0.5/sipas",
            "postgres://localhost.example.vn/sipas",
            "postgres:///sipas?host=/var/run/postgresql",
            "postgres://127.0.0.1,10.0.0.6/sipas",
        ] {
            assert_eq!(pg(kept), kept);
        }
    }

    /// `.cargo/config.toml` builds SQLite with the query planner stability guarantee; without it
    /// statements with a bound LIMIT are parsed again on every run (see that file).
    #[test]
    fn sqlite_has_a_stable_query_planner() {
        use diesel::Connection;
        #[derive(QueryableByName)]
        struct CompileOption {
            #[diesel(sql_type = diesel::sql_types::Text)]
            compile_options: String,
        }
        let mut conn = SqliteConnection::establish(":memory:").unwrap();
        let options: Vec<CompileOption> = diesel::sql_query("PRAGMA compile_options")
            .load(&mut conn)
            .unwrap();
        assert!(
            options.iter().any(|o| o.compile_options == "ENABLE_QPSG"),
            "SQLite was built without SQLITE_ENABLE_QPSG"
        );
    }

    #[test]
    fn parses_supported_schemes() {
        assert_eq!(
            DatabaseUrl::parse("sqlite://data/x.db").unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("data/x.db"))
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///tmp/x.db").unwrap(),
            DatabaseUrl::Sqlite(PathBuf::from("/tmp/x.db"))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://localhost/test").unwrap(),
            DatabaseUrl::Postgres(_)
        ));
    }

    #[test]
    fn refuses_unknown_schemes_instead_of_creating_files() {
        for bad in [
            "data/sipas.db",
            "mysql://x/y",
            "sqlite://",
            "postgre://x",
            "",
        ] {
            let err = DatabaseUrl::parse(bad).unwrap_err().to_string();
            assert!(err.contains("DATABASE_URL"), "{bad}: {err}");
        }
    }
}
