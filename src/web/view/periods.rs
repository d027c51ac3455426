//! The period picker of the dashboards (province and agency).

use maud::{Markup, html};

use crate::i18n::Lang;
use crate::report::period::Period;

/// A text field holding the period shown, with the forms it takes.
pub fn period_picker(lang: Lang, action: &str, period: &Period) -> Markup {
    html! {
        form.search method="get" action=(action) {
            label for="period" { (lang.pick("Kỳ", "Period")) }
            input #period type="text" name="period" value=(period.label()) size="12"
                aria-describedby="period-hint";
            button type="submit" { (lang.pick("Xem", "Show")) }
        }
        p.hint #period-hint { (lang.pick(
            "Ví dụ: 2026, 2026-Q3, 2026-07. Mặc định là tháng gần nhất có số liệu.",
            "For example 2026, 2026-Q3, 2026-07. By default the latest month with data.")) }
    }
}
