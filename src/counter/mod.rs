//! The counter (one-stop desk): which transaction a desk registered last, so the screen facing
//! the citizen can show its QR, and the devices paired to a desk.

pub mod attach;
pub mod books;
pub mod devices;
pub mod kiosk;
pub mod screen;
pub mod staff;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::desk_registrations;
use crate::db_run;
use crate::i18n::Msg;

/// A desk's code within its unit (`Q01`, `quay-3`): letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskCode(String);

impl DeskCode {
    pub fn parse(text: &str) -> Result<Self, Msg> {
        let text = text.trim();
        let valid = (1..=32).contains(&text.len())
            && text
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if valid {
            Ok(Self(text.to_string()))
        } else {
            Err(Msg::new(
                "Mã quầy chỉ gồm chữ không dấu, số, - và _ (tối đa 32 ký tự).",
                "A desk code has only letters, digits, - and _ (at most 32 characters).",
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How long a desk's registrations are kept: only the latest is ever shown, so older ones are
/// dropped as new ones come (the table stays small whatever the number of dossiers).
const KEEP_DESK_ROWS: chrono::Duration = chrono::Duration::days(1);

/// Notes that `desk` of `unit_id` registered `transaction_id`: call inside the registration's
/// transaction. Nothing personal is kept, only which survey the desk's screen shows.
pub fn record_registration(
    conn: &mut DbConn,
    transaction_id: &str,
    unit_id: &str,
    desk: &DeskCode,
    now: NaiveDateTime,
) -> QueryResult<()> {
    db_run!(conn: {
        diesel::insert_into(desk_registrations::table)
            .values((
                desk_registrations::transaction_id.eq(transaction_id),
                desk_registrations::unit_id.eq(unit_id),
                desk_registrations::desk.eq(desk.as_str()),
                desk_registrations::registered_at.eq(now),
            ))
            .execute(conn)?;
        diesel::delete(
            desk_registrations::table
                .filter(desk_registrations::unit_id.eq(unit_id))
                .filter(desk_registrations::desk.eq(desk.as_str()))
                .filter(desk_registrations::registered_at.lt(now - KEEP_DESK_ROWS)),
        )
        .execute(conn)
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desk_codes() {
        assert_eq!(DeskCode::parse(" Q-01 ").unwrap().as_str(), "Q-01");
        for bad in ["", "quầy 1", "a/b", &"x".repeat(33)] {
            assert!(DeskCode::parse(bad).is_err(), "{bad}");
        }
    }
}
