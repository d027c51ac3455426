//! E-mail invitations over real SMTP to a sink on 127.0.0.1: content, reminder timing, opt-out,
//! erasure of addresses, permanent failures, and an outage across a restart.

use std::time::Duration;

use diesel::prelude::*;
use serde_json::json;
use sipas::db::schema::{outbox, responses, transactions};
use sipas::db_run;

use crate::helpers::{Backend, TestApp, full_answers, transaction_body};
use crate::smtp_sink::{SmtpSink, header, part};

async fn app_with_sink(backend: Backend) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start(0).await;
    let port = sink.port;
    let app = TestApp::spawn_with(backend, |s| {
        s.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        s.mail_from = "SIPAS Sơn Hà <khaosat@sonha.example.vn>".into();
    })
    .await;
    (app, sink)
}

async fn register_with_email(app: &TestApp, dossier: &str, email: &str) -> serde_json::Value {
    let mut body = transaction_body(dossier);
    body["email"] = json!(email);
    // Completed now, so the survey (14 days) is far from expiry and a reminder is scheduled.
    body["completed_at"] = json!(chrono::Utc::now().to_rfc3339());
    body["received_at"] = json!((chrono::Utc::now() - chrono::Duration::days(2)).to_rfc3339());
    body["due_at"] = json!((chrono::Utc::now() + chrono::Duration::days(2)).to_rfc3339());
    let response = app.post_transaction(&body).await;
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

fn email_of(app: &TestApp, dossier: &str) -> Option<String> {
    let conn = &mut app.conn();
    db_run!(conn: {
        transactions::table.filter(transactions::dossier_code.eq(dossier)).select(transactions::email).first(conn)
    })
    .unwrap()
}

fn statuses(app: &TestApp, dossier: &str) -> Vec<(String, String, i64)> {
    let conn = &mut app.conn();
    db_run!(conn: {
        outbox::table
            .inner_join(transactions::table.on(transactions::id.eq(outbox::transaction_id)))
            .filter(transactions::dossier_code.eq(dossier))
            .order(outbox::kind.asc())
            .select((outbox::kind, outbox::status, outbox::attempts))
            .load(conn)
    })
    .unwrap()
}

fn make_reminders_due(app: &TestApp) {
    let conn = &mut app.conn();
    let now = sipas::db::now();
    db_run!(conn: {
        diesel::update(outbox::table.filter(outbox::kind.eq("reminder")).filter(outbox::status.eq("queued")))
            .set(outbox::due_at.eq(now))
            .execute(conn)
    })
    .unwrap();
}

/// The first http(s) URL in a text that contains `needle`.
fn url_with(text: &str, needle: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains(needle))
        .unwrap_or_else(|| panic!("no {needle} link in:\n{text}"))
        .to_string()
}

crate::on_both_databases!(
    backend: invitation_arrives_with_both_parts_and_a_working_link,
    one_reminder_only_when_unanswered,
    opt_out_stops_mail_and_erases_the_address,
    a_refused_address_is_marked_failed_and_reported,
    an_outage_across_a_restart_delivers_each_invitation_once,
    expired_surveys_erase_addresses,
);

const WAIT: Duration = Duration::from_secs(10);

async fn invitation_arrives_with_both_parts_and_a_working_link(backend: Backend) {
    let (app, sink) = app_with_sink(backend).await;
    register_with_email(&app, "HS-MAIL-1", "cong.dan@example.vn").await;
    let mail = sink.wait_for(1, WAIT).await;
    assert_eq!(mail.len(), 1, "one invitation");
    let m = &mail[0];
    assert_eq!(m.to, vec!["cong.dan@example.vn".to_string()]);
    let data = &m.data;
    assert!(
        header(data, "From")
            .unwrap()
            .contains("khaosat@sonha.example.vn")
    );
    assert_eq!(header(data, "To").as_deref(), Some("cong.dan@example.vn"));
    assert!(header(data, "Subject").is_some());
    let message_id = header(data, "Message-ID").expect("stable Message-ID");
    assert!(
        message_id.starts_with('<') && message_id.ends_with("@127.0.0.1>"),
        "{message_id}"
    );
    assert!(
        header(data, "List-Unsubscribe")
            .unwrap()
            .contains("/unsubscribe")
    );
    assert!(
        header(data, "Content-Type")
            .unwrap()
            .starts_with("multipart/alternative")
    );
    let text = part(data, "text/plain").expect("text part");
    let html = part(data, "text/html").expect("html part");
    for body in [&text, &html] {
        assert!(
            body.contains("Sở Tư pháp") && body.contains("Department of Justice"),
            "agency named in both languages"
        );
        assert!(
            body.contains("Cấp Phiếu lý lịch tư pháp"),
            "procedure named"
        );
    }
    assert!(
        text.find("Kính gửi").unwrap() < text.find("Dear").unwrap(),
        "Vietnamese first, English below"
    );
    assert!(!html.contains("<img"), "no tracking pixels or images");
    // The link opens the survey and answers count as the e-mail channel.
    let link = url_with(&text, "via=link");
    let page = app.client.get(&link).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let form = app.state.forms.latest("transaction").unwrap();
    let mut fields = full_answers(&form);
    fields.push(("via".into(), "link".into()));
    let survey_url = link.split('?').next().unwrap().to_string();
    assert_eq!(app.submit(&survey_url, &fields).await.status(), 200);
    let conn = &mut app.conn();
    let channel: String =
        db_run!(conn: { responses::table.select(responses::channel).first(conn) }).unwrap();
    assert_eq!(channel, "link");
    // The answer cancelled the reminder and erased the address.
    assert_eq!(
        statuses(&app, "HS-MAIL-1"),
        vec![
            ("invitation".into(), "sent".into(), 1),
            ("reminder".into(), "cancelled".into(), 0)
        ]
    );
    assert_eq!(email_of(&app, "HS-MAIL-1"), None);
    sink.stop();
}

