//! The recorder: watches the CDP traffic of one connection (client → browser commands, browser →
//! client responses and events) and turns the meaningful part into browser actions.
//!
//! It is a pure state machine fed with message text after the proxy forwarded it; it never
//! touches the traffic, never fails (what it cannot parse it skips), and bounds what it keeps.
//! Flattened sessions multiplex tabs on one socket: commands and responses are correlated on
//! (sessionId, id), and a sessionId names its tab from `Target.attachedToTarget`.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use moltlog_core::event::BrowserActionKind as Kind;
use serde::Deserialize;
use serde_json::{Value, json};

use super::action::{Image, Recorded};
use super::input::{self, KeyEvent, MouseEvent, MouseOutcome, Press, TypingRun};
use super::message::{Envelope, truncate};

/// Limits that keep the recorder small whatever the traffic.
#[derive(Clone, Debug)]
pub struct RecorderLimits {
    /// Commands awaiting their response; more are not recorded (a client that never reads).
    pub max_pending: usize,
    /// Longest detail (expression, typed text) kept in an event.
    pub max_detail: usize,
    /// `Runtime.evaluate` expressions longer than this are injected scripts, counted not recorded.
    pub max_expression: usize,
    /// A typing run ends after this long without a key.
    pub typing_idle_ms: u64,
    /// Least time between two summaries of the counted commands.
    pub summary_every_ms: u64,
}

impl Default for RecorderLimits {
    fn default() -> Self {
        RecorderLimits {
            max_pending: 4096,
            max_detail: 2048,
            max_expression: 8 << 10,
            typing_idle_ms: 1500,
            summary_every_ms: 30_000,
        }
    }
}

/// A recorded command waiting for its response.
#[derive(Clone, Debug)]
enum Pending {
    CreateTarget {
        url: String,
    },
    CloseTarget {
        target: String,
    },
    Navigate {
        target: Option<String>,
        url: String,
    },
    Reload {
        target: Option<String>,
    },
    History {
        target: Option<String>,
        entry: Option<i64>,
    },
    Evaluate {
        target: Option<String>,
        expression: String,
    },
    Screenshot {
        target: Option<String>,
        format: String,
    },
    /// Not recorded itself: its response names the session of a tab.
    Attach {
        target: String,
    },
}

/// Counters for the connection, for logs and the final summary.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RecorderStats {
    pub client_messages: u64,
    pub upstream_messages: u64,
    pub unparsed: u64,
    pub recorded: u64,
    pub dropped_pending: u64,
}

pub struct Recorder {
    limits: RecorderLimits,
    /// For a page socket: the tab every message without a sessionId belongs to.
    default_target: Option<String>,
    /// sessionId → targetId.
    sessions: HashMap<String, String>,
    /// targetId → the tab's current url.
    urls: HashMap<String, String>,
    pending: HashMap<(Option<String>, i64), Pending>,
    presses: HashMap<Option<String>, Press>,
    typing: Option<TypingRun>,
    /// Unrecorded commands by method since the last summary.
    counts: BTreeMap<String, u64>,
    last_summary_ms: u64,
    /// The tab the last action ran in, while it is open: summaries are filed under it, so they
    /// do not move the session's current tab (its browser state) away from where the agent is.
    current: Option<String>,
    out: Vec<Recorded>,
    stats: RecorderStats,
}

impl Recorder {
    /// A recorder for a browser-level socket (tabs come from flattened sessions).
    pub fn new(limits: RecorderLimits, now_ms: u64) -> Recorder {
        Recorder {
            limits,
            default_target: None,
            sessions: HashMap::new(),
            urls: HashMap::new(),
            pending: HashMap::new(),
            presses: HashMap::new(),
            typing: None,
            counts: BTreeMap::new(),
            last_summary_ms: now_ms,
            current: None,
            out: Vec::new(),
            stats: RecorderStats::default(),
        }
    }

    /// A recorder for a page socket: messages without a sessionId are that tab's.
    pub fn for_page(limits: RecorderLimits, now_ms: u64, target_id: &str) -> Recorder {
        Recorder { default_target: Some(target_id.to_owned()), ..Recorder::new(limits, now_ms) }
    }

    pub fn stats(&self) -> &RecorderStats {
        &self.stats
    }

    /// The tab a message of `session` belongs to.
    fn target_of(&self, session: Option<&str>) -> Option<String> {
        match session {
            Some(s) => self.sessions.get(s).cloned(),
            None => self.default_target.clone(),
        }
    }

