//! Every response of a form and period as CSV rows, read page by page (keyset pagination on
//! submission time and id) so memory stays flat however many rows there are. The web export
//! streams these pages; the export benchmark reads them directly.

use std::collections::HashMap;
use std::fmt::Write as _;

use chrono::{Datelike, NaiveDateTime, Timelike};
use diesel::prelude::*;
use std::borrow::Cow;

use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::db::DbConn;
use crate::db::schema::{procedures, responses, units};
use crate::db_run;
use crate::forms::Form;
use crate::survey::response::ResponseStatus;

/// Rows read per query: large enough that the per-query cost vanishes, small enough that a
/// page's text stays well under a megabyte.
pub const PAGE: i64 = 2000;

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

/// Where an export is; each [`ResponseExport::next_page`] continues after the last row.
pub struct ResponseExport {
    form: String,
    questions: Vec<String>,
    column_of: HashMap<String, usize, foldhash::fast::RandomState>,
    from: NaiveDateTime,
    until: NaiveDateTime,
    after: Option<(NaiveDateTime, String)>,
    unit_codes: HashMap<String, String>,
    procedure_codes: HashMap<String, String>,
    done: bool,
    rows: u64,
    page_size: i64,
}

impl ResponseExport {
    /// Counted responses of `form` (every version) submitted in `[from, until)` (UTC).
    pub fn new(
        conn: &mut DbConn,
        form: &Form,
        from: NaiveDateTime,
        until: NaiveDateTime,
    ) -> QueryResult<Self> {
        let (unit_codes, procedure_codes) = db_run!(conn: {
            let u: Vec<(String, String)> = units::table.select((units::id, units::code)).load(conn)?;
            let p: Vec<(String, String)> = procedures::table.select((procedures::id, procedures::code)).load(conn)?;
            QueryResult::Ok((u.into_iter().collect(), p.into_iter().collect()))
        })?;
        let questions: Vec<String> = form.questions().map(|q| q.code.clone()).collect();
        let column_of = questions
            .iter()
            .enumerate()
            .map(|(i, q)| (q.clone(), i))
            .collect();
        Ok(Self {
            form: form.code.clone(),
            questions,
            column_of,
            from,
            until,
            after: None,
            unit_codes,
            procedure_codes,
            done: false,
            rows: 0,
            page_size: PAGE,
        })
    }

    /// Reads `rows` rows per query instead of [`PAGE`] (tests use tiny pages to cross page
    /// boundaries).
    pub fn page_size(mut self, rows: i64) -> Self {
        self.page_size = rows.max(1);
        self
    }

    /// The header line, after a byte order mark so that Excel reads UTF-8.
    pub fn header(&self) -> String {
        let mut line = format!(
            "{}response_id,unit,procedure,form,form_version,channel,respondent_type,language,submitted_at_utc",
            super::export::BOM
        );
        for q in &self.questions {
            line.push(',');
            line.push_str(q);
        }
        line.push_str("\r\n");
        line
    }

    /// Rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Reads the next page and renders it as CSV lines; `None` when finished.
    pub fn next_page(&mut self, conn: &mut DbConn) -> anyhow::Result<Option<String>> {
        if self.done {
            return Ok(None);
        }
        let (form, from, until, after) = (&self.form, self.from, self.until, &self.after);
        let page_size = self.page_size;
        let rows: Vec<Row> = db_run!(conn: {
            // One lower bound only (the period's start, then the last row's time): given two,
            // SQLite may seek with the earlier one and every page would rescan from the start.
            let start = after.as_ref().map_or(from, |(at, _)| *at);
            let mut q = responses::table
                .filter(responses::form_code.eq(form))
                .filter(responses::status.eq(ResponseStatus::Counted.as_str()))
                .filter(responses::submitted_at.ge(start))
                .filter(responses::submitted_at.lt(until))
                .into_boxed();
            if let Some((at, id)) = after {
                // Skips the rows of that last second already written.
                q = q.filter(responses::submitted_at.gt(*at).or(responses::id.gt(id.clone())));
            }
            q.order((responses::submitted_at.asc(), responses::id.asc()))
                .limit(page_size)
                .select((
                    responses::id, responses::unit_id, responses::procedure_id, responses::form_version,
                    responses::channel, responses::respondent_type, responses::language, responses::submitted_at,
                    responses::answers,
                ))
                .load(conn)
        })?;
        if rows.len() < page_size as usize {
            self.done = true;
        }
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        self.after = Some((last.7, last.0.clone()));
        let mut out = String::with_capacity(rows.len() * (120 + 4 * self.questions.len()));
        for (id, unit, procedure, version, channel, kind, language, at, stored) in &rows {
            push_cell(&mut out, id);
            out.push(',');
            push_cell(
                &mut out,
                self.unit_codes.get(unit).map_or("", String::as_str),
            );
            out.push(',');
            let procedure = procedure.as_ref().and_then(|p| self.procedure_codes.get(p));
            push_cell(&mut out, procedure.map_or("", String::as_str));
            out.push(',');
            push_cell(&mut out, &self.form);
            let _ = write!(out, ",{version},");
            push_cell(&mut out, channel);
            out.push(',');
            push_cell(&mut out, kind.as_deref().unwrap_or_default());
            out.push(',');
            push_cell(&mut out, language);
            let _ = write!(
                out,
                ",{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
                at.year(),
                at.month(),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            );
            let mut cells: Vec<Option<Answer<'_>>> = vec![None; self.questions.len()];
            let mut de = serde_json::Deserializer::from_str(stored);
            serde::de::DeserializeSeed::deserialize(
                IntoColumns {
                    column_of: &self.column_of,
                    cells: &mut cells,
                },
                &mut de,
            )
            .map_err(|e| anyhow::anyhow!("stored answers of {id} unreadable: {e}"))?;
            for cell in &cells {
                out.push(',');
                match cell {
                    Some(Answer::Number(n)) => {
                        let _ = write!(out, "{n}");
                    }
                    Some(Answer::Text(t)) => push_cell(&mut out, t),
                    None => {}
                }
            }
            out.push_str("\r\n");
            self.rows += 1;
        }
        Ok(Some(out))
    }
}

