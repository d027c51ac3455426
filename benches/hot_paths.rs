//! Micro-benchmarks of the CPU work on the hot paths of issue #7, through the library's public
//! API only: what a registration, a QR code, a submission and a report cost before any I/O.
//!
//! `cargo bench --bench hot_paths` (add a filter, e.g. `-- qr`, to run some).

use std::hint::black_box;
use std::path::PathBuf;

use chrono::FixedOffset;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sipas::forms::answers::{self, ValidAnswers};
use sipas::forms::{Form, QuestionType};
use sipas::report::figures::{self, Tally};
use sipas::rollup::{RESPONSES_COUNTER, RollupDelta};
use sipas::secret::ServerSecret;
use sipas::survey::qr;
use sipas::survey::response::{NewResponse, Submission};
use sipas::survey::token::{self, SurveyToken};

/// Submissions one group commit may hold by default (`SIPAS_MAX_BATCH`).
const BATCH: usize = 512;

fn sipas_form() -> Form {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("survey-forms/sipas-v1.toml");
    sipas::forms::definition::load_file(&path).expect("the shipped SIPAS form loads")
}

fn secret() -> ServerSecret {
    ServerSecret::from_bytes(b"bench-secret-bench-secret-bench-secret".to_vec())
}

/// A complete SIPAS submission as the survey page posts it; `variant` shifts the levels.
fn full_fields(form: &Form, variant: usize) -> Vec<(String, String)> {
    let mut fields = vec![("lang".to_string(), "vi".to_string())];
    for (n, q) in form.questions().enumerate() {
        let value = match q.kind {
            QuestionType::Scale5 => ((n + variant) % 5 + 1).to_string(),
            QuestionType::Scale3 => ((n + variant) % 3 + 1).to_string(),
            QuestionType::Choice | QuestionType::Multi => {
                q.options[(n + variant) % q.options.len()].code.clone()
            }
            QuestionType::Text => "Cán bộ nhiệt tình, hướng dẫn rõ ràng. Cảm ơn!".to_string(),
        };
        fields.push((q.code.clone(), value));
    }
    fields
}

fn submission(form: &Form, valid: ValidAnswers, i: usize) -> Submission {
    Submission {
        token_hash: Some(format!("{i:064x}")),
        response: NewResponse {
            id: format!("response-{i}"),
            unit_id: format!("unit-{}", i % 8),
            procedure_id: Some(format!("procedure-{}", i % 20)),
            form_code: form.code.clone(),
            form_version: form.version,
            channel: if i.is_multiple_of(3) { "link" } else { "qr" }.into(),
            respondent_type: valid.respondent_type.clone(),
            language: "vi".into(),
            issued_at: Some(sipas::db::now()),
            opened_at: None,
            submitted_at: sipas::db::now(),
            provenance: None,
        },
        scores: sipas::forms::scoring::respondent_scores(form, &valid.answers),
        answers: valid.answers,
        dossier_rating: None,
        transaction_id: Some(format!("transaction-{i}")),
        screening: None,
    }
}

fn tokens(c: &mut Criterion) {
    let secret = secret();
    let mut group = c.benchmark_group("token");
    group.bench_function("mint (HMAC + base32 + stored SHA-256)", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let token = SurveyToken::for_transaction(&secret, &format!("transaction-{i}"));
            black_box(token.hash())
        })
    });
    let issued = SurveyToken::for_transaction(&secret, "transaction-1");
    let url_text = issued.as_str().to_ascii_lowercase();
    group.bench_function("verify (parse from URL + lookup hash)", |b| {
        b.iter(|| {
            let token = SurveyToken::parse(black_box(&url_text)).expect("valid");
            black_box(token.hash())
        })
    });
    let hash = issued.hash();
    let opened = token::sign_opened(&secret, &hash, 1_780_000_000);
    group.bench_function("verify signed opening time", |b| {
        b.iter(|| black_box(token::verify_opened(&secret, &hash, black_box(&opened))))
    });
    group.finish();
}

