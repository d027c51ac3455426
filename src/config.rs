//! Settings: built-in defaults that work out of the box, then an optional TOML file, then
//! environment variables (`DATABASE_URL`, `SIPAS_*`), then command-line flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Deserialize;

/// Every setting of the service. Field names are the TOML keys; env names are in [`ENV_VARS`].
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `sqlite://path` or `postgres://…`.
    pub database_url: String,
    /// A streaming replica (`postgres://…`) that reports, rankings and exports read from.
    pub database_replica_url: Option<String>,
    /// Address the HTTP server listens on.
    pub bind: String,
    /// Base of every link handed to citizens (survey URLs, QR codes); defaults to `http://{bind}`.
    pub public_url: Option<String>,
    /// Folder of extra survey-form files (new versions, a province's own forms), read next to
    /// the forms built into the binary; empty (the default): none.
    pub forms_dir: PathBuf,
    /// How long a survey link stays usable after the transaction is registered.
    pub survey_ttl_days: i64,
    /// Key behind survey tokens and demo keys; generated and stored in the database when unset.
    pub secret: Option<String>,
    /// Form issued when neither the request nor the unit names one.
    pub default_counter_form: String,
    /// `text` (default) or `json` log lines.
    pub log_format: String,
    /// Database connections in the pool.
    pub pool_size: u32,
    /// Most submissions committed together by the writer (group commit).
    pub max_batch: usize,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Local time of the province (`+07:00` for Vietnam): decides which day a response counts for.
    pub utc_offset: String,
    /// Deprecated alias: `true` trusts loopback proxies (127.0.0.0/8, ::1), added to
    /// `trusted_proxies` at start-up.
    pub trust_proxy: bool,
    /// Reverse proxies (addresses or networks) whose forwarding headers are believed; the client
    /// address is the right-most forwarded entry that is not one of them.
    pub trusted_proxies: crate::proxy::TrustedProxies,
    /// Requests per minute one network address may make to the public survey pages; generous,
    /// because a whole service centre of citizens may share one address.
    pub survey_rate_per_minute: u32,
    /// Send cookies with `Secure`; defaults to on when `public_url` is https.
    pub cookie_secure: Option<bool>,
    /// Report cells with fewer answers than this are suppressed.
    pub report_min_n: u64,
    /// Margin e in the required sample n = N / (1 + N·e²).
    pub sample_margin: f64,
    /// Where mail goes, in lettre's URL form (`smtp://host:25`, `smtps://user:pass@host`), or
    /// `file://folder` to write messages to files; unset: files under `data/mail`.
    pub smtp_url: Option<String>,
    /// Sender address of invitations, e.g. `SIPAS Sơn Hà <khaosat@sonha.gov.vn>`.
    pub mail_from: String,
    /// The reminder goes this many hours before the survey link expires.
    pub mail_reminder_hours: i64,
    /// Attempts before a message is marked failed.
    pub mail_max_attempts: i64,
    /// First retry delay; doubles with every failed attempt.
    pub mail_retry_base_seconds: i64,
    /// How often the sender looks for due mail.
    pub mail_poll_millis: u64,
    /// How long an instance's claim on a message keeps other instances from sending it; a
    /// message whose sender died is sent by another instance after this.
    pub mail_lease_seconds: i64,
    /// `/readyz` reports the mail sender stopped when its last loop turn is older than this
    /// (0: five poll intervals, at least 30 s, so one slow SMTP exchange is not an alarm).
    pub mail_stale_seconds: u64,
    /// SMS gateway endpoint (POST); unset: no SMS.
    pub sms_url: Option<String>,
    /// One header line sent to the gateway, e.g. `Authorization: Basic dXNlcjpwYXNz`.
    pub sms_auth_header: Option<String>,
    /// Request body with `{phone}`, `{phone_digits}`, `{phone_national}`, `{text}`,
    /// `{message_id}` replaced (escaped for `sms_content_type`).
    pub sms_body_template: String,
    pub sms_content_type: String,
    /// Zalo ZNS API base (`/message/template` is appended).
    pub zalo_base_url: String,
    /// Zalo OAuth base (`/v4/oa/access_token` is appended).
    pub zalo_oauth_url: String,
    pub zalo_app_id: Option<String>,
    pub zalo_secret_key: Option<String>,
    /// The official account's refresh token: seeds the database once; rotated there after.
    pub zalo_refresh_token: Option<String>,
    /// ZNS template of invitations; set: Zalo is the phone channel (preferred over SMS).
    pub zalo_template_id: Option<String>,
    /// ZNS template of reminders; unset: the invitation template.
    pub zalo_reminder_template_id: Option<String>,
    /// Local times with no SMS or Zalo messages, `HH:MM-HH:MM`; `off`: none.
    pub phone_quiet_hours: String,
    /// How long a desk's screen shows the QR of its latest registration (unless answered).
    pub counter_screen_seconds: i64,
    /// One-tap kiosks show this many faces: 3 or 5.
    pub kiosk_faces: i64,
    /// A kiosk takes at most one tap per this many seconds (per device).
    pub kiosk_tap_seconds: i64,
    /// Whether one-tap kiosk answers enter the SIPAS index (reported apart either way).
    pub kiosk_in_index: bool,
    /// Per-response signals that hold a counter response out of the index until reviewed
    /// (comma-separated: same_device, same_network, fast_issue, short_answering, straight_line,
    /// burst; empty holds nothing). Signals a real citizen can trip alone are left out by default.
    pub hold_rules: String,
    /// A response completed this soon after its link was issued is "fast": a citizen first has
    /// to get the receipt, scan the code and read the questions.
    pub integrity_fast_seconds: i64,
    /// Answering faster than this many seconds per answered question is implausibly short.
    pub integrity_seconds_per_question: f64,
    /// This many submissions from one network address within `integrity_burst_minutes` make a
    /// burst (set above what a busy centre's shared address produces).
    pub integrity_burst_count: i64,
    pub integrity_burst_minutes: i64,
    /// Working days an agency has to act on a case opened by a bad rating.
    pub case_deadline_days: i64,
    /// Bearer token that `/metrics` asks for; without it and without `metrics_bind`, `/metrics`
    /// answers 404.
    pub metrics_token: Option<String>,
    /// A separate listen address that serves only `/metrics`, `/healthz` and `/readyz` (e.g.
    /// `127.0.0.1:9187` for a local Prometheus).
    pub metrics_bind: Option<String>,
    /// Key of the audit chain's HMACs, given directly (≥ 32 characters); never in the database.
    pub audit_key: Option<String>,
    /// File holding the audit key, generated (mode 0600) on first use; unset: `audit.key`
    /// beside the SQLite database (`data/` for PostgreSQL).
    pub audit_key_file: Option<PathBuf>,
    /// This instance's append-only record of the audit chain's head; unset: `audit-head.log`
    /// beside the SQLite database (`data/` for PostgreSQL).
    pub audit_head_file: Option<PathBuf>,
    /// Ed25519 key that signs published releases (PKCS#8 PEM), generated (mode 0600) on first
    /// use; unset: `release.key` beside the SQLite database (`data/` for PostgreSQL).
    pub release_key_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            database_url: "sqlite://data/sipas.db".into(),
            database_replica_url: None,
            bind: "127.0.0.1:8080".into(),
            public_url: None,
            forms_dir: PathBuf::new(),
            survey_ttl_days: 14,
            secret: None,
            default_counter_form: "transaction".into(),
            log_format: "text".into(),
            pool_size: 8,
            max_batch: 512,
            max_body_bytes: 64 * 1024,
            utc_offset: "+07:00".into(),
            trust_proxy: false,
            trusted_proxies: crate::proxy::TrustedProxies::default(),
            survey_rate_per_minute: 300,
            cookie_secure: None,
            report_min_n: 5,
            sample_margin: 0.05,
            smtp_url: None,
            mail_from: "SIPAS <no-reply@localhost>".into(),
            mail_reminder_hours: 72,
            mail_max_attempts: 8,
            mail_retry_base_seconds: 60,
            mail_poll_millis: 2000,
            mail_lease_seconds: 300,
            mail_stale_seconds: 0,
            sms_url: None,
            sms_auth_header: None,
            sms_body_template: r#"{"to":"{phone_digits}","message":"{text}","id":"{message_id}"}"#
                .into(),
            sms_content_type: "application/json".into(),
            zalo_base_url: "https://business.openapi.zalo.me".into(),
            zalo_oauth_url: "https://oauth.zaloapp.com".into(),
            zalo_app_id: None,
            zalo_secret_key: None,
            zalo_refresh_token: None,
            zalo_template_id: None,
            zalo_reminder_template_id: None,
            phone_quiet_hours: "21:00-07:00".into(),
            counter_screen_seconds: 180,
            kiosk_faces: 5,
            kiosk_tap_seconds: 10,
            kiosk_in_index: false,
            hold_rules: "same_device,fast_issue".into(),
            integrity_fast_seconds: 90,
            integrity_seconds_per_question: 2.0,
            integrity_burst_count: 5,
            integrity_burst_minutes: 10,
            case_deadline_days: 15,
            metrics_token: None,
            metrics_bind: None,
            audit_key: None,
            audit_key_file: None,
            audit_head_file: None,
            release_key_file: None,
        }
    }
}

