//! The daemon-wide Prometheus registry: labelled counters, gauges and
//! histograms in the text exposition format, served at `/metrics`.
//!
//! Why not a crate: a dozen families at booth scale (a few commands a
//! second) fit a `Mutex<BTreeMap>`, and it keeps the dependency tree small.
//! The daemon creates one [`Metrics`] and hands clones to the engine and the
//! adapters; values that live inside device tasks (Art-Net frames, serial
//! errors) or in statics (MQTT reconnects) are read by *collectors* run
//! just before each render, so scrapes never wait on a device task.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Commands executed by the engine, from every origin, by action, result
/// (`ok` or an error code) and origin (mqtt, http, cli, startup).
pub const COMMANDS_TOTAL: &str = "studiod_commands_total";
/// Seconds from an `apply_scene` starting on the devices to its last device
/// finishing (camera completions included), by result.
pub const APPLY_SECONDS: &str = "studiod_scene_apply_seconds";
/// Devices online now, by kind (camera, fixture, artnet, osc).
pub const DEVICES_ONLINE: &str = "studiod_devices_online";
/// Devices whose health nothing can verify (sACN, OSC, Art-Net without poll), by kind.
pub const DEVICES_UNVERIFIED: &str = "studiod_devices_unverified";
/// Devices configured, by kind (so `online / configured` can be alerted on).
pub const DEVICES: &str = "studiod_devices";
/// ArtDmx frames handed to the kernel, by output.
pub const ARTNET_FRAMES: &str = "studiod_artnet_frames_total";
/// ArtDmx sends that failed, by output.
pub const ARTNET_SEND_ERRORS: &str = "studiod_artnet_send_errors_total";
/// Serial link problems by port and kind (`port_lost`, `open_failed`,
/// `timeout`, `refused`, …).
pub const SERIAL_ERRORS: &str = "studiod_serial_errors_total";
/// VISCA resends (after an ACK/answer timeout), by port.
pub const SERIAL_RETRIES: &str = "studiod_serial_retries_total";
/// Reconnections to the MQTT broker since start.
pub const MQTT_RECONNECTS: &str = "studiod_mqtt_reconnects_total";

/// Apply-latency buckets (seconds): lights alone take a millisecond, camera
/// moves up to several seconds on a slow PTZ head.
pub const APPLY_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Seconds from an adapter receiving a command (MQTT: the publish read off
/// the broker connection; HTTP: the request) to the lighting task handing
/// the first ArtDmx frame rendered with the command's look to the kernel, by
/// origin: "command received → lights start changing". Only commands that
/// set lights (`apply_scene` with lights, `set_light`, `blackout`) and run at
/// once are counted; scheduled scenes (`at`) and camera-only commands are not.
pub const COMMAND_FIRST_FRAME_SECONDS: &str = "studiod_command_first_frame_seconds";

/// Buckets (seconds) for [`COMMAND_FIRST_FRAME_SECONDS`]: a look sent at once
/// takes well under a millisecond, one that waits for the next frame-clock
/// tick up to a frame period (22.7 ms at 44 Hz), a stalled daemon seconds.
pub const FIRST_FRAME_BUCKETS: &[f64] = &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

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
/// Connections closed to make room (`evicted`) or refused (`refused_per_address`, `refused_total`).
pub const HTTP_CONNECTIONS_DROPPED: &str = "studiod_http_connections_dropped_total";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

type Labels = Vec<(String, String)>;

#[derive(Debug)]
struct Family {
    help: String,
    kind: Kind,
    series: BTreeMap<Labels, f64>,
    /// Histograms only: upper bounds, and per series the bucket counts, sum and count.
    buckets: Vec<f64>,
    histograms: BTreeMap<Labels, Histogram>,
    /// Histograms only: series recorded lock-free through a [`DurationHistogram`].
    durations: BTreeMap<Labels, DurationHistogram>,
    /// Counters recorded lock-free through a [`Counter`] handle.
    counters: BTreeMap<Labels, Counter>,
}

impl Family {
    fn new(help: &str, kind: Kind) -> Family {
        Family {
            help: help.to_string(),
            kind,
            series: BTreeMap::new(),
            buckets: Vec::new(),
            histograms: BTreeMap::new(),
            durations: BTreeMap::new(),
            counters: BTreeMap::new(),
        }
    }
}

/// One histogram series of durations, recorded without a lock or an
/// allocation (a bucket search and two atomic adds), for hot paths such as
/// the lighting task's frame loop. Get it once from
/// [`Metrics::duration_histogram`]; clones record into the same series.
#[derive(Clone)]
pub struct DurationHistogram(Arc<DurationSeries>);

struct DurationSeries {
    /// Bucket upper bounds in nanoseconds.
    bounds_ns: Vec<u64>,
    /// Non-cumulative counts per bucket; one more than the bounds (+Inf).
    counts: Vec<AtomicU64>,
    /// Sum of all observations in nanoseconds (u64: 584 years before it wraps).
    sum_ns: AtomicU64,
}

impl std::fmt::Debug for DurationHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DurationHistogram").field("count", &self.count()).finish_non_exhaustive()
    }
}

