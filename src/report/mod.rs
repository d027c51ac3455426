//! Satisfaction reports: the SIPAS index per unit with intervals, channel gaps, the Decision 766
//! dossier rate, sample adequacy, trends and rankings — all from rollups.

pub mod activity;
pub mod agency_home;
pub mod charts;
pub mod export;
pub mod figures;
pub mod kiosk;
pub mod latest;
pub mod overview;
pub mod period;
pub mod queries;
pub mod response_export;
pub mod slots;
pub mod source;
pub mod stats;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::FixedOffset;
use diesel::prelude::*;
use serde::Serialize;

use self::figures::{Figure, FormFigures, Tally, compute};
use self::period::Period;
use self::slots::SlotSums;
use self::source::{COUNTER_CHANNELS, CellKey, DossierCounts, INDEPENDENT_CHANNELS, Tallies};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::forms::{Form, FormKind, FormRegistry};
use crate::i18n::Msg;
use crate::survey::channel::Channel;
use crate::survey::response::ResponseStatus;
use crate::units::{self, Unit};

/// Settings of the report computation.
#[derive(Debug, Clone, Copy)]
pub struct ReportOptions {
    /// Cells with fewer answers are suppressed.
    pub min_n: u64,
    /// Margin e of the required-sample formula.
    pub sample_margin: f64,
    pub utc_offset: FixedOffset,
    /// One-tap kiosk taps enter the unit report's SIPAS index (`SIPAS_KIOSK_IN_INDEX`).
    pub kiosk_in_index: bool,
}

impl ReportOptions {
    pub fn from_settings(settings: &crate::config::Settings, utc_offset: FixedOffset) -> Self {
        Self {
            min_n: settings.report_min_n,
            sample_margin: settings.sample_margin,
            utc_offset,
            kiosk_in_index: settings.kiosk_in_index,
        }
    }
}

/// Which responses a report counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slice {
    /// `counter`, `independent`, or one channel name.
    pub channel: Option<String>,
    /// `individual` or `organisation`.
    pub respondent_type: Option<String>,
    /// A procedure id (whole-month periods only).
    pub procedure_id: Option<String>,
    /// Also count responses held for review (to see what accepting them would change).
    pub include_held: bool,
}

impl Slice {
    fn admits(&self, key: &CellKey) -> bool {
        let channel_ok = match self.channel.as_deref() {
            None => true,
            Some("counter") => COUNTER_CHANNELS.contains(&key.channel.as_str()),
            Some("independent") => INDEPENDENT_CHANNELS.contains(&key.channel.as_str()),
            Some(c) => key.channel == c,
        };
        channel_ok
            && self
                .respondent_type
                .as_deref()
                .is_none_or(|t| key.respondent_type == t)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitRef {
    pub id: String,
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub kind: String,
}

impl From<&Unit> for UnitRef {
    fn from(u: &Unit) -> Self {
        Self {
            id: u.id.clone(),
            code: u.code.clone(),
            name_vi: u.name_vi.clone(),
            name_en: u.name_en.clone(),
            kind: u.kind.clone(),
        }
    }
}

/// Achieved against required sample (n = N/(1+N·e²), N = dossiers completed in the period).
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct SampleFigure {
    pub population: u64,
    pub required: u64,
    pub achieved: u64,
    pub sufficient: bool,
}

/// The Decision 766 rate: (dossiers − rated unsatisfied − late) ÷ dossiers, an unrounded
/// percentage.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DossierRate {
    pub counts: DossierCounts,
    pub rate: Option<f64>,
}

impl DossierRate {
    fn from_counts(counts: DossierCounts) -> Self {
        let rate = (counts.dossiers > 0).then(|| {
            let good = counts.dossiers - counts.unsatisfied_or_late.min(counts.dossiers);
            good as f64 / counts.dossiers as f64 * 100.0
        });
        Self { counts, rate }
    }
}

/// Counter e-survey against the independent collector for the same unit and period.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChannelGap {
    pub counter: Figure,
    pub independent: Figure,
    /// Counter minus independent, in percentage points (unrounded).
    pub difference: Option<f64>,
    pub p_value: Option<f64>,
    pub significant: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Change {
    pub previous_period: String,
    pub previous: Figure,
    pub difference: Option<f64>,
    pub p_value: Option<f64>,
    pub significant: bool,
}

/// One channel's figure of a form (channels reported apart: QR, links by invitation, token
/// books, paper …).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ChannelFigure {
    pub form: String,
    pub channel: String,
    pub index: Figure,
}

