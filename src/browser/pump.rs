//! The pump: frames between the client and the browser, 1:1 in both directions (text as text,
//! binary as binary), and a close on either side closes the other.
//!
//! Forwarding comes first: a message is sent on before the recorder hears of it, and the
//! recorder runs as its own task fed through a channel, so parsing, screenshot decoding and
//! appends never hold up a frame, and nothing the recorder does can break the socket.

use std::time::Duration;

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender, unbounded};
use futures::channel::oneshot;
use futures::future::{Either, select};
use futures::{FutureExt, StreamExt};
use worker::{Delay, WebSocket, WebsocketEvent, console_log};

use super::sink::Sink;
use crate::cdp::message::Envelope;
use crate::cdp::page_bridge::{FromBrowser, PageBridge};
use crate::cdp::{Recorded, Recorder};
use crate::rt;

/// What the recorder task hears.
pub enum Observed {
    Client(String),
    Upstream(String),
    /// Recorded outside the socket (`/json/new`, `/json/close`).
    Action(Recorded),
    Closed,
}

/// How often the recorder hands what it has to the sink while traffic flows.
const FLUSH_EVERY_MS: u64 = 250;
/// Messages the recorder handles before yielding to the event loop (where the pump runs).
const YIELD_EVERY: u32 = 32;

/// Close codes a peer may report but `close()` refuses to send: no status, abnormal
/// closure, TLS failure (and anything outside the range) become a normal close.
pub fn close_code(code: u16) -> u16 {
    match code {
        1005 | 1006 | 1015 => 1000,
        1000..=4999 => code,
        _ => 1000,
    }
}

fn close(ws: &WebSocket, code: u16, reason: &str) {
    let reason = crate::cdp::message::truncate(reason, 100);
    // Closing an already closed socket throws; there is nothing left to do then.
    let _ = ws.close(Some(close_code(code)), Some(reason));
}

/// A command the proxy itself sends on an open browser socket (Browser Rendering allows one
/// connection per browser, so `/json/list` and friends ride on the agent's), and where the
/// answer goes. Its id is from the proxy's range; the answer is not forwarded to the client.
pub struct Injected {
    pub id: i64,
    pub text: String,
    pub reply: oneshot::Sender<String>,
}

/// The open browser sockets of a Durable Object, by connection: where commands can be injected.
pub type Lines = Rc<RefCell<Vec<(String, UnboundedSender<Injected>)>>>;

/// The page-socket translation, when the client is a page socket.
pub enum Mode {
    Browser,
    Page { bridge: PageBridge, early: Vec<String> },
}

/// A pump's line: registered in `lines` while it runs, so commands can be injected.
pub struct Line {
    pub lines: Lines,
    pub connection: String,
    pub injected: UnboundedReceiver<Injected>,
}

impl Line {
    pub fn open(lines: &Lines, connection: &str) -> Line {
        let (tx, rx) = unbounded();
        lines.borrow_mut().push((connection.to_owned(), tx));
        Line { lines: lines.clone(), connection: connection.to_owned(), injected: rx }
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.lines.borrow_mut().retain(|(c, _)| *c != self.connection);
    }
}

