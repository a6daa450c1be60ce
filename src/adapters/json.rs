//! The JSON shapes of CONTRACT §5, shared by the MQTT and HTTP adapters:
//! command JSON → [`Command`], and [`Outcome`] / [`BoothState`] / [`Event`]
//! → JSON. Nothing outside `adapters` knows these shapes.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use crate::command::{Command, CommandError, ErrorCode, LightValue, Outcome};
use crate::config::scenes::MAX_FADE_MS;
use crate::engine::{BoothState, Event};

/// Largest command payload accepted (bytes).
pub const MAX_PAYLOAD: usize = 64 * 1024;
/// Longest command id accepted (characters).
pub const MAX_ID_LEN: usize = 128;

/// A command as read from JSON: its id (when readable), the action string
/// as written, and the command or why it is invalid.
#[derive(Debug)]
pub struct Parsed {
    pub id: Option<String>,
    pub action: Option<String>,
    pub command: Result<Command, CommandError>,
}

/// Parse a raw payload. Never panics, whatever the bytes.
pub fn parse_command(payload: &[u8]) -> Parsed {
    let bad = |code, msg: &str| Parsed { id: None, action: None, command: Err(CommandError::new(code, msg)) };
    if payload.len() > MAX_PAYLOAD {
        return bad(ErrorCode::InvalidCommand, "payload larger than 64 KiB");
    }
    let Ok(text) = std::str::from_utf8(payload) else {
        return bad(ErrorCode::InvalidJson, "payload is not UTF-8");
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return bad(ErrorCode::InvalidJson, &format!("not valid JSON: {e}")),
    };
    let Value::Object(obj) = value else {
        return bad(ErrorCode::InvalidCommand, "a command must be a JSON object");
    };
    let id = match obj.get("id") {
        Some(Value::String(s)) if !s.is_empty() && s.chars().count() <= MAX_ID_LEN => Some(s.clone()),
        Some(Value::String(_)) => return bad(ErrorCode::InvalidCommand, "`id` must be 1–128 characters"),
        Some(_) => return bad(ErrorCode::InvalidCommand, "`id` must be a string"),
        None => return bad(ErrorCode::InvalidCommand, "missing `id`"),
    };
    let action = obj.get("action").and_then(Value::as_str).map(str::to_string);
    let command = match &action {
        None => Err(CommandError::new(ErrorCode::InvalidCommand, "missing `action` (a string)")),
        Some(a) => command_from(a, &obj),
    };
    Parsed { id, action, command }
}

fn invalid(msg: impl Into<String>) -> CommandError {
    CommandError::new(ErrorCode::InvalidCommand, msg)
}

fn string(obj: &Map<String, Value>, key: &str) -> Result<String, CommandError> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        Some(_) => Err(invalid(format!("`{key}` must be a non-empty string"))),
        None => Err(invalid(format!("missing `{key}`"))),
    }
}

fn fade(obj: &Map<String, Value>) -> Result<Option<Duration>, CommandError> {
    match obj.get("fade_ms") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(ms) if ms <= MAX_FADE_MS as u64 => Ok(Some(Duration::from_millis(ms))),
            _ => Err(invalid(format!("`fade_ms` must be an integer 0–{MAX_FADE_MS}"))),
        },
    }
}

fn int(obj: &Map<String, Value>, key: &str, lo: u64, hi: u64) -> Result<u64, CommandError> {
    match obj.get(key).and_then(Value::as_u64) {
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        _ => Err(invalid(format!("`{key}` must be an integer {lo}–{hi}"))),
    }
}

fn signed(obj: &Map<String, Value>, key: &str) -> Result<f64, CommandError> {
    match obj.get(key) {
        None => Ok(0.0),
        Some(v) => match v.as_f64() {
            Some(x) if (-1.0..=1.0).contains(&x) => Ok(x),
            _ => Err(invalid(format!("`{key}` must be a number -1.0–1.0"))),
        },
    }
}

