//! Quiet hours: the local times at which no SMS or Zalo message goes out (a phone buzzes;
//! an e-mail waits in the inbox, so e-mail has none).

use chrono::{FixedOffset, NaiveDateTime, NaiveTime};

/// A daily window `[start, end)` in the province's local time; it may wrap past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuietHours {
    start: NaiveTime,
    end: NaiveTime,
}

impl QuietHours {
    /// `HH:MM-HH:MM` (e.g. `21:00-07:00`); empty or `off`: no quiet hours.
    pub fn parse(text: &str) -> anyhow::Result<Option<Self>> {
        let text = text.trim();
        if text.is_empty() || text.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        let bad = || anyhow::anyhow!("phone_quiet_hours `{text}` must look like 21:00-07:00");
        let (start, end) = text.split_once('-').ok_or_else(bad)?;
        let time = |t: &str| NaiveTime::parse_from_str(t.trim(), "%H:%M").map_err(|_| bad());
        let (start, end) = (time(start)?, time(end)?);
        if start == end {
            return Err(bad());
        }
        Ok(Some(Self { start, end }))
    }

    /// Whether the naive-UTC instant `now` falls in the quiet window, local time `offset`.
    pub fn contains(&self, now: NaiveDateTime, offset: FixedOffset) -> bool {
        let local = (now + offset).time();
        if self.start < self.end {
            self.start <= local && local < self.end
        } else {
            local >= self.start || local < self.end
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M").unwrap()
    }

    #[test]
    fn the_default_window_wraps_midnight_in_local_time() {
        let quiet = QuietHours::parse("21:00-07:00").unwrap().unwrap();
        let vietnam = FixedOffset::east_opt(7 * 3600).unwrap();
        // 14:00 UTC is 21:00 in Vietnam: quiet; 23:59 UTC is 06:59: quiet; 00:00 UTC is 07:00.
        assert!(quiet.contains(utc("2026-12-05 14:00"), vietnam));
        assert!(quiet.contains(utc("2026-12-05 23:59"), vietnam));
        assert!(!quiet.contains(utc("2026-12-06 00:00"), vietnam));
        assert!(!quiet.contains(utc("2026-12-05 13:59"), vietnam));
    }

    #[test]
    fn a_daytime_window_and_bad_settings() {
        let quiet = QuietHours::parse("12:00-13:30").unwrap().unwrap();
        let utc0 = FixedOffset::east_opt(0).unwrap();
        assert!(quiet.contains(utc("2026-12-05 12:45"), utc0));
        assert!(!quiet.contains(utc("2026-12-05 13:30"), utc0));
        assert_eq!(QuietHours::parse("").unwrap(), None);
        assert_eq!(QuietHours::parse("off").unwrap(), None);
        for bad in ["21:00", "25:00-07:00", "07:00-07:00", "night"] {
            assert!(QuietHours::parse(bad).is_err(), "{bad}");
        }
    }
}