/// Pumps until either side closes, then closes the other. `tx` feeds the recorder.
pub async fn pump(
    client: WebSocket,
    upstream: WebSocket,
    mut mode: Mode,
    tx: UnboundedSender<Observed>,
    mut line: Line,
) {
    let mut waiting: HashMap<i64, oneshot::Sender<String>> = HashMap::new();
    let (Ok(mut from_client), Ok(mut from_upstream)) = (client.events(), upstream.events()) else {
        close(&client, 1011, "proxy could not listen");
        close(&upstream, 1000, "");
        let _ = tx.unbounded_send(Observed::Closed);
        return;
    };
    if let Mode::Page { bridge, .. } = &mode
        && upstream.send_with_str(bridge.attach_command()).is_err()
    {
        close(&client, 1011, "browser socket failed");
    }
    loop {
        let sockets = select(from_client.next(), from_upstream.next());
        let next = match select(sockets, line.injected.next()).await {
            Either::Left((either, _)) => either,
            Either::Right((Some(cmd), _)) => {
                if upstream.send_with_str(&cmd.text).is_ok() {
                    waiting.insert(cmd.id, cmd.reply);
                }
                continue;
            }
            Either::Right((None, _)) => continue,
        };
        match next {
            Either::Left((event, _)) => match event {
                Some(Ok(WebsocketEvent::Message(m))) => {
                    if let Some(text) = m.text() {
                        let sent = match &mut mode {
                            Mode::Browser => upstream.send_with_str(&text),
                            Mode::Page { bridge, early } => match bridge.from_client(&text) {
                                Some(wrapped) => upstream.send_with_str(wrapped),
                                None if bridge.session().is_none() => {
                                    early.push(text.clone());
                                    Ok(())
                                }
                                None => Ok(()),
                            },
                        };
                        if sent.is_err() {
                            close(&client, 1011, "browser socket failed");
                            break;
                        }
                        let _ = tx.unbounded_send(Observed::Client(text));
                    } else if let Some(bytes) = m.bytes()
                        && upstream.send_with_bytes(bytes).is_err()
                    {
                        close(&client, 1011, "browser socket failed");
                        break;
                    }
                }
                Some(Ok(WebsocketEvent::Close(c))) => {
                    close(&upstream, c.code(), &c.reason());
                    close(&client, c.code(), &c.reason()); // completes the client's handshake
                    break;
                }
                Some(Err(_)) | None => {
                    close(&upstream, 1000, "client went away");
                    break;
                }
            },
            Either::Right((event, _)) => match event {
                Some(Ok(WebsocketEvent::Message(m))) => {
                    if let Some(text) = m.text() {
                        if !waiting.is_empty()
                            && let Some(reply) = injected_answer(&text, &mut waiting)
                        {
                            let _ = reply.send(text);
                            continue;
                        }
                        let out = match &mut mode {
                            Mode::Browser => Some(text),
                            Mode::Page { bridge, early } => match bridge.from_browser(&text) {
                                FromBrowser::Forward(t) => Some(t),
                                FromBrowser::Ignore => {
                                    // Until attached, the browser-level news (the tab's url in
                                    // Target.attachedToTarget) is the recorder's business.
                                    if bridge.session().is_none() {
                                        let _ = tx.unbounded_send(Observed::Upstream(text));
                                    }
                                    None
                                }
                                FromBrowser::Attached => {
                                    for m in early.drain(..) {
                                        if let Some(w) = bridge.from_client(&m) {
                                            let _ = upstream.send_with_str(w);
                                        }
                                    }
                                    None
                                }
                                FromBrowser::Failed(why) => {
                                    close(&client, 1011, &why);
                                    close(&upstream, 1000, "");
                                    break;
                                }
                            },
                        };
                        if let Some(out) = out {
                            if client.send_with_str(&out).is_err() {
                                close(&upstream, 1000, "client went away");
                                break;
                            }
                            let _ = tx.unbounded_send(Observed::Upstream(out));
                        }
                    } else if let Some(bytes) = m.bytes()
                        && client.send_with_bytes(bytes).is_err()
                    {
                        close(&upstream, 1000, "client went away");
                        break;
                    }
                }
                Some(Ok(WebsocketEvent::Close(c))) => {
                    close(&client, c.code(), &c.reason());
                    close(&upstream, c.code(), &c.reason());
                    break;
                }
                Some(Err(_)) | None => {
                    close(&client, 1011, "browser went away");
                    break;
                }
            },
        }
    }
    let _ = tx.unbounded_send(Observed::Closed);
}

/// The waiter of an answer to an injected command.
fn injected_answer(
    text: &str,
    waiting: &mut HashMap<i64, oneshot::Sender<String>>,
) -> Option<oneshot::Sender<String>> {
    let msg = Envelope::parse(text)?;
    if msg.method.is_some() || msg.session_id.is_some() {
        return None;
    }
    waiting.remove(&msg.id?)
}

/// The recorder's task: feeds the recorder, and hands its actions to the sink in batches.
pub async fn record(
    mut recorder: Recorder,
    mut rx: UnboundedReceiver<Observed>,
    mut sink: Sink,
    label: String,
) {
    let mut handled = 0u32;
    let mut last_flush = rt::now_ms();
    let mut pending: Vec<Recorded> = Vec::new();
    loop {
        let wait = Delay::from(Duration::from_millis(FLUSH_EVERY_MS));
        let next = match select(rx.next(), wait.fuse()).await {
            Either::Left((msg, _)) => msg,
            Either::Right(((), _)) => {
                pending.extend(recorder.drain(rt::now_ms(), false));
                if !pending.is_empty() {
                    sink.store(std::mem::take(&mut pending)).await;
                    last_flush = rt::now_ms();
                }
                continue;
            }
        };
        let now = rt::now_ms();
        match next {
            Some(Observed::Client(text)) => recorder.on_client(&text, now),
            Some(Observed::Upstream(text)) => recorder.on_upstream(&text),
            Some(Observed::Action(a)) => pending.push(a),
            Some(Observed::Closed) | None => break,
        }
        pending.extend(recorder.drain(now, false));
        if !pending.is_empty() && now >= last_flush + FLUSH_EVERY_MS {
            sink.store(std::mem::take(&mut pending)).await;
            last_flush = rt::now_ms();
        }
        handled += 1;
        if handled.is_multiple_of(YIELD_EVERY) {
            // Let the pump's frames through before handling more of the backlog.
            Delay::from(Duration::ZERO).await;
        }
    }
    pending.extend(recorder.drain(rt::now_ms(), true));
    sink.store(pending).await;
    let s = recorder.stats();
    console_log!(
        "moltlog cdp {label}: closed; {} client and {} browser messages, {} actions recorded, {} unparsed",
        s.client_messages,
        s.upstream_messages,
        s.recorded,
        s.unparsed
    );
}

/// A channel from the pump to the recorder.
pub fn channel() -> (UnboundedSender<Observed>, UnboundedReceiver<Observed>) {
    unbounded()
}
