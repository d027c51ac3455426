//! The audit log: every change a person makes is an append-only event with old and new values,
//! chained so that a changed, removed or reordered event is detected by [`verify`].
//!
//! Each event's hash is an HMAC-SHA-256 (`hmac-sha256:` + hex) under the audit key, a secret kept
//! outside the database (`SIPAS_AUDIT_KEY`, or the key file generated on first use): whoever can
//! write the database can still edit rows but cannot compute hashes that verify. Events written
//! before keying carry a plain SHA-256 (no prefix) and are checked as before; they may only come
//! before the first keyed event, so keyed events cannot be "downgraded" to recomputable ones.
//! Deleting the newest events and moving the head row back is caught by the head file: every
//! committed event also appends `seq hash` to a file outside the database, and `verify` requires
//! the file's last event to be in the database with that hash.
//!
//! `record` must run inside the transaction of the change it describes (see
//! [`DbConn::write_transaction`]); the head row serialises writers and marks the chain's end.
//! The head file line is written after the commit (from `write_transaction`): written before, a
//! rollback would leave a line for an event that never existed, indistinguishable from a deleted
//! one. A crash between commit and write loses at most that line; the file then lags the
//! database, which `verify` accepts (the database may be ahead of a head file, never behind).

use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex};

use anyhow::{Context, bail};
use chrono::NaiveDateTime;
use diesel::prelude::*;

use hmac::{Hmac, Mac};
use rand::RngCore;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::db::schema::{audit_events, audit_head};
use crate::db::{DatabaseUrl, DbConn};
use crate::db_run;
use crate::forms::definition::hex;
use crate::i18n::Msg;

pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Prefix of keyed hashes; a hash without it is a plain SHA-256 written before keying.
pub const HMAC_PREFIX: &str = "hmac-sha256:";

/// Who made a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    pub id: Option<String>,
    pub name: String,
}

impl Actor {
    /// Changes made from the command line, by whoever runs it on the server.
    pub fn cli() -> Self {
        let who = std::env::var("USER").unwrap_or_else(|_| "unknown".into());
        Self {
            id: None,
            name: format!("cli:{who}"),
        }
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize, PartialEq)]
#[diesel(table_name = audit_events)]
pub struct AuditEvent {
    pub seq: i64,
    pub at: NaiveDateTime,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub old_value: Option<String>,
    pub new_value: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

/// The bytes every hash covers: all fields and the previous hash.
fn canonical(e: &AuditEvent) -> String {
    json!([
        e.seq,
        e.at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string(),
        e.actor_id,
        e.actor_name,
        e.action,
        e.object_type,
        e.object_id,
        e.old_value,
        e.new_value,
        e.prev_hash,
    ])
    .to_string()
}

/// The hash of events written before keying (anyone can recompute it).
fn plain_hash(e: &AuditEvent) -> String {
    hex(&Sha256::digest(canonical(e).as_bytes()))
}

fn keyed_hash(key: &AuditKey, e: &AuditEvent) -> String {
    let mut mac = key.mac();
    mac.update(canonical(e).as_bytes());
    format!("{HMAC_PREFIX}{}", hex(&mac.finalize().into_bytes()))
}

// ---------------------------------------------------------------- the key

/// The audit key: never stored in the database (unlike `SIPAS_SECRET`, which may be).
#[derive(Clone)]
pub struct AuditKey(Vec<u8>);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AuditKey({})", self.fingerprint())
    }
}

impl AuditKey {
    /// A key from its text (the file's content or `SIPAS_AUDIT_KEY`), surrounding blanks ignored.
    pub fn from_text(text: &str) -> anyhow::Result<Self> {
        let text = text.trim();
        if text.chars().count() < 32 {
            bail!("an audit key must be at least 32 characters");
        }
        Ok(Self(text.as_bytes().to_vec()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC accepts keys of any length; this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!())
    }

    /// Names the key without revealing it: 16 hex digits of a hash of it, so an operator can
    /// tell which key a verification used.
    pub fn fingerprint(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"sipas audit key fingerprint\0");
        hasher.update(&self.0);
        hex(&hasher.finalize())[..16].to_string()
    }
}

/// Where the audit key and the head file live.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// `SIPAS_AUDIT_KEY`, when the key is given directly.
    key: Option<AuditKey>,
    pub key_file: PathBuf,
    pub head_file: PathBuf,
}

