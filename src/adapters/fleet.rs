//! `studiod fleet`: a technician's read-only view of every booth on a site
//! broker (CONTRACT §7, issue #13), built from what each booth publishes
//! retained: `{prefix}/{id}/status` and `{prefix}/{id}/state`.
//!
//! ```text
//!   broker ──retained status/state──▶ Fleet (pure: observe → rows) ──▶ table / JSON
//! ```
//!
//! It subscribes and never publishes, so under the shipped ACL template it
//! needs only the read-only `site-tech` account. The view itself ([`Fleet`])
//! is pure and unit-tested; the loop around it only feeds it messages.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use rumqttc::v5::mqttbytes::v5::Packet;
use rumqttc::v5::mqttbytes::QoS;
use rumqttc::v5::{AsyncClient, Event};
use serde_json::{json, Value};

use crate::config::model::Mqtt;

/// `studiod fleet` arguments.
#[derive(Debug, clap::Args)]
pub struct FleetArgs {
    /// The site broker, mqtt://HOST[:PORT] or mqtts://HOST[:PORT].
    #[arg(long, value_name = "URL")]
    pub mqtt: String,
    /// The booths' topic prefix.
    #[arg(long, default_value = "studiod")]
    pub prefix: String,
    /// Broker account (the technician's read-only one).
    #[arg(long)]
    pub username: Option<String>,
    /// File holding that account's password.
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// CA certificate (PEM) for mqtts://.
    #[arg(long)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mqtts://.
    #[arg(long, requires = "key_file")]
    pub cert_file: Option<PathBuf>,
    #[arg(long, requires = "cert_file")]
    pub key_file: Option<PathBuf>,
    /// Print one JSON snapshot and exit (for scripts) instead of a live table.
    #[arg(long)]
    pub json: bool,
}

/// What the site's booths last said about themselves.
#[derive(Debug, Default)]
pub struct Fleet {
    booths: BTreeMap<String, Seen>,
}

#[derive(Debug, Default)]
struct Seen {
    status: Option<Value>,
    state: Option<Value>,
}

/// One booth's line.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub booth: String,
    /// `None`: no `status` seen yet.
    pub online: Option<bool>,
    pub version: Option<String>,
    pub scene: Option<String>,
    pub slot: Option<Value>,
    /// Devices the booth reports offline, by name.
    pub offline: Vec<String>,
    pub scenes_hash: Option<String>,
    /// Holds another scene set than most booths do.
    pub hash_differs: bool,
    pub clock_synced: Option<bool>,
}

impl Fleet {
    /// Take one message. Returns whether the view changed. Anything that is
    /// not `{prefix}/{id}/status|state` with a JSON object is ignored.
    pub fn observe(&mut self, prefix: &str, topic: &str, payload: &[u8]) -> bool {
        let Some(rest) = topic.strip_prefix(prefix.trim_end_matches('/')).and_then(|r| r.strip_prefix('/')) else {
            return false;
        };
        let Some((booth, kind)) = rest.split_once('/') else { return false };
        if booth.is_empty() || !matches!(kind, "status" | "state") {
            return false;
        }
        // An empty retained payload clears the topic (a booth taken out).
        let value = if payload.is_empty() {
            None
        } else {
            match serde_json::from_slice::<Value>(payload) {
                Ok(v) if v.is_object() => Some(v),
                _ => return false,
            }
        };
        let seen = self.booths.entry(booth.to_string()).or_default();
        let slot = if kind == "status" { &mut seen.status } else { &mut seen.state };
        if *slot == value {
            return false;
        }
        *slot = value;
        if seen.status.is_none() && seen.state.is_none() {
            self.booths.remove(booth);
        }
        true
    }

    /// The scene set most booths hold (ties: the smallest hash, so it is stable).
    pub fn majority_hash(&self) -> Option<String> {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for seen in self.booths.values() {
            if let Some(h) = seen.state.as_ref().and_then(|s| s["scenes_hash"].as_str()).filter(|h| !h.is_empty()) {
                *counts.entry(h).or_default() += 1;
            }
        }
        let max = counts.values().copied().max()?;
        counts.into_iter().find(|(_, n)| *n == max).map(|(h, _)| h.to_string())
    }

    pub fn rows(&self) -> Vec<Row> {
        let majority = self.majority_hash();
        self.booths
            .iter()
            .map(|(booth, seen)| {
                let state = seen.state.as_ref();
                let text = |v: Option<&Value>, key: &str| v.and_then(|v| v[key].as_str()).map(str::to_string);
                let scenes_hash = text(state, "scenes_hash").filter(|h| !h.is_empty());
                let mut offline: Vec<String> = state
                    .and_then(|s| s["devices"].as_object())
                    .map(|d| d.iter().filter(|(_, h)| h["online"] == false).map(|(n, _)| n.clone()).collect())
                    .unwrap_or_default();
                offline.sort();
                Row {
                    booth: booth.clone(),
                    online: seen.status.as_ref().and_then(|s| s["online"].as_bool()),
                    version: text(seen.status.as_ref(), "version"),
                    scene: text(state, "scene"),
                    slot: state.map(|s| s["slot"].clone()).filter(|v| !v.is_null()),
                    offline,
                    hash_differs: matches!((&scenes_hash, &majority), (Some(h), Some(m)) if h != m),
                    scenes_hash,
                    clock_synced: state.and_then(|s| s["clock_synced"].as_bool()),
                }
            })
            .collect()
    }

