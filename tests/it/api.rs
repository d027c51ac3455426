//! The counter API: registration, idempotency, authentication and every input error.

use diesel::prelude::*;
use serde_json::{Value, json};
use sipas::audit::Actor;
use sipas::db::schema::transactions;
use sipas::{api_keys, db_run, units};

use crate::helpers::{TestApp, transaction_body};
use crate::on_both_databases;

on_both_databases!(
    registers_a_transaction_and_returns_its_survey,
    the_same_dossier_returns_the_same_survey,
    concurrent_duplicates_create_one_transaction,
    refuses_missing_unknown_and_revoked_keys,
    refuses_units_outside_the_keys_subtree,
    records_when_a_key_was_last_used,
    names_the_bad_field,
    refuses_oversized_bodies,
    publishes_an_openapi_document,
    errors_outside_handlers_are_bilingual,
);

async fn registers_a_transaction_and_returns_its_survey(app: TestApp) {
    let mut body = transaction_body("000.00.15.H12-260109-0001");
    body["email"] = json!("citizen@example.vn");
    let response = app.post_transaction(&body).await;
    assert_eq!(response.status(), 201);
    let issued: Value = response.json().await.unwrap();
    let token = issued["token"].as_str().unwrap();
    assert_eq!(token.len(), 26);
    assert_eq!(issued["survey_url"], json!(app.url(&format!("/s/{token}"))));
    assert_eq!(
        issued["qr_svg_url"],
        json!(app.url(&format!("/s/{token}/qr.svg")))
    );
    assert_eq!(
        issued["qr_png_url"],
        json!(app.url(&format!("/s/{token}/qr.png")))
    );
    assert_eq!(
        issued["form"], "transaction",
        "STP issues the unit default: the short form"
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(issued["expires_at"].as_str().unwrap()).unwrap();
    let days = (expires.with_timezone(&chrono::Utc) - chrono::Utc::now()).num_days();
    assert!((13..=14).contains(&days), "expires in {days} days");

    let conn = &mut app.conn();
    let stored: Vec<(String, Option<String>, chrono::NaiveDateTime)> = db_run!(conn: {
        transactions::table
            .select((transactions::dossier_code, transactions::email, transactions::received_at))
            .load(conn)
    })
    .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].1.as_deref(), Some("citizen@example.vn"));
    assert_eq!(
        stored[0].2.to_string(),
        "2026-01-05 01:00:00",
        "times are stored in UTC"
    );

    // The token itself is never stored, only its hash.
    let tokens: Vec<String> = db_run!(conn: {
        sipas::db::schema::survey_tokens::table.select(sipas::db::schema::survey_tokens::token_hash).load(conn)
    })
    .unwrap();
    assert_eq!(tokens.len(), 1);
    assert_ne!(tokens[0], token);
    assert_eq!(tokens[0].len(), 64);
}

async fn the_same_dossier_returns_the_same_survey(app: TestApp) {
    let first: Value = app
        .post_transaction(&transaction_body("HS-1"))
        .await
        .json()
        .await
        .unwrap();
    let again = app.post_transaction(&transaction_body("HS-1")).await;
    assert_eq!(again.status(), 200);
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["token"], first["token"]);
    assert_eq!(again["survey_url"], first["survey_url"]);
    assert_eq!(again["expires_at"], first["expires_at"]);
    assert_eq!(again["created"], json!(false));
    // Same dossier code at another unit is another transaction.
    let mut other_unit = transaction_body("HS-1");
    other_unit["unit"] = json!("SXD");
    let other: Value = app
        .post_transaction(&other_unit)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(other["token"], first["token"]);
    let conn = &mut app.conn();
    let count: i64 = db_run!(conn: { transactions::table.count().get_result(conn) }).unwrap();
    assert_eq!(count, 2);
}

