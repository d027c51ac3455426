//! Offline token books: a unit gets a book of N printed stickers, each a survey QR with a
//! serial, to hand out when the network is down or the receipt was printed before the survey
//! existed. Stickers are never stored when issued (see `survey::book_token`): a sticker becomes
//! a row of `book_stickers` when it is answered (in the same group commit as the answer) or when
//! the counter software attaches it to a dossier, whichever comes first. A revoked book's unused
//! stickers are refused.

use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde_json::json;

use crate::accounts::users::User;
use crate::db::DbConn;
use crate::db::schema::{book_stickers, token_books, transactions};
use crate::db::statements::RateDossier;
use crate::db_run;
use crate::error::{AppError, AppResult};
use crate::forms::FormRegistry;
use crate::i18n::Msg;
use crate::rollup::{DossierChange, RollupDelta};
use crate::secret::ServerSecret;
use crate::survey::book_token::StickerRef;
use crate::survey::lookup::Sticker;
use crate::survey::response::{Submission, SubmitOutcome, UNSATISFIED_RATING};
use crate::survey::token::SurveyToken;
use crate::units::{self, Unit};

/// The most stickers one book holds (a few A4 sheets more would be a box, not a book).
pub const MAX_BOOK_SIZE: i64 = 1000;
/// How long a book's stickers can be answered: books are printed ahead and used for months.
pub const BOOK_VALIDITY: Duration = Duration::days(366);

/// A book as staff see it, with how many of its stickers were answered and attached.
#[derive(Debug, Clone)]
pub struct BookEntry {
    pub id: String,
    pub number: i64,
    pub unit_id: String,
    pub size: i64,
    pub form_code: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
    pub answered: i64,
    pub attached: i64,
}

type BookRow = (
    String,
    i64,
    String,
    i64,
    String,
    NaiveDateTime,
    NaiveDateTime,
    Option<NaiveDateTime>,
);

fn entry(row: BookRow, answered: i64, attached: i64) -> BookEntry {
    let (id, number, unit_id, size, form_code, created_at, expires_at, revoked_at) = row;
    BookEntry {
        id,
        number,
        unit_id,
        size,
        form_code,
        created_at,
        expires_at,
        revoked_at,
        answered,
        attached,
    }
}

/// The books of `unit_id`, newest first.
pub fn list(conn: &mut DbConn, unit_id: &str) -> QueryResult<Vec<BookEntry>> {
    let rows: Vec<BookRow> = db_run!(conn: {
        token_books::table
            .filter(token_books::unit_id.eq(unit_id))
            .order(token_books::number.desc())
            .select((token_books::id, token_books::number, token_books::unit_id, token_books::size,
                     token_books::form_code, token_books::created_at, token_books::expires_at,
                     token_books::revoked_at))
            .load(conn)
    })?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let (answered, attached) = usage(conn, &row.0)?;
        out.push(entry(row, answered, attached));
    }
    Ok(out)
}

/// How many stickers of a book were answered, and attached to a dossier.
fn usage(conn: &mut DbConn, book_id: &str) -> QueryResult<(i64, i64)> {
    db_run!(conn: {
        let answered: i64 = book_stickers::table
            .filter(book_stickers::book_id.eq(book_id))
            .filter(book_stickers::answered_at.is_not_null())
            .count()
            .get_result(conn)?;
        let attached: i64 = book_stickers::table
            .filter(book_stickers::book_id.eq(book_id))
            .filter(book_stickers::transaction_id.is_not_null())
            .count()
            .get_result(conn)?;
        QueryResult::Ok((answered, attached))
    })
}

pub fn find(conn: &mut DbConn, book_id: &str) -> QueryResult<Option<BookEntry>> {
    let row: Option<BookRow> = db_run!(conn: {
        token_books::table
            .find(book_id)
            .select((token_books::id, token_books::number, token_books::unit_id, token_books::size,
                     token_books::form_code, token_books::created_at, token_books::expires_at,
                     token_books::revoked_at))
            .first(conn)
            .optional()
    })?;
    match row {
        Some(row) => {
            let (answered, attached) = usage(conn, &row.0)?;
            Ok(Some(entry(row, answered, attached)))
        }
        None => Ok(None),
    }
}

