//! Finding out what a survey link is worth: open, already used, expired or unknown.

use std::sync::Arc;

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::book_token::StickerRef;
use super::token::SurveyToken;
use crate::db::DbConn;
use crate::db::schema::{
    book_stickers, procedures, response_signals, survey_tokens, token_books, units,
};
use crate::db_run;
use crate::forms::{Form, FormRegistry};
use crate::integrity::signals::RecentProbe;
use crate::secret::ServerSecret;

/// An unanswered, unexpired survey and what its page shows.
#[derive(Debug, Clone)]
pub struct OpenSurvey {
    pub token_hash: String,
    pub transaction_id: Option<String>,
    pub unit_id: String,
    pub unit_name_vi: String,
    pub unit_name_en: String,
    pub procedure_id: Option<String>,
    pub procedure_name_vi: Option<String>,
    pub procedure_name_en: Option<String>,
    pub form: Arc<Form>,
    pub issued_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    /// Keyed hashes of the counter that issued the link, for the integrity screening (read
    /// here so a submission costs one lookup).
    pub issuer_network: Option<String>,
    pub issuer_device: Option<String>,
    /// Set for a respondent group's campaign link (see `crate::groups`): answered apart from
    /// citizens.
    pub campaign_id: Option<String>,
    /// Set for a sticker of an offline token book (see `super::book_token`): its answer is
    /// stored with channel `book` and marks the sticker used.
    pub sticker: Option<Sticker>,
}

/// A book sticker being answered: its book, its serial, and the dossier it was attached to
/// (if the counter software told which one before the answer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sticker {
    pub book_id: String,
    pub serial: i64,
    pub label: String,
}

#[derive(Debug, Clone)]
pub enum TokenState {
    Open(Box<OpenSurvey>),
    Used,
    Expired,
    /// A campaign link already answered (its page says so in campaign terms).
    CampaignUsed,
    /// A campaign link after the campaign's end.
    CampaignExpired,
    /// A sticker of a token book that was revoked (lost or stolen book).
    Revoked,
    Unknown,
}

