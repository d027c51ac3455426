//! Integrity signals per unit and period: the share of counter responses showing each
//! per-response signal (tested against what honest service tolerates), the issue rate (answers
//! per dossier completed, against comparable units), and the counter/paper gap with its
//! significance test.
//!
//! Every test is one-sided and exact at any n (binomial tails; beta-binomial for the issue
//! rate, whose honest level varies between units). Dozens of units × eight tests are run every
//! period, so the flags are controlled together: Benjamini–Hochberg over every test of the
//! panel, a test flagged when its q-value is at most [`FDR_Q`]. Units are ranked by the
//! evidence: the sum of −log₁₀ p of the flagged tests.

use std::collections::{HashMap, HashSet};

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde::Serialize;

use super::signals::Review;
use super::{IntegrityPolicy, Signal};
use crate::db::DbConn;
use crate::db::schema::response_signals;
use crate::db_run;
use crate::error::AppResult;
use crate::forms::FormRegistry;
use crate::i18n::Lang;
use crate::report::period::Period;
use crate::report::source::{self, COUNTER_CHANNELS};
use crate::report::{ChannelGap, ReportOptions, UnitRef, stats};
use crate::units;

/// The false discovery rate of the panel: a test is flagged when its Benjamini–Hochberg q-value
/// is at most this. In a province where every unit is honest, BH at Q flags anything at all in
/// at most a share Q of periods, so the expected number of honest units flagged by chance per
/// period stays far below one (measured by [`super::simulate::false_alarms`]); where units do
/// game, at most about Q of the flags are honest units (1 in 100).
pub const FDR_Q: f64 = 0.01;
/// Fewer screened responses (or dossiers) than this say nothing either way: such tests are
/// shown but left out of the family.
pub const MIN_N: u64 = 10;
/// Comparable units (same kind, at least [`MIN_N`] dossiers) needed to test an issue rate.
pub const MIN_PEERS: usize = 5;

/// What honest service still produces of each signal: the share tested against.
pub fn baseline(signal: Signal) -> f64 {
    match signal {
        // Counter machines and citizens' phones rarely match; a kiosk answer is a different
        // channel and device.
        Signal::SameDevice => 0.02,
        // Citizens may use the centre's Wi-Fi.
        Signal::SameNetwork => 0.10,
        Signal::FastIssue => 0.05,
        Signal::ShortAnswering => 0.10,
        // Satisfied citizens do tick one level throughout now and then.
        Signal::StraightLine => 0.20,
        Signal::Burst => 0.05,
    }
}

/// One-sided exact p-value that `k` of `n` reach or exceed a rate `p0`: P(X ≥ k), binomial.
pub fn p_above(k: u64, n: u64, p0: f64) -> Option<f64> {
    stats::binomial_p_above(k, n, p0)
}

/// One-sided exact p-value that `k` of `n` fall to or below a rate `p0`: P(X ≤ k), binomial.
pub fn p_below(k: u64, n: u64, p0: f64) -> Option<f64> {
    stats::binomial_p_below(k.min(n), n, p0)
}

fn evidence_of(p: Option<f64>) -> f64 {
    p.map(|p| (-p.max(1e-10).log10()).min(10.0)).unwrap_or(0.0)
}

/// The share of a unit's counter responses showing one signal.
#[derive(Debug, Clone, Serialize)]
pub struct ShareSignal {
    pub signal: &'static str,
    pub count: u64,
    pub n: u64,
    pub baseline: f64,
    /// Exact one-sided binomial p-value against the baseline.
    pub p_value: Option<f64>,
    /// Benjamini–Hochberg q-value over the panel; `None` when not tested (n < [`MIN_N`]).
    pub q_value: Option<f64>,
    pub flagged: bool,
}

impl ShareSignal {
    pub fn share(&self) -> Option<f64> {
        (self.n > 0).then(|| self.count as f64 / self.n as f64)
    }
}

