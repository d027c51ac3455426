//! Open data built from a release document: the CSV table, the DCAT-style catalogue and the
//! embeddable SVG badge. All of it is derived from the signed document alone, so nothing a
//! release suppressed can appear here.

use std::sync::Arc;

use serde_json::{Value, json};

use super::document::{Estimate, LICENCE_NAME, LICENCE_URL, ReleaseDocument};
use super::release::Release;
use super::signing::sha256_hex;
use crate::text::neutralise_cell;

/// Columns of the CSV (one row per unit and measure; see the README's data schema).
pub const CSV_COLUMNS: [&str; 15] = [
    "period",
    "release_sequence",
    "unit_code",
    "unit_name_vi",
    "unit_name_en",
    "unit_kind",
    "measure",
    "code",
    "name_vi",
    "name_en",
    "value",
    "ci_low",
    "ci_high",
    "n",
    "suppressed",
];

fn num(v: Option<f64>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// One CSV line before the unit and release columns are added.
struct Line<'a> {
    measure: &'a str,
    code: &'a str,
    name_vi: &'a str,
    name_en: &'a str,
    value: Option<f64>,
    low: Option<f64>,
    high: Option<f64>,
    n: Option<u64>,
    suppressed: bool,
}

impl<'a> Line<'a> {
    fn estimate(measure: &'a str, code: &'a str, vi: &'a str, en: &'a str, e: &Estimate) -> Self {
        Self {
            measure,
            code,
            name_vi: vi,
            name_en: en,
            value: e.value,
            low: e.ci_low,
            high: e.ci_high,
            n: Some(e.n),
            suppressed: e.suppressed(),
        }
    }

    fn plain(
        measure: &'a str,
        code: &'a str,
        vi: &'a str,
        en: &'a str,
        value: Option<f64>,
    ) -> Self {
        Self {
            measure,
            code,
            name_vi: vi,
            name_en: en,
            value,
            low: None,
            high: None,
            n: None,
            suppressed: false,
        }
    }
}

/// The release as CSV: UTF-8 with a BOM (Excel), CRLF, text cells neutralised against formula
/// injection; numbers unrounded, empty when suppressed.
pub fn csv(doc: &ReleaseDocument) -> Vec<u8> {
    let mut out = Vec::from("\u{feff}".as_bytes());
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let _ = w.write_record(CSV_COLUMNS);
    let sequence = doc.release.sequence.to_string();
    for unit in &doc.units {
        let mut lines = vec![Line::estimate(
            "index",
            "SIPAS",
            "Chỉ số SIPAS",
            "SIPAS index",
            &unit.index,
        )];
        for e in &unit.elements {
            lines.push(Line::estimate(
                "element",
                &e.code,
                &e.title_vi,
                &e.title_en,
                &e.index,
            ));
            for i in &e.items {
                lines.push(Line::estimate(
                    "item",
                    &i.code,
                    &i.text_vi,
                    &i.text_en,
                    &i.satisfied,
                ));
            }
        }
        if let Some(c) = &unit.channels {
            lines.push(Line::estimate(
                "channel",
                "counter",
                "Khảo sát điện tử tại quầy",
                "Counter e-survey",
                &c.counter,
            ));
            lines.push(Line::estimate(
                "channel",
                "independent",
                "Thu thập độc lập (phiếu giấy)",
                "Independent collection (paper)",
                &c.independent,
            ));
        }
        lines.push(Line {
            n: Some(unit.dossier_rate.dossiers),
            ..Line::plain(
                "dossier_rate_766",
                "766",
                "Tỷ lệ hài lòng theo Quyết định 766",
                "Decision 766 rate",
                unit.dossier_rate.rate,
            )
        });
        lines.push(Line {
            n: Some(unit.sample.population),
            ..Line::plain(
                "sample",
                "required",
                "Cỡ mẫu cần thiết",
                "Required sample",
                Some(unit.sample.required as f64),
            )
        });
        lines.push(Line::plain(
            "sample",
            "achieved",
            "Cỡ mẫu đạt được",
            "Achieved sample",
            Some(unit.sample.achieved as f64),
        ));
        if let Some((kind, r)) = doc.rank_of(&unit.code) {
            lines.push(Line {
                low: r.rank_low.map(f64::from),
                high: r.rank_high.map(f64::from),
                ..Line::plain(
                    "rank",
                    kind,
                    "Thứ hạng (khoảng)",
                    "Rank (range)",
                    r.rank.map(f64::from),
                )
            });
        }
        for line in lines {
            let cells: Vec<String> = vec![
                neutralise_cell(&doc.release.period).into_owned(),
                sequence.clone(),
                neutralise_cell(&unit.code).into_owned(),
                neutralise_cell(&unit.name_vi).into_owned(),
                neutralise_cell(&unit.name_en).into_owned(),
                neutralise_cell(&unit.kind).into_owned(),
                line.measure.to_string(),
                neutralise_cell(line.code).into_owned(),
                neutralise_cell(line.name_vi).into_owned(),
                neutralise_cell(line.name_en).into_owned(),
                num(line.value),
                num(line.low),
                num(line.high),
                line.n.map(|n| n.to_string()).unwrap_or_default(),
                line.suppressed.to_string(),
            ];
            let _ = w.write_record(&cells);
        }
    }
    if let Ok(body) = w.into_inner() {
        out.extend_from_slice(&body);
    }
    out
}

