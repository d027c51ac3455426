//! Issue #8 in a real browser: a citizen gives a bad overall rating on a phone and asks to be
//! contacted; the agency opens the case from its list, records what it did and closes it; the
//! province sees the integrity panel, the numbers behind a unit's flag, and the case closed
//! while another stays overdue. Uses the headless Chromium helper of `browser.rs`; every wait
//! polls the page with a bound, never a fixed sleep.

use std::time::{Duration, Instant};

use diesel::prelude::*;
use fantoccini::Locator;
use serde_json::json;
use sipas::db::schema::rating_cases;
use sipas::db_run;
use sipas::forms::{QuestionRole, QuestionType};
use sipas::i18n::Lang;

use crate::browser::{Browser, bounded};
use crate::browser_staff::{
    body_text, click, sign_in_on_page, table_cells, text_of, type_into, wait_for_path,
};
use crate::helpers::staff::{TEST_PASSWORD, create_user, unit_id};
use crate::helpers::{TestApp, full_answers};
use crate::on_both_databases;

on_both_databases!(bad_rating_case_from_survey_to_closing_and_the_panel);

/// A desktop window for the staff pages.
const DESKTOP: (u32, u32) = (1280, 900);
/// How long a page state may take to appear.
const WAIT_LIMIT: Duration = Duration::from_secs(10);
/// Counter answers from the counter's own machine: enough to test the unit (`MIN_N`).
const COUNTER_ANSWERS: usize = 11;

async fn bad_rating_case_from_survey_to_closing_and_the_panel(app: TestApp) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    bounded(scenario(&app, &browser)).await;
    browser.close().await;
}