/// Answers per dossier completed, against units of the same kind.
#[derive(Debug, Clone, Serialize)]
pub struct IssueRate {
    pub answers: u64,
    pub dossiers: u64,
    pub rate: Option<f64>,
    /// Wilson 95 % interval of the unit's rate.
    pub rate_low: Option<f64>,
    pub rate_high: Option<f64>,
    /// Pooled rate of the comparable units (same kind, the unit itself left out).
    pub peer_rate: Option<f64>,
    /// How much honest rates vary between those units (robust standard deviation, binomial
    /// noise removed): the uncertainty of the rate the unit should have.
    pub peer_spread: Option<f64>,
    pub peers: usize,
    /// One-sided beta-binomial p-value of a rate this low among such units.
    pub p_value: Option<f64>,
    pub q_value: Option<f64>,
    pub flagged: bool,
}

/// Everything the panel shows about one unit in one period.
#[derive(Debug, Clone, Serialize)]
pub struct UnitIntegrity {
    pub unit: UnitRef,
    pub screened: u64,
    pub held: u64,
    pub shares: Vec<ShareSignal>,
    pub issue: IssueRate,
    pub gap: Option<ChannelGap>,
    /// One-sided p-value that the counter results are higher than the paper ones.
    pub gap_p_value: Option<f64>,
    pub gap_q_value: Option<f64>,
    pub gap_flagged: bool,
    pub evidence: f64,
    pub flagged: bool,
    /// One-tap kiosk taps refused by the per-device limit in the period: someone tapping
    /// again and again. Shown as a signal from [`crate::report::kiosk::BURST_REFUSED`] on; not
    /// a statistical test, so outside the panel's family and evidence.
    pub kiosk_refused: u64,
}

impl UnitIntegrity {
    /// Codes of the flagged signals (`issue_rate` and `gap` besides the per-response ones).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = self
            .shares
            .iter()
            .filter(|s| s.flagged)
            .map(|s| s.signal)
            .collect();
        if self.issue.flagged {
            out.push("issue_rate");
        }
        if self.gap_flagged {
            out.push("gap");
        }
        if self.kiosk_refused >= crate::report::kiosk::BURST_REFUSED {
            out.push("kiosk_burst");
        }
        out
    }

    /// The smallest q-value of the unit's tests: how strong its best evidence is after the
    /// panel's multiple-testing control.
    pub fn min_q(&self) -> Option<f64> {
        self.shares
            .iter()
            .filter_map(|s| s.q_value)
            .chain(self.issue.q_value)
            .chain(self.gap_q_value)
            .min_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal))
    }
}

/// Title of any flag code, for pages.
pub fn flag_title(code: &str, lang: Lang) -> &'static str {
    match code {
        "issue_rate" => lang.pick("Tỷ lệ phát phiếu thấp", "Low issue rate"),
        "gap" => lang.pick("Chênh lệch quầy – phiếu giấy", "Counter vs paper gap"),
        "kiosk_burst" => lang.pick("Chạm liên tục ở máy đánh giá", "Kiosk tap bursts"),
        other => Signal::parse(other).map(|s| s.title(lang)).unwrap_or("?"),
    }
}

pub fn flag_explanation(code: &str, lang: Lang) -> &'static str {
    match code {
        "issue_rate" => lang.pick(
            "Số phiếu trả lời trên mỗi hồ sơ đã giải quyết thấp hơn nhiều so với các đơn vị cùng cấp (kể cả khi tính đến mức chênh lệch thường thấy giữa các đơn vị): có thể mã QR chỉ được đưa cho người dân hài lòng.",
            "Far fewer answers per completed dossier than units of the same kind, even allowing for how much honest units differ: the QR code may be handed only to satisfied citizens.",
        ),
        "gap" => lang.pick(
            "Kết quả khảo sát tại quầy cao hơn kết quả phiếu giấy do bưu điện thu độc lập, và chênh lệch có ý nghĩa thống kê (không phải do ngẫu nhiên).",
            "Counter e-survey results are higher than the independent paper survey for the same unit and period, and the difference is statistically significant (not chance).",
        ),
        "kiosk_burst" => lang.pick(
            "Máy đánh giá một chạm tại quầy đã từ chối nhiều lần chạm quá dồn dập (vượt giới hạn mỗi thiết bị): có thể ai đó chạm lặp đi lặp lại để nâng kết quả.",
            "The desk's one-tap kiosk refused many taps that came too fast (over its per-device limit): someone may be tapping again and again to raise the result.",
        ),
        other => Signal::parse(other)
            .map(|s| s.explanation(lang))
            .unwrap_or(""),
    }
}

