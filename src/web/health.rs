//! `GET /healthz`: for load balancers and monitoring; checks the database answers.

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;

pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let backend = state.pool.backend_name();
    let result = state
        .with_conn(|conn| crate::db::ping(conn).map_err(Into::into))
        .await;
    match result {
        Ok(()) => HttpResponse::Ok().json(json!({ "status": "ok", "database": backend })),
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            HttpResponse::ServiceUnavailable()
                .json(json!({ "status": "unavailable", "database": backend }))
        }
    }
}
