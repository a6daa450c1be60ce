//! One simulated networked VISCA camera, in either IP form:
//!
//! - **UDP** (Sony's VISCA over IP): each datagram is an 8-byte header
//!   (payload type u16 BE — `0x0100` command, `0x0110` inquiry, `0x0111`
//!   reply, `0x0200` control, `0x0201` control reply —, payload length u16
//!   BE, sequence number u32 BE) and one VISCA packet. Replies carry the
//!   sequence number of the command they answer (ACK and completion alike).
//!   Control `01` (RESET) is answered `0x0201 01` and forgets the numbers
//!   seen. A command arriving again under a number already seen (a
//!   retransmission) is not executed again: it gets `0x0201 0F 01`
//!   (sequence-number error, "the command has been performed"); an inquiry
//!   is answered again.
//! - **TCP**: raw VISCA bytes on a connection, as on a serial line; a new
//!   connection replaces the previous one. AddressSet answers `88 30 02 FF`.
//!
//! The camera behind either is the chain's camera model (address 1, same
//! motion, sockets and [`Fault`]s). On top, network faults ([`NetFaults`]):
//! datagrams dropped, duplicated or reordered (either direction), replies
//! numbered with a stale sequence number, a TCP connection reset in the
//! middle of a command. Written from Sony's description, sharing nothing
//! with studiod.

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

use super::camera::{Camera, Outbox};
use super::proto::{Frame, Framer};
use super::{CameraState, ChainOptions, Fault, SimError};

/// Network misbehaviour of an IP camera (switchable at runtime).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetFaults {
    /// Probability (0–1) that a datagram, either way, is lost.
    pub drop: f64,
    /// Probability that a datagram, either way, arrives twice.
    pub duplicate: f64,
    /// Probability that an outgoing datagram is held back and sent after the next one (or 30 ms later).
    pub reorder: f64,
    /// The next this many UDP replies carry a stale sequence number (1000 behind).
    pub stale_replies: u32,
    /// TCP: the next command is executed, then the connection is reset
    /// (RST) before any reply goes out.
    pub reset_next_command: bool,
}

/// What crossed the simulated network, for tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetStats {
    pub received: u64,
    pub sent: u64,
    pub dropped_in: u64,
    pub dropped_out: u64,
    pub duplicated: u64,
    pub reordered: u64,
    pub resets: u64,
    /// Commands answered `0F 01` as retransmissions.
    pub retransmissions: u64,
    /// TCP connections accepted / reset by the fault.
    pub connections: u64,
    pub connection_resets: u64,
}

/// The IP form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpForm {
    Udp,
    Tcp,
}

struct Inner {
    cam: Camera,
    out: Outbox,
    opts: ChainOptions,
    faults: NetFaults,
    stats: NetStats,
    rng: u64,
}

