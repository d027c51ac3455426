//! Unit kinds as people read them (`units.kind`). Not `periods::kind_label`, which names the
//! kinds of survey periods (year, quarter, …).

use crate::i18n::Lang;

/// The name of a unit kind (`crate::units::UNIT_KINDS`); an unknown kind reads "Other".
pub fn unit_kind_label(kind: &str, lang: Lang) -> &'static str {
    match kind {
        "province" => lang.pick("Tỉnh", "Province"),
        "department" => lang.pick("Sở, ban, ngành", "Department"),
        "centre" => lang.pick("Trung tâm phục vụ", "Service centre"),
        "commune" => lang.pick("Xã, phường", "Commune / ward"),
        _ => lang.pick("Khác", "Other"),
    }
}
