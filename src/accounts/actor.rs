//! Who acts in a use case, as the domain sees it: a plain value built from the signed-in user
//! at the edge (web session, command line), so use cases know nothing of HTTP sessions.

use super::users::{Role, User};
use crate::audit;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub user_id: String,
    pub username: String,
    pub role: Role,
    /// The agency's unit (agencies only).
    pub unit_id: Option<String>,
    /// The collector organisation (collectors only).
    pub collector_org_id: Option<String>,
}

impl Actor {
    pub fn of(user: &User) -> Self {
        Self {
            user_id: user.id.clone(),
            username: user.username.clone(),
            role: user.role(),
            unit_id: user.unit_id.clone(),
            collector_org_id: user.collector_org_id.clone(),
        }
    }

    /// The actor as the audit log names it.
    pub fn audit(&self) -> audit::Actor {
        audit::Actor {
            id: Some(self.user_id.clone()),
            name: self.username.clone(),
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
}
