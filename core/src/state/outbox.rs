//! The outbox: assistant replies to deliver to a chat platform. Its state is derived from delivery
//! receipt events only, so a rebuild or replay can never send a message twice.

use serde::{Deserialize, Serialize};

use crate::event::{ChannelRef, Payload};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutboxStatus {
    Pending,
    /// Gave up after the last attempt; the message is visible as failed.
    DeadLettered,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub channel: ChannelRef,
    pub text: Payload,
    /// Attempts made so far.
    pub attempts: u32,
    /// When the next attempt is due.
    pub next_attempt_ms: u64,
    pub last_error: Option<String>,
    pub status: OutboxStatus,
}

impl OutboxEntry {
    pub(crate) fn new(channel: ChannelRef, text: Payload, ts_ms: u64) -> OutboxEntry {
        OutboxEntry {
            channel,
            text,
            attempts: 0,
            next_attempt_ms: ts_ms,
            last_error: None,
            status: OutboxStatus::Pending,
        }
    }

    pub fn is_due(&self, now_ms: u64) -> bool {
        self.status == OutboxStatus::Pending && self.next_attempt_ms <= now_ms
    }
}