impl DurationHistogram {
    fn new(buckets: &[f64]) -> DurationHistogram {
        DurationHistogram(Arc::new(DurationSeries {
            bounds_ns: buckets.iter().map(|b| (b * 1e9).round() as u64).collect(),
            counts: (0..=buckets.len()).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }))
    }

    /// A series in no registry (what a component records into when the
    /// daemon gave it none, e.g. in unit tests).
    pub fn detached() -> DurationHistogram {
        DurationHistogram::new(&[])
    }

    /// Record one observation.
    pub fn observe(&self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let s = &self.0;
        let slot = s.bounds_ns.partition_point(|b| *b < ns);
        s.counts[slot].fetch_add(1, Ordering::Relaxed);
        s.sum_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Observations so far.
    pub fn count(&self) -> u64 {
        self.0.counts.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }

    /// Sum of the observations so far. With one observation between two
    /// reads, the difference is that observation exactly (benches use this).
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.0.sum_ns.load(Ordering::Relaxed))
    }
}

/// One counter series, incremented without a lock or an allocation (one
/// atomic add), for hot paths (every Art-Net frame) and for counters owned by
/// a component (MQTT reconnects). Get it once from [`Metrics::counter`];
/// clones count into the same series.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// A counter in no registry (a component's default when the daemon gave it none).
    pub fn detached() -> Counter {
        Counter::default()
    }

    pub fn inc(&self) {
        self.add(1);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Clone, Default)]
struct Histogram {
    /// Non-cumulative counts per bucket; one more than the bounds (+Inf).
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Run before every render to copy values kept elsewhere into the registry.
type Collector = Arc<dyn Fn(&Metrics) + Send + Sync>;

/// Shared handle to the registry. Cheap to clone.
#[derive(Clone, Default)]
pub struct Metrics {
    families: Arc<Mutex<BTreeMap<String, Family>>>,
    collectors: Arc<Mutex<Vec<Collector>>>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// A registry with every daemon family described (so `/metrics` lists
    /// them, with HELP and TYPE, even before the first sample).
    pub fn new() -> Metrics {
        let m = Metrics::default();
        m.describe(COMMANDS_TOTAL, Kind::Counter, "Commands executed by action, result and origin");
        m.describe_histogram(APPLY_SECONDS, "Scene apply duration, devices started to last device done", APPLY_BUCKETS);
        m.describe(DEVICES_ONLINE, Kind::Gauge, "Devices verified online by kind");
        m.describe(DEVICES_UNVERIFIED, Kind::Gauge, "Devices whose health cannot be verified (sACN, OSC, Art-Net without poll) by kind");
        m.describe(DEVICES, Kind::Gauge, "Devices configured by kind");
        m.describe(ARTNET_FRAMES, Kind::Counter, "DMX frames (ArtDmx or sACN) sent by output");
        m.describe(ARTNET_SEND_ERRORS, Kind::Counter, "ArtDmx sends that failed by output");
        m.describe(SERIAL_ERRORS, Kind::Counter, "Serial link errors by port and kind");
        m.describe(SERIAL_RETRIES, Kind::Counter, "VISCA packets resent after a timeout, by port");
        m.describe(MQTT_RECONNECTS, Kind::Counter, "Reconnections to the MQTT broker");
        // At 0 from the start, with or without MQTT, so "never reconnected" reads 0.
        m.counter(MQTT_RECONNECTS, &[]);
        m.describe_histogram(
            COMMAND_FIRST_FRAME_SECONDS,
            "Command received by an adapter to the first Art-Net frame with its look sent, by origin",
            FIRST_FRAME_BUCKETS,
        );
        m.describe(HTTP_REQUESTS, Kind::Counter, "HTTP requests by route and status");
        m.describe(COMMANDS, Kind::Counter, "Commands received over HTTP by action and result");
        m.describe(SSE_CLIENTS, Kind::Gauge, "Open live-update (SSE) streams");
        m.describe(DEADMAN_STOPS, Kind::Counter, "Camera moves stopped because the client's keep-alive stopped");
        m.describe(AUTH_FAILURES, Kind::Counter, "Rejected PINs and tokens by reason");
        m.describe(HTTP_CONNECTIONS_DROPPED, Kind::Counter, "HTTP connections closed to make room or refused, by reason");
        m
    }

