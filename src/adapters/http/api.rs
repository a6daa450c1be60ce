//! JSON API handlers, authentication/role/CSRF checks and request metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use subtle::ConstantTimeEq;

use super::auth::{self, Credential, Role, Strike, CSRF_HEADER, SESSION_COOKIE};
use super::deadman;
use super::metrics;
use super::AppState;
use crate::adapters::json;
use crate::command::{Command, ErrorCode, Origin};
use crate::engine::Request as EngineRequest;

type St = State<Arc<AppState>>;

/// Header naming the client program (`ctl` for `studiod ctl`).
pub const CLIENT_HEADER: &str = "x-studiod-client";

/// An HTTP-level refusal (before any command exists). Body:
/// `{"ok":false,"error":{"code","message"}}` — never internals.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
    extra: Option<Value>,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), retry_after: None, extra: None }
    }
    fn unauthorized(message: &str) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }
    fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    fn csrf() -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "csrf", "This request did not come from a studiod page. Reload the page and try again.")
    }
    fn locked(wait: Duration) -> ApiError {
        let secs = wait.as_secs().max(1);
        let mut e = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "locked", format!("Too many wrong tries. Please wait {secs} seconds."));
        e.retry_after = Some(Duration::from_secs(secs));
        e.extra = Some(json!({"retry_after_s": secs}));
        e
    }
    /// Right secret, but this address has logged in too often just now.
    fn too_many_logins(wait: Duration) -> ApiError {
        let secs = wait.as_secs().max(1);
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_logins",
            format!("Too many logins from this device. Please wait {secs} seconds."),
        );
        e.retry_after = Some(Duration::from_secs(secs));
        e.extra = Some(json!({"retry_after_s": secs}));
        e
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"ok": false, "error": {"code": self.code, "message": self.message}});
        if let Some(Value::Object(extra)) = self.extra {
            for (k, v) in extra {
                body["error"][k] = v;
            }
        }
        let mut resp = (self.status, Json(body)).into_response();
        if let Some(d) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&d.as_secs().to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"studiod\""));
        }
        resp
    }
}

/// Who is calling.
pub struct Caller {
    pub role: Role,
    /// Cookie session (token, CSRF token, ended); `None` for bearer-token callers.
    session: Option<(String, String, tokio_util::sync::CancellationToken)>,
}

fn client_ip(addr: &SocketAddr) -> std::net::IpAddr {
    addr.ip()
}

/// Bearer token first (technician tools), else the session cookie. Only the
/// token's own guess budget can refuse a bearer token: PIN guessing never does.
fn authenticate(st: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Result<Caller, ApiError> {
    if let Some(presented) = auth::bearer(headers) {
        let ip = client_ip(&peer);
        if let Err(wait) = st.limiter.check(Credential::Token, ip) {
            return Err(ApiError::locked(wait));
        }
        return match &st.token {
            Some(t) if t.matches(presented) => {
                st.limiter.success(Credential::Token, ip);
                Ok(Caller { role: Role::Technician, session: None })
            }
            _ => {
                st.metrics.inc(metrics::AUTH_FAILURES, &[("reason", "wrong_token")]);
                tracing::warn!(client = %ip, "wrong technician token presented");
                match st.limiter.failure(Credential::Token, ip) {
                    Strike::Locked(wait) => Err(ApiError::locked(wait)),
                    Strike::Left(_) => Err(ApiError::unauthorized("That technician token is not valid.")),
                }
            }
        };
    }
    match auth::cookie(headers, SESSION_COOKIE) {
        Some(tok) => match st.sessions.get(tok) {
            Some(s) => Ok(Caller { role: s.role, session: Some((tok.to_string(), s.csrf, s.ended)) }),
            None => Err(ApiError::unauthorized("Your session has ended. Please log in again.")),
        },
        None => Err(ApiError::unauthorized("Please log in.")),
    }
}

fn require(caller: &Caller, role: Role) -> Result<(), ApiError> {
    if caller.role >= role {
        Ok(())
    } else {
        Err(ApiError::forbidden(format!("Only the {} may do this.", role.as_str())))
    }
}

/// A request from a page of another site carries an `Origin` that is not ours.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else { return false };
    origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://")).is_some_and(|h| h == host)
}

