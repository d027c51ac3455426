//! The pages of issue #19 in a real browser, on a phone (390×844) and a desktop (1280×800):
//! the province dashboard, the agency home and the survey in steps, each checked by axe-core
//! for WCAG 2.1 A and AA violations.
//!
//! axe-core comes from npm (`tests/a11y/package.json`; `.ci/run` runs `npm ci` there); point
//! `SIPAS_AXE_JS` at another `axe.min.js`. `SIPAS_SAVE_SCREENSHOTS=1` writes the README's
//! screenshots to `docs/screenshots/` (otherwise they go to the temp folder).

use std::collections::BTreeMap;
use std::path::PathBuf;

use diesel::prelude::*;
use fantoccini::Locator;
use serde_json::{Value, json};
use sipas::db::schema::responses;
use sipas::db_run;
use sipas::forms::QuestionType;

use crate::browser::{Browser, bounded};
use crate::browser_staff::{sign_in_on_page, wait_for_path};
use crate::helpers::{TestApp, full_answers};
use crate::on_both_databases;
use crate::pages::{last_month_label, load_story};

on_both_databases!(
    dashboard_and_agency_home_on_phone_and_desktop,
    citizen_answers_the_survey_in_steps_on_a_phone
);

const PHONE: (u32, u32) = (390, 844);
const DESKTOP: (u32, u32) = (1280, 800);

/// The WCAG 2.1 A and AA rules of axe-core.
const WCAG_TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/// axe-core's browser bundle.
fn axe_source() -> String {
    let path = std::env::var_os("SIPAS_AXE_JS").map_or_else(
        || {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("tests/a11y/node_modules/axe-core/axe.min.js")
        },
        PathBuf::from,
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "axe-core is needed for the accessibility checks ({}: {e}); run `npm ci --prefix tests/a11y` \
             (as .ci/run does), point SIPAS_AXE_JS at axe.min.js, or set SIPAS_SKIP_BROWSER=1",
            path.display()
        )
    })
}

/// Runs axe-core on the page shown and fails the test on any WCAG 2.1 A/AA violation,
/// naming the rule and the elements.
pub(crate) async fn assert_accessible(browser: &Browser, what: &str) {
    let violations = axe_violations(browser, what).await;
    assert_eq!(
        violations,
        json!([]),
        "WCAG 2.1 A/AA violations on {what}:\n{}",
        serde_json::to_string_pretty(&violations).unwrap_or_default()
    );
}

/// axe-core's WCAG 2.1 A/AA violations on the page shown: `[{id, impact, help, nodes}]`.
async fn axe_violations(browser: &Browser, what: &str) -> Value {
    browser.js(&axe_source(), vec![]).await;
    let script = "const done = arguments[arguments.length - 1];
        axe.run(document, { runOnly: { type: 'tag', values: arguments[0] }, resultTypes: ['violations'] })
          .then(r => done(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(' ') + ' :: ' + (n.failureSummary || '')) }))))
          .catch(e => done([{ id: 'axe-error', help: String(e) }]));";
    browser
        .client
        .execute_async(script, vec![json!(WCAG_TAGS)])
        .await
        .unwrap_or_else(|e| panic!("axe-core did not run on {what}: {e}"))
}

fn screenshot_path(name: &str) -> PathBuf {
    if std::env::var("SIPAS_SAVE_SCREENSHOTS").is_ok_and(|v| v == "1") {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&dir).expect("docs/screenshots");
        dir.join(name)
    } else {
        std::env::temp_dir().join(format!("sipas-{name}"))
    }
}

/// No horizontal scrolling at the current size.
async fn assert_fits_width(browser: &Browser, what: &str) {
    let widths = browser
        .js(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await;
    let (page, screen) = (
        widths[0].as_i64().unwrap_or(0),
        widths[1].as_i64().unwrap_or(0),
    );
    assert!(
        page <= screen,
        "{what}: page {page}px wide on a {screen}px screen"
    );
}

/// How many screens tall the page is at the current size.
async fn screens(browser: &Browser) -> f64 {
    let v = browser
        .js(
            "return [document.documentElement.scrollHeight, window.innerHeight]",
            vec![],
        )
        .await;
    v[0].as_f64().unwrap_or(0.0) / v[1].as_f64().unwrap_or(1.0).max(1.0)
}

async fn dashboard_and_agency_home_on_phone_and_desktop(app: TestApp) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    bounded(dashboards(&app, &browser)).await;
    browser.close().await;
}