impl AuditConfig {
    /// From the settings; unset paths default to the SQLite database's folder (`data/` by
    /// default), or `data/` for PostgreSQL.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let dir = match DatabaseUrl::parse(&settings.database_url)? {
            DatabaseUrl::Sqlite(path) => path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from(".")),
            DatabaseUrl::Postgres(_) => PathBuf::from("data"),
        };
        Ok(Self {
            key: settings
                .audit_key
                .as_deref()
                .map(AuditKey::from_text)
                .transpose()
                .context("SIPAS_AUDIT_KEY")?,
            key_file: settings
                .audit_key_file
                .clone()
                .unwrap_or_else(|| dir.join("audit.key")),
            head_file: settings
                .audit_head_file
                .clone()
                .unwrap_or_else(|| dir.join("audit-head.log")),
        })
    }

    /// Where the key comes from, for messages.
    pub fn key_source(&self) -> String {
        match self.key {
            Some(_) => "SIPAS_AUDIT_KEY".into(),
            None => self.key_file.display().to_string(),
        }
    }
}

/// Reads a key file; `Ok(None)` when there is none.
fn read_key_file(path: &Path) -> anyhow::Result<Option<AuditKey>> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read audit key {}", path.display()));
        }
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path)
            && meta.permissions().mode() & 0o077 != 0
        {
            tracing::warn!(path = %path.display(), "the audit key file is readable by others: chmod 600 it");
        }
    }
    AuditKey::from_text(&text)
        .map(Some)
        .with_context(|| format!("audit key file {}", path.display()))
}

