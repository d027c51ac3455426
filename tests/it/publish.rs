//! Publishing (issue #18): releases freeze a period's figures (equal to the staff report's),
//! corrections list what changed, downloads verify with the published key and fail after one
//! changed byte, and nothing the reports suppress is ever published. Every test runs on SQLite
//! and PostgreSQL.

use chrono::Datelike;
use serde_json::Value;
use sipas::publish::document::ReleaseDocument;
use sipas::publish::release;

use crate::helpers::staff::{sign_in_admin, unit_id};
use crate::helpers::{Backend, TestApp, full_answers};
use crate::on_both_databases;

on_both_databases!(
    backend: a_release_is_frozen_and_equals_the_staff_report,
    a_correction_lists_what_changed,
    a_download_verifies_and_fails_after_one_changed_byte,
    suppressed_cells_never_appear_in_public_pages_or_downloads,
    the_public_site_needs_no_sign_in_and_the_home_page_leads_to_it,
    only_administrators_create_releases_and_bad_periods_are_refused,
);

/// An app whose release key lives in its own temporary folder.
async fn spawn(backend: Backend) -> (TestApp, tempfile::TempDir) {
    let keys = tempfile::tempdir().expect("key dir");
    let key_file = keys.path().join("release.key");
    let app = TestApp::spawn_with(backend, move |s| s.release_key_file = Some(key_file)).await;
    (app, keys)
}

/// This year in the province's time: the period every test answer falls in.
fn this_year(app: &TestApp) -> String {
    let offset = app.state.settings.utc_offset_value().expect("offset");
    sipas::calendar::local_day(sipas::db::now(), offset)
        .year()
        .to_string()
}

/// `count` complete SIPAS answers for the Department of Justice (STP).
async fn answer(app: &TestApp, prefix: &str, count: usize) {
    answer_at_levels(app, prefix, &vec!["4"; count]).await;
}

/// One complete SIPAS answer for STP per entry of `levels`, every rated item at that level.
async fn answer_at_levels(app: &TestApp, prefix: &str, levels: &[&str]) {
    let form = app.state.forms.latest("sipas").expect("sipas form");
    for (i, level) in levels.iter().enumerate() {
        let issued = app
            .issue_survey(&format!("{prefix}-{i}"), Some("sipas"))
            .await;
        let url = issued["survey_url"].as_str().expect("survey_url");
        let mut fields = full_answers(&form);
        for (code, value) in fields.iter_mut() {
            if form
                .question(code)
                .is_some_and(|q| q.kind == sipas::forms::QuestionType::Scale5)
            {
                *value = level.to_string();
            }
        }
        let response = app.submit(url, &fields).await;
        assert!(response.status().is_success(), "answer {i} accepted");
    }
}

/// Creates a release of `period` through the admin page; returns the newest release.
async fn publish(app: &TestApp, period: &str, note: &str) -> release::Release {
    let admin = sign_in_admin(app).await;
    let response = admin
        .post(
            app,
            "/admin/releases",
            &[("period", period), ("note", note)],
        )
        .await;
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 303, "release created: {body}");
    let newest = release::list(&mut app.conn()).expect("list")[0].id.clone();
    release::find(&mut app.conn(), &newest).expect("release")
}

async fn get(app: &TestApp, path: &str) -> (u16, Vec<u8>) {
    let response = app.client.get(app.url(path)).send().await.expect("request");
    let status = response.status().as_u16();
    (status, response.bytes().await.expect("body").to_vec())
}

async fn text(app: &TestApp, path: &str) -> String {
    let (status, body) = get(app, path).await;
    let body = String::from_utf8(body).expect("UTF-8");
    assert_eq!(status, 200, "GET {path}: {body}");
    body
}

