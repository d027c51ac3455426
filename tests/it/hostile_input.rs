//! Hostile input (issue #14): exports that cannot attack their readers (formula injection),
//! text that never reaches the database unchecked (NUL and other control characters, invalid
//! UTF-8: a 4xx on both databases, never a 5xx), a counter API that refuses unknown fields and
//! implausible times, an OpenAPI document listing exactly the statuses the API returns, and a
//! property test feeding random hostile text through every way in.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;

use chrono::Duration;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use sipas::accounts::Role;
use sipas::text::starts_like_formula;

use crate::helpers::staff::{
    Staff, TEST_PASSWORD, browser, create_user, location, login_attempt, sign_in, sign_in_admin,
    unit_id,
};
use crate::helpers::{Backend, TestApp, full_answers, transaction_body};
use crate::on_both_databases;

on_both_databases!(
    formula_text_is_neutralised_in_every_export,
    control_characters_and_bad_utf8_are_refused_at_the_edge,
    counter_api_refuses_unknown_fields_and_implausible_times,
    openapi_lists_exactly_the_statuses_the_api_returns,
    random_text_never_gets_a_5xx_and_exports_stay_neutral,
);

/// The payloads of the report: each must come back prefixed with a single quote.
const FORMULAS: [&str; 6] = [
    "=HYPERLINK(\"http://x\",\"y\")",
    "+1+1",
    "-2+3",
    "@SUM(1)",
    "=cmd|' /C calc'!A0",
    "\t=1+1",
];

fn now_local(app: &TestApp) -> chrono::DateTime<chrono::FixedOffset> {
    let offset = app.state.settings.utc_offset_value().expect("offset");
    chrono::Utc::now().with_timezone(&offset)
}

fn year(app: &TestApp) -> String {
    now_local(app).format("%Y").to_string()
}

/// A registration completed an hour ago (so it counts in this year's exports and samples).
fn recent_dossier(app: &TestApp, unit: &str, code: &str, form: &str) -> Value {
    let now = now_local(app);
    json!({
        "unit": unit,
        "dossier_code": code,
        "procedure": "LLTP-01",
        "received_at": (now - Duration::days(3)).to_rfc3339(),
        "due_at": (now + Duration::days(3)).to_rfc3339(),
        "completed_at": (now - Duration::hours(1)).to_rfc3339(),
        "form": form,
    })
}

/// Registers a dossier and returns its survey URL.
async fn survey_url(app: &TestApp, body: &Value) -> String {
    let response = app.post_transaction(body).await;
    let status = response.status();
    let answer: Value = response.json().await.expect("json");
    assert!(status == 201 || status == 200, "registered: {answer}");
    answer["survey_url"]
        .as_str()
        .expect("survey_url")
        .to_string()
}

/// Answers a form with `text` in its free-text question (and a bad rating on the dossier form).
async fn answer_with_text(app: &TestApp, url: &str, form: &str, text: &str) -> reqwest::Response {
    let form = app.state.forms.latest(form).expect("form");
    let mut fields = full_answers(&form);
    for (code, value) in fields.iter_mut() {
        if code == "COMMENT" || code == "SUGGESTION" {
            *value = text.to_string();
        }
        if code == "OVERALL" && form.code == "transaction" {
            *value = "1".to_string();
        }
    }
    app.submit(url, &fields).await
}