/// Creates a new random key file (mode 0600) unless one appears meanwhile; returns the key the
/// file holds. Written beside and hard-linked into place, so nobody reads a half-written key.
fn create_key_file(path: &Path) -> anyhow::Result<AuditKey> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let text = hex(&bytes);
    let tmp = dir.join(format!(".audit-key-{}.tmp", uuid::Uuid::new_v4().simple()));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(format!("{text}\n").as_bytes())?;
            f.sync_all()
        })
        .and_then(|_| std::fs::hard_link(&tmp, path));
    let _ = std::fs::remove_file(&tmp);
    match written {
        Ok(()) => {
            sync_dir(dir);
            let key = AuditKey::from_text(&text)?;
            tracing::warn!(
                path = %path.display(),
                fingerprint = %key.fingerprint(),
                "generated a new audit key: back it up apart from the database; without it the audit log cannot be verified"
            );
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read_key_file(path)?.with_context(|| format!("audit key {} vanished", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("cannot write audit key {}", path.display())),
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

// ---------------------------------------------------------------- per-database context

/// The audit key and head file of one database, as this process was configured for it.
#[derive(Debug)]
pub struct AuditContext {
    config: AuditConfig,
    key: Mutex<Option<AuditKey>>,
    /// The last seq this process appended to the head file (read from the file at first use),
    /// so the file only ever grows in seq even when commits finish out of order.
    last_written: Mutex<Option<i64>>,
}

impl AuditContext {
    pub fn new(config: AuditConfig) -> Self {
        let key = config.key.clone();
        Self {
            config,
            key: Mutex::new(key),
            last_written: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// The key for checking: `Ok(None)` when there is none. Never creates one.
    pub fn key_for_verify(&self) -> anyhow::Result<Option<AuditKey>> {
        let mut cached = self.key.lock().unwrap_or_else(|e| e.into_inner());
        if cached.is_none() {
            *cached = read_key_file(&self.config.key_file)?;
        }
        Ok(cached.clone())
    }

    /// The key for writing, generated on first use. A missing key is not replaced while keyed
    /// events exist: they could never be verified again, so the change is refused instead.
    fn key_for_writing(&self, conn: &mut DbConn) -> anyhow::Result<AuditKey> {
        if let Some(key) = self.key_for_verify()? {
            return Ok(key);
        }
        let mut cached = self.key.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(key) = cached.as_ref() {
            return Ok(key.clone());
        }
        let keyed = keyed_event_count(conn)?;
        if keyed > 0 {
            bail!(
                "the audit key {} is missing but the audit log holds {keyed} events keyed with it: \
                 restore the key file from its backup (or set SIPAS_AUDIT_KEY)",
                self.config.key_file.display()
            );
        }
        let key = create_key_file(&self.config.key_file)?;
        *cached = Some(key.clone());
        Ok(key)
    }

    /// Appends `seq hash` lines for committed events and fsyncs the file.
    fn append_head(&self, entries: &[(i64, String)]) -> anyhow::Result<()> {
        let path = &self.config.head_file;
        let mut last = self.last_written.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none() {
            *last = Some(match read_last_head(path) {
                Ok(Some((seq, _))) => seq,
                Ok(None) => 0,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
                Err(e) => {
                    return Err(e).with_context(|| format!("cannot read {}", path.display()));
                }
            });
        }
        let mut floor = last.unwrap_or(0);
        let mut lines = String::new();
        let mut sorted: Vec<&(i64, String)> = entries.iter().collect();
        sorted.sort_by_key(|(seq, _)| *seq);
        for (seq, hash) in sorted {
            if *seq > floor {
                lines.push_str(&format!("{seq} {hash}\n"));
                floor = *seq;
            }
        }
        if lines.is_empty() {
            return Ok(());
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let created = !path.exists();
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        file.write_all(lines.as_bytes())
            .and_then(|_| file.sync_data())
            .with_context(|| format!("cannot write {}", path.display()))?;
        if created {
            sync_dir(dir);
        }
        *last = Some(floor);
        Ok(())
    }
}

/// The last complete `seq hash` line of a head file: `Ok(None)` when it has none. A line cut
/// short by a crash (no newline yet) is ignored.
pub fn read_last_head(path: &Path) -> std::io::Result<Option<(i64, String)>> {
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    // Lines are under 100 bytes: the tail holds the last one unless the file is damaged.
    let mut start = len.saturating_sub(4096);
    loop {
        file.seek(SeekFrom::Start(start))?;
        let mut tail = String::new();
        file.read_to_string(&mut tail).map_err(|e| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, format!("not text: {e}"))
        })?;
        let complete = match tail.rfind('\n') {
            Some(end) => &tail[..end],
            None if start == 0 => return Ok(None),
            None => {
                start = 0;
                continue;
            }
        };
        let line = complete.rsplit('\n').next().unwrap_or("").trim();
        if line.is_empty() && complete.trim().is_empty() {
            return Ok(None);
        }
        return parse_head(line).map(Some).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("last line `{line}` is not `seq hash`"),
            )
        });
    }
}

/// `seq hash` (head file) or `seq:hash` (what `sipas audit head` prints).
pub fn parse_head(text: &str) -> Option<(i64, String)> {
    let text = text.trim();
    let (seq, hash) = text
        .split_once(char::is_whitespace)
        .or_else(|| text.split_once(':'))?;
    let seq: i64 = seq.trim().parse().ok().filter(|s| *s > 0)?;
    let hash = hash.trim();
    (!hash.is_empty() && !hash.contains(char::is_whitespace)).then(|| (seq, hash.to_string()))
}

static CONTEXTS: LazyLock<Mutex<HashMap<String, Arc<AuditContext>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

#[derive(QueryableByName)]
struct Identity {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

/// Which database a connection reaches, as the database itself reports it (the SQLite file's
/// absolute path; PostgreSQL server, database and schema), so every pool of it agrees.
fn identity(conn: &mut DbConn) -> QueryResult<String> {
    let row: Identity = match conn {
        DbConn::Sqlite(c) => diesel::sql_query(
            "SELECT 'sqlite:' || file AS id FROM pragma_database_list WHERE name = 'main'",
        )
        .get_result(&mut **c)?,
        DbConn::Postgres(c) => diesel::sql_query(
            "SELECT 'postgres:' || coalesce(host(inet_server_addr()), 'socket') || ':' \
             || coalesce(inet_server_port()::text, '') || '/' || current_database() || '/' \
             || coalesce(current_schema(), '') AS id",
        )
        .get_result(&mut ***c)?,
    };
    Ok(row.id)
}

/// How many events carry an HMAC: once there is one, the chain needs its key for good.
fn keyed_event_count(conn: &mut DbConn) -> QueryResult<i64> {
    db_run!(conn: {
        audit_events::table
            .filter(audit_events::hash.like(format!("{HMAC_PREFIX}%")))
            .count()
            .get_result(conn)
    })
}

/// Configures the audit log of the database `conn` reaches: every later [`record`] on any
/// connection to it uses this key and head file. Called once per start by [`crate::prepare`].
/// A damaged key file stops here; a missing one is created by the first event.
pub fn attach(conn: &mut DbConn, settings: &Settings) -> anyhow::Result<Arc<AuditContext>> {
    let context = Arc::new(AuditContext::new(AuditConfig::from_settings(settings)?));
    if context.key_for_verify()?.is_none() {
        let keyed = keyed_event_count(conn)?;
        if keyed > 0 {
            // Said at start rather than only at the first refused change.
            tracing::error!(
                key = %context.config.key_source(),
                keyed,
                "the audit key is missing but the audit log holds events keyed with it: changes \
                 are refused and the log cannot be verified until the key file is restored"
            );
        }
    }
    let id = identity(conn).context("cannot identify the database")?;
    CONTEXTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, context.clone());
    conn.extensions().insert(context.clone());
    Ok(context)
}

fn other(e: anyhow::Error) -> diesel::result::Error {
    diesel::result::Error::QueryBuilderError(e.into())
}

/// The context of the database `conn` reaches (cached on the connection).
pub fn context(conn: &mut DbConn) -> QueryResult<Arc<AuditContext>> {
    if let Some(found) = conn.extensions().get::<Arc<AuditContext>>() {
        return Ok(found.clone());
    }
    let id = identity(conn)?;
    let found = CONTEXTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .cloned()
        .ok_or_else(|| {
            other(anyhow::anyhow!(
                "the audit log of {id} is not configured (sipas::prepare attaches it)"
            ))
        })?;
    conn.extensions().insert(found.clone());
    Ok(found)
}

/// Head-file lines waiting for their transaction to commit.
struct PendingHeads {
    context: Arc<AuditContext>,
    entries: Vec<(i64, String)>,
}

/// Registered with [`DbConn::after_transaction`] by the first event of a transaction: once the
/// outermost transaction has ended, appends the events it committed to the head file. Rolled-back events are not in the
/// table (or another event took their seq) and are left out.
fn transaction_ended(conn: &mut DbConn) {
    if conn.in_transaction() {
        return;
    }
    let Some(pending) = conn.extensions().remove::<PendingHeads>() else {
        return;
    };
    let seqs: Vec<i64> = pending.entries.iter().map(|(seq, _)| *seq).collect();
    let stored: QueryResult<Vec<(i64, String)>> = db_run!(conn: {
        audit_events::table
            .filter(audit_events::seq.eq_any(&seqs))
            .select((audit_events::seq, audit_events::hash))
            .load(conn)
    });
    let committed: Vec<(i64, String)> = match stored {
        Ok(rows) => pending
            .entries
            .into_iter()
            .filter(|e| rows.contains(e))
            .collect(),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the committed audit events for the head file");
            return;
        }
    };
    if let Err(e) = pending.context.append_head(&committed) {
        tracing::error!(error = %format!("{e:#}"), "cannot append to the audit head file");
    }
}

