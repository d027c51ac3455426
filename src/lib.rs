//! sipas: citizen satisfaction with public administrative services, measured the SIPAS way.
//!
//! [`Application::build`] assembles exactly what production runs, so integration tests start
//! the same server on a random port.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod backup;
pub mod calendar;
pub mod collector_orgs;
pub mod config;
pub mod counter;
pub mod db;
pub mod demo;
pub mod error;
pub mod forms;
pub mod groups;
pub mod i18n;
pub mod integrity;
pub mod mail;
pub mod metrics;
pub mod paper;
pub mod periods;
pub mod policies;
pub mod procedures;
pub mod progress;
pub mod proxy;
pub mod publish;
pub mod report;
pub mod rollup;
pub mod secret;
pub mod services;
pub mod survey;
pub mod synthetic;
pub mod text;
pub mod units;
pub mod web;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{App, HttpMessage, HttpServer, web as aweb};
use anyhow::Context;
use tracing_actix_web::{RequestId, TracingLogger};

use crate::config::Settings;
use crate::db::{DatabaseUrl, DbPool};
use crate::forms::FormRegistry;
use crate::secret::ServerSecret;
use crate::survey::writer::WriterThread;
use crate::web::AppState;

/// Opens the database, applies migrations, checks the server secret, loads and records the
/// survey forms and fills missing rollups: everything a command needs before touching data.
///
/// The work that writes runs under the start-up lock ([`db::lock`]), so instances started
/// together on one database do it one after the other: each decides under the lock whether
/// anything is left to do (only the first migrates, stores forms or rebuilds rollups).
pub fn prepare(settings: &Settings) -> anyhow::Result<(DbPool, Arc<FormRegistry>, ServerSecret)> {
    let url = DatabaseUrl::parse(&settings.database_url)?;
    let pool = DbPool::connect(&url, settings.pool_size)?;
    let mut conn = pool.get()?;
    let lock = db::lock::StartupLock::acquire(&url, "migrations, forms, rollups")?;
    let applied = db::run_migrations(&mut conn)?;
    if applied > 0 {
        tracing::info!(
            applied,
            backend = url.backend_name(),
            "database migrations applied"
        );
    }
    // Before anything else is written: an instance with another secret changes nothing.
    let secret = ServerSecret::load(settings.secret.as_deref(), &mut conn)?;
    let forms = FormRegistry::load_and_sync(&settings.forms_dir, &mut conn)?;
    let (dossiers, responses) = {
        // Nothing is drawn unless a rebuild runs (on an upgraded database, it can take minutes).
        let mut bar: Option<(rollup::rebuild::RebuildStep, indicatif::ProgressBar)> = None;
        let counted = rollup::rebuild::rebuild_missing_rollups(
            &mut conn,
            &forms,
            settings.utc_offset_value()?,
            &mut |step, done| {
                if bar.as_ref().is_none_or(|(s, _)| *s != step) {
                    if let Some((_, old)) = bar.take() {
                        old.finish();
                    }
                    let what = match step {
                        rollup::rebuild::RebuildStep::Dossiers => "rollups: dossiers",
                        rollup::rebuild::RebuildStep::Responses => "rollups: responses",
                    };
                    bar = Some((step, progress::counter(what)));
                }
                if let Some((_, b)) = &bar {
                    b.set_position(done);
                }
            },
        )?;
        if let Some((_, b)) = bar {
            b.finish();
        }
        counted
    };
    if dossiers + responses > 0 {
        tracing::info!(dossiers, responses, "rollups filled from the stored data");
    }
    audit::attach(&mut conn, settings)?;
    drop(lock);
    Ok((pool, Arc::new(forms), secret))
}

/// What a command-line use case needs, as the server builds it: the prepared database, the
/// policies and a group commit of its own, so that `main.rs` calls the very use cases the
/// handlers call (`paper::samples`, `paper::import`, …). Stop the writer with
/// [`WriterThread::shutdown`] before the command exits.
pub fn command_services(settings: &Settings) -> anyhow::Result<(services::Services, WriterThread)> {
    let (pool, forms, secret) = prepare(settings)?;
    let policies = Arc::new(policies::Policies::from_settings(settings)?);
    // A command reads what it just wrote: the primary only, never a replica that may lag.
    let reads = db::replica::ReadPool::primary_only(pool.clone());
    services::Services::start(pool, reads, forms, policies, secret, settings.max_batch)
}

/// Loads the demo province under the start-up lock: instances started together with `--demo`
/// would otherwise insert the same rows at once and fail on unique keys.
pub fn load_demo(
    settings: &Settings,
    conn: &mut db::DbConn,
    secret: &ServerSecret,
) -> anyhow::Result<demo::DemoInfo> {
    let url = DatabaseUrl::parse(&settings.database_url)?;
    let _lock = db::lock::StartupLock::acquire(&url, "demo province")?;
    demo::load(conn, secret)
}

/// A built, listening server.
pub struct Application {
    server: Server,
    port: u16,
    metrics_port: Option<u16>,
    writer: WriterThread,
    mail: mail::sender::MailSender,
    /// SMS and Zalo; `None` when neither is configured.
    phone: Option<mail::phone_sender::PhoneSender>,
    state: AppState,
}

