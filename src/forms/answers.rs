//! Checking what a respondent submitted against the form they answered.
//!
//! Input arrives as (question code, value) pairs, the shape of an HTML form post, so the web form,
//! paper entry and imports all share this one validator.

use std::collections::BTreeMap;

use super::definition::{Form, Question, QuestionRole, QuestionType};
use crate::i18n::Msg;

/// A stored answer: scale level or option number in `value_int`, text or chosen option codes in
/// `value_text`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerValue {
    pub question_code: String,
    pub value_int: Option<i64>,
    pub value_text: Option<String>,
    /// Levels counted in the rollups: the scale level (0 = no answer), or each chosen option's
    /// 1-based position in the form version.
    pub rollup_levels: Vec<i64>,
}

/// A complete, valid set of answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidAnswers {
    pub answers: Vec<AnswerValue>,
    pub respondent_type: Option<String>,
    /// The overall rating, kept apart because instrument A stores it on the dossier.
    pub overall: Option<i64>,
}

/// What is wrong with one question's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnswerProblem {
    Missing,
    NotAnOption,
    TooManyChoices(usize),
    TooLong(usize),
    Repeated,
}

impl AnswerProblem {
    pub fn message(&self) -> Msg {
        match self {
            Self::Missing => Msg::new(
                "Vui lòng trả lời câu hỏi này.",
                "Please answer this question.",
            ),
            Self::NotAnOption => Msg::new(
                "Câu trả lời không hợp lệ, vui lòng chọn một trong các phương án.",
                "This answer is not valid; please choose one of the options.",
            ),
            Self::TooManyChoices(n) => Msg::new(
                format!("Chỉ chọn tối đa {n} phương án."),
                format!("Choose at most {n} options."),
            ),
            Self::TooLong(n) => Msg::new(
                format!("Nội dung quá dài (tối đa {n} ký tự)."),
                format!("The text is too long (at most {n} characters)."),
            ),
            Self::Repeated => Msg::new(
                "Câu hỏi này chỉ nhận một câu trả lời.",
                "This question takes a single answer.",
            ),
        }
    }
}

/// Problems by question code; empty means the submission is valid.
pub type AnswerProblems = BTreeMap<String, AnswerProblem>;

/// The level values a scale question accepts.
pub fn scale_levels(kind: QuestionType) -> &'static [i64] {
    match kind {
        QuestionType::Scale5 => &[1, 2, 3, 4, 5, 0],
        QuestionType::Scale3 => &[3, 2, 1],
        _ => &[],
    }
}

/// Validates every answer; unknown field names (hidden fields, buttons) are ignored.
pub fn validate(form: &Form, input: &[(String, String)]) -> Result<ValidAnswers, AnswerProblems> {
    let mut by_question: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (name, value) in input {
        if form.question(name).is_some() {
            let value = value.trim();
            if !value.is_empty() {
                by_question.entry(name.as_str()).or_default().push(value);
            }
        }
    }
    let mut problems = AnswerProblems::new();
    let mut answers = Vec::new();
    let mut respondent_type = None;
    let mut overall = None;
    for question in form.questions() {
        let values = by_question
            .get(question.code.as_str())
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match check_question(question, values) {
            Ok(Some(answer)) => {
                if question.role == Some(QuestionRole::RespondentType) {
                    respondent_type = answer.value_text.clone();
                }
                if question.role == Some(QuestionRole::Overall) {
                    overall = answer.value_int;
                }
                answers.push(answer);
            }
            Ok(None) => {}
            Err(problem) => {
                problems.insert(question.code.clone(), problem);
            }
        }
    }
    if problems.is_empty() {
        Ok(ValidAnswers {
            answers,
            respondent_type,
            overall,
        })
    } else {
        Err(problems)
    }
}

