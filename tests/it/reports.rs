//! Reports against the raw answers they summarise: rollup-based figures must equal a direct
//! count over the stored responses on random data, agencies see only their scope, small
//! cells are hidden, exports carry what they should (and nothing personal), and the Decision
//! 766 dossier rate counts each unsatisfied-or-late dossier once, by its local completion day.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone};
use diesel::prelude::*;
use serde_json::{Value, json};
use sipas::accounts::Role;
use sipas::calendar::local_day;
use sipas::db::DbConn;
use sipas::db::schema::responses;
use sipas::db_run;
use sipas::forms::answers::AnswerValue;
use sipas::forms::{Form, QuestionType};
use sipas::report::figures::{FormFigures, ItemFigure};
use sipas::report::period::Period;
use sipas::report::{ReportOptions, Slice};
use sipas::survey::response::{NewResponse, Submission};
use sipas::survey::store::store_batch;
use sipas::survey::stored::decode;

use crate::helpers::staff::{TEST_PASSWORD, create_user, sign_in, sign_in_admin, unit_id};
use crate::helpers::{TestApp, full_answers};
use crate::on_both_databases;

on_both_databases!(
    rollups_equal_a_direct_computation_from_raw_answers,
    reports_respect_scope_and_suppression,
    dossier_rate_counts_unsatisfied_or_late_once,
);

const ALL_CHANNELS: &[&str] = &["qr", "link", "kiosk", "paper", "phone", "interview"];
const INDEPENDENT: &[&str] = &["paper", "phone", "interview"];

fn offset(app: &TestApp) -> FixedOffset {
    app.state.settings.utc_offset_value().expect("utc offset")
}

fn local_today(app: &TestApp) -> NaiveDate {
    local_day(sipas::db::now(), offset(app))
}

/// The UTC instants bounding the local days of `period`: `[from, until)`.
fn utc_bounds(period: &Period, offset: FixedOffset) -> (NaiveDateTime, NaiveDateTime) {
    let shift = Duration::seconds(offset.local_minus_utc().into());
    let from = period.from.and_hms_opt(0, 0, 0).unwrap() - shift;
    let until = period.to.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap() - shift;
    (from, until)
}

/// An RFC 3339 time for a local date and time.
fn local_time(offset: FixedOffset, day: NaiveDate, h: u32, m: u32, s: u32) -> String {
    offset
        .from_local_datetime(&day.and_hms_opt(h, m, s).unwrap())
        .single()
        .unwrap()
        .to_rfc3339()
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap()
}

// ---------------------------------------------------------------- direct computation

/// What the raw tables say for one form, scope, time range and set of channels.
#[derive(Debug, Default)]
struct Raw {
    /// (question, level) → answers; multiple choices expanded to each chosen option's position.
    counts: HashMap<(String, i64), u64>,
    responses: u64,
    /// Element code (or `_index`) → respondents with at least one valid rating in it.
    respondents: HashMap<String, u64>,
}

impl Raw {
    fn count(&self, q: &str, level: i64) -> u64 {
        self.counts
            .get(&(q.to_string(), level))
            .copied()
            .unwrap_or(0)
    }
}

fn levels(kind: QuestionType) -> Vec<i64> {
    match kind {
        QuestionType::Scale5 => (1..=5).collect(),
        _ => (1..=3).collect(),
    }
}

fn satisfied_level(kind: QuestionType, level: i64) -> bool {
    match kind {
        QuestionType::Scale5 => level >= 4,
        _ => level >= 2,
    }
}

