//! Staff pages in a real browser at desktop size: the administrator sets up a unit and its
//! agency account, the agency then sees only its unit; the dashboard and the ranking show the
//! same figures as the JSON API. Uses the headless Chromium helper of `browser.rs`.

use std::time::{Duration, Instant};

use chrono::Datelike;
use fantoccini::Locator;
use fantoccini::cookies::Cookie;
use serde_json::{Value, json};
use sipas::i18n::Lang;

use crate::browser::{Browser, bounded};
use crate::helpers::staff::{sign_in_admin, unit_id};
use crate::helpers::{Backend, TestApp};

/// A desktop browser window.
const DESKTOP: (u32, u32) = (1280, 900);
/// How long a page may take to appear after a click.
const PAGE_LIMIT: Duration = Duration::from_secs(10);

async fn sqlite_app() -> TestApp {
    TestApp::spawn(Backend::Sqlite).await
}

#[actix_web::test]
async fn admin_sets_up_an_agency_that_sees_only_its_unit() {
    let app = sqlite_app().await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.set_viewport(DESKTOP.0, DESKTOP.1).await;
    bounded(set_up_an_agency(&app, &browser)).await;
    browser.close().await;
}

#[actix_web::test]
async fn dashboard_and_ranking_show_the_api_figures() {
    let app = sqlite_app().await;
    let offset = app.state.settings.utc_offset_value().unwrap();
    let generated = sipas::synthetic::generate(
        &mut app.conn(),
        &app.state.forms,
        3000,
        300,
        sipas::db::now(),
        7,
        offset,
    )
    .expect("synthetic data");
    assert_eq!(generated.responses, 3000);
    let Some(browser) = Browser::start().await else {
        return;
    };
    browser.set_viewport(DESKTOP.0, DESKTOP.1).await;
    bounded(compare_dashboard_and_ranking(&app, &browser)).await;
    browser.close().await;
}

// ---------------------------------------------------------------- helpers

/// The path of the page the browser shows.
pub(crate) async fn path(browser: &Browser) -> String {
    browser
        .client
        .current_url()
        .await
        .map(|u| u.path().to_string())
        .unwrap_or_default()
}

/// Waits until the browser shows a fully loaded page at `expected` (a path).
pub(crate) async fn wait_for_path(browser: &Browser, expected: &str) {
    let start = Instant::now();
    loop {
        let ready = browser.js("return document.readyState", vec![]).await;
        if path(browser).await == expected && ready == "complete" {
            return;
        }
        if start.elapsed() > PAGE_LIMIT {
            let text = body_text(browser).await;
            assert!(
                !text.contains("Biểu mẫu không hợp lệ"),
                "the service refused a form posted from its own page (403 \"Biểu mẫu không hợp \
                 lệ\") instead of reaching {expected}: pages are served with `Referrer-Policy: \
                 no-referrer`, so the browser sends `Origin: null` with form posts, and the \
                 same-origin check refuses it"
            );
            panic!(
                "the browser did not reach {expected} within {PAGE_LIMIT:?}; it shows {}:\n{text}",
                path(browser).await
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn body_text(browser: &Browser) -> String {
    browser
        .js(
            "return document.body ? document.body.innerText : ''",
            vec![],
        )
        .await
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// Types `text` into the field `selector` (after clearing it), like a person would.
pub(crate) async fn type_into(browser: &Browser, selector: &str, text: &str) {
    let field = browser
        .client
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("field {selector}: {e}"));
    field.clear().await.expect("clear");
    field
        .send_keys(text)
        .await
        .unwrap_or_else(|e| panic!("type into {selector}: {e}"));
    assert_eq!(
        field.prop("value").await.expect("value").as_deref(),
        Some(text),
        "{selector} holds what was typed"
    );
}

pub(crate) async fn click(browser: &Browser, selector: &str) {
    browser
        .client
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {selector}: {e}"));
}

/// Status and content type of a GET of `url` from inside the page (with its cookies).
async fn fetch_status(browser: &Browser, url: &str) -> (u64, String) {
    let v = browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], { credentials: 'same-origin' })
               .then(r => done([r.status, r.headers.get('content-type') || '']))
               .catch(e => done([0, String(e)]));",
            vec![json!(url)],
        )
        .await
        .expect("fetch from the page");
    (
        v[0].as_u64().unwrap_or_default(),
        v[1].as_str().unwrap_or_default().to_string(),
    )
}

/// JSON fetched from inside the page (with the browser's own session cookie).
async fn fetch_json(browser: &Browser, url: &str) -> Value {
    browser
        .client
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(arguments[0], { credentials: 'same-origin' })
               .then(r => r.json()).then(done).catch(e => done({ error: String(e) }));",
            vec![json!(url)],
        )
        .await
        .expect("fetch from the page")
}

