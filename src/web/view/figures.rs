//! A report figure as text: the share, its 95 % interval, or both.

use crate::i18n::Lang;
use crate::i18n::format as fmt;
use crate::report::figures::Figure;

/// A figure as a percentage, or a dash when it is suppressed or has no data.
pub fn pct(lang: Lang, f: &Figure) -> String {
    fmt::percent(lang, f.value)
}

/// A figure's 95 % interval, empty when there is none.
pub fn ci(lang: Lang, f: &Figure) -> String {
    fmt::interval(lang, f.ci_low, f.ci_high)
}

/// A unit index with its interval, e.g. "80,6 % (78,1–83,0)".
pub fn figure_text(lang: Lang, f: &Figure) -> String {
    let ci = ci(lang, f);
    if ci.is_empty() {
        pct(lang, f)
    } else {
        format!("{} ({ci})", pct(lang, f))
    }
}
