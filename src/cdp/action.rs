//! What the recorder produces: browser actions, ready to become `browser_action` events.

use moltlog_core::event::BrowserActionKind;
use serde_json::{Value, json};

/// A decoded screenshot, to be stored as a content-addressed blob before its event is appended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Image {
    pub bytes: Vec<u8>,
    pub content_type: String,
}

/// A blob the image was stored as (what the event references).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredImage {
    pub sha256_hex: String,
    pub len: u64,
    pub content_type: String,
}

/// One recorded browser action.
#[derive(Clone, Debug, PartialEq)]
pub struct Recorded {
    pub action: BrowserActionKind,
    /// The CDP target (tab) it ran in, when known.
    pub target_id: Option<String>,
    /// The page url after the action (where a navigation went; the tab's url otherwise).
    pub url: Option<String>,
    /// What was done: the typed text, an expression, the click position, a command summary.
    pub detail: String,
    /// The outcome, as JSON.
    pub result: Value,
    pub error: Option<String>,
    pub screenshot: Option<Image>,
}

impl Recorded {
    pub fn new(action: BrowserActionKind, target_id: Option<String>, detail: impl Into<String>) -> Recorded {
        Recorded {
            action,
            target_id,
            url: None,
            detail: detail.into(),
            result: Value::Null,
            error: None,
            screenshot: None,
        }
    }

    /// The event as the append API takes it; `image` is the stored screenshot, if any.
    pub fn event_json(&self, image: Option<&StoredImage>) -> Value {
        let mut e = json!({"kind": "browser_action", "action": self.action.name()});
        let m = e.as_object_mut().expect("a JSON object");
        if let Some(t) = &self.target_id {
            m.insert("target_id".into(), t.as_str().into());
        }
        if let Some(u) = &self.url {
            m.insert("url".into(), u.as_str().into());
        }
        m.insert("detail".into(), self.detail.as_str().into());
        m.insert("result".into(), self.result.clone());
        if let Some(err) = &self.error {
            m.insert("error".into(), err.as_str().into());
        }
        if let Some(img) = image {
            m.insert(
                "screenshot".into(),
                json!({"sha256": img.sha256_hex, "len": img.len, "content_type": img.content_type}),
            );
        }
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moltlog_core::dto;

    #[test]
    fn event_json_is_what_the_append_api_accepts() {
        let mut r = Recorded::new(BrowserActionKind::Screenshot, Some("T1".into()), "png");
        r.url = Some("http://127.0.0.1/".into());
        r.result = json!({"bytes": 3});
        let img = StoredImage { sha256_hex: "ab".repeat(32), len: 3, content_type: "image/png".into() };
        let body = r.event_json(Some(&img)).to_string();
        let parsed = dto::parse_append(body.as_bytes()).expect("accepted");
        assert_eq!(parsed.events.len(), 1);
        let plain = Recorded::new(BrowserActionKind::Click, None, "left click at (1, 2)");
        assert!(dto::parse_append(plain.event_json(None).to_string().as_bytes()).is_ok());
    }
}
