//! Where mail goes: SMTP (lettre's URL form) or a folder of `.eml` files for local use.

use std::path::PathBuf;
use std::time::Duration;

use lettre::{FileTransport, Message, SmtpTransport, Transport};

pub enum MailTransport {
    Smtp(Box<SmtpTransport>),
    File(FileTransport, PathBuf),
}

/// Whether a failed send is worth retrying.
#[derive(Debug)]
pub enum SendError {
    /// Refused for good (a 5xx answer: unknown mailbox, rejected address).
    Permanent(String),
    /// Anything else: server down, timeout, 4xx.
    Transient(String),
}

impl MailTransport {
    /// `file://folder` (relative or absolute) or an `smtp://`/`smtps://` URL.
    pub fn from_url(url: Option<&str>) -> anyhow::Result<Self> {
        let url = url.unwrap_or("file://data/mail");
        if let Some(dir) = url.strip_prefix("file://") {
            let dir = PathBuf::from(dir);
            std::fs::create_dir_all(&dir)
                .map_err(|e| anyhow::anyhow!("cannot create mail folder {}: {e}", dir.display()))?;
            return Ok(Self::File(FileTransport::new(&dir), dir));
        }
        let transport = SmtpTransport::from_url(url)
            .map_err(|e| anyhow::anyhow!("SIPAS_SMTP_URL is not a valid SMTP URL ({e}); use smtp://host:port or smtps://user:pass@host"))?
            .timeout(Some(Duration::from_secs(15)))
            .build();
        Ok(Self::Smtp(Box::new(transport)))
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(_) => "smtp".into(),
            Self::File(_, dir) => format!("files in {}", dir.display()),
        }
    }

    pub fn send(&self, message: &Message) -> Result<(), SendError> {
        match self {
            Self::Smtp(t) => t.send(message).map(|_| ()).map_err(|e| {
                if e.is_permanent() {
                    SendError::Permanent(e.to_string())
                } else {
                    SendError::Transient(e.to_string())
                }
            }),
            Self::File(t, _) => t
                .send(message)
                .map(|_| ())
                .map_err(|e| SendError::Transient(e.to_string())),
        }
    }
}
