//! The HTTP adapter against a fake engine, over real loopback sockets:
//! every endpoint and role, login/lockout, CSRF, cookie flags, SSE, the
//! dead-man stop, metrics, secrets kept out of logs, and `studiod ctl`.

mod http_support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use http_support::{example_config, spawn, Fake};
use studiod::adapters::http::{LockoutPolicy, Metrics, Options, Secret, Server};
use studiod::command::Command;
use studiod::config::model::Config;
use studiod::engine::Request;

// Long enough that it cannot turn up by chance in a log line (a port, an
// id, a timestamp) and make `secrets_never_reach_the_logs` fail for nothing.
const PIN: &str = "47110358";
const TOKEN: &str = "tech-Secret-7f3a9c";
const WAIT: Duration = Duration::from_secs(5);

struct H {
    base: String,
    fake: Fake,
    http: reqwest::Client,
    cancel: CancellationToken,
    cfg_tx: watch::Sender<Arc<Config>>,
    metrics: Metrics,
    server: Option<tokio::task::JoinHandle<Result<(), studiod::adapters::http::HttpError>>>,
}

impl Drop for H {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn start_with(opts: Options) -> H {
    let (server, fake, cfg_tx, metrics) = http_support::bind_server(opts, PIN, TOKEN).await;
    let base = server.url();
    let cancel = CancellationToken::new();
    let server = Some(tokio::spawn(server.run(cancel.clone())));
    let http = reqwest::Client::builder().no_proxy().timeout(WAIT).build().unwrap();
    H { base, fake, http, cancel, cfg_tx, metrics, server }
}

async fn start() -> H {
    start_with(Options::default()).await
}

struct Login {
    status: StatusCode,
    set_cookie: Option<String>,
    body: Value,
}

impl Login {
    /// `studiod_session=…` for a Cookie header.
    fn cookie(&self) -> String {
        self.set_cookie.as_deref().unwrap().split(';').next().unwrap().to_string()
    }
    fn csrf(&self) -> String {
        self.body["csrf"].as_str().unwrap().to_string()
    }
}

impl H {
    fn url(&self, p: &str) -> String {
        format!("{}{p}", self.base)
    }

    async fn login(&self, body: Value) -> Login {
        let r = self.http.post(self.url("/api/login")).header("x-studiod-csrf", "1").json(&body).send().await.unwrap();
        let status = r.status();
        let set_cookie = r.headers().get("set-cookie").map(|v| v.to_str().unwrap().to_string());
        Login { status, set_cookie, body: r.json().await.unwrap() }
    }

    async fn creator(&self) -> Login {
        let l = self.login(json!({"pin": PIN})).await;
        assert_eq!(l.status, 200, "{:?}", l.body);
        l
    }

