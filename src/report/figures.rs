//! The figures of a report, computed from rollup tallies only: item shares, means and
//! distributions, element and overall indices with their intervals.

use std::collections::HashMap;

use serde::Serialize;

use super::stats::{Interval, respondent_interval, respondent_se, wilson};
use crate::forms::scoring::{INDEX_CODE, is_satisfied, is_valid_level};
use crate::forms::{Form, QuestionType};
use crate::rollup::RESPONSES_COUNTER;

/// A map keyed by short codes that reports fill millions of times: a fast, non-cryptographic
/// hash (codes come from form definitions, not from users).
pub type CodeMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// Summed rollups of one form for some units, period and slice.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// question code → answers by level (index = level).
    pub counts: CodeMap<Vec<u64>>,
    /// element code (or `_index`) → (respondents, score sum, score² sum).
    pub scores: CodeMap<(u64, f64, f64)>,
}

impl Tally {
    pub fn add_count(&mut self, question: &str, level: i64, n: u64) {
        let Ok(index) = usize::try_from(level) else {
            return;
        };
        let counts = match self.counts.get_mut(question) {
            Some(counts) => counts,
            None => self.counts.entry(question.to_string()).or_default(),
        };
        if counts.len() <= index {
            counts.resize(index + 1, 0);
        }
        counts[index] += n;
    }

    pub fn add_score(&mut self, element: &str, n: u64, sum: f64, sq: f64) {
        let e = match self.scores.get_mut(element) {
            Some(e) => e,
            None => self
                .scores
                .entry(element.to_string())
                .or_insert((0, 0.0, 0.0)),
        };
        e.0 += n;
        e.1 += sum;
        e.2 += sq;
    }

    /// Adds counts by level of one question.
    fn add_levels(&mut self, question: &str, levels: impl ExactSizeIterator<Item = u64>) {
        let counts = match self.counts.get_mut(question) {
            Some(counts) => counts,
            None => self.counts.entry(question.to_string()).or_default(),
        };
        if counts.len() < levels.len() {
            counts.resize(levels.len(), 0);
        }
        for (total, n) in counts.iter_mut().zip(levels) {
            *total += n;
        }
    }

    pub fn merge(&mut self, other: &Tally) {
        for (q, counts) in &other.counts {
            self.add_levels(q, counts.iter().copied());
        }
        for (e, (n, s, sq)) in &other.scores {
            self.add_score(e, *n, *s, *sq);
        }
    }

    /// Adds a stored rollup cell as read from the database (negative counts, which only a
    /// damaged cell could hold, are left out).
    pub fn add_stored_cell(&mut self, bytes: &[u8]) -> Result<(), crate::rollup::cell::CellError> {
        let mut scores = Vec::new();
        crate::rollup::cell::visit(
            bytes,
            |q, counts| self.add_levels(q, counts.iter().map(|n| (*n).max(0) as u64)),
            |e, n, sum, sq| scores.push((e.to_string(), n, sum, sq)),
        )?;
        for (e, n, sum, sq) in scores {
            if n > 0 {
                self.add_score(&e, n as u64, sum, sq);
            }
        }
        Ok(())
    }

    pub fn responses(&self) -> u64 {
        self.count(RESPONSES_COUNTER, 0)
    }

    pub fn count(&self, question: &str, level: i64) -> u64 {
        usize::try_from(level)
            .ok()
            .and_then(|i| self.counts.get(question)?.get(i).copied())
            .unwrap_or(0)
    }
}

/// A percentage with its interval and the number of answers behind it. `value` and the
/// interval are `None` when suppressed (fewer answers than the minimum). Figures are unrounded
/// percentages (0–100): pages, prints and text round them for display, so an analyst reading
/// the JSON can recompute rankings without ties that are not there.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figure {
    pub n: u64,
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Standard error in percentage points (respondent scores for element and index figures,
    /// √(p(1 − p)/n) for item shares); `None` when suppressed or below two answers.
    pub se: Option<f64>,
}

impl Figure {
    pub(crate) fn new(
        n: u64,
        share: Option<f64>,
        ci: Option<Interval>,
        se: Option<f64>,
        min_n: u64,
    ) -> Self {
        let shown = n >= min_n.max(1);
        Self {
            n,
            value: share.filter(|_| shown).map(percent),
            ci_low: ci.filter(|_| shown).map(|c| percent(c.low)),
            ci_high: ci.filter(|_| shown).map(|c| percent(c.high)),
            se: se.filter(|_| shown && share.is_some()).map(percent),
        }
    }

