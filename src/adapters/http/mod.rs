//! HTTP adapter: the creator's tablet page (`/`), the technician's page
//! (`/tech`), the JSON API under `/api/…`, live updates over SSE
//! (`/api/events`) and Prometheus metrics (`/metrics`). A thin adapter: every
//! action becomes a [`crate::command::Command`] for the engine.
//!
//! # Starting it (daemon side)
//! ```ignore
//! let (cfg_tx, cfg_rx) = tokio::sync::watch::channel(Arc::new(config.clone()));
//! let server = http::Server::bind(http_cfg, cfg_rx, engine.clone(), metrics.clone(), http::Options::default()).await?;
//! tracing::info!(url = %server.url(), "tablet UI");
//! tokio::spawn(server.run(cancel.clone()));
//! // after a successful `reload`: cfg_tx.send(Arc::new(new_config))
//! ```
//! or simply [`serve`]. Pages get the new scene list over SSE on reload.
//!
//! # Secrets
//! The creator PIN (`creator_pin_file`) and technician token
//! (`tech_token_file`) are read once at bind time; surrounding whitespace is
//! trimmed. A missing/unreadable/empty file configured is a start-up error.
//! A role whose file is not configured is disabled (its login answers 403
//! `role_disabled`, the page says so); `studiod demo` writes both files.
//! To change a secret, restart the daemon.
//!
//! # Security summary
//! Creator: PIN → `POST /api/login {"pin"}` → session cookie (HttpOnly,
//! SameSite=Strict, 128-bit random, server-side, 12 h). Technician: token as
//! `Authorization: Bearer` (exempt from CSRF), or `POST /api/login {"token"}`
//! for a cookie session. Cookie-authenticated state changes need the session's
//! CSRF token in `X-Studiod-CSRF`; login needs that header present. PIN/token
//! attempts are limited per client address and globally, with separate
//! budgets for the PIN and the token, so PIN guessing never locks out the
//! technician (see [`LockoutPolicy`]); successful logins are limited per
//! address, and sessions per role (a creator's login never evicts a
//! technician's session). Connections are timed out and capped (see
//! [`ConnLimits`]). Nothing secret is ever logged.

mod api;
mod assets;
pub mod auth;
mod conn;
mod deadman;
pub mod metrics;
mod model;
mod sse;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::config::model::{Config, Http};
use crate::engine::EngineHandle;

pub use auth::{LockoutPolicy, Role, Secret};
pub use conn::ConnLimits;
pub use metrics::Metrics;

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("cannot listen on {addr}: {source}")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("cannot read the {what} file {path}: {source}")]
    Secret { what: &'static str, path: PathBuf, source: std::io::Error },
    #[error("the {what} file {path} {reason}")]
    BadSecret { what: &'static str, path: PathBuf, reason: String },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Shorter technician tokens get a warning at start.
const MIN_TOKEN_LEN: usize = 16;

/// How long `run` waits at shutdown for the stops of cameras still moving.
const SHUTDOWN_STOPS: Duration = Duration::from_secs(3);

/// Tunables with production defaults; tests shorten some.
#[derive(Debug, Clone)]
pub struct Options {
    pub session_ttl: Duration,
    /// Live cookie sessions per role; when a role is full its oldest ends.
    pub max_creator_sessions: usize,
    pub max_technician_sessions: usize,
    pub lockout: LockoutPolicy,
    pub connections: ConnLimits,
    /// Stop a jogging/zooming camera when its client's repeats stop for this long.
    pub deadman_timeout: Duration,
    /// Period of SSE keep-alive comments (and of the session re-check on streams).
    pub sse_keepalive: Duration,
    /// Period of the `ping` event on live streams: pages that hear nothing
    /// for a few periods say the connection is lost (a silent network).
    pub sse_heartbeat: Duration,
    /// Where cookie sessions are kept across restarts (the daemon:
    /// `state_dir/sessions.json`); `None` keeps them in memory only.
    pub session_file: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            session_ttl: Duration::from_secs(12 * 3600),
            max_creator_sessions: 128,
            max_technician_sessions: 32,
            lockout: LockoutPolicy::default(),
            connections: ConnLimits::default(),
            deadman_timeout: Duration::from_millis(1000),
            sse_keepalive: Duration::from_secs(15),
            sse_heartbeat: Duration::from_secs(2),
            session_file: None,
        }
    }
}

/// Shared by every handler.
pub(crate) struct AppState {
    pub engine: EngineHandle,
    pub config: watch::Receiver<Arc<Config>>,
    pub pin: Option<Secret>,
    pub token: Option<Secret>,
    pub sessions: auth::Sessions,
    pub limiter: auth::Limiter,
    pub deadman: deadman::Deadman,
    pub metrics: Metrics,
    pub cancel: CancellationToken,
    pub opts: Options,
}

/// A bound, not yet running server.
pub struct Server {
    listener: TcpListener,
    app: Router,
    addr: SocketAddr,
    cancel: CancellationToken,
    deadman: tokio::task::JoinHandle<()>,
    metrics: Metrics,
    limits: ConnLimits,
}

