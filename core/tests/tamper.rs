//! Tamper evidence: any single damaged byte of a stored log is detected, and reported where it is.
//!
//! - In a segment: damage inside a record's frame is reported at that record's seq; damage in the
//!   segment's header or trailer as a header or checksum error, never as some record's fault.
//! - In stored records (what a store's rows hold): damage to a header, body, hash or redaction
//!   flag is reported by the verifier at the damaged record's seq.

mod common;

use proptest::prelude::*;
use proptest::sample::Index;

use common::*;
use moltlog_core::chain;
use moltlog_core::record::{RecordProblem, StoredRecord};
use moltlog_core::segment::{self, SegmentError};
use moltlog_core::verify::{Verifier, VerifyError};

/// Where in a segment a byte lies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    /// Magic, version, header length or header; `prev_hash` says the byte is in the header's
    /// hash of the record before the segment.
    Header {
        prev_hash: bool,
    },
    /// The frame of the record with this seq (its length prefixes, header, hash, flag, body).
    Frame(u64),
    Trailer,
}

fn region(bytes: &[u8], records: &[StoredRecord], prev_hash: &[u8; 32], at: usize) -> Region {
    let header_len = u32::from_le_bytes(bytes[9..13].try_into().unwrap()) as usize;
    let preamble = 13 + header_len;
    if at < preamble {
        let header = &bytes[13..preamble];
        let start = 13 + header.windows(32).position(|w| w == prev_hash).expect("prev hash is in the header");
        return Region::Header { prev_hash: (start..start + 32).contains(&at) };
    }
    if at >= bytes.len() - 32 {
        return Region::Trailer;
    }
    let mut offset = preamble;
    for r in records {
        offset += r.frame_len();
        if at < offset {
            return Region::Frame(r.seq);
        }
    }
    unreachable!("byte {at} is in no region")
}

fn verify_records(records: &[StoredRecord]) -> Result<(), VerifyError> {
    let mut v = Verifier::new(SESSION);
    for r in records {
        v.push(&r.into())?;
    }
    v.finish().map(|_| ())
}

/// A built log and a run of its records to put in a segment.
fn segment_of(ops: &[Op], a: Index, b: Index) -> Option<(Vec<StoredRecord>, [u8; 32], Vec<u8>)> {
    let built = build(ops);
    let records = built.store.records();
    if records.is_empty() {
        return None;
    }
    let (i, j) = (a.index(records.len()), b.index(records.len()));
    let (i, j) = (i.min(j), i.max(j));
    let prev_hash = if i == 0 { chain::genesis(SESSION) } else { records[i - 1].hash };
    let run = records[i..=j].to_vec();
    let bytes = segment::encode(SESSION, prev_hash, &run, T0_MS);
    Some((run, prev_hash, bytes))
}

/// Flips `mask` into byte `at` of the segment `bytes` (holding `run`, after `prev_hash`) and
/// checks that verification fails and blames the region the byte is in.
fn flip_is_reported_where_it_is(
    bytes: &[u8],
    run: &[StoredRecord],
    prev_hash: &[u8; 32],
    at: usize,
    mask: u8,
) -> Result<(), String> {
    let mut bad = bytes.to_vec();
    bad[at] ^= mask;
    let Err(err) = segment::verify(&bad, SESSION, |_, _| {}) else {
        return Err(format!("flipping {mask:#04x} into byte {at} went unnoticed"));
    };
    let first_seq = run[0].seq;
    match (region(bytes, run, prev_hash, at), &err) {
        (Region::Frame(seq), SegmentError::Record { seq: s, .. } | SegmentError::Frame { seq: s, .. })
            if *s == seq => {}
        (Region::Trailer, SegmentError::Checksum) => {}
        // Standalone, a damaged "hash before the segment" cannot be told from a damaged first
        // record: both break the same link and nothing else covers either. Only for seq 1 is the
        // right value known (the genesis hash). A verifier holding the previous segment (its last
        // hash) tells them apart.
        (
            Region::Header { prev_hash: true },
            SegmentError::Record { seq, problem: RecordProblem::BrokenLink { .. } },
        ) if first_seq > 1 && *seq == first_seq => {}
        (Region::Header { .. }, SegmentError::Record { .. } | SegmentError::Frame { .. }) => {
            return Err(format!("byte {at} of the segment header was blamed on a record: {err}"));
        }
        (Region::Header { .. }, _) => {}
        (region, _) => return Err(format!("byte {at} ({region:?}) damaged, reported as: {err}")),
    }
    Ok(())
}

