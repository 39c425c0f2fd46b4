//! Decoding untrusted bytes never panics: stored records, states, snapshots and segments come back
//! from storage and R2 (or from an auditor's file), append bodies from the network. Each decoder
//! must answer with an error, whatever it is given.
//!
//! Arbitrary bytes rarely get past the first check, so most cases start from a valid encoding and
//! damage it (flips, truncation, insertions, splices); for snapshots and segments the trailing
//! checksum is then recomputed too, so that the damage reaches the decoding behind it.

mod common;

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

use common::*;
use moltlog_core::chain;
use moltlog_core::codec;
use moltlog_core::dto;
use moltlog_core::event::{EventBody, EventHeader};
use moltlog_core::segment;
use moltlog_core::snapshot::{self, Compression};
use moltlog_core::state::SessionState;

#[derive(Clone, Debug)]
enum Mutation {
    Flip(Index, u8),
    Set(Index, u8),
    Truncate(Index),
    Insert(Index, Vec<u8>),
    /// Copies a run of the input over another place in it (keeps plausible structure).
    Splice {
        from: Index,
        to: Index,
        len: usize,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        2 => (any::<Index>(), prop_oneof![Just(0u8), Just(0xff), Just(0x80), Just(0x7f), any::<u8>()])
            .prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), vec(any::<u8>(), 1..8)).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<Index>(), any::<Index>(), 1usize..40).prop_map(|(from, to, len)| Mutation::Splice { from, to, len }),
    ]
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    vec(mutation(), 1..4)
}

fn mutate(mut bytes: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        if bytes.is_empty() {
            break;
        }
        match m {
            Mutation::Flip(i, mask) => {
                let at = i.index(bytes.len());
                bytes[at] ^= mask;
            }
            Mutation::Set(i, b) => {
                let at = i.index(bytes.len());
                bytes[at] = *b;
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len())),
            Mutation::Insert(i, extra) => {
                let at = i.index(bytes.len());
                bytes.splice(at..at, extra.iter().copied());
            }
            Mutation::Splice { from, to, len } => {
                let from = from.index(bytes.len());
                let to = to.index(bytes.len());
                let len = (*len).min(bytes.len() - from).min(bytes.len() - to);
                let run = bytes[from..from + len].to_vec();
                bytes[to..to + len].copy_from_slice(&run);
            }
        }
    }
    bytes
}

/// Replaces the trailing SHA-256 (of everything before it) so the damage is not caught by it.
fn rechecksum(mut bytes: Vec<u8>) -> Vec<u8> {
    if bytes.len() >= 32 {
        let split = bytes.len() - 32;
        let digest = chain::sha256(&bytes[..split]);
        bytes[split..].copy_from_slice(&digest);
    }
    bytes
}

/// Every decoder of stored bytes, on `bytes`. Only panics matter; results are ignored.
fn decode_everything(bytes: &[u8]) {
    let _ = codec::decode::<EventHeader>(bytes);
    let _ = codec::decode::<EventBody>(bytes);
    let _ = SessionState::decode(bytes);
    let _ = snapshot::decode_header(bytes);
    let _ = snapshot::decode(bytes, SESSION);
    let _ = segment::verify(bytes, SESSION, |_, _| {});
}