/// Appends an event; call inside the transaction of the change.
pub fn record(
    conn: &mut DbConn,
    actor: &Actor,
    action: &str,
    object_type: &str,
    object_id: &str,
    old: Option<Value>,
    new: Option<Value>,
) -> QueryResult<i64> {
    let context = context(conn)?;
    let key = context.key_for_writing(conn).map_err(other)?;
    let (seq, prev_hash): (i64, String) = db_run!(conn: {
        diesel::update(audit_head::table.find(1i64)).set(audit_head::seq.eq(audit_head::seq + 1)).execute(conn)?;
        audit_head::table.find(1i64).select((audit_head::seq, audit_head::hash)).first(conn)
    })?;
    let mut event = AuditEvent {
        seq,
        at: crate::db::now(),
        actor_id: actor.id.clone(),
        actor_name: actor.name.clone(),
        action: action.to_string(),
        object_type: object_type.to_string(),
        object_id: object_id.to_string(),
        old_value: old.map(|v| v.to_string()),
        new_value: new.map(|v| v.to_string()),
        prev_hash,
        hash: String::new(),
    };
    event.hash = keyed_hash(&key, &event);
    db_run!(conn: {
        diesel::insert_into(audit_events::table)
            .values((
                audit_events::seq.eq(event.seq),
                audit_events::at.eq(event.at),
                audit_events::actor_id.eq(&event.actor_id),
                audit_events::actor_name.eq(&event.actor_name),
                audit_events::action.eq(&event.action),
                audit_events::object_type.eq(&event.object_type),
                audit_events::object_id.eq(&event.object_id),
                audit_events::old_value.eq(&event.old_value),
                audit_events::new_value.eq(&event.new_value),
                audit_events::prev_hash.eq(&event.prev_hash),
                audit_events::hash.eq(&event.hash),
            ))
            .execute(conn)?;
        diesel::update(audit_head::table.find(1i64)).set(audit_head::hash.eq(&event.hash)).execute(conn)
    })?;
    if conn.in_transaction() {
        let entry = (seq, event.hash);
        let ext = conn.extensions();
        match ext.get_mut::<PendingHeads>() {
            Some(pending) => pending.entries.push(entry),
            None => {
                ext.insert(PendingHeads {
                    context,
                    entries: vec![entry],
                });
                conn.after_transaction(transaction_ended);
            }
        }
    } else if let Err(e) = context.append_head(&[(seq, event.hash)]) {
        tracing::error!(error = %format!("{e:#}"), "cannot append to the audit head file");
    }
    Ok(seq)
}

