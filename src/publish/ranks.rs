//! Rank ranges: a league table that does not claim more than the data shows.
//!
//! Method (analytic, deterministic): two units are put in order only when their 95 % intervals
//! do not overlap. For unit *i* among the *N* ranked units of one level,
//!
//! - units surely ahead = those whose interval lies wholly above *i*'s (`low_j > high_i`),
//! - units surely behind = those whose interval lies wholly below (`high_j < low_i`),
//! - rank range = `1 + ahead` … `N − behind`.
//!
//! A unit whose interval overlaps no other has a single rank; otherwise it is shown with its
//! range ("3–5") and marked tied. The point rank (by the estimate alone, ties sharing the best
//! place) is kept for sorting only. Requiring non-overlapping 95 % intervals is conservative:
//! two estimates whose intervals just touch differ at about p = 0.006, so a shown order is
//! rarely noise, while a range says honestly that the data cannot tell the units apart
//! (Goldstein & Spiegelhalter 1996 warn against league tables without such intervals). A unit
//! without an interval (fewer than two respondents' scores) is given 0–100 %: it overlaps all.

use serde::{Deserialize, Serialize};

/// One ranked unit's estimate and 95 % interval, in percent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    pub value: f64,
    pub low: f64,
    pub high: f64,
}

/// Where a unit stands: its point rank and the range of ranks the data allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RankRange {
    pub point: u32,
    pub low: u32,
    pub high: u32,
}

impl RankRange {
    /// Whether other units share part of this range (the data cannot order them).
    pub fn tied(&self) -> bool {
        self.low != self.high
    }

    /// "3" or "3–5".
    pub fn label(&self) -> String {
        if self.tied() {
            format!("{}–{}", self.low, self.high)
        } else {
            self.low.to_string()
        }
    }
}

/// The rank range of every estimate, in the order given.
pub fn rank_ranges(estimates: &[Estimate]) -> Vec<RankRange> {
    let n = estimates.len() as u32;
    estimates
        .iter()
        .map(|me| {
            let ahead = estimates.iter().filter(|o| o.low > me.high).count() as u32;
            let behind = estimates.iter().filter(|o| o.high < me.low).count() as u32;
            let better = estimates.iter().filter(|o| o.value > me.value).count() as u32;
            RankRange {
                point: 1 + better,
                low: 1 + ahead,
                high: n - behind,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(value: f64, low: f64, high: f64) -> Estimate {
        Estimate { value, low, high }
    }

    #[test]
    fn overlapping_intervals_share_a_rank_range() {
        // A clearly first; B, C, D overlap each other; E clearly last.
        let units = [
            e(95.0, 93.0, 97.0), // A
            e(80.0, 75.0, 85.0), // B
            e(78.0, 72.0, 84.0), // C
            e(76.0, 70.0, 82.0), // D
            e(50.0, 45.0, 55.0), // E
        ];
        let ranks = rank_ranges(&units);
        let labels: Vec<String> = ranks.iter().map(RankRange::label).collect();
        assert_eq!(labels, ["1", "2–4", "2–4", "2–4", "5"]);
        assert_eq!(
            ranks.iter().map(|r| r.point).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        assert!(!ranks[0].tied() && ranks[1].tied() && !ranks[4].tied());
    }

    #[test]
    fn chains_of_overlap_give_ranges_of_different_lengths() {
        // A overlaps B, B overlaps C, but A and C do not overlap.
        let units = [
            e(90.0, 86.0, 94.0), // A
            e(84.0, 80.0, 88.0), // B
            e(78.0, 74.0, 82.0), // C
        ];
        let labels: Vec<String> = rank_ranges(&units).iter().map(RankRange::label).collect();
        assert_eq!(labels, ["1–2", "1–3", "2–3"]);
    }

    #[test]
    fn touching_is_overlap_and_equal_estimates_share_the_point_rank() {
        let units = [
            e(80.0, 70.0, 90.0),
            e(80.0, 70.0, 90.0),
            e(60.0, 50.0, 70.0),
        ];
        let ranks = rank_ranges(&units);
        assert_eq!(ranks[0].point, 1);
        assert_eq!(ranks[1].point, 1);
        // 70 = 70: the intervals touch, so the third is not surely behind.
        assert_eq!(ranks[2].label(), "1–3");
        assert_eq!(ranks[0].label(), "1–3");
    }

    #[test]
    fn a_unit_without_an_interval_overlaps_everyone() {
        let units = [e(95.0, 93.0, 97.0), e(50.0, 0.0, 100.0), e(10.0, 8.0, 12.0)];
        let labels: Vec<String> = rank_ranges(&units).iter().map(RankRange::label).collect();
        assert_eq!(labels, ["1–2", "1–3", "2–3"]);
        assert!(rank_ranges(&[]).is_empty());
    }
}
