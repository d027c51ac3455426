//! Where mail goes: SMTP (lettre's URL form) or a folder of `.eml` files for local use.

use std::path::PathBuf;
use std::time::Duration;

use lettre::transport::smtp::PoolConfig;
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
            // Keeps connections open between messages (lettre's `pool` feature): a batch of
            // invitations no longer pays a TCP + TLS + AUTH handshake per message.
            .pool_config(
                PoolConfig::new()
                    .max_size(4)
                    .idle_timeout(Duration::from_secs(60)),
            )
            .build();
        Ok(Self::Smtp(Box::new(transport)))
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Smtp(_) => "smtp".into(),
            Self::File(_, dir) => format!("files in {}", dir.display()),
        }
    }

    /// `smtp` or `file`: the transport label of the failure counter in `/metrics`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Smtp(_) => "smtp",
            Self::File(..) => "file",
        }
    }

    pub fn send(&self, message: &Message) -> Result<(), SendError> {
        let result = self.send_once(message);
        if result.is_err() {
            crate::metrics::mail_send_failed(self.kind());
        }
        result
    }

    fn send_once(&self, message: &Message) -> Result<(), SendError> {
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
