//! Signing in and changing one's own password, as use cases: both count the attempt before
//! checking the password (atomically with the limit), so simultaneous guesses cannot slip past
//! the limit, and neither tells whether an account exists.

use super::actor::Actor;
use super::users::{self, Role, User};
use super::{login_limit, password, sessions};
use crate::db::DbConn;
use crate::error::{AppError, AppResult};
use crate::i18n::Msg;

/// What the sign-in form sent, with where it came from.
pub struct Credentials {
    /// As typed; normalised here (trimmed, lower case).
    pub username: String,
    pub password: String,
    /// The client's address: the limit counts per account and per address.
    pub address: String,
    /// The hash of the session this browser held before: a new sign-in ends it.
    pub previous_session: Option<String>,
}

/// What became of a sign-in.
#[derive(Debug)]
pub enum SignIn {
    SignedIn {
        /// The new session's token, for the cookie (only its hash is stored).
        token: String,
        role: Role,
        /// The account must choose a new password before anything else.
        must_change: bool,
    },
    /// Too many attempts, or wrong credentials (never saying which part was wrong).
    Refused(Msg),
}

/// `POST /login`.
pub fn sign_in(conn: &mut DbConn, credentials: &Credentials) -> AppResult<SignIn> {
    let now = crate::db::now();
    let name = users::normalize_username(&credentials.username);
    if let Err(minutes) = login_limit::reserve_attempt(conn, &name, &credentials.address, now)? {
        return Ok(SignIn::Refused(Msg::new(
            format!("Đăng nhập sai quá nhiều lần. Vui lòng thử lại sau {minutes} phút."),
            format!("Too many failed sign-ins. Please try again in {minutes} minutes."),
        )));
    }
    let user = users::find_by_username(conn, &name)?;
    let verified = match &user {
        Some(u) => password::verify(&credentials.password, &u.password_hash) && u.active,
        None => {
            // The same work as a real check: the time taken tells nothing either.
            password::verify_dummy(&credentials.password);
            false
        }
    };
    match user {
        Some(u) if verified => {
            login_limit::clear_account(conn, &name)?;
            if let Some(hash) = &credentials.previous_session {
                sessions::end(conn, hash)?;
            }
            let token = sessions::create(conn, &u.id, now)?;
            Ok(SignIn::SignedIn {
                token,
                role: u.role(),
                must_change: u.must_change_password,
            })
        }
        _ => Ok(SignIn::Refused(Msg::new(
            "Tên đăng nhập hoặc mật khẩu không đúng.",
            "The username or password is not correct.",
        ))),
    }
}

/// The password form, with where it came from.
pub struct PasswordChange {
    pub current: String,
    pub new: String,
    pub confirm: String,
    pub address: String,
}

/// `POST /account/password`: the signed-in `user` changes their own password; their other
/// sessions end, the current one (`session_hash`) stays.
pub fn change_password(
    conn: &mut DbConn,
    user: &User,
    session_hash: &str,
    change: &PasswordChange,
) -> AppResult<()> {
    // Guessing the current password from a stolen session is throttled like sign-in.
    let key = format!("password-change:{}", user.username);
    if let Err(minutes) =
        login_limit::reserve_attempt(conn, &key, &change.address, crate::db::now())?
    {
        return Err(AppError::field(
            "current_password",
            Msg::new(
                format!("Nhập sai quá nhiều lần. Vui lòng thử lại sau {minutes} phút."),
                format!("Too many wrong attempts. Please try again in {minutes} minutes."),
            ),
        ));
    }
    if !password::verify(&change.current, &user.password_hash) {
        return Err(AppError::field(
            "current_password",
            Msg::new(
                "Mật khẩu hiện tại không đúng.",
                "The current password is not correct.",
            ),
        ));
    }
    if change.new != change.confirm {
        return Err(AppError::field(
            "confirm",
            Msg::new(
                "Hai lần nhập mật khẩu mới không khớp.",
                "The two new passwords differ.",
            ),
        ));
    }
    if change.new == change.current {
        return Err(AppError::field(
            "new_password",
            Msg::new(
                "Mật khẩu mới phải khác mật khẩu cũ.",
                "The new password must differ from the old one.",
            ),
        ));
    }
    login_limit::clear_account(conn, &key)?;
    users::set_password(
        conn,
        &Actor::of(user).audit(),
        user,
        &change.new,
        false,
        Some(session_hash),
    )
}
