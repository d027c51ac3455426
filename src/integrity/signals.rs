//! What the integrity screening finds and decides about one answer: the signals, the rules
//! that hold an answer for review, and the case a bad rating opens. Types only, so that the
//! response being stored can carry them without depending on the screening itself.

use chrono::NaiveDate;

use super::contact::CaseContact;
use crate::i18n::Lang;

/// A per-response signal. Codes are what `SIPAS_HOLD_RULES` lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Signal {
    SameDevice,
    SameNetwork,
    FastIssue,
    ShortAnswering,
    StraightLine,
    Burst,
}

impl Signal {
    pub const ALL: [Signal; 6] = [
        Signal::SameDevice,
        Signal::SameNetwork,
        Signal::FastIssue,
        Signal::ShortAnswering,
        Signal::StraightLine,
        Signal::Burst,
    ];

    pub fn code(self) -> &'static str {
        match self {
            Signal::SameDevice => "same_device",
            Signal::SameNetwork => "same_network",
            Signal::FastIssue => "fast_issue",
            Signal::ShortAnswering => "short_answering",
            Signal::StraightLine => "straight_line",
            Signal::Burst => "burst",
        }
    }

    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.code() == code.trim())
    }

    pub fn title(self, lang: Lang) -> &'static str {
        match self {
            Signal::SameDevice => lang.pick("Cùng thiết bị với quầy", "Same device as the counter"),
            Signal::SameNetwork => lang.pick("Cùng mạng với quầy", "Same network as the counter"),
            Signal::FastIssue => lang.pick(
                "Trả lời ngay khi vừa cấp phiếu",
                "Answered right after issue",
            ),
            Signal::ShortAnswering => {
                lang.pick("Thời gian trả lời quá ngắn", "Implausibly short answering")
            }
            Signal::StraightLine => {
                lang.pick("Chọn một mức cho mọi câu", "Same level for every item")
            }
            Signal::Burst => lang.pick("Gửi dồn dập từ một địa chỉ", "Burst from one address"),
        }
    }

    /// What the signal means, in plain words, for the panel.
    pub fn explanation(self, lang: Lang) -> &'static str {
        match self {
            Signal::SameDevice => lang.pick(
                "Phiếu được gửi từ chính máy (cùng địa chỉ mạng và trình duyệt) đã đăng ký hồ sơ ở quầy: có thể cán bộ tự điền thay người dân.",
                "The answer came from the very machine (same network address and browser) that registered the dossier at the counter: an official may have filled it in for the citizen.",
            ),
            Signal::SameNetwork => lang.pick(
                "Phiếu được gửi từ cùng mạng với quầy đã đăng ký hồ sơ: người dân có thể trả lời dưới sự theo dõi của cán bộ.",
                "The answer came from the network of the counter that registered the dossier: the citizen may have answered while being watched.",
            ),
            Signal::FastIssue => lang.pick(
                "Phiếu được hoàn thành chỉ vài giây sau khi cấp: người dân thật cần thời gian nhận phiếu hẹn, quét mã và đọc câu hỏi.",
                "The survey was completed seconds after the link was issued: a real citizen needs time to get the receipt, scan the code and read the questions.",
            ),
            Signal::ShortAnswering => lang.pick(
                "Thời gian từ lúc mở phiếu đến lúc gửi quá ngắn so với số câu đã trả lời (hoặc phiếu không được mở từ trang khảo sát).",
                "The time between opening and submitting is too short for the number of answers (or the survey page was never opened).",
            ),
            Signal::StraightLine => lang.pick(
                "Mọi câu đánh giá đều được chọn cùng một mức: dấu hiệu điền cho xong hoặc được hướng dẫn chọn sẵn.",
                "Every rated item got the same level: a sign of ticking through, or of being told what to choose.",
            ),
            Signal::Burst => lang.pick(
                "Nhiều phiếu được gửi liên tiếp từ cùng một địa chỉ mạng trong vài phút.",
                "Many answers were sent one after another from the same network address within minutes.",
            ),
        }
    }
}

/// The signals that hold a response out of the index (`SIPAS_HOLD_RULES`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HoldRules(pub Vec<Signal>);

impl HoldRules {
    /// A comma-separated list of signal codes; `none` (or nothing) holds nothing.
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let mut out = Vec::new();
        if text.trim().eq_ignore_ascii_case("none") {
            return Ok(Self(out));
        }
        for code in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let signal = Signal::parse(code).ok_or_else(|| {
                anyhow::anyhow!(
                    "SIPAS_HOLD_RULES: unknown signal `{code}` (known: {})",
                    Signal::ALL.map(Signal::code).join(", ")
                )
            })?;
            if !out.contains(&signal) {
                out.push(signal);
            }
        }
        Ok(Self(out))
    }
}

/// The facts behind the signals of one response.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseFacts {
    pub seconds_from_issue: Option<i64>,
    pub seconds_answering: Option<i64>,
    pub questions_answered: i64,
    pub straight_line: bool,
    pub same_device: bool,
    pub same_network: bool,
    pub network_hash: Option<String>,
    pub burst: bool,
}

/// A case to open for a bad overall rating: answers and comment only, and the contact of a
/// citizen who asked to be contacted ([`super::cases::attach_contact`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewCase {
    pub overall_level: i64,
    pub answers: String,
    pub comment: Option<String>,
    pub due_on: NaiveDate,
    pub contact: Option<CaseContact>,
}

/// What the screening decided for one submission.
#[derive(Debug, Clone, PartialEq)]
pub struct Screening {
    pub facts: ResponseFacts,
    pub signals: Vec<Signal>,
    pub held: bool,
    pub case: Option<NewCase>,
}

/// What the burst rule reads about a submitter's network, asked in the same statement as the
/// survey link (`survey::lookup::lookup_for_answer`) so that an answer costs one read: whether
/// at least `need` answers came from `network_hash` since `since`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentProbe {
    /// Keyed with the day of submission.
    pub network_hash: String,
    pub since: chrono::NaiveDateTime,
    /// Earlier answers that, with this one, make a burst; 0 when every answer is one.
    pub need: i64,
}

/// An administrator's review of a held answer (`response_signals.review`; NULL when the answer
/// was never held).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Review {
    Held,
    Accepted,
    Rejected,
}

impl Review {
    pub const ALL: [Review; 3] = [Self::Held, Self::Accepted, Self::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Held => "held",
            Self::Accepted => "accepted",
            Self::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

#[cfg(test)]
mod tests {
    use super::Review;

    #[test]
    fn every_review_round_trips_and_unknown_is_refused() {
        for review in Review::ALL {
            assert_eq!(Review::parse(review.as_str()), Some(review));
        }
        assert_eq!(Review::parse("counted"), None);
        assert_eq!(Review::parse("Held"), None);
    }
}
