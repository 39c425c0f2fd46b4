//! Encode/decode round trips of every stored type: headers, bodies, snapshots and segments.
//!
//! A value must come back equal, and its encoding must be canonical (re-encoding what was decoded
//! gives the same bytes), because the chain hashes stored bytes and replay compares state bytes.

mod common;

use proptest::prelude::*;

use common::*;
use moltlog_core::codec;
use moltlog_core::event::{EventBody, EventHeader};
use moltlog_core::record::StoredRecord;
use moltlog_core::segment;
use moltlog_core::snapshot::{self, Compression};
use moltlog_core::state::SessionState;

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn headers_round_trip(header in any_header()) {
        let bytes = codec::encode(&header);
        let back: EventHeader = codec::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &header);
        prop_assert_eq!(codec::encode(&back), bytes);
    }

    #[test]
    fn bodies_round_trip_and_skeletons_are_content_free(body in any_body()) {
        let bytes = codec::encode(&body);
        let back: EventBody = codec::decode(&bytes).unwrap();
        prop_assert_eq!(&back, &body);
        prop_assert_eq!(codec::encode(&back), bytes);

        let skeleton = body.skeleton();
        prop_assert_eq!(skeleton.kind(), body.kind());
        prop_assert!(!skeleton.has_content());
        prop_assert_eq!(skeleton.skeleton(), skeleton.clone(), "a skeleton is its own skeleton");
        if !body.has_content() {
            prop_assert_eq!(&skeleton, &body, "a body without content is its own skeleton");
        }
        let skeleton_bytes = codec::encode(&skeleton);
        prop_assert_eq!(codec::decode::<EventBody>(&skeleton_bytes).unwrap(), skeleton.clone());
        // Headers commit to the skeleton's digest: it must stay exactly "the body, content
        // erased", however `skeleton` computes it.
        prop_assert_eq!(skeleton_bytes, codec::encode(&skeleton_by_erasing(&body)));
    }
}

/// The definition of a skeleton: clone the body and erase each content field.
fn skeleton_by_erasing(body: &EventBody) -> EventBody {
    use moltlog_core::event::{Lifecycle, Payload};
    let mut s = body.clone();
    match &mut s {
        EventBody::ChatMessage(m) => {
            m.text = Payload::Redacted;
            m.attachments.clear();
        }
        EventBody::ToolCall(c) => c.input = Payload::Redacted,
        EventBody::ToolResult(r) => r.output = Payload::Redacted,
        EventBody::BrowserAction(a) => {
            a.detail = Payload::Redacted;
            a.result = Payload::Redacted;
            if let Some(shot) = &mut a.screenshot {
                *shot = Payload::Redacted;
            }
        }
        EventBody::WebhookReceived(w) => w.payload = Payload::Redacted,
        EventBody::Lifecycle(Lifecycle::Compacted { summary, .. }) => *summary = Payload::Redacted,
        _ => {}
    }
    s
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn snapshots_round_trip_in_both_compressions(ops in ops(24), at in any::<prop::sample::Index>(), created_ms in any::<u64>()) {
        let built = build(&ops);
        let state = at.get(&built.states);
        let state_bytes = state.encode();
        prop_assert_eq!(SessionState::decode(&state_bytes).unwrap(), state.clone());
        for compression in [Compression::None, Compression::Deflate] {
            let bytes = snapshot::encode(state, created_ms, compression);
            let snap = snapshot::decode(&bytes, SESSION).unwrap();
            prop_assert_eq!(&snap.state, state);
            prop_assert_eq!(&snap.state_bytes, &state_bytes);
            prop_assert_eq!(snap.header.seq, state.head.seq);
            prop_assert_eq!(snap.header.head_hash, state.head.hash);
            prop_assert_eq!(snap.header.compression, compression);
            prop_assert_eq!(snap.header.created_ms, created_ms);
            prop_assert_eq!(snapshot::decode_header(&bytes).unwrap(), snap.header);
        }
    }

    #[test]
    fn segments_round_trip_every_record(ops in ops(24), a in any::<prop::sample::Index>(), b in any::<prop::sample::Index>(), created_ms in any::<u64>()) {
        let built = build(&ops);
        let records = built.store.records();
        prop_assume!(!records.is_empty());
        let (i, j) = (a.index(records.len()), b.index(records.len()));
        let run: &[StoredRecord] = &records[i.min(j)..=i.max(j)];
        let prev_hash = if i.min(j) == 0 { built.states[0].head.hash } else { records[i.min(j) - 1].hash };
        let bytes = segment::encode(SESSION, prev_hash, run, created_ms);

        let mut visited = Vec::new();
        let verified = segment::verify(&bytes, SESSION, |checked, frame| {
            visited.push((checked, frame.to_stored(0)));
        }).unwrap();
        let h = &verified.header;
        let first = run.first().unwrap();
        let last = run.last().unwrap();
        prop_assert_eq!((h.first_seq, h.last_seq, h.count), (first.seq, last.seq, run.len() as u64));
        prop_assert_eq!((h.prev_hash, h.last_hash), (prev_hash, last.hash));
        prop_assert_eq!(h.first_ts_ms, first.decode_header().unwrap().ts_ms);
        prop_assert_eq!(h.last_ts_ms, last.decode_header().unwrap().ts_ms);
        prop_assert_eq!(h.created_ms, created_ms);
        prop_assert_eq!(visited.len(), run.len());
        for (rec, (checked, framed)) in run.iter().zip(visited) {
            prop_assert_eq!(&framed.header, &rec.header);
            prop_assert_eq!(&framed.body, &rec.body);
            prop_assert_eq!((framed.hash, framed.redacted), (rec.hash, rec.redacted));
            prop_assert_eq!(checked.header, rec.decode_header().unwrap());
            prop_assert_eq!(checked.body, rec.decode_body().unwrap());
            prop_assert_eq!(checked.hash, rec.hash);
        }
    }
}