/// The DCAT-style catalogue of the releases in force: title, period, publisher, licence,
/// download URLs with their SHA-256 checksums.
pub fn catalog(base: &str, releases: &[(Release, Arc<ReleaseDocument>)]) -> Value {
    let publisher = releases
        .first()
        .map(|(_, d)| {
            (
                d.release.publisher_vi.clone(),
                d.release.publisher_en.clone(),
            )
        })
        .unwrap_or_else(|| ("SIPAS".into(), "SIPAS".into()));
    let datasets: Vec<Value> = releases
        .iter()
        .map(|(r, d)| {
            let csv_bytes = csv(d);
            let url = |file: &str| format!("{base}/public/releases/{}/{file}", r.id);
            json!({
                "@type": "dcat:Dataset",
                "identifier": r.id,
                "title": format!("Chỉ số hài lòng SIPAS kỳ {} (lần {})", r.period, r.sequence),
                "title_en": format!("SIPAS satisfaction index, period {} (release {})", r.period, r.sequence),
                "description": "Chỉ số hài lòng về sự phục vụ hành chính theo đơn vị, với khoảng tin cậy 95 %, cỡ mẫu, tỷ lệ theo Quyết định 766 và xếp hạng theo khoảng.",
                "description_en": "Satisfaction with public administrative services per unit, with 95 % intervals, sample sizes, the Decision 766 rate and ranks as ranges.",
                "keyword": ["SIPAS", "hài lòng", "satisfaction", "public administration"],
                "language": ["vi", "en"],
                "temporal": { "startDate": d.release.from, "endDate": d.release.to },
                "period": r.period,
                "version": r.sequence.to_string(),
                "issued": d.release.created_at,
                "publisher": { "name": d.release.publisher_vi, "name_en": d.release.publisher_en },
                "license": LICENCE_URL,
                "isReplacedBy": Value::Null,
                "replaces": r.corrects,
                "landingPage": format!("{base}/public/releases/{}", r.id),
                "distribution": [
                    {
                        "@type": "dcat:Distribution",
                        "title": "JSON (sipas-release/1), signed",
                        "downloadURL": url("release.json"),
                        "mediaType": "application/json",
                        "conformsTo": "sipas-release/1",
                        "checksum": { "algorithm": "sha256", "checksumValue": r.sha256 },
                        "signature": { "algorithm": "Ed25519", "downloadURL": url("release.json.sig"), "publicKey": r.public_key },
                    },
                    {
                        "@type": "dcat:Distribution",
                        "title": "CSV (UTF-8 with BOM)",
                        "downloadURL": url("release.csv"),
                        "mediaType": "text/csv",
                        "checksum": { "algorithm": "sha256", "checksumValue": sha256_hex(&csv_bytes) },
                    }
                ],
            })
        })
        .collect();
    json!({
        "@context": "https://www.w3.org/ns/dcat2.jsonld",
        "@type": "dcat:Catalog",
        "title": "Kết quả khảo sát sự hài lòng (SIPAS)",
        "title_en": "Citizen satisfaction results (SIPAS)",
        "publisher": { "name": publisher.0, "name_en": publisher.1 },
        "license": LICENCE_URL,
        "license_name": LICENCE_NAME,
        "homepage": format!("{base}/public"),
        "dataset": datasets,
    })
}

fn escape_xml(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A small badge for agency websites: "SIPAS 2026 | 82.5 % · n 340". A suppressed index shows
/// a dash, never the number.
pub fn badge(code: &str, period: &str, index: &Estimate) -> String {
    let left = format!("SIPAS {period}");
    let right = match index.value {
        Some(v) => format!("{v:.1} % · n {}", index.n),
        None => "— · n < min".to_string(),
    };
    // About 6.5 px per character of 11 px Verdana-like text, plus padding.
    let width = |s: &str| (s.chars().count() as f64 * 6.5 + 12.0).round() as u32;
    let (lw, rw) = (width(&left), width(&right));
    let total = lw + rw;
    let label = escape_xml(&format!("{code}: {left}: {right}"));
    let (left, right) = (escape_xml(&left), escape_xml(&right));
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{label}"><title>{label}</title><rect width="{lw}" height="20" fill="#333"/><rect x="{lw}" width="{rw}" height="20" fill="#0b5394"/><g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11"><text x="6" y="14">{left}</text><text x="{rx}" y="14">{right}</text></g></svg>"##,
        rx = lw + 6
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_suppressed_badge_shows_no_number() {
        let hidden = Estimate {
            n: 3,
            value: None,
            ci_low: None,
            ci_high: None,
            se: None,
        };
        let svg = badge("STP", "2026", &hidden);
        assert!(svg.contains("—") && !svg.contains('%'), "{svg}");
        let shown = Estimate {
            value: Some(82.456),
            n: 340,
            ..hidden
        };
        let svg = badge("A<B", "2026", &shown);
        assert!(
            svg.contains("82.5 % · n 340") && svg.contains("A&lt;B"),
            "{svg}"
        );
    }
}