/// The chain's head as the database holds it: (seq, hash, time of that event).
pub fn head(conn: &mut DbConn) -> QueryResult<(i64, String, Option<NaiveDateTime>)> {
    db_run!(conn: {
        let (seq, hash): (i64, String) = audit_head::table.find(1i64).select((audit_head::seq, audit_head::hash)).first(conn)?;
        let at: Option<NaiveDateTime> = audit_events::table.find(seq).select(audit_events::at).first(conn).optional()?;
        Ok((seq, hash, at))
    })
}

// ---------------------------------------------------------------- verification

/// The first break found in the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub problem: String,
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "audit event {}: {}", self.seq, self.problem)
    }
}

/// What to compare the database with besides the chain itself.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Head files, one per instance writing the database; empty: this instance's own file.
    pub head_files: Vec<PathBuf>,
    /// A head the operator recorded elsewhere (`sipas audit head`), as (seq, hash).
    pub expected_head: Option<(i64, String)>,
}

/// How a recorded head compares with the database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadOutcome {
    /// The recorded event is in the database with that hash; `newer` events follow it.
    Matches {
        seq: i64,
        newer: i64,
    },
    DoesNotMatch(ChainBreak),
    /// No such file (this instance has written no event yet); a problem only when named.
    NotFound {
        named: bool,
    },
    Unreadable(String),
}

/// One recorded head and its outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeadCheck {
    /// `head file PATH` or `the given head`.
    pub source: Msg,
    pub outcome: HeadOutcome,
}

impl HeadCheck {
    pub fn ok(&self) -> bool {
        match self.outcome {
            HeadOutcome::Matches { .. } => true,
            HeadOutcome::NotFound { named } => !named,
            _ => false,
        }
    }
}

/// Everything `verify` checked, and what it found.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Events checked before the first break (all of them when intact).
    pub events: i64,
    pub plain_events: i64,
    pub keyed_events: i64,
    /// The key's fingerprint, or why there is none.
    pub key: Result<String, String>,
    pub chain: Result<i64, ChainBreak>,
    pub heads: Vec<HeadCheck>,
}

impl Verification {
    /// The chain and every head agree.
    pub fn intact(&self) -> bool {
        self.chain.is_ok() && self.heads.iter().all(HeadCheck::ok)
    }

    /// The number of events when intact, or the first wrong event.
    pub fn result(&self) -> Result<i64, ChainBreak> {
        let n = self.chain.clone()?;
        for head in &self.heads {
            match &head.outcome {
                HeadOutcome::DoesNotMatch(b) => return Err(b.clone()),
                HeadOutcome::Unreadable(why) => {
                    return Err(ChainBreak {
                        seq: n,
                        problem: format!("cannot be compared with {}: {why}", head.source.en),
                    });
                }
                HeadOutcome::NotFound { named: true } => {
                    return Err(ChainBreak {
                        seq: n,
                        problem: format!("cannot be compared: {} does not exist", head.source.en),
                    });
                }
                _ => {}
            }
        }
        Ok(n)
    }

