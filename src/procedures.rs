//! The catalogue of administrative procedures ("thủ tục hành chính") that transactions follow.

use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConn;
use crate::db::schema::procedures;
use crate::db_run;
use crate::i18n::Lang;

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
