//! Paper form serials: ten base32 characters derived from the sample member under the server
//! secret, so a serial cannot be guessed or made up, only scanned or copied from an issued form.

use data_encoding::BASE32_NOPAD;

use crate::secret::ServerSecret;

/// The serial of a sample member, printed as `XXXX-XXXX-XX`.
pub fn for_member(secret: &ServerSecret, member_id: &str) -> String {
    let mac = secret.mac("paper-serial", member_id);
    let text = BASE32_NOPAD.encode(&mac[..7]);
    format!("{}-{}-{}", &text[..4], &text[4..8], &text[8..10])
}

/// Normalises what a typist or scanner produced (any case, with or without dashes or spaces);
/// `None` if it cannot be a serial.
pub fn normalize(input: &str) -> Option<String> {
    let compact: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect::<String>()
        .to_ascii_uppercase();
    let valid = compact.len() == 10
        && compact
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
    valid.then(|| format!("{}-{}-{}", &compact[..4], &compact[4..8], &compact[8..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_stable_distinct_and_normalised() {
        let secret = ServerSecret::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec());
        let a = for_member(&secret, "m1");
        assert_eq!(a, for_member(&secret, "m1"));
        assert_ne!(a, for_member(&secret, "m2"));
        assert_eq!(a.len(), 12);
        assert_eq!(
            normalize(&a.to_lowercase().replace('-', " ")),
            Some(a.clone())
        );
        assert_eq!(normalize("ABCD-EFGH-1"), None);
    }
}