/// Each channel present in `tallies` (in [`Channel::ALL`] order), for the respondents `slice`
/// admits.
fn channel_figures(
    form: &Form,
    tallies: &Tallies,
    slice: &Slice,
    min_n: u64,
) -> Vec<ChannelFigure> {
    let mut present: Vec<&str> = tallies.0.keys().map(|k| k.channel.as_str()).collect();
    let order = |c: &str| {
        Channel::ALL
            .iter()
            .position(|x| x.code() == c)
            .unwrap_or(usize::MAX)
    };
    present.sort_by_key(|c| (order(c), c.to_string()));
    present.dedup();
    present
        .into_iter()
        .map(|channel| {
            let t = tallies.total(|k| {
                k.channel == channel
                    && slice
                        .respondent_type
                        .as_deref()
                        .is_none_or(|r| k.respondent_type == r)
            });
            ChannelFigure {
                form: form.code.clone(),
                channel: channel.to_string(),
                index: compute(form, &t, min_n).index,
            }
        })
        .filter(|c| c.index.n > 0)
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct TrendPoint {
    pub month: String,
    pub index: Figure,
}

#[derive(Debug, Clone, Serialize)]
pub struct UnitReport {
    pub unit: UnitRef,
    pub period: String,
    pub from: chrono::NaiveDate,
    pub to: chrono::NaiveDate,
    pub slice_channel: Option<String>,
    pub slice_respondent_type: Option<String>,
    pub slice_procedure: Option<String>,
    pub sipas: Option<FormFigures>,
    pub transaction: Option<FormFigures>,
    pub dossier_rate: DossierRate,
    pub sample: SampleFigure,
    pub gap: Option<ChannelGap>,
    pub change: Option<Change>,
    pub trend: Vec<TrendPoint>,
    /// Each form's figure per channel.
    pub channels: Vec<ChannelFigure>,
    /// One-tap kiosk taps, reported apart (see [`kiosk`]).
    pub kiosk: kiosk::KioskFigures,
    /// Whether the kiosk taps are in `sipas`'s index (the province's setting).
    pub kiosk_in_index: bool,
}

fn form_of_kind(forms: &FormRegistry, kind: FormKind) -> Option<Arc<Form>> {
    let mut codes: Vec<&String> = forms.codes().collect();
    codes.sort();
    codes
        .into_iter()
        .filter_map(|c| forms.latest(c))
        .find(|f| f.kind == kind)
}

/// The difference a − b (percentage points, unrounded), its two-sided p-value (Welch's t on
/// the figures' standard errors) and whether it is significant at 5 %.
pub fn compare(a: &Figure, b: &Figure) -> (Option<f64>, Option<f64>, bool) {
    match (a.value, b.value, a.se(), b.se()) {
        (Some(x), Some(y), Some(sx), Some(sy)) => {
            let p = stats::difference_p(x, sx, a.df(), y, sy, b.df());
            (Some(x - y), p, p.is_some_and(|p| p < 0.05))
        }
        _ => (None, None, false),
    }
}

/// Counter channels against the independent collector over the cells `keep` accepts, with the
/// same significance test as the unit report (used by the integrity signals).
pub fn counter_independent_gap(
    form: &Form,
    tallies: &Tallies,
    keep: impl Fn(&CellKey) -> bool,
    min_n: u64,
) -> ChannelGap {
    let group = |channels: &[&str]| {
        compute(
            form,
            &tallies.total(|k| keep(k) && channels.contains(&k.channel.as_str())),
            min_n,
        )
        .index
    };
    let (counter, independent) = (group(COUNTER_CHANNELS), group(INDEPENDENT_CHANNELS));
    let (difference, p_value, significant) = compare(&counter, &independent);
    ChannelGap {
        counter,
        independent,
        difference,
        p_value,
        significant,
    }
}

pub fn sipas_form(forms: &FormRegistry) -> Option<Arc<Form>> {
    form_of_kind(forms, FormKind::Sipas)
}

fn bad_slice(field: &str, vi: &str, en: &str) -> AppError {
    AppError::field(field, Msg::new(vi, en))
}

/// Builds the report of `unit` (and everything it covers) for `period` and `slice`.
pub fn unit_report(
    conn: &mut DbConn,
    forms: &FormRegistry,
    opts: &ReportOptions,
    unit: &Unit,
    period: &Period,
    slice: &Slice,
) -> AppResult<UnitReport> {
    if let Some(c) = slice.channel.as_deref()
        && !["counter", "independent"].contains(&c)
        && crate::survey::channel::Channel::parse(c).is_none_or(|c| c == Channel::Group)
    {
        return Err(bad_slice(
            "channel",
            "Kênh không hợp lệ.",
            "Unknown channel.",
        ));
    }
    if slice
        .respondent_type
        .as_deref()
        .is_some_and(|t| t != "individual" && t != "organisation")
    {
        return Err(bad_slice(
            "respondent_type",
            "Loại người trả lời không hợp lệ.",
            "Unknown respondent type.",
        ));
    }
    if slice.procedure_id.is_some() && !period.whole_months() {
        return Err(bad_slice(
            "procedure",
            "Báo cáo theo thủ tục chỉ áp dụng cho kỳ trọn tháng.",
            "Reports by procedure need a period of whole months.",
        ));
    }
    let scope = source::scope(conn, &unit.id)?;
    let sipas_form = form_of_kind(forms, FormKind::Sipas);
    let transaction_form = form_of_kind(forms, FormKind::Transaction);
    let figures_for =
        |conn: &mut DbConn, form: &Form, period: &Period| -> AppResult<(Tallies, Tally)> {
            let tallies = source::load_with_held(
                conn,
                forms,
                &form.code,
                Some(&scope),
                period,
                opts.utc_offset,
                slice.include_held,
            )?;
            let tally = match &slice.procedure_id {
                Some(p) => source::load_procedure(conn, &form.code, &scope, period, p)?,
                None => tallies.total(|k| slice.admits(k)),
            };
            Ok((tallies, tally))
        };
    let mut sipas = None;
    let mut gap = None;
    let mut change = None;
    let mut trend = Vec::new();
    let mut achieved = 0;
    let mut channels = Vec::new();
    let mut kiosk_figures = kiosk::figures(conn, &scope, period, opts.utc_offset)?;
    // Kiosk taps join the index only when the province says so, and only in slices that
    // admit the kiosk channel.
    let kiosk_counts = opts.kiosk_in_index
        && slice.procedure_id.is_none()
        && slice.respondent_type.is_none()
        && matches!(
            slice.channel.as_deref(),
            None | Some("counter") | Some("kiosk")
        );
    if let Some(form) = &sipas_form {
        let (tallies, tally) = figures_for(conn, form, period)?;
        let mut figures = compute(form, &tally, opts.min_n);
        if kiosk_counts {
            figures.index = kiosk::index_with_taps(form, &tally, &kiosk_figures, opts.min_n);
        }
        achieved = tallies.total(|_| true).responses();
        kiosk_figures.weigh(achieved);
        channels.extend(channel_figures(form, &tallies, slice, opts.min_n));
        let by_group = |group: &[&str]| {
            let t = tallies.total(|k| {
                group.contains(&k.channel.as_str())
                    && slice
                        .respondent_type
                        .as_deref()
                        .is_none_or(|r| k.respondent_type == r)
            });
            compute(form, &t, opts.min_n).index
        };
        let (counter, independent) = (by_group(COUNTER_CHANNELS), by_group(INDEPENDENT_CHANNELS));
        let (difference, p_value, significant) = compare(&counter, &independent);
        gap = Some(ChannelGap {
            counter,
            independent,
            difference,
            p_value,
            significant,
        });
        let previous_period = period.previous();
        let (_, prev_tally) = figures_for(conn, form, &previous_period)?;
        let mut previous = compute(form, &prev_tally, opts.min_n).index;
        if kiosk_counts {
            let previous_kiosk = kiosk::figures(conn, &scope, &previous_period, opts.utc_offset)?;
            previous = kiosk::index_with_taps(form, &prev_tally, &previous_kiosk, opts.min_n);
        }
        let (difference, p_value, significant) = compare(&figures.index, &previous);
        change = Some(Change {
            previous_period: previous_period.label(),
            previous,
            difference,
            p_value,
            significant,
        });
        // Twelve months up to the end of the period, one grouped query.
        let last = period.to;
        let first_month = chrono::NaiveDate::from_ymd_opt(
            chrono::Datelike::year(&last),
            chrono::Datelike::month(&last),
            1,
        )
        .and_then(|m| m.checked_sub_months(chrono::Months::new(11)))
        .unwrap_or(period.from);
        let year = Period {
            from: first_month,
            to: Period::parse(&format!("{}", last.format("%Y-%m")))
                .map(|p| p.to)
                .unwrap_or(last),
        };
        for month in year.months() {
            let Some(p) = Period::parse(&month.format("%Y-%m").to_string()) else {
                continue;
            };
            let tallies = source::load(conn, forms, &form.code, Some(&scope), &p, opts.utc_offset)?;
            let t = tallies.total(|k| slice.admits(k));
            trend.push(TrendPoint {
                month: p.label(),
                index: compute(form, &t, opts.min_n).index,
            });
        }
        sipas = Some(figures);
    }
    let transaction = match &transaction_form {
        Some(form) => {
            let (tallies, tally) = figures_for(conn, form, period)?;
            channels.extend(channel_figures(form, &tallies, slice, opts.min_n));
            Some(compute(form, &tally, opts.min_n))
        }
        None => None,
    };
    let dossiers = source::dossier_counts(conn, Some(&scope), period, opts.utc_offset)?;
    let mut counts = DossierCounts::default();
    for c in dossiers.values() {
        counts.dossiers += c.dossiers;
        counts.rated_unsatisfied += c.rated_unsatisfied;
        counts.late += c.late;
        counts.unsatisfied_or_late += c.unsatisfied_or_late;
    }
    let required = stats::required_sample(counts.dossiers, opts.sample_margin);
    Ok(UnitReport {
        unit: unit.into(),
        period: period.label(),
        from: period.from,
        to: period.to,
        slice_channel: slice.channel.clone(),
        slice_respondent_type: slice.respondent_type.clone(),
        slice_procedure: slice.procedure_id.clone(),
        sipas,
        transaction,
        dossier_rate: DossierRate::from_counts(counts),
        sample: SampleFigure {
            population: counts.dossiers,
            required,
            achieved,
            sufficient: achieved >= required && achieved > 0,
        },
        gap,
        change,
        trend,
        channels,
        kiosk: kiosk_figures,
        kiosk_in_index: kiosk_counts,
    })
}

/// Which channels a ranking column sums.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ChannelGroup {
    Counter,
    Independent,
    /// Channels of neither kind (respondent groups).
    Other,
}

