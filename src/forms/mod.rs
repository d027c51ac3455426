//! Survey-form definitions: parsing, validation, versions and the answers they accept.

pub mod answers;
pub mod definition;
pub mod embedded;
pub mod registry;
pub mod scoring;

pub use definition::{Form, FormError, FormKind, Question, QuestionRole, QuestionType};
pub use registry::FormRegistry;