fn command_from(action: &str, obj: &Map<String, Value>) -> Result<Command, CommandError> {
    Ok(match action {
        "apply_scene" => Command::ApplyScene {
            scene: string(obj, "scene")?,
            fade: fade(obj)?,
            at: match obj.get("at") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => {
                    Some(parse_time(s).ok_or_else(|| invalid("`at` must be an RFC 3339 time, e.g. 2026-11-25T14:00:00Z"))?)
                }
                Some(_) => return Err(invalid("`at` must be an RFC 3339 time string")),
            },
            slot: obj.get("slot").filter(|v| !v.is_null()).cloned(),
        },
        "blackout" => Command::Blackout { fade: fade(obj)? },
        "recall_preset" => Command::RecallPreset { camera: string(obj, "camera")?, preset: int(obj, "preset", 1, 255)? as u8 },
        "store_preset" => Command::StorePreset { camera: string(obj, "camera")?, preset: int(obj, "preset", 1, 255)? as u8 },
        "status" => Command::Status,
        "reload" => Command::Reload,
        "put_scene" => Command::PutScene { scene: string(obj, "scene")?, toml: string(obj, "toml")? },
        "delete_scene" => Command::DeleteScene { scene: string(obj, "scene")? },
        "cancel" => Command::Cancel { target: string(obj, "target")? },
        "jog" => Command::Jog { camera: string(obj, "camera")?, pan: signed(obj, "pan")?, tilt: signed(obj, "tilt")? },
        "jog_stop" => Command::JogStop { camera: string(obj, "camera")? },
        "zoom" => Command::Zoom { camera: string(obj, "camera")?, speed: signed(obj, "speed")? },
        "set_light" => {
            let Some(Value::Object(vals)) = obj.get("values") else {
                return Err(invalid("`values` must be an object, e.g. {\"intensity\": 0.5}"));
            };
            let mut values = BTreeMap::new();
            for (k, v) in vals {
                let lv = match v {
                    Value::Number(n) => LightValue::Number(n.as_f64().unwrap_or(f64::NAN)),
                    Value::String(s) => LightValue::Text(s.clone()),
                    _ => return Err(invalid(format!("`values.{k}` must be a number or a string"))),
                };
                values.insert(k.clone(), lv);
            }
            Command::SetLight { fixture: string(obj, "fixture")?, values, fade: fade(obj)? }
        }
        other => return Err(CommandError::new(ErrorCode::UnknownAction, format!("unknown action `{other}`"))),
    })
}

pub fn parse_time(s: &str) -> Option<SystemTime> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    Some(SystemTime::from(t.with_timezone(&chrono::Utc)))
}