/// What the tests of one unit and period start from: the counts of its counter responses
/// showing each signal, its dossiers, and its counter/paper gap.
#[derive(Debug, Clone)]
pub struct UnitCounts {
    pub unit: UnitRef,
    /// Counter responses screened in the period (held ones included).
    pub screened: u64,
    pub held: u64,
    /// Responses showing each signal, in [`Signal::ALL`] order.
    pub signals: [u64; 6],
    pub dossiers: u64,
    pub gap: Option<ChannelGap>,
}

/// A quantile (0–1, linear between order statistics) of `sorted` with the element at `skip`
/// left out.
fn quantile_without(sorted: &[f64], skip: usize, q: f64) -> f64 {
    let len = sorted.len() - 1;
    let at = |j: usize| sorted[if j < skip { j } else { j + 1 }];
    let pos = q * (len - 1) as f64;
    let (lo, frac) = (pos.floor() as usize, pos - pos.floor());
    let hi = (lo + 1).min(len - 1);
    at(lo) + (at(hi) - at(lo)) * frac
}

/// The issue-rate test of every unit of one kind: each unit's answers of its dossiers against
/// the pooled rate of the others, allowing for how much the others' rates vary.
fn issue_rates(counts: &[&UnitCounts]) -> Vec<IssueRate> {
    // Comparable units: enough dossiers for a rate to mean something.
    let mut peers: Vec<(usize, f64)> = counts
        .iter()
        .enumerate()
        .filter(|(_, c)| c.dossiers >= MIN_N)
        .map(|(i, c)| (i, c.screened.min(c.dossiers) as f64 / c.dossiers as f64))
        .collect();
    peers.sort_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
    let sorted: Vec<f64> = peers.iter().map(|p| p.1).collect();
    let position: HashMap<usize, usize> = peers.iter().enumerate().map(|(k, p)| (p.0, k)).collect();
    let (answers_all, dossiers_all, noise_all) =
        peers.iter().fold((0.0, 0.0, 0.0), |acc, (i, _)| {
            let c = counts[*i];
            (
                acc.0 + c.screened.min(c.dossiers) as f64,
                acc.1 + c.dossiers as f64,
                acc.2 + 1.0 / c.dossiers as f64,
            )
        });
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let answers = c.screened.min(c.dossiers);
            let rate = (c.dossiers > 0).then(|| answers as f64 / c.dossiers as f64);
            let interval = stats::wilson(answers, c.dossiers);
            let mut out = IssueRate {
                answers: c.screened,
                dossiers: c.dossiers,
                rate,
                rate_low: interval.map(|i| i.low),
                rate_high: interval.map(|i| i.high),
                peer_rate: None,
                peer_spread: None,
                peers: 0,
                p_value: None,
                q_value: None,
                flagged: false,
            };
            let Some(&k) = position.get(&i) else {
                return out;
            };
            let others = sorted.len() - 1;
            if others < MIN_PEERS {
                return out;
            }
            let d = c.dossiers as f64;
            let pooled = (answers_all - answers as f64) / (dossiers_all - d);
            // Robust spread of the others' rates (IQR / 1.349, so a few gaming units do not
            // widen it), less the binomial noise a rate of their size carries.
            let iqr = quantile_without(&sorted, k, 0.75) - quantile_without(&sorted, k, 0.25);
            let mean_noise = pooled * (1.0 - pooled) * (noise_all - 1.0 / d) / others as f64;
            let spread = ((iqr / 1.349).powi(2) - mean_noise).max(0.0).sqrt();
            out.peer_rate = Some(pooled);
            out.peer_spread = Some(spread);
            out.peers = others;
            out.p_value = stats::beta_binomial_p_below(answers, c.dossiers, pooled, spread);
            out
        })
        .collect()
}

