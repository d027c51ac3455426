//! The desk screen in a real browser on a tablet (800×1280): paired by typing a code, it shows
//! the QR of a new registration without reloading (server-sent events), the QR read off the
//! screen leads to a working survey, and an answer clears the screen. The one-tap kiosk, paired
//! the same way, records a tap, takes its follow-up and resets for the next person; axe-core
//! finds no WCAG 2.1 A/AA violation on it.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::json;

use crate::browser::{Browser, bounded};
use crate::browser_staff::{click, type_into};
use crate::helpers::{TestApp, full_answers, transaction_body};
use crate::on_both_databases;

on_both_databases!(
    desk_screen_shows_each_new_qr_on_a_tablet,
    the_kiosk_records_a_tap_and_resets_on_a_tablet
);

const TABLET: (u32, u32) = (800, 1280);
const WAIT: Duration = Duration::from_secs(15);

async fn desk_screen_shows_each_new_qr_on_a_tablet(app: TestApp) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    bounded(desk_screen(&app, &browser)).await;
    browser.close().await;
}

/// Reads the QR code in a screenshot (PNG of any colour type).
fn decode_qr(png_bytes: &[u8]) -> String {
    let mut decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let (w, h) = (info.width as usize, info.height as usize);
    let channels = info.color_type.samples();
    let grey = |x: usize, y: usize| -> u8 {
        let i = (y * w + x) * channels;
        if channels >= 3 {
            ((u16::from(buf[i]) + u16::from(buf[i + 1]) + u16::from(buf[i + 2])) / 3) as u8
        } else {
            buf[i]
        }
    };
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, grey);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code on the screen");
    grids[0].decode().expect("the QR decodes").1
}

