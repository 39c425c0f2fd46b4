//! The recorder on canned CDP traffic: a real Playwright session (tests/fixtures/cdp/) and
//! hand-made edge cases.

use moltlog_core::event::BrowserActionKind as Kind;
use serde_json::json;

use super::*;

const PLAYWRIGHT: &str = include_str!("../../tests/fixtures/cdp/playwright-basic.cdp");

/// Feeds a fixture (`> ` client message, `< ` browser message) one message per ms.
fn replay(rec: &mut Recorder, fixture: &str) -> Vec<Recorded> {
    let mut out = Vec::new();
    let mut now = 1_000;
    for line in fixture.lines() {
        now += 1;
        if let Some(m) = line.strip_prefix("> ") {
            rec.on_client(m, now);
        } else if let Some(m) = line.strip_prefix("< ") {
            rec.on_upstream(m);
        }
        out.extend(rec.drain(now, false));
    }
    out.extend(rec.drain(now, true));
    out
}

#[test]
fn a_playwright_session_becomes_the_actions_a_person_would_name() {
    let mut rec = Recorder::new(RecorderLimits::default(), 0);
    let actions = replay(&mut rec, PLAYWRIGHT);
    let kinds: Vec<Kind> = actions.iter().map(|a| a.action).collect();
    assert_eq!(
        kinds,
        [
            Kind::CreateTarget,
            Kind::Navigate,
            Kind::Click,
            Kind::Type,
            Kind::Evaluate,
            Kind::Screenshot,
            Kind::CloseTarget,
            Kind::RawCdp
        ],
        "{actions:#?}"
    );
    let tab = actions[0].target_id.clone().expect("the new tab's id");
    for a in &actions[..7] {
        assert_eq!(a.target_id.as_deref(), Some(tab.as_str()), "{a:?}");
        assert_eq!(a.error, None, "{a:?}");
    }
    assert_eq!(actions[0].url.as_deref(), Some("about:blank"));
    let page_url = actions[1].url.clone().unwrap();
    assert!(page_url.ends_with("/site/index.html"), "{page_url}");
    assert!(actions[1].result["frameId"].is_string());
    // Later actions know where the tab is.
    assert_eq!(actions[2].url.as_deref(), Some(page_url.as_str()));
    assert_eq!(actions[2].detail, "left click at (120, 120)");
    assert_eq!(actions[2].result["click_count"], 1);
    assert_eq!(actions[3].detail, "hello moltlog{Enter}");
    assert_eq!(actions[3].result, json!({"keys": 14}));
    assert_eq!(actions[4].detail, "6 * 7");
    assert_eq!(actions[4].result, json!({"type": "number", "value": 42}));
    let shot = actions[5].screenshot.as_ref().expect("the image");
    assert_eq!(shot.content_type, "image/png");
    assert_eq!(&shot.bytes[..8], b"\x89PNG\r\n\x1a\n");
    assert_eq!(actions[5].result["bytes"], shot.bytes.len());
    assert_eq!(actions[6].url.as_deref(), Some(page_url.as_str()));
    // The noise is counted, not recorded: Playwright's own scripts and function calls.
    let counts = &actions[7].result;
    assert_eq!(counts["Runtime.callFunctionOn"], 22);
    assert_eq!(counts["Runtime.evaluate"], 3, "injected scripts are counted: {counts}");
    assert!(counts["Input.dispatchMouseEvent"].as_u64().unwrap() >= 1, "the mouse move");
    assert_eq!(rec.stats().unparsed, 0);
}

fn attached(rec: &mut Recorder, session: &str, target: &str, url: &str) {
    rec.on_upstream(&format!(
        r#"{{"method":"Target.attachedToTarget","params":{{"sessionId":"{session}","targetInfo":{{"targetId":"{target}","type":"page","url":"{url}"}}}}}}"#
    ));
}