/// Creates a book of `size` stickers for `unit`, numbered after the last book: call inside a
/// write transaction.
fn create(
    conn: &mut DbConn,
    unit: &Unit,
    form: (&str, i64),
    size: i64,
    created_by: &str,
    now: NaiveDateTime,
) -> QueryResult<BookEntry> {
    let last: Option<i64> = db_run!(conn: {
        token_books::table.select(diesel::dsl::max(token_books::number)).first(conn)
    })?;
    let id = uuid::Uuid::now_v7().to_string();
    let number = last.unwrap_or(0) + 1;
    let expires_at = now + BOOK_VALIDITY;
    db_run!(conn: {
        diesel::insert_into(token_books::table)
            .values((
                token_books::id.eq(&id),
                token_books::number.eq(number),
                token_books::unit_id.eq(&unit.id),
                token_books::form_code.eq(form.0),
                token_books::form_version.eq(form.1),
                token_books::size.eq(size),
                token_books::created_by.eq(created_by),
                token_books::created_at.eq(now),
                token_books::expires_at.eq(expires_at),
            ))
            .execute(conn)
    })?;
    Ok(BookEntry {
        id,
        number,
        unit_id: unit.id.clone(),
        size,
        form_code: form.0.to_string(),
        created_at: now,
        expires_at,
        revoked_at: None,
        answered: 0,
        attached: 0,
    })
}

/// What staff ask of a unit's books.
pub enum BookAction {
    /// Issue a new book of this many stickers (as typed).
    Issue(String),
    Revoke(String),
}

/// The unit's books page: its books, and the book just issued or revoked.
pub struct BooksPage {
    pub unit: Unit,
    pub books: Vec<BookEntry>,
    pub issued: Option<BookEntry>,
    pub revoked: bool,
}

/// Which form a new book's stickers open: the unit's counter form, else the default.
pub struct BookPolicy<'a> {
    pub forms: &'a FormRegistry,
    pub default_form: &'a str,
}

fn no_such_book() -> AppError {
    AppError::NotFound(Msg::new("Không có sổ phiếu này.", "No such token book."))
}

/// Shows (and with an `action`, changes) the token books of `unit_id`; administrators for
/// every unit, agencies for the units in their scope; issuing and revoking are audited.
pub fn books(
    conn: &mut DbConn,
    viewer: &User,
    policy: &BookPolicy,
    unit_id: &str,
    action: Option<BookAction>,
) -> AppResult<BooksPage> {
    let unit = super::staff::visible_unit(conn, viewer, unit_id)?;
    let now = crate::db::now();
    let actor = viewer.actor();
    let mut issued = None;
    let mut revoked = false;
    match action {
        None => {}
        Some(BookAction::Issue(size)) => {
            let size: i64 = size
                .trim()
                .parse()
                .ok()
                .filter(|n| (1..=MAX_BOOK_SIZE).contains(n))
                .ok_or_else(|| {
                    AppError::field(
                        "size",
                        Msg::new(
                            format!("Số tem trong sổ phải từ 1 đến {MAX_BOOK_SIZE}."),
                            format!("A book holds from 1 to {MAX_BOOK_SIZE} stickers."),
                        ),
                    )
                })?;
            let code = unit
                .counter_form
                .clone()
                .unwrap_or_else(|| policy.default_form.to_string());
            let form = policy.forms.latest(&code).ok_or_else(|| {
                AppError::Internal(anyhow::anyhow!("the counter form {code} is not loaded"))
            })?;
            let book = conn.write_transaction(|conn| {
                let book = create(
                    conn,
                    &unit,
                    (&form.code, form.version),
                    size,
                    &viewer.id,
                    now,
                )?;
                crate::audit::record(
                    conn,
                    &actor,
                    "counter.issue_book",
                    "token_book",
                    &book.id,
                    None,
                    Some(json!({ "unit_id": unit.id, "number": book.number, "size": size })),
                )?;
                diesel::QueryResult::Ok(book)
            })?;
            issued = Some(book);
        }
        Some(BookAction::Revoke(book_id)) => {
            revoked = conn.write_transaction(|conn| {
                let n = db_run!(conn: {
                    diesel::update(
                        token_books::table
                            .find(&book_id)
                            .filter(token_books::unit_id.eq(&unit.id))
                            .filter(token_books::revoked_at.is_null()),
                    )
                    .set(token_books::revoked_at.eq(Some(now)))
                    .execute(conn)
                })?;
                if n == 1 {
                    crate::audit::record(
                        conn,
                        &actor,
                        "counter.revoke_book",
                        "token_book",
                        &book_id,
                        None,
                        Some(json!({ "unit_id": unit.id, "revoked_at": now })),
                    )?;
                }
                diesel::QueryResult::Ok(n == 1)
            })?;
            if !revoked {
                return Err(no_such_book());
            }
        }
    }
    let books = list(conn, &unit.id)?;
    Ok(BooksPage {
        unit,
        books,
        issued,
        revoked,
    })
}

