//! How an answer reached sipas: the `channel` of a response (and of its rollup cells). One
//! enum, so that the citizen pages, the writer, the reports and the exports agree on the names
//! and on which channels the agency controls (counter) and which the independent collector runs.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    /// The QR code of a dossier's receipt or of the desk's screen.
    Qr,
    /// The link of an e-mail invitation (or typed).
    Link,
    /// The full survey answered on a counter tablet (`?via=kiosk`). One-tap kiosk answers are
    /// not responses: see `counter::kiosk`.
    Kiosk,
    /// The link of an SMS invitation.
    Sms,
    /// The link of a Zalo invitation.
    Zalo,
    /// A sticker of an offline token book (see `counter::books`).
    Book,
    /// Independent collector: paper forms, telephone, interview.
    Paper,
    Phone,
    Interview,
    /// A respondent group's campaign link (neither counter nor independent).
    Group,
}

impl Channel {
    pub const ALL: [Channel; 10] = [
        Channel::Qr,
        Channel::Link,
        Channel::Kiosk,
        Channel::Sms,
        Channel::Zalo,
        Channel::Book,
        Channel::Paper,
        Channel::Phone,
        Channel::Interview,
        Channel::Group,
    ];

    /// Channels collected at the counter: what the agency being measured controls.
    pub const COUNTER_CODES: &'static [&'static str] =
        &["qr", "link", "kiosk", "sms", "zalo", "book"];
    /// Channels of the independent collector.
    pub const INDEPENDENT_CODES: &'static [&'static str] = &["paper", "phone", "interview"];

    /// The name stored in `responses.channel` and rollup cells.
    pub fn code(self) -> &'static str {
        match self {
            Channel::Qr => "qr",
            Channel::Link => "link",
            Channel::Kiosk => "kiosk",
            Channel::Sms => "sms",
            Channel::Zalo => "zalo",
            Channel::Book => "book",
            Channel::Paper => "paper",
            Channel::Phone => "phone",
            Channel::Interview => "interview",
            Channel::Group => "group",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The channel of a citizen's answer from the `via` parameter of the survey link: links in
    /// invitations say which invitation brought the citizen; anything else is a scanned QR.
    pub fn from_via(via: Option<&str>) -> Self {
        match via {
            Some("link") => Channel::Link,
            Some("kiosk") => Channel::Kiosk,
            Some("sms") => Channel::Sms,
            Some("zalo") => Channel::Zalo,
            _ => Channel::Qr,
        }
    }

    pub fn is_counter(self) -> bool {
        Self::COUNTER_CODES.contains(&self.code())
    }

    /// A name for people, Vietnamese and English.
    pub fn label(self) -> (&'static str, &'static str) {
        let (vi, en) = match self {
            Channel::Qr => ("Mã QR", "QR code"),
            Channel::Link => ("Liên kết thư điện tử", "E-mail link"),
            Channel::Kiosk => ("Máy tính bảng tại quầy", "Counter tablet"),
            Channel::Sms => ("Tin nhắn SMS", "SMS"),
            Channel::Zalo => ("Zalo", "Zalo"),
            Channel::Book => ("Sổ phiếu in sẵn", "Offline token book"),
            Channel::Paper => ("Phiếu giấy", "Paper"),
            Channel::Phone => ("Điện thoại", "Telephone"),
            Channel::Interview => ("Phỏng vấn", "Interview"),
            Channel::Group => ("Nhóm đối tượng", "Respondent group"),
        };
        (vi, en)
    }

    /// Labels a stored channel name (an unknown one is shown as it is).
    pub fn label_of(code: &str, lang: crate::i18n::Lang) -> String {
        match Self::parse(code) {
            Some(c) => {
                let (vi, en) = c.label();
                lang.pick(vi, en).to_string()
            }
            None => code.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_groups_are_disjoint() {
        for c in Channel::ALL {
            assert_eq!(Channel::parse(c.code()), Some(c));
            assert!(
                !(Channel::COUNTER_CODES.contains(&c.code())
                    && Channel::INDEPENDENT_CODES.contains(&c.code()))
            );
        }
        assert_eq!(Channel::parse("fax"), None);
    }

    #[test]
    fn invitation_links_keep_their_channel() {
        assert_eq!(Channel::from_via(Some("sms")), Channel::Sms);
        assert_eq!(Channel::from_via(Some("zalo")), Channel::Zalo);
        assert_eq!(Channel::from_via(Some("link")), Channel::Link);
        assert_eq!(Channel::from_via(Some("book")), Channel::Qr);
        assert_eq!(Channel::from_via(None), Channel::Qr);
    }
}
