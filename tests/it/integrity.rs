//! Trustworthy results (issue #8): the signals find simulated gaming units and spare honest
//! ones, held responses change no published figure until accepted, reviews are audited, bad
//! ratings open cases with deadlines and without identity data.

use diesel::prelude::*;
use sipas::db::schema::{
    rating_cases, response_signals, responses, rollup_cells, rollup_procedure_cells,
};
use sipas::db_run;
use sipas::integrity::review::{Decision, decide, held};
use sipas::integrity::{simulate, units as unit_signals};
use sipas::report::Slice;
use sipas::report::period::Period;

use crate::helpers::{TestApp, full_answers};
use crate::on_both_databases;

on_both_databases!(
    signals_flag_gaming_units_and_spare_honest_ones,
    held_responses_wait_for_review,
    bad_ratings_open_cases_without_identity,
    panel_review_and_case_pages,
    bursts_from_one_network_are_flagged,
);

async fn signals_flag_gaming_units_and_spare_honest_ones(app: TestApp) {
    let state = app.state.clone();
    let (d, sim_label) = actix_web::rt::task::spawn_blocking(move || {
        let mut conn = state.pool.get().expect("connection");
        let policy = state.policies.integrity.clone();
        let sim = simulate::build(
            &mut conn,
            &state.forms,
            &state.secret,
            &policy,
            2026,
            40,
            20,
            sipas::db::now(),
        )
        .expect("simulation");
        let opts = state.policies.report;
        let assessed = unit_signals::assess(&mut conn, &state.forms, &opts, &policy, &sim.period)
            .expect("assess");
        for u in &assessed {
            let truth = sim
                .units
                .iter()
                .find(|(c, _)| *c == u.unit.code)
                .map(|(_, s)| s.code());
            eprintln!(
                "{} {:?} evidence {} flags {:?}",
                u.unit.code,
                truth,
                u.evidence,
                u.flags()
            );
        }
        (simulate::measure(&sim, &assessed), sim.period.label())
    })
    .await
    .expect("join");
    println!(
        "integrity detection ({sim_label}): gaming {}/{} = {:.1} %, honest {}/{} = {:.1} %",
        d.gaming_flagged,
        d.gaming,
        d.gaming_rate() * 100.0,
        d.honest_flagged,
        d.honest,
        d.honest_rate() * 100.0
    );
    assert!(d.gaming_rate() >= 0.9, "gaming units flagged: {d:?}");
    assert!(d.honest_rate() <= 0.05, "honest units flagged: {d:?}");
}

fn local_month(app: &TestApp) -> Period {
    let offset = app.state.settings.utc_offset_value().expect("offset");
    let today = sipas::calendar::local_day(sipas::db::now(), offset);
    Period::parse(&today.format("%Y-%m").to_string()).expect("period")
}

/// Answers a survey of a freshly issued SIPAS link from the given client.
async fn answer(app: &TestApp, dossier: &str, agent: &str, level: &str) -> reqwest::StatusCode {
    let issued = app.issue_survey(dossier, Some("sipas")).await;
    let url = issued["survey_url"].as_str().expect("url").to_string();
    let form = app.state.forms.latest("sipas").expect("form");
    let mut fields = full_answers(&form);
    for (code, value) in fields.iter_mut() {
        if let Some(q) = form.question(code)
            && q.kind == sipas::forms::QuestionType::Scale5
        {
            *value = level.to_string();
        }
    }
    app.client
        .post(&url)
        .header("User-Agent", agent)
        .form(&fields)
        .send()
        .await
        .expect("submit")
        .status()
}

fn index_of(app: &TestApp, include_held: bool) -> (u64, Option<f64>) {
    let mut conn = app.conn();
    let unit = sipas::units::find_by_code(&mut conn, "STP")
        .unwrap()
        .unwrap();
    let opts = app.state.policies.report;
    let slice = Slice {
        include_held,
        ..Slice::default()
    };
    let report = sipas::report::unit_report(
        &mut conn,
        &app.state.forms,
        &opts,
        &unit,
        &local_month(app),
        &slice,
    )
    .unwrap();
    let figures = report.sipas.expect("sipas figures");
    (figures.responses, figures.index.value)
}

