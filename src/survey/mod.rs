//! The e-survey path: transactions from the counter, single-use tokens, QR codes, and the
//! durable storage of responses.

pub mod book_token;
pub mod channel;
pub mod lookup;
pub mod qr;
pub mod registration;
pub mod response;
pub mod steps;
pub mod store;
pub mod stored;
pub mod submission;
pub mod token;
pub mod transaction;
pub mod writer;
