//! The administrators' use cases on accounts: create (with a first password shown once), change
//! name, role, scope or active flag, reset a password, and an account's page. Inputs are parsed
//! at the edge ([`AccountInput::parse`]); the scope given by code is resolved here, inside the
//! use case, so a unit code that does not exist is a field error of the form.

use super::actor::Actor;
use super::users::{self, Role, User, UserInput};
use crate::collector_orgs::{self, CollectorOrg};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::units;

/// An account as the create and edit forms give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountInput {
    /// Normalised (trimmed, lower case); ignored when editing (a username never changes).
    pub username: String,
    pub display_name: String,
    pub role: Role,
    /// The agency's unit, by code (upper-cased); only kept for agencies.
    pub unit_code: Option<String>,
    /// The collector's organisation, by id; only kept for collectors.
    pub collector_org_id: Option<String>,
    pub active: bool,
}

impl AccountInput {
    pub fn parse(
        username: &str,
        display_name: &str,
        role: &str,
        unit_code: &str,
        collector_org_id: &str,
        active: bool,
    ) -> AppResult<Self> {
        let role = Role::parse(role).ok_or_else(|| {
            AppError::field("role", Msg::new("Vai trò không hợp lệ.", "Invalid role."))
        })?;
        let unit_code = unit_code.trim().to_ascii_uppercase();
        let org = collector_org_id.trim();
        Ok(Self {
            username: users::normalize_username(username),
            display_name: display_name.trim().to_string(),
            role,
            unit_code: (role == Role::Agency && !unit_code.is_empty()).then_some(unit_code),
            collector_org_id: (role == Role::Collector && !org.is_empty()).then(|| org.to_string()),
            active,
        })
    }
}

/// The stored form of an input: scope codes resolved to ids.
fn resolve(conn: &mut DbConn, input: &AccountInput) -> AppResult<UserInput> {
    let unit_id = match &input.unit_code {
        Some(code) => Some(
            units::find_by_code(conn, code)?
                .ok_or_else(|| {
                    AppError::field(
                        "unit",
                        Msg::new(
                            "Không có đơn vị với mã này.",
                            "There is no unit with this code.",
                        ),
                    )
                })?
                .id,
        ),
        None => None,
    };
    let collector_org_id = match &input.collector_org_id {
        Some(id) => Some(
            collector_orgs::find(conn, id)?
                .ok_or_else(|| {
                    AppError::field(
                        "collector_org",
                        Msg::new(
                            "Không có đơn vị thu thập này.",
                            "No such collector organisation.",
                        ),
                    )
                })?
                .id,
        ),
        None => None,
    };
    Ok(UserInput {
        username: input.username.clone(),
        display_name: input.display_name.clone(),
        role: input.role,
        unit_id,
        collector_org_id,
        active: input.active,
    })
}

fn no_such_account() -> AppError {
    AppError::NotFound(Msg::new("Không có tài khoản này.", "No such account."))
}

/// Creates an account, active, with `first_password` to change at the first sign-in.
pub fn create(
    conn: &mut DbConn,
    actor: &Actor,
    input: &AccountInput,
    first_password: &str,
) -> AppResult<User> {
    let mut stored = resolve(conn, input)?;
    stored.active = true;
    users::create(conn, &actor.audit(), &stored, first_password)
}

/// Changes an account's name, role, scope or active flag (never its username).
pub fn update(conn: &mut DbConn, actor: &Actor, id: &str, input: &AccountInput) -> AppResult<User> {
    let existing = users::find(conn, id)?.ok_or_else(no_such_account)?;
    let mut stored = resolve(conn, input)?;
    stored.username = existing.username;
    users::update(conn, &actor.audit(), id, &stored)
}

/// An account as its admin page shows it.
#[derive(Debug, Clone)]
pub struct AccountDetail {
    pub account: User,
    /// The code of an agency's unit (empty otherwise).
    pub unit_code: String,
    /// Every collector organisation, to choose from.
    pub orgs: Vec<CollectorOrg>,
}

pub fn detail(conn: &mut DbConn, id: &str) -> AppResult<AccountDetail> {
    let account = users::find(conn, id)?.ok_or_else(no_such_account)?;
    let unit_code = match &account.unit_id {
        Some(u) => units::find(conn, u)?.map(|u| u.code).unwrap_or_default(),
        None => String::new(),
    };
    Ok(AccountDetail {
        account,
        unit_code,
        orgs: collector_orgs::list(conn)?,
    })
}

/// A page of accounts matching a search, with the organisations the create form offers.
#[derive(Debug, Clone)]
pub struct AccountList {
    pub accounts: Vec<User>,
    pub more: bool,
    pub orgs: Vec<CollectorOrg>,
}

pub fn list(conn: &mut DbConn, query: &str, page: i64, per_page: i64) -> AppResult<AccountList> {
    let (accounts, more) = users::search(conn, query, page, per_page)?;
    Ok(AccountList {
        accounts,
        more,
        orgs: collector_orgs::list(conn)?,
    })
}

/// Gives an account a temporary password (to change at the next sign-in) and ends its
/// sessions; answers the account's page.
pub fn reset_password(
    conn: &mut DbConn,
    actor: &Actor,
    id: &str,
    temporary: &str,
) -> AppResult<AccountDetail> {
    let detail = detail(conn, id)?;
    users::set_password(conn, &actor.audit(), &detail.account, temporary, true, None)?;
    Ok(detail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_scope_of_the_role_is_kept() {
        let agency =
            AccountInput::parse(" An.Nguyen ", " An ", "agency", " stp ", "org-1", true).unwrap();
        assert_eq!(agency.username, "an.nguyen");
        assert_eq!(agency.unit_code.as_deref(), Some("STP"));
        assert_eq!(agency.collector_org_id, None);
        let collector =
            AccountInput::parse("bd", "B", "collector", "STP", " org-1 ", false).unwrap();
        assert_eq!(collector.unit_code, None);
        assert_eq!(collector.collector_org_id.as_deref(), Some("org-1"));
        assert!(AccountInput::parse("x", "X", "root", "", "", true).is_err());
    }
}
