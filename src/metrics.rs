//! Operational metrics in the Prometheus text format (`GET /metrics`, see `web::metrics`).
//!
//! One process-wide registry: the writer thread, the mail sender and the HTTP middleware all
//! count into it without being handed anything. Labels are low-cardinality by construction:
//! HTTP requests are labelled with the route *pattern* (`/s/{token}`), never the raw path, so no
//! survey token or id ever reaches a label.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use diesel::prelude::*;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::db::DbConn;
use crate::db_run;

/// Every metric the service exports.
pub struct Metrics {
    registry: Registry,
    submissions: IntCounterVec,
    registrations: IntCounterVec,
    batch_size: Histogram,
    commit_seconds: Histogram,
    queue_depth: IntGauge,
    outbox: IntGaugeVec,
    mail_failures: IntCounterVec,
    mail_heartbeat_age: IntGauge,
    http_requests: IntCounterVec,
    http_seconds: HistogramVec,
}

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new_custom(Some("sipas".into()), None)?;
        let submissions = IntCounterVec::new(
            Opts::new(
                "survey_submissions_total",
                "Survey answers posted by citizens, by outcome",
            ),
            &["outcome"],
        )?;
        let registrations = IntCounterVec::new(
            Opts::new(
                "transaction_registrations_total",
                "Dossiers registered by counter systems, by outcome",
            ),
            &["outcome"],
        )?;
        let batch_size = Histogram::with_opts(
            HistogramOpts::new(
                "writer_batch_size",
                "Jobs committed together by the writer (group commit)",
            )
            .buckets(vec![
                1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
            ]),
        )?;
        let commit_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "writer_commit_seconds",
                "Time to write and commit one group-commit batch",
            )
            .buckets(prometheus::exponential_buckets(0.0005, 2.0, 14)?),
        )?;
        let queue_depth = IntGauge::new(
            "writer_queue_depth",
            "Jobs waiting for the writer thread (read at scrape time)",
        )?;
        let outbox = IntGaugeVec::new(
            Opts::new(
                "outbox_messages",
                "E-mails in the outbox by status, read from the database at scrape time",
            ),
            &["status"],
        )?;
        let mail_failures = IntCounterVec::new(
            Opts::new(
                "mail_send_failures_total",
                "Failed attempts to send an e-mail, by transport",
            ),
            &["transport"],
        )?;
        let mail_heartbeat_age = IntGauge::new(
            "mail_sender_heartbeat_age_seconds",
            "Seconds since the mail sender last went round its loop (-1: not running)",
        )?;
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern and status",
            ),
            &["route", "method", "status"],
        )?;
        let http_seconds = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency")
                .buckets(prometheus::exponential_buckets(0.001, 2.5, 12)?),
            &["route", "method"],
        )?;
        registry.register(Box::new(submissions.clone()))?;
        registry.register(Box::new(registrations.clone()))?;
        registry.register(Box::new(batch_size.clone()))?;
        registry.register(Box::new(commit_seconds.clone()))?;
        registry.register(Box::new(queue_depth.clone()))?;
        registry.register(Box::new(outbox.clone()))?;
        registry.register(Box::new(mail_failures.clone()))?;
        registry.register(Box::new(mail_heartbeat_age.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_seconds.clone()))?;
        // Every known outcome exists from the start at 0, so rates and alerts work before the
        // first event.
        for outcome in [
            "stored",
            "already_used",
            "expired",
            "unknown_token",
            "invalid",
            "too_large",
            "rate_limited",
            "error",
            "other",
        ] {
            submissions.with_label_values(&[outcome]);
        }
        for outcome in [
            "created",
            "duplicate",
            "refused",
            "invalid",
            "rate_limited",
            "error",
            "other",
        ] {
            registrations.with_label_values(&[outcome]);
        }
        for transport in ["smtp", "file"] {
            mail_failures.with_label_values(&[transport]);
        }
        Ok(Self {
            registry,
            submissions,
            registrations,
            batch_size,
            commit_seconds,
            queue_depth,
            outbox,
            mail_failures,
            mail_heartbeat_age,
            http_requests,
            http_seconds,
        })
    }
}

static METRICS: LazyLock<Metrics> =
    LazyLock::new(|| Metrics::new().expect("metric names and buckets are constants"));

/// The writer committed (or failed to commit) a batch of `size` jobs in `took`.
pub fn writer_batch(size: usize, took: Duration) {
    METRICS.batch_size.observe(size as f64);
    METRICS.commit_seconds.observe(took.as_secs_f64());
}

/// A send attempt through `transport` (`smtp` or `file`) failed.
pub fn mail_send_failed(transport: &str) {
    METRICS.mail_failures.with_label_values(&[transport]).inc();
}