/// One printed sticker: its serial and the survey token of its QR.
pub struct PrintedSticker {
    pub label: String,
    pub token: SurveyToken,
}

/// A book's stickers, for printing (the book must be the viewer's to see).
pub fn sheet(
    conn: &mut DbConn,
    viewer: &User,
    secret: &ServerSecret,
    unit_id: &str,
    book_id: &str,
) -> AppResult<(Unit, BookEntry, Vec<PrintedSticker>)> {
    let unit = super::staff::visible_unit(conn, viewer, unit_id)?;
    let book = find(conn, book_id)?
        .filter(|b| b.unit_id == unit.id)
        .ok_or_else(no_such_book)?;
    let number = u32::try_from(book.number)
        .map_err(|_| AppError::Internal(anyhow::anyhow!("book number out of range")))?;
    let stickers = (1..=book.size)
        .filter_map(|serial| u32::try_from(serial).ok())
        .map(|serial| {
            let sticker = StickerRef {
                book_number: number,
                serial,
            };
            PrintedSticker {
                label: sticker.label(),
                token: sticker.token(secret, &unit.id),
            }
        })
        .collect();
    Ok((unit, book, stickers))
}

/// What became of a sticker's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StickerOutcome {
    Stored,
    /// Answered before (by this sticker's first answer).
    Used,
    /// The book was revoked after the page was opened.
    Revoked,
}

/// Stores the answer of a book sticker: inside a job of the group commit (see
/// `ResponseWriter::run`), so the sticker is spent in the same commit as the answer. The
/// sticker's row is claimed first; a second answer finds it answered. When the counter
/// software attached the sticker to a dossier, the answer's overall rating (`overall`, for a
/// Decision 766 dossier form) rates that dossier; otherwise it is kept for a later attachment.
pub fn store_answer(
    conn: &mut DbConn,
    delta: &mut RollupDelta,
    mut submission: Submission,
    sticker: &Sticker,
    overall: Option<i64>,
    utc_offset: chrono::FixedOffset,
) -> QueryResult<StickerOutcome> {
    let now = submission.response.submitted_at;
    let open: Option<Option<NaiveDateTime>> = db_run!(conn: {
        token_books::table.find(&sticker.book_id).select(token_books::revoked_at).first(conn).optional()
    })?;
    if !matches!(open, Some(None)) {
        return Ok(StickerOutcome::Revoked);
    }
    let attached: Option<String> = db_run!(conn: {
        diesel::insert_into(book_stickers::table)
            .values((book_stickers::book_id.eq(&sticker.book_id), book_stickers::serial.eq(sticker.serial)))
            .on_conflict((book_stickers::book_id, book_stickers::serial))
            .do_nothing()
            .execute(conn)?;
        let claimed = diesel::update(
            book_stickers::table
                .find((&sticker.book_id, sticker.serial))
                .filter(book_stickers::answered_at.is_null()),
        )
        .set((
            book_stickers::answered_at.eq(Some(now)),
            book_stickers::response_id.eq(Some(&submission.response.id)),
            book_stickers::rating.eq(overall),
        ))
        .execute(conn)?;
        if claimed == 0 {
            return Ok(StickerOutcome::Used);
        }
        book_stickers::table
            .find((&sticker.book_id, sticker.serial))
            .select(book_stickers::transaction_id)
            .first::<Option<String>>(conn)
    })?;
    if let Some(transaction_id) = attached {
        let procedure: Option<String> = db_run!(conn: {
            transactions::table.find(&transaction_id).select(transactions::procedure_id).first(conn).optional()
        })?;
        submission.response.procedure_id = procedure;
        submission.dossier_rating = overall.map(|level| (transaction_id.clone(), level));
        submission.transaction_id = Some(transaction_id);
    }
    submission.token_hash = None;
    match crate::survey::store::store_claimed(conn, delta, &submission, utc_offset)? {
        SubmitOutcome::Stored => Ok(StickerOutcome::Stored),
        SubmitOutcome::AlreadyUsed | SubmitOutcome::Expired => Ok(StickerOutcome::Used),
    }
}

