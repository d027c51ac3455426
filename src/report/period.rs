//! Report periods: a year, a quarter, a month, or any range of days, written the way people
//! type them (`2026`, `2026-Q3`, `2026-07`, `2026-01-15..2026-03-31`).

use chrono::{Datelike, NaiveDate};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    pub from: NaiveDate,
    /// Last day, inclusive.
    pub to: NaiveDate,
}

fn ymd(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

fn month_end(y: i32, m: u32) -> Option<NaiveDate> {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    ymd(ny, nm, 1)?.pred_opt()
}

impl Period {
    pub fn parse(text: &str) -> Option<Self> {
        let t = text.trim();
        if let Some((a, b)) = t.split_once("..") {
            let from = NaiveDate::parse_from_str(a.trim(), "%Y-%m-%d").ok()?;
            let to = NaiveDate::parse_from_str(b.trim(), "%Y-%m-%d").ok()?;
            return (from <= to && (to - from).num_days() <= 3660).then_some(Self { from, to });
        }
        if let Some((y, q)) = t.split_once("-Q").or_else(|| t.split_once("-q")) {
            let (y, q): (i32, u32) = (y.parse().ok()?, q.parse().ok()?);
            if !(1..=4).contains(&q) {
                return None;
            }
            return Some(Self {
                from: ymd(y, q * 3 - 2, 1)?,
                to: month_end(y, q * 3)?,
            });
        }
        if let Some((y, m)) = t.split_once('-') {
            let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
            return Some(Self {
                from: ymd(y, m, 1)?,
                to: month_end(y, m)?,
            });
        }
        let y: i32 = t.parse().ok()?;
        (1900..=9999)
            .contains(&y)
            .then(|| {
                Some(Self {
                    from: ymd(y, 1, 1)?,
                    to: ymd(y, 12, 31)?,
                })
            })
            .flatten()
    }

    /// Whether the period is made of whole months (reports then read monthly rollups).
    pub fn whole_months(&self) -> bool {
        self.from.day() == 1 && self.to.succ_opt().is_some_and(|d| d.day() == 1)
    }

    pub fn days(&self) -> i64 {
        (self.to - self.from).num_days() + 1
    }

    /// The period of the same shape just before: previous year, quarter, month, or as many days.
    pub fn previous(&self) -> Self {
        if self.whole_months() {
            let months = (self.to.year() - self.from.year()) * 12 + self.to.month() as i32
                - self.from.month() as i32
                + 1;
            let from = self
                .from
                .checked_sub_months(chrono::Months::new(months as u32))
                .unwrap_or(self.from);
            let to = self.from.pred_opt().unwrap_or(self.from);
            return Self { from, to };
        }
        let len = chrono::Duration::days(self.days());
        Self {
            from: self.from - len,
            to: self.to - len,
        }
    }

    /// Canonical text, the inverse of [`parse`](Self::parse).
    pub fn label(&self) -> String {
        if self.whole_months() {
            let months = (self.to.year() - self.from.year()) * 12 + self.to.month() as i32
                - self.from.month() as i32
                + 1;
            match months {
                12 if self.from.month() == 1 => return format!("{}", self.from.year()),
                3 if (self.from.month() - 1).is_multiple_of(3) => {
                    return format!("{}-Q{}", self.from.year(), (self.from.month() - 1) / 3 + 1);
                }
                1 => return format!("{}-{:02}", self.from.year(), self.from.month()),
                _ => {}
            }
        }
        format!("{}..{}", self.from, self.to)
    }

    /// The period cut into the whole months inside it (read from monthly rollups) and the
    /// leftover days at either edge (at most two partial months, counted from their responses).
    pub fn split_months(&self) -> (Option<Period>, Vec<Period>) {
        if self.whole_months() {
            return (Some(*self), Vec::new());
        }
        let first_whole = if self.from.day() == 1 {
            Some(self.from)
        } else {
            self.from
                .with_day(1)
                .and_then(|m| m.checked_add_months(chrono::Months::new(1)))
        };
        let after_last_whole = self
            .to
            .succ_opt()
            .and_then(|next| next.with_day(1))
            .filter(|_| self.to.succ_opt().is_some_and(|d| d.day() == 1))
            .or_else(|| self.to.with_day(1));
        match (first_whole, after_last_whole) {
            (Some(start), Some(end)) if start < end => {
                let whole = Period {
                    from: start,
                    to: end.pred_opt().unwrap_or(end),
                };
                let mut edges = Vec::new();
                if self.from < start {
                    edges.push(Period {
                        from: self.from,
                        to: start.pred_opt().unwrap_or(start),
                    });
                }
                if end <= self.to {
                    edges.push(Period {
                        from: end,
                        to: self.to,
                    });
                }
                (Some(whole), edges)
            }
            _ => (None, vec![*self]),
        }
    }

    /// The UTC instants `[from, until)` of the period's local days.
    pub fn utc_bounds(
        &self,
        utc_offset: chrono::FixedOffset,
    ) -> (chrono::NaiveDateTime, chrono::NaiveDateTime) {
        let shift = chrono::Duration::seconds(utc_offset.local_minus_utc().into());
        let from = self.from.and_time(chrono::NaiveTime::MIN) - shift;
        let until = self
            .to
            .succ_opt()
            .unwrap_or(self.to)
            .and_time(chrono::NaiveTime::MIN)
            - shift;
        (from, until)
    }

    /// First days of the months the period touches.
    pub fn months(&self) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        let mut m = self.from.with_day(1).unwrap_or(self.from);
        while m <= self.to {
            out.push(m);
            m = m
                .checked_add_months(chrono::Months::new(1))
                .unwrap_or(NaiveDate::MAX);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_years_quarters_months_and_ranges() {
        let q = Period::parse("2026-Q3").unwrap();
        assert_eq!(
            (q.from.to_string(), q.to.to_string()),
            ("2026-07-01".into(), "2026-09-30".into())
        );
        assert_eq!(
            Period::parse("2024-02").unwrap().to.to_string(),
            "2024-02-29"
        );
        assert_eq!(Period::parse("2026").unwrap().days(), 365);
        let r = Period::parse("2026-01-15..2026-03-31").unwrap();
        assert!(!r.whole_months());
        assert!(
            Period::parse("2026-13").is_none()
                && Period::parse("2026-Q5").is_none()
                && Period::parse("abc").is_none()
        );
        for text in ["2026", "2026-Q3", "2026-07", "2026-01-15..2026-03-31"] {
            assert_eq!(Period::parse(text).unwrap().label(), text);
        }
    }

    #[test]
    fn previous_period_has_the_same_shape() {
        assert_eq!(Period::parse("2026").unwrap().previous().label(), "2025");
        assert_eq!(
            Period::parse("2026-Q1").unwrap().previous().label(),
            "2025-Q4"
        );
        assert_eq!(
            Period::parse("2026-03").unwrap().previous().label(),
            "2026-02"
        );
        assert_eq!(
            Period::parse("2026-01-11..2026-01-20")
                .unwrap()
                .previous()
                .label(),
            "2026-01-01..2026-01-10"
        );
        assert_eq!(Period::parse("2026-Q2").unwrap().months().len(), 3);
    }

    fn labels(p: &str) -> (Option<String>, Vec<String>) {
        let (whole, edges) = Period::parse(p).unwrap().split_months();
        (
            whole.map(|w| w.label()),
            edges.iter().map(Period::label).collect(),
        )
    }

    #[test]
    fn ranges_split_into_whole_months_and_edges() {
        assert_eq!(labels("2026-Q3"), (Some("2026-Q3".into()), vec![]));
        assert_eq!(
            labels("2026-01-15..2026-04-10"),
            (
                Some("2026-02-01..2026-03-31".into()),
                vec![
                    "2026-01-15..2026-01-31".into(),
                    "2026-04-01..2026-04-10".into()
                ]
            )
        );
        assert_eq!(
            labels("2026-01-01..2026-02-10"),
            (
                Some("2026-01".into()),
                vec!["2026-02-01..2026-02-10".into()]
            )
        );
        assert_eq!(
            labels("2026-01-20..2026-02-28"),
            (
                Some("2026-02".into()),
                vec!["2026-01-20..2026-01-31".into()]
            )
        );
        assert_eq!(
            labels("2026-01-05..2026-01-20"),
            (None, vec!["2026-01-05..2026-01-20".into()])
        );
        assert_eq!(
            labels("2026-01-05..2026-02-20"),
            (None, vec!["2026-01-05..2026-02-20".into()])
        );
        // Every day is covered exactly once.
        let p = Period::parse("2025-11-17..2026-03-03").unwrap();
        let (whole, edges) = p.split_months();
        let days: i64 = whole.iter().chain(&edges).map(Period::days).sum();
        assert_eq!(days, p.days());
    }

    #[test]
    fn utc_bounds_follow_the_local_day() {
        let p = Period::parse("2026-03").unwrap();
        let (from, until) = p.utc_bounds(chrono::FixedOffset::east_opt(7 * 3600).unwrap());
        assert_eq!(from.to_string(), "2026-02-28 17:00:00");
        assert_eq!(until.to_string(), "2026-03-31 17:00:00");
    }
}
