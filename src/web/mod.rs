//! HTTP handlers, by audience. Handlers only extract, call the domain inside `web::block` (the
//! pooled connection is taken inside the closure) and render.

pub mod access;
pub mod admin;
pub mod agency;
pub mod api;
pub mod auth;
pub mod citizen;
pub mod collector;
pub mod errors;
pub mod export;
pub mod health;
pub mod home;
pub mod input;
pub mod integrity;
pub mod layout;
pub mod metrics;
pub mod openapi;
pub mod paper;
pub mod paper_entry;
pub mod public;
pub mod rate_limit;
pub mod reports;
pub mod staff;
pub mod statics;

use std::sync::Arc;

use actix_web::web;

use crate::config::Settings;
use crate::db::{DbConn, DbPool};
use crate::error::AppError;
use crate::forms::FormRegistry;
use crate::secret::ServerSecret;
use crate::survey::writer::ResponseWriter;

/// Everything a request handler may need; shared by all workers.
#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    /// Heavy reads (reports, rankings, exports): the replica when configured, else `pool`.
    pub reads: crate::db::replica::ReadPool,
    pub forms: Arc<FormRegistry>,
    pub settings: Arc<Settings>,
    pub secret: ServerSecret,
    pub writer: ResponseWriter,
    pub survey_limiter: Arc<rate_limit::RateLimiter>,
    /// The mail sender's heartbeat, read by `/readyz` and `/metrics`.
    pub mail_sender: crate::mail::sender::SenderStatus,
}

/// No pooled connection came in time: the service is overloaded (503).
fn overloaded(cause: impl std::fmt::Display) -> AppError {
    AppError::Unavailable(crate::i18n::Msg::new(
        "Hệ thống đang quá tải, vui lòng thử lại sau ít phút.",
        "The service is overloaded; please try again in a few minutes.",
    ))
    .with_cause(cause)
}

impl AppState {
    /// Runs blocking database work off the async workers.
    pub async fn with_conn<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        let pool = self.pool.clone();
        web::block(move || {
            let mut conn = pool.get().map_err(overloaded)?;
            work(&mut conn)
        })
        .await?
    }

    /// Like [`Self::with_conn`] for heavy reads that may lag the primary by a moment (reports,
    /// rankings, exports): on the read replica when one is configured and answers.
    pub async fn with_read_conn<T, F>(&self, work: F) -> Result<T, AppError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConn) -> Result<T, AppError> + Send + 'static,
    {
        let reads = self.reads.clone();
        web::block(move || {
            let mut conn = reads.get().map_err(overloaded)?;
            work(&mut conn)
        })
        .await?
    }

    /// Runs a read of a few rows by key (a survey token and what screening needs). On SQLite,
    /// with a connection idle, it runs right here on the request's thread: such a read takes
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

    pub fn public_base(&self) -> String {
        self.settings.public_base()
    }

    /// The survey URL of a token, as printed and encoded in QR codes.
    pub fn survey_url(&self, token: &str) -> String {
        format!("{}/s/{}", self.public_base(), token)
    }
}

/// Registers every route of the service.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(get_or_head().to(home::index)))
        .service(web::resource("/healthz").route(get_or_head().to(health::healthz)))
        .service(web::resource("/readyz").route(get_or_head().to(health::readyz)))
        .service(web::resource("/metrics").route(get_or_head().to(metrics::metrics)))
        .service(web::resource("/static/{file}").route(get_or_head().to(statics::serve)))
        .service(web::resource("/api/openapi.json").route(get_or_head().to(openapi::document)))
        .service(
            web::resource("/api/v1/transactions").route(web::post().to(api::create_transaction)),
        )
        .service(
            web::resource(["/s/{token}", "/S/{token}"])
                .route(get_or_head().to(citizen::show))
                .route(web::post().to(citizen::submit)),
        )
        .service(
            web::resource(["/s/{token}/qr.svg", "/S/{token}/QR.SVG"])
                .route(get_or_head().to(citizen::qr_svg)),
        )
        .service(
            web::resource(["/s/{token}/qr.png", "/S/{token}/QR.PNG"])
                .route(get_or_head().to(citizen::qr_png)),
        );
    cfg.service(
        web::resource("/s/{token}/unsubscribe")
            .route(get_or_head().to(citizen::unsubscribe_page))
            .route(web::post().to(citizen::unsubscribe)),
    );
    staff_routes(cfg);
    admin::groups::routes(cfg);
    public_routes(cfg);
}

