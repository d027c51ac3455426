//! The response-level export for administrators: every response of a form and period as CSV,
//! streamed page by page so memory stays flat however many rows there are.

use std::collections::HashMap;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Deserialize;

use super::AppState;
use crate::db::DbPool;
use crate::db::schema::{procedures, responses, units};
use crate::db_run;
use crate::error::AppError;
use crate::i18n::Msg;
use crate::report::export::BOM;
use crate::report::period::Period;
use crate::survey::stored;

const PAGE: i64 = 2000;

#[derive(Deserialize)]
pub struct ExportQuery {
    form: Option<String>,
    period: Option<String>,
}

type Row = (
    String,
    String,
    Option<String>,
    i64,
    String,
    Option<String>,
    String,
    NaiveDateTime,
    String,
);

struct Cursor {
    pool: DbPool,
    form: String,
    questions: Vec<String>,
    from: NaiveDateTime,
    until: NaiveDateTime,
    after: Option<(NaiveDateTime, String)>,
    unit_codes: HashMap<String, String>,
    procedure_codes: HashMap<String, String>,
    done: bool,
}

fn cell(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Reads the next page and renders it as CSV lines; `None` when finished.
fn next_page(c: &mut Cursor) -> anyhow::Result<Option<String>> {
    if c.done {
        return Ok(None);
    }
    let conn = &mut c.pool.get()?;
    let (form, from, until, after) = (c.form.clone(), c.from, c.until, c.after.clone());
    let rows: Vec<Row> = db_run!(conn: {
        let mut q = responses::table
            .filter(responses::form_code.eq(&form))
            .filter(responses::status.eq("counted"))
            .filter(responses::submitted_at.ge(from))
            .filter(responses::submitted_at.lt(until))
            .into_boxed();
        if let Some((at, id)) = &after {
            q = q.filter(responses::submitted_at.gt(*at).or(responses::submitted_at.eq(*at).and(responses::id.gt(id.clone()))));
        }
        q.order((responses::submitted_at.asc(), responses::id.asc()))
            .limit(PAGE)
            .select((
                responses::id, responses::unit_id, responses::procedure_id, responses::form_version,
                responses::channel, responses::respondent_type, responses::language, responses::submitted_at,
                responses::answers,
            ))
            .load(conn)
    })?;
    if rows.len() < PAGE as usize {
        c.done = true;
    }
    let Some(last) = rows.last() else {
        return Ok(None);
    };
    c.after = Some((last.7, last.0.clone()));
    let mut out = String::with_capacity(rows.len() * 200);
    for (id, unit, procedure, version, channel, kind, language, at, stored) in &rows {
        let mut line = vec![
            id.clone(),
            c.unit_codes.get(unit).cloned().unwrap_or_default(),
            procedure
                .as_ref()
                .and_then(|p| c.procedure_codes.get(p))
                .cloned()
                .unwrap_or_default(),
            c.form.clone(),
            version.to_string(),
            channel.clone(),
            kind.clone().unwrap_or_default(),
            language.clone(),
            at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        ];
        let answers: HashMap<String, String> = stored::decode(stored)
            .map_err(|e| anyhow::anyhow!("stored answers of {id} unreadable: {e}"))?
            .into_iter()
            .map(|(q, n, t)| (q, t.or(n.map(|v| v.to_string())).unwrap_or_default()))
            .collect();
        for q in &c.questions {
            line.push(answers.get(q).map(|v| cell(v)).unwrap_or_default());
        }
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    Ok(Some(out))
}

pub async fn responses_csv(
    state: web::Data<AppState>,
    q: web::Query<ExportQuery>,
) -> Result<HttpResponse, AppError> {
    let form_code = q.form.clone().unwrap_or_else(|| "sipas".into());
    let form = state.forms.latest(&form_code).ok_or_else(|| {
        AppError::field("form", Msg::new("Không có mẫu phiếu này.", "No such form."))
    })?;
    let period_text = q.period.clone().unwrap_or_else(|| {
        crate::survey::rollup::local_day(crate::db::now(), offset_of(&state))
            .format("%Y")
            .to_string()
    });
    let period = Period::parse(&period_text).ok_or_else(|| {
        AppError::field("period", Msg::new("Kỳ không hợp lệ.", "Invalid period."))
    })?;
    let offset =
        chrono::Duration::seconds(state.settings.utc_offset_value()?.local_minus_utc().into());
    let from = period.from.and_hms_opt(0, 0, 0).unwrap_or_default() - offset;
    let until = period
        .to
        .succ_opt()
        .unwrap_or(period.to)
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        - offset;
    let (unit_codes, procedure_codes) = state
        .with_conn(|conn| {
            Ok(db_run!(conn: {
                let u: Vec<(String, String)> = units::table.select((units::id, units::code)).load(conn)?;
                let p: Vec<(String, String)> = procedures::table.select((procedures::id, procedures::code)).load(conn)?;
                QueryResult::Ok((u.into_iter().collect::<HashMap<_, _>>(), p.into_iter().collect::<HashMap<_, _>>()))
            })?)
        })
        .await?;
    let questions: Vec<String> = form.questions().map(|q| q.code.clone()).collect();
    let mut header_line = vec![
        "response_id",
        "unit",
        "procedure",
        "form",
        "form_version",
        "channel",
        "respondent_type",
        "language",
        "submitted_at_utc",
    ]
    .into_iter()
    .map(String::from)
    .collect::<Vec<_>>();
    header_line.extend(questions.iter().cloned());
    let head = format!("{BOM}{}\r\n", header_line.join(","));
    let cursor = Cursor {
        pool: state.pool.clone(),
        form: form.code.clone(),
        questions,
        from,
        until,
        after: None,
        unit_codes,
        procedure_codes,
        done: false,
    };
    let pages = futures_util::stream::unfold(cursor, |mut cursor| async move {
        let result = web::block(move || {
            let page = next_page(&mut cursor);
            (cursor, page)
        })
        .await;
        match result {
            Ok((cursor, Ok(Some(text)))) => {
                Some((Ok::<_, actix_web::Error>(web::Bytes::from(text)), cursor))
            }
            Ok((_, Ok(None))) => None,
            Ok((_, Err(e))) => {
                tracing::error!(error = format!("{e:#}"), "response export failed");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "response export failed");
                None
            }
        }
    });
    use futures_util::StreamExt;
    let body =
        futures_util::stream::once(
            async move { Ok::<_, actix_web::Error>(web::Bytes::from(head)) },
        )
        .chain(pages);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"sipas-responses-{}-{}.csv\"",
                form.code,
                period.label()
            ),
        ))
        .streaming(body))
}

fn offset_of(state: &AppState) -> chrono::FixedOffset {
    state
        .settings
        .utc_offset_value()
        .unwrap_or(chrono::FixedOffset::east_opt(0).expect("UTC"))
}
