//! Password hashing with argon2id (the RustCrypto defaults: 19 MiB, 2 passes).

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use crate::i18n::Msg;

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 10;

pub fn hash(password: &str) -> anyhow::Result<String> {
    use rand::RngCore;
    let mut salt_bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut salt_bytes);
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| anyhow::anyhow!("cannot encode salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("cannot hash password: {e}"))
}

/// True when `password` matches; a malformed stored hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Spends the same time as a real check, so unknown usernames cannot be told apart by timing.
pub fn verify_dummy(password: &str) {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let stored = DUMMY.get_or_init(|| hash("dummy password for timing").unwrap_or_default());
    let _ = verify(password, stored);
}

/// Checks a new password against the policy.
pub fn check_policy(password: &str, username: &str) -> Result<(), Msg> {
    if password.chars().count() < MIN_LENGTH {
        return Err(Msg::new(
            format!("Mật khẩu phải có ít nhất {MIN_LENGTH} ký tự."),
            format!("The password must have at least {MIN_LENGTH} characters."),
        ));
    }
    if password.to_lowercase().contains(&username.to_lowercase()) {
        return Err(Msg::new(
            "Mật khẩu không được chứa tên đăng nhập.",
            "The password must not contain the username.",
        ));
    }
    Ok(())
}

/// A random password for new accounts and resets (shown once to the admin).
pub fn generate() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::rng().fill_bytes(&mut bytes);
    data_encoding::BASE32_NOPAD
        .encode(&bytes)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_differ_per_salt() {
        let a = hash("correct horse battery").unwrap();
        let b = hash("correct horse battery").unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("correct horse battery", &a));
        assert!(!verify("wrong", &a));
        assert!(!verify("x", "not a hash"));
    }

    #[test]
    fn policy_refuses_short_and_username_passwords() {
        assert!(check_policy("short", "an").is_err());
        assert!(check_policy("nguyenvanan-2026", "nguyenvanan").is_err());
        assert!(check_policy("mot-hai-ba-bon", "an").is_ok());
        assert!(generate().len() >= MIN_LENGTH);
    }
}