    /// Register (or re-describe) a family. Names must follow Prometheus rules
    /// (`[a-zA-Z_:][a-zA-Z0-9_:]*`); that is the caller's job, they are constants.
    pub fn describe(&self, name: &str, kind: Kind, help: &str) {
        let mut f = self.lock();
        let fam = f.entry(name.to_string()).or_insert_with(|| Family::new(help, kind));
        fam.help = help.to_string();
        fam.kind = kind;
    }

    /// Register a histogram family with these bucket upper bounds (ascending; +Inf is implied).
    pub fn describe_histogram(&self, name: &str, help: &str, buckets: &[f64]) {
        let mut f = self.lock();
        let fam = f.entry(name.to_string()).or_insert_with(|| Family::new(help, Kind::Histogram));
        fam.help = help.to_string();
        fam.kind = Kind::Histogram;
        if fam.buckets != buckets {
            fam.buckets = buckets.to_vec();
            fam.histograms.clear();
            fam.durations.clear();
        }
    }

    /// The lock-free series of histogram family `name` with these labels,
    /// created on first use with the family's buckets (the apply-latency
    /// buckets for an undescribed family). Call once, keep the handle.
    pub fn duration_histogram(&self, name: &str, labels: &[(&str, &str)]) -> DurationHistogram {
        let mut f = self.lock();
        let fam = f.entry(name.to_string()).or_insert_with(|| {
            let mut fam = Family::new(name, Kind::Histogram);
            fam.buckets = APPLY_BUCKETS.to_vec();
            fam
        });
        let buckets = fam.buckets.clone();
        fam.durations.entry(owned(labels)).or_insert_with(|| DurationHistogram::new(&buckets)).clone()
    }

    /// The lock-free series of counter family `name` with these labels
    /// (created at 0, so it is exported before the first event). Call once,
    /// keep the handle.
    pub fn counter(&self, name: &str, labels: &[(&str, &str)]) -> Counter {
        let mut f = self.lock();
        let fam = f.entry(name.to_string()).or_insert_with(|| Family::new(name, Kind::Counter));
        fam.counters.entry(owned(labels)).or_default().clone()
    }

    /// Record one observation in a histogram series. An undescribed family
    /// gets the apply-latency buckets.
    pub fn observe(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        let mut f = self.lock();
        let fam = f.entry(name.to_string()).or_insert_with(|| {
            let mut fam = Family::new(name, Kind::Histogram);
            fam.buckets = APPLY_BUCKETS.to_vec();
            fam
        });
        let n = fam.buckets.len() + 1;
        let slot = fam.buckets.iter().position(|b| v <= *b).unwrap_or(n - 1);
        let h = fam.histograms.entry(owned(labels)).or_insert_with(|| Histogram { counts: vec![0; n], ..Default::default() });
        h.counts[slot] += 1;
        h.sum += v;
        h.count += 1;
    }

