//! Checking a downloaded release: its signature file against a public key, over the file's
//! exact bytes (what `sipas release verify` runs).

use std::path::{Path, PathBuf};

use anyhow::Context;

use super::document::ReleaseDocument;
use super::signing::{PublicKey, parse_signature, sha256_hex};

/// Which key a verification used, so the reader knows what the result is worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// `--public-key FILE`: the key the reader got from the publisher.
    Given(PathBuf),
    /// This server's own release key file.
    Local(PathBuf),
    /// The key the document names: proves only that the file was not changed after signing
    /// by whoever holds that key; compare its fingerprint with the published one.
    Embedded,
}

/// The outcome of a verification.
#[derive(Debug, Clone)]
pub struct Verified {
    pub valid: bool,
    pub sha256: String,
    pub fingerprint: String,
    pub key: KeySource,
    /// Period and sequence, when the file parses as a release document.
    pub release: Option<(String, i64)>,
}

/// Verifies `file` against `signature_file` (default: `FILE.sig`). The key: `public_key` if
/// given, else `local_key` (this server's key file) when it exists, else the one the document
/// names.
pub fn verify_file(
    file: &Path,
    signature_file: Option<&Path>,
    public_key: Option<&Path>,
    local_key: Option<&Path>,
) -> anyhow::Result<Verified> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let sig_path = signature_file.map(Path::to_path_buf).unwrap_or_else(|| {
        let mut name = file.as_os_str().to_os_string();
        name.push(".sig");
        PathBuf::from(name)
    });
    let signature = parse_signature(
        &std::fs::read(&sig_path)
            .with_context(|| format!("cannot read the signature {}", sig_path.display()))?,
    )
    .with_context(|| format!("signature {}", sig_path.display()))?;
    let document: Option<ReleaseDocument> = serde_json::from_slice(&bytes).ok();
    let (key, source) = match (public_key, local_key) {
        (Some(path), _) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the public key {}", path.display()))?;
            (
                PublicKey::parse(&text)
                    .with_context(|| format!("public key {}", path.display()))?,
                KeySource::Given(path.to_path_buf()),
            )
        }
        (None, Some(path)) if path.exists() => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the release key {}", path.display()))?;
            (
                PublicKey::parse(&text)
                    .with_context(|| format!("release key {}", path.display()))?,
                KeySource::Local(path.to_path_buf()),
            )
        }
        _ => {
            let named = document
                .as_ref()
                .map(|d| d.release.signing_key.clone())
                .context(
                    "no --public-key given, no local release key, and the file names no key",
                )?;
            (PublicKey::parse(&named)?, KeySource::Embedded)
        }
    };
    Ok(Verified {
        valid: key.verifies(&bytes, &signature),
        sha256: sha256_hex(&bytes),
        fingerprint: key.fingerprint(),
        key: source,
        release: document.map(|d| (d.release.period, d.release.sequence)),
    })
}