pub fn format_time(t: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The reply JSON of CONTRACT §5.
pub fn reply(id: Option<&str>, action: Option<&str>, outcome: &Outcome, duplicate: bool) -> Value {
    let mut r = json!({
        "id": id,
        "ok": outcome.ok,
        "action": action.unwrap_or(outcome.action),
        "duplicate": duplicate,
        "duration_ms": outcome.duration.as_millis() as u64,
        "devices": outcome.devices.iter().map(|(name, d)| {
            let mut o = json!({"ok": d.ok});
            if let Some(e) = &d.error { o["error"] = json!(e); }
            (name.clone(), o)
        }).collect::<Map<_, _>>(),
    });
    if let Some(scene) = &outcome.scene {
        r["scene"] = json!(scene);
    }
    if let Some(e) = &outcome.error {
        r["error"] = json!({"code": e.code.as_str(), "message": e.message});
    }
    if let Some(data) = &outcome.data {
        r["data"] = data.clone();
    }
    // A scheduled command: acknowledged with `scheduled:true` and its `at`;
    // its result (a second reply, same id) tells how late it started.
    if let Some(at) = outcome.scheduled {
        r["scheduled"] = json!(true);
        r["at"] = json!(format_time(at));
    }
    if let Some(late) = outcome.late {
        r["late_ms"] = json!(late.as_millis() as u64);
    }
    r
}

/// A reply for a payload that never became a command.
pub fn reply_invalid(parsed: &Parsed, error: &CommandError) -> Value {
    json!({
        "id": parsed.id,
        "ok": false,
        "action": parsed.action,
        "duplicate": false,
        "duration_ms": 0,
        "devices": {},
        "error": {"code": error.code.as_str(), "message": error.message},
    })
}

/// What an Art-Net node said in its ArtPollReply (firmware as `major.minor`).
pub fn node(n: &crate::lighting::NodeInfo) -> Value {
    json!({"short_name": n.short_name, "long_name": n.long_name, "firmware": format!("{}.{}", n.firmware >> 8, n.firmware & 0xFF)})
}

/// The retained `state` JSON.
pub fn state(studio: &str, s: &BoothState) -> Value {
    json!({
        "studio": studio,
        "scene": s.scene,
        "scene_label": s.scene_label,
        "slot": s.slot,
        "applied_at": s.applied_at.map(format_time),
        "pending": s.pending().map(pending),
        "schedule": s.schedule.iter().map(pending).collect::<Vec<_>>(),
        "devices": s.devices.iter().map(|(name, h)| {
            let mut d = json!({
                "kind": h.kind.as_str(),
                "online": h.online_json(),
                "status": h.status().as_str(),
                "error": h.error,
                "since": format_time(h.since),
                "identity": h.identity,
            });
            if let Some(n) = &h.node {
                d["node"] = node(n);
            }
            (name.clone(), d)
        }).collect::<Map<_, _>>(),
        "scenes_hash": s.scenes_hash,
        "clock_synced": s.clock_synced,
        "last_failure": s.last_failure.as_ref().map(|f| json!({
            "scene": f.scene,
            "origin": f.origin.as_str(),
            "at": format_time(f.at),
            "failed": f.failed,
        })),
    })
}

/// A scheduled scene in `state`: `pending` (the next) and `schedule` (all).
fn pending(p: &crate::engine::PendingScene) -> Value {
    json!({"id": p.id, "scene": p.scene, "at": format_time(p.at), "slot": p.slot, "origin": p.origin.as_str()})
}

/// One `events` message.
pub fn event(e: &Event) -> Value {
    let at = format_time(SystemTime::now());
    match e {
        Event::DeviceOnline { device } => json!({"event": "device_online", "device": device, "at": at}),
        Event::DeviceOffline { device, reason } => json!({"event": "device_offline", "device": device, "reason": reason, "at": at}),
        Event::SceneApplied { scene, origin, ok, id, failed, superseded } => json!({
            "event": "scene_applied", "scene": scene, "origin": origin.as_str(), "ok": ok, "id": id, "at": at,
            "failed": failed, "superseded": superseded,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contract_example_parses() {
        let p = parse_command(br#"{"id":"c-8f2a","action":"apply_scene","scene":"flash-sale","fade_ms":800,"at":"2026-11-25T14:00:00Z","slot":{"booking":"b-77","creator":"ana"}}"#);
        assert_eq!(p.id.as_deref(), Some("c-8f2a"));
        match p.command.unwrap() {
            Command::ApplyScene { scene, fade, at, slot } => {
                assert_eq!(scene, "flash-sale");
                assert_eq!(fade, Some(Duration::from_millis(800)));
                assert_eq!(at.map(format_time).as_deref(), Some("2026-11-25T14:00:00.000Z"));
                assert_eq!(slot.unwrap()["booking"], "b-77");
            }
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn bad_payloads_get_the_contract_codes() {
        let code = |b: &[u8]| parse_command(b).command.unwrap_err().code;
        assert_eq!(code(b"\xff\xfe"), ErrorCode::InvalidJson);
        assert_eq!(code(b"{not json"), ErrorCode::InvalidJson);
        assert_eq!(code(b"[1,2]"), ErrorCode::InvalidCommand);
        assert_eq!(code(br#"{"action":"status"}"#), ErrorCode::InvalidCommand);
        assert_eq!(code(br#"{"id":"a","action":"dance"}"#), ErrorCode::UnknownAction);
        assert_eq!(code(br#"{"id":"a","action":"apply_scene"}"#), ErrorCode::InvalidCommand);
        assert_eq!(code(br#"{"id":"a","action":"recall_preset","camera":"front","preset":0}"#), ErrorCode::InvalidCommand);
        assert_eq!(code(&vec![b' '; MAX_PAYLOAD + 1]), ErrorCode::InvalidCommand);
        // the id is echoed when it could be read
        assert_eq!(parse_command(br#"{"id":"x-1","action":"dance"}"#).id.as_deref(), Some("x-1"));
    }
}
