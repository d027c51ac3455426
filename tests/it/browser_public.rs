//! The public results site in a real browser at phone size (390×844): a citizen walks from the
//! home page through the overview, a unit, the rankings, the releases (with a correction) and
//! the key page, in Vietnamese and English, and axe-core finds no WCAG 2.1 A/AA violation on
//! any of them. Nothing is wider than the phone. Uses the headless Chromium helper of
//! `browser.rs`; axe-core comes from the npm package in `tests/a11y` (`npm --prefix tests/a11y
//! install`, or `SIPAS_AXE_JS=/path/to/axe.min.js`).

use std::path::PathBuf;

use fantoccini::Locator;
use serde_json::{Value, json};
use sipas::audit::Actor;
use sipas::publish::release;

use crate::browser::{Browser, bounded};
use crate::browser_staff::wait_for_path;
use crate::helpers::{Backend, TestApp};

const PHONE: (u32, u32) = (390, 844);

fn axe_source() -> String {
    let path = std::env::var_os("SIPAS_AXE_JS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/a11y/node_modules/axe-core/axe.min.js")
        });
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core not found at {} ({e}): run `npm --prefix tests/a11y install` (the npm \
             package axe-core), point SIPAS_AXE_JS at axe.min.js, or set SIPAS_SKIP_BROWSER=1",
            path.display()
        )
    })
}

/// Runs axe-core in the page (WCAG 2.0/2.1 A and AA rules) and panics with every violation.
async fn assert_accessible(browser: &Browser, axe: &str, page: &str) {
    let loaded = browser
        .js("return typeof window.axe !== 'undefined'", vec![])
        .await;
    if loaded != json!(true) {
        browser.js(&format!("{axe}\n;return true;"), vec![]).await;
    }
    let script = r#"
        const done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
          .then(r => done({ violations: r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
              nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ')) })), passes: r.passes.length }))
          .catch(e => done({ error: String(e) }));
    "#;
    let result: Value = browser
        .client
        .execute_async(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("axe on {page}: {e}"));
    assert!(
        result.get("error").is_none(),
        "axe failed on {page}: {result}"
    );
    let violations = result["violations"].as_array().cloned().unwrap_or_default();
    assert!(
        violations.is_empty(),
        "WCAG 2.1 A/AA violations on {page}:\n{}",
        serde_json::to_string_pretty(&violations).unwrap_or_default()
    );
    assert!(
        result["passes"].as_u64().unwrap_or(0) > 5,
        "axe checked {page}: {result}"
    );
    let widths = browser
        .js(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await;
    assert!(
        widths[0].as_u64() <= widths[1].as_u64(),
        "{page} is wider than the phone: {widths}"
    );
}

#[actix_web::test]
async fn the_public_site_on_a_phone_passes_axe() {
    let keys = tempfile::tempdir().expect("key dir");
    let key_file = keys.path().join("release.key");
    let app = TestApp::spawn_with(Backend::Sqlite, {
        let key_file = key_file.clone();
        move |s| s.release_key_file = Some(key_file)
    })
    .await;
    let offset = app.state.settings.utc_offset_value().unwrap();
    sipas::synthetic::generate(
        &mut app.conn(),
        &app.state.forms,
        2000,
        200,
        sipas::db::now(),
        7,
        offset,
    )
    .expect("synthetic data");
    let period = sipas::calendar::local_day(sipas::db::now(), offset)
        .format("%Y")
        .to_string();
    let opts = app.state.policies.report;
    let mut conn = app.conn();
    for note in ["", "Đính chính: thêm phiếu giấy nhập muộn"] {
        release::create(
            &mut conn,
            &app.state.forms,
            &opts,
            &key_file,
            &Actor::cli(),
            &period,
            note,
        )
        .expect("release");
    }
    let newest = release::list(&mut conn).unwrap()[0].id.clone();
    drop(conn);
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.set_viewport(PHONE.0, PHONE.1).await;
    bounded(walk(&app, &browser, &newest)).await;
    browser.close().await;
}

async fn walk(app: &TestApp, browser: &Browser, release_id: &str) {
    let axe = axe_source();
    // From the home page to the results, by the link a person would follow.
    browser.goto(&app.url("/")).await;
    assert_accessible(browser, &axe, "/").await;
    browser
        .client
        .find(Locator::Css("a[href='/public']"))
        .await
        .expect("home links to results")
        .click()
        .await
        .expect("click");
    wait_for_path(browser, "/public").await;
    assert_accessible(browser, &axe, "/public").await;
    browser
        .client
        .find(Locator::Css("a[href='/public/units/STP']"))
        .await
        .expect("overview links to a unit")
        .click()
        .await
        .expect("click");
    wait_for_path(browser, "/public/units/STP").await;
    assert_accessible(browser, &axe, "/public/units/STP").await;
    let pages = [
        "/public/units/SON-HA".to_string(),
        "/public/ranking".to_string(),
        "/public/ranking?kind=commune".to_string(),
        "/public/releases".to_string(),
        format!("/public/releases/{release_id}"),
        "/public/key".to_string(),
        "/public?lang=en".to_string(),
        "/public/units/STP?lang=en".to_string(),
        "/public/ranking?lang=en".to_string(),
        format!("/public/releases/{release_id}?lang=en"),
    ];
    for page in &pages {
        browser.goto(&app.url(page)).await;
        assert_accessible(browser, &axe, page).await;
    }
    let lang = browser
        .js("return document.documentElement.lang", vec![])
        .await;
    assert_eq!(lang, "en");
}