/// Pages for signed-in staff; who may open each one is in `access::RULES`.
fn staff_routes(cfg: &mut web::ServiceConfig) {
    use admin::{audit_log, catalog, units as admin_units, users as admin_users};
    let get = get_or_head;
    let post = web::post;
    cfg.service(
        web::resource("/login")
            .route(get().to(auth::login_page))
            .route(post().to(auth::login)),
    )
    .service(web::resource("/logout").route(post().to(auth::logout)))
    .service(web::resource("/account").route(get().to(auth::account)))
    .service(
        web::resource("/account/password")
            .route(get().to(auth::password_page))
            .route(post().to(auth::change_password)),
    )
    .service(web::resource("/agency").route(get().to(agency::home)))
    .service(web::resource("/agency/units/{id}").route(get().to(agency::unit)))
    .service(web::resource("/collector").route(get().to(collector::home)))
    .service(web::resource("/admin").route(get().to(admin::overview)))
    .service(
        web::resource("/admin/units")
            .route(get().to(admin_units::list))
            .route(post().to(admin_units::create)),
    )
    .service(web::resource("/admin/units/{id}").route(get().to(admin_units::detail)))
    .service(web::resource("/admin/units/{id}/rename").route(post().to(admin_units::rename)))
    .service(web::resource("/admin/units/{id}/move").route(post().to(admin_units::move_unit)))
    .service(web::resource("/admin/units/{id}/merge").route(post().to(admin_units::merge)))
    .service(web::resource("/admin/units/{id}/validity").route(post().to(admin_units::validity)))
    .service(
        web::resource("/admin/units/{id}/counter-form").route(post().to(admin_units::counter_form)),
    )
    .service(web::resource("/admin/units/{id}/api-keys").route(post().to(admin_units::create_key)))
    .service(web::resource("/admin/api-keys/{id}/revoke").route(post().to(admin_units::revoke_key)))
    .service(
        web::resource("/admin/procedures")
            .route(get().to(catalog::procedures_list))
            .route(post().to(catalog::procedures_create)),
    )
    .service(
        web::resource("/admin/procedures/{id}")
            .route(get().to(catalog::procedure_show))
            .route(post().to(catalog::procedure_update)),
    )
    .service(
        web::resource("/admin/users")
            .route(get().to(admin_users::list))
            .route(post().to(admin_users::create)),
    )
    .service(
        web::resource("/admin/users/{id}")
            .route(get().to(admin_users::detail))
            .route(post().to(admin_users::update)),
    )
    .service(
        web::resource("/admin/users/{id}/password").route(post().to(admin_users::reset_password)),
    )
    .service(
        web::resource("/admin/collector-orgs")
            .route(get().to(catalog::orgs_list))
            .route(post().to(catalog::orgs_create)),
    )
    .service(web::resource("/admin/forms").route(get().to(catalog::forms_list)))
    .service(
        web::resource("/admin/periods")
            .route(get().to(catalog::periods_list))
            .route(post().to(catalog::periods_create)),
    )
    .service(
        web::resource("/admin/periods/{id}")
            .route(get().to(catalog::period_show))
            .route(post().to(catalog::period_update)),
    )
    .service(web::resource("/admin/audit").route(get().to(audit_log::browse)))
    .service(
        web::resource("/admin/samples")
            .route(get().to(paper::list))
            .route(post().to(paper::draw)),
    )
    .service(web::resource("/paper/samples/{id}").route(get().to(paper::show)))
    .service(
        web::resource("/paper/batches")
            .route(get().to(paper_entry::batches))
            .route(post().to(paper_entry::create_batch)),
    )
    .service(web::resource("/paper/batches/{id}").route(get().to(paper_entry::batch)))
    .service(
        web::resource("/paper/batches/{id}/delivered").route(post().to(paper_entry::delivered)),
    )
    .service(web::resource("/paper/batches/{id}/returned").route(post().to(paper_entry::returned)))
    .service(web::resource("/paper/entry").route(get().to(paper_entry::entry_start)))
    .service(web::resource("/paper/disputes").route(get().to(paper_entry::disputes)))
    .service(
        web::resource("/paper/disputes/{serial}")
            .route(get().to(paper_entry::dispute))
            .route(post().to(paper_entry::resolve)),
    )
    .service(web::resource("/paper/typists").route(get().to(paper_entry::typists)))
    .service(web::resource("/paper/entry/{serial}/undo").route(post().to(paper_entry::undo)))
    .service(
        web::resource("/paper/forms/{serial}/correct")
            .route(get().to(paper_entry::correction_page))
            .route(post().to(paper_entry::correct)),
    )
    .service(web::resource("/paper/entry/open").route(get().to(paper_entry::entry_open)))
    .service(
        web::resource("/paper/entry/{serial}")
            .route(get().to(paper_entry::entry_page))
            .route(post().to(paper_entry::entry_save)),
    )
    .service(web::resource("/paper/samples/{id}/worklist.csv").route(get().to(paper::worklist_csv)))
    .service(web::resource("/paper/samples/{id}/forms").route(get().to(paper::forms)))
    .service(web::resource("/admin/outbox").route(get().to(admin::mail::page)))
    .service(web::resource("/admin/outbox/{id}/retry").route(post().to(admin::mail::retry)))
    .service(
        web::resource("/admin/units/{id}/invitations").route(post().to(admin_units::invitations)),
    )
    .service(web::resource("/admin/export/responses.csv").route(get().to(export::responses_csv)))
    .service(web::resource("/reports/units/{id}").route(get().to(reports::unit_page)))
    .service(web::resource("/reports/units/{id}/print").route(get().to(reports::unit_print)))
    .service(web::resource("/reports/units/{id}/export.csv").route(get().to(reports::unit_csv)))
    .service(web::resource("/reports/units/{id}/export.xlsx").route(get().to(reports::unit_xlsx)))
    .service(web::resource("/reports/ranking/export.xlsx").route(get().to(reports::ranking_xlsx)))
    .service(web::resource("/api/v1/reports/units/{id}").route(get().to(reports::unit_json)))
    .service(web::resource("/reports/ranking").route(get().to(reports::ranking_page)))
    .service(web::resource("/reports/ranking/export.csv").route(get().to(reports::ranking_csv)))
    .service(web::resource("/api/v1/reports/ranking").route(get().to(reports::ranking_json)))
    .service(web::resource("/admin/integrity").route(get().to(integrity::panel)))
    .service(web::resource("/admin/integrity/units/{id}").route(get().to(integrity::unit)))
    .service(web::resource("/admin/integrity/responses/{id}").route(post().to(integrity::decide)))
    .service(web::resource("/cases").route(get().to(integrity::cases_list)))
    .service(
        web::resource("/cases/{id}")
            .route(get().to(integrity::case_page))
            .route(post().to(integrity::case_action)),
    );
}