/// Valid append bodies in the shapes the JSON API documents.
fn append_json() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        r#"{"kind":"chat_message","role":"user","text":"hi","author":"alice","channel":{"type":"telegram","chat_id":"42","message_id":"7"}}"#,
        r#"{"kind":"tool_call","call_id":"c1","tool":"bash","input":{"command":"ls"}}"#,
        r#"{"kind":"tool_result","call_id":"c1","output":{"stdout":"a.txt"},"is_error":false,"duration_ms":12}"#,
        r#"{"kind":"browser_action","action":"navigate","url":"https://example.com","screenshot":{"sha256":"0000000000000000000000000000000000000000000000000000000000000000","len":3}}"#,
        r#"{"events":[{"kind":"model_call","provider":"anthropic","model":"claude","input_tokens":10},{"kind":"lifecycle","event":"compacted","summary":"s","first_kept_seq":1}],"expected_seq":3,"idempotency_key":"k1"}"#,
        r#"{"events":[{"kind":"delivery_receipt","outbox_seq":4,"attempt":1,"outcome":"failed","error":"503","retry_at_ms":99},{"kind":"redaction","target_seq":2,"reason":"pii"},{"kind":"webhook_received","source":"github","payload":{"a":[1,2,{"b":null}]}}]}"#,
        r#"{"kind":"chat_message","role":"assistant","text":"x","attachments":[{"name":"a.png","blob":{"sha256":"ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff","len":10,"content_type":"image/png"}}]}"#,
    ])
    .prop_map(str::to_owned)
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        decode_everything(&bytes);
        // Also behind a valid version byte and magic, which arbitrary bytes seldom have.
        let mut versioned = vec![codec::FORMAT_V1];
        versioned.extend_from_slice(&bytes);
        decode_everything(&versioned);
        for magic in [snapshot::SNAPSHOT_MAGIC, segment::SEGMENT_MAGIC] {
            let mut framed = magic.to_vec();
            framed.push(codec::FORMAT_V1);
            framed.extend_from_slice(&bytes);
            decode_everything(&framed);
            decode_everything(&rechecksum(framed));
        }
        let _ = dto::parse_append(&bytes);
    }

    #[test]
    fn damaged_headers_and_bodies_never_panic(header in any_header(), body in any_body(), muts in mutations()) {
        decode_everything(&mutate(codec::encode(&header), &muts));
        decode_everything(&mutate(codec::encode(&body), &muts));
    }

    #[test]
    fn damaged_append_json_never_panics(json in append_json(), muts in mutations(), text in "\\PC{0,64}") {
        prop_assert!(dto::parse_append(json.as_bytes()).is_ok(), "the undamaged request parses");
        let _ = dto::parse_append(&mutate(json.into_bytes(), &muts));
        let _ = dto::parse_append(text.as_bytes());
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn damaged_states_and_snapshots_never_panic(ops in ops(12), muts in mutations(), deflate in any::<bool>()) {
        let built = build(&ops);
        let state = built.engine.state();
        decode_everything(&mutate(state.encode(), &muts));
        let compression = if deflate { Compression::Deflate } else { Compression::None };
        let snap = snapshot::encode(state, T0_MS, compression);
        let damaged = mutate(snap, &muts);
        decode_everything(&damaged);
        decode_everything(&rechecksum(damaged));
    }

    #[test]
    fn damaged_segments_never_panic(ops in ops(12), muts in mutations()) {
        let built = build(&ops);
        let records = built.store.records();
        prop_assume!(!records.is_empty());
        let seg = segment::encode(SESSION, chain::genesis(SESSION), records, T0_MS);
        let damaged = mutate(seg, &muts);
        decode_everything(&damaged);
        decode_everything(&rechecksum(damaged));
    }

    #[test]
    fn segments_with_extreme_headers_never_panic(
        ops in ops(6),
        first_seq in boundary(),
        last_seq in boundary(),
        count in boundary(),
    ) {
        let built = build(&ops);
        let records = built.store.records();
        prop_assume!(!records.is_empty());
        let seg = segment::encode(SESSION, chain::genesis(SESSION), records, T0_MS);
        let header_len = u32::from_le_bytes(seg[9..13].try_into().unwrap()) as usize;
        let mut header: segment::SegmentHeader = codec::decode(&seg[13..13 + header_len]).unwrap();
        header.first_seq = first_seq;
        header.last_seq = last_seq;
        header.count = count;
        let header_bytes = codec::encode(&header);
        let mut forged = seg[..9].to_vec();
        forged.extend_from_slice(&(header_bytes.len() as u32).to_le_bytes());
        forged.extend_from_slice(&header_bytes);
        forged.extend_from_slice(&seg[13 + header_len..]);
        decode_everything(&rechecksum(forged));
    }
}

/// Integers at the edges, where arithmetic on them overflows.
fn boundary() -> impl Strategy<Value = u64> {
    prop_oneof![Just(0), Just(1), Just(2), Just(u64::MAX), Just(u64::MAX - 1), 0u64..40]
}
