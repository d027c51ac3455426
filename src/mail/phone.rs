//! Citizens' phone numbers for SMS and Zalo invitations: parsed once at the edge, kept in
//! `phone_contacts` only while a message for the dossier is due, and erased exactly as e-mail
//! addresses are (see [`super::outbox::forget_address_if_done`]).

use diesel::prelude::*;

use super::outbox::NewOutboxRow;
use crate::db::DbConn;
use crate::db::schema::{outbox, phone_contacts};
use crate::db_run;
use crate::i18n::Msg;

/// A mobile number in international form (`+84912345678`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Accepts Vietnamese numbers as people write them (`0912 345 678`, `84912345678`,
    /// `+84 912 345 678`) and other international numbers with a leading `+`.
    pub fn parse(text: &str) -> Result<Self, Msg> {
        let bad = || {
            Msg::new(
                "Số điện thoại không hợp lệ (ví dụ 0912345678 hoặc +84912345678).",
                "The phone number is not valid (e.g. 0912345678 or +84912345678).",
            )
        };
        let compact: String = text
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '.' | '-' | '(' | ')'))
            .collect();
        let (plus, digits) = match compact.strip_prefix('+') {
            Some(rest) => (true, rest),
            None => (false, compact.as_str()),
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        let international = if let Some(national) = digits.strip_prefix('0').filter(|_| !plus) {
            format!("84{national}")
        } else if plus || digits.starts_with("84") {
            digits.to_string()
        } else {
            return Err(bad());
        };
        if let Some(subscriber) = international.strip_prefix("84") {
            // Vietnamese mobile numbers: nine digits after the country code.
            if subscriber.len() != 9 || subscriber.starts_with('0') {
                return Err(bad());
            }
        } else if !(8..=15).contains(&international.len()) {
            return Err(bad());
        }
        Ok(Self(format!("+{international}")))
    }

    /// `+84912345678`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `84912345678`: the form Zalo and most gateways want.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// `0912345678` for Vietnamese numbers, else the international digits.
    pub fn national(&self) -> String {
        match self.digits().strip_prefix("84") {
            Some(rest) => format!("0{rest}"),
            None => self.digits().to_string(),
        }
    }

    /// A number stored by [`Self::parse`] earlier.
    pub fn from_stored(stored: String) -> Self {
        Self(stored)
    }
}

/// Which phone service carries a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhoneChannel {
    Sms,
    Zalo,
}

impl PhoneChannel {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Zalo => "zalo",
        }
    }

    pub fn from_stored(text: &str) -> Option<Self> {
        match text {
            "sms" => Some(Self::Sms),
            "zalo" => Some(Self::Zalo),
            _ => None,
        }
    }
}

/// The phone channel new dossiers are invited on: Zalo when it is configured (citizens read it
/// most), else the SMS gateway, else none (the number is then not kept at all).
pub fn configured_channel(settings: &crate::config::Settings) -> Option<PhoneChannel> {
    if settings.zalo_template_id.is_some() {
        Some(PhoneChannel::Zalo)
    } else if settings.sms_url.is_some() {
        Some(PhoneChannel::Sms)
    } else {
        None
    }
}

#[derive(Insertable)]
#[diesel(table_name = outbox)]
struct NewPhoneRow {
    #[diesel(embed)]
    row: NewOutboxRow,
    channel: &'static str,
}

/// Queues the phone messages of a new dossier (the same invitation and reminder as e-mail,
/// `rows` from [`super::outbox::rows_for`]) and keeps the number until they are done; call
/// inside the registration's transaction.
pub fn queue(
    conn: &mut DbConn,
    transaction_id: &str,
    phone: &PhoneNumber,
    channel: PhoneChannel,
    rows: &[NewOutboxRow],
) -> QueryResult<()> {
    let rows: Vec<NewPhoneRow> = rows
        .iter()
        .map(|row| NewPhoneRow {
            row: row.clone(),
            channel: channel.as_str(),
        })
        .collect();
    db_run!(conn: {
        diesel::insert_into(phone_contacts::table)
            .values((phone_contacts::transaction_id.eq(transaction_id), phone_contacts::phone.eq(phone.as_str())))
            .execute(conn)?;
        diesel::insert_into(outbox::table).values(&rows).execute(conn)
    })?;
    Ok(())
}

pub use super::outbox::forget_numbers_if_done;

/// Whether a number is still kept for the transaction (tests, administrators' checks).
pub fn number_of(conn: &mut DbConn, transaction_id: &str) -> QueryResult<Option<PhoneNumber>> {
    let stored: Option<String> = db_run!(conn: {
        phone_contacts::table.find(transaction_id).select(phone_contacts::phone).first(conn).optional()
    })?;
    Ok(stored.map(PhoneNumber::from_stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vietnamese_numbers_in_every_usual_form() {
        for text in [
            "0912345678",
            "0912 345 678",
            "84912345678",
            "+84 912 345 678",
            "(+84) 912.345.678",
        ] {
            let phone = PhoneNumber::parse(text).unwrap();
            assert_eq!(phone.as_str(), "+84912345678", "{text}");
            assert_eq!(phone.digits(), "84912345678");
            assert_eq!(phone.national(), "0912345678");
        }
        assert_eq!(
            PhoneNumber::parse("+4915112345678").unwrap().as_str(),
            "+4915112345678"
        );
    }

    #[test]
    fn bad_numbers_are_refused() {
        for text in [
            "",
            "abc",
            "091234567",
            "09123456789",
            "912345678",
            "+84012345678",
            "+12",
            "0912-34x",
        ] {
            assert!(PhoneNumber::parse(text).is_err(), "{text}");
        }
    }
}