async fn dashboards(app: &TestApp, browser: &Browser) {
    load_story(app, sipas::db::now());
    crate::helpers::staff::create_user(
        app,
        "snv-agency",
        sipas::accounts::Role::Agency,
        Some("SNV"),
        None,
    );
    let password = crate::helpers::staff::admin_password(app);
    sign_in_on_page(app, browser, sipas::demo::ADMIN, &password).await;
    wait_for_path(browser, "/admin").await;
    browser.wait_for_heading("Tổng quan tỉnh").await;
    let month = last_month_label();
    for (size, name) in [(DESKTOP, "desktop"), (PHONE, "phone")] {
        browser.set_viewport(size.0, size.1).await;
        browser.goto(&app.url("/admin")).await;
        browser.wait_for_heading("Tổng quan tỉnh").await;
        let period = browser
            .js(
                "return document.getElementById('dashboard-period').textContent",
                vec![],
            )
            .await;
        assert_eq!(period, json!(month), "opens on the latest month with data");
        assert_fits_width(browser, &format!("dashboard ({name})")).await;
        // Every chart is an image with a name screen readers read.
        let unnamed = browser
            .js(
                "return [...document.querySelectorAll('svg.chart')].filter(s => s.getAttribute('role') !== 'img' \
                 || !s.getAttribute('aria-labelledby').split(' ').every(id => document.getElementById(id))).length",
                vec![],
            )
            .await;
        assert_eq!(unnamed, json!(0));
        assert_accessible(browser, &format!("the province dashboard ({name})")).await;
        if name == "desktop" {
            browser.js("window.scrollTo(0, 0)", vec![]).await;
            browser
                .save_screenshot(&screenshot_path("dashboard.png"))
                .await;
        }
    }
    // The check can fail: an image without a text alternative is found.
    browser
        .js(
            "const i = document.createElement('img'); i.src = '/static/none.png'; document.querySelector('main').appendChild(i);",
            vec![],
        )
        .await;
    let planted = axe_violations(browser, "a page with a planted violation").await;
    assert!(
        planted
            .as_array()
            .is_some_and(|v| v.iter().any(|v| v["id"] == "image-alt")),
        "axe-core finds a missing alt text: {planted}"
    );

    // From the dashboard to the weakest unit's report in one tap.
    let link = browser
        .client
        .find(Locator::Css("#weakest-units tbody tr a"))
        .await
        .expect("weakest unit link");
    link.click().await.expect("open the weakest unit");
    browser.wait_for_heading("Sở Xây dựng").await;

    // The agency home, as the improving department sees it.
    browser.client.delete_all_cookies().await.expect("sign out");
    sign_in_on_page(
        app,
        browser,
        "snv-agency",
        crate::helpers::staff::TEST_PASSWORD,
    )
    .await;
    wait_for_path(browser, "/agency").await;
    for (size, name) in [(PHONE, "phone"), (DESKTOP, "desktop")] {
        browser.set_viewport(size.0, size.1).await;
        browser.goto(&app.url("/agency")).await;
        browser.wait_for_heading("Đơn vị của tôi").await;
        let changes = browser
            .js(
                "return document.getElementById('changes').textContent",
                vec![],
            )
            .await;
        assert!(
            changes.as_str().is_some_and(|t| t.contains("Sở Nội vụ")),
            "the significant change is listed: {changes}"
        );
        assert_accessible(browser, &format!("the agency home ({name})")).await;
    }
    browser.set_viewport(PHONE.0, PHONE.1).await;
}

async fn citizen_answers_the_survey_in_steps_on_a_phone(app: TestApp) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    bounded(answer_in_steps(&app, &browser)).await;
    browser.close().await;
}

