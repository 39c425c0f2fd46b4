//! CDP messages parsed one level deep.
//!
//! The proxy looks at every message, but most of them it only needs to route or correlate:
//! `params`, `result` and `error` stay raw JSON text, so a multi-megabyte screenshot response is
//! scanned once and never built into a tree unless the recorder wants its content.

use std::borrow::Cow;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

/// One CDP message: a command (`id` + `method`), a response (`id` + `result`/`error`) or an event
/// (`method` without `id`); `sessionId` names the flattened target session it belongs to.
///
/// Unknown top-level members are ignored; CDP defines none besides these.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct Envelope<'a> {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub method: Option<Cow<'a, str>>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub params: Option<&'a RawValue>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub result: Option<&'a RawValue>,
    #[serde(default, borrow, skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a RawValue>,
    #[serde(default, borrow, rename = "sessionId", skip_serializing_if = "Option::is_none")]
    pub session_id: Option<Cow<'a, str>>,
}

impl<'a> Envelope<'a> {
    pub fn parse(text: &'a str) -> Option<Envelope<'a>> {
        serde_json::from_str(text).ok()
    }

    pub fn to_text(&self) -> String {
        // Serializing borrowed strings and raw values cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn method(&self) -> &str {
        self.method.as_deref().unwrap_or("")
    }

    pub fn session(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// `params` as `T` (None if absent or of another shape).
    pub fn params_as<T: DeserializeOwned>(&self) -> Option<T> {
        self.params.and_then(|p| serde_json::from_str(p.get()).ok())
    }

    /// `result` as `T`.
    pub fn result_as<T: DeserializeOwned>(&self) -> Option<T> {
        self.result.and_then(|r| serde_json::from_str(r.get()).ok())
    }

    /// The message of an error response.
    pub fn error_message(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct Error {
            #[serde(default)]
            message: String,
        }
        let e: Error = serde_json::from_str(self.error?.get()).ok()?;
        Some(if e.message.is_empty() { "CDP error".to_owned() } else { e.message })
    }
}

/// A command the proxy itself sends upstream, with an id from its own range.
pub fn command(id: i64, method: &str, params: &serde_json::Value, session: Option<&str>) -> String {
    let mut m = serde_json::Map::new();
    m.insert("id".into(), id.into());
    m.insert("method".into(), method.into());
    m.insert("params".into(), params.clone());
    if let Some(s) = session {
        m.insert("sessionId".into(), s.into());
    }
    serde_json::Value::Object(m).to_string()
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} bytes]", &s[..end], s.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands_responses_and_events_one_level_deep() {
        let c = Envelope::parse(r#"{"id":7,"method":"Page.navigate","params":{"url":"x"},"sessionId":"S"}"#)
            .unwrap();
        assert_eq!((c.id, c.method(), c.session()), (Some(7), "Page.navigate", Some("S")));
        assert_eq!(c.params.unwrap().get(), r#"{"url":"x"}"#);
        let r = Envelope::parse(r#"{"id":7,"result":{"frameId":"F"}}"#).unwrap();
        assert!(r.method.is_none() && r.result.is_some());
        let e = Envelope::parse(r#"{"id":8,"error":{"code":-32000,"message":"boom"}}"#).unwrap();
        assert_eq!(e.error_message().as_deref(), Some("boom"));
        assert!(Envelope::parse("not json").is_none());
    }

    #[test]
    fn round_trips_with_a_session_added() {
        let mut c = Envelope::parse(r#"{"id":1,"method":"Runtime.enable","params":{}}"#).unwrap();
        c.session_id = Some("S1".into());
        assert_eq!(c.to_text(), r#"{"id":1,"method":"Runtime.enable","params":{},"sessionId":"S1"}"#);
    }

    #[test]
    fn escaped_strings_parse() {
        let c = Envelope::parse(r#"{"id":1,"method":"Page.navigate","sessionId":"a\"b"}"#).unwrap();
        assert_eq!(c.session(), Some("a\"b"));
    }

    #[test]
    fn truncates_on_char_boundaries() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("ééé", 3), "é… [6 bytes]");
    }
}
