//! Adding tens of thousands of rollup cells without a hash lookup per question.
//!
//! A province ranking reads every cell of a year (500 units × 12 months × ~10 channel and
//! respondent cells, ~35 questions each). Adding them into [`Tally`]'s code-keyed maps spent
//! most of the ranking's time hashing and comparing codes. Here each code is numbered once per
//! read ("slot") and sums are plain vectors indexed by slot; cells list their codes in the same
//! sorted order almost always, so a code is first checked against the previous cell's code at
//! the same position, and hashed only when that differs.

use std::collections::HashMap;
use std::hash::Hash;

use super::figures::{CodeMap, Tally};
use crate::rollup::cell::{CellError, code_text, visit_raw};

/// Codes numbered in the order first seen.
#[derive(Debug, Default, Clone)]
struct CodeSlots {
    index: CodeMap<usize>,
    codes: Vec<String>,
    /// The slot of the code at each position of the previous cell.
    previous: Vec<usize>,
}

impl CodeSlots {
    fn slot_at(&mut self, position: usize, code: &[u8]) -> Result<usize, CellError> {
        if let Some(&slot) = self.previous.get(position)
            && self.codes[slot].as_bytes() == code
        {
            return Ok(slot);
        }
        let slot = self.slot(code_text(code)?);
        if position < self.previous.len() {
            self.previous[position] = slot;
        } else {
            self.previous.push(slot);
        }
        Ok(slot)
    }

    fn slot(&mut self, code: &str) -> usize {
        if let Some(&slot) = self.index.get(code) {
            return slot;
        }
        let slot = self.codes.len();
        self.codes.push(code.to_string());
        self.index.insert(code.to_string(), slot);
        slot
    }
}

/// Counts by level per question slot and score moments per element slot.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct SlotSums {
    levels: Vec<Vec<u64>>,
    scores: Vec<(u64, f64, f64)>,
}

impl SlotSums {
    pub fn merge(&mut self, other: &SlotSums) {
        if self.levels.len() < other.levels.len() {
            self.levels.resize(other.levels.len(), Vec::new());
        }
        for (mine, theirs) in self.levels.iter_mut().zip(&other.levels) {
            add_levels(mine, theirs.iter().copied());
        }
        if self.scores.len() < other.scores.len() {
            self.scores.resize(other.scores.len(), (0, 0.0, 0.0));
        }
        for (mine, theirs) in self.scores.iter_mut().zip(&other.scores) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
            mine.2 += theirs.2;
        }
    }
}

fn add_levels(total: &mut Vec<u64>, levels: impl ExactSizeIterator<Item = u64>) {
    if total.len() < levels.len() {
        total.resize(levels.len(), 0);
    }
    for (sum, n) in total.iter_mut().zip(levels) {
        *sum += n;
    }
}

fn slot_mut<T: Clone>(items: &mut Vec<T>, slot: usize, empty: T) -> &mut T {
    if items.len() <= slot {
        items.resize(slot + 1, empty);
    }
    &mut items[slot]
}

/// The numbering of question and element codes that slot sums share.
#[derive(Debug, Default, Clone)]
struct Codes {
    questions: CodeSlots,
    elements: CodeSlots,
}

impl Codes {
    fn tally(&self, sums: &SlotSums) -> Tally {
        let mut tally = Tally::default();
        for (slot, counts) in sums.levels.iter().enumerate() {
            if !counts.is_empty() {
                tally
                    .counts
                    .insert(self.questions.codes[slot].clone(), counts.clone());
            }
        }
        for (slot, moments) in sums.scores.iter().enumerate() {
            if moments.0 > 0 {
                tally
                    .scores
                    .insert(self.elements.codes[slot].clone(), *moments);
            }
        }
        tally
    }
}

/// Sums per key (a cell, a unit, …) sharing one numbering of codes.
#[derive(Debug)]
pub struct SlotTallies<K> {
    codes: Codes,
    pub sums: HashMap<K, SlotSums, foldhash::fast::RandomState>,
}

impl<K> Default for SlotTallies<K> {
    fn default() -> Self {
        Self {
            codes: Codes::default(),
            sums: HashMap::default(),
        }
    }
}

impl<K: Eq + Hash> SlotTallies<K> {
    /// Adds a stored rollup cell to `key`'s sums, exactly as [`Tally::add_stored_cell`] would
    /// (negative counts, which only a damaged cell could hold, are left out).
    pub fn add_stored_cell(&mut self, key: K, bytes: &[u8]) -> Result<(), CellError> {
        let sums = self.sums.entry(key).or_default();
        let Codes {
            questions,
            elements,
        } = &mut self.codes;
        let (levels, scores) = (&mut sums.levels, &mut sums.scores);
        let (mut question_at, mut element_at) = (0, 0);
        visit_raw(
            bytes,
            |code, counts| {
                let slot = questions.slot_at(question_at, code)?;
                question_at += 1;
                add_levels(
                    slot_mut(levels, slot, Vec::new()),
                    counts.iter().map(|n| (*n).max(0) as u64),
                );
                Ok(())
            },
            |code, n, sum, sq| {
                let slot = elements.slot_at(element_at, code)?;
                element_at += 1;
                if n > 0 {
                    let total = slot_mut(scores, slot, (0, 0.0, 0.0));
                    total.0 += n as u64;
                    total.1 += sum;
                    total.2 += sq;
                }
                Ok(())
            },
        )
    }

