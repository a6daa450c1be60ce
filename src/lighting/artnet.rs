//! Art-Net 4 output: ArtDmx / ArtSync / ArtPoll encoding, ArtPollReply
//! decoding, and a non-blocking unicast sender that also polls each node
//! (its health follows [`super::health::NodeHealth`]), all from one socket
//! on the Art-Net port, where the nodes' replies come back; and the one-shot
//! [`Probe`] behind `studiod discover --artnet`.
//!
//! ArtDmx is encoded with `artnet_protocol`, whose `Output` we checked against
//! the Art-Net 4 spec: "Art-Net\0", OpCode 0x5000 little-endian, ProtVer 14
//! big-endian, Sequence, Physical, SubUni/Net as a little-endian 15-bit
//! port-address, Length big-endian padded to even, data. It leaves Sequence
//! to us (we never send 0, which would mean "disabled").
//!
//! ArtSync is encoded by hand: the crate's `ArtCommand::Sync` writes only the
//! 10-byte header + OpCode, without the ProtVer and Aux1/Aux2 fields the spec
//! requires (14 bytes), so nodes would reject it as too short.

use std::collections::BTreeSet;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use artnet_protocol::{ArtCommand, Output, PortAddress};
use tokio::net::UdpSocket;
use tokio::time::{Duration, Instant};

use super::health::{reply_from, NodeHealth, NodeInfo, OutputHealth, ReplySource};
use super::udp::TargetSocket;

/// One Art-Net output: a unicast target and a 15-bit port-address.
#[derive(Debug, Clone, PartialEq)]
pub struct ArtNetOutput {
    pub name: String,
    pub target: SocketAddr,
    /// 15-bit Art-Net port-address (net:7, sub-net:4, universe:4).
    pub universe: u16,
    /// Poll the node (unicast ArtPoll) to verify it is there; `false` for
    /// nodes that do not answer ArtPoll (shown as unverified).
    pub poll: bool,
}

impl ArtNetOutput {
    /// An output whose node is polled (the config's default).
    pub fn new(name: impl Into<String>, target: SocketAddr, universe: u16) -> ArtNetOutput {
        ArtNetOutput { name: name.into(), target, universe, poll: true }
    }
}

/// Art-Net protocol revision we speak (ProtVer).
pub const PROTOCOL_VERSION: u16 = 14;

#[derive(Debug, thiserror::Error)]
pub enum ArtNetError {
    #[error("port-address {0:#06x} is not a 15-bit Art-Net port-address")]
    PortAddress(u16),
    #[error("ArtDmx data must be 1–512 bytes, got {0}")]
    Length(usize),
    #[error("Art-Net is IPv4 only; output {name:?} targets {target}")]
    NotIpv4 { name: String, target: SocketAddr },
    #[error("encoding ArtDmx: {0}")]
    Encode(String),
    #[error("binding the Art-Net socket: {0}")]
    Bind(#[source] io::Error),
    #[error("Art-Net is IPv4 only; cannot send from {0}")]
    BindNotIpv4(SocketAddr),
}

/// Encode one ArtDmx packet.
pub fn encode_artdmx(sequence: u8, port_address: u16, data: &[u8]) -> Result<Vec<u8>, ArtNetError> {
    if data.is_empty() || data.len() > 512 {
        return Err(ArtNetError::Length(data.len()));
    }
    let port_address = PortAddress::try_from(port_address).map_err(|_| ArtNetError::PortAddress(port_address))?;
    let output = Output { sequence, port_address, data: data.to_vec().into(), ..Output::default() };
    ArtCommand::Output(output).write_to_buffer().map_err(|e| ArtNetError::Encode(e.to_string()))
}

/// Encode ArtSync (OpCode 0x5200): ID, OpCode LE, ProtVer BE, Aux1 = Aux2 = 0.
pub fn encode_artsync() -> [u8; 14] {
    let mut p = [0u8; 14];
    p[..8].copy_from_slice(b"Art-Net\0");
    p[8..10].copy_from_slice(&0x5200u16.to_le_bytes());
    p[10..12].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    p
}

/// Encode ArtPoll (OpCode 0x2000): ID, OpCode LE, ProtVer BE, Flags = 0
/// (reply only when polled), DiagPriority = 0. The 14-byte form every node
/// accepts (Art-Net 4 lets nodes take shorter ArtPolls than its 22 bytes).
pub fn encode_artpoll() -> [u8; 14] {
    let mut p = [0u8; 14];
    p[..8].copy_from_slice(b"Art-Net\0");
    p[8..10].copy_from_slice(&0x2000u16.to_le_bytes());
    p[10..12].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
    p
}

/// Decode an ArtPollReply (OpCode 0x2100): the node's short name (18 bytes
/// at 26), long name (64 at 44) and VersInfo (firmware, BE at 16). `None`
/// for any other packet or one too short to hold the names.
pub fn decode_artpollreply(p: &[u8]) -> Option<NodeInfo> {
    if p.len() < 108 || &p[..8] != b"Art-Net\0" || u16::from_le_bytes([p[8], p[9]]) != 0x2100 {
        return None;
    }
    let text = |b: &[u8]| {
        let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        String::from_utf8_lossy(&b[..end]).trim().to_string()
    };
    Some(NodeInfo { short_name: text(&p[26..44]), long_name: text(&p[44..108]), firmware: u16::from_be_bytes([p[16], p[17]]) })
}

/// Next ArtDmx sequence number: 1..=255 wrapping back to 1, never 0.
pub fn next_sequence(s: u8) -> u8 {
    if s == 255 {
        1
    } else {
        s + 1
    }
}

/// Counters for the technician page and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// ArtDmx packets handed to the kernel.
    pub packets_sent: u64,
    /// ArtSync packets handed to the kernel.
    pub syncs_sent: u64,
    /// Sends that failed (ECONNREFUSED after an ICMP port unreachable, no
    /// route, a full socket buffer because the network is slower than us, …).
    pub send_errors: u64,
    /// ArtPolls sent (Art-Net only).
    pub polls_sent: u64,
    /// ArtPollReplies received (Art-Net only).
    pub poll_replies: u64,
}