/// CSRF check for state-changing requests from cookie sessions. Bearer-token
/// requests are exempt: a browser never attaches that header cross-site.
fn check_csrf(caller: &Caller, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some((_, expected, _)) = &caller.session else { return Ok(()) };
    let given = headers.get(CSRF_HEADER).map(|v| v.as_bytes()).unwrap_or_default();
    if !same_origin(headers) || !bool::from(given.ct_eq(expected.as_bytes())) {
        return Err(ApiError::csrf());
    }
    Ok(())
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    pin: Option<String>,
    token: Option<String>,
}

pub async fn login(
    State(st): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // Login CSRF: a cross-site form cannot set a custom header.
    if headers.get(CSRF_HEADER).is_none() || !same_origin(&headers) {
        return Err(ApiError::csrf());
    }
    let login: Login = serde_json::from_slice(&body)
        .map_err(|_| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "Send {\"pin\": \"…\"} or {\"token\": \"…\"}."))?;
    let (role, cred, presented, secret, what) = match (&login.pin, &login.token) {
        (Some(p), None) => (Role::Creator, Credential::Pin, p, &st.pin, "PIN"),
        (None, Some(t)) => (Role::Technician, Credential::Token, t, &st.token, "token"),
        _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_request", "Send either a PIN or a token.")),
    };
    let Some(secret) = secret else {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "role_disabled",
            format!("This booth has no {} {what} set up. Ask the technician.", role.as_str()),
        ));
    };
    let ip = client_ip(&peer);
    if let Err(wait) = st.limiter.check(cred, ip) {
        st.metrics.inc(metrics::AUTH_FAILURES, &[("reason", "locked")]);
        return Err(ApiError::locked(wait));
    }
    if !secret.matches(presented) {
        st.metrics.inc(metrics::AUTH_FAILURES, &[("reason", if role == Role::Creator { "wrong_pin" } else { "wrong_token" })]);
        tracing::warn!(client = %ip, role = role.as_str(), "wrong {what} at login");
        return Err(match st.limiter.failure(cred, ip) {
            Strike::Locked(wait) => ApiError::locked(wait),
            Strike::Left(n) => {
                let code = if role == Role::Creator { "wrong_pin" } else { "wrong_token" };
                let mut e = ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    code,
                    format!("That {what} is not right. {n} {} left.", if n == 1 { "try" } else { "tries" }),
                );
                e.extra = Some(json!({"tries_left": n}));
                e
            }
        });
    }
    st.limiter.success(cred, ip);
    if let Err(wait) = st.limiter.login(role, ip) {
        st.metrics.inc(metrics::AUTH_FAILURES, &[("reason", "too_many_logins")]);
        tracing::warn!(client = %ip, role = role.as_str(), "too many logins from one address");
        return Err(ApiError::too_many_logins(wait));
    }
    if let Some(old) = auth::cookie(&headers, SESSION_COOKIE) {
        st.sessions.remove(old);
    }
    let (token, session) = st.sessions.create(role);
    tracing::info!(client = %ip, role = role.as_str(), "logged in");
    let mut resp =
        Json(json!({"ok": true, "role": role.as_str(), "csrf": session.csrf, "expires_in_s": st.sessions.ttl().as_secs()})).into_response();
    if let Ok(v) = HeaderValue::from_str(&auth::session_cookie(&token, st.sessions.ttl())) {
        resp.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(resp)
}

