//! The independent paper channel: sampling by the formula, reproducible draws, nobody twice,
//! worklists and printable forms with unique serials.

use std::collections::HashSet;

use diesel::prelude::*;
use sipas::audit::Actor;
use sipas::db::schema::{audit_events, transactions};
use sipas::db_run;
use sipas::paper::sampling::{self, SampleRequest};
use sipas::periods::{self, PeriodInput};
use sipas::report::stats::required_sample;

use crate::helpers::TestApp;
use crate::on_both_databases;
use crate::security::{TEST_PASSWORD, create_user, sign_in, sign_in_admin, unit_id};

on_both_databases!(
    sample_sizes_follow_the_formula_and_draws_are_reproducible,
    worklists_and_printable_forms_carry_unique_serials
);

fn year() -> String {
    sipas::db::now().format("%Y").to_string()
}

/// Fills a year of dossiers and creates two periods covering the same days.
fn prepare(app: &TestApp) {
    let conn = &mut app.conn();
    let offset = app.state.settings.utc_offset_value().unwrap();
    sipas::synthetic::generate(
        conn,
        &app.state.forms,
        1200,
        200,
        sipas::db::now(),
        11,
        offset,
    )
    .unwrap();
    let y: i32 = year().parse().unwrap();
    for code in ["P1", "P2"] {
        let input = PeriodInput {
            code: code.into(),
            name_vi: format!("Năm {y}"),
            name_en: format!("Year {y}"),
            kind: "year".into(),
            starts_on: chrono::NaiveDate::from_ymd_opt(y, 1, 1).unwrap(),
            ends_on: chrono::NaiveDate::from_ymd_opt(y, 12, 31).unwrap(),
            status: "open".into(),
        };
        periods::save(conn, &Actor::cli(), None, &input).unwrap();
    }
}

fn request(period: &str, seed: u64) -> SampleRequest {
    SampleRequest {
        period_code: period.into(),
        unit_codes: vec!["STP".into(), "SXD".into(), "X-TAN-LAP".into()],
        seed: Some(seed),
        margin: 0.05,
        quota: None,
        reserve_share: 0.2,
        by_procedure: true,
        form_code: "sipas".into(),
    }
}

fn members(app: &TestApp, sample_id: &str) -> Vec<(String, String)> {
    let conn = &mut app.conn();
    sampling::worklist(conn, sample_id, None)
        .unwrap()
        .into_iter()
        .map(|r| (r.dossier_code, r.role))
        .collect()
}