/// Every cell of a CSV export (BOM stripped).
fn csv_cells(text: &str) -> Vec<String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    reader
        .records()
        .flat_map(|r| {
            r.expect("well-formed CSV")
                .iter()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Every text cell of an XLSX export; panics if the sheet holds a formula.
fn xlsx_texts(bytes: &[u8]) -> Vec<String> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("xlsx is a zip");
    let mut texts = Vec::new();
    for i in 0..zip.len() {
        let mut file = zip.by_index(i).expect("zip entry");
        let name = file.name().expect("entry name").to_string();
        if !name.starts_with("xl/") || !name.ends_with(".xml") {
            continue;
        }
        let mut xml = String::new();
        file.read_to_string(&mut xml).expect("xml");
        if name.starts_with("xl/worksheets/") {
            assert!(
                !xml.contains("<f>") && !xml.contains("<f "),
                "{name} holds a formula"
            );
        }
        if name == "xl/sharedStrings.xml" || name.starts_with("xl/worksheets/") {
            for piece in xml.split("<t").skip(1) {
                let Some((open, rest)) = piece.split_once('>') else {
                    continue;
                };
                if !(open.is_empty() || open.starts_with(' ')) || open.ends_with('/') {
                    continue;
                }
                let Some((text, _)) = rest.split_once("</t>") else {
                    continue;
                };
                texts.push(
                    text.replace("&lt;", "<")
                        .replace("&gt;", ">")
                        .replace("&quot;", "\"")
                        .replace("&apos;", "'")
                        .replace("&#9;", "\t")
                        .replace("&#13;", "\r")
                        .replace("&amp;", "&"),
                );
            }
        }
    }
    texts
}

/// Cells a spreadsheet would evaluate: text starting like a formula (numbers we wrote, such as
/// a negative change, are numbers).
fn formula_cells(cells: &[String]) -> Vec<String> {
    cells
        .iter()
        .filter(|c| starts_like_formula(c) && c.trim().parse::<f64>().is_err())
        .cloned()
        .collect()
}

/// A GET that must answer 200; its body bytes.
async fn download(staff: &Staff, app: &TestApp, path: &str) -> Vec<u8> {
    let response = staff.get(app, path).await;
    let status = response.status();
    let body = response.bytes().await.expect("body").to_vec();
    assert_eq!(
        status,
        200,
        "GET {path}: {}",
        String::from_utf8_lossy(&body)
    );
    body
}

/// Every export of the service, as (what, cells), for an admin.
async fn every_export(
    app: &TestApp,
    admin: &Staff,
    extra: &[String],
) -> Vec<(String, Vec<String>)> {
    let y = year(app);
    let stp = unit_id(app, "STP");
    let mut csvs = vec![
        format!("/admin/export/responses.csv?form=sipas&period={y}"),
        format!("/admin/export/responses.csv?form=transaction&period={y}"),
        format!("/reports/units/{stp}/export.csv?period={y}"),
        format!("/reports/ranking/export.csv?period={y}&kind=department"),
    ];
    csvs.extend(extra.iter().cloned());
    let mut out = Vec::new();
    for path in csvs {
        let body = download(admin, app, &path).await;
        let text = String::from_utf8(body).expect("exports are UTF-8");
        out.push((path, csv_cells(&text)));
    }
    for path in [
        format!("/reports/units/{stp}/export.xlsx?period={y}"),
        format!("/reports/ranking/export.xlsx?period={y}&kind=department"),
    ] {
        let body = download(admin, app, &path).await;
        out.push((path, xlsx_texts(&body)));
    }
    out
}

/// The campaign-links and worklist CSVs (a campaign rating STP, a sample of STP with a dossier
/// whose code starts with `-`).
async fn campaign_and_worklist(app: &TestApp, admin: &Staff) -> Vec<String> {
    let y: i32 = year(app).parse().expect("year");
    let response = admin
        .post(
            app,
            "/admin/groups",
            &[
                ("code", "DB-HDND"),
                ("name_vi", "=Đại biểu"),
                ("name_en", "+Delegates"),
                ("description", "@mô tả"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "group created");
    let group = "DB-HDND";
    let today = now_local(app).date_naive();
    let (from, until) = (today.to_string(), (today + Duration::days(30)).to_string());
    let response = admin
        .post(
            app,
            "/admin/campaigns",
            &[
                ("group", group),
                ("name_vi", "-Chiến dịch"),
                ("name_en", "-Campaign"),
                ("form", "sipas"),
                ("period", ""),
                ("starts_on", from.as_str()),
                ("ends_on", until.as_str()),
                ("invitees", "1"),
                ("units", "STP"),
            ],
        )
        .await;
    let status = response.status();
    let to = location(&response);
    assert_eq!(
        status,
        303,
        "campaign: {}",
        response.text().await.unwrap_or_default()
    );
    let campaign = to
        .expect("redirect")
        .trim_start_matches("/admin/campaigns/")
        .split('?')
        .next()
        .expect("id")
        .to_string();

    let input = sipas::periods::PeriodInput {
        code: "HOSTILE".into(),
        name_vi: format!("Năm {y}"),
        name_en: format!("Year {y}"),
        kind: "year".into(),
        starts_on: chrono::NaiveDate::from_ymd_opt(y, 1, 1).expect("date"),
        ends_on: chrono::NaiveDate::from_ymd_opt(y, 12, 31).expect("date"),
        status: sipas::periods::PeriodStatus::Open,
    };
    sipas::periods::save(&mut app.conn(), &sipas::audit::Actor::cli(), None, &input)
        .expect("period");
    let response = admin
        .post(
            app,
            "/admin/samples",
            &[
                ("period", "HOSTILE"),
                ("units", "STP"),
                ("margin", "0.05"),
                ("quota", "50"),
                ("reserve", "0"),
                ("seed", "1"),
            ],
        )
        .await;
    let status = response.status();
    let to = location(&response);
    assert_eq!(
        status,
        303,
        "sample: {}",
        response.text().await.unwrap_or_default()
    );
    let sample = to
        .expect("redirect")
        .trim_start_matches("/paper/samples/")
        .split('?')
        .next()
        .expect("id")
        .to_string();
    vec![
        format!("/admin/campaigns/{campaign}/links.csv"),
        format!("/paper/samples/{sample}/worklist.csv"),
    ]
}

async fn formula_text_is_neutralised_in_every_export(app: TestApp) {
    let admin = sign_in_admin(&app).await;
    // A unit name that looks like a formula (ranking, unit report, worklist, campaign links).
    let stp = unit_id(&app, "STP");
    let response = admin
        .post(
            &app,
            &format!("/admin/units/{stp}/rename"),
            &[
                ("name_vi", FORMULAS[0]),
                ("name_en", "=1+1"),
                ("kind", "department"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303, "renamed");
    // Comments and suggestions that look like formulas, on both forms.
    for (i, text) in FORMULAS.iter().enumerate() {
        for form in ["sipas", "transaction"] {
            let code = format!("-{i}{}", &form[..1]);
            let url = survey_url(&app, &recent_dossier(&app, "STP", &code, form)).await;
            let response = answer_with_text(&app, &url, form, text).await;
            assert_eq!(response.status(), 200, "{form} answered with {text:?}");
        }
    }
    let extra = campaign_and_worklist(&app, &admin).await;
    let exports = every_export(&app, &admin, &extra).await;
    for (path, cells) in &exports {
        assert!(!cells.is_empty(), "{path} is empty");
        assert_eq!(formula_cells(cells), Vec::<String>::new(), "{path}");
    }
    let find = |what: &str, cell: &str| {
        let (_, cells) = exports
            .iter()
            .find(|(p, _)| p.contains(what))
            .unwrap_or_else(|| panic!("{what} exported"));
        assert!(
            cells.iter().any(|c| c == cell),
            "{what}: {cell:?} not among {cells:?}"
        );
    };
    for text in FORMULAS {
        // Answers are stored trimmed: "\t=1+1" comes back as "'=1+1".
        let quoted = format!("'{}", text.trim());
        find("responses.csv?form=sipas", &quoted);
        find("responses.csv?form=transaction", &quoted);
    }
    let name = format!("'{}", FORMULAS[0]);
    find("ranking/export.csv", &name);
    find("ranking/export.xlsx", &name);
    find("links.csv", &name);
    find("worklist.csv", &name);
    find("worklist.csv", "'-0s");
}

/// A request's status, with its body for messages.
async fn status_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

fn responses_count(app: &TestApp) -> i64 {
    use diesel::prelude::*;
    use sipas::db::schema::responses;
    let conn = &mut app.conn();
    sipas::db_run!(conn: { responses::table.count().get_result(conn) }).expect("count")
}

async fn control_characters_and_bad_utf8_are_refused_at_the_edge(app: TestApp) {
    // A bad-rating comment with a NUL: 422 naming the field, nothing stored.
    let url = survey_url(&app, &recent_dossier(&app, "STP", "NUL-1", "transaction")).await;
    let before = responses_count(&app);
    let (status, body) =
        status_of(answer_with_text(&app, &url, "transaction", "xấu\0lắm").await).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body.contains("COMMENT"),
        "the message names the field: {body}"
    );
    // Other control characters too; line breaks and tabs in free text are fine.
    let (status, _) =
        status_of(answer_with_text(&app, &url, "transaction", "a\u{1b}[31m").await).await;
    assert_eq!(status, 422);
    assert_eq!(responses_count(&app), before, "nothing stored");
    // Invalid UTF-8 is refused, not stored as U+FFFD.
    let raw = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(b"lang=vi&OVERALL=1&COMMENT=%FF%FEx".to_vec())
        .send()
        .await
        .expect("request");
    let (status, body) = status_of(raw).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("UTF-8"), "{body}");
    assert_eq!(responses_count(&app), before, "nothing stored");
    let (status, body) =
        status_of(answer_with_text(&app, &url, "transaction", "dòng 1\r\n\tdòng 2").await).await;
    assert_eq!(status, 200, "multi-line free text is accepted: {body}");

    // The counter API: a NUL in any string field.
    for field in [
        "unit",
        "procedure",
        "dossier_code",
        "email",
        "form",
        "received_at",
    ] {
        let mut body = transaction_body("NUL-API");
        let value = body[field].as_str().unwrap_or("x").to_string();
        body[field] = json!(format!("{value}\0"));
        let (status, text) = status_of(app.post_transaction(&body).await).await;
        assert_eq!(status, 422, "{field}: {text}");
        let error: Value = serde_json::from_str(&text).expect("json error");
        assert_eq!(error["error"]["field"], field, "{text}");
    }

    // Sign-in with a NUL in the username.
    let client = browser();
    let (status, body) =
        status_of(login_attempt(&app, &client, "ad\0min", "whatever-password").await).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("username"), "{body}");

    // Search boxes and ids in paths and queries.
    let admin = sign_in_admin(&app).await;
    for path in [
        "/admin/units?q=%00",
        "/admin/users?q=a%00b",
        "/admin/audit?actor=%00",
        "/admin/outbox?status=%00",
        "/reports/units/%00",
        "/reports/units/%00/export.csv",
        "/api/v1/reports/units/%00",
        "/api/v1/reports/ranking?period=2026%00",
        "/admin/units?q=%FF",
        "/reports/units/%FF",
        "/paper/samples/%00",
        "/cases/%00",
        "/admin/integrity/units/%00",
    ] {
        let (status, body) = status_of(admin.get(&app, path).await).await;
        assert!(
            (400..500).contains(&status) && status != 404,
            "{path}: {status} {body}"
        );
    }
    // A unit name with a line break is refused; a sane name passes.
    let stp = unit_id(&app, "STP");
    let response = admin
        .post(
            &app,
            &format!("/admin/units/{stp}/rename"),
            &[
                ("name_vi", "Sở\nTư pháp"),
                ("name_en", "Justice"),
                ("kind", "department"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let long = "S".repeat(201);
    let response = admin
        .post(
            &app,
            &format!("/admin/units/{stp}/rename"),
            &[
                ("name_vi", long.as_str()),
                ("name_en", "Justice"),
                ("kind", "department"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
}

async fn counter_api_refuses_unknown_fields_and_implausible_times(app: TestApp) {
    let error_field = |text: &str| -> String {
        let v: Value = serde_json::from_str(text).unwrap_or_else(|_| panic!("json: {text}"));
        v["error"]["field"].as_str().unwrap_or_default().to_string()
    };
    let mut body = transaction_body("UNKNOWN-1");
    body["emial"] = json!("citizen@example.vn");
    let (status, text) = status_of(app.post_transaction(&body).await).await;
    assert_eq!(status, 422, "{text}");
    assert_eq!(error_field(&text), "emial");
    assert!(text.contains("emial") && text.contains("email"), "{text}");

    let now = now_local(&app);
    let cases = [
        ("received_at", "0000-01-01T08:00:00+07:00".to_string()),
        ("received_at", "1999-12-31T08:00:00+07:00".to_string()),
        ("completed_at", (now + Duration::days(2)).to_rfc3339()),
        ("due_at", "9999-12-31T17:00:00+07:00".to_string()),
        ("due_at", (now + Duration::days(800)).to_rfc3339()),
    ];
    for (field, value) in cases {
        let mut body = transaction_body("TIME-1");
        if field == "received_at" {
            body["received_at"] = json!(value);
        } else {
            body["received_at"] = json!((now - Duration::days(3)).to_rfc3339());
            body["completed_at"] = json!((now - Duration::hours(1)).to_rfc3339());
            body["due_at"] = json!((now + Duration::days(3)).to_rfc3339());
            body[field] = json!(value);
        }
        let (status, text) = status_of(app.post_transaction(&body).await).await;
        assert_eq!(status, 422, "{field}={value}: {text}");
        assert_eq!(error_field(&text), field, "{text}");
    }
    // Year 10000 is not RFC 3339 at all.
    let mut body = transaction_body("TIME-2");
    body["due_at"] = json!("+10000-01-01T00:00:00Z");
    let (status, text) = status_of(app.post_transaction(&body).await).await;
    assert_eq!(status, 422, "{text}");
    // The edges of the window pass.
    let mut body = transaction_body("TIME-3");
    body["received_at"] = json!("2000-01-01T00:00:00Z");
    body["due_at"] = json!((now + Duration::days(700)).to_rfc3339());
    let (status, text) = status_of(app.post_transaction(&body).await).await;
    assert_eq!(status, 201, "{text}");
}

// ---------------------------------------------------------------- the API document

/// What each documented operation answered when driven, keyed by "METHOD path-template".
type Observed = BTreeMap<String, BTreeSet<u16>>;

fn record(observed: &mut Observed, op: &str, status: u16) {
    observed.entry(op.to_string()).or_default().insert(status);
}

async fn get_status(client: &reqwest::Client, url: String) -> u16 {
    client
        .get(url)
        .send()
        .await
        .expect("request")
        .status()
        .as_u16()
}

async fn openapi_lists_exactly_the_statuses_the_api_returns(app: TestApp) {
    let spec: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("spec")
        .json()
        .await
        .expect("json");
    let mut documented: Observed = BTreeMap::new();
    for (path, ops) in spec["paths"].as_object().expect("paths") {
        for (method, op) in ops.as_object().expect("operations") {
            for status in op["responses"].as_object().expect("responses").keys() {
                let status: u16 = status.parse().expect("numeric status");
                record(
                    &mut documented,
                    &format!("{} {path}", method.to_uppercase()),
                    status,
                );
            }
        }
    }
    let mut seen: Observed = BTreeMap::new();
    let anonymous = &app.client;

    // POST /api/v1/transactions
    let op = "POST /api/v1/transactions";
    let post = |body: Vec<u8>, key: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/api/v1/transactions"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let valid = serde_json::to_vec(&transaction_body("DOC-1")).expect("json");
    let key = app.api_key.clone();
    for (body, key) in [
        (valid.clone(), Some(key.as_str())),
        (valid.clone(), Some(key.as_str())),
        (b"not json".to_vec(), Some(key.as_str())),
        (valid.clone(), None),
        (
            b"{\"unit\":\"STP\",\"colour\":1}".to_vec(),
            Some(key.as_str()),
        ),
        (
            vec![b' '; app.state.settings.max_body_bytes + 1],
            Some(key.as_str()),
        ),
    ] {
        let status = post(body, key).await.expect("request").status().as_u16();
        record(&mut seen, op, status);
    }
    let sxd_key = sipas::api_keys::create(
        &mut app.conn(),
        &sipas::audit::Actor::cli(),
        &unit_id(&app, "SXD"),
        "doc",
    )
    .expect("key");
    let status = post(valid.clone(), Some(sxd_key.as_str()))
        .await
        .expect("request")
        .status();
    record(&mut seen, op, status.as_u16());

    // Attaching a token book's sticker to its dossier.
    let op = "POST /api/v1/stickers/attach";
    let books_admin = sign_in_admin(&app).await;
    let books = format!("/agency/units/{}/books", unit_id(&app, "STP"));
    for _ in 0..2 {
        let issued = books_admin
            .post(&app, &books, &[("action", "issue"), ("size", "3")])
            .await;
        assert_eq!(issued.status(), 200);
    }
    let second_book: String = {
        use diesel::prelude::*;
        use sipas::db::schema::token_books;
        let conn = &mut app.conn();
        sipas::db_run!(conn: {
            token_books::table.filter(token_books::number.eq(2i64)).select(token_books::id).first(conn)
        })
        .expect("the second book")
    };
    let revoked = books_admin
        .post(
            &app,
            &books,
            &[("action", "revoke"), ("book", &second_book)],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    app.issue_survey("DOC-STICKER", None).await;
    let attach = |body: Vec<u8>, key: Option<&str>| {
        let mut request = app
            .client
            .post(app.url("/api/v1/stickers/attach"))
            .header("content-type", "application/json")
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send()
    };
    let sticker = |serial: &str, dossier: &str| {
        serde_json::to_vec(
            &serde_json::json!({ "unit": "STP", "dossier_code": dossier, "sticker": serial }),
        )
        .expect("json")
    };
    for (body, key) in [
        (sticker("S1-0001", "DOC-STICKER"), Some(key.as_str())),
        (sticker("S1-0001", "DOC-1"), Some(key.as_str())),
        (sticker("S2-0001", "DOC-1"), Some(key.as_str())),
        (sticker("S9-0001", "DOC-1"), Some(key.as_str())),
        (b"not json".to_vec(), Some(key.as_str())),
        (sticker("S1-0002", "DOC-1"), None),
        (sticker("S1-0002", "DOC-1"), Some(sxd_key.as_str())),
        (
            vec![b' '; app.state.settings.max_body_bytes + 1],
            Some(key.as_str()),
        ),
    ] {
        let status = attach(body, key).await.expect("request").status().as_u16();
        record(&mut seen, op, status);
    }

    // The QR codes.
    let issued = app.issue_survey("DOC-2", None).await;
    let token = issued["token"].as_str().expect("token").to_string();
    let unknown = "A".repeat(26);
    for (suffix, op) in [
        ("qr.svg", "GET /s/{token}/qr.svg"),
        ("qr.png", "GET /s/{token}/qr.png"),
    ] {
        for url in [
            format!("/s/{token}/{suffix}"),
            format!("/s/{unknown}/{suffix}"),
            format!("/s/{token}/{suffix}?x=%00"),
            format!("/s/{token}/{suffix}?x=%FF"),
        ] {
            record(&mut seen, op, get_status(anonymous, app.url(&url)).await);
        }
    }
    for query in ["scale=abc", "scale=2&scale=3", "scale=4"] {
        let url = app.url(&format!("/s/{token}/qr.png?{query}"));
        record(
            &mut seen,
            "GET /s/{token}/qr.png",
            get_status(anonymous, url).await,
        );
    }

    // The report API, by every kind of caller.
    let admin = sign_in_admin(&app).await;
    create_user(&app, "doc-agency", Role::Agency, Some("STP"), None);
    create_user(
        &app,
        "doc-collector",
        Role::Collector,
        None,
        Some("BUU-DIEN"),
    );
    let agency = sign_in(&app, "doc-agency", TEST_PASSWORD).await;
    let collector = sign_in(&app, "doc-collector", TEST_PASSWORD).await;
    let must_change = {
        let conn = &mut app.conn();
        let input = sipas::accounts::users::UserInput {
            username: "doc-new".into(),
            display_name: "Cán bộ mới".into(),
            role: Role::Admin,
            unit_id: None,
            collector_org_id: None,
            active: true,
        };
        sipas::accounts::users::create(conn, &sipas::audit::Actor::cli(), &input, TEST_PASSWORD)
            .expect("user");
        sign_in(&app, "doc-new", TEST_PASSWORD).await
    };
    let stp = unit_id(&app, "STP");
    let unit_op = "GET /api/v1/reports/units/{id}";
    let ranking_op = "GET /api/v1/reports/ranking";
    for (who, path, op) in [
        (
            &admin.client,
            format!("/api/v1/reports/units/{stp}"),
            unit_op,
        ),
        (
            &must_change.client,
            format!("/api/v1/reports/units/{stp}"),
            unit_op,
        ),
        (
            &admin.client,
            format!("/api/v1/reports/units/{stp}?period=2026&period=2025"),
            unit_op,
        ),
        (anonymous, format!("/api/v1/reports/units/{stp}"), unit_op),
        (
            &collector.client,
            format!("/api/v1/reports/units/{stp}"),
            unit_op,
        ),
        (
            &admin.client,
            "/api/v1/reports/units/no-such-unit".to_string(),
            unit_op,
        ),
        (
            &admin.client,
            format!("/api/v1/reports/units/{stp}?period=yesterday"),
            unit_op,
        ),
        (
            &admin.client,
            "/api/v1/reports/units/%00".to_string(),
            unit_op,
        ),
        (
            &admin.client,
            "/api/v1/reports/ranking".to_string(),
            ranking_op,
        ),
        (
            &must_change.client,
            "/api/v1/reports/ranking".to_string(),
            ranking_op,
        ),
        (
            &admin.client,
            "/api/v1/reports/ranking?kind=a&kind=b".to_string(),
            ranking_op,
        ),
        (anonymous, "/api/v1/reports/ranking".to_string(), ranking_op),
        (
            &agency.client,
            "/api/v1/reports/ranking".to_string(),
            ranking_op,
        ),
        (
            &admin.client,
            "/api/v1/reports/ranking?kind=planet".to_string(),
            ranking_op,
        ),
    ] {
        record(&mut seen, op, get_status(who, app.url(&path)).await);
    }

    // Health.
    for path in ["/healthz", "/healthz?x=%FF", "/healthz?x=%00"] {
        record(
            &mut seen,
            "GET /healthz",
            get_status(anonymous, app.url(path)).await,
        );
    }

    // A second app, starved: one survey request a minute, and no free database connection.
    let starved = TestApp::spawn_with(Backend::Sqlite, |s| {
        s.survey_rate_per_minute = 1;
        s.pool_size = 2;
    })
    .await;
    for _ in 0..2 {
        for (suffix, op) in [
            ("qr.svg", "GET /s/{token}/qr.svg"),
            ("qr.png", "GET /s/{token}/qr.png"),
        ] {
            let url = starved.url(&format!("/s/{unknown}/{suffix}"));
            record(&mut seen, op, get_status(&starved.client, url).await);
        }
    }
    // The writer keeps one of the two connections; the test holds the other.
    let held = starved.state.pool.get().expect("connection");
    let status = get_status(&starved.client, starved.url("/healthz")).await;
    drop(held);
    record(&mut seen, "GET /healthz", status);

    assert_eq!(
        seen, documented,
        "left: what the app answered; right: what /api/openapi.json documents"
    );
}

// ---------------------------------------------------------------- property test

/// Random hostile text: NUL and other controls, invalid UTF-8 (as raw bytes, sent
/// percent-encoded), formula prefixes, Vietnamese, and strings over every limit.
fn hostile_bytes() -> impl Strategy<Value = Vec<u8>> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        Just(b"\0".to_vec()),
        Just(b"\x1b".to_vec()),
        Just(b"\x7f".to_vec()),
        Just("\u{85}".as_bytes().to_vec()),
        Just(b"\r\n\t".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"\xc3".to_vec()),
        Just(b"=".to_vec()),
        Just(b"+".to_vec()),
        Just(b"-".to_vec()),
        Just(b"@".to_vec()),
        Just(b"=cmd|' /C calc'!A0".to_vec()),
        Just("Sở Tư pháp".as_bytes().to_vec()),
        Just(b"\",'%&=;".to_vec()),
        Just(vec![b'x'; 70_000]),
        Just("ệ".repeat(600).into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..16),
        "[a-zA-Z0-9 ]{0,12}".prop_map(String::into_bytes),
    ];
    proptest::collection::vec(piece, 1..5).prop_map(|pieces| pieces.concat())
}

/// Form-encodes fields whose values are arbitrary bytes.
fn form_body(fields: &[(&str, &[u8])]) -> Vec<u8> {
    use percent_encoding::{NON_ALPHANUMERIC, percent_encode};
    fields
        .iter()
        .map(|(k, v)| {
            format!(
                "{}={}",
                percent_encode(k.as_bytes(), NON_ALPHANUMERIC),
                percent_encode(v, NON_ALPHANUMERIC)
            )
        })
        .collect::<Vec<_>>()
        .join("&")
        .into_bytes()
}

const CASES: u32 = 64;

async fn random_text_never_gets_a_5xx_and_exports_stay_neutral(app: TestApp) {
    let started = std::time::Instant::now();
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases: CASES,
            ..Config::default()
        },
        proptest::test_runner::TestRng::deterministic_rng(
            proptest::test_runner::RngAlgorithm::ChaCha,
        ),
    );
    let strategy = hostile_bytes();
    let admin = sign_in_admin(&app).await;
    let csrf = admin.csrf(&app).await;
    let stp = unit_id(&app, "STP");
    let mut statuses: BTreeMap<&str, BTreeSet<u16>> = BTreeMap::new();
    let mut check = |what: &'static str, status: u16, input: &[u8]| {
        assert!(
            status < 500,
            "{what} answered {status} for {:?}",
            String::from_utf8_lossy(&input[..input.len().min(200)])
        );
        statuses.entry(what).or_default().insert(status);
    };
    let lossy = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    for case in 0..CASES {
        let text = strategy.new_tree(&mut runner).expect("value").current();
        let short = &text[..text.len().min(2000)];

        // The citizen's forms (both): free text in the comment or suggestion.
        for form in ["transaction", "sipas"] {
            let url = survey_url(
                &app,
                &recent_dossier(&app, "STP", &format!("P-{case}-{form}"), form),
            )
            .await;
            let definition = app.state.forms.latest(form).expect("form");
            let mut fields: Vec<(String, Vec<u8>)> = full_answers(&definition)
                .into_iter()
                .map(|(k, v)| (k, v.into_bytes()))
                .collect();
            for (code, value) in fields.iter_mut() {
                if code == "COMMENT" || code == "SUGGESTION" {
                    *value = text.clone();
                }
            }
            let borrowed: Vec<(&str, &[u8])> = fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_slice()))
                .collect();
            let response = app
                .client
                .post(&url)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form_body(&borrowed))
                .send()
                .await
                .expect("request");
            check("citizen form", response.status().as_u16(), &text);
        }

        // The counter API, every string field in turn (JSON carries text, so lossy UTF-8).
        for field in sipas::survey::transaction::FIELDS {
            let mut body = transaction_body(&format!("P-{case}-{field}"));
            body[field] = json!(lossy(short));
            let response = app.post_transaction(&body).await;
            check("counter API", response.status().as_u16(), &text);
        }
        // And the raw bytes as the body's string (invalid UTF-8 inside JSON).
        let mut raw = b"{\"unit\":\"".to_vec();
        raw.extend_from_slice(short);
        raw.extend_from_slice(b"\"}");
        let response = app
            .client
            .post(app.url("/api/v1/transactions"))
            .bearer_auth(&app.api_key)
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .expect("request");
        check("counter API raw", response.status().as_u16(), &text);

        // Staff: a unit created and renamed, a search box, a paper serial, the sign-in form.
        let code = format!("P{case}");
        let unit_form = |name: &[u8]| {
            form_body(&[
                ("csrf", csrf.as_bytes()),
                ("code", code.as_bytes()),
                ("name_vi", name),
                ("name_en", name),
                ("kind", b"department"),
                ("parent", b""),
                ("valid_from", b"2026-01-01"),
            ])
        };
        for path in [
            "/admin/units".to_string(),
            format!("/admin/units/{stp}/rename"),
        ] {
            let response = admin
                .client
                .post(app.url(&path))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(unit_form(short))
                .send()
                .await
                .expect("request");
            check("unit form", response.status().as_u16(), &text);
        }
        let response = admin
            .client
            .post(app.url(&format!("/admin/units/{stp}/rename")))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("csrf", csrf.as_bytes()),
                ("name_vi", short),
                ("name_en", b"Justice"),
                ("kind", b"department"),
            ]))
            .send()
            .await
            .expect("request");
        check("unit rename", response.status().as_u16(), &text);
        let encoded =
            percent_encoding::percent_encode(short, percent_encoding::NON_ALPHANUMERIC).to_string();
        for path in [
            format!("/admin/units?q={encoded}"),
            format!("/admin/users?q={encoded}"),
            format!("/admin/audit?actor={encoded}&action={encoded}"),
            format!("/paper/entry/open?serial={encoded}"),
            format!("/paper/entry/{}", &encoded[..encoded.len().min(600)]),
            format!("/reports/units/{}", &encoded[..encoded.len().min(600)]),
            format!("/api/v1/reports/ranking?period={encoded}"),
        ] {
            let response = admin.get(&app, &path).await;
            check("staff GET", response.status().as_u16(), &text);
        }
        let client = browser();
        let page = client
            .get(app.url("/login"))
            .send()
            .await
            .expect("login page");
        let login_csrf = crate::helpers::staff::csrf_in(&page.text().await.expect("html"));
        let response = client
            .post(app.url("/login"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form_body(&[
                ("csrf", login_csrf.as_bytes()),
                ("username", short),
                ("password", b"not-the-password"),
            ]))
            .send()
            .await
            .expect("request");
        check("sign-in", response.status().as_u16(), &text);
    }
    // Whatever got in, no export cell may start an unneutralised formula.
    let exports = every_export(&app, &admin, &[]).await;
    for (path, cells) in &exports {
        assert_eq!(formula_cells(cells), Vec::<String>::new(), "{path}");
    }
    eprintln!(
        "hostile text: {CASES} cases in {:?}; statuses {statuses:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------- paper import

crate::on_both_databases!(paper_import_refuses_control_characters);

async fn paper_import_refuses_control_characters(app: TestApp) {
    use sipas::paper::import::{ImportError, import};
    let typist = create_user(&app, "nhap-nul", Role::Collector, None, Some("BUU-DIEN"));
    let offset = app.state.settings.utc_offset_value().expect("offset");
    let result = import(
        &mut app.conn(),
        &app.state.forms,
        &sipas::accounts::Actor::of(&typist),
        "nul.csv",
        b"serial,A1\nAB\0CD-EFGH-JK,4\n",
        offset,
    );
    match result {
        Err(ImportError::Invalid(problems)) => {
            assert!(
                problems
                    .iter()
                    .any(|p| p.row == 2 && p.column == "serial" && p.problem.contains("U+0000")),
                "{problems:?}"
            );
        }
        Err(ImportError::Failed(e)) => {
            panic!("a NUL must be a reported problem, not a failure: {e}")
        }
        other => panic!("a NUL in the file is refused: {:?}", other.map(|_| ())),
    }
}
