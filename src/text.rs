//! Text at the edge. Every string a person or a counter system sends is checked once, where it
//! enters (the `web::input` middleware for forms, query strings and paths; the counter API for
//! JSON; the paper import for CSV), so both databases see the same text and give the same
//! answer: PostgreSQL refuses a NUL byte (a 500 if it got that far) while SQLite stores it.

use std::borrow::Cow;

use crate::error::{AppError, AppResult};
use crate::i18n::Msg;

/// Where a text may span lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    /// Names, codes, search boxes, ids: no control character at all.
    Single,
    /// Free text (comments, suggestions, notes): tab, line feed and carriage return allowed.
    Multi,
}

/// The first control character `value` may not hold: NUL and every other C0 or C1 control and
/// DEL, except tab, line feed and carriage return in multi-line text.
pub fn forbidden_char(value: &str, lines: Lines) -> Option<char> {
    value
        .chars()
        .find(|&c| c.is_control() && !(lines == Lines::Multi && matches!(c, '\t' | '\n' | '\r')))
}

/// Refuses (422, naming `field`) a text holding a control character it may not hold.
pub fn check(field: &str, value: &str, lines: Lines) -> AppResult<()> {
    match forbidden_char(value, lines) {
        None => Ok(()),
        Some(c) => Err(control_error(field, c)),
    }
}

/// The 422 for a control character in `field`.
pub fn control_error(field: &str, c: char) -> AppError {
    let code = format!("U+{:04X}", c as u32);
    AppError::field(
        field,
        Msg::new(
            format!("Trường `{field}` chứa ký tự điều khiển không được phép ({code})."),
            format!(
                "The field `{field}` contains a control character that is not allowed ({code})."
            ),
        ),
    )
}

/// Bytes as text, or 400 naming `field`: invalid UTF-8 is refused, never replaced by U+FFFD.
pub fn utf8<'a>(field: &str, bytes: &'a [u8]) -> AppResult<&'a str> {
    std::str::from_utf8(bytes).map_err(|_| {
        AppError::bad_request(
            field,
            Msg::new(
                format!("Trường `{field}` không phải văn bản UTF-8 hợp lệ."),
                format!("The field `{field}` is not valid UTF-8 text."),
            ),
        )
    })
}

/// Refuses a text longer than `max` characters (422, naming `field`).
pub fn check_length(field: &str, value: &str, max: usize) -> AppResult<()> {
    if value.chars().count() > max {
        return Err(AppError::field(
            field,
            Msg::new(
                format!("Trường `{field}` dài quá {max} ký tự."),
                format!("The field `{field}` is longer than {max} characters."),
            ),
        ));
    }
    Ok(())
}

/// The first characters that make a spreadsheet read a cell as a formula (OWASP "CSV
/// injection"), line feed included since some programs trim to it.
const FORMULA_PREFIXES: [char; 7] = ['=', '+', '-', '@', '\t', '\r', '\n'];

/// A text cell for a CSV or XLSX export: text that would start a formula gets a leading single
/// quote, so a spreadsheet shows it as typed and never evaluates it. Only for text (names,
/// codes, answers); numbers are written as numbers and never pass through here.
pub fn neutralise_cell(text: &str) -> Cow<'_, str> {
    if text.starts_with(FORMULA_PREFIXES) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Whether an exported text cell would still be read as a formula (for tests and checks).
pub fn starts_like_formula(cell: &str) -> bool {
    cell.starts_with(FORMULA_PREFIXES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_refused_except_line_breaks_in_free_text() {
        assert_eq!(forbidden_char("Sở Tư pháp", Lines::Single), None);
        assert_eq!(forbidden_char("a\0b", Lines::Multi), Some('\0'));
        assert_eq!(forbidden_char("a\u{1b}b", Lines::Multi), Some('\u{1b}'));
        assert_eq!(forbidden_char("a\u{7f}", Lines::Multi), Some('\u{7f}'));
        assert_eq!(forbidden_char("a\u{85}", Lines::Multi), Some('\u{85}'));
        assert_eq!(forbidden_char("dòng 1\r\ndòng\t2", Lines::Multi), None);
        assert_eq!(forbidden_char("a\nb", Lines::Single), Some('\n'));
        let e = check("comment", "x\0", Lines::Multi).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid field `comment`: The field `comment` contains a control character that is not allowed (U+0000)."
        );
    }

    #[test]
    fn invalid_utf8_is_refused_not_replaced() {
        assert_eq!(utf8("q", "chào".as_bytes()).unwrap(), "chào");
        assert!(utf8("q", b"\xff\xfe").is_err());
    }

    #[test]
    fn formula_cells_are_neutralised_and_others_kept() {
        for bad in [
            "=HYPERLINK(\"http://x\",\"y\")",
            "+1+1",
            "-2+3",
            "@SUM(1)",
            "=cmd|' /C calc'!A0",
            "\t=1",
            "\r=1",
        ] {
            let cell = neutralise_cell(bad);
            assert_eq!(cell, format!("'{bad}"));
            assert!(!starts_like_formula(&cell));
        }
        for good in ["Sở Tư pháp", "", "2026-01-05", "a=b", "'quoted"] {
            assert_eq!(neutralise_cell(good), good);
        }
    }
}