    fn url_of(&self, target: Option<&str>) -> Option<String> {
        self.urls.get(target?).cloned()
    }

    fn emit(&mut self, mut r: Recorded) {
        if r.url.is_none() {
            r.url = self.url_of(r.target_id.as_deref());
        }
        if r.action == Kind::CloseTarget {
            if self.current == r.target_id {
                self.current = None;
            }
        } else if r.target_id.is_some() {
            self.current = r.target_id.clone();
        }
        self.stats.recorded += 1;
        self.out.push(r);
    }

    fn count(&mut self, method: &str) {
        *self.counts.entry(method.to_owned()).or_default() += 1;
    }

    /// A message the client sent to the browser (already forwarded).
    pub fn on_client(&mut self, text: &str, now_ms: u64) {
        self.stats.client_messages += 1;
        let Some(msg) = Envelope::parse(text) else {
            self.stats.unparsed += 1;
            return;
        };
        let Some(id) = msg.id else { return };
        let session = msg.session().map(str::to_owned);
        let target = self.target_of(session.as_deref());
        let method = msg.method();
        // Keys typed into a tab stay one run until something else happens there.
        match method {
            "Input.dispatchKeyEvent" => {
                let ev: KeyEvent = msg.params_as().unwrap_or_default();
                if ev.kind == "keyUp" {
                    return;
                }
                match input::typed(&ev) {
                    Some(piece) => self.type_text(target, &piece, now_ms),
                    None => self.count(method),
                }
                return;
            }
            "Input.insertText" => {
                #[derive(Deserialize, Default)]
                struct P {
                    #[serde(default)]
                    text: String,
                }
                let p: P = msg.params_as().unwrap_or_default();
                self.type_text(target, &p.text, now_ms);
                return;
            }
            "Input.dispatchMouseEvent" => {
                let ev: MouseEvent = msg.params_as().unwrap_or_default();
                let mut press = self.presses.remove(&target);
                let outcome = input::mouse(&ev, &mut press);
                if let Some(p) = press {
                    self.presses.insert(target.clone(), p);
                }
                match outcome {
                    MouseOutcome::Nothing => {}
                    MouseOutcome::Noise => self.count(method),
                    MouseOutcome::Click(c) => {
                        self.end_typing();
                        let mut r = Recorded::new(Kind::Click, target, c.detail());
                        r.result =
                            json!({"x": c.x, "y": c.y, "button": c.button, "click_count": c.click_count});
                        self.emit(r);
                    }
                }
                return;
            }
            _ => {}
        }
        let pending = match method {
            "Target.createTarget" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                Some(Pending::CreateTarget { url: str_field(&p, "url") })
            }
            "Target.closeTarget" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                Some(Pending::CloseTarget { target: str_field(&p, "targetId") })
            }
            "Target.attachToTarget" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                Some(Pending::Attach { target: str_field(&p, "targetId") })
            }
            "Page.navigate" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                Some(Pending::Navigate { target: target.clone(), url: str_field(&p, "url") })
            }
            "Page.reload" => Some(Pending::Reload { target: target.clone() }),
            "Page.navigateToHistoryEntry" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                Some(Pending::History {
                    target: target.clone(),
                    entry: p.get("entryId").and_then(Value::as_i64),
                })
            }
            "Runtime.evaluate" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                let expression = str_field(&p, "expression");
                (expression.len() <= self.limits.max_expression).then(|| Pending::Evaluate {
                    target: target.clone(),
                    expression: truncate(&expression, self.limits.max_detail),
                })
            }
            "Page.captureScreenshot" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                let format = p.get("format").and_then(Value::as_str).unwrap_or("png").to_owned();
                Some(Pending::Screenshot { target: target.clone(), format })
            }
            _ => None,
        };
        let Some(pending) = pending else {
            self.count(method);
            return;
        };
        if !matches!(pending, Pending::Attach { .. }) {
            self.end_typing();
        }
        if self.pending.len() >= self.limits.max_pending {
            self.stats.dropped_pending += 1;
            self.count(method);
            return;
        }
        self.pending.insert((session, id), pending);
    }

    fn type_text(&mut self, target: Option<String>, piece: &str, now_ms: u64) {
        if piece.is_empty() {
            return;
        }
        if self.typing.as_ref().is_some_and(|run| run.target != target) {
            self.end_typing();
        }
        let run = self.typing.get_or_insert_with(|| TypingRun {
            target,
            text: String::new(),
            keys: 0,
            last_ms: now_ms,
        });
        run.text.push_str(piece);
        run.keys += 1;
        run.last_ms = now_ms;
    }

    fn end_typing(&mut self) {
        if let Some(run) = self.typing.take() {
            let mut r = Recorded::new(Kind::Type, run.target, truncate(&run.text, self.limits.max_detail));
            r.result = json!({"keys": run.keys});
            self.emit(r);
        }
    }

    /// A message the browser sent to the client (already forwarded).
    pub fn on_upstream(&mut self, text: &str) {
        self.stats.upstream_messages += 1;
        let Some(msg) = Envelope::parse(text) else {
            self.stats.unparsed += 1;
            return;
        };
        match msg.id {
            Some(id) => self.on_response(&msg, id),
            None => self.on_event(&msg),
        }
    }

    fn on_event(&mut self, msg: &Envelope<'_>) {
        let target = self.target_of(msg.session());
        match msg.method() {
            "Target.attachedToTarget" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                let session = str_field(&p, "sessionId");
                let info = p.get("targetInfo").cloned().unwrap_or(Value::Null);
                let id = str_field(&info, "targetId");
                if !session.is_empty() && !id.is_empty() {
                    self.note_url(&id, &str_field(&info, "url"));
                    self.sessions.insert(session, id);
                }
            }
            "Target.detachedFromTarget" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                self.sessions.remove(&str_field(&p, "sessionId"));
            }
            "Target.targetInfoChanged" | "Target.targetCreated" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                let info = p.get("targetInfo").cloned().unwrap_or(Value::Null);
                self.note_url(&str_field(&info, "targetId"), &str_field(&info, "url"));
            }
            "Target.targetDestroyed" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                self.urls.remove(&str_field(&p, "targetId"));
            }
            "Page.frameNavigated" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                let frame = p.get("frame").cloned().unwrap_or(Value::Null);
                if frame.get("parentId").is_none()
                    && let Some(t) = target
                {
                    self.note_url(&t, &str_field(&frame, "url"));
                }
            }
            "Page.navigatedWithinDocument" => {
                let p: Value = msg.params_as().unwrap_or(Value::Null);
                // A tab's main frame has the tab's id.
                if let Some(t) = target.filter(|t| *t == str_field(&p, "frameId")) {
                    self.note_url(&t, &str_field(&p, "url"));
                }
            }
            _ => {}
        }
    }

    fn note_url(&mut self, target: &str, url: &str) {
        if !target.is_empty() && !url.is_empty() {
            self.urls.insert(target.to_owned(), url.to_owned());
        }
    }

    fn on_response(&mut self, msg: &Envelope<'_>, id: i64) {
        let key = (msg.session().map(str::to_owned), id);
        let Some(pending) = self.pending.remove(&key) else { return };
        let error = msg.error_message();
        let result: Value =
            if error.is_none() { msg.result_as().unwrap_or(Value::Null) } else { Value::Null };
        let r = match pending {
            Pending::Attach { target } => {
                let session = str_field(&result, "sessionId");
                if !session.is_empty() && !target.is_empty() {
                    self.sessions.insert(session, target);
                }
                return;
            }
            Pending::CreateTarget { url } => {
                let id = str_field(&result, "targetId");
                self.note_url(&id, &url);
                let mut r = Recorded::new(Kind::CreateTarget, non_empty(id), "Target.createTarget");
                r.url = non_empty(url);
                r
            }
            Pending::CloseTarget { target } => {
                let url = self.urls.remove(&target);
                let mut r = Recorded::new(Kind::CloseTarget, non_empty(target), "Target.closeTarget");
                r.url = url;
                r.result = result;
                r
            }
            Pending::Navigate { target, url } => {
                let nav_error = str_field(&result, "errorText");
                if error.is_none()
                    && nav_error.is_empty()
                    && let Some(t) = &target
                {
                    self.note_url(t, &url);
                }
                let mut r = Recorded::new(Kind::Navigate, target, "Page.navigate");
                r.url = non_empty(url);
                r.result = pick(&result, &["frameId", "loaderId"]);
                r.error = error.clone().or(non_empty(nav_error));
                r
            }
            Pending::Reload { target } => Recorded::new(Kind::Reload, target, "Page.reload"),
            Pending::History { target, entry } => {
                let mut r = Recorded::new(Kind::History, target, "Page.navigateToHistoryEntry");
                r.result = json!({"entry_id": entry});
                r
            }
            Pending::Evaluate { target, expression } => {
                let mut r = Recorded::new(Kind::Evaluate, target, expression);
                r.result = remote_summary(result.get("result"), self.limits.max_detail);
                r.error = error.clone().or_else(|| exception_text(&result));
                r
            }
            Pending::Screenshot { target, format } => {
                let mut r =
                    Recorded::new(Kind::Screenshot, target, format!("Page.captureScreenshot {format}"));
                if error.is_none() {
                    match decode_image(msg, &format) {
                        Ok(img) => {
                            r.result = json!({"bytes": img.bytes.len(), "content_type": img.content_type});
                            r.screenshot = Some(img);
                        }
                        Err(why) => r.error = Some(why),
                    }
                }
                r
            }
        };
        let r = Recorded { error: r.error.or(error), ..r };
        self.emit(r);
    }

    /// Hands over what was recorded. Typing runs idle for a while end here; `closing` ends
    /// everything and adds the summary of counted commands.
    pub fn drain(&mut self, now_ms: u64, closing: bool) -> Vec<Recorded> {
        let idle = self.typing.as_ref().is_some_and(|t| now_ms >= t.last_ms + self.limits.typing_idle_ms);
        if closing || idle {
            self.end_typing();
        }
        let summary_due = now_ms >= self.last_summary_ms + self.limits.summary_every_ms;
        if !self.counts.is_empty() && (closing || summary_due) {
            let counts = std::mem::take(&mut self.counts);
            let total: u64 = counts.values().sum();
            let mut r = Recorded::new(
                Kind::RawCdp,
                self.current.clone(),
                format!("{total} CDP commands not recorded one by one, counted by method"),
            );
            r.url = self.url_of(self.current.as_deref());
            r.result = json!(counts);
            self.stats.recorded += 1;
            self.out.push(r);
            self.last_summary_ms = now_ms;
        }
        std::mem::take(&mut self.out)
    }
}

