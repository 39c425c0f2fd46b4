//! The live tail over a real WebSocket: backlog then live events; a client that reconnects with
//! its last seq misses nothing and gets nothing twice, across evictions and runtime restarts.
#![cfg(not(target_arch = "wasm32"))]

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::{Worker, chat, session_key};
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

struct Tail {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    /// Seqs received, in order.
    seqs: Vec<u64>,
    live_head: Option<u64>,
}

impl Tail {
    fn connect(w: &Worker, key: &str, after: u64) -> Tail {
        let (ws, resp) = tungstenite::connect(w.ws_url(&format!("/v1/sessions/{key}/tail?after={after}")))
            .expect("connect tail");
        assert_eq!(resp.status().as_u16(), 101);
        if let MaybeTlsStream::Plain(s) = ws.get_ref() {
            s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        }
        Tail { ws, seqs: Vec::new(), live_head: None }
    }

    /// Reads until `seq` was received (or fails after the read timeout).
    fn read_until(&mut self, seq: u64) {
        while self.seqs.last().copied().unwrap_or(0) < seq {
            match self.ws.read().expect("tail message") {
                Message::Text(t) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["type"] == "live" {
                        self.live_head = v["head_seq"].as_u64();
                    } else {
                        self.seqs.push(v["seq"].as_u64().unwrap());
                    }
                }
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("unexpected {other:?}"),
            }
        }
    }
}

fn append(w: &Worker, key: &str, n: usize, tag: &str) {
    let events: Vec<Value> = (0..n).map(|i| chat(&format!("{tag}-{i}"))).collect();
    assert_eq!(w.append(key, &json!({ "events": events })).status, 201);
}

#[test]
fn backlog_then_live_then_resume_without_gaps_or_duplicates() {
    let mut w = Worker::start();
    let k = session_key("tail");
    append(&w, &k, 30, "before");

    let mut t = Tail::connect(&w, &k, 10);
    t.read_until(30);
    assert_eq!(t.seqs, (11..=30).collect::<Vec<_>>(), "backlog after the cursor");
    append(&w, &k, 5, "live");
    t.read_until(35);
    assert_eq!(t.live_head, Some(30));
    assert_eq!(t.seqs, (11..=35).collect::<Vec<_>>());

    // Disconnect, miss some, reconnect with the last seq.
    let last = *t.seqs.last().unwrap();
    drop(t);
    append(&w, &k, 7, "missed");
    let mut t = Tail::connect(&w, &k, last);
    t.read_until(42);
    assert_eq!(t.seqs, (36..=42).collect::<Vec<_>>());

    // The object forgets everything in memory; the socket (hibernation API) keeps its cursor.
    w.post(&format!("/__test/sessions/{k}/evict"), &json!({}));
    append(&w, &k, 3, "after-evict");
    t.read_until(45);
    assert_eq!(t.seqs, (36..=45).collect::<Vec<_>>());

    // The runtime restarts: the connection drops; resuming from the last seq loses nothing.
    let last = *t.seqs.last().unwrap();
    w.restart();
    append(&w, &k, 4, "after-restart");
    let mut t = Tail::connect(&w, &k, last);
    t.read_until(49);
    assert_eq!(t.seqs, (46..=49).collect::<Vec<_>>());
    t.ws.send(Message::Text("ping".into())).unwrap();
    loop {
        match t.ws.read().unwrap() {
            Message::Text(p) if p.as_str() == "pong" => break,
            Message::Text(m) => {
                assert!(m.contains(r#""type":"live""#), "only the live marker may come first: {m}")
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn concurrent_writers_reach_every_tail_in_order() {
    let w = Worker::start();
    let k = session_key("tail-many");
    let mut tails: Vec<Tail> = (0..3).map(|_| Tail::connect(&w, &k, 0)).collect();
    std::thread::scope(|s| {
        for c in 0..4 {
            let (w, k) = (&w, &k);
            s.spawn(move || {
                for i in 0..10 {
                    assert_eq!(w.append(k, &chat(&format!("c{c}-{i}"))).status, 201);
                }
            });
        }
    });
    for t in &mut tails {
        t.read_until(40);
        assert_eq!(t.seqs, (1..=40).collect::<Vec<_>>());
    }
}