/// One row of a ranking.
#[derive(Debug, Clone, Serialize)]
pub struct RankingRow {
    /// Position among units with a sufficient sample; `None` for the others.
    pub rank: Option<u32>,
    pub unit: UnitRef,
    pub index: Figure,
    pub sample: SampleFigure,
    pub dossier_rate: Option<f64>,
    pub gap: Option<f64>,
    pub gap_significant: bool,
}

/// Ranks the units of one `kind` active during the period by SIPAS index. Units below their
/// required sample are listed after the ranked ones, unranked.
pub fn ranking(
    conn: &mut DbConn,
    forms: &FormRegistry,
    opts: &ReportOptions,
    kind: &str,
    period: &Period,
) -> AppResult<Vec<RankingRow>> {
    let Some(form) = form_of_kind(forms, FormKind::Sipas) else {
        return Ok(Vec::new());
    };
    let all_units = units::list(conn)?;
    let candidates: Vec<&Unit> = all_units
        .iter()
        .filter(|u| {
            u.kind == kind
                && u.valid_from <= period.to
                && u.valid_to.is_none_or(|end| end >= period.to)
        })
        .collect();
    // Each unit's cells summed once per channel group, so a candidate adds three sums per unit
    // of its scope.
    let group_of = |channel: &str| {
        if COUNTER_CHANNELS.contains(&channel) {
            ChannelGroup::Counter
        } else if INDEPENDENT_CHANNELS.contains(&channel) {
            ChannelGroup::Independent
        } else {
            ChannelGroup::Other
        }
    };
    let by_unit = source::load_slots(
        conn,
        forms,
        &form.code,
        None,
        period,
        opts.utc_offset,
        |key| {
            let group = group_of(&key.channel);
            Some((key.unit_id, group))
        },
    )?;
    let dossiers = source::dossier_counts(conn, None, period, opts.utc_offset)?;
    let mut rows = Vec::new();
    let tree = source::UnitTree::load(conn)?;
    for unit in candidates {
        let scope = tree.scope(&unit.id);
        let [mut counter, mut independent, mut other] = <[SlotSums; 3]>::default();
        for id in scope.iter() {
            for (group, sums) in [
                (ChannelGroup::Counter, &mut counter),
                (ChannelGroup::Independent, &mut independent),
                (ChannelGroup::Other, &mut other),
            ] {
                if let Some(unit_sums) = by_unit.sums.get(&(id.clone(), group)) {
                    sums.merge(unit_sums);
                }
            }
        }
        let mut all = counter.clone();
        all.merge(&independent);
        all.merge(&other);
        let tally = by_unit.tally(&all);
        let counter = by_unit.tally(&counter);
        let independent = by_unit.tally(&independent);
        let figures = compute(&form, &tally, opts.min_n);
        let (gap, _, gap_significant) = compare(
            &compute(&form, &counter, opts.min_n).index,
            &compute(&form, &independent, opts.min_n).index,
        );
        let mut counts = DossierCounts::default();
        for id in &scope {
            if let Some(c) = dossiers.get(id) {
                counts.dossiers += c.dossiers;
                counts.rated_unsatisfied += c.rated_unsatisfied;
                counts.late += c.late;
                counts.unsatisfied_or_late += c.unsatisfied_or_late;
            }
        }
        let required = stats::required_sample(counts.dossiers, opts.sample_margin);
        let achieved = tally.responses();
        rows.push(RankingRow {
            rank: None,
            unit: unit.into(),
            index: figures.index,
            sample: SampleFigure {
                population: counts.dossiers,
                required,
                achieved,
                sufficient: achieved > 0 && achieved >= required,
            },
            dossier_rate: DossierRate::from_counts(counts).rate,
            gap,
            gap_significant,
        });
    }
    rows.sort_by(|a, b| {
        let key = |r: &RankingRow| {
            (
                r.sample.sufficient && r.index.value.is_some(),
                r.index.value.unwrap_or(-1.0),
            )
        };
        let (ka, kb) = (key(a), key(b));
        kb.0.cmp(&ka.0)
            .then(kb.1.partial_cmp(&ka.1).unwrap_or(std::cmp::Ordering::Equal))
            .then(a.unit.code.cmp(&b.unit.code))
    });
    let mut rank = 0;
    for row in rows.iter_mut() {
        if row.sample.sufficient && row.index.value.is_some() {
            rank += 1;
            row.rank = Some(rank);
        }
    }
    Ok(rows)
}