impl Inner {
    fn roll(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        ((self.rng >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

struct Shared {
    inner: Mutex<Inner>,
    changed: watch::Sender<u64>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
    fn bump(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }
}

/// A running simulated IP camera. Dropping it stops the task.
pub struct IpCamera {
    form: IpForm,
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl IpCamera {
    /// A UDP camera bound to `bind` (use `127.0.0.1:0`). Inside a tokio runtime.
    pub async fn spawn_udp(bind: SocketAddr, opts: ChainOptions) -> io::Result<IpCamera> {
        let sock = UdpSocket::bind(bind).await?;
        let addr = sock.local_addr()?;
        let (shared, stop, rx) = Self::shared(opts);
        let task = tokio::spawn(run_udp(sock, shared.clone(), rx));
        Ok(IpCamera { form: IpForm::Udp, addr, shared, stop: Some(stop), task: Some(task) })
    }

    /// A TCP camera listening on `bind` (use `127.0.0.1:0`).
    pub async fn spawn_tcp(bind: SocketAddr, opts: ChainOptions) -> io::Result<IpCamera> {
        let listener = TcpListener::bind(bind).await?;
        let addr = listener.local_addr()?;
        let (shared, stop, rx) = Self::shared(opts);
        let task = tokio::spawn(run_tcp(listener, shared.clone(), rx));
        Ok(IpCamera { form: IpForm::Tcp, addr, shared, stop: Some(stop), task: Some(task) })
    }

    fn shared(opts: ChainOptions) -> (Arc<Shared>, oneshot::Sender<()>, oneshot::Receiver<()>) {
        let now = Instant::now();
        let mut cam = Camera::new(1, now);
        cam.address = Some(1);
        let rng = opts.seed | 1;
        let inner = Inner { cam, out: Outbox::new(opts.seed), opts, faults: NetFaults::default(), stats: NetStats::default(), rng };
        let shared = Arc::new(Shared { inner: Mutex::new(inner), changed: watch::channel(0).0 });
        let (tx, rx) = oneshot::channel();
        (shared, tx, rx)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// `visca-udp://127.0.0.1:PORT` or `visca-tcp://…`, for a config.
    pub fn url(&self) -> String {
        let scheme = match self.form {
            IpForm::Udp => "visca-udp",
            IpForm::Tcp => "visca-tcp",
        };
        format!("{scheme}://{}", self.addr)
    }

    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().cam.fault = fault;
        self.shared.bump();
    }

    pub fn set_net_faults(&self, faults: NetFaults) {
        self.shared.lock().faults = faults;
        self.shared.bump();
    }

    pub fn stats(&self) -> NetStats {
        self.shared.lock().stats
    }

    pub fn camera_state(&self) -> CameraState {
        self.shared.lock().cam.state(Instant::now())
    }

    /// Raw VISCA packets the camera received, in order.
    pub fn packets(&self) -> Vec<Vec<u8>> {
        self.shared.lock().cam.log.clone()
    }

    /// Waits until `pred` holds (re-checked on every step and every 10 ms).
    pub async fn wait_until(&self, pred: impl Fn(&CameraState) -> bool, timeout: Duration) -> Result<CameraState, SimError> {
        crate::wait_for_state(self.shared.changed.subscribe(), || self.camera_state(), pred, timeout).await
    }

    /// Stops the task and waits for it.
    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for IpCamera {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

// ---- UDP -------------------------------------------------------------------

const COMMAND: u16 = 0x0100;
const INQUIRY: u16 = 0x0110;
const REPLY: u16 = 0x0111;
const CONTROL: u16 = 0x0200;
const CONTROL_REPLY: u16 = 0x0201;

fn datagram(kind: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(8 + payload.len());
    d.extend_from_slice(&kind.to_be_bytes());
    d.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    d.extend_from_slice(&seq.to_be_bytes());
    d.extend_from_slice(payload);
    d
}

/// Sequence-number bookkeeping of the UDP form.
#[derive(Default)]
struct Numbers {
    /// Recently executed (seq, packet), newest last.
    seen: std::collections::VecDeque<(u32, Vec<u8>)>,
    /// Which command's number a socket's later replies carry.
    socket_seq: [u32; 2],
    last: u32,
}

struct UdpState {
    peer: Option<SocketAddr>,
    nums: Numbers,
    held: Option<(Instant, Vec<u8>)>,
    /// Received datagrams held back by a reorder fault.
    held_in: Option<(Instant, Vec<u8>)>,
    /// Replies to send: (payload type, sequence number, payload).
    outq: Vec<(u16, u32, Vec<u8>)>,
}

async fn run_udp(sock: UdpSocket, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut st = UdpState { peer: None, nums: Numbers::default(), held: None, held_in: None, outq: Vec::new() };
    let mut buf = [0u8; 2048];
    loop {
        let deadline = {
            let inner = shared.lock();
            [inner.cam.next_deadline(), st.held.as_ref().map(|h| h.0), st.held_in.as_ref().map(|h| h.0)].into_iter().flatten().min()
        };
        tokio::select! {
            _ = &mut stop => return,
            // An error is ICMP from an earlier send (the controller went away): carry on.
            r = sock.recv_from(&mut buf) => if let Ok((n, from)) = r {
                st.peer = Some(from);
                let d = buf[..n].to_vec();
                let (drop, dup, hold) = {
                    let mut i = shared.lock();
                    i.stats.received += 1;
                    let (p_drop, p_dup, p_re) = (i.faults.drop, i.faults.duplicate, i.faults.reorder);
                    (i.roll(p_drop), i.roll(p_dup), i.roll(p_re))
                };
                if drop {
                    shared.lock().stats.dropped_in += 1;
                } else if hold && st.held_in.is_none() {
                    shared.lock().stats.reordered += 1;
                    st.held_in = Some((Instant::now() + Duration::from_millis(30), d));
                } else {
                    udp_in(&shared, &mut st, &d);
                    if dup {
                        shared.lock().stats.duplicated += 1;
                        udp_in(&shared, &mut st, &d);
                    }
                    if let Some((_, h)) = st.held_in.take() {
                        udp_in(&shared, &mut st, &h);
                    }
                }
            },
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
        }
        let now = Instant::now();
        if st.held_in.as_ref().is_some_and(|h| h.0 <= now) {
            let (_, h) = st.held_in.take().expect("checked");
            udp_in(&shared, &mut st, &h);
        }
        // Completions and delayed ACKs.
        let packets = {
            let mut guard = shared.lock();
            let i = &mut *guard;
            i.cam.poll(now, &mut i.out);
            std::mem::take(&mut i.out.packets)
        };
        let mut out = Vec::new();
        for p in packets {
            let seq = match socket_of(&p) {
                Some(y) => st.nums.socket_seq[y as usize - 1],
                None => st.nums.last,
            };
            out.push((REPLY, seq, p));
        }
        send_udp(&sock, &shared, &mut st, out).await;
        shared.bump();
    }
}

/// The socket nibble of a reply `y0 4z/5z/6z …` when non-zero.
fn socket_of(p: &[u8]) -> Option<u8> {
    let b = *p.get(1)?;
    let y = b & 0x0F;
    (matches!(b & 0xF0, 0x40 | 0x50 | 0x60) && (1..=2).contains(&y)).then_some(y)
}

fn udp_in(shared: &Shared, st: &mut UdpState, d: &[u8]) {
    let mut out = Vec::new();
    if d.len() < 9 {
        return;
    }
    let kind = u16::from_be_bytes([d[0], d[1]]);
    let len = u16::from_be_bytes([d[2], d[3]]) as usize;
    let seq = u32::from_be_bytes([d[4], d[5], d[6], d[7]]);
    if d.len() != 8 + len || len == 0 || len > 16 {
        out.push((CONTROL_REPLY, seq, vec![0x0F, 0x02]));
        st.pending(out);
        return;
    }
    let payload = &d[8..];
    if shared.lock().cam.fault == Fault::Silent {
        // A hung camera: its network stack says nothing either.
        shared.lock().cam.log.push(payload.to_vec());
        return;
    }
    match kind {
        CONTROL if payload == [0x01] => {
            shared.lock().stats.resets += 1;
            st.nums.seen.clear();
            out.push((CONTROL_REPLY, seq, vec![0x01]));
        }
        COMMAND | INQUIRY if payload.len() >= 3 && payload[0] & 0xF0 == 0x80 && payload[payload.len() - 1] == 0xFF => {
            let inquiry = payload[1] == 0x09;
            if (kind == INQUIRY) != inquiry {
                out.push((CONTROL_REPLY, seq, vec![0x0F, 0x02]));
            } else if let Some((_, p)) = st.nums.seen.iter().find(|(s, _)| *s == seq) {
                if p.as_slice() == payload && inquiry {
                    execute(shared, st, seq, payload, &mut out);
                } else {
                    // A command seen before: performed already (or a clash of numbers).
                    shared.lock().stats.retransmissions += 1;
                    out.push((CONTROL_REPLY, seq, vec![0x0F, 0x01]));
                }
            } else {
                if st.nums.seen.len() >= 32 {
                    st.nums.seen.pop_front();
                }
                st.nums.seen.push_back((seq, payload.to_vec()));
                execute(shared, st, seq, payload, &mut out);
            }
        }
        _ => out.push((CONTROL_REPLY, seq, vec![0x0F, 0x02])),
    }
    st.pending(out);
}

impl UdpState {
    /// Replies produced while handling input wait for the send step.
    fn pending(&mut self, out: Vec<(u16, u32, Vec<u8>)>) {
        self.outq.extend(out);
    }
}

fn execute(shared: &Shared, st: &mut UdpState, seq: u32, packet: &[u8], out: &mut Vec<(u16, u32, Vec<u8>)>) {
    let now = Instant::now();
    let before = st.nums.socket_seq;
    let is_cancel = packet.len() == 3 && packet[1] & 0xF0 == 0x20;
    let packets = {
        let mut guard = shared.lock();
        let i = &mut *guard;
        i.cam.taken = None;
        if packet[0] == 0x81 {
            let opts = i.opts.clone();
            i.cam.handle(now, packet, false, &opts, &mut i.out);
        }
        if let Some(y) = i.cam.taken {
            st.nums.socket_seq[y as usize - 1] = seq;
        }
        std::mem::take(&mut i.out.packets)
    };
    st.nums.last = seq;
    for p in packets {
        // A retarget's "cancelled" belongs to the old command's number.
        let n = match (p.get(1).map(|b| b & 0xF0), socket_of(&p)) {
            (Some(0x60), Some(y)) if !is_cancel => before[y as usize - 1],
            _ => seq,
        };
        out.push((REPLY, n, p));
    }
}

async fn send_udp(sock: &UdpSocket, shared: &Shared, st: &mut UdpState, mut out: Vec<(u16, u32, Vec<u8>)>) {
    let mut queued = std::mem::take(&mut st.outq);
    queued.append(&mut out);
    let Some(peer) = st.peer else { return };
    let now = Instant::now();
    let mut wire = Vec::new();
    for (kind, seq, payload) in queued {
        let (drop, dup, hold, seq) = {
            let mut i = shared.lock();
            let stale = kind == REPLY && i.faults.stale_replies > 0;
            let seq = if stale {
                i.faults.stale_replies -= 1;
                seq.wrapping_sub(1000)
            } else {
                seq
            };
            let (p_drop, p_dup, p_re) = (i.faults.drop, i.faults.duplicate, i.faults.reorder);
            (i.roll(p_drop), i.roll(p_dup), i.roll(p_re), seq)
        };
        let d = datagram(kind, seq, &payload);
        if drop {
            shared.lock().stats.dropped_out += 1;
            continue;
        }
        if hold && st.held.is_none() {
            shared.lock().stats.reordered += 1;
            st.held = Some((now + Duration::from_millis(30), d));
            continue;
        }
        wire.push(d.clone());
        if dup {
            shared.lock().stats.duplicated += 1;
            wire.push(d);
        }
        if let Some((_, h)) = st.held.take() {
            wire.push(h);
        }
    }
    if st.held.as_ref().is_some_and(|h| h.0 <= now) {
        wire.push(st.held.take().expect("checked").1);
    }
    for d in wire {
        if sock.send_to(&d, peer).await.is_ok() {
            shared.lock().stats.sent += 1;
        }
    }
}

// ---- TCP -------------------------------------------------------------------

async fn run_tcp(listener: TcpListener, shared: Arc<Shared>, mut stop: oneshot::Receiver<()>) {
    let mut conn: Option<TcpStream> = None;
    let mut framer = Framer::default();
    let mut buf = [0u8; 512];
    loop {
        let deadline = shared.lock().cam.next_deadline();
        let mut reset = false;
        tokio::select! {
            _ = &mut stop => return,
            a = listener.accept() => if let Ok((s, _)) = a {
                let _ = s.set_nodelay(true);
                shared.lock().stats.connections += 1;
                // A new controller replaces the old one; the camera forgets queued work.
                conn = Some(s);
                framer = Framer::default();
            },
            r = read_conn(&mut conn, &mut buf) => match r {
                Ok(n) if n > 0 => {
                    let now = Instant::now();
                    shared.lock().stats.received += n as u64;
                    for &b in &buf[..n] {
                        if let Some(Frame::Packet(p)) = framer.push(b) {
                            let mut guard = shared.lock();
                            let i = &mut *guard;
                            if p == [0x88, 0x30, 0x01, 0xFF] {
                                i.out.packets.push(vec![0x88, 0x30, 0x02, 0xFF]);
                                continue;
                            }
                            if p[0] != 0x81 {
                                continue;
                            }
                            let opts = i.opts.clone();
                            i.cam.handle(now, &p, false, &opts, &mut i.out);
                            if p.get(1) == Some(&0x01) && i.faults.reset_next_command {
                                i.faults.reset_next_command = false;
                                reset = true;
                            }
                        }
                    }
                }
                _ => conn = None,
            },
            _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {}
        }
        let now = Instant::now();
        let packets = {
            let mut guard = shared.lock();
            let i = &mut *guard;
            i.cam.poll(now, &mut i.out);
            std::mem::take(&mut i.out.packets)
        };
        if reset {
            if let Some(s) = conn.take() {
                // RST instead of FIN: the controller sees "connection reset".
                #[allow(deprecated)] // a zero linger does not block: it sends RST at once
                let _ = s.set_linger(Some(Duration::ZERO));
                drop(s);
            }
            // The camera carries on with the command; its replies go nowhere.
            shared.lock().stats.connection_resets += 1;
        } else if let Some(s) = conn.as_mut() {
            let bytes: Vec<u8> = packets.concat();
            if !bytes.is_empty() {
                if s.write_all(&bytes).await.is_err() {
                    conn = None;
                } else {
                    shared.lock().stats.sent += bytes.len() as u64;
                }
            }
        }
        shared.bump();
    }
}

async fn read_conn(conn: &mut Option<TcpStream>, buf: &mut [u8]) -> io::Result<usize> {
    match conn {
        Some(s) => s.read(buf).await,
        None => std::future::pending().await,
    }
}
