//! Reports as text for scripts and as CSV for spreadsheets (UTF-8 with a BOM, so Excel shows
//! Vietnamese correctly).

use std::fmt::Write;

use super::figures::{Figure, FormFigures};
use super::{RankingRow, UnitReport};

/// Byte order mark that makes Excel read CSV as UTF-8.
pub const BOM: &str = "\u{feff}";

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
    for c in &r.channels {
        let _ = writeln!(
            out,
            "  {} via {}: {}",
            c.form,
            c.channel,
            figure_text(&c.index)
        );
    }
    let k = &r.kiosk;
    let _ = writeln!(
        out,
        "One-tap kiosk ({}): {} taps, {} satisfied{}",
        if r.kiosk_in_index {
            "in the index"
        } else {
            "kept out of the index"
        },
        k.taps,
        k.satisfied_share
            .map(|v| format!("{v:.1}%"))
            .unwrap_or_else(|| "—".into()),
        k.weight
            .map(|w| format!(", {w:.1}% of all answers"))
            .unwrap_or_default()
    );
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

/// One cell of an exported table: numbers stay numbers in spreadsheets; text is written through
/// [`crate::text::neutralise_cell`] in every format, so no name, code or answer a person typed
/// can run as a formula in the reader's spreadsheet (nor after a CSV re-save of the XLSX).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    Number(f64),
    Empty,
}

impl Cell {
    fn opt(v: Option<f64>) -> Self {
        v.map(Cell::Number).unwrap_or(Cell::Empty)
    }

    fn count(v: u64) -> Self {
        Cell::Number(v as f64)
    }

    fn text(s: impl Into<String>) -> Self {
        Cell::Text(s.into())
    }

    fn csv(&self) -> String {
        match self {
            Cell::Text(s) => {
                let s = crate::text::neutralise_cell(s);
                if s.contains([',', '"', '\n', '\r']) {
                    format!("\"{}\"", s.replace('"', "\"\""))
                } else {
                    s.into_owned()
                }
            }
            Cell::Number(n) if n.fract() == 0.0 && n.abs() < 1e15 => format!("{}", *n as i64),
            Cell::Number(n) => format!("{n:.1}"),
            Cell::Empty => String::new(),
        }
    }
}

type Table = Vec<Vec<Cell>>;

fn form_rows(out: &mut Table, f: &FormFigures) {
    let fig = |kind: &str,
               code: &str,
               label: &str,
               x: &Figure,
               mean: Option<f64>,
               dist: Option<&Vec<u64>>,
               no_answer: Option<u64>| {
        let mut cells = vec![
            Cell::text(&f.form),
            Cell::text(kind),
            Cell::text(code),
            Cell::text(label),
            Cell::count(x.n),
            Cell::opt(x.value),
            Cell::opt(x.ci_low),
            Cell::opt(x.ci_high),
        ];
        cells.push(Cell::opt(mean));
        for i in 0..5 {
            cells.push(
                dist.and_then(|d| d.get(i))
                    .map(|v| Cell::count(*v))
                    .unwrap_or(Cell::Empty),
            );
        }
        cells.push(no_answer.map(Cell::count).unwrap_or(Cell::Empty));
        cells
    };
    out.push(fig("index", "", "Chỉ số chung", &f.index, None, None, None));
    for e in &f.elements {
        out.push(fig(
            "element",
            &e.code,
            &e.title_vi,
            &e.index,
            None,
            None,
            None,
        ));
        for i in &e.items {
            out.push(fig(
                "item",
                &i.code,
                &i.text_vi,
                &i.satisfied,
                i.mean,
                i.distribution.as_ref(),
                Some(i.no_answer),
            ));
        }
    }
    if let Some(o) = &f.overall_question {
        out.push(fig(
            "overall",
            &o.code,
            &o.text_vi,
            &o.satisfied,
            o.mean,
            o.distribution.as_ref(),
            Some(o.no_answer),
        ));
    }
}

/// The figures of a unit report as rows (title row, header, then one row per figure).
pub fn unit_table(r: &UnitReport) -> Table {
    let mut out = vec![vec![
        Cell::text(format!("{} — {}", r.unit.code, r.unit.name_vi)),
        Cell::text(&r.period),
    ]];
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
    out.push(header.iter().map(|h| Cell::text(*h)).collect());
    for f in r.sipas.iter().chain(r.transaction.iter()) {
        form_rows(&mut out, f);
    }
    // Channels apart: each form's index per channel, then the one-tap kiosk.
    for c in &r.channels {
        let label = crate::survey::channel::Channel::parse(&c.channel)
            .map(|ch| ch.label().0)
            .unwrap_or_default();
        out.push(vec![
            Cell::text(&c.form),
            Cell::text("channel"),
            Cell::text(&c.channel),
            Cell::text(label),
            Cell::count(c.index.n),
            Cell::opt(c.index.value),
            Cell::opt(c.index.ci_low),
            Cell::opt(c.index.ci_high),
        ]);
    }
    let k = &r.kiosk;
    let mut kiosk = vec![
        Cell::text("kiosk"),
        Cell::text("kiosk_taps"),
        Cell::text(if r.kiosk_in_index {
            "in_index"
        } else {
            "apart"
        }),
        Cell::text("Máy đánh giá một chạm (tỷ lệ hài lòng)"),
        Cell::count(k.taps),
        Cell::opt(k.satisfied_share),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
    ];
    kiosk.extend(k.by_face.iter().map(|n| Cell::count(*n)));
    out.push(kiosk);
    out.push(vec![
        Cell::text("kiosk"),
        Cell::text("kiosk_weight"),
        Cell::text(""),
        Cell::text("Tỷ trọng máy đánh giá trong tổng số ý kiến (%)"),
        Cell::count(k.taps),
        Cell::opt(k.weight),
    ]);
    out
}

