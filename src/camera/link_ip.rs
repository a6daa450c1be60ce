//! The IP side of the camera link, sans-IO: what turns the serial link's
//! byte stream into VISCA over IP and back. The link state machine
//! ([`super::link`]) is the same for serial and IP cameras; this layer only
//! frames.
//!
//! - [`local_answer`]: an IP camera is a chain of one at address 1, so the
//!   chain-level broadcasts the link sends when a port opens (AddressSet
//!   `88 30 01 FF`, IF_Clear `88 01 00 01 FF`) are answered here, as a
//!   one-camera chain would, and never sent. Used by both IP forms.
//! - [`UdpSession`]: Sony's UDP form. Every packet the link writes becomes a
//!   datagram with a sequence number; replies are matched to it by that
//!   number (so a late, duplicated or stale reply never reaches the link as
//!   the answer to another packet). A resend by the link (same packet while
//!   its reply is awaited) goes out again with the **same** sequence number,
//!   as Sony's delivery-confirmation rules ask; the camera then answers
//!   ACK (the first copy was lost), or `0F 01` (it had the command: the
//!   reply was lost), which this layer turns into the ACK the link waits
//!   for. A completion lost on the way back is recovered by re-issuing an
//!   idempotent command (absolute pan-tilt, zoom direct, preset recall)
//!   under a fresh sequence number when no completion came within
//!   [`UdpOptions::reissue_after`]. RESET (`0x0200 01`) is sent when the
//!   session opens and whenever sequence numbers go wrong (a `0F 01` for a
//!   first send, or a reply numbered far from anything sent); packets wait
//!   until the camera acknowledges it.
//!
//! Nothing here does I/O or reads a clock: every input carries the
//! [`Instant`].

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;
use tracing::{debug, warn};

use crate::visca::ip::{decode_datagram, encode_ip, split_packets, PayloadType, CONTROL_RESET};

/// What a chain-level broadcast gets on a one-camera IP "chain".
/// `None`: not a chain-level packet, send it. `Some(reply)`: do not send;
/// hand `reply` (possibly empty) to the link as if the camera had answered.
pub fn local_answer(packet: &[u8]) -> Option<Vec<u8>> {
    match packet {
        // AddressSet: one camera, so the next free address is 2.
        [0x88, 0x30, _, 0xFF] => Some(vec![0x88, 0x30, 0x02, 0xFF]),
        // IF_Clear broadcast comes back round a chain unchanged.
        [0x88, 0x01, 0x00, 0x01, 0xFF] => Some(packet.to_vec()),
        // Other broadcasts have no meaning for one networked camera.
        [0x88, ..] => Some(Vec::new()),
        _ => None,
    }
}

/// Knobs of the UDP form.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UdpOptions {
    /// Resend RESET when the camera has not acknowledged it within this.
    pub reset_timeout: Duration,
    /// Re-issue an idempotent command whose completion has not come this
    /// long after its ACK (a lost completion datagram); doubles each time.
    pub reissue_after: Duration,
    /// Re-issues per command before leaving it to the link's completion timeout.
    pub max_reissues: u32,
    /// Replies numbered within this many of the newest sequence number are
    /// late or duplicated (dropped quietly); further away, the numbering
    /// went wrong (RESET).
    pub seq_window: u32,
}

impl Default for UdpOptions {
    fn default() -> Self {
        UdpOptions {
            reset_timeout: Duration::from_millis(200),
            reissue_after: Duration::from_millis(1500),
            max_reissues: 3,
            seq_window: 64,
        }
    }
}

/// Counters of a session (for logs, metrics and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UdpStats {
    pub sent: u64,
    /// Packets sent again by the link under their first sequence number.
    pub retransmitted: u64,
    /// Commands re-issued under a new number after a lost completion.
    pub reissued: u64,
    pub resets: u64,
    /// Replies dropped: duplicates, late ones, unknown numbers.
    pub dropped: u64,
}

#[derive(Debug)]
enum Phase {
    /// Sent; no direct reply yet.
    Awaiting,
    /// ACKed (told the link `socket`); awaiting completion.
    Executing { socket: u8, real: Option<u8>, reissue_at: Instant, reissues: u32 },
}

#[derive(Debug)]
struct Tracked {
    packet: Vec<u8>,
    /// Every number it went out under; the last is the current one.
    seqs: Vec<u32>,
    phase: Phase,
    retransmitted: bool,
}

impl Tracked {
    fn current(&self) -> u32 {
        *self.seqs.last().expect("never empty")
    }
    fn is_cancel(&self) -> bool {
        is_cancel(&self.packet)
    }
}

fn is_cancel(p: &[u8]) -> bool {
    p.len() == 3 && p[1] & 0xF0 == 0x20
}

