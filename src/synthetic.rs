//! Synthetic transactions and responses for demos and benchmarks (`sipas demo --responses N`).
//!
//! Written through the same storage path as real answers (the batch writer and its rollups), so
//! reports on synthetic data exercise exactly what production runs. Reproducible from a seed.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::calendar::{local_day, month_of};
use crate::db::DbConn;
use crate::db::schema::transactions;
use crate::db_run;
use crate::forms::answers::AnswerValue;
use crate::forms::{Form, FormKind, FormRegistry, QuestionType, scoring};
use crate::rollup::{DossierChange, RollupDelta};
use crate::survey::response::{NewResponse, Submission};
use crate::survey::store::insert_responses;
use crate::{procedures, units};

/// How `generate` went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Generated {
    pub responses: u64,
    pub transactions: u64,
}

fn level(rng: &mut StdRng, kind: QuestionType, quality: f64) -> i64 {
    match kind {
        QuestionType::Scale5 => {
            if rng.random_bool(0.04) {
                0
            } else if rng.random_bool(quality) {
                if rng.random_bool(0.45) { 5 } else { 4 }
            } else {
                rng.random_range(1..=3)
            }
        }
        _ => {
            if rng.random_bool(quality) {
                if rng.random_bool(0.4) { 3 } else { 2 }
            } else {
                1
            }
        }
    }
}

pub(crate) fn answers_for(rng: &mut StdRng, form: &Form, quality: f64) -> Vec<AnswerValue> {
    let mut out = Vec::new();
    for q in form.questions() {
        let value = |value_int, value_text: Option<String>, levels| AnswerValue {
            question_code: q.code.clone(),
            value_int,
            value_text,
            rollup_levels: levels,
        };
        match q.kind {
            QuestionType::Scale5 | QuestionType::Scale3 => {
                if !q.required && rng.random_bool(0.3) {
                    continue;
                }
                let l = level(rng, q.kind, quality);
                out.push(value(Some(l), None, vec![l]));
            }
            QuestionType::Choice => {
                if !q.required && rng.random_bool(0.2) {
                    continue;
                }
                let weights: Vec<f64> = (0..q.options.len())
                    .map(|i| 1.0 / (i as f64 + 1.0))
                    .collect();
                let total: f64 = weights.iter().sum();
                let mut pick = rng.random_range(0.0..total);
                let mut position = 0;
                for (i, w) in weights.iter().enumerate() {
                    if pick < *w {
                        position = i;
                        break;
                    }
                    pick -= w;
                }
                out.push(value(
                    Some(position as i64 + 1),
                    Some(q.options[position].code.clone()),
                    vec![position as i64 + 1],
                ));
            }
            QuestionType::Multi => {
                let n = rng.random_range(0..=q.max_choices.min(q.options.len()));
                let mut chosen: Vec<i64> = Vec::new();
                while chosen.len() < n {
                    let p = rng.random_range(1..=q.options.len() as i64);
                    if !chosen.contains(&p) {
                        chosen.push(p);
                    }
                }
                if chosen.is_empty() {
                    continue;
                }
                chosen.sort_unstable();
                let codes: Vec<&str> = chosen
                    .iter()
                    .map(|p| q.options[(*p - 1) as usize].code.as_str())
                    .collect();
                out.push(value(None, Some(codes.join(",")), chosen));
            }
            QuestionType::Text => {
                if rng.random_bool(0.1) {
                    out.push(value(
                        None,
                        Some("Đề nghị rút ngắn thời gian chờ.".into()),
                        vec![0],
                    ));
                }
            }
        }
    }
    out
}

