//! Who may use which route, enforced in one place for every request.
//!
//! Every route pattern is listed in [`RULES`] with its access level; a route missing from the
//! table is refused (fail closed). For signed-in routes the middleware loads the session, checks
//! the role, and for every unsafe request checks the form's synchronizer token and that
//! `Origin` or `Referer` names this site (missing both is refused) before any handler runs. The
//! use cases check each object against the actor's scope (see `accounts::actor`).

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{Method, StatusCode, header};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};

use super::AppState;
use super::lang::{LANG_COOKIE, page_lang};
use super::layout::message_page;
use crate::accounts::Role;
use crate::accounts::sessions::{self, Session};
use crate::i18n::Lang;
use crate::proxy::TrustedProxies;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (home, health, static files, API description).
    Public,
    /// Citizens holding a survey token in the URL; rate-limited per address.
    Survey,
    /// Counter systems; the handler checks the API key.
    ApiKey,
    /// The sign-in form: public, protected by a double-submit CSRF cookie.
    SignIn,
    /// Any signed-in person.
    SignedIn,
    /// The province's administrators only.
    Admin,
    /// Administrators and agencies (agencies limited to their subtree by the use case).
    Results,
    /// Administrators and collector organisations.
    Collection,
}

impl Access {
    fn admits(self, role: Role) -> bool {
        match self {
            Access::Public
            | Access::Survey
            | Access::ApiKey
            | Access::SignIn
            | Access::SignedIn => true,
            Access::Admin => role == Role::Admin,
            Access::Results => matches!(role, Role::Admin | Role::Agency),
            Access::Collection => matches!(role, Role::Admin | Role::Collector),
        }
    }

    fn needs_session(self) -> bool {
        matches!(
            self,
            Access::SignedIn | Access::Admin | Access::Results | Access::Collection
        )
    }
}

/// One row of the access table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    pub method: &'static str,
    pub pattern: &'static str,
    pub access: Access,
}

const fn rule(method: &'static str, pattern: &'static str, access: Access) -> Rule {
    Rule {
        method,
        pattern,
        access,
    }
}