/// Commands that may be sent twice with the same effect.
fn idempotent(p: &[u8]) -> bool {
    matches!(p, [_, 0x01, 0x06, 0x02, ..] | [_, 0x01, 0x04, 0x47, ..] | [_, 0x01, 0x04, 0x3F, 0x02, _, 0xFF])
}

#[derive(Debug)]
enum State {
    Resetting { resend_at: Instant },
    Ready,
}

/// Sony VISCA-over-UDP session for one camera. See the module docs.
#[derive(Debug)]
pub struct UdpSession {
    opts: UdpOptions,
    state: State,
    next_seq: u32,
    tracked: VecDeque<Tracked>,
    /// Packets written while a RESET is unanswered.
    held: VecDeque<Vec<u8>>,
    partial: Vec<u8>,
    datagrams: VecDeque<Bytes>,
    for_link: BytesMut,
    stats: UdpStats,
}

/// Most messages tracked at once (the link has at most one awaiting a
/// reply, two executing and a cancel or two).
const MAX_TRACKED: usize = 16;

impl UdpSession {
    /// A session that starts with a RESET.
    pub fn new(now: Instant, opts: UdpOptions) -> UdpSession {
        let mut s = UdpSession {
            opts,
            state: State::Ready,
            next_seq: 0,
            tracked: VecDeque::new(),
            held: VecDeque::new(),
            partial: Vec::new(),
            datagrams: VecDeque::new(),
            for_link: BytesMut::new(),
            stats: UdpStats::default(),
        };
        s.reset(now);
        s
    }

    pub fn stats(&self) -> UdpStats {
        self.stats
    }

    /// The next datagram to send, if any.
    pub fn poll_datagram(&mut self) -> Option<Bytes> {
        self.datagrams.pop_front()
    }

    /// Reply bytes for the link's decoder (VISCA packets, as from a serial line).
    pub fn take_for_link(&mut self) -> Option<Bytes> {
        (!self.for_link.is_empty()).then(|| self.for_link.split().freeze())
    }

    /// Bytes the link wrote (whole or partial VISCA packets).
    pub fn write(&mut self, now: Instant, bytes: &[u8]) {
        for packet in split_packets(bytes, &mut self.partial) {
            if let Some(reply) = local_answer(&packet) {
                self.for_link.extend_from_slice(&reply);
                continue;
            }
            match self.state {
                State::Resetting { .. } => {
                    if self.held.len() >= MAX_TRACKED {
                        self.held.pop_front();
                    }
                    self.held.push_back(packet);
                }
                State::Ready => self.send_packet(now, packet),
            }
        }
    }

    fn send_packet(&mut self, _now: Instant, packet: Vec<u8>) {
        // The link's resend: same packet while its reply is awaited.
        if let Some(t) = self.tracked.iter_mut().find(|t| matches!(t.phase, Phase::Awaiting) && t.packet == packet) {
            t.retransmitted = true;
            let seq = t.current();
            self.stats.retransmitted += 1;
            debug!(seq, "retransmitting under the same sequence number");
            self.emit(PayloadType::of_packet(&packet), seq, &packet);
            return;
        }
        // The link awaits one direct reply at a time: a new packet means it
        // gave up on any earlier one still awaiting (cancels excepted).
        if !is_cancel(&packet) {
            self.tracked.retain(|t| !matches!(t.phase, Phase::Awaiting) || t.is_cancel());
        }
        // A cancel names the socket the link was told; the camera's may differ.
        let mut packet = packet;
        if is_cancel(&packet) {
            let told = packet[1] & 0x0F;
            if let Some(real) = self.tracked.iter().find_map(|t| match t.phase {
                Phase::Executing { socket, real: Some(r), .. } if socket == told => Some(r),
                _ => None,
            }) {
                packet[1] = 0x20 | real;
            }
        }
        let seq = self.take_seq();
        if self.tracked.len() >= MAX_TRACKED {
            self.tracked.pop_front();
        }
        self.emit(PayloadType::of_packet(&packet), seq, &packet);
        self.tracked.push_back(Tracked { packet, seqs: vec![seq], phase: Phase::Awaiting, retransmitted: false });
    }

    fn take_seq(&mut self) -> u32 {
        let s = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        s
    }

    fn emit(&mut self, kind: PayloadType, seq: u32, payload: &[u8]) {
        let mut b = BytesMut::new();
        encode_ip(kind, seq, payload, &mut b);
        self.stats.sent += 1;
        self.datagrams.push_back(b.freeze());
    }

    fn reset(&mut self, now: Instant) {
        self.stats.resets += 1;
        self.state = State::Resetting { resend_at: now + self.opts.reset_timeout };
        self.emit(PayloadType::Control, 0, CONTROL_RESET);
    }

