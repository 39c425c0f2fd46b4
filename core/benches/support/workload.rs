//! Benchmark workloads shared by `benches/engine.rs` and `examples/figures.rs`: realistic chat
//! messages and tool results, deterministic from a seed.
//!
//! Text is English-like: words drawn with Zipf-like frequencies from a vocabulary of common chat
//! and coding words, in sentences with capitals, punctuation, numbers, paths and identifiers.
//! That compresses like real chat text, unlike random bytes (which do not compress at all) or a
//! repeated constant string (which compresses to almost nothing).
#![allow(dead_code)]

use moltlog_core::engine::{AppendRequest, Engine, Limits, NewEvent, Now};
use moltlog_core::event::{Actor, EventBody, Platform, Role};
use moltlog_core::key::SessionKey;
use moltlog_core::record::StoredRecord;
use moltlog_core::sample;
use moltlog_core::store::MemoryStore;

pub const SESSION: &str = "agent:main:telegram:chat:42";
pub const T0_MS: u64 = 1_700_000_000_000;

/// splitmix64: deterministic, so every run measures the same bytes.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// An index into a list ranked by frequency: low ranks far more often (roughly Zipf).
    fn zipf(&mut self, n: usize) -> usize {
        // The product of two uniforms skews toward 0 like a 1/rank law does, cheaply.
        let a = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        let b = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        ((a * b * a) * n as f64) as usize % n
    }
}

/// Common words of chat with a coding agent, most frequent first.
#[rustfmt::skip]
const WORDS: &[&str] = &[
    "the", "to", "I", "a", "and", "it", "you", "is", "of", "that", "in", "can", "this", "for", "on", "we",
    "be", "with", "file", "not", "have", "do", "so", "just", "what", "if", "but", "are", "me", "my", "run",
    "will", "at", "now", "there", "was", "test", "from", "all", "an", "one", "check", "please", "code",
    "error", "should", "could", "want", "need", "build", "here", "like", "when", "let", "see", "also",
    "how", "would", "about", "which", "fix", "make", "it's", "don't", "get", "some", "up", "out", "then",
    "new", "by", "has", "function", "change", "branch", "commit", "deploy", "again", "still", "think",
    "looks", "works", "failing", "passes", "tests", "output", "logs", "config", "server", "request",
    "response", "message", "session", "agent", "tool", "call", "result", "value", "field", "missing",
    "wrong", "right", "okay", "thanks", "sure", "done", "next", "first", "last", "after", "before",
    "because", "where", "why", "who", "time", "today", "tomorrow", "morning", "meeting", "notes", "summary",
    "list", "open", "close", "read", "write", "update", "delete", "add", "remove", "rename", "move", "copy",
    "install", "version", "package", "dependency", "library", "module", "import", "export", "type",
    "string", "number", "array", "object", "null", "true", "false", "key", "token", "secret", "password",
    "user", "account", "email", "invoice", "payment", "order", "customer", "report", "chart", "table",
    "column", "row", "query", "database", "index", "cache", "memory", "disk", "network", "timeout", "retry",
    "queue", "worker", "job", "schedule", "cron", "alarm", "snapshot", "backup", "restore", "archive",
    "bucket", "object", "upload", "download", "image", "screenshot", "page", "browser", "click", "button",
    "form", "login", "logout", "link", "url", "site", "search", "results", "found", "nothing", "something",
    "everything", "maybe", "probably", "definitely", "quickly", "slowly", "really", "very", "much", "more",
    "less", "few", "many", "each", "every", "other", "another", "same", "different", "small", "large",
    "old", "fresh", "good", "bad", "better", "best", "great", "nice", "weird", "strange", "broken", "fixed",
    "clean", "dirty", "ready", "busy", "free", "late", "early", "soon", "later", "yesterday", "week",
    "month", "year", "day", "hour", "minute", "second", "price", "cost", "budget", "plan", "idea",
    "question", "answer", "problem", "solution", "issue", "ticket", "bug", "feature", "release", "draft",
    "review", "comment", "approve", "merge", "rebase", "conflict", "diff", "patch", "line", "lines", "word",
    "words", "text", "document", "doc", "readme", "folder", "directory", "path", "script", "command",
    "terminal", "shell", "python", "rust", "node", "docker", "container", "sandbox", "cloud", "local",
    "remote", "github", "slack", "telegram", "discord", "calendar", "flight", "hotel", "trip", "dinner",
    "lunch", "coffee", "weather", "rain", "weekend", "family", "friend", "team", "manager", "client",
];

const NAMES: &[&str] =
    &["main.rs", "index.ts", "README.md", "config.toml", "app.py", "notes.txt", "report.csv"];

/// A sentence-shaped run of words, `min + (0..spread)` characters long or a little more.
pub fn prose(rng: &mut Rng, min: usize, spread: u64) -> String {
    let target = min + rng.below(spread) as usize;
    let mut out = String::with_capacity(target + 16);
    let mut sentence_start = true;
    while out.len() < target {
        if !out.is_empty() {
            out.push(' ');
        }
        let word: String = match rng.below(40) {
            0 => format!("{}", rng.below(2_000)),
            1 => format!("src/{}", NAMES[rng.below(NAMES.len() as u64) as usize]),
            2 => format!("`{}_{}`", WORDS[rng.zipf(WORDS.len())], WORDS[rng.zipf(WORDS.len())]),
            _ => WORDS[rng.zipf(WORDS.len())].to_owned(),
        };
        if sentence_start {
            let mut chars = word.chars();
            if let Some(c) = chars.next() {
                out.extend(c.to_uppercase());
                out.push_str(chars.as_str());
            }
        } else {
            out.push_str(&word);
        }
        sentence_start = false;
        match rng.below(14) {
            0 => out.push(','),
            1 => {
                out.push(['.', '.', '.', '?', '!'][rng.below(5) as usize]);
                sentence_start = true;
            }
            _ => {}
        }
    }
    if !sentence_start {
        out.push('.');
    }
    out
}

