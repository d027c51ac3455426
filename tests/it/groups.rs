//! Respondent groups (issue #8, item 5): an administrator creates a group and a campaign, issues
//! single-use links (CSV and printable page), invitees answer once each; group answers stay out
//! of the citizen index, rankings and reports unless the group is configured to be included, and
//! the campaign results page shows the group's own figures.

use diesel::prelude::*;
use sipas::accounts::Role;
use sipas::db::schema::{rating_cases, response_signals, responses, rollup_cells};
use sipas::db_run;
use sipas::report::Slice;
use sipas::report::period::Period;

use crate::helpers::staff::{Staff, TEST_PASSWORD, create_user, location, sign_in, sign_in_admin};
use crate::helpers::{TestApp, full_answers};
use crate::on_both_databases;

on_both_databases!(
    campaign_links_are_single_use_and_kept_apart,
    included_group_counts_in_the_index,
    campaign_results_show_the_groups_figures,
    non_admins_cannot_reach_group_pages,
    campaign_form_errors_are_explained,
);

fn today(app: &TestApp) -> chrono::NaiveDate {
    let offset = app.state.settings.utc_offset_value().expect("offset");
    sipas::calendar::local_day(sipas::db::now(), offset)
}

fn this_month(app: &TestApp) -> Period {
    Period::parse(&today(app).format("%Y-%m").to_string()).expect("period")
}

/// Creates a group through the admin page; returns its id.
async fn create_group(app: &TestApp, admin: &Staff, code: &str, include: bool) -> String {
    let mut fields = vec![
        ("code", code),
        ("name_vi", "Đại biểu HĐND tỉnh"),
        ("name_en", "Provincial council delegates"),
        ("description", "Đại biểu được mời đánh giá các sở"),
    ];
    if include {
        fields.push(("include_in_index", "on"));
    }
    let response = admin.post(app, "/admin/groups", &fields).await;
    assert_eq!(response.status(), 303, "group created");
    let to = location(&response).expect("redirect");
    to.trim_start_matches("/admin/groups/")
        .split('?')
        .next()
        .expect("id")
        .to_string()
}

/// Creates a campaign rating `units` with `invitees` people; returns its id.
async fn create_campaign(
    app: &TestApp,
    admin: &Staff,
    group: &str,
    units: &[&str],
    invitees: u32,
) -> String {
    let from = today(app).to_string();
    let until = (today(app) + chrono::Duration::days(30)).to_string();
    let invitees = invitees.to_string();
    let mut fields = vec![
        ("group", group),
        ("name_vi", "Đánh giá các sở năm 2026"),
        ("name_en", "Rating the departments, 2026"),
        ("form", "sipas"),
        ("period", ""),
        ("starts_on", from.as_str()),
        ("ends_on", until.as_str()),
        ("invitees", invitees.as_str()),
    ];
    for u in units {
        fields.push(("units", u));
    }
    let response = admin.post(app, "/admin/campaigns", &fields).await;
    let status = response.status();
    let to = location(&response);
    assert_eq!(
        status,
        303,
        "campaign created: {}",
        response.text().await.unwrap_or_default()
    );
    to.expect("redirect")
        .trim_start_matches("/admin/campaigns/")
        .split('?')
        .next()
        .expect("id")
        .to_string()
}

/// The CSV of a campaign's links: rows of (invitee, unit, unit name, link, qr svg, qr png,
/// answered).
async fn links(app: &TestApp, admin: &Staff, campaign: &str) -> Vec<Vec<String>> {
    let response = admin
        .get(app, &format!("/admin/campaigns/{campaign}/links.csv"))
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/csv"))
    );
    let text = response.text().await.expect("csv");
    let text = text.trim_start_matches('\u{feff}');
    text.lines()
        .map(|line| {
            line.split(',')
                .map(|c| c.trim_matches('"').to_string())
                .collect()
        })
        .collect()
}

fn link_of(rows: &[Vec<String>], invitee: u32, unit: &str) -> String {
    rows.iter()
        .find(|r| r[0] == invitee.to_string() && r[1] == unit)
        .unwrap_or_else(|| panic!("a link for invitee {invitee} and {unit}: {rows:?}"))[3]
        .clone()
}

/// Answers a survey link with every scale-5 item at `level` (other questions as in
/// `full_answers`).
async fn answer(app: &TestApp, url: &str, level: u8) -> (u16, String) {
    let form = app.state.forms.latest("sipas").expect("form");
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
    let status = response.status().as_u16();
    (status, response.text().await.expect("page"))
}

