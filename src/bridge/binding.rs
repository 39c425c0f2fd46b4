//! Binding rules: which session an inbound chat message belongs to.
//!
//! `BRIDGE_BINDINGS` is a JSON array of rules, tried in order; the first whose conditions all
//! hold names the session. A rule without `session` uses the default template, so a rule can
//! just pick another agent for a chat. No rule matching means the default template with the
//! default agent (`BRIDGE_AGENT`, "main"):
//!
//! ```json
//! [{"platform": "telegram", "chat_id": "-100123", "session": "agent:ops:team-room"},
//!  {"platform": "slack", "agent": "helper"},
//!  {"platform": "discord", "session": "agent:{agent}:discord:{space}:{chat_id}"}]
//! ```
//!
//! Template placeholders: `{agent}`, `{channel}` (the platform), `{chat_id}`, `{thread_id}`,
//! `{user_id}`, `{space}` (Slack team, Discord guild). Substituted values are reduced to the
//! session-key alphabet (anything else becomes `_`), so no message can steer a key elsewhere.
//!
//! `{thread_id}` is the thread's root: on Slack a top-level message is the root of the thread
//! its replies will form, so it names its own `ts`, and the root and its replies share one
//! session. When the session is per thread, a reply to the root goes into that thread.
//!
//! A message whose key comes out invalid (too long, say) is the message's fault, not a fault
//! the platform could cure by retrying: the Worker acknowledges it and logs why.

use moltlog_core::key::{SessionKey, SessionKeyError};
use serde::Deserialize;

use super::{BridgePlatform, InboundMessage};

/// The default session of a chat: one session per agent, platform and conversation.
pub const DEFAULT_TEMPLATE: &str = "agent:{agent}:{channel}:chat:{chat_id}";

const PLACEHOLDERS: [&str; 6] = ["agent", "channel", "chat_id", "thread_id", "user_id", "space"];

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BindingRule {
    /// Matches messages from this platform only.
    pub platform: Option<String>,
    /// Matches this conversation only.
    pub chat_id: Option<String>,
    /// Matches this Slack team / Discord guild only.
    pub space: Option<String>,
    /// The agent the matching messages go to (`{agent}`).
    pub agent: Option<String>,
    /// The session key template; the default template when absent.
    pub session: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BindingError {
    #[error("BRIDGE_BINDINGS is not a JSON array of rules: {0}")]
    Json(String),
    #[error("binding rule {index}: unknown placeholder {{{name}}}; known: {known}")]
    UnknownPlaceholder { index: usize, name: String, known: String },
    #[error("binding rule {index}: unclosed placeholder in {template:?}")]
    Unclosed { index: usize, template: String },
    #[error("binding rule {index}: platform {platform:?} is not telegram, slack or discord")]
    UnknownPlatform { index: usize, platform: String },
    #[error("the session key for this message is not valid: {0}")]
    BadKey(#[from] SessionKeyError),
}

/// Where a message goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bound {
    pub key: SessionKey,
    /// The thread replies should go to when the message names none itself: set for a Slack
    /// top-level message bound to a per-thread session (its own `ts`, the thread's root).
    pub reply_thread: Option<String>,
}

/// Parses and checks `BRIDGE_BINDINGS`.
pub fn parse_rules(json: &str) -> Result<Vec<BindingRule>, BindingError> {
    let rules: Vec<BindingRule> =
        serde_json::from_str(json).map_err(|e| BindingError::Json(e.to_string()))?;
    for (index, r) in rules.iter().enumerate() {
        if let Some(p) = &r.platform
            && super::BridgePlatform::from_name(p).is_none()
        {
            return Err(BindingError::UnknownPlatform { index, platform: p.clone() });
        }
        if let Some(t) = &r.session {
            check_template(index, t)?;
        }
    }
    Ok(rules)
}

fn check_template(index: usize, template: &str) -> Result<(), BindingError> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let close =
            after.find('}').ok_or_else(|| BindingError::Unclosed { index, template: template.to_owned() })?;
        let name = &after[..close];
        if !PLACEHOLDERS.contains(&name) {
            return Err(BindingError::UnknownPlaceholder {
                index,
                name: name.to_owned(),
                known: PLACEHOLDERS.join(", "),
            });
        }
        rest = &after[close + 1..];
    }
    Ok(())
}

