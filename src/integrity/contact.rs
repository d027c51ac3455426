//! How a citizen who asks to be contacted about their answer can be reached: a checked phone
//! number or e-mail address, never printed in logs.

use chrono::NaiveDateTime;

use crate::i18n::Msg;

/// A phone number or e-mail address a citizen gave to be contacted about their answer: checked
/// and normalised. Its `Debug` output is redacted so that it never reaches a log.
#[derive(Clone, PartialEq, Eq)]
pub struct Contact(String);

impl std::fmt::Debug for Contact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Contact(<redacted>)")
    }
}

/// Why a contact given with "contact me" ticked is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactProblem {
    Missing,
    Invalid,
}

impl ContactProblem {
    pub fn message(self) -> Msg {
        match self {
            Self::Missing => Msg::new(
                "Ông/Bà đã chọn đồng ý để cơ quan liên hệ lại: vui lòng nhập số điện thoại hoặc địa chỉ thư điện tử (hoặc bỏ chọn).",
                "You chose to be contacted: please enter a phone number or e-mail address (or untick the box).",
            ),
            Self::Invalid => Msg::new(
                "Số điện thoại hoặc địa chỉ thư điện tử không hợp lệ. Ví dụ: 0912 345 678 hoặc ten@example.vn.",
                "This is not a valid phone number or e-mail address. For example: 0912 345 678 or name@example.vn.",
            ),
        }
    }
}

/// Longest e-mail address (RFC 5321 path limit).
const MAX_EMAIL: usize = 254;

impl Contact {
    /// A phone number (9 to 15 digits; spaces, dots, dashes, brackets and a leading `+`
    /// allowed, stored as digits) or an e-mail address (stored with its domain in lower case).
    pub fn parse(text: &str) -> Result<Self, ContactProblem> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ContactProblem::Missing);
        }
        if text.contains('@') {
            return email(text).map(Self).ok_or(ContactProblem::Invalid);
        }
        phone(text).map(Self).ok_or(ContactProblem::Invalid)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn phone(text: &str) -> Option<String> {
    let (plus, rest) = match text.strip_prefix('+') {
        Some(rest) => ("+", rest),
        None => ("", text),
    };
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')'))
    {
        return None;
    }
    let digits: String = rest.chars().filter(char::is_ascii_digit).collect();
    (9..=15)
        .contains(&digits.len())
        .then(|| format!("{plus}{digits}"))
}

fn email(text: &str) -> Option<String> {
    if text.len() > MAX_EMAIL {
        return None;
    }
    let (local, domain) = text.split_once('@')?;
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .chars()
            .all(|c| c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.chars().count() >= 2 && tld.chars().all(char::is_alphabetic));
    (local_ok && domain_ok).then(|| format!("{local}@{}", domain.to_lowercase()))
}

/// The citizen's contact and when they agreed to be contacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseContact {
    pub contact: Contact,
    pub consented_at: NaiveDateTime,
}

/// The survey form's "contact me" checkbox.
pub const CONTACT_OK: &str = "contact_ok";
/// The survey form's phone or e-mail field.
pub const CONTACT: &str = "contact";

/// The citizen's "contact me" choice from a survey post: `None` unless the box is ticked (the
/// field is then ignored, even if filled in); ticked with an empty or invalid contact is an
/// error to show next to the field.
pub fn contact_choice(pairs: &[(String, String)]) -> Result<Option<Contact>, ContactProblem> {
    let value = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if value(CONTACT_OK).is_none_or(|v| v.is_empty()) {
        return Ok(None);
    }
    Contact::parse(value(CONTACT).unwrap_or_default()).map(Some)
}
