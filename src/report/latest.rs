//! Which period a page opens on when none is asked for: the latest one with data, so that a
//! first visit shows numbers rather than an empty current month.

use chrono::{Datelike, FixedOffset, NaiveDate};
use diesel::prelude::*;

use super::period::Period;
use crate::calendar::local_day;
use crate::db::DbConn;
use crate::db::schema::responses;
use crate::db_run;
use crate::survey::response::ResponseStatus;

/// The local day of the latest counted response submitted before `before` (UTC), if any.
fn latest_day_before(
    conn: &mut DbConn,
    before: Option<chrono::NaiveDateTime>,
    offset: FixedOffset,
) -> QueryResult<Option<NaiveDate>> {
    let latest: Option<chrono::NaiveDateTime> = db_run!(conn: {
        let mut q = responses::table
            .filter(responses::status.eq(ResponseStatus::Counted.as_str()))
            .into_boxed();
        if let Some(before) = before {
            q = q.filter(responses::submitted_at.lt(before));
        }
        q.select(diesel::dsl::max(responses::submitted_at)).first(conn)
    })?;
    Ok(latest.map(|at| local_day(at, offset)))
}

fn month_period(day: NaiveDate) -> Option<Period> {
    Period::parse(&format!("{:04}-{:02}", day.year(), day.month()))
}

/// The latest month with counted responses. A month still running is chosen only when no
/// earlier month has data: a finished month is the fairer picture (a week-old month has few
/// answers and wide intervals). `None` when nothing has been answered yet.
pub fn latest_month(
    conn: &mut DbConn,
    today: NaiveDate,
    offset: FixedOffset,
) -> QueryResult<Option<Period>> {
    let this_month = today.with_day(1).unwrap_or(today);
    let start_utc = this_month.and_hms_opt(0, 0, 0).map(|t| t - offset);
    let finished = latest_day_before(conn, start_utc, offset)?;
    let day = match finished {
        Some(day) => Some(day),
        None => latest_day_before(conn, None, offset)?,
    };
    Ok(day.and_then(month_period))
}

/// The year of the latest counted response (the reports' default period), or `None`.
pub fn latest_year(conn: &mut DbConn, offset: FixedOffset) -> QueryResult<Option<Period>> {
    Ok(latest_day_before(conn, None, offset)?
        .and_then(|day| Period::parse(&format!("{:04}", day.year()))))
}

/// The month `today` falls in: the fallback when nothing has been answered.
pub fn month_of(today: NaiveDate) -> Period {
    month_period(today).unwrap_or(Period {
        from: today,
        to: today,
    })
}

/// The error for a period text that does not parse.
pub fn bad_period() -> crate::error::AppError {
    crate::error::AppError::field(
        "period",
        crate::i18n::Msg::new(
            "Kỳ có dạng 2026, 2026-Q3, 2026-07 hoặc 2026-01-15..2026-03-31.",
            "The period looks like 2026, 2026-Q3, 2026-07 or 2026-01-15..2026-03-31.",
        ),
    )
}

/// The period asked for (`asked`, when not blank), else the latest month with data, else the
/// current month. A text that is not a period is a 422 naming the field.
pub fn chosen_or_latest_month(
    conn: &mut DbConn,
    asked: Option<&str>,
    today: NaiveDate,
    offset: FixedOffset,
) -> crate::error::AppResult<Period> {
    match asked.map(str::trim).filter(|t| !t.is_empty()) {
        Some(text) => Period::parse(text).ok_or_else(bad_period),
        None => Ok(latest_month(conn, today, offset)?.unwrap_or_else(|| month_of(today))),
    }
}