async fn answer_in_steps(app: &TestApp, browser: &Browser) {
    let form = app.state.forms.latest("sipas").expect("sipas form");
    let title = form.title.get(sipas::i18n::Lang::Vi).to_string();
    browser.set_viewport(PHONE.0, PHONE.1).await;

    // Before: the whole questionnaire on one page.
    let other = app.issue_survey("HS-PHONE-ONE-PAGE", Some("sipas")).await;
    browser
        .goto(&format!(
            "{}?layout=all",
            other["survey_url"].as_str().expect("url")
        ))
        .await;
    browser.wait_for_heading(&title).await;
    let one_page_screens = screens(browser).await;

    // After: one element per step.
    let issued = app.issue_survey("HS-PHONE-STEPS", Some("sipas")).await;
    let url = issued["survey_url"].as_str().expect("url").to_string();
    browser.goto(&url).await;
    browser.wait_for_heading(&title).await;
    let total = sipas::survey::steps::plan(&form).len();
    assert_fits_width(browser, "step 1").await;
    assert_accessible(browser, "the survey's first step (phone)").await;
    browser
        .save_screenshot(&screenshot_path("survey-step-1.png"))
        .await;

    let wanted: BTreeMap<String, String> = full_answers(&form).into_iter().collect();
    let mut step_screens = Vec::new();
    let mut step = 0;
    while step < total {
        let shown = browser
            .js(
                "return document.getElementById('step-number').textContent",
                vec![],
            )
            .await;
        assert_eq!(shown, json!(format!("{}/{total}", step + 1)));
        step_screens.push(screens(browser).await);
        // Tap an answer for each question of the step, as on a touch screen.
        for q in sipas::survey::steps::questions(&form, step) {
            let value = &wanted[&q.code];
            if q.kind == QuestionType::Text {
                let field = browser
                    .client
                    .find(Locator::Css(&format!("textarea[name=\"{}\"]", q.code)))
                    .await
                    .expect("textarea");
                field.send_keys(value).await.expect("type");
                continue;
            }
            let label = browser
                .client
                .find(Locator::XPath(&format!(
                    "//input[@name='{}' and @value='{}']/ancestor::label",
                    q.code, value
                )))
                .await
                .unwrap_or_else(|e| panic!("label of {}={value}: {e}", q.code));
            label.click().await.expect("tap");
            let checked = browser
                .js(
                    "return document.querySelector(`input[name='${arguments[0]}'][value='${arguments[1]}']`).checked",
                    vec![json!(q.code), json!(value)],
                )
                .await;
            assert_eq!(checked, json!(true), "tapping answers {}", q.code);
        }
        if step == 1 {
            // Back to the first step: its answers are still chosen; then on again.
            browser
                .client
                .find(Locator::Css("button.secondary"))
                .await
                .expect("back button")
                .click()
                .await
                .expect("back");
            wait_for_step(browser, 1, total).await;
            let first = &sipas::survey::steps::questions(&form, 0)[0].code;
            let kept = browser
                .js(
                    "return [...document.getElementsByName(arguments[0])].filter(e => e.checked).map(e => e.value)",
                    vec![json!(first)],
                )
                .await;
            assert_eq!(kept, json!([wanted[first]]), "answers kept going back");
            click_primary(browser).await;
            wait_for_step(browser, 2, total).await;
            // The second step's answers came back too.
            let second = &sipas::survey::steps::questions(&form, 1)[0].code;
            let kept = browser
                .js(
                    "return [...document.getElementsByName(arguments[0])].filter(e => e.checked).map(e => e.value)",
                    vec![json!(second)],
                )
                .await;
            assert_eq!(kept, json!([wanted[second]]), "answers kept going forward");
        }
        if step + 1 == total {
            assert_accessible(browser, "the survey's last step (phone)").await;
        }
        click_primary(browser).await;
        step += 1;
        if step < total {
            wait_for_step(browser, step + 1, total).await;
        }
    }
    browser.wait_for_heading("Cảm ơn Ông/Bà đã đánh giá!").await;

    let stepped: f64 = step_screens.iter().sum();
    let tallest = step_screens.iter().cloned().fold(0.0, f64::max);
    eprintln!(
        "survey on a 390×844 phone: one page = {one_page_screens:.1} screens; in steps = {total} steps, \
         {stepped:.1} screens in all, the tallest step {tallest:.1} screens ({step_screens:.1?})"
    );
    assert!(
        one_page_screens > f64::from(u32::try_from(total).unwrap_or(1)),
        "the one-page form is longer than the steps"
    );

    // Exactly one response, with the answers tapped across the steps.
    let conn = &mut app.conn();
    let stored: Vec<String> =
        db_run!(conn: { responses::table.select(responses::answers).load(conn) }).expect("rows");
    assert_eq!(stored.len(), 1);
    let rows = sipas::survey::stored::decode(&stored[0]).expect("answers");
    assert_eq!(rows.len(), form.questions().count());
}

async fn wait_for_step(browser: &Browser, step: usize, total: usize) {
    let expected = json!(format!("{step}/{total}"));
    for _ in 0..100 {
        let shown = browser
            .client
            .execute(
                "const e = document.getElementById('step-number'); return e && e.textContent",
                vec![],
            )
            .await
            .unwrap_or(Value::Null);
        if shown == expected {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("step {expected} did not appear");
}

async fn click_primary(browser: &Browser) {
    browser
        .client
        .find(Locator::Css(".stepnav button:not(.secondary)"))
        .await
        .expect("next button")
        .click()
        .await
        .expect("next");
}
