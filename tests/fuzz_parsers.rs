//! Property-based fuzzing of what reaches studiod from outside (issue 7):
//! - the command JSON parser (`adapters::json::parse_command`) on arbitrary
//!   bytes, on byte-mutated valid commands and on valid commands with a field
//!   replaced by an arbitrary JSON value: never panics; an error always
//!   carries a code from CONTRACT §5's list; a readable id is echoed intact;
//! - the scene parser (`config::scenes::parse`) on arbitrary text and on mutated
//!   example scenes: never panics; every error has `file:line:col` inside
//!   the text it was given;
//! - the VISCA decoder's byte accounting, which its own property tests
//!   (src/visca/codec.rs) do not check: every input byte is either part of a
//!   reply, reported discarded, or still buffered (< one packet), and
//!   decoding always terminates.

use std::collections::BTreeSet;
use std::sync::OnceLock;

use proptest::prelude::*;
use serde_json::{json, Value};
use studiod::adapters::json::{parse_command, reply_invalid};
use studiod::config::model::Config;
use studiod::config::scenes::{parse, KnownDevices as Devices};
use studiod::diag::Source;

/// CONTRACT §5's error codes (the parser may only ever answer with these).
const CONTRACT_CODES: [&str; 8] =
    ["invalid_json", "invalid_command", "unknown_action", "unknown_scene", "unknown_device", "scene_invalid", "device_failed", "busy"];

fn valid_commands() -> Vec<Value> {
    vec![
        json!({"id":"c-8f2a","action":"apply_scene","scene":"flash-sale","fade_ms":800,"at":"2026-11-25T14:00:00Z","slot":{"booking":"b-77","creator":"ana"}}),
        json!({"id":"b-1","action":"blackout","fade_ms":0}),
        json!({"id":"p-1","action":"recall_preset","camera":"front","preset":3}),
        json!({"id":"s-1","action":"status"}),
        json!({"id":"r-1","action":"reload"}),
        json!({"id":"ps-1","action":"put_scene","scene":"x","toml":"label = \"X\"\n[light.key]\nintensity = 0.5\n"}),
        json!({"id":"d-1","action":"delete_scene","scene":"x"}),
        json!({"id":"l-1","action":"set_light","fixture":"key","values":{"intensity":0.5,"cct":5600},"fade_ms":100}),
        json!({"id":"j-1","action":"jog","camera":"front","pan":0.5,"tilt":-0.25}),
        json!({"id":"z-1","action":"zoom","camera":"front","speed":-1.0}),
    ]
}

fn check_parsed(payload: &[u8]) -> Result<(), TestCaseError> {
    let p = parse_command(payload);
    if let Some(id) = &p.id {
        let n = id.chars().count();
        prop_assert!((1..=128).contains(&n), "id of {n} chars accepted");
        // The id echoed is the one in the payload, not a mangled copy.
        let v: Value = serde_json::from_slice(payload).expect("an id was read, so the payload is JSON");
        prop_assert_eq!(v["id"].as_str(), Some(id.as_str()));
    }
    match &p.command {
        Ok(cmd) => {
            let v: Value = serde_json::from_slice(payload).expect("a command was read, so the payload is JSON");
            prop_assert_eq!(v["action"].as_str(), Some(cmd.action()), "the command is the action asked for");
        }
        Err(e) => {
            prop_assert!(CONTRACT_CODES.contains(&e.code.as_str()), "code {} is not in the contract", e.code.as_str());
            prop_assert!(!e.message.is_empty());
            // The reply for it is valid JSON with the same code.
            let r = reply_invalid(&p, e);
            prop_assert_eq!(r["ok"].as_bool(), Some(false));
            prop_assert_eq!(r["error"]["code"].as_str(), Some(e.code.as_str()));
        }
    }
    Ok(())
}

/// Byte-level mutations: flip, insert, delete, truncate.
fn mutate_bytes(mut b: Vec<u8>, ops: &[(u8, usize, u8)]) -> Vec<u8> {
    for &(op, at, byte) in ops {
        if b.is_empty() {
            b.push(byte);
            continue;
        }
        let at = at % b.len();
        match op % 4 {
            0 => b[at] ^= byte | 1,
            1 => b.insert(at, byte),
            2 => {
                b.remove(at);
            }
            _ => b.truncate(at),
        }
    }
    b
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|x| serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)),
        ".{0,200}".prop_map(Value::String),
        Just(json!("x".repeat(129))),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,8}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// The example booth's devices, to check scenes against.
fn booth_config() -> &'static Config {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    CONFIG.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let serial = dir.join("ttyVISCA0");
        let ports = studiod_sim::booth::BoothPorts {
            serial: &serial,
            artnet: "127.0.0.1:16454".parse().unwrap(),
            osc: "127.0.0.1:18000".parse().unwrap(),
            mqtt_url: None,
            extra: String::new(),
        };
        let path = studiod_sim::booth::write_booth(&dir, &ports).unwrap();
        studiod::config::load(&path).unwrap_or_else(|e| panic!("{e}"))
    })
}