/// Adds synthetic communes under the demo province until `wanted` units (besides the province
/// itself) are active, for benchmarks at the scale of a real province. Returns how many it added.
pub fn ensure_units(conn: &mut DbConn, wanted: usize) -> anyhow::Result<usize> {
    let today = crate::db::now().date();
    let active = units::list(conn)?
        .into_iter()
        .filter(|u| u.is_valid_on(today) && u.kind != "province")
        .count();
    let valid_from = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or(today);
    let mut added = 0;
    for i in 1..=wanted.saturating_sub(active) {
        let code = format!("XA-{i:04}");
        let (vi, en) = (
            format!("UBND xã Thử nghiệm {i}"),
            format!("Test Commune {i}"),
        );
        units::upsert(
            conn,
            &units::NewUnit {
                code: &code,
                name_vi: &vi,
                name_en: &en,
                kind: "commune",
                parent_code: Some(crate::demo::PROVINCE),
                valid_from,
                valid_to: None,
                merged_into_code: None,
            },
        )?;
        added += 1;
    }
    Ok(added)
}

/// Adds `count` responses (SIPAS and transaction forms) and matching dossiers over the `days`
/// before `end`, spread over the active units. Written a month at a time, each month in one
/// transaction with its rollups (the same increments and encoding as the request path, in
/// multi-row inserts), so ten million responses load in minutes.
pub fn generate(
    conn: &mut DbConn,
    forms: &FormRegistry,
    count: u64,
    days: i64,
    end: NaiveDateTime,
    seed: u64,
    utc_offset: chrono::FixedOffset,
) -> anyhow::Result<Generated> {
    let hidden = indicatif::ProgressBar::hidden();
    generate_with_progress(conn, forms, count, days, end, seed, utc_offset, &hidden)
}