    /// Observations recorded in a histogram series (tests and diagnostics).
    pub fn histogram_count(&self, name: &str, labels: &[(&str, &str)]) -> u64 {
        let f = self.lock();
        let Some(fam) = f.get(name) else { return 0 };
        let labels = owned(labels);
        fam.histograms.get(&labels).map(|h| h.count).or_else(|| fam.durations.get(&labels).map(|d| d.count())).unwrap_or(0)
    }

    /// Run `f` before every render (it sets gauges/counters from elsewhere).
    pub fn add_collector(&self, f: impl Fn(&Metrics) + Send + Sync + 'static) {
        self.collectors.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::new(f));
    }

    /// Add 1 to a counter series.
    pub fn inc(&self, name: &str, labels: &[(&str, &str)]) {
        self.add(name, labels, 1.0);
    }

    /// Add `v` to a series (counters and gauges; a negative `v` only makes sense for gauges).
    pub fn add(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        let mut f = self.lock();
        // An undescribed family is still exported, as an untyped counter, rather than lost.
        let fam = f.entry(name.to_string()).or_insert_with(|| Family::new(name, Kind::Counter));
        *fam.series.entry(owned(labels)).or_insert(0.0) += v;
    }

    /// Set a gauge series.
    pub fn set(&self, name: &str, labels: &[(&str, &str)], v: f64) {
        let mut f = self.lock();
        let fam = f.entry(name.to_string()).or_insert_with(|| Family::new(name, Kind::Gauge));
        fam.series.insert(owned(labels), v);
    }