/// Everything the agency dashboard shows for one unit and period: the report and the latest
/// free-text suggestions of its scope.
pub fn dashboard(
    conn: &mut DbConn,
    forms: &FormRegistry,
    opts: &ReportOptions,
    unit: &Unit,
    period: &Period,
    slice: &Slice,
) -> AppResult<(UnitReport, Vec<(String, String)>)> {
    let report = unit_report(conn, forms, opts, unit, period, slice)?;
    let scope = source::scope(conn, &unit.id)?;
    let suggestions = recent_suggestions(conn, forms, &scope, period, 8, opts.utc_offset)?;
    Ok((report, suggestions))
}

/// Counts answers straight from the stored responses (for checks that rollups are right):
/// (question, stored number) → answers.
pub fn raw_tally(
    conn: &mut DbConn,
    form_code: &str,
    unit_ids: &[String],
    from: chrono::NaiveDateTime,
    until: chrono::NaiveDateTime,
) -> AppResult<HashMap<(String, i64), u64>> {
    use crate::db::schema::responses;
    use crate::db_run;
    let stored: Vec<String> = db_run!(conn: {
        responses::table
            .filter(responses::form_code.eq(form_code))
            .filter(responses::unit_id.eq_any(unit_ids))
            .filter(responses::status.eq(ResponseStatus::Counted.as_str()))
            .filter(responses::submitted_at.ge(from))
            .filter(responses::submitted_at.lt(until))
            .select(responses::answers)
            .load(conn)
    })?;
    let mut out = HashMap::new();
    for text in stored {
        let answers = crate::survey::stored::decode(&text)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("stored answers unreadable: {e}")))?;
        for (q, v, _) in answers {
            if let Some(v) = v {
                *out.entry((q, v)).or_insert(0) += 1;
            }
        }
    }
    Ok(out)
}

