//! The transcript's events, kept as the verifying walk passes them.
//!
//! The state indexes the transcript by seq; renderings (`restore::bundle_json`,
//! `restore::openclaw::render`) need the events themselves. The Worker reads them back from its
//! store (`restore::transcript`); the tool keeps them as the walk verifies them instead, so that
//! nothing is read from a source again after it was checked. What a compaction drops is dropped
//! here too (so memory follows the transcript, not the log), and at the end exactly the seqs the
//! state lists are taken: the reducer stays the one judge of what the transcript holds.

use std::collections::BTreeMap;

use moltlog_core::event::{EventBody, Lifecycle};
use moltlog_core::record::CheckedRecord;
use moltlog_core::restore::Item;
use moltlog_core::state::SessionState;

#[derive(Default)]
pub struct Transcript {
    kept: BTreeMap<u64, Item>,
}

impl Transcript {
    /// Sees a checked record (call it from the walk's visitor).
    pub fn visit(&mut self, c: &CheckedRecord, redacted: bool) {
        match &c.body {
            // The kinds the reducer puts in the transcript, and the model calls (for usage).
            EventBody::ChatMessage(_)
            | EventBody::ToolCall(_)
            | EventBody::ToolResult(_)
            | EventBody::ModelCall(_) => {
                let item = Item { header: c.header.clone(), hash: c.hash, body: c.body.clone(), redacted };
                self.kept.insert(c.header.seq, item);
            }
            EventBody::Lifecycle(Lifecycle::Compacted { first_kept_seq, .. }) => {
                self.kept = self.kept.split_off(first_kept_seq);
            }
            _ => {}
        }
    }

    /// The events of `state`'s transcript and the model calls from its first event on, in order:
    /// what `restore::transcript` reads back from a store.
    pub fn items(mut self, state: &SessionState) -> anyhow::Result<Vec<Item>> {
        let Some(&first) = state.transcript.first() else { return Ok(Vec::new()) };
        let mut items: Vec<Item> = self
            .kept
            .range(first..=state.head.seq)
            .filter(|(_, i)| matches!(i.body, EventBody::ModelCall(_)))
            .map(|(_, i)| i.clone())
            .collect();
        for seq in &state.transcript {
            items.push(self.kept.remove(seq).ok_or_else(|| {
                anyhow::anyhow!("transcript event {seq} was not among the events read (a reducer this tool does not know?)")
            })?);
        }
        items.sort_by_key(|i| i.header.seq);
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use moltlog_core::engine::{AppendRequest, Engine, Limits, Now};
    use moltlog_core::event::Actor;
    use moltlog_core::key::SessionKey;
    use moltlog_core::record::{self, FramedRecord};
    use moltlog_core::restore;
    use moltlog_core::sample;
    use moltlog_core::store::{LogStore, MemoryStore};

    #[test]
    fn keeps_what_the_store_would_give_back() {
        let key = SessionKey::parse("agent:main:t").unwrap();
        let mut engine = Engine::new(key, Limits::default());
        let mut store = MemoryStore::new();
        let bodies = [
            sample::user("old"),
            sample::tool_call("c1", "bash", "{}"),
            sample::tool_result("c1", "\"ok\"", false),
            sample::model_call("m", 1, 1),
            sample::compacted("summary", 3),
            sample::user("new"),
        ];
        for (i, b) in bodies.into_iter().enumerate() {
            let now = Now { now_ms: 1_000 + i as u64, entropy: i as u128 };
            engine.append(&mut store, AppendRequest::one(Actor::Runtime, b), now).unwrap();
        }
        let mut t = Transcript::default();
        let mut prev = moltlog_core::chain::genesis("agent:main:t");
        for r in store.read(1, 100).unwrap() {
            let c = record::check(&prev, r.seq, 0, &FramedRecord::from(&r)).unwrap();
            prev = c.hash;
            t.visit(&c, r.redacted);
        }
        assert_eq!(
            t.kept.keys().copied().collect::<Vec<_>>(),
            vec![3, 4, 6],
            "the compaction dropped 1 and 2"
        );
        let ours = t.items(engine.state()).unwrap();
        let theirs = restore::transcript(engine.state(), &store).unwrap();
        assert_eq!(
            ours.iter().map(|i| i.header.seq).collect::<Vec<_>>(),
            theirs.iter().map(|i| i.header.seq).collect::<Vec<_>>(),
            "the model call at 4 rides along in both"
        );
        assert_eq!(
            restore::bundle_json(engine.state(), &ours).to_string(),
            restore::bundle_json(engine.state(), &theirs).to_string()
        );
        let at_ms = 5_000;
        assert_eq!(
            restore::openclaw::render(engine.state(), &ours, at_ms),
            restore::openclaw::render(engine.state(), &theirs, at_ms)
        );
    }
}