async fn heading(browser: &Browser) -> String {
    browser
        .js(
            "const h = document.querySelector('h1'); return h ? h.textContent.trim() : '';",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn wait_for_heading(browser: &Browser, expected: &str) -> Duration {
    let started = Instant::now();
    loop {
        if heading(browser).await == expected {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WAIT,
            "heading {expected:?} did not appear; the screen shows {:?}",
            heading(browser).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn desk_screen(app: &TestApp, browser: &Browser) {
    browser.set_viewport(TABLET.0, TABLET.1).await;
    let code = {
        let conn = &mut app.conn();
        let stp = crate::helpers::staff::unit_id(app, "STP");
        let desk = sipas::counter::DeskCode::parse("Q7").unwrap();
        sipas::counter::devices::create_pairing(conn, &stp, &desk, "test", sipas::db::now())
            .unwrap()
            .code
    };
    browser.goto(&app.url("/counter/pair")).await;
    type_into(browser, "#code", &code).await;
    click(browser, "button[type=submit]").await;
    wait_for_heading(browser, "Quầy Q7").await;
    let path = browser.js("return location.pathname", vec![]).await;
    assert_eq!(path, "/counter/Q7/screen");
    // Marks this page load: still there later means the page changed without reloading.
    browser
        .js("window.sameLoad = true; return true", vec![])
        .await;

    for round in 1..=2 {
        let mut body = transaction_body(&format!("HS-SCREEN-{round}"));
        body["counter"] = json!("Q7");
        let response = app.post_transaction(&body).await;
        assert_eq!(response.status(), 201);
        let issued: serde_json::Value = response.json().await.unwrap();
        let shown_after = wait_for_heading(browser, "Mời Ông/Bà đánh giá sự phục vụ").await;
        eprintln!("round {round}: the QR appeared {shown_after:?} after the registration");
        assert_eq!(
            browser.js("return window.sameLoad === true", vec![]).await,
            true,
            "updated live, not by a reload"
        );
        let qr = browser
            .client
            .find(Locator::Css(".qr"))
            .await
            .expect("the QR on the screen");
        let scanned = decode_qr(&qr.screenshot().await.expect("screenshot of the QR"));
        let survey_url = issued["survey_url"].as_str().unwrap();
        assert!(
            scanned.eq_ignore_ascii_case(survey_url),
            "{scanned} vs {survey_url}"
        );
        // The scanned text (as a phone camera reads it) opens the survey, which takes an answer.
        let page = app.client.get(&scanned).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let form = app
            .state
            .forms
            .latest(issued["form"].as_str().unwrap())
            .unwrap();
        assert_eq!(
            app.submit(survey_url, &full_answers(&form)).await.status(),
            200
        );
        // The answer clears the screen for the next citizen.
        wait_for_heading(browser, "Quầy Q7").await;
    }
    browser
        .save_screenshot(&std::env::temp_dir().join("sipas-desk-screen.png"))
        .await;
}

async fn the_kiosk_records_a_tap_and_resets_on_a_tablet(app: TestApp) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    bounded(kiosk(&app, &browser)).await;
    browser.close().await;
}

fn kiosk_taps(app: &TestApp) -> Vec<(i64, Option<String>)> {
    use diesel::prelude::*;
    use sipas::db::schema::kiosk_taps;
    let conn = &mut app.conn();
    sipas::db_run!(conn: {
        kiosk_taps::table.order(kiosk_taps::tapped_at).select((kiosk_taps::face, kiosk_taps::follow_up)).load(conn)
    })
    .unwrap()
}

async fn kiosk(app: &TestApp, browser: &Browser) {
    browser.set_viewport(TABLET.0, TABLET.1).await;
    let code = {
        let conn = &mut app.conn();
        let stp = crate::helpers::staff::unit_id(app, "STP");
        let desk = sipas::counter::DeskCode::parse("K7").unwrap();
        sipas::counter::devices::create_pairing(conn, &stp, &desk, "test", sipas::db::now())
            .unwrap()
            .code
    };
    browser.goto(&app.url("/counter/pair")).await;
    type_into(browser, "#code", &code).await;
    click(browser, "input[name=use][value=kiosk]").await;
    click(browser, "button[type=submit]").await;
    let question = "Ông/Bà có hài lòng với sự phục vụ hôm nay không?";
    wait_for_heading(browser, question).await;
    assert_eq!(
        browser.js("return location.pathname", vec![]).await,
        "/counter/K7/kiosk"
    );
    crate::browser_pages::assert_accessible(browser, "the kiosk's faces").await;
    // The faces fit the tablet's width, each a large touch target.
    let sizes = browser
        .js(
            "return [document.documentElement.scrollWidth, window.innerWidth, \
             Math.min(...[...document.querySelectorAll('button[name=face]')].map(b => b.getBoundingClientRect().height))]",
            vec![],
        )
        .await;
    assert!(
        sizes[0].as_f64() <= sizes[1].as_f64(),
        "wider than the tablet: {sizes}"
    );
    assert!(
        sizes[2].as_f64().unwrap_or(0.0) >= 96.0,
        "small faces: {sizes}"
    );

    // One tap: recorded; the follow-up item; then the kiosk resets by itself.
    click(browser, "button[name=face][value='5']").await;
    wait_for_heading(browser, "Cảm ơn Ông/Bà!").await;
    assert_eq!(kiosk_taps(app), [(5, None)]);
    crate::browser_pages::assert_accessible(browser, "the kiosk's follow-up").await;
    click(browser, "button[name=answer][value=waiting]").await;
    wait_for_heading(browser, "Cảm ơn Ông/Bà đã góp ý!").await;
    assert_eq!(kiosk_taps(app), [(5, Some("waiting".to_string()))]);
    let reset = wait_for_heading(browser, question).await;
    eprintln!("the kiosk reset {reset:?} after the follow-up");
    assert_eq!(
        browser.js("return location.pathname", vec![]).await,
        "/counter/K7/kiosk"
    );
    browser
        .save_screenshot(&std::env::temp_dir().join("sipas-kiosk.png"))
        .await;
}
