//! The e-survey path: transactions from the counter, single-use tokens, QR codes, and the
//! durable storage of responses.

pub mod lookup;
pub mod qr;
pub mod rollup;
pub mod rollup_cell;
pub mod statements;
pub mod steps;
pub mod stored;
pub mod token;
pub mod transaction;
pub mod writer;
