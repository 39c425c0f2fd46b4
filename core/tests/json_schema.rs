//! The HTTP JSON contract in `schemas/api/` against the code that implements it.
//!
//! The request schema must accept exactly what `dto::parse_append` accepts: every example under
//! `schemas/api/examples/` is run through both and they must agree. Invalid examples are named
//! `{error_code}.{what}.json` and the parser must refuse them with that code. The output schemas
//! must accept everything core renders: the golden fixtures' events, the events parsed from the
//! valid examples (as stored and as redacted), append outcomes and error bodies.

use std::path::{Path, PathBuf};

use jsonschema::Validator;
use moltlog_core::chain;
use moltlog_core::dto::{self, AppendInput};
use moltlog_core::engine::AppendOutcome;
use moltlog_core::id::IdGen;
use moltlog_core::record::{self, Envelope};
use moltlog_core::{Actor, EventBody};
use serde_json::{Value, json};

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../schemas")
}

fn validator(name: &str) -> Validator {
    let path = schemas_dir().join("api").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let schema: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
    if let Err(e) = jsonschema::draft202012::meta::validate(&schema) {
        panic!("{name} is not a valid draft 2020-12 schema: {e}");
    }
    jsonschema::draft202012::new(&schema).unwrap_or_else(|e| panic!("{name} does not compile: {e}"))
}

/// Why `schema` refuses `instance`, or None if it accepts it.
fn refusal(schema: &Validator, instance: &Value) -> Option<String> {
    let errors: Vec<String> =
        schema.iter_errors(instance).map(|e| format!("{} at {}", e, e.instance_path)).collect();
    (!errors.is_empty()).then(|| errors.join("; "))
}

/// Whether the request schema accepts these body bytes (bytes that are not JSON are refused).
fn schema_accepts(schema: &Validator, body: &[u8]) -> Result<(), String> {
    let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    refusal(schema, &value).map_or(Ok(()), Err)
}

/// `(file name, bytes)` of the examples in `examples/{which}/`, sorted.
fn examples(which: &str) -> Vec<(String, Vec<u8>)> {
    let dir = schemas_dir().join("api/examples").join(which);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("read examples dir").path();
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("read example"))
        })
        .filter(|(name, _)| name.ends_with(".json"))
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no examples in {}", dir.display());
    out
}

#[test]
fn valid_examples_pass_both_the_schema_and_the_parser() {
    let schema = validator("append-request.schema.json");
    let mut disagreements = Vec::new();
    for (name, body) in examples("valid") {
        let parsed = dto::parse_append(&body);
        let checked = schema_accepts(&schema, &body);
        match (parsed, checked) {
            (Ok(input), Ok(())) => assert!(!input.events.is_empty(), "{name}: no events"),
            (Ok(_), Err(why)) => disagreements.push(format!("{name}: parser accepts, schema refuses: {why}")),
            (Err(e), Ok(())) => disagreements.push(format!("{name}: schema accepts, parser refuses: {e}")),
            (Err(e), Err(why)) => disagreements.push(format!("{name}: both refuse: {e} / {why}")),
        }
    }
    assert!(disagreements.is_empty(), "\n{}", disagreements.join("\n"));
}

#[test]
fn invalid_examples_fail_both_with_the_named_error_code() {
    let schema = validator("append-request.schema.json");
    let mut disagreements = Vec::new();
    for (name, body) in examples("invalid") {
        let code = name.split('.').next().expect("split yields one part");
        match (dto::parse_append(&body), schema_accepts(&schema, &body)) {
            (Err(e), Err(_)) if e.code == code => {}
            (Err(e), Err(_)) => {
                disagreements.push(format!("{name}: parser refuses with {} ({e}), not {code}", e.code))
            }
            (Ok(_), _) => disagreements.push(format!("{name}: parser accepts")),
            (_, Ok(())) => disagreements.push(format!("{name}: schema accepts")),
        }
    }
    assert!(disagreements.is_empty(), "\n{}", disagreements.join("\n"));
}

