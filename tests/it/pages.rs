//! Pages people want to use (issue #19): the province dashboard, the agency home, the survey in
//! steps, the demo story, Vietnamese formatting and pages that open on the latest period with
//! data. Browser checks (phone and desktop, axe-core) are in `browser_pages`.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDateTime};
use diesel::prelude::*;
use sipas::accounts::Role;
use sipas::db::schema::responses;
use sipas::db_run;

use crate::helpers::staff::{create_user, sign_in, sign_in_admin, unit_id};
use crate::helpers::{Backend, TestApp, full_answers};
use crate::on_both_databases;

on_both_databases!(
    dashboard_tells_the_story_of_the_latest_month,
    dashboard_of_an_empty_province_says_so,
    agency_home_shows_its_units_changes_items_and_cases,
    pages_open_on_the_latest_period_with_data,
    survey_in_steps_keeps_answers_and_submits_once,
    forged_or_spent_steps_are_refused_clearly,
);
on_both_databases!(backend: story_is_reproducible_from_its_seed_and_loaded_once);

/// Loads the demo story as of `now`.
pub(crate) fn load_story(app: &TestApp, now: NaiveDateTime) -> sipas::demo::story::StorySummary {
    let policy = app.state.policies.integrity.clone();
    sipas::demo::story::load(
        &mut app.conn(),
        &app.state.forms,
        &app.state.secret,
        &policy,
        2026,
        now,
    )
    .expect("story loads")
}

/// The province's local date today (the test settings keep the default UTC+07:00).
fn local_today() -> chrono::NaiveDate {
    (sipas::db::now() + chrono::Duration::hours(7)).date()
}

/// `YYYY-MM` of the month before this one: the latest finished month, which the story fills.
pub(crate) fn last_month_label() -> String {
    let first = local_today().with_day(1).expect("first of month");
    let previous = first
        .checked_sub_months(chrono::Months::new(1))
        .expect("previous month");
    previous.format("%Y-%m").to_string()
}

/// The text between `<tag id="id"` and the element's end tag (first occurrence).
pub(crate) fn element(html: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("#{id} on the page"));
    let open = html[..start].rfind('<').expect("tag start");
    let tag: String = html[open + 1..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    let end = html[start..]
        .find(&format!("</{tag}>"))
        .map_or(html.len(), |e| start + e);
    html[start..end].to_string()
}

/// Whether a page writes a percentage the English way ("80.6%").
fn has_english_percent(html: &str) -> bool {
    let b = html.as_bytes();
    (3..b.len()).any(|i| {
        b[i] == b'%' && b[i - 1].is_ascii_digit() && b[i - 2] == b'.' && b[i - 3].is_ascii_digit()
    })
}

/// Whether a page writes a percentage the Vietnamese way ("80,6 %").
fn has_vietnamese_percent(html: &str) -> bool {
    let b = html.as_bytes();
    (4..b.len()).any(|i| {
        b[i] == b'%'
            && b[i - 1] == b' '
            && b[i - 2].is_ascii_digit()
            && b[i - 3] == b','
            && b[i - 4].is_ascii_digit()
    })
}

fn assert_vietnamese_numbers(html: &str) {
    assert!(
        !html.contains("-0,0") && !html.contains("-0.0"),
        "no minus zero"
    );
    assert!(
        has_vietnamese_percent(html),
        "percentages are written \"80,6 %\""
    );
    assert!(
        !has_english_percent(html),
        "no \"80.6%\" on a Vietnamese page"
    );
}