    pub fn suppressed(&self) -> bool {
        self.value.is_none()
    }

    /// Standard error in percentage points.
    pub fn se(&self) -> Option<f64> {
        self.se
    }

    /// Degrees of freedom of the standard error: n − 1 (infinite for n < 2, which has no se).
    pub fn df(&self) -> f64 {
        if self.n >= 2 {
            (self.n - 1) as f64
        } else {
            f64::INFINITY
        }
    }
}

/// A share (0–1) as an unrounded percentage.
fn percent(share: f64) -> f64 {
    share * 100.0
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ItemFigure {
    pub code: String,
    pub text_vi: String,
    pub text_en: String,
    pub weight: f64,
    /// Share answering satisfied (4–5 of 5, 2–3 of 3) among valid answers.
    pub satisfied: Figure,
    /// Mean level among valid answers (1–5 or 1–3), unrounded.
    pub mean: Option<f64>,
    /// Answers per level, lowest first; `None` when suppressed.
    pub distribution: Option<Vec<u64>>,
    pub no_answer: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ElementFigure {
    pub code: String,
    pub title_vi: String,
    pub title_en: String,
    pub weight: f64,
    pub index: Figure,
    pub items: Vec<ItemFigure>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChoiceFigure {
    pub code: String,
    pub text_vi: String,
    pub text_en: String,
    /// (option code, label vi, label en, count); counts hidden when suppressed.
    pub options: Vec<(String, String, String, Option<u64>)>,
    pub answered: u64,
}

/// Everything computed for one form.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FormFigures {
    pub form: String,
    pub responses: u64,
    pub index: Figure,
    pub elements: Vec<ElementFigure>,
    pub overall_question: Option<ItemFigure>,
    pub choices: Vec<ChoiceFigure>,
}

fn item_figure(q: &crate::forms::Question, tally: &Tally, min_n: u64) -> ItemFigure {
    let levels: Vec<i64> = match q.kind {
        QuestionType::Scale5 => (1..=5).collect(),
        _ => (1..=3).collect(),
    };
    let distribution: Vec<u64> = levels.iter().map(|l| tally.count(&q.code, *l)).collect();
    let valid: u64 = distribution.iter().sum();
    let satisfied: u64 = levels
        .iter()
        .zip(&distribution)
        .filter(|(l, _)| is_satisfied(q.kind, **l))
        .map(|(_, n)| n)
        .sum();
    let share = (valid > 0).then(|| satisfied as f64 / valid as f64);
    let shown = valid >= min_n.max(1);
    let mean = (valid > 0 && shown).then(|| {
        let total: f64 = levels
            .iter()
            .zip(&distribution)
            .map(|(l, n)| *l as f64 * *n as f64)
            .sum();
        total / valid as f64
    });
    debug_assert!(levels.iter().all(|l| is_valid_level(q.kind, *l)));
    ItemFigure {
        code: q.code.clone(),
        text_vi: q.text.vi.clone(),
        text_en: q.text.en.clone(),
        weight: q.weight,
        satisfied: Figure::new(
            valid,
            share,
            wilson(satisfied, valid),
            share
                .filter(|_| valid >= 2)
                .map(|p| (p * (1.0 - p) / valid as f64).sqrt()),
            min_n,
        ),
        mean,
        distribution: shown.then_some(distribution),
        no_answer: tally.count(&q.code, 0),
    }
}

/// Computes every figure of `form` from `tally`, hiding cells with fewer than `min_n` answers.
pub fn compute(form: &Form, tally: &Tally, min_n: u64) -> FormFigures {
    let mut elements = Vec::new();
    for section in form.sections.iter().filter(|s| s.element) {
        let items: Vec<ItemFigure> = section
            .questions
            .iter()
            .filter(|q| q.kind.is_scale())
            .map(|q| item_figure(q, tally, min_n))
            .collect();
        let rated: Vec<&ItemFigure> = items.iter().filter(|i| i.satisfied.n > 0).collect();
        let weights: f64 = rated.iter().map(|i| i.weight).sum();
        let estimate = (weights > 0.0).then(|| {
            rated
                .iter()
                .map(|i| i.weight * i.satisfied_share(tally, form))
                .sum::<f64>()
                / weights
        });
        let (n, sum, sq) = tally
            .scores
            .get(&section.code)
            .copied()
            .unwrap_or((0, 0.0, 0.0));
        let ci = estimate.and_then(|e| respondent_interval(e, n, sum, sq));
        let se = respondent_se(n, sum, sq);
        // Without respondent scores (procedure slices) n is the best-answered item's count.
        let n = if n > 0 {
            n
        } else {
            items.iter().map(|i| i.satisfied.n).max().unwrap_or(0)
        };
        elements.push(ElementFigure {
            code: section.code.clone(),
            title_vi: section.title.vi.clone(),
            title_en: section.title.en.clone(),
            weight: section.weight,
            index: Figure::new(n, estimate, ci, se, min_n),
            items,
        });
    }
    let rated: Vec<(&ElementFigure, f64)> = elements
        .iter()
        .filter_map(|e| {
            let weights: f64 = e
                .items
                .iter()
                .filter(|i| i.satisfied.n > 0)
                .map(|i| i.weight)
                .sum();
            (weights > 0.0).then(|| {
                let raw = e
                    .items
                    .iter()
                    .filter(|i| i.satisfied.n > 0)
                    .map(|i| i.weight * i.satisfied_share(tally, form))
                    .sum::<f64>()
                    / weights;
                (e, raw)
            })
        })
        .collect();
    let weights: f64 = rated.iter().map(|(e, _)| e.weight).sum();
    let index_estimate =
        (weights > 0.0).then(|| rated.iter().map(|(e, v)| e.weight * v).sum::<f64>() / weights);
    let (respondents, sum, sq) = tally
        .scores
        .get(INDEX_CODE)
        .copied()
        .unwrap_or((0, 0.0, 0.0));
    // Without respondent scores (procedure slices) there is no interval: n is the
    // best-answered element's.
    let n = if respondents > 0 {
        respondents
    } else {
        elements.iter().map(|e| e.index.n).max().unwrap_or(0)
    };
    let index = Figure::new(
        n,
        index_estimate,
        index_estimate.and_then(|e| respondent_interval(e, respondents, sum, sq)),
        respondent_se(respondents, sum, sq),
        min_n,
    );
    let overall_question = form
        .question_with_role(crate::forms::QuestionRole::Overall)
        .map(|q| item_figure(q, tally, min_n));
    let choices = form
        .questions()
        .filter(|q| matches!(q.kind, QuestionType::Choice | QuestionType::Multi))
        .map(|q| {
            let answered: u64 = (1..=q.options.len() as i64)
                .map(|p| tally.count(&q.code, p))
                .sum();
            let shown = tally.responses() >= min_n.max(1);
            ChoiceFigure {
                code: q.code.clone(),
                text_vi: q.text.vi.clone(),
                text_en: q.text.en.clone(),
                options: q
                    .options
                    .iter()
                    .enumerate()
                    .map(|(i, o)| {
                        (
                            o.code.clone(),
                            o.label.vi.clone(),
                            o.label.en.clone(),
                            shown.then(|| tally.count(&q.code, i as i64 + 1)),
                        )
                    })
                    .collect(),
                answered,
            }
        })
        .collect();
    FormFigures {
        form: form.code.clone(),
        responses: tally.responses(),
        index,
        elements,
        overall_question,
        choices,
    }
}

impl ItemFigure {
    /// The unrounded satisfied share, recomputed from the tally (figures are rounded for display).
    fn satisfied_share(&self, tally: &Tally, form: &Form) -> f64 {
        let Some(q) = form.question(&self.code) else {
            return 0.0;
        };
        let levels: Vec<i64> = if q.kind == QuestionType::Scale5 {
            (1..=5).collect()
        } else {
            (1..=3).collect()
        };
        let valid: u64 = levels.iter().map(|l| tally.count(&q.code, *l)).sum();
        let satisfied: u64 = levels
            .iter()
            .filter(|l| is_satisfied(q.kind, **l))
            .map(|l| tally.count(&q.code, *l))
            .sum();
        if valid == 0 {
            0.0
        } else {
            satisfied as f64 / valid as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forms::definition::parse;

    fn form() -> Form {
        parse(
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
text = { vi = "a", en = "a" }
[[sections.questions]]
code = "A2"
type = "scale5"
weight = 3.0
text = { vi = "a", en = "a" }
[[sections]]
code = "B"
element = true
weight = 2.0
title = { vi = "b", en = "b" }
[[sections.questions]]
code = "B1"
type = "scale5"
text = { vi = "a", en = "a" }
[[sections]]
code = "O"
title = { vi = "o", en = "o" }
[[sections.questions]]
code = "OVERALL"
type = "scale5"
role = "overall"
text = { vi = "a", en = "a" }
"#,
        )
        .unwrap()
    }

    #[test]
    fn hand_computed_weighted_indices_ignore_no_answer() {
        let mut t = Tally::default();
        t.add_count(RESPONSES_COUNTER, 0, 10);
        // A1: levels 5,5,4,3,2 + 5 no-answers → valid 5, satisfied 3 → 60 %, mean 3.8
        for (l, n) in [(5, 2), (4, 1), (3, 1), (2, 1), (0, 5)] {
            t.add_count("A1", l, n);
        }
        // A2: 10 valid, 9 satisfied → 90 %
        for (l, n) in [(4, 9), (1, 1)] {
            t.add_count("A2", l, n);
        }
        // B1: 10 valid, 5 satisfied → 50 %
        for (l, n) in [(5, 5), (3, 5)] {
            t.add_count("B1", l, n);
        }
        let f = compute(&form(), &t, 5);
        let a = &f.elements[0];
        let close = |x: Option<f64>, want: f64| x.is_some_and(|x| (x - want).abs() < 1e-9);
        assert!(close(a.items[0].satisfied.value, 60.0));
        assert!(close(a.items[0].mean, 3.8));
        assert_eq!(a.items[0].no_answer, 5);
        assert_eq!(a.items[0].distribution, Some(vec![0, 1, 1, 1, 2]));
        // A = (1·0.6 + 3·0.9)/4 = 0.825; B = 0.5; index = (1·0.825 + 2·0.5)/3 = 0.60833
        assert!(close(a.index.value, 82.5));
        assert!(close(f.elements[1].index.value, 50.0));
        // Unrounded: an analyst recomputing a ranking sees 60.833…, not 60.8.
        assert!(close(f.index.value, 60.833_333_333), "{:?}", f.index.value);
        assert_eq!(f.responses, 10);
    }

    #[test]
    fn small_cells_are_suppressed_and_empty_units_have_no_figures() {
        let mut t = Tally::default();
        t.add_count(RESPONSES_COUNTER, 0, 3);
        t.add_count("A1", 5, 3);
        let f = compute(&form(), &t, 5);
        let item = &f.elements[0].items[0];
        assert_eq!(item.satisfied.n, 3);
        assert!(item.satisfied.suppressed() && item.distribution.is_none() && item.mean.is_none());
        let empty = compute(&form(), &Tally::default(), 5);
        assert!(
            empty.index.value.is_none() && empty.elements.iter().all(|e| e.index.value.is_none())
        );
        assert_eq!(empty.responses, 0);
    }

    #[test]
    fn intervals_come_from_items_and_respondent_scores() {
        let mut t = Tally::default();
        t.add_count(RESPONSES_COUNTER, 0, 10);
        t.add_count("B1", 5, 8);
        t.add_count("B1", 2, 2);
        t.add_score("B", 10, 8.0, 8.0);
        let f = compute(&form(), &t, 5);
        let close = |x: Option<f64>, want: f64| x.is_some_and(|x| (x - want).abs() < 1e-2);
        let item = &f.elements[1].items[0].satisfied;
        assert!(
            close(item.ci_low, 49.02) && close(item.ci_high, 94.33),
            "{item:?}"
        );
        assert!(close(item.se, 12.65), "{item:?}");
        let b = &f.elements[1].index;
        // var = (8 - 10·0.64)/9 = 0.1778, se = 0.1333, t(9) = 2.2622 → half = 0.3016
        assert!(close(b.ci_low, 49.84) && close(b.ci_high, 100.0), "{b:?}");
        assert!(close(b.se, 13.33), "{b:?}");
    }
}
