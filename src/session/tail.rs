//! `GET /v1/sessions/{key}/tail?after=SEQ`: a WebSocket (hibernation API) that receives the
//! backlog after the client's cursor, then every new event as it is committed.
//!
//! Flow control (`moltlog_core::tail`): the runtime buffers in memory whatever a socket is sent
//! and its client does not read, so a socket is sent at most `TAIL_WINDOW_BYTES` (plus one
//! event) beyond what its client acknowledged with `{"ack":SEQ}`. The backlog is paged from the
//! store as acks open the window, never loaded whole, so opening a tail costs one window of work.
//! A client whose window stays full with no progress for `TAIL_STALL_MS` is closed with 1013 and
//! the reason `{"code":"slow_consumer","after":N}`: it resumes with `?after=N`.
//!
//! Each socket carries its flow state (cursor, acks, in-flight bytes) as its attachment, so it
//! survives the object hibernating. Sends are synchronous with the commits, so a client that
//! reconnects with its last seq misses nothing and gets nothing twice.

use moltlog_core::engine::AppendPlan;
use moltlog_core::store::LogStore;
use moltlog_core::tail::{Decision, TailFlow};
use serde::{Deserialize, Serialize};
use serde_json::json;
use worker::{Request, Response, WebSocket, WebSocketIncomingMessage, WebSocketPair};

use super::SessionDO;
use super::read::record_json;
use crate::http::ApiError;
use crate::rt;

/// Events per store read. A read stops at the window, so this bounds the work of one step.
const PAGE_EVENTS: u32 = 16;

/// A socket's attachment.
#[derive(Serialize, Deserialize, Clone, Debug)]
struct Socket {
    flow: TailFlow,
    /// The head when the socket opened: `{"type":"live"}` goes out once the backlog reached it.
    live_at: Option<u64>,
    /// Closed by us (slow consumer or failed send): nothing more is sent.
    closed: bool,
}

pub(super) fn has_clients(so: &SessionDO) -> bool {
    !so.state.get_websockets().is_empty()
}

/// The messages a plan's events become (rendered before the commit consumes the plan).
pub(super) fn render(plan: &AppendPlan) -> Vec<String> {
    plan.events
        .iter()
        .zip(&plan.commit.records)
        .map(|((h, b), r)| moltlog_core::dto::event_json(h, &r.hash, b, r.redacted).to_string())
        .collect()
}

/// Rendered messages of the events from `first_seq` on, just committed.
type Fresh<'a> = Option<(u64, &'a [String])>;

/// Sends what the window allows up to `head`: from `fresh` where it covers, else from the store.
/// Returns false if it closed the socket.
fn pump(
    so: &SessionDO,
    ws: &WebSocket,
    sock: &mut Socket,
    head: u64,
    fresh: Fresh,
) -> Result<bool, ApiError> {
    let limits = so.cfg.tail;
    let now_ms = rt::now_ms();
    loop {
        if let Some(at) = sock.live_at
            && sock.flow.sent >= at
        {
            ws.send_with_str(json!({"type": "live", "head_seq": at}).to_string())?;
            sock.live_at = None;
        }
        match sock.flow.decide(head, now_ms, &limits) {
            Decision::Wait => return Ok(true),
            Decision::Close { after } => {
                sock.closed = true;
                let reason = json!({"code": "slow_consumer", "after": after}).to_string();
                let _ = ws.close(Some(1013), Some(reason));
                return Ok(false);
            }
            Decision::Send => {}
        }
        let next = sock.flow.sent + 1;
        if let Some((first, messages)) = fresh
            && next >= first
        {
            let m = usize::try_from(next - first).ok().and_then(|i| messages.get(i));
            let m = m.ok_or_else(|| ApiError::internal("tail: fresh events do not reach the head"))?;
            ws.send_with_str(m)?;
            sock.flow.on_sent(next, m.len() as u64, &limits);
            continue;
        }
        let upto = fresh.map_or(head, |(first, _)| first - 1);
        let page =
            so.with_live(|l| l.store.read(next, PAGE_EVENTS).map_err(|e| ApiError::internal(e.to_string())))?;
        if page.first().map(|r| r.seq) != Some(next) {
            return Err(ApiError::internal(format!("tail: the store has no seq {next}")));
        }
        for rec in page.iter().take_while(|r| r.seq <= upto) {
            if rec.seq != sock.flow.sent + 1 {
                return Err(ApiError::internal(format!("tail: store read skipped to seq {}", rec.seq)));
            }
            let m = record_json(rec)?.to_string();
            ws.send_with_str(&m)?;
            sock.flow.on_sent(rec.seq, m.len() as u64, &limits);
            if sock.flow.decide(head, now_ms, &limits) != Decision::Send {
                break;
            }
        }
    }
}