/// Every route of the service and who may use it. Tests walk this table with every role.
pub const RULES: &[Rule] = &[
    rule("GET", "/", Access::Public),
    rule("GET", "/healthz", Access::Public),
    rule("GET", "/readyz", Access::Public),
    // The handler asks for SIPAS_METRICS_TOKEN, or answers 404 (see web::metrics).
    rule("GET", "/metrics", Access::Public),
    rule("GET", "/static/{file}", Access::Public),
    rule("GET", "/api/openapi.json", Access::Public),
    rule("POST", "/api/v1/transactions", Access::ApiKey),
    rule("GET", "/s/{token}", Access::Survey),
    rule("GET", "/S/{token}", Access::Survey),
    rule("POST", "/s/{token}", Access::Survey),
    rule("POST", "/S/{token}", Access::Survey),
    rule("GET", "/s/{token}/qr.svg", Access::Survey),
    rule("GET", "/S/{token}/QR.SVG", Access::Survey),
    rule("GET", "/s/{token}/qr.png", Access::Survey),
    rule("GET", "/S/{token}/QR.PNG", Access::Survey),
    rule("POST", "/s/{token}/step", Access::Survey),
    rule("GET", "/s/{token}/unsubscribe", Access::Survey),
    rule("POST", "/s/{token}/unsubscribe", Access::Survey),
    rule("GET", "/login", Access::SignIn),
    rule("POST", "/login", Access::SignIn),
    rule("POST", "/logout", Access::SignedIn),
    rule("GET", "/account", Access::SignedIn),
    rule("GET", "/account/password", Access::SignedIn),
    rule("POST", "/account/password", Access::SignedIn),
    rule("GET", "/agency", Access::Results),
    rule("GET", "/agency/units/{id}", Access::Results),
    rule("GET", "/collector", Access::Collection),
    rule("GET", "/admin", Access::Admin),
    rule("GET", "/admin/units", Access::Admin),
    rule("POST", "/admin/units", Access::Admin),
    rule("GET", "/admin/units/{id}", Access::Admin),
    rule("POST", "/admin/units/{id}/rename", Access::Admin),
    rule("POST", "/admin/units/{id}/move", Access::Admin),
    rule("POST", "/admin/units/{id}/merge", Access::Admin),
    rule("POST", "/admin/units/{id}/validity", Access::Admin),
    rule("POST", "/admin/units/{id}/counter-form", Access::Admin),
    rule("POST", "/admin/units/{id}/api-keys", Access::Admin),
    rule("POST", "/admin/api-keys/{id}/revoke", Access::Admin),
    rule("GET", "/admin/procedures", Access::Admin),
    rule("POST", "/admin/procedures", Access::Admin),
    rule("GET", "/admin/procedures/{id}", Access::Admin),
    rule("POST", "/admin/procedures/{id}", Access::Admin),
    rule("GET", "/admin/users", Access::Admin),
    rule("POST", "/admin/users", Access::Admin),
    rule("GET", "/admin/users/{id}", Access::Admin),
    rule("POST", "/admin/users/{id}", Access::Admin),
    rule("POST", "/admin/users/{id}/password", Access::Admin),
    rule("GET", "/admin/collector-orgs", Access::Admin),
    rule("POST", "/admin/collector-orgs", Access::Admin),
    rule("GET", "/admin/forms", Access::Admin),
    rule("GET", "/admin/periods", Access::Admin),
    rule("POST", "/admin/periods", Access::Admin),
    rule("GET", "/admin/periods/{id}", Access::Admin),
    rule("POST", "/admin/periods/{id}", Access::Admin),
    rule("GET", "/admin/audit", Access::Admin),
    rule("GET", "/admin/export/responses.csv", Access::Admin),
    rule("GET", "/admin/outbox", Access::Admin),
    rule("GET", "/admin/samples", Access::Admin),
    rule("POST", "/admin/samples", Access::Admin),
    rule("GET", "/paper/samples/{id}", Access::Collection),
    rule("GET", "/paper/batches", Access::Collection),
    rule("POST", "/paper/batches", Access::Collection),
    rule("GET", "/paper/batches/{id}", Access::Collection),
    rule("POST", "/paper/batches/{id}/delivered", Access::Collection),
    rule("POST", "/paper/batches/{id}/returned", Access::Collection),
    rule("GET", "/paper/entry", Access::Collection),
    rule("GET", "/paper/disputes", Access::Collection),
    rule("GET", "/paper/disputes/{serial}", Access::Collection),
    rule("POST", "/paper/disputes/{serial}", Access::Collection),
    rule("GET", "/paper/typists", Access::Collection),
    rule("POST", "/paper/entry/{serial}/undo", Access::Collection),
    rule("GET", "/paper/forms/{serial}/correct", Access::Admin),
    rule("POST", "/paper/forms/{serial}/correct", Access::Admin),
    rule("GET", "/paper/entry/open", Access::Collection),
    rule("GET", "/paper/entry/{serial}", Access::Collection),
    rule("POST", "/paper/entry/{serial}", Access::Collection),
    rule(
        "GET",
        "/paper/samples/{id}/worklist.csv",
        Access::Collection,
    ),
    rule("GET", "/paper/samples/{id}/forms", Access::Collection),
    rule("POST", "/admin/outbox/{id}/retry", Access::Admin),
    rule("POST", "/admin/units/{id}/invitations", Access::Admin),
    rule("GET", "/reports/units/{id}", Access::Results),
    rule("GET", "/reports/units/{id}/print", Access::Results),
    rule("GET", "/reports/units/{id}/export.csv", Access::Results),
    rule("GET", "/reports/units/{id}/export.xlsx", Access::Results),
    rule("GET", "/reports/ranking/export.xlsx", Access::Admin),
    rule("GET", "/api/v1/reports/units/{id}", Access::Results),
    rule("GET", "/reports/ranking", Access::Admin),
    rule("GET", "/reports/ranking/export.csv", Access::Admin),
    rule("GET", "/api/v1/reports/ranking", Access::Admin),
    rule("GET", "/admin/integrity", Access::Admin),
    rule("GET", "/admin/integrity/units/{id}", Access::Admin),
    rule("POST", "/admin/integrity/responses/{id}", Access::Admin),
    rule("GET", "/admin/groups", Access::Admin),
    rule("POST", "/admin/groups", Access::Admin),
    rule("GET", "/admin/groups/{id}", Access::Admin),
    rule("POST", "/admin/groups/{id}", Access::Admin),
    rule("GET", "/admin/campaigns", Access::Admin),
    rule("POST", "/admin/campaigns", Access::Admin),
    rule("GET", "/admin/campaigns/{id}", Access::Admin),
    rule("POST", "/admin/campaigns/{id}/invitees", Access::Admin),
    rule("GET", "/admin/campaigns/{id}/links.csv", Access::Admin),
    rule("GET", "/admin/campaigns/{id}/print", Access::Admin),
    // Pairing is open to any device (the code is the secret; rate-limited like surveys); the
    // screens check the device credential themselves.
    rule("GET", "/counter/pair", Access::Survey),
    rule("POST", "/counter/pair", Access::Survey),
    rule("GET", "/counter/{desk}/screen", Access::Public),
    rule("GET", "/counter/{desk}/events", Access::Public),
    rule("GET", "/counter/{desk}/kiosk", Access::Public),
    // Paired devices only (checked by the handler), limited per device: a centre's tablets
    // share one network address, so the per-address survey limit would refuse them.
    rule("POST", "/counter/{desk}/kiosk", Access::Public),
    rule("POST", "/counter/{desk}/kiosk/follow-up", Access::Public),
    rule("GET", "/agency/units/{id}/counter", Access::Results),
    rule("POST", "/agency/units/{id}/counter", Access::Results),
    rule("GET", "/agency/units/{id}/books", Access::Results),
    rule("POST", "/agency/units/{id}/books", Access::Results),
    rule(
        "GET",
        "/agency/units/{id}/books/{book}/print",
        Access::Results,
    ),
    rule("POST", "/api/v1/stickers/attach", Access::ApiKey),
    rule("GET", "/cases", Access::Results),
    rule("GET", "/cases/{id}", Access::Results),
    rule("POST", "/cases/{id}", Access::Results),
    rule("GET", "/admin/releases", Access::Admin),
    rule("POST", "/admin/releases", Access::Admin),
    rule("GET", "/public", Access::Public),
    rule("GET", "/public/ranking", Access::Public),
    rule("GET", "/public/units/{code}", Access::Public),
    rule("GET", "/public/units/{code}/badge.svg", Access::Public),
    rule("GET", "/public/releases", Access::Public),
    rule("GET", "/public/releases/{id}", Access::Public),
    rule("GET", "/public/releases/{id}/release.json", Access::Public),
    rule(
        "GET",
        "/public/releases/{id}/release.json.sig",
        Access::Public,
    ),
    rule("GET", "/public/releases/{id}/release.csv", Access::Public),
    rule("GET", "/public/catalog.json", Access::Public),
    rule("GET", "/public/key", Access::Public),
    rule("GET", "/public/key.pem", Access::Public),
];

