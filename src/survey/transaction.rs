//! Registering a completed transaction from the counter system and issuing its survey link.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};

use super::token::SurveyToken;
use crate::db::DbConn;
use crate::db::schema::{survey_tokens, transactions};
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::FormRegistry;
use crate::i18n::Msg;
use crate::rollup::{DossierChange, RollupDelta};
use crate::secret::ServerSecret;
use crate::units;

/// How surveys are issued: which form by default, for how long, when to remind.
#[derive(Debug, Clone)]
pub struct IssuePolicy {
    pub default_form: String,
    pub ttl_days: i64,
    pub reminder_before: chrono::Duration,
    /// Right-hand side of Message-IDs.
    pub mail_host: String,
    /// The province's local time, for validity dates.
    pub utc_offset: chrono::FixedOffset,
    /// SMS or Zalo, whichever is configured; `None`: phone numbers are not kept.
    pub phone_channel: Option<crate::mail::phone::PhoneChannel>,
}

impl IssuePolicy {
    pub fn from_settings(
        settings: &crate::config::Settings,
        utc_offset: chrono::FixedOffset,
    ) -> Self {
        let base = settings.public_base();
        let host = base
            .split("://")
            .nth(1)
            .unwrap_or("localhost")
            .split(['/', ':'])
            .next()
            .unwrap_or("localhost")
            .to_string();
        Self {
            default_form: settings.default_counter_form.clone(),
            ttl_days: settings.survey_ttl_days,
            reminder_before: chrono::Duration::hours(settings.mail_reminder_hours),
            mail_host: host,
            utc_offset,
            phone_channel: crate::mail::phone::configured_channel(settings),
        }
    }
}

/// A validated registration request.
#[derive(Debug, Clone)]
pub struct TransactionRequest {
    pub unit: String,
    pub dossier_code: String,
    pub procedure: String,
    pub received_at: NaiveDateTime,
    pub due_at: Option<NaiveDateTime>,
    pub completed_at: NaiveDateTime,
    pub email: Option<String>,
    pub form: Option<String>,
    /// For SMS or Zalo invitations.
    pub phone: Option<crate::mail::phone::PhoneNumber>,
    /// The desk that served the citizen: its screen shows the survey's QR.
    pub counter: Option<crate::counter::DeskCode>,
}

/// What the counter system gets back; the same for a repeated request.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct IssuedSurvey {
    pub transaction_id: String,
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub form: String,
    pub form_version: i64,
    /// False when the (unit, dossier code) was already registered and its survey is returned.
    #[serde(skip)]
    pub created: bool,
}

fn text_field(
    body: &Map<String, Value>,
    name: &str,
    required: bool,
    max: usize,
) -> AppResult<Option<String>> {
    match body.get(name) {
        None | Some(Value::Null) if required => Err(AppError::field(
            name,
            Msg::new(
                format!("Thiếu trường bắt buộc `{name}`."),
                format!("The field `{name}` is required."),
            ),
        )),
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let s = s.trim();
            // Every field is one line; a NUL would also be refused by PostgreSQL alone.
            crate::text::check(name, s, crate::text::Lines::Single)?;
            if s.is_empty() && required {
                return Err(AppError::field(
                    name,
                    Msg::new(
                        format!("Trường `{name}` không được để trống."),
                        format!("The field `{name}` must not be empty."),
                    ),
                ));
            }
            if s.chars().count() > max {
                return Err(AppError::field(
                    name,
                    Msg::new(
                        format!("Trường `{name}` dài quá {max} ký tự."),
                        format!("The field `{name}` is longer than {max} characters."),
                    ),
                ));
            }
            Ok((!s.is_empty()).then(|| s.to_string()))
        }
        Some(_) => Err(AppError::bad_request(
            name,
            Msg::new(
                format!("Trường `{name}` phải là chuỗi ký tự."),
                format!("The field `{name}` must be a string."),
            ),
        )),
    }
}

