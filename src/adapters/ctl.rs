//! `studiod ctl`: the technician's command line, a client of the HTTP API
//! (`POST /api/commands` with a bearer token, `GET /api/…`).
//!
//! Wiring in `main.rs`:
//! ```ignore
//! #[derive(Subcommand)] enum Cmd { …, /// Talk to a running daemon.
//!     Ctl(studiod::adapters::ctl::CtlArgs) }
//! Cmd::Ctl(args) => studiod::adapters::ctl::main(args),
//! ```
//! Exit codes: 0 the command succeeded, 1 the daemon ran it and it failed
//! (or refused it), 2 usage, authentication or connection problems.
//!
//! `anyhow` appears only in [`run_ctl`], the binary-edge function: its
//! errors are all "exit 2 with this message"; the rest uses [`CtlError`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{json, Value};

/// How often a held jog/zoom is repeated: well inside the server's 1 s dead-man.
const REPEAT: Duration = Duration::from_millis(250);

#[derive(Debug, Args)]
pub struct CtlArgs {
    /// Base URL of the daemon's HTTP server.
    #[arg(long, env = "STUDIOD_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// File holding the technician token (default: $STUDIOD_TOKEN_FILE).
    #[arg(long, env = "STUDIOD_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// Print the raw JSON replies instead of a summary.
    #[arg(long, global = true)]
    pub json: bool,
    /// Give up on a request after this many milliseconds.
    #[arg(long, default_value_t = 15_000)]
    pub timeout_ms: u64,
    #[command(subcommand)]
    pub command: CtlCommand,
}

#[derive(Debug, Subcommand)]
pub enum CtlCommand {
    /// List scenes.
    Scenes,
    /// Apply a scene, now or at a slot start (`--at 2026-11-25T14:00:00Z`).
    Apply {
        scene: String,
        #[arg(long)]
        fade_ms: Option<u64>,
        /// RFC 3339 instant to apply it at (up to 7 days ahead).
        #[arg(long)]
        at: Option<String>,
    },
    /// Withdraw a scheduled scene by the id its `state` entry shows.
    Cancel { id: String },
    /// List devices and their health.
    Devices,
    /// Show the booth state (current scene, schedule, devices).
    State,
    /// Recall or store a camera preset.
    Preset {
        #[command(subcommand)]
        op: PresetOp,
    },
    /// Drive a camera's pan/tilt (speeds -1.0…1.0) for a while, then stop.
    #[command(allow_negative_numbers = true)]
    Jog {
        camera: String,
        pan: f64,
        tilt: f64,
        /// How long to move, in milliseconds (at most 60000).
        #[arg(long, default_value_t = 500)]
        ms: u64,
    },
    /// Zoom a camera (speed -1.0 wide … 1.0 tele) for a while, then stop.
    #[command(allow_negative_numbers = true)]
    Zoom {
        camera: String,
        speed: f64,
        #[arg(long, default_value_t = 500)]
        ms: u64,
    },
    /// Set a fixture live: `intensity=0.5 cct=5600 color=#ff8800`.
    Light {
        fixture: String,
        #[arg(required = true, value_name = "KEY=VALUE")]
        values: Vec<String>,
        #[arg(long)]
        fade_ms: Option<u64>,
    },
    /// All lights to zero.
    Blackout {
        #[arg(long)]
        fade_ms: Option<u64>,
    },
    /// Re-read config, profiles and scenes.
    Reload,
}

#[derive(Debug, Subcommand)]
pub enum PresetOp {
    Recall { camera: String, preset: u8 },
    Store { camera: String, preset: u8 },
}

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot read the token file {path}: {source}")]
    TokenFile { path: PathBuf, source: std::io::Error },
    #[error("cannot reach studiod at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("{0}")]
    Refused(String),
}