/// Where the two cannot agree, pinned so that a change on either side is noticed. JSON Schema
/// compares numbers by value, so `1.0`, `1e2` and `-0` are integers to it, while the parser
/// takes integers only in integer notation. The schema's description tells clients to write
/// plain integers.
#[test]
fn number_notation_is_where_schema_and_parser_part() {
    let schema = validator("append-request.schema.json");
    for seq in ["1.0", "1e2", "-0"] {
        let body = format!(r#"{{"kind":"redaction","target_seq":{seq},"reason":"r"}}"#);
        assert_eq!(dto::parse_append(body.as_bytes()).map(|_| ()).map_err(|e| e.code), Err("invalid_field"));
        assert_eq!(schema_accepts(&schema, body.as_bytes()), Ok(()), "{seq}");
    }
    let max = r#"{"kind":"redaction","target_seq":18446744073709551615,"reason":"r"}"#;
    assert!(dto::parse_append(max.as_bytes()).is_ok());
    assert_eq!(schema_accepts(&schema, max.as_bytes()), Ok(()));
}

/// An empty batch parses (the engine refuses it with `empty_batch`), so the schema allows it too.
#[test]
fn an_empty_batch_is_left_to_the_engine() {
    let schema = validator("append-request.schema.json");
    let body = br#"{"events":[]}"#;
    assert_eq!(dto::parse_append(body).map(|i| i.events.len()), Ok(0));
    assert_eq!(schema_accepts(&schema, body), Ok(()));
}

/// Seals each parsed event (as seq 1.. of a fresh log) and renders it as the API would.
fn rendered(input: AppendInput) -> Vec<Value> {
    let mut prev = chain::genesis("schema:test");
    let mut ids = IdGen::default();
    let mut out = Vec::new();
    for (i, e) in input.events.into_iter().enumerate() {
        let seq = i as u64 + 1;
        let ts_ms = 1_767_225_600_000 + seq;
        let env = Envelope {
            seq,
            id: ids.next(ts_ms, 7),
            ts_ms,
            actor: Actor::Runtime,
            causation: e.causation,
            idempotency_key: e.idempotency_key,
        };
        let (header, rec) = record::seal(&prev, env, &e.body);
        prev = rec.hash;
        out.push(dto::event_json(&header, &rec.hash, &e.body, false).to_value_lossy().unwrap());
        let skeleton: EventBody = e.body.skeleton();
        if e.body.has_content() {
            out.push(dto::event_json(&header, &rec.hash, &skeleton, true).to_value_lossy().unwrap());
        }
    }
    out
}

#[test]
fn every_accepted_example_renders_to_a_valid_event() {
    let schema = validator("event.schema.json");
    for (name, body) in examples("valid") {
        let input = dto::parse_append(&body).unwrap_or_else(|e| panic!("{name}: {e}"));
        for event in rendered(input) {
            if let Some(why) = refusal(&schema, &event) {
                panic!("{name}: the rendered event {event} does not match event.schema.json: {why}");
            }
        }
    }
}

#[test]
fn golden_fixture_events_match_the_output_schema() {
    let schema = validator("event.schema.json");
    let fixtures = schemas_dir().join("fixtures/v1");
    let mut seen = 0;
    for sub in ["records", "chain"] {
        for entry in std::fs::read_dir(fixtures.join(sub)).expect("fixture dir") {
            let path = entry.expect("fixture entry").path();
            if !path.to_string_lossy().ends_with(".event.json") {
                continue;
            }
            let event: Value = serde_json::from_slice(&std::fs::read(&path).expect("read")).expect("JSON");
            if let Some(why) = refusal(&schema, &event) {
                panic!("{}: {why}", path.display());
            }
            seen += 1;
        }
    }
    assert!(seen >= 30, "found only {seen} rendered fixture events");
}

#[test]
fn outcomes_and_errors_match_their_schemas() {
    let outcome_schema = validator("append-response.schema.json");
    let error_schema = validator("error.schema.json");
    let head = chain::sha256(b"head");
    for duplicate in [false, true] {
        let outcome = dto::outcome_json(&AppendOutcome { first_seq: 4, last_seq: 6, head, duplicate });
        assert_eq!(refusal(&outcome_schema, &outcome), None, "{outcome}");
    }
    for (name, body) in examples("invalid") {
        let e = dto::parse_append(&body).expect_err("invalid example");
        for extra in [None, Some(json!({"path": e.path}))] {
            let err = dto::error_json(e.code, &e.message, extra);
            assert_eq!(refusal(&error_schema, &err), None, "{name}: {err}");
        }
    }
    let conflict = dto::error_json(
        "seq_conflict",
        "expected_seq is 3 but the log is at seq 6",
        Some(json!({"head": {"seq": 6, "hash": chain::to_hex(&head)}})),
    );
    assert_eq!(refusal(&error_schema, &conflict), None);
    assert!(refusal(&error_schema, &json!({"error": {"code": "Bad Code", "message": "m"}})).is_some());
    assert!(refusal(&outcome_schema, &json!({"first_seq": 1, "last_seq": 1, "head": "00"})).is_some());
}