pub async fn logout(State(st): St, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers, peer)?;
    check_csrf(&caller, &headers)?;
    if let Some((tok, _, _)) = &caller.session {
        // Also ends this session's live streams at once (`Session::ended`).
        st.sessions.remove(tok);
    }
    let mut resp = Json(json!({"ok": true})).into_response();
    resp.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&auth::clear_cookie()).expect("static cookie"));
    Ok(resp)
}

pub async fn session(State(st): St, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let caller = authenticate(&st, &headers, peer)?;
    let studio = st.config.borrow().studio.id.clone();
    Ok(Json(json!({"ok": true, "role": caller.role.as_str(), "csrf": caller.session.map(|s| s.1), "studio": studio})))
}

pub async fn state(State(st): St, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authenticate(&st, &headers, peer)?;
    let studio = st.config.borrow().studio.id.clone();
    let s = st.engine.state().borrow().clone();
    Ok(Json(json::state(&studio, &s)))
}

pub async fn model(State(st): St, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authenticate(&st, &headers, peer)?;
    let cfg = st.config.borrow().clone();
    Ok(Json(super::model::model(&cfg)))
}

pub async fn scenes(State(st): St, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authenticate(&st, &headers, peer)?;
    let cfg = st.config.borrow().clone();
    Ok(Json(json!({"scenes": super::model::scenes(&cfg)})))
}

pub async fn devices(State(st): St, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    authenticate(&st, &headers, peer)?;
    let cfg = st.config.borrow().clone();
    let s = st.engine.state().borrow().clone();
    Ok(Json(json!({"devices": super::model::devices(&cfg, &s)})))
}

/// Actions a creator may send; everything else needs the technician.
fn creator_may(cmd: &Command) -> bool {
    matches!(cmd, Command::ApplyScene { .. } | Command::Status)
}

/// The HTTP status of a command's reply, from its `error.code` alone (never
/// from which layer found the problem), so one code always has one status:
/// 400 when the command as sent (or the files it asked to load) is invalid,
/// so nothing was applied and sending it again unchanged fails the same way;
/// 200 when it ran (`ok:true`, or `device_failed`) or the booth could not
/// carry it out just now (`busy`, `superseded`, `internal`).
pub(crate) fn reply_status(code: Option<ErrorCode>) -> StatusCode {
    match code {
        Some(
            ErrorCode::InvalidJson
            | ErrorCode::InvalidCommand
            | ErrorCode::UnknownAction
            | ErrorCode::UnknownScene
            | ErrorCode::UnknownDevice
            | ErrorCode::SceneInvalid
            | ErrorCode::ConfigInvalid,
        ) => StatusCode::BAD_REQUEST,
        None | Some(ErrorCode::DeviceFailed | ErrorCode::Busy | ErrorCode::Superseded | ErrorCode::Cancelled | ErrorCode::Internal) => {
            StatusCode::OK
        }
    }
}

