//! `TestApp`: the real application on a fresh database for every test, on SQLite and on
//! PostgreSQL (one schema per test), listening on a random port.

pub mod staff;

use std::path::PathBuf;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use serde_json::{Value, json};
use sipas::Application;
use sipas::config::Settings;
use sipas::db::DbConn;
use sipas::web::AppState;

/// Which database a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL server for tests: `SIPAS_TEST_POSTGRES_URL`, by default the local one.
    /// Setting `SIPAS_TEST_POSTGRES=off` skips the PostgreSQL half (for machines without it).
    pub fn postgres() -> Option<Self> {
        if std::env::var("SIPAS_TEST_POSTGRES").is_ok_and(|v| v == "off") {
            eprintln!("SIPAS_TEST_POSTGRES=off: PostgreSQL variant skipped");
            return None;
        }
        let url = std::env::var("SIPAS_TEST_POSTGRES_URL")
            .unwrap_or_else(|_| "postgres://127.0.0.1:5432/test".into());
        Some(Self::Postgres(url))
    }
}

/// Keeps a test's database alive and removes it afterwards.
pub enum TestDb {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { admin_url: String, schema: String },
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let TestDb::Postgres { admin_url, schema } = self {
            let _ = std::fs::remove_dir_all(pg_audit_dir(schema));
            if let Ok(mut conn) = diesel::PgConnection::establish(admin_url) {
                let _ = conn.batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));
            }
        }
    }
}

/// Audit key and head file of a PostgreSQL test schema (on SQLite they sit beside the file).
fn pg_audit_dir(schema: &str) -> PathBuf {
    std::env::temp_dir().join(format!("sipas-audit-{schema}"))
}

/// The audit settings of `settings` as environment variables, for running the `sipas` binary
/// against a test database.
pub fn audit_env(settings: &Settings) -> Vec<(&'static str, PathBuf)> {
    let mut env = Vec::new();
    if let Some(path) = &settings.audit_key_file {
        env.push(("SIPAS_AUDIT_KEY_FILE", path.clone()));
    }
    if let Some(path) = &settings.audit_head_file {
        env.push(("SIPAS_AUDIT_HEAD_FILE", path.clone()));
    }
    env
}

pub struct TestApp {
    pub handle: actix_web::dev::ServerHandle,
    task: actix_web::rt::task::JoinHandle<std::io::Result<()>>,
    /// Where mail goes unless a test points `smtp_url` at an SMTP sink.
    pub mail_dir: tempfile::TempDir,
    pub base: String,
    pub client: reqwest::Client,
    /// The demo province's counter key (valid for every demo unit).
    pub api_key: String,
    pub state: AppState,
    pub database_url: String,
    _db: TestDb,
}

pub fn forms_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("survey-forms")
}

/// A fresh, empty database URL for `backend` (and what removes it later).
pub fn fresh_database(backend: &Backend) -> (String, TestDb) {
    match backend {
        Backend::Sqlite => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("test.db").display());
            (url, TestDb::Sqlite(dir))
        }
        Backend::Postgres(admin_url) => {
            let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
            let mut conn = diesel::PgConnection::establish(admin_url)
                .unwrap_or_else(|e| panic!("PostgreSQL at {admin_url} is needed for the PostgreSQL tests ({e}); set SIPAS_TEST_POSTGRES=off to skip them"));
            conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
                .expect("create schema");
            let sep = if admin_url.contains('?') { '&' } else { '?' };
            let url = format!("{admin_url}{sep}options=-c%20search_path%3D{schema}");
            (
                url,
                TestDb::Postgres {
                    admin_url: admin_url.clone(),
                    schema,
                },
            )
        }
    }
}

/// Settings as a test wants them: random port, shipped forms, fixed secret.
pub fn test_settings(database_url: &str) -> Settings {
    Settings {
        database_url: database_url.to_string(),
        bind: "127.0.0.1:0".into(),
        forms_dir: forms_dir(),
        secret: Some("test-secret-test-secret-test-secret!".into()),
        pool_size: 6,
        mail_poll_millis: 100,
        mail_retry_base_seconds: 0,
        // Test clients register and answer from one machine in the same second: exactly what
        // the default hold rules catch. Tests of the quarantine turn them on themselves.
        hold_rules: String::new(),
        // One audit key and head file per test database.
        audit_key_file: pg_schema(database_url).map(|s| pg_audit_dir(s).join("audit.key")),
        audit_head_file: pg_schema(database_url).map(|s| pg_audit_dir(s).join("audit-head.log")),
        ..Settings::default()
    }
}

