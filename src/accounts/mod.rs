//! People who use sipas besides citizens: users and their roles, passwords, sessions, and the
//! brakes on guessing passwords.

pub mod actor;
pub mod login_limit;
pub mod manage;
pub mod password;
pub mod sessions;
pub mod sign_in;
pub mod users;

pub use actor::Actor;
pub use users::{Role, User};