/// Environment variables read by [`Settings::load`], with the setting each one sets.
pub const ENV_VARS: &[(&str, &str)] = &[
    ("DATABASE_URL", "database_url"),
    ("DATABASE_REPLICA_URL", "database_replica_url"),
    ("SIPAS_BIND", "bind"),
    ("SIPAS_PUBLIC_URL", "public_url"),
    ("SIPAS_FORMS_DIR", "forms_dir"),
    ("SIPAS_SURVEY_TTL_DAYS", "survey_ttl_days"),
    ("SIPAS_SECRET", "secret"),
    ("SIPAS_DEFAULT_COUNTER_FORM", "default_counter_form"),
    ("SIPAS_LOG_FORMAT", "log_format"),
    ("SIPAS_POOL_SIZE", "pool_size"),
    ("SIPAS_MAX_BATCH", "max_batch"),
    ("SIPAS_MAX_BODY_BYTES", "max_body_bytes"),
    ("SIPAS_UTC_OFFSET", "utc_offset"),
    ("SIPAS_TRUST_PROXY", "trust_proxy"),
    ("SIPAS_TRUSTED_PROXIES", "trusted_proxies"),
    ("SIPAS_SURVEY_RATE_PER_MINUTE", "survey_rate_per_minute"),
    ("SIPAS_COOKIE_SECURE", "cookie_secure"),
    ("SIPAS_REPORT_MIN_N", "report_min_n"),
    ("SIPAS_SAMPLE_MARGIN", "sample_margin"),
    ("SIPAS_SMTP_URL", "smtp_url"),
    ("SIPAS_MAIL_FROM", "mail_from"),
    ("SIPAS_MAIL_REMINDER_HOURS", "mail_reminder_hours"),
    ("SIPAS_MAIL_MAX_ATTEMPTS", "mail_max_attempts"),
    ("SIPAS_MAIL_RETRY_BASE_SECONDS", "mail_retry_base_seconds"),
    ("SIPAS_MAIL_POLL_MILLIS", "mail_poll_millis"),
    ("SIPAS_MAIL_LEASE_SECONDS", "mail_lease_seconds"),
    ("SIPAS_MAIL_STALE_SECONDS", "mail_stale_seconds"),
    ("SIPAS_SMS_URL", "sms_url"),
    ("SIPAS_SMS_AUTH_HEADER", "sms_auth_header"),
    ("SIPAS_SMS_BODY_TEMPLATE", "sms_body_template"),
    ("SIPAS_SMS_CONTENT_TYPE", "sms_content_type"),
    ("SIPAS_ZALO_BASE_URL", "zalo_base_url"),
    ("SIPAS_ZALO_OAUTH_URL", "zalo_oauth_url"),
    ("SIPAS_ZALO_APP_ID", "zalo_app_id"),
    ("SIPAS_ZALO_SECRET_KEY", "zalo_secret_key"),
    ("SIPAS_ZALO_REFRESH_TOKEN", "zalo_refresh_token"),
    ("SIPAS_ZALO_TEMPLATE_ID", "zalo_template_id"),
    (
        "SIPAS_ZALO_REMINDER_TEMPLATE_ID",
        "zalo_reminder_template_id",
    ),
    ("SIPAS_PHONE_QUIET_HOURS", "phone_quiet_hours"),
    ("SIPAS_COUNTER_SCREEN_SECONDS", "counter_screen_seconds"),
    ("SIPAS_KIOSK_FACES", "kiosk_faces"),
    ("SIPAS_KIOSK_TAP_SECONDS", "kiosk_tap_seconds"),
    ("SIPAS_KIOSK_IN_INDEX", "kiosk_in_index"),
    ("SIPAS_HOLD_RULES", "hold_rules"),
    ("SIPAS_INTEGRITY_FAST_SECONDS", "integrity_fast_seconds"),
    (
        "SIPAS_INTEGRITY_SECONDS_PER_QUESTION",
        "integrity_seconds_per_question",
    ),
    ("SIPAS_INTEGRITY_BURST_COUNT", "integrity_burst_count"),
    ("SIPAS_INTEGRITY_BURST_MINUTES", "integrity_burst_minutes"),
    ("SIPAS_CASE_DEADLINE_DAYS", "case_deadline_days"),
    ("SIPAS_METRICS_TOKEN", "metrics_token"),
    ("SIPAS_METRICS_BIND", "metrics_bind"),
    ("SIPAS_AUDIT_KEY", "audit_key"),
    ("SIPAS_AUDIT_KEY_FILE", "audit_key_file"),
    ("SIPAS_AUDIT_HEAD_FILE", "audit_head_file"),
    ("SIPAS_RELEASE_KEY_FILE", "release_key_file"),
];