/// Runs every test of the panel on `counts` and controls them together (Benjamini–Hochberg at
/// [`FDR_Q`]); the result is ranked by evidence (most at risk first). Pure: the simulations
/// call it without a database.
pub fn evaluate(counts: &[UnitCounts]) -> Vec<UnitIntegrity> {
    // Issue rates, kind by kind.
    let mut issues: Vec<Option<IssueRate>> = vec![None; counts.len()];
    let mut kinds: Vec<&str> = counts.iter().map(|c| c.unit.kind.as_str()).collect();
    kinds.sort_unstable();
    kinds.dedup();
    for kind in kinds {
        let members: Vec<usize> = (0..counts.len())
            .filter(|i| counts[*i].unit.kind == kind)
            .collect();
        let of_kind: Vec<&UnitCounts> = members.iter().map(|i| &counts[*i]).collect();
        for (i, rate) in members.into_iter().zip(issue_rates(&of_kind)) {
            issues[i] = Some(rate);
        }
    }
    let mut out: Vec<UnitIntegrity> = counts
        .iter()
        .zip(issues)
        .map(|(c, issue)| {
            let n = c.screened;
            let shares = Signal::ALL
                .iter()
                .zip(c.signals)
                .map(|(s, count)| {
                    let base = baseline(*s);
                    ShareSignal {
                        signal: s.code(),
                        count,
                        n,
                        baseline: base,
                        p_value: p_above(count, n, base),
                        q_value: None,
                        flagged: false,
                    }
                })
                .collect();
            // Two-sided p of the report's test, made one-sided: only a counter result above the
            // paper one is a sign of inflation.
            let gap_p_value = c.gap.as_ref().and_then(|g| {
                let (d, p) = (g.difference?, g.p_value?);
                Some(if d > 0.0 { p / 2.0 } else { 1.0 - p / 2.0 })
            });
            UnitIntegrity {
                unit: c.unit.clone(),
                screened: n,
                held: c.held,
                shares,
                issue: issue.unwrap_or_else(|| issue_rates(&[c]).remove(0)),
                gap: c.gap.clone(),
                gap_p_value,
                gap_q_value: None,
                gap_flagged: false,
                evidence: 0.0,
                flagged: false,
                kiosk_refused: 0,
            }
        })
        .collect();
    // The family: every test with enough data, across units and signals.
    let mut family: Vec<Option<f64>> = Vec::new();
    for u in &out {
        for s in &u.shares {
            family.push(s.p_value.filter(|_| s.n >= MIN_N));
        }
        family.push(u.issue.p_value.filter(|_| u.issue.dossiers >= MIN_N));
        family.push(u.gap_p_value);
    }
    let q = stats::bh_adjust(&family);
    let mut q = q.into_iter();
    let flag = |q: Option<f64>| q.is_some_and(|q| q <= FDR_Q);
    for u in &mut out {
        let mut evidence = 0.0;
        for s in &mut u.shares {
            s.q_value = q.next().flatten();
            s.flagged = flag(s.q_value);
            if s.flagged {
                evidence += evidence_of(s.p_value);
            }
        }
        u.issue.q_value = q.next().flatten();
        u.issue.flagged = flag(u.issue.q_value);
        if u.issue.flagged {
            evidence += evidence_of(u.issue.p_value);
        }
        u.gap_q_value = q.next().flatten();
        u.gap_flagged = flag(u.gap_q_value);
        if u.gap_flagged {
            evidence += evidence_of(u.gap_p_value);
        }
        u.flagged = u.shares.iter().any(|s| s.flagged) || u.issue.flagged || u.gap_flagged;
        u.evidence = (evidence * 10.0).round() / 10.0;
    }
    out.sort_by(|a, b| {
        b.evidence
            .partial_cmp(&a.evidence)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.unit.code.cmp(&b.unit.code))
    });
    out
}

type CountRow = (String, i64, i64, i64, i64, i64, i64, i64, i64, i64);