/// Counts answers and respondents straight from the stored responses.
fn raw_counts(
    conn: &mut DbConn,
    form: &Form,
    scope: &[String],
    (from, until): (NaiveDateTime, NaiveDateTime),
    channels: &[&str],
) -> Raw {
    let multi: Vec<String> = form
        .questions()
        .filter(|q| q.kind == QuestionType::Multi)
        .map(|q| q.code.clone())
        .collect();
    // Scale items of each element, split by scale so that "valid" means 1–5 or 1–3.
    let mut groups: Vec<(String, Vec<String>, Vec<String>)> = Vec::new();
    let (mut all5, mut all3) = (Vec::new(), Vec::new());
    for s in form.sections.iter().filter(|s| s.element) {
        let codes = |kind: QuestionType| -> Vec<String> {
            s.questions
                .iter()
                .filter(|q| q.kind == kind)
                .map(|q| q.code.clone())
                .collect()
        };
        let (c5, c3) = (codes(QuestionType::Scale5), codes(QuestionType::Scale3));
        all5.extend(c5.iter().cloned());
        all3.extend(c3.iter().cloned());
        groups.push((s.code.clone(), c5, c3));
    }
    groups.push(("_index".into(), all5, all3));
    let code = form.code.clone();
    let stored: Vec<String> = db_run!(conn: {
        responses::table
            .filter(responses::form_code.eq(&code))
            .filter(responses::unit_id.eq_any(scope))
            .filter(responses::channel.eq_any(channels.to_vec()))
            .filter(responses::submitted_at.ge(from))
            .filter(responses::submitted_at.lt(until))
            .select(responses::answers)
            .load(conn)
            .expect("responses")
    });
    let mut raw = Raw {
        responses: stored.len() as u64,
        respondents: groups.iter().map(|(e, _, _)| (e.clone(), 0)).collect(),
        ..Raw::default()
    };
    for text in &stored {
        let answers: HashMap<String, (Option<i64>, Option<String>)> = decode(text)
            .expect("stored answers")
            .into_iter()
            .map(|(q, n, t)| (q, (n, t)))
            .collect();
        for (q, (level, text)) in &answers {
            if multi.contains(q) {
                let question = form.question(q).expect("question");
                for chosen in text.clone().unwrap_or_default().split(',') {
                    let position = question
                        .options
                        .iter()
                        .position(|o| o.code == chosen)
                        .unwrap_or_else(|| panic!("{q}: unknown option {chosen}"));
                    *raw.counts
                        .entry((q.clone(), position as i64 + 1))
                        .or_insert(0) += 1;
                }
            } else if let Some(level) = level {
                *raw.counts.entry((q.clone(), *level)).or_insert(0) += 1;
            }
        }
        for (element, c5, c3) in &groups {
            let rated = |codes: &[String], max: i64| {
                codes.iter().any(|c| {
                    answers
                        .get(c)
                        .and_then(|(n, _)| *n)
                        .is_some_and(|n| (1..=max).contains(&n))
                })
            };
            if rated(c5, 5) || rated(c3, 3) {
                *raw.respondents.entry(element.clone()).or_insert(0) += 1;
            }
        }
    }
    raw
}

/// Reports carry unrounded percentages (issue #14): pages round, the JSON does not.
fn percent(share: f64) -> f64 {
    share * 100.0
}

/// Equal figures, allowing for the order of floating-point sums.
fn assert_close(got: Option<f64>, want: Option<f64>, what: &str) {
    match (got, want) {
        (Some(g), Some(w)) => assert!((g - w).abs() < 1e-9, "{what}: {g} vs {w}"),
        _ => assert_eq!(got, want, "{what}"),
    }
}

/// (valid answers, satisfied answers) of a question.
fn valid_and_satisfied(q: &sipas::forms::Question, raw: &Raw) -> (u64, u64) {
    let valid = levels(q.kind).iter().map(|l| raw.count(&q.code, *l)).sum();
    let satisfied = levels(q.kind)
        .iter()
        .filter(|l| satisfied_level(q.kind, **l))
        .map(|l| raw.count(&q.code, *l))
        .sum();
    (valid, satisfied)
}

fn check_item(q: &sipas::forms::Question, item: &ItemFigure, raw: &Raw, min_n: u64, what: &str) {
    assert_eq!(item.code, q.code, "{what}: item order");
    let distribution: Vec<u64> = levels(q.kind)
        .iter()
        .map(|l| raw.count(&q.code, *l))
        .collect();
    let (valid, satisfied) = valid_and_satisfied(q, raw);
    let shown = valid >= min_n.max(1);
    assert_eq!(item.satisfied.n, valid, "{what} {}: satisfied.n", q.code);
    assert_eq!(
        item.distribution,
        shown.then(|| distribution.clone()),
        "{what} {}: distribution (raw {distribution:?})",
        q.code
    );
    assert_eq!(
        item.no_answer,
        raw.count(&q.code, 0),
        "{what} {}: no answer",
        q.code
    );
    let share = (valid > 0 && shown).then(|| percent(satisfied as f64 / valid as f64));
    assert_close(
        item.satisfied.value,
        share,
        &format!("{what} {}: share", q.code),
    );
    let mean = (valid > 0 && shown).then(|| {
        let total: f64 = levels(q.kind)
            .iter()
            .zip(&distribution)
            .map(|(l, n)| *l as f64 * *n as f64)
            .sum();
        total / valid as f64
    });
    assert_close(item.mean, mean, &format!("{what} {}: mean", q.code));
}

/// The element's unrounded index: the weighted mean of the shares of its items that have
/// valid answers (`None` without any).
fn direct_element(section: &sipas::forms::definition::Section, raw: &Raw) -> Option<f64> {
    let (mut weighted, mut weights) = (0.0, 0.0);
    for q in section.questions.iter().filter(|q| q.kind.is_scale()) {
        let (valid, satisfied) = valid_and_satisfied(q, raw);
        if valid > 0 {
            weighted += q.weight * (satisfied as f64 / valid as f64);
            weights += q.weight;
        }
    }
    (weights > 0.0).then(|| weighted / weights)
}