impl BindingRule {
    fn matches(&self, m: &InboundMessage) -> bool {
        self.platform.as_deref().is_none_or(|p| p == m.platform.name())
            && self.chat_id.as_deref().is_none_or(|c| c == m.chat_id)
            && self.space.as_deref().is_none_or(|s| Some(s) == m.space.as_deref())
    }
}

/// A value reduced to the session-key alphabet.
fn key_safe(v: &str) -> String {
    v.chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '@' | '-') { c } else { '_' })
        .collect()
}

/// The root of the thread `m` is in: its thread id, or on Slack, for a top-level message, its
/// own `ts` (Slack's `thread_ts` of the replies to come).
fn thread_root(m: &InboundMessage) -> Option<&str> {
    match m.platform {
        BridgePlatform::Slack => m.thread_id.as_deref().or(m.message_id.as_deref()),
        BridgePlatform::Telegram | BridgePlatform::Discord => m.thread_id.as_deref(),
    }
}

fn render(template: &str, agent: &str, m: &InboundMessage) -> String {
    let value = |name: &str| -> String {
        let v = match name {
            "agent" => Some(agent),
            "channel" => Some(m.platform.name()),
            "chat_id" => Some(m.chat_id.as_str()),
            "thread_id" => thread_root(m),
            "user_id" => m.user_id.as_deref(),
            "space" => m.space.as_deref(),
            _ => None,
        };
        key_safe(v.unwrap_or(""))
    };
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close) => {
                out.push_str(&value(&after[..close]));
                rest = &after[close + 1..];
            }
            None => {
                out.push_str(&rest[open..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// The session `m` belongs to, and the thread its replies go to.
pub fn bind(rules: &[BindingRule], default_agent: &str, m: &InboundMessage) -> Result<Bound, BindingError> {
    let rule = rules.iter().find(|r| r.matches(m));
    let agent = rule.and_then(|r| r.agent.as_deref()).unwrap_or(default_agent);
    let template = rule.and_then(|r| r.session.as_deref()).unwrap_or(DEFAULT_TEMPLATE);
    let key = SessionKey::parse(&render(template, &key_safe(agent), m))?;
    let per_thread = template.contains("{thread_id}");
    let reply_thread = match m.thread_id {
        None if per_thread => thread_root(m).map(str::to_owned),
        _ => None,
    };
    Ok(Bound { key, reply_thread })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session_for(
        rules: &[BindingRule],
        agent: &str,
        m: &InboundMessage,
    ) -> Result<SessionKey, BindingError> {
        Ok(bind(rules, agent, m)?.key)
    }

    fn msg(platform: BridgePlatform, chat: &str) -> InboundMessage {
        InboundMessage {
            platform,
            chat_id: chat.into(),
            message_id: None,
            thread_id: Some("1700.1".into()),
            user_id: Some("U1".into()),
            author: None,
            text: "hi".into(),
            space: Some("T9".into()),
            delivery_key: "k".into(),
        }
    }

    #[test]
    fn default_template() {
        let k = session_for(&[], "main", &msg(BridgePlatform::Telegram, "-100123")).unwrap();
        assert_eq!(k.as_str(), "agent:main:telegram:chat:-100123");
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = parse_rules(
            r#"[{"platform":"telegram","chat_id":"42","session":"agent:ops:room"},
                {"platform":"slack","agent":"helper"},
                {"space":"T9","session":"agent:{agent}:{channel}:{space}:{chat_id}:{thread_id}:{user_id}"}]"#,
        )
        .unwrap();
        assert_eq!(
            session_for(&rules, "main", &msg(BridgePlatform::Telegram, "42")).unwrap().as_str(),
            "agent:ops:room"
        );
        assert_eq!(
            session_for(&rules, "main", &msg(BridgePlatform::Slack, "C1")).unwrap().as_str(),
            "agent:helper:slack:chat:C1"
        );
        assert_eq!(
            session_for(&rules, "main", &msg(BridgePlatform::Discord, "55")).unwrap().as_str(),
            "agent:main:discord:T9:55:1700.1:U1"
        );
    }

    #[test]
    fn values_cannot_leave_the_key_alphabet() {
        let k = session_for(&[], "main", &msg(BridgePlatform::Telegram, "a/b c")).unwrap();
        assert_eq!(k.as_str(), "agent:main:telegram:chat:a_b_c");
    }

    #[test]
    fn bad_rules_are_named() {
        assert!(matches!(parse_rules("{}"), Err(BindingError::Json(_))));
        assert!(matches!(
            parse_rules(r#"[{"session":"agent:{nope}"}]"#),
            Err(BindingError::UnknownPlaceholder { index: 0, .. })
        ));
        assert!(matches!(
            parse_rules(r#"[{},{"session":"agent:{chat_id"}]"#),
            Err(BindingError::Unclosed { index: 1, .. })
        ));
        assert!(matches!(parse_rules(r#"[{"platform":"irc"}]"#), Err(BindingError::UnknownPlatform { .. })));
        assert!(matches!(parse_rules(r#"[{"sesion":"x"}]"#), Err(BindingError::Json(_))));
    }

    /// A validly signed message with a 300-character chat id: its key is invalid, which is the
    /// message's fault (the Worker acknowledges and logs it rather than answering 500).
    #[test]
    fn an_overlong_key_is_a_bad_key() {
        let m = msg(BridgePlatform::Telegram, &"9".repeat(300));
        assert!(matches!(session_for(&[], "main", &m), Err(BindingError::BadKey(_))));
        let rules = parse_rules(r#"[{"session":"agent:{agent}:{chat_id}:{chat_id}"}]"#).unwrap();
        assert!(matches!(
            bind(&rules, "main", &msg(BridgePlatform::Slack, &"C".repeat(130))),
            Err(BindingError::BadKey(_))
        ));
    }

    /// A Slack thread's root (a top-level message) and its replies share one session, and a
    /// reply to the root goes into the thread.
    #[test]
    fn a_slack_thread_is_one_session() {
        let rules = parse_rules(
            r#"[{"platform":"slack","session":"agent:{agent}:slack:{chat_id}:thread:{thread_id}"}]"#,
        )
        .unwrap();
        let mut root = msg(BridgePlatform::Slack, "C1");
        root.message_id = Some("1700.1".into());
        root.thread_id = None;
        let mut reply = msg(BridgePlatform::Slack, "C1");
        reply.message_id = Some("1700.2".into());
        reply.thread_id = Some("1700.1".into());
        let (r, p) = (bind(&rules, "main", &root).unwrap(), bind(&rules, "main", &reply).unwrap());
        assert_eq!(r.key.as_str(), "agent:main:slack:C1:thread:1700.1");
        assert_eq!(r.key, p.key);
        assert_eq!((r.reply_thread.as_deref(), p.reply_thread), (Some("1700.1"), None));
        let mut other = root.clone();
        other.message_id = Some("1800.5".into());
        assert_ne!(
            bind(&rules, "main", &other).unwrap().key,
            r.key,
            "another top-level message, another thread"
        );
        // Per chat (the default), a top-level message stays top-level.
        assert_eq!(bind(&[], "main", &root).unwrap().reply_thread, None);
        // Telegram has no such root: a message outside a topic has no thread.
        let mut tg = msg(BridgePlatform::Telegram, "42");
        (tg.thread_id, tg.message_id) = (None, Some("7".into()));
        let rules = parse_rules(r#"[{"session":"agent:{agent}:tg:{chat_id}:{thread_id}"}]"#).unwrap();
        assert_eq!(bind(&rules, "main", &tg).unwrap().key.as_str(), "agent:main:tg:42:");
    }

    #[test]
    fn an_empty_key_is_refused() {
        let rules = parse_rules(r#"[{"session":"{thread_id}"}]"#).unwrap();
        let mut m = msg(BridgePlatform::Slack, "C1");
        m.thread_id = None;
        assert!(matches!(session_for(&rules, "main", &m), Err(BindingError::BadKey(_))));
    }
}
