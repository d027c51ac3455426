//! The few static files, compiled into the binary so the service runs from any folder and never
//! fetches anything at run time.

use actix_web::{HttpResponse, web};

const FILES: &[(&str, &str, &str)] = &[
    (
        "sipas.css",
        "text/css; charset=utf-8",
        include_str!("../../static/sipas.css"),
    ),
    (
        "paper.css",
        "text/css; charset=utf-8",
        include_str!("../../static/paper.css"),
    ),
    (
        "counter.css",
        "text/css; charset=utf-8",
        include_str!("../../static/counter.css"),
    ),
    (
        "counter-screen.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/counter-screen.js"),
    ),
    (
        "kiosk.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/kiosk.js"),
    ),
    (
        "paper-entry.js",
        "text/javascript; charset=utf-8",
        include_str!("../../static/paper-entry.js"),
    ),
];

pub async fn serve(path: web::Path<String>) -> HttpResponse {
    match FILES.iter().find(|(name, _, _)| *name == path.as_str()) {
        Some((_, content_type, body)) => HttpResponse::Ok()
            .content_type(*content_type)
            .insert_header(("Cache-Control", "public, max-age=86400"))
            .body(*body),
        None => HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("Không tìm thấy / Not found"),
    }
}