async fn dashboard_tells_the_story_of_the_latest_month(app: TestApp) {
    let story = load_story(&app, sipas::db::now());
    assert!(story.responses > 3000 && story.paper_forms > 0, "{story:?}");
    let admin = sign_in_admin(&app).await;
    let page = admin.page(&app, "/admin").await;
    let month = last_month_label();
    assert_eq!(
        element(&page, "dashboard-period"),
        format!("id=\"dashboard-period\">{month}"),
        "opens on the latest finished month with data"
    );
    // The province index with its interval and trend, as SVG charts with text alternatives.
    assert!(element(&page, "province-index").contains(" %"));
    assert!(element(&page, "province-ci").contains('–'));
    for id in ["trend-tt", "elements-t", "spread-t"] {
        assert!(page.contains(&format!("<title id=\"{id}\">")), "chart {id}");
    }
    assert_eq!(
        page.matches("aria-labelledby=\"trend-tt trend-td\"")
            .count(),
        1
    );
    // The weakest unit is the Department of Construction; the inflating commune is flagged.
    let weakest = element(&page, "weakest-units");
    let first_row = weakest.split("<tr>").nth(2).expect("a first unit");
    assert!(first_row.contains("Sở Xây dựng"), "{first_row}");
    assert!(weakest.contains(&format!(
        "href=\"/reports/units/{}?period={month}\"",
        unit_id(&app, "SXD")
    )));
    let flagged = element(&page, "flagged-units");
    assert!(flagged.contains("UBND xã Tân Lập"), "{flagged}");
    assert!(flagged.contains(&format!(
        "/admin/integrity/units/{}?period={month}",
        unit_id(&app, "X-TAN-LAP")
    )));
    assert!(
        !flagged.contains("Sở Tư pháp"),
        "honest units are not flagged"
    );
    // The busy department is below its required sample.
    assert!(element(&page, "below-sample").contains("Sở Nông nghiệp và Môi trường"));
    // Weakest items, paper progress at every step, overdue cases, stuck mail.
    assert!(element(&page, "weakest-items").contains("<td>"));
    let paper = element(&page, "paper-progress");
    for step in ["Đã phát", "Đã giao", "Đã thu về", "Đã nhập", "Đã kiểm tra"] {
        assert!(paper.contains(step), "{paper}");
    }
    assert!(
        !paper.contains("Đã nhập</strong>: 0 "),
        "some forms are keyed: {paper}"
    );
    assert!(
        element(&page, "overdue-cases").contains("strong"),
        "overdue cases are shown"
    );
    assert!(element(&page, "overdue-list").contains("href=\"/cases/"));
    assert!(element(&page, "stuck-mail").contains(">3<"));
    assert!(page.contains("href=\"/admin/outbox?status=failed\""));
    assert!(page.contains("href=\"/paper/batches\""));
    // The former counts table, lower on the page, with grouped thousands.
    let counts = element(&page, "system-counts");
    assert!(counts.contains("Chuỗi toàn vẹn"), "{counts}");
    assert!(
        counts.contains("6.") || counts.contains("5."),
        "thousands grouped: {counts}"
    );
    assert_vietnamese_numbers(&page);

    // English: English figures.
    let english = admin.page(&app, "/admin?lang=en").await;
    assert!(english.contains("Province overview") && english.contains("Weakest units"));
    assert!(has_english_percent(&english) && !has_vietnamese_percent(&english));

    // Another period on request; a text that is not a period is refused, in Vietnamese.
    let year = &month[..4];
    let chosen = admin.page(&app, &format!("/admin?period={year}")).await;
    assert!(element(&chosen, "dashboard-period").ends_with(year));
    let bad = admin.get(&app, "/admin?period=2026-Q9").await;
    assert_eq!(bad.status(), 422);
    assert!(
        bad.text().await.expect("body").contains("period"),
        "names the field"
    );
}

async fn dashboard_of_an_empty_province_says_so(app: TestApp) {
    let admin = sign_in_admin(&app).await;
    let page = admin.page(&app, "/admin").await;
    // No answers yet: the current month, and every block says there is nothing yet.
    assert!(
        element(&page, "dashboard-period").contains(&local_today().format("%Y-%m").to_string())
    );
    assert!(page.contains("Chưa có đơn vị nào có chỉ số trong kỳ."));
    assert!(page.contains("Chưa có lô phiếu giấy nào."));
    assert!(element(&page, "flagged-none").contains("Không đơn vị nào"));
    assert!(element(&page, "stuck-mail").contains("0"));
    assert!(page.contains("id=\"system-counts\""));
    assert!(!page.contains("-0,0") && !page.contains("NaN"));
}