async fn held_responses_wait_for_review(app: TestApp) {
    let app = app
        .restart(|s| {
            s.report_min_n = 1;
            s.hold_rules = "same_device,fast_issue".into();
        })
        .await;
    // The counter registers with the same client (reqwest's default agent) that then answers:
    // the same device, seconds after issue, so the default rules hold both.
    assert_eq!(answer(&app, "HOLD-1", "", "5").await, 200);
    assert_eq!(answer(&app, "HOLD-2", "", "5").await, 200);
    let mut conn = app.conn();
    let statuses: Vec<String> = {
        let c = &mut conn;
        db_run!(c: { responses::table.select(responses::status).load(c) })
    }
    .unwrap();
    assert_eq!(statuses, vec!["held".to_string(), "held".to_string()]);
    let signals: Vec<String> = {
        let c = &mut conn;
        db_run!(c: { response_signals::table.select(response_signals::signals).load(c) })
    }
    .unwrap();
    assert!(
        signals
            .iter()
            .all(|s| s.contains("same_device") && s.contains("fast_issue")),
        "{signals:?}"
    );
    // Nothing published moves while they are held; the report can show them on request.
    let (n, _) = index_of(&app, false);
    assert_eq!(n, 0);
    let (n_held, value_held) = index_of(&app, true);
    assert_eq!(n_held, 2);
    assert_eq!(value_held, Some(100.0));
    // Rollups rebuilt from the stored answers (the first start after an upgrade) leave held
    // answers out too.
    {
        let c = &mut conn;
        db_run!(c: {
            diesel::delete(rollup_cells::table).execute(c).unwrap();
            diesel::delete(rollup_procedure_cells::table).execute(c).unwrap();
        });
    }
    drop(conn);
    let app = app
        .restart(|s| {
            s.report_min_n = 1;
            s.hold_rules = "same_device,fast_issue".into();
        })
        .await;
    let mut conn = app.conn();
    assert_eq!(index_of(&app, false).0, 0);
    assert_eq!(index_of(&app, true).0, 2);
    let waiting = held(&mut conn, None, 100).unwrap();
    assert_eq!(waiting.len(), 2);
    let admin = sipas::audit::Actor {
        id: None,
        name: "reviewer".into(),
    };
    let offset = app.state.settings.utc_offset_value().unwrap();
    decide(
        &mut conn,
        &app.state.forms,
        &admin,
        &waiting[0].response_id,
        &Decision::Accept,
        offset,
    )
    .unwrap();
    // A rejection needs a reason, and a decided response cannot be decided again.
    assert!(
        decide(
            &mut conn,
            &app.state.forms,
            &admin,
            &waiting[1].response_id,
            &Decision::Reject { reason: " ".into() },
            offset
        )
        .is_err()
    );
    decide(
        &mut conn,
        &app.state.forms,
        &admin,
        &waiting[1].response_id,
        &Decision::Reject {
            reason: "Điền tại quầy / filled in at the counter".into(),
        },
        offset,
    )
    .unwrap();
    assert!(
        decide(
            &mut conn,
            &app.state.forms,
            &admin,
            &waiting[0].response_id,
            &Decision::Accept,
            offset
        )
        .is_err()
    );
    let (n, value) = index_of(&app, false);
    assert_eq!((n, value), (1, Some(100.0)));
    assert_eq!(index_of(&app, true).0, 1, "nothing is held any more");
    // Rejected stays stored, out of the index.
    let count: i64 = {
        let c = &mut conn;
        db_run!(c: { responses::table.count().get_result(c) })
    }
    .unwrap();
    assert_eq!(count, 2);
    // Both decisions are audited, and the chain holds.
    let events = sipas::audit::verify(&mut conn)
        .expect("readable")
        .expect("chain intact");
    assert!(events >= 2);
    let actions: Vec<String> = {
        let c = &mut conn;
        db_run!(c: {
            sipas::db::schema::audit_events::table
                .filter(sipas::db::schema::audit_events::object_type.eq("response"))
                .select(sipas::db::schema::audit_events::action)
                .order(sipas::db::schema::audit_events::seq)
                .load(c)
        })
    }
    .unwrap();
    assert_eq!(
        actions,
        vec!["response.accept".to_string(), "response.reject".to_string()]
    );
}

async fn bad_ratings_open_cases_without_identity(app: TestApp) {
    let app = app.restart(|s| s.hold_rules = String::new()).await;
    assert_eq!(answer(&app, "BAD-0001", "Phone", "2").await, 200);
    assert_eq!(answer(&app, "GOOD-0001", "Phone", "5").await, 200);
    let mut conn = app.conn();
    let cases: Vec<(String, i64, String, chrono::NaiveDate, Option<String>)> = { let c = &mut conn; db_run!(c: {
        rating_cases::table
            .select((rating_cases::id, rating_cases::overall_level, rating_cases::answers, rating_cases::due_on, rating_cases::comment))
            .load(c)
    }) }.unwrap();
    assert_eq!(cases.len(), 1, "only the bad rating opens a case");
    let (_, level, answers, due_on, comment) = &cases[0];
    assert_eq!(*level, 2);
    assert!(
        !answers.contains("BAD-0001")
            && comment.as_deref().is_some_and(|c| !c.contains("BAD-0001"))
    );
    let offset = app.state.settings.utc_offset_value().unwrap();
    let today = sipas::calendar::local_day(sipas::db::now(), offset);
    assert_eq!(*due_on, sipas::calendar::add_working_days(today, 15));
    assert!(
        (*due_on - today).num_days() >= 19,
        "15 working days span three weeks"
    );
    // Overdue once the deadline has passed.
    assert_eq!(
        sipas::integrity::cases::overdue_count(&mut conn, today).unwrap(),
        0
    );
    assert_eq!(
        sipas::integrity::cases::overdue_count(&mut conn, *due_on + chrono::Duration::days(1))
            .unwrap(),
        1
    );
    // Nothing of the response's origin is stored with the case or the signals.
    let hashes: Vec<Option<String>> = {
        let c = &mut conn;
        db_run!(c: { response_signals::table.select(response_signals::network_hash).load(c) })
    }
    .unwrap();
    assert!(
        hashes
            .iter()
            .flatten()
            .all(|h| h.len() == 32 && !h.contains("127.0.0.1"))
    );
}