pub fn rule_for(method: &Method, pattern: &str) -> Option<&'static Rule> {
    let method = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    RULES
        .iter()
        .find(|r| r.pattern == pattern && r.method == method)
}

/// The signed-in person, put in the request by the middleware.
#[derive(Debug, Clone)]
pub struct CurrentUser(pub Session);

impl CurrentUser {
    /// The person as use cases know them: role and scope, no session.
    pub fn actor(&self) -> crate::accounts::actor::Actor {
        crate::accounts::actor::Actor::of(&self.0.user)
    }
}

impl actix_web::FromRequest for CurrentUser {
    type Error = actix_web::Error;
    type Future = std::future::Ready<Result<Self, Self::Error>>;

    fn from_request(req: &actix_web::HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let found = req.extensions().get::<CurrentUser>().cloned();
        std::future::ready(
            found.ok_or_else(|| actix_web::error::ErrorUnauthorized("not signed in")),
        )
    }
}

/// The user agent of a request (empty when absent or not text).
pub fn user_agent(req: &actix_web::HttpRequest) -> String {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(512)
        .collect()
}

pub const LOGIN_CSRF_COOKIE: &str = "sipas_login_csrf";

fn header_values<'a>(
    req: &'a actix_web::HttpRequest,
    name: &'static str,
) -> impl Iterator<Item = &'a str> + 'a {
    req.headers().get_all(name).filter_map(|v| v.to_str().ok())
}