async fn agency_home_shows_its_units_changes_items_and_cases(app: TestApp) {
    load_story(&app, sipas::db::now());
    // The improving Department of Home Affairs: a significant change since last period.
    create_user(&app, "snv-agency", Role::Agency, Some("SNV"), None);
    let snv = sign_in(&app, "snv-agency", crate::helpers::staff::TEST_PASSWORD).await;
    let home = snv.page(&app, "/agency").await;
    let month = last_month_label();
    assert!(
        element(&home, "home-period").ends_with(&month),
        "latest month"
    );
    let units = element(&home, "units");
    assert!(units.contains("Sở Nội vụ") && !units.contains("Sở Tư pháp"));
    assert!(units.contains(" %"), "its index: {units}");
    let changes = element(&home, "changes");
    assert!(
        changes.contains("Sở Nội vụ") && changes.contains("class=\"up\">+"),
        "{changes}"
    );
    assert!(element(&home, "weakest-items").contains("<td>"));
    assert!(!home.contains("/admin"), "no administrator links");
    assert!(home.contains("id=\"case-counts\""));

    // The weak Department of Construction has bad-rating cases to follow up, and no change
    // that is not significant is listed.
    create_user(&app, "sxd-agency", Role::Agency, Some("SXD"), None);
    let sxd = sign_in(&app, "sxd-agency", crate::helpers::staff::TEST_PASSWORD).await;
    let home = sxd.page(&app, "/agency").await;
    assert!(element(&home, "changes-none").contains("Không đơn vị nào"));
    let cases = element(&home, "open-cases");
    assert!(cases.contains("href=\"/cases/") && cases.contains("Sở Xây dựng"));
    assert!(!home.contains("Sở Nội vụ"), "only its own units");
    assert_vietnamese_numbers(&home);

    // A collector has no results to read.
    create_user(
        &app,
        "collector-1",
        Role::Collector,
        None,
        Some(sipas::demo::POST_OFFICE),
    );
    let collector = sign_in(&app, "collector-1", crate::helpers::staff::TEST_PASSWORD).await;
    assert_eq!(collector.get(&app, "/agency").await.status(), 403);
}

async fn pages_open_on_the_latest_period_with_data(app: TestApp) {
    load_story(&app, sipas::db::now());
    let admin = sign_in_admin(&app).await;
    let month = last_month_label();
    let panel = admin.page(&app, "/admin/integrity").await;
    assert!(
        panel.contains(&format!("value=\"{month}\"")),
        "the integrity panel opens on {month}"
    );
    assert!(panel.contains("UBND xã Tân Lập"));
    let ranking = admin.page(&app, "/reports/ranking").await;
    let year = local_today().format("%Y").to_string();
    assert!(
        ranking.contains(&format!("value=\"{year}\""))
            || ranking.contains(&format!("value=\"{}\"", &month[..4]))
    );
    assert_vietnamese_numbers(&ranking);
}

/// The hidden fields of a page, in order.
fn hidden_fields(html: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for piece in html.split("<input type=\"hidden\" name=\"").skip(1) {
        let (name, rest) = piece.split_once('"').expect("name");
        let value = rest
            .split_once("value=\"")
            .and_then(|(_, v)| v.split_once('"'))
            .map(|(v, _)| v.replace("&amp;", "&").replace("&quot;", "\""))
            .unwrap_or_default();
        out.push((name.to_string(), value));
    }
    out
}

fn form_action(html: &str) -> String {
    let start = html.find("<form method=\"post\" action=\"").expect("form") + 28;
    html[start..].split('"').next().expect("action").to_string()
}