/// The counter software's request: this sticker went with this dossier.
#[derive(Debug, Clone)]
pub struct AttachRequest {
    /// The unit's code, as in registrations.
    pub unit: String,
    pub dossier_code: String,
    /// The printed serial (`S12-0042`), the sticker's token, or its whole survey URL.
    pub sticker: String,
}

/// What an attachment did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Attached {
    pub sticker: String,
    pub transaction_id: String,
    /// Whether the sticker was already answered.
    pub answered: bool,
    /// Whether the dossier got its Decision 766 rating from that answer now.
    pub rated: bool,
}

fn sticker_field(vi: &str, en: &str) -> AppError {
    AppError::field("sticker", Msg::new(vi, en))
}

/// Reads a sticker as the counter software may send it; `None` when it is not one.
fn read_sticker(text: &str) -> Option<(StickerRef, Option<[u8; 8]>)> {
    if let Some(sticker) = StickerRef::parse_label(text) {
        return Some((sticker, None));
    }
    // A token, or a survey URL ending in one (query string and slashes left out).
    let token = text
        .split(['?', '#'])
        .next()?
        .trim_end_matches('/')
        .rsplit('/')
        .next()?;
    let (sticker, tag) = StickerRef::claimed(&SurveyToken::parse(token)?)?;
    Some((sticker, Some(tag)))
}