impl Server {
    /// Read the secrets and bind `cfg.listen`. The dead-man watchdog starts
    /// here and lives until [`Server::run`]'s cancel token fires.
    pub async fn bind(
        cfg: &Http,
        config: watch::Receiver<Arc<Config>>,
        engine: EngineHandle,
        metrics: Metrics,
        opts: Options,
    ) -> Result<Server, HttpError> {
        let pin = cfg.creator_pin_file.as_deref().map(|p| Secret::read("creator PIN", p)).transpose()?;
        let token = cfg.tech_token_file.as_deref().map(|p| Secret::read("technician token", p)).transpose()?;
        Server::bind_with_secrets(cfg.listen, pin, token, config, engine, metrics, opts).await
    }

    /// As [`Server::bind`], with the secrets given directly (demo, tests).
    pub async fn bind_with_secrets(
        listen: SocketAddr,
        pin: Option<Secret>,
        token: Option<Secret>,
        config: watch::Receiver<Arc<Config>>,
        engine: EngineHandle,
        metrics: Metrics,
        opts: Options,
    ) -> Result<Server, HttpError> {
        if pin.is_none() {
            tracing::warn!("no creator PIN file configured: the creator role (tablet) is disabled");
        }
        match &token {
            None => tracing::warn!("no technician token file configured: the technician role is disabled"),
            // Each address on the network gets a guess per lockout period (see
            // LockoutPolicy): only a long random token keeps that hopeless.
            Some(t) if t.len() < MIN_TOKEN_LEN => {
                tracing::warn!("the technician token is shorter than {MIN_TOKEN_LEN} characters: use a long random one")
            }
            Some(_) => {}
        }
        let listener = TcpListener::bind(listen).await.map_err(|source| HttpError::Bind { addr: listen, source })?;
        let addr = listener.local_addr().map_err(|source| HttpError::Bind { addr: listen, source })?;
        let cancel = CancellationToken::new();
        let (deadman, deadman_task) = deadman::Deadman::spawn(engine.clone(), metrics.clone(), opts.deadman_timeout, cancel.clone());
        let limits = opts.connections.clone();
        let state = Arc::new(AppState {
            engine,
            config,
            pin,
            token,
            sessions: match &opts.session_file {
                Some(path) => {
                    auth::Sessions::persistent(opts.session_ttl, opts.max_creator_sessions, opts.max_technician_sessions, path.clone())
                }
                None => auth::Sessions::new(opts.session_ttl, opts.max_creator_sessions, opts.max_technician_sessions),
            },
            limiter: auth::Limiter::new(opts.lockout.clone()),
            deadman,
            metrics: metrics.clone(),
            cancel: cancel.clone(),
            opts,
        });
        Ok(Server { listener, app: router(state), addr, cancel, deadman: deadman_task, metrics, limits })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://host:port` for logs and the demo banner.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Serve until `cancel` fires, then shut down gracefully: live streams
    /// end, in-flight requests finish, running camera moves are stopped.
    pub async fn run(self, cancel: CancellationToken) -> Result<(), HttpError> {
        tracing::info!(url = %self.url(), "HTTP server listening");
        let inner = self.cancel.clone();
        let forward = tokio::spawn(async move {
            cancel.cancelled().await;
            inner.cancel();
        });
        conn::serve(self.listener, self.app, self.limits, self.metrics, self.cancel.clone()).await;
        forward.abort();
        self.cancel.cancel();
        // Let the watchdog stop any camera still moving before the engine goes
        // away; bounded, so a wedged engine cannot hold up shutdown.
        if tokio::time::timeout(SHUTDOWN_STOPS, self.deadman).await.is_err() {
            tracing::warn!("camera stops at shutdown did not finish in time");
        }
        Ok(())
    }
}

/// Bind with default options and serve until `cancel` fires.
pub async fn serve(
    cfg: &Http,
    config: watch::Receiver<Arc<Config>>,
    engine: EngineHandle,
    metrics: Metrics,
    cancel: CancellationToken,
) -> Result<(), HttpError> {
    Server::bind(cfg, config, engine, metrics, Options::default()).await?.run(cancel).await
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(assets::creator_page))
        .route("/tech", get(assets::tech_page))
        .route("/assets/{file}", get(assets::asset))
        .route("/api/login", post(api::login))
        .route("/api/logout", post(api::logout))
        .route("/api/session", get(api::session))
        .route("/api/state", get(api::state))
        .route("/api/model", get(api::model))
        .route("/api/scenes", get(api::scenes))
        .route("/api/devices", get(api::devices))
        .route("/api/commands", post(api::command))
        .route("/api/events", get(sse::events))
        .route("/metrics", get(api::metrics))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(state.clone(), api::track))
        .layer(DefaultBodyLimit::max(crate::adapters::json::MAX_PAYLOAD))
        .with_state(state)
}
