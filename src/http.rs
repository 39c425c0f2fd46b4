//! HTTP errors and JSON responses: every failure is `{"error":{"code","message"}}` with the
//! status that says what kind of failure it is.

use moltlog_core::dto::{self, DtoError};
use moltlog_core::engine::AppendError;
use serde_json::Value;

use crate::api::route::RouteError;

pub mod body;
pub mod param;

pub use param::ParamError;

/// An error answered to the client.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    /// Extra members of the error object (a conflict's current head, say).
    pub extra: Option<Value>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), extra: None }
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(500, "internal_error", message)
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(400, code, message)
    }

    pub fn body(&self) -> Value {
        dto::error_json(self.code, &self.message, self.extra.clone())
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status, self.code, self.message)
    }
}

impl From<DtoError> for ApiError {
    fn from(e: DtoError) -> Self {
        ApiError::new(400, e.code, e.to_string())
    }
}

impl From<ParamError> for ApiError {
    fn from(e: ParamError) -> Self {
        ApiError::new(400, e.code(), e.to_string())
    }
}

impl From<RouteError> for ApiError {
    fn from(e: RouteError) -> Self {
        ApiError::new(e.status(), e.code(), e.to_string())
    }
}

impl<E: std::error::Error + 'static> From<AppendError<E>> for ApiError {
    fn from(e: AppendError<E>) -> Self {
        let status = match &e {
            AppendError::EmptyBatch
            | AppendError::DuplicateKeyInBatch { .. }
            | AppendError::Invalid { .. } => 400,
            AppendError::TooManyEvents { .. }
            | AppendError::EventTooLarge { .. }
            | AppendError::PayloadTooLarge { .. }
            | AppendError::BatchTooLarge { .. } => 413,
            AppendError::Conflict { .. } => 409,
            AppendError::KeyReused { .. }
            | AppendError::PartialDuplicate { .. }
            | AppendError::BadRedaction { .. } => 422,
            AppendError::Forbidden { .. } => 403,
            AppendError::Store(_) | AppendError::Corrupt { .. } => 500,
        };
        let extra = e.conflict_head().map(|(seq, hash)| {
            serde_json::json!({"head": {"seq": seq, "hash": moltlog_core::chain::to_hex(&hash)}})
        });
        ApiError { status, code: e.code(), message: e.to_string(), extra }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moltlog_core::state::Head;
    use moltlog_core::store::MemoryStoreError;

    #[test]
    fn conflicts_carry_the_head() {
        let e: AppendError<MemoryStoreError> =
            AppendError::Conflict { expected_seq: 1, head: Head { seq: 4, hash: [0xab; 32] } };
        let api = ApiError::from(e);
        assert_eq!((api.status, api.code), (409, "seq_conflict"));
        let body = api.body();
        assert_eq!(body["error"]["head"]["seq"], 4);
        assert_eq!(body["error"]["code"], "seq_conflict");
    }

    #[test]
    fn limits_are_413() {
        let e: AppendError<MemoryStoreError> = AppendError::TooManyEvents { count: 2000, max: 1000 };
        assert_eq!(ApiError::from(e).status, 413);
    }
}
