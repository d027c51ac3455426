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
use crate::helpers::staff::{TEST_PASSWORD, create_user, sign_in, sign_in_admin, unit_id};
use crate::on_both_databases;

on_both_databases!(
    sample_sizes_follow_the_formula_and_draws_are_reproducible,
    worklists_and_printable_forms_carry_unique_serials,
    the_command_line_draws_lists_and_prints_worklists
);

fn year() -> String {
    sipas::db::now().format("%Y").to_string()
}

/// Fills a year of dossiers and creates two periods covering the same days.
pub(crate) fn prepare(app: &TestApp) {
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
            status: sipas::periods::PeriodStatus::Open,
        };
        periods::save(conn, &Actor::cli(), None, &input).unwrap();
    }
}

pub(crate) fn request(period: &str, seed: u64) -> SampleRequest {
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

/// The start of every collector test: a sample of one unit for period P1 (`quota` main forms)
/// and that unit's forms handed to the post office by `collector` in one batch. Returns the
/// sample, the batch and the post office.
pub(crate) fn hand_to_post(
    app: &TestApp,
    conn: &mut sipas::db::DbConn,
    (unit_code, quota, reserve_share, seed): (&str, u64, f64, u64),
    collector: &str,
    double_share: f64,
) -> (
    sampling::SampleSummary,
    sipas::paper::custody::Batch,
    sipas::collector_orgs::CollectorOrg,
) {
    let request = SampleRequest {
        unit_codes: vec![unit_code.into()],
        quota: Some(quota),
        reserve_share,
        ..request("P1", seed)
    };
    let offset = app.state.settings.utc_offset_value().unwrap();
    let sample = sampling::draw(
        conn,
        &app.state.secret,
        &app.state.forms,
        &Actor::cli(),
        &request,
        offset,
    )
    .unwrap();
    let post = sipas::collector_orgs::find_by_code(conn, "BUU-DIEN")
        .unwrap()
        .unwrap();
    let batch = sipas::paper::custody::create_batch(
        conn,
        &Actor::cli(),
        &sipas::paper::custody::BatchRequest {
            sample_id: sample.id.clone(),
            unit_id: unit_id(app, unit_code),
            collector_org_id: post.id.clone(),
            collector_name: collector.into(),
            include_reserve: false,
            double_share,
        },
    )
    .unwrap();
    (sample, batch, post)
}

/// `sipas ARGS` against the test database.
pub(crate) fn sipas_cli(app: &TestApp, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_sipas"))
        .args(args)
        .env_remove("SIPAS_CONFIG")
        .env("DATABASE_URL", &app.database_url)
        .env(
            "SIPAS_SECRET",
            crate::helpers::test_settings("").secret.unwrap(),
        )
        .env("SIPAS_FORMS_DIR", crate::helpers::forms_dir())
        .env("RUST_LOG", "warn")
        .envs(crate::helpers::audit_env(&app.state.settings))
        .output()
        .expect("the sipas binary runs")
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

/// `sipas sample draw|list|worklist` go through the administrators' use cases
/// (`paper::samples`): the same draw as the console, audited, and the same worklist.
async fn the_command_line_draws_lists_and_prints_worklists(app: TestApp) {
    prepare(&app);
    let text = |out: &std::process::Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let drawn = text(&sipas_cli(
        &app,
        &[
            "sample", "draw", "--period", "P1", "--units", "stp,SXD", "--seed", "7",
        ],
    ));
    let first = drawn.lines().next().unwrap_or_default();
    let sample_id = first
        .strip_prefix("sample ")
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("sample id in {drawn:?}"))
        .to_string();
    assert!(first.ends_with("(period P1, seed 7)"), "{first}");
    assert!(
        drawn.contains("\nSTP\tN=") && drawn.contains("\nSXD\tN="),
        "{drawn}"
    );

    let listed = text(&sipas_cli(&app, &["sample", "list"]));
    assert!(
        listed
            .lines()
            .any(|l| l.starts_with(&format!("{sample_id}\tP1\tseed 7\t2 units"))),
        "{listed}"
    );

    let csv = text(&sipas_cli(
        &app,
        &["sample", "worklist", "--sample", &sample_id],
    ));
    assert!(csv.starts_with('\u{feff}'), "UTF-8 BOM for Excel");
    let expected = members(&app, &sample_id);
    assert!(!expected.is_empty());
    assert_eq!(
        csv.lines().count(),
        expected.len() + 1,
        "a header and every member"
    );

    let missing = sipas_cli(&app, &["sample", "worklist", "--sample", "no-such-sample"]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("no sample `no-such-sample`"), "{stderr}");

    let conn = &mut app.conn();
    let draws: Vec<String> = db_run!(conn: {
        audit_events::table
            .filter(audit_events::action.eq("sample.draw"))
            .select(audit_events::actor_name)
            .load(conn)
    })
    .unwrap();
    assert_eq!(
        draws,
        vec![Actor::cli().name],
        "the draw is audited once, as the CLI"
    );
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
    let location = crate::helpers::staff::location(&response).unwrap();
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
    for row in &stp_rows {
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
    // Serial ↔ QR round trip: the first form's QR code decodes to the serial printed on it.
    let first_serial = stp_rows[0].split(',').next().unwrap();
    let svg_start = forms.find("<svg").unwrap();
    let svg_end = forms[svg_start..].find("</svg>").unwrap() + svg_start;
    assert_eq!(decode_svg_qr(&forms[svg_start..svg_end]), first_serial);

    // The post office may download the worklist of what it was handed; an agency may not.
    {
        let conn = &mut app.conn();
        let post = sipas::collector_orgs::find_by_code(conn, "BUU-DIEN")
            .unwrap()
            .unwrap();
        let request = sipas::paper::custody::BatchRequest {
            sample_id: sample_id.clone(),
            unit_id: stp.clone(),
            collector_org_id: post.id,
            collector_name: "Người phát".into(),
            include_reserve: true,
            double_share: 1.0,
        };
        sipas::paper::custody::create_batch(conn, &Actor::cli(), &request).unwrap();
    }
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
    let handed = collector
        .page(&app, &format!("/paper/samples/{sample_id}/worklist.csv"))
        .await;
    assert_eq!(handed.lines().count(), stp_rows.len() + 1, "STP only");
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

mod keying {
    use diesel::prelude::*;
    use sipas::accounts::Actor as Keyer;
    use sipas::accounts::Role;
    use sipas::audit::Actor;
    use sipas::db::schema::responses;
    use sipas::db_run;
    use sipas::paper::custody::{self, Custody};
    use sipas::paper::disputes;
    use sipas::paper::entry::{self, EntryError, Saved, Typing};
    use sipas::paper::sampling;
    use sipas::paper::status::CustodyStep;

    use crate::helpers::staff::{create_user, unit_id};
    use crate::helpers::{TestApp, full_answers};

    crate::on_both_databases!(batches_double_entry_and_adjudication);

    fn typing(answers: Vec<(String, String)>) -> Typing {
        Typing {
            answers,
            confirm_blank: false,
            started_at: sipas::db::now() - chrono::Duration::seconds(40),
            keystrokes: 35,
        }
    }

    async fn batches_double_entry_and_adjudication(app: TestApp) {
        super::prepare(&app);
        let offset = app.state.settings.utc_offset_value().unwrap();
        let conn = &mut app.conn();
        let (sample, batch, post) =
            super::hand_to_post(&app, conn, ("STP", 4, 0.5, 3), "Nguyễn Văn Bưu", 1.0);
        let serials: Vec<String> = sampling::worklist(conn, &sample.id, None)
            .unwrap()
            .into_iter()
            .filter(|r| r.role == "main")
            .map(|r| r.serial)
            .collect();
        assert_eq!(serials.len(), 4);
        assert_eq!(
            custody::custody(conn, &batch.id).unwrap(),
            Custody {
                issued: 4,
                delivered: 0,
                returned: 0,
                keyed: 0,
                verified: 0
            }
        );
        let mut delivered = serials.clone();
        delivered.push("AAAA-BBBB-CC".into());
        let marked = custody::mark(
            conn,
            &Actor::cli(),
            &batch.id,
            &delivered,
            CustodyStep::Delivered,
        )
        .unwrap();
        assert_eq!(
            (marked.changed, marked.unknown.len()),
            (4, 1),
            "an unknown serial is reported, not counted"
        );
        let returned: Vec<String> = serials[..3]
            .iter()
            .map(|s| s.to_lowercase().replace('-', ""))
            .collect();
        custody::mark(
            conn,
            &Actor::cli(),
            &batch.id,
            &returned,
            CustodyStep::Returned,
        )
        .unwrap();
        assert_eq!(
            custody::custody(conn, &batch.id).unwrap().return_rate(),
            Some(75.0)
        );

        let keyer = |name, role, unit, org| Keyer::of(&create_user(&app, name, role, unit, org));
        let a = keyer("nhaplieu-a", Role::Collector, None, Some("BUU-DIEN"));
        let b = keyer("nhaplieu-b", Role::Collector, None, Some("BUU-DIEN"));
        let judge = keyer("giamsat", Role::Collector, None, Some("BUU-DIEN"));
        let conn = &mut app.conn();
        let forms = &app.state.forms;
        // Forged or unknown serials are refused.
        assert!(entry::find(conn, forms, &a, "ZZZZ-ZZZZ-ZZ").is_err());
        let agency = keyer("coquan", Role::Agency, Some("STP"), None);
        let conn = &mut app.conn();
        assert!(
            entry::find(conn, forms, &agency, &serials[0]).is_err(),
            "only the collector organisation keys its forms"
        );

        let form = forms.latest("sipas").unwrap();
        let answers = full_answers(&form);
        // Form 1: both typings agree → verified, counted.
        let paper = entry::find(conn, forms, &a, &serials[0]).unwrap();
        assert_eq!(
            entry::save(conn, &a, &paper, &typing(answers.clone()), offset).unwrap(),
            Saved::AwaitingSecondEntry
        );
        let paper = entry::find(conn, forms, &a, &serials[0]).unwrap();
        assert!(
            matches!(
                entry::save(conn, &a, &paper, &typing(answers.clone()), offset),
                Err(EntryError::Other(_))
            ),
            "the second typing is someone else's"
        );
        assert_eq!(
            entry::save(conn, &b, &paper, &typing(answers.clone()), offset).unwrap(),
            Saved::Verified
        );
        // Form 2: typings differ on A1 → disputed until adjudicated.
        let paper = entry::find(conn, forms, &a, &serials[1]).unwrap();
        entry::save(conn, &a, &paper, &typing(answers.clone()), offset).unwrap();
        let mut other = answers.clone();
        for (k, v) in other.iter_mut() {
            if k == "A1" {
                *v = "2".into();
            }
        }
        let paper = entry::find(conn, forms, &b, &serials[1]).unwrap();
        assert_eq!(
            entry::save(conn, &b, &paper, &typing(other), offset).unwrap(),
            Saved::Disputed
        );
        assert_eq!(
            disputes::disagreements(conn, &paper.member_id).unwrap(),
            vec![("A1".to_string(), "4".to_string(), "2".to_string())]
        );
        let count = |conn: &mut sipas::db::DbConn| -> i64 {
            db_run!(conn: { responses::table.filter(responses::channel.eq("paper")).filter(responses::provenance.like("%batch%")).count().get_result(conn) }).unwrap()
        };
        assert_eq!(count(conn), 1, "a disputed form does not count yet");
        let paper = entry::find(conn, forms, &judge, &serials[1]).unwrap();
        assert!(
            disputes::resolve(&app.state, a.clone(), paper.serial.clone(), answers.clone())
                .await
                .is_err(),
            "a typist cannot judge their own form"
        );
        // The adjudication screen: a third person sees the difference and decides.
        let supervisor =
            crate::helpers::staff::sign_in(&app, "giamsat", crate::helpers::staff::TEST_PASSWORD)
                .await;
        assert!(
            supervisor
                .page(&app, "/paper/disputes")
                .await
                .contains(&serials[1])
        );
        let screen = supervisor
            .page(&app, &format!("/paper/disputes/{}", serials[1]))
            .await;
        assert!(
            screen.contains("<td>A1</td><td>4</td><td>2</td>"),
            "the differing answer is shown"
        );
        let decided: Vec<(&str, &str)> = answers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let resolved = supervisor
            .post(&app, &format!("/paper/disputes/{}", serials[1]), &decided)
            .await;
        assert_eq!(resolved.status(), 303);
        let _ = &judge;
        let conn = &mut app.conn();
        assert_eq!(count(conn), 2);
        assert!(
            supervisor
                .page(&app, "/paper/typists")
                .await
                .contains("nhaplieu-b")
        );
        // Form 3: a blank form needs an explicit confirmation.
        let paper = entry::find(conn, forms, &a, &serials[2]).unwrap();
        let blank: Vec<(String, String)> = answers
            .iter()
            .map(|(k, v)| {
                if form.question(k).is_some_and(|q| q.kind.is_scale()) {
                    (k.clone(), "0".into())
                } else {
                    (k.clone(), v.clone())
                }
            })
            .collect();
        match entry::save(conn, &a, &paper, &typing(blank.clone()), offset) {
            Err(EntryError::Invalid(_, issues)) => assert_eq!(issues[0].0, "_form"),
            other => panic!("blank form accepted: {other:?}"),
        }
        let confirmed = Typing {
            confirm_blank: true,
            ..typing(blank)
        };
        assert_eq!(
            entry::save(conn, &a, &paper, &confirmed, offset).unwrap(),
            Saved::AwaitingSecondEntry
        );

        // Paper responses carry provenance and flow into the same rollups.
        let provenance: Option<String> = db_run!(conn: {
            responses::table.filter(responses::provenance.like("%batch%")).select(responses::provenance).first(conn)
        })
        .unwrap();
        let provenance: serde_json::Value = serde_json::from_str(&provenance.unwrap()).unwrap();
        assert_eq!(provenance["batch"], batch.code.as_str());
        assert_eq!(provenance["collector"], "Nguyễn Văn Bưu");
        assert!(provenance["typists"].as_array().unwrap().len() >= 2);
        let stp = unit_id(&app, "STP");
        let paper_rollup = sipas::rollup::stored_count(
            conn,
            |k| k.channel == "paper" && k.unit_id == stp,
            "_responses",
            0,
        )
        .unwrap();
        assert!(paper_rollup >= 2);
        let custody = custody::custody(conn, &batch.id).unwrap();
        assert_eq!((custody.keyed, custody.verified), (3, 2));
        let stats = entry::typist_stats(conn, Some(&post.id)).unwrap();
        let of = |id: &str| stats.iter().find(|s| s.typist_id == id).cloned().unwrap();
        assert_eq!(of(a.account_id()).forms, 3);
        assert_eq!(
            of(b.account_id()).disagreement_rate,
            Some(0.5),
            "one of b's two double-entered forms disagreed"
        );
    }
}

mod importing {
    use diesel::prelude::*;
    use sipas::accounts::Role;

    use sipas::db::schema::responses;
    use sipas::db_run;

    use sipas::paper::import::{ImportError, import};
    use sipas::paper::sampling;

    use crate::helpers::TestApp;
    use crate::helpers::staff::{create_user, unit_id};

    crate::on_both_databases!(csv_import_is_all_or_nothing_and_never_twice);

    fn imported(conn: &mut sipas::db::DbConn) -> i64 {
        db_run!(conn: { responses::table.filter(responses::provenance.like("%batch%")).count().get_result(conn) }).unwrap()
    }

    async fn csv_import_is_all_or_nothing_and_never_twice(app: TestApp) {
        super::prepare(&app);
        let offset = app.state.settings.utc_offset_value().unwrap();
        let typist = sipas::accounts::Actor::of(&create_user(
            &app,
            "nhap-tep",
            Role::Collector,
            None,
            Some("BUU-DIEN"),
        ));
        let conn = &mut app.conn();
        let (sample, _, _) =
            super::hand_to_post(&app, conn, ("SXD", 3, 0.0, 21), "Lê Văn Thu", 0.0);
        let serials: Vec<String> = sampling::worklist(conn, &sample.id, None)
            .unwrap()
            .into_iter()
            .map(|r| r.serial)
            .collect();
        let form = app.state.forms.latest("sipas").unwrap();
        let codes: Vec<String> = form
            .questions()
            .filter(|q| {
                q.kind.is_scale()
                    || q.code == "RESPONDENT_TYPE"
                    || q.code == "VISITS"
                    || q.code == "EXTRA_FEE"
                    || q.code == "EXPECT"
            })
            .map(|q| q.code.clone())
            .collect();
        let row = |serial: &str, a1: &str| {
            let values: Vec<String> = codes
                .iter()
                .map(|c| match c.as_str() {
                    "A1" => a1.to_string(),
                    "RESPONDENT_TYPE" => "individual".into(),
                    "VISITS" => "v1".into(),
                    "EXTRA_FEE" => "no".into(),
                    "EXPECT" => "speed|online".into(),
                    _ => "4".into(),
                })
                .collect();
            format!("{serial},{}\n", values.join(","))
        };
        let header = format!("serial,{}\n", codes.join(","));
        // Row 3 has an out-of-range answer, row 4 a made-up serial: nothing is stored.
        let bad = format!(
            "{header}{}{}{}",
            row(&serials[0], "5"),
            row(&serials[1], "9"),
            row("ZZZZ-ZZZZ-ZZ", "4")
        );
        match import(
            conn,
            &app.state.forms,
            &typist,
            "lo1.csv",
            bad.as_bytes(),
            offset,
        ) {
            Err(ImportError::Invalid(problems)) => {
                assert!(
                    problems.iter().any(|p| p.row == 3 && p.column == "A1"),
                    "{problems:?}"
                );
                assert!(
                    problems.iter().any(|p| p.row == 4 && p.column == "serial"),
                    "{problems:?}"
                );
            }
            other => panic!("a bad file must be refused: {other:?}"),
        }
        assert_eq!(imported(conn), 0, "nothing stored from a bad file");
        let good = format!(
            "{header}{}{}{}",
            row(&serials[0], "5"),
            row(&serials[1], "3"),
            row(&serials[2], "4")
        );
        // The good file through the command line: the same use case, as the typist named.
        let dir = tempfile::tempdir().unwrap();
        let good_path = dir.path().join("lo1.csv");
        std::fs::write(&good_path, &good).unwrap();
        let good_arg = good_path.to_string_lossy().to_string();
        let nobody = super::sipas_cli(
            &app,
            &[
                "paper", "import", "--typist", "khong-co", "--file", &good_arg,
            ],
        );
        assert!(!nobody.status.success());
        let stderr = String::from_utf8_lossy(&nobody.stderr);
        assert!(stderr.contains("no user `khong-co`"), "{stderr}");
        assert_eq!(imported(conn), 0, "nothing stored for an unknown typist");
        let out = super::sipas_cli(
            &app,
            &[
                "paper", "import", "--typist", "nhap-tep", "--file", &good_arg,
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(stdout.contains("imported 3 form(s)"), "{stdout}");
        assert_eq!(imported(conn), 3);
        assert!(matches!(
            import(
                conn,
                &app.state.forms,
                &typist,
                "lo1-copy.csv",
                good.as_bytes(),
                offset
            ),
            Err(ImportError::AlreadyImported)
        ));
        assert_eq!(imported(conn), 3, "a re-imported file is not counted twice");
        // The CLI reports problems by row and column.
        let path = dir.path().join("bad.csv");
        std::fs::write(&path, &bad).unwrap();
        let out = super::sipas_cli(
            &app,
            &[
                "paper",
                "import",
                "--typist",
                "nhap-tep",
                "--file",
                &path.to_string_lossy(),
            ],
        );
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("row 4, column serial"), "{stderr}");

        // An administrator corrects a verified form: rollups move, the audit log keeps old → new.
        let level_count = |conn: &mut sipas::db::DbConn, level: i64| -> i64 {
            let sxd = unit_id(&app, "SXD");
            sipas::rollup::stored_count(
                conn,
                |k| k.unit_id == sxd && k.channel == "paper",
                "A1",
                level,
            )
            .unwrap()
        };
        let conn = &mut app.conn();
        let (fives, twos) = (level_count(conn, 5), level_count(conn, 2));
        let admin = crate::helpers::staff::sign_in_admin(&app).await;
        let page = admin
            .page(&app, &format!("/paper/forms/{}/correct", serials[0]))
            .await;
        assert!(
            page.contains("name=\"A1\" value=\"5\" data-key=\"5\" checked"),
            "the current answer is shown"
        );
        let mut fields: Vec<(String, String)> = Vec::new();
        for line in good.lines().skip(1).take(1) {
            for (code, value) in header.trim().split(',').zip(line.split(',')).skip(1) {
                for v in value.split('|') {
                    fields.push((
                        code.to_string(),
                        if code == "A1" {
                            "2".to_string()
                        } else {
                            v.to_string()
                        },
                    ));
                }
            }
        }
        let borrowed: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let done = admin
            .post(
                &app,
                &format!("/paper/forms/{}/correct", serials[0]),
                &borrowed,
            )
            .await;
        assert_eq!(done.status(), 303);
        let conn = &mut app.conn();
        assert_eq!(
            (level_count(conn, 5), level_count(conn, 2)),
            (fives - 1, twos + 1),
            "the rollups follow the correction"
        );
        let audit: (Option<String>, Option<String>) = db_run!(conn: {
            sipas::db::schema::audit_events::table
                .filter(sipas::db::schema::audit_events::action.eq("paper.correct"))
                .select((sipas::db::schema::audit_events::old_value, sipas::db::schema::audit_events::new_value))
                .first(conn)
        })
        .unwrap();
        assert!(
            audit.0.unwrap().contains("\"A1\":\"5\"") && audit.1.unwrap().contains("\"A1\":\"2\"")
        );
        let collector =
            crate::helpers::staff::sign_in(&app, "nhap-tep", crate::helpers::staff::TEST_PASSWORD)
                .await;
        assert_eq!(
            collector
                .get(&app, &format!("/paper/forms/{}/correct", serials[0]))
                .await
                .status(),
            403,
            "only administrators correct"
        );
        // The typist undoes their last form: the response leaves the index again.
        let paper_responses = |conn: &mut sipas::db::DbConn| -> i64 {
            let sxd = unit_id(&app, "SXD");
            sipas::rollup::stored_count(
                conn,
                |k| k.unit_id == sxd && k.channel == "paper",
                "_responses",
                0,
            )
            .unwrap()
        };
        let before = paper_responses(&mut app.conn());
        let undone = collector
            .post(&app, &format!("/paper/entry/{}/undo", serials[2]), &[])
            .await;
        assert_eq!(undone.status(), 303);
        let conn = &mut app.conn();
        assert_eq!(imported(conn), 2);
        assert_eq!(paper_responses(conn), before - 1, "rollups follow the undo");
        let again = collector
            .page(&app, &format!("/paper/entry/{}", serials[2]))
            .await;
        assert!(
            again.contains("id=\"entry\""),
            "the form can be keyed again"
        );
        let admin_undo = admin
            .post(&app, &format!("/paper/entry/{}/undo", serials[1]), &[])
            .await;
        assert_eq!(
            admin_undo.status(),
            403,
            "only the typist undoes their own typing"
        );
    }
}

/// Rasterises the QR code SVG (rectangles in one path) and decodes it.
fn decode_svg_qr(svg: &str) -> String {
    let view = svg.split("viewBox=\"0 0 ").nth(1).unwrap();
    let mut dims = view
        .split(['"', ' '])
        .take(2)
        .map(|n| n.parse::<usize>().unwrap());
    let (w, h) = (dims.next().unwrap(), dims.next().unwrap());
    let d = svg
        .split(" d=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let mut grid = vec![255u8; w * h];
    for rect in d.split('M').filter(|r| !r.is_empty()) {
        // "{left} {top}h{width}v{height}h-{width}z"
        let (left, rest) = rect.split_once(' ').unwrap();
        let (top, rest) = rest.split_once('h').unwrap();
        let (width, rest) = rest.split_once('v').unwrap();
        let height = rest.split('h').next().unwrap();
        let n = |s: &str| s.parse::<usize>().unwrap();
        for y in n(top)..n(top) + n(height) {
            for x in n(left)..n(left) + n(width) {
                grid[y * w + x] = 0;
            }
        }
    }
    let scale = 4;
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w * scale, h * scale, |x, y| {
        grid[(y / scale) * w + x / scale]
    });
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code");
    grids[0].decode().unwrap().1
}

mod racing {
    use diesel::prelude::*;
    use sipas::accounts::Role;

    use sipas::db::schema::responses;
    use sipas::db_run;

    use sipas::paper::sampling;

    use crate::helpers::staff::{TEST_PASSWORD, create_user, sign_in};
    use crate::helpers::{TestApp, full_answers};

    crate::on_both_databases!(two_second_typings_posted_at_once_store_one_response);

    /// Two people post the second typing of the same form at the same moment: one completes
    /// the form, the other is told it was keyed in full (409). Never a failed write (500), never
    /// two responses.
    async fn two_second_typings_posted_at_once_store_one_response(app: TestApp) {
        super::prepare(&app);
        let _offset = app.state.settings.utc_offset_value().unwrap();
        let serial = {
            let conn = &mut app.conn();
            let (sample, _, _) =
                super::hand_to_post(&app, conn, ("STP", 1, 0.0, 17), "Bưu tá", 1.0);
            sampling::worklist(conn, &sample.id, None).unwrap()[0]
                .serial
                .clone()
        };
        for name in ["dua-a", "dua-b", "dua-c"] {
            create_user(&app, name, Role::Collector, None, Some("BUU-DIEN"));
        }
        let a = sign_in(&app, "dua-a", TEST_PASSWORD).await;
        let b = sign_in(&app, "dua-b", TEST_PASSWORD).await;
        let c = sign_in(&app, "dua-c", TEST_PASSWORD).await;
        let answers = full_answers(&app.state.forms.latest("sipas").unwrap());
        let fields: Vec<(&str, &str)> = answers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let path = format!("/paper/entry/{serial}");
        assert_eq!(a.post(&app, &path, &fields).await.status(), 303);
        let (by_b, by_c) = tokio::join!(b.post(&app, &path, &fields), c.post(&app, &path, &fields));
        let mut statuses = [by_b.status().as_u16(), by_c.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [303, 409]);
        let conn = &mut app.conn();
        let stored: i64 = db_run!(conn: {
            responses::table.filter(responses::provenance.like("%batch%")).count().get_result(conn)
        })
        .unwrap();
        assert_eq!(stored, 1);
    }
}
