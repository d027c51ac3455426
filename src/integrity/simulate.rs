//! `sipas demo --simulate-gaming`: a province where some units inflate their counter results in
//! the ways issue #8 lists and the others are honest, written through the production screening
//! ([`super::screen`]) and writer ([`crate::survey::writer::store_batch`]), so that the integrity
//! signals can be measured against a known truth. Reproducible from a seed.

use std::collections::HashMap;

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::{IntegrityPolicy, SubmitContext, fingerprint, screen};
use crate::db::DbConn;
use crate::forms::answers::AnswerValue;
use crate::forms::{Form, FormKind, FormRegistry, QuestionType, scoring};
use crate::report::period::Period;
use crate::secret::ServerSecret;
use crate::survey::rollup::{DossierChange, RollupDelta};
use crate::survey::writer::{NewResponse, Submission, store_batch};
use crate::units;

/// How a simulated unit treats its counter survey.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Honest,
    /// An official fills in the survey on the counter's computer right after registering.
    Proxy,
    /// The citizen answers on the spot, on the centre's Wi-Fi, while the official watches.
    Watched,
    /// The QR code is handed only to visibly satisfied citizens.
    Selective,
    /// Staff submit collected links in bursts from one phone at the end of the day.
    Burst,
}

impl Strategy {
    pub fn code(self) -> &'static str {
        match self {
            Strategy::Honest => "honest",
            Strategy::Proxy => "proxy",
            Strategy::Watched => "watched",
            Strategy::Selective => "selective",
            Strategy::Burst => "burst",
        }
    }
}

/// The simulated province: which unit did what, and the month simulated.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub units: Vec<(String, Strategy)>,
    pub period: Period,
    pub responses: u64,
}

/// Detection measured against the simulation's truth.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Detection {
    pub gaming: usize,
    pub gaming_flagged: usize,
    pub honest: usize,
    pub honest_flagged: usize,
}

impl Detection {
    pub fn gaming_rate(&self) -> f64 {
        self.gaming_flagged as f64 / self.gaming.max(1) as f64
    }
    pub fn honest_rate(&self) -> f64 {
        self.honest_flagged as f64 / self.honest.max(1) as f64
    }
}

/// Compares the flagged units with the truth.
pub fn measure(sim: &Simulation, assessed: &[super::units::UnitIntegrity]) -> Detection {
    let flagged: HashMap<&str, bool> = assessed
        .iter()
        .map(|u| (u.unit.code.as_str(), u.flagged))
        .collect();
    let mut d = Detection {
        gaming: 0,
        gaming_flagged: 0,
        honest: 0,
        honest_flagged: 0,
    };
    for (code, strategy) in &sim.units {
        let hit = flagged.get(code.as_str()).copied().unwrap_or(false);
        if *strategy == Strategy::Honest {
            d.honest += 1;
            d.honest_flagged += usize::from(hit);
        } else {
            d.gaming += 1;
            d.gaming_flagged += usize::from(hit);
        }
    }
    d
}

/// Every rated item at the top level: what an inflated answer looks like.
fn top_answers(form: &Form) -> Vec<AnswerValue> {
    form.questions()
        .filter_map(|q| {
            let (value_int, value_text, levels) = match q.kind {
                QuestionType::Scale5 => (Some(5), None, vec![5]),
                QuestionType::Scale3 => (Some(3), None, vec![3]),
                QuestionType::Choice => (Some(1), Some(q.options.first()?.code.clone()), vec![1]),
                _ => return None,
            };
            Some(AnswerValue {
                question_code: q.code.clone(),
                value_int,
                value_text,
                rollup_levels: levels,
            })
        })
        .collect()
}

struct Planned {
    response: NewResponse,
    answers: Vec<AnswerValue>,
    issuer: Option<(String, String)>,
    client: (String, String),
    paper: bool,
}

