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
use crate::accounts::Role;
use crate::accounts::actor::Actor;
use crate::audit;
use crate::db::DbConn;
use crate::db::schema::{case_actions, rating_cases};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::{Form, FormRegistry};
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
                rating_cases::status.eq(CaseStatus::Open.as_str()),
                rating_cases::contact.eq(case.contact.as_ref().map(|c| c.contact.as_str())),
                rating_cases::contact_consented_at.eq(case.contact.as_ref().map(|c| c.consented_at)),
            ))
            .execute(conn)
    })?;
    Ok(())
}

/// Where a case stands: open until the agency records an action that closes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseStatus {
    Open,
    Closed,
}

impl CaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }
}

impl TryFrom<String> for CaseStatus {
    type Error = String;

    /// The column's CHECK allows only these two; anything else is a corrupt row.
    fn try_from(stored: String) -> Result<Self, String> {
        match stored.as_str() {
            "open" => Ok(Self::Open),
            "closed" => Ok(Self::Closed),
            _ => Err(format!("unknown case status {stored:?}")),
        }
    }
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
    #[diesel(deserialize_as = String)]
    pub status: CaseStatus,
    pub closed_at: Option<NaiveDateTime>,
    /// Only when the citizen asked to be contacted; erased when the case is closed.
    pub contact: Option<String>,
    pub contact_consented_at: Option<NaiveDateTime>,
}

impl Case {
    pub fn overdue(&self, today: NaiveDate) -> bool {
        self.status == CaseStatus::Open && self.due_on < today
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
            q = q.filter(rating_cases::status.eq(CaseStatus::Open.as_str()));
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
            .filter(rating_cases::status.eq(CaseStatus::Open.as_str()))
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
    if case.status != CaseStatus::Open {
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
                diesel::update(rating_cases::table.find(&case.id).filter(rating_cases::status.eq(CaseStatus::Open.as_str())))
                    .set((
                        rating_cases::status.eq(CaseStatus::Closed.as_str()),
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
            Some(json!({"status": case.status.as_str()})),
            Some(json!({"note": note, "status": if close { CaseStatus::Closed } else { CaseStatus::Open }.as_str()})),
        )?;
        Ok(())
    })
}

// ---------------------------------------------------------------- use cases of the case pages

/// The units whose cases an actor may see: every unit for administrators, for an agency its
/// unit, the units below it and the units merged into those.
fn scope(conn: &mut DbConn, actor: &Actor) -> AppResult<Vec<String>> {
    match (actor.role, &actor.unit_id) {
        (Role::Admin, _) => Ok(crate::units::list(conn)?
            .into_iter()
            .map(|u| u.id)
            .collect()),
        (Role::Agency, Some(unit)) => Ok(crate::report::source::scope(conn, unit)?),
        _ => Ok(Vec::new()),
    }
}

/// The cases an actor may see, open first by deadline, with the code and Vietnamese name of
/// every unit (by id) to label them.
#[derive(Debug)]
pub struct CaseList {
    pub cases: Vec<Case>,
    pub unit_names: std::collections::HashMap<String, (String, String)>,
}

/// `GET /cases`.
pub fn list_for(conn: &mut DbConn, actor: &Actor) -> AppResult<CaseList> {
    let scope = scope(conn, actor)?;
    let unit_names = crate::units::list(conn)?
        .into_iter()
        .map(|u| (u.id, (u.code, u.name_vi)))
        .collect();
    Ok(CaseList {
        cases: list(conn, &scope, false)?,
        unit_names,
    })
}

/// A case with what was done about it and the form its answers follow.
#[derive(Debug)]
pub struct CaseFile {
    pub case: Case,
    pub actions: Vec<Action>,
    pub form: Option<std::sync::Arc<Form>>,
}

fn no_such_case() -> AppError {
    AppError::NotFound(Msg::new("Không có trường hợp này.", "No such case."))
}

/// A case the actor may see; any other is "not found".
fn visible(conn: &mut DbConn, actor: &Actor, id: &str) -> AppResult<Case> {
    let case = find(conn, id)?.ok_or_else(no_such_case)?;
    if !actor.can_read_unit(conn, &case.unit_id)? {
        return Err(no_such_case());
    }
    Ok(case)
}

/// `GET /cases/{id}`.
pub fn open_file(
    conn: &mut DbConn,
    forms: &FormRegistry,
    actor: &Actor,
    id: &str,
) -> AppResult<CaseFile> {
    let case = visible(conn, actor, id)?;
    let actions = actions(conn, &case.id)?;
    let form = forms.find(conn, &case.form_code, case.form_version)?;
    Ok(CaseFile {
        case,
        actions,
        form,
    })
}

/// What an agency records on a case.
#[derive(Debug, Clone)]
pub struct FollowUp {
    pub note: String,
    /// Ends the case (and erases the citizen's contact).
    pub close: bool,
}

/// `POST /cases/{id}`: records an action on a case the actor may see. Audited.
pub fn follow_up(conn: &mut DbConn, actor: &Actor, id: &str, input: &FollowUp) -> AppResult<()> {
    let case = visible(conn, actor, id)?;
    record_action(conn, &actor.audit(), &case, &input.note, input.close)
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