fn str_field(v: &Value, name: &str) -> String {
    v.get(name).and_then(Value::as_str).unwrap_or_default().to_owned()
}

fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn pick(v: &Value, names: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for n in names {
        if let Some(x) = v.get(*n) {
            m.insert((*n).to_owned(), x.clone());
        }
    }
    Value::Object(m)
}

/// A `Runtime.RemoteObject` summed up: its type, and its value when small (else a description).
fn remote_summary(obj: Option<&Value>, max: usize) -> Value {
    let Some(obj) = obj else { return Value::Null };
    let mut m = serde_json::Map::new();
    for k in ["type", "subtype", "className"] {
        if let Some(v) = obj.get(k) {
            m.insert(k.to_owned(), v.clone());
        }
    }
    if let Some(v) = obj.get("value") {
        let text = v.to_string();
        if text.len() <= max {
            m.insert("value".into(), v.clone());
        } else {
            m.insert("value_truncated".into(), truncate(&text, max).into());
        }
    } else if let Some(v) = obj.get("unserializableValue") {
        m.insert("value".into(), v.clone());
    } else if let Some(d) = obj.get("description").and_then(Value::as_str) {
        m.insert("description".into(), truncate(d, max).into());
    }
    Value::Object(m)
}

fn exception_text(result: &Value) -> Option<String> {
    let details = result.get("exceptionDetails")?;
    let described = details.get("exception").and_then(|e| e.get("description")).and_then(Value::as_str);
    Some(described.or_else(|| details.get("text").and_then(Value::as_str)).unwrap_or("exception").to_owned())
}

/// The screenshot in a `Page.captureScreenshot` response, decoded.
fn decode_image(msg: &Envelope<'_>, format: &str) -> Result<Image, String> {
    #[derive(Deserialize)]
    struct Shot<'a> {
        #[serde(borrow)]
        data: std::borrow::Cow<'a, str>,
    }
    let raw = msg.result.ok_or("screenshot response without a result")?;
    let shot: Shot<'_> = serde_json::from_str(raw.get()).map_err(|e| format!("screenshot response: {e}"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(shot.data.as_bytes())
        .map_err(|e| format!("screenshot data is not base64: {e}"))?;
    let content_type = match format {
        "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        _ => "image/png",
    };
    Ok(Image { bytes, content_type: content_type.to_owned() })
}

#[cfg(test)]
#[path = "recorder_tests.rs"]
mod tests;
