//! How a response's answers are stored: one compact JSON object on the response row.
//!
//! A response is always written and read whole (reports read rollups, never single answers),
//! so one column replaces the ~30 rows a full SIPAS form used to take: the write path does one
//! insert per response instead of thirty, and ten million responses fit in a few gigabytes.
//! Values are `4` (a level or option number), `"text"` (free text or chosen option codes), or
//! `[2, "organisation"]` (an option's number and its code).

use diesel::prelude::*;
use serde_json::{Map, Value};

use super::response::{NewResponse, Submission};
use crate::db::DbConn;
use crate::db::schema::responses;
use crate::db_run;
use crate::forms::answers::AnswerValue;
use crate::forms::{Form, FormRegistry, QuestionType, scoring};

/// One stored answer: (question code, number, text).
pub type StoredAnswer = (String, Option<i64>, Option<String>);

/// The JSON text stored in `responses.answers`.
pub fn encode(answers: &[AnswerValue]) -> String {
    let mut object = Map::with_capacity(answers.len());
    for a in answers {
        let value = match (a.value_int, &a.value_text) {
            (Some(n), Some(t)) => Value::Array(vec![n.into(), t.clone().into()]),
            (Some(n), None) => n.into(),
            (None, Some(t)) => t.clone().into(),
            (None, None) => Value::Null,
        };
        object.insert(a.question_code.clone(), value);
    }
    Value::Object(object).to_string()
}

/// The answers of a stored JSON text; anything unreadable is an error, never a silent blank.
pub fn decode(text: &str) -> Result<Vec<StoredAnswer>, serde_json::Error> {
    let object: Map<String, Value> = serde_json::from_str(text)?;
    Ok(object
        .into_iter()
        .map(|(code, value)| {
            let (n, t) = match value {
                Value::Number(n) => (n.as_i64(), None),
                Value::String(t) => (None, Some(t)),
                Value::Array(pair) => (
                    pair.first().and_then(Value::as_i64),
                    pair.get(1).and_then(Value::as_str).map(str::to_string),
                ),
                _ => (None, None),
            };
            (code, n, t)
        })
        .collect())
}

/// Stored answers back as validated values, with the levels they count for in the rollups.
pub fn reconstruct(form: &Form, stored: &[StoredAnswer]) -> Vec<AnswerValue> {
    stored
        .iter()
        .filter_map(|(code, value_int, value_text)| {
            let q = form.question(code)?;
            let rollup_levels = match q.kind {
                QuestionType::Scale5 | QuestionType::Scale3 | QuestionType::Choice => {
                    vec![(*value_int)?]
                }
                QuestionType::Multi => value_text
                    .as_deref()?
                    .split(',')
                    .filter_map(|c| {
                        q.options
                            .iter()
                            .position(|o| o.code == c)
                            .map(|p| p as i64 + 1)
                    })
                    .collect(),
                QuestionType::Text => vec![0],
            };
            Some(AnswerValue {
                question_code: code.clone(),
                value_int: *value_int,
                value_text: value_text.clone(),
                rollup_levels,
            })
        })
        .collect()
}

/// The columns of a stored response needed to count it again.
#[derive(Debug, Clone, Queryable)]
pub struct StoredResponse {
    pub id: String,
    pub unit_id: String,
    pub procedure_id: Option<String>,
    pub form_code: String,
    pub form_version: i64,
    pub channel: String,
    pub respondent_type: Option<String>,
    pub language: String,
    pub submitted_at: chrono::NaiveDateTime,
    pub answers: String,
}

/// The selection matching [`StoredResponse`].
pub type StoredColumns = (
    responses::id,
    responses::unit_id,
    responses::procedure_id,
    responses::form_code,
    responses::form_version,
    responses::channel,
    responses::respondent_type,
    responses::language,
    responses::submitted_at,
    responses::answers,
);

pub const STORED_COLUMNS: StoredColumns = (
    responses::id,
    responses::unit_id,
    responses::procedure_id,
    responses::form_code,
    responses::form_version,
    responses::channel,
    responses::respondent_type,
    responses::language,
    responses::submitted_at,
    responses::answers,
);

impl StoredResponse {
    /// Reads one response.
    pub fn load(conn: &mut DbConn, response_id: &str) -> QueryResult<Self> {
        db_run!(conn: {
            responses::table.find(response_id).select(STORED_COLUMNS).first(conn)
        })
    }

    /// The response as the submission that created it, so its counts can be taken back or
    /// counted again exactly as the rollups counted them. `None` when its form version is not
    /// known (see [`FormRegistry::find`]) or its answers cannot be read.
    pub fn to_submission(
        &self,
        conn: &mut crate::db::DbConn,
        forms: &FormRegistry,
    ) -> diesel::QueryResult<Option<Submission>> {
        let Some(form) = forms.find(conn, &self.form_code, self.form_version)? else {
            return Ok(None);
        };
        Ok(self.to_submission_of(&form))
    }

    /// As [`Self::to_submission`], with the form at hand.
    pub fn to_submission_of(&self, form: &Form) -> Option<Submission> {
        let stored = match decode(&self.answers) {
            Ok(stored) => stored,
            Err(e) => {
                tracing::error!(response = %self.id, error = %e, "stored answers unreadable");
                return None;
            }
        };
        let answers = reconstruct(form, &stored);
        Some(Submission {
            token_hash: None,
            response: NewResponse {
                id: self.id.clone(),
                unit_id: self.unit_id.clone(),
                procedure_id: self.procedure_id.clone(),
                form_code: self.form_code.clone(),
                form_version: self.form_version,
                channel: self.channel.clone(),
                respondent_type: self.respondent_type.clone(),
                language: self.language.clone(),
                issued_at: None,
                opened_at: None,
                submitted_at: self.submitted_at,
                provenance: None,
            },
            scores: scoring::respondent_scores(form, &answers),
            answers,
            dossier_rating: None,
            transaction_id: None,
            screening: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(code: &str, n: Option<i64>, t: Option<&str>) -> AnswerValue {
        AnswerValue {
            question_code: code.into(),
            value_int: n,
            value_text: t.map(str::to_string),
            rollup_levels: Vec::new(),
        }
    }

    #[test]
    fn every_value_shape_survives_a_round_trip() {
        let given = vec![
            answer("A1", Some(4), None),
            answer("A2", Some(0), None),
            answer("R", Some(2), Some("organisation")),
            answer("EXP", None, Some("speed,attitude")),
            answer("TXT", None, Some("Cần thêm ghế \"chờ\", {ok}")),
        ];
        let mut back = decode(&encode(&given)).unwrap();
        back.sort();
        let mut expected: Vec<StoredAnswer> = given
            .iter()
            .map(|a| (a.question_code.clone(), a.value_int, a.value_text.clone()))
            .collect();
        expected.sort();
        assert_eq!(back, expected);
    }

    #[test]
    fn unreadable_text_is_an_error() {
        assert!(decode("not json").is_err());
        assert!(decode("[1,2]").is_err());
        assert_eq!(decode("{}").unwrap(), Vec::new());
    }
}