/// One exported answer: the text if there is one (free text, or a choice's "other" text), else
/// the number.
#[derive(Clone, Debug, PartialEq)]
enum Answer<'a> {
    Number(i64),
    Text(Cow<'a, str>),
}

/// Reads a stored answers object (`survey::stored`) straight into the export's columns,
/// borrowing texts from the stored JSON: parsing into a map first took a fifth of the export's
/// time.
struct IntoColumns<'c, 'a> {
    column_of: &'c HashMap<String, usize, foldhash::fast::RandomState>,
    cells: &'c mut Vec<Option<Answer<'a>>>,
}

impl<'de: 'a, 'a> DeserializeSeed<'de> for IntoColumns<'_, 'a> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for IntoColumns<'_, 'a> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an object of answers")
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<(), M::Error> {
        while let Some(code) = map.next_key::<Cow<'de, str>>()? {
            match self.column_of.get(code.as_ref()) {
                Some(&column) => self.cells[column] = map.next_value::<StoredValue<'de>>()?.0,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A stored value: a number, a text, or `[number, text]`.
struct StoredValue<'a>(Option<Answer<'a>>);

impl<'de: 'a, 'a> serde::Deserialize<'de> for StoredValue<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = StoredValue<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a number, a text or [number, text]")
            }
            fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
                Ok(StoredValue(Some(Answer::Number(n))))
            }
            fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
                Ok(StoredValue(i64::try_from(n).ok().map(Answer::Number)))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(StoredValue(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(StoredValue(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(StoredValue(None))
            }
            fn visit_borrowed_str<E>(self, t: &'de str) -> Result<Self::Value, E> {
                Ok(StoredValue(Some(Answer::Text(Cow::Borrowed(t)))))
            }
            fn visit_str<E>(self, t: &str) -> Result<Self::Value, E> {
                Ok(StoredValue(Some(Answer::Text(Cow::Owned(t.to_string())))))
            }
            fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let number: Option<Option<i64>> = seq.next_element()?;
                let text: Option<Option<Cow<'de, str>>> = seq.next_element()?;
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(StoredValue(match (text.flatten(), number.flatten()) {
                    (Some(t), _) => Some(Answer::Text(t)),
                    (None, Some(n)) => Some(Answer::Number(n)),
                    (None, None) => None,
                }))
            }
        }
        d.deserialize_any(ValueVisitor)
    }
}

/// A CSV text field, neutralised against formulas ([`crate::text::neutralise_cell`]) and
/// quoted only when it has to be.
fn push_cell(out: &mut String, s: &str) {
    let s = crate::text::neutralise_cell(s);
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(&s);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_answers_land_in_their_columns() {
        let column_of: HashMap<String, usize, foldhash::fast::RandomState> =
            [("A", 0), ("B", 1), ("C", 2), ("D", 3)]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
        let stored = r#"{"B":"xin \"chào\"","A":4,"Z":[1,2],"C":[9,"khác"],"D":[3,null]}"#;
        let mut cells = vec![None; 4];
        let mut de = serde_json::Deserializer::from_str(stored);
        IntoColumns {
            column_of: &column_of,
            cells: &mut cells,
        }
        .deserialize(&mut de)
        .unwrap();
        assert_eq!(
            cells,
            vec![
                Some(Answer::Number(4)),
                Some(Answer::Text("xin \"chào\"".into())),
                Some(Answer::Text("khác".into())),
                Some(Answer::Number(3)),
            ]
        );
    }

    #[test]
    fn cells_are_quoted_only_when_needed() {
        let mut out = String::new();
        push_cell(&mut out, "plain");
        out.push('|');
        push_cell(&mut out, "a, \"b\"\nc");
        assert_eq!(out, "plain|\"a, \"\"b\"\"\nc\"");
    }
}