fn time_field(
    body: &Map<String, Value>,
    name: &str,
    required: bool,
) -> AppResult<Option<NaiveDateTime>> {
    let Some(text) = text_field(body, name, required, 64)? else {
        return Ok(None);
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|t| Some(t.with_timezone(&Utc).naive_utc()))
        .map_err(|_| {
            AppError::field(
                name,
                Msg::new(
                    format!("Trường `{name}` phải là thời điểm theo RFC 3339, ví dụ 2026-11-25T09:30:00+07:00."),
                    format!("The field `{name}` must be an RFC 3339 time, e.g. 2026-11-25T09:30:00+07:00."),
                ),
            )
        })
}

/// Every field of a registration; any other is refused (422) rather than silently ignored.
pub const FIELDS: [&str; 10] = [
    "unit",
    "dossier_code",
    "procedure",
    "received_at",
    "due_at",
    "completed_at",
    "email",
    "form",
    "phone",
    "counter",
];

/// How far ahead a due date may be: a statutory deadline is days or months away, never years.
pub const MAX_DUE_DAYS: i64 = 731;

/// The earliest `received_at`/`completed_at` accepted: older is a typo or a default date.
pub fn earliest_time() -> NaiveDateTime {
    chrono::NaiveDate::from_ymd_opt(2000, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default()
}

impl TransactionRequest {
    /// Checks the shape and content of a JSON body, naming the first bad field.
    pub fn from_json(body: &Value, now: NaiveDateTime) -> AppResult<Self> {
        let body = crate::error::json_object(body, &FIELDS)?;
        let unit = text_field(body, "unit", true, 64)?.unwrap_or_default();
        let dossier_code = text_field(body, "dossier_code", true, 64)?.unwrap_or_default();
        if !dossier_code
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
        {
            return Err(AppError::field(
                "dossier_code",
                Msg::new(
                    "Mã hồ sơ chỉ gồm chữ, số và các ký tự - _ . / :",
                    "The dossier code may contain only letters, digits and - _ . / :",
                ),
            ));
        }
        let procedure = text_field(body, "procedure", true, 64)?.unwrap_or_default();
        let received_at = time_field(body, "received_at", true)?.unwrap_or(now);
        let due_at = time_field(body, "due_at", false)?;
        let completed_at = time_field(body, "completed_at", true)?.unwrap_or(now);
        if completed_at < received_at {
            return Err(AppError::field(
                "completed_at",
                Msg::new(
                    "Thời điểm hoàn thành trước thời điểm tiếp nhận.",
                    "completed_at is earlier than received_at.",
                ),
            ));
        }
        if due_at.is_some_and(|due| due < received_at) {
            return Err(AppError::field(
                "due_at",
                Msg::new(
                    "Hạn trả kết quả trước thời điểm tiếp nhận.",
                    "due_at is earlier than received_at.",
                ),
            ));
        }
        if completed_at > now + chrono::Duration::minutes(10) {
            return Err(AppError::field(
                "completed_at",
                Msg::new(
                    "Thời điểm hoàn thành nằm ở tương lai.",
                    "completed_at is in the future.",
                ),
            ));
        }
        let earliest = earliest_time();
        for (name, at) in [("received_at", received_at), ("completed_at", completed_at)] {
            if at < earliest {
                return Err(AppError::field(
                    name,
                    Msg::new(
                        format!("Trường `{name}` phải từ năm 2000 trở đi."),
                        format!("The field `{name}` must be in the year 2000 or later."),
                    ),
                ));
            }
        }
        if due_at.is_some_and(|due| due > now + chrono::Duration::days(MAX_DUE_DAYS)) {
            return Err(AppError::field(
                "due_at",
                Msg::new(
                    "Hạn trả kết quả quá xa (tối đa 2 năm kể từ nay).",
                    "due_at is too far ahead (at most 2 years from now).",
                ),
            ));
        }
        let email = text_field(body, "email", false, 254)?;
        if let Some(address) = &email
            && address.parse::<lettre::Address>().is_err()
        {
            return Err(AppError::field(
                "email",
                Msg::new(
                    "Địa chỉ thư điện tử không hợp lệ.",
                    "The e-mail address is not valid.",
                ),
            ));
        }
        let form = text_field(body, "form", false, 64)?;
        let phone = text_field(body, "phone", false, 32)?
            .map(|p| crate::mail::phone::PhoneNumber::parse(&p))
            .transpose()
            .map_err(|msg| AppError::field("phone", msg))?;
        let counter = text_field(body, "counter", false, 32)?
            .map(|d| crate::counter::DeskCode::parse(&d))
            .transpose()
            .map_err(|msg| AppError::field("counter", msg))?;
        Ok(Self {
            unit,
            dossier_code,
            procedure,
            received_at,
            due_at,
            completed_at,
            email,
            form,
            phone,
            counter,
        })
    }
}

fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// What a registration request turns out to be once checked.
pub enum Registration {
    /// The (unit, dossier code) is known: its survey is returned again.
    Existing(IssuedSurvey),
    /// A new dossier, checked and ready to be written.
    New(Box<NewDossier>),
}

/// A checked new dossier with its token: everything needed to write it.
pub struct NewDossier {
    id: String,
    token: SurveyToken,
    unit_id: String,
    invitations: bool,
    procedure_id: String,
    form_code: String,
    form_version: i64,
    request: TransactionRequest,
    now: NaiveDateTime,
    expires_at: NaiveDateTime,
    reminder_before: chrono::Duration,
    mail_host: String,
    utc_offset: chrono::FixedOffset,
    phone_channel: Option<crate::mail::phone::PhoneChannel>,
}

/// Checks a registration request (unit, key scope, validity, procedure, form) and finds an
/// already registered dossier; reads only.
pub fn prepare(
    conn: &mut DbConn,
    forms: &FormRegistry,
    secret: &ServerSecret,
    key_unit_id: &str,
    policy: &IssuePolicy,
    request: &TransactionRequest,
) -> AppResult<Registration> {
    let (default_form, ttl_days) = (policy.default_form.as_str(), policy.ttl_days);
    let (unit, procedure, existing) = catalogue_reads(
        conn,
        &request.unit,
        &request.procedure,
        &request.dossier_code,
    )?
    .ok_or_else(|| {
        AppError::field(
            "unit",
            Msg::new(
                "Không có đơn vị với mã này.",
                "There is no unit with this code.",
            ),
        )
    })?;
    if !units::is_within(conn, key_unit_id, &unit.id)? {
        return Err(AppError::Forbidden(Msg::new(
            "Khóa API này không được cấp cho đơn vị đã nêu.",
            "This API key is not issued for the given unit.",
        )));
    }
    let now = crate::db::now();
    // Validity dates are the province's local days.
    let today = crate::calendar::local_day(now, policy.utc_offset);
    if !unit.is_valid_on(today) {
        return Err(AppError::field(
            "unit",
            Msg::new(
                "Đơn vị đã ngừng hoạt động hoặc đã sáp nhập.",
                "The unit has been closed or merged.",
            ),
        ));
    }
    if let Some(existing) = existing {
        return Ok(Registration::Existing(existing.issued(secret)));
    }
    let procedure = procedure.filter(|p| p.active).ok_or_else(|| {
        AppError::field(
            "procedure",
            Msg::new(
                "Không có thủ tục hành chính với mã này.",
                "There is no procedure with this code.",
            ),
        )
    })?;
    let form_code = request
        .form
        .clone()
        .or(unit.counter_form.clone())
        .unwrap_or_else(|| default_form.to_string());
    let form = forms.latest(&form_code).ok_or_else(|| {
        AppError::field(
            "form",
            Msg::new(
                "Không có mẫu phiếu với mã này.",
                "There is no survey form with this code.",
            ),
        )
    })?;
    let id = uuid::Uuid::now_v7().to_string();
    Ok(Registration::New(Box::new(NewDossier {
        token: SurveyToken::for_transaction(secret, &id),
        id,
        unit_id: unit.id.clone(),
        invitations: unit.invitations_enabled,
        procedure_id: procedure.id.clone(),
        form_code: form.code.clone(),
        form_version: form.version,
        request: request.clone(),
        now,
        expires_at: now + chrono::Duration::days(ttl_days),
        reminder_before: policy.reminder_before,
        mail_host: policy.mail_host.clone(),
        utc_offset: policy.utc_offset,
        phone_channel: policy.phone_channel,
    })))
}

impl NewDossier {
    /// Writes the dossier, its token and its mail, and counts it for the Decision 766 rate:
    /// call inside a transaction.
    pub fn insert(&self, conn: &mut DbConn, delta: &mut RollupDelta) -> QueryResult<()> {
        let (id, request, now) = (&self.id, &self.request, self.now);
        db_run!(conn: {
            diesel::insert_into(transactions::table)
                .values((
                    transactions::id.eq(id),
                    transactions::unit_id.eq(&self.unit_id),
                    transactions::dossier_code.eq(&request.dossier_code),
                    transactions::procedure_id.eq(&self.procedure_id),
                    transactions::received_at.eq(request.received_at),
                    transactions::due_at.eq(request.due_at),
                    transactions::completed_at.eq(request.completed_at),
                    transactions::email.eq(&request.email),
                    transactions::form_code.eq(&self.form_code),
                    transactions::form_version.eq(self.form_version),
                    transactions::created_at.eq(now),
                ))
                .execute(conn)?;
            diesel::insert_into(survey_tokens::table)
                .values((
                    survey_tokens::token_hash.eq(self.token.hash()),
                    survey_tokens::transaction_id.eq(id),
                    survey_tokens::unit_id.eq(&self.unit_id),
                    survey_tokens::procedure_id.eq(&self.procedure_id),
                    survey_tokens::form_code.eq(&self.form_code),
                    survey_tokens::form_version.eq(self.form_version),
                    survey_tokens::issued_at.eq(now),
                    survey_tokens::expires_at.eq(self.expires_at),
                ))
                .execute(conn)?;
            // The invitation and reminder are queued in the same transaction: a registered
            // dossier with an address always gets its mail, and never twice.
            if request.email.is_some() && self.invitations {
                let rows = crate::mail::outbox::rows_for(id, &self.unit_id, now, self.expires_at, self.reminder_before, &self.mail_host);
                diesel::insert_into(crate::db::schema::outbox::table).values(&rows).execute(conn)?;
            }
            QueryResult::Ok(())
        })?;
        self.insert_counter_channels(conn)?;
        let change = DossierChange::of_dossier(request.completed_at, request.due_at, None);
        delta.add_dossier(&self.unit_id, request.completed_at, self.utc_offset, change);
        Ok(())
    }

    /// The phone invitation and reminder (queued like e-mail, same transaction) and the desk's
    /// screen entry, when the request has a number or a desk.
    fn insert_counter_channels(&self, conn: &mut DbConn) -> QueryResult<()> {
        let request = &self.request;
        if let (Some(phone), Some(channel), true) =
            (&request.phone, self.phone_channel, self.invitations)
        {
            let rows = crate::mail::outbox::rows_for(
                &self.id,
                &self.unit_id,
                self.now,
                self.expires_at,
                self.reminder_before,
                &self.mail_host,
            );
            crate::mail::phone::queue(conn, &self.id, phone, channel, &rows)?;
        }
        if let Some(desk) = &request.counter {
            crate::counter::record_registration(conn, &self.id, &self.unit_id, desk, self.now)?;
        }
        Ok(())
    }

    /// The stored hash of the survey token, and when it was issued (for the integrity record
    /// of who registered the dossier).
    pub fn token_issue(&self) -> (String, NaiveDateTime) {
        (self.token.hash(), self.now)
    }

    /// The survey of this dossier, once written.
    pub fn issued(&self) -> IssuedSurvey {
        IssuedSurvey {
            transaction_id: self.id.clone(),
            token: self.token.as_str().to_string(),
            expires_at: self.expires_at.and_utc(),
            form: self.form_code.clone(),
            form_version: self.form_version,
            created: true,
        }
    }

    /// The survey issued once `inserted` committed; when a concurrent request registered the
    /// same dossier first (a unique violation), the survey issued to it.
    pub fn settle(
        &self,
        conn: &mut DbConn,
        secret: &ServerSecret,
        inserted: QueryResult<()>,
    ) -> AppResult<IssuedSurvey> {
        match inserted {
            Ok(()) => Ok(self.issued()),
            Err(e) if is_unique_violation(&e) => {
                find_existing(conn, secret, &self.unit_id, &self.request.dossier_code)?.ok_or_else(
                    || {
                        AppError::Internal(anyhow::anyhow!(
                            "dossier vanished after a unique violation"
                        ))
                    },
                )
            }
            Err(e) => Err(e.into()),
        }
    }
}

crate::set_sql!(
    /// A batch's new dossiers in one statement (see [`insert_many`]).
    InsertTransactions,
    diesel::sql_types::Integer,
    "INSERT INTO transactions (id, unit_id, dossier_code, procedure_id, received_at, due_at, \
     completed_at, email, form_code, form_version, created_at) \
     SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::timestamp[], \
     ?::timestamp[], ?::timestamp[], ?::text[], ?::text[], ?::int8[], ?::timestamp[])"
);

crate::set_sql!(
    /// A batch's survey tokens, with who asked for each, in one statement.
    InsertTokens,
    diesel::sql_types::Integer,
    "INSERT INTO survey_tokens (token_hash, transaction_id, unit_id, procedure_id, form_code, \
     form_version, issued_at, expires_at, issuer_network, issuer_device) \
     SELECT * FROM unnest(?::text[], ?::text[], ?::text[], ?::text[], ?::text[], ?::int8[], \
     ?::timestamp[], ?::timestamp[], ?::text[], ?::text[])"
);

/// Writes many new dossiers as [`NewDossier::insert`] and [`crate::integrity::record_issuer`]
/// write each, with a few statements for the whole batch on PostgreSQL (the group commit's
/// fast path); one by one on SQLite. Any failure (e.g. a dossier registered meanwhile) fails
/// the whole call: run it in a savepoint, and write the dossiers one by one after a failure.
pub fn insert_many(
    conn: &mut DbConn,
    batch: &[(&NewDossier, Option<&crate::integrity::Fingerprint>)],
    delta: &mut RollupDelta,
) -> QueryResult<()> {
    use crate::db::statements::{Column, SetStatement};
    if batch.is_empty() {
        return Ok(());
    }
    let DbConn::Postgres(pg) = conn else {
        for (dossier, issuer) in batch {
            dossier.insert(conn, delta)?;
            if let Some(issuer) = issuer {
                crate::integrity::record_issuer(conn, &dossier.token.hash(), issuer)?;
            }
        }
        return Ok(());
    };
    let pg: &mut diesel::PgConnection = pg;
    // Unique keys in one order, so that two instances registering the same dossiers wait for
    // each other instead of deadlocking.
    let mut batch: Vec<_> = batch.to_vec();
    batch.sort_by(|a, b| {
        (&a.0.unit_id, &a.0.request.dossier_code).cmp(&(&b.0.unit_id, &b.0.request.dossier_code))
    });
    let text = |f: fn(&NewDossier) -> &str| batch.iter().map(|(d, _)| f(d)).collect();
    SetStatement::<InsertTransactions>::new(vec![
        Column::Text(text(|d| &d.id)),
        Column::Text(text(|d| &d.unit_id)),
        Column::Text(text(|d| &d.request.dossier_code)),
        Column::Text(text(|d| &d.procedure_id)),
        Column::Time(batch.iter().map(|(d, _)| d.request.received_at).collect()),
        Column::NullTime(batch.iter().map(|(d, _)| d.request.due_at).collect()),
        Column::Time(batch.iter().map(|(d, _)| d.request.completed_at).collect()),
        Column::NullText(
            batch
                .iter()
                .map(|(d, _)| d.request.email.as_deref())
                .collect(),
        ),
        Column::Text(text(|d| &d.form_code)),
        Column::Int(batch.iter().map(|(d, _)| d.form_version).collect()),
        Column::Time(batch.iter().map(|(d, _)| d.now).collect()),
    ])
    .execute(pg)?;
    let hashes: Vec<String> = batch.iter().map(|(d, _)| d.token.hash()).collect();
    SetStatement::<InsertTokens>::new(vec![
        Column::Text(hashes.iter().map(String::as_str).collect()),
        Column::Text(text(|d| &d.id)),
        Column::Text(text(|d| &d.unit_id)),
        Column::Text(text(|d| &d.procedure_id)),
        Column::Text(text(|d| &d.form_code)),
        Column::Int(batch.iter().map(|(d, _)| d.form_version).collect()),
        Column::Time(batch.iter().map(|(d, _)| d.now).collect()),
        Column::Time(batch.iter().map(|(d, _)| d.expires_at).collect()),
        Column::NullText(
            batch
                .iter()
                .map(|(_, i)| i.map(|i| i.network.as_str()))
                .collect(),
        ),
        Column::NullText(
            batch
                .iter()
                .map(|(_, i)| i.map(|i| i.device.as_str()))
                .collect(),
        ),
    ])
    .execute(pg)?;
    // The invitation and reminder in the same transaction, as in `NewDossier::insert`.
    let mail: Vec<_> = batch
        .iter()
        .filter(|(d, _)| d.request.email.is_some() && d.invitations)
        .flat_map(|(d, _)| {
            crate::mail::outbox::rows_for(
                &d.id,
                &d.unit_id,
                d.now,
                d.expires_at,
                d.reminder_before,
                &d.mail_host,
            )
        })
        .collect();
    if !mail.is_empty() {
        diesel::insert_into(crate::db::schema::outbox::table)
            .values(&mail)
            .execute(pg)?;
    }
    for (d, _) in &batch {
        d.insert_counter_channels(conn)?;
    }
    for (d, _) in &batch {
        let change = DossierChange::of_dossier(d.request.completed_at, d.request.due_at, None);
        delta.add_dossier(&d.unit_id, d.request.completed_at, d.utc_offset, change);
    }
    Ok(())
}

fn find_existing(
    conn: &mut DbConn,
    secret: &ServerSecret,
    unit_id: &str,
    dossier_code: &str,
) -> AppResult<Option<IssuedSurvey>> {
    let row: Option<(String, String, i64, NaiveDateTime)> = db_run!(conn: {
        transactions::table
            .inner_join(survey_tokens::table.on(survey_tokens::transaction_id.eq(transactions::id.nullable())))
            .filter(transactions::unit_id.eq(unit_id))
            .filter(transactions::dossier_code.eq(dossier_code))
            .select((transactions::id, transactions::form_code, transactions::form_version, survey_tokens::expires_at))
            .first(conn)
            .optional()
    })?;
    Ok(row.map(|(id, form, form_version, expires_at)| {
        ExistingDossier {
            id,
            form,
            form_version,
            expires_at,
        }
        .issued(secret)
    }))
}

/// A dossier already registered under the same unit and dossier code (a counter system
/// retrying): answered with the same link.
struct ExistingDossier {
    id: String,
    form: String,
    form_version: i64,
    expires_at: NaiveDateTime,
}

impl ExistingDossier {
    fn issued(self, secret: &ServerSecret) -> IssuedSurvey {
        IssuedSurvey {
            token: SurveyToken::for_transaction(secret, &self.id)
                .as_str()
                .to_string(),
            transaction_id: self.id,
            expires_at: self.expires_at.and_utc(),
            form: self.form,
            form_version: self.form_version,
            created: false,
        }
    }
}

/// A procedure as a registration needs it: its id, and whether it is still offered.
struct ProcedureRef {
    id: String,
    active: bool,
}

type CatalogueReads = (units::Unit, Option<ProcedureRef>, Option<ExistingDossier>);

/// What a registration reads from the catalogue, in one statement (on PostgreSQL every
/// statement is a round trip): the unit of that code, the procedure of that code if there is
/// one, and a dossier already registered under that unit and dossier code. `None`: no unit.
fn catalogue_reads(
    conn: &mut DbConn,
    unit_code: &str,
    procedure_code: &str,
    dossier_code: &str,
) -> QueryResult<Option<CatalogueReads>> {
    use crate::db::schema::{procedures as procedures_t, units as units_t};
    type Row = (
        units::Unit,
        Option<String>,
        Option<bool>,
        Option<String>,
        Option<String>,
        Option<i64>,
        Option<NaiveDateTime>,
    );
    // The codes are bound as owned strings: diesel keeps a statement with binds in its join
    // conditions in the prepared-statement cache only when they own their values.
    let row: Option<Row> = db_run!(conn: {
        units_t::table
            .left_join(procedures_t::table.on(procedures_t::code.eq(procedure_code.to_owned())))
            .left_join(
                transactions::table.on(transactions::unit_id
                    .eq(units_t::id)
                    .and(transactions::dossier_code.eq(dossier_code.to_owned()))),
            )
            .left_join(
                survey_tokens::table
                    .on(survey_tokens::transaction_id.eq(transactions::id.nullable())),
            )
            .filter(units_t::code.eq(unit_code))
            .select((
                units::Unit::as_select(),
                procedures_t::id.nullable(),
                procedures_t::active.nullable(),
                transactions::id.nullable(),
                transactions::form_code.nullable(),
                transactions::form_version.nullable(),
                survey_tokens::expires_at.nullable(),
            ))
            .first(conn)
            .optional()
    })?;
    Ok(row.map(
        |(unit, procedure_id, active, id, form, form_version, expires_at)| {
            let procedure = procedure_id.map(|id| ProcedureRef {
                id,
                active: active.unwrap_or(false),
            });
            let existing = match (id, form, form_version, expires_at) {
                (Some(id), Some(form), Some(form_version), Some(expires_at)) => {
                    Some(ExistingDossier {
                        id,
                        form,
                        form_version,
                        expires_at,
                    })
                }
                _ => None,
            };
            (unit, procedure, existing)
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> NaiveDateTime {
        DateTime::parse_from_rfc3339("2026-11-25T10:00:00+07:00")
            .unwrap()
            .naive_utc()
    }

    fn valid() -> Value {
        json!({
            "unit": "SO-TU-PHAP", "dossier_code": "000.00.15.H12-261125-0001", "procedure": "LLTP-01",
            "received_at": "2026-11-20T08:00:00+07:00", "completed_at": "2026-11-25T09:00:00+07:00",
            "due_at": "2026-11-27T17:00:00+07:00", "email": "dan@example.vn"
        })
    }

    fn field_of(e: AppError) -> String {
        match e {
            AppError::InvalidField { field, .. } => field,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn a_valid_request_parses_to_utc() {
        let r = TransactionRequest::from_json(&valid(), now()).unwrap();
        assert_eq!(r.received_at.to_string(), "2026-11-20 01:00:00");
        assert_eq!(r.email.as_deref(), Some("dan@example.vn"));
        assert_eq!(r.form, None);
    }

    #[test]
    fn each_bad_field_is_named() {
        let cases = [
            ("unit", json!(null)),
            ("dossier_code", json!("has space")),
            ("procedure", json!(42)),
            ("received_at", json!("yesterday")),
            ("completed_at", json!("2026-11-19T08:00:00+07:00")),
            ("due_at", json!("2026-11-01T08:00:00+07:00")),
            ("email", json!("not-an-address")),
        ];
        for (field, value) in cases {
            let mut body = valid();
            body[field] = value;
            assert_eq!(
                field_of(TransactionRequest::from_json(&body, now()).unwrap_err()),
                field
            );
        }
        assert_eq!(
            field_of(TransactionRequest::from_json(&json!([1]), now()).unwrap_err()),
            "body"
        );
    }
}
