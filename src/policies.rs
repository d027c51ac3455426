//! The rules the service applies, built once at start-up from the typed settings and kept in
//! the application state: a bad setting stops the start with a clear message instead of
//! failing (or silently defaulting) on the first request that needs it, and no request parses
//! a setting again.

use chrono::FixedOffset;

use crate::config::Settings;
use crate::integrity::IntegrityPolicy;
use crate::report::ReportOptions;
use crate::survey::transaction::IssuePolicy;

#[derive(Debug, Clone)]
pub struct Policies {
    /// The province's offset from UTC: local days, months and working days.
    pub utc_offset: FixedOffset,
    /// Screening thresholds, hold rules and case deadlines.
    pub integrity: IntegrityPolicy,
    /// Small-cell suppression, required sample margin and the local calendar of reports.
    pub report: ReportOptions,
    /// Survey links: default form, validity, reminders, Message-ID host.
    pub issue: IssuePolicy,
}

impl Policies {
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Self> {
        let utc_offset = settings.utc_offset_value()?;
        Ok(Self {
            utc_offset,
            integrity: IntegrityPolicy::from_settings(settings, utc_offset)?,
            report: ReportOptions::from_settings(settings, utc_offset),
            issue: IssuePolicy::from_settings(settings, utc_offset),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_hold_rule_stops_the_start() {
        let settings = Settings {
            hold_rules: "same_device,typo".into(),
            ..Settings::default()
        };
        let err = Policies::from_settings(&settings).unwrap_err().to_string();
        assert!(err.contains("typo"), "{err}");
    }

    #[test]
    fn the_offset_is_parsed_once_for_every_policy() {
        let settings = Settings {
            utc_offset: "+07:00".into(),
            ..Settings::default()
        };
        let p = Policies::from_settings(&settings).unwrap();
        let seven = FixedOffset::east_opt(7 * 3600).unwrap();
        assert_eq!(p.utc_offset, seven);
        assert_eq!(p.integrity.utc_offset, seven);
        assert_eq!(p.report.utc_offset, seven);
        assert_eq!(p.issue.utc_offset, seven);
    }
}
