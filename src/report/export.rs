//! Reports as text for scripts and as CSV for spreadsheets (UTF-8 with a BOM, so Excel shows
//! Vietnamese correctly).

use std::fmt::Write;

use super::figures::{Figure, FormFigures};
use super::{RankingRow, UnitReport};

/// Byte order mark that makes Excel read CSV as UTF-8.
pub const BOM: &str = "\u{feff}";

fn pct(v: Option<f64>) -> String {
    v.map(|v| format!("{v:.1}")).unwrap_or_default()
}

fn figure_text(f: &Figure) -> String {
    match (f.value, f.ci_low, f.ci_high) {
        (Some(v), Some(lo), Some(hi)) => format!("{v:.1}% [{lo:.1}–{hi:.1}] n={}", f.n),
        (Some(v), _, _) => format!("{v:.1}% n={}", f.n),
        _ => format!("— (n={})", f.n),
    }
}

/// Plain text of a unit report, for `sipas report`.
pub fn text(r: &UnitReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} — {} ({})", r.unit.code, r.unit.name_vi, r.period);
    if let Some(s) = &r.sipas {
        let _ = writeln!(out, "SIPAS index: {}", figure_text(&s.index));
        for e in &s.elements {
            let _ = writeln!(
                out,
                "  {} {}: {}",
                e.code,
                e.title_vi,
                figure_text(&e.index)
            );
            for i in &e.items {
                let mean = i.mean.map(|m| format!(" mean {m:.2}")).unwrap_or_default();
                let _ = writeln!(out, "    {}: {}{}", i.code, figure_text(&i.satisfied), mean);
            }
        }
        if let Some(o) = &s.overall_question {
            let _ = writeln!(out, "  Overall question: {}", figure_text(&o.satisfied));
        }
    }
    if let Some(change) = &r.change {
        let diff = change
            .difference
            .map(|d| format!("{d:+.1} points"))
            .unwrap_or_else(|| "n/a".into());
        let flag = if change.significant {
            " (significant)"
        } else {
            ""
        };
        let _ = writeln!(out, "Change since {}: {diff}{flag}", change.previous_period);
    }
    if let Some(gap) = &r.gap {
        let _ = writeln!(
            out,
            "Counter e-survey: {} | independent: {}",
            figure_text(&gap.counter),
            figure_text(&gap.independent)
        );
    }
    let d = &r.dossier_rate;
    let _ = writeln!(
        out,
        "Dossier rate (Decision 766): {} (dossiers {}, rated unsatisfied {}, late {})",
        d.rate
            .map(|v| format!("{v:.1}%"))
            .unwrap_or_else(|| "—".into()),
        d.counts.dossiers,
        d.counts.rated_unsatisfied,
        d.counts.late
    );
    let s = &r.sample;
    let _ = writeln!(
        out,
        "Sample: {} achieved / {} required (N = {}){}",
        s.achieved,
        s.required,
        s.population,
        if s.sufficient {
            ""
        } else {
            " — BELOW REQUIRED SAMPLE"
        }
    );
    out
}

fn csv_line(out: &mut String, cells: &[String]) {
    let line: Vec<String> = cells
        .iter()
        .map(|c| {
            if c.contains([',', '"', '\n']) {
                format!("\"{}\"", c.replace('"', "\"\""))
            } else {
                c.clone()
            }
        })
        .collect();
    out.push_str(&line.join(","));
    out.push_str("\r\n");
}

fn form_rows(out: &mut String, f: &FormFigures) {
    let fig = |kind: &str,
               code: &str,
               label: &str,
               x: &Figure,
               mean: Option<f64>,
               dist: Option<&Vec<u64>>,
               no_answer: Option<u64>| {
        let mut cells = vec![
            f.form.clone(),
            kind.into(),
            code.into(),
            label.into(),
            x.n.to_string(),
            pct(x.value),
            pct(x.ci_low),
            pct(x.ci_high),
        ];
        cells.push(mean.map(|m| format!("{m:.2}")).unwrap_or_default());
        for i in 0..5 {
            cells.push(
                dist.and_then(|d| d.get(i))
                    .map(|v| v.to_string())
                    .unwrap_or_default(),
            );
        }
        cells.push(no_answer.map(|v| v.to_string()).unwrap_or_default());
        cells
    };
    csv_line(
        out,
        &fig("index", "", "Chỉ số chung", &f.index, None, None, None),
    );
    for e in &f.elements {
        csv_line(
            out,
            &fig("element", &e.code, &e.title_vi, &e.index, None, None, None),
        );
        for i in &e.items {
            csv_line(
                out,
                &fig(
                    "item",
                    &i.code,
                    &i.text_vi,
                    &i.satisfied,
                    i.mean,
                    i.distribution.as_ref(),
                    Some(i.no_answer),
                ),
            );
        }
    }
    if let Some(o) = &f.overall_question {
        csv_line(
            out,
            &fig(
                "overall",
                &o.code,
                &o.text_vi,
                &o.satisfied,
                o.mean,
                o.distribution.as_ref(),
                Some(o.no_answer),
            ),
        );
    }
}

/// The figures of a unit report as CSV.
pub fn unit_csv(r: &UnitReport) -> String {
    let mut out = String::from(BOM);
    csv_line(
        &mut out,
        &[
            format!("{} — {}", r.unit.code, r.unit.name_vi),
            r.period.clone(),
        ]
        .map(|s| s.to_string()),
    );
    let header = [
        "form",
        "level",
        "code",
        "label",
        "n",
        "percent",
        "ci_low",
        "ci_high",
        "mean",
        "level_1",
        "level_2",
        "level_3",
        "level_4",
        "level_5",
        "no_answer",
    ];
    csv_line(&mut out, &header.map(String::from));
    for f in r.sipas.iter().chain(r.transaction.iter()) {
        form_rows(&mut out, f);
    }
    out
}

/// A ranking as CSV.
pub fn ranking_csv(rows: &[RankingRow], period: &str) -> String {
    let mut out = String::from(BOM);
    csv_line(&mut out, &["period".into(), period.into()]);
    let header = [
        "rank",
        "code",
        "unit",
        "index",
        "ci_low",
        "ci_high",
        "n",
        "required",
        "sufficient",
        "dossier_rate",
        "counter_minus_paper",
        "gap_significant",
    ];
    csv_line(&mut out, &header.map(String::from));
    for r in rows {
        csv_line(
            &mut out,
            &[
                r.rank.map(|x| x.to_string()).unwrap_or_default(),
                r.unit.code.clone(),
                r.unit.name_vi.clone(),
                pct(r.index.value),
                pct(r.index.ci_low),
                pct(r.index.ci_high),
                r.sample.achieved.to_string(),
                r.sample.required.to_string(),
                r.sample.sufficient.to_string(),
                pct(r.dossier_rate),
                pct(r.gap),
                r.gap_significant.to_string(),
            ],
        );
    }
    out
}
