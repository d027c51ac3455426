//! Numbers, percentages and dates as people read them: Vietnamese pages write "80,6 %",
//! "12.345" and 01/01/2026; English pages "80.6%", "12,345" and 2026-01-01. One place for
//! every page and every export meant for people; machine formats (JSON, CSV for machines) never
//! pass through here. A value that rounds to zero is written without a sign: never "-0,0".

use chrono::{FixedOffset, NaiveDate, NaiveDateTime};

use super::Lang;

/// The separators of a language: (decimal, thousands).
fn separators(lang: Lang) -> (char, char) {
    match lang {
        Lang::Vi => (',', '.'),
        Lang::En => ('.', ','),
    }
}

/// Groups the digits of a non-negative integer text by thousands.
fn group_thousands(digits: &str, sep: char) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(sep);
        }
        out.push(c);
    }
    out
}

/// `value` with `decimals` digits after the separator, thousands grouped; "—" for NaN or
/// infinity. A value that rounds to zero has no minus sign.
pub fn decimal(lang: Lang, value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return "—".into();
    }
    let (dec_sep, thousands) = separators(lang);
    let text = format!("{:.*}", decimals, value.abs());
    let negative = value < 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0');
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    out.push_str(&group_thousands(int_part, thousands));
    if let Some(f) = frac_part {
        out.push(dec_sep);
        out.push_str(f);
    }
    out
}

/// A whole number with thousands grouped: "12.345" / "12,345".
pub fn integer(lang: Lang, value: i64) -> String {
    let digits = value.unsigned_abs().to_string();
    let grouped = group_thousands(&digits, separators(lang).1);
    if value < 0 {
        format!("-{grouped}")
    } else {
        grouped
    }
}

/// A count (u64) with thousands grouped.
pub fn count(lang: Lang, value: u64) -> String {
    group_thousands(&value.to_string(), separators(lang).1)
}

/// A percentage already on the 0–100 scale, one decimal: "80,6 %" / "80.6%"; "—" for none.
pub fn percent(lang: Lang, value: Option<f64>) -> String {
    match value {
        Some(v) if v.is_finite() => match lang {
            Lang::Vi => format!("{} %", decimal(lang, v, 1)),
            Lang::En => format!("{}%", decimal(lang, v, 1)),
        },
        _ => "—".into(),
    }
}

/// A share on the 0–1 scale as a percentage: 0.806 → "80,6 %".
pub fn share(lang: Lang, value: Option<f64>) -> String {
    percent(lang, value.map(|v| v * 100.0))
}

/// A difference in percentage points with its sign: "+1,2" / "-3,4"; "0,0" with no sign.
pub fn signed(lang: Lang, value: f64, decimals: usize) -> String {
    let text = decimal(lang, value, decimals);
    if value > 0.0 && text.chars().any(|c| c.is_ascii_digit() && c != '0') {
        format!("+{text}")
    } else {
        text
    }
}

/// An interval "78,1–83,0"; empty when either end is missing.
pub fn interval(lang: Lang, low: Option<f64>, high: Option<f64>) -> String {
    match (low, high) {
        (Some(lo), Some(hi)) => format!("{}–{}", decimal(lang, lo, 1), decimal(lang, hi, 1)),
        _ => String::new(),
    }
}

/// A calendar day: 01/01/2026 in Vietnamese, 2026-01-01 in English.
pub fn date(lang: Lang, day: NaiveDate) -> String {
    match lang {
        Lang::Vi => day.format("%d/%m/%Y").to_string(),
        Lang::En => day.format("%Y-%m-%d").to_string(),
    }
}

/// A month given as `YYYY-MM` (a report label): "03/2026" in Vietnamese; other text unchanged.
pub fn month_label(lang: Lang, label: &str) -> String {
    let parsed = label
        .split_once('-')
        .filter(|(y, m)| y.len() == 4 && m.len() == 2)
        .and_then(|(y, m)| Some((y.parse::<i32>().ok()?, m.parse::<u32>().ok()?)));
    match (lang, parsed) {
        (Lang::Vi, Some((y, m))) if (1..=12).contains(&m) => format!("{m:02}/{y}"),
        _ => label.to_string(),
    }
}

/// A stored UTC time as the province's local time, labelled: "05/12/2026 14:30 (giờ địa
/// phương, UTC+07:00)".
pub fn local_time(lang: Lang, utc: NaiveDateTime, offset: FixedOffset) -> String {
    let local = utc + offset;
    let day = date(lang, local.date());
    format!(
        "{day} {} ({} UTC{})",
        local.format("%H:%M"),
        lang.pick("giờ địa phương,", "local time,"),
        offset
    )
}

/// The label of local times for a column heading: "Giờ địa phương (UTC+07:00)".
pub fn local_time_heading(lang: Lang, offset: FixedOffset) -> String {
    format!(
        "{} (UTC{offset})",
        lang.pick("Giờ địa phương", "Local time")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vietnamese_percentages_and_numbers() {
        assert_eq!(percent(Lang::Vi, Some(80.63)), "80,6 %");
        assert_eq!(percent(Lang::En, Some(80.63)), "80.6%");
        assert_eq!(percent(Lang::Vi, None), "—");
        assert_eq!(share(Lang::Vi, Some(0.125)), "12,5 %");
        assert_eq!(integer(Lang::Vi, 1_234_567), "1.234.567");
        assert_eq!(integer(Lang::En, -1234), "-1,234");
        assert_eq!(count(Lang::Vi, 999), "999");
        assert_eq!(decimal(Lang::Vi, 12345.678, 2), "12.345,68");
        assert_eq!(interval(Lang::Vi, Some(78.06), Some(83.0)), "78,1–83,0");
        assert_eq!(interval(Lang::Vi, None, Some(83.0)), "");
    }

    #[test]
    fn never_minus_zero() {
        assert_eq!(decimal(Lang::Vi, -0.0, 1), "0,0");
        assert_eq!(decimal(Lang::Vi, -0.04, 1), "0,0");
        assert_eq!(decimal(Lang::En, -0.06, 1), "-0.1");
        assert_eq!(signed(Lang::Vi, -0.01, 1), "0,0");
        assert_eq!(signed(Lang::Vi, 0.04, 1), "0,0");
        assert_eq!(signed(Lang::Vi, 1.25, 1), "+1,2");
        assert_eq!(signed(Lang::En, -3.44, 1), "-3.4");
        assert_eq!(percent(Lang::Vi, Some(-0.0)), "0,0 %");
        assert_eq!(decimal(Lang::Vi, f64::NAN, 1), "—");
    }

    #[test]
    fn dates_and_local_times() {
        let day = NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        assert_eq!(date(Lang::Vi, day), "01/01/2026");
        assert_eq!(date(Lang::En, day), "2026-01-01");
        assert_eq!(month_label(Lang::Vi, "2026-03"), "03/2026");
        assert_eq!(month_label(Lang::En, "2026-03"), "2026-03");
        assert_eq!(month_label(Lang::Vi, "2026-Q3"), "2026-Q3");
        let offset = FixedOffset::east_opt(7 * 3600).expect("offset");
        let utc = day.and_hms_opt(20, 30, 0).expect("time");
        assert_eq!(
            local_time(Lang::Vi, utc, offset),
            "02/01/2026 03:30 (giờ địa phương, UTC+07:00)"
        );
        assert_eq!(
            local_time_heading(Lang::En, offset),
            "Local time (UTC+07:00)"
        );
    }
}
