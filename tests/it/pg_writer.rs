//! The group commit under contention: two writers on one database never deadlock on the
//! rollups, every acknowledged answer and registration is stored exactly once, and the rollups
//! equal a recount.

use diesel::prelude::*;
use serde_json::Value;
use sipas::db::schema::{dossier_rollups, responses, transactions};
use sipas::db_run;
use sipas::rollup::stored_count;
use sipas::survey::response::{NewResponse, Submission};
use sipas::survey::store::store_batch;

use crate::helpers::{TestApp, full_answers, transaction_body};
use crate::on_both_databases;

on_both_databases!(
    two_writers_on_the_same_cells_never_deadlock,
    concurrent_registrations_of_one_dossier_store_it_once,
    a_batch_of_answers_with_repeated_tokens_stores_each_once,
);

/// Answers about every (unit, channel, respondent type) cell in `cells`, as one batch.
fn batch_over(
    form: &sipas::forms::Form,
    cells: &[(String, &str, &str)],
    at: chrono::NaiveDateTime,
) -> Vec<Submission> {
    let valid = sipas::forms::answers::validate(form, &full_answers(form)).expect("valid answers");
    cells
        .iter()
        .map(|(unit_id, channel, respondent_type)| Submission {
            token_hash: None,
            response: NewResponse {
                id: uuid::Uuid::now_v7().to_string(),
                unit_id: unit_id.clone(),
                procedure_id: None,
                form_code: form.code.clone(),
                form_version: form.version,
                channel: channel.to_string(),
                respondent_type: Some(respondent_type.to_string()),
                language: "vi".into(),
                issued_at: None,
                opened_at: None,
                submitted_at: at,
                provenance: None,
            },
            scores: sipas::forms::scoring::respondent_scores(form, &valid.answers),
            answers: valid.answers.clone(),
            dossier_rating: None,
            transaction_id: None,
            screening: None,
        })
        .collect()
}

/// Two writers (as two instances of sipas on one database would) store batches touching the
/// same few dozen rollup cells at the same time; each batch lists them in its own order. Cells
/// locked in a different order by each made PostgreSQL abort a whole batch (40P01).
async fn two_writers_on_the_same_cells_never_deadlock(app: TestApp) {
    let form = app.state.forms.latest("sipas").expect("sipas form");
    let units = {
        let conn = &mut app.conn();
        sipas::units::list(conn).expect("units")
    };
    let mut cells = Vec::new();
    for unit in units.iter().take(12) {
        for channel in ["qr", "link", "kiosk"] {
            for respondent_type in ["individual", "organisation"] {
                cells.push((unit.id.clone(), channel, respondent_type));
            }
        }
    }
    let offset = app.state.settings.utc_offset_value().expect("offset");
    let at = sipas::db::now();
    const ROUNDS: usize = 25;
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let pool = app.state.pool.clone();
            let form = form.clone();
            let mut cells = cells.clone();
            std::thread::spawn(move || {
                let conn = &mut pool.get().expect("connection");
                let mut failures = Vec::new();
                for round in 0..ROUNDS {
                    // Opposite orders in the two writers, shifted every round.
                    cells.rotate_left(round % 7 + 1);
                    let mut batch = batch_over(&form, &cells, at);
                    if w == 1 {
                        batch.reverse();
                    }
                    if let Err(e) = store_batch(conn, &batch, offset) {
                        failures.push(e.to_string());
                    }
                }
                failures
            })
        })
        .collect();
    let failures: Vec<String> = writers
        .into_iter()
        .flat_map(|w| w.join().expect("writer thread"))
        .collect();
    assert!(failures.is_empty(), "failed batches: {failures:?}");
    let conn = &mut app.conn();
    let stored: i64 = db_run!(conn: { responses::table.count().get_result(conn) }).unwrap();
    let expected = (2 * ROUNDS * cells.len()) as i64;
    assert_eq!(stored, expected);
    let counted = stored_count(conn, |_| true, "_responses", 0).unwrap();
    assert_eq!(counted, expected, "rollups equal the recount");
}

