//! Issue #20, at the counter: SMS and Zalo invitations delivered to fake gateways on 127.0.0.1
//! (started here) exactly once across an outage, a 429 and a restart; quiet hours; numbers
//! erased like e-mail addresses. The desk screen and its pairing.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use diesel::prelude::*;
use serde_json::{Value, json};
use sipas::db::schema::{outbox, phone_contacts, transactions, zalo_tokens};
use sipas::db_run;

use crate::helpers::{Backend, TestApp, full_answers, transaction_body};

const WAIT: Duration = Duration::from_secs(60);

/// What the fake gateway saw and how it answers.
#[derive(Default)]
struct Gateway {
    /// Every request (method path), accepted or not.
    requests: Vec<String>,
    /// Bodies of the messages it accepted.
    accepted: Vec<Value>,
    /// Statuses to answer before accepting again (e.g. a 429).
    script: VecDeque<u16>,
    /// Zalo: the access token it currently accepts, the refresh token it expects, refreshes.
    access: Option<String>,
    refresh: String,
    refreshes: usize,
    /// Zalo: the access token expires after this many accepted messages.
    expire_after: Option<usize>,
}

type Shared = Arc<Mutex<Gateway>>;

struct FakeServer {
    state: Shared,
    handle: actix_web::dev::ServerHandle,
}

