//! The DevTools HTTP discovery documents (`/json/version`, `/json/list`, `/json/new`), rooted at
//! the proxy: every `webSocketDebuggerUrl` points back at moltlog, with the client's credential
//! query copied on, so a client that follows them stays behind the recorder.

use serde::Deserialize;
use serde_json::{Value, json};

/// Where the proxy for one session is reachable, as the client addressed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicBase {
    /// `ws://host[:port]` or `wss://host[:port]`.
    pub ws_origin: String,
    /// `/cdp/{key}` (percent-encoded as the client sent it).
    pub root: String,
    /// `?token=…` or `?secret=…` as the client sent it, or empty.
    pub query: String,
}

impl PublicBase {
    /// From the request URL's scheme and authority, the route root and the credential query.
    pub fn new(scheme: &str, authority: &str, root: &str, credential: Option<(&str, &str)>) -> PublicBase {
        let ws = if scheme == "https" { "wss" } else { "ws" };
        let query = match credential {
            Some((name, value)) => format!("?{name}={}", encode_query_value(value)),
            None => String::new(),
        };
        PublicBase { ws_origin: format!("{ws}://{authority}"), root: root.to_owned(), query }
    }

    pub fn browser_ws(&self) -> String {
        format!("{}{}/devtools/browser{}", self.ws_origin, self.root, self.query)
    }

    pub fn page_ws(&self, target_id: &str) -> String {
        format!("{}{}/devtools/page/{}{}", self.ws_origin, self.root, target_id, self.query)
    }
}

fn encode_query_value(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `/json/version` as Chrome answers it, with the socket URL pointing at the proxy. `browser`,
/// `protocol` and `user_agent` are the upstream browser's own.
pub fn version(
    base: &PublicBase,
    browser: &str,
    protocol: &str,
    user_agent: &str,
    v8: Option<&str>,
) -> Value {
    let mut v = json!({
        "Browser": browser,
        "Protocol-Version": protocol,
        "User-Agent": user_agent,
        "webSocketDebuggerUrl": base.browser_ws(),
    });
    if let Some(v8) = v8 {
        v["V8-Version"] = v8.into();
    }
    v
}

/// `/json/version` from a `Browser.getVersion` result (`product`, `protocolVersion`,
/// `userAgent`, `jsVersion`); a field the browser left out falls back to a neutral value.
pub fn version_from(base: &PublicBase, get_version_result: &Value) -> Value {
    let field = |name: &str| get_version_result.get(name).and_then(Value::as_str);
    version(
        base,
        field("product").unwrap_or("moltlog CDP proxy"),
        field("protocolVersion").unwrap_or("1.3"),
        field("userAgent").unwrap_or(""),
        field("jsVersion"),
    )
}

/// `Target.TargetInfo`, the fields the documents need.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct TargetInfo {
    pub target_id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub title: String,
    #[serde(default)]
    pub url: String,
}

/// One `/json/list` entry (also the answer of `/json/new`).
pub fn entry(base: &PublicBase, t: &TargetInfo) -> Value {
    json!({
        "description": "",
        "id": t.target_id,
        "title": t.title,
        "type": t.kind,
        "url": t.url,
        "webSocketDebuggerUrl": base.page_ws(&t.target_id),
    })
}

/// `/json/list` from a `Target.getTargets` result: the debuggable targets, not the browser's own
/// (the browser, its tabs' containers, its UI such as the omnibox popup).
pub fn list(base: &PublicBase, get_targets_result: &Value) -> Value {
    let infos: Vec<TargetInfo> = get_targets_result
        .get("targetInfos")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    Value::Array(
        infos
            .iter()
            .filter(|t| !matches!(t.kind.as_str(), "browser" | "tab" | "browser_ui"))
            .map(|t| entry(base, t))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> PublicBase {
        PublicBase::new("https", "moltlog.example.com", "/cdp/agent:main:1", Some(("token", "a b")))
    }

    #[test]
    fn urls_point_back_at_the_proxy_with_the_credential() {
        let b = base();
        assert_eq!(b.browser_ws(), "wss://moltlog.example.com/cdp/agent:main:1/devtools/browser?token=a%20b");
        assert_eq!(
            b.page_ws("T1"),
            "wss://moltlog.example.com/cdp/agent:main:1/devtools/page/T1?token=a%20b"
        );
        let local = PublicBase::new("http", "127.0.0.1:8787", "/cdp/k", None);
        assert_eq!(
            version_from(&local, &json!({}))["webSocketDebuggerUrl"],
            "ws://127.0.0.1:8787/cdp/k/devtools/browser"
        );
    }

    /// What Chromium answers to `Browser.getVersion`, passed through.
    #[test]
    fn version_is_the_upstream_browsers() {
        let got = json!({
            "protocolVersion": "1.3",
            "product": "HeadlessChrome/131.0.6778.85",
            "revision": "@3d81e41b6f3ac8bcae63b32e8145c9eb0cd60a2d",
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.85 Safari/537.36",
            "jsVersion": "13.1.201.9",
        });
        let v = version_from(&base(), &got);
        assert_eq!(v["Browser"], "HeadlessChrome/131.0.6778.85");
        assert_eq!(v["User-Agent"], got["userAgent"]);
        assert_eq!(
            (v["Protocol-Version"].as_str(), v["V8-Version"].as_str()),
            (Some("1.3"), Some("13.1.201.9"))
        );
        assert_eq!(v["webSocketDebuggerUrl"], base().browser_ws());
    }

    #[test]
    fn lists_pages_not_the_browser() {
        let r = json!({"targetInfos": [
            {"targetId": "B", "type": "browser", "title": "", "url": ""},
            {"targetId": "U", "type": "browser_ui", "title": "Omnibox Popup", "url": "chrome://omnibox-popup.top-chrome/"},
            {"targetId": "P", "type": "page", "title": "Hi", "url": "http://x/", "attached": false},
        ]});
        let l = list(&base(), &r);
        assert_eq!(l.as_array().unwrap().len(), 1);
        assert_eq!(l[0]["id"], "P");
        assert_eq!(l[0]["title"], "Hi");
        assert_eq!(list(&base(), &json!({})), json!([]));
    }
}
