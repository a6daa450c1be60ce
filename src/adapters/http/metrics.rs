//! A tiny Prometheus text-format registry: labelled counters and gauges.
//!
//! Why not a crate: we need two counter families today and a handful later;
//! a `Mutex<BTreeMap>` is enough at booth scale (a few requests a second) and
//! keeps the dependency tree small. Other modules register their own
//! families through a clone of [`Metrics`] (the daemon creates one and hands
//! it to every adapter); `/metrics` renders all of them.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

/// HTTP requests by matched route and status code.
pub const HTTP_REQUESTS: &str = "studiod_http_requests_total";
/// Commands received over HTTP by action and result (`ok` or an error code).
pub const COMMANDS: &str = "studiod_http_commands_total";
/// Open server-sent-event streams.
pub const SSE_CLIENTS: &str = "studiod_http_sse_clients";
/// Jog/zoom moves stopped by the dead-man watchdog.
pub const DEADMAN_STOPS: &str = "studiod_http_deadman_stops_total";
/// Wrong PINs/tokens and lockouts.
pub const AUTH_FAILURES: &str = "studiod_http_auth_failures_total";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        }
    }
}

type Labels = Vec<(String, String)>;

#[derive(Debug)]
struct Family {
    help: String,
    kind: Kind,
    series: BTreeMap<Labels, f64>,
}

/// Shared handle to the registry. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    families: Arc<Mutex<BTreeMap<String, Family>>>,
}

impl Metrics {
    /// A registry with the HTTP adapter's own families described.
    pub fn new() -> Metrics {
        let m = Metrics::default();
        m.describe(HTTP_REQUESTS, Kind::Counter, "HTTP requests by route and status");
        m.describe(COMMANDS, Kind::Counter, "Commands received over HTTP by action and result");
        m.describe(SSE_CLIENTS, Kind::Gauge, "Open live-update (SSE) streams");
        m.describe(DEADMAN_STOPS, Kind::Counter, "Camera moves stopped because the client's keep-alive stopped");
        m.describe(AUTH_FAILURES, Kind::Counter, "Rejected PINs and tokens by reason");
        m
    }

    /// Register (or re-describe) a family. Names must follow Prometheus rules
    /// (`[a-zA-Z_:][a-zA-Z0-9_:]*`); that is the caller's job, they are constants.
    pub fn describe(&self, name: &str, kind: Kind, help: &str) {
        let mut f = self.lock();
        let fam = f.entry(name.to_string()).or_insert_with(|| Family { help: String::new(), kind, series: BTreeMap::new() });
        fam.help = help.to_string();
        fam.kind = kind;
    }

    /// Add 1 to a counter series.
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1.0);
    }

    /// Add `v` to a series (counters and gauges; a negative `v` only makes sense for gauges).
    pub fn add(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        let mut f = self.lock();
        // An undescribed family is still exported, as an untyped counter, rather than lost.
        let fam = f.entry(name.to_string()).or_insert_with(|| Family { help: name.to_string(), kind: Kind::Counter, series: BTreeMap::new() });
        *fam.series.entry(owned(labels)).or_insert(0.0) += v;
    }

    /// Set a gauge series.
    pub fn set(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        let mut f = self.lock();
        let fam = f.entry(name.to_string()).or_insert_with(|| Family { help: name.to_string(), kind: Kind::Gauge, series: BTreeMap::new() });
        fam.series.insert(owned(labels), v);
    }

    /// Current value of one series (tests and diagnostics).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.lock().get(name).and_then(|f| f.series.get(&owned(labels)).copied()).unwrap_or(0.0)
    }

    /// Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let f = self.lock();
        let mut out = String::new();
        for (name, fam) in f.iter() {
            let _ = writeln!(out, "# HELP {name} {}", fam.help.replace('\\', "\\\\").replace('\n', "\\n"));
            let _ = writeln!(out, "# TYPE {name} {}", fam.kind.as_str());
            for (labels, v) in &fam.series {
                out.push_str(name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, val)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape(val));
                    }
                    out.push('}');
                }
                let _ = writeln!(out, " {v}");
            }
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Family>> {
        // A panic while holding the lock cannot leave a half-written counter
        // that matters; keep serving metrics rather than poisoning /metrics.
        self.families.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn owned(labels: &[(&str, &str)]) -> Labels {
    labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_text_format_with_escaped_labels() {
        let m = Metrics::new();
        m.inc(HTTP_REQUESTS, &[("route", "/api/state"), ("status", "200")]);
        m.inc(HTTP_REQUESTS, &[("route", "/api/state"), ("status", "200")]);
        m.inc(COMMANDS, &[("action", "apply_scene"), ("result", "a\"b")]);
        let text = m.render();
        assert!(text.contains("# TYPE studiod_http_requests_total counter"), "{text}");
        assert!(text.contains("studiod_http_requests_total{route=\"/api/state\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("result=\"a\\\"b\""), "{text}");
        assert_eq!(m.get(HTTP_REQUESTS, &[("route", "/api/state"), ("status", "200")]), 2.0);
    }
}
