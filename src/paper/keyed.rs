//! A paper form found by its serial, as the typist sees it: the one lookup that both keying
//! ([`super::entry`]) and correcting ([`super::correction`]) start from. Unknown, forged or
//! other collectors' serials are refused alike, so a serial reveals nothing.

use std::sync::Arc;

use diesel::prelude::*;

use super::serial;
use crate::accounts::{Role, User};
use crate::db::DbConn;
use crate::db::schema::{
    paper_batches, paper_entries, paper_forms, sample_members, samples, transactions, units,
};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::{Form, FormRegistry};
use crate::i18n::Msg;

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
    pub status: String,
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
    user: &User,
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
    let allowed = match user.role() {
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
    let passes: Vec<(i64, String)> = db_run!(conn: {
        paper_entries::table.filter(paper_entries::member_id.eq(&member_id)).order(paper_entries::pass.asc()).select((paper_entries::pass, paper_entries::typist_id)).load(conn)
    })?;
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
        status,
        double_entry,
        form,
        passes,
    })
}