/// `POST /api/commands`: the MQTT command JSON (CONTRACT §5), `id` optional.
/// Answers the reply JSON with the status of [`reply_status`].
pub async fn command(
    State(st): St,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    // The body has arrived: from here on the caller is waiting on us.
    let received = std::time::Instant::now();
    let caller = authenticate(&st, &headers, peer)?;
    check_csrf(&caller, &headers)?;
    let body = with_id(body);
    let parsed = json::parse_command(&body);
    let cmd = match &parsed.command {
        Ok(c) => c.clone(),
        Err(e) => {
            let action = parsed.action.clone().unwrap_or_else(|| "unknown".into());
            st.metrics.inc(metrics::COMMANDS, &[("action", &action), ("result", e.code.as_str())]);
            return Ok((reply_status(Some(e.code)), Json(json::reply_invalid(&parsed, e))).into_response());
        }
    };
    if !creator_may(&cmd) {
        require(&caller, Role::Technician)?;
    }
    if let Command::PutScene { scene, .. } | Command::DeleteScene { scene } = &cmd {
        if !crate::config::valid_name(scene) {
            let e = crate::command::CommandError::new(
                crate::command::ErrorCode::InvalidCommand,
                "scene names use a–z, 0–9 and '-' only (at most 64)",
            );
            st.metrics.inc(metrics::COMMANDS, &[("action", cmd.action()), ("result", e.code.as_str())]);
            return Ok((reply_status(Some(e.code)), Json(json::reply_invalid(&parsed, &e))).into_response());
        }
    }
    let watch = deadman::classify(&cmd);
    if let Some((camera, motion, moving)) = &watch {
        if *moving {
            st.deadman.moving(camera, *motion);
        } else {
            st.deadman.stopped(camera, *motion);
        }
    }
    let id = parsed.id.clone();
    // `studiod ctl` says who it is, so events read "applied from the CLI";
    // a label only, it grants nothing.
    let origin = match headers.get(CLIENT_HEADER).map(|v| v.as_bytes()) {
        Some(b"ctl") => Origin::Cli,
        _ => Origin::Http,
    };
    let outcome = st.engine.execute(EngineRequest { id: id.clone(), origin, command: cmd.clone(), received }).await;
    if let (Some((camera, motion, true)), Some(e)) = (&watch, &outcome.error) {
        // A refused move (unknown camera, busy) is not running: nothing to stop later.
        if e.code != crate::command::ErrorCode::DeviceFailed {
            st.deadman.stopped(camera, *motion);
        }
    }
    let result = outcome.error.as_ref().map(|e| e.code.as_str()).unwrap_or("ok");
    st.metrics.inc(metrics::COMMANDS, &[("action", cmd.action()), ("result", result)]);
    // Jog repeats arrive 4×/s while a button is held: keep them out of info logs.
    if matches!(cmd, Command::Jog { .. } | Command::Zoom { .. } | Command::SetLight { .. }) {
        tracing::debug!(id = ?id, action = cmd.action(), ok = outcome.ok, role = caller.role.as_str(), "http command");
    } else {
        tracing::info!(id = ?id, action = cmd.action(), ok = outcome.ok, role = caller.role.as_str(), "http command");
    }
    let status = reply_status(outcome.error.as_ref().map(|e| e.code));
    Ok((status, Json(json::reply(id.as_deref(), parsed.action.as_deref(), &outcome, false))).into_response())
}

/// The API allows omitting `id`; the engine needs one (logs, dedupe), so add
/// a fresh one to a JSON object that lacks it. Anything else passes unchanged
/// so the shared parser reports it with the contract's error codes.
fn with_id(body: Bytes) -> Bytes {
    match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(mut obj)) if !obj.contains_key("id") => {
            obj.insert("id".into(), json!(format!("http-{}", &auth::random_token()[..12])));
            serde_json::to_vec(&obj).map(Bytes::from).unwrap_or(body)
        }
        _ => body,
    }
}

pub async fn metrics(State(st): St, ConnectInfo(peer): ConnectInfo<SocketAddr>, headers: HeaderMap) -> Result<Response, ApiError> {
    let caller = authenticate(&st, &headers, peer)?;
    require(&caller, Role::Technician)?;
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], st.metrics.render()).into_response())
}

pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "No such page.")
}

/// Count every request by matched route (bounded label set) and status.
pub async fn track(State(st): St, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let resp = next.run(req).await;
    st.metrics.inc(metrics::HTTP_REQUESTS, &[("route", &route), ("status", resp.status().as_str())]);
    resp
}

/// For `/api/events`: any role; returns the session token (to re-check its
/// expiry while streaming) and its `ended` token (fires at logout).
pub(super) fn authenticate_for_stream(
    st: &AppState,
    headers: &HeaderMap,
    peer: SocketAddr,
) -> Result<Option<(String, tokio_util::sync::CancellationToken)>, ApiError> {
    authenticate(st, headers, peer).map(|c| c.session.map(|(tok, _, ended)| (tok, ended)))
}
