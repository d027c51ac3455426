//! The Ed25519 key that signs releases, kept in a file outside the database
//! (`SIPAS_RELEASE_KEY_FILE`), and verification of a downloaded release.
//!
//! Keys are stored in the formats OpenSSL reads and writes, so a reader can check a release
//! with `openssl pkeyutl -verify` as well as with `sipas release verify`: the private key as
//! PKCS#8 PEM (`openssl genpkey -algorithm ed25519` writes the same), the public key as
//! SubjectPublicKeyInfo PEM. Both DER encodings are fixed prefixes followed by the 32 key bytes
//! (RFC 8410), so no ASN.1 library is needed.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use data_encoding::BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::db::DatabaseUrl;

/// DER of a PKCS#8 Ed25519 private key up to the 32 seed bytes (RFC 8410 §7).
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// DER of an Ed25519 SubjectPublicKeyInfo up to the 32 key bytes (RFC 8410 §4).
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// Where the release key lives: `SIPAS_RELEASE_KEY_FILE`, else `release.key` beside the SQLite
/// database (`data/` for PostgreSQL), like the audit key.
pub fn key_path(settings: &Settings) -> anyhow::Result<PathBuf> {
    if let Some(path) = &settings.release_key_file {
        return Ok(path.clone());
    }
    let dir = match DatabaseUrl::parse(&settings.database_url)? {
        DatabaseUrl::Sqlite(path) => path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from(".")),
        DatabaseUrl::Postgres(_) => PathBuf::from("data"),
    };
    Ok(dir.join("release.key"))
}

/// The private signing key.
pub struct ReleaseKey {
    signing: SigningKey,
}

impl std::fmt::Debug for ReleaseKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReleaseKey({})", self.public().fingerprint())
    }
}

impl ReleaseKey {
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Self {
            signing: SigningKey::from_bytes(&seed),
        }
    }

    /// Reads the key file, or creates it (mode 0600, with a log line saying so) when there is
    /// none. Two processes creating it at once end up with the same key: the file is written
    /// beside and hard-linked into place, and the loser reads the winner's.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        if let Some(key) = Self::load(path)? {
            return Ok(key);
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut seed = [0u8; 32];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut seed);
        let key = Self::from_seed(seed);
        let tmp = dir.join(format!(
            ".release-key-{}.tmp",
            uuid::Uuid::new_v4().simple()
        ));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = options
            .open(&tmp)
            .and_then(|mut f| {
                f.write_all(key.private_pem().as_bytes())?;
                f.sync_all()
            })
            .and_then(|_| std::fs::hard_link(&tmp, path));
        let _ = std::fs::remove_file(&tmp);
        match written {
            Ok(()) => {
                tracing::warn!(
                    path = %path.display(),
                    fingerprint = %key.public().fingerprint(),
                    "generated a new release signing key: back it up apart from the database and publish its public key (/public/key)"
                );
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path)?
                .with_context(|| format!("release key {} vanished", path.display())),
            Err(e) => {
                Err(e).with_context(|| format!("cannot write release key {}", path.display()))
            }
        }
    }

    /// Reads the key file; `Ok(None)` when there is none.
    pub fn load(path: &Path) -> anyhow::Result<Option<Self>> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(e)
                    .with_context(|| format!("cannot read release key {}", path.display()));
            }
        };
        let der = pem_body(&text, "PRIVATE KEY")
            .with_context(|| format!("release key {}", path.display()))?;
        let seed = der
            .strip_prefix(&PKCS8_PREFIX[..])
            .and_then(|rest| <[u8; 32]>::try_from(rest).ok())
            .with_context(|| {
                format!(
                    "release key {} is not an Ed25519 PKCS#8 key (openssl genpkey -algorithm ed25519)",
                    path.display()
                )
            })?;
        Ok(Some(Self::from_seed(seed)))
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.signing.verifying_key())
    }

    /// The 64-byte Ed25519 signature of `bytes` (deterministic).
    pub fn sign(&self, bytes: &[u8]) -> [u8; 64] {
        self.signing.sign(bytes).to_bytes()
    }

    fn private_pem(&self) -> String {
        let mut der = PKCS8_PREFIX.to_vec();
        der.extend_from_slice(self.signing.as_bytes());
        pem("PRIVATE KEY", &der)
    }
}

