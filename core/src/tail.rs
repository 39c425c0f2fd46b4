//! Flow control of one live-tail socket, sans IO: given what was sent, what the client acked and
//! the time, decide whether to send the next event, wait, or close a slow consumer.
//!
//! The runtime buffers whatever a socket is sent and its client does not read, so without this a
//! client that never reads makes the server hold the whole log in memory. Here the bytes sent
//! and not yet acknowledged stay under `window_bytes` (plus one event: a single event larger
//! than the window is still sent once nothing else is in flight). A client acknowledges with
//! `{"ack":SEQ}` ("I have processed everything up to SEQ"). A socket whose window stays full
//! with no ack that makes progress for `stall_ms` is closed, with the last acked seq as its
//! cursor to resume from.
//!
//! The state is small and bounded (at most `MARKS` checkpoints) so it fits in a hibernating
//! WebSocket's attachment (2 KiB on Cloudflare) and survives the object being evicted.

use serde::{Deserialize, Serialize};

/// Checkpoints kept per socket: an ack credits the bytes up to the latest checkpoint it covers.
/// More checkpoints let a client that acks as it reads keep the window open more smoothly.
pub const MARKS: usize = 8;

/// Window and stall limits of a tail socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TailLimits {
    /// Most bytes in flight (sent, not acknowledged) before sending stops.
    pub window_bytes: u64,
    /// How long a full window may go without an ack that makes progress.
    pub stall_ms: u64,
}

impl Default for TailLimits {
    fn default() -> Self {
        TailLimits { window_bytes: 256 << 10, stall_ms: 30_000 }
    }
}

/// What to do next with a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// The window has room: send the next event.
    Send,
    /// Nothing to send, or the window is full and the client still has time to ack.
    Wait,
    /// The client stalled with a full window: close it; it resumes with `?after={after}`.
    Close { after: u64 },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("ack {ack} is beyond the last seq sent ({sent})")]
    Ahead { ack: u64, sent: u64 },
}

/// The flow state of one socket.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailFlow {
    /// The last seq sent.
    pub sent: u64,
    /// The last seq the client acknowledged (the cursor a closed slow consumer resumes from).
    pub acked: u64,
    /// Bytes ever sent on this socket.
    sent_bytes: u64,
    /// Bytes credited back by acks (`sent_bytes - credited_bytes` are in flight).
    credited_bytes: u64,
    /// (seq, `sent_bytes` after it), ascending, at most `MARKS`.
    marks: Vec<(u64, u64)>,
    /// Since when the window has been full (None: it is not, or nothing waits to be sent).
    blocked_since_ms: Option<u64>,
}

impl TailFlow {
    /// A socket whose client already has everything up to `after`.
    pub fn starting_after(after: u64) -> TailFlow {
        TailFlow { sent: after, acked: after, ..TailFlow::default() }
    }

    /// Bytes sent and not yet acknowledged.
    pub fn in_flight_bytes(&self) -> u64 {
        self.sent_bytes - self.credited_bytes
    }

    /// Records that event `seq` (the one after `sent`) went out as `bytes` bytes.
    pub fn on_sent(&mut self, seq: u64, bytes: u64, limits: &TailLimits) {
        self.sent = seq;
        self.sent_bytes = self.sent_bytes.saturating_add(bytes);
        let spacing = (limits.window_bytes / MARKS as u64).max(1);
        let n = self.marks.len();
        let base = if n >= 2 { self.marks[n - 2].1 } else { self.credited_bytes };
        let full = n >= MARKS;
        match self.marks.last_mut() {
            // The last checkpoint is not yet `spacing` past the one before, or there is no room
            // for another: move it forward (an ack of an earlier seq then credits less, never
            // more, than it covers).
            Some(last) if last.1.saturating_sub(base) < spacing || full => *last = (seq, self.sent_bytes),
            _ => self.marks.push((seq, self.sent_bytes)),
        }
    }

    /// The client has processed everything up to `ack`.
    pub fn on_ack(&mut self, ack: u64, now_ms: u64, limits: &TailLimits) -> Result<(), AckError> {
        if ack > self.sent {
            return Err(AckError::Ahead { ack, sent: self.sent });
        }
        if ack <= self.acked {
            return Ok(()); // a repeated or late ack: no progress, keeps no timer alive
        }
        self.acked = ack;
        if ack == self.sent {
            self.credited_bytes = self.sent_bytes;
            self.marks.clear();
        } else {
            let covered = self.marks.iter().take_while(|m| m.0 <= ack).count();
            if let Some(&(_, bytes)) = self.marks[..covered].last() {
                self.credited_bytes = bytes;
            }
            self.marks.drain(..covered);
        }
        // Progress restarts the stall clock; an open window stops it.
        self.blocked_since_ms = (self.in_flight_bytes() >= limits.window_bytes).then_some(now_ms);
        Ok(())
    }

