//! Connections on a hostile network: who may hold one, for how long, and
//! the accept loop that enforces it (hyper's HTTP/1 server under the axum
//! router; axum is built with `http1` only, so no HTTP/2 here either).
//!
//! - A connection must send a complete request head within
//!   `header_read_timeout`; hyper starts that clock when the connection opens
//!   and again after each response, so it is the idle (keep-alive) timeout too.
//! - A request body must arrive within `body_read_timeout` (408 `timeout`) and
//!   be at most [`json::MAX_PAYLOAD`] (413 `too_large`), both as JSON errors.
//! - At most `max_connections` overall and `max_connections_per_address` per
//!   client address. When full, the oldest *idle* connection (no request
//!   being answered, which includes one still trickling its head) is closed
//!   to make room, so sockets that only sit there can never keep a real
//!   client out. Only when every connection is busy answering (live streams,
//!   commands) is the newcomer refused: 503 `too_many_connections`, closed.
//!
//! The engine never waits on a client: handlers only send it requests on a
//! bounded channel, and a slow reader blocks nothing but its own connection.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use axum::Router;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::api::ApiError;
use super::metrics::{self, Metrics};
use crate::adapters::json;

/// Connection limits (part of [`super::Options`]).
#[derive(Debug, Clone)]
pub struct ConnLimits {
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
}

impl Default for ConnLimits {
    fn default() -> Self {
        // Well under the unit's LimitNOFILE=8192: serial ports, Art-Net/OSC
        // sockets, MQTT and scene files always find a descriptor.
        ConnLimits {
            max_connections: 1024,
            // A browser opens ≤ 6 per host plus its stream; room for several tabs.
            max_connections_per_address: 32,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
        }
    }
}

/// The answer to a connection refused because all are busy. Written with a
/// single non-blocking write, so a refused client can never hold us up.
const BUSY: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\n\
content-type: application/json\r\n\
retry-after: 1\r\n\
connection: close\r\n\
content-length: 123\r\n\r\n\
{\"ok\":false,\"error\":{\"code\":\"too_many_connections\",\"message\":\"The booth is busy right now. Please try again in a moment.\"}}";

/// After an `accept` error (e.g. out of descriptors): wait before the next,
/// instead of spinning on a listener that fails at once.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

struct Entry {
    ip: IpAddr,
    /// Requests being answered (their response bodies still alive).
    busy: Arc<AtomicUsize>,
    kill: CancellationToken,
}

#[derive(Default)]
struct TableInner {
    next: u64,
    /// By id: ids grow, so the first is the oldest.
    conns: BTreeMap<u64, Entry>,
    per_ip: HashMap<IpAddr, usize>,
}

impl TableInner {
    fn remove(&mut self, id: u64) -> Option<Entry> {
        let e = self.conns.remove(&id)?;
        if let Some(n) = self.per_ip.get_mut(&e.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&e.ip);
            }
        }
        Some(e)
    }

    /// Close the oldest idle connection (of `ip` only, if given).
    fn evict_idle(&mut self, ip: Option<IpAddr>) -> bool {
        let victim =
            self.conns.iter().find(|(_, e)| ip.map_or(true, |ip| e.ip == ip) && e.busy.load(Ordering::Acquire) == 0).map(|(id, _)| *id);
        match victim.and_then(|id| self.remove(id)) {
            Some(e) => {
                e.kill.cancel();
                true
            }
            None => false,
        }
    }
}

/// Every open connection, for the caps and eviction.
#[derive(Default)]
struct Table {
    inner: Mutex<TableInner>,
}

/// Why a connection was not let in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refused {
    PerAddress,
    Total,
}

impl Table {
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &ConnLimits, metrics: &Metrics) -> Result<Slot, Refused> {
        let mut t = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if t.per_ip.get(&ip).copied().unwrap_or(0) >= limits.max_connections_per_address.max(1) {
            if !t.evict_idle(Some(ip)) {
                return Err(Refused::PerAddress);
            }
            metrics.inc(metrics::HTTP_CONNECTIONS_DROPPED, &[("reason", "evicted")]);
        }
        if t.conns.len() >= limits.max_connections.max(1) {
            if !t.evict_idle(None) {
                return Err(Refused::Total);
            }
            metrics.inc(metrics::HTTP_CONNECTIONS_DROPPED, &[("reason", "evicted")]);
        }
        let id = t.next;
        t.next += 1;
        let busy = Arc::new(AtomicUsize::new(0));
        let kill = CancellationToken::new();
        t.conns.insert(id, Entry { ip, busy: busy.clone(), kill: kill.clone() });
        *t.per_ip.entry(ip).or_default() += 1;
        Ok(Slot { table: self.clone(), id, busy, kill })
    }
}

/// A connection's place in the table; freed when the connection's task ends.
struct Slot {
    table: Arc<Table>,
    id: u64,
    busy: Arc<AtomicUsize>,
    kill: CancellationToken,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Already gone if it was evicted.
        self.table.inner.lock().unwrap_or_else(|e| e.into_inner()).remove(self.id);
    }
}

/// Marks its connection busy while a response is being produced and sent.
struct Busy(Arc<AtomicUsize>);