async fn concurrent_duplicates_create_one_transaction(app: TestApp) {
    let body = transaction_body("HS-RACE");
    let requests = (0..12).map(|_| app.post_transaction(&body));
    let responses = futures_util::future::join_all(requests).await;
    let mut tokens = Vec::new();
    for response in responses {
        assert!(
            response.status() == 201 || response.status() == 200,
            "{}",
            response.status()
        );
        let v: Value = response.json().await.unwrap();
        tokens.push(v["token"].as_str().unwrap().to_string());
    }
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every request got the same survey");
    let conn = &mut app.conn();
    let count: i64 = db_run!(conn: { transactions::table.count().get_result(conn) }).unwrap();
    assert_eq!(count, 1);
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    (status, body["error"].clone())
}

async fn refuses_missing_unknown_and_revoked_keys(app: TestApp) {
    let url = app.url("/api/v1/transactions");
    let body = transaction_body("HS-AUTH");
    let (status, error) = error_of(app.client.post(&url).json(&body).send().await.unwrap()).await;
    assert_eq!(status, 401);
    assert!(
        error["message"].as_str().unwrap().contains("khóa API"),
        "{error}"
    );
    assert!(error["message_en"].as_str().unwrap().contains("API key"));

    let (status, _) = error_of(
        app.client
            .post(&url)
            .bearer_auth("sipas_nonsense")
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);

    let conn = &mut app.conn();
    let stp = units::find_by_code(conn, "STP").unwrap().unwrap();
    let key = api_keys::create(conn, &Actor::cli(), &stp.id, "test").unwrap();
    let ok = app
        .client
        .post(&url)
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 201);
    let id = api_keys::list_for_unit(conn, &stp.id).unwrap()[0]
        .id
        .clone();
    assert!(api_keys::revoke(conn, &Actor::cli(), &id).unwrap());
    let (status, _) = error_of(
        app.client
            .post(&url)
            .bearer_auth(&key)
            .json(&transaction_body("HS-AUTH-2"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401, "a revoked key is refused");
}

async fn refuses_units_outside_the_keys_subtree(app: TestApp) {
    let conn = &mut app.conn();
    let stp = units::find_by_code(conn, "STP").unwrap().unwrap();
    let key = api_keys::create(conn, &Actor::cli(), &stp.id, "stp counter").unwrap();
    let mut body = transaction_body("HS-X");
    body["unit"] = json!("SXD");
    let response = app
        .client
        .post(app.url("/api/v1/transactions"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(status, 403);
    assert_eq!(error["code"], "forbidden");
    let count: i64 = db_run!(conn: { transactions::table.count().get_result(conn) }).unwrap();
    assert_eq!(count, 0, "nothing stored");
}

/// "Last used" is written with the registration's own group commit, and also when the
/// request writes nothing (already registered, or refused after the key was accepted); at most
/// once a minute, so the counters' hot path rarely writes it.
async fn records_when_a_key_was_last_used(app: TestApp) {
    let conn = &mut app.conn();
    let stp = units::find_by_code(conn, "STP").unwrap().unwrap();
    let key = api_keys::create(conn, &Actor::cli(), &stp.id, "counter 2").unwrap();
    let last_used = |conn: &mut sipas::db::DbConn| {
        api_keys::list_for_unit(conn, &stp.id)
            .unwrap()
            .into_iter()
            .find(|k| k.label == "counter 2")
            .unwrap()
            .last_used_at
    };
    assert_eq!(last_used(conn), None);
    let post = |body: Value| {
        app.client
            .post(app.url("/api/v1/transactions"))
            .bearer_auth(&key)
            .json(&body)
            .send()
    };
    // Refused after the key was accepted: the use is still written down.
    let mut outside = transaction_body("HS-USE-0");
    outside["unit"] = json!("SXD");
    assert_eq!(post(outside).await.unwrap().status(), 403);
    let first = last_used(conn).expect("a refused request records the key's use");

    // Within the minute: not written again, whatever the request.
    assert_eq!(
        post(transaction_body("HS-USE-1")).await.unwrap().status(),
        201
    );
    assert_eq!(last_used(conn), Some(first));

    // A minute later, a new registration writes it in its own commit.
    let stale = first - chrono::Duration::minutes(2);
    let make_stale = |conn: &mut sipas::db::DbConn| {
        use sipas::db::schema::api_keys as keys;
        db_run!(conn: {
            diesel::update(keys::table.filter(keys::label.eq("counter 2")))
                .set(keys::last_used_at.eq(stale))
                .execute(conn)
        })
        .unwrap();
    };
    make_stale(conn);
    assert_eq!(
        post(transaction_body("HS-USE-2")).await.unwrap().status(),
        201
    );
    let after_new = last_used(conn).unwrap();
    assert!(
        after_new > stale + chrono::Duration::minutes(1),
        "{after_new}"
    );

    // And an already registered dossier (nothing else to write) writes it too.
    make_stale(conn);
    assert_eq!(
        post(transaction_body("HS-USE-2")).await.unwrap().status(),
        200
    );
    assert!(last_used(conn).unwrap() > stale + chrono::Duration::minutes(1));
}

async fn names_the_bad_field(app: TestApp) {
    let cases: Vec<(&str, Value, u16)> = vec![
        ("unit", json!("NO-SUCH-UNIT"), 422),
        ("unit", json!("STNMT"), 422), // merged in 2025: no longer takes transactions
        ("unit", Value::Null, 422),
        ("dossier_code", json!(""), 422),
        ("dossier_code", json!("x".repeat(65)), 422),
        ("procedure", json!("NO-SUCH"), 422),
        ("procedure", json!(7), 400),
        ("received_at", json!("05/01/2026"), 422),
        ("completed_at", json!("2026-01-01T00:00:00+07:00"), 422),
        ("completed_at", json!("2099-01-01T00:00:00+07:00"), 422),
        ("due_at", json!("2025-12-31T00:00:00+07:00"), 422),
        ("email", json!("nobody@"), 422),
        ("form", json!("no-such-form"), 422),
    ];
    for (field, value, expected) in cases {
        let mut body = transaction_body("HS-BAD");
        body[field] = value.clone();
        let (status, error) = error_of(app.post_transaction(&body).await).await;
        assert_eq!(status, expected, "{field}={value}: {error}");
        assert_eq!(error["field"], json!(field), "{field}={value}: {error}");
        assert!(!error["message"].as_str().unwrap().is_empty());
        assert!(!error["message_en"].as_str().unwrap().is_empty());
    }
    let response = app
        .client
        .post(app.url("/api/v1/transactions"))
        .bearer_auth(&app.api_key)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (status, error) = error_of(response).await;
    assert_eq!(status, 400);
    assert_eq!(error["field"], "body");
    let conn = &mut app.conn();
    let count: i64 = db_run!(conn: { transactions::table.count().get_result(conn) }).unwrap();
    assert_eq!(count, 0, "no bad request stored anything");
}

async fn refuses_oversized_bodies(app: TestApp) {
    let mut body = transaction_body("HS-BIG");
    body["padding"] = json!("x".repeat(200 * 1024));
    let (status, error) = error_of(app.post_transaction(&body).await).await;
    assert_eq!(status, 413);
    assert_eq!(error["message"], "Nội dung gửi lên quá lớn.");
    assert_eq!(error["message_en"], "The request body is too large.");
}

async fn errors_outside_handlers_are_bilingual(app: TestApp) {
    let page = app
        .client
        .get(app.url("/no/such/page?lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(page.text().await.unwrap().contains("Page not found"));
    let (status, error) = error_of(
        app.client
            .get(app.url("/api/v1/nothing"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("Không tìm thấy")
    );
    let (status, error) = error_of(
        app.client
            .get(app.url("/api/v1/transactions"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 405);
    assert!(!error["message_en"].as_str().unwrap().is_empty());
    let issued = app.issue_survey("HS-HEAD", None).await;
    let head = app
        .client
        .head(issued["qr_png_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
}

async fn publishes_an_openapi_document(app: TestApp) {
    let response = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let doc: Value = response.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let post = &doc["paths"]["/api/v1/transactions"]["post"];
    let required = &doc["components"]["schemas"]["TransactionRequest"]["required"];
    for field in [
        "unit",
        "dossier_code",
        "procedure",
        "received_at",
        "completed_at",
    ] {
        assert!(
            required.as_array().unwrap().contains(&json!(field)),
            "{field}"
        );
    }
    for status in ["201", "200", "400", "401", "403", "422"] {
        assert!(post["responses"][status].is_object(), "{status}");
    }
    let health = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
}
