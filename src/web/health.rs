//! `GET /healthz`: cheap liveness for load balancers (the process answers and the database
//! does). `GET /readyz`: readiness for monitoring and orchestrators: 503 with the reasons when
//! the response writer does not run a no-op job in time, the mail sender (or, with SMS or Zalo
//! configured, the phone sender) has stopped going round its loop, or the database does not
//! answer.

use std::time::Duration;

use actix_web::{HttpResponse, web};
use serde_json::json;

use super::AppState;

/// How long the writer and the database get to answer a readiness probe.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

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

pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let writer = state.writer.run(|_, _| Ok::<(), diesel::result::Error>(()));
    let writer = match actix_web::rt::time::timeout(PROBE_TIMEOUT, writer).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(format!("writer: the no-op job failed: {e}")),
        Ok(Err(e)) => Err(format!("writer: {e}")),
        Err(_) => Err(format!(
            "writer: no answer within {} s",
            PROBE_TIMEOUT.as_secs()
        )),
    };
    let database = state.with_conn(|conn| crate::db::ping(conn).map_err(Into::into));
    let database = match actix_web::rt::time::timeout(PROBE_TIMEOUT, database).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("database: {e}")),
        Err(_) => Err(format!(
            "database: no answer within {} s",
            PROBE_TIMEOUT.as_secs()
        )),
    };
    let limit = state.settings.mail_stale_after();
    let mail = match state.mail_sender.age() {
        Some(age) if age <= limit => Ok(()),
        Some(age) => Err(format!(
            "mail sender: last turn {} s ago (limit {} s)",
            age.as_secs(),
            limit.as_secs()
        )),
        None => Err("mail sender: not running".to_string()),
    };
    let mut checks = vec![("writer", writer), ("mail", mail), ("database", database)];
    // With SMS or Zalo configured, their sender must be going round its loop too.
    if let Some(phone) = &state.phone_sender {
        let phone = match phone.age() {
            Some(age) if age <= limit => Ok(()),
            Some(age) => Err(format!(
                "phone sender: last turn {} s ago (limit {} s)",
                age.as_secs(),
                limit.as_secs()
            )),
            None => Err("phone sender: not running".to_string()),
        };
        checks.push(("phone", phone));
    }
    let problems: Vec<&str> = checks
        .iter()
        .filter_map(|(_, r)| r.as_ref().err().map(String::as_str))
        .collect();
    let body = json!({
        "status": if problems.is_empty() { "ready" } else { "not_ready" },
        "checks": checks
            .iter()
            .map(|(name, r)| (name.to_string(), json!(r.as_ref().err().map_or("ok", String::as_str))))
            .collect::<serde_json::Map<_, _>>(),
        "reason": problems.join("; "),
    });
    if problems.is_empty() {
        HttpResponse::Ok().json(body)
    } else {
        tracing::warn!(reason = %problems.join("; "), "not ready");
        HttpResponse::ServiceUnavailable().json(body)
    }
}
