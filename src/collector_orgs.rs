//! Collector organisations: the independent bodies (the provincial post office) that hand out
//! and type in paper forms.

use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::db::schema::collector_orgs;
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::i18n::{Lang, Msg};

#[derive(Debug, Clone, Queryable, Selectable, Serialize, PartialEq)]
#[diesel(table_name = collector_orgs)]
pub struct CollectorOrg {
    pub id: String,
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub created_at: chrono::NaiveDateTime,
}

impl CollectorOrg {
    pub fn name(&self, lang: Lang) -> &str {
        match lang {
            Lang::Vi => &self.name_vi,
            Lang::En => &self.name_en,
        }
    }
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<CollectorOrg>> {
    db_run!(conn: { collector_orgs::table.order(collector_orgs::code.asc()).select(CollectorOrg::as_select()).load(conn) })
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<CollectorOrg>> {
    db_run!(conn: { collector_orgs::table.find(id).select(CollectorOrg::as_select()).first(conn).optional() })
}

pub fn find_by_code(conn: &mut DbConn, code: &str) -> QueryResult<Option<CollectorOrg>> {
    db_run!(conn: {
        collector_orgs::table.filter(collector_orgs::code.eq(code)).select(CollectorOrg::as_select()).first(conn).optional()
    })
}

pub fn create(
    conn: &mut DbConn,
    actor: &Actor,
    code: &str,
    name_vi: &str,
    name_en: &str,
) -> AppResult<CollectorOrg> {
    let code = code.trim();
    let code_ok = (2..=32).contains(&code.len())
        && code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !code_ok {
        return Err(AppError::field(
            "code",
            Msg::new(
                "Mã dài 2–32 ký tự: chữ in hoa, số, - và _.",
                "The code has 2–32 characters: capitals, digits, - and _.",
            ),
        ));
    }
    if name_vi.trim().is_empty() || name_en.trim().is_empty() {
        return Err(AppError::field(
            "name_vi",
            Msg::new("Vui lòng nhập tên.", "Please enter the names."),
        ));
    }
    if find_by_code(conn, code)?.is_some() {
        return Err(AppError::field(
            "code",
            Msg::new("Mã này đã tồn tại.", "This code already exists."),
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    conn.write_transaction(|conn| {
        db_run!(conn: {
            diesel::insert_into(collector_orgs::table)
                .values((
                    collector_orgs::id.eq(&id),
                    collector_orgs::code.eq(code),
                    collector_orgs::name_vi.eq(name_vi.trim()),
                    collector_orgs::name_en.eq(name_en.trim()),
                    collector_orgs::created_at.eq(crate::db::now()),
                ))
                .execute(conn)
        })?;
        let org = find(conn, &id)?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("organisation vanished")))?;
        audit::record(
            conn,
            actor,
            "collector_org.create",
            "collector_org",
            &id,
            None,
            Some(serde_json::to_value(&org).unwrap_or_default()),
        )?;
        Ok(org)
    })
}
