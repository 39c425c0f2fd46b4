//! Reducer tests: given events, then the state.

use super::*;
use crate::engine::{AppendRequest, Engine, Limits, Now};
use crate::event::Actor;
use crate::event::{BrowserActionKind, Platform};
use crate::key::SessionKey;
use crate::sample;
use crate::store::MemoryStore;

fn fold(bodies: Vec<EventBody>) -> SessionState {
    let mut engine = Engine::new(SessionKey::parse("s").unwrap(), Limits::default());
    let mut store = MemoryStore::new();
    for (i, b) in bodies.into_iter().enumerate() {
        let actor = match &b {
            EventBody::DeliveryReceipt(_) => Actor::System,
            EventBody::Redaction(_) => Actor::Operator,
            _ => Actor::Runtime,
        };
        engine
            .append(
                &mut store,
                AppendRequest::one(actor, b),
                Now { now_ms: 1000 + i as u64, entropy: i as u128 },
            )
            .unwrap();
    }
    engine.state().clone()
}

#[test]
fn tool_calls_open_and_close() {
    let s = fold(vec![
        sample::tool_call("c1", "bash", "{}"),
        sample::tool_call("c2", "read", "{}"),
        sample::tool_result("c1", "\"ok\"", false),
    ]);
    assert_eq!(s.open_tool_calls.keys().collect::<Vec<_>>(), vec!["c2"]);
    assert_eq!(s.open_tool_calls["c2"].seq, 2);
    assert_eq!(s.transcript.len(), 3);
}

#[test]
fn compaction_keeps_entries_from_the_first_kept_seq() {
    let s = fold(vec![
        sample::user("a"),
        sample::user("b"),
        sample::user("c"),
        sample::compacted("sum", 3),
        sample::user("d"),
    ]);
    assert_eq!(s.transcript, vec![3, 5]);
    let c = s.compaction.unwrap();
    assert_eq!((c.seq, c.first_kept_seq, c.summary), (4, 3, Payload::Inline("sum".into())));
}

/// A browser-level `raw_cdp` (no target, no URL) is in no tab: no phantom tab `""`, and the
/// current tab stays where it was.
#[test]
fn targetless_commands_make_no_phantom_tab() {
    let raw = |url: Option<&str>| {
        EventBody::BrowserAction(crate::event::BrowserAction {
            action: BrowserActionKind::RawCdp,
            target_id: None,
            url: url.map(str::to_owned),
            detail: Payload::Inline("Browser.getVersion".into()),
            result: Payload::Inline(String::new()),
            error: None,
            screenshot: None,
        })
    };
    let s = fold(vec![raw(None)]);
    assert!(s.browser.targets.is_empty(), "{:?}", s.browser.targets);
    assert_eq!((s.browser.current_target.as_deref(), s.browser.actions), (None, 1));
    let s = fold(vec![sample::navigate("t1", "https://a.example/"), raw(None)]);
    assert_eq!(s.browser.targets.keys().collect::<Vec<_>>(), vec!["t1"]);
    assert_eq!(s.browser.current_url(), Some("https://a.example/"));
    // A client that names no targets still has its one tab once an action placed it.
    let s = fold(vec![raw(Some("https://b.example/")), raw(None)]);
    assert_eq!(s.browser.current_target.as_deref(), Some(""));
    assert_eq!((s.browser.current_url(), s.browser.targets[""].last_seq), (Some("https://b.example/"), 2));
}

#[test]
fn browser_state_tracks_targets_and_current_url() {
    let close = EventBody::BrowserAction(crate::event::BrowserAction {
        action: BrowserActionKind::CloseTarget,
        target_id: Some("t1".into()),
        url: None,
        detail: Payload::Inline(String::new()),
        result: Payload::Inline(String::new()),
        error: None,
        screenshot: None,
    });
    let s = fold(vec![
        sample::navigate("t1", "https://a.example/"),
        sample::navigate("t2", "https://b.example/"),
        sample::navigate("t1", "https://a.example/2"),
    ]);
    assert_eq!(s.browser.current_url(), Some("https://a.example/2"));
    assert_eq!(s.browser.targets.len(), 2);
    let s = fold(vec![sample::navigate("t1", "https://a.example/"), close]);
    assert_eq!(s.browser.current_url(), None);
    assert!(s.browser.targets.is_empty());
}

#[test]
fn counters_and_model() {
    let s = fold(vec![
        sample::model_call("m1", 10, 5),
        sample::model_call("m2", 1, 1),
        sample::webhook("github", "d1", "{}"),
    ]);
    assert_eq!((s.counters.input_tokens, s.counters.output_tokens), (11, 6));
    assert_eq!(s.model.as_ref().unwrap().model, "m2");
    assert_eq!(s.count(EventKind::WebhookReceived), 1);
    assert_eq!(s.counters.events(), 3);
}

#[test]
fn dead_letters_stay_visible() {
    let dead = EventBody::DeliveryReceipt(crate::event::DeliveryReceipt {
        outbox_seq: 1,
        attempt: 5,
        outcome: DeliveryOutcome::DeadLettered { error: "403".into() },
    });
    let s = fold(vec![sample::reply(Platform::Slack, "C1", "hi"), dead]);
    let e = &s.outbox[&1];
    assert_eq!((e.status, e.attempts, e.last_error.as_deref()), (OutboxStatus::DeadLettered, 5, Some("403")));
}

#[test]
fn token_counters_saturate_instead_of_overflowing() {
    // Given model calls whose client-reported token counts add up past u64::MAX,
    let s = fold(vec![sample::model_call("m", u64::MAX - 1, 7), sample::model_call("m", 5, u64::MAX)]);
    // then folding them does not panic (apply is total) and the counters stop at the maximum.
    assert_eq!((s.counters.input_tokens, s.counters.output_tokens), (u64::MAX, u64::MAX));
}
