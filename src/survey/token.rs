//! Single-use survey tokens: 128 bits, written as 26 characters of base32 so that the survey URL
//! can be encoded in a QR code's compact alphanumeric mode.

use data_encoding::BASE32_NOPAD;
use sha2::{Digest, Sha256};

use crate::secret::ServerSecret;

/// The token in a survey link. Only its hash is ever stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SurveyToken(String);

pub const TOKEN_LEN: usize = 26;

impl SurveyToken {
    /// The token of a transaction: recomputable from its id, unguessable without the secret.
    pub fn for_transaction(secret: &ServerSecret, transaction_id: &str) -> Self {
        let mac = secret.mac("survey-token", transaction_id);
        Self(BASE32_NOPAD.encode(&mac[..16]))
    }

    /// The token of a respondent group's campaign link: recomputable from the link id (so the
    /// links can be printed again at any time), unguessable without the secret, and never equal
    /// to a dossier's token (another MAC label).
    pub fn for_campaign_link(secret: &ServerSecret, link_id: &str) -> Self {
        let mac = secret.mac("campaign-token", link_id);
        Self(BASE32_NOPAD.encode(&mac[..16]))
    }

    /// Accepts what a person or scanner may send (any case, surrounding spaces); `None` when it
    /// cannot be a token at all, which callers answer as "unknown".
    pub fn parse(input: &str) -> Option<Self> {
        let upper = input.trim().to_ascii_uppercase();
        let valid = upper.len() == TOKEN_LEN
            && upper
                .bytes()
                .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b));
        valid.then_some(Self(upper))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Hex SHA-256: the lookup key stored in `survey_tokens.token_hash`.
    pub fn hash(&self) -> String {
        crate::forms::definition::hex(&Sha256::digest(self.0.as_bytes()))
    }
}

/// Signs the moment a survey page was served, so the answering time can be measured without
/// writing to the database on every page view.
pub fn sign_opened(secret: &ServerSecret, token_hash: &str, unix_seconds: i64) -> String {
    let mac = secret.mac("opened", &format!("{token_hash}:{unix_seconds}"));
    format!(
        "{unix_seconds}.{}",
        crate::forms::definition::hex(&mac[..8])
    )
}

/// The signed opening time, or `None` if the value was tampered with or is malformed.
pub fn verify_opened(secret: &ServerSecret, token_hash: &str, signed: &str) -> Option<i64> {
    let (seconds, _) = signed.split_once('.')?;
    let seconds: i64 = seconds.parse().ok()?;
    (sign_opened(secret, token_hash, seconds) == signed).then_some(seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ServerSecret {
        ServerSecret::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec())
    }

    #[test]
    fn tokens_are_stable_per_transaction_and_distinct_between_them() {
        let a = SurveyToken::for_transaction(&secret(), "tx-1");
        assert_eq!(a, SurveyToken::for_transaction(&secret(), "tx-1"));
        assert_ne!(a, SurveyToken::for_transaction(&secret(), "tx-2"));
        assert_eq!(a.as_str().len(), TOKEN_LEN);
        let other_secret = ServerSecret::from_bytes(b"another secret of enough length!".to_vec());
        assert_ne!(a, SurveyToken::for_transaction(&other_secret, "tx-1"));
    }

    #[test]
    fn parse_normalises_case_and_refuses_garbage() {
        let t = SurveyToken::for_transaction(&secret(), "tx-1");
        assert_eq!(
            SurveyToken::parse(&format!(" {} ", t.as_str().to_lowercase())),
            Some(t)
        );
        assert_eq!(SurveyToken::parse("short"), None);
        assert_eq!(SurveyToken::parse(&"1".repeat(TOKEN_LEN)), None);
    }

    #[test]
    fn opened_signature_detects_tampering() {
        let signed = sign_opened(&secret(), "h", 1_700_000_000);
        assert_eq!(verify_opened(&secret(), "h", &signed), Some(1_700_000_000));
        assert_eq!(verify_opened(&secret(), "other", &signed), None);
        assert_eq!(
            verify_opened(&secret(), "h", &signed.replace("17", "16")),
            None
        );
    }
}
