//! The administrator's console (Department of Home Affairs): units, procedures, accounts,
//! collector organisations, survey forms, periods and the audit log.

pub mod audit_log;
pub mod catalog;
pub mod dashboard;
pub mod groups;
pub mod mail;
pub mod releases;
pub mod units;
pub mod users;
