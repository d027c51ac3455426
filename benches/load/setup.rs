//! Everything around a load run that is not load: a fresh database, the data a scenario needs
//! (registered outside the timed window), the server as a child process, and its memory.

use std::io::Read as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use diesel::Connection as _;
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use sipas::config::Settings;
use sipas::db::schema::{responses, survey_tokens};
use sipas::db_run;
use sipas::survey::transaction::TransactionRequest;

/// Fixed so that tokens registered by this tool and by the server are the same HMACs.
pub const SECRET: &str = "load-tool-secret-load-tool-secret-0123";

/// A database that exists for one run and is removed afterwards (also when the run fails).
pub enum FreshDatabase {
    Sqlite {
        url: String,
        _dir: tempfile::TempDir,
    },
    Postgres {
        url: String,
        admin_url: String,
        schema: String,
    },
}

impl FreshDatabase {
    /// `None`: a new SQLite file in a temp folder; `Some(postgres://…)`: a new schema there.
    pub fn create(postgres: Option<&str>) -> anyhow::Result<Self> {
        match postgres {
            None => {
                let dir = tempfile::tempdir().context("temp dir for the SQLite file")?;
                let url = format!("sqlite://{}", dir.path().join("load.db").display());
                Ok(Self::Sqlite { url, _dir: dir })
            }
            Some(admin_url) => {
                if !admin_url.starts_with("postgres://") && !admin_url.starts_with("postgresql://")
                {
                    bail!("--database takes a postgres://… URL (SQLite is the default)");
                }
                let schema = format!("load_{}", uuid::Uuid::new_v4().simple());
                let mut conn = diesel::PgConnection::establish(admin_url)
                    .with_context(|| format!("cannot connect to {admin_url}"))?;
                conn.batch_execute(&format!("CREATE SCHEMA {schema}"))?;
                let sep = if admin_url.contains('?') { '&' } else { '?' };
                let url = format!("{admin_url}{sep}options=-c%20search_path%3D{schema}");
                Ok(Self::Postgres {
                    url,
                    admin_url: admin_url.to_string(),
                    schema,
                })
            }
        }
    }

    pub fn url(&self) -> &str {
        match self {
            Self::Sqlite { url, .. } | Self::Postgres { url, .. } => url,
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgresql",
        }
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        if let Self::Postgres {
            admin_url, schema, ..
        } = self
            && let Ok(mut conn) = diesel::PgConnection::establish(admin_url)
        {
            let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
        }
    }
}

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Settings of the in-process preparation; the server gets the same through its environment.
fn settings(database_url: &str) -> Settings {
    Settings {
        database_url: database_url.to_string(),
        forms_dir: manifest_dir().join("survey-forms"),
        secret: Some(SECRET.to_string()),
        pool_size: 2,
        ..Settings::default()
    }
}

/// What the scenarios need from the database before the server starts.
pub struct Prepared {
    /// The demo province's counter key (valid for every demo unit).
    pub api_key: String,
    /// Unspent survey tokens of the full SIPAS form.
    pub tokens: Vec<String>,
}

/// Migrates, loads the demo province and registers `tokens` SIPAS surveys, in this process and
/// before the server starts, so neither the timed window nor the server's memory sees it.
/// Registration goes through the library's own `register`, the code the API runs.
pub fn prepare(database_url: &str, tokens: usize) -> anyhow::Result<Prepared> {
    let settings = settings(database_url);
    let (pool, forms, secret) = sipas::prepare(&settings)?;
    let mut conn = pool.get()?;
    let info = sipas::demo::load(&mut conn, &secret)?;
    let province = sipas::units::find_by_code(&mut conn, sipas::demo::PROVINCE)?
        .context("the demo province is missing")?;
    let policy = sipas::policies::Policies::from_settings(&settings)
        .expect("policies")
        .issue;
    let received_at = sipas::db::now() - chrono::Duration::days(3);
    let completed_at = sipas::db::now() - chrono::Duration::hours(1);
    let mut issued = Vec::with_capacity(tokens);
    let started = Instant::now();
    // Chunks keep each transaction (and, on PostgreSQL, its lock list) moderate.
    for chunk_start in (0..tokens).step_by(5_000) {
        let chunk_end = (chunk_start + 5_000).min(tokens);
        conn.write_transaction(|conn| -> anyhow::Result<()> {
            for i in chunk_start..chunk_end {
                let request = TransactionRequest {
                    unit: "STP".into(),
                    dossier_code: format!("LOAD-PREP-{i:07}"),
                    procedure: "LLTP-01".into(),
                    received_at,
                    due_at: None,
                    completed_at,
                    email: None,
                    form: Some("sipas".into()),
                    phone: None,
                    counter: None,
                };
                let survey = sipas::survey::registration::register_on_connection(
                    conn,
                    &forms,
                    &secret,
                    &province.id,
                    &policy,
                    &request,
                )
                .map_err(|e| anyhow!("registering a survey: {}", e.user_message().en))?;
                issued.push(survey.token);
            }
            Ok(())
        })?;
    }
    if tokens > 0 {
        eprintln!(
            "prepared {tokens} SIPAS surveys in {:.1} s (outside the timed window)",
            started.elapsed().as_secs_f64()
        );
    }
    Ok(Prepared {
        api_key: info.province_key,
        tokens: issued,
    })
}