/// Whether the connection comes from a reverse proxy listed in `SIPAS_TRUSTED_PROXIES`.
fn from_trusted_proxy(req: &actix_web::HttpRequest, proxies: &TrustedProxies) -> bool {
    req.peer_addr().is_some_and(|p| proxies.contains(p.ip()))
}

/// The client's IP address, the one function every per-client decision uses (survey limiter,
/// sign-in limit, integrity fingerprints): the peer address, unless the peer is a trusted proxy;
/// then the right-most `X-Forwarded-For` entry (or, without that header, RFC 7239
/// `Forwarded: for=`) that is not itself a trusted proxy. Forwarding headers from any other peer
/// are ignored, so a client cannot pick its own address.
pub fn client_ip(req: &actix_web::HttpRequest, proxies: &TrustedProxies) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !proxies.contains(peer) {
        return Some(crate::proxy::canonical(peer));
    }
    let xff: Vec<&str> = header_values(req, "x-forwarded-for")
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    let hops = if xff.is_empty() {
        crate::proxy::forwarded_for(header_values(req, "forwarded"))
    } else {
        xff
    };
    Some(proxies.client_ip(peer, hops.into_iter()))
}

/// [`client_ip`] as text (`unknown` without a peer, as in unit tests).
pub fn client_address(req: &actix_web::HttpRequest, proxies: &TrustedProxies) -> String {
    client_ip(req, proxies)
        .map(|ip| ip.to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Headers by which a proxy tells who the client is and what it asked for.
const FORWARDING_HEADERS: [&str; 6] = [
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-real-ip",
];

/// Removes every forwarding header (what a peer that is no trusted proxy sent).
fn strip_forwarding(headers: &mut actix_web::http::header::HeaderMap) {
    for name in FORWARDING_HEADERS {
        headers.remove(name);
    }
}

/// Outermost middleware: forwarding headers from a peer that is not a trusted proxy are dropped
/// before anything reads them, the request log's client address included.
pub async fn drop_untrusted_forwarding<B: MessageBody>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<B>, actix_web::Error> {
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|state| from_trusted_proxy(req.request(), &state.settings.trusted_proxies));
    if !trusted {
        strip_forwarding(req.headers_mut());
    }
    next.call(req).await
}

/// The host the browser addressed, lower-case: what a trusted proxy says (`X-Forwarded-Host`,
/// else `Forwarded: host=`, its right-most entry), otherwise the request's own `Host`.
fn request_host(req: &actix_web::HttpRequest, proxies: &TrustedProxies) -> Option<String> {
    if from_trusted_proxy(req, proxies) {
        let forwarded = header_values(req, "x-forwarded-host")
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .filter(|h| !h.is_empty())
            .last()
            .or_else(|| {
                crate::proxy::forwarded_param(header_values(req, "forwarded"), "host")
                    .into_iter()
                    .rfind(|h| !h.is_empty())
            });
        if let Some(host) = forwarded {
            return Some(host.to_ascii_lowercase());
        }
    }
    req.headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .map(|h| h.to_ascii_lowercase())
}

type Res<B> = ServiceResponse<EitherBody<B, BoxBody>>;

fn reply<B>(req: ServiceRequest, response: HttpResponse) -> Res<B> {
    req.into_response(response.map_into_right_body())
}

fn denied(lang: Lang, status: StatusCode) -> HttpResponse {
    let (title, text) = match status {
        StatusCode::FORBIDDEN => (
            lang.pick("Không có quyền truy cập", "Access denied"),
            lang.pick(
                "Tài khoản của Ông/Bà không được phép xem trang này.",
                "Your account may not open this page.",
            ),
        ),
        _ => (
            lang.pick("Cần đăng nhập", "Sign-in required"),
            lang.pick(
                "Vui lòng đăng nhập để tiếp tục.",
                "Please sign in to continue.",
            ),
        ),
    };
    message_page(lang, status, title, text, None)
}

fn bad_form(lang: Lang) -> HttpResponse {
    message_page(
        lang,
        StatusCode::FORBIDDEN,
        lang.pick("Biểu mẫu không hợp lệ", "Invalid form"),
        lang.pick(
            "Biểu mẫu đã hết hạn hoặc không được gửi từ trang của hệ thống. Vui lòng tải lại trang và thử lại.",
            "The form has expired or was not sent from this site's page. Please reload the page and try again.",
        ),
        None,
    )
}

/// Where an unsafe request says it was sent from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sender {
    /// `Origin` (or, failing that, `Referer`) is this service.
    ThisSite,
    /// Another site, or `Origin: null`.
    Elsewhere,
    /// Neither header: a browser always sends one for its own form posts, so only tools and
    /// odd privacy set-ups do this.
    Unknown,
}

