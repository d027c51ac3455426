//! The long survey in steps, for phones: which questions each step asks, and what keeps a step
//! from moving on. Pure functions of the form; the web layer carries the answers between steps
//! (hidden fields) and the last step posts everything to the ordinary submit path, so the
//! single-use token rules and the validation of the whole form are unchanged.

use crate::forms::answers::{self, AnswerProblems};
use crate::forms::{Form, Question};

/// Sections that are not index elements are put together while their questions stay within
/// this many, so the closing questions take three short steps rather than four.
const MAX_QUESTIONS_PER_EXTRA_STEP: usize = 3;

/// The steps of a form: each a list of section positions in `form.sections`. Every index element
/// is one step; the other sections are grouped in order.
pub fn plan(form: &Form) -> Vec<Vec<usize>> {
    let mut steps: Vec<Vec<usize>> = Vec::new();
    let mut open_extra: Option<(Vec<usize>, usize)> = None;
    for (i, section) in form.sections.iter().enumerate() {
        if section.element {
            if let Some((sections, _)) = open_extra.take() {
                steps.push(sections);
            }
            steps.push(vec![i]);
            continue;
        }
        let n = section.questions.len();
        open_extra = match open_extra.take() {
            Some((mut sections, count)) if count + n <= MAX_QUESTIONS_PER_EXTRA_STEP => {
                sections.push(i);
                Some((sections, count + n))
            }
            Some((sections, _)) => {
                steps.push(sections);
                Some((vec![i], n))
            }
            None => Some((vec![i], n)),
        };
    }
    if let Some((sections, _)) = open_extra {
        steps.push(sections);
    }
    steps
}

/// Whether a form is long enough to be asked in steps: at least two index elements (the SIPAS
/// questionnaire; the short dossier form stays one page).
pub fn is_stepped(form: &Form) -> bool {
    form.sections.iter().filter(|s| s.element).count() >= 2
}

/// The questions of step `step` (0-based) in order; none past the end.
pub fn questions(form: &Form, step: usize) -> Vec<&Question> {
    plan(form)
        .get(step)
        .map(|sections| {
            sections
                .iter()
                .filter_map(|&i| form.sections.get(i))
                .flat_map(|s| s.questions.iter())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a field name is an answer to one of the form's questions (what a step carries).
pub fn is_answer_field(form: &Form, name: &str) -> bool {
    form.question(name).is_some()
}

/// The problems of step `step`'s own questions in `input` (answers of other steps are not
/// judged here; the final submit judges the whole form).
pub fn problems_of_step(form: &Form, step: usize, input: &[(String, String)]) -> AnswerProblems {
    let Err(all) = answers::validate(form, input) else {
        return AnswerProblems::new();
    };
    let codes: Vec<&str> = questions(form, step)
        .iter()
        .map(|q| q.code.as_str())
        .collect();
    all.into_iter()
        .filter(|(code, _)| codes.contains(&code.as_str()))
        .collect()
}

/// Where a step's buttons lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Back,
    Next,
}

impl Move {
    /// Reads the `go` button's value; anything else moves on.
    pub fn parse(value: Option<&str>) -> Self {
        match value {
            Some("back") => Move::Back,
            _ => Move::Next,
        }
    }
}

/// The step to show after `current` (0-based) of `total` with `go`, given whether the current
/// step's answers are complete: back never checks; forward stays until they are.
pub fn next_step(current: usize, total: usize, go: Move, complete: bool) -> usize {
    let last = total.saturating_sub(1);
    let current = current.min(last);
    match go {
        Move::Back => current.saturating_sub(1),
        Move::Next if complete => (current + 1).min(last),
        Move::Next => current,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped(code: &str) -> Form {
        crate::forms::embedded::forms()
            .expect("shipped forms parse")
            .into_iter()
            .find(|f| f.code == code)
            .expect("shipped form")
    }

    #[test]
    fn sipas_form_has_one_step_per_element_and_three_closing_steps() {
        let form = shipped("sipas");
        assert!(is_stepped(&form));
        let steps = plan(&form);
        let codes: Vec<Vec<&str>> = steps
            .iter()
            .map(|s| s.iter().map(|&i| form.sections[i].code.as_str()).collect())
            .collect();
        assert_eq!(
            codes,
            vec![
                vec!["A"],
                vec!["B"],
                vec!["C"],
                vec!["D"],
                vec!["E"],
                vec!["OV", "F"],
                vec!["X"],
                vec!["R"]
            ]
        );
        // Every question is asked exactly once.
        let asked: usize = (0..steps.len()).map(|s| questions(&form, s).len()).sum();
        assert_eq!(asked, form.questions().count());
        assert!(questions(&form, steps.len()).is_empty());
    }

    #[test]
    fn short_form_is_one_page() {
        let form = shipped("transaction");
        assert!(!is_stepped(&form));
    }

    #[test]
    fn moving_back_never_checks_and_forward_waits_for_answers() {
        assert_eq!(next_step(2, 7, Move::Back, false), 1);
        assert_eq!(next_step(0, 7, Move::Back, true), 0);
        assert_eq!(next_step(2, 7, Move::Next, true), 3);
        assert_eq!(next_step(2, 7, Move::Next, false), 2);
        assert_eq!(next_step(6, 7, Move::Next, true), 6);
        assert_eq!(
            next_step(99, 7, Move::Next, true),
            6,
            "a forged step is clamped"
        );
        assert_eq!(Move::parse(Some("back")), Move::Back);
        assert_eq!(Move::parse(Some("x")), Move::Next);
    }

    #[test]
    fn step_problems_concern_only_that_step() {
        let form = shipped("sipas");
        // Nothing answered: the first step complains about its own questions only.
        let problems = problems_of_step(&form, 0, &[]);
        assert!(!problems.is_empty());
        assert!(problems.keys().all(|k| k.starts_with('A')), "{problems:?}");
        let answered: Vec<(String, String)> = questions(&form, 0)
            .iter()
            .map(|q| (q.code.clone(), "4".to_string()))
            .collect();
        assert!(problems_of_step(&form, 0, &answered).is_empty());
    }
}
