//! A paper form found by its serial, as the typist sees it: the one lookup that keying
//! ([`super::entry`]), adjudicating ([`super::disputes`]) and correcting ([`super::correction`])
//! start from. Unknown, forged or other collectors' serials are refused alike, so a serial
//! reveals nothing. Also the one rule of who keys which pass ([`PaperForm::next_pass`]).

use std::sync::Arc;

use diesel::prelude::*;

use super::serial;
use super::status::FormStatus;
use crate::accounts::{Actor, Role};
use crate::db::DbConn;
use crate::db::schema::{
    paper_batches, paper_entries, paper_forms, sample_members, samples, transactions, units,
};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::answers::AnswerProblems;
use crate::forms::{Form, FormRegistry};
use crate::i18n::Msg;

/// A form sent back unsaved, with what to correct beside the questions and what was typed kept.
#[derive(Debug)]
pub struct Refusal {
    pub paper: PaperForm,
    /// The posted fields, to show again.
    pub given: Vec<(String, String)>,
    pub problems: AnswerProblems,
    /// Problems of the form as a whole (a blank form), by field (`_form`).
    pub issues: Vec<(String, Msg)>,
}

/// A form found by its serial, as the typist sees it.
#[derive(Debug, Clone)]
pub struct PaperForm {
    pub member_id: String,
    pub serial: String,
    pub unit_id: String,
    pub unit_name: String,
    pub procedure_id: String,
    pub batch_id: String,
    pub batch_code: String,
    pub collector_org_id: String,
    pub collector_name: String,
    pub status: FormStatus,
    pub double_entry: bool,
    pub form: Arc<Form>,
    /// (pass, typist id) of the entries so far.
    pub passes: Vec<(i64, String)>,
}

fn unknown_serial() -> AppError {
    AppError::NotFound(Msg::new(
        "Số phiếu không có trong danh sách phiếu đã phát. Kiểm tra lại số phiếu.",
        "This serial is not among the issued forms. Check the serial.",
    ))
}

/// Finds an issued form by serial, for a user allowed to key it.
pub fn find(
    conn: &mut DbConn,
    forms: &FormRegistry,
    user: &Actor,
    raw_serial: &str,
) -> AppResult<PaperForm> {
    let serial = serial::normalize(raw_serial).ok_or_else(unknown_serial)?;
    type Row = (
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        String,
        bool,
        String,
        i64,
    );
    let row: Option<Row> = db_run!(conn: {
        paper_forms::table
            .inner_join(sample_members::table.on(sample_members::id.eq(paper_forms::member_id)))
            .inner_join(paper_batches::table.on(paper_batches::id.eq(paper_forms::batch_id)))
            .inner_join(units::table.on(units::id.eq(sample_members::unit_id)))
            .inner_join(transactions::table.on(transactions::id.eq(sample_members::transaction_id)))
            .inner_join(samples::table.on(samples::id.eq(sample_members::sample_id)))
            .filter(sample_members::serial.eq(&serial))
            .select((
                sample_members::id, units::id, units::name_vi, transactions::procedure_id, paper_batches::id, paper_batches::code,
                paper_batches::collector_org_id, paper_batches::collector_name, paper_forms::double_entry, paper_forms::status, samples::form_version,
            ))
            .first(conn)
            .optional()
    })?;
    let (
        member_id,
        unit_id,
        unit_name,
        procedure_id,
        batch_id,
        batch_code,
        org_id,
        collector_name,
        double_entry,
        status,
        version,
    ) = row.ok_or_else(unknown_serial)?;
    let allowed = match user.role {
        Role::Admin => true,
        Role::Collector => user.collector_org_id.as_deref() == Some(org_id.as_str()),
        Role::Agency => false,
    };
    if !allowed {
        return Err(unknown_serial());
    }
    let form = forms
        .find(conn, "sipas", version)?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("paper form version missing")))?;
    let passes = passes_of(conn, &member_id)?;
    Ok(PaperForm {
        member_id,
        serial,
        unit_id,
        unit_name,
        procedure_id,
        batch_id,
        batch_code,
        collector_org_id: org_id,
        collector_name,
        status: FormStatus::from_stored(&status)?,
        double_entry,
        form,
        passes,
    })
}