async fn survey_in_steps_keeps_answers_and_submits_once(app: TestApp) {
    let form = app.state.forms.latest("sipas").expect("sipas");
    let issued = app.issue_survey("HS-STEPS-1", Some("sipas")).await;
    let url = issued["survey_url"].as_str().expect("url").to_string();
    let token = url.rsplit('/').next().expect("token").to_string();
    let wanted: BTreeMap<String, String> = full_answers(&form).into_iter().collect();
    let total = sipas::survey::steps::plan(&form).len();
    assert_eq!(
        total, 8,
        "five elements, then the closing questions in three steps"
    );

    // The first step: one element, progress, no script, a way to see everything at once.
    let first = app.client.get(&url).send().await.expect("get");
    assert_eq!(first.status(), 200);
    let mut html = first.text().await.expect("html");
    assert!(html.contains("<span id=\"step-number\">1/8</span>"));
    assert!(html.contains("name=\"A1\"") && !html.contains("name=\"B1\""));
    assert!(!html.contains("<script"), "works without JavaScript");
    assert!(html.contains(&format!("/s/{token}?layout=all&amp;lang=vi")));
    assert_eq!(form_action(&html), format!("/s/{token}/step"));
    // Each level is a labelled radio button; the full names are read out.
    assert!(html.contains("<span class=\"sr\">1 – Rất không hài lòng</span>"));

    // Moving on without answering stays, with the questions marked.
    let mut fields = hidden_fields(&html);
    fields.push(("go".into(), "next".into()));
    let stay = app.submit(&app.url(&form_action(&html)), &fields).await;
    assert_eq!(stay.status(), 422);
    let stay = stay.text().await.expect("html");
    assert!(stay.contains("1/8") && stay.contains("class=\"bad\""));

    // Every step answered in turn, each page carrying the others' answers.
    for step in 0..total {
        assert!(
            html.contains(&format!("{}/{total}</span>", step + 1)),
            "step {step}"
        );
        let mut fields = hidden_fields(&html);
        for q in sipas::survey::steps::questions(&form, step) {
            fields.push((q.code.clone(), wanted[&q.code].clone()));
        }
        let action = form_action(&html);
        if step + 1 == total {
            assert_eq!(
                action,
                format!("/s/{token}"),
                "the last step posts to the submit path"
            );
            fields.push(("go".into(), "submit".into()));
        } else {
            fields.push(("go".into(), "next".into()));
        }
        if step == 2 {
            // Back once, and forward again: nothing is lost.
            let mut back = fields.clone();
            back.retain(|(k, _)| k != "go");
            back.push(("go".into(), "back".into()));
            let page = app
                .submit(&app.url(&format!("/s/{token}/step")), &back)
                .await;
            assert_eq!(page.status(), 200);
            let page = page.text().await.expect("html");
            assert!(page.contains("2/8</span>"));
            assert!(page.contains("name=\"B1\" value=\"4\" checked"), "B1 kept");
            assert!(
                hidden_fields(&page)
                    .iter()
                    .any(|(k, v)| k == "C1" && v == "4"),
                "C1 carried"
            );
            assert!(
                hidden_fields(&page)
                    .iter()
                    .any(|(k, v)| k == "A1" && v == "4"),
                "A1 carried"
            );
        }
        let response = app.submit(&app.url(&action), &fields).await;
        assert_eq!(response.status(), 200, "step {step}");
        html = response.text().await.expect("html");
    }
    assert!(html.contains("Cảm ơn Ông/Bà đã đánh giá!"), "{html}");

    // One response with exactly the answers given across the steps.
    let conn = &mut app.conn();
    let stored: Vec<String> =
        db_run!(conn: { responses::table.select(responses::answers).load(conn) }).expect("rows");
    assert_eq!(stored.len(), 1);
    let rows = sipas::survey::stored::decode(&stored[0]).expect("answers");
    assert_eq!(
        rows.len(),
        form.questions().count(),
        "every question answered once"
    );
    for (code, int, text) in rows {
        let q = form.question(&code).expect("question");
        let given = &wanted[&code];
        match q.kind {
            sipas::forms::QuestionType::Scale5 | sipas::forms::QuestionType::Scale3 => {
                assert_eq!(int.map(|v| v.to_string()).as_ref(), Some(given), "{code}");
            }
            _ => assert_eq!(text.as_ref(), Some(given), "{code}"),
        }
    }

    // The whole form on one page is still there.
    let one_page = app
        .client
        .get(format!("{url}?layout=all"))
        .send()
        .await
        .expect("get");
    assert_eq!(one_page.status(), 409, "the link is spent");
    let other = app.issue_survey("HS-STEPS-2", Some("sipas")).await;
    let one_page = app
        .client
        .get(format!(
            "{}?layout=all",
            other["survey_url"].as_str().expect("url")
        ))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(one_page.contains("name=\"A1\"") && one_page.contains("name=\"OVERALL\""));
    // The short dossier form stays one page.
    let short = app.issue_survey("HS-STEPS-3", None).await;
    let short = app
        .client
        .get(short["survey_url"].as_str().expect("url"))
        .send()
        .await
        .expect("get")
        .text()
        .await
        .expect("html");
    assert!(!short.contains("step-number"));
}

