//! Charts as SVG drawn on the server: readable without JavaScript, with a title and a text
//! description for screen readers (the same numbers are always in a table beside them).

use std::fmt::Write;

use super::figures::Figure;
use crate::i18n::Lang;
use crate::i18n::format as fmt;

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Horizontal bars (0–100 %) with interval whiskers; suppressed values are drawn as "—".
pub fn bars(title: &str, rows: &[(String, &Figure)]) -> String {
    bars_with_id("", Lang::En, title, rows)
}

/// [`bars`] whose title and description ids start with `id`, for pages with several charts
/// (ids must be unique on a page for `aria-labelledby` to name the right chart).
/// Values are written in `lang`'s way ("82,5 %" in Vietnamese).
pub fn bars_with_id(id: &str, lang: Lang, title: &str, rows: &[(String, &Figure)]) -> String {
    let (width, row_h, label_w) = (640.0, 30.0, 230.0);
    let plot_w = width - label_w - 70.0;
    let height = rows.len() as f64 * row_h + 30.0;
    let desc: Vec<String> = rows
        .iter()
        .map(|(label, f)| format!("{label}: {}", fmt::percent(lang, f.value)))
        .collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{id}t {id}d" class="chart"><title id="{id}t">{}</title><desc id="{id}d">{}</desc>"#,
        escape(title),
        escape(&desc.join("; "))
    );
    for tick in [0.0, 25.0, 50.0, 75.0, 100.0] {
        let x = label_w + plot_w * tick / 100.0;
        let _ = write!(
            svg,
            r##"<line x1="{x}" y1="0" x2="{x}" y2="{}" stroke="#d6d9de"/><text x="{x}" y="{}" font-size="11" text-anchor="middle" fill="#444">{tick}%</text>"##,
            height - 20.0,
            height - 6.0
        );
    }
    for (i, (label, f)) in rows.iter().enumerate() {
        let y = i as f64 * row_h + 5.0;
        let short: String = if label.chars().count() > 34 {
            label.chars().take(33).chain(std::iter::once('…')).collect()
        } else {
            label.clone()
        };
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" font-size="12" text-anchor="end" fill="#1a1a1a">{}</text>"##,
            label_w - 8.0,
            y + 15.0,
            escape(&short)
        );
        match f.value {
            Some(v) => {
                let w = plot_w * v / 100.0;
                let _ = write!(
                    svg,
                    r##"<rect x="{label_w}" y="{y}" width="{w:.1}" height="20" fill="#9b1c1c"/><text x="{:.1}" y="{}" font-size="12" fill="#1a1a1a">{}</text>"##,
                    // Right of the bar and of its whisker, never on top of either.
                    label_w + plot_w * f.ci_high.unwrap_or(v).max(v) / 100.0 + 6.0,
                    y + 15.0,
                    fmt::decimal(lang, v, 1)
                );
                if let (Some(lo), Some(hi)) = (f.ci_low, f.ci_high) {
                    let (x1, x2) = (label_w + plot_w * lo / 100.0, label_w + plot_w * hi / 100.0);
                    let _ = write!(
                        svg,
                        r##"<line x1="{x1:.1}" y1="{}" x2="{x2:.1}" y2="{}" stroke="#111" stroke-width="2"/>"##,
                        y + 10.0,
                        y + 10.0
                    );
                }
            }
            None => {
                let _ = write!(
                    svg,
                    r##"<text x="{}" y="{}" font-size="12" fill="#555">—</text>"##,
                    label_w + 4.0,
                    y + 15.0
                );
            }
        }
    }
    svg.push_str("</svg>");
    svg
}

/// A line of monthly values (0–100 %); gaps where a month is suppressed.
pub fn trend(title: &str, points: &[(String, &Figure)]) -> String {
    trend_with_id("", Lang::En, title, points)
}

/// [`trend`] whose title and description ids start with `id` (see [`bars_with_id`]).
pub fn trend_with_id(id: &str, lang: Lang, title: &str, points: &[(String, &Figure)]) -> String {
    let (width, height, left, bottom) = (640.0, 220.0, 40.0, 30.0);
    let plot_w = width - left - 10.0;
    let plot_h = height - bottom - 10.0;
    let step = if points.len() > 1 {
        plot_w / (points.len() - 1) as f64
    } else {
        0.0
    };
    let desc: Vec<String> = points
        .iter()
        .map(|(m, f)| format!("{m}: {}", fmt::percent(lang, f.value)))
        .collect();
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{id}tt {id}td" class="chart"><title id="{id}tt">{}</title><desc id="{id}td">{}</desc>"#,
        escape(title),
        escape(&desc.join("; "))
    );
    for tick in [0.0, 50.0, 80.0, 100.0] {
        let y = 10.0 + plot_h * (1.0 - tick / 100.0);
        let _ = write!(
            svg,
            r##"<line x1="{left}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#d6d9de"/><text x="{}" y="{:.1}" font-size="11" text-anchor="end" fill="#444">{tick}%</text>"##,
            width - 10.0,
            left - 4.0,
            y + 4.0
        );
    }
    let mut path = String::new();
    let mut pen_down = false;
    for (i, (month, f)) in points.iter().enumerate() {
        let x = left + step * i as f64;
        if i % 2 == 0 || points.len() <= 6 {
            let _ = write!(
                svg,
                r##"<text x="{x:.1}" y="{}" font-size="10" text-anchor="middle" fill="#444">{}</text>"##,
                height - 10.0,
                escape(month)
            );
        }
        match f.value {
            Some(v) => {
                let y = 10.0 + plot_h * (1.0 - v / 100.0);
                let _ = write!(path, "{}{x:.1},{y:.1} ", if pen_down { "L" } else { "M" });
                let _ = write!(
                    svg,
                    r##"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="#9b1c1c"/>"##
                );
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    if !path.is_empty() {
        let _ = write!(
            svg,
            r##"<path d="{}" fill="none" stroke="#9b1c1c" stroke-width="2"/>"##,
            path.trim()
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fig(v: Option<f64>) -> Figure {
        Figure {
            n: 10,
            value: v,
            ci_low: v.map(|v| v - 5.0),
            ci_high: v.map(|v| v + 5.0),
            se: None,
        }
    }

    #[test]
    fn charts_are_accessible_svg_with_their_numbers_in_text() {
        let (a, b) = (fig(Some(82.5)), fig(None));
        let svg = bars("Chỉ số <A>", &[("A".into(), &a), ("B".into(), &b)]);
        assert!(svg.starts_with("<svg") && svg.contains("role=\"img\""));
        assert!(svg.contains("<title id=\"t\">Chỉ số &lt;A&gt;</title>"));
        assert!(svg.contains("A: 82.5%; B: —"));
        let line = trend(
            "Xu hướng",
            &[
                ("2026-01".into(), &a),
                ("2026-02".into(), &b),
                ("2026-03".into(), &a),
            ],
        );
        assert_eq!(line.matches("<circle").count(), 2);
        assert!(line.contains("M") && line.contains("2026-02: —"));
    }
}