type Row = (
    String,
    Option<String>,
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    i64,
    NaiveDateTime,
    NaiveDateTime,
    Option<NaiveDateTime>,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Reads the state of `token` at `now`.
pub fn lookup(
    conn: &mut DbConn,
    forms: &FormRegistry,
    token: &SurveyToken,
    now: NaiveDateTime,
) -> anyhow::Result<TokenState> {
    // No address has an empty keyed hash: the probe's subquery finds nothing at once.
    let nobody = RecentProbe {
        network_hash: String::new(),
        since: now,
        need: 1,
    };
    Ok(read(conn, forms, token, now, &nobody)?.0)
}

/// Reads the state of `token` at `now` and, in the same statement, whether the submitter's
/// network reached the burst threshold (`probe`): an answer costs one read, which on
/// PostgreSQL is one round trip and one backend wake-up instead of two.
pub fn lookup_for_answer(
    conn: &mut DbConn,
    forms: &FormRegistry,
    token: &SurveyToken,
    now: NaiveDateTime,
    probe: &RecentProbe,
) -> anyhow::Result<(TokenState, bool)> {
    read(conn, forms, token, now, probe)
}

fn read(
    conn: &mut DbConn,
    forms: &FormRegistry,
    token: &SurveyToken,
    now: NaiveDateTime,
    probe: &RecentProbe,
) -> anyhow::Result<(TokenState, bool)> {
    let hash = token.hash();
    // The `need`-th earlier answer from the network in the window, if there is one: reading
    // at most `need` index entries, however busy the address.
    let nth_recent = response_signals::table
        .filter(response_signals::network_hash.eq(probe.network_hash.clone()))
        .filter(response_signals::submitted_at.ge(probe.since))
        .select(response_signals::submitted_at)
        .offset((probe.need - 1).max(0))
        .single_value();
    let row: Option<(Row, Option<NaiveDateTime>)> = db_run!(conn: {
        survey_tokens::table
            .inner_join(units::table.on(units::id.eq(survey_tokens::unit_id)))
            .left_join(procedures::table.on(procedures::id.nullable().eq(survey_tokens::procedure_id)))
            .filter(survey_tokens::token_hash.eq(&hash))
            .select((
                (
                    survey_tokens::token_hash,
                    survey_tokens::transaction_id,
                    survey_tokens::unit_id,
                    units::name_vi,
                    units::name_en,
                    survey_tokens::procedure_id,
                    procedures::name_vi.nullable(),
                    procedures::name_en.nullable(),
                    survey_tokens::form_code,
                    survey_tokens::form_version,
                    survey_tokens::issued_at,
                    survey_tokens::expires_at,
                    survey_tokens::spent_at,
                    survey_tokens::issuer_network,
                    survey_tokens::issuer_device,
                    survey_tokens::campaign_id,
                ),
                nth_recent.clone(),
            ))
            .first(conn)
            .optional()
    })?;
    let Some((row, nth_recent)) = row else {
        return Ok((TokenState::Unknown, false));
    };
    let recent_reached = probe.need <= 0 || nth_recent.is_some();
    let (
        token_hash,
        transaction_id,
        unit_id,
        unit_name_vi,
        unit_name_en,
        procedure_id,
        pvi,
        pen,
        form_code,
        version,
        issued_at,
        expires_at,
        spent_at,
        issuer_network,
        issuer_device,
        campaign_id,
    ) = row;
    if spent_at.is_some() {
        let state = match campaign_id {
            Some(_) => TokenState::CampaignUsed,
            None => TokenState::Used,
        };
        return Ok((state, recent_reached));
    }
    if expires_at <= now {
        let state = match campaign_id {
            Some(_) => TokenState::CampaignExpired,
            None => TokenState::Expired,
        };
        return Ok((state, recent_reached));
    }
    let form = forms.find(conn, &form_code, version)?.ok_or_else(|| {
        anyhow::anyhow!("form {form_code} v{version} of an issued token is not in the database")
    })?;
    let open = TokenState::Open(Box::new(OpenSurvey {
        token_hash,
        transaction_id,
        unit_id,
        unit_name_vi,
        unit_name_en,
        procedure_id,
        procedure_name_vi: pvi,
        procedure_name_en: pen,
        form,
        issued_at,
        expires_at,
        issuer_network,
        issuer_device,
        campaign_id,
        sticker: None,
    }));
    Ok((open, recent_reached))
}

/// Reads the state of `token` at `now`, a book sticker included: a token no link row knows may
/// be a sticker, checked by its signature (see `super::book_token`).
pub fn lookup_any(
    conn: &mut DbConn,
    forms: &FormRegistry,
    secret: &ServerSecret,
    token: &SurveyToken,
    now: NaiveDateTime,
) -> anyhow::Result<TokenState> {
    match lookup(conn, forms, token, now)? {
        TokenState::Unknown => lookup_sticker(conn, forms, secret, token, now),
        known => Ok(known),
    }
}

type BookRow = (
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    NaiveDateTime,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

/// The state of a book sticker: unknown unless its book exists and the signature matches the
/// book's unit; then revoked, used (answered), expired or open.
pub fn lookup_sticker(
    conn: &mut DbConn,
    forms: &FormRegistry,
    secret: &ServerSecret,
    token: &SurveyToken,
    now: NaiveDateTime,
) -> anyhow::Result<TokenState> {
    let Some((claimed, tag)) = StickerRef::claimed(token) else {
        return Ok(TokenState::Unknown);
    };
    let book: Option<BookRow> = db_run!(conn: {
        token_books::table
            .inner_join(units::table.on(units::id.eq(token_books::unit_id)))
            .filter(token_books::number.eq(i64::from(claimed.book_number)))
            .select((
                token_books::id,
                token_books::unit_id,
                units::name_vi,
                units::name_en,
                token_books::form_code,
                token_books::form_version,
                token_books::size,
                token_books::created_at,
                token_books::expires_at,
                token_books::revoked_at,
            ))
            .first(conn)
            .optional()
    })?;
    let Some((
        book_id,
        unit_id,
        unit_vi,
        unit_en,
        form_code,
        version,
        size,
        created_at,
        expires_at,
        revoked_at,
    )) = book
    else {
        return Ok(TokenState::Unknown);
    };
    let serial = i64::from(claimed.serial);
    if serial > size || !claimed.verify(secret, &unit_id, &tag) {
        return Ok(TokenState::Unknown);
    }
    if revoked_at.is_some() {
        return Ok(TokenState::Revoked);
    }
    let used: Option<Option<NaiveDateTime>> = db_run!(conn: {
        book_stickers::table
            .find((&book_id, serial))
            .select(book_stickers::answered_at)
            .first(conn)
            .optional()
    })?;
    if used.flatten().is_some() {
        return Ok(TokenState::Used);
    }
    if expires_at <= now {
        return Ok(TokenState::Expired);
    }
    let form = forms.find(conn, &form_code, version)?.ok_or_else(|| {
        anyhow::anyhow!("form {form_code} v{version} of a token book is not in the database")
    })?;
    Ok(TokenState::Open(Box::new(OpenSurvey {
        token_hash: token.hash(),
        transaction_id: None,
        unit_id,
        unit_name_vi: unit_vi,
        unit_name_en: unit_en,
        procedure_id: None,
        procedure_name_vi: None,
        procedure_name_en: None,
        form,
        issued_at: created_at,
        expires_at,
        issuer_network: None,
        issuer_device: None,
        campaign_id: None,
        sticker: Some(Sticker {
            book_id,
            serial,
            label: claimed.label(),
        }),
    })))
}

/// Whether the submitter's network reached the burst threshold (`probe`), read alone: for a
/// book sticker, whose link row does not exist before its answer.
pub fn recent_reached(conn: &mut DbConn, probe: &RecentProbe) -> diesel::QueryResult<bool> {
    if probe.need <= 0 {
        return Ok(true);
    }
    let nth: Option<NaiveDateTime> = db_run!(conn: {
        response_signals::table
            .filter(response_signals::network_hash.eq(&probe.network_hash))
            .filter(response_signals::submitted_at.ge(probe.since))
            .select(response_signals::submitted_at)
            .offset(probe.need - 1)
            .first(conn)
            .optional()
    })?;
    Ok(nth.is_some())
}

/// Whether a token was ever issued (used, expired or not): QR codes stay printable.
pub fn exists(conn: &mut DbConn, token_hash: &str) -> diesel::QueryResult<bool> {
    use diesel::dsl::exists as sql_exists;
    db_run!(conn: {
        diesel::select(sql_exists(survey_tokens::table.find(token_hash))).get_result(conn)
    })
}