impl Busy {
    fn new(n: &Arc<AtomicUsize>) -> Busy {
        n.fetch_add(1, Ordering::AcqRel);
        Busy(n.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Accept and serve until `cancel` fires; then stop accepting, let
/// connections finish what they are answering, and return.
pub(super) async fn serve(listener: TcpListener, app: Router, limits: ConnLimits, metrics: Metrics, cancel: CancellationToken) {
    let table = Arc::new(Table::default());
    let tasks = TaskTracker::new();
    loop {
        let (stream, peer) = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(error = %e, "HTTP accept failed");
                    tokio::select! {
                        _ = cancel.cancelled() => break,
                        _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                    }
                }
            },
        };
        match table.admit(peer.ip(), &limits, &metrics) {
            Ok(slot) => {
                tasks.spawn(connection(stream, peer, slot, app.clone(), limits.clone(), cancel.clone()));
            }
            Err(why) => {
                let reason = if why == Refused::PerAddress { "refused_per_address" } else { "refused_total" };
                metrics.inc(metrics::HTTP_CONNECTIONS_DROPPED, &[("reason", reason)]);
                tracing::debug!(client = %peer.ip(), reason, "connection refused");
                // Best effort: whatever fits in the socket buffer now, then close.
                let _ = stream.try_write(BUSY);
            }
        }
    }
    drop(listener);
    tasks.close();
    tasks.wait().await;
}

async fn connection(stream: TcpStream, peer: SocketAddr, slot: Slot, app: Router, limits: ConnLimits, cancel: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let busy = slot.busy.clone();
    let body_timeout = limits.body_read_timeout;
    let svc = hyper::service::service_fn(move |req| handle(req, peer, app.clone(), busy.clone(), body_timeout));
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(client = %peer.ip(), error = %e, "HTTP connection ended");
            }
        }
        // Evicted while idle: dropping the connection closes the socket.
        _ = slot.kill.cancelled() => {}
        _ = cancel.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Read the whole (small, JSON) body under a deadline and a size cap, then
/// hand the request to the router; the connection counts as busy until the
/// response body (a live stream, too) is done.
async fn handle(
    req: Request<Incoming>,
    peer: SocketAddr,
    app: Router,
    busy: Arc<AtomicUsize>,
    body_timeout: Duration,
) -> Result<Response<Body>, Infallible> {
    let (mut parts, body) = req.into_parts();
    let max = json::MAX_PAYLOAD;
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Ok(closing(too_large(max)));
    }
    let bytes = match tokio::time::timeout(body_timeout, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return Ok(closing(too_large(max))),
        Ok(Err(_)) => {
            return Ok(closing(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "The request body could not be read.")));
        }
        Err(_) => {
            return Ok(closing(ApiError::new(StatusCode::REQUEST_TIMEOUT, "timeout", "The request took too long to arrive.")));
        }
    };
    parts.extensions.insert(ConnectInfo(peer));
    let guard = Busy::new(&busy);
    let resp = match app.oneshot(Request::from_parts(parts, Body::from(bytes))).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    let (parts, body) = resp.into_parts();
    // The guard lives as long as the body: a live stream keeps it busy.
    let body = Body::new(body.map_frame(move |f| {
        let _ = &guard;
        f
    }));
    Ok(Response::from_parts(parts, body))
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", format!("The request is larger than {} KiB.", max / 1024))
}

/// The body was not read to its end: this connection cannot carry another request.
fn closing(e: ApiError) -> Response<Body> {
    let mut r = e.into_response();
    r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_answer_is_well_formed() {
        let text = std::str::from_utf8(BUSY).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(head.contains(&format!("content-length: {}", body.len())), "{head}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["ok"], false);
        assert_eq!(v["error"]["code"], "too_many_connections");
    }

    #[test]
    fn full_table_evicts_the_oldest_idle_connection_never_a_busy_one() {
        let t = Arc::new(Table::default());
        let m = Metrics::new();
        let limits = ConnLimits { max_connections: 2, max_connections_per_address: 2, ..ConnLimits::default() };
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.0.2".parse().unwrap();
        let first = t.admit(a, &limits, &m).unwrap();
        let second = t.admit(b, &limits, &m).unwrap();
        let _busy = Busy::new(&first.busy);
        // full: the idle one (second) goes, although first is older
        let third = t.admit(b, &limits, &m).unwrap();
        assert!(second.kill.is_cancelled() && !first.kill.is_cancelled());
        let _busy3 = Busy::new(&third.busy);
        // everyone busy: refused
        assert_eq!(t.admit(a, &limits, &m).err(), Some(Refused::Total));
        drop(second);
        assert_eq!(t.inner.lock().unwrap().conns.len(), 2);
    }

    #[test]
    fn per_address_cap_evicts_only_that_address() {
        let t = Arc::new(Table::default());
        let m = Metrics::new();
        let limits = ConnLimits { max_connections: 10, max_connections_per_address: 1, ..ConnLimits::default() };
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let other = t.admit("127.0.0.2".parse().unwrap(), &limits, &m).unwrap();
        let first = t.admit(a, &limits, &m).unwrap();
        let _second = t.admit(a, &limits, &m).unwrap();
        assert!(first.kill.is_cancelled() && !other.kill.is_cancelled());
        let _busy = Busy::new(&_second.busy);
        assert_eq!(t.admit(a, &limits, &m).err(), Some(Refused::PerAddress));
    }
}
