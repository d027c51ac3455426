//! The demo province with a story (`serve --demo`, `sipas demo --story`): six months of answers
//! in which the pages have something to show. The Department of Construction is clearly weak;
//! the Department of Home Affairs improves month after month; Tan Lap commune fills in its own
//! counter surveys (so the integrity signals flag it); the Department of Agriculture and
//! Environment is too busy for its sample; Binh Minh commune was merged from two communes whose
//! answers before the merger are history; paper batches sit at every custody step; some bad
//! ratings are followed up in time, some are overdue; a few e-mails are stuck. Suggestions vary
//! with how the citizen was served.
//!
//! Written through the production paths (screening, the batch writer with its rollups, the
//! sampling draw, batch custody, paper entry, case actions), reproducibly from a seed. Loading
//! it twice changes nothing: a loaded story is recognised by its dossier codes.

use chrono::{Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::audit::Actor;
use crate::db::DbConn;
use crate::db::schema::{outbox, transactions};
use crate::db_run;
use crate::forms::answers::AnswerValue;
use crate::forms::{Form, FormKind, FormRegistry, QuestionType, scoring};
use crate::integrity::{IntegrityPolicy, SubmitContext, fingerprint, screen};
use crate::mail::outbox::MailStatus;
use crate::rollup::{DossierChange, RollupDelta};
use crate::secret::ServerSecret;
use crate::survey::response::{NewResponse, Submission};
use crate::survey::store::store_batch;
use crate::{procedures, units};

/// Every dossier of the story has a code starting with this.
const PREFIX: &str = "STORY-";
/// Months of answers before the current one.
pub const MONTHS: u32 = 6;

/// How one unit serves its citizens in the story.
struct Role {
    code: &'static str,
    /// Share of satisfied answers month by month (oldest first); the last value also holds
    /// for the current month.
    quality: [f64; MONTHS as usize],
    dossiers: u32,
    counter: u32,
    paper: u32,
    /// Share of counter answers the unit's own staff fill in on the counter's computer.
    self_filled: f64,
}

fn roles() -> Vec<Role> {
    let flat = |q: f64| [q; MONTHS as usize];
    vec![
        Role {
            code: "HCC",
            quality: flat(0.82),
            dossiers: 110,
            counter: 85,
            paper: 15,
            self_filled: 0.0,
        },
        Role {
            code: "STP",
            quality: flat(0.88),
            dossiers: 100,
            counter: 80,
            paper: 15,
            self_filled: 0.0,
        },
        // Clearly weak.
        Role {
            code: "SXD",
            quality: flat(0.40),
            dossiers: 100,
            counter: 80,
            paper: 15,
            self_filled: 0.0,
        },
        // Improving after a change of leadership.
        Role {
            code: "SNV",
            quality: [0.45, 0.50, 0.56, 0.66, 0.78, 0.92],
            dossiers: 100,
            counter: 80,
            paper: 15,
            self_filled: 0.0,
        },
        // Busy: its sample falls short of what its dossiers require.
        Role {
            code: "SNNMT",
            quality: flat(0.74),
            dossiers: 260,
            counter: 60,
            paper: 10,
            self_filled: 0.0,
        },
        Role {
            code: "P-AN-HOA",
            quality: flat(0.78),
            dossiers: 100,
            counter: 80,
            paper: 15,
            self_filled: 0.0,
        },
        // Inflates its counter results: its paper answers tell the truth.
        Role {
            code: "X-TAN-LAP",
            quality: flat(0.58),
            dossiers: 100,
            counter: 85,
            paper: 20,
            self_filled: 0.45,
        },
        Role {
            code: "X-BINH-MINH",
            quality: flat(0.70),
            dossiers: 90,
            counter: 75,
            paper: 12,
            self_filled: 0.0,
        },
    ]
}

/// Before the July 2025 merger into Binh Minh, the two communes' last three months.
const MERGED_HISTORY: [(&str, f64); 2] = [("X-BINH-AN", 0.64), ("X-MINH-THANH", 0.74)];

/// What a citizen writes, by how the visit went.
const PRAISE: &[&str] = &[
    "Cán bộ hướng dẫn tận tình, dễ hiểu.",
    "Thủ tục nhanh gọn, trả kết quả đúng hẹn.",
    "Nơi chờ sạch sẽ, có nước uống và chỗ ngồi.",
    "Nộp hồ sơ trực tuyến rất thuận tiện, cảm ơn.",
    "Cán bộ lịch sự, nhiệt tình giúp người cao tuổi.",
];
const COMPLAINTS: &[&str] = &[
    "Phải đi lại nhiều lần vì hướng dẫn không rõ.",
    "Thời gian chờ quá lâu, nên có thêm quầy tiếp nhận.",
    "Trả kết quả trễ hẹn mà không được báo trước.",
    "Yêu cầu nộp thêm giấy tờ không có trong quy định.",
    "Cán bộ thiếu niềm nở, trả lời qua loa.",
    "Bãi gửi xe chật, không có mái che.",
];
const IDEAS: &[&str] = &[
    "Nên gửi tin nhắn khi hồ sơ đã có kết quả.",
    "Đề nghị niêm yết phí, lệ phí rõ ràng hơn.",
    "Nên cho phép thanh toán lệ phí bằng chuyển khoản.",
    "Mở thêm giờ tiếp nhận vào sáng thứ Bảy.",
];
const CASE_NOTES: &[&str] = &[
    "Đã gọi điện cho công dân, xin lỗi và hướng dẫn bổ sung hồ sơ.",
    "Đã kiểm tra, nhắc nhở cán bộ tiếp nhận; công dân đồng ý với cách giải quyết.",
    "Đã trả kết quả, giải thích lý do chậm trễ.",
];

/// What loading the story did.
#[derive(Debug, Clone, Default)]
pub struct StorySummary {
    pub already_loaded: bool,
    pub responses: u64,
    pub dossiers: u64,
    pub cases_closed: usize,
    pub paper_forms: usize,
}

/// Whether the story is in the database already.
pub fn is_loaded(conn: &mut DbConn) -> QueryResult<bool> {
    let n: i64 = db_run!(conn: {
        transactions::table
            .filter(transactions::dossier_code.like(format!("{PREFIX}%")))
            .count()
            .get_result(conn)
    })?;
    Ok(n > 0)
}

/// A dossier of the story.
struct Dossier {
    id: String,
    code: String,
    unit_id: String,
    procedure_id: String,
    received: NaiveDateTime,
    due: NaiveDateTime,
    completed: NaiveDateTime,
    form: (String, i64),
}

/// A counter or paper answer waiting to be screened and stored.
struct Planned {
    response: NewResponse,
    answers: Vec<AnswerValue>,
    /// (issuer, answering client) as (address, user agent); `None` for paper.
    devices: Option<((String, String), (String, String))>,
}

fn month_start(today: NaiveDate, back: u32) -> NaiveDate {
    let first = today.with_day(1).unwrap_or(today);
    first
        .checked_sub_months(chrono::Months::new(back))
        .unwrap_or(first)
}

fn days_in(month: NaiveDate, today: NaiveDate) -> i64 {
    let next = month
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(month);
    // The current month only up to yesterday.
    let end = if next > today { today } else { next };
    (end - month).num_days().max(0)
}

fn pick<'a>(rng: &mut StdRng, list: &[&'a str]) -> &'a str {
    list[rng.random_range(0..list.len())]
}

