//! `GET /v1/sessions/{key}/tail?after=SEQ`: a WebSocket (hibernation API) that receives the
//! backlog after the client's cursor, then every new event as it is committed.
//!
//! Each socket carries its cursor (the last seq sent) as its attachment, so it survives the
//! object hibernating. Backlog and live sends are synchronous with the commits, so a client that
//! reconnects with its last seq misses nothing and gets nothing twice.

use moltlog_core::engine::AppendPlan;
use serde::{Deserialize, Serialize};
use worker::{Request, Response, WebSocket, WebSocketIncomingMessage, WebSocketPair};

use super::SessionDO;
use super::read::record_json;
use crate::http::ApiError;
use moltlog_core::store::LogStore;

/// Events per store read while sending a backlog.
const PAGE: u32 = 500;

#[derive(Serialize, Deserialize, Clone, Copy, Debug)]
struct Cursor {
    /// The last seq this socket was sent.
    after: u64,
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

/// Sends events from `cursor.after + 1` up to the head from the store.
fn send_from_store(so: &SessionDO, ws: &WebSocket, mut after: u64, head: u64) -> Result<u64, ApiError> {
    while after < head {
        let page =
            so.with_live(|l| l.store.read(after + 1, PAGE).map_err(|e| ApiError::internal(e.to_string())))?;
        let Some(last) = page.last().map(|r| r.seq) else { break };
        for rec in &page {
            ws.send_with_str(record_json(rec)?.to_string())?;
        }
        after = last;
    }
    Ok(after)
}

pub(super) fn broadcast(so: &SessionDO, first_seq: u64, messages: &[String]) {
    let last_seq = first_seq + messages.len() as u64 - 1;
    for ws in so.state.get_websockets() {
        let Ok(Some(cursor)) = ws.deserialize_attachment::<Cursor>() else { continue };
        if cursor.after >= last_seq {
            continue;
        }
        let result = (|| -> Result<(), ApiError> {
            let mut after = cursor.after;
            if after + 1 < first_seq {
                after = send_from_store(so, &ws, after, first_seq - 1)?;
            }
            let skip = (after + 1).saturating_sub(first_seq) as usize;
            for m in &messages[skip.min(messages.len())..] {
                ws.send_with_str(m)?;
            }
            ws.serialize_attachment(Cursor { after: last_seq })?;
            Ok(())
        })();
        if result.is_err() {
            let _ = ws.close(Some(1011), Some("tail send failed; reconnect with your last seq"));
        }
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
    let head = so.with_live(|l| Ok(l.engine.head().seq))?;
    let pair = WebSocketPair::new()?;
    so.state.accept_web_socket(&pair.server);
    let sent = send_from_store(so, &pair.server, after.min(head), head)?;
    pair.server.serialize_attachment(Cursor { after: sent.max(after.min(head)) })?;
    pair.server.send_with_str(serde_json::json!({"type": "live", "head_seq": head}).to_string())?;
    Ok(Response::from_websocket(pair.client)?)
}

pub(super) fn on_message(_so: &SessionDO, ws: &WebSocket, message: WebSocketIncomingMessage) {
    if let WebSocketIncomingMessage::String(s) = message
        && s.trim() == "ping"
    {
        let _ = ws.send_with_str("pong");
    }
}

pub(super) fn on_close(ws: &WebSocket, code: usize, reason: &str) {
    // 1005/1006/1015 are reserved for reporting and cannot be sent back.
    let code = match code {
        1005 | 1006 | 1015 => 1000,
        c => u16::try_from(c).unwrap_or(1000),
    };
    let _ = ws.close(Some(code), Some(reason));
}
