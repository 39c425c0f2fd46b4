//! Which outbox messages to send now, and what a previous, unfinished send means. Pure: the
//! Durable Object's alarm asks these functions (`session/outbox.rs`).
//!
//! ## Exactly once, and where it is only at least once
//!
//! The outbox is derived from events: an assistant `chat_message` with a channel adds an entry,
//! and delivery receipts (appended by the session itself) move it: `delivered` removes it,
//! `failed` schedules the next attempt, `dead_lettered` marks it failed for good. Rebuilding or
//! replaying the log therefore reaches the same outbox and never re-sends a delivered message.
//!
//! Between the send and its receipt lies the window that events cannot close. Before every
//! send, the object stores an in-flight marker (seq, attempt, start time) in SQLite; storage
//! writes precede the request (the output gate holds outgoing requests until they are durable).
//! After the answer it appends the receipt and removes the marker. So on any wake:
//!
//! - no marker: nothing was sent since the last receipt;
//! - a marker whose attempt already has a receipt: the object died between receipt and cleanup,
//!   the marker is stale and is dropped;
//! - any other marker: a send may have happened and its outcome is unknown (the runtime died or
//!   was evicted mid-request, or the request timed out; timeouts keep their marker flagged
//!   `uncertain`).
//!
//! An unknown outcome is settled by the platform where it can be: a Discord interaction reply
//! is an idempotent edit; a Discord channel message carries a nonce derived from the outbox
//! message with `enforce_nonce`, so Discord returns the first message instead of posting a
//! second (within its nonce window of a few minutes); a Slack reply carries its delivery id as
//! message metadata, so the conversation is searched for it before sending again. Telegram has
//! no idempotency key and no way for a bot to list what it sent: there the choice is
//! `OUTBOX_ON_UNCERTAIN` — `resend` (at least once; the default) or `dead_letter` (at most
//! once). Sends that get an answer are never repeated, on any platform.
//!
//! ## Long replies
//!
//! A reply longer than the platform's message limit goes out as several messages (`split`),
//! one after the other, all within one attempt. Each part the platform took is recorded in
//! SQLite and the marker is dropped before the next part is marked and sent, so every part
//! gets the rules above on its own (with its own delivery id, `outbound::part_delivery_id`),
//! and a retry, after a failure or a restart, resumes at the first part not yet taken. The
//! receipt (`delivered` with the first part's id) comes after the last part.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;

use moltlog_core::state::{OutboxEntry, OutboxStatus};

use super::BridgePlatform;
use super::config::OnUncertain;

/// Discord checks nonces for uniqueness over "the past few minutes"; rely on it for less.
pub const DISCORD_NONCE_WINDOW_MS: u64 = 2 * 60 * 1000;

/// A send that was started and has no receipt yet, as stored before the request went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inflight {
    pub attempt: u32,
    pub started_ms: u64,
    /// The request got no answer (timeout, transport error): its outcome is unknown even
    /// though a receipt for it was appended.
    pub uncertain: bool,
}

impl Inflight {
    /// Whether the marker says nothing any more: its attempt has a receipt and it had an answer.
    pub fn is_stale(&self, entry: Option<&OutboxEntry>) -> bool {
        match entry {
            Some(e) if e.status == OutboxStatus::Pending => !self.uncertain && e.attempts >= self.attempt,
            _ => true,
        }
    }
}

/// Markers that can be deleted: their message is delivered or dead, or their attempt finished.
pub fn stale_markers(outbox: &BTreeMap<u64, OutboxEntry>, markers: &BTreeMap<u64, Inflight>) -> Vec<u64> {
    markers.iter().filter(|(seq, m)| m.is_stale(outbox.get(seq))).map(|(seq, _)| *seq).collect()
}

/// Pending entries the bridge delivers that are first in line in their conversation: a reply
/// waits for the replies before it in the same chat, so a chat never sees them out of order.
/// Dead-lettered entries do not hold the line.
fn heads_of_line(outbox: &BTreeMap<u64, OutboxEntry>) -> Vec<(u64, &OutboxEntry)> {
    let mut seen: HashSet<(&str, &str)> = HashSet::new();
    let mut out = Vec::new();
    for (seq, e) in outbox {
        if e.status != OutboxStatus::Pending || BridgePlatform::of(&e.channel.platform).is_none() {
            continue;
        }
        if seen.insert((e.channel.platform.name(), e.channel.chat_id.as_str())) {
            out.push((*seq, e));
        }
    }
    out
}