/// [`generate`], advancing `progress` by one per response (and naming the month being written),
/// so that `sipas demo --responses 10000000` shows its rate and time left.
#[allow(clippy::too_many_arguments)]
pub fn generate_with_progress(
    conn: &mut DbConn,
    forms: &FormRegistry,
    count: u64,
    days: i64,
    end: NaiveDateTime,
    seed: u64,
    utc_offset: chrono::FixedOffset,
    progress: &indicatif::ProgressBar,
) -> anyhow::Result<Generated> {
    let mut rng = StdRng::seed_from_u64(seed);
    let today = end.date();
    let active: Vec<units::Unit> = units::list(conn)?
        .into_iter()
        .filter(|u| u.is_valid_on(today) && u.kind != "province")
        .collect();
    let procs = procedures::list(conn)?;
    anyhow::ensure!(
        !active.is_empty() && !procs.is_empty(),
        "load the demo province (or units and procedures) first"
    );
    let by_kind = |kind| {
        forms
            .codes()
            .filter_map(|c| forms.latest(c))
            .find(|f| f.kind == kind)
    };
    let sipas = by_kind(FormKind::Sipas).ok_or_else(|| anyhow::anyhow!("no SIPAS form loaded"))?;
    let short = by_kind(FormKind::Transaction);
    // Each unit gets its own service quality, so rankings have something to rank.
    let quality: Vec<f64> = active
        .iter()
        .map(|_| rng.random_range(0.55..0.95))
        .collect();
    // Time order (oldest first), so each month's rows and rollups are written together.
    let span = days.max(1) * 86_400;
    let mut offsets: Vec<i64> = (0..count).map(|_| rng.random_range(0..span)).collect();
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    let mut done = Generated::default();
    let mut month = Vec::new();
    let mut current_month = None;
    for (i, back) in offsets.into_iter().enumerate() {
        let submitted = end - Duration::seconds(back);
        let this_month = month_of(local_day(submitted, utc_offset));
        if current_month.is_some_and(|m| m != this_month) || month.len() >= MONTH_CHUNK {
            progress.set_message("writing");
            write_month(conn, &month, utc_offset)?;
            progress.set_message("responses");
            done.transactions += month.len() as u64;
            month.clear();
        }
        current_month = Some(this_month);
        let u = rng.random_range(0..active.len());
        let unit = &active[u];
        let procedure = &procs[rng.random_range(0..procs.len())];
        let use_sipas = short.is_none() || rng.random_bool(0.5);
        let form = if use_sipas {
            &sipas
        } else {
            short.as_ref().unwrap_or(&sipas)
        };
        let channel = match rng.random_range(0..100) {
            0..=69 => "qr",
            70..=79 => "link",
            80..=84 => "kiosk",
            _ if use_sipas => "paper",
            _ => "qr",
        };
        let answers = answers_for(&mut rng, form, quality[u]);
        let respondent_type = form
            .question_with_role(crate::forms::QuestionRole::RespondentType)
            .and_then(|q| answers.iter().find(|a| a.question_code == q.code))
            .and_then(|a| a.value_text.clone());
        let overall = form
            .question_with_role(crate::forms::QuestionRole::Overall)
            .and_then(|q| answers.iter().find(|a| a.question_code == q.code))
            .and_then(|a| a.value_int);
        let received = submitted - Duration::days(rng.random_range(1..15));
        let completed = (submitted - Duration::hours(rng.random_range(0..48))).max(received);
        let dossier = Dossier {
            id: uuid::Uuid::now_v7().to_string(),
            code: format!("SYN-{seed}-{i}"),
            unit_id: unit.id.clone(),
            procedure_id: procedure.id.clone(),
            received,
            due: received + Duration::days(7),
            completed,
            form_code: form.code.clone(),
            form_version: form.version,
            rating: (!use_sipas).then_some(overall).flatten(),
        };
        let submission = Submission {
            token_hash: None,
            response: NewResponse {
                id: uuid::Uuid::now_v7().to_string(),
                unit_id: unit.id.clone(),
                procedure_id: Some(procedure.id.clone()),
                form_code: form.code.clone(),
                form_version: form.version,
                channel: channel.into(),
                respondent_type,
                language: "vi".into(),
                issued_at: Some(completed),
                opened_at: Some(submitted - Duration::seconds(rng.random_range(30..600))),
                submitted_at: submitted,
                provenance: (channel == "paper").then(|| r#"{"synthetic":true}"#.to_string()),
            },
            scores: scoring::respondent_scores(form, &answers),
            answers,
            dossier_rating: None,
            transaction_id: None,
            screening: None,
        };
        month.push((dossier, submission));
        done.responses += 1;
        progress.inc(1);
    }
    progress.set_message("writing");
    write_month(conn, &month, utc_offset)?;
    done.transactions += month.len() as u64;
    Ok(done)
}

/// At most this many responses per transaction (a busy month is split).
const MONTH_CHUNK: usize = 200_000;

/// A synthetic dossier behind one response.
struct Dossier {
    id: String,
    code: String,
    unit_id: String,
    procedure_id: String,
    received: NaiveDateTime,
    due: NaiveDateTime,
    completed: NaiveDateTime,
    form_code: String,
    form_version: i64,
    rating: Option<i64>,
}

/// Writes dossiers, responses and every rollup they change in one transaction.
fn write_month(
    conn: &mut DbConn,
    rows: &[(Dossier, Submission)],
    utc_offset: chrono::FixedOffset,
) -> QueryResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut delta = RollupDelta::default();
    for (d, submission) in rows {
        let change = DossierChange::of_dossier(d.completed, Some(d.due), d.rating);
        delta.add_dossier(&d.unit_id, d.completed, utc_offset, change);
        delta.add(submission, utc_offset);
    }
    let now = crate::db::now();
    conn.write_transaction(|conn| {
        // 11 columns × 2,000 rows stays under SQLite's 32,766 bound values.
        for chunk in rows.chunks(2000) {
            let values: Vec<_> = chunk
                .iter()
                .map(|(d, _)| {
                    (
                        transactions::id.eq(&d.id),
                        transactions::unit_id.eq(&d.unit_id),
                        transactions::dossier_code.eq(&d.code),
                        transactions::procedure_id.eq(&d.procedure_id),
                        transactions::received_at.eq(d.received),
                        transactions::due_at.eq(Some(d.due)),
                        transactions::completed_at.eq(d.completed),
                        transactions::form_code.eq(&d.form_code),
                        transactions::form_version.eq(d.form_version),
                        transactions::rating.eq(d.rating),
                        transactions::created_at.eq(now),
                    )
                })
                .collect();
            db_run!(conn: { diesel::insert_into(transactions::table).values(values).execute(conn) })?;
        }
        let submissions: Vec<&Submission> = rows.iter().map(|(_, s)| s).collect();
        insert_responses(conn, &submissions)?;
        delta.apply(conn)
    })
}
