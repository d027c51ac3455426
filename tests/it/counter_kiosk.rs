//! Issue #20, the one-tap kiosk (paired like the desk screen): a tap recorded, limited per
//! device and reset; tap bursts on the integrity panel; the SIPAS index unchanged by taps
//! unless the province includes them. Channels apart in reports and exports; `/readyz` with the
//! phone sender.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use serde_json::Value;
use sipas::db::schema::{kiosk_refusals, kiosk_taps, responses};
use sipas::db_run;

use crate::helpers::staff::{Staff, TEST_PASSWORD, create_user, sign_in, unit_id};
use crate::helpers::{Backend, TestApp, full_answers};

fn device_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Pairs a new device as the kiosk of `desk` of `unit` (through the staff page and the
/// device's pairing form, choosing "kiosk").
pub(crate) async fn pair_kiosk(
    app: &TestApp,
    staff: &Staff,
    unit: &str,
    desk: &str,
) -> reqwest::Client {
    let created = staff
        .post(
            app,
            &format!("/agency/units/{unit}/counter"),
            &[("action", "pair"), ("desk", desk)],
        )
        .await;
    assert_eq!(created.status(), 200);
    let html = created.text().await.unwrap();
    let marker = "class=\"pairing-code\"><code>";
    let start = html.find(marker).expect("a pairing code") + marker.len();
    let code = html[start..start + 9].to_string();
    let device = device_client();
    let paired = device
        .post(app.url("/counter/pair"))
        .form(&[("code", code.as_str()), ("use", "kiosk")])
        .send()
        .await
        .unwrap();
    assert_eq!(paired.status(), 303);
    assert_eq!(
        crate::helpers::staff::location(&paired).as_deref(),
        Some(format!("/counter/{desk}/kiosk").as_str())
    );
    device
}

async fn tap(app: &TestApp, device: &reqwest::Client, desk: &str, face: &str) -> (u16, String) {
    let response = device
        .post(app.url(&format!("/counter/{desk}/kiosk")))
        .form(&[("face", face)])
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

fn taps(app: &TestApp) -> Vec<(i64, Option<String>)> {
    let conn = &mut app.conn();
    db_run!(conn: {
        kiosk_taps::table.order(kiosk_taps::tapped_at).select((kiosk_taps::face, kiosk_taps::follow_up)).load(conn)
    })
    .unwrap()
}

fn this_month(app: &TestApp) -> String {
    sipas::calendar::local_day(sipas::db::now(), app.state.policies.utc_offset)
        .format("%Y-%m")
        .to_string()
}

async fn kiosk_taps_are_recorded_limited_and_reset(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.kiosk_tap_seconds = 2).await;
    let stp = unit_id(&app, "STP");
    create_user(
        &app,
        "agency-stp",
        sipas::accounts::Role::Agency,
        Some("STP"),
        None,
    );
    let staff = sign_in(&app, "agency-stp", TEST_PASSWORD).await;
    let device = pair_kiosk(&app, &staff, &stp, "K1").await;

    // Unpaired, or another desk: refused.
    let stranger = device_client()
        .get(app.url("/counter/K1/kiosk"))
        .send()
        .await
        .unwrap();
    assert_eq!(stranger.status(), 401);
    let (status, _) = tap(&app, &device_client(), "K1", "5").await;
    assert_eq!(status, 401);
    let other_desk = device
        .get(app.url("/counter/K2/kiosk"))
        .send()
        .await
        .unwrap();
    assert_eq!(other_desk.status(), 403);

    // Five faces, one tap each.
    let page = device
        .get(app.url("/counter/K1/kiosk"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert_eq!(html.matches("name=\"face\"").count(), 5, "{html}");
    let (status, html) = tap(&app, &device, "K1", "9").await;
    assert_eq!(status, 422, "{html}");
    let (status, html) = tap(&app, &device, "K1", "5").await;
    assert_eq!(status, 200);
    // The follow-up item, then the kiosk resets by itself.
    assert!(html.contains("url=/counter/K1/kiosk"), "{html}");
    let tap_id = html
        .split("name=\"tap\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the tap's id")
        .to_string();

    // A second tap at once is refused kindly, and counted for the integrity panel.
    let (status, html) = tap(&app, &device, "K1", "1").await;
    assert_eq!(status, 429);
    assert!(html.contains("đợi") && html.contains("wait"), "{html}");
    assert_eq!(taps(&app), [(5, None)]);
    let followed = device
        .post(app.url("/counter/K1/kiosk/follow-up"))
        .form(&[("tap", tap_id.as_str()), ("answer", "waiting")])
        .send()
        .await
        .unwrap();
    assert_eq!(followed.status(), 200);
    assert!(
        followed
            .text()
            .await
            .unwrap()
            .contains("url=/counter/K1/kiosk")
    );
    assert_eq!(taps(&app), [(5, Some("waiting".to_string()))]);
    // The follow-up is taken once.
    device
        .post(app.url("/counter/K1/kiosk/follow-up"))
        .form(&[("tap", tap_id.as_str()), ("answer", "other")])
        .send()
        .await
        .unwrap();
    assert_eq!(taps(&app), [(5, Some("waiting".to_string()))]);

    // After the limit, the next person's tap counts.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, _) = tap(&app, &device, "K1", "2").await;
    assert_eq!(status, 200);
    assert_eq!(taps(&app).len(), 2);
    // Taps are not responses.
    let conn = &mut app.conn();
    let stored: i64 = db_run!(conn: { responses::table.count().get_result(conn) }).unwrap();
    assert_eq!(stored, 0);

    // A burst of refused taps shows on the integrity panel as a signal for the unit.
    for _ in 0..12 {
        let (status, _) = tap(&app, &device, "K1", "5").await;
        assert_eq!(status, 429);
    }
    let refused: Vec<i64> =
        db_run!(conn: { kiosk_refusals::table.select(kiosk_refusals::refused).load(conn) })
            .unwrap();
    assert_eq!(refused.iter().sum::<i64>(), 13);
    let period = sipas::report::period::Period::parse(&this_month(&app)).unwrap();
    let assessed = sipas::integrity::units::assess(
        conn,
        &app.state.forms,
        &app.state.policies.report,
        &app.state.policies.integrity,
        &period,
    )
    .unwrap();
    let unit = assessed
        .iter()
        .find(|u| u.unit.id == stp)
        .expect("the unit is on the panel");
    assert_eq!(unit.kiosk_refused, 13);
    assert!(unit.flags().contains(&"kiosk_burst"));
    let admin = crate::helpers::staff::sign_in_admin(&app).await;
    let panel = admin
        .page(
            &app,
            &format!("/admin/integrity?period={}", this_month(&app)),
        )
        .await;
    assert!(panel.contains("Chạm liên tục ở máy đánh giá"), "{panel}");
}

fn sipas_answers(app: &TestApp, level: &str) -> Vec<(String, String)> {
    let form = app.state.forms.latest("sipas").expect("SIPAS form");
    full_answers(&form)
        .into_iter()
        .map(|(k, v)| {
            let scale = form
                .questions()
                .find(|q| q.code == k)
                .is_some_and(|q| q.kind == sipas::forms::QuestionType::Scale5);
            if scale {
                (k, level.to_string())
            } else {
                (k, v)
            }
        })
        .collect()
}

async fn unit_report(app: &TestApp, staff: &Staff, unit: &str) -> Value {
    let body = staff
        .page(
            app,
            &format!("/api/v1/reports/units/{unit}?period={}", this_month(app)),
        )
        .await;
    serde_json::from_str(&body).unwrap()
}

async fn the_index_ignores_kiosk_taps_unless_configured(backend: Backend) {
    let tweak = |s: &mut sipas::config::Settings| {
        s.kiosk_tap_seconds = 0;
        s.report_min_n = 1;
    };
    let app = TestApp::spawn_with(backend, tweak).await;
    let stp = unit_id(&app, "STP");
    let admin = crate::helpers::staff::sign_in_admin(&app).await;
    // Two SIPAS answers: one satisfied throughout, one not.
    for (dossier, level) in [("HS-KIOSK-1", "5"), ("HS-KIOSK-2", "2")] {
        let issued = app.issue_survey(dossier, Some("sipas")).await;
        let url = issued["survey_url"].as_str().unwrap();
        assert_eq!(
            app.submit(url, &sipas_answers(&app, level)).await.status(),
            200
        );
    }
    let before = unit_report(&app, &admin, &stp).await;
    assert!(before["sipas"]["index"]["value"].is_number(), "{before}");
    assert_eq!(before["kiosk"]["taps"], 0);

    // Unsatisfied taps arrive: the index, its n and its interval stay exactly as they were.
    let device = pair_kiosk(&app, &admin, &stp, "K1").await;
    for face in ["1", "1", "2", "1"] {
        assert_eq!(tap(&app, &device, "K1", face).await.0, 200);
    }
    let after = unit_report(&app, &admin, &stp).await;
    assert_eq!(after["sipas"]["index"], before["sipas"]["index"]);
    assert_eq!(after["sipas"]["elements"], before["sipas"]["elements"]);
    assert_eq!(after["kiosk"]["taps"], 4);
    assert_eq!(after["kiosk"]["satisfied"], 0);
    assert_eq!(after["kiosk_in_index"], false);
    // Reported apart: 4 taps of 6 answers in all.
    let weight = after["kiosk"]["weight"].as_f64().unwrap();
    assert!((weight - 4.0 / 6.0 * 100.0).abs() < 1e-9, "{weight}");

    // The province turns it on: the same taps now weigh on the index.
    let app = app
        .restart(|s| {
            tweak(s);
            s.kiosk_in_index = true;
        })
        .await;
    let admin = crate::helpers::staff::sign_in_admin(&app).await;
    let included = unit_report(&app, &admin, &stp).await;
    assert_eq!(included["kiosk_in_index"], true);
    assert_eq!(
        included["sipas"]["index"]["n"].as_u64(),
        before["sipas"]["index"]["n"].as_u64().map(|n| n + 4)
    );
    let (was, now) = (
        before["sipas"]["index"]["value"].as_f64().unwrap(),
        included["sipas"]["index"]["value"].as_f64().unwrap(),
    );
    assert!(now < was, "unsatisfied taps lower the index: {was} → {now}");
    // Weighted by numbers: two answers at `was`, four unsatisfied taps.
    assert!((now - was * 2.0 / 6.0).abs() < 1e-9, "{was} → {now}");
    // A paper-only slice never takes them.
    let paper = admin
        .page(
            &app,
            &format!(
                "/api/v1/reports/units/{stp}?period={}&channel=independent",
                this_month(&app)
            ),
        )
        .await;
    let paper: Value = serde_json::from_str(&paper).unwrap();
    assert_eq!(paper["kiosk_in_index"], false);
}

async fn channels_are_reported_apart(app: TestApp) {
    let stp = unit_id(&app, "STP");
    let admin = crate::helpers::staff::sign_in_admin(&app).await;
    let form = app.state.forms.latest("transaction").unwrap();
    // Answers reached through an SMS link, a Zalo link and a scanned QR.
    for (dossier, via) in [("HS-CH-1", "sms"), ("HS-CH-2", "zalo"), ("HS-CH-3", "qr")] {
        let issued = app.issue_survey(dossier, None).await;
        let url = format!("{}?via={via}", issued["survey_url"].as_str().unwrap());
        assert_eq!(app.client.get(&url).send().await.unwrap().status(), 200);
        let mut fields = full_answers(&form);
        fields.push(("via".into(), via.into()));
        assert_eq!(
            app.submit(issued["survey_url"].as_str().unwrap(), &fields)
                .await
                .status(),
            200
        );
    }
    let conn = &mut app.conn();
    let mut channels: Vec<String> =
        db_run!(conn: { responses::table.select(responses::channel).load(conn) }).unwrap();
    channels.sort();
    assert_eq!(channels, ["qr", "sms", "zalo"]);
    let month = this_month(&app);
    let page = admin
        .page(&app, &format!("/reports/units/{stp}?period={month}"))
        .await;
    for channel in ["sms", "zalo", "qr"] {
        assert!(
            page.contains(&format!("data-channel=\"{channel}\"")),
            "{channel}"
        );
    }
    assert!(page.contains("Tin nhắn SMS") && page.contains("Máy đánh giá một chạm"));
    // A single channel is a report slice of its own.
    let sms: Value = serde_json::from_str(
        &admin
            .page(
                &app,
                &format!("/api/v1/reports/units/{stp}?period={month}&channel=sms"),
            )
            .await,
    )
    .unwrap();
    assert_eq!(sms["transaction"]["index"]["n"], 1, "{sms}");
    let csv = admin
        .page(
            &app,
            &format!("/reports/units/{stp}/export.csv?period={month}"),
        )
        .await;
    for channel in ["sms", "zalo", "qr"] {
        assert!(
            csv.contains(&format!("transaction,channel,{channel},")),
            "{csv}"
        );
    }
    assert!(csv.contains("kiosk,kiosk_taps,apart,"), "{csv}");
}

/// With SMS configured, `/readyz` also watches the phone sender; without, it does not.
async fn readiness_includes_the_phone_sender(backend: Backend) {
    let plain = TestApp::spawn(backend.clone()).await;
    let body: Value = plain
        .client
        .get(plain.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(body["checks"].get("phone").is_none(), "{body}");
    drop(plain);
    let app = TestApp::spawn_with(backend, |s| {
        s.sms_url = Some("http://127.0.0.1:9/send".into());
        s.mail_poll_millis = 100;
        s.mail_stale_seconds = 1;
    })
    .await;
    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: Value = ready.json().await.unwrap();
    assert_eq!(body["checks"]["phone"], "ok");
    app.state
        .phone_sender
        .as_ref()
        .expect("a phone sender")
        .request_stop();
    let started = Instant::now();
    let body = loop {
        let res = app.client.get(app.url("/readyz")).send().await.unwrap();
        if res.status() == 503 {
            break res.json::<Value>().await.unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "still ready 5 s after the phone sender stopped"
        );
        actix_web::rt::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        body["reason"].as_str().unwrap().contains("phone sender"),
        "{body}"
    );
    assert_eq!(body["checks"]["mail"], "ok");
}

crate::on_both_databases!(backend:
    kiosk_taps_are_recorded_limited_and_reset,
    the_index_ignores_kiosk_taps_unless_configured,
    readiness_includes_the_phone_sender,
);
crate::on_both_databases!(channels_are_reported_apart);
