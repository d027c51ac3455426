//! The counts of one rollup cell (a unit, form version, month, channel and respondent type, or
//! a unit, form version, month and procedure), stored as one compact binary value.
//!
//! A row per (cell, question, level) made the rollups larger than the raw answers once a
//! province has hundreds of units: each unit-month holds a few dozen responses, spread over
//! hundreds of keys. One row per cell keeps every count of a unit-month in a handful of rows,
//! so a report reads a few dozen rows and a ranking a few thousand, whatever the history.
//!
//! Layout (version 1): `1`, then the questions sorted by code, each as its code (varint length
//! and UTF-8 bytes), its number of levels and one zigzag varint count per level from 0; then the
//! elements sorted by code, each as its code, a varint respondent count and two little-endian
//! `f64` (score sum and sum of squares). Self-describing, so reading needs no form definition.

use std::collections::HashMap;

const FORMAT: u8 = 1;

/// Counts by level per question, score moments per element. Signed, so a delta can take a
/// corrected response back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CellCounts {
    pub levels: HashMap<String, Vec<i64>>,
    pub scores: HashMap<String, (i64, f64, f64)>,
}

/// Why stored counts could not be read.
#[derive(Debug, thiserror::Error)]
#[error("rollup cell unreadable: {0}")]
pub struct CellError(&'static str);

impl CellCounts {
    /// Adds `n` answers at `level` of `question`.
    pub fn add(&mut self, question: &str, level: i64, n: i64) {
        let Ok(index) = usize::try_from(level) else {
            return;
        };
        let counts = match self.levels.get_mut(question) {
            Some(counts) => counts,
            None => self.levels.entry(question.to_string()).or_default(),
        };
        if counts.len() <= index {
            counts.resize(index + 1, 0);
        }
        counts[index] += n;
    }

    pub fn add_score(&mut self, element: &str, n: i64, sum: f64, sq: f64) {
        let entry = match self.scores.get_mut(element) {
            Some(entry) => entry,
            None => self
                .scores
                .entry(element.to_string())
                .or_insert((0, 0.0, 0.0)),
        };
        entry.0 += n;
        entry.1 += sum;
        entry.2 += sq;
    }

    pub fn merge(&mut self, other: &CellCounts) {
        for (question, counts) in &other.levels {
            for (level, n) in counts.iter().enumerate() {
                if *n != 0 {
                    self.add(question, level as i64, *n);
                }
            }
        }
        for (element, (n, sum, sq)) in &other.scores {
            self.add_score(element, *n, *sum, *sq);
        }
    }

    pub fn count(&self, question: &str, level: i64) -> i64 {
        usize::try_from(level)
            .ok()
            .and_then(|i| self.levels.get(question)?.get(i).copied())
            .unwrap_or(0)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.levels.len() * 16);
        out.push(FORMAT);
        let mut questions: Vec<_> = self.levels.iter().collect();
        questions.sort_by(|a, b| a.0.cmp(b.0));
        put_varint(&mut out, questions.len() as u64);
        for (code, counts) in questions {
            put_text(&mut out, code);
            put_varint(&mut out, counts.len() as u64);
            for n in counts {
                put_varint(&mut out, zigzag(*n));
            }
        }
        let mut elements: Vec<_> = self.scores.iter().collect();
        elements.sort_by(|a, b| a.0.cmp(b.0));
        put_varint(&mut out, elements.len() as u64);
        for (code, (n, sum, sq)) in elements {
            put_text(&mut out, code);
            put_varint(&mut out, zigzag(*n));
            out.extend_from_slice(&sum.to_le_bytes());
            out.extend_from_slice(&sq.to_le_bytes());
        }
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, CellError> {
        let mut cell = CellCounts::default();
        visit(
            bytes,
            |code, counts| {
                cell.levels.insert(code.to_string(), counts.to_vec());
            },
            |code, n, sum, sq| {
                cell.scores.insert(code.to_string(), (n, sum, sq));
            },
        )?;
        Ok(cell)
    }
}

/// Reads a stored cell without building it: each question's counts by level, then each
/// element's score moments. Reports add thousands of cells, so they read them this way,
/// allocation-free.
pub fn visit(
    bytes: &[u8],
    mut question: impl FnMut(&str, &[i64]),
    mut element: impl FnMut(&str, i64, f64, f64),
) -> Result<(), CellError> {
    visit_raw(
        bytes,
        |code, counts| {
            question(code_text(code)?, counts);
            Ok(())
        },
        |code, n, sum, sq| {
            element(code_text(code)?, n, sum, sq);
            Ok(())
        },
    )
}

/// As [`visit`] with each code as its UTF-8 bytes, unchecked: for readers that compare codes
/// with ones they know (and check the text of new ones with [`code_text`]).
pub fn visit_raw(
    bytes: &[u8],
    mut question: impl FnMut(&[u8], &[i64]) -> Result<(), CellError>,
    mut element: impl FnMut(&[u8], i64, f64, f64) -> Result<(), CellError>,
) -> Result<(), CellError> {
    let mut r = Reader { bytes, at: 0 };
    if r.byte()? != FORMAT {
        return Err(CellError("unknown format"));
    }
    let mut counts: Vec<i64> = Vec::with_capacity(16);
    for _ in 0..r.varint()? {
        let code = r.text()?;
        let levels = r.varint()? as usize;
        if levels > 4096 {
            return Err(CellError("too many levels"));
        }
        counts.clear();
        for _ in 0..levels {
            counts.push(unzigzag(r.varint()?));
        }
        question(code, &counts)?;
    }
    for _ in 0..r.varint()? {
        let code = r.text()?;
        let n = unzigzag(r.varint()?);
        let (sum, sq) = (r.f64()?, r.f64()?);
        element(code, n, sum, sq)?;
    }
    if r.at != bytes.len() {
        return Err(CellError("trailing bytes"));
    }
    Ok(())
}

/// The text of a code read by [`visit_raw`].
pub fn code_text(code: &[u8]) -> Result<&str, CellError> {
    std::str::from_utf8(code).map_err(|_| CellError("bad text"))
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

fn unzigzag(n: u64) -> i64 {
    ((n >> 1) as i64) ^ -((n & 1) as i64)
}

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_text(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn byte(&mut self) -> Result<u8, CellError> {
        let b = *self.bytes.get(self.at).ok_or(CellError("truncated"))?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, CellError> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b < 0x80 {
                return Ok(n);
            }
        }
        Err(CellError("varint too long"))
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8], CellError> {
        let end = self
            .at
            .checked_add(len)
            .filter(|end| *end <= self.bytes.len())
            .ok_or(CellError("truncated"))?;
        let slice = &self.bytes[self.at..end];
        self.at = end;
        Ok(slice)
    }

    fn text(&mut self) -> Result<&'a [u8], CellError> {
        let len = self.varint()? as usize;
        self.take(len)
    }

    fn f64(&mut self) -> Result<f64, CellError> {
        let raw: [u8; 8] = self
            .take(8)?
            .try_into()
            .map_err(|_| CellError("truncated"))?;
        Ok(f64::from_le_bytes(raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CellCounts {
        let mut c = CellCounts::default();
        c.add("_responses", 0, 3);
        c.add("A1", 4, 2);
        c.add("A1", 5, 1);
        c.add("A1", 0, 1);
        c.add("EXP", 7, 300);
        c.add("Câu hỏi", 2, -1);
        c.add_score("A", 3, 2.5, 2.25);
        c.add_score("_index", 3, 2.0, 1.5);
        c
    }

    #[test]
    fn round_trips_and_stays_small() {
        let c = sample();
        let bytes = c.encode();
        assert_eq!(CellCounts::decode(&bytes).unwrap(), c);
        assert!(bytes.len() < 120, "{} bytes", bytes.len());
        assert_eq!(c.count("A1", 4), 2);
        assert_eq!(c.count("A1", 9), 0);
        assert_eq!(c.count("EXP", 7), 300);
        assert_eq!(c.count("Câu hỏi", 2), -1);
    }

    #[test]
    fn merging_adds_and_takes_back() {
        let mut total = sample();
        let mut back = CellCounts::default();
        back.merge(&sample());
        for counts in back.levels.values_mut() {
            counts.iter_mut().for_each(|n| *n = -*n);
        }
        for s in back.scores.values_mut() {
            *s = (-s.0, -s.1, -s.2);
        }
        total.merge(&sample());
        assert_eq!(total.count("A1", 4), 4);
        total.merge(&back);
        assert_eq!(total.count("A1", 4), 2);
        assert_eq!(total.scores["A"], (3, 2.5, 2.25));
    }

    #[test]
    fn damaged_values_are_errors_not_panics() {
        let bytes = sample().encode();
        for cut in 0..bytes.len() {
            assert!(CellCounts::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        assert!(CellCounts::decode(&[2]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(CellCounts::decode(&longer).is_err());
    }
}
