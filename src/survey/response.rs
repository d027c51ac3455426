//! A response ready to be stored, from any channel, and what storing it can come to. Types
//! only: the writer, the rollups, the integrity screening and the reports all take them.

use chrono::NaiveDateTime;

use crate::forms::answers::AnswerValue;

/// "Không hài lòng" on the 3-level dossier scale: what Decision 766 subtracts.
pub const UNSATISFIED_RATING: i64 = 1;

/// A response ready to be stored, from any channel.
#[derive(Debug, Clone)]
pub struct NewResponse {
    pub id: String,
    pub unit_id: String,
    pub procedure_id: Option<String>,
    pub form_code: String,
    pub form_version: i64,
    pub channel: String,
    pub respondent_type: Option<String>,
    pub language: String,
    pub issued_at: Option<NaiveDateTime>,
    pub opened_at: Option<NaiveDateTime>,
    pub submitted_at: NaiveDateTime,
    /// For paper and other assisted channels: who collected, typed and checked it (JSON).
    pub provenance: Option<String>,
}

/// One submission: spend the token (if any), store the response and its answers.
#[derive(Debug, Clone)]
pub struct Submission {
    pub token_hash: Option<String>,
    pub response: NewResponse,
    pub answers: Vec<AnswerValue>,
    /// Instrument A stores the overall rating on the dossier for the Decision 766 rate.
    pub dossier_rating: Option<(String, i64)>,
    /// The respondent's element and index scores (see `forms::scoring`).
    pub scores: Vec<(String, f64)>,
    /// The dossier answered about, so its pending mail stops (never stored on the response).
    pub transaction_id: Option<String>,
    /// Integrity signals of an e-survey answer (see `crate::integrity`); stored with it.
    pub screening: Option<crate::integrity::signals::Screening>,
}

impl Submission {
    /// Whether the response enters the rollups now; a held one waits for review.
    pub fn counts_now(&self) -> bool {
        !self.screening.as_ref().is_some_and(|s| s.held)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitOutcome {
    Stored,
    AlreadyUsed,
    Expired,
}

/// Where a stored response stands (`responses.status`): only `Counted` ones enter the index and
/// the rollups. One enum for every module that reads or moves a status, so a typo cannot
/// silently match no row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    /// In the index and the rollups.
    Counted,
    /// Waiting for an administrator's review (integrity screening held it).
    Held,
    /// Rejected at review: kept, never counted.
    Rejected,
    /// A respondent group's answer kept apart from the index (stored as "group").
    Apart,
}

impl ResponseStatus {
    pub const ALL: [ResponseStatus; 4] = [Self::Counted, Self::Held, Self::Rejected, Self::Apart];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counted => "counted",
            Self::Held => "held",
            Self::Rejected => "rejected",
            Self::Apart => "group",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// The status of a new answer of a respondent group included in the index, or not.
    pub fn of_group(included: bool) -> Self {
        if included { Self::Counted } else { Self::Apart }
    }
}

#[cfg(test)]
mod tests {
    use super::ResponseStatus;

    #[test]
    fn every_status_round_trips_and_unknown_is_refused() {
        for status in ResponseStatus::ALL {
            assert_eq!(ResponseStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(ResponseStatus::parse("group"), Some(ResponseStatus::Apart));
        assert_eq!(ResponseStatus::parse("Counted"), None);
        assert_eq!(ResponseStatus::parse(""), None);
    }
}
