//! The tree of units that serve people: province → agencies and communes, any depth.
//!
//! Units are never deleted: a merged or dissolved unit gets `valid_to` (and `merged_into_id`), so
//! periods before the change still report under the unit that existed then.

pub mod manage;

use chrono::NaiveDate;
use diesel::prelude::*;
use serde::Serialize;

use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::db::schema::units;
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::i18n::{Lang, Msg};

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
    /// Whether citizens with an e-mail address get an invitation and a reminder.
    pub invitations_enabled: bool,
}

/// Kinds a unit may be; levels are data, not code, so this list only labels them.
pub const UNIT_KINDS: &[&str] = &["province", "department", "centre", "commune", "other"];

/// `(code, counter form)` of every unit: which form each unit issues at the counter.
pub fn counter_forms(conn: &mut DbConn) -> QueryResult<Vec<(String, Option<String>)>> {
    db_run!(conn: {
        units::table.select((units::code, units::counter_form)).load(conn)
    })
}

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

/// One page of units whose code or name contains `query`, and whether more follow.
pub fn search(
    conn: &mut DbConn,
    query: &str,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<Unit>, bool)> {
    let query = query.trim();
    let mut rows: Vec<Unit> = db_run!(conn: {
        let mut q = units::table.select(Unit::as_select()).into_boxed();
        if !query.is_empty() {
            let pattern = format!("%{query}%");
            q = q.filter(
                units::code.like(pattern.clone())
                    .or(units::name_vi.like(pattern.clone()))
                    .or(units::name_en.like(pattern)),
            );
        }
        q.order(units::code.asc()).offset(page.max(0) * per_page).limit(per_page + 1).load(conn)
    })?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

/// The unit and every unit below it (including merged and closed ones, for history).
pub fn subtree(conn: &mut DbConn, root_id: &str) -> QueryResult<Vec<Unit>> {
    let all = list(conn)?;
    let mut out: Vec<Unit> = all.iter().filter(|u| u.id == root_id).cloned().collect();
    let mut frontier = vec![root_id.to_string()];
    while let Some(parent) = frontier.pop() {
        for unit in all
            .iter()
            .filter(|u| u.parent_id.as_deref() == Some(parent.as_str()))
        {
            if !out.iter().any(|o| o.id == unit.id) {
                frontier.push(unit.id.clone());
                out.push(unit.clone());
            }
        }
    }
    Ok(out)
}

fn not_found() -> AppError {
    AppError::NotFound(Msg::new("Không có đơn vị này.", "No such unit."))
}

fn audit_view(unit: &Unit) -> serde_json::Value {
    serde_json::to_value(unit).unwrap_or_default()
}

/// Runs an audited change of one unit: `change` edits it, the event records before and after.
fn change_unit(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    action: &str,
    change: impl FnOnce(&mut DbConn, &Unit) -> AppResult<()>,
) -> AppResult<Unit> {
    conn.write_transaction(|conn| {
        let old = find(conn, id)?.ok_or_else(not_found)?;
        change(conn, &old)?;
        let new = find(conn, id)?.ok_or_else(not_found)?;
        audit::record(
            conn,
            actor,
            action,
            "unit",
            id,
            Some(audit_view(&old)),
            Some(audit_view(&new)),
        )?;
        Ok(new)
    })
}

/// Creates a unit from the admin console.
pub fn create(conn: &mut DbConn, actor: &Actor, new: &NewUnit<'_>) -> AppResult<Unit> {
    let code_ok = (2..=32).contains(&new.code.len())
        && new
            .code
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !code_ok {
        return Err(AppError::field(
            "code",
            Msg::new(
                "Mã đơn vị dài 2–32 ký tự: chữ in hoa không dấu, số, - và _.",
                "The unit code has 2–32 characters: capitals, digits, - and _.",
            ),
        ));
    }
    if new.name_vi.trim().is_empty() || new.name_en.trim().is_empty() {
        return Err(AppError::field(
            "name_vi",
            Msg::new(
                "Vui lòng nhập tên đơn vị.",
                "Please enter the unit's names.",
            ),
        ));
    }
    if find_by_code(conn, new.code)?.is_some() {
        return Err(AppError::field(
            "code",
            Msg::new("Mã đơn vị đã tồn tại.", "This unit code already exists."),
        ));
    }
    if let Some(parent) = new.parent_code
        && find_by_code(conn, parent)?.is_none()
    {
        return Err(AppError::field(
            "parent",
            Msg::new("Không có đơn vị cấp trên này.", "No such parent unit."),
        ));
    }
    conn.write_transaction(|conn| {
        let unit = upsert(conn, new)?;
        audit::record(
            conn,
            actor,
            "unit.create",
            "unit",
            &unit.id,
            None,
            Some(audit_view(&unit)),
        )?;
        Ok(unit)
    })
}

pub fn rename(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    name_vi: &str,
    name_en: &str,
    kind: &str,
) -> AppResult<Unit> {
    if name_vi.trim().is_empty() || name_en.trim().is_empty() {
        return Err(AppError::field(
            "name_vi",
            Msg::new(
                "Vui lòng nhập tên đơn vị.",
                "Please enter the unit's names.",
            ),
        ));
    }
    if !UNIT_KINDS.contains(&kind) {
        return Err(AppError::field(
            "kind",
            Msg::new("Loại đơn vị không hợp lệ.", "Invalid unit kind."),
        ));
    }
    change_unit(conn, actor, id, "unit.rename", |conn, _| {
        db_run!(conn: {
            diesel::update(units::table.find(id))
                .set((units::name_vi.eq(name_vi.trim()), units::name_en.eq(name_en.trim()), units::kind.eq(kind)))
                .execute(conn)
        })?;
        Ok(())
    })
}

/// Moves a unit under another parent (never under itself or its own subtree).
pub fn move_to(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    new_parent_id: Option<&str>,
) -> AppResult<Unit> {
    if let Some(parent) = new_parent_id {
        find(conn, parent)?.ok_or_else(|| {
            AppError::field(
                "parent",
                Msg::new("Không có đơn vị cấp trên này.", "No such parent unit."),
            )
        })?;
        if is_within(conn, id, parent)? {
            return Err(AppError::field(
                "parent",
                Msg::new(
                    "Không thể chuyển đơn vị vào chính nó hoặc đơn vị cấp dưới của nó.",
                    "A unit cannot move under itself or its own subtree.",
                ),
            ));
        }
    }
    change_unit(conn, actor, id, "unit.move", |conn, _| {
        db_run!(conn: { diesel::update(units::table.find(id)).set(units::parent_id.eq(new_parent_id)).execute(conn) })?;
        Ok(())
    })
}

/// Merges a unit into `target_id` from `effective` on: the unit stops the day before and keeps
/// its history; reports roll it up into the target.
pub fn merge_into(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    target_id: &str,
    effective: NaiveDate,
) -> AppResult<Unit> {
    let target = find(conn, target_id)?.ok_or_else(|| {
        AppError::field(
            "target",
            Msg::new("Không có đơn vị tiếp nhận này.", "No such target unit."),
        )
    })?;
    if target.id == id || is_within(conn, id, &target.id)? {
        return Err(AppError::field(
            "target",
            Msg::new(
                "Không thể sáp nhập vào chính nó hoặc đơn vị cấp dưới.",
                "A unit cannot merge into itself or its subtree.",
            ),
        ));
    }
    if !target.is_valid_on(effective) {
        return Err(AppError::field(
            "target",
            Msg::new(
                "Đơn vị tiếp nhận không hoạt động vào ngày sáp nhập.",
                "The target unit is not active on the merge date.",
            ),
        ));
    }
    change_unit(conn, actor, id, "unit.merge", |conn, old| {
        let last_day = effective.pred_opt().unwrap_or(effective);
        if last_day < old.valid_from {
            return Err(AppError::field(
                "effective",
                Msg::new(
                    "Ngày sáp nhập trước ngày đơn vị bắt đầu hoạt động.",
                    "The merge date is before the unit started.",
                ),
            ));
        }
        db_run!(conn: {
            diesel::update(units::table.find(id))
                .set((units::valid_to.eq(Some(last_day)), units::merged_into_id.eq(Some(&target.id))))
                .execute(conn)
        })?;
        Ok(())
    })
}

/// Closes a unit after `last_day` (it keeps its history), or reopens it with `None`.
pub fn set_valid_to(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    last_day: Option<NaiveDate>,
) -> AppResult<Unit> {
    let action = if last_day.is_some() {
        "unit.deactivate"
    } else {
        "unit.reactivate"
    };
    change_unit(conn, actor, id, action, |conn, old| {
        if last_day.is_some_and(|d| d < old.valid_from) {
            return Err(AppError::field(
                "valid_to",
                Msg::new(
                    "Ngày kết thúc trước ngày bắt đầu.",
                    "The end date is before the start date.",
                ),
            ));
        }
        db_run!(conn: {
            diesel::update(units::table.find(id))
                .set((units::valid_to.eq(last_day), units::merged_into_id.eq(None::<String>)))
                .execute(conn)
        })?;
        Ok(())
    })
}

/// Turns e-mail invitations for the unit's dossiers on or off.
pub fn set_invitations(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    enabled: bool,
) -> AppResult<Unit> {
    change_unit(conn, actor, id, "unit.invitations", |conn, _| {
        db_run!(conn: {
            diesel::update(units::table.find(id)).set(units::invitations_enabled.eq(enabled)).execute(conn)
        })?;
        Ok(())
    })
}

/// Chooses the form a unit issues at the counter (`None`: the service default).
pub fn choose_counter_form(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    form_code: Option<&str>,
) -> AppResult<Unit> {
    change_unit(conn, actor, id, "unit.counter_form", |conn, _| {
        set_counter_form(conn, id, form_code)?;
        Ok(())
    })
}