    /// What was checked, one line each (Vietnamese, English).
    pub fn lines(&self) -> Vec<Msg> {
        let mut out = Vec::new();
        let key = match &self.key {
            Ok(fingerprint) => Msg::new(
                format!("khóa HMAC {fingerprint}"),
                format!("HMAC key {fingerprint}"),
            ),
            Err(why) => Msg::new(
                format!("không có khóa HMAC ({why})"),
                format!("no HMAC key ({why})"),
            ),
        };
        out.push(Msg::new(
            format!(
                "{} sự kiện đã kiểm tra ({} HMAC-SHA-256, {} SHA-256 thường từ trước khi có khóa), {}",
                self.events, self.keyed_events, self.plain_events, key.vi
            ),
            format!(
                "{} events checked ({} HMAC-SHA-256, {} plain SHA-256 from before keying), {}",
                self.events, self.keyed_events, self.plain_events, key.en
            ),
        ));
        for head in &self.heads {
            let (vi, en) = match &head.outcome {
                HeadOutcome::Matches { seq, newer } => (
                    format!("sự kiện cuối {seq} khớp (sau đó còn {newer} sự kiện)"),
                    format!("last seq {seq} matches ({newer} newer events after it)"),
                ),
                HeadOutcome::DoesNotMatch(b) => (
                    format!("sự kiện cuối {} không khớp: {}", b.seq, b.problem),
                    format!("last seq {} does not match: {}", b.seq, b.problem),
                ),
                HeadOutcome::NotFound { .. } => (
                    "không tồn tại, chưa so sánh (phiên bản này chưa ghi sự kiện nào)".into(),
                    "does not exist, not compared (this instance has written no event yet)".into(),
                ),
                HeadOutcome::Unreadable(why) => (
                    format!("không đọc được: {why}"),
                    format!("cannot be read: {why}"),
                ),
            };
            out.push(Msg::new(
                format!("{}: {vi}", head.source.vi),
                format!("{}: {en}", head.source.en),
            ));
        }
        out
    }
}

fn break_at(seq: i64, problem: impl Into<String>) -> ChainBreak {
    ChainBreak {
        seq,
        problem: problem.into(),
    }
}

fn short(hash: &str) -> String {
    match hash.strip_prefix(HMAC_PREFIX) {
        Some(rest) => format!("{HMAC_PREFIX}{}…", &rest[..rest.len().min(12)]),
        None => format!("{}…", &hash[..hash.len().min(12)]),
    }
}

/// Walks the whole chain with this instance's key and head file; `Ok(n)` is the number of
/// intact events. See [`verify_with`] for what is checked.
pub fn verify(conn: &mut DbConn) -> QueryResult<Result<i64, ChainBreak>> {
    Ok(verify_with(conn, &VerifyOptions::default())?.result())
}