/// Stored responses and spent tokens: after a submit run both must equal the 200 answers.
pub fn stored_counts(database_url: &str) -> anyhow::Result<(i64, i64)> {
    let url = sipas::db::DatabaseUrl::parse(database_url)?;
    let pool = sipas::db::DbPool::connect(&url, 2)?;
    let conn = &mut pool.get()?;
    let counts = db_run!(conn: {
        let stored: i64 = responses::table.count().get_result(conn)?;
        let spent: i64 = survey_tokens::table
            .filter(survey_tokens::spent_at.is_not_null())
            .count()
            .get_result(conn)?;
        QueryResult::Ok((stored, spent))
    })?;
    Ok(counts)
}

/// Where the release binary is: cargo names it for benchmarks (`CARGO_BIN_EXE_sipas`, built by
/// `cargo bench` with the bench profile, i.e. release settings); otherwise the release build
/// under the target folder. `SIPAS_LOAD_SERVER=path` runs another build instead (an older
/// release, to compare two versions on the same machine in one sitting).
pub fn server_binary() -> anyhow::Result<PathBuf> {
    if let Some(path) = std::env::var_os("SIPAS_LOAD_SERVER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    if let Some(path) = option_env!("CARGO_BIN_EXE_sipas") {
        return Ok(PathBuf::from(path));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest_dir().join("target"));
    let path = target.join("release").join("sipas");
    if !path.exists() {
        bail!(
            "{} does not exist: run `cargo build --release` first",
            path.display()
        );
    }
    Ok(path)
}

/// How the server is started for a run.
pub struct ServerOptions<'a> {
    pub database_url: &'a str,
    pub max_batch: Option<usize>,
    pub log_level: &'a str,
}

/// The `sipas serve` child; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: PathBuf,
    _scratch: tempfile::TempDir,
}

impl Server {
    pub async fn start(options: &ServerOptions<'_>) -> anyhow::Result<Self> {
        let binary = server_binary()?;
        let scratch = tempfile::tempdir().context("temp dir for the server")?;
        let addr = free_local_addr()?;
        let log = scratch.path().join("server.log");
        let mut command = Command::new(&binary);
        command
            .args(["serve", "--bind", &addr.to_string()])
            .current_dir(scratch.path())
            .env_remove("SIPAS_CONFIG")
            .env("DATABASE_URL", options.database_url)
            .env("SIPAS_SECRET", SECRET)
            .env("SIPAS_FORMS_DIR", manifest_dir().join("survey-forms"))
            .env(
                "SIPAS_SMTP_URL",
                format!("file://{}", scratch.path().join("mail").display()),
            )
            // The per-address limit protects a real service; the load comes from one address.
            .env("SIPAS_SURVEY_RATE_PER_MINUTE", "1000000000")
            // The load comes from this machine, as the counter did: the default hold rules would
            // keep every answer out of the rollups and measure a cheaper path than real traffic.
            .env("SIPAS_HOLD_RULES", "none")
            .env("RUST_LOG", options.log_level)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        if let Some(max_batch) = options.max_batch {
            command.env("SIPAS_MAX_BATCH", max_batch.to_string());
        }
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {}", binary.display()))?;
        let mut server = Self {
            child,
            addr,
            log,
            _scratch: scratch,
        };
        server.wait_healthy().await?;
        Ok(server)
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "the server exited ({status}) before answering:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(200) = super::client::get_status(self.addr, "/healthz").await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("the server did not answer /healthz:\n{}", self.log_tail())
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the server's log, for error messages.
    pub fn log_tail(&self) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago (the server binds it right after).
fn free_local_addr() -> anyhow::Result<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

/// Resident memory from `/proc/<pid>/status`, in kB: (VmRSS, VmHWM).
pub fn memory_kb(pid: u32) -> Option<(u64, u64)> {
    let status =
        std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}