/// The citizen report of a unit this month: (responses, index).
fn citizen_report(app: &TestApp, unit: &str) -> (u64, Option<f64>) {
    let mut conn = app.conn();
    let unit = sipas::units::find_by_code(&mut conn, unit)
        .unwrap()
        .unwrap();
    let opts = app.state.policies.report;
    let report = sipas::report::unit_report(
        &mut conn,
        &app.state.forms,
        &opts,
        &unit,
        &this_month(app),
        &Slice::default(),
    )
    .unwrap();
    let figures = report.sipas.expect("sipas figures");
    (figures.responses, figures.index.value)
}

/// The ranking row of a unit this month: (responses achieved, index).
fn ranking_row(app: &TestApp, unit: &str) -> (u64, Option<f64>) {
    let mut conn = app.conn();
    let kind = sipas::units::find_by_code(&mut conn, unit)
        .unwrap()
        .unwrap()
        .kind;
    let opts = app.state.policies.report;
    let rows = sipas::report::ranking(&mut conn, &app.state.forms, &opts, &kind, &this_month(app))
        .unwrap();
    let row = rows
        .iter()
        .find(|r| r.unit.code == unit)
        .expect("ranking row");
    (row.sample.achieved, row.index.value)
}

fn count(app: &TestApp, what: &str) -> i64 {
    let conn = &mut app.conn();
    match what {
        "rollup_cells" => db_run!(conn: { rollup_cells::table.count().get_result(conn) }),
        "signals" => db_run!(conn: { response_signals::table.count().get_result(conn) }),
        "cases" => db_run!(conn: { rating_cases::table.count().get_result(conn) }),
        _ => db_run!(conn: { responses::table.count().get_result(conn) }),
    }
    .unwrap()
}

