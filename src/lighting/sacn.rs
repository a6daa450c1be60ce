//! sACN (ANSI E1.31) output: a non-blocking unicast sender on the codec in
//! [`super::e131`], and the booth's stable CID kept in `state_dir`.
//!
//! Like Art-Net here, sACN is unicast to each output's `target`: nothing is
//! multicast or broadcast.

use std::collections::BTreeSet;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::time::{Duration, Instant};

use super::artnet::{SendStats, Sent};
use super::e131::{self, Cid, DataHeader};
use super::udp::TargetSocket;

/// One sACN output: a unicast target and a universe 1–63999.
#[derive(Debug, Clone, PartialEq)]
pub struct SacnOutput {
    pub name: String,
    pub target: SocketAddr,
    pub universe: u16,
    /// 0–200 (E1.31 default 100).
    pub priority: u8,
}

#[derive(Debug, thiserror::Error)]
pub enum SacnError {
    #[error("sACN universe {0} is outside 1–63999")]
    Universe(u16),
    #[error("binding the sACN socket: {0}")]
    Bind(#[source] io::Error),
}

/// Where the booth's CID is kept.
pub fn cid_path(state_dir: &Path) -> PathBuf {
    state_dir.join("sacn-cid")
}

/// The booth's CID: read from `state_dir/sacn-cid`, or made (random UUID)
/// and written there atomically, so receivers see the same source across
/// restarts. Without a state dir (tests), a fresh one each run.
pub fn load_or_create_cid(state_dir: Option<&Path>) -> Cid {
    let fresh = || {
        let mut b = [0u8; 16];
        getrandom::fill(&mut b).expect("OS random number generator");
        e131::cid_from_random(b)
    };
    let Some(dir) = state_dir else { return fresh() };
    let path = cid_path(dir);
    match std::fs::read_to_string(&path) {
        Ok(s) => match e131::cid_from_str(&s) {
            Some(cid) => return cid,
            None => tracing::warn!(path = %path.display(), "sACN CID file unreadable; making a new CID"),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot read the sACN CID; making a new one"),
    }
    let cid = fresh();
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| crate::fsutil::write_atomic(&path, format!("{}\n", e131::cid_to_string(&cid)).as_bytes()));
    if let Err(e) = written {
        tracing::warn!(path = %path.display(), error = %e, "cannot keep the sACN CID; receivers will see a new source after a restart");
    }
    cid
}

#[derive(Debug)]
struct Universe {
    socket: usize,
    universe: u16,
    priority: u8,
    /// Sequence of the last packet sent (E1.31 sequences wrap 255 → 0).
    sequence: u8,
    last_sent: Option<Instant>,
}

/// Sends E1.31 data and sync packets to every output's unicast target.
/// Non-blocking like the Art-Net sender: a datagram the kernel cannot take
/// now is dropped and counted (the next frame supersedes it).
#[derive(Debug)]
pub struct SacnSender {
    sockets: Vec<TargetSocket>,
    universes: Vec<Universe>,
    cid: Cid,
    source_name: String,
    stats: SendStats,
    sync_sequence: u8,
    buf: Box<[u8; e131::MAX_DATA_LEN]>,
    last_error_log: Option<Instant>,
    suppressed: u64,
}

impl SacnSender {
    /// One ephemeral UDP socket per distinct target (on loopback for a
    /// loopback target), connected when the kernel allows it.
    pub async fn bind(outputs: &[SacnOutput], cid: Cid, source_name: &str) -> Result<SacnSender, SacnError> {
        let mut sockets: Vec<TargetSocket> = Vec::new();
        let mut universes = Vec::with_capacity(outputs.len());
        for o in outputs {
            if !e131::UNIVERSES.contains(&o.universe) {
                return Err(SacnError::Universe(o.universe));
            }
            let socket = match sockets.iter().position(|s| s.target == o.target) {
                Some(i) => i,
                None => {
                    sockets.push(TargetSocket::open(o.target).await.map_err(SacnError::Bind)?);
                    sockets.len() - 1
                }
            };
            universes.push(Universe { socket, universe: o.universe, priority: o.priority, sequence: 255, last_sent: None });
        }
        Ok(SacnSender {
            sockets,
            universes,
            cid,
            source_name: source_name.to_string(),
            stats: SendStats::default(),
            sync_sequence: 255,
            buf: Box::new([0u8; e131::MAX_DATA_LEN]),
            last_error_log: None,
            suppressed: 0,
        })
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }

