//! The citizen's path: QR code → survey page → answers stored once, durably, anonymously.

use diesel::prelude::*;
use serde_json::Value;
use sipas::db::schema::{responses, survey_tokens, transactions};
use sipas::db_run;
use sipas::rollup::stored_count;

use crate::helpers::{TestApp, full_answers};
use crate::on_both_databases;

on_both_databases!(
    qr_code_leads_to_a_survey_that_is_stored,
    invalid_answers_are_shown_next_to_their_questions,
    a_link_is_used_once_even_under_fifty_concurrent_submissions,
    unknown_expired_and_used_links_have_their_own_pages,
    the_transaction_rating_is_kept_on_the_dossier,
    english_answers_and_the_email_channel_are_recorded,
    the_survey_page_is_small_and_self_contained,
);

/// Decodes a QR code PNG into its text.
fn decode_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    let (w, h) = (info.width as usize, info.height as usize);
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("decodes").1
}

async fn qr_code_leads_to_a_survey_that_is_stored(app: TestApp) {
    let issued = app.issue_survey("HS-QR-1", Some("sipas")).await;
    let png = app
        .client
        .get(issued["qr_png_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(png.status(), 200);
    assert_eq!(png.headers()["content-type"], "image/png");
    let scanned = decode_qr(&png.bytes().await.unwrap());
    assert!(
        scanned.eq_ignore_ascii_case(issued["survey_url"].as_str().unwrap()),
        "{scanned}"
    );

    let svg = app
        .client
        .get(issued["qr_svg_url"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(svg.status(), 200);
    assert!(svg.text().await.unwrap().contains("<svg"));

    // Follow the URL exactly as a phone camera read it (the whole form on one page; the steps
    // are tested in `pages`).
    let page = app
        .client
        .get(format!("{scanned}?layout=all"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("lang=\"vi\""));
    assert!(html.contains("Sở Tư pháp"), "the agency is named");
    assert!(html.contains("Rất hài lòng") && html.contains("Không trả lời"));
    assert!(html.contains("name=\"A1\"") && html.contains("name=\"OVERALL\""));
    assert!(!html.contains("<script"), "works without JavaScript");

    let form = app.state.forms.latest("sipas").unwrap();
    let mut fields = full_answers(&form);
    let opened = extract_hidden(&html, "opened");
    fields.push(("opened".into(), opened));
    let response = app.submit(&scanned, &fields).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Cảm ơn"));

    let conn = &mut app.conn();
    type Row = (
        String,
        String,
        i64,
        String,
        Option<String>,
        Option<chrono::NaiveDateTime>,
    );
    let stored: Vec<Row> = db_run!(conn: {
        responses::table
            .select((responses::id, responses::form_code, responses::form_version, responses::channel, responses::respondent_type, responses::opened_at))
            .load(conn)
    })
    .unwrap();
    assert_eq!(stored.len(), 1);
    let (id, form_code, version, channel, respondent_type, opened_at) = &stored[0];
    assert_eq!(
        (form_code.as_str(), *version, channel.as_str()),
        ("sipas", 1, "qr")
    );
    assert_eq!(respondent_type.as_deref(), Some("individual"));
    assert!(opened_at.is_some(), "the signed opening time was recorded");
    let stored_answers = sipas::survey::stored::decode(
        &db_run!(conn: {
            responses::table.find(id).select(responses::answers).first::<String>(conn)
        })
        .unwrap(),
    )
    .unwrap();
    assert_eq!(stored_answers.len(), form.questions().count());
    assert!(stored_answers.contains(&("A1".into(), Some(4), None)));
    assert!(stored_answers.contains(&(
        "RESPONDENT_TYPE".into(),
        Some(1),
        Some("individual".into())
    )));

    // Rollups counted the response and each answer level in the same transaction.
    let mut counted = |q: &str, level: i64| stored_count(conn, |_| true, q, level).unwrap();
    assert_eq!(counted("_responses", 0), 1);
    assert_eq!(counted("A1", 4), 1);
    assert_eq!(counted("OVERALL", 4), 1);

    let spent: Vec<Option<chrono::NaiveDateTime>> =
        db_run!(conn: { survey_tokens::table.select(survey_tokens::spent_at).load(conn) }).unwrap();
    assert!(spent[0].is_some());
}

fn extract_hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("hidden field {name}"))
        + marker.len();
    html[start..].split('"').next().unwrap().to_string()
}

async fn invalid_answers_are_shown_next_to_their_questions(app: TestApp) {
    let issued = app.issue_survey("HS-INVALID", Some("sipas")).await;
    let url = issued["survey_url"].as_str().unwrap();
    let form = app.state.forms.latest("sipas").unwrap();
    let mut fields: Vec<(String, String)> = full_answers(&form)
        .into_iter()
        .filter(|(k, _)| k != "OVERALL" && k != "B2")
        .collect();
    fields.retain(|(k, _)| k != "A3");
    fields.push(("A3".into(), "9".into()));
    fields.push(("EXPECT".into(), "speed".into()));
    fields.push(("EXPECT".into(), "online".into()));
    fields.push(("EXPECT".into(), "posting".into()));
    let response = app.submit(url, &fields).await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    for code in ["OVERALL", "B2", "A3", "EXPECT"] {
        assert!(
            html.contains(&format!("id=\"err-{code}\"")),
            "error shown for {code}"
        );
    }
    assert!(html.contains("Vui lòng trả lời câu hỏi này."));
    assert!(html.contains("Chỉ chọn tối đa 3 phương án."));
    // Answers already given are kept: A1 was answered 4.
    assert!(
        html.contains("name=\"A1\" value=\"4\" checked"),
        "answers kept"
    );
    assert!(html.contains("Cán bộ nhiệt tình"), "free text kept");

    let conn = &mut app.conn();
    let count: i64 = db_run!(conn: { responses::table.count().get_result(conn) }).unwrap();
    assert_eq!(count, 0);
    let spent: i64 = db_run!(conn: {
        survey_tokens::table.filter(survey_tokens::spent_at.is_not_null()).count().get_result(conn)
    })
    .unwrap();
    assert_eq!(spent, 0, "an invalid submission does not spend the token");
    // And the link still works.
    assert_eq!(app.client.get(url).send().await.unwrap().status(), 200);
}

async fn a_link_is_used_once_even_under_fifty_concurrent_submissions(app: TestApp) {
    let issued = app.issue_survey("HS-RACE-50", Some("sipas")).await;
    let url = issued["survey_url"].as_str().unwrap().to_string();
    let fields = full_answers(&app.state.forms.latest("sipas").unwrap());
    let submissions = (0..50).map(|_| app.submit(&url, &fields));
    let statuses: Vec<u16> = futures_util::future::join_all(submissions)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        49,
        "{statuses:?}"
    );
    let conn = &mut app.conn();
    let count: i64 = db_run!(conn: { responses::table.count().get_result(conn) }).unwrap();
    assert_eq!(count, 1);
    let n = stored_count(conn, |_| true, "_responses", 0).unwrap();
    assert_eq!(n, 1, "rollups counted it once");
}

async fn unknown_expired_and_used_links_have_their_own_pages(app: TestApp) {
    let unknown = app
        .client
        .get(app.url("/s/AAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("Không tìm thấy phiếu khảo sát")
    );
    let garbage = app
        .client
        .get(app.url("/s/not-a-token?lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status(), 404);
    assert!(garbage.text().await.unwrap().contains("Survey not found"));
    let qr = app
        .client
        .get(app.url("/s/AAAAAAAAAAAAAAAAAAAAAAAAAA/qr.png"))
        .send()
        .await
        .unwrap();
    assert_eq!(qr.status(), 404);

    let issued = app.issue_survey("HS-EXPIRED", None).await;
    let url = issued["survey_url"].as_str().unwrap();
    let conn = &mut app.conn();
    db_run!(conn: {
        diesel::update(survey_tokens::table)
            .set(survey_tokens::expires_at.eq(sipas::db::now() - chrono::Duration::minutes(1)))
            .execute(conn)
    })
    .unwrap();
    let expired = app.client.get(url).send().await.unwrap();
    assert_eq!(expired.status(), 410);
    assert!(expired.text().await.unwrap().contains("đã hết hạn"));
    let fields = full_answers(&app.state.forms.latest("transaction").unwrap());
    let late = app.submit(url, &fields).await;
    assert_eq!(late.status(), 410);
    let count: i64 = db_run!(conn: { responses::table.count().get_result(conn) }).unwrap();
    assert_eq!(count, 0);

    let issued = app.issue_survey("HS-USED", None).await;
    let url = issued["survey_url"].as_str().unwrap();
    assert_eq!(app.submit(url, &fields).await.status(), 200);
    let used = app
        .client
        .get(format!("{url}?lang=en"))
        .send()
        .await
        .unwrap();
    assert_eq!(used.status(), 409);
    assert!(used.text().await.unwrap().contains("already been answered"));
    // The QR code of a used link still renders (it may already be printed).
    let qr: Value = serde_json::json!(issued["qr_svg_url"]);
    assert_eq!(
        app.client
            .get(qr.as_str().unwrap())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn the_transaction_rating_is_kept_on_the_dossier(app: TestApp) {
    let issued = app.issue_survey("HS-RATED", None).await;
    assert_eq!(issued["form"], "transaction");
    let url = issued["survey_url"].as_str().unwrap();
    let fields = vec![
        ("OVERALL".to_string(), "1".to_string()),
        ("COMMENT".to_string(), "Chờ lâu".to_string()),
    ];
    assert_eq!(app.submit(url, &fields).await.status(), 200);
    let conn = &mut app.conn();
    let rating: Option<i64> = db_run!(conn: {
        transactions::table.filter(transactions::dossier_code.eq("HS-RATED")).select(transactions::rating).first(conn)
    })
    .unwrap();
    assert_eq!(
        rating,
        Some(1),
        "Decision 766 counts dossiers rated 'Không hài lòng'"
    );
}

async fn english_answers_and_the_email_channel_are_recorded(app: TestApp) {
    let issued = app.issue_survey("HS-EN", None).await;
    let url = format!(
        "{}?lang=en&via=link",
        issued["survey_url"].as_str().unwrap()
    );
    let page = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("lang=\"en\""));
    assert!(page.contains("Very satisfied"));
    assert!(page.contains("Tiếng Việt"), "a switch back to Vietnamese");
    let mut fields = vec![("OVERALL".to_string(), "3".to_string())];
    fields.push(("lang".into(), extract_hidden(&page, "lang")));
    fields.push(("via".into(), extract_hidden(&page, "via")));
    let done = app
        .submit(issued["survey_url"].as_str().unwrap(), &fields)
        .await;
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("Thank you"));
    let conn = &mut app.conn();
    let (language, channel): (String, String) =
        db_run!(conn: { responses::table.select((responses::language, responses::channel)).first(conn) }).unwrap();
    assert_eq!((language.as_str(), channel.as_str()), ("en", "link"));
}

async fn the_survey_page_is_small_and_self_contained(app: TestApp) {
    let issued = app.issue_survey("HS-SIZE", Some("sipas")).await;
    let page = app
        .client
        .get(format!(
            "{}?layout=all",
            issued["survey_url"].as_str().unwrap()
        ))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(
        page.headers()["referrer-policy"],
        "same-origin",
        "the token never leaks in Referer"
    );
    let html = page.text().await.unwrap();
    let css = app
        .client
        .get(app.url("/static/sipas.css"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let total = html.len() + css.len();
    assert!(
        total < 30 * 1024,
        "the full SIPAS form with its CSS is {total} bytes"
    );
    assert!(
        !html.contains("http://") || html.matches("http://").count() == 0,
        "no absolute (third-party) URLs"
    );
    assert!(!html.contains("https://"));
    // Every question is a fieldset with a legend, and so is the optional "contact me" choice;
    // every option is inside its label, and the contact field has its own.
    let questions = app.state.forms.latest("sipas").unwrap().questions().count();
    assert_eq!(html.matches("<fieldset").count(), questions + 1);
    assert_eq!(html.matches("<legend>").count(), questions + 1);
    assert!(html.contains("<label for=\"contact\">"));
    assert_eq!(
        html.matches("<label").count(),
        html.matches("<input type=\"radio\"").count()
            + html.matches("<input type=\"checkbox\"").count()
            + html.matches("<label for=").count()
    );
}