/// A satisfied-or-not answer set, with a suggestion that fits how the visit went.
fn answers(rng: &mut StdRng, form: &Form, quality: f64) -> Vec<AnswerValue> {
    let mut out = crate::synthetic::answers_for(rng, form, quality);
    let overall = form
        .question_with_role(crate::forms::QuestionRole::Overall)
        .map(|q| q.code.clone());
    let happy = out
        .iter()
        .find(|a| Some(&a.question_code) == overall.as_ref())
        .and_then(|a| a.value_int)
        .is_some_and(|l| l >= 4);
    for q in form.questions().filter(|q| q.kind == QuestionType::Text) {
        out.retain(|a| a.question_code != q.code);
        if rng.random_bool(0.3) {
            let text = match (happy, rng.random_bool(0.3)) {
                (_, true) => pick(rng, IDEAS),
                (true, false) => pick(rng, PRAISE),
                (false, false) => pick(rng, COMPLAINTS),
            };
            out.push(AnswerValue {
                question_code: q.code.clone(),
                value_int: None,
                value_text: Some(text.to_string()),
                rollup_levels: vec![0],
            });
        }
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn response(
    unit_id: &str,
    procedure_id: &str,
    form: &Form,
    channel: &str,
    answers: &[AnswerValue],
    issued: Option<NaiveDateTime>,
    opened: Option<NaiveDateTime>,
    submitted: NaiveDateTime,
) -> NewResponse {
    let respondent_type = form
        .question_with_role(crate::forms::QuestionRole::RespondentType)
        .and_then(|q| answers.iter().find(|a| a.question_code == q.code))
        .and_then(|a| a.value_text.clone());
    NewResponse {
        id: uuid::Uuid::now_v7().to_string(),
        unit_id: unit_id.to_string(),
        procedure_id: Some(procedure_id.to_string()),
        form_code: form.code.clone(),
        form_version: form.version,
        channel: channel.to_string(),
        respondent_type,
        language: "vi".into(),
        issued_at: issued,
        opened_at: opened,
        submitted_at: submitted,
        provenance: (channel == "paper").then(|| r#"{"demo":"story"}"#.to_string()),
    }
}

/// Loads the story into a database that has the demo province (see [`super::load`]).
pub fn load(
    conn: &mut DbConn,
    forms: &FormRegistry,
    secret: &ServerSecret,
    policy: &IntegrityPolicy,
    seed: u64,
    now: NaiveDateTime,
) -> anyhow::Result<StorySummary> {
    if is_loaded(conn)? {
        return Ok(StorySummary {
            already_loaded: true,
            ..StorySummary::default()
        });
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let offset: FixedOffset = policy.utc_offset;
    let shift = Duration::seconds(offset.local_minus_utc().into());
    let today = crate::calendar::local_day(now, offset);
    let form = forms
        .codes()
        .filter_map(|c| forms.latest(c))
        .find(|f| f.kind == FormKind::Sipas)
        .ok_or_else(|| anyhow::anyhow!("no SIPAS form loaded"))?;
    let procs = procedures::list(conn)?;
    anyhow::ensure!(!procs.is_empty(), "load the demo province first");

    let mut dossiers: Vec<Dossier> = Vec::new();
    let mut planned: Vec<Planned> = Vec::new();
    let plan_unit = |rng: &mut StdRng,
                     unit: &units::Unit,
                     u: usize,
                     month: NaiveDate,
                     quality: f64,
                     role: (u32, u32, u32, f64),
                     dossiers: &mut Vec<Dossier>,
                     planned: &mut Vec<Planned>| {
        let (n_dossiers, n_counter, n_paper, self_filled) = role;
        let days = days_in(month, today);
        if days == 0 {
            return;
        }
        // A month still running has only its days so far.
        let full_days = (month
            .checked_add_months(chrono::Months::new(1))
            .unwrap_or(month)
            - month)
            .num_days()
            .max(1);
        let scale = days as f64 / full_days as f64;
        let scaled = |n: u32| ((f64::from(n) * scale.min(1.0)).round() as u32).max(1);
        let local_time = |rng: &mut StdRng| {
            month.and_hms_opt(0, 0, 0).unwrap_or_default()
                + Duration::days(rng.random_range(0..days))
                + Duration::seconds(rng.random_range(8 * 3600..17 * 3600))
        };
        for i in 0..scaled(n_dossiers) {
            let completed = local_time(rng) - shift;
            let received = completed - Duration::days(rng.random_range(1..10));
            let procedure = &procs[rng.random_range(0..procs.len())];
            dossiers.push(Dossier {
                id: uuid::Uuid::now_v7().to_string(),
                code: format!("{PREFIX}{}-{}-{i}", unit.code, month.format("%Y%m")),
                unit_id: unit.id.clone(),
                procedure_id: procedure.id.clone(),
                received,
                // The weak unit is late more often.
                due: received + Duration::days(if quality < 0.5 { 4 } else { 9 }),
                completed,
                form: (form.code.clone(), form.version),
            });
        }
        let counter_device = (
            format!("10.20.{}.1", u % 250),
            "MotCua/2.1 (Windows NT 10.0)".to_string(),
        );
        for _ in 0..scaled(n_counter) {
            let completed = local_time(rng) - shift;
            let procedure = &procs[rng.random_range(0..procs.len())];
            let citizen = (
                format!(
                    "100.{}.{}.{}",
                    rng.random_range(64..128),
                    rng.random_range(0..255),
                    rng.random_range(1..255)
                ),
                format!("Mobile Safari {}", rng.random_range(1..1000)),
            );
            let (delay, answering, client, given) = if rng.random_bool(self_filled) {
                (
                    rng.random_range(20..70),
                    rng.random_range(8..25),
                    counter_device.clone(),
                    crate::integrity::simulate::top_answers(&form),
                )
            } else {
                // A unit that fills in its own surveys also hands the QR code mostly to
                // visibly happy citizens.
                let q = if self_filled > 0.0 { 0.9 } else { quality };
                (
                    rng.random_range(1800..3 * 86_400),
                    rng.random_range(120..600),
                    citizen,
                    answers(rng, &form, q),
                )
            };
            let submitted = (completed + Duration::seconds(delay)).min(now - Duration::minutes(5));
            planned.push(Planned {
                response: response(
                    &unit.id,
                    &procedure.id,
                    &form,
                    if rng.random_bool(0.8) { "qr" } else { "link" },
                    &given,
                    Some(completed.min(submitted)),
                    Some((submitted - Duration::seconds(answering)).max(completed.min(submitted))),
                    submitted,
                ),
                answers: given,
                devices: Some((counter_device.clone(), client)),
            });
        }
        for _ in 0..scaled(n_paper) {
            let at = (local_time(rng) - shift).min(now - Duration::minutes(5));
            let procedure = &procs[rng.random_range(0..procs.len())];
            let given = answers(rng, &form, quality);
            planned.push(Planned {
                response: response(
                    &unit.id,
                    &procedure.id,
                    &form,
                    "paper",
                    &given,
                    None,
                    None,
                    at,
                ),
                answers: given,
                devices: None,
            });
        }
    };

    for (u, role) in roles().iter().enumerate() {
        let Some(unit) = units::find_by_code(conn, role.code)? else {
            continue;
        };
        for back in (0..=MONTHS).rev() {
            let month = month_start(today, back);
            let q = role.quality[(MONTHS - back.max(1)) as usize];
            plan_unit(
                &mut rng,
                &unit,
                u,
                month,
                q,
                (role.dossiers, role.counter, role.paper, role.self_filled),
                &mut dossiers,
                &mut planned,
            );
        }
    }
    // The merged communes' last months before the merger.
    for (i, (code, quality)) in MERGED_HISTORY.iter().enumerate() {
        let Some(unit) = units::find_by_code(conn, code)? else {
            continue;
        };
        let Some(end) = unit.valid_to else { continue };
        for back in (0..3).rev() {
            let month = month_start(end, back);
            plan_unit(
                &mut rng,
                &unit,
                100 + i,
                month,
                *quality,
                (60, 45, 8, 0.0),
                &mut dossiers,
                &mut planned,
            );
        }
    }

    write_dossiers(conn, &dossiers, offset)?;
    let responses = store(conn, secret, policy, &form, planned)?;
    let cases_closed = follow_up_cases(conn, &mut rng, today)?;
    stuck_mail(conn, &dossiers, now)?;
    let paper_forms = paper_batches(conn, forms, secret, &form, today, offset, seed)?;
    Ok(StorySummary {
        already_loaded: false,
        responses,
        dossiers: dossiers.len() as u64,
        cases_closed,
        paper_forms,
    })
}

/// Dossiers and their rollups, in one transaction.
fn write_dossiers(conn: &mut DbConn, rows: &[Dossier], offset: FixedOffset) -> QueryResult<()> {
    let mut delta = RollupDelta::default();
    for d in rows {
        delta.add_dossier(
            &d.unit_id,
            d.completed,
            offset,
            DossierChange::of_dossier(d.completed, Some(d.due), None),
        );
    }
    let now = crate::db::now();
    conn.write_transaction(|conn| {
        for chunk in rows.chunks(1000) {
            let values: Vec<_> = chunk
                .iter()
                .map(|d| {
                    (
                        transactions::id.eq(&d.id),
                        transactions::unit_id.eq(&d.unit_id),
                        transactions::dossier_code.eq(&d.code),
                        transactions::procedure_id.eq(&d.procedure_id),
                        transactions::received_at.eq(d.received),
                        transactions::due_at.eq(Some(d.due)),
                        transactions::completed_at.eq(d.completed),
                        transactions::form_code.eq(&d.form.0),
                        transactions::form_version.eq(d.form.1),
                        transactions::created_at.eq(now),
                    )
                })
                .collect();
            db_run!(conn: { diesel::insert_into(transactions::table).values(values).execute(conn) })?;
        }
        delta.apply(conn)
    })
}

/// Screens the counter answers as the service does and stores everything with the batch
/// writer (rollups, signals, held answers and cases for bad ratings included).
fn store(
    conn: &mut DbConn,
    secret: &ServerSecret,
    policy: &IntegrityPolicy,
    form: &Form,
    mut planned: Vec<Planned>,
) -> anyhow::Result<u64> {
    planned.sort_by_key(|p| p.response.submitted_at);
    let mut submissions = Vec::with_capacity(planned.len());
    for p in planned {
        let screening = p.devices.as_ref().map(|(issuer, client)| {
            let r = &p.response;
            let issued = r.issued_at.unwrap_or(r.submitted_at);
            let at_issue = fingerprint(secret, issued.date(), &client.0, &client.1);
            let issuer = fingerprint(secret, issued.date(), &issuer.0, &issuer.1);
            let today = fingerprint(secret, r.submitted_at.date(), &client.0, &client.1);
            let ctx = SubmitContext {
                same_device: issuer.device == at_issue.device,
                same_network: issuer.network == at_issue.network,
                network_hash: Some(today.network),
                recent_from_network: 0,
            };
            screen(form, r, &p.answers, &ctx, policy)
        });
        submissions.push(Submission {
            token_hash: None,
            scores: scoring::respondent_scores(form, &p.answers),
            response: p.response,
            answers: p.answers,
            dossier_rating: None,
            transaction_id: None,
            screening,
        });
    }
    for chunk in submissions.chunks(2000) {
        store_batch(conn, chunk, policy.utc_offset)?;
    }
    Ok(submissions.len() as u64)
}

/// Cases older than two months were all followed up and closed, nearly all of those older than
/// three weeks too; the few left are overdue.
fn follow_up_cases(conn: &mut DbConn, rng: &mut StdRng, today: NaiveDate) -> anyhow::Result<usize> {
    let ids: Vec<String> = units::list(conn)?.into_iter().map(|u| u.id).collect();
    let actor = Actor::cli();
    let mut left_open = std::collections::HashSet::new();
    let mut closed = 0;
    // The list is read a page at a time (oldest deadline first) until a page closes nothing.
    loop {
        let mut closed_now = 0;
        for case in crate::integrity::cases::list(conn, &ids, true)? {
            if left_open.contains(&case.id) {
                continue;
            }
            let age = (today - case.opened_at.date()).num_days();
            let close = age > 60 || (age > 21 && rng.random_bool(0.93));
            if close {
                crate::integrity::cases::record_action(
                    conn,
                    &actor,
                    &case,
                    pick(rng, CASE_NOTES),
                    true,
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?;
                closed_now += 1;
            } else {
                left_open.insert(case.id);
            }
        }
        closed += closed_now;
        if closed_now == 0 {
            return Ok(closed);
        }
    }
}

/// Three invitations the mail server refused for good.
fn stuck_mail(conn: &mut DbConn, dossiers: &[Dossier], now: NaiveDateTime) -> QueryResult<()> {
    let errors = [
        "550 5.1.1 mailbox unavailable",
        "554 5.7.1 message rejected as spam",
        "421 4.4.2 connection timed out (gave up after 8 attempts)",
    ];
    for (d, error) in dossiers
        .iter()
        .filter(|d| d.code.contains("-STP-"))
        .zip(errors)
    {
        db_run!(conn: {
            diesel::insert_into(outbox::table)
                .values((
                    outbox::id.eq(uuid::Uuid::now_v7().to_string()),
                    outbox::kind.eq("invitation"),
                    outbox::transaction_id.eq(&d.id),
                    outbox::unit_id.eq(&d.unit_id),
                    outbox::message_id.eq(format!("<{}@sipas.demo>", uuid::Uuid::new_v4())),
                    outbox::status.eq(MailStatus::Failed.as_str()),
                    outbox::attempts.eq(8_i64),
                    outbox::due_at.eq(now - Duration::hours(30)),
                    outbox::last_error.eq(Some(error)),
                    outbox::created_at.eq(now - Duration::days(3)),
                ))
                .execute(conn)
        })?;
    }
    Ok(())
}

/// A paper sample of last month for four units, its batches at each custody step: issued,
/// delivered, returned, keyed and verified. Returns the forms handed out.
#[allow(clippy::too_many_arguments)]
fn paper_batches(
    conn: &mut DbConn,
    forms: &FormRegistry,
    secret: &ServerSecret,
    form: &Form,
    today: NaiveDate,
    offset: FixedOffset,
    seed: u64,
) -> anyhow::Result<usize> {
    use crate::paper::status::CustodyStep;
    use crate::paper::{custody, entry, sampling};
    let err = |e: crate::error::AppError| anyhow::anyhow!("{e}");
    let actor = Actor::cli();
    let month = month_start(today, 1);
    let last_day = month_start(today, 0).pred_opt().unwrap_or(month);
    let code = format!("DEMO-{}", month.format("%Y-%m"));
    let period = match crate::periods::find_by_code(conn, &code)? {
        Some(p) => p,
        None => crate::periods::save(
            conn,
            &actor,
            None,
            &crate::periods::PeriodInput {
                code: code.clone(),
                name_vi: format!("Tháng {}", month.format("%m/%Y")),
                name_en: format!("Month {}", month.format("%Y-%m")),
                kind: "month".into(),
                starts_on: month,
                ends_on: last_day,
                status: crate::periods::PeriodStatus::Open,
            },
        )
        .map_err(err)?,
    };
    let org = crate::collector_orgs::find_by_code(conn, super::POST_OFFICE)?
        .ok_or_else(|| anyhow::anyhow!("demo collector organisation missing"))?;
    let stages = ["STP", "SXD", "SNV", "P-AN-HOA"];
    let sample = sampling::draw(
        conn,
        secret,
        forms,
        &actor,
        &sampling::SampleRequest {
            period_code: period.code.clone(),
            unit_codes: stages.iter().map(|s| s.to_string()).collect(),
            seed: Some(seed),
            margin: 0.1,
            quota: Some(12),
            reserve_share: 0.0,
            by_procedure: false,
            form_code: form.code.clone(),
        },
        offset,
    )
    .map_err(err)?;
    let typists = crate::accounts::Actor::of(&typists(conn, &org.id)?);
    let mut handed = 0;
    for (stage, unit_code) in stages.iter().enumerate() {
        let Some(unit) = units::find_by_code(conn, unit_code)? else {
            continue;
        };
        let batch = custody::create_batch(
            conn,
            &actor,
            &custody::BatchRequest {
                sample_id: sample.id.clone(),
                unit_id: unit.id.clone(),
                collector_org_id: org.id.clone(),
                collector_name: "Nguyễn Văn Bưu".into(),
                include_reserve: false,
                double_share: 0.0,
            },
        )
        .map_err(err)?;
        let serials: Vec<String> = sampling::worklist(conn, &sample.id, Some(&unit.id))?
            .into_iter()
            .map(|r| r.serial)
            .collect();
        handed += serials.len();
        if stage >= 1 {
            custody::mark(conn, &actor, &batch.id, &serials, CustodyStep::Delivered)
                .map_err(err)?;
        }
        if stage >= 2 {
            let returned = &serials[..serials.len() * 3 / 4];
            custody::mark(conn, &actor, &batch.id, returned, CustodyStep::Returned).map_err(err)?;
            if stage >= 3 {
                // Keyed: answers typed in from the returned forms (verified on single entry).
                let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
                for serial in returned.iter().take(returned.len() * 2 / 3) {
                    let paper = entry::find(conn, forms, &typists, serial).map_err(err)?;
                    let typed = answers(&mut rng, form, 0.75);
                    let mut pairs: Vec<(String, String)> = Vec::new();
                    for a in &typed {
                        let code = a.question_code.clone();
                        match form.question(&a.question_code).map(|q| q.kind) {
                            Some(QuestionType::Multi) => {
                                for v in a.value_text.as_deref().unwrap_or_default().split(',') {
                                    pairs.push((code.clone(), v.to_string()));
                                }
                            }
                            Some(QuestionType::Choice | QuestionType::Text) => {
                                pairs.push((code, a.value_text.clone().unwrap_or_default()));
                            }
                            _ => pairs.push((
                                code,
                                a.value_int.map(|v| v.to_string()).unwrap_or_default(),
                            )),
                        }
                    }
                    let typing = entry::Typing {
                        answers: pairs,
                        confirm_blank: true,
                        started_at: crate::db::now() - Duration::minutes(3),
                        keystrokes: 60,
                    };
                    if let Err(e) = entry::save(conn, &typists, &paper, &typing, offset) {
                        anyhow::bail!("demo paper entry of {serial} failed: {e:?}");
                    }
                }
            }
        }
    }
    Ok(handed)
}

/// The post office's demo typist (created once).
fn typists(conn: &mut DbConn, org_id: &str) -> anyhow::Result<crate::accounts::users::User> {
    use crate::accounts::{self, users};
    const NAME: &str = "nhaplieu-demo";
    if let Some(user) = users::find_by_username(conn, NAME)? {
        return Ok(user);
    }
    let password = format!("Demo-{}", uuid::Uuid::new_v4().simple());
    users::create(
        conn,
        &Actor::cli(),
        &users::UserInput {
            username: NAME.into(),
            display_name: "Nhập liệu (demo)".into(),
            role: accounts::Role::Collector,
            unit_id: None,
            collector_org_id: Some(org_id.to_string()),
            active: true,
        },
        &password,
    )
    .map_err(|e| anyhow::anyhow!("{e}"))
}
