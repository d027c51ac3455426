//! What counts as "satisfied" and how a respondent's answers score per index element.
//!
//! A respondent's element score is the weighted share of satisfied answers among the element's
//! items they rated (no-answer excluded); their index score is the weighted mean of their element
//! scores. Rolled up as count, sum and sum of squares, these give intervals for element and
//! overall indices that account for one person answering many items.

use super::answers::AnswerValue;
use super::definition::{Form, QuestionType};

/// The overall index in score rollups.
pub const INDEX_CODE: &str = "_index";

/// Whether `level` is a valid rating (not "no answer") on this scale.
pub fn is_valid_level(kind: QuestionType, level: i64) -> bool {
    match kind {
        QuestionType::Scale5 => (1..=5).contains(&level),
        QuestionType::Scale3 => (1..=3).contains(&level),
        _ => false,
    }
}

/// Top-two-box on the 5-level scale (4, 5); "Hài lòng" or better on the 3-level scale (2, 3).
pub fn is_satisfied(kind: QuestionType, level: i64) -> bool {
    match kind {
        QuestionType::Scale5 => (4..=5).contains(&level),
        QuestionType::Scale3 => (2..=3).contains(&level),
        _ => false,
    }
}

/// The respondent's score per element with valid answers, then [`INDEX_CODE`].
pub fn respondent_scores(form: &Form, answers: &[AnswerValue]) -> Vec<(String, f64)> {
    let mut scores = Vec::new();
    let mut index_weighted = 0.0;
    let mut index_weights = 0.0;
    for section in form.sections.iter().filter(|s| s.element) {
        let (mut satisfied, mut weight) = (0.0, 0.0);
        for q in section.questions.iter().filter(|q| q.kind.is_scale()) {
            let level = answers
                .iter()
                .find(|a| a.question_code == q.code)
                .and_then(|a| a.value_int);
            if let Some(level) = level.filter(|l| is_valid_level(q.kind, *l)) {
                weight += q.weight;
                if is_satisfied(q.kind, level) {
                    satisfied += q.weight;
                }
            }
        }
        if weight > 0.0 {
            let score = satisfied / weight;
            scores.push((section.code.clone(), score));
            index_weighted += section.weight * score;
            index_weights += section.weight;
        }
    }
    if index_weights > 0.0 {
        scores.push((INDEX_CODE.to_string(), index_weighted / index_weights));
    }
    scores
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::definition::parse;

    #[test]
    fn scores_skip_no_answer_and_weight_items_and_elements() {
        let form = parse(
            "f.toml",
            r#"
code = "s"
version = 1
kind = "sipas"
title = { vi = "a", en = "a" }
[[sections]]
code = "A"
element = true
weight = 1.0
title = { vi = "a", en = "a" }
[[sections.questions]]
code = "A1"
type = "scale5"
weight = 3.0
text = { vi = "a", en = "a" }
[[sections.questions]]
code = "A2"
type = "scale5"
text = { vi = "a", en = "a" }
[[sections.questions]]
code = "A3"
type = "scale5"
text = { vi = "a", en = "a" }
[[sections]]
code = "B"
element = true
weight = 3.0
title = { vi = "a", en = "a" }
[[sections.questions]]
code = "OVERALL"
type = "scale5"
role = "overall"
text = { vi = "a", en = "a" }
"#,
        )
        .unwrap();
        let answer = |code: &str, level: i64| AnswerValue {
            question_code: code.into(),
            value_int: Some(level),
            value_text: None,
            rollup_levels: vec![level],
        };
        // A1 satisfied (w3), A2 not (w1), A3 no answer → A = 3/4; B = 0 → index (1·.75 + 3·0)/4.
        let scores = respondent_scores(
            &form,
            &[
                answer("A1", 5),
                answer("A2", 3),
                answer("A3", 0),
                answer("OVERALL", 2),
            ],
        );
        assert_eq!(
            scores,
            vec![
                ("A".into(), 0.75),
                ("B".into(), 0.0),
                (INDEX_CODE.into(), 0.1875)
            ]
        );
        // Nothing valid in A: only B and the index.
        let scores = respondent_scores(&form, &[answer("A1", 0), answer("OVERALL", 4)]);
        assert_eq!(scores, vec![("B".into(), 1.0), (INDEX_CODE.into(), 1.0)]);
    }
}
