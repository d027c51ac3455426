//! `GET /counter/{desk}/events`: server-sent events for a desk screen. Each open stream reads
//! the desk's state from the database four times a second, so a registration on any instance
//! reaches every screen within a second; an event goes out only when the screen must change.

use std::time::{Duration, Instant};

use actix_web::http::header::{self, ContentEncoding};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::stream;

use super::super::AppState;
use crate::counter::screen::{ScreenPolicy, ScreenView, view};
use crate::error::AppError;

/// How often a stream looks at the database.
const POLL: Duration = Duration::from_millis(250);
/// A comment line this often keeps proxies from closing an idle stream, and finds a screen
/// that went away (a write to it fails).
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// Streams end after this; the browser reconnects at once (`retry`), which also lets a
/// graceful shutdown finish.
const LIFETIME: Duration = Duration::from_secs(300);

struct Stream {
    state: web::Data<AppState>,
    credential: Option<String>,
    desk: String,
    last_key: Option<String>,
    started: Instant,
    last_sent: Instant,
    first: bool,
    done: bool,
}

async fn look(s: &Stream) -> Result<Option<ScreenView>, AppError> {
    let (secret, public_base, show_for) = super::policy_parts(&s.state);
    let credential = s.credential.clone();
    let desk = s.desk.clone();
    let now = crate::db::now();
    let result = s
        .state
        .with_conn(move |conn| {
            let policy = ScreenPolicy {
                secret: &secret,
                public_base: &public_base,
                show_for,
            };
            view(conn, &policy, credential.as_deref(), &desk, now).map_err(AppError::Internal)
        })
        .await?;
    Ok(result.ok())
}

fn event(view: &ScreenView) -> web::Bytes {
    let data = serde_json::json!({
        "key": view.key(),
        "html": super::screen::fragment(view).into_string(),
    });
    web::Bytes::from(format!("event: screen\ndata: {data}\n\n"))
}

pub async fn stream(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let mut s = Stream {
        state,
        credential: super::credential(&req),
        desk: path.into_inner(),
        last_key: None,
        started: Instant::now(),
        last_sent: Instant::now(),
        first: true,
        done: false,
    };
    // Refused devices get the page's answer, not an endless stream.
    let (secret, public_base, show_for) = super::policy_parts(&s.state);
    let (credential, desk) = (s.credential.clone(), s.desk.clone());
    let now = crate::db::now();
    let checked = s
        .state
        .with_conn(move |conn| {
            let policy = ScreenPolicy {
                secret: &secret,
                public_base: &public_base,
                show_for,
            };
            view(conn, &policy, credential.as_deref(), &desk, now).map_err(AppError::Internal)
        })
        .await?;
    if let Err(refused) = checked {
        return Ok(super::screen::refused_page(refused));
    }
    s.last_sent = Instant::now();
    let body = stream::unfold(s, |mut s| async move {
        if s.done {
            return None;
        }
        if s.first {
            s.first = false;
            // Reconnect quickly after the stream's end or a network blip.
            return Some((
                Ok::<_, actix_web::Error>(web::Bytes::from_static(b"retry: 500\n\n")),
                s,
            ));
        }
        loop {
            if s.started.elapsed() >= LIFETIME {
                s.done = true;
                return Some((Ok(web::Bytes::from_static(b": bye\n\n")), s));
            }
            match look(&s).await {
                Ok(Some(view)) => {
                    let key = view.key();
                    if s.last_key.as_deref() != Some(key.as_str()) {
                        s.last_key = Some(key);
                        s.last_sent = Instant::now();
                        return Some((Ok(event(&view)), s));
                    }
                }
                // Revoked meanwhile, or the database failed: end; the browser retries.
                Ok(None) | Err(_) => {
                    s.done = true;
                    return Some((Ok(web::Bytes::from_static(b"event: gone\ndata: {}\n\n")), s));
                }
            }
            if s.last_sent.elapsed() >= KEEP_ALIVE {
                s.last_sent = Instant::now();
                return Some((Ok(web::Bytes::from_static(b": ping\n\n")), s));
            }
            actix_web::rt::time::sleep(POLL).await;
        }
    });
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        // Compression would hold events back in the encoder's buffer.
        .insert_header(ContentEncoding::Identity)
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(body))
}
