//! Event ids: ULIDs built from time and random bits that the caller passes in.

use std::fmt;

use serde::{Deserialize, Serialize};
use ulid::Ulid;

/// An event id: a ULID stored as its 16 big-endian bytes (so byte order is time order).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventId(pub [u8; 16]);

impl EventId {
    pub fn ulid(self) -> Ulid {
        Ulid::from_bytes(self.0)
    }

    pub fn timestamp_ms(self) -> u64 {
        self.ulid().timestamp_ms()
    }

    pub fn parse(s: &str) -> Option<EventId> {
        Ulid::from_string(s).ok().map(|u| EventId(u.to_bytes()))
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = [0u8; ulid::ULID_LEN];
        f.write_str(self.ulid().array_to_str(&mut buf))
    }
}

/// Hands out strictly increasing ULIDs. Inside one millisecond (or when the clock steps back) the
/// previous id is incremented, so ids sort in append order however the clock behaves.
#[derive(Clone, Debug, Default)]
pub struct IdGen {
    last: Option<Ulid>,
}

impl IdGen {
    /// Continue after `last`, the newest id already in the log.
    pub fn after(last: Option<EventId>) -> IdGen {
        IdGen { last: last.map(EventId::ulid) }
    }

    /// The next id. `random` supplies the 80 random bits for a new millisecond.
    pub fn next(&mut self, now_ms: u64, random: u128) -> EventId {
        let fresh = Ulid::from_parts(now_ms, random);
        let id = match self.last {
            Some(last) if fresh <= last => match last.increment() {
                Ok(next) => next,
                // 2^80 ids in one millisecond cannot happen; move to the next millisecond.
                Err(_) => Ulid::from_parts(last.timestamp_ms() + 1, random),
            },
            _ => fresh,
        };
        assert!(self.last.is_none_or(|l| id > l), "id generator must be strictly increasing");
        self.last = Some(id);
        EventId(id.to_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn same_millisecond_increments() {
        let mut g = IdGen::default();
        let a = g.next(1000, 5);
        let b = g.next(1000, 1);
        assert!(b > a);
        assert_eq!(b.ulid().random(), a.ulid().random() + 1);
        assert_eq!(b.timestamp_ms(), 1000);
    }

    #[test]
    fn display_round_trips() {
        let id = IdGen::default().next(1_700_000_000_000, 42);
        assert_eq!(EventId::parse(&id.to_string()), Some(id));
        assert_eq!(id.to_string().len(), 26);
    }

    proptest! {
        #[test]
        fn ids_strictly_increase_whatever_the_clock_does(
            steps in proptest::collection::vec((0u64..5_000, any::<u128>()), 1..200)
        ) {
            let mut g = IdGen::default();
            let mut prev: Option<EventId> = None;
            for (t, r) in steps {
                let id = g.next(t, r);
                if let Some(p) = prev { prop_assert!(id > p); }
                prev = Some(id);
            }
        }
    }
}
