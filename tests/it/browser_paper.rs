//! A collector keys a whole SIPAS paper form in the real browser with the keyboard only, and the
//! printable forms page renders with a QR code on every form.

use diesel::prelude::*;
use fantoccini::Locator;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use sipas::accounts::Role;
use sipas::audit::Actor;
use sipas::db::schema::{paper_entries, responses};
use sipas::db_run;
use sipas::forms::QuestionType;
use sipas::paper::custody::{self, BatchRequest};
use sipas::paper::sampling::{self, SampleRequest};

use crate::browser::{Browser, bounded};
use crate::helpers::staff::{TEST_PASSWORD, create_user, unit_id};
use crate::helpers::{Backend, TestApp};

const ENTER: char = '\u{E007}';

async fn press(browser: &Browser, key: char) {
    let actions = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    browser
        .client
        .perform_actions(actions)
        .await
        .expect("key press");
}

#[actix_web::test]
async fn a_collector_keys_a_full_form_with_one_keystroke_per_answer() {
    let app = TestApp::spawn(Backend::Sqlite).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    bounded(key_a_form(&app, &browser)).await;
    browser.close().await;
}

async fn key_a_form(app: &TestApp, browser: &Browser) {
    super::paper::prepare(app);
    let offset = app.state.settings.utc_offset_value().unwrap();
    let (serial, sample_id) = {
        let conn = &mut app.conn();
        let request = SampleRequest {
            unit_codes: vec!["STP".into()],
            quota: Some(2),
            reserve_share: 0.0,
            ..super::paper::request("P1", 8)
        };
        let sample = sampling::draw(
            conn,
            &app.state.secret,
            &app.state.forms,
            &Actor::cli(),
            &request,
            offset,
        )
        .unwrap();
        let post = sipas::collector_orgs::find_by_code(conn, "BUU-DIEN")
            .unwrap()
            .unwrap();
        let batch = custody::create_batch(
            conn,
            &Actor::cli(),
            &BatchRequest {
                sample_id: sample.id.clone(),
                unit_id: unit_id(app, "STP"),
                collector_org_id: post.id,
                collector_name: "Trần Thị Phát".into(),
                include_reserve: false,
                double_share: 0.0,
            },
        )
        .unwrap();
        let serials: Vec<String> = sampling::worklist(conn, &sample.id, None)
            .unwrap()
            .into_iter()
            .map(|r| r.serial)
            .collect();
        custody::mark(
            conn,
            &Actor::cli(),
            &batch.id,
            &serials,
            sipas::paper::status::CustodyStep::Returned,
        )
        .unwrap();
        (serials[0].clone(), sample.id)
    };
    create_user(app, "nhaplieu", Role::Collector, None, Some("BUU-DIEN"));
    browser.set_viewport(1280, 900).await;

    // The printable forms render with a QR code per form.
    browser.goto(&app.url("/login")).await;
    browser
        .client
        .find(Locator::Css("#username"))
        .await
        .unwrap()
        .send_keys("nhaplieu")
        .await
        .unwrap();
    browser
        .client
        .find(Locator::Css("#password"))
        .await
        .unwrap()
        .send_keys(&format!("{TEST_PASSWORD}{ENTER}"))
        .await
        .unwrap();
    browser.wait_for_heading("Bưu điện tỉnh Sơn Hà").await;
    browser
        .goto(&app.url(&format!(
            "/paper/samples/{sample_id}/forms?unit={}",
            unit_id(app, "STP")
        )))
        .await;
    let qr = browser
        .js(
            "return document.querySelectorAll('section.paper svg').length",
            vec![],
        )
        .await;
    assert_eq!(qr.as_u64(), Some(2), "a QR code on each of the two forms");
    browser
        .save_screenshot(&std::env::temp_dir().join("sipas-paper-form.png"))
        .await;

    // Key the first form: the serial, then one key per answer.
    browser.goto(&app.url("/paper/entry")).await;
    browser
        .client
        .find(Locator::Css("#serial"))
        .await
        .unwrap()
        .send_keys(&format!("{}{ENTER}", serial.to_lowercase()))
        .await
        .unwrap();
    browser.wait_for_heading(&format!("Phiếu {serial}")).await;
    // Keys pressed before the entry script is running would be lost: wait until it has focused
    // the first question.
    let started = std::time::Instant::now();
    while browser
        .js(
            "return !!document.querySelector('fieldset.q.current')",
            vec![],
        )
        .await
        != serde_json::json!(true)
    {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the entry script did not start"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let form = app.state.forms.latest("sipas").unwrap();
    let mut sent = 0;
    let mut answers = 0;
    for q in form.questions() {
        match q.kind {
            QuestionType::Scale5 => {
                press(browser, '4').await;
                sent += 1;
                answers += 1;
            }
            QuestionType::Choice => {
                press(browser, '1').await;
                sent += 1;
                answers += 1;
            }
            QuestionType::Multi => {
                press(browser, '2').await;
                press(browser, ENTER).await;
                sent += 2;
                answers += 1;
            }
            QuestionType::Text | QuestionType::Scale3 => {
                press(browser, ENTER).await;
                sent += 1;
            }
        }
    }
    let summary = browser.js("const s = document.getElementById('summary'); return s && !s.hidden ? s.textContent : null", vec![]).await;
    assert!(
        summary.as_str().is_some_and(|s| s.contains("A1=4")),
        "a summary before saving: {summary:?}"
    );
    press(browser, ENTER).await;
    sent += 1;
    browser.wait_for_heading("Nhập phiếu giấy").await;
    let notice = browser
        .js(
            "const n = document.querySelector('.notice'); return n && n.textContent",
            vec![],
        )
        .await;
    assert!(
        notice.as_str().is_some_and(|n| n.contains(&serial)),
        "{notice:?}"
    );
    browser
        .save_screenshot(&std::env::temp_dir().join("sipas-paper-entry-done.png"))
        .await;

    eprintln!("keyed {answers} answers with {sent} keystrokes");
    assert!(
        sent <= answers + 6,
        "no more than one keystroke per answer plus a few to confirm ({sent} for {answers})"
    );
    let conn = &mut app.conn();
    let stored: i64 = db_run!(conn: {
        responses::table.filter(responses::provenance.like("%Trần Thị Phát%")).count().get_result(conn)
    })
    .unwrap();
    let keystrokes: i64 =
        db_run!(conn: { paper_entries::table.select(paper_entries::keystrokes).first(conn) })
            .unwrap();
    assert_eq!(stored, 1, "the form is a paper response now");
    assert_eq!(keystrokes, sent as i64, "the page counted the keystrokes");
}