async fn forged_or_spent_steps_are_refused_clearly(app: TestApp) {
    let form = app.state.forms.latest("sipas").expect("sipas");
    let issued = app.issue_survey("HS-STEPS-4", Some("sipas")).await;
    let url = issued["survey_url"].as_str().expect("url").to_string();
    let step_url = format!("{url}/step");
    // A step number out of range is clamped, never a server error.
    let page = app
        .submit(
            &step_url,
            &[("step".into(), "999".into()), ("go".into(), "back".into())],
        )
        .await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.expect("html").contains("7/8</span>"));
    // Broken form data is refused, never a server error.
    let broken = app
        .client
        .post(&step_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("a=%ZZ&&=")
        .send()
        .await
        .expect("post");
    assert!(
        matches!(broken.status().as_u16(), 400 | 422),
        "{}",
        broken.status()
    );
    // An unknown token is "not found"; a spent one "already answered".
    let unknown = app
        .submit(&app.url("/s/AAAAAAAAAAAAAAAAAAAAAAAAAA/step"), &[])
        .await;
    assert_eq!(unknown.status(), 404);
    assert_eq!(app.submit(&url, &full_answers(&form)).await.status(), 200);
    let spent = app.submit(&step_url, &[("go".into(), "next".into())]).await;
    assert_eq!(spent.status(), 409);
    assert!(
        spent
            .text()
            .await
            .expect("html")
            .contains("đã được trả lời")
    );
}

/// What the story wrote, without ids: (unit, channel, status, submitted, answers), sorted.
fn story_fingerprint(app: &TestApp) -> Vec<(String, String, String, NaiveDateTime, String)> {
    let conn = &mut app.conn();
    let rows: Vec<(String, String, String, NaiveDateTime, String)> = db_run!(conn: {
        responses::table
            .inner_join(sipas::db::schema::units::table.on(sipas::db::schema::units::id.eq(responses::unit_id)))
            // Forms keyed from paper carry the time they were typed; the rest is the story's.
            .filter(responses::provenance.is_null().or(responses::provenance.like("%story%")))
            .select((sipas::db::schema::units::code, responses::channel, responses::status, responses::submitted_at, responses::answers))
            .load(conn)
    })
    .expect("responses");
    let mut rows = rows;
    rows.sort();
    rows
}

async fn story_is_reproducible_from_its_seed_and_loaded_once(backend: Backend) {
    let now = sipas::db::now();
    let first = TestApp::spawn(backend.clone()).await;
    let loaded = load_story(&first, now);
    assert!(!loaded.already_loaded);
    let again = load_story(&first, now);
    assert!(again.already_loaded, "a second load changes nothing");
    let fingerprint = story_fingerprint(&first);
    assert_eq!(
        fingerprint.len() as u64,
        loaded.responses,
        "every planned answer stored"
    );
    // Suggestions vary.
    let suggestions = sipas::report::recent_suggestions(
        &mut first.conn(),
        &first.state.forms,
        &[unit_id(&first, "STP"), unit_id(&first, "SXD")],
        &sipas::report::period::Period::parse(&last_month_label()).expect("period"),
        8,
        chrono::FixedOffset::east_opt(7 * 3600).expect("offset"),
    )
    .expect("suggestions");
    let distinct: std::collections::HashSet<&String> = suggestions.iter().map(|(_, s)| s).collect();
    assert!(distinct.len() >= 4, "varied suggestions: {suggestions:?}");
    // A merged unit with history before its merger.
    assert!(fingerprint.iter().any(|r| r.0 == "X-BINH-AN"));
    drop(first);

    let second = TestApp::spawn(backend).await;
    load_story(&second, now);
    assert!(
        story_fingerprint(&second) == fingerprint,
        "the same seed and time give the same answers"
    );
}