/// Outbox rows by status.
pub fn outbox_counts(conn: &mut DbConn) -> QueryResult<Vec<(String, i64)>> {
    use crate::db::schema::outbox;
    db_run!(conn: {
        outbox::table
            .group_by(outbox::status)
            .select((outbox::status, diesel::dsl::count_star()))
            .load(conn)
    })
}

/// Renders every metric; `queue_depth`, `outbox` and `mail_age` (since the mail sender's last
/// loop turn, `None` if it never turned) are what the caller read just now.
pub fn render(queue_depth: usize, outbox: &[(String, i64)], mail_age: Option<Duration>) -> String {
    METRICS
        .queue_depth
        .set(i64::try_from(queue_depth).unwrap_or(i64::MAX));
    for status in ["queued", "sending", "sent", "failed", "cancelled"] {
        let n = outbox
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n);
        METRICS.outbox.with_label_values(&[status]).set(n);
    }
    METRICS
        .mail_heartbeat_age
        .set(mail_age.map_or(-1, |age| i64::try_from(age.as_secs()).unwrap_or(i64::MAX)));
    let mut out = Vec::new();
    // Encoding into a Vec cannot fail for these metric types.
    let _ = TextEncoder::new().encode(&METRICS.registry.gather(), &mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// What a survey POST's status means.
fn submission_outcome(status: u16) -> &'static str {
    match status {
        200..=399 => "stored",
        409 => "already_used",
        410 => "expired",
        404 => "unknown_token",
        400 | 422 => "invalid",
        413 => "too_large",
        429 => "rate_limited",
        500..=599 => "error",
        _ => "other",
    }
}

/// What a registration's status means.
fn registration_outcome(status: u16) -> &'static str {
    match status {
        201 => "created",
        200 => "duplicate",
        401 | 403 => "refused",
        400 | 413 | 422 => "invalid",
        429 => "rate_limited",
        500..=599 => "error",
        _ => "other",
    }
}

/// Middleware: counts and times every request by route pattern, method and status, and the
/// outcomes of survey submissions and registrations.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method: &'static str = match req.method().as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    let result = next.call(req).await;
    let status = match &result {
        Ok(res) => res.status().as_u16(),
        Err(e) => e.as_response_error().status_code().as_u16(),
    };
    METRICS
        .http_requests
        .with_label_values(&[route.as_str(), method, &status.to_string()])
        .inc();
    METRICS
        .http_seconds
        .with_label_values(&[route.as_str(), method])
        .observe(started.elapsed().as_secs_f64());
    if method == "POST" {
        match route.as_str() {
            "/s/{token}" | "/S/{token}" => METRICS
                .submissions
                .with_label_values(&[submission_outcome(status)])
                .inc(),
            "/api/v1/transactions" => METRICS
                .registrations
                .with_label_values(&[registration_outcome(status)])
                .inc(),
            _ => {}
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_scrape_time_values() {
        writer_batch(3, Duration::from_millis(4));
        mail_send_failed("smtp");
        let text = render(7, &[("failed".into(), 2)], None);
        assert!(text.contains("sipas_writer_queue_depth 7"), "{text}");
        assert!(
            text.contains("sipas_outbox_messages{status=\"failed\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("sipas_outbox_messages{status=\"queued\"} 0"),
            "{text}"
        );
        assert!(text.contains("sipas_writer_batch_size_bucket{le=\"4\"}"));
        assert!(text.contains("sipas_mail_send_failures_total{transport=\"smtp\"}"));
    }

    /// The Grafana dashboard asks only for series the service exports.
    #[test]
    fn the_dashboard_uses_exported_series() {
        let dashboard = include_str!("../dashboards/sipas.json");
        // HTTP series appear with the first request; stand in for one.
        METRICS
            .http_requests
            .with_label_values(&["/", "GET", "200"])
            .inc();
        METRICS
            .http_seconds
            .with_label_values(&["/", "GET"])
            .observe(0.01);
        let text = render(0, &[], None);
        let mut names: Vec<&str> = dashboard
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("sipas_"))
            .collect();
        names.sort_unstable();
        names.dedup();
        assert!(names.len() >= 8, "{names:?}");
        for name in names {
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "{name} is not exported"
            );
        }
    }

    #[test]
    fn outcomes_follow_the_documented_statuses() {
        assert_eq!(submission_outcome(200), "stored");
        assert_eq!(submission_outcome(409), "already_used");
        assert_eq!(submission_outcome(410), "expired");
        assert_eq!(registration_outcome(201), "created");
        assert_eq!(registration_outcome(200), "duplicate");
        assert_eq!(registration_outcome(401), "refused");
    }
}