/// The scheme and host of a URL (`https://host:port`), lower-case.
fn origin_of(url: &str) -> String {
    let after_scheme = url.find("://").map(|i| i + 3).unwrap_or(0);
    let end = url[after_scheme..]
        .find(['/', '?', '#'])
        .map(|i| i + after_scheme)
        .unwrap_or(url.len());
    url[..end].to_ascii_lowercase()
}

/// Same-origin check for unsafe requests: `Origin` (or, failing that, `Referer`) must be this
/// service's public origin or the host the request was sent to, as seen by the server
/// (a forwarded host only from a trusted proxy).
fn sender(req: &ServiceRequest, public_base: &str, proxies: &TrustedProxies) -> Sender {
    let headers = req.headers();
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(origin_of)
        .or_else(|| {
            headers
                .get(header::REFERER)
                .and_then(|v| v.to_str().ok())
                .map(origin_of)
        });
    let Some(origin) = origin else {
        return Sender::Unknown;
    };
    if origin == origin_of(public_base) {
        return Sender::ThisSite;
    }
    let same_host = origin.split_once("://").is_some_and(|(_, host)| {
        request_host(req.request(), proxies).is_some_and(|seen| seen == host)
    });
    if same_host {
        Sender::ThisSite
    } else {
        Sender::Elsewhere
    }
}

fn no_sender(lang: Lang) -> HttpResponse {
    message_page(
        lang,
        StatusCode::FORBIDDEN,
        lang.pick("Biểu mẫu không hợp lệ", "Invalid form"),
        lang.pick(
            "Biểu mẫu không được gửi từ trang của hệ thống: trình duyệt không cho biết trang gửi (thiếu Origin và Referer). Vui lòng mở trang của hệ thống và gửi lại.",
            "The form was not sent from this site's page: the browser named no sending page (no Origin and no Referer). Please open the page on this site and send it again.",
        ),
        None,
    )
}

/// Constant-time comparison for secrets.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Reads the urlencoded body, returns its `csrf` field and puts the body back for the handler.
async fn take_csrf_field(req: &mut ServiceRequest, limit: usize) -> Option<String> {
    let mut payload = req.take_payload();
    let mut body = web::BytesMut::new();
    use futures_util::StreamExt;
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.ok()?;
        if body.len() + chunk.len() > limit {
            return None;
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let field = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&body)
        .ok()
        .and_then(|pairs| pairs.into_iter().find(|(k, _)| k == "csrf").map(|(_, v)| v));
    req.set_payload(actix_web::dev::Payload::from(body));
    field
}

