//! The HTTP server on a hostile network (issue #15), over real loopback
//! sockets against a fake engine: idle and slow connections are timed out
//! and capped without keeping a real client out, PIN guessing never locks out
//! the technician's token, logout ends live streams at once, creator logins
//! never sign the technician out, and every refusal is the documented JSON.
//! Attackers use many source addresses (all of 127.0.0.0/8 is loopback).

mod hostile;
mod http_support;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_util::sync::CancellationToken;

use hostile::{enough_files, ip, raw};
use http_support::Fake;
use studiod::adapters::http::{ConnLimits, LockoutPolicy, Metrics, Options};
use studiod::command::Command;

const PIN: &str = "4711";
const TOKEN: &str = "tech-Secret-7f3a9c";
const WAIT: Duration = Duration::from_secs(5);
/// What the issue asks of a legitimate request under attack.
const PROMPT: Duration = Duration::from_secs(1);

struct H {
    addr: SocketAddr,
    fake: Fake,
    cancel: CancellationToken,
    metrics: Metrics,
    _cfg_tx: watch::Sender<Arc<studiod::config::model::Config>>,
}

impl Drop for H {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn start_with(opts: Options) -> H {
    let (server, fake, _cfg_tx, metrics) = http_support::bind_server(opts, PIN, TOKEN).await;
    let addr = server.local_addr();
    let cancel = CancellationToken::new();
    tokio::spawn(server.run(cancel.clone()));
    H { addr, fake, cancel, metrics, _cfg_tx }
}

impl H {
    fn url(&self, p: &str) -> String {
        format!("http://{}{p}", self.addr)
    }
}

/// An HTTP client whose connections come from `from`.
fn client(from: IpAddr) -> reqwest::Client {
    reqwest::Client::builder().no_proxy().local_address(from).timeout(WAIT).build().unwrap()
}

/// Everything the server sends until it closes (bounded by `WAIT`).
async fn read_to_close(s: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let r = timeout(WAIT, s.read_to_end(&mut buf)).await;
    assert!(r.is_ok(), "server kept the connection open; got {:?}", String::from_utf8_lossy(&buf));
    String::from_utf8_lossy(&buf).into_owned()
}

/// A raw HTTP response's status and JSON body, checked to be the documented error shape.
fn json_error(resp: &str, status: u16, code: &str) -> Value {
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or_else(|| panic!("not an HTTP response: {resp:?}"));
    assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
    assert!(head.to_ascii_lowercase().contains("content-type: application/json"), "{head}");
    let v: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body:?}"));
    assert_error_shape(&v, code);
    v
}

/// `{"ok":false,"error":{"code","message"}}` (docs/http.md).
fn assert_error_shape(v: &Value, code: &str) {
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["error"]["code"], code, "{v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
}

async fn reqwest_error(r: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(r.status().as_u16(), status);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    let v: Value = r.json().await.unwrap();
    assert_error_shape(&v, code);
    v
}