async fn campaign_links_are_single_use_and_kept_apart(app: TestApp) {
    let app = app.restart(|s| s.report_min_n = 1).await;
    let admin = sign_in_admin(&app).await;
    let group = create_group(&app, &admin, "DB-HDND", false).await;
    let campaign = create_campaign(&app, &admin, "DB-HDND", &["STP", "SXD"], 3).await;

    // CSV: a header and one link per invitee and unit, with its QR addresses.
    let rows = links(&app, &admin, &campaign).await;
    assert_eq!(
        rows[0],
        vec![
            "invitee",
            "unit",
            "unit_name",
            "link",
            "qr_svg",
            "qr_png",
            "answered"
        ]
    );
    assert_eq!(rows.len(), 1 + 3 * 2, "{rows:?}");
    let mut tokens = std::collections::HashSet::new();
    for r in &rows[1..] {
        assert!(r[3].starts_with(&format!("{}/s/", app.base)), "{r:?}");
        assert_eq!(r[4], format!("{}/qr.svg", r[3]));
        assert_eq!(r[5], format!("{}/qr.png", r[3]));
        assert_eq!(r[6], "no");
        assert!(tokens.insert(r[3].clone()), "every link is distinct");
    }
    assert!(rows[1..].iter().any(|r| r[1] == "STP" && r[0] == "3"));
    // The QR code of a link is served by the survey's QR endpoint.
    let qr = app.client.get(&rows[1][4]).send().await.unwrap();
    assert_eq!(qr.status(), 200);
    // The printable page has every invitee's sheet with inline QR codes.
    let print = admin
        .page(&app, &format!("/admin/campaigns/{campaign}/print"))
        .await;
    assert_eq!(print.matches("<svg").count(), 6, "one QR code per link");
    assert!(print.contains("Người được mời số 3"));
    let one = admin
        .page(
            &app,
            &format!("/admin/campaigns/{campaign}/print?invitee=2"),
        )
        .await;
    assert_eq!(one.matches("<svg").count(), 2);

    // The survey page of a campaign link is the citizen survey page.
    let url = link_of(&rows, 1, "STP");
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Sở Tư pháp"));

    // Answered once (with the worst overall rating), refused the second time, clearly.
    let (status, text) = answer(&app, &url, 1).await;
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Cảm ơn Ông/Bà đã đánh giá"));
    let (status, text) = answer(&app, &url, 5).await;
    assert_eq!(status, 409);
    assert!(
        text.contains("Liên kết này đã được sử dụng")
            && text.contains("Mỗi liên kết mời đánh giá chỉ dùng được một lần"),
        "{text}"
    );
    let again = app.client.get(&url).send().await.unwrap();
    assert_eq!(again.status(), 409);
    assert!(again.text().await.unwrap().contains("đã được sử dụng"));
    let (status, _) = answer(&app, &link_of(&rows, 2, "STP"), 4).await;
    assert_eq!(status, 200);

    // Stored with its group and campaign, kept out of the rollups, unscreened, no case.
    type Stored = (
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
    );
    let stored: Vec<Stored> = {
        let conn = &mut app.conn();
        db_run!(conn: {
            responses::table
                .select((responses::channel, responses::status, responses::respondent_group_id, responses::campaign_id, responses::procedure_id))
                .load(conn)
        })
        .unwrap()
    };
    assert_eq!(stored.len(), 2);
    for (channel, status, g, c, procedure) in &stored {
        assert_eq!(channel, "group");
        assert_eq!(status, "group");
        assert_eq!(g.as_deref(), Some(group.as_str()));
        assert_eq!(c.as_deref(), Some(campaign.as_str()));
        assert!(procedure.is_none());
    }
    assert_eq!(count(&app, "rollup_cells"), 0);
    assert_eq!(count(&app, "signals"), 0, "group answers are not screened");
    assert_eq!(count(&app, "cases"), 0, "group answers open no case");

    // Absent from the citizen report and the ranking.
    assert_eq!(citizen_report(&app, "STP"), (0, None));
    assert_eq!(ranking_row(&app, "STP"), (0, None));

    // The CSV now shows which links were used.
    let rows = links(&app, &admin, &campaign).await;
    let answered: Vec<(&str, &str)> = rows[1..]
        .iter()
        .filter(|r| r[6] == "yes")
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(answered, vec![("1", "STP"), ("2", "STP")]);

    // Inviting more people issues their links, audited.
    let response = admin
        .post(
            &app,
            &format!("/admin/campaigns/{campaign}/invitees"),
            &[("more", "2")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let rows = links(&app, &admin, &campaign).await;
    assert_eq!(rows.len(), 1 + 5 * 2);
    let page = admin
        .page(&app, &format!("/admin/campaigns/{campaign}"))
        .await;
    assert!(page.contains("10 / 2"), "links issued / answered");
}

async fn included_group_counts_in_the_index(app: TestApp) {
    let app = app.restart(|s| s.report_min_n = 1).await;
    let admin = sign_in_admin(&app).await;
    let group = create_group(&app, &admin, "LANH-DAO", false).await;
    let campaign = create_campaign(&app, &admin, "LANH-DAO", &["STP"], 4).await;
    let rows = links(&app, &admin, &campaign).await;
    for invitee in 1..=2 {
        let (status, _) = answer(&app, &link_of(&rows, invitee, "STP"), 5).await;
        assert_eq!(status, 200);
    }
    assert_eq!(citizen_report(&app, "STP"), (0, None));

    // Configured to be included: the answers already given move into the index at once.
    let edit = |include: bool| {
        let mut fields = vec![
            ("code", "LANH-DAO"),
            ("name_vi", "Lãnh đạo tỉnh"),
            ("name_en", "Provincial leaders"),
            ("description", ""),
        ];
        if include {
            fields.push(("include_in_index", "on"));
        }
        fields
    };
    let response = admin
        .post(&app, &format!("/admin/groups/{group}"), &edit(true))
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(citizen_report(&app, "STP"), (2, Some(100.0)));
    assert_eq!(ranking_row(&app, "STP"), (2, Some(100.0)));
    // New answers of an included group count as they come.
    let (status, _) = answer(&app, &link_of(&rows, 3, "STP"), 2).await;
    assert_eq!(status, 200);
    let (n, index) = citizen_report(&app, "STP");
    assert_eq!(n, 3);
    assert!(index.is_some_and(|v| (v - 66.7).abs() < 0.05), "{index:?}");
    // The counter/paper comparison never sees them: neither channel.
    {
        let mut conn = app.conn();
        let unit = sipas::units::find_by_code(&mut conn, "STP")
            .unwrap()
            .unwrap();
        let opts = app.state.policies.report;
        let report = sipas::report::unit_report(
            &mut conn,
            &app.state.forms,
            &opts,
            &unit,
            &this_month(&app),
            &Slice {
                channel: Some("counter".into()),
                ..Slice::default()
            },
        )
        .unwrap();
        assert_eq!(report.sipas.expect("figures").responses, 0);
    }

    // Excluded again: out of every figure, and stored all the same.
    let response = admin
        .post(&app, &format!("/admin/groups/{group}"), &edit(false))
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(citizen_report(&app, "STP"), (0, None));
    assert_eq!(ranking_row(&app, "STP"), (0, None));
    assert_eq!(count(&app, "responses"), 3);
    // Both changes are audited with the number of answers moved.
    let conn = &mut app.conn();
    let events: Vec<Option<String>> = db_run!(conn: {
        sipas::db::schema::audit_events::table
            .filter(sipas::db::schema::audit_events::action.eq("group.update"))
            .order(sipas::db::schema::audit_events::seq)
            .select(sipas::db::schema::audit_events::new_value)
            .load(conn)
    })
    .unwrap();
    assert_eq!(events.len(), 2);
    assert!(
        events[0]
            .as_deref()
            .is_some_and(|v| v.contains("\"answers_moved\":2"))
    );
    assert!(
        events[1]
            .as_deref()
            .is_some_and(|v| v.contains("\"answers_moved\":3"))
    );
}

async fn campaign_results_show_the_groups_figures(app: TestApp) {
    // The default publication threshold (5) applies to group figures too.
    let admin = sign_in_admin(&app).await;
    create_group(&app, &admin, "DB-HDND", false).await;
    let campaign = create_campaign(&app, &admin, "DB-HDND", &["STP", "SXD"], 6).await;
    let rows = links(&app, &admin, &campaign).await;
    // STP: three "very satisfied" throughout and two "dissatisfied": 60 % on every item, so
    // every element and the index are 60 %. SXD: two answers only, below the threshold.
    for (invitee, level) in [(1, 5), (2, 5), (3, 5), (4, 2), (5, 2)] {
        let (status, _) = answer(&app, &link_of(&rows, invitee, "STP"), level).await;
        assert_eq!(status, 200);
    }
    for invitee in [1, 2] {
        let (status, _) = answer(&app, &link_of(&rows, invitee, "SXD"), 4).await;
        assert_eq!(status, 200);
    }
    let page = admin
        .page(&app, &format!("/admin/campaigns/{campaign}"))
        .await;
    let row = |unit: &str| -> String {
        let start = page
            .find(&format!("data-unit=\"{unit}\""))
            .unwrap_or_else(|| panic!("row of {unit}: {page}"));
        let end = start + page[start..].find("</tr>").expect("row end");
        page[start..end].to_string()
    };
    let stp = row("STP");
    assert!(stp.contains("5 / 6"), "{stp}");
    assert!(stp.contains("<td class=\"index\">60,0 %</td>"), "{stp}");
    assert!(stp.contains("<td class=\"overall\">60,0 %</td>"), "{stp}");
    let syt = row("SXD");
    assert!(syt.contains("2 / 6"), "{syt}");
    assert!(
        syt.contains("<td class=\"index\">—</td>"),
        "suppressed: {syt}"
    );
    // All units: 3 + 2 satisfied of 7 answers on every item.
    let total_start = page.find("id=\"campaign-total\"").expect("total row");
    let total = &page[total_start..total_start + page[total_start..].find("</tr>").unwrap()];
    assert!(total.contains("7 / 12"), "{total}");
    assert!(total.contains("<td class=\"index\">71,4 %</td>"), "{total}");
    assert!(page.contains("12 / 7"), "links issued / answered");

    // The same figures from the domain function.
    let conn = &mut app.conn();
    let (c, _, rated) = sipas::groups::campaign_detail(conn, &campaign).unwrap();
    let results = sipas::groups::results(conn, &app.state.forms, &c, &rated, 5).unwrap();
    let stp = results.units.iter().find(|u| u.unit_code == "STP").unwrap();
    assert_eq!(stp.figures.responses, 5);
    assert_eq!(stp.figures.index.value, Some(60.0));
    assert!(
        stp.figures
            .elements
            .iter()
            .all(|e| e.index.value == Some(60.0))
    );
    assert_eq!(stp.answered, 5);
    // And none of it in the citizen figures.
    assert_eq!(citizen_report(&app, "STP").0, 0);
}

async fn non_admins_cannot_reach_group_pages(app: TestApp) {
    let admin = sign_in_admin(&app).await;
    let group = create_group(&app, &admin, "DB-HDND", false).await;
    let campaign = create_campaign(&app, &admin, "DB-HDND", &["STP"], 1).await;
    create_user(&app, "can-bo-stp", Role::Agency, Some("STP"), None);
    let agency = sign_in(&app, "can-bo-stp", TEST_PASSWORD).await;
    let pages = [
        "/admin/groups".to_string(),
        format!("/admin/groups/{group}"),
        "/admin/campaigns".to_string(),
        format!("/admin/campaigns/{campaign}"),
        format!("/admin/campaigns/{campaign}/links.csv"),
        format!("/admin/campaigns/{campaign}/print"),
    ];
    for path in &pages {
        let status = agency.get(&app, path).await.status().as_u16();
        assert_eq!(status, 403, "an agency may not open {path}");
        let anonymous = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), 303, "{path}: to the sign-in page");
        assert!(location(&anonymous).is_some_and(|l| l.starts_with("/login")));
    }
    let before = count(&app, "responses");
    let response = agency
        .post(
            &app,
            "/admin/groups",
            &[("code", "X-Y"), ("name_vi", "x"), ("name_en", "x")],
        )
        .await;
    assert_eq!(response.status(), 403);
    let response = agency
        .post(
            &app,
            &format!("/admin/campaigns/{campaign}/invitees"),
            &[("more", "5")],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(count(&app, "responses"), before);
    let rows = links(&app, &admin, &campaign).await;
    assert_eq!(rows.len(), 2, "no link was issued by the agency");

    // After the campaign's end its links say so, in the invitee's language.
    {
        use sipas::db::schema::survey_tokens;
        let conn = &mut app.conn();
        let past = sipas::db::now() - chrono::Duration::days(1);
        db_run!(conn: {
            diesel::update(survey_tokens::table.filter(survey_tokens::campaign_id.is_not_null()))
                .set(survey_tokens::expires_at.eq(past))
                .execute(conn)
        })
        .unwrap();
    }
    let url = link_of(&rows, 1, "STP");
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), 410);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Đợt khảo sát đã kết thúc")
    );
    let (status, text) = answer(&app, &url, 5).await;
    assert_eq!(status, 410, "{text}");
    let english = app
        .client
        .get(format!("{url}?lang=en"))
        .send()
        .await
        .unwrap();
    assert!(
        english
            .text()
            .await
            .unwrap()
            .contains("The survey campaign has ended")
    );
    assert_eq!(count(&app, "responses"), before);
}

