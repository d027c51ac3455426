//! The catalogue of administrative procedures ("thủ tục hành chính") that transactions follow.

use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::db::schema::procedures;
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::i18n::Lang;
use crate::i18n::Msg;

#[derive(Debug, Clone, Queryable, Selectable, Serialize, PartialEq)]
#[diesel(table_name = procedures)]
pub struct Procedure {
    pub id: String,
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub sector: Option<String>,
    pub active: bool,
    pub created_at: chrono::NaiveDateTime,
}

impl Procedure {
    pub fn name(&self, lang: Lang) -> &str {
        match lang {
            Lang::Vi => &self.name_vi,
            Lang::En => &self.name_en,
        }
    }
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<Procedure>> {
    db_run!(conn: { procedures::table.order(procedures::code.asc()).select(Procedure::as_select()).load(conn) })
}

pub fn find_by_code(conn: &mut DbConn, code: &str) -> QueryResult<Option<Procedure>> {
    db_run!(conn: {
        procedures::table.filter(procedures::code.eq(code)).select(Procedure::as_select()).first(conn).optional()
    })
}

/// Creates the procedure or refreshes its names and sector (idempotent loading).
pub fn upsert(
    conn: &mut DbConn,
    code: &str,
    name_vi: &str,
    name_en: &str,
    sector: Option<&str>,
) -> QueryResult<()> {
    let id = uuid::Uuid::new_v4().to_string();
    db_run!(conn: {
        diesel::insert_into(procedures::table)
            .values((
                procedures::id.eq(&id),
                procedures::code.eq(code),
                procedures::name_vi.eq(name_vi),
                procedures::name_en.eq(name_en),
                procedures::sector.eq(sector),
                procedures::active.eq(true),
                procedures::created_at.eq(crate::db::now()),
            ))
            .on_conflict(procedures::code)
            .do_update()
            .set((
                procedures::name_vi.eq(name_vi),
                procedures::name_en.eq(name_en),
                procedures::sector.eq(sector),
            ))
            .execute(conn)
            .map(|_| ())
    })
}

/// One page of procedures whose code, name or sector contains `query`, and whether more follow.
pub fn search(
    conn: &mut DbConn,
    query: &str,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<Procedure>, bool)> {
    let query = query.trim();
    let mut rows: Vec<Procedure> = db_run!(conn: {
        let mut q = procedures::table.select(Procedure::as_select()).into_boxed();
        if !query.is_empty() {
            let pattern = format!("%{query}%");
            q = q.filter(
                procedures::code.like(pattern.clone())
                    .or(procedures::name_vi.like(pattern.clone()))
                    .or(procedures::name_en.like(pattern.clone()))
                    .or(procedures::sector.like(pattern)),
            );
        }
        q.order(procedures::code.asc()).offset(page.max(0) * per_page).limit(per_page + 1).load(conn)
    })?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Procedure>> {
    db_run!(conn: { procedures::table.find(id).select(Procedure::as_select()).first(conn).optional() })
}

/// What the admin console edits.
#[derive(Debug, Clone)]
pub struct ProcedureInput {
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub sector: Option<String>,
    pub active: bool,
}

fn check(input: &ProcedureInput) -> AppResult<()> {
    let code_ok = (2..=64).contains(&input.code.len())
        && input
            .code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if !code_ok {
        return Err(AppError::field(
            "code",
            Msg::new(
                "Mã thủ tục dài 2–64 ký tự: chữ, số, - _ .",
                "The procedure code has 2–64 characters: letters, digits, - _ .",
            ),
        ));
    }
    if input.name_vi.trim().is_empty() || input.name_en.trim().is_empty() {
        return Err(AppError::field(
            "name_vi",
            Msg::new(
                "Vui lòng nhập tên thủ tục.",
                "Please enter the procedure's names.",
            ),
        ));
    }
    Ok(())
}

/// Creates (`id` = None) or changes a procedure, with an audit event.
pub fn save(
    conn: &mut DbConn,
    actor: &Actor,
    id: Option<&str>,
    input: &ProcedureInput,
) -> AppResult<Procedure> {
    check(input)?;
    conn.write_transaction(|conn| {
        let old = match id {
            Some(id) => Some(find(conn, id)?.ok_or_else(|| {
                AppError::NotFound(Msg::new("Không có thủ tục này.", "No such procedure."))
            })?),
            None => None,
        };
        if let Some(existing) = find_by_code(conn, &input.code)?
            && old.as_ref().is_none_or(|o| o.id != existing.id)
        {
            return Err(AppError::field(
                "code",
                Msg::new(
                    "Mã thủ tục đã tồn tại.",
                    "This procedure code already exists.",
                ),
            ));
        }
        let id = old
            .as_ref()
            .map(|o| o.id.clone())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        db_run!(conn: {
            if old.is_some() {
                diesel::update(procedures::table.find(&id))
                    .set((
                        procedures::code.eq(&input.code),
                        procedures::name_vi.eq(input.name_vi.trim()),
                        procedures::name_en.eq(input.name_en.trim()),
                        procedures::sector.eq(&input.sector),
                        procedures::active.eq(input.active),
                    ))
                    .execute(conn)
            } else {
                diesel::insert_into(procedures::table)
                    .values((
                        procedures::id.eq(&id),
                        procedures::code.eq(&input.code),
                        procedures::name_vi.eq(input.name_vi.trim()),
                        procedures::name_en.eq(input.name_en.trim()),
                        procedures::sector.eq(&input.sector),
                        procedures::active.eq(input.active),
                        procedures::created_at.eq(crate::db::now()),
                    ))
                    .execute(conn)
            }
        })?;
        let new = find(conn, &id)?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("procedure vanished")))?;
        let action = if old.is_some() {
            "procedure.update"
        } else {
            "procedure.create"
        };
        let view = |p: &Procedure| serde_json::to_value(p).unwrap_or_default();
        audit::record(
            conn,
            actor,
            action,
            "procedure",
            &id,
            old.as_ref().map(view),
            Some(view(&new)),
        )?;
        Ok(new)
    })
}