impl Settings {
    /// Defaults ← `file` (if given) ← environment.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read config file {}", path.display()))?;
                toml::from_str(&text).map_err(|e| {
                    anyhow::anyhow!("config file {}: {}", path.display(), e.to_string().trim())
                })?
            }
            None => Self::default(),
        };
        settings.apply_env(|name| std::env::var(name).ok())?;
        settings.check()?;
        Ok(settings)
    }

    fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        fn number<T: std::str::FromStr>(name: &str, value: &str) -> anyhow::Result<T> {
            value
                .trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("{name}=`{value}` is not a valid number"))
        }
        fn flag(name: &str, value: &str) -> anyhow::Result<bool> {
            match value.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(anyhow::anyhow!("{name}=`{value}` must be true or false")),
            }
        }
        for (name, key) in ENV_VARS {
            let Some(value) = get(name).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match *key {
                "database_url" => self.database_url = value,
                "database_replica_url" => self.database_replica_url = Some(value),
                "bind" => self.bind = value,
                "public_url" => self.public_url = Some(value),
                "forms_dir" => self.forms_dir = PathBuf::from(value),
                "survey_ttl_days" => self.survey_ttl_days = number(name, &value)?,
                "secret" => self.secret = Some(value),
                "default_counter_form" => self.default_counter_form = value,
                "log_format" => self.log_format = value,
                "pool_size" => self.pool_size = number(name, &value)?,
                "max_batch" => self.max_batch = number(name, &value)?,
                "max_body_bytes" => self.max_body_bytes = number(name, &value)?,
                "utc_offset" => self.utc_offset = value,
                "trust_proxy" => self.trust_proxy = flag(name, &value)?,
                "trusted_proxies" => {
                    self.trusted_proxies =
                        value.parse().map_err(|e| anyhow::anyhow!("{name}: {e}"))?
                }
                "survey_rate_per_minute" => self.survey_rate_per_minute = number(name, &value)?,
                "cookie_secure" => self.cookie_secure = Some(flag(name, &value)?),
                "report_min_n" => self.report_min_n = number(name, &value)?,
                "sample_margin" => self.sample_margin = number(name, &value)?,
                "smtp_url" => self.smtp_url = Some(value),
                "mail_from" => self.mail_from = value,
                "mail_reminder_hours" => self.mail_reminder_hours = number(name, &value)?,
                "mail_max_attempts" => self.mail_max_attempts = number(name, &value)?,
                "mail_retry_base_seconds" => self.mail_retry_base_seconds = number(name, &value)?,
                "mail_poll_millis" => self.mail_poll_millis = number(name, &value)?,
                "mail_lease_seconds" => self.mail_lease_seconds = number(name, &value)?,
                "mail_stale_seconds" => self.mail_stale_seconds = number(name, &value)?,
                "sms_url" => self.sms_url = Some(value),
                "sms_auth_header" => self.sms_auth_header = Some(value),
                "sms_body_template" => self.sms_body_template = value,
                "sms_content_type" => self.sms_content_type = value,
                "zalo_base_url" => self.zalo_base_url = value,
                "zalo_oauth_url" => self.zalo_oauth_url = value,
                "zalo_app_id" => self.zalo_app_id = Some(value),
                "zalo_secret_key" => self.zalo_secret_key = Some(value),
                "zalo_refresh_token" => self.zalo_refresh_token = Some(value),
                "zalo_template_id" => self.zalo_template_id = Some(value),
                "zalo_reminder_template_id" => self.zalo_reminder_template_id = Some(value),
                "phone_quiet_hours" => self.phone_quiet_hours = value,
                "counter_screen_seconds" => self.counter_screen_seconds = number(name, &value)?,
                "kiosk_faces" => {
                    self.kiosk_faces = number(name, &value)?;
                    if ![3, 5].contains(&self.kiosk_faces) {
                        anyhow::bail!("{name}=`{value}` must be 3 or 5");
                    }
                }
                "kiosk_tap_seconds" => self.kiosk_tap_seconds = number(name, &value)?,
                "kiosk_in_index" => self.kiosk_in_index = flag(name, &value)?,
                "hold_rules" => self.hold_rules = value,
                "integrity_fast_seconds" => self.integrity_fast_seconds = number(name, &value)?,
                "integrity_seconds_per_question" => {
                    self.integrity_seconds_per_question = number(name, &value)?
                }
                "integrity_burst_count" => self.integrity_burst_count = number(name, &value)?,
                "integrity_burst_minutes" => self.integrity_burst_minutes = number(name, &value)?,
                "case_deadline_days" => self.case_deadline_days = number(name, &value)?,
                "metrics_token" => self.metrics_token = Some(value),
                "metrics_bind" => self.metrics_bind = Some(value),
                "audit_key" => self.audit_key = Some(value),
                "audit_key_file" => self.audit_key_file = Some(PathBuf::from(value)),
                "audit_head_file" => self.audit_head_file = Some(PathBuf::from(value)),
                "release_key_file" => self.release_key_file = Some(PathBuf::from(value)),
                _ => {}
            }
        }
        Ok(())
    }

    /// Refuses values that would only fail later, far from their cause.
    pub fn check(&self) -> anyhow::Result<()> {
        let primary = crate::db::DatabaseUrl::parse(&self.database_url)?;
        if let Some(replica) = &self.database_replica_url {
            let replica = crate::db::DatabaseUrl::parse(replica)
                .map_err(|e| anyhow::anyhow!("DATABASE_REPLICA_URL: {e}"))?;
            if !matches!(
                (&primary, &replica),
                (
                    crate::db::DatabaseUrl::Postgres(_),
                    crate::db::DatabaseUrl::Postgres(_)
                )
            ) {
                bail!(
                    "DATABASE_REPLICA_URL (a PostgreSQL streaming replica) needs postgres:// URLs for both it and DATABASE_URL"
                );
            }
        }
        if !(1..=365).contains(&self.survey_ttl_days) {
            bail!(
                "survey_ttl_days must be between 1 and 365 (got {})",
                self.survey_ttl_days
            );
        }
        if let Some(url) = &self.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("public_url `{url}` must start with http:// or https://");
        }
        if !matches!(self.log_format.as_str(), "text" | "json") {
            bail!(
                "log_format must be `text` or `json` (got `{}`)",
                self.log_format
            );
        }
        self.utc_offset_value()?;
        if self.mail_from.parse::<lettre::message::Mailbox>().is_err() {
            bail!(
                "SIPAS_MAIL_FROM `{}` is not an e-mail address (e.g. SIPAS <khaosat@example.vn>)",
                self.mail_from
            );
        }
        if self.mail_max_attempts < 1
            || self.mail_retry_base_seconds < 0
            || self.mail_poll_millis == 0
        {
            bail!(
                "mail_max_attempts must be ≥ 1, mail_retry_base_seconds ≥ 0, mail_poll_millis ≥ 1"
            );
        }
        // A lease shorter than an SMTP attempt (up to several 15-second timeouts) would let
        // another instance send a message still being sent; the default is minutes.
        if !(5..=86_400).contains(&self.mail_lease_seconds) {
            bail!(
                "mail_lease_seconds must be between 5 and 86400 (got {})",
                self.mail_lease_seconds
            );
        }
        if !(self.sample_margin > 0.0 && self.sample_margin < 0.5) {
            bail!(
                "sample_margin must be between 0 and 0.5 (got {})",
                self.sample_margin
            );
        }
        if self.max_batch == 0 || self.pool_size == 0 {
            bail!("max_batch and pool_size must be at least 1");
        }
        if self.integrity_fast_seconds < 0
            || self.integrity_seconds_per_question < 0.0
            || self.integrity_burst_count < 2
            || self.integrity_burst_minutes < 1
            || !(1..=365).contains(&self.case_deadline_days)
        {
            bail!(
                "integrity settings: fast seconds and seconds per question ≥ 0, burst count ≥ 2, burst minutes ≥ 1, case_deadline_days 1–365"
            );
        }
        if self
            .metrics_token
            .as_ref()
            .is_some_and(|t| t.trim().len() < 16)
        {
            bail!("SIPAS_METRICS_TOKEN must be at least 16 characters");
        }
        if let Some(secret) = &self.secret
            && secret.len() < 32
        {
            bail!("SIPAS_SECRET must be at least 32 characters");
        }
        if let Some(key) = &self.audit_key
            && key.trim().chars().count() < 32
        {
            bail!("SIPAS_AUDIT_KEY must be at least 32 characters");
        }
        Ok(())
    }

    /// How old the mail sender's last loop turn may be before `/readyz` reports it stopped.
    pub fn mail_stale_after(&self) -> std::time::Duration {
        if self.mail_stale_seconds > 0 {
            return std::time::Duration::from_secs(self.mail_stale_seconds);
        }
        (std::time::Duration::from_millis(self.mail_poll_millis) * 5)
            .max(std::time::Duration::from_secs(30))
    }

    /// The province's offset from UTC.
    pub fn utc_offset_value(&self) -> anyhow::Result<chrono::FixedOffset> {
        let parsed = chrono::DateTime::parse_from_rfc3339(&format!(
            "2000-01-01T00:00:00{}",
            self.utc_offset.trim()
        ));
        parsed
            .map(|t| *t.offset())
            .map_err(|_| anyhow::anyhow!("utc_offset `{}` must look like +07:00", self.utc_offset))
    }

    /// Folds the deprecated `trust_proxy` flag into `trusted_proxies` (with a warning).
    pub fn resolve_proxy_alias(&mut self) {
        if self.trust_proxy {
            tracing::warn!(
                "SIPAS_TRUST_PROXY / trust_proxy is deprecated: it now means SIPAS_TRUSTED_PROXIES=127.0.0.0/8,::1; set SIPAS_TRUSTED_PROXIES to your proxies instead"
            );
            self.trusted_proxies
                .extend(&crate::proxy::TrustedProxies::loopback());
            self.trust_proxy = false;
        }
    }

    /// Whether cookies carry `Secure`.
    pub fn secure_cookies(&self) -> bool {
        self.cookie_secure
            .unwrap_or_else(|| self.public_base().starts_with("https://"))
    }

    /// The public base URL without a trailing slash.
    pub fn public_base(&self) -> String {
        let base = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.bind));
        base.trim_end_matches('/').to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_defaults() {
        let mut s = Settings::default();
        s.apply_env(|name| match name {
            "DATABASE_URL" => Some("postgres://127.0.0.1/test".into()),
            "SIPAS_SURVEY_TTL_DAYS" => Some("3".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(s.database_url, "postgres://127.0.0.1/test");
        assert_eq!(s.survey_ttl_days, 3);
        s.check().unwrap();
    }

    #[test]
    fn audit_key_settings_come_from_the_environment() {
        let mut s = Settings::default();
        s.apply_env(|name| match name {
            "SIPAS_AUDIT_KEY_FILE" => Some("/etc/sipas/audit.key".into()),
            "SIPAS_AUDIT_HEAD_FILE" => Some("/var/log/sipas/head.log".into()),
            "SIPAS_AUDIT_KEY" => Some("too short".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            s.audit_key_file,
            Some(PathBuf::from("/etc/sipas/audit.key"))
        );
        assert_eq!(
            s.audit_head_file,
            Some(PathBuf::from("/var/log/sipas/head.log"))
        );
        assert!(
            s.check()
                .unwrap_err()
                .to_string()
                .contains("SIPAS_AUDIT_KEY")
        );
    }

    #[test]
    fn bad_numbers_name_the_variable() {
        let mut s = Settings::default();
        let err = s
            .apply_env(|n| (n == "SIPAS_POOL_SIZE").then(|| "many".into()))
            .unwrap_err();
        assert!(err.to_string().contains("SIPAS_POOL_SIZE"));
    }

    #[test]
    fn trusted_proxies_parse_at_start_up() {
        let mut s = Settings::default();
        s.apply_env(|n| (n == "SIPAS_TRUSTED_PROXIES").then(|| "10.0.0.1, fd00::/8".into()))
            .unwrap();
        assert!(s.trusted_proxies.contains("fd00::7".parse().unwrap()));
        assert!(!s.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        let err = Settings::default()
            .apply_env(|n| (n == "SIPAS_TRUSTED_PROXIES").then(|| "10.0.0.1, proxy".into()))
            .unwrap_err();
        assert!(
            err.to_string().contains("SIPAS_TRUSTED_PROXIES")
                && err.to_string().contains("`proxy`")
        );
        let toml: Settings = toml::from_str("trusted_proxies = [\"10.0.0.0/8\", \"::1\"]").unwrap();
        assert!(toml.trusted_proxies.contains("10.3.2.1".parse().unwrap()));
        assert!(toml::from_str::<Settings>("trusted_proxies = \"10.0.0.0/40\"").is_err());
        // The deprecated flag means loopback proxies.
        let mut old = Settings::default();
        old.apply_env(|n| (n == "SIPAS_TRUST_PROXY").then(|| "true".into()))
            .unwrap();
        old.resolve_proxy_alias();
        assert!(old.trusted_proxies.contains("127.0.0.1".parse().unwrap()));
        assert!(old.trusted_proxies.contains("::1".parse().unwrap()));
        assert!(!old.trusted_proxies.contains("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn public_base_defaults_to_bind_address() {
        let s = Settings {
            public_url: Some("https://sipas.example.vn/".into()),
            ..Settings::default()
        };
        assert_eq!(s.public_base(), "https://sipas.example.vn");
        assert_eq!(Settings::default().public_base(), "http://127.0.0.1:8080");
    }
}
