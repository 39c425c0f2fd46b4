//! Configuration from the Worker's environment (wrangler.toml `[vars]`, `--var`, secrets).
//! Parsing is pure so it is tested natively.

use moltlog_core::Limits;
use moltlog_core::tail::TailLimits;

/// Tunables of the session engine. Defaults suit production; tests shorten the intervals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub limits: Limits,
    /// Snapshot when this many events arrived since the last snapshot…
    pub snapshot_every_events: u64,
    /// …or this long passed since it with at least one new event.
    pub snapshot_every_ms: u64,
    /// Archive to R2 once this many events are unarchived…
    pub archive_every_events: u64,
    /// …or the oldest unarchived event is this old.
    pub archive_after_ms: u64,
    /// Most events in one archive segment.
    pub segment_max_events: u32,
    /// Local snapshots kept in the Durable Object.
    pub local_snapshots_kept: u32,
    /// Largest request body accepted, in bytes.
    pub max_request_bytes: u64,
    /// Delay before retrying failed background work (doubles up to 64x).
    pub retry_base_ms: u64,
    /// Live-tail flow control: bytes in flight per socket, stall before a 1013 close.
    pub tail: TailLimits,
    /// Live-tail sockets one session accepts at once.
    pub max_tails: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            snapshot_every_events: 1000,
            snapshot_every_ms: 300_000,
            archive_every_events: 1000,
            archive_after_ms: 30_000,
            segment_max_events: 1000,
            local_snapshots_kept: 2,
            max_request_bytes: 64 << 20,
            retry_base_ms: 5_000,
            tail: TailLimits::default(),
            max_tails: 32,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration variable {name} = {value:?} is not a valid number")]
pub struct ConfigError {
    pub name: &'static str,
    pub value: String,
}

impl Config {
    /// Reads every setting through `var`, keeping defaults for the unset ones.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let mut c = Config::default();
        let num = |name: &'static str, slot: &mut u64| -> Result<(), ConfigError> {
            if let Some(v) = var(name) {
                *slot = v.trim().parse().map_err(|_| ConfigError { name, value: v })?;
            }
            Ok(())
        };
        let mut tmp;
        macro_rules! u32_var {
            ($name:literal, $slot:expr) => {
                tmp = u64::from($slot);
                num($name, &mut tmp)?;
                $slot =
                    u32::try_from(tmp).map_err(|_| ConfigError { name: $name, value: tmp.to_string() })?;
            };
        }
        num("SNAPSHOT_EVERY_EVENTS", &mut c.snapshot_every_events)?;
        num("SNAPSHOT_EVERY_MS", &mut c.snapshot_every_ms)?;
        num("ARCHIVE_EVERY_EVENTS", &mut c.archive_every_events)?;
        num("ARCHIVE_AFTER_MS", &mut c.archive_after_ms)?;
        num("MAX_REQUEST_BYTES", &mut c.max_request_bytes)?;
        num("RETRY_BASE_MS", &mut c.retry_base_ms)?;
        num("TAIL_WINDOW_BYTES", &mut c.tail.window_bytes)?;
        num("TAIL_STALL_MS", &mut c.tail.stall_ms)?;
        num("MAX_BATCH_BYTES", &mut c.limits.max_batch_bytes)?;
        num("MAX_BLOB_BYTES", &mut c.limits.max_blob_bytes)?;
        u32_var!("SEGMENT_MAX_EVENTS", c.segment_max_events);
        u32_var!("LOCAL_SNAPSHOTS_KEPT", c.local_snapshots_kept);
        u32_var!("MAX_TAILS", c.max_tails);
        u32_var!("MAX_BATCH_EVENTS", c.limits.max_batch_events);
        u32_var!("MAX_EVENT_BYTES", c.limits.max_event_bytes);
        u32_var!("BLOB_THRESHOLD_BYTES", c.limits.blob_threshold_bytes);
        c.segment_max_events = c.segment_max_events.max(1);
        c.local_snapshots_kept = c.local_snapshots_kept.max(1);
        c.tail.window_bytes = c.tail.window_bytes.max(1);
        Ok(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_vars(|n| match n {
            "ARCHIVE_AFTER_MS" => Some("250".into()),
            "MAX_BATCH_EVENTS" => Some(" 10 ".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.archive_after_ms, 250);
        assert_eq!(c.limits.max_batch_events, 10);
        assert_eq!(c.snapshot_every_events, Config::default().snapshot_every_events);
    }

    #[test]
    fn tail_limits() {
        let c = Config::from_vars(|n| match n {
            "TAIL_WINDOW_BYTES" => Some("0".into()),
            "TAIL_STALL_MS" => Some("500".into()),
            "MAX_TAILS" => Some("3".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(
            (c.tail.window_bytes, c.tail.stall_ms, c.max_tails),
            (1, 500, 3),
            "a zero window would stall every tail"
        );
        assert!(Config::from_vars(|n| (n == "MAX_TAILS").then(|| "4294967296".into())).is_err());
    }

    #[test]
    fn bad_numbers_are_named() {
        let e = Config::from_vars(|n| (n == "SNAPSHOT_EVERY_MS").then(|| "soon".into())).unwrap_err();
        assert_eq!(e.name, "SNAPSHOT_EVERY_MS");
    }
}
