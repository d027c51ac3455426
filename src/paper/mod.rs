//! The independent paper channel: random samples of the people served, their paper forms with
//! serials, and the worklists the collector organisation works from.

pub mod correction;
pub mod custody;
pub mod entry;
pub mod import;
pub mod keyed;
pub mod sampling;
pub mod serial;
