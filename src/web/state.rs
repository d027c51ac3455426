//! The application state every request handler receives, and how it is built at start-up.

use std::sync::Arc;

use crate::config::Settings;
use crate::services::Services;

use super::rate_limit::RateLimiter;

/// Everything a request handler may need; shared by all workers. The use cases' own needs are
/// the [`Services`] it dereferences to (`state.pool`, `state.writer`, `state.with_conn`, …).
#[derive(Clone)]
pub struct AppState {
    pub services: Services,
    pub settings: Arc<Settings>,
    pub survey_limiter: Arc<RateLimiter>,
    /// The mail sender's heartbeat, read by `/readyz` and `/metrics`.
    pub mail_sender: crate::mail::sender::SenderStatus,
    /// The SMS/Zalo sender's heartbeat, when SMS or Zalo is configured.
    pub phone_sender: Option<crate::mail::sender::SenderStatus>,
}

impl std::ops::Deref for AppState {
    type Target = Services;

    fn deref(&self) -> &Services {
        &self.services
    }
}

impl AppState {
    /// The state of a starting server: the survey rate limiter is made from the settings, and
    /// its pruner started (forgotten clients are dropped there, never on a request's path).
    pub fn new(
        settings: Settings,
        services: Services,
        mail_sender: crate::mail::sender::SenderStatus,
        phone_sender: Option<crate::mail::sender::SenderStatus>,
    ) -> anyhow::Result<Self> {
        let survey_limiter = Arc::new(RateLimiter::per_minute(settings.survey_rate_per_minute));
        survey_limiter.spawn_pruner(std::time::Duration::from_secs(60))?;
        Ok(Self {
            services,
            settings: Arc::new(settings),
            survey_limiter,
            mail_sender,
            phone_sender,
        })
    }

    pub fn public_base(&self) -> String {
        self.settings.public_base()
    }

    /// The survey URL of a token, as printed and encoded in QR codes.
    pub fn survey_url(&self, token: &str) -> String {
        format!("{}/s/{}", self.public_base(), token)
    }
}