/// The middleware: applies [`RULES`] to every request.
pub async fn enforce<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<Res<B>, actix_web::Error> {
    let Some(pattern) = req.match_pattern() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| actix_web::error::ErrorInternalServerError("state"))?;
    let lang = page_lang(req.request());
    let Some(rule) = rule_for(req.method(), &pattern) else {
        if RULES.iter().any(|r| r.pattern == pattern) {
            // Known route, other method: let the router answer 405.
            return Ok(next.call(req).await?.map_into_left_body());
        }
        tracing::error!(%pattern, "route has no access rule; refusing");
        return Ok(reply(req, denied(lang, StatusCode::FORBIDDEN)));
    };
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD);
    match rule.access {
        Access::Public | Access::ApiKey => {}
        Access::Survey => {
            let ip = client_ip(req.request(), &state.settings.trusted_proxies)
                .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
            if let Err(wait) = state.survey_limiter.check(ip) {
                let mut response = message_page(
                    lang,
                    StatusCode::TOO_MANY_REQUESTS,
                    lang.pick("Quá nhiều yêu cầu", "Too many requests"),
                    lang.pick(
                        "Có quá nhiều yêu cầu từ địa chỉ mạng này. Vui lòng chờ một lát rồi thử lại.",
                        "Too many requests came from this network address. Please wait a moment and try again.",
                    ),
                    None,
                );
                if let Ok(value) = header::HeaderValue::from_str(&wait.to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
                return Ok(reply(req, response));
            }
        }
        Access::SignIn => {
            if unsafe_method {
                // The sign-in form has its double-submit cookie; a post without Origin and
                // Referer is left to it.
                if sender(&req, &state.public_base(), &state.settings.trusted_proxies)
                    == Sender::Elsewhere
                {
                    return Ok(reply(req, bad_form(lang)));
                }
                let cookie = req.cookie(LOGIN_CSRF_COOKIE).map(|c| c.value().to_string());
                let field = take_csrf_field(&mut req, state.settings.max_body_bytes).await;
                let ok = matches!((&cookie, &field), (Some(c), Some(f)) if !c.is_empty() && same_secret(c, f));
                if !ok {
                    return Ok(reply(req, bad_form(lang)));
                }
            }
        }
        Access::SignedIn | Access::Admin | Access::Results | Access::Collection => {
            let token = req
                .cookie(sessions::COOKIE_NAME)
                .map(|c| c.value().to_string());
            let session = match token {
                Some(token) => {
                    let pool = state.pool.clone();
                    web::block(move || -> anyhow::Result<Option<Session>> {
                        let mut conn = pool.get()?;
                        Ok(sessions::lookup(&mut conn, &token, crate::db::now())?)
                    })
                    .await
                    .map_err(actix_web::error::ErrorInternalServerError)?
                    .map_err(actix_web::error::ErrorInternalServerError)?
                }
                None => None,
            };
            let Some(session) = session else {
                if req.path().starts_with("/api/") {
                    // API callers get the JSON error shape, never a sign-in page.
                    let response = super::errors::render(req.request(), StatusCode::UNAUTHORIZED);
                    return Ok(reply(req, response));
                }
                if !unsafe_method {
                    let next_path = req
                        .uri()
                        .path_and_query()
                        .map(|p| p.as_str().to_string())
                        .unwrap_or_default();
                    let location = format!("/login?next={}", urlencode(&next_path));
                    return Ok(reply(
                        req,
                        HttpResponse::SeeOther()
                            .insert_header((header::LOCATION, location))
                            .finish(),
                    ));
                }
                return Ok(reply(req, denied(lang, StatusCode::UNAUTHORIZED)));
            };
            if rule.access.needs_session() && !rule.access.admits(session.user.role()) {
                let response = if req.path().starts_with("/api/") {
                    super::errors::render(req.request(), StatusCode::FORBIDDEN)
                } else {
                    denied(lang, StatusCode::FORBIDDEN)
                };
                return Ok(reply(req, response));
            }
            if unsafe_method {
                let field = take_csrf_field(&mut req, state.settings.max_body_bytes).await;
                let token_ok = field
                    .as_deref()
                    .is_some_and(|f| same_secret(f, &session.csrf_token));
                match sender(&req, &state.public_base(), &state.settings.trusted_proxies) {
                    Sender::ThisSite if token_ok => {}
                    Sender::Unknown if token_ok => return Ok(reply(req, no_sender(lang))),
                    _ => return Ok(reply(req, bad_form(lang))),
                }
            }
            let changing_password = pattern == "/account/password" || pattern == "/logout";
            if session.user.must_change_password && !changing_password {
                return Ok(reply(
                    req,
                    HttpResponse::SeeOther()
                        .insert_header((header::LOCATION, "/account/password"))
                        .finish(),
                ));
            }
            req.extensions_mut().insert(CurrentUser(session));
        }
    }
    let set_lang = req
        .query_string()
        .split('&')
        .find_map(|kv| kv.strip_prefix("lang="))
        .map(|v| Lang::from_param(Some(v)));
    let secure = state.settings.secure_cookies();
    let private = rule.access.needs_session()
        || rule.access == Access::Survey
        || rule.access == Access::SignIn;
    let mut res = next.call(req).await?;
    if private && !res.headers().contains_key(header::CACHE_CONTROL) {
        // Nothing personal stays in a shared computer's cache after sign-out.
        res.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("no-store"),
        );
    }
    if let Some(lang) = set_lang {
        let cookie = actix_web::cookie::Cookie::build(LANG_COOKIE, lang.code())
            .path("/")
            .http_only(true)
            .secure(secure)
            .same_site(actix_web::cookie::SameSite::Lax)
            .max_age(actix_web::cookie::time::Duration::days(365))
            .finish();
        let _ = res.response_mut().add_cookie(&cookie);
    }
    Ok(res.map_into_left_body())
}

