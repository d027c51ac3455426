//! Cases opened by bad overall ratings: the agency sees what was answered and commented (never
//! the token, dossier or contact), records what it did, and closes the case before its deadline
//! in working days; overdue cases show in the province overview.
//!
//! The one exception to "never the contact": a citizen who ticks "contact me" on the survey and
//! whose answer opens a case. Their phone or e-mail is kept on the case only (never on the
//! response), shown only on the case's own page, and erased when the case is closed. When the
//! answer opens no case, the contact is dropped before anything is written.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use serde_json::json;

use super::signals::{NewCase, Screening};
use crate::audit;
use crate::db::DbConn;
use crate::db::schema::{case_actions, rating_cases};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::survey::response::NewResponse;

pub use super::contact::{CaseContact, Contact, ContactProblem};

/// Gives the case a submission opens the contact of a citizen who asked to be contacted.
/// Without a case the contact is dropped here: nothing of it is written anywhere.
pub fn attach_contact(screening: &mut Screening, contact: Option<Contact>, at: NaiveDateTime) {
    if let (Some(case), Some(contact)) = (screening.case.as_mut(), contact) {
        case.contact = Some(CaseContact {
            contact,
            consented_at: at,
        });
    }
}

/// Opens a case in the response's transaction.
pub fn open(
    conn: &mut DbConn,
    response: &NewResponse,
    form_code: &str,
    case: &NewCase,
) -> QueryResult<()> {
    db_run!(conn: {
        diesel::insert_into(rating_cases::table)
            .values((
                rating_cases::id.eq(uuid::Uuid::now_v7().to_string()),
                rating_cases::unit_id.eq(&response.unit_id),
                rating_cases::form_code.eq(form_code),
                rating_cases::form_version.eq(response.form_version),
                rating_cases::overall_level.eq(case.overall_level),
                rating_cases::answers.eq(&case.answers),
                rating_cases::comment.eq(&case.comment),
                // Only the day: the exact second would help match a case to a dossier.
                rating_cases::opened_at.eq(response.submitted_at.date().and_hms_opt(0, 0, 0).unwrap_or(response.submitted_at)),
                rating_cases::due_on.eq(case.due_on),
                rating_cases::status.eq("open"),
                rating_cases::contact.eq(case.contact.as_ref().map(|c| c.contact.as_str())),
                rating_cases::contact_consented_at.eq(case.contact.as_ref().map(|c| c.consented_at)),
            ))
            .execute(conn)
    })?;
    Ok(())
}

/// A case as agencies and administrators see it.
#[derive(Debug, Clone, Queryable)]
pub struct Case {
    pub id: String,
    pub unit_id: String,
    pub form_code: String,
    pub form_version: i64,
    pub overall_level: i64,
    pub answers: String,
    pub comment: Option<String>,
    pub opened_at: NaiveDateTime,
    pub due_on: NaiveDate,
    pub status: String,
    pub closed_at: Option<NaiveDateTime>,
    /// Only when the citizen asked to be contacted; erased when the case is closed.
    pub contact: Option<String>,
    pub contact_consented_at: Option<NaiveDateTime>,
}

impl Case {
    pub fn overdue(&self, today: NaiveDate) -> bool {
        self.status == "open" && self.due_on < today
    }
}

#[derive(Debug, Clone, Queryable)]
pub struct Action {
    pub at: NaiveDateTime,
    pub actor_name: String,
    pub note: String,
    pub closes: bool,
}