async fn one_reminder_only_when_unanswered(backend: Backend) {
    let (app, sink) = app_with_sink(backend).await;
    let answered = register_with_email(&app, "HS-REM-A", "a@example.vn").await;
    register_with_email(&app, "HS-REM-B", "b@example.vn").await;
    assert_eq!(sink.wait_for(2, WAIT).await.len(), 2);
    // Reminders are scheduled before expiry, not sent yet.
    assert_eq!(statuses(&app, "HS-REM-B")[1].1, "queued");
    let fields = full_answers(&app.state.forms.latest("transaction").unwrap());
    assert_eq!(
        app.submit(answered["survey_url"].as_str().unwrap(), &fields)
            .await
            .status(),
        200
    );
    make_reminders_due(&app);
    let mail = sink.wait_for(3, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mail_after = sink.received();
    assert_eq!(
        mail_after.len(),
        3,
        "exactly one reminder: {:?}",
        mail_after.iter().map(|m| &m.to).collect::<Vec<_>>()
    );
    let reminder = &mail[2];
    assert_eq!(reminder.to, vec!["b@example.vn".to_string()]);
    assert!(
        part(&reminder.data, "text/plain")
            .unwrap()
            .contains("chưa trả lời"),
        "it is a reminder"
    );
    assert_eq!(
        statuses(&app, "HS-REM-B"),
        vec![
            ("invitation".into(), "sent".into(), 1),
            ("reminder".into(), "sent".into(), 1)
        ]
    );
    assert_eq!(
        email_of(&app, "HS-REM-B"),
        None,
        "no more mail due: the address is gone"
    );
    assert_eq!(email_of(&app, "HS-REM-A"), None);
    sink.stop();
}

async fn opt_out_stops_mail_and_erases_the_address(backend: Backend) {
    let (app, sink) = app_with_sink(backend).await;
    register_with_email(&app, "HS-OUT", "stop@example.vn").await;
    let mail = sink.wait_for(1, WAIT).await;
    // The sink has the message a moment before the sender records it as sent (until then the
    // address is still needed, so an opt-out in between leaves its erasure to the sender).
    let started = std::time::Instant::now();
    while statuses(&app, "HS-OUT")[0].1 != "sent" && started.elapsed() < WAIT {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let text = part(&mail[0].data, "text/plain").unwrap();
    let opt_out = url_with(&text, "/unsubscribe");
    let confirm = app.client.get(&opt_out).send().await.unwrap();
    assert_eq!(
        confirm.status(),
        200,
        "a link preview only shows the confirmation"
    );
    assert!(email_of(&app, "HS-OUT").is_some());
    let done = app
        .client
        .post(&opt_out)
        .form(&[("lang", "vi")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("Đã dừng gửi thư"));
    assert_eq!(email_of(&app, "HS-OUT"), None);
    assert_eq!(statuses(&app, "HS-OUT")[1].1, "cancelled");
    make_reminders_due(&app);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(sink.received().len(), 1, "nothing after opting out");
    sink.stop();
}

async fn a_refused_address_is_marked_failed_and_reported(backend: Backend) {
    let (app, sink) = app_with_sink(backend).await;
    register_with_email(&app, "HS-BAD", "reject-me@example.vn").await;
    let started = std::time::Instant::now();
    while statuses(&app, "HS-BAD")[0].1 != "failed" {
        assert!(started.elapsed() < WAIT, "{:?}", statuses(&app, "HS-BAD"));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        statuses(&app, "HS-BAD")[0].2,
        1,
        "a permanent refusal is not retried"
    );
    let conn = &mut app.conn();
    let error: Option<String> = db_run!(conn: { outbox::table.filter(outbox::status.eq("failed")).select(outbox::last_error).first(conn) }).unwrap();
    assert!(error.unwrap().contains("550"));
    let listed = std::process::Command::new(env!("CARGO_BIN_EXE_sipas"))
        .args(["mail", "list", "--status", "failed"])
        .env("DATABASE_URL", &app.database_url)
        .env(
            "SIPAS_SECRET",
            crate::helpers::test_settings("").secret.unwrap(),
        )
        .env("SIPAS_FORMS_DIR", crate::helpers::forms_dir())
        .output()
        .unwrap();
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.contains("HS-BAD") && listed.contains("failed"),
        "{listed}"
    );
    assert!(!listed.contains("reject-me"), "addresses are never printed");
    sink.stop();
}

async fn an_outage_across_a_restart_delivers_each_invitation_once(backend: Backend) {
    // Reserve a port, then leave it closed: the mail server is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let point_at_port = move |s: &mut sipas::config::Settings| {
        s.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        s.mail_retry_base_seconds = 1;
    };
    let app = TestApp::spawn_with(backend, point_at_port).await;
    let dossiers = ["HS-OUTAGE-1", "HS-OUTAGE-2", "HS-OUTAGE-3", "HS-OUTAGE-4"];
    for (i, d) in dossiers.iter().enumerate() {
        register_with_email(&app, d, &format!("citizen{i}@example.vn")).await;
    }
    let started = std::time::Instant::now();
    // Tried at least once, and that attempt over (a message is `sending` during the attempt).
    while !dossiers.iter().all(|d| {
        let invitation = &statuses(&app, d)[0];
        invitation.2 >= 1 && invitation.1 != "sending"
    }) {
        assert!(
            started.elapsed() < WAIT,
            "every invitation was tried while the server was down"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for d in dossiers {
        assert_eq!(
            statuses(&app, d)[0].1,
            "queued",
            "a refused connection is retried later"
        );
    }
    // The service restarts, then the mail server comes back.
    let app = app.restart(point_at_port).await;
    let sink = SmtpSink::start(port).await;
    // Retries back off (1, 2, 4, … s here): on a loaded machine the outage may have lasted
    // long enough for the next try to be many seconds away, so wait for as long as that may be.
    let mail = sink.wait_for(4, Duration::from_secs(60)).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mail_after = sink.received();
    assert_eq!(mail.len(), 4);
    assert_eq!(mail_after.len(), 4, "nothing sent twice");
    let mut recipients: Vec<String> = mail_after.iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    assert_eq!(
        recipients,
        (0..4)
            .map(|i| format!("citizen{i}@example.vn"))
            .collect::<Vec<_>>()
    );
    for d in dossiers {
        assert_eq!(statuses(&app, d)[0].1, "sent");
    }
    sink.stop();
}

async fn expired_surveys_erase_addresses(backend: Backend) {
    let (app, sink) = app_with_sink(backend).await;
    register_with_email(&app, "HS-EXP", "late@example.vn").await;
    sink.wait_for(1, WAIT).await;
    let conn = &mut app.conn();
    db_run!(conn: {
        diesel::update(sipas::db::schema::survey_tokens::table)
            .set(sipas::db::schema::survey_tokens::expires_at.eq(sipas::db::now() - chrono::Duration::minutes(1)))
            .execute(conn)
    })
    .unwrap();
    let started = std::time::Instant::now();
    while email_of(&app, "HS-EXP").is_some() {
        assert!(
            started.elapsed() < WAIT,
            "the sweep erases the address of an expired survey"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(statuses(&app, "HS-EXP")[1].1, "cancelled");
    sink.stop();
}

#[actix_web::test]
async fn file_transport_writes_messages_to_a_folder() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    register_with_email(&app, "HS-FILE", "file@example.vn").await;
    let started = std::time::Instant::now();
    loop {
        let files: Vec<_> = std::fs::read_dir(app.mail_dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .collect();
        if let Some(f) = files
            .iter()
            .find(|f| f.path().extension().is_some_and(|e| e == "eml"))
        {
            let text = std::fs::read_to_string(f.path()).unwrap();
            assert!(text.contains("file@example.vn") && text.contains("Message-ID"));
            break;
        }
        assert!(started.elapsed() < WAIT, "a .eml file appears");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