async fn a_release_is_frozen_and_equals_the_staff_report(backend: Backend) {
    let (app, _keys) = spawn(backend).await;
    let period = this_year(&app);
    answer(&app, "FROZEN", 6).await;
    let r = publish(&app, &period, "").await;
    assert_eq!((r.sequence, r.corrects.as_deref()), (1, None));
    let doc: ReleaseDocument = serde_json::from_str(&r.document).expect("document");
    let stp = doc.unit("STP").expect("STP in the release");

    // The same figures as the staff report's JSON.
    let admin = sign_in_admin(&app).await;
    let staff_path = format!(
        "/api/v1/reports/units/{}?period={period}",
        unit_id(&app, "STP")
    );
    let staff: Value = serde_json::from_str(&admin.page(&app, &staff_path).await).expect("json");
    assert_eq!(staff["sipas"]["index"]["n"], 6);
    assert_eq!(stp.index.n, 6);
    // Equal up to floating-point noise (the report sums cells in no fixed order).
    let close = |ours: Option<f64>, theirs: &Value| match (ours, theirs.as_f64()) {
        (Some(a), Some(b)) => (a - b).abs() < 1e-9,
        (None, None) => theirs.is_null(),
        _ => false,
    };
    assert!(close(stp.index.value, &staff["sipas"]["index"]["value"]));
    assert!(close(stp.index.ci_low, &staff["sipas"]["index"]["ci_low"]));
    assert!(close(
        stp.index.ci_high,
        &staff["sipas"]["index"]["ci_high"]
    ));
    for (e, theirs) in stp
        .elements
        .iter()
        .zip(staff["sipas"]["elements"].as_array().unwrap())
    {
        assert!(
            close(e.index.value, &theirs["index"]["value"]),
            "{}",
            e.code
        );
    }
    assert_eq!(
        stp.sample.required,
        staff["sample"]["required"].as_u64().unwrap()
    );
    assert!(close(stp.dossier_rate.rate, &staff["dossier_rate"]["rate"]));
    let channels = stp.channels.as_ref().unwrap();
    assert!(close(
        channels.counter.value,
        &staff["gap"]["counter"]["value"]
    ));
    assert!(close(
        channels.independent.value,
        &staff["gap"]["independent"]["value"]
    ));

    // New answers move the staff report, never the release.
    let (_, before) = get(&app, &format!("/public/releases/{}/release.json", r.id)).await;
    assert_eq!(
        before,
        r.document.as_bytes(),
        "the download is the signed bytes"
    );
    answer(&app, "LATER", 3).await;
    let staff: Value = serde_json::from_str(&admin.page(&app, &staff_path).await).expect("json");
    assert_eq!(
        staff["sipas"]["index"]["n"], 9,
        "the staff report counts them"
    );
    let (_, after) = get(&app, &format!("/public/releases/{}/release.json", r.id)).await;
    assert_eq!(before, after, "the release does not change");
    let page = text(&app, "/public/units/STP").await;
    assert!(page.contains("n = 6"), "the public page shows the release");
    assert!(!page.contains("n = 9"));
    let stored = release::find(&mut app.conn(), &r.id).expect("release");
    assert_eq!(stored, r);

    // The database itself refuses to change or delete a release.
    use diesel::prelude::*;
    use sipas::db::schema::releases;
    let conn = &mut app.conn();
    let (updated, deleted) = sipas::db_run!(conn: {
        (
            diesel::update(releases::table.find(&r.id))
                .set(releases::document.eq("{}"))
                .execute(conn),
            diesel::delete(releases::table.find(&r.id)).execute(conn),
        )
    });
    assert!(
        updated.is_err() && deleted.is_err(),
        "{updated:?} {deleted:?}"
    );
    assert_eq!(release::find(conn, &r.id).expect("release"), r);
}

async fn a_correction_lists_what_changed(backend: Backend) {
    let (app, _keys) = spawn(backend).await;
    let period = this_year(&app);
    answer(&app, "FIRST", 6).await;
    let first = publish(&app, &period, "").await;
    answer(&app, "MORE", 2).await;
    let second = publish(&app, &period, "Thêm phiếu nhập muộn").await;
    assert_eq!(second.sequence, 2);
    assert_eq!(second.corrects.as_deref(), Some(first.id.as_str()));
    let doc = second.parsed().expect("document");
    assert_eq!(doc.release.note, "Thêm phiếu nhập muộn");
    let change = doc
        .changes
        .iter()
        .find(|c| c.path == "units/STP/index/n")
        .unwrap_or_else(|| panic!("STP's n changed: {:?}", doc.changes));
    assert_eq!(
        (change.previous.as_u64(), change.current.as_u64()),
        (Some(6), Some(8))
    );
    assert!(
        doc.changes.iter().all(|c| c.previous != c.current),
        "only changes are listed"
    );
    assert!(
        !doc.changes.iter().any(|c| c.path.starts_with("units/SXD/")),
        "untouched units are not listed: {:?}",
        doc.changes
    );

    // The correction's page shows the diff; the list marks the first as corrected.
    let page = text(&app, &format!("/public/releases/{}", second.id)).await;
    assert!(page.contains("id=\"release-changes\"") && page.contains("units/STP/index/n"));
    let list = text(&app, "/public/releases").await;
    assert!(list.contains("đã được đính chính"));
    // The public pages show the correction now.
    assert!(text(&app, "/public/units/STP").await.contains("n = 8"));

    // Both are audited.
    let actions: Vec<String> = sipas::audit::list(&mut app.conn(), &Default::default(), 0, 50)
        .expect("audit")
        .0
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert!(
        actions.contains(&"release.create".to_string()),
        "{actions:?}"
    );
    assert!(
        actions.contains(&"release.correct".to_string()),
        "{actions:?}"
    );
}

