//! The HTTP JSON API's shapes, converted to and from core types. Storage types never appear on
//! the wire; these do.
//!
//! Input is parsed field by field from borrowed raw JSON so that JSON payloads (tool inputs,
//! outputs, webhook bodies) are stored as the client's exact text, and every error names the
//! field it is about.

mod input;
mod output;
mod state;

pub use input::{AppendInput, parse_append, parse_event};
pub use output::{blob_json, error_json, event_json, outcome_json};
pub use state::state_json;

/// Why a request body is not an acceptable append.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct DtoError {
    /// Where: `events[2].role`, `kind`, `(body)`.
    pub path: String,
    pub message: String,
    pub code: &'static str,
}

impl DtoError {
    pub(crate) fn new(code: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        DtoError { path: path.into(), message: message.into(), code }
    }
}