    /// Current value of one series (tests and diagnostics).
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let labels = owned(labels);
        let f = self.lock();
        let fam = f.get(name);
        fam.and_then(|f| f.series.get(&labels).copied().or_else(|| f.counters.get(&labels).map(|c| c.get() as f64))).unwrap_or(0.0)
    }

    /// Prometheus text exposition format 0.0.4 (collectors run first).
    pub fn render(&self) -> String {
        // Cloned out so a collector may use the registry without deadlocking.
        let collectors: Vec<Collector> = self.collectors.lock().unwrap_or_else(|e| e.into_inner()).clone();
        for c in collectors {
            c(self);
        }
        let f = self.lock();
        let mut out = String::new();
        for (name, fam) in f.iter() {
            let _ = writeln!(out, "# HELP {name} {}", fam.help.replace('\\', "\\\\").replace('\n', "\\n"));
            let _ = writeln!(out, "# TYPE {name} {}", fam.kind.as_str());
            for (labels, v) in &fam.series {
                write_sample(&mut out, name, labels, None, *v);
            }
            for (labels, c) in &fam.counters {
                write_sample(&mut out, name, labels, None, c.get() as f64);
            }
            for (labels, h) in &fam.histograms {
                let bucket = format!("{name}_bucket");
                let mut cumulative = 0;
                for (i, c) in h.counts.iter().enumerate() {
                    cumulative += c;
                    let le = fam.buckets.get(i).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                    write_sample(&mut out, &bucket, labels, Some(&le), cumulative as f64);
                }
                write_sample(&mut out, &format!("{name}_sum"), labels, None, h.sum);
                write_sample(&mut out, &format!("{name}_count"), labels, None, h.count as f64);
            }
            for (labels, d) in &fam.durations {
                let bucket = format!("{name}_bucket");
                // The count is the +Inf bucket, so the two always agree even
                // when a sample lands during the scrape.
                let mut cumulative = 0;
                for (i, c) in d.0.counts.iter().enumerate() {
                    cumulative += c.load(Ordering::Relaxed);
                    let le = fam.buckets.get(i).map_or_else(|| "+Inf".to_string(), |b| b.to_string());
                    write_sample(&mut out, &bucket, labels, Some(&le), cumulative as f64);
                }
                write_sample(&mut out, &format!("{name}_sum"), labels, None, d.sum().as_secs_f64());
                write_sample(&mut out, &format!("{name}_count"), labels, None, cumulative as f64);
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

fn write_sample(out: &mut String, name: &str, labels: &Labels, le: Option<&str>, v: f64) {
    out.push_str(name);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let le = le.map(|l| ("le".to_string(), l.to_string()));
        for (i, (k, val)) in labels.iter().chain(le.as_ref()).enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{k}=\"{}\"", escape(val));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {v}");
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

    #[test]
    fn histogram_buckets_are_cumulative_and_collectors_run_on_render() {
        let m = Metrics::new();
        m.observe(APPLY_SECONDS, &[("result", "ok")], 0.003);
        m.observe(APPLY_SECONDS, &[("result", "ok")], 0.2);
        m.observe(APPLY_SECONDS, &[("result", "ok")], 60.0);
        m.add_collector(|m| m.set(DEVICES_ONLINE, &[("kind", "camera")], 3.0));
        let text = m.render();
        assert!(text.contains("# TYPE studiod_scene_apply_seconds histogram"), "{text}");
        assert!(text.contains("studiod_scene_apply_seconds_bucket{result=\"ok\",le=\"0.005\"} 1\n"), "{text}");
        assert!(text.contains("studiod_scene_apply_seconds_bucket{result=\"ok\",le=\"0.25\"} 2\n"), "{text}");
        assert!(text.contains("studiod_scene_apply_seconds_bucket{result=\"ok\",le=\"+Inf\"} 3\n"), "{text}");
        assert!(text.contains("studiod_scene_apply_seconds_count{result=\"ok\"} 3\n"), "{text}");
        assert!(text.contains("studiod_devices_online{kind=\"camera\"} 3\n"), "{text}");
        assert_eq!(m.histogram_count(APPLY_SECONDS, &[("result", "ok")]), 3);
    }

    #[test]
    fn duration_histogram_records_without_the_registry_lock_and_renders() {
        let m = Metrics::new();
        let h = m.duration_histogram(COMMAND_FIRST_FRAME_SECONDS, &[("origin", "mqtt")]);
        h.observe(Duration::from_micros(80));
        h.observe(Duration::from_micros(250)); // on a bound: `le` is inclusive
        h.observe(Duration::from_millis(22));
        h.observe(Duration::from_secs(9));
        // Same series through a second handle.
        m.duration_histogram(COMMAND_FIRST_FRAME_SECONDS, &[("origin", "mqtt")]).observe(Duration::from_millis(3));
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum(), Duration::from_micros(80 + 250 + 22_000 + 9_000_000 + 3_000));
        let text = m.render();
        let name = COMMAND_FIRST_FRAME_SECONDS;
        assert!(text.contains(&format!("# TYPE {name} histogram")), "{text}");
        assert!(text.contains(&format!("{name}_bucket{{origin=\"mqtt\",le=\"0.0001\"}} 1\n")), "{text}");
        assert!(text.contains(&format!("{name}_bucket{{origin=\"mqtt\",le=\"0.00025\"}} 2\n")), "{text}");
        assert!(text.contains(&format!("{name}_bucket{{origin=\"mqtt\",le=\"0.005\"}} 3\n")), "{text}");
        assert!(text.contains(&format!("{name}_bucket{{origin=\"mqtt\",le=\"0.025\"}} 4\n")), "{text}");
        assert!(text.contains(&format!("{name}_bucket{{origin=\"mqtt\",le=\"5\"}} 4\n")), "{text}");
        assert!(text.contains(&format!("{name}_bucket{{origin=\"mqtt\",le=\"+Inf\"}} 5\n")), "{text}");
        assert!(text.contains(&format!("{name}_count{{origin=\"mqtt\"}} 5\n")), "{text}");
        assert!(text.contains(&format!("{name}_sum{{origin=\"mqtt\"}} 9.02533\n")), "{text}");
        assert_eq!(m.histogram_count(name, &[("origin", "mqtt")]), 5);
    }
}
