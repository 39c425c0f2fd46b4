//! When the session's background work is due. Pure: the alarm handler and the append path ask
//! these functions, and they are tested natively.

use crate::config::Config;

/// Delay between directory updates for one session.
pub const DIRECTORY_EVERY_MS: u64 = 2_000;

/// What the background work depends on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Work {
    pub head_seq: u64,
    pub archived_seq: u64,
    /// Time of the first unarchived event.
    pub oldest_unarchived_ts_ms: Option<u64>,
    pub last_snapshot_seq: u64,
    pub last_snapshot_ms: u64,
    /// Encoded state size of the last snapshot: a big state is snapshotted less often, so that
    /// snapshot work stays proportional to what was appended.
    pub last_snapshot_len: u64,
    /// Archived copies wait to be rewritten or deleted after a redaction.
    pub stale: bool,
    pub directory_synced_seq: u64,
    pub directory_synced_ms: u64,
    /// Consecutive failed alarm runs.
    pub failures: u32,
    /// The earliest outbox or subscription delivery due, if any.
    pub deliveries_due_ms: Option<u64>,
    /// When the session was created: the time trigger of the first snapshot counts from here.
    pub created_ms: u64,
}

impl Work {
    pub fn unarchived(&self) -> u64 {
        self.head_seq.saturating_sub(self.archived_seq)
    }

    fn since_snapshot(&self) -> u64 {
        self.head_seq.saturating_sub(self.last_snapshot_seq)
    }

    /// Events after which a count-triggered snapshot is due. A snapshot costs about its state's
    /// size; one event per 64 bytes of state keeps that under a few percent of what appending
    /// those events cost, while the tail a wake replays stays short (a state grows by a few bytes
    /// an event, so the interval grows slowly).
    fn snapshot_interval(&self, c: &Config) -> u64 {
        c.snapshot_every_events.max(self.last_snapshot_len / 64).max(1)
    }
}

pub fn archive_due(c: &Config, w: &Work, now_ms: u64) -> bool {
    w.stale || archive_at(c, w).is_some_and(|t| t <= now_ms)
}

fn archive_at(c: &Config, w: &Work) -> Option<u64> {
    if w.unarchived() == 0 {
        return None;
    }
    if w.unarchived() >= c.archive_every_events {
        return Some(0);
    }
    Some(w.oldest_unarchived_ts_ms.unwrap_or(0) + c.archive_after_ms)
}

pub fn snapshot_due(c: &Config, w: &Work, now_ms: u64) -> bool {
    snapshot_at(c, w).is_some_and(|t| t <= now_ms)
}

fn snapshot_at(c: &Config, w: &Work) -> Option<u64> {
    if w.since_snapshot() == 0 {
        return None;
    }
    if w.since_snapshot() >= w.snapshot_interval(c) {
        return Some(0);
    }
    let since = if w.last_snapshot_ms == 0 { w.created_ms } else { w.last_snapshot_ms };
    Some(since + c.snapshot_every_ms)
}

pub fn directory_due(w: &Work, now_ms: u64) -> bool {
    directory_at(w).is_some_and(|t| t <= now_ms)
}

fn directory_at(w: &Work) -> Option<u64> {
    (w.directory_synced_seq != w.head_seq).then_some(w.directory_synced_ms + DIRECTORY_EVERY_MS)
}

/// When the alarm should next fire, or None when nothing is pending.
pub fn next_alarm(c: &Config, w: &Work, now_ms: u64) -> Option<u64> {
    let due = [
        if w.stale { Some(now_ms) } else { None },
        archive_at(c, w),
        snapshot_at(c, w),
        directory_at(w),
        w.deliveries_due_ms,
    ]
    .into_iter()
    .flatten()
    .min()?;
    let earliest =
        if w.failures > 0 { now_ms + c.retry_base_ms * (1u64 << w.failures.min(6)) } else { now_ms };
    Some(due.max(earliest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> Config {
        Config {
            archive_every_events: 10,
            archive_after_ms: 1000,
            snapshot_every_events: 100,
            snapshot_every_ms: 5000,
            ..Config::default()
        }
    }

    #[test]
    fn nothing_pending_means_no_alarm() {
        let w = Work {
            head_seq: 5,
            archived_seq: 5,
            last_snapshot_seq: 5,
            directory_synced_seq: 5,
            ..Work::default()
        };
        assert_eq!(next_alarm(&cfg(), &w, 10_000), None);
    }

    #[test]
    fn archive_by_count_or_age() {
        let w = Work {
            head_seq: 3,
            oldest_unarchived_ts_ms: Some(9_500),
            directory_synced_seq: 3,
            last_snapshot_seq: 3,
            ..Work::default()
        };
        assert!(!archive_due(&cfg(), &w, 10_000));
        assert_eq!(next_alarm(&cfg(), &w, 10_000), Some(10_500));
        assert!(archive_due(&cfg(), &w, 10_500));
        let w = Work { head_seq: 10, ..w };
        assert!(archive_due(&cfg(), &w, 0));
    }

    #[test]
    fn big_states_snapshot_less_often() {
        let w = Work {
            head_seq: 150,
            archived_seq: 150,
            directory_synced_seq: 150,
            last_snapshot_seq: 0,
            last_snapshot_ms: 0,
            ..Work::default()
        };
        assert!(snapshot_due(&cfg(), &w, 1));
        let big = Work { last_snapshot_len: 64 * 1000, ..w.clone() };
        assert!(!snapshot_due(&cfg(), &big, 1));
        assert!(snapshot_due(&cfg(), &big, 5000), "time still triggers it");
    }

    #[test]
    fn the_first_snapshot_waits_for_its_time() {
        let w = Work {
            head_seq: 1,
            archived_seq: 1,
            directory_synced_seq: 1,
            created_ms: 10_000,
            ..Work::default()
        };
        assert!(!snapshot_due(&cfg(), &w, 10_001));
        assert!(snapshot_due(&cfg(), &w, 15_000));
    }

    #[test]
    fn failures_back_off() {
        let w = Work { head_seq: 20, ..Work::default() };
        let c = cfg();
        assert_eq!(next_alarm(&c, &w, 1000), Some(1000));
        let w = Work { failures: 2, ..w };
        assert_eq!(next_alarm(&c, &w, 1000), Some(1000 + c.retry_base_ms * 4));
    }

    #[test]
    fn stale_copies_are_handled_at_once() {
        let w = Work { stale: true, ..Work::default() };
        assert!(archive_due(&cfg(), &w, 0));
        assert_eq!(next_alarm(&cfg(), &w, 77), Some(77));
    }
}
