//! Synthetic transactions and responses for demos and benchmarks (`sipas demo --responses N`).
//!
//! Written through the same storage path as real answers (the batch writer and its rollups), so
//! reports on synthetic data exercise exactly what production runs. Reproducible from a seed.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::db::DbConn;
use crate::db::schema::transactions;
use crate::db_run;
use crate::forms::answers::AnswerValue;
use crate::forms::{Form, FormKind, FormRegistry, QuestionType, scoring};
use crate::survey::rollup::{DossierChange, RollupDelta};
use crate::survey::writer::{NewResponse, Submission, store_batch};
use crate::{procedures, units};

const BATCH: usize = 2000;

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

fn answers_for(rng: &mut StdRng, form: &Form, quality: f64) -> Vec<AnswerValue> {
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

/// Adds `count` responses (SIPAS and transaction forms) and matching dossiers over the `days`
/// before `end`, spread over the active units.
pub fn generate(
    conn: &mut DbConn,
    forms: &FormRegistry,
    count: u64,
    days: i64,
    end: NaiveDateTime,
    seed: u64,
    utc_offset: chrono::FixedOffset,
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
    let mut done = Generated::default();
    let mut batch = Vec::with_capacity(BATCH);
    let mut dossiers = Vec::with_capacity(BATCH);
    while done.responses < count {
        let u = rng.random_range(0..active.len());
        let unit = &active[u];
        let procedure = &procs[rng.random_range(0..procs.len())];
        let submitted = end - Duration::seconds(rng.random_range(0..days.max(1) * 86_400));
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
        let transaction_id = uuid::Uuid::new_v4().to_string();
        let received = submitted - Duration::days(rng.random_range(1..15));
        let due = received + Duration::days(7);
        let completed = submitted - Duration::hours(rng.random_range(0..48));
        dossiers.push((
            transaction_id.clone(),
            unit.id.clone(),
            procedure.id.clone(),
            received,
            due,
            completed.max(received),
            form.code.clone(),
            form.version,
            (!use_sipas).then_some(overall).flatten(),
        ));
        batch.push(Submission {
            token_hash: None,
            response: NewResponse {
                id: uuid::Uuid::new_v4().to_string(),
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
        });
        done.responses += 1;
        if batch.len() == BATCH || done.responses == count {
            insert_dossiers(conn, &dossiers, utc_offset)?;
            done.transactions += dossiers.len() as u64;
            dossiers.clear();
            store_batch(conn, &batch, utc_offset)?;
            batch.clear();
        }
    }
    Ok(done)
}

type Dossier = (
    String,
    String,
    String,
    NaiveDateTime,
    NaiveDateTime,
    NaiveDateTime,
    String,
    i64,
    Option<i64>,
);

fn insert_dossiers(
    conn: &mut DbConn,
    rows: &[Dossier],
    utc_offset: chrono::FixedOffset,
) -> QueryResult<()> {
    let mut delta = RollupDelta::default();
    for (_, unit, _, _, due, completed, _, _, rating) in rows {
        let change = DossierChange::of_dossier(*completed, Some(*due), *rating);
        delta.add_dossier(unit, *completed, utc_offset, change);
    }
    let now = crate::db::now();
    let values: Vec<_> = rows
        .iter()
        .map(
            |(id, unit, procedure, received, due, completed, form, version, rating)| {
                (
                    transactions::id.eq(id),
                    transactions::unit_id.eq(unit),
                    transactions::dossier_code.eq(format!("SYN-{}", &id[..18])),
                    transactions::procedure_id.eq(procedure),
                    transactions::received_at.eq(*received),
                    transactions::due_at.eq(Some(*due)),
                    transactions::completed_at.eq(*completed),
                    transactions::form_code.eq(form),
                    transactions::form_version.eq(*version),
                    transactions::rating.eq(*rating),
                    transactions::created_at.eq(now),
                )
            },
        )
        .collect();
    conn.write_transaction(|conn| {
        db_run!(conn: {
            for chunk in values.chunks(500) {
                diesel::insert_into(transactions::table).values(chunk).execute(conn)?;
            }
            QueryResult::Ok(())
        })?;
        delta.apply(conn)
    })
}
