//! `GET /metrics` (Prometheus text format). Not public: it answers only to the bearer token
//! `SIPAS_METRICS_TOKEN`, or on the separate address `SIPAS_METRICS_BIND` (which serves nothing
//! else); with neither configured it is a plain 404, as if it did not exist.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use super::AppState;

/// Who may read `/metrics`; registered as app data by `Application`.
#[derive(Debug, Clone, Default)]
pub struct MetricsAccess {
    /// Bearer token required when set (on either address).
    pub token: Option<String>,
    /// Port of the separate metrics listener, when there is one.
    pub port: Option<u16>,
}

impl MetricsAccess {
    fn on_metrics_port(&self, req: &HttpRequest) -> bool {
        self.port
            .is_some_and(|p| req.app_config().local_addr().port() == p)
    }

    /// Compares digests, so the time taken does not tell how much of a guess was right.
    fn token_matches(&self, req: &HttpRequest) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        Sha256::digest(given.trim().as_bytes()) == Sha256::digest(expected.as_bytes())
    }
}

pub async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let access = req
        .app_data::<web::Data<MetricsAccess>>()
        .map(|a| a.get_ref().clone())
        .unwrap_or_default();
    if access.token.is_none() && !access.on_metrics_port(&req) {
        return super::errors::not_found(req).await;
    }
    if !access.token_matches(&req) {
        return HttpResponse::Unauthorized()
            .insert_header((header::WWW_AUTHENTICATE, "Bearer"))
            .body("metrics: a valid bearer token is required\n");
    }
    let outbox = state
        .with_conn(|conn| crate::metrics::outbox_counts(conn).map_err(Into::into))
        .await
        .unwrap_or_else(|e| {
            tracing::warn!(error = %e, "metrics: outbox not read");
            Vec::new()
        });
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render(
            state.writer.queue_depth(),
            &outbox,
            state.mail_sender.age(),
        ))
}

/// Middleware: the separate metrics address serves `/metrics` and the health checks only.
pub async fn metrics_port_only(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let on_metrics_port = req
        .app_data::<web::Data<MetricsAccess>>()
        .is_some_and(|a| a.on_metrics_port(req.request()));
    if on_metrics_port && !matches!(req.path(), "/metrics" | "/healthz" | "/readyz") {
        let (req, _) = req.into_parts();
        let res = super::errors::not_found(req.clone()).await;
        return Ok(ServiceResponse::new(req, res).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