/// The unrounded overall index: the weighted mean of the elements that have an index.
fn direct_index(form: &Form, raw: &Raw) -> Option<f64> {
    let rated: Vec<(f64, f64)> = form
        .sections
        .iter()
        .filter(|s| s.element)
        .filter_map(|s| direct_element(s, raw).map(|v| (s.weight, v)))
        .collect();
    let weights: f64 = rated.iter().map(|(w, _)| w).sum();
    (weights > 0.0).then(|| rated.iter().map(|(w, v)| w * v).sum::<f64>() / weights)
}

/// Compares every figure of `figures` with the raw counts; returns how many figures were shown.
fn check_form(form: &Form, figures: &FormFigures, raw: &Raw, min_n: u64, what: &str) -> usize {
    let mut shown = 0;
    assert_eq!(figures.form, form.code);
    assert_eq!(figures.responses, raw.responses, "{what}: responses");
    let sections: Vec<_> = form.sections.iter().filter(|s| s.element).collect();
    assert_eq!(figures.elements.len(), sections.len(), "{what}: elements");
    for (section, element) in sections.iter().zip(&figures.elements) {
        let what = format!("{what} element {}", section.code);
        assert_eq!(element.code, section.code, "{what}: order");
        let items: Vec<_> = section
            .questions
            .iter()
            .filter(|q| q.kind.is_scale())
            .collect();
        assert_eq!(element.items.len(), items.len(), "{what}: items");
        for (q, item) in items.iter().zip(&element.items) {
            check_item(q, item, raw, min_n, &what);
        }
        let respondents = raw.respondents[&section.code];
        assert_eq!(element.index.n, respondents, "{what}: respondents");
        let expected = direct_element(section, raw)
            .filter(|_| respondents >= min_n.max(1))
            .map(percent);
        assert_close(element.index.value, expected, &format!("{what}: index"));
        shown += usize::from(expected.is_some());
    }
    let respondents = raw.respondents["_index"];
    assert_eq!(figures.index.n, respondents, "{what}: index respondents");
    let expected = direct_index(form, raw)
        .filter(|_| respondents >= min_n.max(1))
        .map(percent);
    assert_close(
        figures.index.value,
        expected,
        &format!("{what}: overall index"),
    );
    shown += usize::from(expected.is_some());
    if let Some(q) = form.question_with_role(sipas::forms::QuestionRole::Overall) {
        let item = figures.overall_question.as_ref().expect("overall question");
        check_item(q, item, raw, min_n, &format!("{what} overall question"));
    }
    let choices: Vec<_> = form
        .questions()
        .filter(|q| matches!(q.kind, QuestionType::Choice | QuestionType::Multi))
        .collect();
    assert_eq!(figures.choices.len(), choices.len(), "{what}: choices");
    for (q, c) in choices.iter().zip(&figures.choices) {
        assert_eq!(c.code, q.code);
        let counts: Vec<u64> = (1..=q.options.len() as i64)
            .map(|p| raw.count(&q.code, p))
            .collect();
        assert_eq!(c.answered, counts.iter().sum::<u64>(), "{what} {}", q.code);
        let visible = raw.responses >= min_n.max(1);
        let got: Vec<Option<u64>> = c.options.iter().map(|o| o.3).collect();
        let want: Vec<Option<u64>> = counts.iter().map(|n| visible.then_some(*n)).collect();
        assert_eq!(got, want, "{what} {}: option counts", q.code);
    }
    shown
}

