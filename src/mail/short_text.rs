//! The SMS text: short Vietnamese without diacritics. Brand-name SMS are billed per segment,
//! and one accented letter turns a 160-character GSM segment into a 70-character UCS-2 one.

/// What an SMS says (Zalo templates get the same facts as parameters instead).
pub struct ShortInvitation<'a> {
    pub reminder: bool,
    pub unit: &'a str,
    pub procedure: &'a str,
    pub survey_url: &'a str,
    pub opt_out_url: &'a str,
    /// Last day of the survey, `dd/mm`.
    pub until: &'a str,
}

/// Longest unit or procedure name kept in an SMS; longer ones are cut with `...`.
const NAME_CHARS: usize = 40;

impl ShortInvitation<'_> {
    pub fn text(&self) -> String {
        let unit = shorten(&fold_vietnamese(self.unit));
        let procedure = shorten(&fold_vietnamese(self.procedure));
        let lead = if self.reminder {
            "nhac Ong/Ba danh gia"
        } else {
            "moi Ong/Ba danh gia"
        };
        format!(
            "{unit}: {lead} thu tuc {procedure} tai {} (han {}). Ngung nhan tin: {}",
            self.survey_url, self.until, self.opt_out_url
        )
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= NAME_CHARS {
        return text.to_string();
    }
    let cut: String = text.chars().take(NAME_CHARS - 3).collect();
    format!("{}...", cut.trim_end())
}

/// Vietnamese letters without their marks (`Sở Tư pháp` → `So Tu phap`); other non-ASCII
/// characters are dropped, so the text stays in the GSM alphabet.
pub fn fold_vietnamese(text: &str) -> String {
    const GROUPS: [(&str, char); 14] = [
        ("àáảãạăằắẳẵặâầấẩẫậ", 'a'),
        ("ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬ", 'A'),
        ("èéẻẽẹêềếểễệ", 'e'),
        ("ÈÉẺẼẸÊỀẾỂỄỆ", 'E'),
        ("ìíỉĩị", 'i'),
        ("ÌÍỈĨỊ", 'I'),
        ("òóỏõọôồốổỗộơờớởỡợ", 'o'),
        ("ÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢ", 'O'),
        ("ùúủũụưừứửữự", 'u'),
        ("ÙÚỦŨỤƯỪỨỬỮỰ", 'U'),
        ("ỳýỷỹỵ", 'y'),
        ("ỲÝỶỸỴ", 'Y'),
        ("đ", 'd'),
        ("Đ", 'D'),
    ];
    text.chars()
        .filter_map(|c| {
            if c.is_ascii() {
                return Some(c);
            }
            GROUPS
                .iter()
                .find(|(letters, _)| letters.contains(c))
                .map(|(_, plain)| *plain)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_every_vietnamese_letter() {
        assert_eq!(fold_vietnamese("Sở Tư pháp"), "So Tu phap");
        assert_eq!(
            fold_vietnamese("Cấp Phiếu lý lịch tư pháp – Đăng ký"),
            "Cap Phieu ly lich tu phap  Dang ky"
        );
        // Decomposed marks (NFD input) are dropped too.
        assert_eq!(fold_vietnamese("Tu\u{031B}\u{0300}"), "Tu");
    }

    #[test]
    fn the_text_is_plain_ascii_with_both_links() {
        let sms = ShortInvitation {
            reminder: false,
            unit: "Ủy ban nhân dân phường Hoàn Kiếm, thành phố Hà Nội",
            procedure: "Chứng thực bản sao từ bản chính",
            survey_url: "https://khaosat.example.vn/s/ABCDEFGHJKMNPQRS?via=sms",
            opt_out_url: "https://khaosat.example.vn/s/ABCDEFGHJKMNPQRS/unsubscribe",
            until: "09/12",
        };
        let text = sms.text();
        assert!(text.is_ascii(), "{text}");
        assert!(text.contains("?via=sms"));
        assert!(text.contains("/unsubscribe"));
        assert!(text.starts_with("Uy ban nhan dan phuong Hoan Kiem, tha...: moi"));
        // Two GSM segments at most (153 characters each when concatenated).
        assert!(text.len() <= 306, "{} characters", text.len());
    }
}
