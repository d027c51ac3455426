//! Where a paper form stands, as stored in `paper_forms.status`: custody first (issued →
//! delivered → returned), then keying (keyed → disputed → verified). Custody counts, keying
//! rules and the dispute list all read it; one enum, so no module spells a status its own way.
//! Also the list a sampled person is on (main or reserve).

use crate::error::AppError;
use crate::i18n::Msg;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FormStatus {
    /// Put in a batch for a collector.
    Issued,
    /// Handed to the person sampled.
    Delivered,
    /// Collected back, ready for keying.
    Returned,
    /// Keyed once, waiting for the second, independent typing.
    Keyed,
    /// The two typings differ: waiting for adjudication.
    Disputed,
    /// Agreed (or adjudicated) and stored as a response in the index.
    Verified,
}

impl FormStatus {
    pub const ALL: [FormStatus; 6] = [
        Self::Issued,
        Self::Delivered,
        Self::Returned,
        Self::Keyed,
        Self::Disputed,
        Self::Verified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issued => "issued",
            Self::Delivered => "delivered",
            Self::Returned => "returned",
            Self::Keyed => "keyed",
            Self::Disputed => "disputed",
            Self::Verified => "verified",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == s)
    }

    /// The stored status; the CHECK constraint allows only known ones, so an unknown one is a
    /// damaged database, reported as such.
    pub fn from_stored(s: &str) -> Result<Self, AppError> {
        Self::parse(s)
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("unknown paper form status `{s}`")))
    }

    /// The custody step reached: a disputed form has been keyed, as a keyed one.
    pub fn rank(self) -> u8 {
        match self {
            Self::Issued => 0,
            Self::Delivered => 1,
            Self::Returned => 2,
            Self::Keyed | Self::Disputed => 3,
            Self::Verified => 4,
        }
    }
}

/// What a collector records of a batch's forms by scanning their serials.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustodyStep {
    Delivered,
    Returned,
}

impl CustodyStep {
    pub fn status(self) -> FormStatus {
        match self {
            Self::Delivered => FormStatus::Delivered,
            Self::Returned => FormStatus::Returned,
        }
    }

    pub fn as_str(self) -> &'static str {
        self.status().as_str()
    }

    pub fn parse(s: &str) -> Result<Self, AppError> {
        match s {
            "delivered" => Ok(Self::Delivered),
            "returned" => Ok(Self::Returned),
            _ => Err(AppError::field(
                "status",
                Msg::new("Trạng thái không hợp lệ.", "Invalid status."),
            )),
        }
    }
}

/// Which list of a sample a person is on (`sample_members.role`): the main list, or the reserve
/// that replaces people who cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberRole {
    Main,
    Reserve,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Main => "main",
            Self::Reserve => "reserve",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::Main, Self::Reserve]
            .into_iter()
            .find(|role| role.as_str() == s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_back_what_they_write() {
        for status in FormStatus::ALL {
            assert_eq!(FormStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(FormStatus::parse("lost"), None);
        assert!(FormStatus::from_stored("lost").is_err());
    }

    #[test]
    fn custody_steps_are_only_delivery_and_return() {
        assert_eq!(
            CustodyStep::parse("returned").unwrap().status(),
            FormStatus::Returned
        );
        assert!(CustodyStep::parse("verified").is_err());
        assert!(FormStatus::Disputed.rank() == FormStatus::Keyed.rank());
        assert!(FormStatus::Verified.rank() > FormStatus::Returned.rank());
    }

    #[test]
    fn member_roles_read_back_what_they_write() {
        for role in [MemberRole::Main, MemberRole::Reserve] {
            assert_eq!(MemberRole::parse(role.as_str()), Some(role));
        }
        assert_eq!(MemberRole::parse("spare"), None);
    }
}