fn check_scene(text: &str) -> Result<(), TestCaseError> {
    let c = booth_config();
    let declared = BTreeSet::new();
    let devices = Devices { cameras: &c.cameras, fixtures: &c.fixtures, osc: &c.osc, declared: &declared };
    let src = Source::new("scenes/fuzz.toml", text);
    if let Err(diags) = parse("fuzz", &src, &devices) {
        prop_assert!(!diags.0.is_empty(), "an error without any diagnostic");
        let lines: Vec<&str> = text.split('\n').collect();
        for d in &diags.0 {
            prop_assert_eq!(d.file.to_str(), Some("scenes/fuzz.toml"));
            prop_assert!(d.line >= 1 && d.line <= lines.len(), "line {} outside 1..={}: {}", d.line, lines.len(), d);
            let width = lines[d.line - 1].chars().count();
            prop_assert!(d.col >= 1 && d.col <= width + 1, "col {} outside 1..={} on line {}: {}", d.col, width + 1, d.line, d);
            prop_assert!(!d.message.is_empty());
        }
    }
    Ok(())
}

/// Character-level mutations of a scene: delete, insert a TOML-ish token,
/// replace, duplicate a line.
fn mutate_text(text: &str, ops: &[(u8, usize, usize)]) -> String {
    const TOKENS: [&str; 16] =
        ["=", "[", "]", "[[", "\"", "\n", "#", ".", "-1", "1e999", "nan", "0x10", "{", "}", "[light.ghost]", "preset = 99"];
    let mut chars: Vec<char> = text.chars().collect();
    for &(op, at, pick) in ops {
        let at = if chars.is_empty() { 0 } else { at % chars.len() };
        match op % 4 {
            0 if !chars.is_empty() => {
                chars.remove(at);
            }
            1 => chars.splice(at..at, TOKENS[pick % TOKENS.len()].chars()).for_each(drop),
            2 if !chars.is_empty() => chars[at] = ['é', '\u{0}', '\t', '\'', '"', '=', ' ', '😀'][pick % 8],
            _ => {
                let s: String = chars.iter().collect();
                let lines: Vec<&str> = s.split('\n').collect();
                let l = lines[pick % lines.len()];
                let mut out = lines[..=pick % lines.len()].join("\n");
                out.push('\n');
                out.push_str(l);
                if pick % lines.len() + 1 < lines.len() {
                    out.push('\n');
                    out.push_str(&lines[pick % lines.len() + 1..].join("\n"));
                }
                chars = out.chars().collect();
            }
        }
    }
    chars.into_iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn command_parser_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_parsed(&bytes)?;
    }

    #[test]
    fn command_parser_on_mutated_valid_commands(
        which in 0usize..10,
        ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6),
    ) {
        let base = valid_commands()[which].to_string().into_bytes();
        check_parsed(&mutate_bytes(base, &ops))?;
    }

    #[test]
    fn command_parser_with_a_field_replaced(
        which in 0usize..10,
        field in prop_oneof![
            prop::sample::select(vec!["id", "action", "scene", "fade_ms", "at", "camera", "preset", "values", "toml", "pan"]).prop_map(String::from),
            "[a-z]{1,6}",
        ],
        value in json_value(),
    ) {
        let mut cmd = valid_commands()[which].clone();
        cmd[field.as_str()] = value;
        check_parsed(cmd.to_string().as_bytes())?;
    }

    #[test]
    fn scene_parser_on_arbitrary_text(text in "(?s).{0,400}") {
        check_scene(&text)?;
    }

    #[test]
    fn scene_parser_on_mutated_example_scenes(
        which in 0usize..studiod_sim::booth::SCENES.len(),
        ops in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>()), 1..6),
    ) {
        check_scene(&mutate_text(studiod_sim::booth::SCENES[which].1, &ops))?;
    }

    #[test]
    fn visca_decoder_accounts_for_every_byte(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = bytes::BytesMut::from(&bytes[..]);
        let (mut replied, mut discarded) = (0usize, 0usize);
        // Bounded: each call consumes at least one byte or reports "need more".
        for _ in 0..=bytes.len() + 1 {
            match studiod::visca::decode(&mut buf) {
                Ok(Some(r)) => replied += r.to_bytes().as_slice().len(),
                Ok(None) => break,
                Err(e) => {
                    prop_assert!(e.discarded > 0);
                    discarded += e.discarded;
                }
            }
        }
        prop_assert!(matches!(studiod::visca::decode(&mut buf.clone()), Ok(None)), "decoding terminated");
        prop_assert!(buf.len() < 16, "at most one partial packet stays buffered, not {} bytes", buf.len());
        prop_assert_eq!(replied + discarded + buf.len(), bytes.len());
    }
}