/// The trimmed text of each cell of each body row of the table `selector`.
pub(crate) async fn table_cells(browser: &Browser, selector: &str) -> Vec<Vec<String>> {
    let v = browser
        .js(
            "const t = document.querySelector(arguments[0]);
             if (!t) return null;
             return [...t.querySelectorAll('tbody tr')]
               .map(tr => [...tr.cells].map(td => td.textContent.trim().replace(/\\s+/g, ' ')));",
            vec![json!(selector)],
        )
        .await;
    serde_json::from_value(v).unwrap_or_else(|e| panic!("table {selector} on the page: {e}"))
}

pub(crate) async fn text_of(browser: &Browser, selector: &str) -> String {
    browser
        .client
        .find(Locator::Css(selector))
        .await
        .unwrap_or_else(|e| panic!("{selector}: {e}"))
        .text()
        .await
        .expect("text")
        .trim()
        .to_string()
}

/// Signs in through the page's form; returns where the service sent the browser.
pub(crate) async fn sign_in_on_page(
    app: &TestApp,
    browser: &Browser,
    username: &str,
    password: &str,
) {
    browser.goto(&app.url("/login")).await;
    browser.wait_for_heading("Đăng nhập").await;
    type_into(browser, "#username", username).await;
    type_into(browser, "#password", password).await;
    click(browser, "form[action='/login'] button[type=submit]").await;
}

/// Equal JSON, numbers equal to 1e-12 relative (or absolute near zero).
fn same_numbers(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()).max(1.0),
            _ => false,
        },
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_numbers(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| same_numbers(v, w)))
        }
        (x, y) => x == y,
    }
}

/// How the (Vietnamese) report pages print a percentage: "80,6 %".
fn pct(figure: &Value) -> String {
    sipas::i18n::format::percent(Lang::Vi, figure["value"].as_f64())
}

fn ci(figure: &Value) -> String {
    sipas::i18n::format::interval(
        Lang::Vi,
        figure["ci_low"].as_f64(),
        figure["ci_high"].as_f64(),
    )
}