impl FakeServer {
    /// Starts the fake SMS gateway and Zalo API on `port` of 127.0.0.1.
    fn start(port: u16, state: Shared) -> Self {
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/send", web::post().to(sms))
                .route("/message/template", web::post().to(zns))
                .route("/v4/oa/access_token", web::post().to(oauth))
        })
        .workers(1)
        .bind(("127.0.0.1", port))
        .expect("fake gateway binds")
        .run();
        let handle = server.handle();
        actix_web::rt::spawn(server);
        Self { state, handle }
    }

    fn accepted(&self) -> Vec<Value> {
        self.state.lock().unwrap().accepted.clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Value> {
        let started = std::time::Instant::now();
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n {
                return accepted;
            }
            assert!(
                started.elapsed() < WAIT,
                "{n} messages expected, {} arrived",
                accepted.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn stop(self) {
        self.handle.stop(true).await;
    }
}

async fn sms(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let mut gateway = state.lock().unwrap();
    gateway.requests.push(format!("POST {}", req.path()));
    if req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        != Some("Basic c2lwYXM6cHc=")
    {
        return HttpResponse::Unauthorized().finish();
    }
    if let Some(status) = gateway.script.pop_front() {
        return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
            .insert_header(("Retry-After", "1"))
            .finish();
    }
    let body: Value = serde_json::from_slice(&body).expect("the template makes JSON");
    gateway.accepted.push(body);
    HttpResponse::Ok().json(json!({"status": "queued"}))
}

async fn zns(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let mut gateway = state.lock().unwrap();
    gateway.requests.push(format!("POST {}", req.path()));
    let token = req
        .headers()
        .get("access_token")
        .and_then(|v| v.to_str().ok());
    if token.is_none() || token != gateway.access.as_deref() {
        return HttpResponse::Ok()
            .json(json!({"error": -124, "message": "Access token is invalid"}));
    }
    let body: Value = serde_json::from_slice(&body).expect("JSON");
    gateway.accepted.push(body);
    if gateway.expire_after == Some(gateway.accepted.len()) {
        gateway.access = None;
    }
    HttpResponse::Ok().json(json!({"error": 0, "message": "Success", "data": {"msg_id": "m"}}))
}

async fn oauth(req: HttpRequest, body: web::Bytes, state: web::Data<Shared>) -> HttpResponse {
    let mut gateway = state.lock().unwrap();
    gateway.requests.push(format!("POST {}", req.path()));
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let secret_ok = req
        .headers()
        .get("secret_key")
        .and_then(|v| v.to_str().ok())
        == Some("zalo-secret");
    if !secret_ok
        || field("app_id") != Some("app-1")
        || field("grant_type") != Some("refresh_token")
        || field("refresh_token") != Some(gateway.refresh.as_str())
    {
        return HttpResponse::Ok()
            .json(json!({"error": -14014, "error_description": "Invalid refresh token"}));
    }
    gateway.refreshes += 1;
    let n = gateway.refreshes;
    gateway.access = Some(format!("acc-{n}"));
    gateway.refresh = format!("ref-{n}");
    HttpResponse::Ok().json(json!({
        "access_token": format!("acc-{n}"), "refresh_token": format!("ref-{n}"), "expires_in": "90000"
    }))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn sms_settings(port: u16) -> impl Fn(&mut sipas::config::Settings) + Copy {
    move |s| {
        s.sms_url = Some(format!("http://127.0.0.1:{port}/send"));
        s.sms_auth_header = Some("Authorization: Basic c2lwYXM6cHc=".into());
        s.phone_quiet_hours = "off".into();
        s.mail_retry_base_seconds = 1;
    }
}

fn zalo_settings(port: u16) -> impl Fn(&mut sipas::config::Settings) + Copy {
    move |s| {
        s.zalo_base_url = format!("http://127.0.0.1:{port}");
        s.zalo_oauth_url = format!("http://127.0.0.1:{port}/");
        s.zalo_app_id = Some("app-1".into());
        s.zalo_secret_key = Some("zalo-secret".into());
        s.zalo_refresh_token = Some("ref-0".into());
        s.zalo_template_id = Some("tpl-invite".into());
        s.phone_quiet_hours = "off".into();
        s.mail_retry_base_seconds = 1;
    }
}

async fn register_with_phone(app: &TestApp, dossier: &str, phone: &str) -> Value {
    let mut body = transaction_body(dossier);
    body["phone"] = json!(phone);
    // Completed now, so the survey (14 days) is far from expiry and a reminder is scheduled.
    body["completed_at"] = json!(chrono::Utc::now().to_rfc3339());
    body["received_at"] = json!((chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339());
    body["due_at"] = json!((chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339());
    let response = app.post_transaction(&body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

/// (kind, channel, status, attempts) of a dossier's messages.
fn messages(app: &TestApp, dossier: &str) -> Vec<(String, String, String, i64)> {
    let conn = &mut app.conn();
    db_run!(conn: {
        outbox::table
            .inner_join(transactions::table.on(transactions::id.eq(outbox::transaction_id)))
            .filter(transactions::dossier_code.eq(dossier))
            .order(outbox::kind.asc())
            .select((outbox::kind, outbox::channel, outbox::status, outbox::attempts))
            .load(conn)
    })
    .unwrap()
}

fn number_kept(app: &TestApp, dossier: &str) -> bool {
    let conn = &mut app.conn();
    let n: i64 = db_run!(conn: {
        phone_contacts::table
            .inner_join(transactions::table.on(transactions::id.eq(phone_contacts::transaction_id)))
            .filter(transactions::dossier_code.eq(dossier))
            .count()
            .get_result(conn)
    })
    .unwrap();
    n == 1
}

crate::on_both_databases!(
    backend: sms_delivered_once_across_an_outage_a_429_and_a_restart,
    sms_number_erased_once_nothing_is_due,
    sms_refused_for_good_is_failed_not_retried,
    sms_reminder_follows_the_same_rules,
    quiet_hours_hold_phone_messages,
    zalo_refreshes_its_token_and_delivers_once,
    desk_screen_is_paired_live_and_kept_to_its_desk,
    a_screen_served_by_one_instance_follows_registrations_on_another,
);

async fn sms_delivered_once_across_an_outage_a_429_and_a_restart(backend: Backend) {
    let port = free_port(); // left closed: the gateway is down
    let app = TestApp::spawn_with(backend, sms_settings(port)).await;
    let dossiers = ["HS-SMS-1", "HS-SMS-2", "HS-SMS-3"];
    let phones = ["0912345671", "+84 912 345 672", "84912345673"];
    let mut surveys = Vec::new();
    for (d, p) in dossiers.iter().zip(phones) {
        surveys.push(register_with_phone(&app, d, p).await);
    }
    let started = std::time::Instant::now();
    while !dossiers.iter().all(|d| {
        let invitation = &messages(&app, d)[0];
        invitation.3 >= 1 && invitation.2 != "sending"
    }) {
        assert!(
            started.elapsed() < WAIT,
            "every invitation tried during the outage"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for d in dossiers {
        let m = messages(&app, d);
        assert_eq!(m.len(), 2, "invitation and reminder by SMS: {m:?}");
        assert_eq!(
            (m[0].0.as_str(), m[0].1.as_str(), m[0].2.as_str()),
            ("invitation", "sms", "queued")
        );
        assert_eq!((m[1].0.as_str(), m[1].2.as_str()), ("reminder", "queued"));
    }
    // sipas restarts; the gateway comes back and first answers 429 (rate limited).
    let app = app.restart(sms_settings(port)).await;
    let state: Shared = Arc::new(Mutex::new(Gateway {
        script: VecDeque::from([429]),
        ..Default::default()
    }));
    let gateway = FakeServer::start(port, state.clone());
    gateway.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let accepted = gateway.accepted();
    assert_eq!(accepted.len(), 3, "nothing sent twice: {accepted:?}");
    assert!(
        state.lock().unwrap().requests.len() >= 4,
        "the 429 was answered"
    );
    let mut to: Vec<&str> = accepted.iter().map(|b| b["to"].as_str().unwrap()).collect();
    to.sort();
    assert_eq!(to, ["84912345671", "84912345672", "84912345673"]);
    let mut ids: Vec<&str> = accepted.iter().map(|b| b["id"].as_str().unwrap()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one message id each");
    for body in &accepted {
        let text = body["message"].as_str().unwrap();
        assert!(text.is_ascii(), "GSM-safe text: {text}");
        assert!(text.contains("/unsubscribe"), "{text}");
    }
    // The texts link to the surveys that were issued.
    for survey in &surveys {
        let token = survey["token"].as_str().unwrap();
        assert!(
            accepted.iter().any(|b| b["message"]
                .as_str()
                .unwrap()
                .contains(&format!("/s/{token}?via=sms"))),
            "a text links to {token}"
        );
    }
    for d in dossiers {
        let m = messages(&app, d);
        assert_eq!(m[0].2, "sent");
        assert!(number_kept(&app, d), "the reminder is still due");
    }
    // Answering cancels the reminder and erases the number; so does the opt-out link.
    let form = app
        .state
        .forms
        .latest(surveys[0]["form"].as_str().unwrap())
        .unwrap();
    // The restarted service listens on another port: survey URLs from its tokens.
    let survey_url = |i: usize| app.url(&format!("/s/{}", surveys[i]["token"].as_str().unwrap()));
    let answered = app.submit(&survey_url(0), &full_answers(&form)).await;
    assert_eq!(answered.status(), 200);
    assert!(!number_kept(&app, dossiers[0]), "answered: number erased");
    assert_eq!(messages(&app, dossiers[0])[1].2, "cancelled");
    let unsubscribe = format!("{}/unsubscribe", survey_url(1));
    let page = app.client.get(&unsubscribe).send().await.unwrap();
    assert!(page.status().is_success(), "{}", page.status());
    let form_post = app
        .client
        .post(&unsubscribe)
        .form(&[("lang", "vi")])
        .send()
        .await
        .unwrap();
    assert!(form_post.status().is_success() || form_post.status().is_redirection());
    assert!(!number_kept(&app, dossiers[1]), "opted out: number erased");
    assert!(number_kept(&app, dossiers[2]));
    gateway.stop().await;
}

async fn sms_number_erased_once_nothing_is_due(backend: Backend) {
    let port = free_port();
    let state: Shared = Arc::default();
    let gateway = FakeServer::start(port, state.clone());
    // A reminder this close to the expiry is never scheduled: the invitation is all there is.
    let app = TestApp::spawn_with(backend, move |s| {
        sms_settings(port)(s);
        s.mail_reminder_hours = 14 * 24;
    })
    .await;
    let survey = register_with_phone(&app, "HS-SMS-ERASE", "0987654321").await;
    assert!(number_kept(&app, "HS-SMS-ERASE"));
    let accepted = gateway.wait_for(1).await;
    assert_eq!(accepted[0]["to"], "84987654321");
    let started = std::time::Instant::now();
    while number_kept(&app, "HS-SMS-ERASE") {
        assert!(
            started.elapsed() < WAIT,
            "the number is erased after the last message"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(messages(&app, "HS-SMS-ERASE").len(), 1);
    // A registration without a phone keeps none, and a bad number is refused, naming the field.
    app.issue_survey("HS-SMS-NONE", None).await;
    assert!(!number_kept(&app, "HS-SMS-NONE"));
    let mut body = transaction_body("HS-SMS-BAD");
    body["phone"] = json!("12345");
    let refused = app.post_transaction(&body).await;
    assert_eq!(refused.status(), 422);
    let text = refused.text().await.unwrap();
    assert!(text.contains("phone"), "{text}");
    // The link in the text opens the survey.
    let text = accepted[0]["message"].as_str().unwrap();
    let link = text
        .split_whitespace()
        .find(|w| w.contains("?via=sms"))
        .unwrap();
    assert!(link.contains(survey["token"].as_str().unwrap()));
    let page = app.client.get(link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    gateway.stop().await;
}

async fn quiet_hours_hold_phone_messages(backend: Backend) {
    let port = free_port();
    let state: Shared = Arc::default();
    let gateway = FakeServer::start(port, state.clone());
    // Quiet from two hours ago to two hours ahead, in the province's time (+07:00).
    let local = chrono::Utc::now().naive_utc() + chrono::Duration::hours(7);
    let window = format!(
        "{}-{}",
        (local - chrono::Duration::hours(2)).format("%H:%M"),
        (local + chrono::Duration::hours(2)).format("%H:%M")
    );
    let app = TestApp::spawn_with(backend, move |s| {
        sms_settings(port)(s);
        s.phone_quiet_hours = window.clone();
    })
    .await;
    register_with_phone(&app, "HS-QUIET", "0912000111").await;
    // Several sender passes (every 100 ms here) go by without a message.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        state.lock().unwrap().requests.is_empty(),
        "nothing sent in quiet hours"
    );
    assert_eq!(messages(&app, "HS-QUIET")[0].2, "queued");
    assert_eq!(messages(&app, "HS-QUIET")[0].3, 0);
    // Once the quiet hours are over (a pass five hours later), the invitation goes.
    let settings = app.state.settings.clone();
    let secret = app.state.secret.clone();
    let pool = app.state.pool.clone();
    let pass = tokio::task::spawn_blocking(move || {
        let policy =
            sipas::mail::phone_sender::PhonePolicy::from_settings(&settings, secret).unwrap();
        let client = reqwest::blocking::Client::new();
        let mut conn = pool.get().unwrap();
        let later = sipas::db::now() + chrono::Duration::hours(5);
        let quiet =
            sipas::mail::phone_sender::run_once(&mut conn, &client, &policy, sipas::db::now())
                .unwrap();
        let pass = sipas::mail::phone_sender::run_once(&mut conn, &client, &policy, later).unwrap();
        (quiet, pass)
    })
    .await
    .unwrap();
    assert!(pass.0.quiet && pass.0.sent == 0);
    assert_eq!(pass.1.sent, 1, "{:?}", pass.1);
    assert_eq!(gateway.accepted().len(), 1);
    assert_eq!(messages(&app, "HS-QUIET")[0].2, "sent");
    gateway.stop().await;
}

async fn zalo_refreshes_its_token_and_delivers_once(backend: Backend) {
    let port = free_port();
    let state: Shared = Arc::new(Mutex::new(Gateway {
        refresh: "ref-0".into(),
        expire_after: Some(1),
        ..Default::default()
    }));
    let gateway = FakeServer::start(port, state.clone());
    let app = TestApp::spawn_with(backend, zalo_settings(port)).await;
    let first = register_with_phone(&app, "HS-ZALO-1", "0912345001").await;
    gateway.wait_for(1).await;
    // The first access token expires after one message: the second needs a refresh.
    register_with_phone(&app, "HS-ZALO-2", "0912345002").await;
    gateway.wait_for(2).await;
    let app = app.restart(zalo_settings(port)).await;
    register_with_phone(&app, "HS-ZALO-3", "0912345003").await;
    let accepted = gateway.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(gateway.accepted().len(), 3, "each sent once");
    assert_eq!(
        state.lock().unwrap().refreshes,
        2,
        "refreshed when needed, not after the restart"
    );
    let phones: Vec<&str> = accepted
        .iter()
        .map(|b| b["phone"].as_str().unwrap())
        .collect();
    assert_eq!(phones, ["84912345001", "84912345002", "84912345003"]);
    let data = &accepted[0]["template_data"];
    assert_eq!(accepted[0]["template_id"], "tpl-invite");
    assert_eq!(data["token"], first["token"]);
    assert!(data["survey_url"].as_str().unwrap().ends_with("?via=zalo"));
    assert_eq!(data["unit"], "Sở Tư pháp");
    for d in ["HS-ZALO-1", "HS-ZALO-2", "HS-ZALO-3"] {
        let m = messages(&app, d);
        assert_eq!((m[0].1.as_str(), m[0].2.as_str()), ("zalo", "sent"), "{d}");
    }
    // The newest single-use refresh token is kept in the database for every instance.
    let conn = &mut app.conn();
    let stored: String = db_run!(conn: {
        zalo_tokens::table.select(zalo_tokens::refresh_token).first(conn)
    })
    .unwrap();
    assert_eq!(stored, "ref-2");
    gateway.stop().await;
}

/// A device's HTTP client: keeps its cookies like the screen's browser would.
fn device_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The pairing code on the staff page.
fn code_in(html: &str) -> String {
    let start = html
        .find("class=\"pairing-code\"><code>")
        .expect("a pairing code is shown")
        + "class=\"pairing-code\"><code>".len();
    html[start..start + 9].to_string()
}

/// Reads server-sent events until a `screen` event arrives; its `key` and `html`.
async fn next_screen_event(
    events: &mut reqwest::Response,
    buffer: &mut String,
) -> (String, String) {
    let read = async {
        loop {
            while let Some(end) = buffer.find("\n\n") {
                let block: String = buffer.drain(..end + 2).collect();
                if let Some(data) = block.strip_prefix("event: screen\ndata: ") {
                    let data: Value = serde_json::from_str(data.trim()).unwrap();
                    return (
                        data["key"].as_str().unwrap().to_string(),
                        data["html"].as_str().unwrap().to_string(),
                    );
                }
            }
            let chunk = events
                .chunk()
                .await
                .unwrap()
                .expect("the stream stays open");
            buffer.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .expect("a screen event")
}

async fn register_at_desk(app: &TestApp, unit: &str, dossier: &str, desk: &str) -> Value {
    let mut body = transaction_body(dossier);
    body["unit"] = json!(unit);
    body["counter"] = json!(desk);
    let response = app.post_transaction(&body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn desk_screen_is_paired_live_and_kept_to_its_desk(backend: Backend) {
    use crate::helpers::staff::{TEST_PASSWORD, create_user, sign_in, unit_id};
    use sipas::accounts::Role;
    let app = TestApp::spawn(backend).await;
    let stp = unit_id(&app, "STP");
    create_user(&app, "agency-stp", Role::Agency, Some("STP"), None);
    create_user(&app, "agency-sxd", Role::Agency, Some("SXD"), None);
    let staff = sign_in(&app, "agency-stp", TEST_PASSWORD).await;
    let other = sign_in(&app, "agency-sxd", TEST_PASSWORD).await;
    let page_path = format!("/agency/units/{stp}/counter");
    // Another agency's unit does not exist for it; a bad desk code is refused by name.
    assert_eq!(other.get(&app, &page_path).await.status(), 404);
    assert_eq!(
        other
            .post(&app, &page_path, &[("action", "pair"), ("desk", "Q1")])
            .await
            .status(),
        404
    );
    assert_eq!(
        staff
            .post(&app, &page_path, &[("action", "pair"), ("desk", "quầy 1")])
            .await
            .status(),
        422
    );
    let created = staff
        .post(&app, &page_path, &[("action", "pair"), ("desk", "Q1")])
        .await;
    assert_eq!(created.status(), 200);
    let code = code_in(&created.text().await.unwrap());

    // The device types the code (in lower case, as people do) and becomes desk Q1's screen.
    let device = device_client();
    let unpaired = device
        .get(app.url("/counter/Q1/screen"))
        .send()
        .await
        .unwrap();
    assert_eq!(unpaired.status(), 401);
    let paired = device
        .post(app.url("/counter/pair"))
        .form(&[("code", code.to_lowercase().as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(paired.status(), 303);
    assert_eq!(
        crate::helpers::staff::location(&paired).as_deref(),
        Some("/counter/Q1/screen")
    );
    let again = device_client()
        .post(app.url("/counter/pair"))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 422, "a code pairs one device");
    let idle = device
        .get(app.url("/counter/Q1/screen"))
        .send()
        .await
        .unwrap();
    assert_eq!(idle.status(), 200);
    let idle = idle.text().await.unwrap();
    assert!(
        idle.contains("Quầy Q1") && idle.contains("http-equiv=\"refresh\""),
        "{idle}"
    );

    // Live: the stream tells the screen as soon as the desk registers a dossier.
    let mut events = device
        .get(app.url("/counter/Q1/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers()["content-type"], "text/event-stream");
    let mut buffer = String::new();
    let (key, _) = next_screen_event(&mut events, &mut buffer).await;
    assert_eq!(key, "", "nothing to show yet");
    let issued = register_at_desk(&app, "STP", "HS-DESK-1", "Q1").await;
    let (key, html) = next_screen_event(&mut events, &mut buffer).await;
    let token = issued["token"].as_str().unwrap();
    assert!(key.ends_with(&format!("/s/{token}")), "{key}");
    assert!(html.contains("<svg"), "{html}");
    assert!(
        html.contains("Cấp Phiếu lý lịch tư pháp cho công dân Việt Nam"),
        "the procedure is named"
    );
    assert!(
        !html.contains("HS-DESK-1"),
        "nothing personal on the screen"
    );
    let page = device
        .get(app.url("/counter/Q1/screen"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/s/{token}")),
        "the page shows the same survey"
    );

    // Desk Q1 of another unit, and another desk of this unit, are not this screen's.
    register_at_desk(&app, "SXD", "HS-DESK-SXD", "Q1").await;
    register_at_desk(&app, "STP", "HS-DESK-Q2", "Q2").await;
    let page = device
        .get(app.url("/counter/Q1/screen"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("/s/{token}")),
        "still this unit's desk Q1"
    );
    assert_eq!(
        device
            .get(app.url("/counter/Q2/screen"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        device
            .get(app.url("/counter/Q2/events"))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );

    // An answer clears the screen.
    let form = app
        .state
        .forms
        .latest(issued["form"].as_str().unwrap())
        .unwrap();
    let answered = app
        .submit(issued["survey_url"].as_str().unwrap(), &full_answers(&form))
        .await;
    assert_eq!(answered.status(), 200);
    let (key, html) = next_screen_event(&mut events, &mut buffer).await;
    assert_eq!(key, "");
    assert!(html.contains("Quầy Q1"));
    drop(events);

    // Revoked on the staff page: the device is no longer paired.
    let device_id = {
        let conn = &mut app.conn();
        sipas::counter::devices::list(conn, &stp).unwrap()[0]
            .id
            .clone()
    };
    let revoked = staff
        .post(
            &app,
            &page_path,
            &[("action", "revoke"), ("device", device_id.as_str())],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(
        device
            .get(app.url("/counter/Q1/screen"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
}

#[actix_web::test]
async fn the_screen_clears_after_its_time() {
    use sipas::counter::{DeskCode, screen};
    let app = TestApp::spawn(Backend::Sqlite).await;
    let issued = register_at_desk(&app, "STP", "HS-DESK-TIME", "Q9").await;
    let conn = &mut app.conn();
    let stp = crate::helpers::staff::unit_id(&app, "STP");
    let desk = DeskCode::parse("Q9").unwrap();
    let now = sipas::db::now();
    let shown = screen::current(conn, &stp, &desk, now, chrono::Duration::seconds(180)).unwrap();
    assert_eq!(
        shown.unwrap().transaction_id,
        issued["transaction_id"].as_str().unwrap()
    );
    let later = now + chrono::Duration::seconds(181);
    assert_eq!(
        screen::current(conn, &stp, &desk, later, chrono::Duration::seconds(180)).unwrap(),
        None
    );
    // Only the latest registration matters: a desk's rows older than a day go as new ones come.
    let next = app.issue_survey("HS-DESK-NEXT", None).await;
    let two_days = now + chrono::Duration::days(2);
    let next_id = next["transaction_id"].as_str().unwrap();
    sipas::counter::record_registration(conn, next_id, &stp, &desk, two_days).unwrap();
    let kept: Vec<String> = db_run!(conn: {
        sipas::db::schema::desk_registrations::table
            .select(sipas::db::schema::desk_registrations::transaction_id)
            .load(conn)
    })
    .unwrap();
    assert_eq!(kept, vec![next_id.to_string()]);
}

async fn sms_refused_for_good_is_failed_not_retried(backend: Backend) {
    let port = free_port();
    let state: Shared = Arc::new(Mutex::new(Gateway {
        script: VecDeque::from([400]),
        ..Default::default()
    }));
    let gateway = FakeServer::start(port, state.clone());
    let app = TestApp::spawn_with(backend, sms_settings(port)).await;
    register_with_phone(&app, "HS-SMS-400", "0912888999").await;
    let started = std::time::Instant::now();
    while messages(&app, "HS-SMS-400")[0].2 != "failed" {
        assert!(started.elapsed() < WAIT, "a 400 fails the message");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let m = messages(&app, "HS-SMS-400");
    assert_eq!(m[0].3, 1, "one attempt only: {m:?}");
    assert!(gateway.accepted().is_empty());
    assert_eq!(state.lock().unwrap().requests.len(), 1);
    // Failed messages wait for an administrator's retry: the number is kept until then.
    assert!(number_kept(&app, "HS-SMS-400"));
    let conn = &mut app.conn();
    let error: Option<String> = db_run!(conn: {
        outbox::table.filter(outbox::status.eq("failed")).select(outbox::last_error).first(conn)
    })
    .unwrap();
    assert!(error.unwrap().contains("400"));
    gateway.stop().await;
}

async fn a_screen_served_by_one_instance_follows_registrations_on_another(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A second instance on the same database, as behind a load balancer.
    let other = sipas::Application::build(crate::helpers::test_settings(&app.database_url))
        .expect("second instance starts");
    let other_base = other.state().public_base();
    let other_handle = other.handle();
    let other_task = actix_web::rt::spawn(other.run_until_stopped());
    let code = {
        let conn = &mut app.conn();
        let stp = crate::helpers::staff::unit_id(&app, "STP");
        let desk = sipas::counter::DeskCode::parse("Q3").unwrap();
        sipas::counter::devices::create_pairing(conn, &stp, &desk, "test", sipas::db::now())
            .unwrap()
            .code
    };
    let device = device_client();
    let paired = device
        .post(format!("{other_base}/counter/pair"))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(paired.status(), 303);
    let mut events = device
        .get(format!("{other_base}/counter/Q3/events"))
        .send()
        .await
        .unwrap();
    let mut buffer = String::new();
    assert_eq!(next_screen_event(&mut events, &mut buffer).await.0, "");
    let issued = register_at_desk(&app, "STP", "HS-DESK-OTHER", "Q3").await;
    let (key, _) = next_screen_event(&mut events, &mut buffer).await;
    assert!(key.ends_with(issued["token"].as_str().unwrap()), "{key}");
    drop(events);
    other_handle.stop(true).await;
    let _ = other_task.await;
}

async fn sms_reminder_follows_the_same_rules(backend: Backend) {
    let port = free_port();
    let state: Shared = Arc::default();
    let gateway = FakeServer::start(port, state.clone());
    let app = TestApp::spawn_with(backend, sms_settings(port)).await;
    register_with_phone(&app, "HS-SMS-REMIND", "0912000222").await;
    register_with_phone(&app, "HS-SMS-OPTOUT", "0912000333").await;
    gateway.wait_for(2).await;
    // The second citizen opts out; then both reminders fall due.
    let token = {
        let accepted = gateway.accepted();
        let text = accepted.iter().find(|b| b["to"] == "84912000333").unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string();
        text.split_whitespace()
            .find(|w| w.contains("/unsubscribe"))
            .unwrap()
            .to_string()
    };
    let opted = app
        .client
        .post(&token)
        .form(&[("lang", "vi")])
        .send()
        .await
        .unwrap();
    assert_eq!(opted.status(), 200);
    {
        let conn = &mut app.conn();
        let now = sipas::db::now();
        db_run!(conn: {
            diesel::update(outbox::table.filter(outbox::kind.eq("reminder")).filter(outbox::status.eq("queued")))
                .set(outbox::due_at.eq(now))
                .execute(conn)
        })
        .unwrap();
    }
    let accepted = gateway.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(gateway.accepted().len(), 3, "no reminder after the opt-out");
    let reminder = &accepted[2];
    assert_eq!(reminder["to"], "84912000222");
    assert!(
        reminder["message"]
            .as_str()
            .unwrap()
            .contains("nhac Ong/Ba"),
        "{reminder}"
    );
    assert_eq!(messages(&app, "HS-SMS-REMIND")[1].2, "sent");
    assert_eq!(messages(&app, "HS-SMS-OPTOUT")[1].2, "cancelled");
    let started = std::time::Instant::now();
    while number_kept(&app, "HS-SMS-REMIND") {
        assert!(started.elapsed() < WAIT, "erased after the reminder");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!number_kept(&app, "HS-SMS-OPTOUT"));
    gateway.stop().await;
}