    /// A datagram arrived.
    pub fn receive(&mut self, now: Instant, datagram: &[u8]) {
        let Some(msg) = decode_datagram(datagram) else {
            self.stats.dropped += 1;
            debug!(len = datagram.len(), "datagram without a VISCA-over-IP message dropped");
            return;
        };
        match msg.kind {
            PayloadType::ControlReply | PayloadType::Control => self.on_control(now, msg.seq, &msg.payload),
            PayloadType::Reply => self.on_reply(now, msg.seq, &msg.payload),
            other => {
                self.stats.dropped += 1;
                debug!(?other, "unexpected message type from the camera dropped");
            }
        }
    }

    fn on_control(&mut self, now: Instant, seq: u32, payload: &[u8]) {
        match payload {
            [0x01] => {
                if let State::Resetting { .. } = self.state {
                    self.state = State::Ready;
                    self.next_seq = 0;
                    // What was awaiting a reply went out under numbers the
                    // camera no longer knows: send it again, fresh.
                    let mut again: Vec<Vec<u8>> = Vec::new();
                    self.tracked.retain(|t| {
                        let awaiting = matches!(t.phase, Phase::Awaiting);
                        if awaiting {
                            again.push(t.packet.clone());
                        }
                        !awaiting
                    });
                    again.extend(self.held.drain(..));
                    for p in again {
                        self.send_packet(now, p);
                    }
                }
            }
            [0x0F, 0x01] => {
                let Some(i) = self.tracked.iter().position(|t| t.seqs.contains(&seq)) else {
                    self.stats.dropped += 1;
                    return;
                };
                let t = &self.tracked[i];
                match t.phase {
                    // The camera has it already ("command has been performed"): the
                    // reply to the first copy was lost. For the link that is the ACK.
                    Phase::Awaiting if t.retransmitted && PayloadType::of_packet(&t.packet) == PayloadType::Command => {
                        let socket = self.free_socket();
                        self.ack(now, i, socket, None);
                    }
                    // Duplicate of a copy already acknowledged.
                    Phase::Executing { .. } => self.stats.dropped += 1,
                    // A first send refused for its number: the numbering is off.
                    _ => {
                        warn!(seq, "camera reports a sequence-number error, resetting");
                        self.reset(now);
                    }
                }
            }
            other => {
                self.stats.dropped += 1;
                debug!(?other, "control message ignored");
            }
        }
    }

    /// The socket to tell the link for a camera socket `y`: `y` itself
    /// unless the link already knows another command there.
    fn socket_for(&self, y: u8) -> u8 {
        if (1..=2).contains(&y) && !self.used_sockets().contains(&y) {
            y
        } else {
            self.free_socket()
        }
    }

    fn used_sockets(&self) -> Vec<u8> {
        self.tracked
            .iter()
            .filter_map(|t| match t.phase {
                Phase::Executing { socket, .. } => Some(socket),
                Phase::Awaiting => None,
            })
            .collect()
    }

    fn free_socket(&self) -> u8 {
        let used: Vec<u8> = self
            .tracked
            .iter()
            .filter_map(|t| match t.phase {
                Phase::Executing { socket, .. } => Some(socket),
                Phase::Awaiting => None,
            })
            .collect();
        if used.contains(&1) {
            2
        } else {
            1
        }
    }

    fn ack(&mut self, now: Instant, i: usize, socket: u8, real: Option<u8>) {
        let reissue_at = now + self.opts.reissue_after;
        self.tracked[i].phase = Phase::Executing { socket, real, reissue_at, reissues: 0 };
        let header = self.tracked[i].packet[0];
        self.for_link.extend_from_slice(&[reply_header(header), 0x40 | socket, 0xFF]);
    }