/// The pages: the panel ranks the unit with held answers, its page shows the numbers and
/// the held answers; accepting one over HTTP moves it; a bad rating's case is followed up and
/// closed by the agency, and the agency page never shows identity data.
async fn panel_review_and_case_pages(app: TestApp) {
    let app = app
        .restart(|s| s.hold_rules = "same_device,fast_issue".into())
        .await;
    assert_eq!(answer(&app, "PANEL-1", "", "2").await, 200);
    let admin = crate::helpers::staff::sign_in_admin(&app).await;
    let panel = admin.page(&app, "/admin/integrity").await;
    assert!(
        panel.contains("integrity-units") && panel.contains("STP"),
        "{panel}"
    );
    assert!(panel.contains("Cùng thiết bị với quầy"));
    let stp = crate::helpers::staff::unit_id(&app, "STP");
    let page = admin
        .page(&app, &format!("/admin/integrity/units/{stp}"))
        .await;
    assert!(
        page.contains("held-responses") && page.contains("unit-signals"),
        "{page}"
    );
    let response_id: String = {
        let mut conn = app.conn();
        let c = &mut conn;
        db_run!(c: { response_signals::table.select(response_signals::response_id).first(c) })
            .unwrap()
    };
    let back = format!("/admin/integrity/units/{stp}");
    let posted = admin
        .post(
            &app,
            &format!("/admin/integrity/responses/{response_id}"),
            &[("decision", "accept"), ("back", back.as_str())],
        )
        .await;
    assert_eq!(posted.status(), 303);
    let page = admin.page(&app, &back).await;
    assert!(!page.contains("held-responses"));
    // The bad rating opened a case; the agency records an action and closes it.
    let overview = admin.page(&app, "/admin").await;
    assert!(overview.contains("overdue-cases"));
    crate::helpers::staff::create_user(
        &app,
        "stp-agency",
        sipas::accounts::Role::Agency,
        Some("STP"),
        None,
    );
    let agency =
        crate::helpers::staff::sign_in(&app, "stp-agency", crate::helpers::staff::TEST_PASSWORD)
            .await;
    let list = agency.page(&app, "/cases").await;
    let case_id: String = {
        let mut conn = app.conn();
        let c = &mut conn;
        db_run!(c: { rating_cases::table.select(rating_cases::id).first(c) }).unwrap()
    };
    assert!(list.contains(&case_id));
    let case = agency.page(&app, &format!("/cases/{case_id}")).await;
    assert!(
        case.contains("case-answers") && !case.contains("PANEL-1"),
        "{case}"
    );
    let posted = agency
        .post(
            &app,
            &format!("/cases/{case_id}"),
            &[("note", "Đã gọi điện xin lỗi / apologised"), ("close", "1")],
        )
        .await;
    assert_eq!(posted.status(), 303);
    let case = agency.page(&app, &format!("/cases/{case_id}")).await;
    assert!(
        case.contains("apologised") && !case.contains("case-action\""),
        "{case}"
    );
    let mut conn = app.conn();
    let c = &mut conn;
    let status: String =
        db_run!(c: { rating_cases::table.select(rating_cases::status).first(c) }).unwrap();
    assert_eq!(status, "closed");
}

/// The burst rule reads the submitter's recent answers in the same statement as the link: with
/// a threshold of 3, the first two answers from one address are not a burst, the third and
/// fourth are.
async fn bursts_from_one_network_are_flagged(app: TestApp) {
    let app = app
        .restart(|s| {
            s.integrity_burst_count = 3;
            s.hold_rules = String::new();
        })
        .await;
    for i in 1..=4 {
        assert_eq!(answer(&app, &format!("BURST-{i}"), "", "4").await, 200);
    }
    let mut conn = app.conn();
    let flags: Vec<bool> = {
        let c = &mut conn;
        db_run!(c: {
            response_signals::table
                .order(response_signals::submitted_at.asc())
                .select(response_signals::burst)
                .load(c)
        })
    }
    .unwrap();
    assert_eq!(flags, vec![false, false, true, true]);
}