/// Pumps one socket and saves its state; a failure closes it (the client resumes from its seq).
fn step(so: &SessionDO, ws: &WebSocket, mut sock: Socket, head: u64, fresh: Fresh) {
    let result = pump(so, ws, &mut sock, head, fresh);
    if result.is_err() {
        sock.closed = true;
    }
    let saved = ws.serialize_attachment(&sock);
    if result.is_err() || saved.is_err() {
        let _ = ws.close(Some(1011), Some("tail send failed; reconnect with your last seq"));
    }
}

fn socket_of(ws: &WebSocket) -> Option<Socket> {
    ws.deserialize_attachment::<Socket>().ok().flatten().filter(|s| !s.closed)
}

pub(super) fn broadcast(so: &SessionDO, first_seq: u64, messages: &[String]) {
    let Some(last_seq) = (first_seq + messages.len() as u64).checked_sub(1) else { return };
    for ws in so.state.get_websockets() {
        let Some(sock) = socket_of(&ws) else { continue };
        step(so, &ws, sock, last_seq, Some((first_seq, messages)));
    }
}

pub(super) fn accept(so: &SessionDO, req: &Request) -> Result<Response, ApiError> {
    // Parameters first: a bad seq is a 400 whether or not the client asked for a socket.
    let after = crate::http::param::query_u64(req, "after", crate::http::param::SEQ)?.unwrap_or(0);
    let upgrade = req.headers().get("upgrade")?.unwrap_or_default();
    if !upgrade.eq_ignore_ascii_case("websocket") {
        return Err(ApiError::new(
            426,
            "upgrade_required",
            "the tail is a WebSocket: send Upgrade: websocket",
        ));
    }
    let open = so.state.get_websockets().iter().filter(|ws| socket_of(ws).is_some()).count();
    if open >= so.cfg.max_tails as usize {
        return Err(ApiError::new(
            429,
            "too_many_tails",
            format!("this session already has {open} tails open (at most {})", so.cfg.max_tails),
        ));
    }
    let head = so.with_live(|l| Ok(l.engine.head().seq))?;
    let pair = WebSocketPair::new()?;
    so.state.accept_web_socket(&pair.server);
    let sock = Socket { flow: TailFlow::starting_after(after.min(head)), live_at: Some(head), closed: false };
    step(so, &pair.server, sock, head, None);
    Ok(Response::from_websocket(pair.client)?)
}

fn send_error(ws: &WebSocket, code: &str, message: &str) {
    let _ =
        ws.send_with_str(json!({"type": "error", "error": {"code": code, "message": message}}).to_string());
}

#[derive(Deserialize)]
struct Ack {
    ack: u64,
}

/// `ping` answers `pong`; `{"ack":SEQ}` credits the window and sends what it now allows.
pub(super) async fn on_message(so: &SessionDO, ws: &WebSocket, message: WebSocketIncomingMessage) {
    let WebSocketIncomingMessage::String(text) = message else {
        return send_error(ws, "bad_message", "send \"ping\" or {\"ack\":SEQ} as text");
    };
    let text = text.trim();
    if text == "ping" {
        let _ = ws.send_with_str("pong");
        return;
    }
    let Ok(Ack { ack }) = serde_json::from_str::<Ack>(text) else {
        return send_error(ws, "bad_message", "send \"ping\" or {\"ack\":SEQ}");
    };
    // The object may have hibernated: load the session first, then read the socket's state (no
    // await between reading and saving it, so a commit cannot interleave).
    if so.ensure_live(None).await.is_err() {
        return send_error(ws, "not_loaded", "the session could not be loaded; ack again");
    }
    let Some(mut sock) = socket_of(ws) else { return };
    if let Err(e) = sock.flow.on_ack(ack, rt::now_ms(), &so.cfg.tail) {
        return send_error(ws, "bad_ack", &e.to_string());
    }
    let Ok(head) = so.with_live(|l| Ok(l.engine.head().seq)) else { return };
    step(so, ws, sock, head, None);
}

pub(super) fn on_close(ws: &WebSocket, code: usize, reason: &str) {
    // 1005/1006/1015 are reserved for reporting and cannot be sent back.
    let code = match code {
        1005 | 1006 | 1015 => 1000,
        c => u16::try_from(c).unwrap_or(1000),
    };
    let _ = ws.close(Some(code), Some(reason));
}
