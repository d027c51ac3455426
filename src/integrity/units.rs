//! Integrity signals per unit and period: the share of counter responses showing each
//! per-response signal (tested against what honest service tolerates), the issue rate (answers
//! per dossier completed, against the province), and the counter/paper gap with its
//! significance test. Units are ranked by the evidence: the sum of −log₁₀ p of the flagged
//! signals.

use std::collections::{HashMap, HashSet};

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde::Serialize;

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

/// A unit-level test is flagged at this p-value. Dozens of units are tested every period, so
/// 5 % would flag an honest unit or two by chance each time.
pub const ALPHA: f64 = 0.01;
/// Fewer screened responses (or dossiers) than this say nothing either way.
pub const MIN_N: u64 = 10;
/// A unit answering fewer than this share of the province's median answers per dossier looks
/// like it hands out survey links selectively.
pub const ISSUE_RATE_SHARE: f64 = 0.5;

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

/// One-sided p-value that `k` of `n` exceed a rate `p0` (normal approximation with
/// continuity correction).
pub fn p_above(k: u64, n: u64, p0: f64) -> Option<f64> {
    if n == 0 || !(0.0..1.0).contains(&p0) || p0 == 0.0 {
        return None;
    }
    let n = n as f64;
    let z = (k as f64 - n * p0 - 0.5) / (n * p0 * (1.0 - p0)).sqrt();
    Some(1.0 - stats::normal_cdf(z))
}

/// One-sided p-value that `k` of `n` fall below a rate `p0`.
pub fn p_below(k: u64, n: u64, p0: f64) -> Option<f64> {
    if n == 0 || !(0.0..1.0).contains(&p0) || p0 == 0.0 {
        return None;
    }
    let n = n as f64;
    let z = (n * p0 - k as f64 - 0.5) / (n * p0 * (1.0 - p0)).sqrt();
    Some(1.0 - stats::normal_cdf(z))
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
    pub p_value: Option<f64>,
    pub flagged: bool,
}

impl ShareSignal {
    pub fn share(&self) -> Option<f64> {
        (self.n > 0).then(|| self.count as f64 / self.n as f64)
    }
}

/// Answers per dossier completed, against the province.
#[derive(Debug, Clone, Serialize)]
pub struct IssueRate {
    pub answers: u64,
    pub dossiers: u64,
    pub rate: Option<f64>,
    pub province_median: Option<f64>,
    pub p_value: Option<f64>,
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
    pub gap_flagged: bool,
    pub evidence: f64,
    pub flagged: bool,
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
        out
    }
}

/// Title of any flag code, for pages.
pub fn flag_title(code: &str, lang: Lang) -> &'static str {
    match code {
        "issue_rate" => lang.pick("Tỷ lệ phát phiếu thấp", "Low issue rate"),
        "gap" => lang.pick("Chênh lệch quầy – phiếu giấy", "Counter vs paper gap"),
        other => Signal::parse(other).map(|s| s.title(lang)).unwrap_or("?"),
    }
}