    pub fn cid(&self) -> Cid {
        self.cid
    }

    pub fn last_sent(&self, u: usize) -> Option<Instant> {
        self.universes.get(u).and_then(|x| x.last_sent)
    }

    /// Send one data packet for universe `u` with the next sequence number.
    /// `sync_address` ≠ 0 makes receivers hold it until that sync packet.
    pub fn send_dmx(&mut self, u: usize, data: &[u8], now: Instant, sync_address: u16, options: u8) -> Option<Sent> {
        let uni = self.universes.get_mut(u)?;
        uni.sequence = uni.sequence.wrapping_add(1);
        uni.last_sent = Some(now);
        let h = DataHeader {
            cid: &self.cid,
            source_name: &self.source_name,
            priority: uni.priority,
            sync_address,
            sequence: uni.sequence,
            options,
            universe: uni.universe,
        };
        let n = e131::encode_data(&mut self.buf[..], &h, data);
        let sequence = uni.sequence;
        let socket = uni.socket;
        let ok = match self.sockets[socket].try_send(&self.buf[..n]) {
            Ok(_) => {
                self.stats.packets_sent += 1;
                true
            }
            Err(e) => {
                self.stats.send_errors += 1;
                self.log_error(now, socket, &e);
                false
            }
        };
        Some(Sent { sequence, ok })
    }

    /// One sync packet on `sync_address` to every target that got data for
    /// `universes` (unicast, like the data).
    pub fn send_sync(&mut self, universes: impl IntoIterator<Item = usize>, sync_address: u16, now: Instant) {
        let targets: BTreeSet<usize> = universes.into_iter().filter_map(|u| self.universes.get(u)).map(|u| u.socket).collect();
        if targets.is_empty() {
            return;
        }
        self.sync_sequence = self.sync_sequence.wrapping_add(1);
        let packet = e131::encode_sync(&self.cid, self.sync_sequence, sync_address);
        for i in targets {
            match self.sockets[i].try_send(&packet) {
                Ok(_) => self.stats.syncs_sent += 1,
                Err(e) => {
                    self.stats.send_errors += 1;
                    self.log_error(now, i, &e);
                }
            }
        }
    }

    pub fn universe_count(&self) -> usize {
        self.universes.len()
    }

    fn log_error(&mut self, now: Instant, socket: usize, e: &io::Error) {
        match self.last_error_log {
            Some(t) if now.saturating_duration_since(t) < Duration::from_secs(10) => self.suppressed += 1,
            _ => {
                tracing::warn!(target = %self.sockets[socket].target, error = %e, suppressed = self.suppressed, "sACN send failed");
                self.last_error_log = Some(now);
                self.suppressed = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cid_is_kept_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_cid(Some(dir.path()));
        let b = load_or_create_cid(Some(dir.path()));
        assert_eq!(a, b);
        let text = std::fs::read_to_string(cid_path(dir.path())).unwrap();
        assert_eq!(text.trim(), e131::cid_to_string(&a));
        std::fs::write(cid_path(dir.path()), "garbage").unwrap();
        let c = load_or_create_cid(Some(dir.path()));
        assert_ne!(c, a, "an unreadable file is replaced by a new CID");
        assert_eq!(load_or_create_cid(Some(dir.path())), c);
        assert_ne!(load_or_create_cid(None), load_or_create_cid(None));
    }
}