/// The same dossier registered twenty times at once: one 201, the same survey for every other
/// request, one row, counted once in the Decision 766 rollups.
async fn concurrent_registrations_of_one_dossier_store_it_once(app: TestApp) {
    let body = transaction_body("HS-TWENTY-AT-ONCE");
    let mut others: Vec<Value> = (0..30)
        .map(|i| transaction_body(&format!("HS-OTHER-{i}")))
        .collect();
    let requests = (0..20)
        .map(|_| body.clone())
        .chain(others.drain(..))
        .map(|b| {
            let app = &app;
            async move {
                let r = app.post_transaction(&b).await;
                let status = r.status().as_u16();
                (b, status, r.json::<Value>().await.expect("json"))
            }
        });
    let answers = futures_util::future::join_all(requests).await;
    let same: Vec<_> = answers
        .iter()
        .filter(|(b, _, _)| b["dossier_code"] == "HS-TWENTY-AT-ONCE")
        .collect();
    assert_eq!(same.iter().filter(|(_, s, _)| *s == 201).count(), 1);
    assert_eq!(same.iter().filter(|(_, s, _)| *s == 200).count(), 19);
    let ids: std::collections::HashSet<&str> = same
        .iter()
        .map(|(_, _, v)| v["transaction_id"].as_str().expect("id"))
        .collect();
    assert_eq!(ids.len(), 1, "one dossier for every answer");
    let tokens: std::collections::HashSet<&str> = same
        .iter()
        .map(|(_, _, v)| v["token"].as_str().expect("token"))
        .collect();
    assert_eq!(tokens.len(), 1, "one survey for every answer");
    assert!(
        answers
            .iter()
            .filter(|(b, _, _)| b["dossier_code"] != "HS-TWENTY-AT-ONCE")
            .all(|(_, s, _)| *s == 201)
    );
    let conn = &mut app.conn();
    let rows: i64 = db_run!(conn: { transactions::table.count().get_result(conn) }).unwrap();
    assert_eq!(rows, 31);
    let counted: Vec<i64> = db_run!(conn: {
        dossier_rollups::table.select(dossier_rollups::dossiers).load(conn)
    })
    .unwrap();
    assert_eq!(counted.iter().sum::<i64>(), 31, "each dossier counted once");
    // Every survey issued works.
    for (_, _, v) in answers.iter().take(21) {
        let url = v["survey_url"].as_str().expect("url");
        assert_eq!(app.client.get(url).send().await.unwrap().status(), 200);
    }
}

/// Several links, each answered several times at once: whatever lands in one group commit,
/// each link stores one answer and every other attempt is refused (409).
async fn a_batch_of_answers_with_repeated_tokens_stores_each_once(app: TestApp) {
    let mut links = Vec::new();
    for i in 0..8 {
        // Half on the dossier form, whose overall rating is stored on the dossier.
        let code = if i % 2 == 0 { "sipas" } else { "transaction" };
        let issued = app
            .issue_survey(&format!("HS-REPEAT-{i}"), Some(code))
            .await;
        let fields = full_answers(&app.state.forms.latest(code).unwrap());
        links.push((issued["survey_url"].as_str().unwrap().to_string(), fields));
    }
    let attempts = links
        .iter()
        .flat_map(|l| std::iter::repeat_n(l, 6))
        .map(|(url, fields)| app.submit(url, fields));
    let statuses: Vec<u16> = futures_util::future::join_all(attempts)
        .await
        .into_iter()
        .map(|r| r.status().as_u16())
        .collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        8,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        40,
        "{statuses:?}"
    );
    let conn = &mut app.conn();
    let stored: i64 = db_run!(conn: { responses::table.count().get_result(conn) }).unwrap();
    assert_eq!(stored, 8);
    assert_eq!(stored_count(conn, |_| true, "_responses", 0).unwrap(), 8);
    let rated: i64 = db_run!(conn: {
        transactions::table.filter(transactions::rating.is_not_null()).count().get_result(conn)
    })
    .unwrap();
    assert_eq!(rated, 4, "each dossier form answer rated its dossier once");
}
