//! Who acts in a use case: the signed-in person as the domain sees it (no HTTP session), with
//! the role and the scope that object checks need. Use cases take it from the web edge, the
//! command line (`Actor::cli`) or a test alike.

use diesel::QueryResult;

use super::users::{Role, User};
use crate::audit;
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;
use crate::units;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// `None` for the command line, which acts as an administrator.
    pub user_id: Option<String>,
    /// The username, or `cli:{login}`: what the audit log names.
    pub name: String,
    pub role: Role,
    /// An agency's unit: it reads that unit and the units below it.
    pub unit_id: Option<String>,
    /// A collector's organisation.
    pub collector_org_id: Option<String>,
}

impl Actor {
    /// The person behind a user account.
    pub fn of(user: &User) -> Self {
        Self {
            user_id: Some(user.id.clone()),
            name: user.username.clone(),
            role: user.role(),
            unit_id: user.unit_id.clone(),
            collector_org_id: user.collector_org_id.clone(),
        }
    }

    /// Whoever runs the command line on the server: an administrator.
    pub fn cli() -> Self {
        let audit::Actor { id, name } = audit::Actor::cli();
        Self {
            user_id: id,
            name,
            role: Role::Admin,
            unit_id: None,
            collector_org_id: None,
        }
    }

    /// How the audit log records this actor.
    pub fn audit(&self) -> audit::Actor {
        audit::Actor {
            id: self.user_id.clone(),
            name: self.name.clone(),
        }
    }

    /// The collector organisation whose paper forms this actor may see: `None` for
    /// administrators (every organisation's). Anyone else sees only their own organisation's;
    /// without one, an id no organisation has, so they see nothing.
    pub fn paper_scope(&self) -> Option<&str> {
        match self.role {
            Role::Admin => None,
            _ => Some(self.collector_org_id.as_deref().unwrap_or_default()),
        }
    }

    /// The account's id, for rows that name a person (a typist, a judge): empty for the
    /// command line, which has no account and never keys paper forms.
    pub fn account_id(&self) -> &str {
        self.user_id.as_deref().unwrap_or_default()
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this actor may read results of `unit_id`: administrators everything, agencies
    /// their subtree, collectors nothing.
    pub fn can_read_unit(&self, conn: &mut DbConn, unit_id: &str) -> QueryResult<bool> {
        match (self.role, &self.unit_id) {
            (Role::Admin, _) => Ok(true),
            (Role::Agency, Some(scope)) => units::is_within(conn, scope, unit_id),
            _ => Ok(false),
        }
    }

    /// The object check of every read of one unit's results: outside the scope the unit is
    /// "not found", so an agency learns nothing of units it may not see.
    pub fn require_unit(&self, conn: &mut DbConn, unit_id: &str) -> AppResult<()> {
        if self.can_read_unit(conn, unit_id)? {
            Ok(())
        } else {
            Err(outside_scope())
        }
    }

    /// The units this actor may read: every unit for administrators, an agency's subtree.
    pub fn readable_units(&self, conn: &mut DbConn) -> QueryResult<Vec<units::Unit>> {
        match (self.role, &self.unit_id) {
            (Role::Admin, _) => units::list(conn),
            (Role::Agency, Some(root)) => units::subtree(conn, root),
            _ => Ok(Vec::new()),
        }
    }
}

/// A unit outside the actor's scope, told apart from a missing one by nobody.
pub fn outside_scope() -> AppError {
    AppError::NotFound(Msg::new("Không có đơn vị này.", "No such unit."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_acts_as_an_administrator_without_a_user() {
        let cli = Actor::cli();
        assert!(cli.is_admin());
        assert_eq!(cli.user_id, None);
        assert!(cli.audit().name.starts_with("cli:"));
    }
}