/// Rate-limits a repeating error log: first occurrence, then at most one
/// summary every `every`, so a dead node does not flood the journal at 44 Hz.
#[derive(Debug)]
struct ErrorLog {
    every: Duration,
    last: Option<Instant>,
    suppressed: u64,
}

impl ErrorLog {
    fn new(every: Duration) -> Self {
        ErrorLog { every, last: None, suppressed: 0 }
    }

    fn report(&mut self, now: Instant, target: SocketAddr, port_address: u16, e: &io::Error) {
        match self.last {
            Some(t) if now.saturating_duration_since(t) < self.every => self.suppressed += 1,
            _ => {
                tracing::warn!(
                    %target, port_address, error = %e, suppressed = self.suppressed,
                    "Art-Net send failed"
                );
                self.last = Some(now);
                self.suppressed = 0;
            }
        }
    }
}

/// The Art-Net port (0x1936): controllers send from it, and nodes send
/// their ArtPollReply to the poller's IP at it, whatever port polled them.
pub const PORT: u16 = 6454;
/// Where the Art-Net socket is bound unless `[lighting] artnet_bind` says otherwise.
pub const DEFAULT_BIND: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT));
/// How often an address that could not be bound is tried again: the other
/// program may quit, the interface come up.
pub const REBIND_EVERY: Duration = Duration::from_secs(5);
/// Datagrams read per service call. The port is open to the whole booth
/// network, so a flood must not hold up the frame clock (the kernel drops
/// what does not fit its buffer).
const MAX_READS: usize = 64;

/// Why the Art-Net socket cannot be bound, in a technician's words.
pub fn bind_problem(addr: SocketAddr, e: &io::Error) -> String {
    let hint = match e.kind() {
        io::ErrorKind::AddrInUse => " — is another Art-Net program (e.g. QLC+) running on this computer?",
        io::ErrorKind::AddrNotAvailable => " — no network interface of this computer has that address (yet)",
        _ => "",
    };
    format!("cannot listen for ArtPollReply on {addr}: {e}{hint}")
}

/// A non-blocking socket on `addr` (synchronous: also used to retry from
/// inside the lighting task's tick). Never allowed to broadcast: without
/// SO_BROADCAST the kernel refuses any broadcast destination.
fn bind_socket(addr: SocketAddr) -> io::Result<UdpSocket> {
    let std = std::net::UdpSocket::bind(addr)?;
    std.set_nonblocking(true)?;
    UdpSocket::from_std(std)
}