/// The entries to attempt now, in seq order, leaving out those this object is sending already.
pub fn due(outbox: &BTreeMap<u64, OutboxEntry>, sending: &BTreeSet<u64>, now_ms: u64) -> Vec<u64> {
    heads_of_line(outbox)
        .into_iter()
        .filter(|(seq, e)| e.next_attempt_ms <= now_ms && !sending.contains(seq))
        .map(|(seq, _)| seq)
        .collect()
}

/// When the alarm must next run for the outbox, if it must.
pub fn next_due_ms(outbox: &BTreeMap<u64, OutboxEntry>, sending: &BTreeSet<u64>) -> Option<u64> {
    heads_of_line(outbox)
        .into_iter()
        .filter(|(seq, _)| !sending.contains(seq))
        .map(|(_, e)| e.next_attempt_ms)
        .min()
}

/// The attempt number the next send of `entry` gets, and whether an earlier send of it has an
/// unknown outcome.
pub fn next_attempt(entry: &OutboxEntry, marker: Option<&Inflight>) -> (u32, bool) {
    let uncertain = marker.is_some_and(|m| !m.is_stale(Some(entry)));
    (entry.attempts + 1, uncertain)
}

/// The length limit parts of a reply are cut to on `platform`, in UTF-16 units.
pub fn part_limit(platform: BridgePlatform) -> usize {
    match platform {
        BridgePlatform::Telegram => super::telegram::MAX_TEXT_UNITS,
        BridgePlatform::Slack => super::slack::MAX_TEXT_UNITS,
        BridgePlatform::Discord => super::discord::MAX_TEXT_UNITS,
    }
}

/// The parts of a reply in `count` parts still to send, in order: from the first one the
/// platform has not taken (parts go out in order, so the ones taken are a prefix).
pub fn remaining_parts<T>(count: usize, delivered: &BTreeMap<u32, T>) -> Range<u32> {
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    let first = (0..count).find(|k| !delivered.contains_key(k)).unwrap_or(count);
    first..count
}

/// Messages whose part records can go: they are no longer pending (delivered, dead).
pub fn stale_parts(outbox: &BTreeMap<u64, OutboxEntry>, seqs: &BTreeSet<u64>) -> Vec<u64> {
    seqs.iter()
        .filter(|seq| outbox.get(seq).is_none_or(|e| e.status != OutboxStatus::Pending))
        .copied()
        .collect()
}

/// How a reply goes out (what the platform can do about duplicates depends on it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Telegram,
    Slack,
    /// Editing a Discord interaction's deferred response: idempotent.
    DiscordEdit,
    /// A Discord channel message with a nonce.
    DiscordCreate,
}

/// What to do before sending again after an unknown outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolve {
    /// Sending again cannot duplicate (or the operator chose at-least-once).
    Send,
    /// Look in the conversation for the earlier send first (Slack).
    LookUp,
    /// Give up: the message may or may not have been delivered (at-most-once chosen).
    GiveUp,
}