impl Application {
    /// Builds the app and binds `settings.bind` (port 0 picks a free port).
    pub fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("cannot listen on {}", settings.bind))?;
        let (pool, forms, secret) = prepare(&settings)?;
        Self::from_parts(settings, listener, pool, forms, secret)
    }

    fn from_parts(
        mut settings: Settings,
        listener: TcpListener,
        pool: DbPool,
        forms: Arc<FormRegistry>,
        secret: ServerSecret,
    ) -> anyhow::Result<Self> {
        let port = listener.local_addr()?.port();
        let policies = Arc::new(policies::Policies::from_settings(&settings)?);
        let metrics_listener = match &settings.metrics_bind {
            Some(bind) => Some(
                TcpListener::bind(bind)
                    .with_context(|| format!("cannot listen on {bind} (SIPAS_METRICS_BIND)"))?,
            ),
            None => None,
        };
        let metrics_port = match &metrics_listener {
            Some(l) => Some(l.local_addr()?.port()),
            None => None,
        };
        let metrics_access = aweb::Data::new(web::metrics::MetricsAccess {
            token: settings.metrics_token.clone(),
            port: metrics_port,
        });
        if settings.public_url.is_none() {
            let host = settings
                .bind
                .rsplit_once(':')
                .map(|(h, _)| h)
                .unwrap_or("127.0.0.1");
            settings.public_url = Some(format!("http://{host}:{port}"));
        }
        let mail = mail::sender::MailSender::start(
            pool.clone(),
            mail::sender::MailPolicy::from_settings(&settings, secret.clone())?,
            std::time::Duration::from_millis(settings.mail_poll_millis),
        )?;
        let phone = mail::phone_sender::PhoneSender::start(
            pool.clone(),
            mail::phone_sender::PhonePolicy::from_settings(&settings, secret.clone())?,
            std::time::Duration::from_millis(settings.mail_poll_millis),
        )?;
        let max_body = settings.max_body_bytes;
        settings.resolve_proxy_alias();
        let reads = db::replica::ReadPool::new(
            pool.clone(),
            settings.database_replica_url.as_deref(),
            settings.pool_size,
        )?;
        let (services, writer_thread) =
            services::Services::start(pool, reads, forms, policies, secret, settings.max_batch)?;
        let state = AppState::new(
            settings,
            services,
            mail.status(),
            phone.as_ref().map(|p| p.status()),
        )?;
        let data = aweb::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(metrics_access.clone())
                .app_data(aweb::PayloadConfig::new(max_body))
                .wrap(actix_web::middleware::from_fn(web::access::enforce))
                .wrap(actix_web::middleware::from_fn(web::input::screen))
                .wrap(web::errors::handlers())
                .wrap(Compress::default())
                .wrap(security_headers())
                .wrap(actix_web::middleware::from_fn(echo_request_id))
                .wrap(TracingLogger::default())
                .wrap(actix_web::middleware::from_fn(
                    web::metrics::metrics_port_only,
                ))
                .wrap(actix_web::middleware::from_fn(metrics::track))
                .wrap(actix_web::middleware::from_fn(
                    web::access::drop_untrusted_forwarding,
                ))
                .configure(web::routes)
                .default_service(aweb::to(web::errors::not_found))
        })
        .listen(listener)?;
        let server = match metrics_listener {
            Some(l) => server.listen(l)?,
            None => server,
        }
        .shutdown_timeout(30)
        .run();
        Ok(Self {
            server,
            port,
            metrics_port,
            writer: writer_thread,
            mail,
            phone,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Port of the separate metrics listener (`SIPAS_METRICS_BIND`), if any.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics_port
    }

    /// Handle to stop the server from outside (tests, embedding).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until SIGINT/SIGTERM, lets in-flight requests finish, then commits anything still
    /// queued in the writer before returning.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            writer,
            mail,
            phone,
            state,
            ..
        } = self;
        let result = server.await;
        drop(state);
        writer.shutdown().await;
        let _ = actix_web::rt::task::spawn_blocking(move || mail.stop()).await;
        if let Some(phone) = phone {
            let _ = actix_web::rt::task::spawn_blocking(move || phone.stop()).await;
        }
        result
    }
}

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("X-Content-Type-Options", "nosniff"))
        // `same-origin`: survey URLs carry the token, so no other site may ever see them in a
        // Referer; same-site form posts still send a real `Origin` (with `no-referrer` browsers
        // send `Origin: null`, which the CSRF check must refuse).
        .add(("Referrer-Policy", "same-origin"))
        .add(("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"))
        .add(("X-Frame-Options", "DENY"))
}

/// Returns the request id (from the tracing middleware) as `X-Request-Id`, so a user reporting a
/// problem can quote it and operators find the matching log lines.
async fn echo_request_id(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let id = req.extensions().get::<RequestId>().map(|id| id.to_string());
    let mut res = next.call(req).await?;
    if let Some(id) = id
        && let Ok(value) = actix_web::http::header::HeaderValue::from_str(&id)
    {
        res.headers_mut().insert(
            actix_web::http::header::HeaderName::from_static("x-request-id"),
            value,
        );
    }
    Ok(res)
}