/// One node (one target address) and its health.
#[derive(Debug)]
struct Node {
    target: SocketAddr,
    /// Only while the Art-Net socket cannot be bound: an ephemeral socket of
    /// the node's own, so DMX still goes out and a node that answers the
    /// poll's source port is still heard.
    fallback: Option<TargetSocket>,
    /// Polled when any of its outputs polls.
    health: NodeHealth,
}

/// Send on the Art-Net socket, or on the node's own while there is none.
fn send(socket: &Option<UdpSocket>, node: &Node, packet: &[u8]) -> io::Result<usize> {
    match (socket, &node.fallback) {
        (Some(s), _) => s.try_send_to(packet, node.target),
        (None, Some(f)) => f.try_send(packet),
        (None, None) => Err(io::Error::new(io::ErrorKind::NotConnected, "no Art-Net socket")),
    }
}

#[derive(Debug)]
struct Universe {
    /// Index into `ArtNetSender::nodes`.
    node: usize,
    target: SocketAddr,
    port_address: u16,
    /// Sequence of the *last* packet sent (0 before the first).
    sequence: u8,
    last_sent: Option<Instant>,
    errors: ErrorLog,
}

/// What [`ArtNetSender::send_dmx`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub sequence: u8,
    pub ok: bool,
}

/// Sends ArtDmx, ArtSync and ArtPoll to every output's unicast target from
/// one socket bound to the Art-Net port (as the spec says controllers do),
/// and reads every node's ArtPollReply there: nodes reply to port 6454, not
/// to the poll's source port (and one that does reply to the source port
/// reaches the same socket).
///
/// Sends are non-blocking (`try_send_to`): if the kernel cannot take the datagram right now
/// we drop this frame and count it rather than wait, because the next frame
/// (≤ 23 ms later) supersedes it and the frame clock must never stall.
///
/// If the address cannot be bound (another Art-Net program holds the port),
/// nothing stops: each node gets an ephemeral socket of its own, connected
/// (so a closed port shows up as a send error), DMX goes on, nodes that
/// answer the source port stay verified, the others' offline reason says
/// why, and the address is tried again every [`REBIND_EVERY`].
#[derive(Debug)]
pub struct ArtNetSender {
    /// The Art-Net socket, while `bind` is bound.
    socket: Option<UdpSocket>,
    bind: SocketAddr,
    /// Its local address (port 0 in `bind` resolved), while bound.
    listen: Option<SocketAddr>,
    /// Why `bind` cannot be bound, while it cannot.
    problem: Option<String>,
    next_bind: Instant,
    nodes: Vec<Node>,
    /// The nodes' targets in `nodes` order, for [`reply_from`].
    targets: Vec<SocketAddr>,
    universes: Vec<Universe>,
    stats: SendStats,
}

impl ArtNetSender {
    /// Bind the Art-Net socket on `bind` (IPv4, like Art-Net) when there is
    /// an output; if that fails, open one ephemeral socket per distinct
    /// target instead (on loopback for a loopback target). Never broadcast.
    pub async fn bind(outputs: &[ArtNetOutput], bind: SocketAddr) -> Result<ArtNetSender, ArtNetError> {
        let now = Instant::now();
        if !bind.is_ipv4() {
            return Err(ArtNetError::BindNotIpv4(bind));
        }
        let mut universes = Vec::with_capacity(outputs.len());
        let mut nodes: Vec<Node> = Vec::new();
        for o in outputs {
            if !o.target.is_ipv4() {
                return Err(ArtNetError::NotIpv4 { name: o.name.clone(), target: o.target });
            }
            if o.universe > 0x7FFF {
                return Err(ArtNetError::PortAddress(o.universe));
            }
            let node = match nodes.iter().position(|n| n.target == o.target) {
                Some(i) => i,
                None => {
                    let poll = outputs.iter().any(|x| x.target == o.target && x.poll);
                    nodes.push(Node { target: o.target, fallback: None, health: NodeHealth::new(poll, now) });
                    nodes.len() - 1
                }
            };
            universes.push(Universe {
                node,
                target: o.target,
                port_address: o.universe,
                sequence: 0,
                last_sent: None,
                errors: ErrorLog::new(Duration::from_secs(10)),
            });
        }
        let targets = nodes.iter().map(|n| n.target).collect();
        let mut sender = ArtNetSender {
            socket: None,
            bind,
            listen: None,
            problem: None,
            next_bind: now,
            nodes,
            targets,
            universes,
            stats: SendStats::default(),
        };
        if sender.nodes.is_empty() {
            return Ok(sender);
        }
        match bind_socket(bind) {
            Ok(socket) => {
                // tokio's try_send only sends once the reactor has seen the socket
                // writable; without this the very first frame is dropped as WouldBlock.
                let _ = tokio::time::timeout(Duration::from_millis(100), socket.writable()).await;
                sender.listen = socket.local_addr().ok();
                tracing::info!(listen = %sender.listen.unwrap_or(bind), "Art-Net: sending from and listening for ArtPollReply on this address");
                sender.socket = Some(socket);
            }
            Err(e) => {
                sender.bind_failed(&e, now);
                for n in &mut sender.nodes {
                    n.fallback = Some(TargetSocket::open(n.target).await.map_err(ArtNetError::Bind)?);
                }
            }
        }
        Ok(sender)
    }