#[test]
fn every_byte_of_a_segment_is_covered() {
    // Given a log with every kind of record: with and without content, offloaded, redacted,
    use moltlog_core::event::Platform;
    use moltlog_core::sample;
    let bodies = vec![
        sample::user("my card number is 4111 1111 1111 1111"),
        sample::model_call("claude", 1200, 80),
        sample::tool_call("c1", "bash", "{\"command\":\"ls -la\"}"),
        sample::tool_result("c1", "{\"stdout\":\"a.txt\\nb.txt\"}", false),
        sample::reply(Platform::Telegram, "42", "Here are your files."),
        sample::navigate("t1", "https://example.com/"),
        sample::webhook("github", "d-1", "{\"action\":\"opened\"}"),
        sample::compacted("The user listed files.", 3),
        sample::user(&"long ".repeat(14_000)),
    ];
    let mut ops: Vec<Op> = bodies
        .into_iter()
        .map(|body| Op::Append {
            actor: moltlog_core::Actor::Runtime,
            events: vec![EventSpec { body, causation: None }],
        })
        .collect();
    ops.push(Op::Append {
        actor: moltlog_core::Actor::System,
        events: vec![EventSpec {
            body: moltlog_core::EventBody::DeliveryReceipt(moltlog_core::event::DeliveryReceipt {
                outbox_seq: 5,
                attempt: 1,
                outcome: moltlog_core::event::DeliveryOutcome::Delivered { remote_id: Some("m9".into()) },
            }),
            causation: None,
        }],
    });
    ops.push(Op::Redact { target: 0 });
    let built = build(&ops);
    assert!(built.store.records()[0].redacted, "the first record is a redacted skeleton");
    let records = built.store.records();
    // when any byte of a segment starting at seq 1, or at seq 2, is flipped by any of these masks,
    for start in [0, 1] {
        let run = &records[start..];
        let prev_hash = if start == 0 { chain::genesis(SESSION) } else { records[start - 1].hash };
        let bytes = segment::encode(SESSION, prev_hash, run, T0_MS);
        assert!(segment::verify(&bytes, SESSION, |_, _| {}).is_ok());
        let offloaded = run.iter().all(|r| r.body.len() < 1000);
        assert!(offloaded, "the long message moved to a blob, keeping this test quick");
        for at in 0..bytes.len() {
            for mask in [0x01, 0x80, 0xff] {
                // then verification fails, blaming the record the byte belongs to, or else the
                // segment's header or checksum.
                if let Err(why) = flip_is_reported_where_it_is(&bytes, run, &prev_hash, at, mask) {
                    panic!("segment from seq {}: {why}", run[0].seq);
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn any_flipped_byte_in_a_segment_is_reported_where_it_is(
        ops in ops(16),
        a in any::<Index>(),
        b in any::<Index>(),
        at in any::<Index>(),
        mask in 1u8..=255,
    ) {
        let Some((run, prev_hash, bytes)) = segment_of(&ops, a, b) else { return Ok(()) };
        prop_assert!(segment::verify(&bytes, SESSION, |_, _| {}).is_ok(), "the undamaged segment verifies");
        let at = at.index(bytes.len());
        if let Err(why) = flip_is_reported_where_it_is(&bytes, &run, &prev_hash, at, mask) {
            prop_assert!(false, "{}", why);
        }
    }

    #[test]
    fn any_damaged_stored_record_is_reported_at_its_seq(
        ops in ops(16),
        which in any::<Index>(),
        field in 0u8..4,
        at in any::<Index>(),
        mask in 1u8..=255,
    ) {
        let built = build(&ops);
        let mut records = built.store.records().to_vec();
        prop_assume!(!records.is_empty());
        prop_assert!(verify_records(&records).is_ok(), "the undamaged log verifies");

        let i = which.index(records.len());
        let rec = &mut records[i];
        match field {
            0 => { let n = at.index(rec.header.len()); rec.header[n] ^= mask }
            1 if !rec.body.is_empty() => { let n = at.index(rec.body.len()); rec.body[n] ^= mask }
            2 => { let n = at.index(32); rec.hash[n] ^= mask }
            _ => rec.redacted = !rec.redacted,
        }
        let err = verify_records(&records).expect_err("damage went unnoticed");
        prop_assert_eq!(err.seq, records[i].seq, "damage to seq {} reported as {}", records[i].seq, err);
    }
}
