//! The release document: every published figure of one period, in the JSON schema
//! `sipas-release/1` (documented in the README, section "Publishing"). The document is built
//! only from the staff report's own computation ([`crate::report::unit_report`] and
//! [`crate::report::ranking`]), with the report's suppression already applied: a suppressed
//! cell is `null` here, never a number.
//!
//! The signed bytes are the document serialised by [`ReleaseDocument::canonical_bytes`]:
//! fields in the order of these structs, two-space indentation, a final line break. Readers
//! verify those exact bytes; they never need to re-serialise.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::report::figures::Figure;

/// Name and version of the document format.
pub const SCHEMA: &str = "sipas-release/1";

/// Version of the computation behind the figures (the report's method plus the rank rule).
/// Changes when a published figure would be computed differently.
pub const METHOD_VERSION: &str = "sipas-report-2026.12/rank-overlap-95";

/// Licence of the open data.
pub const LICENCE_URL: &str = "https://creativecommons.org/licenses/by/4.0/";
pub const LICENCE_NAME: &str = "CC BY 4.0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseDocument {
    pub schema: String,
    pub release: ReleaseMeta,
    pub method: MethodInfo,
    pub units: Vec<UnitResult>,
    pub rankings: Vec<Ranking>,
    /// What changed against the release this one corrects (empty for a first release).
    pub changes: Vec<FigureChange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReleaseMeta {
    pub id: String,
    pub period: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// 1 for the first release of the period, then 2, 3, … for corrections.
    pub sequence: i64,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// The release this one corrects, if any.
    pub corrects: Option<String>,
    pub note: String,
    pub publisher_vi: String,
    pub publisher_en: String,
    pub licence: String,
    /// The Ed25519 public key (32 bytes, base64) whose signature accompanies the document.
    pub signing_key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MethodInfo {
    pub version: String,
    pub confidence: f64,
    /// Cells with fewer answers are published as `null`.
    pub min_n: u64,
    /// e of the required sample n = N / (1 + N·e²).
    pub sample_margin: f64,
    pub rank_rule: String,
}

/// A published estimate: percentage with its 95 % interval and standard error, unrounded;
/// all `null` when the cell is suppressed. `n` is the number of answers (respondents for
/// indices) behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub n: u64,
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub se: Option<f64>,
}

impl From<&Figure> for Estimate {
    fn from(f: &Figure) -> Self {
        // The report's own suppression: no value means no interval and no error either.
        let shown = !f.suppressed();
        Self {
            n: f.n,
            value: f.value,
            ci_low: f.ci_low.filter(|_| shown),
            ci_high: f.ci_high.filter(|_| shown),
            se: f.se.filter(|_| shown),
        }
    }
}