async fn a_download_verifies_and_fails_after_one_changed_byte(backend: Backend) {
    let (app, _keys) = spawn(backend).await;
    answer(&app, "SIGNED", 6).await;
    let r = publish(&app, &this_year(&app), "").await;
    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("release.json");
    let sig = dir.path().join("release.json.sig");
    let key = dir.path().join("key.pem");
    let (_, json) = get(&app, &format!("/public/releases/{}/release.json", r.id)).await;
    let (_, signature) = get(&app, &format!("/public/releases/{}/release.json.sig", r.id)).await;
    let (status, pem) = get(&app, "/public/key.pem").await;
    assert_eq!(status, 200);
    assert_eq!(signature.len(), 64, "a raw Ed25519 signature");
    std::fs::write(&file, &json).unwrap();
    std::fs::write(&sig, &signature).unwrap();
    std::fs::write(&key, &pem).unwrap();
    let checked = sipas::publish::verify::verify_file(&file, None, Some(&key), None).unwrap();
    assert!(checked.valid, "the released file verifies");
    assert_eq!(checked.sha256, r.sha256);

    // One byte of one figure: STP's n "6" becomes "7".
    let text = String::from_utf8(json.clone()).unwrap();
    let at = text.find("\"code\": \"STP\"").expect("STP");
    let n_at = at + text[at..].find("\"n\": 6").expect("STP's n") + "\"n\": ".len();
    let mut tampered = json.clone();
    tampered[n_at] = b'7';
    let bad = dir.path().join("tampered.json");
    std::fs::write(&bad, &tampered).unwrap();
    std::fs::write(dir.path().join("tampered.json.sig"), &signature).unwrap();
    let checked = sipas::publish::verify::verify_file(&bad, None, Some(&key), None).unwrap();
    assert!(!checked.valid, "one changed figure fails verification");

    // The command line says so too (exit status), with the key from the page.
    let cli = |path: &std::path::Path| {
        std::process::Command::new(env!("CARGO_BIN_EXE_sipas"))
            .args(["release", "verify"])
            .arg(path)
            .arg("--public-key")
            .arg(&key)
            .env("DATABASE_URL", "sqlite://unused/never.db")
            .env("SIPAS_RELEASE_KEY_FILE", dir.path().join("absent.key"))
            .output()
            .expect("sipas runs")
    };
    let good = cli(&file);
    assert!(
        good.status.success(),
        "{}",
        String::from_utf8_lossy(&good.stderr)
    );
    assert!(String::from_utf8_lossy(&good.stdout).contains("signature valid"));
    assert!(!cli(&bad).status.success(), "tampered file refused");

    // And OpenSSL's recipe from the README, where OpenSSL is installed.
    let openssl = |path: &std::path::Path| {
        std::process::Command::new("openssl")
            .args(["pkeyutl", "-verify", "-pubin", "-inkey"])
            .arg(&key)
            .arg("-rawin")
            .arg("-in")
            .arg(path)
            .arg("-sigfile")
            .arg(&sig)
            .output()
    };
    if let Ok(out) = openssl(&file) {
        assert!(
            out.status.success(),
            "openssl verifies: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("Signature Verified Successfully"));
        let out = openssl(&bad).expect("openssl runs");
        assert!(!out.status.success(), "openssl refuses the tampered file");
    } else {
        eprintln!("openssl not installed: recipe not checked");
    }
}

/// Every estimate object in a JSON value: (path, n, value).
fn estimates(path: &str, v: &Value, out: &mut Vec<(String, u64, Value)>) {
    match v {
        Value::Object(map) => {
            if let (Some(n), Some(value)) = (map.get("n").and_then(Value::as_u64), map.get("value"))
            {
                out.push((path.to_string(), n, value.clone()));
                for k in ["ci_low", "ci_high", "se"] {
                    if value.is_null() {
                        assert!(
                            map.get(k).is_none_or(Value::is_null),
                            "{path}: a suppressed cell has no {k}"
                        );
                    }
                }
            }
            for (k, v) in map {
                estimates(&format!("{path}/{k}"), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                estimates(&format!("{path}/{i}"), v, out);
            }
        }
        _ => {}
    }
}

async fn suppressed_cells_never_appear_in_public_pages_or_downloads(backend: Backend) {
    let (app, _keys) = spawn(backend).await;
    // Three answers at STP: below the minimum of 5, so the report suppresses them. Two of
    // three satisfied: the hidden index would be 66.67 %, a number no page holds by chance.
    answer_at_levels(&app, "SMALL", &["5", "3", "4"]).await;
    let period = this_year(&app);
    let r = publish(&app, &period, "").await;
    let doc = r.parsed().expect("document");
    let stp = doc.unit("STP").expect("STP");
    assert_eq!(stp.index.n, 3);
    assert!(stp.index.value.is_none(), "suppressed in the release");

    // What the hidden figure would be (min_n = 1), to look for it everywhere.
    let unit = sipas::units::find_by_code(&mut app.conn(), "STP")
        .unwrap()
        .unwrap();
    let mut opts = app.state.policies.report;
    opts.min_n = 1;
    let full = sipas::report::unit_report(
        &mut app.conn(),
        &app.state.forms,
        &opts,
        &unit,
        &sipas::report::period::Period::parse(&period).unwrap(),
        &Default::default(),
    )
    .unwrap();
    let hidden = full.sipas.unwrap().index;
    let hidden_value = hidden.value.expect("a value at min_n = 1");
    let needles = [
        hidden_value.to_string(),
        format!("{hidden_value:.1} %"),
        format!("{hidden_value:.1}%"),
    ];

    // JSON: every estimate under the minimum is null with no interval.
    let json: Value = serde_json::from_str(&r.document).unwrap();
    let mut all = Vec::new();
    estimates("", &json, &mut all);
    assert!(all.len() > 10);
    for (path, n, value) in &all {
        if *n < 5 {
            assert!(value.is_null(), "{path}: n = {n} but published {value}");
        }
    }
    // CSV: rows under the minimum have no value and say so.
    let (_, csv) = get(&app, &format!("/public/releases/{}/release.csv", r.id)).await;
    assert!(csv.starts_with("\u{feff}".as_bytes()), "UTF-8 with BOM");
    let csv = String::from_utf8(csv).unwrap();
    let mut reader = csv::Reader::from_reader(csv.trim_start_matches('\u{feff}').as_bytes());
    let headers = reader.headers().unwrap().clone();
    let col = |name: &str| headers.iter().position(|h| h == name).unwrap();
    let (measure, value, n, suppressed) =
        (col("measure"), col("value"), col("n"), col("suppressed"));
    let mut checked = 0;
    for row in reader.records() {
        let row = row.unwrap();
        let is_estimate = ["index", "element", "item", "channel"].contains(&&row[measure]);
        if is_estimate && row[n].parse::<u64>().unwrap() < 5 {
            assert_eq!(&row[value], "", "suppressed value in the CSV: {row:?}");
            assert_eq!(&row[suppressed], "true");
            checked += 1;
        }
    }
    assert!(checked > 0, "the CSV holds suppressed rows");

    // Pages, downloads and the badge never show the hidden figure.
    let paths = [
        "/public".to_string(),
        "/public?lang=en".to_string(),
        "/public/units/STP".to_string(),
        "/public/units/STP?lang=en".to_string(),
        "/public/units/SON-HA".to_string(),
        "/public/ranking".to_string(),
        "/public/ranking?kind=province".to_string(),
        "/public/releases".to_string(),
        format!("/public/releases/{}", r.id),
        format!("/public/releases/{}/release.json", r.id),
        format!("/public/releases/{}/release.csv", r.id),
        "/public/catalog.json".to_string(),
        "/public/units/STP/badge.svg".to_string(),
    ];
    for path in &paths {
        let body = text(&app, path).await;
        for needle in &needles {
            assert!(
                !body.contains(needle.as_str()),
                "{path} shows the suppressed figure {needle}"
            );
        }
    }
    let page = text(&app, "/public/units/STP").await;
    assert!(
        page.contains("id=\"public-index\">—<"),
        "the index shows a dash"
    );
    let badge = text(&app, "/public/units/STP/badge.svg").await;
    assert!(badge.contains('—') && !badge.contains('%'), "{badge}");
}

async fn the_public_site_needs_no_sign_in_and_the_home_page_leads_to_it(backend: Backend) {
    let (app, _keys) = spawn(backend).await;
    let home = text(&app, "/").await;
    assert!(
        home.contains("href=\"/public\""),
        "the home page links to results"
    );
    let empty = text(&app, "/public").await;
    assert!(empty.contains("Chưa có kết quả nào được công bố."));
    let (status, _) = get(&app, "/public/units/STP/badge.svg").await;
    assert_eq!(status, 404, "no badge before anything is published");

    answer(&app, "OPEN", 6).await;
    let r = publish(&app, &this_year(&app), "").await;
    let overview = text(&app, "/public").await;
    assert!(overview.contains("lang=\"vi\"") && overview.contains("Kết quả theo đơn vị"));
    let english = text(&app, "/public?lang=en").await;
    assert!(english.contains("lang=\"en\"") && english.contains("Results by unit"));
    assert!(!overview.contains("<script"), "no JavaScript");
    let key_page = text(&app, "/public/key").await;
    assert!(key_page.contains("BEGIN PUBLIC KEY") && key_page.contains("openssl pkeyutl -verify"));
    let catalog: Value = serde_json::from_str(&text(&app, "/public/catalog.json").await).unwrap();
    let dataset = &catalog["dataset"][0];
    assert_eq!(dataset["identifier"], r.id.as_str());
    assert_eq!(dataset["period"], r.period.as_str());
    assert!(
        catalog["license"]
            .as_str()
            .unwrap()
            .contains("creativecommons")
    );
    let json_dist = &dataset["distribution"][0];
    assert_eq!(json_dist["checksum"]["checksumValue"], r.sha256.as_str());
    let (_, csv) = get(&app, &format!("/public/releases/{}/release.csv", r.id)).await;
    assert_eq!(
        dataset["distribution"][1]["checksum"]["checksumValue"],
        sipas::publish::signing::sha256_hex(&csv).as_str()
    );
    let badge = text(&app, "/public/units/STP/badge.svg").await;
    assert!(badge.starts_with("<svg") && badge.contains("n 6") && badge.contains(&r.period));
    let (status, _) = get(&app, "/public/units/NOPE").await;
    assert_eq!(status, 404);
    let (status, _) = get(&app, "/public/releases/not-a-release").await;
    assert_eq!(status, 404);
    let (status, _) = get(&app, "/public/ranking?kind=planet").await;
    assert_eq!(status, 422);
}

async fn only_administrators_create_releases_and_bad_periods_are_refused(backend: Backend) {
    let (app, _keys) = spawn(backend).await;
    let anonymous = app
        .client
        .post(app.url("/admin/releases"))
        .header("Origin", &app.base)
        .form(&[("period", "2026")])
        .send()
        .await
        .unwrap();
    let location = anonymous
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        !anonymous.status().is_success() && !location.contains("ok="),
        "anonymous refused: {} {location}",
        anonymous.status()
    );
    assert!(release::list(&mut app.conn()).unwrap().is_empty());
    let admin = sign_in_admin(&app).await;
    let response = admin
        .post(&app, "/admin/releases", &[("period", "last year")])
        .await;
    assert_eq!(response.status(), 422);
    let body = response.text().await.unwrap();
    assert!(body.contains("Kỳ công bố có dạng 2026"), "{body}");
    assert!(release::list(&mut app.conn()).unwrap().is_empty());
    let page = admin.page(&app, "/admin/releases").await;
    assert!(page.contains("Công bố một kỳ"));
}
