//! User accounts and what each role may see.

use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;

use super::password;
use crate::audit::{self, Actor};
use crate::db::DbConn;
use crate::db::schema::{sessions, users};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::i18n::{Lang, Msg};
use crate::units;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The province's Department of Home Affairs: everything.
    Admin,
    /// An agency: reads the results of its unit and the units below it.
    Agency,
    /// A collector organisation's staff (the post office): paper entry, no results.
    Collector,
}

impl Role {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "admin" => Some(Self::Admin),
            "agency" => Some(Self::Agency),
            "collector" => Some(Self::Collector),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Agency => "agency",
            Self::Collector => "collector",
        }
    }

    pub fn label(self, lang: Lang) -> &'static str {
        match self {
            Self::Admin => lang.pick("Quản trị (Sở Nội vụ)", "Administrator (Home Affairs)"),
            Self::Agency => lang.pick("Cơ quan, đơn vị", "Agency"),
            Self::Collector => lang.pick("Đơn vị thu thập (bưu điện)", "Collector (post office)"),
        }
    }

    pub const ALL: [Role; 3] = [Role::Admin, Role::Agency, Role::Collector];
}

#[derive(Debug, Clone, Queryable, Selectable, PartialEq)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub unit_id: Option<String>,
    pub collector_org_id: Option<String>,
    pub active: bool,
    pub must_change_password: bool,
    pub created_at: NaiveDateTime,
    pub password_changed_at: NaiveDateTime,
}

impl User {
    pub fn role(&self) -> Role {
        // The CHECK constraint allows only known roles; an unknown one gets the least power.
        Role::parse(&self.role).unwrap_or(Role::Collector)
    }

    pub fn actor(&self) -> Actor {
        Actor {
            id: Some(self.id.clone()),
            name: self.username.clone(),
        }
    }

    /// Whether this user may read results of `unit_id`: admins everything, agencies their subtree.
    pub fn can_read_unit(&self, conn: &mut DbConn, unit_id: &str) -> QueryResult<bool> {
        match (self.role(), &self.unit_id) {
            (Role::Admin, _) => Ok(true),
            (Role::Agency, Some(scope)) => units::is_within(conn, scope, unit_id),
            _ => Ok(false),
        }
    }

    /// A view of the user without the password hash, for audit records.
    pub fn audit_view(&self) -> serde_json::Value {
        json!({
            "username": self.username, "display_name": self.display_name, "role": self.role,
            "unit_id": self.unit_id, "collector_org_id": self.collector_org_id, "active": self.active,
        })
    }
}

