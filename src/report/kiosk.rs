//! One-tap kiosk figures: taps per unit and period, their share satisfied and distribution,
//! the follow-up answers, and the taps the per-device limit refused (bursts, an integrity
//! signal). Kiosk taps are not SIPAS answers: they sit near the ceiling (a device at the desk,
//! in front of the official), so they are reported apart and enter the index only when the
//! province says so (`SIPAS_KIOSK_IN_INDEX`, see [`index_tally`]).

use std::collections::HashMap;

use chrono::FixedOffset;
use diesel::prelude::*;
use serde::Serialize;

use super::figures::{Figure, Tally, compute};
use super::period::Period;
use super::stats::{respondent_interval, respondent_se};
use crate::db::DbConn;
use crate::db::schema::{kiosk_refusals, kiosk_taps};
use crate::db_run;
use crate::forms::Form;
use crate::forms::scoring::INDEX_CODE;

/// Whether a tap of `face` on a kiosk of `faces` faces is "satisfied": the top two faces of
/// five, the top one of three (as the SIPAS scales count satisfied levels).
pub fn is_satisfied(face: i64, faces: i64) -> bool {
    match faces {
        3 => face == 3,
        _ => face >= 4,
    }
}

/// A unit's kiosk figures for a period (its scope of units summed).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct KioskFigures {
    pub taps: u64,
    pub satisfied: u64,
    /// Percentage satisfied (unrounded), `None` without taps.
    pub satisfied_share: Option<f64>,
    /// Taps by face, on the five-face scale (a three-face tap counts as face 1, 3 or 5).
    pub by_face: [u64; 5],
    /// Follow-up answers by code, most frequent first.
    pub follow_ups: Vec<(String, u64)>,
    /// Taps refused by the per-device limit.
    pub refused: u64,
    /// The kiosk's weight in the picture: its taps as a percentage of all answers of the
    /// period (kiosk taps plus SIPAS responses), `None` when there are none.
    pub weight: Option<f64>,
}

/// Places a tap on the five-face scale.
fn as_five(face: i64, faces: i64) -> usize {
    let five = if faces == 3 { face * 2 - 1 } else { face };
    (five.clamp(1, 5) - 1) as usize
}

impl KioskFigures {
    /// Sets the weight against the `responses` (SIPAS answers) of the same scope and period.
    pub fn weigh(&mut self, responses: u64) {
        let all = self.taps + responses;
        self.weight = (all > 0).then(|| self.taps as f64 / all as f64 * 100.0);
    }
}

/// The kiosk figures of the units in `scope` for `period` (weight unset: see
/// [`KioskFigures::weigh`]).
pub fn figures(
    conn: &mut DbConn,
    scope: &[String],
    period: &Period,
    utc_offset: FixedOffset,
) -> QueryResult<KioskFigures> {
    let (from, until) = period.utc_bounds(utc_offset);
    let rows: Vec<(i64, i64, Option<String>, i64)> = db_run!(conn: {
        kiosk_taps::table
            .filter(kiosk_taps::unit_id.eq_any(scope))
            .filter(kiosk_taps::tapped_at.ge(from))
            .filter(kiosk_taps::tapped_at.lt(until))
            .group_by((kiosk_taps::face, kiosk_taps::faces, kiosk_taps::follow_up))
            .select((kiosk_taps::face, kiosk_taps::faces, kiosk_taps::follow_up, diesel::dsl::count_star()))
            .load(conn)
    })?;
    let mut out = KioskFigures {
        refused: refused_taps(conn, scope, period, utc_offset)?,
        ..KioskFigures::default()
    };
    let mut follow: HashMap<String, u64> = HashMap::new();
    for (face, faces, follow_up, n) in rows {
        let n = n.max(0) as u64;
        out.taps += n;
        if is_satisfied(face, faces) {
            out.satisfied += n;
        }
        out.by_face[as_five(face, faces)] += n;
        if let Some(code) = follow_up {
            *follow.entry(code).or_default() += n;
        }
    }
    out.satisfied_share = (out.taps > 0).then(|| out.satisfied as f64 / out.taps as f64 * 100.0);
    let mut follow_ups: Vec<(String, u64)> = follow.into_iter().collect();
    follow_ups.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    out.follow_ups = follow_ups;
    Ok(out)
}