#[test]
fn navigation_errors_history_and_reload_on_flattened_sessions() {
    let mut rec = Recorder::new(RecorderLimits::default(), 0);
    attached(&mut rec, "S1", "T1", "about:blank");
    attached(&mut rec, "S2", "T2", "http://two/");
    // The same id in two sessions is two commands.
    rec.on_client(r#"{"id":1,"method":"Page.navigate","params":{"url":"http://nope/"},"sessionId":"S1"}"#, 1);
    rec.on_client(r#"{"id":1,"method":"Page.reload","sessionId":"S2"}"#, 2);
    rec.on_upstream(r#"{"id":1,"result":{},"sessionId":"S2"}"#);
    rec.on_upstream(
        r#"{"id":1,"result":{"frameId":"T1","loaderId":"L","errorText":"net::ERR_NAME_NOT_RESOLVED"},"sessionId":"S1"}"#,
    );
    rec.on_client(
        r#"{"id":2,"method":"Page.navigateToHistoryEntry","params":{"entryId":3},"sessionId":"S2"}"#,
        3,
    );
    rec.on_upstream(
        r#"{"id":2,"error":{"code":-32000,"message":"No entry with passed id"},"sessionId":"S2"}"#,
    );
    let a = rec.drain(4, false);
    assert_eq!(a.len(), 3, "{a:#?}");
    assert_eq!((a[0].action, a[0].target_id.as_deref()), (Kind::Reload, Some("T2")));
    assert_eq!(a[0].url.as_deref(), Some("http://two/"));
    assert_eq!((a[1].action, a[1].url.as_deref()), (Kind::Navigate, Some("http://nope/")));
    assert_eq!(a[1].error.as_deref(), Some("net::ERR_NAME_NOT_RESOLVED"));
    assert_eq!((a[2].action, a[2].error.as_deref()), (Kind::History, Some("No entry with passed id")));
    // A failed navigation does not move the tab.
    rec.on_client(r#"{"id":3,"method":"Page.reload","sessionId":"S1"}"#, 5);
    rec.on_upstream(r#"{"id":3,"result":{},"sessionId":"S1"}"#);
    assert_eq!(rec.drain(6, false)[0].url.as_deref(), Some("about:blank"));
    // The browser telling where a tab went is believed.
    rec.on_upstream(r#"{"method":"Page.frameNavigated","params":{"frame":{"id":"T1","url":"http://moved/"}},"sessionId":"S1"}"#);
    rec.on_upstream(r#"{"method":"Page.frameNavigated","params":{"frame":{"id":"F","parentId":"T1","url":"http://iframe/"}},"sessionId":"S1"}"#);
    rec.on_client(r#"{"id":4,"method":"Page.reload","sessionId":"S1"}"#, 7);
    rec.on_upstream(r#"{"id":4,"result":{},"sessionId":"S1"}"#);
    assert_eq!(rec.drain(8, false)[0].url.as_deref(), Some("http://moved/"));
}

#[test]
fn typing_runs_end_on_another_action_another_tab_or_idleness() {
    let limits = RecorderLimits { typing_idle_ms: 100, ..RecorderLimits::default() };
    let mut rec = Recorder::new(limits, 0);
    attached(&mut rec, "S1", "T1", "http://one/");
    attached(&mut rec, "S2", "T2", "http://two/");
    let key = |id: u32, s: &str, text: &str| {
        format!(
            r#"{{"id":{id},"method":"Input.dispatchKeyEvent","params":{{"type":"keyDown","key":"{text}","text":"{text}"}},"sessionId":"{s}"}}"#
        )
    };
    rec.on_client(&key(1, "S1", "a"), 10);
    rec.on_client(&key(2, "S1", "b"), 20);
    rec.on_client(r#"{"id":3,"method":"Input.insertText","params":{"text":"cd"},"sessionId":"S1"}"#, 30);
    assert!(rec.drain(40, false).is_empty(), "the run is still open");
    rec.on_client(&key(4, "S2", "x"), 50);
    let a = rec.drain(60, false);
    assert_eq!((a[0].detail.as_str(), a[0].target_id.as_deref()), ("abcd", Some("T1")));
    assert_eq!(a[0].result["keys"], 3);
    assert_eq!(rec.drain(151, false)[0].detail, "x", "idle for the limit");
    // A click ends the run before it is recorded, so the order is the order of events.
    rec.on_client(&key(5, "S1", "y"), 200);
    for (id, kind) in [(6, "mousePressed"), (7, "mouseReleased"), (8, "mousePressed")] {
        rec.on_client(&format!(r#"{{"id":{id},"method":"Input.dispatchMouseEvent","params":{{"type":"{kind}","x":5,"y":6,"button":"left","clickCount":2}},"sessionId":"S1"}}"#), 210);
    }
    let a = rec.drain(220, false);
    assert_eq!(a.iter().map(|a| a.action).collect::<Vec<_>>(), [Kind::Type, Kind::Click]);
    assert_eq!(a[1].detail, "left double click at (5, 6)");
}

#[test]
fn page_sockets_screenshots_and_broken_input() {
    let mut rec = Recorder::for_page(RecorderLimits::default(), 0, "T9");
    rec.on_client(r#"{"id":1,"method":"Page.captureScreenshot","params":{"format":"jpeg"}}"#, 1);
    rec.on_upstream(r#"{"id":1,"result":{"data":"/9j/4AAQ"}}"#);
    rec.on_client(r#"{"id":2,"method":"Page.captureScreenshot"}"#, 2);
    rec.on_upstream(r#"{"id":2,"result":{"data":"!!not base64!!"}}"#);
    rec.on_client("{not json", 3);
    rec.on_upstream("\u{0}");
    rec.on_upstream(r#"{"id":99,"result":{}}"#);
    let a = rec.drain(4, true);
    assert_eq!(a.len(), 2, "{a:#?}");
    assert_eq!(a[0].target_id.as_deref(), Some("T9"));
    let img = a[0].screenshot.as_ref().unwrap();
    assert_eq!(
        (img.content_type.as_str(), img.bytes.as_slice()),
        ("image/jpeg", &[0xff, 0xd8, 0xff, 0xe0, 0, 0x10][..])
    );
    assert!(a[1].screenshot.is_none());
    assert!(a[1].error.as_deref().unwrap().contains("not base64"), "{:?}", a[1].error);
    assert_eq!(rec.stats().unparsed, 2);
}

#[test]
fn what_is_kept_is_bounded() {
    let limits = RecorderLimits { max_pending: 2, max_detail: 8, ..RecorderLimits::default() };
    let mut rec = Recorder::new(limits, 0);
    for id in 1..=3 {
        rec.on_client(&format!(r#"{{"id":{id},"method":"Runtime.evaluate","params":{{"expression":"1+1 /* long comment */"}}}}"#), 1);
    }
    assert_eq!(rec.stats().dropped_pending, 1);
    rec.on_upstream(r#"{"id":1,"result":{"result":{"type":"string","value":"a long string value"}}}"#);
    let a = rec.drain(2, false);
    assert_eq!(a[0].detail, "1+1 /* l… [22 bytes]");
    assert_eq!(a[0].result, json!({"type": "string", "value_truncated": "\"a long … [21 bytes]"}));
    // Summaries come when due, not with every drain.
    rec.on_client(r#"{"id":9,"method":"DOM.getDocument"}"#, 3);
    assert!(rec.drain(4, false).is_empty());
    let s = rec.drain(40_000, false);
    assert_eq!(
        (s[0].action, s[0].result.clone()),
        (Kind::RawCdp, json!({"DOM.getDocument": 1, "Runtime.evaluate": 1}))
    );
    assert_eq!(s[0].target_id, None, "no tab was used");
}

#[test]
fn summaries_are_filed_under_the_open_tab_so_the_current_tab_stays() {
    let mut rec = Recorder::new(RecorderLimits::default(), 0);
    attached(&mut rec, "S1", "T1", "http://one/");
    rec.on_client(r#"{"id":1,"method":"Page.reload","sessionId":"S1"}"#, 1);
    rec.on_upstream(r#"{"id":1,"result":{},"sessionId":"S1"}"#);
    rec.on_client(r#"{"id":2,"method":"DOM.enable","sessionId":"S1"}"#, 2);
    let a = rec.drain(40_000, false);
    assert_eq!(
        (a[1].action, a[1].target_id.as_deref(), a[1].url.as_deref()),
        (Kind::RawCdp, Some("T1"), Some("http://one/"))
    );
    rec.on_client(r#"{"id":3,"method":"Target.closeTarget","params":{"targetId":"T1"}}"#, 3);
    rec.on_upstream(r#"{"id":3,"result":{"success":true}}"#);
    rec.on_client(r#"{"id":4,"method":"Browser.getVersion"}"#, 4);
    let a = rec.drain(80_000, true);
    assert_eq!((a[1].action, a[1].target_id.as_deref()), (Kind::RawCdp, None), "the tab is closed");
}