    /// Where ArtPollReplies are received (the bound Art-Net socket), or
    /// `None` while its address cannot be bound (or there is no output).
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen
    }

    /// Why the Art-Net socket's address cannot be bound, while it cannot.
    pub fn bind_problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    pub fn stats(&self) -> SendStats {
        self.stats
    }

    /// When universe `u` was last sent (None: never).
    pub fn last_sent(&self, u: usize) -> Option<Instant> {
        self.universes.get(u).and_then(|x| x.last_sent)
    }

    /// The health of universe `u`'s node.
    pub fn health(&self, u: usize) -> Option<&OutputHealth> {
        self.universes.get(u).map(|x| self.nodes[x.node].health.health())
    }

    /// Poll the nodes whose ArtPoll is due, read every ArtPollReply waiting
    /// (never blocks), advance each node's health, and retry binding the
    /// Art-Net socket when it is due. True when some node's health changed.
    pub fn service(&mut self, now: Instant) -> bool {
        let mut changed = false;
        for n in &mut self.nodes {
            if n.health.poll_due(now) {
                match send(&self.socket, n, &encode_artpoll()) {
                    Ok(_) => self.stats.polls_sent += 1,
                    Err(e) => n.health.on_send_error(&e),
                }
            }
        }
        changed |= self.read_replies(now);
        for n in &mut self.nodes {
            changed |= n.health.tick(now);
        }
        // Last: a socket bound now is first used at the next frame, once the
        // reactor has seen it writable.
        changed | self.retry_bind(now)
    }

    fn read_replies(&mut self, now: Instant) -> bool {
        let mut changed = false;
        // An ArtPollReply is 239 bytes; anything longer is not one.
        let mut buf = [0u8; 512];
        if let Some(socket) = &self.socket {
            for _ in 0..MAX_READS {
                match socket.try_recv_from(&mut buf) {
                    Ok((n, from)) => {
                        // Others' ArtPoll and ArtDmx reach the Art-Net port too.
                        let Some(info) = decode_artpollreply(&buf[..n]) else { continue };
                        match reply_from(&self.targets, from) {
                            ReplySource::Target(i) => {
                                self.stats.poll_replies += 1;
                                changed |= self.nodes[i].health.on_reply(info, now);
                            }
                            ReplySource::Ambiguous => tracing::debug!(
                                %from,
                                "ArtPollReply from an IP that several [[artnet]] targets share, at none's address: credited to none"
                            ),
                            ReplySource::Unknown => tracing::trace!(%from, "ArtPollReply from no [[artnet]] target"),
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        tracing::debug!(error = %e, "reading the Art-Net socket");
                        break;
                    }
                }
            }
        }
        for n in &mut self.nodes {
            let Some(f) = &n.fallback else { continue };
            for _ in 0..MAX_READS {
                match f.try_recv(&mut buf) {
                    Ok((len, from)) => {
                        // An unconnected socket hears anyone: only the target counts.
                        if from.ip() != n.target.ip() {
                            continue;
                        }
                        if let Some(info) = decode_artpollreply(&buf[..len]) {
                            self.stats.poll_replies += 1;
                            changed |= n.health.on_reply(info, now);
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    // ICMP port unreachable for an earlier datagram, and the like.
                    Err(e) => n.health.on_send_error(&e),
                }
            }
        }
        changed
    }

    /// While the Art-Net socket is not bound, try its address again every
    /// [`REBIND_EVERY`]. True when some node's health changed.
    fn retry_bind(&mut self, now: Instant) -> bool {
        if self.socket.is_some() || self.nodes.is_empty() || now < self.next_bind {
            return false;
        }
        match bind_socket(self.bind) {
            Ok(socket) => {
                self.listen = socket.local_addr().ok();
                tracing::info!(listen = %self.listen.unwrap_or(self.bind), "Art-Net: the address is free now; sending from and listening on it");
                self.socket = Some(socket);
                self.problem = None;
                let mut changed = false;
                for n in &mut self.nodes {
                    n.fallback = None;
                    changed |= n.health.set_listen_problem(None, now);
                }
                changed
            }
            Err(e) => self.bind_failed(&e, now),
        }
    }

    /// Record why `bind` failed, on every node (their offline reason). True
    /// when some node's health changed.
    fn bind_failed(&mut self, e: &io::Error, now: Instant) -> bool {
        let problem = bind_problem(self.bind, e);
        if self.problem.as_ref() != Some(&problem) {
            tracing::warn!(
                %problem,
                "Art-Net: DMX goes out from a port per node; nodes that reply only to the Art-Net port cannot be verified; retrying every {} s",
                REBIND_EVERY.as_secs()
            );
        } else {
            tracing::debug!(%problem, "Art-Net: still cannot bind");
        }
        self.next_bind = now + REBIND_EVERY;
        let mut changed = false;
        for n in &mut self.nodes {
            changed |= n.health.set_listen_problem(Some(problem.clone()), now);
        }
        self.problem = Some(problem);
        changed
    }

    /// Send one ArtDmx for universe `u` with the next sequence number. Errors
    /// are logged (rate-limited) and counted; the sequence still advances so a
    /// receiver sees the gap.
    pub fn send_dmx(&mut self, u: usize, data: &[u8], now: Instant) -> Option<Sent> {
        let uni = self.universes.get_mut(u)?;
        uni.sequence = next_sequence(uni.sequence);
        uni.last_sent = Some(now);
        let ok = match encode_artdmx(uni.sequence, uni.port_address, data) {
            Ok(packet) => match send(&self.socket, &self.nodes[uni.node], &packet) {
                Ok(_) => {
                    self.stats.packets_sent += 1;
                    true
                }
                Err(e) => {
                    self.stats.send_errors += 1;
                    uni.errors.report(now, uni.target, uni.port_address, &e);
                    self.nodes[uni.node].health.on_send_error(&e);
                    false
                }
            },
            Err(e) => {
                // Unreachable with a validated patch (512 bytes, 15-bit address).
                self.stats.send_errors += 1;
                tracing::error!(error = %e, "ArtDmx encoding failed");
                false
            }
        };
        Some(Sent { sequence: uni.sequence, ok })
    }

    /// Send ArtSync to every target that got data for `universes` this frame.
    /// Unicast, one per distinct node: the spec's broadcast form is not used
    /// (nodes accept ArtSync from the controller that sent their ArtDmx).
    pub fn send_sync(&mut self, universes: impl IntoIterator<Item = usize>, now: Instant) {
        let nodes: BTreeSet<usize> = universes.into_iter().filter_map(|u| self.universes.get(u)).map(|u| u.node).collect();
        let packet = encode_artsync();
        for i in nodes {
            match send(&self.socket, &self.nodes[i], &packet) {
                Ok(_) => self.stats.syncs_sent += 1,
                Err(e) => {
                    self.stats.send_errors += 1;
                    let target = self.nodes[i].target;
                    if let Some(u) = self.universes.iter_mut().find(|u| u.node == i) {
                        u.errors.report(now, target, u.port_address, &e);
                    }
                }
            }
        }
    }
}

/// One node's answer to [`Probe::poll`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollReply {
    pub from: SocketAddr,
    pub info: NodeInfo,
    /// The port-addresses of its DMX output ports, in port order.
    pub outputs: Vec<u16>,
}

/// The port-addresses of an ArtPollReply's DMX output ports: of NumPorts
/// (BE at 172, at most 4) those whose PortTypes (174) has bit 7 (Art-Net in,
/// DMX out), each NetSwitch (18) : SubSwitch (19) : SwOut (190). `None`
/// for anything that is not an ArtPollReply long enough to hold SwOut.
pub fn decode_artpollreply_outputs(p: &[u8]) -> Option<Vec<u16>> {
    decode_artpollreply(p)?;
    if p.len() < 194 {
        return None;
    }
    let ports = usize::from(u16::from_be_bytes([p[172], p[173]])).min(4);
    let base = (u16::from(p[18] & 0x7F) << 8) | (u16::from(p[19] & 0x0F) << 4);
    Some((0..ports).filter(|&i| p[174 + i] & 0x80 != 0).map(|i| base | u16::from(p[190 + i] & 0x0F)).collect())
}

/// `studiod discover --artnet`: one unicast ArtPoll from the Art-Net port,
/// and the ArtPollReplies that come back to it.
#[derive(Debug)]
pub struct Probe {
    socket: UdpSocket,
    problem: Option<String>,
}

impl Probe {
    /// Listen on `bind` (nodes reply to the Art-Net port). If it cannot be
    /// bound, on an ephemeral port instead (on loopback for a loopback
    /// `target`): then only a node that answers the poll's source port is
    /// heard, and [`problem`](Self::problem) says why.
    pub fn bind(bind: SocketAddr, target: SocketAddr) -> io::Result<Probe> {
        match bind_socket(bind) {
            Ok(socket) => Ok(Probe { socket, problem: None }),
            Err(e) => {
                let ip = if target.ip().is_loopback() { Ipv4Addr::LOCALHOST } else { Ipv4Addr::UNSPECIFIED };
                Ok(Probe { socket: bind_socket((ip, 0).into())?, problem: Some(bind_problem(bind, &e)) })
            }
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Why the asked address could not be bound, if it could not.
    pub fn problem(&self) -> Option<&str> {
        self.problem.as_deref()
    }

    /// Send one ArtPoll to `target` and collect, until `window` is over, the
    /// ArtPollReplies from it (its exact address, or its IP: a node replies
    /// from its own Art-Net port). The socket may not broadcast, so the
    /// kernel refuses a broadcast `target` (PermissionDenied).
    pub async fn poll(&self, target: SocketAddr, window: Duration) -> io::Result<Vec<PollReply>> {
        self.socket.send_to(&encode_artpoll(), target).await?;
        let end = Instant::now() + window;
        let mut out: Vec<PollReply> = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(r) = tokio::time::timeout_at(end, self.socket.recv_from(&mut buf)).await {
            let (n, from) = r?;
            if reply_from(&[target], from) != ReplySource::Target(0) {
                continue;
            }
            let (Some(info), Some(outputs)) = (decode_artpollreply(&buf[..n]), decode_artpollreply_outputs(&buf[..n])) else { continue };
            let reply = PollReply { from, info, outputs };
            if !out.contains(&reply) {
                out.push(reply);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artdmx_layout() {
        let data: Vec<u8> = (0..=255).chain(0..=255).collect();
        let p = encode_artdmx(7, 0x1234, &data).unwrap();
        assert_eq!(&p[..8], b"Art-Net\0");
        assert_eq!(&p[8..10], &[0x00, 0x50], "OpCode 0x5000 little-endian");
        assert_eq!(&p[10..12], &[0, 14], "ProtVer 14 big-endian");
        assert_eq!(p[12], 7, "Sequence");
        assert_eq!(p[13], 0, "Physical");
        assert_eq!(p[14], 0x34, "SubUni: sub-net and universe, low byte");
        assert_eq!(p[15], 0x12, "Net: high 7 bits");
        assert_eq!(&p[16..18], &[0x02, 0x00], "Length 512 big-endian");
        assert_eq!(&p[18..], &data[..]);
    }

    #[test]
    fn odd_length_is_padded_and_bad_input_is_an_error() {
        let p = encode_artdmx(1, 0, &[9, 9, 9]).unwrap();
        assert_eq!(&p[16..18], &[0, 4]);
        assert_eq!(&p[18..], &[9, 9, 9, 0]);
        assert!(matches!(encode_artdmx(1, 0x8000, &[0; 2]), Err(ArtNetError::PortAddress(_))));
        assert!(matches!(encode_artdmx(1, 0, &[]), Err(ArtNetError::Length(0))));
        assert!(matches!(encode_artdmx(1, 0, &[0; 513]), Err(ArtNetError::Length(513))));
    }

    #[test]
    fn artsync_layout() {
        assert_eq!(encode_artsync(), *b"Art-Net\0\x00\x52\x00\x0e\x00\x00");
    }

    #[test]
    fn error_log_is_rate_limited() {
        let mut log = ErrorLog::new(Duration::from_secs(10));
        let t0 = Instant::now();
        let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        log.report(t0, target, 1, &e);
        assert_eq!((log.last, log.suppressed), (Some(t0), 0));
        for i in 1..=44 {
            log.report(t0 + Duration::from_millis(i * 23), target, 1, &e);
        }
        assert_eq!((log.last, log.suppressed), (Some(t0), 44), "one line, 44 suppressed");
        let t1 = t0 + Duration::from_secs(10);
        log.report(t1, target, 1, &e);
        assert_eq!((log.last, log.suppressed), (Some(t1), 0), "summary after 10 s");
    }

    #[test]
    fn artpoll_layout_and_artpollreply_decoding() {
        assert_eq!(encode_artpoll(), *b"Art-Net\0\x00\x20\x00\x0e\x00\x00");
        let mut r = vec![0u8; 239];
        r[..8].copy_from_slice(b"Art-Net\0");
        r[8..10].copy_from_slice(&[0x00, 0x21]);
        r[16..18].copy_from_slice(&[0x01, 0x07]);
        r[26..31].copy_from_slice(b"node1");
        r[44..56].copy_from_slice(b"Booth node 1");
        let info = decode_artpollreply(&r).unwrap();
        assert_eq!(info, NodeInfo { short_name: "node1".into(), long_name: "Booth node 1".into(), firmware: 0x0107 });
        assert!(decode_artpollreply(&r[..107]).is_none(), "too short for the long name");
        r[9] = 0x20;
        assert!(decode_artpollreply(&r).is_none(), "an ArtPoll is not a reply");
    }

    #[test]
    fn output_ports_of_an_artpollreply() {
        let mut r = vec![0u8; 239];
        r[..8].copy_from_slice(b"Art-Net\0");
        r[8..10].copy_from_slice(&[0x00, 0x21]);
        r[18] = 0x01; // NetSwitch
        r[19] = 0x02; // SubSwitch
        r[173] = 3; // NumPorts
        r[174..177].copy_from_slice(&[0x80, 0x40, 0xC0]); // out, in only, in + out
        r[190..193].copy_from_slice(&[0x03, 0x04, 0x05]);
        assert_eq!(decode_artpollreply_outputs(&r), Some(vec![0x0123, 0x0125]));
        assert!(decode_artpollreply_outputs(&r[..193]).is_none(), "too short for SwOut");
        r[173] = 9;
        assert_eq!(decode_artpollreply_outputs(&r).map(|o| o.len()), Some(2), "at most 4 ports");
    }

    #[test]
    fn a_bind_problem_names_the_address_the_error_and_the_likely_cause() {
        let at: SocketAddr = "0.0.0.0:6454".parse().unwrap();
        let p = bind_problem(at, &io::Error::from(io::ErrorKind::AddrInUse));
        assert!(p.starts_with("cannot listen for ArtPollReply on 0.0.0.0:6454: "), "{p}");
        assert!(p.ends_with("is another Art-Net program (e.g. QLC+) running on this computer?"), "{p}");
        let p = bind_problem("10.9.8.7:6454".parse().unwrap(), &io::Error::from(io::ErrorKind::AddrNotAvailable));
        assert!(p.contains("10.9.8.7:6454") && p.contains("no network interface"), "{p}");
    }

    #[test]
    fn sequence_wraps_to_one_never_zero() {
        let mut s = 0u8;
        let mut seen = Vec::new();
        for _ in 0..600 {
            s = next_sequence(s);
            assert_ne!(s, 0);
            seen.push(s);
        }
        assert_eq!(seen[0], 1);
        assert_eq!(seen[254], 255);
        assert_eq!(seen[255], 1);
    }
}