    fn on_reply(&mut self, now: Instant, seq: u32, payload: &[u8]) {
        let Some(i) = self.tracked.iter().position(|t| t.seqs.contains(&seq)) else {
            self.stats.dropped += 1;
            let behind = self.next_seq.wrapping_sub(seq);
            if behind == 0 || behind > self.opts.seq_window {
                warn!(seq, next = self.next_seq, "reply numbered far from anything sent, resetting");
                if matches!(self.state, State::Ready) {
                    self.reset(now);
                }
            } else {
                debug!(seq, "late or duplicated reply dropped");
            }
            return;
        };
        let kind = payload.get(1).copied().unwrap_or(0);
        let y = kind & 0x0F;
        let current = self.tracked[i].current() == seq;
        match (kind & 0xF0, &self.tracked[i].phase) {
            // ACK
            (0x40, Phase::Awaiting) => {
                let socket = self.socket_for(y);
                self.ack(now, i, socket, Some(y));
            }
            (0x40, Phase::Executing { .. }) => self.stats.dropped += 1,
            // Completion of a command (socket ≠ 0).
            (0x50, phase) if payload.len() == 3 && y != 0 && PayloadType::of_packet(&self.tracked[i].packet) == PayloadType::Command => {
                let socket = match phase {
                    Phase::Executing { socket, .. } => *socket,
                    Phase::Awaiting => {
                        // Its ACK was lost or comes late: the completion implies it.
                        let s = self.socket_for(y);
                        self.ack(now, i, s, Some(y));
                        s
                    }
                };
                let header = self.tracked[i].packet[0];
                self.for_link.extend_from_slice(&[reply_header(header), 0x50 | socket, 0xFF]);
                self.tracked.remove(i);
            }
            // Error: forward with the socket the link knows.
            (0x60, Phase::Executing { socket, .. }) => {
                if !current {
                    // The original of a re-issued command, superseded by its copy.
                    self.stats.dropped += 1;
                    return;
                }
                let mut p = payload.to_vec();
                p[1] = 0x60 | *socket;
                self.for_link.extend_from_slice(&p);
                self.tracked.remove(i);
            }
            (0x60, Phase::Awaiting) if self.tracked[i].is_cancel() => {
                // A cancel's answer names the camera's socket; the link knows its own.
                let told = self.tracked.iter().find_map(|t| match t.phase {
                    Phase::Executing { socket, real: Some(r), .. } if r == y => Some(socket),
                    _ => None,
                });
                let mut p = payload.to_vec();
                if let Some(s) = told {
                    p[1] = 0x60 | s;
                    // The cancelled command ends here too.
                    self.tracked.retain(|t| !matches!(t.phase, Phase::Executing { socket, .. } if socket == s));
                }
                self.for_link.extend_from_slice(&p);
                self.tracked.retain(|t| !t.seqs.contains(&seq));
            }
            // Inquiry answers, errors without a socket, other direct replies.
            (_, Phase::Awaiting) => {
                self.for_link.extend_from_slice(payload);
                self.tracked.remove(i);
            }
            (_, Phase::Executing { .. }) => {
                self.for_link.extend_from_slice(payload);
                self.tracked.remove(i);
            }
        }
    }

    /// Handles every deadline that has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let State::Resetting { resend_at } = self.state {
            if now >= resend_at {
                debug!("RESET unanswered, sending it again");
                self.stats.resets -= 1;
                self.reset(now);
            }
        }
        if !matches!(self.state, State::Ready) {
            return;
        }
        let mut due = Vec::new();
        for (i, t) in self.tracked.iter_mut().enumerate() {
            if let Phase::Executing { reissue_at, reissues, .. } = &mut t.phase {
                if now >= *reissue_at && *reissues < self.opts.max_reissues && idempotent(&t.packet) {
                    *reissues += 1;
                    *reissue_at = now + self.opts.reissue_after * 2u32.pow(*reissues);
                    due.push(i);
                }
            }
        }
        for i in due {
            let seq = self.take_seq();
            self.tracked[i].seqs.push(seq);
            let packet = self.tracked[i].packet.clone();
            self.stats.reissued += 1;
            debug!(seq, "no completion yet; re-issuing under a new sequence number");
            self.emit(PayloadType::Command, seq, &packet);
        }
    }

    /// When [`UdpSession::handle_timeout`] should next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        if let State::Resetting { resend_at } = self.state {
            return Some(resend_at);
        }
        self.tracked
            .iter()
            .filter_map(|t| match t.phase {
                Phase::Executing { reissue_at, reissues, .. } if reissues < self.opts.max_reissues && idempotent(&t.packet) => {
                    Some(reissue_at)
                }
                _ => None,
            })
            .min()
    }
}