/// A ranking as rows.
pub fn ranking_table(rows: &[RankingRow], period: &str) -> Table {
    let mut out = vec![vec![Cell::text("period"), Cell::text(period)]];
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
    out.push(header.iter().map(|h| Cell::text(*h)).collect());
    for r in rows {
        out.push(vec![
            r.rank
                .map(|x| Cell::Number(x as f64))
                .unwrap_or(Cell::Empty),
            Cell::text(&r.unit.code),
            Cell::text(&r.unit.name_vi),
            Cell::opt(r.index.value),
            Cell::opt(r.index.ci_low),
            Cell::opt(r.index.ci_high),
            Cell::count(r.sample.achieved),
            Cell::count(r.sample.required),
            Cell::text(r.sample.sufficient.to_string()),
            Cell::opt(r.dossier_rate),
            Cell::opt(r.gap),
            Cell::text(r.gap_significant.to_string()),
        ]);
    }
    out
}

/// CSV with a BOM and CRLF line ends, as Excel expects.
pub fn to_csv(table: &Table) -> String {
    let mut out = String::from(BOM);
    for row in table {
        out.push_str(&row.iter().map(Cell::csv).collect::<Vec<_>>().join(","));
        out.push_str("\r\n");
    }
    out
}

/// An XLSX workbook with one sheet; the header row (second row) in bold.
pub fn to_xlsx(table: &Table, sheet: &str) -> anyhow::Result<Vec<u8>> {
    use rust_xlsxwriter::{Format, Workbook};
    let mut workbook = Workbook::new();
    let bold = Format::new().set_bold();
    let worksheet = workbook.add_worksheet();
    worksheet.set_name(sheet)?;
    for (r, row) in table.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            let (r, c) = (r as u32, c as u16);
            match cell {
                // `write_string` never makes a formula; the quote keeps a CSV re-save safe.
                Cell::Text(s) if r <= 1 => {
                    worksheet.write_string_with_format(
                        r,
                        c,
                        crate::text::neutralise_cell(s),
                        &bold,
                    )?;
                }
                Cell::Text(s) => {
                    worksheet.write_string(r, c, crate::text::neutralise_cell(s))?;
                }
                Cell::Number(n) => {
                    worksheet.write_number(r, c, *n)?;
                }
                Cell::Empty => {}
            }
        }
    }
    worksheet.set_column_width(3, 48)?;
    Ok(workbook.save_to_buffer()?)
}

/// The figures of a unit report as CSV.
pub fn unit_csv(r: &UnitReport) -> String {
    to_csv(&unit_table(r))
}

/// A ranking as CSV.
pub fn ranking_csv(rows: &[RankingRow], period: &str) -> String {
    to_csv(&ranking_table(rows, period))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_and_keeps_numbers_plain() {
        let t = vec![vec![
            Cell::text("a,b"),
            Cell::Number(82.5),
            Cell::Number(12.0),
            Cell::Empty,
            Cell::text("Sở \"X\""),
        ]];
        assert_eq!(
            to_csv(&t),
            format!("{BOM}\"a,b\",82.5,12,,\"Sở \"\"X\"\"\"\r\n")
        );
    }

    #[test]
    fn person_typed_text_is_neutralised_and_numbers_are_not() {
        let t = vec![vec![
            Cell::text("=HYPERLINK(\"http://x\",\"y\")"),
            Cell::text("@SUM(1)"),
            Cell::Number(-2.5),
            Cell::text("Sở Tư pháp"),
        ]];
        assert_eq!(
            to_csv(&t),
            format!(
                "{BOM}\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\",'@SUM(1),-2.5,Sở Tư pháp\r\n"
            )
        );
    }

    #[test]
    fn xlsx_is_a_zip_workbook() {
        let t = vec![vec![Cell::text("Sở Tư pháp"), Cell::Number(1.5)]];
        let bytes = to_xlsx(&t, "SIPAS").unwrap();
        assert!(bytes.starts_with(b"PK"), "xlsx files are zip archives");
    }
}