pub fn resolve_uncertain(route: Route, started_ms: u64, now_ms: u64, policy: OnUncertain) -> Resolve {
    let by_policy = match policy {
        OnUncertain::Resend => Resolve::Send,
        OnUncertain::DeadLetter => Resolve::GiveUp,
    };
    match route {
        Route::DiscordEdit => Resolve::Send,
        Route::DiscordCreate if now_ms.saturating_sub(started_ms) <= DISCORD_NONCE_WINDOW_MS => Resolve::Send,
        Route::DiscordCreate | Route::Telegram => by_policy,
        Route::Slack => Resolve::LookUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moltlog_core::event::{ChannelRef, Payload, Platform};

    fn entry(platform: Platform, chat: &str, attempts: u32, next: u64) -> OutboxEntry {
        OutboxEntry {
            channel: ChannelRef { platform, chat_id: chat.into(), message_id: None, thread_id: None },
            text: Payload::Inline("x".into()),
            attempts,
            next_attempt_ms: next,
            last_error: None,
            status: OutboxStatus::Pending,
        }
    }

    #[test]
    fn one_at_a_time_per_chat_in_order() {
        let mut ob = BTreeMap::new();
        ob.insert(3, entry(Platform::Telegram, "42", 1, 500));
        ob.insert(5, entry(Platform::Telegram, "42", 0, 0));
        ob.insert(6, entry(Platform::Slack, "C1", 0, 0));
        ob.insert(7, entry(Platform::Web, "w", 0, 0));
        let none = BTreeSet::new();
        assert_eq!(due(&ob, &none, 100), vec![6], "seq 5 waits behind seq 3's retry");
        assert_eq!(due(&ob, &none, 500), vec![3, 6]);
        assert_eq!(next_due_ms(&ob, &none), Some(0));
        assert_eq!(due(&ob, &BTreeSet::from([6]), 500), vec![3]);
        ob.get_mut(&3).unwrap().status = OutboxStatus::DeadLettered;
        assert_eq!(due(&ob, &none, 100), vec![5, 6], "a dead letter does not hold the line");
        ob.remove(&6);
        ob.remove(&5);
        assert_eq!(next_due_ms(&ob, &none), None, "web entries are not the bridge's");
    }

    #[test]
    fn markers() {
        let mut ob = BTreeMap::new();
        ob.insert(3, entry(Platform::Telegram, "42", 1, 0));
        let crashed = Inflight { attempt: 2, started_ms: 10, uncertain: false };
        let finished = Inflight { attempt: 1, started_ms: 10, uncertain: false };
        let timed_out = Inflight { attempt: 1, started_ms: 10, uncertain: true };
        assert_eq!(next_attempt(&ob[&3], None), (2, false));
        assert_eq!(next_attempt(&ob[&3], Some(&crashed)), (2, true));
        assert_eq!(next_attempt(&ob[&3], Some(&finished)), (2, false));
        assert_eq!(next_attempt(&ob[&3], Some(&timed_out)), (2, true));
        let markers = BTreeMap::from([(3, finished), (4, crashed)]);
        assert_eq!(stale_markers(&ob, &markers), vec![3, 4], "seq 4 is no longer in the outbox");
    }

    #[test]
    fn a_retry_resumes_at_the_first_part_not_taken() {
        let none: BTreeMap<u32, ()> = BTreeMap::new();
        assert_eq!(remaining_parts(3, &none), 0..3);
        assert_eq!(remaining_parts(3, &BTreeMap::from([(0, ())])), 1..3);
        assert_eq!(remaining_parts(3, &BTreeMap::from([(0, ()), (1, ())])), 2..3);
        assert_eq!(remaining_parts(3, &BTreeMap::from([(0, ()), (1, ()), (2, ())])), 3..3, "all taken");
        assert_eq!(remaining_parts(1, &none), 0..1);
        let mut ob = BTreeMap::new();
        ob.insert(3, entry(Platform::Telegram, "42", 1, 0));
        ob.insert(4, entry(Platform::Telegram, "42", 8, 0));
        ob.get_mut(&4).unwrap().status = OutboxStatus::DeadLettered;
        assert_eq!(stale_parts(&ob, &BTreeSet::from([3, 4, 5])), vec![4, 5]);
        assert_eq!(part_limit(BridgePlatform::Telegram), 4096);
        assert_eq!(part_limit(BridgePlatform::Discord), 2000);
    }

    #[test]
    fn uncertain_outcomes() {
        use OnUncertain::*;
        assert_eq!(resolve_uncertain(Route::DiscordEdit, 0, u64::MAX, DeadLetter), Resolve::Send);
        assert_eq!(resolve_uncertain(Route::DiscordCreate, 0, 1000, DeadLetter), Resolve::Send);
        assert_eq!(
            resolve_uncertain(Route::DiscordCreate, 0, DISCORD_NONCE_WINDOW_MS + 1, DeadLetter),
            Resolve::GiveUp
        );
        assert_eq!(resolve_uncertain(Route::Slack, 0, 0, DeadLetter), Resolve::LookUp);
        assert_eq!(resolve_uncertain(Route::Telegram, 0, 0, Resend), Resolve::Send);
        assert_eq!(resolve_uncertain(Route::Telegram, 0, 0, DeadLetter), Resolve::GiveUp);
    }
}