/// The public results site (issue #18): no sign-in, only what releases published.
fn public_routes(cfg: &mut web::ServiceConfig) {
    use public::{key, overview, ranking, releases, unit};
    let get = get_or_head;
    cfg.service(web::resource("/public").route(get().to(overview::overview)))
        .service(web::resource("/public/ranking").route(get().to(ranking::page)))
        .service(web::resource("/public/units/{code}").route(get().to(unit::page)))
        .service(web::resource("/public/units/{code}/badge.svg").route(get().to(unit::badge)))
        .service(web::resource("/public/releases").route(get().to(releases::list)))
        .service(web::resource("/public/releases/{id}").route(get().to(releases::detail)))
        .service(
            web::resource("/public/releases/{id}/release.json").route(get().to(releases::json)),
        )
        .service(
            web::resource("/public/releases/{id}/release.json.sig")
                .route(get().to(releases::signature)),
        )
        .service(web::resource("/public/releases/{id}/release.csv").route(get().to(releases::csv)))
        .service(web::resource("/public/catalog.json").route(get().to(releases::catalog)))
        .service(web::resource("/public/key").route(get().to(key::page)))
        .service(web::resource("/public/key.pem").route(get().to(key::pem)))
        .service(
            web::resource("/admin/releases")
                .route(get().to(admin::releases::list))
                .route(web::post().to(admin::releases::create)),
        );
}

/// GET routes answer HEAD too: link checkers and some QR scanners probe with HEAD first.
fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}