/// Checks every event's hash (HMAC with the audit key; plain SHA-256 only before the first
/// keyed event), the links between events, the head row, and each head recorded outside the
/// database: a head file's last event, or the operator's, must be in the database unchanged.
pub fn verify_with(conn: &mut DbConn, options: &VerifyOptions) -> QueryResult<Verification> {
    const PAGE: i64 = 1000;
    let context = context(conn)?;
    let key = context
        .key_for_verify()
        .map_err(|e| format!("{e:#}"))
        .and_then(|k| k.ok_or_else(|| format!("{} not found", context.config.key_source())));
    let mut expected_seq = 1i64;
    let mut prev_hash = GENESIS_HASH.to_string();
    let (mut plain, mut keyed) = (0i64, 0i64);
    let mut found: Option<ChainBreak> = None;
    'pages: loop {
        let page: Vec<AuditEvent> = db_run!(conn: {
            audit_events::table
                .filter(audit_events::seq.ge(expected_seq))
                .order(audit_events::seq.asc())
                .limit(PAGE)
                .select(AuditEvent::as_select())
                .load(conn)
        })?;
        let done = (page.len() as i64) < PAGE;
        for event in page {
            let problem = if event.seq != expected_seq {
                Some(break_at(
                    expected_seq,
                    format!(
                        "is missing (deleted); the chain continues at event {}",
                        event.seq
                    ),
                ))
            } else if event.prev_hash != prev_hash {
                Some(break_at(
                    event.seq,
                    "does not follow the event before it (that event was changed or removed)",
                ))
            } else if event.hash.starts_with(HMAC_PREFIX) {
                match &key {
                    Ok(k) if keyed_hash(k, &event) == event.hash => None,
                    Ok(_) => Some(break_at(
                        event.seq,
                        "was changed after it was written (its HMAC does not match the audit key)",
                    )),
                    Err(why) => Some(break_at(
                        event.seq,
                        format!(
                            "is keyed (HMAC-SHA-256) and cannot be checked without the audit key: {why}"
                        ),
                    )),
                }
            } else if keyed > 0 {
                Some(break_at(
                    event.seq,
                    "has a plain SHA-256 hash after keyed events: it was re-hashed by someone without the audit key",
                ))
            } else if plain_hash(&event) != event.hash {
                Some(break_at(event.seq, "was changed after it was written"))
            } else {
                None
            };
            if let Some(problem) = problem {
                found = Some(problem);
                break 'pages;
            }
            if event.hash.starts_with(HMAC_PREFIX) {
                keyed += 1;
            } else {
                plain += 1;
            }
            prev_hash = event.hash;
            expected_seq += 1;
        }
        if done {
            break;
        }
    }
    let last = expected_seq - 1;
    let (head_seq, head_hash): (i64, String) = db_run!(conn: { audit_head::table.find(1i64).select((audit_head::seq, audit_head::hash)).first(conn) })?;
    if found.is_none() && (head_seq != last || head_hash != prev_hash) {
        found = Some(break_at(
            expected_seq,
            format!("is missing: the log ends at event {last} but {head_seq} were written"),
        ));
    }
    let db_last: i64 = db_run!(conn: {
        audit_events::table.select(diesel::dsl::max(audit_events::seq)).first::<Option<i64>>(conn)
    })?
    .unwrap_or(0);
    // Each recorded head: where it comes from, and its (seq, hash) or why there is none.
    type Recorded = Result<Option<(i64, String)>, HeadOutcome>;
    let mut recorded: Vec<(Msg, Recorded)> = Vec::new();
    let named = !options.head_files.is_empty();
    let files = if named {
        options.head_files.clone()
    } else {
        vec![context.config.head_file.clone()]
    };
    for path in files {
        let source = Msg::new(
            format!("tệp đỉnh chuỗi {}", path.display()),
            format!("head file {}", path.display()),
        );
        let read = match read_last_head(&path) {
            Ok(line) => Ok(line),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(HeadOutcome::NotFound { named })
            }
            Err(e) => Err(HeadOutcome::Unreadable(e.to_string())),
        };
        recorded.push((source, read));
    }
    if let Some(given) = &options.expected_head {
        recorded.push((
            Msg::new("đỉnh chuỗi được cung cấp", "the given head"),
            Ok(Some(given.clone())),
        ));
    }
    let mut heads = Vec::new();
    for (source, read) in recorded {
        let outcome = match read {
            Err(outcome) => outcome,
            Ok(None) => HeadOutcome::Unreadable("it holds no complete line".into()),
            Ok(Some((seq, hash))) => {
                let stored: Option<String> = db_run!(conn: {
                    audit_events::table.find(seq).select(audit_events::hash).first(conn).optional()
                })?;
                match stored {
                    Some(h) if h == hash => HeadOutcome::Matches {
                        seq,
                        newer: db_last - seq,
                    },
                    Some(h) => HeadOutcome::DoesNotMatch(break_at(
                        seq,
                        format!(
                            "was changed: {} records hash {}, the database holds {}",
                            source.en,
                            short(&hash),
                            short(&h)
                        ),
                    )),
                    None => HeadOutcome::DoesNotMatch(break_at(
                        seq,
                        format!(
                            "is missing: {} records it (hash {}) but the database ends at event {db_last}",
                            source.en,
                            short(&hash)
                        ),
                    )),
                }
            }
        };
        heads.push(HeadCheck { source, outcome });
    }
    Ok(Verification {
        events: last,
        plain_events: plain,
        keyed_events: keyed,
        key: key.map(|k| k.fingerprint()),
        chain: match found {
            Some(b) => Err(b),
            None => Ok(last),
        },
        heads,
    })
}

/// Filters for browsing the log; empty strings mean "any".
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: String,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub from: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
}

impl AuditFilter {
    /// The browse form's fields: text trimmed, days (`YYYY-MM-DD`, both included) read as
    /// UTC bounds; a day that does not read is no bound.
    pub fn parse(
        actor: &str,
        action: &str,
        object_type: &str,
        object_id: &str,
        from: &str,
        until: &str,
    ) -> Self {
        let day = |s: &str| chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").ok();
        Self {
            actor: actor.trim().to_string(),
            action: action.trim().to_string(),
            object_type: object_type.trim().to_string(),
            object_id: object_id.trim().to_string(),
            from: day(from).and_then(|d| d.and_hms_opt(0, 0, 0)),
            until: day(until)
                .and_then(|d| d.succ_opt())
                .and_then(|d| d.and_hms_opt(0, 0, 0)),
        }
    }
}