    /// The snapshot `--json` prints.
    pub fn to_json(&self) -> Value {
        let booths: Vec<Value> = self
            .rows()
            .into_iter()
            .map(|r| {
                json!({
                    "booth": r.booth, "online": r.online, "version": r.version, "scene": r.scene, "slot": r.slot,
                    "devices_offline": r.offline, "scenes_hash": r.scenes_hash, "scenes_hash_differs": r.hash_differs,
                    "clock_synced": r.clock_synced,
                })
            })
            .collect();
        json!({"booths": booths, "majority_scenes_hash": self.majority_hash()})
    }

    /// The live table: one line per booth, plain text.
    pub fn table(&self) -> String {
        let rows = self.rows();
        let mut lines = vec![["BOOTH", "STATUS", "SCENE", "SLOT", "OFFLINE DEVICES", "SCENES", "CLOCK", "VERSION"].map(String::from)];
        for r in &rows {
            let yes_no = |b: Option<bool>, yes: &str, no: &str| match b {
                Some(true) => yes.to_string(),
                Some(false) => no.to_string(),
                None => "?".to_string(),
            };
            lines.push([
                r.booth.clone(),
                yes_no(r.online, "online", "OFFLINE"),
                r.scene.clone().unwrap_or_else(|| "-".into()),
                r.slot.as_ref().map(compact).unwrap_or_else(|| "-".into()),
                if r.offline.is_empty() { "-".into() } else { r.offline.join(", ") },
                match &r.scenes_hash {
                    // 12 hex digits tell sets apart at a glance; `*` marks the odd ones out.
                    Some(h) => format!("{}{}", &h[..h.len().min(12)], if r.hash_differs { " *differs" } else { "" }),
                    None => "-".into(),
                },
                yes_no(r.clock_synced, "synced", "NOT SYNCED"),
                r.version.clone().unwrap_or_else(|| "-".into()),
            ]);
        }
        let widths: Vec<usize> = (0..8).map(|i| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for l in &lines {
            let cells: Vec<String> = l.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        let online = rows.iter().filter(|r| r.online == Some(true)).count();
        out.push_str(&format!("{} booths, {online} online\n", rows.len()));
        out
    }
}

/// A slot as one short line: `{"booking":"b-77","creator":"ana"}` → `booking=b-77 creator=ana`.
fn compact(v: &Value) -> String {
    match v.as_object() {
        Some(o) => o
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
            .collect::<Vec<_>>()
            .join(" "),
        None => v.to_string(),
    }
}

/// After subscribing, the snapshot is complete once the broker has been
/// quiet this long (retained messages come in one burst), or at the cap.
const QUIET: Duration = Duration::from_millis(500);
const SNAPSHOT_CAP: Duration = Duration::from_secs(5);

pub fn main(args: FleetArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("studiod fleet: cannot start runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("studiod fleet: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: FleetArgs) -> anyhow::Result<()> {
    use anyhow::Context;
    let cfg = Mqtt {
        url: args.mqtt.clone(),
        topic_prefix: args.prefix.clone(),
        client_id: None,
        username: args.username.clone(),
        password_file: args.password_file.clone(),
        ca_file: args.ca_file.clone(),
        cert_file: args.cert_file.clone(),
        key_file: args.key_file.clone(),
    };
    // Its own client id, so two technicians' views never kick each other off.
    let id = super::mqtt::random_u64() & 0xFFFF_FFFF_FFFF;
    let mut opts = super::mqtt::connection_options(&cfg, format!("studiod-fleet-{id:012x}"))?;
    // A viewer: no session to keep, nothing queued for it while away.
    opts.set_clean_start(true).set_keep_alive(Duration::from_secs(30));
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    let prefix = args.prefix.trim_end_matches('/').to_string();
    for kind in ["status", "state"] {
        client.subscribe(format!("{prefix}/+/{kind}"), QoS::AtLeastOnce).await.context("subscribe")?;
    }
    let mut fleet = Fleet::default();
    let live = !args.json;
    let tty = std::io::stdout().is_terminal();
    let cap = tokio::time::Instant::now() + SNAPSHOT_CAP;
    let (mut subscribed, mut dirty) = (0, false);
    let mut last_message = tokio::time::Instant::now();
    loop {
        // Retained messages arrive in one burst after the SUBACKs; quiet after them means "all seen".
        let settled = subscribed == 2 && (dirty || !live);
        let wake = if live { last_message + QUIET } else { (last_message + QUIET).min(cap) };
        tokio::select! {
            e = eventloop.poll() => match e {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    subscribed += 1;
                    dirty = true;
                    last_message = tokio::time::Instant::now();
                }
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let topic = String::from_utf8_lossy(&p.topic).into_owned();
                    dirty |= fleet.observe(&prefix, &topic, &p.payload);
                    last_message = tokio::time::Instant::now();
                }
                Ok(_) => {}
                Err(e) if subscribed < 2 => return Err(e).with_context(|| format!("cannot reach the broker at {}", args.mqtt)),
                Err(e) => {
                    // Live view: say so and keep trying; the retained messages come again.
                    eprintln!("studiod fleet: connection lost ({e}); reconnecting");
                    subscribed = 0;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            },
            _ = tokio::time::sleep_until(wake), if settled => {
                if !live {
                    break;
                }
                draw(&fleet, tty);
                dirty = false;
            }
            _ = tokio::time::sleep_until(cap), if !live && subscribed < 2 => {
                anyhow::bail!("no answer from the broker at {} within {} s", args.mqtt, SNAPSHOT_CAP.as_secs());
            }
            _ = tokio::signal::ctrl_c(), if live => return Ok(()),
        }
    }
    println!("{}", serde_json::to_string_pretty(&fleet.to_json())?);
    Ok(())
}

fn draw(fleet: &Fleet, tty: bool) {
    let mut out = std::io::stdout().lock();
    // On a terminal, redraw in place; piped, append one table per change.
    let _ = if tty { write!(out, "\x1b[H\x1b[2J{}", fleet.table()) } else { writeln!(out, "{}", fleet.table()) };
    let _ = out.flush();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(hash: &str, scene: &str, offline: &[&str]) -> Vec<u8> {
        let devices: serde_json::Map<String, Value> =
            ["front", "key"].iter().map(|d| (d.to_string(), json!({"kind": "camera", "online": !offline.contains(d)}))).collect();
        json!({"scene": scene, "slot": {"booking": "b-1"}, "devices": devices, "scenes_hash": hash, "clock_synced": true})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn booths_are_read_from_their_retained_topics() {
        let mut f = Fleet::default();
        assert!(f.observe("studiod", "studiod/la-01/status", br#"{"online":true,"version":"0.1.0"}"#));
        assert!(f.observe("studiod", "studiod/la-01/state", &state("aa", "intro", &["key"])));
        assert!(!f.observe("studiod", "studiod/la-01/state", &state("aa", "intro", &["key"])), "same again: no change");
        assert!(f.observe("studiod", "studiod/la-02/status", br#"{"online":false}"#));
        // Not ours, or not JSON: ignored.
        assert!(!f.observe("studiod", "studiod/la-03/reply", b"{}"));
        assert!(!f.observe("studiod", "other/la-04/status", br#"{"online":true}"#));
        assert!(!f.observe("studiod", "studiod/la-05/status", b"not json"));
        let rows = f.rows();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].booth, "la-01");
        assert_eq!(rows[0].online, Some(true));
        assert_eq!(rows[0].version.as_deref(), Some("0.1.0"));
        assert_eq!(rows[0].scene.as_deref(), Some("intro"));
        assert_eq!(rows[0].offline, vec!["key".to_string()]);
        assert_eq!(rows[0].clock_synced, Some(true));
        assert_eq!((rows[1].online, rows[1].scene.as_deref()), (Some(false), None));
        // An empty retained payload removes what it clears; both gone: the booth is gone.
        assert!(f.observe("studiod", "studiod/la-02/status", b""));
        assert_eq!(f.rows().len(), 1);
    }

    #[test]
    fn the_odd_scene_set_is_marked() {
        let mut f = Fleet::default();
        for (booth, hash) in [("a", "11"), ("b", "11"), ("c", "22"), ("d", "")] {
            f.observe("studiod", &format!("studiod/{booth}/state"), &state(hash, "house", &[]));
        }
        assert_eq!(f.majority_hash().as_deref(), Some("11"));
        let differs: Vec<_> = f.rows().into_iter().filter(|r| r.hash_differs).map(|r| r.booth).collect();
        assert_eq!(differs, vec!["c".to_string()]);
        let table = f.table();
        assert!(table.lines().any(|l| l.starts_with("c ") && l.contains("*differs")), "{table}");
        assert!(table.ends_with("4 booths, 0 online\n"), "{table}");
        let j = f.to_json();
        assert_eq!(j["majority_scenes_hash"], "11");
        assert_eq!(j["booths"][2]["scenes_hash_differs"], true);
        assert_eq!(j["booths"][3]["scenes_hash"], Value::Null);
    }

    #[test]
    fn a_slot_fits_on_one_line() {
        assert_eq!(compact(&json!({"booking": "b-77", "creator": "ana"})), "booking=b-77 creator=ana");
        assert_eq!(compact(&json!("x")), "\"x\"");
    }
}