    /// Adds counts already in a [`Tally`] (the few responses of partial months).
    pub fn add_tally(&mut self, key: K, tally: &Tally) {
        let sums = self.sums.entry(key).or_default();
        for (code, counts) in &tally.counts {
            let slot = self.codes.questions.slot(code);
            add_levels(
                slot_mut(&mut sums.levels, slot, Vec::new()),
                counts.iter().copied(),
            );
        }
        for (code, (n, sum, sq)) in &tally.scores {
            let slot = self.codes.elements.slot(code);
            let total = slot_mut(&mut sums.scores, slot, (0, 0.0, 0.0));
            total.0 += n;
            total.1 += sum;
            total.2 += sq;
        }
    }

    /// Sums as a code-keyed [`Tally`].
    pub fn tally(&self, sums: &SlotSums) -> Tally {
        self.codes.tally(sums)
    }

    /// Every key's sums as code-keyed tallies.
    pub fn into_tallies(self) -> HashMap<K, Tally> {
        let Self { codes, sums } = self;
        sums.into_iter()
            .map(|(key, sums)| (key, codes.tally(&sums)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rollup::cell::CellCounts;

    fn cell(pairs: &[(&str, i64, i64)], scores: &[(&str, i64, f64)]) -> Vec<u8> {
        let mut c = CellCounts::default();
        for (q, level, n) in pairs {
            c.add(q, *level, *n);
        }
        for (e, n, sum) in scores {
            c.add_score(e, *n, *sum, sum * sum);
        }
        c.encode()
    }

    /// Cells with the same codes, other codes, codes in a shifted order, a negative count and
    /// an element with no respondents: the slot sums equal adding each cell into a `Tally`.
    #[test]
    fn slot_sums_equal_tally_sums() {
        let cells = [
            cell(
                &[("A1", 4, 2), ("A2", 5, 1), ("_responses", 0, 3)],
                &[("A", 3, 2.5)],
            ),
            cell(
                &[("A1", 3, 1), ("A2", 5, 4), ("_responses", 0, 5)],
                &[("A", 5, 4.0)],
            ),
            cell(
                &[("A0", 1, 1), ("A1", 2, 7), ("B9", 9, 1)],
                &[("B", 1, 1.0)],
            ),
            cell(
                &[("A1", 4, -3), ("A2", 1, 1)],
                &[("A", 0, 0.0), ("_index", 2, 1.5)],
            ),
            cell(&[], &[]),
        ];
        let mut expected: HashMap<&str, Tally> = HashMap::new();
        let mut slots: SlotTallies<&str> = SlotTallies::default();
        for (i, bytes) in cells.iter().enumerate() {
            let key = if i % 2 == 0 { "even" } else { "odd" };
            expected
                .entry(key)
                .or_default()
                .add_stored_cell(bytes)
                .unwrap();
            slots.add_stored_cell(key, bytes).unwrap();
        }
        let mut extra = Tally::default();
        extra.add_count("ZZ", 2, 4);
        extra.add_count("A1", 4, 1);
        extra.add_score("A", 1, 0.5, 0.25);
        expected.get_mut("odd").unwrap().merge(&extra);
        slots.add_tally("odd", &extra);

        let mut everything = SlotSums::default();
        for sums in slots.sums.values() {
            everything.merge(sums);
        }
        let mut all = Tally::default();
        for tally in expected.values() {
            all.merge(tally);
        }
        assert_eq!(slots.tally(&everything), all);
        assert_eq!(slots.into_tallies(), expected);
        // A code that is not UTF-8 is an error, not a panic or a wrong slot.
        let mut bad = cell(&[("A1", 4, 2)], &[]);
        let at = bad.iter().position(|b| *b == b'A').unwrap();
        bad[at] = 0xff;
        let mut fresh: SlotTallies<u8> = SlotTallies::default();
        assert!(fresh.add_stored_cell(0, &bad).is_err());
    }

    #[test]
    fn damaged_cells_are_errors() {
        let mut slots: SlotTallies<u8> = SlotTallies::default();
        let bytes = cell(&[("A1", 4, 2)], &[]);
        assert!(slots.add_stored_cell(0, &bytes[..bytes.len() - 1]).is_err());
    }
}