/// Percent-encodes a path for a query parameter.
pub fn urlencode(s: &str) -> String {
    serde_urlencoded::to_string([("x", s)])
        .map(|e| e[2..].to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn proxies() -> TrustedProxies {
        "10.0.0.0/8".parse().unwrap()
    }

    fn from(peer: &str) -> TestRequest {
        TestRequest::default().peer_addr(peer.parse().unwrap())
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_proxies() {
        let p = proxies();
        let spoof = from("203.0.113.1:5000")
            .insert_header(("X-Forwarded-For", "1.2.3.4"))
            .insert_header(("Forwarded", "for=1.2.3.4"))
            .to_http_request();
        assert_eq!(client_ip(&spoof, &p), ip("203.0.113.1"));
        // Several header lines make one list; the last entry not a proxy is the client.
        let proxied = from("10.0.0.2:5000")
            .append_header(("X-Forwarded-For", "1.2.3.4, 198.51.100.2"))
            .append_header(("X-Forwarded-For", "198.51.100.9, 10.1.1.1"))
            .insert_header(("Forwarded", "for=5.6.7.8"))
            .to_http_request();
        assert_eq!(client_ip(&proxied, &p), ip("198.51.100.9"));
        let rfc = from("10.0.0.2:5000")
            .insert_header(("Forwarded", "for=1.2.3.4, for=\"[2001:db8::7]:80\""))
            .to_http_request();
        assert_eq!(client_ip(&rfc, &p), ip("2001:db8::7"));
        assert_eq!(
            client_address(&TestRequest::default().to_http_request(), &p),
            "unknown"
        );
    }

    #[test]
    fn untrusted_forwarding_headers_are_dropped() {
        let mut req = TestRequest::default()
            .insert_header(("X-Forwarded-For", "1.2.3.4"))
            .insert_header(("Forwarded", "for=1.2.3.4;host=evil.example"))
            .insert_header(("X-Forwarded-Host", "evil.example"))
            .insert_header(("X-Forwarded-Proto", "https"))
            .insert_header(("X-Real-IP", "1.2.3.4"))
            .insert_header((header::HOST, "sipas.example.vn"))
            .to_srv_request();
        strip_forwarding(req.headers_mut());
        assert_eq!(req.connection_info().host(), "sipas.example.vn");
        assert_eq!(req.connection_info().scheme(), "http");
        assert_eq!(req.connection_info().realip_remote_addr(), None);
        assert_eq!(req.headers().len(), 1);
    }

    #[test]
    fn origin_must_name_this_site() {
        let p = proxies();
        let base = "https://sipas.example.vn";
        let check = |req: TestRequest| sender(&req.to_srv_request(), base, &p);
        let host = |peer: &str| from(peer).insert_header((header::HOST, "10.0.0.9:8080"));
        assert_eq!(check(host("203.0.113.1:1")), Sender::Unknown);
        assert_eq!(
            check(host("203.0.113.1:1").insert_header((header::ORIGIN, base))),
            Sender::ThisSite
        );
        assert_eq!(
            check(
                host("203.0.113.1:1")
                    .insert_header((header::REFERER, "https://SIPAS.example.vn/admin?x=1"))
            ),
            Sender::ThisSite
        );
        assert_eq!(
            check(host("203.0.113.1:1").insert_header((header::ORIGIN, "http://10.0.0.9:8080"))),
            Sender::ThisSite,
            "the host the request was sent to"
        );
        assert_eq!(
            check(host("203.0.113.1:1").insert_header((header::ORIGIN, "null"))),
            Sender::Elsewhere
        );
        // X-Forwarded-Host counts from a trusted proxy only.
        let forwarded = |peer: &str| {
            host(peer)
                .insert_header((header::ORIGIN, "https://evil.example"))
                .insert_header(("X-Forwarded-Host", "evil.example"))
        };
        assert_eq!(check(forwarded("203.0.113.1:1")), Sender::Elsewhere);
        assert_eq!(check(forwarded("10.0.0.2:1")), Sender::ThisSite);
    }
}
