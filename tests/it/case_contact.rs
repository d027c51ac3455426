//! "Contact me" on the citizen's survey (issue #8): the contact is kept only when the citizen
//! ticked the box *and* the answer opens a case, only on that case, shown only on the case's
//! page, and erased when the case is closed. Everywhere else — the response, exports, reports,
//! other agency pages — it never appears.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use sipas::db::DbConn;
use sipas::db::schema::{audit_events, rating_cases, responses};
use sipas::db_run;

use crate::helpers::staff::{TEST_PASSWORD, create_user, sign_in, sign_in_admin, unit_id};
use crate::helpers::{TestApp, full_answers};
use crate::on_both_databases;

on_both_databases!(
    opted_in_bad_rating_puts_the_contact_on_its_case_only,
    without_opt_in_no_contact_is_stored,
    opted_in_good_rating_stores_nothing,
    invalid_contact_is_refused_and_nothing_stored,
);

/// How the citizen fills in the "contact me" part.
struct ContactChoice<'a> {
    ticked: bool,
    contact: &'a str,
}

/// Answers a freshly issued SIPAS survey at STP with `overall` on the overall question.
async fn answer(
    app: &TestApp,
    dossier: &str,
    overall: &str,
    choice: Option<ContactChoice<'_>>,
    lang: &str,
) -> (reqwest::StatusCode, String, String) {
    let issued = app.issue_survey(dossier, Some("sipas")).await;
    let url = issued["survey_url"].as_str().expect("url").to_string();
    let (status, body) = post_answers(app, &url, overall, choice, lang).await;
    (status, body, url)
}

async fn post_answers(
    app: &TestApp,
    url: &str,
    overall: &str,
    choice: Option<ContactChoice<'_>>,
    lang: &str,
) -> (reqwest::StatusCode, String) {
    let form = app.state.forms.latest("sipas").expect("form");
    let overall_code = form
        .question_with_role(sipas::forms::QuestionRole::Overall)
        .expect("overall question")
        .code
        .clone();
    let mut fields = full_answers(&form);
    for (code, value) in fields.iter_mut() {
        if *code == overall_code {
            *value = overall.to_string();
        }
        if code == "lang" {
            *value = lang.to_string();
        }
    }
    if let Some(choice) = choice {
        if choice.ticked {
            fields.push(("contact_ok".into(), "1".into()));
        }
        fields.push(("contact".into(), choice.contact.into()));
    }
    let response = app.submit(url, &fields).await;
    let status = response.status();
    (status, response.text().await.expect("body"))
}

/// (contact, consent time) of every case.
fn case_contacts(app: &TestApp) -> Vec<(String, Option<String>, Option<chrono::NaiveDateTime>)> {
    let conn = &mut app.conn();
    db_run!(conn: {
        rating_cases::table
            .select((rating_cases::id, rating_cases::contact, rating_cases::contact_consented_at))
            .load(conn)
    })
    .unwrap()
}

fn response_count(app: &TestApp) -> i64 {
    let conn = &mut app.conn();
    db_run!(conn: { responses::table.count().get_result(conn) }).unwrap()
}

#[derive(QueryableByName)]
struct TableName {
    #[diesel(sql_type = Text)]
    table_name: String,
}

