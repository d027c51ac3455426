//! The administrators' use cases on units: create, rename, move, merge, close or reopen, the
//! form issued at the counter, e-mail invitations, and a unit's page. Each takes a validated
//! input (parsed from the form at the edge: names checked, codes upper-cased, dates read) and
//! the acting person, runs in one transaction with its audit record, and returns the unit.

use chrono::NaiveDate;

use super::{NewUnit, UNIT_KINDS, Unit};
use crate::accounts::actor::Actor;
use crate::api_keys::{self, ApiKey};
use crate::calendar::parse_day;
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::forms::FormRegistry;
use crate::i18n::Msg;
use crate::text::{self, Lines};

/// Longest unit name accepted: the longest official names are under 150 characters.
const MAX_NAME: usize = 200;

/// A unit's two names, each one line of a sensible length (they head reports and exports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitNames {
    pub vi: String,
    pub en: String,
}

impl UnitNames {
    pub fn parse(name_vi: &str, name_en: &str) -> AppResult<Self> {
        for (field, name) in [("name_vi", name_vi), ("name_en", name_en)] {
            text::check(field, name.trim(), Lines::Single)?;
            text::check_length(field, name.trim(), MAX_NAME)?;
            if name.trim().is_empty() {
                return Err(AppError::field(
                    field,
                    Msg::new(
                        "Vui lòng nhập tên đơn vị.",
                        "Please enter the unit's names.",
                    ),
                ));
            }
        }
        Ok(Self {
            vi: name_vi.trim().to_string(),
            en: name_en.trim().to_string(),
        })
    }
}

/// A unit code as typed (any case, spaces around): upper-cased, `None` when empty.
fn code_of(value: &str) -> Option<String> {
    let code = value.trim().to_ascii_uppercase();
    (!code.is_empty()).then_some(code)
}

fn parse_kind(kind: &str) -> AppResult<String> {
    if UNIT_KINDS.contains(&kind) {
        Ok(kind.to_string())
    } else {
        Err(AppError::field(
            "kind",
            Msg::new("Loại đơn vị không hợp lệ.", "Invalid unit kind."),
        ))
    }
}

/// A new unit as the form gives it, checked.
#[derive(Debug, Clone)]
pub struct NewUnitInput {
    pub code: String,
    pub names: UnitNames,
    pub kind: String,
    pub parent_code: Option<String>,
    pub valid_from: NaiveDate,
}

impl NewUnitInput {
    pub fn parse(
        code: &str,
        name_vi: &str,
        name_en: &str,
        kind: &str,
        parent: &str,
        valid_from: &str,
    ) -> AppResult<Self> {
        Ok(Self {
            names: UnitNames::parse(name_vi, name_en)?,
            valid_from: parse_day("valid_from", valid_from)?,
            code: code.trim().to_ascii_uppercase(),
            kind: parse_kind(kind)?,
            parent_code: code_of(parent),
        })
    }
}

/// New names and kind.
#[derive(Debug, Clone)]
pub struct Rename {
    pub names: UnitNames,
    pub kind: String,
}

impl Rename {
    pub fn parse(name_vi: &str, name_en: &str, kind: &str) -> AppResult<Self> {
        Ok(Self {
            names: UnitNames::parse(name_vi, name_en)?,
            kind: parse_kind(kind)?,
        })
    }
}

/// The new parent by code; `None` moves the unit to the top level.
#[derive(Debug, Clone)]
pub struct MoveTo {
    pub parent_code: Option<String>,
}

impl MoveTo {
    pub fn parse(parent: &str) -> Self {
        Self {
            parent_code: code_of(parent),
        }
    }
}

/// The unit that takes this one over, by code, and the first day it does.
#[derive(Debug, Clone)]
pub struct Merge {
    pub target_code: String,
    pub effective: NaiveDate,
}

impl Merge {
    pub fn parse(target: &str, effective: &str) -> AppResult<Self> {
        let effective = parse_day("effective", effective)?;
        let target_code = code_of(target).ok_or_else(no_unit_with_code("target"))?;
        Ok(Self {
            target_code,
            effective,
        })
    }
}

/// The last day of activity, or `None` to reopen.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub last_day: Option<NaiveDate>,
}

impl Validity {
    pub fn parse(valid_to: &str) -> AppResult<Self> {
        let last_day = match valid_to.trim() {
            "" => None,
            day => Some(parse_day("valid_to", day)?),
        };
        Ok(Self { last_day })
    }
}

/// A form the service knows, or `None` for the service default.
#[derive(Debug, Clone)]
pub struct CounterForm {
    pub code: Option<String>,
}

impl CounterForm {
    pub fn parse(form: &str, forms: &FormRegistry) -> AppResult<Self> {
        let code = form.trim();
        if code.is_empty() {
            return Ok(Self { code: None });
        }
        if forms.latest(code).is_none() {
            return Err(AppError::field(
                "form",
                Msg::new("Không có mẫu phiếu này.", "No such form."),
            ));
        }
        Ok(Self {
            code: Some(code.to_string()),
        })
    }
}

fn no_unit_with_code(field: &'static str) -> impl Fn() -> AppError {
    move || {
        AppError::field(
            field,
            Msg::new(
                "Không có đơn vị với mã này.",
                "There is no unit with this code.",
            ),
        )
    }
}

fn unit_by_code(conn: &mut DbConn, field: &'static str, code: &str) -> AppResult<Unit> {
    super::find_by_code(conn, code)?.ok_or_else(no_unit_with_code(field))
}