/// Cases of the units in `unit_ids` (open first, by deadline).
pub fn list(conn: &mut DbConn, unit_ids: &[String], open_only: bool) -> QueryResult<Vec<Case>> {
    db_run!(conn: {
        let mut q = rating_cases::table.filter(rating_cases::unit_id.eq_any(unit_ids)).into_boxed();
        if open_only {
            q = q.filter(rating_cases::status.eq("open"));
        }
        q.order((rating_cases::status.desc(), rating_cases::due_on.asc(), rating_cases::id.asc()))
            .limit(500)
            .load(conn)
    })
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Case>> {
    db_run!(conn: { rating_cases::table.find(id).first(conn).optional() })
}

pub fn actions(conn: &mut DbConn, case_id: &str) -> QueryResult<Vec<Action>> {
    db_run!(conn: {
        case_actions::table
            .filter(case_actions::case_id.eq(case_id))
            .order((case_actions::at.asc(), case_actions::id.asc()))
            .select((case_actions::at, case_actions::actor_name, case_actions::note, case_actions::closes))
            .load(conn)
    })
}

/// Open cases past their deadline, over the whole province.
pub fn overdue_count(conn: &mut DbConn, today: NaiveDate) -> QueryResult<i64> {
    db_run!(conn: {
        rating_cases::table
            .filter(rating_cases::status.eq("open"))
            .filter(rating_cases::due_on.lt(today))
            .count()
            .get_result(conn)
    })
}

/// Records what the agency did; `close` ends the case (a note saying why is required) and
/// erases the citizen's contact, which was kept only to follow the case up. Audited.
pub fn record_action(
    conn: &mut DbConn,
    actor: &audit::Actor,
    case: &Case,
    note: &str,
    close: bool,
) -> AppResult<()> {
    let note = note.trim();
    if note.is_empty() || note.chars().count() > 2000 {
        return Err(AppError::field(
            "note",
            Msg::new(
                "Hãy ghi rõ việc đã làm (tối đa 2000 ký tự).",
                "Describe what was done (at most 2000 characters).",
            ),
        ));
    }
    if case.status != "open" {
        return Err(AppError::Conflict(Msg::new(
            "Trường hợp này đã đóng.",
            "This case is already closed.",
        )));
    }
    let now = crate::db::now();
    conn.write_transaction(|conn| -> AppResult<()> {
        db_run!(conn: {
            diesel::insert_into(case_actions::table)
                .values((
                    case_actions::id.eq(uuid::Uuid::now_v7().to_string()),
                    case_actions::case_id.eq(&case.id),
                    case_actions::at.eq(now),
                    case_actions::actor_name.eq(&actor.name),
                    case_actions::note.eq(note),
                    case_actions::closes.eq(close),
                ))
                .execute(conn)?;
            if close {
                diesel::update(rating_cases::table.find(&case.id).filter(rating_cases::status.eq("open")))
                    .set((
                        rating_cases::status.eq("closed"),
                        rating_cases::closed_at.eq(Some(now)),
                        rating_cases::contact.eq(None::<String>),
                    ))
                    .execute(conn)?;
            }
            QueryResult::Ok(())
        })?;
        audit::record(
            conn,
            actor,
            if close { "case.close" } else { "case.action" },
            "rating_case",
            &case.id,
            Some(json!({"status": case.status})),
            Some(json!({"note": note, "status": if close { "closed" } else { "open" }})),
        )?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contacts_are_checked_and_normalised() {
        let ok = |t: &str| Contact::parse(t).map(|c| c.as_str().to_string());
        assert_eq!(ok("0912 345 678").as_deref(), Ok("0912345678"));
        assert_eq!(ok(" +84 (912) 345-678 ").as_deref(), Ok("+84912345678"));
        assert_eq!(
            ok("Ten.Nguoi@Example.VN").as_deref(),
            Ok("Ten.Nguoi@example.vn")
        );
        assert_eq!(ok("   "), Err(ContactProblem::Missing));
        for bad in [
            "abc",
            "12345",
            "0912 345 678 9999 99",
            "09x2345678",
            "ten@",
            "@example.vn",
            "ten@example",
            "ten@@example.vn",
            "ten nguoi@example.vn",
            "ten@exa mple.vn",
            "ten@example.v1",
            "<script>@x.vn",
            "++84912345678",
        ] {
            assert_eq!(Contact::parse(bad), Err(ContactProblem::Invalid), "{bad}");
        }
        assert_eq!(
            Contact::parse(&format!("{}@example.vn", "a".repeat(250))),
            Err(ContactProblem::Invalid)
        );
        assert_eq!(
            format!("{:?}", Contact::parse("0912345678").unwrap()),
            "Contact(<redacted>)"
        );
    }
}