/// A blackout sent with the technician's token from `from`, answered within `PROMPT`.
async fn technician_command_is_prompt(h: &mut H, from: IpAddr) {
    let t0 = Instant::now();
    let r = client(from).post(h.url("/api/commands")).bearer_auth(TOKEN).json(&json!({"action": "blackout"})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    let took = t0.elapsed();
    assert_eq!(v["ok"], true, "{v}");
    assert!(took < PROMPT, "the technician's command took {took:?}");
    let req = timeout(WAIT, h.fake.requests.recv()).await.unwrap().unwrap();
    assert!(matches!(req.command, Command::Blackout { .. }));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_and_slow_sockets_do_not_keep_the_technician_out() {
    const SOCKETS: usize = 1000;
    enough_files(4 * SOCKETS as u64 + 256);
    // A cap well below the attack, so room has to be made by closing idle sockets.
    let connections = ConnLimits { max_connections: 256, ..ConnLimits::default() };
    let mut h = start_with(Options { connections, ..Options::default() }).await;
    // 40 addresses × 25 sockets: silent, half a request head, or a head and a trickle of body.
    let mut held = hostile::idle_and_slow_sockets(h.addr, SOCKETS, 2).await;
    technician_command_is_prompt(&mut h, ip("127.0.0.1")).await;
    // The attack goes on (new sockets all the time) while the technician works.
    let stop = CancellationToken::new();
    let storm = tokio::spawn({
        let (addr, stop) = (h.addr, stop.clone());
        async move {
            let mut n = 0usize;
            while !stop.is_cancelled() {
                let s = raw(addr, ip(&format!("127.0.3.{}", 1 + n % 40))).await;
                held[n % SOCKETS] = s;
                n += 1;
                tokio::task::yield_now().await;
            }
            n
        }
    });
    for _ in 0..3 {
        technician_command_is_prompt(&mut h, ip("127.0.0.1")).await;
    }
    stop.cancel();
    let opened = storm.await.unwrap();
    assert!(opened > 0);
    assert!(h.metrics.get("studiod_http_connections_dropped_total", &[("reason", "evicted")]) >= (SOCKETS - 256) as f64);
}

#[tokio::test]
async fn silent_partial_and_slow_clients_are_timed_out() {
    let connections = ConnLimits {
        header_read_timeout: Duration::from_millis(300),
        body_read_timeout: Duration::from_millis(300),
        ..ConnLimits::default()
    };
    let h = start_with(Options { connections, ..Options::default() }).await;
    let me = ip("127.0.0.1");
    // nothing sent: closed without a word
    let mut silent = raw(h.addr, me).await;
    assert_eq!(read_to_close(&mut silent).await, "");
    // half a request head: closed
    let mut partial = raw(h.addr, me).await;
    partial.write_all(b"GET / HTTP/1.1\r\nHost: bo").await.unwrap();
    let got = read_to_close(&mut partial).await;
    assert!(!got.starts_with("HTTP/1.1 200"), "{got}");
    // a head, then a body that never finishes: 408 as JSON, closed
    let mut slow = raw(h.addr, me).await;
    slow.write_all(b"POST /api/commands HTTP/1.1\r\nHost: booth\r\nContent-Length: 50\r\n\r\n{\"a").await.unwrap();
    json_error(&read_to_close(&mut slow).await, 408, "timeout");
    // a keep-alive connection left idle after its answer: closed
    let mut idle = raw(h.addr, me).await;
    idle.write_all(b"GET /nope HTTP/1.1\r\nHost: booth\r\n\r\n").await.unwrap();
    let got = read_to_close(&mut idle).await;
    assert!(got.starts_with("HTTP/1.1 404"), "{got}");
}

#[tokio::test]
async fn live_streams_outlast_the_header_timeout() {
    let connections = ConnLimits { header_read_timeout: Duration::from_millis(200), ..ConnLimits::default() };
    let h = start_with(Options { connections, sse_keepalive: Duration::from_millis(100), ..Options::default() }).await;
    let mut resp = client(ip("127.0.0.1")).get(h.url("/api/events")).bearer_auth(TOKEN).timeout(WAIT * 2).send().await.unwrap();
    let mut buf = String::new();
    // ≥ 6 keep-alive comments at 100 ms: the stream lived past 3 header timeouts
    let read = http_support::read_stream_until(&mut resp, &mut buf, WAIT, |b| b.matches(":\n\n").count() >= 6).await;
    assert!(read, "{buf}");
}

#[tokio::test]
async fn surplus_connections_are_refused_with_json_when_all_are_busy() {
    let connections = ConnLimits { max_connections: 4, max_connections_per_address: 2, ..ConnLimits::default() };
    // A short keep-alive: a dropped stream is noticed on the next write.
    let h = start_with(Options { connections, sse_keepalive: Duration::from_millis(100), ..Options::default() }).await;
    let a = ip("127.0.5.1");
    let b = ip("127.0.5.2");
    // two live streams from a: that address is full of busy connections
    let mut streams = Vec::new();
    for from in [a, a] {
        let r = client(from).get(h.url("/api/events")).bearer_auth(TOKEN).timeout(WAIT * 2).send().await.unwrap();
        assert_eq!(r.status(), 200);
        streams.push(r);
    }
    let mut s = raw(h.addr, a).await;
    json_error(&read_to_close(&mut s).await, 503, "too_many_connections");
    // another address still gets in, up to the overall cap
    for from in [b, b] {
        let r = client(from).get(h.url("/api/events")).bearer_auth(TOKEN).timeout(WAIT * 2).send().await.unwrap();
        assert_eq!(r.status(), 200);
        streams.push(r);
    }
    let mut s = raw(h.addr, ip("127.0.5.3")).await;
    let v = json_error(&read_to_close(&mut s).await, 503, "too_many_connections");
    assert!(v["error"]["message"].as_str().unwrap().contains("try again"));
    assert!(h.metrics.get("studiod_http_connections_dropped_total", &[("reason", "refused_total")]) >= 1.0);
    // a stream ending frees its place
    drop(streams.pop());
    let ok = timeout(WAIT, async {
        loop {
            let r = client(ip("127.0.5.3")).get(h.url("/api/state")).bearer_auth(TOKEN).send().await;
            if r.is_ok_and(|r| r.status() == 200) {
                return;
            }
            // poll (bounded by WAIT), as a client retrying would
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "the freed place was never given out");
}

#[tokio::test]
async fn bodies_over_the_limit_get_a_json_413() {
    let h = start_with(Options::default()).await;
    let big = format!("{{\"action\":\"status\",\"pad\":\"{}\"}}", "x".repeat(100 * 1024));
    let r = client(ip("127.0.0.1")).post(h.url("/api/commands")).bearer_auth(TOKEN).body(big).send().await.unwrap();
    reqwest_error(r, 413, "too_large").await;
    // declared small, sent large (chunked): still 413 as JSON
    let mut s = raw(h.addr, ip("127.0.0.1")).await;
    let chunk = "y".repeat(70 * 1024);
    let req = format!(
        "POST /api/commands HTTP/1.1\r\nHost: booth\r\nAuthorization: Bearer {TOKEN}\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    json_error(&read_to_close(&mut s).await, 413, "too_large");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_works_during_a_pin_guessing_storm() {
    let h = start_with(Options::default()).await;
    // 50 addresses guess PINs, 8 times each: every one locked, and the global PIN lock on
    let guessers: Vec<IpAddr> = (1..=50).map(|i| ip(&format!("127.0.6.{i}"))).collect();
    futures::stream::iter(guessers.clone())
        .for_each_concurrent(16, |from| {
            let url = h.url("/api/login");
            async move {
                let c = client(from);
                for _ in 0..8 {
                    let r = c.post(&url).header("x-studiod-csrf", "1").json(&json!({"pin": "0000"})).send().await.unwrap();
                    assert!([401, 429].contains(&r.status().as_u16()));
                }
            }
        })
        .await;
    let r =
        client(ip("127.0.6.200")).post(h.url("/api/login")).header("x-studiod-csrf", "1").json(&json!({"pin": PIN})).send().await.unwrap();
    let v = reqwest_error(r, 429, "locked").await;
    assert!(v["error"]["retry_after_s"].as_u64().is_some());
    // the technician's token: from a clean address, from a guessing one, as bearer and as login
    for from in [ip("127.0.0.1"), guessers[0], guessers[49]] {
        let t0 = Instant::now();
        let r = client(from).get(h.url("/api/state")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status(), 200, "from {from}");
        assert!(t0.elapsed() < PROMPT);
    }
    let r =
        client(guessers[1]).post(h.url("/api/login")).header("x-studiod-csrf", "1").json(&json!({"token": TOKEN})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(h.metrics.get("studiod_http_auth_failures_total", &[("reason", "wrong_pin")]) >= 30.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_guessing_holds_back_only_the_guessers() {
    let h = start_with(Options::default()).await;
    // 40 addresses, one wrong token each: the global token budget (30) is spent
    let guessers: Vec<IpAddr> = (1..=40).map(|i| ip(&format!("127.0.7.{i}"))).collect();
    futures::stream::iter(guessers.clone())
        .for_each_concurrent(16, |from| {
            let url = h.url("/api/state");
            async move {
                let r = client(from).get(&url).bearer_auth("guess").send().await.unwrap();
                assert!([401, 429].contains(&r.status().as_u16()));
            }
        })
        .await;
    // a guesser is refused even with the right token (else the lock would be an oracle)…
    let r = client(guessers[0]).get(h.url("/api/state")).bearer_auth(TOKEN).send().await.unwrap();
    reqwest_error(r, 429, "locked").await;
    // …the technician, who never guessed wrong, is not
    let r = client(ip("127.0.0.1")).get(h.url("/api/state")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // and a new address gets one wrong guess before it is held back too
    let fresh = client(ip("127.0.7.100"));
    let r = fresh.get(h.url("/api/state")).bearer_auth("guess").send().await.unwrap();
    reqwest_error(r, 429, "locked").await;
    let r = fresh.get(h.url("/api/state")).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(r.status(), 429);
    // creators are unaffected: a separate budget
    let r = client(guessers[2]).post(h.url("/api/login")).header("x-studiod-csrf", "1").json(&json!({"pin": PIN})).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

async fn login(c: &reqwest::Client, url: &str, body: Value) -> (String, String) {
    let r = c.post(url).header("x-studiod-csrf", "1").json(&body).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let cookie = r.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_string();
    let v: Value = r.json().await.unwrap();
    (cookie, v["csrf"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn sse_ends_within_a_second_of_logout() {
    // Default keep-alive (15 s): the end must not wait for the tick.
    let h = start_with(Options::default()).await;
    let c = client(ip("127.0.0.1"));
    let (cookie, csrf) = login(&c, &h.url("/api/login"), json!({"pin": PIN})).await;
    let mut resp = c.get(h.url("/api/events")).header("cookie", &cookie).timeout(Duration::from_secs(60)).send().await.unwrap();
    let mut buf = String::new();
    timeout(WAIT, async {
        while !buf.contains("event: state") {
            buf.push_str(&String::from_utf8_lossy(&resp.chunk().await.unwrap().unwrap()));
        }
    })
    .await
    .expect("no state event");
    let r = c.post(h.url("/api/logout")).header("cookie", &cookie).header("x-studiod-csrf", &csrf).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let t0 = Instant::now();
    let ended = timeout(PROMPT, async { while let Ok(Some(_)) = resp.chunk().await {} }).await;
    assert!(ended.is_ok(), "the stream outlived its logout by more than {PROMPT:?}");
    assert!(t0.elapsed() < PROMPT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_creator_logins_leave_the_technician_signed_in() {
    let h = start_with(Options::default()).await;
    let tech = client(ip("127.0.0.1"));
    let (tech_cookie, _) = login(&tech, &h.url("/api/login"), json!({"token": TOKEN})).await;
    let mut tech_stream =
        tech.get(h.url("/api/events")).header("cookie", &tech_cookie).timeout(Duration::from_secs(60)).send().await.unwrap();
    assert_eq!(tech_stream.status(), 200);
    let first_creator = login(&client(ip("127.0.8.1")), &h.url("/api/login"), json!({"pin": PIN})).await.0;
    // 1 000 creator logins: 100 addresses × 10 (the per-address limit)
    let logins = Arc::new(std::sync::atomic::AtomicUsize::new(1));
    futures::stream::iter(1..=100)
        .for_each_concurrent(8, |i| {
            let (url, logins) = (h.url("/api/login"), logins.clone());
            async move {
                let c = client(ip(&format!("127.0.8.{i}")));
                let n = if i == 1 { 9 } else { 10 };
                for _ in 0..n {
                    login(&c, &url, json!({"pin": PIN})).await;
                    logins.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        })
        .await;
    assert_eq!(logins.load(std::sync::atomic::Ordering::Relaxed), 1000);
    // the 11th from one address within the minute is refused, as JSON
    let r =
        client(ip("127.0.8.5")).post(h.url("/api/login")).header("x-studiod-csrf", "1").json(&json!({"pin": PIN})).send().await.unwrap();
    assert!(r.headers().contains_key("retry-after"));
    reqwest_error(r, 429, "too_many_logins").await;
    // the technician's session and its stream are intact
    let v: Value = tech.get(h.url("/api/session")).header("cookie", &tech_cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["role"], "technician", "{v}");
    h.fake.state.send_modify(|s| s.scene = Some("intro".into()));
    let mut buf = String::new();
    timeout(WAIT, async {
        while !buf.contains("\"scene\":\"intro\"") {
            buf.push_str(&String::from_utf8_lossy(&tech_stream.chunk().await.unwrap().expect("technician's stream ended")));
        }
    })
    .await
    .expect("technician's stream went quiet");
    // creators pushed out only creators (oldest first)
    let r = client(ip("127.0.8.1")).get(h.url("/api/state")).header("cookie", &first_creator).send().await.unwrap();
    reqwest_error(r, 401, "unauthorized").await;
}

#[tokio::test]
async fn refusals_are_counted() {
    let h = start_with(Options { lockout: LockoutPolicy { max_logins: 1, ..LockoutPolicy::default() }, ..Options::default() }).await;
    let c = client(ip("127.0.9.1"));
    login(&c, &h.url("/api/login"), json!({"pin": PIN})).await;
    let r = c.post(h.url("/api/login")).header("x-studiod-csrf", "1").json(&json!({"pin": PIN})).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(h.metrics.get("studiod_http_auth_failures_total", &[("reason", "too_many_logins")]), 1.0);
    let text = client(ip("127.0.0.1")).get(h.url("/metrics")).bearer_auth(TOKEN).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("# TYPE studiod_http_connections_dropped_total counter"), "{text}");
}

/// Requests so malformed that hyper refuses them before any handler runs get
/// hyper's own fixed answer, without a body (docs/http.md lists them): pinned
/// here so a hyper upgrade that changes it is noticed.
#[tokio::test]
async fn protocol_errors_get_hypers_bare_answer_and_the_connection_closes() {
    let h = start_with(Options::default()).await;
    let many_headers: String = (0..101).map(|i| format!("X-H{i}: v\r\n")).collect();
    for (req, status) in [
        ("BROKEN\r\n\r\n".to_string(), "400 Bad Request"),
        ("GET /api/state HTTP/9.9\r\nHost: booth\r\n\r\n".to_string(), "400 Bad Request"),
        ("GET /api/state HTTP/1.1\r\nHost booth\r\n\r\n".to_string(), "400 Bad Request"),
        (format!("GET /api/state HTTP/1.1\r\nHost: booth\r\n{many_headers}\r\n"), "431 Request Header Fields Too Large"),
    ] {
        let mut s = raw(h.addr, ip("127.0.0.1")).await;
        s.write_all(req.as_bytes()).await.unwrap();
        let resp = read_to_close(&mut s).await;
        let (head, body) = resp.split_once("\r\n\r\n").unwrap_or_else(|| panic!("not an HTTP response: {resp:?}"));
        assert!(head.starts_with(&format!("HTTP/1.1 {status}\r\n")), "{req:?}: {head}");
        assert!(head.to_ascii_lowercase().contains("content-length: 0"), "{head}");
        assert!(body.is_empty(), "{body:?}");
    }
    // A request that reaches studiod, however wrong, gets the JSON shape.
    let mut s = raw(h.addr, ip("127.0.0.1")).await;
    s.write_all(b"GET /nope HTTP/1.1\r\nHost: booth\r\nConnection: close\r\n\r\n").await.unwrap();
    json_error(&read_to_close(&mut s).await, 404, "not_found");
}