#[derive(QueryableByName)]
struct Hits {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Whether `needle` is stored anywhere in the database: every byte of the SQLite file and its
/// write-ahead log, or every row of every PostgreSQL table as text.
fn stored_anywhere(app: &TestApp, needle: &str) -> bool {
    let mut conn = app.conn();
    match &mut conn {
        DbConn::Sqlite(_) => {
            let path = app
                .database_url
                .strip_prefix("sqlite://")
                .expect("sqlite URL");
            [path.to_string(), format!("{path}-wal")]
                .iter()
                .filter_map(|p| std::fs::read(p).ok())
                .any(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
        }
        DbConn::Postgres(pg) => {
            let pg: &mut diesel::PgConnection = pg;
            let tables: Vec<TableName> = diesel::sql_query(
                "SELECT table_name::text AS table_name FROM information_schema.tables \
                 WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
            )
            .load(pg)
            .unwrap();
            assert!(tables.len() > 10, "the test schema's tables are listed");
            tables.iter().any(|t| {
                let hits: Hits = diesel::sql_query(format!(
                    "SELECT count(*) AS n FROM \"{}\" t WHERE strpos(t::text, $1) > 0",
                    t.table_name
                ))
                .bind::<Text, _>(needle)
                .get_result(pg)
                .unwrap();
                hits.n > 0
            })
        }
    }
}

/// Every page and export an agency or the province reads besides a case's own page.
fn pages_without_contact(app: &TestApp) -> Vec<String> {
    let stp = unit_id(app, "STP");
    let province = unit_id(app, sipas::demo::PROVINCE);
    vec![
        "/admin".into(),
        "/cases".into(),
        "/admin/integrity".into(),
        format!("/admin/integrity/units/{stp}"),
        "/admin/export/responses.csv".into(),
        "/admin/audit".into(),
        format!("/reports/units/{stp}"),
        format!("/reports/units/{stp}/print"),
        format!("/reports/units/{stp}/export.csv"),
        format!("/api/v1/reports/units/{stp}"),
        format!("/reports/units/{province}"),
        "/reports/ranking".into(),
        "/reports/ranking/export.csv".into(),
        "/api/v1/reports/ranking".into(),
    ]
}

async fn opted_in_bad_rating_puts_the_contact_on_its_case_only(app: TestApp) {
    let before = sipas::db::now();
    let (status, body, _) = answer(
        &app,
        "CONTACT-1",
        "2",
        Some(ContactChoice {
            ticked: true,
            contact: " 0912 345 678 ",
        }),
        "vi",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let cases = case_contacts(&app);
    assert_eq!(cases.len(), 1);
    let (case_id, contact, consented) = cases[0].clone();
    assert_eq!(contact.as_deref(), Some("0912345678"), "stored normalised");
    let consented = consented.expect("consent time");
    assert!(consented >= before - chrono::Duration::seconds(1) && consented <= sipas::db::now());
    // Never on the response itself.
    let answers: Vec<String> = {
        let conn = &mut app.conn();
        db_run!(conn: { responses::table.select(responses::answers).load(conn) }).unwrap()
    };
    assert!(answers.iter().all(|a| !a.contains("0912345678")));
    assert!(
        stored_anywhere(&app, "0912345678"),
        "the database search finds what is stored"
    );

    // The agency handling it and the province see it on the case's page.
    create_user(
        &app,
        "stp-agency",
        sipas::accounts::Role::Agency,
        Some("STP"),
        None,
    );
    let agency = sign_in(&app, "stp-agency", TEST_PASSWORD).await;
    let admin = sign_in_admin(&app).await;
    let case_path = format!("/cases/{case_id}");
    for staff in [&agency, &admin] {
        let page = staff.page(&app, &case_path).await;
        assert!(
            page.contains("case-contact") && page.contains("0912345678"),
            "{page}"
        );
        assert!(page.contains("Người dân đề nghị được liên hệ lại"));
    }
    // Another agency does not even see the case.
    create_user(
        &app,
        "hcc-agency",
        sipas::accounts::Role::Agency,
        Some("HCC"),
        None,
    );
    let other = sign_in(&app, "hcc-agency", TEST_PASSWORD).await;
    assert_eq!(other.get(&app, &case_path).await.status(), 404);
    assert!(!other.page(&app, "/cases").await.contains("0912345678"));
    // No other page, report or export shows it.
    for path in pages_without_contact(&app) {
        let response = admin.get(&app, &path).await;
        let status = response.status();
        let text = response.text().await.expect("body");
        assert_eq!(status, 200, "GET {path}: {text}");
        assert!(!text.contains("0912345678"), "{path} shows the contact");
    }
    let list = agency.page(&app, "/cases").await;
    assert!(list.contains(&case_id) && !list.contains("0912345678"));

    // Closing the case (a note is required) erases the contact; the consent stays on record.
    let refused = agency
        .post(&app, &case_path, &[("note", "  "), ("close", "1")])
        .await;
    assert_eq!(refused.status(), 422);
    let closed = agency
        .post(
            &app,
            &case_path,
            &[
                ("note", "Đã gọi điện, xin lỗi và hướng dẫn lại"),
                ("close", "1"),
            ],
        )
        .await;
    assert_eq!(closed.status(), 303);
    let cases = case_contacts(&app);
    assert_eq!(cases[0].1, None, "the contact is erased on closing");
    assert_eq!(cases[0].2, Some(consented));
    let page = admin.page(&app, &case_path).await;
    assert!(
        !page.contains("0912345678") && page.contains("đã được xóa khi đóng"),
        "{page}"
    );
    let audit: Vec<Option<String>> = {
        let conn = &mut app.conn();
        db_run!(conn: { audit_events::table.select(audit_events::new_value).load(conn) }).unwrap()
    };
    assert!(
        audit.iter().flatten().all(|a| !a.contains("0912345678")),
        "the audit log never holds the contact"
    );
}

async fn without_opt_in_no_contact_is_stored(app: TestApp) {
    // Typed in, then the box left unticked: the field is ignored, not even checked.
    let (status, body, _) = answer(
        &app,
        "NO-OPT-IN",
        "1",
        Some(ContactChoice {
            ticked: false,
            contact: "nguoi.dan.khong.dong.y@example.vn",
        }),
        "vi",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body, _) = answer(
        &app,
        "NO-OPT-IN-2",
        "2",
        Some(ContactChoice {
            ticked: false,
            contact: "khong phai so",
        }),
        "vi",
    )
    .await;
    assert_eq!(
        status, 200,
        "an unticked box does not check the field: {body}"
    );
    let cases = case_contacts(&app);
    assert_eq!(cases.len(), 2, "both bad ratings open cases");
    assert!(cases.iter().all(|(_, c, at)| c.is_none() && at.is_none()));
    assert!(!stored_anywhere(&app, "nguoi.dan.khong.dong.y"));
    assert!(!stored_anywhere(&app, "khong phai so"));
    let admin = sign_in_admin(&app).await;
    let page = admin.page(&app, &format!("/cases/{}", cases[0].0)).await;
    assert!(!page.contains("case-contact"), "{page}");
}

async fn opted_in_good_rating_stores_nothing(app: TestApp) {
    for (dossier, level) in [("GOOD-1", "4"), ("NEUTRAL-1", "3")] {
        let (status, body, _) = answer(
            &app,
            dossier,
            level,
            Some(ContactChoice {
                ticked: true,
                contact: "hai.long@example.vn",
            }),
            "vi",
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(response_count(&app), 2);
    assert!(case_contacts(&app).is_empty(), "no case, so nothing kept");
    assert!(!stored_anywhere(&app, "hai.long"));
}

async fn invalid_contact_is_refused_and_nothing_stored(app: TestApp) {
    let (status, body, url) = answer(
        &app,
        "BAD-CONTACT",
        "2",
        Some(ContactChoice {
            ticked: true,
            contact: "goi-cho-toi-nhe",
        }),
        "vi",
    )
    .await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("lang=\"vi\""));
    assert!(
        body.contains("Số điện thoại hoặc địa chỉ thư điện tử không hợp lệ"),
        "{body}"
    );
    assert!(body.contains("id=\"err-contact\""));
    // The answers already given stay ticked, and the box stays ticked.
    assert!(
        body.contains("name=\"contact_ok\" value=\"1\" checked"),
        "{body}"
    );
    // Ticked but empty; and in English for an English page.
    for (contact, lang, message) in [
        (
            "   ",
            "vi",
            "vui lòng nhập số điện thoại hoặc địa chỉ thư điện tử",
        ),
        (
            "ten@example",
            "en",
            "not a valid phone number or e-mail address",
        ),
    ] {
        let choice = ContactChoice {
            ticked: true,
            contact,
        };
        let (status, body) = post_answers(&app, &url, "2", Some(choice), lang).await;
        assert_eq!(status, 422);
        assert!(body.contains(message), "{body}");
    }
    assert_eq!(response_count(&app), 0, "nothing stored");
    assert!(case_contacts(&app).is_empty());
    assert!(!stored_anywhere(&app, "goi-cho-toi-nhe"));
    // The link is still open: corrected, the answer goes through.
    let (status, body) = post_answers(
        &app,
        &url,
        "2",
        Some(ContactChoice {
            ticked: true,
            contact: "ten.nguoi@example.vn",
        }),
        "vi",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(response_count(&app), 1);
    let cases = case_contacts(&app);
    assert_eq!(cases[0].1.as_deref(), Some("ten.nguoi@example.vn"));
}
