//! The toolchain path: the Worker built by worker-build, served by real workerd, answers.
#![cfg(not(target_arch = "wasm32"))]

mod common;

#[test]
fn healthz_reports_version_and_build() {
    let w = common::Worker::start();
    let r = w.get("/healthz");
    assert_eq!(r.status, 200);
    assert_eq!(r.body["ok"], true);
    assert_eq!(r.body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(r.body["build"]["test_harness"], true);
    assert_eq!(r.body["build"]["format_version"], 1);
}