/// The latest free-text answers of the units' respondents, with only the month they were given:
/// nothing that points to a person or a dossier.
pub fn recent_suggestions(
    conn: &mut DbConn,
    forms: &FormRegistry,
    unit_ids: &[String],
    period: &Period,
    limit: i64,
    utc_offset: FixedOffset,
) -> QueryResult<Vec<(String, String)>> {
    use crate::db::schema::responses;
    use crate::db_run;
    let shift = chrono::Duration::seconds(utc_offset.local_minus_utc().into());
    let text_codes: std::collections::HashSet<String> = forms
        .all()
        .flat_map(|f| {
            f.questions()
                .filter(|q| q.kind == crate::forms::QuestionType::Text)
                .map(|q| q.code.clone())
                .collect::<Vec<_>>()
        })
        .collect();
    let (from, until) = period.utc_bounds(utc_offset);
    // Newest first, a page at a time, until enough suggestions are found: most respondents
    // leave no text, so this reads a few pages, never the whole period.
    let mut out = Vec::new();
    let mut before: Option<(chrono::NaiveDateTime, String)> = None;
    while (out.len() as i64) < limit {
        let page: Vec<(String, chrono::NaiveDateTime, String)> = db_run!(conn: {
            let mut q = responses::table
                .filter(responses::unit_id.eq_any(unit_ids))
                .filter(responses::status.eq(ResponseStatus::Counted.as_str()))
                .filter(responses::submitted_at.ge(from))
                .filter(responses::submitted_at.lt(until))
                .into_boxed();
            if let Some((at, id)) = &before {
                q = q.filter(responses::submitted_at.lt(*at).or(responses::submitted_at.eq(*at).and(responses::id.lt(id.clone()))));
            }
            q.order((responses::submitted_at.desc(), responses::id.desc()))
                .limit(500)
                .select((responses::id, responses::submitted_at, responses::answers))
                .load(conn)
        })?;
        let Some(last) = page.last() else { break };
        before = Some((last.1, last.0.clone()));
        for (_, at, text) in &page {
            let Ok(answers) = crate::survey::stored::decode(text) else {
                continue;
            };
            for (code, _, value) in answers {
                if let Some(value) = value.filter(|_| text_codes.contains(&code))
                    && (out.len() as i64) < limit
                {
                    out.push(((*at + shift).format("%Y-%m").to_string(), value));
                }
            }
        }
    }
    Ok(out)
}