/// The reply header for a packet sent to `8x`: `(8 + x) << 4`.
fn reply_header(header: u8) -> u8 {
    ((header & 0x0F) + 8) << 4
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visca::ip::{decode_ip, IpMessage};

    const RECALL: &[u8] = &[0x81, 0x01, 0x04, 0x3F, 0x02, 0x03, 0xFF];
    const INQ: &[u8] = &[0x81, 0x09, 0x04, 0x00, 0xFF];
    const RECALL_4: &[u8] = &[0x81, 0x01, 0x04, 0x3F, 0x02, 0x04, 0xFF];
    const DRIVE: &[u8] = &[0x81, 0x01, 0x06, 0x01, 0x05, 0x05, 0x03, 0x01, 0xFF];

    fn sent(s: &mut UdpSession) -> Vec<IpMessage> {
        let mut v = Vec::new();
        while let Some(d) = s.poll_datagram() {
            v.push(decode_ip(&mut BytesMut::from(&d[..])).unwrap().unwrap());
        }
        v
    }
    fn reply(seq: u32, p: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_ip(PayloadType::Reply, seq, p, &mut b);
        b.to_vec()
    }
    fn control(seq: u32, p: &[u8]) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode_ip(PayloadType::ControlReply, seq, p, &mut b);
        b.to_vec()
    }
    fn link(s: &mut UdpSession) -> Vec<u8> {
        s.take_for_link().map(|b| b.to_vec()).unwrap_or_default()
    }
    fn ready(now: Instant) -> UdpSession {
        let mut s = UdpSession::new(now, UdpOptions::default());
        let m = sent(&mut s);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].kind, &m[0].payload[..]), (PayloadType::Control, CONTROL_RESET));
        s.receive(now, &control(0, &[0x01]));
        s
    }

    /// Writes `packet`: the one datagram it became.
    fn written(s: &mut UdpSession, now: Instant, packet: &[u8]) -> IpMessage {
        s.write(now, packet);
        let mut m = sent(s);
        assert_eq!(m.len(), 1, "{m:?}");
        m.remove(0)
    }

    /// The camera's reply `p` to `seq`: what the link then hears.
    fn answer(s: &mut UdpSession, now: Instant, seq: u32, p: &[u8]) -> Vec<u8> {
        s.receive(now, &reply(seq, p));
        link(s)
    }

    /// Writes `packet`, answers it with `ack` and returns its number; what the
    /// link heard is returned too.
    fn acked(s: &mut UdpSession, now: Instant, packet: &[u8], ack: &[u8]) -> (u32, Vec<u8>) {
        let seq = written(s, now, packet).seq;
        (seq, answer(s, now, seq, ack))
    }

    #[test]
    fn chain_broadcasts_are_answered_locally() {
        let now = Instant::now();
        let mut s = ready(now);
        s.write(now, &[0x88, 0x30, 0x01, 0xFF, 0x88, 0x01, 0x00, 0x01, 0xFF]);
        assert!(sent(&mut s).is_empty());
        assert_eq!(link(&mut s), vec![0x88, 0x30, 0x02, 0xFF, 0x88, 0x01, 0x00, 0x01, 0xFF]);
        assert_eq!(local_answer(RECALL), None);
    }

    #[test]
    fn packets_wait_for_the_reset_ack_and_are_numbered_from_zero() {
        let now = Instant::now();
        let mut s = UdpSession::new(now, UdpOptions::default());
        sent(&mut s);
        s.write(now, INQ);
        assert!(sent(&mut s).is_empty(), "nothing before the RESET is acknowledged");
        // Unanswered RESET goes again.
        s.handle_timeout(now + Duration::from_millis(200));
        assert_eq!(sent(&mut s)[0].kind, PayloadType::Control);
        s.receive(now, &control(0, &[0x01]));
        let m = sent(&mut s);
        assert_eq!((m[0].kind, m[0].seq, &m[0].payload[..]), (PayloadType::Inquiry, 0, INQ));
        assert_eq!(s.stats().resets, 1);
    }

    #[test]
    fn replies_are_matched_by_number_and_duplicates_dropped() {
        let now = Instant::now();
        let mut s = ready(now);
        let seq = written(&mut s, now, RECALL).seq;
        s.receive(now, &reply(seq, &[0x90, 0x41, 0xFF]));
        assert_eq!(answer(&mut s, now, seq, &[0x90, 0x41, 0xFF]), vec![0x90, 0x41, 0xFF]);
        s.receive(now, &reply(seq, &[0x90, 0x51, 0xFF]));
        assert_eq!(answer(&mut s, now, seq, &[0x90, 0x51, 0xFF]), vec![0x90, 0x51, 0xFF]);
        assert_eq!(s.stats().dropped, 2);
    }

    #[test]
    fn a_resend_keeps_its_number_and_seq_error_means_performed() {
        let now = Instant::now();
        let mut s = ready(now);
        let first = written(&mut s, now, RECALL).seq;
        assert_eq!(written(&mut s, now, RECALL).seq, first, "retransmission under the same number");
        s.receive(now, &control(first, &[0x0F, 0x01]));
        assert_eq!(link(&mut s), vec![0x90, 0x41, 0xFF], "the camera had it: ACK for the link");
        assert_eq!(s.stats().resets, 1, "no reset for a retransmission's seq error");
    }

    #[test]
    fn completion_before_ack_implies_the_ack() {
        let now = Instant::now();
        let mut s = ready(now);
        let seq = written(&mut s, now, RECALL).seq;
        s.receive(now, &reply(seq, &[0x90, 0x52, 0xFF]));
        assert_eq!(answer(&mut s, now, seq, &[0x90, 0x42, 0xFF]), vec![0x90, 0x42, 0xFF, 0x90, 0x52, 0xFF]);
    }

    #[test]
    fn lost_completion_is_recovered_by_reissuing() {
        let now = Instant::now();
        let mut s = ready(now);
        let seq = written(&mut s, now, RECALL).seq;
        s.receive(now, &reply(seq, &[0x90, 0x41, 0xFF]));
        link(&mut s);
        let at = s.next_deadline().unwrap();
        assert_eq!(at, now + UdpOptions::default().reissue_after);
        s.handle_timeout(at);
        let m = sent(&mut s);
        assert_eq!((m[0].kind, &m[0].payload[..]), (PayloadType::Command, RECALL));
        assert_ne!(m[0].seq, seq, "a re-issue takes a new number");
        // The copy's ACK is swallowed, the original's late "cancelled" dropped,
        // the copy's completion reaches the link under the socket it knows.
        s.receive(at, &reply(m[0].seq, &[0x90, 0x42, 0xFF]));
        s.receive(at, &reply(seq, &[0x90, 0x61, 0x04, 0xFF]));
        assert_eq!(answer(&mut s, at, m[0].seq, &[0x90, 0x52, 0xFF]), vec![0x90, 0x51, 0xFF]);
        assert_eq!(s.stats().dropped, 2, "the copy's ACK and the original's error");
        // Not for inquiries or drives.
        let mut s = ready(now);
        let seq = written(&mut s, now, DRIVE).seq;
        s.receive(now, &reply(seq, &[0x90, 0x41, 0xFF]));
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn stale_numbers_trigger_a_reset_and_the_awaited_packet_goes_again() {
        let now = Instant::now();
        let mut s = ready(now);
        let seq = written(&mut s, now, INQ).seq;
        // A late duplicate of nothing we know, but close: dropped quietly.
        s.receive(now, &reply(seq.wrapping_sub(3), &[0x90, 0x50, 0x02, 0xFF]));
        assert!(sent(&mut s).is_empty());
        // Far away: the numbering went wrong.
        s.receive(now, &reply(seq.wrapping_sub(1000), &[0x90, 0x50, 0x02, 0xFF]));
        assert_eq!(sent(&mut s)[0].kind, PayloadType::Control);
        assert!(link(&mut s).is_empty());
        s.receive(now, &control(0, &[0x01]));
        let m = sent(&mut s);
        assert_eq!((m[0].seq, &m[0].payload[..]), (0, INQ));
        assert_eq!(answer(&mut s, now, 0, &[0x90, 0x50, 0x02, 0xFF]), vec![0x90, 0x50, 0x02, 0xFF]);
    }

    #[test]
    fn seq_error_for_a_first_send_resets() {
        let now = Instant::now();
        let mut s = ready(now);
        let seq = written(&mut s, now, RECALL).seq;
        s.receive(now, &control(seq, &[0x0F, 0x01]));
        assert_eq!(sent(&mut s)[0].kind, PayloadType::Control);
        assert_eq!(s.stats().resets, 2);
    }

    #[test]
    fn a_cancel_is_translated_to_the_cameras_socket() {
        let now = Instant::now();
        let mut s = ready(now);
        // First command's ACK lost: the seq error gives it socket 1 (guessed).
        let seq = written(&mut s, now, RECALL).seq;
        assert_eq!(answer(&mut s, now, seq, &[0x90, 0x42, 0xFF]), vec![0x90, 0x42, 0xFF]);
        let m = written(&mut s, now, &[0x81, 0x22, 0xFF]);
        assert_eq!(&m.payload[..], &[0x81, 0x22, 0xFF]);
        assert_eq!(answer(&mut s, now, m.seq, &[0x90, 0x62, 0x04, 0xFF]), vec![0x90, 0x62, 0x04, 0xFF]);
        assert_eq!(s.next_deadline(), None, "the cancelled command is no longer tracked");
    }

    #[test]
    fn cancels_are_three_bytes_with_2y() {
        assert!(is_cancel(&[0x81, 0x21, 0xFF]) && is_cancel(&[0x81, 0x22, 0xFF]));
        assert!(!is_cancel(RECALL) && !is_cancel(&[0x81, 0x01, 0xFF]) && !is_cancel(&[0x81, 0x21, 0x00, 0xFF]));
        // Broadcasts other than the chain's two mean nothing to one camera.
        assert_eq!(local_answer(&[0x88, 0x01, 0x04, 0x00, 0x02, 0xFF]), Some(Vec::new()));
    }

    #[test]
    fn reset_is_resent_only_after_its_timeout_and_packets_written_meanwhile_all_go() {
        let now = Instant::now();
        let mut s = UdpSession::new(now, UdpOptions::default());
        sent(&mut s);
        assert_eq!(s.next_deadline(), Some(now + Duration::from_millis(200)));
        s.handle_timeout(now + Duration::from_millis(199));
        assert!(sent(&mut s).is_empty(), "RESET resent before its timeout");
        // Written while the RESET is unanswered: all kept, in order, up to
        // MAX_TRACKED (the oldest is dropped past it).
        for preset in 0..=MAX_TRACKED as u8 {
            s.write(now, &[0x81, 0x01, 0x04, 0x3F, 0x02, preset, 0xFF]);
        }
        s.receive(now, &control(0, &[0x01]));
        let m = sent(&mut s);
        let presets: Vec<u8> = m.iter().map(|m| m.payload[5]).collect();
        assert_eq!(presets, (1..=MAX_TRACKED as u8).collect::<Vec<_>>());
        assert_eq!(m.iter().map(|m| m.seq).collect::<Vec<_>>(), (0..MAX_TRACKED as u32).collect::<Vec<_>>());
        assert_eq!(s.stats().sent, 1 + MAX_TRACKED as u64);
    }

    #[test]
    fn a_new_packet_gets_a_new_number_and_ends_the_wait_for_the_previous_one() {
        let now = Instant::now();
        let mut s = ready(now);
        let inq = written(&mut s, now, INQ).seq;
        // Another packet while the inquiry awaits: a fresh number, not a resend.
        let m = written(&mut s, now, RECALL);
        assert_eq!((m.seq, &m.payload[..]), (inq + 1, RECALL));
        assert_eq!(s.stats().retransmitted, 0);
        // The link gave up on the inquiry: its late answer is dropped.
        s.receive(now, &reply(inq, &[0x90, 0x50, 0x02, 0xFF]));
        assert!(link(&mut s).is_empty());
        assert_eq!(s.stats().dropped, 1);
        // The same packet again once acknowledged is a new command, not a resend.
        assert_eq!(answer(&mut s, now, m.seq, &[0x90, 0x41, 0xFF]), vec![0x90, 0x41, 0xFF]);
        assert_eq!(written(&mut s, now, RECALL).seq, inq + 2);
        // A resend is counted.
        assert_eq!(written(&mut s, now, RECALL).seq, inq + 2);
        assert_eq!(s.stats().retransmitted, 1);
        // An executing command survives later packets: its completion still
        // reaches the link.
        assert_eq!(answer(&mut s, now, m.seq, &[0x90, 0x51, 0xFF]), vec![0x90, 0x51, 0xFF]);
    }

    #[test]
    fn sockets_the_link_knows_stay_distinct_and_errors_use_them() {
        let now = Instant::now();
        let mut s = ready(now);
        // The camera reuses socket 1 (the first command's completion was
        // lost): the link already has a command there, so it hears 2.
        let (a, heard) = acked(&mut s, now, RECALL, &[0x90, 0x41, 0xFF]);
        assert_eq!(heard, vec![0x90, 0x41, 0xFF]);
        let (b, heard) = acked(&mut s, now, RECALL_4, &[0x90, 0x41, 0xFF]);
        assert_eq!(heard, vec![0x90, 0x42, 0xFF]);
        // The link's cancel of "its" socket 2 goes to the camera's socket 1.
        assert_eq!(&written(&mut s, now, &[0x81, 0x22, 0xFF]).payload[..], &[0x81, 0x21, 0xFF]);
        // An error for the second command comes back under the socket the link knows.
        assert_eq!(answer(&mut s, now, b, &[0x90, 0x61, 0x41, 0xFF]), vec![0x90, 0x62, 0x41, 0xFF]);
        // The first command is still tracked.
        assert_eq!(answer(&mut s, now, a, &[0x90, 0x51, 0xFF]), vec![0x90, 0x51, 0xFF]);

        // Camera socket 2 taken by the link's 2: the next one on 2 is told 1.
        let mut s = ready(now);
        acked(&mut s, now, RECALL, &[0x90, 0x42, 0xFF]);
        let (_, heard) = acked(&mut s, now, RECALL_4, &[0x90, 0x42, 0xFF]);
        assert_eq!(heard, vec![0x90, 0x41, 0xFF]);
    }

    #[test]
    fn a_cancel_answer_ends_only_the_command_it_names() {
        let now = Instant::now();
        let mut s = ready(now);
        let (a, _) = acked(&mut s, now, RECALL, &[0x90, 0x41, 0xFF]);
        acked(&mut s, now, RECALL_4, &[0x90, 0x42, 0xFF]);
        let m = written(&mut s, now, &[0x81, 0x22, 0xFF]);
        assert_eq!(&m.payload[..], &[0x81, 0x22, 0xFF], "sockets agree: no translation");
        assert_eq!(answer(&mut s, now, m.seq, &[0x90, 0x62, 0x04, 0xFF]), vec![0x90, 0x62, 0x04, 0xFF]);
        assert_eq!(answer(&mut s, now, a, &[0x90, 0x51, 0xFF]), vec![0x90, 0x51, 0xFF], "the other command's completion still arrives");
        // A non-cancel's error names no executing command: forwarded as is,
        // and the executing one is not ended by it.
        let mut s = ready(now);
        let (a, _) = acked(&mut s, now, RECALL, &[0x90, 0x41, 0xFF]);
        let b = written(&mut s, now, RECALL_4).seq;
        assert_eq!(answer(&mut s, now, b, &[0x90, 0x61, 0x41, 0xFF]), vec![0x90, 0x61, 0x41, 0xFF]);
        assert_eq!(answer(&mut s, now, a, &[0x90, 0x51, 0xFF]), vec![0x90, 0x51, 0xFF]);
    }

    #[test]
    fn a_socketless_completion_is_passed_on_unchanged() {
        let now = Instant::now();
        let mut s = ready(now);
        let seq = written(&mut s, now, RECALL).seq;
        assert_eq!(answer(&mut s, now, seq, &[0x90, 0x50, 0xFF]), vec![0x90, 0x50, 0xFF]);
    }

    #[test]
    fn what_cannot_be_matched_is_counted_as_dropped() {
        let now = Instant::now();
        let mut s = ready(now);
        s.receive(now, b"not visca");
        assert_eq!(s.stats().dropped, 1);
        // A command from the camera is no reply.
        let mut b = BytesMut::new();
        encode_ip(PayloadType::Command, 0, RECALL, &mut b);
        s.receive(now, &b);
        assert_eq!(s.stats().dropped, 2);
        // A sequence error for a number never sent, and an unknown control.
        s.receive(now, &control(999, &[0x0F, 0x01]));
        s.receive(now, &control(0, &[0x02]));
        assert_eq!(s.stats().dropped, 4);
        assert!(link(&mut s).is_empty() && sent(&mut s).is_empty());
        // A second sequence error for a resend already acknowledged: dropped, no reset.
        let seq = written(&mut s, now, RECALL).seq;
        assert_eq!(written(&mut s, now, RECALL).seq, seq, "a resend");
        s.receive(now, &control(seq, &[0x0F, 0x01]));
        s.receive(now, &control(seq, &[0x0F, 0x01]));
        assert_eq!(link(&mut s), vec![0x90, 0x41, 0xFF]);
        assert!(sent(&mut s).is_empty());
        assert_eq!((s.stats().dropped, s.stats().resets), (5, 1));
    }

    #[test]
    fn replies_within_the_window_are_late_beyond_it_the_numbering_is_wrong() {
        let now = Instant::now();
        let mut s = ready(now);
        for _ in 0..100 {
            let seq = written(&mut s, now, INQ).seq;
            s.receive(now, &reply(seq, &[0x90, 0x50, 0x02, 0xFF]));
        }
        // next_seq is 100: 64 behind is late, 65 behind is wrong.
        s.receive(now, &reply(100 - 64, &[0x90, 0x50, 0x02, 0xFF]));
        assert!(sent(&mut s).is_empty());
        s.receive(now, &reply(100 - 65, &[0x90, 0x50, 0x02, 0xFF]));
        assert_eq!(sent(&mut s)[0].kind, PayloadType::Control);
    }

    #[test]
    fn a_reset_sends_awaited_packets_again_and_keeps_executing_ones() {
        let now = Instant::now();
        let mut s = ready(now);
        let (recall, _) = acked(&mut s, now, RECALL, &[0x90, 0x41, 0xFF]);
        s.write(now, INQ);
        sent(&mut s);
        s.receive(now, &reply(recall.wrapping_sub(1000), &[0x90, 0x50, 0x02, 0xFF]));
        sent(&mut s);
        s.receive(now, &control(0, &[0x01]));
        let m = sent(&mut s);
        assert_eq!(m.len(), 1);
        assert_eq!((m[0].seq, &m[0].payload[..]), (0, INQ), "sent again, fresh");
        // The recall is still awaiting its completion, so it may be re-issued.
        assert_eq!(s.next_deadline(), Some(now + UdpOptions::default().reissue_after));
    }

    #[test]
    fn reissues_back_off_and_stop_after_the_limit() {
        let now = Instant::now();
        let opts = UdpOptions::default();
        let mut s = ready(now);
        acked(&mut s, now, RECALL, &[0x90, 0x41, 0xFF]);
        // Not due yet.
        s.handle_timeout(now + opts.reissue_after - Duration::from_millis(1));
        assert!(sent(&mut s).is_empty());
        let mut at = now + opts.reissue_after;
        for n in 1..=opts.max_reissues {
            assert_eq!(s.next_deadline(), Some(at));
            s.handle_timeout(at);
            assert_eq!(sent(&mut s).len(), 1, "re-issue {n}");
            at += opts.reissue_after * 2u32.pow(n);
        }
        assert_eq!(s.next_deadline(), None);
        s.handle_timeout(at + Duration::from_secs(3600));
        assert!(sent(&mut s).is_empty());
        assert_eq!(s.stats().reissued, opts.max_reissues as u64);
        // A drive is not idempotent: never re-issued.
        let mut s = ready(now);
        acked(&mut s, now, DRIVE, &[0x90, 0x41, 0xFF]);
        s.handle_timeout(now + Duration::from_secs(3600));
        assert!(sent(&mut s).is_empty());
    }
}