async fn sample_sizes_follow_the_formula_and_draws_are_reproducible(app: TestApp) {
    prepare(&app);
    let offset = app.state.settings.utc_offset_value().unwrap();
    let draw = |period: &str, seed| {
        let conn = &mut app.conn();
        sampling::draw(
            conn,
            &app.state.secret,
            &app.state.forms,
            &Actor::cli(),
            &request(period, seed),
            offset,
        )
        .unwrap()
    };
    let first = draw("P1", 99);
    let y: i32 = year().parse().unwrap();
    let from = chrono::NaiveDate::from_ymd_opt(y, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        - chrono::Duration::hours(7);
    let until = chrono::NaiveDate::from_ymd_opt(y + 1, 1, 1)
        .unwrap()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        - chrono::Duration::hours(7);
    for unit in &first.units {
        let id = unit_id(&app, &unit.unit_code);
        let conn = &mut app.conn();
        let n: i64 = db_run!(conn: {
            transactions::table
                .filter(transactions::unit_id.eq(&id))
                .filter(transactions::completed_at.ge(from))
                .filter(transactions::completed_at.lt(until))
                .count()
                .get_result(conn)
        })
        .unwrap();
        assert_eq!(
            unit.population, n,
            "{}: the frame is every dossier completed in the period",
            unit.unit_code
        );
        assert_eq!(
            unit.required as u64,
            required_sample(n as u64, 0.05),
            "{}",
            unit.unit_code
        );
        assert_eq!(unit.drawn, unit.required.min(n));
        assert_eq!(
            unit.reserve,
            ((unit.required as f64 * 0.2).ceil() as i64).min(n - unit.drawn)
        );
    }
    let first_members = members(&app, &first.id);
    let unique: HashSet<&String> = first_members.iter().map(|(d, _)| d).collect();
    assert_eq!(
        unique.len(),
        first_members.len(),
        "no dossier twice in a sample"
    );

    // Same seed, another period over the same days: the same people.
    let again = draw("P2", 99);
    assert_eq!(
        members(&app, &again.id),
        first_members,
        "reproducible from the seed"
    );
    // Same period again: nobody already drawn in the period is drawn twice.
    let second = draw("P1", 99);
    let second_members: HashSet<String> = members(&app, &second.id)
        .into_iter()
        .map(|(d, _)| d)
        .collect();
    assert!(
        second_members.iter().all(|d| !unique.contains(d)),
        "nobody twice in a period"
    );

    let conn = &mut app.conn();
    let draws: i64 = db_run!(conn: { audit_events::table.filter(audit_events::action.eq("sample.draw")).count().get_result(conn) }).unwrap();
    assert_eq!(draws, 3, "every draw is audited");
}

async fn worklists_and_printable_forms_carry_unique_serials(app: TestApp) {
    prepare(&app);
    let admin = sign_in_admin(&app).await;
    let response = admin
        .post(
            &app,
            "/admin/samples",
            &[
                ("period", "P1"),
                ("units", "STP, SXD"),
                ("margin", "0.05"),
                ("reserve", "0.2"),
                ("seed", "5"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let location = crate::security::location(&response).unwrap();
    let sample_id = location
        .trim_start_matches("/paper/samples/")
        .split('?')
        .next()
        .unwrap()
        .to_string();
    let page = admin
        .page(&app, &format!("/paper/samples/{sample_id}"))
        .await;
    assert!(page.contains("STP") && page.contains("seed"));

    let csv = admin
        .get(&app, &format!("/paper/samples/{sample_id}/worklist.csv"))
        .await
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with('\u{feff}'), "UTF-8 BOM for Excel");
    let rows: Vec<&str> = csv.lines().skip(1).collect();
    let expected = members(&app, &sample_id).len();
    assert_eq!(rows.len(), expected);
    let serials: HashSet<&str> = rows.iter().map(|r| r.split(',').next().unwrap()).collect();
    assert_eq!(serials.len(), rows.len(), "every form has its own serial");
    assert!(
        serials
            .iter()
            .all(|s| sipas::paper::serial::normalize(s).as_deref() == Some(*s))
    );

    let stp = unit_id(&app, "STP");
    let forms = admin
        .page(
            &app,
            &format!("/paper/samples/{sample_id}/forms?unit={stp}"),
        )
        .await;
    let stp_rows: Vec<&&str> = rows.iter().filter(|r| r.contains(",STP,")).collect();
    assert_eq!(
        forms.matches("<section class=\"paper\">").count(),
        stp_rows.len(),
        "one form per page"
    );
    for row in stp_rows {
        assert!(
            forms.contains(row.split(',').next().unwrap()),
            "the serial is printed"
        );
    }
    assert_eq!(
        forms.matches("<svg").count(),
        forms.matches("<section class=\"paper\">").count(),
        "a QR code on every form"
    );
    assert!(forms.contains("Rất hài lòng") && forms.contains("A1"));

    // The post office may download worklists; an agency may not.
    create_user(
        &app,
        "buudien1",
        sipas::accounts::Role::Collector,
        None,
        Some("BUU-DIEN"),
    );
    create_user(
        &app,
        "sotuphap",
        sipas::accounts::Role::Agency,
        Some("STP"),
        None,
    );
    let collector = sign_in(&app, "buudien1", TEST_PASSWORD).await;
    assert_eq!(
        collector
            .get(&app, &format!("/paper/samples/{sample_id}/worklist.csv"))
            .await
            .status(),
        200
    );
    assert!(
        collector
            .page(&app, "/collector")
            .await
            .contains(&sample_id)
    );
    let agency = sign_in(&app, "sotuphap", TEST_PASSWORD).await;
    assert_eq!(
        agency
            .get(&app, &format!("/paper/samples/{sample_id}/worklist.csv"))
            .await
            .status(),
        403
    );
}