    /// What to do now, with events up to `head` committed.
    pub fn decide(&mut self, head: u64, now_ms: u64, limits: &TailLimits) -> Decision {
        if self.sent >= head {
            self.blocked_since_ms = None;
            return Decision::Wait;
        }
        if self.in_flight_bytes() < limits.window_bytes {
            self.blocked_since_ms = None;
            return Decision::Send;
        }
        let since = *self.blocked_since_ms.get_or_insert(now_ms);
        if now_ms.saturating_sub(since) >= limits.stall_ms {
            Decision::Close { after: self.acked }
        } else {
            Decision::Wait
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L: TailLimits = TailLimits { window_bytes: 1000, stall_ms: 500 };

    /// Sends from `flow.sent + 1` while the flow allows it; returns the seqs sent.
    fn pump(flow: &mut TailFlow, head: u64, bytes: u64, now_ms: u64) -> Vec<u64> {
        let mut out = Vec::new();
        while flow.decide(head, now_ms, &L) == Decision::Send {
            let seq = flow.sent + 1;
            flow.on_sent(seq, bytes, &L);
            out.push(seq);
        }
        out
    }

    #[test]
    fn a_client_that_never_reads_gets_one_window_then_is_closed_with_its_cursor() {
        let mut f = TailFlow::starting_after(10);
        assert_eq!(pump(&mut f, 1_000_000, 100, 0), (11..=20).collect::<Vec<_>>());
        assert_eq!(f.in_flight_bytes(), 1000);
        assert_eq!(f.decide(1_000_000, 499, &L), Decision::Wait);
        assert_eq!(f.decide(1_000_000, 500, &L), Decision::Close { after: 10 });
    }

    #[test]
    fn acks_open_the_window_and_restart_the_stall_clock() {
        let mut f = TailFlow::starting_after(0);
        assert_eq!(pump(&mut f, 100, 100, 0).len(), 10);
        assert_eq!(f.decide(100, 0, &L), Decision::Wait);
        // A partial ack credits up to the checkpoint it covers and lets more go out.
        f.on_ack(5, 400, &L).unwrap();
        assert!(f.in_flight_bytes() <= 600, "{}", f.in_flight_bytes());
        let more = pump(&mut f, 100, 100, 400);
        assert_eq!(more.first(), Some(&11));
        assert!(f.in_flight_bytes() <= 1000 + 100);
        // The clock restarted at the ack: not closed 500 ms after the first block.
        assert_eq!(f.decide(100, 800, &L), Decision::Wait);
        assert_eq!(f.decide(100, 900, &L), Decision::Close { after: 5 });
        // A full ack frees everything.
        let mut g = f.clone();
        g.on_ack(g.sent, 850, &L).unwrap();
        assert_eq!(g.in_flight_bytes(), 0);
        assert_eq!(g.decide(100, 10_000, &L), Decision::Send);
    }

    #[test]
    fn in_flight_never_exceeds_window_plus_one_event_whatever_the_acks() {
        let mut f = TailFlow::starting_after(0);
        let mut now = 0;
        for round in 0..200u64 {
            let bytes = 37 + round % 90;
            pump(&mut f, 10_000, bytes, now);
            assert!(f.in_flight_bytes() < L.window_bytes + 127, "round {round}");
            assert!(f.marks.len() <= MARKS);
            now += 10;
            let ack = f.acked + (f.sent - f.acked) * (round % 4) / 3;
            f.on_ack(ack, now, &L).unwrap();
        }
        assert!(f.sent > 500, "acks kept it flowing: {}", f.sent);
    }

    #[test]
    fn one_event_larger_than_the_window_still_goes_out_alone() {
        let mut f = TailFlow::starting_after(0);
        assert_eq!(pump(&mut f, 3, 5000, 0), vec![1]);
        f.on_ack(1, 1, &L).unwrap();
        assert_eq!(pump(&mut f, 3, 5000, 1), vec![2]);
    }

    #[test]
    fn bad_and_stale_acks() {
        let mut f = TailFlow::starting_after(0);
        pump(&mut f, 3, 10, 0);
        assert_eq!(f.on_ack(4, 0, &L), Err(AckError::Ahead { ack: 4, sent: 3 }));
        f.on_ack(2, 0, &L).unwrap();
        f.on_ack(1, 0, &L).unwrap();
        assert_eq!(f.acked, 2);
    }

    #[test]
    fn nothing_to_send_is_never_a_stall() {
        let mut f = TailFlow::starting_after(0);
        pump(&mut f, 10, 100, 0);
        assert_eq!(f.decide(10, 1_000_000, &L), Decision::Wait);
    }

    #[test]
    fn state_fits_a_websocket_attachment() {
        let mut f = TailFlow::starting_after(u64::MAX / 4);
        for _ in 0..100 {
            f.on_sent(f.sent + 1, 1 << 40, &L);
        }
        f.blocked_since_ms = Some(u64::MAX / 2);
        let json = serde_json::to_string(&f).unwrap();
        assert!(json.len() < 1024, "{} bytes", json.len());
    }
}