fn refused_taps(
    conn: &mut DbConn,
    scope: &[String],
    period: &Period,
    utc_offset: FixedOffset,
) -> QueryResult<u64> {
    let (from, until) = period.utc_bounds(utc_offset);
    let counts: Vec<i64> = db_run!(conn: {
        kiosk_refusals::table
            .filter(kiosk_refusals::unit_id.eq_any(scope))
            .filter(kiosk_refusals::minute.ge(from))
            .filter(kiosk_refusals::minute.lt(until))
            .select(kiosk_refusals::refused)
            .load(conn)
    })?;
    Ok(counts.into_iter().map(|n| n.max(0) as u64).sum())
}

/// The SIPAS index with the kiosk taps included (the province's choice): the form's own
/// estimate over its respondents and the taps' satisfied share, weighted by their numbers; the
/// interval and standard error from the respondent scores of both (see [`index_tally`]). The
/// form's figures themselves are computed as always; only this blend is new.
pub fn index_with_taps(form: &Form, tally: &Tally, taps: &KioskFigures, min_n: u64) -> Figure {
    if taps.taps == 0 {
        return compute(form, tally, min_n).index;
    }
    // The unsuppressed estimate: suppression applies to the blend.
    let own = compute(form, tally, 0).index;
    let (respondents, _, _) = tally
        .scores
        .get(INDEX_CODE)
        .copied()
        .unwrap_or((0, 0.0, 0.0));
    let mut merged = tally.clone();
    merged.merge(&index_tally(taps));
    let (n, sum, sq) = merged
        .scores
        .get(INDEX_CODE)
        .copied()
        .unwrap_or((0, 0.0, 0.0));
    let blended = match own.value {
        Some(percent) if respondents > 0 => {
            (percent / 100.0 * respondents as f64 + taps.satisfied as f64)
                / (respondents + taps.taps) as f64
        }
        _ => taps.satisfied as f64 / taps.taps as f64,
    };
    Figure::new(
        n,
        Some(blended),
        respondent_interval(blended, n, sum, sq),
        respondent_se(n, sum, sq),
        min_n,
    )
}

/// What kiosk taps add to the respondent scores of the SIPAS index when the province includes
/// them: each tap one respondent whose index score is 1 when satisfied, 0 otherwise (the scale
/// of `forms::scoring::respondent_scores`).
pub fn index_tally(figures: &KioskFigures) -> Tally {
    let mut tally = Tally::default();
    if figures.taps > 0 {
        let s = figures.satisfied as f64;
        tally.add_score(INDEX_CODE, figures.taps, s, s);
    }
    tally
}

/// A unit's refused taps in a period, when they amount to a burst: at least
/// [`BURST_REFUSED`] refused taps (someone tapping again and again at the kiosk).
pub const BURST_REFUSED: u64 = 10;

/// Refused taps per unit in `period` (units with none are left out).
pub fn refused_by_unit(
    conn: &mut DbConn,
    period: &Period,
    utc_offset: FixedOffset,
) -> QueryResult<HashMap<String, u64>> {
    let (from, until) = period.utc_bounds(utc_offset);
    let rows: Vec<(String, i64)> = db_run!(conn: {
        kiosk_refusals::table
            .filter(kiosk_refusals::minute.ge(from))
            .filter(kiosk_refusals::minute.lt(until))
            .select((kiosk_refusals::unit_id, kiosk_refusals::refused))
            .load(conn)
    })?;
    let mut out: HashMap<String, u64> = HashMap::new();
    for (unit, n) in rows {
        *out.entry(unit).or_default() += n.max(0) as u64;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faces_map_to_satisfaction_and_the_five_scale() {
        assert!(is_satisfied(4, 5) && is_satisfied(5, 5) && !is_satisfied(3, 5));
        assert!(is_satisfied(3, 3) && !is_satisfied(2, 3));
        assert_eq!(as_five(1, 3), 0);
        assert_eq!(as_five(2, 3), 2);
        assert_eq!(as_five(3, 3), 4);
        assert_eq!(as_five(4, 5), 3);
    }

    #[test]
    fn the_index_tally_counts_each_tap_as_a_respondent() {
        let f = KioskFigures {
            taps: 4,
            satisfied: 3,
            ..KioskFigures::default()
        };
        let t = index_tally(&f);
        assert_eq!(t.scores.get(INDEX_CODE), Some(&(4, 3.0, 3.0)));
        assert!(index_tally(&KioskFigures::default()).scores.is_empty());
    }
}