fn validation(c: &mut Criterion) {
    let form = sipas_form();
    let fields = full_fields(&form, 0);
    let mut group = c.benchmark_group("forms");
    group.bench_function("validate full SIPAS submission", |b| {
        b.iter(|| black_box(answers::validate(&form, black_box(&fields)).expect("valid")))
    });
    group.bench_function("validate + respondent scores", |b| {
        b.iter(|| {
            let valid = answers::validate(&form, black_box(&fields)).expect("valid");
            black_box(sipas::forms::scoring::respondent_scores(
                &form,
                &valid.answers,
            ))
        })
    });
    group.finish();
}

fn qr_codes(c: &mut Criterion) {
    let base = "https://sipas.sonha.gov.vn";
    let url = format!(
        "{base}/s/{}",
        SurveyToken::for_transaction(&secret(), "transaction-1").as_str()
    );
    let text = qr::qr_text(base, &url);
    let mut group = c.benchmark_group("qr");
    group.bench_function("svg", |b| {
        b.iter(|| black_box(qr::svg(black_box(&text)).expect("encodes")))
    });
    group.bench_function("png scale 8", |b| {
        b.iter(|| black_box(qr::png(black_box(&text), 8).expect("encodes")))
    });
    group.bench_function("encode only", |b| {
        b.iter(|| black_box(qr::Matrix::encode(black_box(&text)).expect("encodes")))
    });
    // Baseline: the `qrcode` crate's own mask selection and SVG renderer (what sipas used first).
    group.bench_function("svg, qrcode crate baseline", |b| {
        b.iter(|| {
            let code = qrcode::QrCode::with_error_correction_level(
                black_box(text.as_bytes()),
                qrcode::EcLevel::Q,
            )
            .expect("encodes");
            black_box(
                code.render::<qrcode::render::svg::Color>()
                    .min_dimensions(240, 240)
                    .quiet_zone(true)
                    .build(),
            )
        })
    });
    group.finish();
}

fn rollups(c: &mut Criterion) {
    let form = sipas_form();
    let batch: Vec<Submission> = (0..BATCH)
        .map(|i| {
            let valid = answers::validate(&form, &full_fields(&form, i)).expect("valid");
            submission(&form, valid, i)
        })
        .collect();
    let offset = FixedOffset::east_opt(7 * 3600).expect("UTC+7");
    let mut group = c.benchmark_group("rollup");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("RollupDelta::add, batch of 512 SIPAS submissions", |b| {
        b.iter_batched(
            RollupDelta::default,
            |mut delta| {
                for s in &batch {
                    delta.add(s, offset);
                }
                delta
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

/// A year's tally of 20,000 SIPAS responses spread over every level of every question.
fn year_tally(form: &Form) -> Tally {
    let mut tally = Tally::default();
    let responses = 20_000u64;
    tally.add_count(RESPONSES_COUNTER, 0, responses);
    for (n, q) in form.questions().enumerate() {
        let levels: Vec<i64> = match q.kind {
            QuestionType::Scale5 => vec![0, 1, 2, 3, 4, 5],
            QuestionType::Scale3 => vec![1, 2, 3],
            QuestionType::Choice | QuestionType::Multi => (1..=q.options.len() as i64).collect(),
            QuestionType::Text => Vec::new(),
        };
        for (k, level) in levels.iter().enumerate() {
            let share = (k + n) as u64 % levels.len() as u64 + 1;
            tally.add_count(&q.code, *level, responses * share / 21);
        }
    }
    for section in form.sections.iter().filter(|s| s.element) {
        tally.add_score(&section.code, responses, 0.8 * 20_000.0, 0.7 * 20_000.0);
    }
    tally.add_score(
        sipas::forms::scoring::INDEX_CODE,
        responses,
        0.8 * 20_000.0,
        0.7 * 20_000.0,
    );
    tally
}

fn report_figures(c: &mut Criterion) {
    let form = sipas_form();
    let tally = year_tally(&form);
    let mut group = c.benchmark_group("report");
    group.bench_function("figures::compute from a SIPAS tally", |b| {
        b.iter(|| black_box(figures::compute(&form, black_box(&tally), 5)))
    });
    group.finish();
}

criterion_group!(
    benches,
    tokens,
    validation,
    qr_codes,
    rollups,
    report_figures
);
criterion_main!(benches);
