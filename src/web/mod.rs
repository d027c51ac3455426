//! HTTP handlers, by audience. Handlers only extract, call the domain inside `web::block` (the
//! pooled connection is taken inside the closure) and render.

pub mod access;
pub mod api;
pub mod citizen;
pub mod errors;
pub mod health;
pub mod home;
pub mod layout;
pub mod openapi;
pub mod rate_limit;
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
    pub forms: Arc<FormRegistry>,
    pub settings: Arc<Settings>,
    pub secret: ServerSecret,
    pub writer: ResponseWriter,
    pub survey_limiter: Arc<rate_limit::RateLimiter>,
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
            let mut conn = pool.get().map_err(|e| {
                AppError::Unavailable(crate::i18n::Msg::new(
                    "Hệ thống đang quá tải, vui lòng thử lại sau ít phút.",
                    "The service is overloaded; please try again in a few minutes.",
                ))
                .with_cause(e)
            })?;
            work(&mut conn)
        })
        .await?
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
}

/// GET routes answer HEAD too: link checkers and some QR scanners probe with HEAD first.
fn get_or_head() -> actix_web::Route {
    use actix_web::guard;
    web::route().guard(guard::Any(guard::Get()).or(guard::Head()))
}
