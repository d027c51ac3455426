//! The province's calendar: local days and months of stored UTC times, working days. Reports,
//! rollups, samples and case deadlines all count in local time; they share these.

use chrono::{Datelike, FixedOffset, NaiveDate, NaiveDateTime, Weekday};

/// A day typed in a form as `YYYY-MM-DD`; otherwise an error of that form's `field`.
pub fn parse_day(field: &str, value: &str) -> crate::error::AppResult<NaiveDate> {
    NaiveDate::parse_from_str(value.trim(), "%Y-%m-%d").map_err(|_| {
        crate::error::AppError::field(
            field,
            crate::i18n::Msg::new(
                "Ngày phải có dạng NNNN-TT-NN.",
                "Dates look like YYYY-MM-DD.",
            ),
        )
    })
}

/// The local day of a UTC timestamp.
pub fn local_day(at: NaiveDateTime, utc_offset: FixedOffset) -> NaiveDate {
    (at + chrono::Duration::seconds(utc_offset.local_minus_utc().into())).date()
}

/// The first day of the month `day` is in.
pub fn month_of(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

/// `days` working days (Monday to Friday) after `from`. Public holidays are not known to the
/// service; a province that needs them counts them into the setting.
pub fn add_working_days(from: NaiveDate, days: i64) -> NaiveDate {
    let mut day = from;
    let mut left = days;
    while left > 0 {
        day = day.succ_opt().unwrap_or(day);
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    day
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_days_skip_weekends() {
        // Friday 2026-12-04 + 1 working day = Monday 2026-12-07.
        let friday = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        assert_eq!(
            add_working_days(friday, 1),
            NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
        );
        // 15 working days = three weeks.
        assert_eq!(
            add_working_days(friday, 15),
            NaiveDate::from_ymd_opt(2026, 12, 25).unwrap()
        );
    }
}
