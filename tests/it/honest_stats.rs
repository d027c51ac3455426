//! Honest statistics (issue #14): small-sample intervals use Student's t, the integrity tests
//! use exact binomial tails, and the JSON reports carry unrounded figures while pages round.

use serde_json::Value;
use sipas::report::period::Period;
use sipas::report::stats;

use crate::helpers::staff::{sign_in_admin, unit_id};
use crate::helpers::{TestApp, full_answers};
use crate::on_both_databases;

on_both_databases!(json_figures_are_unrounded_and_pages_round,);

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() < tol
}

/// At n = 5 the interval of a mean of respondent scores uses t(0.975, 4) = 2.776, not 1.96.
#[test]
fn small_sample_intervals_use_student_t() {
    // Five respondents, mean .5, variance (1.3 − 5·.25)/4 = .0125, se = .05.
    let ci = stats::respondent_interval(0.5, 5, 2.5, 1.3).expect("interval");
    let half = (ci.high - ci.low) / 2.0;
    assert!(close(half, 2.776_445 * 0.05, 1e-5), "half-width {half}");
    // Large samples are unchanged (t → z).
    let ci = stats::respondent_interval(0.5, 10_000, 5_000.0, 2_600.0).expect("interval");
    let se = ((2_600.0 - 10_000.0 * 0.25) / 9_999.0 / 10_000.0f64).sqrt();
    assert!(close((ci.high - ci.low) / 2.0, 1.960_2 * se, 1e-5));
}

/// The integrity tests give the exact binomial tail at small counts, not a normal
/// approximation that is ten times too small.
#[test]
fn integrity_tails_are_exact_at_small_counts() {
    let p = sipas::integrity::units::p_above(2, 10, 0.02).expect("p");
    assert!(close(p, 0.016_178, 1e-5), "2 of 10 at 2 %: {p}");
    let p = sipas::integrity::units::p_above(3, 30, 0.02).expect("p");
    assert!(close(p, 0.021_718, 1e-5), "3 of 30 at 2 %: {p}");
}

fn this_month(app: &TestApp) -> Period {
    let offset = app.state.settings.utc_offset_value().expect("offset");
    let today = sipas::calendar::local_day(sipas::db::now(), offset);
    Period::parse(&today.format("%Y-%m").to_string()).expect("period")
}

/// Every figure of a JSON tree under `key` (`value`, `ci_low`, `ci_high`), with its path.
fn numbers(v: &Value, path: &str, keys: &[&str], out: &mut Vec<(String, f64)>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let p = format!("{path}.{k}");
                if keys.contains(&k.as_str())
                    && let Some(n) = x.as_f64()
                {
                    out.push((p.clone(), n));
                }
                numbers(x, &p, keys, out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                numbers(x, &format!("{path}[{i}]"), keys, out);
            }
        }
        _ => {}
    }
}

/// Three answers (two satisfied, one not) make every five-level item 66.666…%: the JSON says
/// so, the page shows 66.7%.
async fn json_figures_are_unrounded_and_pages_round(app: TestApp) {
    let app = app.restart(|s| s.report_min_n = 1).await;
    let form = app.state.forms.latest("sipas").expect("form");
    for (i, level) in ["5", "4", "2"].iter().enumerate() {
        let issued = app.issue_survey(&format!("ROUND-{i}"), Some("sipas")).await;
        let url = issued["survey_url"].as_str().expect("url").to_string();
        let mut fields = full_answers(&form);
        for (code, value) in fields.iter_mut() {
            if form
                .question(code)
                .is_some_and(|q| q.kind == sipas::forms::QuestionType::Scale5)
            {
                *value = level.to_string();
            }
        }
        assert_eq!(app.submit(&url, &fields).await.status(), 200);
    }
    let admin = sign_in_admin(&app).await;
    let stp = unit_id(&app, "STP");
    let period = this_month(&app).label();
    let report: Value = admin
        .get(
            &app,
            &format!("/api/v1/reports/units/{stp}?period={period}"),
        )
        .await
        .json()
        .await
        .expect("json");
    let item = report["sipas"]["elements"][0]["items"][0]["satisfied"]["value"]
        .as_f64()
        .expect("item value");
    assert!(close(item, 200.0 / 3.0, 1e-9), "item: {item}");
    let mut figures = Vec::new();
    numbers(
        &report["sipas"],
        "sipas",
        &["value", "ci_low", "ci_high"],
        &mut figures,
    );
    let unrounded = figures
        .iter()
        .filter(|(_, v)| !close(v * 10.0, (v * 10.0).round(), 1e-6))
        .count();
    assert!(
        unrounded * 2 > figures.len(),
        "most figures keep their decimals: {figures:?}"
    );
    // The same figure as the report computed in-process: nothing lost on the way.
    let index = report["sipas"]["index"]["value"].as_f64().expect("index");
    let mut conn = app.conn();
    let unit = sipas::units::find(&mut conn, &stp).unwrap().unwrap();
    let opts = app.state.policies.report;
    let direct = sipas::report::unit_report(
        &mut conn,
        &app.state.forms,
        &opts,
        &unit,
        &this_month(&app),
        &sipas::report::Slice::default(),
    )
    .unwrap();
    assert_eq!(
        Some(index),
        direct.sipas.as_ref().and_then(|s| s.index.value),
        "JSON index"
    );
    // The ranking JSON carries the same unrounded index.
    let ranking: Value = admin
        .get(
            &app,
            &format!("/api/v1/reports/ranking?period={period}&kind=department"),
        )
        .await
        .json()
        .await
        .expect("ranking json");
    let row = ranking["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["unit"]["code"] == "STP")
        .expect("STP row");
    assert_eq!(row["index"]["value"].as_f64(), Some(index), "{row}");
    // The OpenAPI document says so.
    let doc: Value = app
        .client
        .get(app.url("/api/openapi.json"))
        .send()
        .await
        .expect("openapi")
        .json()
        .await
        .expect("json");
    let figure = &doc["components"]["schemas"]["Figure"]["properties"];
    for field in ["value", "ci_low", "ci_high"] {
        let text = figure[field]["description"].as_str().unwrap_or_default();
        assert!(text.contains("Unrounded percentage"), "{field}: {text}");
    }
    // Pages round for display.
    let page = admin
        .page(&app, &format!("/reports/units/{stp}?period={period}"))
        .await;
    assert!(
        page.contains("66,7 %"),
        "the page rounds to 0.1, in Vietnamese"
    );
    assert!(!page.contains("66.666"), "no long decimals on the page");
}