/// Usernames are case-insensitive and trimmed.
pub fn normalize_username(name: &str) -> String {
    name.trim().to_lowercase()
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<User>> {
    db_run!(conn: { users::table.find(id).select(User::as_select()).first(conn).optional() })
}

pub fn find_by_username(conn: &mut DbConn, username: &str) -> QueryResult<Option<User>> {
    let username = normalize_username(username);
    db_run!(conn: {
        users::table.filter(users::username.eq(&username)).select(User::as_select()).first(conn).optional()
    })
}

/// One page of users matching `query` (username or display name), and whether more follow.
/// The accounts of one collector organisation, by username (its home page lists them).
pub fn of_collector_org(conn: &mut DbConn, org_id: &str) -> QueryResult<Vec<User>> {
    db_run!(conn: {
        users::table
            .filter(users::collector_org_id.eq(org_id))
            .order(users::username.asc())
            .select(User::as_select())
            .load(conn)
    })
}

pub fn search(
    conn: &mut DbConn,
    query: &str,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<User>, bool)> {
    let pattern = format!("%{}%", query.trim().to_lowercase());
    let mut rows: Vec<User> = db_run!(conn: {
        let mut q = users::table.select(User::as_select()).into_boxed();
        if !query.trim().is_empty() {
            q = q.filter(users::username.like(pattern.clone()).or(users::display_name.like(format!("%{}%", query.trim()))));
        }
        q.order(users::username.asc()).offset(page.max(0) * per_page).limit(per_page + 1).load(conn)
    })?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

/// What an admin fills in to create or change an account.
#[derive(Debug, Clone)]
pub struct UserInput {
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub unit_id: Option<String>,
    pub collector_org_id: Option<String>,
    pub active: bool,
}

fn check_input(input: &UserInput) -> AppResult<()> {
    let name = &input.username;
    let valid = (3..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-@".contains(c));
    if !valid {
        return Err(AppError::field(
            "username",
            Msg::new(
                "Tên đăng nhập dài 3–64 ký tự, chỉ gồm chữ thường không dấu, số và . _ - @",
                "The username has 3–64 characters: lowercase letters, digits and . _ - @",
            ),
        ));
    }
    if input.display_name.trim().is_empty() {
        return Err(AppError::field(
            "display_name",
            Msg::new("Vui lòng nhập họ tên.", "Please enter the full name."),
        ));
    }
    match input.role {
        Role::Agency if input.unit_id.is_none() => Err(AppError::field(
            "unit_id",
            Msg::new(
                "Tài khoản cơ quan phải gắn với một đơn vị.",
                "An agency account needs a unit.",
            ),
        )),
        Role::Collector if input.collector_org_id.is_none() => Err(AppError::field(
            "collector_org_id",
            Msg::new(
                "Tài khoản thu thập phải gắn với một đơn vị thu thập.",
                "A collector account needs a collector organisation.",
            ),
        )),
        _ => Ok(()),
    }
}

/// Scope columns as they must be stored: only the one that fits the role.
fn scoped(input: &UserInput) -> (Option<String>, Option<String>) {
    match input.role {
        Role::Admin => (None, None),
        Role::Agency => (input.unit_id.clone(), None),
        Role::Collector => (None, input.collector_org_id.clone()),
    }
}

/// Creates an account with `initial_password`, which must be changed at first sign-in.
pub fn create(
    conn: &mut DbConn,
    actor: &Actor,
    input: &UserInput,
    initial_password: &str,
) -> AppResult<User> {
    check_input(input)?;
    password::check_policy(initial_password, &input.username)
        .map_err(|m| AppError::field("password", m))?;
    if find_by_username(conn, &input.username)?.is_some() {
        return Err(AppError::field(
            "username",
            Msg::new(
                "Tên đăng nhập đã được sử dụng.",
                "This username is already taken.",
            ),
        ));
    }
    let hash = password::hash(initial_password)?;
    let id = uuid::Uuid::new_v4().to_string();
    let (unit_id, org_id) = scoped(input);
    conn.write_transaction(|conn| {
        let now = crate::db::now();
        db_run!(conn: {
            diesel::insert_into(users::table)
                .values((
                    users::id.eq(&id),
                    users::username.eq(&input.username),
                    users::display_name.eq(input.display_name.trim()),
                    users::password_hash.eq(&hash),
                    users::role.eq(input.role.as_str()),
                    users::unit_id.eq(&unit_id),
                    users::collector_org_id.eq(&org_id),
                    users::active.eq(input.active),
                    users::must_change_password.eq(true),
                    users::created_at.eq(now),
                    users::password_changed_at.eq(now),
                ))
                .execute(conn)
        })?;
        let user =
            find(conn, &id)?.ok_or_else(|| AppError::Internal(anyhow::anyhow!("user vanished")))?;
        audit::record(
            conn,
            actor,
            "user.create",
            "user",
            &id,
            None,
            Some(user.audit_view()),
        )?;
        Ok(user)
    })
}

/// Changes name, role, scope or active flag; deactivation ends the user's sessions.
pub fn update(conn: &mut DbConn, actor: &Actor, id: &str, input: &UserInput) -> AppResult<User> {
    check_input(input)?;
    let (unit_id, org_id) = scoped(input);
    conn.write_transaction(|conn| {
        let old = find(conn, id)?.ok_or_else(|| {
            AppError::NotFound(Msg::new("Không có tài khoản này.", "No such account."))
        })?;
        if actor.id.as_deref() == Some(id) && (input.role != Role::Admin || !input.active) {
            return Err(AppError::field(
                "role",
                Msg::new(
                    "Không thể tự hạ quyền hoặc khóa tài khoản của chính mình.",
                    "You cannot demote or deactivate your own account.",
                ),
            ));
        }
        db_run!(conn: {
            diesel::update(users::table.find(id))
                .set((
                    users::display_name.eq(input.display_name.trim()),
                    users::role.eq(input.role.as_str()),
                    users::unit_id.eq(&unit_id),
                    users::collector_org_id.eq(&org_id),
                    users::active.eq(input.active),
                ))
                .execute(conn)?;
            if !input.active || input.role.as_str() != old.role {
                diesel::delete(sessions::table.filter(sessions::user_id.eq(id))).execute(conn)?;
            }
            QueryResult::Ok(())
        })?;
        let new =
            find(conn, id)?.ok_or_else(|| AppError::Internal(anyhow::anyhow!("user vanished")))?;
        audit::record(
            conn,
            actor,
            "user.update",
            "user",
            id,
            Some(old.audit_view()),
            Some(new.audit_view()),
        )?;
        Ok(new)
    })
}

/// Sets a password. `by_admin` forces a change at next sign-in and ends the user's sessions;
/// a user changing their own password keeps the current session (`keep_session`).
pub fn set_password(
    conn: &mut DbConn,
    actor: &Actor,
    user: &User,
    new_password: &str,
    by_admin: bool,
    keep_session: Option<&str>,
) -> AppResult<()> {
    password::check_policy(new_password, &user.username)
        .map_err(|m| AppError::field("new_password", m))?;
    let hash = password::hash(new_password)?;
    conn.write_transaction(|conn| {
        db_run!(conn: {
            diesel::update(users::table.find(&user.id))
                .set((
                    users::password_hash.eq(&hash),
                    users::must_change_password.eq(by_admin),
                    users::password_changed_at.eq(crate::db::now()),
                ))
                .execute(conn)?;
            let mut others = diesel::delete(sessions::table.filter(sessions::user_id.eq(&user.id))).into_boxed();
            if let Some(keep) = keep_session {
                others = others.filter(sessions::token_hash.ne(keep.to_string()));
            }
            others.execute(conn)
        })?;
        let action = if by_admin { "user.password_reset" } else { "user.password_change" };
        audit::record(conn, actor, action, "user", &user.id, None, None)?;
        Ok(())
    })
}

/// Creates the first administrator (CLI and demo). Refuses an existing username.
pub fn create_admin(
    conn: &mut DbConn,
    username: &str,
    display_name: &str,
    password: &str,
) -> AppResult<User> {
    let input = UserInput {
        username: normalize_username(username),
        display_name: display_name.to_string(),
        role: Role::Admin,
        unit_id: None,
        collector_org_id: None,
        active: true,
    };
    create(conn, &Actor::cli(), &input, password)
}

/// Lifts the forced password change (demo accounts whose password is printed on purpose).
pub fn clear_must_change(conn: &mut DbConn, username: &str) -> QueryResult<usize> {
    db_run!(conn: {
        diesel::update(users::table.filter(users::username.eq(username))).set(users::must_change_password.eq(false)).execute(conn)
    })
}