/// Responses exactly at the local-midnight edges of `period`, through the real writer: the
/// ones just outside must not count, the ones on the first and last second must.
fn store_edge_responses(app: &TestApp, form: &Form, unit: &str, period: &Period) {
    let (from, until) = utc_bounds(period, offset(app));
    let second = Duration::seconds(1);
    let conn = &mut app.conn();
    let unit_id = sipas::units::find_by_code(conn, unit).unwrap().unwrap().id;
    let batch: Vec<Submission> = [
        (from - second, 1),
        (from, 5),
        (until - second, 4),
        (until, 2),
    ]
    .into_iter()
    .map(|(at, level)| {
        let answers: Vec<AnswerValue> = form
            .questions()
            .filter(|q| q.kind.is_scale())
            .map(|q| {
                let l = level.min(levels(q.kind).len() as i64);
                AnswerValue {
                    question_code: q.code.clone(),
                    value_int: Some(l),
                    value_text: None,
                    rollup_levels: vec![l],
                }
            })
            .collect();
        Submission {
            token_hash: None,
            response: NewResponse {
                id: uuid::Uuid::new_v4().to_string(),
                unit_id: unit_id.clone(),
                procedure_id: None,
                form_code: form.code.clone(),
                form_version: form.version,
                channel: "paper".into(),
                respondent_type: Some("organisation".into()),
                language: "vi".into(),
                issued_at: None,
                opened_at: None,
                submitted_at: at,
                provenance: Some(r#"{"edge_of_period":true}"#.into()),
            },
            scores: sipas::forms::scoring::respondent_scores(form, &answers),
            answers,
            dossier_rating: None,
            transaction_id: None,
            screening: None,
        }
    })
    .collect();
    store_batch(conn, &batch, offset(app)).expect("edge responses stored");
}

async fn rollups_equal_a_direct_computation_from_raw_answers(app: TestApp) {
    let started = std::time::Instant::now();
    let offset = offset(&app);
    let opts: ReportOptions = app.state.policies.report;
    let forms = app.state.forms.clone();
    let today = local_today(&app);
    let year = Period::parse(&today.format("%Y").to_string()).unwrap();
    let last_month = first_of_month(today) - Duration::days(1);
    let month = Period::parse(&last_month.format("%Y-%m").to_string()).unwrap();
    // A range of days that is not whole months: whole months come from the rollups, the edge
    // days from the stored responses.
    let mut range_from = today - Duration::days(75);
    if range_from.day() == 1 {
        range_from += Duration::days(1);
    }
    let mut range_to = today - Duration::days(17);
    if range_to.succ_opt().unwrap().day() == 1 {
        range_to -= Duration::days(1);
    }
    let range = Period::parse(&format!("{range_from}..{range_to}")).unwrap();
    assert!(year.whole_months() && month.whole_months() && !range.whole_months());

    let conn = &mut app.conn();
    let units: Vec<sipas::units::Unit> = sipas::units::list(conn)
        .unwrap()
        .into_iter()
        .filter(|u| u.kind == "department" || u.kind == "commune" || u.kind == "province")
        .collect();
    assert!(
        units.len() >= 12,
        "the demo province's units: {}",
        units.len()
    );
    let sipas_form = forms.latest("sipas").unwrap();
    let transaction_form = forms.latest("transaction").unwrap();
    for form in [&sipas_form, &transaction_form] {
        store_edge_responses(&app, form, "STP", &range);
    }

    let cases: Vec<(&str, Period, Option<&str>)> = vec![
        ("year", year, None),
        ("month", month, None),
        ("days", range, None),
        ("year/independent", year, Some("independent")),
    ];
    let mut checked = 0;
    let mut shown = 0;
    // PostgreSQL stores synthetic responses several times slower (one upsert per rollup key),
    // so it gets fewer per round to stay within the time budget.
    let (first, second) = if app.database_url.starts_with("postgres") {
        (350, 150)
    } else {
        (1200, 500)
    };
    for (round, seeds) in [(1u64, 2u64), (3, 4), (5, 6)].into_iter().enumerate() {
        for (seed, count) in [(seeds.0, first), (seeds.1, second)] {
            sipas::synthetic::generate(
                conn,
                &forms,
                count,
                200,
                sipas::db::now(),
                seed * 7919 + 13,
                offset,
            )
            .expect("synthetic data");
        }
        for unit in &units {
            let scope = sipas::report::source::scope(conn, &unit.id).unwrap();
            for (label, period, channel) in &cases {
                let slice = Slice {
                    channel: channel.map(str::to_string),
                    ..Slice::default()
                };
                let report = sipas::report::unit_report(conn, &forms, &opts, unit, period, &slice)
                    .expect("report");
                let channels = if channel.is_some() {
                    INDEPENDENT
                } else {
                    ALL_CHANNELS
                };
                let bounds = utc_bounds(period, offset);
                for (form, figures) in [
                    (&sipas_form, report.sipas.as_ref()),
                    (&transaction_form, report.transaction.as_ref()),
                ] {
                    let figures = figures.expect("figures of both forms");
                    let raw = raw_counts(conn, form, &scope, bounds, channels);
                    let what = format!(
                        "round {round}, {} {label} {}, form {}",
                        unit.code,
                        period.label(),
                        form.code
                    );
                    shown += check_form(form, figures, &raw, opts.min_n, &what);
                    checked += 1;
                }
            }
        }
        // The twelve-month trend of the whole province, month by month.
        let province = units.iter().find(|u| u.kind == "province").unwrap();
        let scope = sipas::report::source::scope(conn, &province.id).unwrap();
        let report =
            sipas::report::unit_report(conn, &forms, &opts, province, &year, &Slice::default())
                .unwrap();
        assert_eq!(report.trend.len(), 12);
        for point in &report.trend {
            let p = Period::parse(&point.month).unwrap();
            let raw = raw_counts(
                conn,
                &sipas_form,
                &scope,
                utc_bounds(&p, offset),
                ALL_CHANNELS,
            );
            let n = raw.respondents["_index"];
            assert_eq!(point.index.n, n, "trend {}: respondents", point.month);
            let expected = direct_index(&sipas_form, &raw)
                .filter(|_| n >= opts.min_n.max(1))
                .map(percent);
            assert_close(
                point.index.value,
                expected,
                &format!("trend {}: index", point.month),
            );
        }
    }
    // The ranking sums the same cells its own way (numbered code slots, grouped by unit and
    // channel group while read): each row must equal that unit's own report, for whole months
    // and for a range with edge days.
    let mut ranked_rows = 0;
    for kind in ["department", "commune"] {
        for period in [&year, &range] {
            let rows = sipas::report::ranking(conn, &forms, &opts, kind, period).unwrap();
            for row in &rows {
                let unit = units.iter().find(|u| u.id == row.unit.id).unwrap();
                let report = sipas::report::unit_report(
                    conn,
                    &forms,
                    &opts,
                    unit,
                    period,
                    &Slice::default(),
                )
                .unwrap();
                let what = format!("ranking {kind} {} {}", period.label(), unit.code);
                let index = &report.sipas.as_ref().unwrap().index;
                assert_eq!(
                    (row.index.n, row.index.value),
                    (index.n, index.value),
                    "{what}"
                );
                assert_eq!(row.sample, report.sample, "{what}");
                assert_eq!(row.dossier_rate, report.dossier_rate.rate, "{what}");
                let gap = report.gap.as_ref().unwrap();
                assert_eq!(
                    (row.gap, row.gap_significant),
                    (gap.difference, gap.significant),
                    "{what}"
                );
                ranked_rows += usize::from(row.index.value.is_some());
            }
        }
    }
    assert!(ranked_rows >= 8, "rankings with figures: {ranked_rows}");
    // The property is only worth something if figures were actually shown.
    assert!(
        shown > checked,
        "{shown} figures shown over {checked} reports: too much suppressed to test anything"
    );
    eprintln!(
        "rollups = raw answers: {checked} form reports, {shown} shown indices, {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------- scope, suppression, exports

fn dossier(app: &TestApp, unit: &str, code: &str, form: &str, email: Option<&str>) -> Value {
    let offset = offset(app);
    let now = chrono::Utc::now().with_timezone(&offset);
    let mut body = json!({
        "unit": unit,
        "dossier_code": code,
        "procedure": "LLTP-01",
        "received_at": (now - Duration::days(3)).to_rfc3339(),
        "due_at": (now + Duration::days(3)).to_rfc3339(),
        "completed_at": (now - Duration::hours(1)).to_rfc3339(),
        "form": form,
    });
    if let Some(e) = email {
        body["email"] = json!(e);
    }
    body
}

/// Splits CSV text into records (quoted fields may hold commas, quotes and line breaks).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => record.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
            }
            (false, c) => field.push(c),
        }
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field);
        records.push(record);
    }
    records
}