/// Build a runtime, run, print errors, map to the exit code. For `main.rs`.
pub fn main(args: CtlArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("studiod ctl: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run_ctl(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("studiod ctl: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Run one ctl command. `Ok(0|1)` when the daemon answered; `Err` for usage,
/// authentication or connection problems (the caller exits 2).
pub async fn run_ctl(args: CtlArgs) -> anyhow::Result<ExitCode> {
    let out = exec(&args).await?;
    print!("{}", out.text);
    Ok(if out.ok { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Run one ctl command and return what it would print (tests, embedding).
pub async fn exec(args: &CtlArgs) -> Result<CtlOutput, CtlError> {
    let client = Client::new(args)?;
    execute(&client, &args.command, args.json).await
}

/// What a command printed and whether it succeeded.
#[derive(Debug)]
pub struct CtlOutput {
    pub ok: bool,
    pub text: String,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Client {
    fn new(args: &CtlArgs) -> Result<Client, CtlError> {
        let base = args.url.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(CtlError::Usage(format!("--url must start with http:// (got `{}`)", args.url)));
        }
        let token = match &args.token_file {
            Some(p) => {
                Some(std::fs::read_to_string(p).map_err(|source| CtlError::TokenFile { path: p.clone(), source })?.trim().to_string())
            }
            None => None,
        };
        // Always a direct connection: the daemon is on the booth network, and a
        // desktop proxy setting must not swallow camera stops.
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_millis(args.timeout_ms))
            .build()
            .map_err(|e| CtlError::Connect { url: base.clone(), reason: e.to_string() })?;
        Ok(Client { http, base, token })
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Value), CtlError> {
        let req = req.header("x-studiod-client", "ctl");
        let req = match &self.token {
            Some(t) => req.bearer_auth(t),
            None => req,
        };
        let resp = req.send().await.map_err(|e| CtlError::Connect { url: self.base.clone(), reason: root_cause(&e) })?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        match status {
            401 => Err(CtlError::Refused(format!(
                "not authorised ({}); pass --token-file or set STUDIOD_TOKEN_FILE to the technician token file",
                message(&body).unwrap_or("no token")
            ))),
            403 | 429 => Err(CtlError::Refused(message(&body).unwrap_or("refused").to_string())),
            _ => Ok((status, body)),
        }
    }

    async fn get(&self, path: &str) -> Result<Value, CtlError> {
        let (status, body) = self.send(self.http.get(format!("{}{path}", self.base))).await?;
        if status != 200 {
            return Err(CtlError::Refused(format!("GET {path}: HTTP {status}: {}", message(&body).unwrap_or("unexpected answer"))));
        }
        Ok(body)
    }

    /// Send one command; the reply JSON (200 or 400 both carry one).
    async fn command(&self, cmd: Value) -> Result<Value, CtlError> {
        let (status, body) = self.send(self.http.post(format!("{}/api/commands", self.base)).json(&cmd)).await?;
        if body.get("ok").is_none() {
            return Err(CtlError::Refused(format!("HTTP {status}: {}", message(&body).unwrap_or("unexpected answer"))));
        }
        Ok(body)
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn message(v: &Value) -> Option<&str> {
    v.pointer("/error/message").and_then(Value::as_str)
}

/// Parse `key=value` light values: numbers stay numbers, the rest is text (`#ff8800`).
pub fn light_values(pairs: &[String]) -> Result<BTreeMap<String, Value>, CtlError> {
    let mut out = BTreeMap::new();
    for p in pairs {
        let Some((k, v)) = p.split_once('=').filter(|(k, v)| !k.is_empty() && !v.is_empty()) else {
            return Err(CtlError::Usage(format!("`{p}`: light values are KEY=VALUE, e.g. intensity=0.5 cct=5600 color=#ff8800")));
        };
        let value = match v.parse::<f64>() {
            Ok(x) if x.is_finite() => json!(x),
            _ => json!(v),
        };
        out.insert(k.to_string(), value);
    }
    Ok(out)
}

fn with_fade(mut v: Value, fade_ms: Option<u64>) -> Value {
    if let Some(ms) = fade_ms {
        v["fade_ms"] = json!(ms);
    }
    v
}

fn check_speed(name: &str, x: f64) -> Result<(), CtlError> {
    if (-1.0..=1.0).contains(&x) {
        Ok(())
    } else {
        Err(CtlError::Usage(format!("{name} must be between -1.0 and 1.0 (got {x})")))
    }
}

/// Run a command against the daemon and render its output.
async fn execute(c: &Client, cmd: &CtlCommand, raw: bool) -> Result<CtlOutput, CtlError> {
    let single = |v: Value| async move { c.command(v).await };
    let reply = match cmd {
        CtlCommand::Scenes => return Ok(listing(c.get("/api/scenes").await?, raw, render_scenes)),
        CtlCommand::Devices => return Ok(listing(c.get("/api/devices").await?, raw, render_devices)),
        CtlCommand::State => return Ok(listing(c.get("/api/state").await?, raw, render_state)),
        CtlCommand::Apply { scene, fade_ms, at } => {
            let mut cmd = with_fade(json!({"action": "apply_scene", "scene": scene}), *fade_ms);
            if let Some(at) = at {
                cmd["at"] = json!(at);
            }
            single(cmd).await?
        }
        CtlCommand::Cancel { id } => single(json!({"action": "cancel", "target": id})).await?,
        CtlCommand::Preset { op: PresetOp::Recall { camera, preset } } => {
            single(json!({"action": "recall_preset", "camera": camera, "preset": preset})).await?
        }
        CtlCommand::Preset { op: PresetOp::Store { camera, preset } } => {
            single(json!({"action": "store_preset", "camera": camera, "preset": preset})).await?
        }
        CtlCommand::Jog { camera, pan, tilt, ms } => {
            check_speed("pan", *pan)?;
            check_speed("tilt", *tilt)?;
            let go = json!({"action": "jog", "camera": camera, "pan": pan, "tilt": tilt});
            held(c, go, json!({"action": "jog_stop", "camera": camera}), *ms).await?
        }
        CtlCommand::Zoom { camera, speed, ms } => {
            check_speed("speed", *speed)?;
            let go = json!({"action": "zoom", "camera": camera, "speed": speed});
            held(c, go, json!({"action": "zoom", "camera": camera, "speed": 0.0}), *ms).await?
        }
        CtlCommand::Light { fixture, values, fade_ms } => {
            let values = light_values(values)?;
            single(with_fade(json!({"action": "set_light", "fixture": fixture, "values": values}), *fade_ms)).await?
        }
        CtlCommand::Blackout { fade_ms } => single(with_fade(json!({"action": "blackout"}), *fade_ms)).await?,
        CtlCommand::Reload => single(json!({"action": "reload"})).await?,
    };
    let ok = reply.get("ok").and_then(Value::as_bool).unwrap_or(false);
    let text = if raw { format!("{reply}\n") } else { render_reply(&reply) };
    Ok(CtlOutput { ok, text })
}

/// Move, repeat the move so the server's dead-man does not stop it, then
/// stop. The stop is sent even when the move failed; its reply is the one shown
/// only when the move itself succeeded.
async fn held(c: &Client, go: Value, stop: Value, ms: u64) -> Result<Value, CtlError> {
    let until = tokio::time::Instant::now() + Duration::from_millis(ms.min(60_000));
    let first = c.command(go.clone()).await?;
    if first.get("ok").and_then(Value::as_bool) == Some(true) {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + REPEAT, REPEAT);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(until) => break,
                _ = tick.tick() => { c.command(go.clone()).await?; }
            }
        }
    }
    let stopped = c.command(stop).await?;
    Ok(if first.get("ok").and_then(Value::as_bool) == Some(true) { stopped } else { first })
}

fn listing(v: Value, raw: bool, render: fn(&Value) -> String) -> CtlOutput {
    CtlOutput { ok: true, text: if raw { format!("{v}\n") } else { render(&v) } }
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

fn render_scenes(v: &Value) -> String {
    let mut out = String::new();
    for sc in v["scenes"].as_array().into_iter().flatten() {
        out.push_str(&format!("{:<20} {}\n", s(sc, "name"), s(sc, "label")));
    }
    if out.is_empty() {
        out.push_str("(no scenes)\n");
    }
    out
}

fn health(d: &Value) -> String {
    let node = d
        .get("node")
        .filter(|n| n.is_object())
        .map(|n| format!("  ({} {}, firmware {})", s(n, "short_name"), s(n, "long_name"), s(n, "firmware")));
    let h = match (d.get("status").and_then(Value::as_str), d.get("online").and_then(Value::as_bool)) {
        (Some("unverified"), _) => "unverified".into(),
        (_, Some(true)) => "online".into(),
        (_, Some(false)) => format!("OFFLINE  {}", d.get("error").and_then(Value::as_str).unwrap_or("")),
        (_, None) => "unknown".into(),
    };
    h + node.as_deref().unwrap_or("")
}

fn render_devices(v: &Value) -> String {
    let mut out = String::new();
    for d in v["devices"].as_array().into_iter().flatten() {
        out.push_str(&format!("{:<12} {:<8} {:<28} {}\n", s(d, "name"), s(d, "kind"), s(d, "profile"), health(d)));
    }
    out
}

fn render_state(v: &Value) -> String {
    let mut out = format!("studio  {}\nscene   {}", s(v, "studio"), v.get("scene").and_then(Value::as_str).unwrap_or("(none)"));
    if let Some(l) = v.get("scene_label").and_then(Value::as_str) {
        out.push_str(&format!(" ({l})"));
    }
    out.push('\n');
    for p in v["schedule"].as_array().into_iter().flatten() {
        out.push_str(&format!("at {}  {:<20} id {}\n", s(p, "at"), s(p, "scene"), s(p, "id")));
    }
    for (name, d) in v["devices"].as_object().into_iter().flatten() {
        out.push_str(&format!("  {:<12} {}\n", name, health(d)));
    }
    out
}

fn render_reply(r: &Value) -> String {
    let action = s(r, "action");
    let what = match r.get("scene").and_then(Value::as_str) {
        Some(sc) => format!("{action} {sc}"),
        None => action.to_string(),
    };
    let mut out = if r["scheduled"].as_bool() == Some(true) {
        format!("{what}: scheduled for {} (id {})\n", s(r, "at"), s(r, "id"))
    } else if r["ok"].as_bool() == Some(true) {
        format!("{what}: ok ({} ms)\n", r["duration_ms"].as_u64().unwrap_or(0))
    } else {
        format!("{what}: FAILED: {}\n", message(r).unwrap_or("unknown error"))
    };
    for (name, d) in r["devices"].as_object().into_iter().flatten() {
        if d["ok"].as_bool() != Some(true) {
            out.push_str(&format!("  {name}: {}\n", d.get("error").and_then(Value::as_str).unwrap_or("failed")));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Wrap {
        #[command(flatten)]
        args: CtlArgs,
    }

    #[test]
    fn parses_negative_jog_and_light_values() {
        let w = Wrap::try_parse_from(["ctl", "jog", "front", "-0.5", "0.25", "--ms", "300"]).unwrap();
        match w.args.command {
            CtlCommand::Jog { pan, tilt, ms, .. } => assert_eq!((pan, tilt, ms), (-0.5, 0.25, 300)),
            c => panic!("{c:?}"),
        }
        let v = light_values(&["intensity=0.5".into(), "cct=5600".into(), "color=#ff8800".into()]).unwrap();
        assert_eq!(v["intensity"], json!(0.5));
        assert_eq!(v["color"], json!("#ff8800"));
        assert!(light_values(&["intensity".into()]).is_err());
    }

    #[test]
    fn renders_the_three_health_states_and_the_node() {
        let v = json!({"devices": [
            {"name": "node1", "kind": "artnet", "online": true, "status": "online", "node": {"short_name": "n1", "long_name": "Node one", "firmware": "1.7"}},
            {"name": "wash", "kind": "sacn", "online": null, "status": "unverified"},
            {"name": "key", "kind": "fixture", "online": false, "status": "offline", "error": "light node `node1` offline: no ArtPollReply for 10 s"},
        ]});
        let t = render_devices(&v);
        assert!(t.contains("online  (n1 Node one, firmware 1.7)"), "{t}");
        assert!(t.contains("sacn") && t.contains("unverified"), "{t}");
        assert!(t.contains("OFFLINE  light node `node1` offline: no ArtPollReply for 10 s"), "{t}");
    }

    #[test]
    fn renders_failed_devices() {
        let r = json!({"ok": false, "action": "apply_scene", "scene": "x", "devices": {"side": {"ok": false, "error": "camera offline"}}, "error": {"code": "device_failed", "message": "1 of 1 devices failed"}});
        let t = render_reply(&r);
        assert!(t.contains("apply_scene x: FAILED: 1 of 1 devices failed"), "{t}");
        assert!(t.contains("side: camera offline"), "{t}");
    }

    #[test]
    fn renders_the_schedule_and_a_scheduled_acknowledgement() {
        let st = json!({"studio": "la-03", "scene": "house", "devices": {}, "schedule": [
            {"id": "c-1", "scene": "intro", "at": "2026-11-25T14:00:00.000Z"},
            {"id": "c-2", "scene": "flash-sale", "at": "2026-11-25T15:00:00.000Z"},
        ]});
        let t = render_state(&st);
        assert!(t.contains("at 2026-11-25T14:00:00.000Z  intro                id c-1\n"), "{t}");
        assert!(t.contains("flash-sale"), "{t}");
        let ack = json!({"id": "c-1", "ok": true, "action": "apply_scene", "scene": "intro", "scheduled": true, "at": "2026-11-25T14:00:00.000Z", "devices": {}});
        assert_eq!(render_reply(&ack), "apply_scene intro: scheduled for 2026-11-25T14:00:00.000Z (id c-1)\n");
        let w = Wrap::try_parse_from(["ctl", "apply", "intro", "--at", "2026-11-25T14:00:00Z"]).unwrap();
        assert!(matches!(w.args.command, CtlCommand::Apply { at: Some(ref a), .. } if a == "2026-11-25T14:00:00Z"));
        let w = Wrap::try_parse_from(["ctl", "cancel", "c-1"]).unwrap();
        assert!(matches!(w.args.command, CtlCommand::Cancel { ref id } if id == "c-1"));
    }
}
