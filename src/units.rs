//! The tree of units that serve people: province → agencies and communes, any depth.
//!
//! Units are never deleted: a merged or dissolved unit gets `valid_to` (and `merged_into_id`), so
//! periods before the change still report under the unit that existed then.

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;

use crate::db::DbConn;
use crate::db::schema::units;
use crate::db_run;
use crate::i18n::Lang;

#[derive(Debug, Clone, Queryable, Selectable, Serialize, PartialEq)]
#[diesel(table_name = units)]
pub struct Unit {
    pub id: String,
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub kind: String,
    pub parent_id: Option<String>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub merged_into_id: Option<String>,
    pub counter_form: Option<String>,
    pub created_at: chrono::NaiveDateTime,
}

/// Kinds a unit may be; levels are data, not code, so this list only labels them.
pub const UNIT_KINDS: &[&str] = &["province", "department", "centre", "commune", "other"];

impl Unit {
    pub fn name(&self, lang: Lang) -> &str {
        match lang {
            Lang::Vi => &self.name_vi,
            Lang::En => &self.name_en,
        }
    }

    /// Whether the unit still exists on `day` (merged units stop at their `valid_to`).
    pub fn is_valid_on(&self, day: NaiveDate) -> bool {
        self.valid_from <= day && self.valid_to.is_none_or(|end| day <= end)
    }
}

/// What is needed to create a unit.
#[derive(Debug, Clone)]
pub struct NewUnit<'a> {
    pub code: &'a str,
    pub name_vi: &'a str,
    pub name_en: &'a str,
    pub kind: &'a str,
    pub parent_code: Option<&'a str>,
    pub valid_from: NaiveDate,
    pub valid_to: Option<NaiveDate>,
    pub merged_into_code: Option<&'a str>,
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<Unit>> {
    db_run!(conn: { units::table.order(units::code.asc()).select(Unit::as_select()).load(conn) })
}

pub fn find_by_code(conn: &mut DbConn, code: &str) -> QueryResult<Option<Unit>> {
    db_run!(conn: {
        units::table.filter(units::code.eq(code)).select(Unit::as_select()).first(conn).optional()
    })
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<Unit>> {
    db_run!(conn: { units::table.find(id).select(Unit::as_select()).first(conn).optional() })
}

/// True when `unit_id` is `ancestor_id` or lies below it. Walks up the parents (trees are
/// shallow), refusing cycles.
pub fn is_within(conn: &mut DbConn, ancestor_id: &str, unit_id: &str) -> QueryResult<bool> {
    let mut current = Some(unit_id.to_string());
    for _ in 0..64 {
        let Some(id) = current else { return Ok(false) };
        if id == ancestor_id {
            return Ok(true);
        }
        current = db_run!(conn: {
            units::table.find(&id).select(units::parent_id).first::<Option<String>>(conn).optional()
        })?
        .flatten();
    }
    Ok(false)
}

/// Creates the unit, or updates names, parent and dates of the unit with the same code, so that
/// loading the same data twice changes nothing.
pub fn upsert(conn: &mut DbConn, new: &NewUnit<'_>) -> anyhow::Result<Unit> {
    let parent_id = match new.parent_code {
        Some(code) => Some(
            find_by_code(conn, code)?
                .ok_or_else(|| anyhow::anyhow!("parent unit `{code}` does not exist"))?
                .id,
        ),
        None => None,
    };
    let merged_into_id = match new.merged_into_code {
        Some(code) => Some(
            find_by_code(conn, code)?
                .ok_or_else(|| anyhow::anyhow!("unit `{code}` (merged into) does not exist"))?
                .id,
        ),
        None => None,
    };
    if !UNIT_KINDS.contains(&new.kind) {
        anyhow::bail!(
            "unit kind `{}` is not one of {}",
            new.kind,
            UNIT_KINDS.join(", ")
        );
    }
    let existing = find_by_code(conn, new.code)?;
    let id = existing
        .as_ref()
        .map(|u| u.id.clone())
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    db_run!(conn: {
        if existing.is_some() {
            diesel::update(units::table.find(&id))
                .set((
                    units::name_vi.eq(new.name_vi),
                    units::name_en.eq(new.name_en),
                    units::kind.eq(new.kind),
                    units::parent_id.eq(&parent_id),
                    units::valid_from.eq(new.valid_from),
                    units::valid_to.eq(new.valid_to),
                    units::merged_into_id.eq(&merged_into_id),
                ))
                .execute(conn)?;
        } else {
            diesel::insert_into(units::table)
                .values((
                    units::id.eq(&id),
                    units::code.eq(new.code),
                    units::name_vi.eq(new.name_vi),
                    units::name_en.eq(new.name_en),
                    units::kind.eq(new.kind),
                    units::parent_id.eq(&parent_id),
                    units::valid_from.eq(new.valid_from),
                    units::valid_to.eq(new.valid_to),
                    units::merged_into_id.eq(&merged_into_id),
                    units::created_at.eq(crate::db::now()),
                ))
                .execute(conn)?;
        }
        QueryResult::Ok(())
    })?;
    find(conn, &id)?.ok_or_else(|| anyhow::anyhow!("unit vanished after saving"))
}

/// Sets which form a unit hands out at the counter (`None`: the service default).
pub fn set_counter_form(
    conn: &mut DbConn,
    unit_id: &str,
    form_code: Option<&str>,
) -> QueryResult<usize> {
    db_run!(conn: {
        diesel::update(units::table.find(unit_id)).set(units::counter_form.eq(form_code)).execute(conn)
    })
}
