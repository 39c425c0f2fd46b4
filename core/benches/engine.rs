//! Criterion benchmarks of the engine's hot paths, in events per second.
//!
//! `cargo bench -p moltlog-core` (the bench profile: opt-level 3, LTO). Workloads are realistic
//! chat messages (~280 stored bytes: header + body) and tool results (~2 KB), see
//! `support/workload.rs`. `examples/figures.rs` prints the same figures as one table.
//!
//! - `append/*`: `Engine::append` into a `MemoryStore`: validate, encode, hash, seal, commit,
//!   fold into the state; one event per request, and 100 per request.
//! - `replay/*`: `verify::Verifier` over a stored log (decode, check chain and digests, fold), and
//!   `Engine::rebuild` from the store (the same through the store's paged reads).
//! - `snapshot/*`: `Engine::snapshot` (Deflate) of a 10,000-message session.

#[path = "support/workload.rs"]
mod workload;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use moltlog_core::engine::{Engine, Limits};
use moltlog_core::verify::Verifier;
use workload::Shape;

/// Events per measured iteration: enough that per-iteration setup is amortised, few enough that
/// a fresh engine and store per iteration stay small.
const APPEND_EVENTS: u64 = 2_000;
const REPLAY_EVENTS: u64 = 10_000;

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Elements(APPEND_EVENTS));
    for shape in [Shape::Chat280, Shape::Tool2K] {
        for batch in [1usize, 100] {
            let reqs = workload::requests(shape, APPEND_EVENTS, batch, 42);
            group.bench_function(format!("{}/batch{batch}", shape.id()), |b| {
                b.iter_batched(
                    || reqs.clone(),
                    |reqs| black_box(workload::append_all(reqs)),
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
}

fn replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay");
    group.throughput(Throughput::Elements(REPLAY_EVENTS));
    for shape in [Shape::Chat280, Shape::Tool2K] {
        let (_, store) = workload::log(shape, REPLAY_EVENTS);
        group.bench_function(format!("{}/verifier", shape.id()), |b| {
            b.iter(|| {
                let mut v = Verifier::new(workload::SESSION);
                for r in store.records() {
                    v.push(&r.into()).expect("the log verifies");
                }
                black_box(v.finish().expect("the log verifies"))
            })
        });
        group.bench_function(format!("{}/rebuild", shape.id()), |b| {
            b.iter(|| {
                black_box(Engine::rebuild(workload::key(), &store, Limits::default()).expect("rebuilds"))
            })
        });
    }
    group.finish();
}

fn snapshot(c: &mut Criterion) {
    let (engine, _) = workload::chat_session(10_000);
    let mut group = c.benchmark_group("snapshot");
    group.sample_size(10);
    group.bench_function("chat_session_10k/deflate", |b| {
        b.iter(|| black_box(engine.snapshot(workload::T0_MS)))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = append, replay, snapshot
}
criterion_main!(benches);
