//! Issue #20, offline token books: signed stickers accepted once, forged, revoked and other
//! units' stickers refused; the counter software attaches a sticker to its dossier so the
//! Decision 766 rating reaches it; book answers reported apart (channel `book`).

use diesel::prelude::*;
use serde_json::{Value, json};
use sipas::db::schema::{book_stickers, responses, token_books, transactions};
use sipas::db_run;
use sipas::survey::book_token::StickerRef;

use crate::helpers::staff::{Staff, TEST_PASSWORD, create_user, sign_in, unit_id};
use crate::helpers::{TestApp, full_answers};

/// Issues a book of `size` stickers for `unit` through the staff page; its id and the survey
/// URLs printed on its sheets, in serial order.
async fn issue_book(app: &TestApp, staff: &Staff, unit: &str, size: &str) -> (String, Vec<String>) {
    let path = format!("/agency/units/{unit}/books");
    let issued = staff
        .post(app, &path, &[("action", "issue"), ("size", size)])
        .await;
    assert_eq!(issued.status(), 200);
    let html = issued.text().await.unwrap();
    let start = html.find("/books/").expect("a print link") + "/books/".len();
    let book_id = html[start..].split('/').next().unwrap().to_string();
    let sheet = staff
        .page(app, &format!("/agency/units/{unit}/books/{book_id}/print"))
        .await;
    let urls: Vec<String> = sheet
        .split("data-url=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect();
    (book_id, urls)
}

fn answers_with_overall(app: &TestApp, level: &str) -> Vec<(String, String)> {
    let form = app
        .state
        .forms
        .latest("transaction")
        .expect("transaction form");
    full_answers(&form)
        .into_iter()
        .map(|(k, v)| {
            if k == "OVERALL" {
                (k, level.to_string())
            } else {
                (k, v)
            }
        })
        .collect()
}

fn book_channel_answers(app: &TestApp) -> i64 {
    let conn = &mut app.conn();
    db_run!(conn: { responses::table.filter(responses::channel.eq("book")).count().get_result(conn) })
        .unwrap()
}

async fn stickers_are_accepted_once_and_bound_to_their_unit(app: TestApp) {
    let stp = unit_id(&app, "STP");
    let sxd = unit_id(&app, "SXD");
    create_user(
        &app,
        "agency-stp",
        sipas::accounts::Role::Agency,
        Some("STP"),
        None,
    );
    create_user(
        &app,
        "agency-sxd",
        sipas::accounts::Role::Agency,
        Some("SXD"),
        None,
    );
    let staff = sign_in(&app, "agency-stp", TEST_PASSWORD).await;
    let other = sign_in(&app, "agency-sxd", TEST_PASSWORD).await;
    // A bad size is refused by name; another agency's unit does not exist for it.
    let refused = staff
        .post(
            &app,
            &format!("/agency/units/{stp}/books"),
            &[("action", "issue"), ("size", "0")],
        )
        .await;
    assert_eq!(refused.status(), 422);
    assert_eq!(
        other
            .get(&app, &format!("/agency/units/{stp}/books"))
            .await
            .status(),
        404
    );
    let (book, urls) = issue_book(&app, &staff, &stp, "3").await;
    assert_eq!(urls.len(), 3, "one QR per sticker");
    assert_eq!(
        other
            .get(&app, &format!("/agency/units/{stp}/books/{book}/print"))
            .await
            .status(),
        404
    );
    // Nothing per sticker is stored when the book is issued.
    let conn = &mut app.conn();
    let stored: i64 = db_run!(conn: { book_stickers::table.count().get_result(conn) }).unwrap();
    assert_eq!(stored, 0);

    // The first answer is stored with channel `book`; the second is "already answered".
    let page = app.client.get(&urls[0]).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let fields = answers_with_overall(&app, "2");
    assert_eq!(app.submit(&urls[0], &fields).await.status(), 200);
    assert_eq!(book_channel_answers(&app), 1);
    let again = app.submit(&urls[0], &fields).await;
    assert_eq!(again.status(), 409);
    assert_eq!(app.client.get(&urls[0]).send().await.unwrap().status(), 409);
    assert_eq!(book_channel_answers(&app), 1, "accepted once");

    // A forged sticker (right shape, wrong signature) is unknown.
    let token = urls[1].rsplit('/').next().unwrap();
    let (claimed, _) =
        StickerRef::claimed(&sipas::survey::token::SurveyToken::parse(token).unwrap()).unwrap();
    let forged_secret =
        sipas::secret::ServerSecret::from_bytes(b"not the server's secret at all!!".to_vec());
    let forged = claimed.token(&forged_secret, &stp);
    let forged_url = app.url(&format!("/s/{}", forged.as_str()));
    assert_eq!(
        app.client.get(&forged_url).send().await.unwrap().status(),
        404
    );
    assert_eq!(app.submit(&forged_url, &fields).await.status(), 404);

    // Another unit's book: its serial and signature cannot speak for this unit's book, and a
    // sticker signed for this unit's book number under the other unit is refused too.
    let (_, other_urls) = issue_book(&app, &other, &sxd, "2").await;
    let other_token = other_urls[0].rsplit('/').next().unwrap();
    let (other_claim, _) =
        StickerRef::claimed(&sipas::survey::token::SurveyToken::parse(other_token).unwrap())
            .unwrap();
    assert_ne!(other_claim.book_number, claimed.book_number);
    let swapped = StickerRef {
        book_number: claimed.book_number,
        serial: other_claim.serial,
    }
    .token(&app.state.secret, &sxd);
    let swapped_url = app.url(&format!("/s/{}", swapped.as_str()));
    assert_eq!(
        app.submit(&swapped_url, &fields).await.status(),
        404,
        "unit bound in the signature"
    );
    // The other unit's own sticker answers for that unit only.
    assert_eq!(app.submit(&other_urls[0], &fields).await.status(), 200);
    let units: Vec<String> = db_run!(conn: {
        responses::table.filter(responses::channel.eq("book")).order(responses::submitted_at).select(responses::unit_id).load(conn)
    })
    .unwrap();
    assert_eq!(units, [stp.clone(), sxd.clone()]);

    // Revoked: the unused stickers are refused with a clear message.
    let revoked = staff
        .post(
            &app,
            &format!("/agency/units/{stp}/books"),
            &[("action", "revoke"), ("book", &book)],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    let page = app.client.get(&urls[1]).send().await.unwrap();
    assert_eq!(page.status(), 410);
    assert!(page.text().await.unwrap().contains("thu hồi"));
    assert_eq!(app.submit(&urls[2], &fields).await.status(), 410);
    assert_eq!(book_channel_answers(&app), 2);
    let revoked_at: Option<chrono::NaiveDateTime> = db_run!(conn: {
        token_books::table.find(&book).select(token_books::revoked_at).first(conn)
    })
    .unwrap();
    assert!(revoked_at.is_some());
}

async fn attach(app: &TestApp, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/stickers/attach"))
        .json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

fn rating_of(app: &TestApp, dossier: &str) -> Option<i64> {
    let conn = &mut app.conn();
    db_run!(conn: {
        transactions::table.filter(transactions::dossier_code.eq(dossier)).select(transactions::rating).first(conn)
    })
    .unwrap()
}

async fn attached_stickers_rate_their_dossier(app: TestApp) {
    let stp = unit_id(&app, "STP");
    let sxd = unit_id(&app, "SXD");
    let admin = crate::helpers::staff::sign_in_admin(&app).await;
    let (_, urls) = issue_book(&app, &admin, &stp, "3").await;
    let (_, sxd_urls) = issue_book(&app, &admin, &sxd, "1").await;
    app.issue_survey("HS-BOOK-1", None).await;
    app.issue_survey("HS-BOOK-2", None).await;
    app.issue_survey("HS-BOOK-3", None).await;
    let key = app.api_key.clone();
    let serial_of = |url: &str| {
        let token =
            sipas::survey::token::SurveyToken::parse(url.rsplit('/').next().unwrap()).unwrap();
        StickerRef::claimed(&token).unwrap().0.label()
    };

    // Refusals: no key, unknown field, unknown dossier, unknown sticker, another unit's book.
    let body =
        json!({ "unit": "STP", "dossier_code": "HS-BOOK-1", "sticker": serial_of(&urls[0]) });
    assert_eq!(attach(&app, None, &body).await.status(), 401);
    let mut unknown_field = body.clone();
    unknown_field["stiker"] = json!("x");
    assert_eq!(attach(&app, Some(&key), &unknown_field).await.status(), 422);
    let mut no_dossier = body.clone();
    no_dossier["dossier_code"] = json!("HS-NOT-REGISTERED");
    let refused = attach(&app, Some(&key), &no_dossier).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("dossier_code"));
    let mut bad_sticker = body.clone();
    bad_sticker["sticker"] = json!("S999-0001");
    assert_eq!(attach(&app, Some(&key), &bad_sticker).await.status(), 422);
    let mut foreign = body.clone();
    foreign["sticker"] = json!(sxd_urls[0]);
    let refused = attach(&app, Some(&key), &foreign).await;
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("another unit"));

    // Attached before the answer: the answer rates the dossier (unsatisfied, level 1).
    let attached = attach(&app, Some(&key), &body).await;
    assert_eq!(attached.status(), 200);
    let attached: Value = attached.json().await.unwrap();
    assert_eq!(attached["answered"], false);
    assert_eq!(rating_of(&app, "HS-BOOK-1"), None);
    assert_eq!(
        app.submit(&urls[0], &answers_with_overall(&app, "1"))
            .await
            .status(),
        200
    );
    assert_eq!(rating_of(&app, "HS-BOOK-1"), Some(1));

    // Answered first, attached later by its survey URL: the rating reaches the dossier then.
    assert_eq!(
        app.submit(&urls[1], &answers_with_overall(&app, "3"))
            .await
            .status(),
        200
    );
    assert_eq!(rating_of(&app, "HS-BOOK-2"), None);
    let later = json!({ "unit": "STP", "dossier_code": "HS-BOOK-2", "sticker": urls[1] });
    let attached: Value = attach(&app, Some(&key), &later).await.json().await.unwrap();
    assert_eq!(
        (attached["answered"].as_bool(), attached["rated"].as_bool()),
        (Some(true), Some(true))
    );
    assert_eq!(rating_of(&app, "HS-BOOK-2"), Some(3));
    // Again: nothing changes; to another dossier, or a second sticker to one dossier: conflict.
    assert_eq!(attach(&app, Some(&key), &later).await.status(), 200);
    let elsewhere = json!({ "unit": "STP", "dossier_code": "HS-BOOK-3", "sticker": urls[1] });
    assert_eq!(attach(&app, Some(&key), &elsewhere).await.status(), 409);
    let second =
        json!({ "unit": "STP", "dossier_code": "HS-BOOK-2", "sticker": serial_of(&urls[2]) });
    assert_eq!(attach(&app, Some(&key), &second).await.status(), 409);

    // The Decision 766 counts saw the unsatisfied rating.
    let report = admin
        .page(&app, &format!("/api/v1/reports/units/{stp}?period=2026-01"))
        .await;
    let report: Value = serde_json::from_str(&report).unwrap();
    assert_eq!(
        report["dossier_rate"]["counts"]["rated_unsatisfied"], 1,
        "{report}"
    );
}

crate::on_both_databases!(
    stickers_are_accepted_once_and_bound_to_their_unit,
    attached_stickers_rate_their_dossier,
);
