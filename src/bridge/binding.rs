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

use moltlog_core::key::{SessionKey, SessionKeyError};
use serde::Deserialize;

use super::InboundMessage;

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

fn render(template: &str, agent: &str, m: &InboundMessage) -> String {
    let value = |name: &str| -> String {
        let v = match name {
            "agent" => Some(agent),
            "channel" => Some(m.platform.name()),
            "chat_id" => Some(m.chat_id.as_str()),
            "thread_id" => m.thread_id.as_deref(),
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

/// The session `m` belongs to.
pub fn session_for(
    rules: &[BindingRule],
    default_agent: &str,
    m: &InboundMessage,
) -> Result<SessionKey, BindingError> {
    let rule = rules.iter().find(|r| r.matches(m));
    let agent = rule.and_then(|r| r.agent.as_deref()).unwrap_or(default_agent);
    let template = rule.and_then(|r| r.session.as_deref()).unwrap_or(DEFAULT_TEMPLATE);
    Ok(SessionKey::parse(&render(template, &key_safe(agent), m))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bridge::BridgePlatform;

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

    #[test]
    fn an_empty_key_is_refused() {
        let rules = parse_rules(r#"[{"session":"{thread_id}"}]"#).unwrap();
        let mut m = msg(BridgePlatform::Slack, "C1");
        m.thread_id = None;
        assert!(matches!(session_for(&rules, "main", &m), Err(BindingError::BadKey(_))));
    }
}