/// Waits until the script `condition` (an expression) is true on the page.
async fn wait_until(browser: &Browser, condition: &str, what: &str) {
    let script = format!("try {{ return !!({condition}); }} catch (e) {{ return false; }}");
    let start = Instant::now();
    loop {
        if browser.js(&script, vec![]).await == json!(true) {
            return;
        }
        if start.elapsed() > WAIT_LIMIT {
            panic!(
                "{what} did not happen within {WAIT_LIMIT:?}; the page shows:\n{}",
                body_text(browser).await
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The row of `table` whose first cell starts with `first`.
fn row<'a>(rows: &'a [Vec<String>], first: &str) -> &'a [String] {
    rows.iter()
        .find(|r| r.first().is_some_and(|c| c.starts_with(first)))
        .unwrap_or_else(|| panic!("no row starting with {first:?} in {rows:?}"))
}

async fn scenario(app: &TestApp, browser: &Browser) {
    let form = app.state.forms.latest("sipas").expect("sipas form");
    let overall = form
        .question_with_role(QuestionRole::Overall)
        .expect("overall")
        .code
        .clone();

    // The counter answers its own surveys from its own machine (same device as the
    // registration), and one of those is a bad rating that nobody follows up.
    for i in 0..COUNTER_ANSWERS {
        let issued = app
            .issue_survey(&format!("COUNTER-{i}"), Some("sipas"))
            .await;
        let mut fields = full_answers(&form);
        if i == 0 {
            for (code, value) in fields.iter_mut() {
                if *code == overall {
                    *value = "1".into();
                }
            }
        }
        let url = issued["survey_url"].as_str().expect("url");
        assert_eq!(app.submit(url, &fields).await.status(), 200);
    }

    // ---------------------------------------------------------------- the citizen, on a phone
    let issued = app.issue_survey("CITIZEN-1", Some("sipas")).await;
    browser
        .goto(&format!(
            "{}?layout=all",
            issued["survey_url"].as_str().expect("url")
        ))
        .await;
    browser.wait_for_heading(form.title.get(Lang::Vi)).await;
    let hint = text_of(browser, "#q-contact .hint").await;
    assert!(hint.contains("bị bỏ đi, không được lưu"), "{hint}");
    assert_eq!(
        browser
            .js(
                "return document.querySelector('input[name=contact_ok]').checked",
                vec![]
            )
            .await,
        json!(false),
        "not ticked by default"
    );
    // Tap an answer for every choice question: "Satisfied" throughout, "Dissatisfied" overall.
    let mut taps: Vec<(String, String)> = Vec::new();
    for q in form.questions() {
        let value = match q.kind {
            QuestionType::Scale5 if q.code == overall => "2".to_string(),
            QuestionType::Scale5 => "4".to_string(),
            QuestionType::Scale3 => "2".to_string(),
            QuestionType::Choice | QuestionType::Multi => q.options[0].code.clone(),
            QuestionType::Text => continue,
        };
        taps.push((q.code.clone(), value));
    }
    let missing = browser
        .js(
            "const missing = [];
             for (const [name, value] of arguments[0]) {
               const input = document.querySelector(`input[name='${name}'][value='${value}']`);
               if (input) { input.click(); } else { missing.push(name); }
             }
             return missing;",
            vec![json!(taps)],
        )
        .await;
    assert_eq!(missing, json!([]), "every answer has its input");
    let comment = form
        .questions()
        .find(|q| q.kind == QuestionType::Text)
        .expect("a comment question")
        .code
        .clone();
    type_into(
        browser,
        &format!("textarea[name='{comment}']"),
        "Phải chờ quá lâu, cán bộ không hướng dẫn.",
    )
    .await;
    // Ticked, with a contact that is neither a phone number nor an e-mail address: refused
    // next to the field, in Vietnamese, and nothing is lost.
    click(browser, "input[name=contact_ok]").await;
    type_into(browser, "#contact", "0912").await;
    click(browser, "main form button[type=submit]").await;
    wait_until(
        browser,
        "document.querySelector('#err-contact')",
        "the contact error",
    )
    .await;
    let error = text_of(browser, "#err-contact").await;
    assert!(
        error.contains("Số điện thoại hoặc địa chỉ thư điện tử không hợp lệ"),
        "{error}"
    );
    let kept = browser
        .js(
            "return [document.querySelector(`input[name='${arguments[0]}'][value='2']`).checked,
                     document.querySelector('input[name=contact_ok]').checked]",
            vec![json!(overall)],
        )
        .await;
    assert_eq!(kept, json!([true, true]), "answers and the tick are kept");
    type_into(browser, "#contact", "0912 345 678").await;
    click(browser, "main form button[type=submit]").await;
    browser.wait_for_heading("Cảm ơn Ông/Bà đã đánh giá!").await;

    // Both cases were due long ago: time passes in the database.
    let (case_id, other_id) = {
        let conn = &mut app.conn();
        let cases: Vec<(String, Option<String>)> = db_run!(conn: {
            rating_cases::table.select((rating_cases::id, rating_cases::contact)).load(conn)
        })
        .unwrap();
        assert_eq!(cases.len(), 2, "{cases:?}");
        let overdue = chrono::Utc::now().date_naive() - chrono::Duration::days(2);
        db_run!(conn: {
            diesel::update(rating_cases::table).set(rating_cases::due_on.eq(overdue)).execute(conn)
        })
        .unwrap();
        let mine = cases
            .iter()
            .find(|c| c.1.is_some())
            .expect("the case with a contact");
        let other = cases
            .iter()
            .find(|c| c.1.is_none())
            .expect("the counter's case");
        (mine.0.clone(), other.0.clone())
    };

    // ---------------------------------------------------------------- the agency
    browser.set_viewport(DESKTOP.0, DESKTOP.1).await;
    create_user(
        app,
        "stp-agency",
        sipas::accounts::Role::Agency,
        Some("STP"),
        None,
    );
    sign_in_on_page(app, browser, "stp-agency", TEST_PASSWORD).await;
    wait_for_path(browser, "/agency").await;
    click(browser, "nav.staff a[href='/cases']").await;
    wait_for_path(browser, "/cases").await;
    let rows = table_cells(browser, "#cases").await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().all(|r| r[4] == "Quá hạn"), "{rows:?}");
    assert_eq!(
        rows.iter().filter(|r| r[5] == "Có").count(),
        1,
        "one citizen asked to be contacted: {rows:?}"
    );
    let case_path = format!("/cases/{case_id}");
    click(browser, &format!("#cases a[href='{case_path}']")).await;
    wait_for_path(browser, &case_path).await;
    assert!(text_of(browser, "#case-status").await.contains("Quá hạn"));
    assert_eq!(text_of(browser, "#case-contact").await, "0912345678");
    assert_eq!(
        text_of(browser, "#case-comment").await,
        "Phải chờ quá lâu, cán bộ không hướng dẫn."
    );
    let page = body_text(browser).await;
    assert!(
        !page.contains("CITIZEN-1"),
        "no dossier on the case: {page}"
    );

    // A first action, then the closing one with how it was resolved.
    type_into(
        browser,
        "#note",
        "Đã gọi điện cho người dân, hẹn hướng dẫn lại.",
    )
    .await;
    click(browser, "#case-action button[type=submit]").await;
    wait_until(
        browser,
        "document.querySelectorAll('#case-actions li').length === 1",
        "the first action",
    )
    .await;
    assert!(
        text_of(browser, "#case-actions")
            .await
            .contains("hẹn hướng dẫn lại"),
        "the action is listed"
    );
    type_into(
        browser,
        "#note",
        "Đã hướng dẫn và trả kết quả; người dân đồng ý.",
    )
    .await;
    click(browser, "#close").await;
    click(browser, "#case-action button[type=submit]").await;
    wait_until(
        browser,
        "document.querySelectorAll('#case-actions li').length === 2 && !document.querySelector('#case-action')",
        "closing the case",
    )
    .await;
    assert!(text_of(browser, "#case-status").await.contains("Đã đóng"));
    let actions = text_of(browser, "#case-actions").await;
    assert!(
        actions.contains("stp-agency: Đã hướng dẫn") && actions.contains("(đóng)"),
        "{actions}"
    );
    assert_eq!(
        text_of(browser, "#case-contact").await,
        "Thông tin liên hệ đã được xóa khi đóng trường hợp."
    );
    click(browser, "nav.staff a[href='/cases']").await;
    wait_for_path(browser, "/cases").await;
    let rows = table_cells(browser, "#cases").await;
    let statuses: Vec<&str> = rows.iter().map(|r| r[4].as_str()).collect();
    assert_eq!(
        statuses,
        ["Quá hạn", "Đã đóng"],
        "open ones first: {rows:?}"
    );
    click(browser, "form[action='/logout'] button").await;
    wait_for_path(browser, "/login").await;

    // ---------------------------------------------------------------- the province
    let demo = sipas::demo::load(&mut app.conn(), &app.state.secret).expect("demo");
    sign_in_on_page(app, browser, &demo.admin_username, &demo.admin_password).await;
    wait_for_path(browser, "/admin").await;
    let overview = text_of(browser, "#overdue-cases").await;
    assert_eq!(
        overview.split_whitespace().last(),
        Some("1"),
        "only the open case is overdue: {overview}"
    );
    click(browser, "nav.staff a[href='/admin/integrity']").await;
    wait_for_path(browser, "/admin/integrity").await;
    let summary = text_of(browser, "#integrity-summary").await;
    assert!(
        summary.contains("Đơn vị bị gắn cờ: 1 /") && summary.contains("Phản hồi quá hạn xử lý: 1"),
        "{summary}"
    );
    let units = table_cells(browser, "#integrity-units").await;
    assert!(
        units[0][1].starts_with("STP ") && units[0][3].contains("Cùng thiết bị với quầy"),
        "the counter's own unit ranks first with its flag: {units:?}"
    );
    let stp = unit_id(app, "STP");
    click(
        browser,
        &format!("#integrity-units a[href^='/admin/integrity/units/{stp}']"),
    )
    .await;
    wait_for_path(browser, &format!("/admin/integrity/units/{stp}")).await;
    assert!(
        text_of(browser, "#unit-verdict")
            .await
            .starts_with("Bị gắn cờ")
    );
    // The numbers behind the flag: every answer but the citizen's came from the registering
    // machine (the citizen's phone is another device on the same network).
    let signals = table_cells(browser, "#unit-signals").await;
    let device = row(&signals, "Cùng thiết bị với quầy");
    let answered = COUNTER_ANSWERS + 1;
    assert_eq!(
        device[1],
        format!("{COUNTER_ANSWERS} / {answered}"),
        "{signals:?}"
    );
    assert_eq!(device[6], "⚑", "{signals:?}");
    let network = row(&signals, "Cùng mạng với quầy");
    assert_eq!(
        network[1],
        format!("{answered} / {answered}"),
        "{signals:?}"
    );

    // Back on the panel, the overdue link leads to the cases: one closed, one overdue.
    browser.client.back().await.expect("back");
    wait_for_path(browser, "/admin/integrity").await;
    click(browser, "#integrity-summary a[href='/cases']").await;
    wait_for_path(browser, "/cases").await;
    let rows = table_cells(browser, "#cases").await;
    assert!(
        rows.iter()
            .any(|r| r[0].starts_with("STP") && r[4] == "Đã đóng")
            && rows.iter().any(|r| r[4] == "Quá hạn"),
        "{rows:?}"
    );
    click(browser, &format!("#cases a[href='/cases/{other_id}']")).await;
    wait_for_path(browser, &format!("/cases/{other_id}")).await;
    assert!(text_of(browser, "#case-status").await.contains("Quá hạn"));
    assert!(
        browser
            .client
            .find(Locator::Css("#case-contact"))
            .await
            .is_err(),
        "no contact on a case whose citizen did not ask"
    );
}
