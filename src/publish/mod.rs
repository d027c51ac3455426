//! Publishing results (issue #18): signed, immutable releases of a period's figures, the open
//! data derived from them (CSV, JSON, catalogue, badges) and rank ranges that do not overstate
//! differences. Knows nothing of HTTP; the public pages in `web::public` only render what these
//! functions return.

pub mod document;
pub mod open_data;
pub mod ranks;
pub mod release;
pub mod signing;
pub mod verify;