/// Saves the page as `name` twice: the first screen, and the whole page (`-full`).
async fn screenshots(browser: &Browser, name: &str) {
    let dir = std::env::temp_dir();
    browser.js("window.scrollTo(0, 0)", vec![]).await;
    browser
        .save_screenshot(&dir.join(format!("{name}.png")))
        .await;
    let height = browser
        .js("return document.documentElement.scrollHeight", vec![])
        .await
        .as_u64()
        .unwrap_or(u64::from(DESKTOP.1))
        .clamp(u64::from(DESKTOP.1), 12_000);
    browser.set_viewport(DESKTOP.0, height as u32).await;
    browser
        .save_screenshot(&dir.join(format!("{name}-full.png")))
        .await;
    browser.set_viewport(DESKTOP.0, DESKTOP.1).await;
    let widths = browser
        .js(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await;
    eprintln!(
        "{name}: page {} px wide in a {} px window",
        widths[0], widths[1]
    );
}

// ---------------------------------------------------------------- 1. setting up an agency

async fn set_up_an_agency(app: &TestApp, browser: &Browser) {
    let demo = sipas::demo::load(&mut app.conn(), &app.state.secret).expect("demo");
    sign_in_on_page(app, browser, &demo.admin_username, &demo.admin_password).await;
    wait_for_path(browser, "/admin").await;

    // A new department under the province, through the "add unit" form.
    browser.goto(&app.url("/admin/units")).await;
    wait_for_path(browser, "/admin/units").await;
    type_into(browser, "#code", "SO-Y-TE").await;
    type_into(browser, "#name_vi", "Sở Y tế").await;
    type_into(browser, "#name_en", "Department of Health").await;
    browser
        .client
        .find(Locator::Css("#kind"))
        .await
        .expect("kind")
        .select_by_value("department")
        .await
        .expect("choose department");
    type_into(browser, "#parent", "SON-HA").await;
    click(
        browser,
        "form[action='/admin/units'][method=post] button[type=submit]",
    )
    .await;
    let new_id = {
        let start = Instant::now();
        loop {
            let p = path(browser).await;
            if let Some(id) = p.strip_prefix("/admin/units/") {
                break id.to_string();
            }
            assert!(
                start.elapsed() < PAGE_LIMIT,
                "the new unit's page did not open: {p}\n{}",
                body_text(browser).await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    wait_for_path(browser, &format!("/admin/units/{new_id}")).await;
    assert_eq!(new_id, unit_id(app, "SO-Y-TE"));
    let page = body_text(browser).await;
    assert!(page.contains("Đã tạo mới."), "{page}");
    assert!(
        page.contains("SON-HA — Tỉnh Sơn Hà"),
        "parent shown: {page}"
    );

    // An agency account scoped to it; the first password is shown once.
    browser.goto(&app.url("/admin/users")).await;
    wait_for_path(browser, "/admin/users").await;
    type_into(browser, "#username", "can-bo-yte").await;
    type_into(browser, "#display_name", "Nguyễn Thị Hoa").await;
    browser
        .client
        .find(Locator::Css("#role"))
        .await
        .expect("role")
        .select_by_value("agency")
        .await
        .expect("choose agency");
    type_into(browser, "#unit", "SO-Y-TE").await;
    click(
        browser,
        "form[action='/admin/users'][method=post] button[type=submit]",
    )
    .await;
    let secret = match browser
        .client
        .wait()
        .at_most(PAGE_LIMIT)
        .for_element(Locator::Css("p.secret"))
        .await
    {
        Ok(secret) => secret,
        Err(e) => panic!(
            "the first password did not appear ({e}); the page at {} shows:\n{}",
            path(browser).await,
            body_text(browser).await
        ),
    };
    let first_password = secret.text().await.expect("password").trim().to_string();
    assert!(first_password.len() >= 10, "{first_password}");

    // Sign out from the navigation.
    let sign_out = browser
        .client
        .find(Locator::Css("nav.staff form[action='/logout'] button"))
        .await
        .expect("sign-out button");
    assert_eq!(sign_out.text().await.unwrap().trim(), "Đăng xuất");
    sign_out.click().await.expect("sign out");
    wait_for_path(browser, "/login").await;
    browser.goto(&app.url("/admin/users")).await;
    wait_for_path(browser, "/login").await;

    // The new account must choose its own password first.
    sign_in_on_page(app, browser, "can-bo-yte", &first_password).await;
    wait_for_path(browser, "/account/password").await;
    browser.goto(&app.url("/agency")).await;
    wait_for_path(browser, "/account/password").await;
    let new_password = "Hoa-doi-mat-khau-2026";
    type_into(browser, "#current_password", &first_password).await;
    type_into(browser, "#new_password", new_password).await;
    type_into(browser, "#confirm", new_password).await;
    click(
        browser,
        "form[action='/account/password'] button[type=submit]",
    )
    .await;
    wait_for_path(browser, "/account").await;
    assert!(body_text(browser).await.contains("Đã đổi mật khẩu."));

    // Its units: exactly the new department.
    browser.goto(&app.url("/agency")).await;
    wait_for_path(browser, "/agency").await;
    browser.wait_for_heading("Đơn vị của tôi").await;
    let rows = table_cells(browser, "main table").await;
    let codes: Vec<&str> = rows.iter().map(|r| r[0].as_str()).collect();
    assert_eq!(codes, ["SO-Y-TE"], "the agency's units: {rows:?}");
    assert!(rows[0][1].contains("Sở Y tế"), "{rows:?}");
    let page = body_text(browser).await;
    for other in ["STP", "SXD", "Sở Tư pháp", "Sở Xây dựng"] {
        assert!(
            !page.contains(other),
            "{other} listed for the agency:\n{page}"
        );
    }
    let links = browser
        .js(
            "return [...document.querySelectorAll('nav.staff a')].map(a => a.getAttribute('href'))",
            vec![],
        )
        .await;
    assert_eq!(
        links,
        json!(["/agency", "/cases", "/account"]),
        "no admin links"
    );

    // Another department's page does not exist for it.
    let stp = unit_id(app, "STP");
    let other_page = app.url(&format!("/agency/units/{stp}"));
    browser.goto(&other_page).await;
    browser.wait_for_heading("Không tìm thấy").await;
    let page = body_text(browser).await;
    assert!(page.contains("Không có đơn vị này."), "{page}");
    assert!(
        !page.contains("Sở Tư pháp"),
        "nothing about the unit: {page}"
    );
    let (status, content_type) = fetch_status(browser, &other_page).await;
    assert_eq!(status, 404);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    // Its own unit's page opens.
    let own = app.url(&format!("/agency/units/{new_id}"));
    assert_eq!(fetch_status(browser, &own).await.0, 200);
}

// ---------------------------------------------------------------- 2. dashboard and ranking

async fn compare_dashboard_and_ranking(app: &TestApp, browser: &Browser) {
    let offset = app.state.settings.utc_offset_value().unwrap();
    // The current year; in its first two months the previous one (the data covers 300 days),
    // so that there are figures to compare whatever the date.
    let today = sipas::calendar::local_day(sipas::db::now(), offset);
    let year = if today.ordinal() > 60 {
        today.year()
    } else {
        today.year() - 1
    }
    .to_string();
    // Signed in once, over HTTP; the browser gets the same session cookie, so the page and
    // the JSON are read by the same session. (Signing in through the page's form is covered by
    // the first scenario.)
    let admin = sign_in_admin(app).await;
    browser.goto(&app.url("/login")).await;
    let cookie = Cookie::parse(format!(
        "{}={}; Path=/; Domain=127.0.0.1; HttpOnly; SameSite=Lax",
        sipas::accounts::sessions::COOKIE_NAME,
        admin.session
    ))
    .expect("cookie");
    browser
        .client
        .add_cookie(cookie)
        .await
        .expect("session cookie in the browser");
    browser.goto(&app.url("/admin")).await;
    wait_for_path(browser, "/admin").await;

    // The Department of Justice's dashboard against its JSON.
    let stp = unit_id(app, "STP");
    let page_path = format!("/reports/units/{stp}");
    browser
        .goto(&app.url(&format!("{page_path}?period={year}")))
        .await;
    wait_for_path(browser, &page_path).await;
    browser.wait_for_heading("Sở Tư pháp").await;
    let api = format!("/api/v1/reports/units/{stp}?period={year}");
    let response = admin.get(app, &api).await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.expect("report JSON");
    // JavaScript has one kind of number (66.0 comes back as 66): compare numbers as numbers.
    let in_browser = fetch_json(browser, &app.url(&api)).await;
    // The JSON now carries unrounded figures; a parse through JavaScript may differ from
    // serde_json's in the last bit, so numbers are compared to 1e-12 relative.
    assert!(
        same_numbers(&in_browser, &report),
        "the browser's session reads the same JSON (browser: {})",
        &in_browser.to_string().chars().take(300).collect::<String>()
    );
    let sipas = &report["sipas"];
    assert!(
        sipas["responses"].as_u64().unwrap() > 100,
        "enough data: {}",
        sipas["responses"]
    );
    assert!(sipas["index"]["value"].is_number(), "an index to compare");
    assert_eq!(text_of(browser, "#sipas-index").await, pct(&sipas["index"]));
    assert_eq!(
        text_of(browser, "#sipas-n").await,
        sipas["index"]["n"].to_string()
    );
    let rows = table_cells(browser, "#elements").await;
    let elements = sipas["elements"].as_array().unwrap();
    assert_eq!(rows.len(), elements.len(), "{rows:?}");
    for (row, e) in rows.iter().zip(elements) {
        let label = format!(
            "{} {}",
            e["code"].as_str().unwrap(),
            e["title_vi"].as_str().unwrap()
        );
        assert_eq!(
            row,
            &vec![
                label,
                pct(&e["index"]),
                ci(&e["index"]),
                e["index"]["n"].to_string()
            ],
            "element {}",
            e["code"]
        );
    }
    assert_eq!(
        text_of(browser, "#dossier-rate-value").await,
        sipas::i18n::format::percent(Lang::Vi, report["dossier_rate"]["rate"].as_f64())
    );
    // Charts: SVG images with a title (and a description) for screen readers.
    let charts = browser
        .js(
            "return [...document.querySelectorAll('main svg')].map(s => {
               const ids = (s.getAttribute('aria-labelledby') || '').split(' ').filter(Boolean);
               return {
                 role: s.getAttribute('role'),
                 title: s.querySelector('title') ? s.querySelector('title').textContent : null,
                 desc: s.querySelector('desc') ? s.querySelector('desc').textContent : null,
                 labels: ids.map(id => document.querySelectorAll('#' + CSS.escape(id)).length),
                 width: s.getBoundingClientRect().width,
               };
             })",
            vec![],
        )
        .await;
    let charts = charts.as_array().expect("charts");
    assert!(charts.len() >= 2, "element bars and trend: {charts:?}");
    for c in charts {
        assert_eq!(c["role"], "img", "{c}");
        assert!(
            c["title"].as_str().is_some_and(|t| !t.trim().is_empty()),
            "{c}"
        );
        assert!(c["desc"].as_str().is_some_and(|d| d.contains('%')), "{c}");
        assert!(
            c["labels"].as_array().unwrap().iter().all(|n| n == 1),
            "aria-labelledby names unique ids: {c}"
        );
        assert!(c["width"].as_f64().unwrap() > 100.0, "drawn: {c}");
    }
    screenshots(browser, "sipas-dashboard").await;

    // The ranking of departments against its JSON, row by row.
    let query = format!("period={year}&kind=department");
    browser
        .goto(&app.url(&format!("/reports/ranking?{query}")))
        .await;
    wait_for_path(browser, "/reports/ranking").await;
    browser.wait_for_heading("Xếp hạng đơn vị").await;
    let response = admin
        .get(app, &format!("/api/v1/reports/ranking?{query}"))
        .await;
    assert_eq!(response.status(), 200);
    let ranking: Value = response.json().await.expect("ranking JSON");
    let json_rows = ranking["rows"].as_array().expect("rows");
    let rows = table_cells(browser, "#ranking").await;
    assert_eq!(rows.len(), json_rows.len(), "{rows:?}");
    assert!(json_rows.len() >= 4, "the demo departments: {ranking}");
    let mut ranked = 0;
    for (i, (row, r)) in rows.iter().zip(json_rows).enumerate() {
        let code = r["unit"]["code"].as_str().unwrap();
        assert!(
            row[1].starts_with(&format!("{code} ")),
            "row {i}: {row:?} is {code}"
        );
        let index = sipas::i18n::format::percent(Lang::Vi, r["index"]["value"].as_f64());
        assert_eq!(row[2], index, "row {i} ({code}): index");
        let rank = r["rank"]
            .as_u64()
            .map(|n| n.to_string())
            .unwrap_or_else(|| "—".into());
        assert_eq!(row[0], rank, "row {i} ({code}): rank");
        assert_eq!(row[4], r["sample"]["achieved"].to_string(), "row {i}: n");
        ranked += usize::from(r["rank"].is_u64());
    }
    let index_of = |r: &Value| r["index"]["value"].as_f64().unwrap_or(-1.0);
    let ranked_rows: Vec<&Value> = json_rows.iter().filter(|r| r["rank"].is_u64()).collect();
    assert!(
        ranked_rows
            .windows(2)
            .all(|w| index_of(w[0]) >= index_of(w[1])),
        "ranked by index"
    );
    eprintln!("ranking: {} departments, {ranked} ranked", json_rows.len());
    let charts = browser
        .js(
            "return document.querySelectorAll('main svg[role=img] title').length",
            vec![],
        )
        .await;
    eprintln!("ranking page charts: {charts}");
    screenshots(browser, "sipas-ranking").await;
}