/// Tool output as agents see it: a JSON object whose stdout holds log-like lines.
pub fn tool_output(rng: &mut Rng, min: usize, spread: u64) -> String {
    let target = min + rng.below(spread) as usize;
    let mut stdout = String::with_capacity(target + 64);
    while stdout.len() + 40 < target {
        let line = match rng.below(4) {
            0 => format!(
                "-rw-r--r-- 1 agent agent {:>6} Jan {:>2} {:02}:{:02} src/{}",
                rng.below(90_000),
                1 + rng.below(28),
                rng.below(24),
                rng.below(60),
                NAMES[rng.below(NAMES.len() as u64) as usize]
            ),
            1 => format!("[{}ms] {}", rng.below(5_000), prose(rng, 30, 40)),
            2 => format!("test {}::{} ... ok", WORDS[rng.zipf(WORDS.len())], WORDS[rng.zipf(WORDS.len())]),
            _ => prose(rng, 20, 60),
        };
        stdout.push_str(&line);
        stdout.push('\n');
    }
    serde_json::json!({ "exit_code": 0, "stdout": stdout, "stderr": "" }).to_string()
}

/// The kinds of event the benchmarks append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A chat message of about 280 stored bytes (header + body): a typical turn.
    Chat280,
    /// A tool result of about 2 KB stored bytes: command output.
    Tool2K,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Chat280 => "chat ~280 B",
            Shape::Tool2K => "tool result ~2 KB",
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Shape::Chat280 => "chat_280B",
            Shape::Tool2K => "tool_2KB",
        }
    }

    /// The `i`th body of this shape. Text lengths vary around the target so sizes are realistic,
    /// averaging the advertised stored size (the header is ~105 bytes).
    pub fn body(self, rng: &mut Rng, i: u64) -> EventBody {
        match self {
            Shape::Chat280 => {
                let text = prose(rng, 120, 110);
                if i.is_multiple_of(2) {
                    sample::chat(Role::User, &text)
                } else {
                    sample::chat(Role::Assistant, &text)
                }
            }
            Shape::Tool2K => {
                let output = tool_output(rng, 1_700, 300);
                sample::tool_result(&format!("call_{i:06}"), &output, false)
            }
        }
    }
}

pub fn key() -> SessionKey {
    SessionKey::parse(SESSION).expect("valid key")
}

pub fn now(i: u64) -> Now {
    Now { now_ms: T0_MS + i, entropy: u128::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) }
}

/// `n` events of `shape` as append requests of `batch` events each.
pub fn requests(shape: Shape, n: u64, batch: usize, seed: u64) -> Vec<AppendRequest> {
    let mut rng = Rng(seed);
    let events: Vec<NewEvent> = (0..n).map(|i| NewEvent::new(shape.body(&mut rng, i))).collect();
    events
        .chunks(batch)
        .map(|chunk| AppendRequest {
            actor: Actor::Runtime,
            events: chunk.to_vec(),
            expected_seq: None,
            idempotency_key: None,
        })
        .collect()
}

/// Appends `reqs` to a fresh engine and store; returns them.
pub fn append_all(reqs: Vec<AppendRequest>) -> (Engine, MemoryStore) {
    let mut engine = Engine::new(key(), Limits::default());
    let mut store = MemoryStore::new();
    for (i, req) in reqs.into_iter().enumerate() {
        engine.append(&mut store, req, now(i as u64)).expect("benchmark appends are valid");
    }
    (engine, store)
}

/// A stored log of `n` events of `shape`.
pub fn log(shape: Shape, n: u64) -> (Engine, MemoryStore) {
    append_all(requests(shape, n, 100, 42))
}

/// Average stored bytes per record (header + body), as the benchmarks report sizes.
pub fn stored_bytes(records: &[StoredRecord]) -> f64 {
    let total: usize = records.iter().map(|r| r.header.len() + r.body.len()).sum();
    total as f64 / records.len() as f64
}

/// A session of `n` chat messages as a Telegram bridge and an agent make them: inbound user
/// messages with channel, author and message id, and assistant replies of varied length.
pub fn chat_session(n: u64) -> (Engine, MemoryStore) {
    let mut rng = Rng(7);
    let reqs = (0..n)
        .map(|i| {
            let body = if i.is_multiple_of(2) {
                let text = prose(&mut rng, 10, 200);
                sample::inbound(Platform::Telegram, "42", &(1000 + i).to_string(), "alice", &text)
            } else {
                let text = prose(&mut rng, 40, 600);
                sample::chat(Role::Assistant, &text)
            };
            AppendRequest::one(if i.is_multiple_of(2) { Actor::Bridge } else { Actor::Runtime }, body)
        })
        .collect();
    append_all(reqs)
}