async fn campaign_form_errors_are_explained(app: TestApp) {
    let admin = sign_in_admin(&app).await;
    create_group(&app, &admin, "DB-HDND", false).await;
    let post = |fields: Vec<(&'static str, String)>| {
        let admin = &admin;
        let app = &app;
        async move {
            let borrowed: Vec<(&str, &str)> =
                fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
            let response = admin.post(app, "/admin/campaigns", &borrowed).await;
            (response.status().as_u16(), response.text().await.unwrap())
        }
    };
    let base = |units: &str, invitees: &str, until: &str| {
        vec![
            ("group", "DB-HDND".to_string()),
            ("name_vi", "Đợt thử".to_string()),
            ("name_en", "Trial".to_string()),
            ("form", "sipas".to_string()),
            ("period", String::new()),
            ("starts_on", "2026-01-01".to_string()),
            ("ends_on", until.to_string()),
            ("units", units.to_string()),
            ("invitees", invitees.to_string()),
        ]
    };
    let (status, text) = post(base("", "3", "2099-12-31")).await;
    assert_eq!(status, 422);
    assert!(
        text.contains("Chọn từ 1 đến 200 đơn vị được đánh giá"),
        "{text}"
    );
    let (status, text) = post(base("STP", "0", "2099-12-31")).await;
    assert_eq!(status, 422);
    assert!(text.contains("Số người được mời từ 1 đến 1000"), "{text}");
    let (status, text) = post(base("KHONG-CO", "3", "2099-12-31")).await;
    assert_eq!(status, 422);
    assert!(text.contains("Không có đơn vị mã KHONG-CO"), "{text}");
    let mut past = base("STP", "3", "2020-01-31");
    past[5].1 = "2020-01-01".into();
    let (status, text) = post(past).await;
    assert_eq!(status, 422);
    assert!(text.contains("Ngày kết thúc đã qua"), "{text}");
    let (status, _) = post(base("STP,SXD", "3", "2099-12-31")).await;
    assert_eq!(status, 303, "comma-separated unit codes are accepted too");
    // Nothing half-made: only the valid campaign's links exist.
    let conn = &mut app.conn();
    let links: i64 = db_run!(conn: {
        sipas::db::schema::campaign_links::table.count().get_result(conn)
    })
    .unwrap();
    assert_eq!(links, 6);
}