/// Every `value` field in a JSON tree, with its path.
fn values_in(v: &Value, path: &str, out: &mut Vec<(String, Value)>) {
    match v {
        Value::Object(map) => {
            for (k, x) in map {
                let p = format!("{path}.{k}");
                if k == "value" {
                    out.push((p.clone(), x.clone()));
                }
                values_in(x, &p, out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                values_in(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

async fn reports_respect_scope_and_suppression(app: TestApp) {
    let year = local_today(&app).format("%Y").to_string();
    let stp = unit_id(&app, "STP");
    let sxd = unit_id(&app, "SXD");
    let sipas_form = app.state.forms.latest("sipas").unwrap();

    // Three answered SIPAS surveys at the Department of Justice: fewer than the minimum of 5.
    let mut secrets = Vec::new();
    for (i, email) in [Some("nguoi.dan@example.vn"), None, None]
        .iter()
        .enumerate()
    {
        let code = format!("HS-STP-BAO-CAO-{i}");
        let response = app
            .post_transaction(&dossier(&app, "STP", &code, "sipas", *email))
            .await;
        assert_eq!(response.status(), 201);
        let issued: Value = response.json().await.unwrap();
        let url = issued["survey_url"].as_str().unwrap();
        assert_eq!(
            app.submit(url, &full_answers(&sipas_form)).await.status(),
            200
        );
        secrets.push(issued["token"].as_str().unwrap().to_string());
        secrets.push(code);
    }
    secrets.push("nguoi.dan@example.vn".into());

    // An agency of the Department of Justice: its own report, never another department's.
    create_user(&app, "can-bo-stp", Role::Agency, Some("STP"), None);
    let agency = sign_in(&app, "can-bo-stp", TEST_PASSWORD).await;
    let other = agency
        .get(&app, &format!("/reports/units/{sxd}?period={year}"))
        .await;
    assert_eq!(other.status(), 404, "another department's report");
    let content_type = other.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    let body = other.text().await.unwrap();
    assert!(
        content_type.starts_with("text/html"),
        "a page, not JSON: {content_type}"
    );
    assert!(body.contains("Không có đơn vị này."), "{body}");
    assert!(!body.contains("Sở Xây dựng"), "nothing of the unit leaks");
    for path in [
        format!("/api/v1/reports/units/{sxd}?period={year}"),
        format!("/reports/units/{sxd}/export.csv?period={year}"),
        format!("/reports/units/{sxd}/print?period={year}"),
    ] {
        assert_eq!(agency.get(&app, &path).await.status(), 404, "{path}");
    }
    let own = agency
        .page(&app, &format!("/reports/units/{stp}?period={year}"))
        .await;
    assert!(own.contains("Sở Tư pháp"));
    assert!(own.contains("id=\"sipas-n\">3<"), "three responses counted");

    // Below the minimum every share is hidden: `value: null`, but the counts stay.
    let response = agency
        .get(&app, &format!("/api/v1/reports/units/{stp}?period={year}"))
        .await;
    assert_eq!(response.status(), 200);
    let report: Value = response.json().await.unwrap();
    let sipas = &report["sipas"];
    assert_eq!(sipas["responses"], 3);
    assert_eq!(sipas["index"]["n"], 3);
    let mut values = Vec::new();
    values_in(sipas, "sipas", &mut values);
    assert!(values.len() > 20, "{values:?}");
    for (path, v) in &values {
        assert!(v.is_null(), "{path} is shown below the minimum: {v}");
    }
    for e in sipas["elements"].as_array().unwrap() {
        assert!(e["index"]["ci_low"].is_null() && e["index"]["ci_high"].is_null());
        for i in e["items"].as_array().unwrap() {
            assert_eq!(i["satisfied"]["n"], 3, "{}", i["code"]);
            assert!(i["distribution"].is_null() && i["mean"].is_null(), "{i}");
        }
    }
    for c in sipas["choices"].as_array().unwrap() {
        for o in c["options"].as_array().unwrap() {
            assert!(o[3].is_null(), "choice counts hidden: {o}");
        }
    }

    // The unit's CSV: a BOM for Excel and the Vietnamese element titles.
    let csv = agency
        .get(
            &app,
            &format!("/reports/units/{stp}/export.csv?period={year}"),
        )
        .await;
    assert_eq!(csv.status(), 200);
    assert!(
        csv.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let bytes = csv.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM first");
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8");
    for s in sipas_form.sections.iter().filter(|s| s.element) {
        assert!(
            text.contains(&s.title.vi),
            "{} missing from the CSV",
            s.title.vi
        );
    }

    // The ranking is the province's: not for an agency, in JSON or as a page.
    let ranking = agency
        .get(&app, &format!("/api/v1/reports/ranking?period={year}"))
        .await;
    assert_eq!(ranking.status(), 403);
    assert_eq!(
        agency
            .get(&app, &format!("/reports/ranking?period={year}"))
            .await
            .status(),
        403
    );

    // The response-level export: one line per SIPAS response of the period, every question,
    // nothing that identifies a dossier or a person.
    let offset = offset(&app);
    sipas::synthetic::generate(
        &mut app.conn(),
        &app.state.forms,
        600,
        420,
        sipas::db::now(),
        11,
        offset,
    )
    .unwrap();
    let admin = sign_in_admin(&app).await;
    let response = admin
        .get(
            &app,
            &format!("/admin/export/responses.csv?form=sipas&period={year}"),
        )
        .await;
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.unwrap();
    assert!(bytes.starts_with(b"\xEF\xBB\xBF"), "UTF-8 BOM first");
    let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
    let records = parse_csv(&text);
    let header = &records[0];
    let data = &records[1..];
    let (from, until) = utc_bounds(&Period::parse(&year).unwrap(), offset);
    let expected: i64 = {
        let conn = &mut app.conn();
        db_run!(conn: {
            responses::table
                .filter(responses::form_code.eq("sipas"))
                .filter(responses::submitted_at.ge(from))
                .filter(responses::submitted_at.lt(until))
                .count()
                .get_result(conn)
        })
        .unwrap()
    };
    let all: i64 = {
        let conn = &mut app.conn();
        db_run!(conn: { responses::table.filter(responses::form_code.eq("sipas")).count().get_result(conn) })
            .unwrap()
    };
    assert!(
        expected < all,
        "some responses fall before the period ({expected} of {all})"
    );
    assert_eq!(
        data.len() as i64,
        expected,
        "one line per response of {year}"
    );
    // Read in pages of 2 rows, the export continues each page after the last row written:
    // the same lines in the same order as the one-page download.
    {
        let conn = &mut app.conn();
        let form = app.state.forms.latest("sipas").unwrap();
        let mut export =
            sipas::report::response_export::ResponseExport::new(conn, &form, from, until)
                .unwrap()
                .page_size(2);
        let mut paged = export.header();
        while let Some(page) = export.next_page(conn).unwrap() {
            paged.push_str(&page);
        }
        assert_eq!(export.rows() as i64, expected);
        assert_eq!(
            paged.as_bytes(),
            &bytes[..],
            "paged export = streamed export"
        );
    }
    let raw_lines = text.split("\r\n").filter(|l| !l.is_empty()).count();
    assert_eq!(raw_lines, records.len(), "CSV records and lines agree");
    assert!(
        data.iter().all(|r| r.len() == header.len()),
        "every line has every column"
    );
    let questions: Vec<String> = sipas_form.questions().map(|q| q.code.clone()).collect();
    for q in &questions {
        assert!(header.contains(q), "column {q} missing: {header:?}");
    }
    let unique: HashSet<&String> = data.iter().map(|r| &r[0]).collect();
    assert_eq!(unique.len(), data.len(), "each response once");
    for column in header {
        let c = column.to_lowercase();
        for word in ["token", "dossier", "email", "e-mail", "mail", "transaction"] {
            assert!(!c.contains(word), "personal or dossier column: {column}");
        }
    }
    let secret_texts: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .chain(["SYN-", "@"])
        .collect();
    for record in data {
        for value in record {
            for s in &secret_texts {
                assert!(!value.contains(s), "{s:?} exported in {record:?}");
            }
        }
    }
    let transaction_ids: Vec<String> = {
        let conn = &mut app.conn();
        db_run!(conn: {
            sipas::db::schema::transactions::table
                .select(sipas::db::schema::transactions::id)
                .load(conn)
        })
        .unwrap()
    };
    let transaction_ids: HashSet<&str> = transaction_ids.iter().map(String::as_str).collect();
    assert!(
        data.iter()
            .flatten()
            .all(|v| !transaction_ids.contains(v.as_str())),
        "no transaction ids exported"
    );
}

// ---------------------------------------------------------------- Decision 766

async fn dossier_rate_counts_unsatisfied_or_late_once(app: TestApp) {
    let offset = offset(&app);
    let today = local_today(&app);
    // The previous local month: its first and last local days, and the next month's first day.
    let next = first_of_month(today);
    let last = next - Duration::days(1);
    let first = first_of_month(last);
    let at = |day: NaiveDate, h, m, s| local_time(offset, day, h, m, s);
    let d = |n: i64| first + Duration::days(n);
    // (dossier, received, due, completed, OVERALL answered)
    let dossiers = [
        // Completed at 00:30 local on the 1st (still the previous day in UTC); rated 3.
        (
            "HS-766-1",
            at(d(-3), 8, 0, 0),
            at(d(4), 17, 0, 0),
            at(first, 0, 30, 0),
            Some("3"),
        ),
        // Completed after its due time, and rated 1 (Không hài lòng): subtracted once.
        (
            "HS-766-2",
            at(d(5), 8, 0, 0),
            at(d(9), 17, 0, 0),
            at(d(12), 10, 0, 0),
            Some("1"),
        ),
        // On time, not rated.
        (
            "HS-766-3",
            at(d(14), 8, 0, 0),
            at(d(20), 17, 0, 0),
            at(d(18), 9, 0, 0),
            None,
        ),
        // Completed on the last second of the month, exactly at its due time: on time.
        (
            "HS-766-4",
            at(last, 8, 0, 0),
            at(last, 23, 59, 59),
            at(last, 23, 59, 59),
            None,
        ),
        // Late, but completed at 00:00 local on the next month's first day: not this month.
        (
            "HS-766-5",
            at(last, 8, 0, 0),
            at(last, 17, 0, 0),
            at(next, 0, 0, 0),
            None,
        ),
        // Late, completed on the last second of the month before: not this month either.
        (
            "HS-766-6",
            at(d(-10), 8, 0, 0),
            at(d(-5), 17, 0, 0),
            at(first - Duration::days(1), 23, 59, 59),
            None,
        ),
    ];
    let transaction_form = app.state.forms.latest("transaction").unwrap();
    for (code, received, due, completed, overall) in &dossiers {
        let response = app
            .post_transaction(&json!({
                "unit": "STP",
                "dossier_code": code,
                "procedure": "LLTP-01",
                "received_at": received,
                "due_at": due,
                "completed_at": completed,
                "form": "transaction",
            }))
            .await;
        let status = response.status();
        let issued: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{code}: {issued}");
        assert_eq!(issued["form"], "transaction");
        if let Some(level) = overall {
            let mut fields = full_answers(&transaction_form);
            for (k, v) in fields.iter_mut() {
                if k == "OVERALL" {
                    *v = level.to_string();
                }
            }
            let url = issued["survey_url"].as_str().unwrap();
            assert_eq!(app.submit(url, &fields).await.status(), 200, "{code}");
        }
    }

    let admin = sign_in_admin(&app).await;
    let stp = unit_id(&app, "STP");
    let report_of = |period: String| {
        let admin = &admin;
        let app = &app;
        let stp = &stp;
        async move {
            let response = admin
                .get(app, &format!("/api/v1/reports/units/{stp}?period={period}"))
                .await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    let month = first.format("%Y-%m").to_string();
    let report = report_of(month.clone()).await;
    let rate = &report["dossier_rate"];
    assert_eq!(
        rate["counts"],
        json!({ "dossiers": 4, "rated_unsatisfied": 1, "late": 1, "unsatisfied_or_late": 1 }),
        "{month}: {rate}"
    );
    // (4 − |{HS-766-2} ∪ {HS-766-2}|) / 4
    assert_eq!(rate["rate"], json!(75.0), "{rate}");
    assert_eq!(report["sample"]["population"], 4);
    let page = admin
        .page(&app, &format!("/reports/units/{stp}?period={month}"))
        .await;
    assert!(
        page.contains("<td id=\"dossier-rate-value\">75,0 %</td>"),
        "the page shows the same rate"
    );
    // The province counts the same dossiers.
    let province = unit_id(&app, "SON-HA");
    let response = admin
        .get(
            &app,
            &format!("/api/v1/reports/units/{province}?period={month}"),
        )
        .await;
    let whole: Value = response.json().await.unwrap();
    assert_eq!(whole["dossier_rate"], report["dossier_rate"]);
    // The dossiers on either side of the month count in their own months.
    let this_month = report_of(next.format("%Y-%m").to_string()).await;
    assert_eq!(
        this_month["dossier_rate"]["counts"],
        json!({ "dossiers": 1, "rated_unsatisfied": 0, "late": 1, "unsatisfied_or_late": 1 })
    );
    assert_eq!(this_month["dossier_rate"]["rate"], json!(0.0));
    let before = report_of((first - Duration::days(1)).format("%Y-%m").to_string()).await;
    assert_eq!(before["dossier_rate"]["counts"]["dossiers"], 1);
    assert_eq!(before["dossier_rate"]["counts"]["late"], 1);
    // A range ending on the month's last day, starting on its first: same dossiers.
    let range = report_of(format!("{}..{}", d(0), last)).await;
    assert_eq!(range["dossier_rate"], report["dossier_rate"]);
    let range = report_of(format!("{}..{}", d(1), last)).await;
    assert_eq!(
        range["dossier_rate"]["counts"]["dossiers"], 3,
        "without the 1st, HS-766-1 is out"
    );
    // The ratings were stored on the dossiers.
    let conn = &mut app.conn();
    let ratings: Vec<(String, Option<i64>)> = db_run!(conn: {
        use sipas::db::schema::transactions;
        transactions::table
            .select((transactions::dossier_code, transactions::rating))
            .order(transactions::dossier_code)
            .load(conn)
    })
    .unwrap();
    assert_eq!(
        ratings,
        vec![
            ("HS-766-1".to_string(), Some(3)),
            ("HS-766-2".to_string(), Some(1)),
            ("HS-766-3".to_string(), None),
            ("HS-766-4".to_string(), None),
            ("HS-766-5".to_string(), None),
            ("HS-766-6".to_string(), None),
        ]
    );
}

#[actix_web::test]
async fn report_api_refusals_are_json() {
    let app = crate::helpers::TestApp::spawn(crate::helpers::Backend::Sqlite).await;
    let anonymous = app
        .client
        .get(app.url("/api/v1/reports/ranking"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    let body: serde_json::Value = anonymous.json().await.unwrap();
    assert!(
        body["error"]["message_en"]
            .as_str()
            .unwrap()
            .contains("sign in")
    );
    crate::helpers::staff::create_user(
        &app,
        "json-agency",
        sipas::accounts::Role::Agency,
        Some("STP"),
        None,
    );
    let agency =
        crate::helpers::staff::sign_in(&app, "json-agency", crate::helpers::staff::TEST_PASSWORD)
            .await;
    let refused = agency.get(&app, "/api/v1/reports/ranking").await;
    assert_eq!(refused.status(), 403);
    assert!(
        refused.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
}