    async fn cmd_cookie(&self, l: &Login, cmd: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(self.url("/api/commands"))
            .header("cookie", l.cookie())
            .header("x-studiod-csrf", l.csrf())
            .json(&cmd)
            .send()
            .await
            .unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn cmd_bearer(&self, cmd: Value) -> (StatusCode, Value) {
        let r = self.http.post(self.url("/api/commands")).bearer_auth(TOKEN).json(&cmd).send().await.unwrap();
        (r.status(), r.json().await.unwrap_or(Value::Null))
    }

    async fn get_bearer(&self, p: &str) -> (StatusCode, String) {
        let r = self.http.get(self.url(p)).bearer_auth(TOKEN).send().await.unwrap();
        (r.status(), r.text().await.unwrap())
    }

    /// The next request the engine received matching `pred` (others skipped).
    async fn expect_request(&mut self, what: &str, pred: impl Fn(&Request) -> bool) -> Request {
        let fut = async {
            loop {
                let r = self.fake.requests.recv().await.expect("engine gone");
                if pred(&r) {
                    return r;
                }
            }
        };
        timeout(WAIT, fut).await.unwrap_or_else(|_| panic!("engine never received {what}"))
    }
}

#[tokio::test]
async fn pages_and_assets_are_public_and_locked_down() {
    let h = start().await;
    for p in ["/", "/tech"] {
        let r = h.http.get(h.url(p)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"), "{csp}");
        let html = r.text().await.unwrap();
        assert!(html.contains("<!doctype html>"), "{p}");
        assert!(!html.contains("http://") && !html.contains("https://"), "{p} must not load anything from elsewhere");
    }
    for a in ["studiod.css", "common.js", "creator.js", "tech.js", "icon.svg"] {
        let r = h.http.get(h.url(&format!("/assets/{a}"))).send().await.unwrap();
        assert_eq!(r.status(), 200, "{a}");
    }
    assert_eq!(h.http.get(h.url("/assets/..%2Fsecret")).send().await.unwrap().status(), 404);
    let r = h.http.get(h.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "not_found");
}

#[tokio::test]
async fn everything_else_needs_credentials() {
    let h = start().await;
    for p in ["/api/state", "/api/scenes", "/api/devices", "/api/model", "/api/session", "/api/events", "/metrics"] {
        let r = h.http.get(h.url(p)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{p}");
        assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "unauthorized", "{p}");
    }
    let r = h.http.post(h.url("/api/commands")).json(&json!({"action": "blackout"})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // a stale/forged cookie is no better
    let r = h.http.get(h.url("/api/state")).header("cookie", "studiod_session=00112233445566778899aabbccddeeff").send().await.unwrap();
    assert_eq!(r.status(), 401);
    let r = h.http.get(h.url("/api/state")).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn creator_session_cookie_and_role() {
    let mut h = start().await;
    let l = h.creator().await;
    let sc = l.set_cookie.clone().unwrap();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age="] {
        assert!(sc.contains(flag), "{flag} missing in {sc}");
    }
    let token = l.cookie().split_once('=').unwrap().1.to_string();
    assert_eq!(token.len(), 32);
    assert!(token.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(l.body["role"], "creator");
    assert_ne!(l.csrf(), token);

    // reads
    for p in ["/api/state", "/api/scenes", "/api/devices", "/api/model", "/api/session"] {
        let r = h.http.get(h.url(p)).header("cookie", l.cookie()).send().await.unwrap();
        assert_eq!(r.status(), 200, "{p}");
    }
    let sess: Value = h.http.get(h.url("/api/session")).header("cookie", l.cookie()).send().await.unwrap().json().await.unwrap();
    assert_eq!(sess["role"], "creator");
    assert_eq!(sess["csrf"], l.csrf());

    // apply a scene: no id given → one is generated
    let (st, reply) = h.cmd_cookie(&l, json!({"action": "apply_scene", "scene": "flash-sale"})).await;
    assert_eq!(st, 200, "{reply}");
    assert_eq!(reply["ok"], true);
    assert_eq!(reply["scene"], "flash-sale");
    assert!(reply["id"].as_str().unwrap().starts_with("http-"), "{reply}");
    let req = h.expect_request("apply_scene", |r| matches!(r.command, Command::ApplyScene { .. })).await;
    assert_eq!(req.origin, studiod::command::Origin::Http);
    assert_eq!(req.id.as_deref(), reply["id"].as_str());

    // a technician's actions are refused with 403, and never reach the engine
    for cmd in [
        json!({"action": "blackout"}),
        json!({"action": "jog", "camera": "front", "pan": 0.5}),
        json!({"action": "put_scene", "scene": "x", "toml": "label = \"x\""}),
        json!({"action": "reload"}),
    ] {
        let (st, body) = h.cmd_cookie(&l, cmd.clone()).await;
        assert_eq!(st, 403, "{cmd}: {body}");
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let r = h.http.get(h.url("/metrics")).header("cookie", l.cookie()).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // the engine saw nothing after the scene
    let (_, reply) = h.cmd_cookie(&l, json!({"id": "probe-1", "action": "status"})).await;
    assert_eq!(reply["id"], "probe-1");
    let next = h.expect_request("status", |_| true).await;
    assert!(matches!(next.command, Command::Status), "{next:?}");

    // logout ends the session
    let r = h.http.post(h.url("/api/logout")).header("cookie", l.cookie()).header("x-studiod-csrf", l.csrf()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    let r = h.http.get(h.url("/api/state")).header("cookie", l.cookie()).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn csrf_is_enforced_for_cookie_sessions_only() {
    let mut h = start().await;
    let l = h.creator().await;
    let cmd = json!({"action": "apply_scene", "scene": "house"});
    // no header
    let r = h.http.post(h.url("/api/commands")).header("cookie", l.cookie()).json(&cmd).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "csrf");
    // wrong token
    let r =
        h.http.post(h.url("/api/commands")).header("cookie", l.cookie()).header("x-studiod-csrf", "guess").json(&cmd).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // right token, foreign Origin
    let r = h
        .http
        .post(h.url("/api/commands"))
        .header("cookie", l.cookie())
        .header("x-studiod-csrf", l.csrf())
        .header("origin", "http://evil.example")
        .json(&cmd)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    // login without the custom header (a cross-site form post)
    let r = h.http.post(h.url("/api/login")).json(&json!({"pin": PIN})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // bearer requests need no CSRF header
    let (st, _) = h.cmd_bearer(cmd.clone()).await;
    assert_eq!(st, 200);
    // only that last one reached the engine
    let first = h.expect_request("any", |_| true).await;
    assert_eq!(first.origin, studiod::command::Origin::Http);
    assert!(h.fake.requests.try_recv().is_err());
}

#[tokio::test]
async fn technician_may_do_everything() {
    let mut h = start().await;
    for p in ["/api/state", "/api/scenes", "/api/devices", "/api/model", "/api/session"] {
        assert_eq!(h.get_bearer(p).await.0, 200, "{p}");
    }
    let (_, scenes) = h.get_bearer("/api/scenes").await;
    let scenes: Value = serde_json::from_str(&scenes).unwrap();
    let flash = scenes["scenes"].as_array().unwrap().iter().find(|s| s["name"] == "flash-sale").unwrap();
    assert_eq!(flash["label"], "Flash sale");
    let (_, devices) = h.get_bearer("/api/devices").await;
    let devices: Value = serde_json::from_str(&devices).unwrap();
    let front = devices["devices"].as_array().unwrap().iter().find(|d| d["name"] == "front").unwrap();
    assert_eq!(front["kind"], "camera");
    assert_eq!(front["online"], true);
    assert!(front["preset_count"].as_u64().unwrap() >= 1);
    let (_, model) = h.get_bearer("/api/model").await;
    let model: Value = serde_json::from_str(&model).unwrap();
    assert_eq!(model["studio"], "la-03");
    // scene looks in scene-file units (the inverse of the scene loader's conversion)
    assert_eq!(model["looks"]["flash-sale"]["lights"]["backdrop"]["color"], "#ff8800");
    assert_eq!(model["looks"]["flash-sale"]["lights"]["key"]["intensity"], 1.0);
    assert_eq!(model["looks"]["flash-sale"]["cameras"]["front"]["preset"], 4);
    assert!(!model["fixtures"].as_array().unwrap().is_empty());

    for (cmd, want) in [
        (json!({"action": "blackout"}), "blackout"),
        (json!({"action": "recall_preset", "camera": "front", "preset": 2}), "recall_preset"),
        (json!({"action": "store_preset", "camera": "front", "preset": 3}), "store_preset"),
        (json!({"action": "zoom", "camera": "front", "speed": 0.0}), "zoom"),
        (json!({"action": "set_light", "fixture": "key", "values": {"intensity": 0.4}}), "set_light"),
        (json!({"action": "put_scene", "scene": "my-look", "toml": "label = \"Mine\"\n"}), "put_scene"),
        (json!({"action": "delete_scene", "scene": "my-look"}), "delete_scene"),
        (json!({"action": "reload"}), "reload"),
    ] {
        let (st, reply) = h.cmd_bearer(cmd.clone()).await;
        assert_eq!(st, 200, "{cmd}: {reply}");
        assert_eq!(reply["ok"], true, "{reply}");
        assert_eq!(reply["action"], want);
        let r = h.expect_request(want, |_| true).await;
        assert_eq!(r.command.action(), want);
    }
    // a device failure is a reply with ok:false and the device's reason
    h.fake.failing.lock().unwrap().insert("side".into(), "camera offline: no ACK within 200 ms".into());
    let (st, reply) = h.cmd_bearer(json!({"id": "c-1", "action": "apply_scene", "scene": "flash-sale"})).await;
    assert_eq!(st, 200);
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["error"]["code"], "device_failed");
    assert_eq!(reply["devices"]["side"]["error"], "camera offline: no ACK within 200 ms");
    // invalid commands: the contract's codes, HTTP 400, nothing executed
    for (body, code) in [
        ("{not json", "invalid_json"),
        (r#"{"action":"dance"}"#, "unknown_action"),
        (r#"{"action":"apply_scene"}"#, "invalid_command"),
        (r#"{"action":"put_scene","scene":"Bad Name!","toml":"label = \"x\""}"#, "invalid_command"),
    ] {
        let r = h
            .http
            .post(h.url("/api/commands"))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], code, "{body}: {v}");
    }
    // refused by the engine for what it names: 400 too (the status follows the code)
    let (st, reply) = h.cmd_bearer(json!({"action": "apply_scene", "scene": "no-such"})).await;
    assert_eq!(st, 400);
    assert_eq!(reply["error"]["code"], "unknown_scene");
    // technician login with the token gives a cookie session too
    let l = h.login(json!({"token": TOKEN})).await;
    assert_eq!(l.status, 200);
    assert_eq!(l.body["role"], "technician");
    let (st, _) = h.cmd_cookie(&l, json!({"action": "blackout"})).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn wrong_pins_lock_the_client_out() {
    let h = start().await;
    for left in (1..=4).rev() {
        let l = h.login(json!({"pin": "0000"})).await;
        assert_eq!(l.status, 401);
        assert_eq!(l.body["error"]["code"], "wrong_pin");
        assert_eq!(l.body["error"]["tries_left"], left);
        assert!(l.set_cookie.is_none());
    }
    let l = h.login(json!({"pin": "0000"})).await;
    assert_eq!(l.status, 429, "{}", l.body);
    assert_eq!(l.body["error"]["code"], "locked");
    // now even the right PIN is refused, with Retry-After
    let r = h.http.post(h.url("/api/login")).header("x-studiod-csrf", "1").json(&json!({"pin": PIN})).send().await.unwrap();
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    // the token has its own budget: PIN guessing never refuses it
    let r = h.http.get(h.url("/api/state")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // wrong tokens lock this address out of the token in turn
    for _ in 0..5 {
        h.http.get(h.url("/api/state")).bearer_auth("wrong").send().await.unwrap();
    }
    let r = h.http.get(h.url("/api/state")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(h.metrics.get("studiod_http_auth_failures_total", &[("reason", "wrong_pin")]) >= 5.0);
}

#[tokio::test]
async fn lockout_ends_after_its_time() {
    let opts = Options {
        lockout: LockoutPolicy { max_failures: 2, lockout: Duration::from_millis(300), ..LockoutPolicy::default() },
        ..Options::default()
    };
    let h = start_with(opts).await;
    h.login(json!({"pin": "1"})).await;
    assert_eq!(h.login(json!({"pin": "2"})).await.status, 429);
    // poll (bounded) until the lockout has passed; no fixed sleep
    let ok = timeout(WAIT, async {
        loop {
            let l = h.login(json!({"pin": PIN})).await;
            if l.status == 200 {
                return;
            }
            assert_eq!(l.status, 429);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "lockout never ended");
}

#[tokio::test]
async fn disabled_role_is_refused() {
    let cfg = example_config();
    let fake = spawn(cfg.clone());
    let (_tx, rx) = watch::channel(cfg);
    let server = Server::bind_with_secrets(
        "127.0.0.1:0".parse().unwrap(),
        None,
        Some(Secret::from_string(TOKEN)),
        rx,
        fake.handle.clone(),
        Metrics::new(),
        Options::default(),
    )
    .await
    .unwrap();
    let url = server.url();
    let cancel = CancellationToken::new();
    tokio::spawn(server.run(cancel.clone()));
    let r = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{url}/api/login"))
        .header("x-studiod-csrf", "1")
        .json(&json!({"pin": "1234"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["error"]["code"], "role_disabled");
    cancel.cancel();
}

#[tokio::test]
async fn secrets_come_from_files() {
    let dir = tempfile::tempdir().unwrap();
    let pin = dir.path().join("pin");
    let tok = dir.path().join("token");
    std::fs::write(&pin, "2468\n").unwrap();
    std::fs::write(&tok, "  t0ken \n").unwrap();
    let cfg = example_config();
    let fake = spawn(cfg.clone());
    let (_tx, rx) = watch::channel(cfg.clone());
    let http =
        studiod::config::model::Http { listen: "127.0.0.1:0".parse().unwrap(), creator_pin_file: Some(pin), tech_token_file: Some(tok) };
    let server = Server::bind(&http, rx.clone(), fake.handle.clone(), Metrics::new(), Options::default()).await.unwrap();
    let url = server.url();
    let cancel = CancellationToken::new();
    tokio::spawn(server.run(cancel.clone()));
    let c = reqwest::Client::builder().no_proxy().build().unwrap();
    let r = c.post(format!("{url}/api/login")).header("x-studiod-csrf", "1").json(&json!({"pin": "2468"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = c.get(format!("{url}/api/state")).bearer_auth("t0ken").send().await.unwrap();
    assert_eq!(r.status(), 200);
    cancel.cancel();
    // a configured but missing file is an error that names the file, not its contents
    let missing = studiod::config::model::Http {
        listen: "127.0.0.1:0".parse().unwrap(),
        creator_pin_file: Some(dir.path().join("nope")),
        tech_token_file: None,
    };
    let err = Server::bind(&missing, rx, fake.handle.clone(), Metrics::new(), Options::default()).await.err().unwrap();
    assert!(err.to_string().contains("creator PIN file"), "{err}");
}

/// Read an SSE response until `needle` shows up (bounded by `WAIT`).
async fn read_until(resp: &mut reqwest::Response, buf: &mut String, needle: &str) {
    let found = http_support::read_stream_until(resp, buf, WAIT, |b| b.contains(needle)).await;
    assert!(found, "no {needle:?} within {WAIT:?}; got {buf}");
}

#[tokio::test]
async fn sse_pushes_state_events_and_model() {
    let h = start().await;
    let l = h.creator().await;
    let mut resp = h.http.get(h.url("/api/events")).header("cookie", l.cookie()).timeout(Duration::from_secs(30)).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut buf = String::new();
    read_until(&mut resp, &mut buf, "event: model").await;
    read_until(&mut resp, &mut buf, "event: state").await;
    assert!(buf.contains("\"studio\":\"la-03\""));
    // a scene applied elsewhere (MQTT): the engine changes the state
    h.fake.state.send_modify(|s| {
        s.scene = Some("intro".into());
        s.scene_label = Some("Intro".into());
    });
    read_until(&mut resp, &mut buf, "\"scene\":\"intro\"").await;
    // a device going offline arrives as an event
    http_support::set_online(&h.fake, "side", false, "no ACK within 200 ms");
    read_until(&mut resp, &mut buf, "\"event\":\"device_offline\"").await;
    // a reload with a new config sends a fresh model
    buf.clear();
    h.cfg_tx.send_modify(|_| {});
    read_until(&mut resp, &mut buf, "event: model").await;
    assert_eq!(h.metrics.get("studiod_http_sse_clients", &[]), 1.0);
    drop(resp);
}

#[tokio::test]
async fn sse_ends_when_its_session_is_logged_out() {
    let h = start_with(Options { sse_keepalive: Duration::from_millis(100), ..Options::default() }).await;
    let l = h.creator().await;
    let mut resp = h.http.get(h.url("/api/events")).header("cookie", l.cookie()).timeout(Duration::from_secs(30)).send().await.unwrap();
    let mut buf = String::new();
    read_until(&mut resp, &mut buf, "event: state").await;
    let r = h.http.post(h.url("/api/logout")).header("cookie", l.cookie()).header("x-studiod-csrf", l.csrf()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let ended = timeout(WAIT, async { while let Ok(Some(_)) = resp.chunk().await {} }).await;
    assert!(ended.is_ok(), "stream outlived its session");
}

#[tokio::test]
async fn sse_ends_on_shutdown() {
    let h = start().await;
    let mut resp = h.http.get(h.url("/api/events")).bearer_auth(TOKEN).timeout(Duration::from_secs(30)).send().await.unwrap();
    let mut buf = String::new();
    read_until(&mut resp, &mut buf, "event: state").await;
    h.cancel.cancel();
    let ended = timeout(WAIT, async { while let Ok(Some(_)) = resp.chunk().await {} }).await;
    assert!(ended.is_ok(), "SSE stream kept the server from shutting down");
}

#[tokio::test]
async fn deadman_stops_a_jog_when_keepalives_stop() {
    let mut h = start().await;
    let (st, reply) = h.cmd_bearer(json!({"action": "jog", "camera": "front", "pan": -0.5, "tilt": 0.25})).await;
    assert_eq!((st.as_u16(), &reply["ok"]), (200, &json!(true)), "{reply}");
    let jog = h.expect_request("jog", |_| true).await;
    assert!(matches!(jog.command, Command::Jog { ref camera, pan, tilt } if camera == "front" && pan == -0.5 && tilt == 0.25));
    // no repeat and no stop from the client: the server stops the camera itself
    let started = tokio::time::Instant::now();
    let stop = h.expect_request("jog_stop", |r| matches!(&r.command, Command::JogStop { camera } if camera == "front")).await;
    assert!(stop.id.as_deref().unwrap().starts_with("deadman-"));
    assert!(started.elapsed() >= Duration::from_millis(500), "stopped too early");
    assert_eq!(h.metrics.get("studiod_http_deadman_stops_total", &[("camera", "front")]), 1.0);
}

#[tokio::test]
async fn deadman_stops_a_zoom_when_keepalives_stop() {
    let mut h = start().await;
    let (st, reply) = h.cmd_bearer(json!({"action": "zoom", "camera": "side", "speed": -0.4})).await;
    assert_eq!((st.as_u16(), &reply["ok"]), (200, &json!(true)), "{reply}");
    h.expect_request("zoom", |r| matches!(&r.command, Command::Zoom { speed, .. } if *speed == -0.4)).await;
    // A lens zooming with nobody holding the button is stopped like a jog.
    let started = tokio::time::Instant::now();
    let stop =
        h.expect_request("zoom stop", |r| matches!(&r.command, Command::Zoom { camera, speed } if camera == "side" && *speed == 0.0)).await;
    assert!(stop.id.as_deref().unwrap().starts_with("deadman-"), "{stop:?}");
    assert!(started.elapsed() >= Duration::from_millis(500), "stopped too early");
    assert_eq!(h.metrics.get("studiod_http_deadman_stops_total", &[("camera", "side")]), 1.0);
}

#[tokio::test]
async fn deadman_is_fed_by_repeats_and_disarmed_by_stop() {
    let mut h = start_with(Options { deadman_timeout: Duration::from_millis(600), ..Options::default() }).await;
    // repeats every 200 ms for ~1.2 s (twice the timeout): no dead-man stop in between
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    for _ in 0..6 {
        tick.tick().await;
        h.cmd_bearer(json!({"action": "zoom", "camera": "side", "speed": 0.7})).await;
    }
    let mut seen = vec![];
    while let Ok(r) = h.fake.requests.try_recv() {
        seen.push(r.command);
    }
    assert!(seen.iter().all(|c| matches!(c, Command::Zoom { speed, .. } if *speed == 0.7)), "{seen:?}");
    // an explicit stop disarms it: the next request is ours, not a dead-man stop
    h.cmd_bearer(json!({"action": "zoom", "camera": "side", "speed": 0})).await;
    let r = h.expect_request("zoom stop", |_| true).await;
    assert!(r.id.as_deref().unwrap().starts_with("http-"), "{r:?}");
    // a jog on an unknown camera is refused and not watched
    let (_, reply) = h.cmd_bearer(json!({"action": "jog", "camera": "nope", "pan": 1})).await;
    assert_eq!(reply["error"]["code"], "unknown_device");
    h.cmd_bearer(json!({"id": "marker", "action": "status"})).await;
    let mut after = vec![];
    let got = timeout(Duration::from_millis(1500), async {
        loop {
            let r = h.fake.requests.recv().await.unwrap();
            after.push(r.command.clone());
            // Any stop the server sends by itself (jog or zoom).
            if r.id.as_deref().is_some_and(|id| id.starts_with("deadman-")) {
                return;
            }
        }
    })
    .await;
    assert!(got.is_err(), "unexpected dead-man stop: {after:?}");
}

#[tokio::test]
async fn shutdown_stops_running_moves() {
    let mut h = start_with(Options { deadman_timeout: Duration::from_secs(30), ..Options::default() }).await;
    h.cmd_bearer(json!({"action": "jog", "camera": "overhead", "tilt": 1})).await;
    h.expect_request("jog", |_| true).await;
    // `run` returns only after the stop was answered
    let server = h.server.take().unwrap();
    h.cancel.cancel();
    timeout(WAIT, server).await.expect("server did not shut down").unwrap().unwrap();
    let stop = h.fake.requests.try_recv().expect("no stop before run returned");
    assert!(matches!(&stop.command, Command::JogStop { camera } if camera == "overhead"), "{stop:?}");
}

#[tokio::test]
async fn metrics_count_requests_and_commands() {
    let h = start().await;
    h.cmd_bearer(json!({"action": "apply_scene", "scene": "house"})).await;
    h.cmd_bearer(json!({"action": "apply_scene", "scene": "no-such"})).await;
    let (st, text) = h.get_bearer("/metrics").await;
    assert_eq!(st, 200);
    assert!(text.contains("# TYPE studiod_http_requests_total counter"), "{text}");
    assert!(text.contains("studiod_http_requests_total{route=\"/api/commands\",status=\"200\"} 1"), "{text}");
    assert!(text.contains("studiod_http_requests_total{route=\"/api/commands\",status=\"400\"} 1"), "{text}");
    assert!(text.contains("studiod_http_commands_total{action=\"apply_scene\",result=\"ok\"} 1"), "{text}");
    assert!(text.contains("studiod_http_commands_total{action=\"apply_scene\",result=\"unknown_scene\"} 1"), "{text}");
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    let cap = Captured::default();
    let w = cap.clone();
    // no timestamps: their digits once contained a 4-digit "secret" by chance
    let sub = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .without_time()
        .with_ansi(false)
        .with_writer(move || w.clone())
        .finish();
    // current-thread runtime: every server task logs through this subscriber
    let _g = tracing::subscriber::set_default(sub);
    let h = start().await;
    h.login(json!({"pin": "90513862"})).await;
    let l = h.creator().await;
    h.login(json!({"token": TOKEN})).await;
    h.http.get(h.url("/api/state")).bearer_auth("not-the-token-xyz").send().await.unwrap();
    h.cmd_bearer(json!({"action": "apply_scene", "scene": "house"})).await;
    h.cmd_cookie(&l, json!({"action": "apply_scene", "scene": "intro"})).await;
    let logs = String::from_utf8(cap.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("logged in"), "logging not captured: {logs}");
    for secret in [PIN, TOKEN, "90513862", "not-the-token-xyz", &l.csrf(), l.cookie().split('=').nth(1).unwrap()] {
        assert!(!logs.contains(secret), "secret {secret:?} in logs:\n{logs}");
    }
}

#[tokio::test]
async fn ctl_talks_to_the_server() {
    use clap::Parser;
    use studiod::adapters::ctl::{exec, CtlArgs};
    #[derive(Parser)]
    struct W {
        #[command(flatten)]
        a: CtlArgs,
    }
    let mut h = start().await;
    let dir = tempfile::tempdir().unwrap();
    let tf = dir.path().join("token");
    std::fs::write(&tf, format!("{TOKEN}\n")).unwrap();
    let base = h.base.clone();
    let args = |rest: &[&str]| {
        let mut v = vec!["ctl", "--url", &base, "--token-file", tf.to_str().unwrap()];
        v.extend_from_slice(rest);
        W::try_parse_from(v).unwrap().a
    };
    let out = exec(&args(&["scenes"])).await.unwrap();
    assert!(out.ok && out.text.contains("flash-sale") && out.text.contains("Flash sale"), "{}", out.text);
    let out = exec(&args(&["apply", "flash-sale", "--fade-ms", "800"])).await.unwrap();
    assert!(out.ok && out.text.starts_with("apply_scene flash-sale: ok"), "{}", out.text);
    let r = h
        .expect_request("apply", |r| matches!(&r.command, Command::ApplyScene { fade: Some(f), .. } if *f == Duration::from_millis(800)))
        .await;
    assert_eq!(r.origin, studiod::command::Origin::Cli);
    let out = exec(&args(&["state"])).await.unwrap();
    assert!(out.text.contains("scene   flash-sale (Flash sale)"), "{}", out.text);
    let out = exec(&args(&["devices"])).await.unwrap();
    assert!(out.text.contains("front") && out.text.contains("online"), "{}", out.text);
    let out = exec(&args(&["--json", "preset", "recall", "front", "3"])).await.unwrap();
    let v: Value = serde_json::from_str(out.text.trim()).unwrap();
    assert_eq!(v["action"], "recall_preset");
    let out = exec(&args(&["light", "key", "intensity=0.5", "color=#ff8800"])).await.unwrap();
    assert!(out.ok, "{}", out.text);
    let out = exec(&args(&["jog", "front", "-0.5", "0", "--ms", "600"])).await.unwrap();
    assert!(out.ok, "{}", out.text);
    h.expect_request("jog", |r| matches!(r.command, Command::Jog { pan, .. } if pan == -0.5)).await;
    h.expect_request("jog_stop", |r| matches!(r.command, Command::JogStop { .. })).await;
    // a failed command: ok=false → exit 1 territory
    let out = exec(&args(&["apply", "no-such"])).await.unwrap();
    assert!(!out.ok && out.text.contains("FAILED"), "{}", out.text);
    // no token: an authorisation error (exit 2), naming what to do
    let bare = W::try_parse_from(["ctl", "--url", &base, "state"]).unwrap().a;
    let err = exec(&bare).await.unwrap_err();
    assert!(err.to_string().contains("--token-file"), "{err}");
    // nothing listening: a connection error
    let dead = W::try_parse_from(["ctl", "--url", "http://127.0.0.1:9", "state"]).unwrap().a;
    assert!(matches!(exec(&dead).await.unwrap_err(), studiod::adapters::ctl::CtlError::Connect { .. }));
}