/// Assesses every unit with counter answers or dossiers in `period`, ranked by evidence
/// (most at risk first).
pub fn assess(
    conn: &mut DbConn,
    forms: &FormRegistry,
    opts: &ReportOptions,
    policy: &IntegrityPolicy,
    period: &Period,
) -> AppResult<Vec<UnitIntegrity>> {
    let (from, until) = period.utc_bounds(opts.utc_offset);
    let fast = format!(
        "CAST(SUM(CASE WHEN seconds_from_issue IS NOT NULL AND seconds_from_issue < {} THEN 1 ELSE 0 END) AS BIGINT)",
        policy.fast_seconds.max(0)
    );
    let short = format!(
        "CAST(SUM(CASE WHEN seconds_answering IS NULL OR seconds_answering < questions_answered * {:.3} THEN 1 ELSE 0 END) AS BIGINT)",
        policy.seconds_per_question.max(0.0)
    );
    let reviewed = |review: Review| {
        format!(
            "CAST(SUM(CASE WHEN review = '{}' THEN 1 ELSE 0 END) AS BIGINT)",
            review.as_str()
        )
    };
    let (held, rejected) = (reviewed(Review::Held), reviewed(Review::Rejected));
    // Counter responses (the channels an agency controls) of the period, per unit.
    let rows: Vec<CountRow> = db_run!(conn: {
        response_signals::table
            .filter(response_signals::submitted_at.ge(from))
            .filter(response_signals::submitted_at.lt(until))
            .filter(response_signals::channel.eq_any(COUNTER_CHANNELS))
            .group_by(response_signals::unit_id)
            .select((
                response_signals::unit_id,
                sql::<BigInt>("CAST(COUNT(*) AS BIGINT)"),
                sql::<BigInt>("CAST(SUM(CASE WHEN same_device THEN 1 ELSE 0 END) AS BIGINT)"),
                sql::<BigInt>("CAST(SUM(CASE WHEN same_network THEN 1 ELSE 0 END) AS BIGINT)"),
                sql::<BigInt>(&fast),
                sql::<BigInt>(&short),
                sql::<BigInt>("CAST(SUM(CASE WHEN straight_line THEN 1 ELSE 0 END) AS BIGINT)"),
                sql::<BigInt>("CAST(SUM(CASE WHEN burst THEN 1 ELSE 0 END) AS BIGINT)"),
                sql::<BigInt>(&held),
                sql::<BigInt>(&rejected),
            ))
            .load(conn)
    })?;
    let counts: HashMap<String, CountRow> = rows.into_iter().map(|r| (r.0.clone(), r)).collect();
    let dossiers = source::dossier_counts(conn, None, period, opts.utc_offset)?;
    let gap_form = crate::report::sipas_form(forms);
    let tallies = match &gap_form {
        Some(form) => Some(source::load(
            conn,
            forms,
            &form.code,
            None,
            period,
            opts.utc_offset,
        )?),
        None => None,
    };
    let refused = crate::report::kiosk::refused_by_unit(conn, period, opts.utc_offset)?;
    let present: HashSet<&String> = counts
        .keys()
        .chain(dossiers.keys())
        .chain(refused.keys())
        .collect();
    let mut inputs = Vec::new();
    for unit in units::list(conn)?
        .iter()
        .filter(|u| present.contains(&u.id))
    {
        let c = counts.get(&unit.id);
        let get = |v: Option<i64>| v.map_or(0, |v| v.max(0) as u64);
        let gap = match (&gap_form, &tallies) {
            (Some(form), Some(tallies)) => Some(crate::report::counter_independent_gap(
                form,
                tallies,
                |k| k.unit_id == unit.id,
                opts.min_n,
            )),
            _ => None,
        };
        inputs.push(UnitCounts {
            unit: unit.into(),
            screened: get(c.map(|r| r.1)),
            held: get(c.map(|r| r.8)),
            signals: [
                get(c.map(|r| r.2)),
                get(c.map(|r| r.3)),
                get(c.map(|r| r.4)),
                get(c.map(|r| r.5)),
                get(c.map(|r| r.6)),
                get(c.map(|r| r.7)),
            ],
            dossiers: dossiers.get(&unit.id).map_or(0, |d| d.dossiers),
            gap,
        });
    }
    let mut assessed = evaluate(&inputs);
    for unit in &mut assessed {
        unit.kiosk_refused = refused.get(&unit.unit.id).copied().unwrap_or(0);
    }
    Ok(assessed)
}