/// Attaches a sticker to a registered dossier of the key's scope; when the sticker was
/// already answered, its rating now reaches the dossier (Decision 766), counted in `delta`.
/// Inside a job of the group commit. Attaching the same sticker to the same dossier again
/// changes nothing; to another dossier, or a second sticker to one dossier, is a conflict.
pub fn attach(
    conn: &mut DbConn,
    delta: &mut RollupDelta,
    secret: &ServerSecret,
    key_unit_id: &str,
    request: &AttachRequest,
    now: NaiveDateTime,
    utc_offset: chrono::FixedOffset,
) -> AppResult<Attached> {
    let unit = units::find_by_code(conn, &request.unit)?.ok_or_else(|| {
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
    let dossier: Option<(String, NaiveDateTime, Option<NaiveDateTime>)> = db_run!(conn: {
        transactions::table
            .filter(transactions::unit_id.eq(&unit.id))
            .filter(transactions::dossier_code.eq(&request.dossier_code))
            .select((transactions::id, transactions::completed_at, transactions::due_at))
            .first(conn)
            .optional()
    })?;
    let Some((transaction_id, completed_at, due_at)) = dossier else {
        return Err(AppError::field(
            "dossier_code",
            Msg::new(
                "Đơn vị chưa đăng ký hồ sơ này (POST /api/v1/transactions).",
                "The unit has not registered this dossier (POST /api/v1/transactions).",
            ),
        ));
    };
    let unknown = || {
        sticker_field(
            "Không nhận ra tem này: hãy gửi số sê-ri in trên tem (ví dụ S12-0042) hoặc mã trong QR.",
            "Unknown sticker: send the serial printed on it (e.g. S12-0042) or the code in its QR.",
        )
    };
    let (sticker, tag) = read_sticker(&request.sticker).ok_or_else(unknown)?;
    let book: Option<(String, String, i64, Option<NaiveDateTime>)> = db_run!(conn: {
        token_books::table
            .filter(token_books::number.eq(i64::from(sticker.book_number)))
            .select((token_books::id, token_books::unit_id, token_books::size, token_books::revoked_at))
            .first(conn)
            .optional()
    })?;
    let Some((book_id, book_unit, size, revoked_at)) = book else {
        return Err(unknown());
    };
    let serial = i64::from(sticker.serial);
    if serial > size || tag.is_some_and(|tag| !sticker.verify(secret, &book_unit, &tag)) {
        return Err(unknown());
    }
    if book_unit != unit.id {
        return Err(sticker_field(
            "Tem này thuộc sổ phiếu của đơn vị khác.",
            "This sticker belongs to another unit's book.",
        ));
    }
    if revoked_at.is_some() {
        return Err(AppError::Gone(Msg::new(
            "Sổ phiếu chứa tem này đã bị thu hồi.",
            "The book of this sticker has been revoked.",
        )));
    }
    let label = sticker.label();
    let conflict = |vi: &str, en: &str| AppError::Conflict(Msg::new(vi, en));
    let other: Option<(String, i64)> = db_run!(conn: {
        book_stickers::table
            .filter(book_stickers::transaction_id.eq(&transaction_id))
            .select((book_stickers::book_id, book_stickers::serial))
            .first(conn)
            .optional()
    })?;
    if other.is_some_and(|(b, s)| b != book_id || s != serial) {
        return Err(conflict(
            "Hồ sơ này đã được gắn với một tem khác.",
            "This dossier is already attached to another sticker.",
        ));
    }
    let row: (Option<String>, Option<i64>, Option<NaiveDateTime>) = db_run!(conn: {
        diesel::insert_into(book_stickers::table)
            .values((book_stickers::book_id.eq(&book_id), book_stickers::serial.eq(serial)))
            .on_conflict((book_stickers::book_id, book_stickers::serial))
            .do_nothing()
            .execute(conn)?;
        book_stickers::table
            .find((&book_id, serial))
            .select((book_stickers::transaction_id, book_stickers::rating, book_stickers::answered_at))
            .first(conn)
    })?;
    let (attached_to, rating, answered_at) = row;
    match attached_to {
        Some(other) if other != transaction_id => {
            return Err(conflict(
                "Tem này đã được gắn với một hồ sơ khác.",
                "This sticker is already attached to another dossier.",
            ));
        }
        Some(_) => {
            return Ok(Attached {
                sticker: label,
                transaction_id,
                answered: answered_at.is_some(),
                rated: false,
            });
        }
        None => {}
    }
    db_run!(conn: {
        diesel::update(book_stickers::table.find((&book_id, serial)))
            .set((
                book_stickers::transaction_id.eq(Some(&transaction_id)),
                book_stickers::attached_at.eq(Some(now)),
            ))
            .execute(conn)
    })?;
    let mut rated = false;
    if let (Some(_), Some(rating)) = (answered_at, rating) {
        let updated: Option<(String, NaiveDateTime, Option<NaiveDateTime>)> = db_run!(conn: {
            RateDossier { transaction_id: &transaction_id, rating }.get_result(conn).optional()
        })?;
        if updated.is_some() {
            rated = true;
            let unsatisfied = i64::from(rating == UNSATISFIED_RATING);
            let late = due_at.is_some_and(|due| completed_at > due);
            let change = DossierChange {
                rated_unsatisfied: unsatisfied,
                unsatisfied_or_late: if late { 0 } else { unsatisfied },
                ..DossierChange::default()
            };
            delta.add_dossier(&unit.id, completed_at, utc_offset, change);
        }
    }
    if answered_at.is_some() {
        // The citizen has answered: the dossier's invitations stop, as after any answer.
        crate::mail::outbox::stop_all(conn, &transaction_id)?;
    }
    Ok(Attached {
        sticker: label,
        transaction_id,
        answered: answered_at.is_some(),
        rated,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stickers_are_read_from_serials_tokens_and_urls() {
        let secret = ServerSecret::from_bytes(b"0123456789abcdef0123456789abcdef".to_vec());
        let s = StickerRef {
            book_number: 3,
            serial: 7,
        };
        assert_eq!(read_sticker("S3-0007"), Some((s, None)));
        let token = s.token(&secret, "u");
        let (read, tag) = read_sticker(token.as_str()).unwrap();
        assert_eq!(read, s);
        assert!(read.verify(&secret, "u", &tag.unwrap()));
        let url = format!("https://khaosat.example.vn/s/{}?via=qr", token.as_str());
        assert_eq!(read_sticker(&url).map(|r| r.0), Some(s));
        assert_eq!(read_sticker("nonsense"), None);
    }
}