fn check_question(q: &Question, values: &[&str]) -> Result<Option<AnswerValue>, AnswerProblem> {
    if values.is_empty() {
        return if q.required {
            Err(AnswerProblem::Missing)
        } else {
            Ok(None)
        };
    }
    let answer = |value_int, value_text, rollup_levels| AnswerValue {
        question_code: q.code.clone(),
        value_int,
        value_text,
        rollup_levels,
    };
    match q.kind {
        QuestionType::Scale5 | QuestionType::Scale3 => {
            let [value] = values else {
                return Err(AnswerProblem::Repeated);
            };
            let level: i64 = value.parse().map_err(|_| AnswerProblem::NotAnOption)?;
            if !scale_levels(q.kind).contains(&level) {
                return Err(AnswerProblem::NotAnOption);
            }
            Ok(Some(answer(Some(level), None, vec![level])))
        }
        QuestionType::Choice => {
            let [value] = values else {
                return Err(AnswerProblem::Repeated);
            };
            let position = option_position(q, value).ok_or(AnswerProblem::NotAnOption)?;
            Ok(Some(answer(
                Some(position),
                Some((*value).to_string()),
                vec![position],
            )))
        }
        QuestionType::Multi => {
            let mut positions = Vec::new();
            for value in values {
                let position = option_position(q, value).ok_or(AnswerProblem::NotAnOption)?;
                if !positions.contains(&position) {
                    positions.push(position);
                }
            }
            if positions.len() > q.max_choices {
                return Err(AnswerProblem::TooManyChoices(q.max_choices));
            }
            positions.sort_unstable();
            let codes: Vec<&str> = positions
                .iter()
                .map(|p| q.options[(*p - 1) as usize].code.as_str())
                .collect();
            Ok(Some(answer(None, Some(codes.join(",")), positions)))
        }
        QuestionType::Text => {
            let [value] = values else {
                return Err(AnswerProblem::Repeated);
            };
            if value.chars().count() > q.max_length {
                return Err(AnswerProblem::TooLong(q.max_length));
            }
            Ok(Some(answer(None, Some((*value).to_string()), vec![0])))
        }
    }
}

fn option_position(q: &Question, value: &str) -> Option<i64> {
    q.options
        .iter()
        .position(|o| o.code == value)
        .map(|i| i as i64 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::definition::parse;

    fn form() -> Form {
        parse(
            "t.toml",
            r#"
code = "s"
version = 1
kind = "sipas"
title = { vi = "a", en = "a" }
[[sections]]
code = "A"
element = true
title = { vi = "a", en = "a" }
[[sections.questions]]
code = "A1"
type = "scale5"
text = { vi = "a", en = "a" }
[[sections.questions]]
code = "OVERALL"
type = "scale5"
role = "overall"
text = { vi = "a", en = "a" }
[[sections]]
code = "R"
title = { vi = "a", en = "a" }
[[sections.questions]]
code = "EXPECT"
type = "multi"
max_choices = 2
text = { vi = "a", en = "a" }
options = [{ code = "x", label = { vi = "x", en = "x" } }, { code = "y", label = { vi = "y", en = "y" } }, { code = "z", label = { vi = "z", en = "z" } }]
[[sections.questions]]
code = "RT"
type = "choice"
role = "respondent_type"
text = { vi = "a", en = "a" }
options = [{ code = "individual", label = { vi = "x", en = "x" } }, { code = "organisation", label = { vi = "y", en = "y" } }]
[[sections.questions]]
code = "NOTE"
type = "text"
max_length = 5
text = { vi = "a", en = "a" }
"#,
        )
        .unwrap()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_complete_answer_is_valid() {
        let ok = validate(
            &form(),
            &pairs(&[
                ("A1", "0"),
                ("OVERALL", "4"),
                ("EXPECT", "z"),
                ("EXPECT", "x"),
                ("RT", "organisation"),
                ("lang", "vi"),
            ]),
        )
        .unwrap();
        assert_eq!(ok.overall, Some(4));
        assert_eq!(ok.respondent_type.as_deref(), Some("organisation"));
        let expect = ok
            .answers
            .iter()
            .find(|a| a.question_code == "EXPECT")
            .unwrap();
        assert_eq!(expect.value_text.as_deref(), Some("x,z"));
        assert_eq!(expect.rollup_levels, vec![1, 3]);
        assert_eq!(
            ok.answers
                .iter()
                .find(|a| a.question_code == "A1")
                .unwrap()
                .value_int,
            Some(0)
        );
    }

    #[test]
    fn every_problem_is_reported_per_question() {
        let err = validate(
            &form(),
            &pairs(&[
                ("A1", "6"),
                ("EXPECT", "x"),
                ("EXPECT", "y"),
                ("EXPECT", "z"),
                ("RT", "alien"),
                ("NOTE", "toolong"),
            ]),
        )
        .unwrap_err();
        assert_eq!(err.get("A1"), Some(&AnswerProblem::NotAnOption));
        assert_eq!(err.get("OVERALL"), Some(&AnswerProblem::Missing));
        assert_eq!(err.get("EXPECT"), Some(&AnswerProblem::TooManyChoices(2)));
        assert_eq!(err.get("RT"), Some(&AnswerProblem::NotAnOption));
        assert_eq!(err.get("NOTE"), Some(&AnswerProblem::TooLong(5)));
    }

    #[test]
    fn a_scale_answer_given_twice_is_refused() {
        let err = validate(
            &form(),
            &pairs(&[
                ("A1", "1"),
                ("A1", "2"),
                ("OVERALL", "3"),
                ("RT", "individual"),
            ]),
        )
        .unwrap_err();
        assert_eq!(err.get("A1"), Some(&AnswerProblem::Repeated));
    }
}