/// Builds the province: `honest` honest units and `gaming` gaming ones (the four strategies in
/// turn), each with 120–200 dossiers in the month before `now`, their counter answers and an
/// independent paper sample of 40.
#[allow(clippy::too_many_arguments)]
pub fn build(
    conn: &mut DbConn,
    forms: &FormRegistry,
    secret: &ServerSecret,
    policy: &IntegrityPolicy,
    seed: u64,
    honest: usize,
    gaming: usize,
    now: NaiveDateTime,
) -> anyhow::Result<Simulation> {
    let mut rng = StdRng::seed_from_u64(seed);
    let form = forms
        .codes()
        .filter_map(|c| forms.latest(c))
        .find(|f| f.kind == FormKind::Sipas)
        .ok_or_else(|| anyhow::anyhow!("no SIPAS form loaded"))?;
    let procedure = crate::procedures::list(conn)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("load the demo province first"))?;
    let offset = policy.utc_offset;
    let shift = Duration::seconds(offset.local_minus_utc().into());
    let today = crate::survey::rollup::local_day(now, offset);
    let this_month = today.with_day(1).unwrap_or(today);
    let month = this_month
        .checked_sub_months(chrono::Months::new(1))
        .unwrap_or(this_month);
    let period = Period {
        from: month,
        to: this_month.pred_opt().unwrap_or(month),
    };
    let days = (period.to - period.from).num_days() + 1;
    let strategies = [
        Strategy::Proxy,
        Strategy::Watched,
        Strategy::Selective,
        Strategy::Burst,
    ];
    let mut plan: Vec<(String, Strategy)> = Vec::new();
    for i in 0..honest {
        plan.push((format!("SIM-H{:03}", i + 1), Strategy::Honest));
    }
    for i in 0..gaming {
        plan.push((
            format!("SIM-G{:03}", i + 1),
            strategies[i % strategies.len()],
        ));
    }
    let valid_from = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or(period.from);
    let mut planned: Vec<Planned> = Vec::new();
    let mut delta_dossiers = RollupDelta::default();
    for (u, (code, strategy)) in plan.iter().enumerate() {
        let unit = units::upsert(
            conn,
            &units::NewUnit {
                code,
                name_vi: &format!("Đơn vị mô phỏng {code}"),
                name_en: &format!("Simulated unit {code}"),
                kind: "commune",
                parent_code: Some(crate::demo::PROVINCE),
                valid_from,
                valid_to: None,
                merged_into_code: None,
            },
        )?;
        let quality = rng.random_range(0.55..0.85);
        let counter_ip = format!("10.{}.{}.1", u / 250, u % 250);
        let counter_ua = "MotCua/2.1 (Windows NT 10.0)".to_string();
        let staff_ip = format!("203.0.{}.{}", u / 250, u % 250);
        let answer_rate = match strategy {
            Strategy::Selective => 0.08,
            _ => rng.random_range(0.3..0.5),
        };
        let dossiers = rng.random_range(120..200);
        let mut burst_day: HashMap<NaiveDate, u32> = HashMap::new();
        for _ in 0..dossiers {
            let local = period.from.and_hms_opt(0, 0, 0).unwrap_or_default()
                + Duration::days(rng.random_range(0..days))
                + Duration::seconds(rng.random_range(8 * 3600..17 * 3600));
            let completed = local - shift;
            delta_dossiers.add_dossier(
                &unit.id,
                completed,
                offset,
                DossierChange::of_dossier(completed, None, None),
            );
            let citizen = (
                format!(
                    "100.{}.{}.{}",
                    rng.random_range(64..128),
                    rng.random_range(0..255),
                    rng.random_range(1..255)
                ),
                format!("Mobile Safari {}", rng.random_range(1..1000)),
            );
            let honest_answer = |rng: &mut StdRng, rate: f64, quality: f64| {
                if !rng.random_bool(rate) {
                    return None;
                }
                let delay = if rng.random_bool(0.1) {
                    rng.random_range(120..900)
                } else {
                    rng.random_range(3600..5 * 86_400)
                };
                let answering = rng.random_range(90..900);
                let client = if rng.random_bool(0.05) {
                    (counter_ip.clone(), citizen.1.clone())
                } else {
                    citizen.clone()
                };
                let answers = crate::synthetic::answers_for(rng, &form, quality);
                Some((delay, answering, client, answers))
            };
            let gamed = match strategy {
                Strategy::Honest => None,
                Strategy::Proxy if rng.random_bool(0.5) => Some((
                    rng.random_range(20..70),
                    rng.random_range(8..25),
                    (counter_ip.clone(), counter_ua.clone()),
                    top_answers(&form),
                )),
                Strategy::Watched if rng.random_bool(0.6) => Some((
                    rng.random_range(30..85),
                    rng.random_range(20..50),
                    (counter_ip.clone(), citizen.1.clone()),
                    top_answers(&form),
                )),
                Strategy::Burst if rng.random_bool(0.4) => {
                    // Links collected over a few days are sent together on the last one.
                    let bucket = (local.date() - period.from).num_days() / 5;
                    let day = (period.from + Duration::days(bucket * 5 + 4)).min(period.to);
                    let k = burst_day.entry(day).or_insert(0);
                    *k += 1;
                    let at = day.and_hms_opt(17, 30, 0).unwrap_or(local)
                        + Duration::seconds(i64::from(*k) * 25);
                    let delay = (at - local).num_seconds().max(60);
                    Some((
                        delay,
                        rng.random_range(10..30),
                        (staff_ip.clone(), "Mobile staff".to_string()),
                        top_answers(&form),
                    ))
                }
                _ => None,
            };
            let answer = match (strategy, gamed) {
                (_, Some(g)) => Some(g),
                (Strategy::Honest, None) => honest_answer(&mut rng, answer_rate, quality),
                (Strategy::Selective, None) => honest_answer(&mut rng, answer_rate, 0.98),
                (_, None) => honest_answer(&mut rng, 0.15, quality),
            };
            let Some((delay, answering, client, answers)) = answer else {
                continue;
            };
            let submitted = completed + Duration::seconds(delay);
            planned.push(Planned {
                response: new_response(
                    &unit.id,
                    &procedure.id,
                    &form,
                    "qr",
                    &answers,
                    completed,
                    submitted - Duration::seconds(answering),
                    submitted,
                ),
                answers,
                issuer: Some((counter_ip.clone(), counter_ua.clone())),
                client,
                paper: false,
            });
        }
        // The independent paper sample reflects the unit's real service.
        for _ in 0..40 {
            let at = period.from.and_hms_opt(0, 0, 0).unwrap_or_default()
                + Duration::days(rng.random_range(0..days))
                + Duration::seconds(rng.random_range(8 * 3600..17 * 3600))
                - shift;
            let answers = crate::synthetic::answers_for(&mut rng, &form, quality);
            planned.push(Planned {
                response: new_response(
                    &unit.id,
                    &procedure.id,
                    &form,
                    "paper",
                    &answers,
                    at,
                    at,
                    at,
                ),
                answers,
                issuer: None,
                client: (String::new(), String::new()),
                paper: true,
            });
        }
    }
    planned.sort_by_key(|p| p.response.submitted_at);
    // Bursts are counted as the service counts them: earlier submissions from the same
    // address within the window.
    let window = Duration::minutes(policy.burst_minutes);
    let mut recent: HashMap<String, Vec<NaiveDateTime>> = HashMap::new();
    let mut submissions = Vec::with_capacity(planned.len());
    for p in planned {
        let screening = if p.paper {
            None
        } else {
            let r = &p.response;
            let issued = r.issued_at.unwrap_or(r.submitted_at);
            let at_issue = fingerprint(secret, issued.date(), &p.client.0, &p.client.1);
            let today = fingerprint(secret, r.submitted_at.date(), &p.client.0, &p.client.1);
            let issuer = p
                .issuer
                .as_ref()
                .map(|(ip, ua)| fingerprint(secret, issued.date(), ip, ua));
            let seen = recent.entry(today.network.clone()).or_default();
            let count = seen
                .iter()
                .filter(|t| **t >= r.submitted_at - window)
                .count() as i64;
            seen.push(r.submitted_at);
            let ctx = SubmitContext {
                same_device: issuer.as_ref().is_some_and(|i| i.device == at_issue.device),
                same_network: issuer
                    .as_ref()
                    .is_some_and(|i| i.network == at_issue.network),
                network_hash: Some(today.network),
                recent_from_network: count,
            };
            Some(screen(&form, r, &p.answers, &ctx, policy))
        };
        submissions.push(Submission {
            token_hash: None,
            scores: scoring::respondent_scores(&form, &p.answers),
            response: p.response,
            answers: p.answers,
            dossier_rating: None,
            transaction_id: None,
            screening,
        });
    }
    let responses = submissions.len() as u64;
    for chunk in submissions.chunks(2000) {
        store_batch(conn, chunk, offset)?;
    }
    conn.write_transaction(|conn| delta_dossiers.apply(conn))?;
    Ok(Simulation {
        units: plan,
        period,
        responses,
    })
}

#[allow(clippy::too_many_arguments)]
fn new_response(
    unit_id: &str,
    procedure_id: &str,
    form: &Form,
    channel: &str,
    answers: &[AnswerValue],
    issued: NaiveDateTime,
    opened: NaiveDateTime,
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
        issued_at: (channel != "paper").then_some(issued),
        opened_at: (channel != "paper").then_some(opened),
        submitted_at: submitted,
        provenance: (channel == "paper").then(|| r#"{"simulated":true}"#.to_string()),
    }
}