fn passes_of(conn: &mut DbConn, member_id: &str) -> QueryResult<Vec<(i64, String)>> {
    db_run!(conn: {
        paper_entries::table.filter(paper_entries::member_id.eq(member_id)).order(paper_entries::pass.asc()).select((paper_entries::pass, paper_entries::typist_id)).load(conn)
    })
}

/// Which typing of a form is being keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// The first typing (the only one when the form is keyed once).
    First,
    /// The second, independent typing of a double-entered form, by someone else.
    Second,
}

impl Pass {
    /// As stored in `paper_entries.pass` (3 is the adjudication).
    pub fn number(self) -> i64 {
        match self {
            Self::First => 1,
            Self::Second => 2,
        }
    }
}

impl PaperForm {
    /// Reads the form's status and typings again: inside the transaction that writes a typing,
    /// so that [`Self::next_pass`] decides on what is stored now, not on what the page saw.
    pub fn refresh(&mut self, conn: &mut DbConn) -> AppResult<()> {
        let status: String = db_run!(conn: {
            paper_forms::table.find(&self.member_id).select(paper_forms::status).first(conn)
        })?;
        self.status = FormStatus::from_stored(&status)?;
        self.passes = passes_of(conn, &self.member_id)?;
        Ok(())
    }

    /// The pass `typist_id` would key next, or why they may not key the form: a form is keyed
    /// once, or twice by two different people when it is double-entered; a disputed or verified
    /// form takes no more typing. The one rule for opening the entry page and for saving.
    pub fn next_pass(&self, typist_id: &str) -> AppResult<Pass> {
        let typed_by_them = self.passes.iter().any(|(_, t)| t == typist_id);
        let keyed_in_full = || {
            AppError::Conflict(Msg::new(
                "Phiếu này đã được nhập đủ.",
                "This form has been keyed in full.",
            ))
        };
        if matches!(self.status, FormStatus::Disputed | FormStatus::Verified) {
            return Err(keyed_in_full());
        }
        match (self.passes.len(), self.double_entry) {
            (0, _) => Ok(Pass::First),
            (1, true) if typed_by_them => Err(AppError::Conflict(Msg::new(
                "Ông/Bà đã nhập phiếu này; lần nhập thứ hai phải do người khác thực hiện.",
                "You have already keyed this form; a different person must key it the second time.",
            ))),
            (1, true) => Ok(Pass::Second),
            _ => Err(keyed_in_full()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper(status: FormStatus, double_entry: bool, passes: &[&str]) -> PaperForm {
        let form = crate::forms::embedded::forms()
            .expect("embedded forms parse")
            .into_iter()
            .find(|f| f.code == "sipas")
            .expect("the embedded SIPAS form");
        PaperForm {
            member_id: "m".into(),
            serial: "ABCD-EFGH-23".into(),
            unit_id: "u".into(),
            unit_name: "Unit".into(),
            procedure_id: "p".into(),
            batch_id: "b".into(),
            batch_code: "B-1".into(),
            collector_org_id: "o".into(),
            collector_name: "Collector".into(),
            status,
            double_entry,
            form: Arc::new(form),
            passes: passes
                .iter()
                .enumerate()
                .map(|(i, t)| (i as i64 + 1, t.to_string()))
                .collect(),
        }
    }

    #[test]
    fn a_form_is_keyed_once_or_twice_by_two_people() {
        let fresh = paper(FormStatus::Returned, true, &[]);
        assert_eq!(fresh.next_pass("a").unwrap(), Pass::First);
        let once = paper(FormStatus::Keyed, true, &["a"]);
        assert_eq!(once.next_pass("b").unwrap(), Pass::Second);
        assert!(matches!(once.next_pass("a"), Err(AppError::Conflict(_))));
        let single = paper(FormStatus::Verified, false, &["a"]);
        assert!(matches!(single.next_pass("b"), Err(AppError::Conflict(_))));
        let twice = paper(FormStatus::Verified, true, &["a", "b"]);
        assert!(twice.next_pass("c").is_err());
    }

    #[test]
    fn disputed_or_verified_forms_take_no_typing_even_without_entries() {
        // A verified form with no typing left (e.g. its entries removed by hand) is not keyed
        // again as if new: that would store a second response.
        assert!(
            paper(FormStatus::Verified, false, &[])
                .next_pass("a")
                .is_err()
        );
        assert!(
            paper(FormStatus::Disputed, true, &[])
                .next_pass("a")
                .is_err()
        );
    }
}