/// A release's public key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// The 32 raw key bytes in base64, as stored beside each release.
    pub fn to_base64(&self) -> String {
        BASE64.encode(self.0.as_bytes())
    }

    /// SubjectPublicKeyInfo PEM, what `openssl pkeyutl -pubin -inkey` reads.
    pub fn to_pem(&self) -> String {
        let mut der = SPKI_PREFIX.to_vec();
        der.extend_from_slice(self.0.as_bytes());
        pem("PUBLIC KEY", &der)
    }

    /// First 16 hex digits of the SHA-256 of the raw key: short enough to read out, long
    /// enough to tell keys apart.
    pub fn fingerprint(&self) -> String {
        hex(&Sha256::digest(self.0.as_bytes()))[..16].to_string()
    }

    /// Accepts a public-key PEM, a private-key PEM (its public half), or the raw key in base64.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let raw: Vec<u8> = if text.contains("-----BEGIN PUBLIC KEY-----") {
            let der = pem_body(text, "PUBLIC KEY")?;
            der.strip_prefix(&SPKI_PREFIX[..])
                .context("not an Ed25519 public key")?
                .to_vec()
        } else if text.contains("-----BEGIN PRIVATE KEY-----") {
            let der = pem_body(text, "PRIVATE KEY")?;
            let seed = der
                .strip_prefix(&PKCS8_PREFIX[..])
                .and_then(|rest| <[u8; 32]>::try_from(rest).ok())
                .context("not an Ed25519 private key")?;
            return Ok(ReleaseKey::from_seed(seed).public());
        } else {
            BASE64
                .decode(text.trim().as_bytes())
                .context("a public key is PEM or 32 bytes in base64")?
        };
        let bytes = <[u8; 32]>::try_from(raw.as_slice())
            .map_err(|_| anyhow::anyhow!("an Ed25519 public key has 32 bytes"))?;
        Ok(Self(
            VerifyingKey::from_bytes(&bytes).context("not a valid Ed25519 public key")?,
        ))
    }

    /// Whether `signature` (64 bytes) is this key's signature of exactly `bytes`. Strict
    /// verification: no malleable or small-order encodings.
    pub fn verifies(&self, bytes: &[u8], signature: &[u8]) -> bool {
        let Ok(sig) = <[u8; 64]>::try_from(signature) else {
            return false;
        };
        self.0
            .verify_strict(bytes, &Signature::from_bytes(&sig))
            .is_ok()
    }
}

/// A signature file's bytes: raw 64 bytes (what OpenSSL writes and reads) or base64 text.
pub fn parse_signature(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    if bytes.len() == 64 {
        return Ok(bytes.to_vec());
    }
    let text = std::str::from_utf8(bytes).context("a signature is 64 bytes or base64 text")?;
    let raw = BASE64
        .decode(text.trim().as_bytes())
        .context("a signature is 64 bytes or base64 text")?;
    if raw.len() != 64 {
        bail!("an Ed25519 signature has 64 bytes, this one {}", raw.len());
    }
    Ok(raw)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    data_encoding::HEXLOWER.encode(bytes)
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn pem(label: &str, der: &[u8]) -> String {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        BASE64.encode(der)
    )
}

fn pem_body(text: &str, label: &str) -> anyhow::Result<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let start = text
        .find(&begin)
        .with_context(|| format!("no `{begin}` line"))?
        + begin.len();
    let stop = text[start..]
        .find(&end)
        .with_context(|| format!("no `{end}` line"))?
        + start;
    let body: String = text[start..stop]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    BASE64
        .decode(body.as_bytes())
        .context("the PEM body is not base64")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_fail_after_any_change() {
        let key = ReleaseKey::from_seed([7; 32]);
        let doc = br#"{"index":81.25}"#;
        let sig = key.sign(doc);
        let public = PublicKey::parse(&key.public().to_pem()).unwrap();
        assert!(public.verifies(doc, &sig));
        assert!(!public.verifies(br#"{"index":81.26}"#, &sig));
        let other = ReleaseKey::from_seed([8; 32]).public();
        assert!(!other.verifies(doc, &sig));
        assert!(!public.verifies(doc, &sig[..63]));
    }

    #[test]
    fn key_files_round_trip_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys").join("release.key");
        let created = ReleaseKey::load_or_create(&path).unwrap();
        let again = ReleaseKey::load_or_create(&path).unwrap();
        assert_eq!(created.public(), again.public());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let from_private = PublicKey::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(from_private, created.public());
        let from_base64 = PublicKey::parse(&created.public().to_base64()).unwrap();
        assert_eq!(from_base64, created.public());
        assert!(PublicKey::parse("not a key").is_err());
    }

    #[test]
    fn signatures_are_read_raw_or_in_base64() {
        let sig = [3u8; 64];
        assert_eq!(parse_signature(&sig).unwrap(), sig.to_vec());
        assert_eq!(
            parse_signature(BASE64.encode(&sig).as_bytes()).unwrap(),
            sig.to_vec()
        );
        assert!(parse_signature(b"abc").is_err());
    }
}