/// A page of the log as administrators browse it, with the chain's check.
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub more: bool,
    /// Every action recorded, for the filter's drop-down.
    pub actions: Vec<String>,
    pub chain: Verification,
}

/// `GET /admin/audit`: one page of events matching `filter` and the chain verified.
pub fn browse(
    conn: &mut DbConn,
    filter: &AuditFilter,
    page: i64,
    per_page: i64,
) -> QueryResult<AuditPage> {
    let (events, more) = list(conn, filter, page, per_page)?;
    let chain = verify_with(conn, &VerifyOptions::default())?;
    Ok(AuditPage {
        events,
        more,
        actions: actions(conn)?,
        chain,
    })
}

/// One page of events, newest first, and whether more follow.
pub fn list(
    conn: &mut DbConn,
    filter: &AuditFilter,
    page: i64,
    per_page: i64,
) -> QueryResult<(Vec<AuditEvent>, bool)> {
    let mut rows: Vec<AuditEvent> = db_run!(conn: {
        let mut query = audit_events::table.select(AuditEvent::as_select()).into_boxed();
        if !filter.actor.is_empty() {
            query = query.filter(audit_events::actor_name.like(format!("%{}%", filter.actor)));
        }
        if !filter.action.is_empty() {
            query = query.filter(audit_events::action.eq(&filter.action));
        }
        if !filter.object_type.is_empty() {
            query = query.filter(audit_events::object_type.eq(&filter.object_type));
        }
        if !filter.object_id.is_empty() {
            query = query.filter(audit_events::object_id.eq(&filter.object_id));
        }
        if let Some(from) = filter.from {
            query = query.filter(audit_events::at.ge(from));
        }
        if let Some(until) = filter.until {
            query = query.filter(audit_events::at.lt(until));
        }
        query
            .order(audit_events::seq.desc())
            .offset(page.max(0) * per_page)
            .limit(per_page + 1)
            .load(conn)
    })?;
    let more = rows.len() as i64 > per_page;
    rows.truncate(per_page as usize);
    Ok((rows, more))
}

/// The distinct actions recorded, for the filter's drop-down.
pub fn actions(conn: &mut DbConn) -> QueryResult<Vec<String>> {
    db_run!(conn: {
        audit_events::table.select(audit_events::action).distinct().order(audit_events::action.asc()).load(conn)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_in_both_spellings() {
        let hash = format!("{HMAC_PREFIX}ab12");
        assert_eq!(parse_head(&format!("42 {hash}")), Some((42, hash.clone())));
        assert_eq!(
            parse_head(&format!(" 42:{hash}\n")),
            Some((42, hash.clone()))
        );
        for bad in ["", "42", "x:abc", "0 abc", "-3 abc", "42 a b"] {
            assert_eq!(parse_head(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_last_complete_line_counts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("head.log");
        std::fs::write(&path, "").unwrap();
        assert_eq!(read_last_head(&path).unwrap(), None);
        // A line cut short by a crash (no newline yet) is not the head.
        std::fs::write(&path, "1 aa\n2 bb\n3 c").unwrap();
        assert_eq!(read_last_head(&path).unwrap(), Some((2, "bb".into())));
        // Far more than the tail window.
        let long: String = (1..=2000)
            .map(|i| format!("{i} {HMAC_PREFIX}{i:064}\n"))
            .collect();
        std::fs::write(&path, &long).unwrap();
        assert_eq!(read_last_head(&path).unwrap().map(|h| h.0), Some(2000));
        std::fs::write(&path, "not a head\n").unwrap();
        assert!(read_last_head(&path).is_err());
    }

    #[test]
    fn keys_are_long_and_known_by_fingerprint_only() {
        assert!(AuditKey::from_text("short").is_err());
        let a = AuditKey::from_text(" 0123456789abcdef0123456789abcdef\n").unwrap();
        let b = AuditKey::from_text("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            a.fingerprint(),
            b.fingerprint(),
            "blanks around the key do not count"
        );
        assert_eq!(a.fingerprint().len(), 16);
        assert!(!format!("{a:?}").contains("0123456789abcdef0123"));
    }

    #[test]
    fn a_generated_key_file_is_private_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("audit.key");
        let key = create_key_file(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A second creation finds the first key instead of replacing it.
        let again = create_key_file(&path).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
        assert_eq!(
            read_key_file(&path).unwrap().unwrap().fingerprint(),
            key.fingerprint()
        );
        assert!(read_key_file(&dir.path().join("none")).unwrap().is_none());
    }
}
