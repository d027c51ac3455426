//! E-mail invitations and reminders: an outbox written with the transaction, a sender that
//! retries with backoff, and the erasure of addresses once no more mail is due.

pub mod message;
pub mod outbox;
pub mod sender;
pub mod transport;