impl Estimate {
    pub fn suppressed(&self) -> bool {
        self.value.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitResult {
    pub code: String,
    pub name_vi: String,
    pub name_en: String,
    pub kind: String,
    pub parent_code: Option<String>,
    /// SIPAS responses counted (all channels).
    pub responses: u64,
    pub index: Estimate,
    pub elements: Vec<ElementResult>,
    pub sample: SampleResult,
    pub dossier_rate: DossierResult,
    pub channels: Option<ChannelResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ElementResult {
    pub code: String,
    pub title_vi: String,
    pub title_en: String,
    pub index: Estimate,
    pub items: Vec<ItemResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemResult {
    pub code: String,
    pub text_vi: String,
    pub text_en: String,
    /// Share satisfied (4–5 of 5) among valid answers.
    pub satisfied: Estimate,
    /// Mean level (1–5), `null` when suppressed.
    pub mean: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleResult {
    /// Dossiers completed in the period (N).
    pub population: u64,
    pub required: u64,
    pub achieved: u64,
    pub sufficient: bool,
}

/// The Decision 766 rate: (dossiers − rated unsatisfied or late) ÷ dossiers, in percent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DossierResult {
    pub dossiers: u64,
    pub rated_unsatisfied: u64,
    pub late: u64,
    pub rate: Option<f64>,
}

/// Counter e-survey against the independent (paper) collection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelResult {
    pub counter: Estimate,
    pub independent: Estimate,
    /// Counter minus independent, percentage points.
    pub difference: Option<f64>,
    pub p_value: Option<f64>,
    pub significant: bool,
}

/// The ranking of one unit level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ranking {
    pub kind: String,
    pub rows: Vec<RankRow>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankRow {
    pub unit_code: String,
    /// Rank by the estimate alone (sorting only); `null` when the unit is not ranked (sample
    /// below the requirement, or no index).
    pub rank: Option<u32>,
    /// The range of ranks the intervals allow (see the rank rule).
    pub rank_low: Option<u32>,
    pub rank_high: Option<u32>,
    pub tied: bool,
    pub index: Estimate,
    pub sufficient: bool,
}

impl RankRow {
    /// "3", "3–5", or "—" for an unranked unit.
    pub fn rank_label(&self) -> String {
        match (self.rank_low, self.rank_high) {
            (Some(low), Some(high)) if low != high => format!("{low}–{high}"),
            (Some(low), _) => low.to_string(),
            _ => "—".into(),
        }
    }
}

/// One published figure that differs from the corrected release.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FigureChange {
    /// e.g. `units/STP/index/value` or `rankings/department/STP/rank_low`.
    pub path: String,
    pub previous: Value,
    pub current: Value,
}

impl ReleaseDocument {
    /// The exact bytes that are signed, stored and downloaded.
    pub fn canonical_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        let mut bytes = serde_json::to_vec_pretty(self)?;
        bytes.push(b'\n');
        Ok(bytes)
    }

    pub fn unit(&self, code: &str) -> Option<&UnitResult> {
        self.units.iter().find(|u| u.code == code)
    }

    pub fn rank_of(&self, code: &str) -> Option<(&str, &RankRow)> {
        self.rankings.iter().find_map(|r| {
            r.rows
                .iter()
                .find(|row| row.unit_code == code)
                .map(|row| (r.kind.as_str(), row))
        })
    }

    /// Every published figure by path (units and rankings), for comparing releases.
    pub fn figures(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for unit in &self.units {
            if let Ok(value) = serde_json::to_value(unit) {
                flatten(&format!("units/{}", unit.code), &value, &mut out);
            }
        }
        for ranking in &self.rankings {
            for row in &ranking.rows {
                if let Ok(value) = serde_json::to_value(row) {
                    flatten(
                        &format!("rankings/{}/{}", ranking.kind, row.unit_code),
                        &value,
                        &mut out,
                    );
                }
            }
        }
        out
    }
}

/// Leaves of `value` under `prefix`; arrays of objects with a `code` are keyed by it, so an
/// element or item keeps its path when others are added or removed.
fn flatten(prefix: &str, value: &Value, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{prefix}/{k}"), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                let key = v
                    .get("code")
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| i.to_string());
                flatten(&format!("{prefix}/{key}"), v, out);
            }
        }
        leaf => {
            out.insert(prefix.to_string(), leaf.clone());
        }
    }
}

/// Equal values, numbers within floating-point noise (1e-9 relative): the report sums rollup
/// cells in no fixed order, so recomputing unchanged data can move the last digit.
fn same_figure(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) if a.is_number() && b.is_number() => {
            (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)
        }
        _ => a == b,
    }
}

/// What differs between two releases' figures: changed, added and removed values (a missing
/// value is `null`). Names are compared too, so a renamed unit shows.
pub fn diff(previous: &ReleaseDocument, current: &ReleaseDocument) -> Vec<FigureChange> {
    let (old, new) = (previous.figures(), current.figures());
    let mut paths: Vec<&String> = old.keys().chain(new.keys()).collect();
    paths.sort();
    paths.dedup();
    paths
        .into_iter()
        .filter_map(|path| {
            let (a, b) = (
                old.get(path).cloned().unwrap_or(Value::Null),
                new.get(path).cloned().unwrap_or(Value::Null),
            );
            (!same_figure(&a, &b)).then(|| FigureChange {
                path: path.clone(),
                previous: a,
                current: b,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn figures_differ_beyond_rounding_noise_only() {
        assert!(same_figure(
            &json!(3.796703296703297),
            &json!(3.7967032967032965)
        ));
        assert!(same_figure(&json!(6), &json!(6)));
        assert!(!same_figure(&json!(6), &json!(7)));
        assert!(!same_figure(&json!(70.39), &json!(70.4)));
        assert!(!same_figure(&json!(null), &json!(0.0)));
        assert!(!same_figure(&json!("Sở Tư pháp"), &json!("Sở Tư Pháp")));
    }
}
