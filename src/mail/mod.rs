//! E-mail, SMS and Zalo invitations and reminders: an outbox written with the transaction, a sender that
//! retries with backoff, and the erasure of addresses once no more mail is due.

pub mod message;
pub mod outbox;
pub mod phone;
pub mod phone_sender;
pub mod quiet_hours;
pub mod sender;
pub mod short_text;
pub mod sms;
pub mod transport;
pub mod zalo;