pub fn flag_explanation(code: &str, lang: Lang) -> &'static str {
    match code {
        "issue_rate" => lang.pick(
            "Số phiếu trả lời trên mỗi hồ sơ đã giải quyết thấp hơn nhiều so với mức chung của tỉnh: có thể mã QR chỉ được đưa cho người dân hài lòng.",
            "Far fewer answers per completed dossier than across the province: the QR code may be handed only to satisfied citizens.",
        ),
        "gap" => lang.pick(
            "Kết quả khảo sát tại quầy cao hơn kết quả phiếu giấy do bưu điện thu độc lập, và chênh lệch có ý nghĩa thống kê (không phải do ngẫu nhiên).",
            "Counter e-survey results are higher than the independent paper survey for the same unit and period, and the difference is statistically significant (not chance).",
        ),
        other => Signal::parse(other)
            .map(|s| s.explanation(lang))
            .unwrap_or(""),
    }
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
                sql::<BigInt>("CAST(SUM(CASE WHEN review = 'held' THEN 1 ELSE 0 END) AS BIGINT)"),
                sql::<BigInt>("CAST(SUM(CASE WHEN review = 'rejected' THEN 1 ELSE 0 END) AS BIGINT)"),
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
    // The province's typical answers per dossier, from units with enough dossiers.
    let mut rates: Vec<f64> = dossiers
        .iter()
        .filter(|(_, d)| d.dossiers >= MIN_N)
        .map(|(unit, d)| {
            let answers = counts.get(unit).map_or(0, |r| r.1.max(0) as u64);
            answers as f64 / d.dossiers as f64
        })
        .collect();
    rates.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let median = (!rates.is_empty()).then(|| {
        let mid = rates.len() / 2;
        if rates.len().is_multiple_of(2) {
            (rates[mid - 1] + rates[mid]) / 2.0
        } else {
            rates[mid]
        }
    });
    let present: HashSet<&String> = counts.keys().chain(dossiers.keys()).collect();
    let mut out = Vec::new();
    for unit in units::list(conn)?
        .iter()
        .filter(|u| present.contains(&u.id))
    {
        let c = counts.get(&unit.id);
        let n = c.map_or(0, |r| r.1.max(0) as u64);
        let get = |i: usize| -> u64 {
            c.map_or(0, |r| {
                let v = [r.2, r.3, r.4, r.5, r.6, r.7, r.8, r.9];
                v[i].max(0) as u64
            })
        };
        let order = [
            Signal::SameDevice,
            Signal::SameNetwork,
            Signal::FastIssue,
            Signal::ShortAnswering,
            Signal::StraightLine,
            Signal::Burst,
        ];
        let shares: Vec<ShareSignal> = order
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let count = get(i);
                let base = baseline(*s);
                let p = p_above(count, n, base);
                ShareSignal {
                    signal: s.code(),
                    count,
                    n,
                    baseline: base,
                    p_value: p,
                    flagged: n >= MIN_N && p.is_some_and(|p| p < ALPHA),
                }
            })
            .collect();
        let dossier_count = dossiers.get(&unit.id).map_or(0, |d| d.dossiers);
        let threshold = median.map(|m| m * ISSUE_RATE_SHARE);
        let issue_p = threshold.and_then(|t| p_below(n, dossier_count, t));
        let issue = IssueRate {
            answers: n,
            dossiers: dossier_count,
            rate: (dossier_count > 0).then(|| n as f64 / dossier_count as f64),
            province_median: median,
            p_value: issue_p,
            flagged: dossier_count >= MIN_N && issue_p.is_some_and(|p| p < ALPHA),
        };
        let gap = match (&gap_form, &tallies) {
            (Some(form), Some(tallies)) => Some(crate::report::counter_independent_gap(
                form,
                tallies,
                |k| k.unit_id == unit.id,
                opts.min_n,
            )),
            _ => None,
        };
        let gap_flagged = gap.as_ref().is_some_and(|g| {
            g.difference.is_some_and(|d| d > 0.0) && g.p_value.is_some_and(|p| p < ALPHA)
        });
        let mut evidence: f64 = shares
            .iter()
            .filter(|s| s.flagged)
            .map(|s| evidence_of(s.p_value))
            .sum();
        if issue.flagged {
            evidence += evidence_of(issue.p_value);
        }
        if gap_flagged {
            evidence += evidence_of(gap.as_ref().and_then(|g| g.p_value));
        }
        let flagged = shares.iter().any(|s| s.flagged) || issue.flagged || gap_flagged;
        out.push(UnitIntegrity {
            unit: unit.into(),
            screened: n,
            held: get(6),
            shares,
            issue,
            gap,
            gap_flagged,
            evidence: (evidence * 10.0).round() / 10.0,
            flagged,
        });
    }
    out.sort_by(|a, b| {
        b.evidence
            .partial_cmp(&a.evidence)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.unit.code.cmp(&b.unit.code))
    });
    Ok(out)
}
