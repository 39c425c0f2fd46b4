//! Browser state: where each tab (CDP target) is, so a fresh sandbox can reopen it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::event::{BrowserAction, BrowserActionKind, Payload};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetState {
    pub url: Option<String>,
    pub last_seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastAction {
    pub seq: u64,
    pub ts_ms: u64,
    pub action: BrowserActionKind,
    pub target_id: Option<String>,
    pub url: Option<String>,
    pub error: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Screenshot {
    pub seq: u64,
    pub target_id: Option<String>,
    /// The image blob (or `Redacted`).
    pub image: Payload,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserState {
    /// Open targets by id. The empty id is the one tab of a client that names no targets: it
    /// exists once such an action put it at a URL, never for target-less commands alone.
    pub targets: BTreeMap<String, TargetState>,
    /// The target the last action ran in.
    pub current_target: Option<String>,
    pub last_action: Option<LastAction>,
    pub last_screenshot: Option<Screenshot>,
    pub actions: u64,
}

impl BrowserState {
    /// The url of the target the agent used last.
    pub fn current_url(&self) -> Option<&str> {
        let id = self.current_target.as_deref()?;
        self.targets.get(id)?.url.as_deref()
    }

    pub(crate) fn apply(&mut self, seq: u64, ts_ms: u64, a: BrowserAction) {
        self.actions += 1;
        let id = a.target_id.clone().unwrap_or_default();
        // An action that names no target and places no page (a browser-level `raw_cdp`, say)
        // is in no tab: it must not conjure one up, nor become the current one.
        let in_a_tab = !id.is_empty() || a.url.is_some() || self.targets.contains_key("");
        if a.action == BrowserActionKind::CloseTarget {
            self.targets.remove(&id);
            if self.current_target.as_deref() == Some(id.as_str()) {
                self.current_target = None;
            }
        } else if in_a_tab {
            let target = self.targets.entry(id.clone()).or_insert(TargetState { url: None, last_seq: seq });
            target.last_seq = seq;
            if a.url.is_some() {
                target.url = a.url.clone();
            }
            self.current_target = Some(id);
        }
        if let Some(image) = a.screenshot {
            self.last_screenshot = Some(Screenshot { seq, target_id: a.target_id.clone(), image });
        }
        self.last_action = Some(LastAction {
            seq,
            ts_ms,
            action: a.action,
            target_id: a.target_id,
            url: a.url,
            error: a.error,
        });
    }

    pub(crate) fn redact(&mut self, target: u64) {
        if let Some(shot) = self.last_screenshot.as_mut().filter(|s| s.seq == target) {
            shot.image = Payload::Redacted;
        }
    }
}