fn no_such_unit() -> AppError {
    AppError::NotFound(Msg::new("Không có đơn vị này.", "No such unit."))
}

/// Creates a unit.
pub fn create(conn: &mut DbConn, actor: &Actor, input: &NewUnitInput) -> AppResult<Unit> {
    super::create(
        conn,
        &actor.audit(),
        &NewUnit {
            code: &input.code,
            name_vi: &input.names.vi,
            name_en: &input.names.en,
            kind: &input.kind,
            parent_code: input.parent_code.as_deref(),
            valid_from: input.valid_from,
            valid_to: None,
            merged_into_code: None,
        },
    )
}

/// Renames a unit or changes its kind.
pub fn rename(conn: &mut DbConn, actor: &Actor, id: &str, input: &Rename) -> AppResult<Unit> {
    super::rename(
        conn,
        &actor.audit(),
        id,
        &input.names.vi,
        &input.names.en,
        &input.kind,
    )
}

/// Moves a unit under the unit of a code (never under itself or its own subtree).
pub fn move_to(conn: &mut DbConn, actor: &Actor, id: &str, input: &MoveTo) -> AppResult<Unit> {
    let parent = match &input.parent_code {
        Some(code) => Some(unit_by_code(conn, "parent", code)?.id),
        None => None,
    };
    super::move_to(conn, &actor.audit(), id, parent.as_deref())
}

/// Merges a unit into the unit of a code from a day on.
pub fn merge(conn: &mut DbConn, actor: &Actor, id: &str, input: &Merge) -> AppResult<Unit> {
    let target = unit_by_code(conn, "target", &input.target_code)?;
    super::merge_into(conn, &actor.audit(), id, &target.id, input.effective)
}

/// Closes a unit after a day, or reopens it.
pub fn set_validity(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    input: &Validity,
) -> AppResult<Unit> {
    super::set_valid_to(conn, &actor.audit(), id, input.last_day)
}

/// Chooses the form the unit issues at the counter.
pub fn choose_counter_form(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    input: &CounterForm,
) -> AppResult<Unit> {
    super::choose_counter_form(conn, &actor.audit(), id, input.code.as_deref())
}

/// Turns e-mail invitations on or off.
pub fn set_invitations(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    enabled: &bool,
) -> AppResult<Unit> {
    super::set_invitations(conn, &actor.audit(), id, *enabled)
}

/// A unit with its neighbours and counter API keys, as its admin page shows it.
#[derive(Debug, Clone)]
pub struct UnitDetail {
    pub unit: Unit,
    pub parent: Option<Unit>,
    pub merged_into: Option<Unit>,
    pub children: Vec<Unit>,
    pub keys: Vec<ApiKey>,
}

pub fn detail(conn: &mut DbConn, id: &str) -> AppResult<UnitDetail> {
    let unit = super::find(conn, id)?.ok_or_else(no_such_unit)?;
    let parent = match &unit.parent_id {
        Some(p) => super::find(conn, p)?,
        None => None,
    };
    let merged_into = match &unit.merged_into_id {
        Some(m) => super::find(conn, m)?,
        None => None,
    };
    let children = super::list(conn)?
        .into_iter()
        .filter(|u| u.parent_id.as_deref() == Some(id))
        .collect();
    let keys = api_keys::list_for_unit(conn, id)?;
    Ok(UnitDetail {
        unit,
        parent,
        merged_into,
        children,
        keys,
    })
}

/// Issues a counter API key for a unit; the key is shown once.
pub fn issue_api_key(
    conn: &mut DbConn,
    actor: &Actor,
    unit_id: &str,
    label: &str,
) -> AppResult<String> {
    super::find(conn, unit_id)?.ok_or_else(no_such_unit)?;
    Ok(api_keys::create(conn, &actor.audit(), unit_id, label)?)
}

/// Revokes a counter API key; answers the unit it belonged to.
pub fn revoke_api_key(conn: &mut DbConn, actor: &Actor, key_id: &str) -> AppResult<String> {
    let key = api_keys::find(conn, key_id)?
        .ok_or_else(|| AppError::NotFound(Msg::new("Không có khóa này.", "No such key.")))?;
    api_keys::revoke(conn, &actor.audit(), key_id)?;
    Ok(key.unit_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_single_lines() {
        let names = UnitNames::parse("  Sở Tư pháp ", "Department of Justice").unwrap();
        assert_eq!(names.vi, "Sở Tư pháp");
        assert!(UnitNames::parse("Sở\nTư pháp", "x").is_err());
        assert!(UnitNames::parse("Sở", "   ").is_err());
        assert!(UnitNames::parse(&"x".repeat(MAX_NAME + 1), "x").is_err());
    }

    #[test]
    fn codes_are_upper_cased_and_days_read() {
        let input = NewUnitInput::parse(
            " stp-2 ",
            "Sở",
            "Dept",
            "department",
            " tinh ",
            "2026-01-01",
        )
        .unwrap();
        assert_eq!(input.code, "STP-2");
        assert_eq!(input.parent_code.as_deref(), Some("TINH"));
        assert!(NewUnitInput::parse("A", "Sở", "D", "department", "", "01/01/2026").is_err());
        assert!(NewUnitInput::parse("A", "Sở", "D", "castle", "", "2026-01-01").is_err());
        assert_eq!(MoveTo::parse("  ").parent_code, None);
        assert_eq!(Validity::parse("").unwrap().last_day, None);
        assert!(Validity::parse("tomorrow").is_err());
        assert!(Merge::parse("", "2026-01-01").is_err());
    }
}
