//! A page socket (`/devtools/page/{targetId}`) served over a browser socket.
//!
//! Browser Rendering hands out browser-level sockets only, so the proxy attaches to the tab
//! itself (`Target.attachToTarget` with `flatten`) and translates: the client's messages gain the
//! tab's `sessionId`, the browser's messages for that session lose it, and everything else on
//! the browser socket (other tabs, browser-level events) is not the page client's business.

use super::message::{Envelope, command};

/// Ids the proxy uses for its own commands: far above what clients count up to, and still a
/// 32-bit integer (chromium ignores commands whose id is not).
pub const PROXY_ID_BASE: i64 = 2_000_000_000;

/// The state of one bridged page socket.
#[derive(Debug)]
pub struct PageBridge {
    target_id: String,
    attach_id: i64,
    session: Option<String>,
}

/// What the bridge makes of a message from the browser.
#[derive(Debug, PartialEq, Eq)]
pub enum FromBrowser {
    /// Forward this to the page client.
    Forward(String),
    /// The attach answered: the bridge is ready.
    Attached,
    /// The attach failed (no such tab, say): close the page client with this reason.
    Failed(String),
    /// Not for the page client.
    Ignore,
}

impl PageBridge {
    pub fn new(target_id: &str) -> PageBridge {
        PageBridge { target_id: target_id.to_owned(), attach_id: PROXY_ID_BASE, session: None }
    }

    /// The command to send first, on the fresh browser socket.
    pub fn attach_command(&self) -> String {
        command(
            self.attach_id,
            "Target.attachToTarget",
            &serde_json::json!({"targetId": self.target_id, "flatten": true}),
            None,
        )
    }

    pub fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// A client message, rewritten for the browser socket (None: not a CDP message; dropped).
    pub fn from_client(&self, text: &str) -> Option<String> {
        let session = self.session.as_deref()?;
        let mut msg = Envelope::parse(text)?;
        msg.session_id = Some(session.into());
        Some(msg.to_text())
    }

    pub fn from_browser(&mut self, text: &str) -> FromBrowser {
        let Some(mut msg) = Envelope::parse(text) else { return FromBrowser::Ignore };
        if self.session.is_none() {
            if msg.id != Some(self.attach_id) || msg.session_id.is_some() {
                return FromBrowser::Ignore;
            }
            if let Some(e) = msg.error_message() {
                return FromBrowser::Failed(e);
            }
            #[derive(serde::Deserialize)]
            struct Attached {
                #[serde(rename = "sessionId")]
                session_id: String,
            }
            return match msg.result_as::<Attached>() {
                Some(a) => {
                    self.session = Some(a.session_id);
                    FromBrowser::Attached
                }
                None => FromBrowser::Failed("Target.attachToTarget answered without a session".into()),
            };
        }
        if msg.session_id.as_deref() != self.session.as_deref() {
            return FromBrowser::Ignore;
        }
        msg.session_id = None;
        FromBrowser::Forward(msg.to_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attaches_then_wraps_and_unwraps_the_session() {
        let mut b = PageBridge::new("T1");
        let attach: serde_json::Value = serde_json::from_str(&b.attach_command()).unwrap();
        assert_eq!(attach["params"]["targetId"], "T1");
        assert_eq!(b.from_client(r#"{"id":1,"method":"Page.enable"}"#), None, "not attached yet");
        let ev = r#"{"method":"Target.attachedToTarget","params":{"sessionId":"S","targetInfo":{}}}"#;
        assert_eq!(b.from_browser(ev), FromBrowser::Ignore);
        let answer = format!(r#"{{"id":{PROXY_ID_BASE},"result":{{"sessionId":"S"}}}}"#);
        assert_eq!(b.from_browser(&answer), FromBrowser::Attached);
        assert_eq!(
            b.from_client(r#"{"id":1,"method":"Page.enable","params":{}}"#).as_deref(),
            Some(r#"{"id":1,"method":"Page.enable","params":{},"sessionId":"S"}"#)
        );
        assert_eq!(
            b.from_browser(r#"{"id":1,"result":{},"sessionId":"S"}"#),
            FromBrowser::Forward(r#"{"id":1,"result":{}}"#.into())
        );
        assert_eq!(
            b.from_browser(r#"{"method":"Page.loadEventFired","params":{},"sessionId":"X"}"#),
            FromBrowser::Ignore
        );
        assert_eq!(b.from_browser(r#"{"method":"Target.targetCreated","params":{}}"#), FromBrowser::Ignore);
    }

    #[test]
    fn a_failed_attach_says_why() {
        let mut b = PageBridge::new("nope");
        let answer = format!(
            r#"{{"id":{PROXY_ID_BASE},"error":{{"code":-32602,"message":"No target with given id found"}}}}"#
        );
        assert_eq!(b.from_browser(&answer), FromBrowser::Failed("No target with given id found".into()));
    }
}
