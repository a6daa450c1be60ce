//! `GET /api/events`: live updates as server-sent events.
//!
//! Event types: `model` (scenes, cameras, fixture controls; first, and again
//! after a reload), `state` (the full state JSON; first, and on every change),
//! `event` (device online/offline, scene applied) and `ping` (`{}` every
//! [`super::Options::sse_heartbeat`], so a page notices a silent network). A client that falls
//! behind on events gets a fresh `state` instead of the ones it missed.
//! Streams end on server shutdown and at once when their session is logged
//! out (or evicted); an expired session is noticed on the keep-alive tick.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use tokio::sync::{broadcast, watch};

use super::api::ApiError;
use super::metrics::{self, Metrics};
use super::AppState;
use crate::adapters::json;
use crate::config::model::Config;
use crate::engine::{BoothState, Event};

struct Gauge(Metrics);

impl Drop for Gauge {
    fn drop(&mut self) {
        self.0.add(metrics::SSE_CLIENTS, &[], -1.0);
    }
}

struct Stream_ {
    st: Arc<AppState>,
    state: watch::Receiver<BoothState>,
    events: broadcast::Receiver<Event>,
    config: Option<watch::Receiver<Arc<Config>>>,
    session: Option<String>,
    /// Fires when the session ends (logout): the stream ends at once.
    ended: tokio_util::sync::CancellationToken,
    step: u8,
    tick: tokio::time::Interval,
    /// The `ping` event: proof of life for pages (keep-alive comments are invisible to them).
    beat: tokio::time::Interval,
    _gauge: Gauge,
}

impl Stream_ {
    fn model(&self) -> SseEvent {
        let cfg = self.st.config.borrow().clone();
        SseEvent::default().event("model").data(super::model::model(&cfg).to_string())
    }
    fn state(&mut self) -> SseEvent {
        let studio = self.st.config.borrow().studio.id.clone();
        let s = self.state.borrow_and_update().clone();
        SseEvent::default().event("state").data(json::state(&studio, &s).to_string())
    }

    async fn next(&mut self) -> Option<SseEvent> {
        match self.step {
            0 => {
                self.step = 1;
                return Some(self.model());
            }
            1 => {
                self.step = 2;
                return Some(self.state());
            }
            _ => {}
        }
        loop {
            let config_changed = async {
                match &mut self.config {
                    Some(c) => c.changed().await.is_ok(),
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.st.cancel.cancelled() => return None,
                _ = self.ended.cancelled() => return None,
                r = self.state.changed() => return r.ok().map(|_| self.state()),
                r = self.events.recv() => match r {
                    Ok(e) => return Some(SseEvent::default().event("event").data(json::event(&e).to_string())),
                    Err(broadcast::error::RecvError::Lagged(_)) => return Some(self.state()),
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
                alive = config_changed => {
                    if alive {
                        if let Some(c) = &mut self.config { c.borrow_and_update(); }
                        return Some(self.model());
                    }
                    self.config = None;
                }
                _ = self.beat.tick() => return Some(SseEvent::default().event("ping").data("{}")),
                // Expiry (12 h) is noticed on the keep-alive tick; logout at once, above.
                _ = self.tick.tick() => {
                    let logged_out = self.session.as_ref().is_some_and(|tok| self.st.sessions.get(tok).is_none());
                    if logged_out {
                        return None;
                    }
                }
            }
        }
    }
}

pub async fn events(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let caller = super::api::authenticate_for_stream(&st, &headers, peer)?;
    // Bearer callers have no session to end: a token that is never cancelled.
    let (session, ended) = match caller {
        Some((tok, ended)) => (Some(tok), ended),
        None => (None, tokio_util::sync::CancellationToken::new()),
    };
    st.metrics.add(metrics::SSE_CLIENTS, &[], 1.0);
    let period = st.opts.sse_keepalive;
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let beat_period = st.opts.sse_heartbeat.max(std::time::Duration::from_millis(100));
    let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + beat_period, beat_period);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut config = st.config.clone();
    config.borrow_and_update();
    let s = Stream_ {
        state: st.engine.state(),
        events: st.engine.events(),
        config: Some(config),
        session,
        ended,
        step: 0,
        tick,
        beat,
        _gauge: Gauge(st.metrics.clone()),
        st,
    };
    let stream = futures_util::stream::unfold(s, |mut s| async move { s.next().await.map(|e| (Ok(e), s)) });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(period)))
}