fn pg_schema(database_url: &str) -> Option<&str> {
    database_url.split_once("search_path%3D").map(|(_, s)| s)
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Like [`spawn`](Self::spawn), with settings adjusted by `tweak`.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> Self {
        let (database_url, db) = fresh_database(&backend);
        Self::start(database_url, db, tweak).await
    }

    /// Stops this server (gracefully) and starts a new one on the same database: a restart.
    pub async fn restart(self, tweak: impl FnOnce(&mut Settings)) -> Self {
        let TestApp {
            handle,
            task,
            database_url,
            _db,
            ..
        } = self;
        handle.stop(true).await;
        let _ = task.await;
        Self::start(database_url, _db, tweak).await
    }

    async fn start(database_url: String, db: TestDb, tweak: impl FnOnce(&mut Settings)) -> Self {
        let mail_dir = tempfile::tempdir().expect("mail dir");
        let mut settings = test_settings(&database_url);
        settings.smtp_url = Some(format!("file://{}", mail_dir.path().display()));
        tweak(&mut settings);
        let app = Application::build(settings).expect("application builds");
        let state = app.state().clone();
        let base = state.public_base();
        let api_key = {
            let mut conn = state.pool.get().expect("connection");
            sipas::demo::load(&mut conn, &state.secret)
                .expect("demo loads")
                .province_key
        };
        let handle = app.handle();
        let task = actix_web::rt::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client");
        Self {
            handle,
            task,
            mail_dir,
            base,
            client,
            api_key,
            state,
            database_url,
            _db: db,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn conn(&self) -> DbConn {
        self.state.pool.get().expect("connection")
    }

    /// POSTs a transaction with the demo key.
    pub async fn post_transaction(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/transactions"))
            .bearer_auth(&self.api_key)
            .json(body)
            .send()
            .await
            .expect("request")
    }

    /// Registers a dossier and returns the API's answer (asserting 201).
    pub async fn issue_survey(&self, dossier: &str, form: Option<&str>) -> Value {
        let mut body = transaction_body(dossier);
        if let Some(form) = form {
            body["form"] = json!(form);
        }
        let response = self.post_transaction(&body).await;
        assert_eq!(response.status(), 201);
        response.json().await.expect("json")
    }

    /// Submits form fields to a survey URL.
    pub async fn submit(&self, survey_url: &str, fields: &[(String, String)]) -> reqwest::Response {
        self.client
            .post(survey_url)
            .form(fields)
            .send()
            .await
            .expect("request")
    }
}

/// A valid registration body for `dossier` at the Department of Justice.
pub fn transaction_body(dossier: &str) -> Value {
    json!({
        "unit": "STP",
        "dossier_code": dossier,
        "procedure": "LLTP-01",
        "received_at": "2026-01-05T08:00:00+07:00",
        "due_at": "2026-01-12T17:00:00+07:00",
        "completed_at": "2026-01-09T10:30:00+07:00",
    })
}

/// Complete, valid answers for a form: the middle-high level everywhere, first option otherwise.
pub fn full_answers(form: &sipas::forms::Form) -> Vec<(String, String)> {
    use sipas::forms::QuestionType;
    let mut fields = vec![("lang".to_string(), "vi".to_string())];
    for q in form.questions() {
        let value = match q.kind {
            QuestionType::Scale5 => "4".to_string(),
            QuestionType::Scale3 => "2".to_string(),
            QuestionType::Choice | QuestionType::Multi => q.options[0].code.clone(),
            QuestionType::Text => "Cán bộ nhiệt tình, cảm ơn.".to_string(),
        };
        fields.push((q.code.clone(), value));
    }
    fields
}

/// The one way a test runs on both databases: each named scenario once on SQLite and once on
/// PostgreSQL (skipped with `SIPAS_TEST_POSTGRES=off`).
///
/// - `on_both_databases!(a, b)`: `async fn a(app: TestApp)` on a fresh app;
/// - `on_both_databases!(a => tweak)`: the same with the settings adjusted by `fn tweak(&mut Settings)`;
/// - `on_both_databases!(backend: a, b)`: `async fn a(backend: Backend)`, for tests that start
///   their own app (or processes) rather than take a ready one.
#[macro_export]
macro_rules! on_both_databases {
    (@settings) => { |_: &mut sipas::config::Settings| {} };
    (@settings $tweak:ident) => { super::$tweak };
    (backend: $($name:ident),* $(,)?) => { $(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[actix_web::test]
            async fn postgres() {
                if let Some(backend) = $crate::helpers::Backend::postgres() {
                    super::$name(backend).await
                }
            }
        }
    )* };
    ($($name:ident $(=> $tweak:ident)?),* $(,)?) => { $(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                let app = $crate::helpers::TestApp::spawn_with(
                    $crate::helpers::Backend::Sqlite,
                    $crate::on_both_databases!(@settings $($tweak)?),
                )
                .await;
                super::$name(app).await
            }
            #[actix_web::test]
            async fn postgres() {
                if let Some(backend) = $crate::helpers::Backend::postgres() {
                    let app = $crate::helpers::TestApp::spawn_with(
                        backend,
                        $crate::on_both_databases!(@settings $($tweak)?),
                    )
                    .await;
                    super::$name(app).await
                }
            }
        }
    )* };
}
