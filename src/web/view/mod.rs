//! View pieces that more than one audience renders: the redirect after a change and the status
//! of a failed form, figures, the period picker, unit kinds, answer scales and the contact
//! fieldset. Audience modules (`admin`, `agency`, `collector`, `counter`, `citizen`, `public`,
//! `reports`) import shared pieces from here, never from each other (`.ci/layers` checks).

pub mod contact;
pub mod figures;
pub mod flash;
pub mod periods;
pub mod scale;
pub mod units;

pub use contact::contact_fieldset;
pub use figures::{ci, figure_text, pct};
pub use flash::{done, failed_status};
pub use periods::period_picker;
pub use scale::scale_label;
pub use units::unit_kind_label;
