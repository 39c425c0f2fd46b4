//! The HTTP JSON API's shapes, converted to and from core types. Storage types never appear on
//! the wire; these do.
//!
//! Input is parsed field by field from borrowed raw JSON so that JSON payloads (tool inputs,
//! outputs, webhook bodies) are stored as the client's exact text, and every error names the
//! field it is about. Output embeds that text unchanged (`Json`); a payload nested deeper than
//! `MAX_JSON_DEPTH` is refused (`json_too_deep`) rather than stored for readers that cannot load it.

mod input;
mod json;
mod output;
mod state;

pub use input::{AppendInput, parse_append, parse_event};
pub use json::{Json, MAX_JSON_DEPTH};
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
