//! JSON documents that embed stored JSON text byte for byte.
//!
//! Payloads (tool inputs and outputs, browser results, webhook bodies) are stored as the client's
//! exact JSON text, and the chain hashes that text. `serde_json::Value` cannot carry it unchanged:
//! big integers become floats, long decimals are rounded, `1e400` and lone surrogate escapes do
//! not parse, and nesting past 128 is refused. Rendered documents are therefore built as [`Json`]:
//! plain values beside raw stored text, serialized straight to a string.
//!
//! Serialize a `Json` with `serde_json::to_string`/`to_writer` (or `Display`), never through
//! `serde_json::to_value`: that re-parses the raw parts, which is the defect this type exists to
//! avoid.

use std::fmt;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;
use serde_json::value::RawValue;

/// Deepest nesting of arrays and objects an appended JSON payload may have (a scalar is depth 0,
/// `[]` depth 1). Deeper payloads are refused with `json_too_deep`: many JSON readers (serde_json
/// at 128, for one) cannot load them, so they would be stored but unusable.
pub const MAX_JSON_DEPTH: u32 = 100;

/// A JSON document under construction: values, stored JSON text, or objects and arrays of them.
#[derive(Clone, Debug)]
pub enum Json {
    Value(Value),
    /// Stored JSON text, emitted as it is.
    Raw(Box<RawValue>),
    /// Members in order.
    Object(Vec<(String, Json)>),
    Array(Vec<Json>),
}

impl Json {
    /// Stored JSON text as itself (whitespace around the value trimmed); text that is not JSON
    /// (never written by the append path, but a renderer must not emit a broken document) as a
    /// JSON string.
    pub fn stored(text: &str) -> Json {
        match RawValue::from_string(text.to_owned()) {
            Ok(raw) => Json::Raw(raw),
            Err(_) => Json::Value(Value::String(text.to_owned())),
        }
    }

    /// An object of these members, in order.
    pub fn object<K: Into<String>>(members: impl IntoIterator<Item = (K, Json)>) -> Json {
        Json::Object(members.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// A member of an object (for a `Value` object too).
    pub fn get(&self, key: &str) -> Option<Json> {
        match self {
            Json::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone()),
            Json::Value(Value::Object(m)) => m.get(key).cloned().map(Json::Value),
            _ => None,
        }
    }

    /// Replaces (in place) or appends a member; a `Value` object becomes an `Object` first.
    pub fn set(&mut self, key: &str, value: Json) {
        if let Json::Value(Value::Object(m)) = self {
            let members = std::mem::take(m).into_iter().map(|(k, v)| (k, Json::Value(v))).collect();
            *self = Json::Object(members);
        }
        if let Json::Object(m) = self {
            match m.iter_mut().find(|(k, _)| k == key) {
                Some((_, v)) => *v = value,
                None => m.push((key.to_owned(), value)),
            }
        }
    }

    /// The document re-parsed as a `Value`: for comparisons in tests and for parts that hold no
    /// stored JSON. Fails where `Value` cannot hold the stored text (`1e400`, deep nesting).
    pub fn to_value_lossy(&self) -> serde_json::Result<Value> {
        serde_json::from_str(&self.to_string())
    }
}

impl From<Value> for Json {
    fn from(v: Value) -> Json {
        Json::Value(v)
    }
}

impl Serialize for Json {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Json::Value(v) => v.serialize(s),
            Json::Raw(r) => r.serialize(s),
            Json::Object(members) => {
                let mut m = s.serialize_map(Some(members.len()))?;
                for (k, v) in members {
                    m.serialize_entry(k, v)?;
                }
                m.end()
            }
            Json::Array(items) => {
                let mut a = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    a.serialize_element(v)?;
                }
                a.end()
            }
        }
    }
}

impl Json {
    /// Compact JSON text on one line (for JSONL): stored text may hold line breaks between its
    /// tokens, never inside a string (JSON escapes them there), so dropping them changes no value
    /// and no token.
    pub fn to_line(&self) -> String {
        let mut text = self.to_string();
        text.retain(|c| c != '\n' && c != '\r');
        text
    }
}

/// Compact JSON text (stored parts as they are).
impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&text)
    }
}

/// The deepest nesting of arrays and objects in well-formed JSON text, counted in one pass
/// without recursion (so any depth is measured safely).
pub fn depth(text: &str) -> u32 {
    let (mut depth, mut max) = (0u32, 0u32);
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'"' => {
                // Skip the string: `\` escapes the next byte; no structural byte occurs inside.
                while let Some(c) = bytes.next() {
                    match c {
                        b'\\' => {
                            bytes.next();
                        }
                        b'"' => break,
                        _ => {}
                    }
                }
            }
            b'[' | b'{' => {
                depth = depth.saturating_add(1);
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values the issue saw changed on the way out, each as a whole payload and inside one.
    const EXACT: &[&str] = &[
        r#"{"id":123456789012345678901234567890}"#,
        "0.1000000000000000055511151231257827",
        r#"{"n":1e400}"#,
        r#"["\ud800","\udfff x","\u00e9\n"]"#,
        r#"{ "spaced" : [ 1 , 2.50 ] , "z":-0 }"#,
        "-1.0E+2",
    ];

    #[test]
    fn stored_json_is_emitted_byte_for_byte() {
        for text in EXACT {
            assert_eq!(Json::stored(text).to_string(), *text);
            let doc = Json::object([("a", Json::Value(1.into())), ("p", Json::stored(text))]);
            assert_eq!(doc.to_string(), format!(r#"{{"a":1,"p":{text}}}"#));
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert_eq!(Json::stored(&deep).to_string(), deep, "nesting past serde_json's 128");
    }

    #[test]
    fn text_that_is_not_json_becomes_a_string() {
        for text in ["not json", "{\"a\":1} trailing", "[1", ""] {
            assert_eq!(Json::stored(text).to_string(), serde_json::to_string(text).unwrap());
        }
        assert_eq!(Json::stored(" [1, 2]\n").to_string(), "[1, 2]", "only the surrounding whitespace goes");
    }

    #[test]
    fn pretty_printing_keeps_stored_text() {
        let doc = Json::object([("p", Json::stored(r#"{"id":123456789012345678901234567890}"#))]);
        let pretty = serde_json::to_string_pretty(&doc).unwrap();
        assert!(pretty.contains(r#"{"id":123456789012345678901234567890}"#), "{pretty}");
    }

    #[test]
    fn lines_drop_only_line_breaks_between_tokens() {
        let doc = Json::object([("p", Json::stored("{\n  \"a\": \"x\\ny\",\r\n  \"n\": 1e400\n}"))]);
        assert_eq!(doc.to_line(), r#"{"p":{  "a": "x\ny",  "n": 1e400}}"#);
    }

    #[test]
    fn set_and_get_members() {
        let mut doc = Json::from(serde_json::json!({"a": 1, "b": 2}));
        doc.set("a", Json::stored("1e400"));
        doc.set("c", Json::stored("3"));
        assert_eq!(doc.to_string(), r#"{"a":1e400,"b":2,"c":3}"#);
        assert_eq!(doc.get("b").map(|v| v.to_string()).as_deref(), Some("2"));
        assert!(doc.get("zz").is_none());
    }

    #[test]
    fn depth_counts_structure_outside_strings() {
        assert_eq!(depth("1"), 0);
        assert_eq!(depth("[]"), 1);
        assert_eq!(depth(r#"{"a":[{"b":"[[[[\"]]"}]}"#), 3);
        assert_eq!(depth(r#"["\\",[1]]"#), 2);
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert_eq!(depth(&deep), 100_000);
    }
}
