//! The independent paper channel: random samples of the people served, their paper forms with
//! serials, and the worklists the collector organisation works from.

pub mod batches;
pub mod correction;
pub mod custody;
pub mod disputes;
pub mod entry;
pub mod import;
pub mod keyed;
pub mod samples;
pub mod sampling;
pub mod serial;
pub mod status;
