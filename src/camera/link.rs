//! The per-port link state machine, sans-IO.
//!
//! One [`Link`] serves every camera on one serial port. It is fed events
//! with the current [`Instant`] (requests, decoded replies, port opened or
//! closed, timer expiry) and produces [`Output`]s: bytes to write, request
//! results and health changes. It never sleeps; the port actor asks
//! [`Link::next_deadline`] and calls [`Link::handle_timeout`] then.
//!
//! Per camera the VISCA rules are:
//! - only one packet awaits its direct reply (ACK, answer or error) at a
//!   time, because replies carry no request id, only the camera address;
//! - after the ACK a command executes in socket 1 or 2 until its completion,
//!   so at most two commands execute; a third waits in the queue (inquiries
//!   still go, they use no socket);
//! - cameras are independent: a silent camera only delays its own queue.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::time::Instant;
use tracing::{debug, info, warn};

pub use super::error::{Failure, LinkDown, Waited};
use super::profile::CameraTiming;
use crate::visca::{encode, Address, Answer, CommandKind, Inquiry, Packet, Reply, ViscaCommand, ViscaErrorCode};

/// Identifies a submitted request in [`Output::Done`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

/// What a caller asks of a camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    ViscaCommand(ViscaCommand),
    Inquiry(Inquiry),
}

/// A successful result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinkOutcome {
    /// The command reported completion.
    Completed,
    /// The inquiry's answer.
    Answer(Answer),
}

/// Something for the port actor to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Write these bytes to the port, in order.
    Transmit(Bytes),
    /// A request finished.
    Done { id: RequestId, address: Address, result: Result<LinkOutcome, Failure> },
    /// A camera's health changed.
    Health { address: Address, online: bool, reason: Option<LinkDown> },
}

/// Per-camera settings, from the profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraLinkConfig {
    pub timing: CameraTiming,
    pub completion_without_ack: bool,
}

/// Port-wide knobs; defaults suit 9600 baud chains.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LinkOptions {
    /// Extra sends after an ACK/answer timeout while the camera is online.
    pub retries: u32,
    /// Wait before the first resend; doubles for each further one.
    pub retry_backoff: Duration,
    /// Inquire an idle camera this long after it was last heard from.
    pub probe_interval: Duration,
    /// Wait this long for the AddressSet reply after opening the port.
    pub address_timeout: Duration,
    /// Requests that may wait per camera (besides the one awaiting its reply
    /// and the two executing); more are refused as [`Failure::Busy`].
    pub queue_capacity: usize,
}

/// Default of [`LinkOptions::queue_capacity`]. A scene queues at most two
/// requests per camera (pan-tilt and zoom), so eight is four scenes behind
/// the two moves already running. Anything deeper would start after its
/// caller's deadline (a move takes seconds) and only make the camera catch
/// up with stale moves; a prompt "busy" serves the booth better.
pub const DEFAULT_QUEUE_CAPACITY: usize = 8;

impl Default for LinkOptions {
    fn default() -> Self {
        // Silence is detected within probe 500 + 3×200 ack + 100 + 200 backoff
        // = 1.4 s, inside the 2 s budget.
        LinkOptions {
            retries: 2,
            retry_backoff: Duration::from_millis(100),
            probe_interval: Duration::from_millis(500),
            address_timeout: Duration::from_secs(1),
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

#[derive(Debug)]
struct Pending {
    id: RequestId,
    request: Request,
    attempts: u32,
    /// Internal health inquiry: no caller to answer.
    probe: bool,
    /// Cancel requested before the ACK: cancel as soon as we know the socket.
    cancel: bool,
    /// The caller went away while this was on the wire: let it finish, but
    /// never resend it.
    withdrawn: bool,
}

impl Pending {
    fn new(id: RequestId, request: Request, probe: bool) -> Pending {
        Pending { id, request, attempts: 0, probe, cancel: false, withdrawn: false }
    }
}

#[derive(Debug)]
enum Slot {
    Idle,
    /// Sent; awaiting ACK / answer / error (or completion, for quirky cameras).
    Sent {
        p: Pending,
        deadline: Instant,
        waited: Waited,
        after: Duration,
    },
    /// Timed out; resend at `at`.
    Backoff {
        p: Pending,
        at: Instant,
    },
}

#[derive(Debug)]
struct Executing {
    id: RequestId,
    socket: u8,
    deadline: Instant,
    after: Duration,
}

#[derive(Debug)]
struct Cam {
    address: Address,
    cfg: CameraLinkConfig,
    queue: VecDeque<Pending>,
    slot: Slot,
    executing: Vec<Executing>,
    /// Cancels sent whose `z0 6y 05` (already finished) reply may still come.
    cancels_pending: u32,
    online: bool,
    reason: Option<LinkDown>,
    next_probe: Instant,
}

/// Most commands a camera executes at once (its two sockets).
const SOCKETS: usize = 2;

impl Cam {
    fn can_send_head(&self) -> bool {
        match self.queue.front() {
            Some(p) => matches!(p.request, Request::Inquiry(_)) || self.executing.len() < SOCKETS,
            None => false,
        }
    }
    fn probe_due(&self) -> bool {
        matches!(self.slot, Slot::Idle) && !self.can_send_head()
    }
    fn completion_timeout(&self, kind: CommandKind) -> Duration {
        let t = &self.cfg.timing;
        match kind {
            CommandKind::Short => t.completion_short,
            CommandKind::Move => t.completion_move,
            CommandKind::Power => t.completion_power,
        }
    }
}

#[derive(Debug)]
enum PortState {
    Closed(LinkDown),
    Addressing { deadline: Instant },
    Ready,
}

/// The link state machine for one serial port. See the module docs.
#[derive(Debug)]
pub struct Link {
    cams: Vec<Cam>,
    port: PortState,
    opts: LinkOptions,
    next_id: u64,
    out: VecDeque<Output>,
}

impl Link {
    /// A link for these cameras, with the port not yet open.
    pub fn new(now: Instant, cameras: impl IntoIterator<Item = (Address, CameraLinkConfig)>, opts: LinkOptions) -> Link {
        let reason = LinkDown::NotOpened;
        let cams = cameras
            .into_iter()
            .map(|(address, cfg)| Cam {
                address,
                cfg,
                queue: VecDeque::new(),
                slot: Slot::Idle,
                executing: Vec::new(),
                cancels_pending: 0,
                online: false,
                reason: Some(reason.clone()),
                next_probe: now,
            })
            .collect();
        Link { cams, port: PortState::Closed(reason), opts, next_id: 0, out: VecDeque::new() }
    }

    /// The next output, if any. Drain after every input.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Whether the port is open (addressing or ready).
    pub fn is_open(&self) -> bool {
        !matches!(self.port, PortState::Closed(_))
    }

    /// The port is open: number the chain and clear the cameras' buffers.
    pub fn opened(&mut self, now: Instant) {
        info!("serial port open, addressing the chain");
        for cam in &mut self.cams {
            cam.next_probe = now;
        }
        self.start_addressing(now);
        self.transmit(Packet::IF_CLEAR_BROADCAST);
    }

    /// The port failed or closed: everything pending fails, cameras go offline.
    pub fn closed(&mut self, _now: Instant, reason: LinkDown) {
        self.port = PortState::Closed(reason.clone());
        for i in 0..self.cams.len() {
            let cam = &mut self.cams[i];
            let mut failed: Vec<(RequestId, bool)> = Vec::new();
            match std::mem::replace(&mut cam.slot, Slot::Idle) {
                Slot::Sent { p, .. } | Slot::Backoff { p, .. } => failed.push((p.id, p.probe)),
                Slot::Idle => {}
            }
            failed.extend(cam.executing.drain(..).map(|e| (e.id, false)));
            failed.extend(cam.queue.drain(..).map(|p| (p.id, p.probe)));
            cam.cancels_pending = 0;
            let address = cam.address;
            for (id, probe) in failed {
                if !probe {
                    self.out.push_back(Output::Done { id, address, result: Err(Failure::PortClosed(reason.clone())) });
                }
            }
            self.set_health(i, false, Some(reason.clone()));
        }
    }

    /// Queues a request for the camera at `address`.
    pub fn submit(&mut self, now: Instant, address: Address, request: Request) -> RequestId {
        let id = RequestId(self.next_id);
        self.next_id += 1;
        let Some(i) = self.index(address) else {
            let result = Err(Failure::Offline(LinkDown::NoSuchCamera(address)));
            self.out.push_back(Output::Done { id, address, result });
            return id;
        };
        if let PortState::Closed(reason) = &self.port {
            // Fail fast: nothing can reach the camera until the port reopens.
            let result = Err(Failure::Offline(reason.clone()));
            self.out.push_back(Output::Done { id, address, result });
            return id;
        }
        let queued = self.cams[i].queue.len();
        if queued >= self.opts.queue_capacity {
            // Refuse now rather than grow: the caller learns at once and may retry.
            self.out.push_back(Output::Done { id, address, result: Err(Failure::Busy { queued }) });
            return id;
        }
        self.cams[i].queue.push_back(Pending::new(id, request, false));
        self.pump(now);
        id
    }

    /// The callers of `ids` went away. A request that has not gone on the
    /// wire is dropped without a word (nothing is sent for it, no output);
    /// one awaiting a resend is dropped too; one on the wire or executing
    /// runs its course, never resent, and its result is still reported (the
    /// caller is gone, so it goes nowhere). All at once, so that the next
    /// request sent is never one about to be withdrawn.
    pub fn withdraw(&mut self, now: Instant, ids: impl IntoIterator<Item = RequestId>) {
        for id in ids {
            for cam in &mut self.cams {
                let before = cam.queue.len();
                cam.queue.retain(|p| p.id != id);
                if cam.queue.len() != before {
                    break;
                }
                match &mut cam.slot {
                    // A late ACK for the dropped attempt is ignored like any stray one.
                    Slot::Backoff { p, .. } if p.id == id => cam.slot = Slot::Idle,
                    Slot::Sent { p, .. } if p.id == id => p.withdrawn = true,
                    _ => continue,
                }
                break;
            }
        }
        self.pump(now);
    }

    /// Requests waiting in `address`'s queue (not yet on the wire).
    pub fn queued(&self, address: Address) -> usize {
        self.index(address).map_or(0, |i| self.cams[i].queue.len())
    }

    /// Cancels one request: dropped if queued, VISCA Cancel if executing.
    pub fn cancel(&mut self, now: Instant, id: RequestId) {
        for i in 0..self.cams.len() {
            self.cancel_in(i, |rid| rid == id);
        }
        self.pump(now);
    }

    /// Cancels everything queued or running on one camera.
    pub fn cancel_camera(&mut self, now: Instant, address: Address) {
        if let Some(i) = self.index(address) {
            self.cancel_in(i, |_| true);
        }
        self.pump(now);
    }

    fn cancel_in(&mut self, i: usize, pick: impl Fn(RequestId) -> bool) {
        let cam = &mut self.cams[i];
        let address = cam.address;
        let mut done = Vec::new();
        cam.queue.retain(|p| {
            let hit = !p.probe && pick(p.id);
            if hit {
                done.push(p.id);
            }
            !hit
        });
        match &mut cam.slot {
            Slot::Backoff { p, .. } if !p.probe && pick(p.id) => {
                done.push(p.id);
                cam.slot = Slot::Idle;
            }
            // The socket is unknown until the ACK; cancel then.
            Slot::Sent { p, .. } if !p.probe && pick(p.id) => p.cancel = true,
            _ => {}
        }
        let mut sockets = Vec::new();
        for e in &cam.executing {
            if pick(e.id) && e.socket != 0 {
                sockets.push(e.socket);
            }
        }
        cam.cancels_pending += sockets.len() as u32;
        for id in done {
            self.out.push_back(Output::Done { id, address, result: Err(Failure::Cancelled) });
        }
        for socket in sockets {
            self.transmit(Packet::Cancel { to: address, socket });
        }
    }

    /// A decoded reply arrived.
    pub fn receive(&mut self, now: Instant, reply: Reply) {
        match reply {
            Reply::AddressSet { next } => {
                let found = next.saturating_sub(1);
                info!(cameras = found, "chain addressed");
                self.port = PortState::Ready;
                for i in 0..self.cams.len() {
                    let cam = &mut self.cams[i];
                    cam.next_probe = now;
                    if cam.address.get() >= next.max(1) {
                        self.set_health(i, false, Some(LinkDown::NotOnChain { found }));
                    }
                }
            }
            Reply::IfClearBroadcast => {}
            Reply::NetworkChange { address } => {
                // A camera was plugged in or out: the numbering may be stale.
                info!(address, "network change, re-addressing");
                self.start_addressing(now);
            }
            Reply::Ack { address, socket } => {
                let Some(i) = self.heard(now, address) else { return };
                self.on_ack(now, i, socket);
            }
            Reply::Completion { address, socket } => {
                let Some(i) = self.heard(now, address) else { return };
                self.on_completion(i, socket);
            }
            Reply::Answer { address, payload } => {
                let Some(i) = self.heard(now, address) else { return };
                let cam = &mut self.cams[i];
                match std::mem::replace(&mut cam.slot, Slot::Idle) {
                    Slot::Sent { p, .. } | Slot::Backoff { p, .. } if matches!(p.request, Request::Inquiry(_)) => {
                        let Request::Inquiry(q) = p.request else { unreachable!() };
                        let result = q.interpret(payload.as_slice()).map(LinkOutcome::Answer).map_err(Failure::BadAnswer);
                        self.finish(i, p, result);
                    }
                    other => {
                        cam.slot = other;
                        debug!(address, ?payload, "answer with no inquiry outstanding, ignored");
                    }
                }
            }
            Reply::Error { address, socket, code } => {
                let Some(i) = self.heard(now, address) else { return };
                self.on_error(i, socket, code);
            }
        }
        self.pump(now);
    }

    /// Handles every deadline that has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let PortState::Addressing { deadline } = self.port {
            if now >= deadline {
                // Some adapters and cameras never answer AddressSet; carry on and
                // let the health inquiries tell who is there.
                warn!("no reply to AddressSet, probing cameras anyway");
                self.port = PortState::Ready;
                for i in 0..self.cams.len() {
                    if !self.cams[i].online {
                        let why = LinkDown::NotAddressed { after: self.opts.address_timeout };
                        self.set_health(i, false, Some(why));
                    }
                }
            }
        }
        for i in 0..self.cams.len() {
            self.expire(now, i);
        }
        self.pump(now);
    }

    /// When [`Link::handle_timeout`] should next be called.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
        match self.port {
            PortState::Closed(_) => return None,
            PortState::Addressing { deadline } => consider(deadline),
            PortState::Ready => {}
        }
        for cam in &self.cams {
            match &cam.slot {
                Slot::Sent { deadline, .. } => consider(*deadline),
                Slot::Backoff { at, .. } => consider(*at),
                Slot::Idle => {}
            }
            for e in &cam.executing {
                consider(e.deadline);
            }
            if matches!(self.port, PortState::Ready) && cam.probe_due() {
                consider(cam.next_probe);
            }
        }
        next
    }

    // --- internals -------------------------------------------------------

    fn index(&self, address: Address) -> Option<usize> {
        self.cams.iter().position(|c| c.address == address)
    }

    fn transmit(&mut self, packet: Packet) {
        let mut b = BytesMut::with_capacity(crate::visca::MAX_PACKET);
        encode(&packet, &mut b);
        self.out.push_back(Output::Transmit(b.freeze()));
    }

    fn start_addressing(&mut self, now: Instant) {
        self.port = PortState::Addressing { deadline: now + self.opts.address_timeout };
        self.transmit(Packet::AddressSet);
    }

    /// A camera spoke: it is alive. Returns its index if we know it.
    fn heard(&mut self, now: Instant, address: u8) -> Option<usize> {
        let Some(i) = Address::new(address).and_then(|a| self.index(a)) else {
            debug!(address, "reply from an unconfigured address, ignored");
            return None;
        };
        self.cams[i].next_probe = now + self.opts.probe_interval;
        self.set_health(i, true, None);
        Some(i)
    }

    fn set_health(&mut self, i: usize, online: bool, reason: Option<LinkDown>) {
        let cam = &mut self.cams[i];
        if cam.online == online && cam.reason == reason {
            return;
        }
        // Logged by the port actor, which knows the camera's name.
        cam.online = online;
        cam.reason = reason.clone();
        self.out.push_back(Output::Health { address: cam.address, online, reason });
    }

    fn finish(&mut self, i: usize, p: Pending, result: Result<LinkOutcome, Failure>) {
        if !p.probe {
            self.out.push_back(Output::Done { id: p.id, address: self.cams[i].address, result });
        }
    }

    fn on_ack(&mut self, now: Instant, i: usize, socket: u8) {
        let cam = &mut self.cams[i];
        let address = cam.address;
        match std::mem::replace(&mut cam.slot, Slot::Idle) {
            // A reply during the backoff is the late answer to the previous attempt: take it, don't resend.
            Slot::Sent { p, .. } | Slot::Backoff { p, .. } if matches!(p.request, Request::ViscaCommand(_)) => {
                let Request::ViscaCommand(c) = p.request else { unreachable!() };
                let after = cam.completion_timeout(c.kind());
                let mut lost = None;
                if let Some(k) = cam.executing.iter().position(|e| e.socket == socket) {
                    lost = Some(cam.executing.remove(k).id);
                }
                cam.executing.push(Executing { id: p.id, socket, deadline: now + after, after });
                if p.cancel && socket != 0 {
                    cam.cancels_pending += 1;
                    self.transmit(Packet::Cancel { to: address, socket });
                }
                if let Some(id) = lost {
                    self.out.push_back(Output::Done { id, address, result: Err(Failure::Lost(socket)) });
                }
            }
            other => {
                // Typically the late ACK of an attempt we already resent.
                cam.slot = other;
                debug!(%address, socket, "unexpected ACK, ignored");
            }
        }
    }

    fn on_completion(&mut self, i: usize, socket: u8) {
        let cam = &mut self.cams[i];
        if let Some(k) = cam.executing.iter().position(|e| e.socket == socket) {
            let e = cam.executing.remove(k);
            self.out.push_back(Output::Done { id: e.id, address: cam.address, result: Ok(LinkOutcome::Completed) });
            return;
        }
        match std::mem::replace(&mut cam.slot, Slot::Idle) {
            // Completion without ACK: some cameras skip the ACK (profile quirk); accept it from anyone.
            Slot::Sent { p, .. } | Slot::Backoff { p, .. } if matches!(p.request, Request::ViscaCommand(_)) => {
                self.finish(i, p, Ok(LinkOutcome::Completed))
            }
            other => {
                cam.slot = other;
                debug!(address = %cam.address, socket, "completion for nothing we track, ignored");
            }
        }
    }

    fn on_error(&mut self, i: usize, socket: u8, code: ViscaErrorCode) {
        let cam = &mut self.cams[i];
        let address = cam.address;
        let running = cam.executing.iter().position(|e| e.socket == socket);
        if code == ViscaErrorCode::Cancelled {
            if let Some(k) = running {
                cam.cancels_pending = cam.cancels_pending.saturating_sub(1);
                let e = cam.executing.remove(k);
                self.out.push_back(Output::Done { id: e.id, address, result: Err(Failure::Cancelled) });
                return;
            }
        }
        if code == ViscaErrorCode::NoSocket && cam.cancels_pending > 0 {
            // Our cancel raced the completion; nothing to do.
            cam.cancels_pending -= 1;
            return;
        }
        match std::mem::replace(&mut cam.slot, Slot::Idle) {
            Slot::Sent { p, .. } | Slot::Backoff { p, .. } => {
                let result = if p.cancel { Err(Failure::Cancelled) } else { Err(Failure::Refused(code)) };
                self.finish(i, p, result);
            }
            other => {
                cam.slot = other;
                if let Some(k) = running {
                    // Failed while executing (e.g. 41 not executable mid-move).
                    let e = cam.executing.remove(k);
                    self.out.push_back(Output::Done { id: e.id, address, result: Err(Failure::Refused(code)) });
                } else {
                    debug!(%address, socket, %code, "error for nothing we track, ignored");
                }
            }
        }
    }

    fn expire(&mut self, now: Instant, i: usize) {
        let cam = &mut self.cams[i];
        let address = cam.address;
        // Commands that ACKed but never completed: the link works, so this
        // does not make the camera offline, and resending a move is unsafe.
        let mut late = Vec::new();
        cam.executing.retain(|e| {
            let keep = now < e.deadline;
            if !keep {
                late.push((e.id, e.after));
            }
            keep
        });
        for (id, after) in late {
            let result = Err(Failure::Timeout { waited: Waited::Completion, after, attempts: 1 });
            self.out.push_back(Output::Done { id, address, result });
        }

        let cam = &mut self.cams[i];
        match std::mem::replace(&mut cam.slot, Slot::Idle) {
            Slot::Sent { p, deadline, .. } if now >= deadline && p.withdrawn => {
                // Nobody waits for it, so no resend; one missed reply is not
                // enough to call the camera offline, so ask its health now.
                debug!(%address, "withdrawn request got no reply, dropped");
                cam.next_probe = now;
            }
            Slot::Sent { p, deadline, waited, after } if now >= deadline => {
                let retries = if cam.online && waited != Waited::Completion { self.opts.retries } else { 0 };
                if p.attempts <= retries {
                    let backoff = self.opts.retry_backoff * 2u32.saturating_pow(p.attempts - 1);
                    debug!(%address, attempt = p.attempts, "no {waited}, resending in {} ms", backoff.as_millis());
                    cam.slot = Slot::Backoff { p, at: now + backoff };
                    return;
                }
                let reason = LinkDown::Silent { waited, after };
                let result = if cam.online {
                    Err(Failure::Timeout { waited, after, attempts: p.attempts })
                } else {
                    Err(Failure::Offline(reason.clone()))
                };
                // After a failed probe, wait a full interval before the next one.
                cam.next_probe = now + self.opts.probe_interval;
                self.finish(i, p, result);
                self.set_health(i, false, Some(reason));
            }
            other => cam.slot = other,
        }
    }

    /// Sends what can be sent now.
    fn pump(&mut self, now: Instant) {
        if !matches!(self.port, PortState::Ready) {
            return;
        }
        for i in 0..self.cams.len() {
            let cam = &mut self.cams[i];
            let p = match std::mem::replace(&mut cam.slot, Slot::Idle) {
                Slot::Idle if cam.can_send_head() => cam.queue.pop_front().expect("head exists"),
                Slot::Idle if now >= cam.next_probe => {
                    // Keep the probe cheap: power inquiry, answered by every model.
                    let id = RequestId(self.next_id);
                    self.next_id += 1;
                    Pending::new(id, Request::Inquiry(Inquiry::Power), true)
                }
                Slot::Backoff { p, at } if now >= at => p,
                other => {
                    cam.slot = other;
                    continue;
                }
            };
            self.send(now, i, p);
        }
    }

    fn send(&mut self, now: Instant, i: usize, mut p: Pending) {
        let cam = &mut self.cams[i];
        let to = cam.address;
        p.attempts += 1;
        let (packet, waited, after) = match p.request {
            Request::Inquiry(q) => (Packet::inquiry(to, q), Waited::Answer, cam.cfg.timing.ack),
            Request::ViscaCommand(c) if cam.cfg.completion_without_ack => {
                // This model may never ACK: wait for the completion instead of retrying early.
                (Packet::command(to, c), Waited::Completion, cam.cfg.timing.ack + cam.completion_timeout(c.kind()))
            }
            Request::ViscaCommand(c) => (Packet::command(to, c), Waited::Ack, cam.cfg.timing.ack),
        };
        cam.slot = Slot::Sent { p, deadline: now + after, waited, after };
        self.transmit(packet);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visca::{Direction, MemoryOp, PowerState, Raw};

    const ACK: Duration = Duration::from_millis(200);

    fn addr(n: u8) -> Address {
        Address::new(n).unwrap()
    }

    fn cfg(quirk: bool) -> CameraLinkConfig {
        CameraLinkConfig { timing: CameraTiming::default(), completion_without_ack: quirk }
    }

    /// A link with cameras 1 and 2, opened and addressed, probes answered.
    struct Harness {
        link: Link,
        now: Instant,
    }

    impl Harness {
        fn new(quirk: bool) -> Harness {
            let now = Instant::now();
            let mut link = Link::new(now, [(addr(1), cfg(quirk)), (addr(2), cfg(false))], LinkOptions::default());
            link.opened(now);
            let mut h = Harness { link, now };
            assert_eq!(h.sent(), vec![vec![0x88, 0x30, 0x01, 0xFF], vec![0x88, 0x01, 0x00, 0x01, 0xFF]]);
            h.rx(Reply::AddressSet { next: 3 });
            // Both cameras get an immediate power probe; answer it so they are online.
            assert_eq!(h.sent(), vec![vec![0x81, 0x09, 0x04, 0x00, 0xFF], vec![0x82, 0x09, 0x04, 0x00, 0xFF]]);
            h.rx(power_on(1));
            h.rx(power_on(2));
            h.drain();
            h
        }
        fn rx(&mut self, r: Reply) {
            self.link.receive(self.now, r);
        }
        fn advance(&mut self, d: Duration) {
            self.now += d;
            self.link.handle_timeout(self.now);
        }
        /// Advances to the next deadline, which must exist.
        fn run_to_deadline(&mut self) {
            let t = self.link.next_deadline().expect("a deadline");
            assert!(t >= self.now);
            self.now = t;
            self.link.handle_timeout(t);
        }
        fn drain(&mut self) -> Vec<Output> {
            std::iter::from_fn(|| self.link.poll_output()).collect()
        }
        /// Whether a command goes to camera `a` again within `limit` (100 ms steps).
        fn resends_within(&mut self, a: u8, limit: Duration) -> bool {
            let mut resent = false;
            for _ in 0..limit.as_millis() / 100 {
                self.advance(Duration::from_millis(100));
                resent |= !commands_to(&self.sent(), a).is_empty();
            }
            resent
        }
        fn sent(&mut self) -> Vec<Vec<u8>> {
            transmitted(&self.drain())
        }
        fn submit(&mut self, a: u8, c: ViscaCommand) -> RequestId {
            self.link.submit(self.now, addr(a), Request::ViscaCommand(c))
        }
    }

    fn power_on(a: u8) -> Reply {
        Reply::Answer { address: a, payload: Raw::new(&[0x02]).unwrap() }
    }

    /// The bytes written, in order, among `outs`.
    fn transmitted(outs: &[Output]) -> Vec<Vec<u8>> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Transmit(b) => Some(b.to_vec()),
                _ => None,
            })
            .collect()
    }

    fn done(outs: &[Output]) -> Vec<(RequestId, Result<LinkOutcome, Failure>)> {
        outs.iter()
            .filter_map(|o| match o {
                Output::Done { id, result, .. } => Some((*id, result.clone())),
                _ => None,
            })
            .collect()
    }

    const RECALL: ViscaCommand = ViscaCommand::Memory { op: MemoryOp::Recall, memory: 2 };

    #[test]
    fn ack_then_completion() {
        let mut h = Harness::new(false);
        let id = h.submit(1, RECALL);
        assert_eq!(h.sent(), vec![vec![0x81, 0x01, 0x04, 0x3F, 0x02, 0x02, 0xFF]]);
        h.rx(Reply::Ack { address: 1, socket: 1 });
        assert!(done(&h.drain()).is_empty());
        h.rx(Reply::Completion { address: 1, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(id, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn one_awaiting_ack_per_camera_and_two_sockets() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        let b = h.submit(1, ViscaCommand::ZoomDirect(0x1000));
        let c = h.submit(1, ViscaCommand::Home);
        assert_eq!(h.sent().len(), 1, "second command waits for the first ACK");
        h.rx(Reply::Ack { address: 1, socket: 1 });
        assert_eq!(h.sent().len(), 1, "second command goes after the ACK");
        h.rx(Reply::Ack { address: 1, socket: 2 });
        assert!(h.sent().is_empty(), "third command waits for a free socket");
        // Inquiries use no socket: a probe still goes out when due.
        h.advance(Duration::from_millis(500));
        assert!(h.sent().contains(&vec![0x81, 0x09, 0x04, 0x00, 0xFF]));
        h.rx(power_on(1));
        h.rx(Reply::Completion { address: 1, socket: 2 });
        let outs = h.drain();
        assert_eq!(done(&outs), vec![(b, Ok(LinkOutcome::Completed))]);
        assert!(outs.contains(&Output::Transmit(Bytes::from_static(&[0x81, 0x01, 0x06, 0x04, 0xFF]))));
        h.rx(Reply::Ack { address: 1, socket: 2 });
        h.rx(Reply::Completion { address: 1, socket: 1 });
        h.rx(Reply::Completion { address: 1, socket: 2 });
        assert_eq!(done(&h.drain()), vec![(a, Ok(LinkOutcome::Completed)), (c, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn error_is_a_refusal_and_not_retried() {
        let mut h = Harness::new(false);
        let id = h.submit(1, RECALL);
        assert_eq!(h.sent().len(), 1);
        h.rx(Reply::Error { address: 1, socket: 1, code: ViscaErrorCode::NotExecutable });
        assert_eq!(done(&h.drain()), vec![(id, Err(Failure::Refused(ViscaErrorCode::NotExecutable)))]);
        h.advance(Duration::from_millis(400));
        assert!(h.sent().is_empty(), "no resend after a refusal");
    }

    #[test]
    fn ack_timeout_retries_with_backoff_then_fails_and_goes_offline() {
        let mut h = Harness::new(false);
        let id = h.submit(1, RECALL);
        let t0 = h.now;
        assert_eq!(h.sent().len(), 1);
        let mut sends = vec![];
        let mut result = None;
        while result.is_none() {
            h.run_to_deadline();
            for o in h.drain() {
                match o {
                    Output::Transmit(b) if b[0] == 0x81 => sends.push((h.now - t0, b.to_vec())),
                    Output::Done { id: d, result: r, .. } if d == id => result = Some(r),
                    _ => {}
                }
            }
        }
        let ms = |m| Duration::from_millis(m);
        assert_eq!(sends.iter().map(|s| s.0).collect::<Vec<_>>(), vec![ms(300), ms(700)]);
        assert!(sends.iter().all(|s| s.1 == [0x81, 0x01, 0x04, 0x3F, 0x02, 0x02, 0xFF]));
        assert_eq!(h.now - t0, ms(900));
        let r = result.unwrap();
        assert_eq!(r, Err(Failure::Timeout { waited: Waited::Ack, after: ACK, attempts: 3 }));
        assert_eq!(r.unwrap_err().to_string(), "no ACK within 200 ms (3 attempts)");
        // Offline now: the next command gets one try and fails as "offline".
        let id2 = h.submit(1, RECALL);
        h.advance(ACK);
        let outs = h.drain();
        assert_eq!(done(&outs), vec![(id2, Err(Failure::Offline(LinkDown::Silent { waited: Waited::Ack, after: ACK })))]);
        assert_eq!(done(&outs)[0].1.clone().unwrap_err().to_string(), "camera offline: no ACK within 200 ms");
    }

    #[test]
    fn late_ack_during_backoff_is_taken_and_not_resent() {
        let mut h = Harness::new(false);
        let id = h.submit(1, RECALL);
        h.sent();
        h.advance(ACK); // timeout: backoff until +100 ms
        h.advance(Duration::from_millis(50));
        h.rx(Reply::Ack { address: 1, socket: 1 });
        h.advance(Duration::from_millis(100));
        assert!(h.sent().iter().all(|b| b[0] != 0x81 || b[1] == 0x09), "no resend after a late ACK");
        h.rx(Reply::Completion { address: 1, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(id, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn silent_camera_does_not_block_the_other() {
        let mut h = Harness::new(false);
        h.submit(1, RECALL);
        let b = h.submit(2, ViscaCommand::Home);
        assert_eq!(h.sent().len(), 2, "both cameras get their command at once");
        h.advance(Duration::from_millis(50));
        h.rx(Reply::Ack { address: 2, socket: 1 });
        h.rx(Reply::Completion { address: 2, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(b, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn silence_is_detected_within_two_seconds_and_recovery_is_seen() {
        let mut h = Harness::new(false);
        let t0 = h.now;
        let mut offline_at = None;
        while offline_at.is_none() {
            h.run_to_deadline();
            // camera 2 keeps answering its probes
            let outs = h.drain();
            for o in &outs {
                match o {
                    Output::Transmit(b) if b[0] == 0x82 => h.rx(power_on(2)),
                    Output::Health { address, online: false, .. } if address.get() == 1 => offline_at = Some(h.now),
                    Output::Health { address, .. } if address.get() == 2 => panic!("camera 2 is fine"),
                    _ => {}
                }
            }
            assert!(h.now - t0 < Duration::from_secs(3));
        }
        assert!(offline_at.unwrap() - t0 <= Duration::from_secs(2), "offline after {:?}", offline_at.unwrap() - t0);
        // It answers again: online.
        h.advance(Duration::from_millis(500));
        assert!(h.sent().contains(&vec![0x81, 0x09, 0x04, 0x00, 0xFF]));
        h.rx(power_on(1));
        assert!(h.drain().contains(&Output::Health { address: addr(1), online: true, reason: None }));
    }

    #[test]
    fn completion_without_ack_is_accepted() {
        let mut h = Harness::new(true);
        let id = h.submit(1, RECALL);
        h.sent();
        // Longer than the ACK timeout, but the quirk says completion may come alone.
        // (In 100 ms steps: one jump would hide a resend still in its backoff.)
        assert!(!h.resends_within(1, Duration::from_millis(900)), "no resend to camera 1");
        h.rx(power_on(2)); // camera 2's health probe went out meanwhile
        h.rx(Reply::Completion { address: 1, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(id, Ok(LinkOutcome::Completed))]);

        // Tolerated without the quirk too.
        let id = h.submit(2, ViscaCommand::Home);
        h.sent();
        h.rx(Reply::Completion { address: 2, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(id, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn completion_timeout_is_a_link_failure_without_resend() {
        let mut h = Harness::new(false);
        let id = h.submit(1, ViscaCommand::Zoom(crate::visca::ZoomDrive::Stop));
        h.sent();
        h.rx(Reply::Ack { address: 1, socket: 1 });
        let mut result = None;
        while result.is_none() {
            h.run_to_deadline();
            for o in h.drain() {
                match o {
                    Output::Transmit(b) if b[1] == 0x09 => h.rx(power_on(b[0] - 0x80)),
                    Output::Transmit(b) => panic!("unexpected send {b:?}"),
                    Output::Done { id: d, result: r, .. } if d == id => result = Some(r),
                    _ => {}
                }
            }
        }
        let f = result.unwrap().unwrap_err();
        assert!(f.is_link());
        assert_eq!(f.to_string(), "no completion within 1000 ms");
    }

    #[test]
    fn inquiry_answer_is_interpreted() {
        let mut h = Harness::new(false);
        let id = h.link.submit(h.now, addr(2), Request::Inquiry(Inquiry::PanTiltPosition));
        assert_eq!(h.sent(), vec![vec![0x82, 0x09, 0x06, 0x12, 0xFF]]);
        h.rx(Reply::Answer { address: 2, payload: Raw::new(&[0, 0, 1, 0, 0x0F, 0x0F, 0x0F, 0x0F]).unwrap() });
        assert_eq!(done(&h.drain()), vec![(id, Ok(LinkOutcome::Answer(Answer::PanTiltPosition { pan: 16, tilt: -1 })))]);
        let id = h.link.submit(h.now, addr(2), Request::Inquiry(Inquiry::Power));
        h.sent();
        h.rx(Reply::Answer { address: 2, payload: Raw::new(&[0x03]).unwrap() });
        assert_eq!(done(&h.drain()), vec![(id, Ok(LinkOutcome::Answer(Answer::Power(PowerState::Standby))))]);
    }

    #[test]
    fn cancel_queued_and_executing() {
        let mut h = Harness::new(false);
        let a = h.submit(1, ViscaCommand::PanTiltDrive { direction: Direction::Left, pan_speed: 5, tilt_speed: 5 });
        let b = h.submit(1, RECALL);
        h.sent();
        h.link.cancel(h.now, b);
        assert_eq!(done(&h.drain()), vec![(b, Err(Failure::Cancelled))]);
        h.rx(Reply::Ack { address: 1, socket: 1 });
        h.link.cancel(h.now, a);
        assert_eq!(h.sent(), vec![vec![0x81, 0x21, 0xFF]]);
        h.rx(Reply::Error { address: 1, socket: 1, code: ViscaErrorCode::Cancelled });
        assert_eq!(done(&h.drain()), vec![(a, Err(Failure::Cancelled))]);
    }

    #[test]
    fn cancel_before_ack_is_sent_once_the_socket_is_known() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        h.sent();
        h.link.cancel(h.now, a);
        assert!(h.sent().is_empty());
        h.rx(Reply::Ack { address: 1, socket: 2 });
        assert_eq!(h.sent(), vec![vec![0x81, 0x22, 0xFF]]);
        // The command finished first: camera says "no socket", completion already delivered.
        h.rx(Reply::Completion { address: 1, socket: 2 });
        h.rx(Reply::Error { address: 1, socket: 2, code: ViscaErrorCode::NoSocket });
        assert_eq!(done(&h.drain()), vec![(a, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn port_closed_fails_everything_and_marks_offline() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        let b = h.submit(2, ViscaCommand::Home);
        h.sent();
        let unplugged = LinkDown::Unplugged { port: "/dev/ttyUSB0".into() };
        h.link.closed(h.now, unplugged.clone());
        let outs = h.drain();
        let d = done(&outs);
        assert_eq!(d.len(), 2);
        assert!(d.contains(&(a, Err(Failure::PortClosed(unplugged.clone())))));
        assert!(d.contains(&(b, Err(Failure::PortClosed(unplugged.clone())))));
        assert_eq!(outs.iter().filter(|o| matches!(o, Output::Health { online: false, .. })).count(), 2);
        assert_eq!(h.link.next_deadline(), None);
        // While closed, requests fail fast.
        let c = h.submit(1, RECALL);
        assert_eq!(done(&h.drain()), vec![(c, Err(Failure::Offline(unplugged)))]);
    }

    /// Commands (not probes) sent to camera `a` in these bytes.
    fn commands_to(sent: &[Vec<u8>], a: u8) -> Vec<Vec<u8>> {
        sent.iter().filter(|b| b[0] == 0x80 + a && b[1] == 0x01).cloned().collect()
    }

    #[test]
    fn full_queue_refuses_at_once_and_frees_as_requests_finish() {
        let mut h = Harness::new(false);
        let cap = LinkOptions::default().queue_capacity;
        let first = h.submit(1, RECALL);
        assert_eq!(h.sent().len(), 1, "on the wire, awaiting its ACK");
        let queued: Vec<_> = (0..cap).map(|_| h.submit(1, ViscaCommand::Home)).collect();
        assert!(done(&h.drain()).is_empty());
        assert_eq!(h.link.queued(addr(1)), cap);
        let refused = h.submit(1, ViscaCommand::Home);
        let d = done(&h.drain());
        assert_eq!(d, vec![(refused, Err(Failure::Busy { queued: cap }))]);
        assert_eq!(d[0].1.clone().unwrap_err().to_string(), format!("camera busy: {cap} requests queued"));
        assert_eq!(h.link.queued(addr(1)), cap, "the refused request took no place");
        // Another camera's queue is its own.
        h.submit(2, ViscaCommand::Home);
        assert_eq!(h.sent().len(), 1);
        // As the head moves on, a place frees up.
        h.rx(Reply::Ack { address: 1, socket: 1 });
        h.rx(Reply::Completion { address: 1, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(first, Ok(LinkOutcome::Completed))]);
        assert_eq!(h.link.queued(addr(1)), cap - 1);
        let accepted = h.submit(1, ViscaCommand::Home);
        assert!(done(&h.drain()).is_empty(), "{accepted:?} queued, not refused");
        assert!(!queued.contains(&accepted));
    }

    #[test]
    fn withdrawn_queued_request_is_never_sent() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        let b = h.submit(1, ViscaCommand::Home);
        let c = h.submit(1, ViscaCommand::ZoomDirect(0x1000));
        assert_eq!(commands_to(&h.sent(), 1).len(), 1, "only the head is on the wire");
        h.link.withdraw(h.now, [b]);
        assert!(h.drain().is_empty(), "silently dropped: no output at all");
        assert_eq!(h.link.queued(addr(1)), 1);
        h.rx(Reply::Ack { address: 1, socket: 1 });
        // The next one sent is c: b's place in the order is simply gone.
        assert_eq!(commands_to(&h.sent(), 1), vec![vec![0x81, 0x01, 0x04, 0x47, 0x01, 0x00, 0x00, 0x00, 0xFF]]);
        h.rx(Reply::Ack { address: 1, socket: 2 });
        h.rx(Reply::Completion { address: 1, socket: 1 });
        h.rx(Reply::Completion { address: 1, socket: 2 });
        assert_eq!(done(&h.drain()), vec![(a, Ok(LinkOutcome::Completed)), (c, Ok(LinkOutcome::Completed))]);
        // Run well past every deadline: b never shows up.
        for _ in 0..10 {
            h.advance(Duration::from_millis(500));
            assert!(commands_to(&h.sent(), 1).is_empty());
            h.rx(power_on(1));
            h.rx(power_on(2));
        }
    }

    #[test]
    fn withdrawn_request_waiting_for_a_socket_is_never_sent() {
        let mut h = Harness::new(false);
        h.submit(1, RECALL);
        h.submit(1, ViscaCommand::ZoomDirect(0x1000));
        let third = h.submit(1, ViscaCommand::Home);
        h.sent();
        h.rx(Reply::Ack { address: 1, socket: 1 });
        assert_eq!(commands_to(&h.sent(), 1).len(), 1, "the zoom goes after the first ACK");
        h.rx(Reply::Ack { address: 1, socket: 2 });
        assert!(commands_to(&h.sent(), 1).is_empty(), "both sockets busy");
        h.link.withdraw(h.now, [third]);
        h.rx(Reply::Completion { address: 1, socket: 1 });
        assert!(commands_to(&h.sent(), 1).is_empty(), "the freed socket is not used for a withdrawn request");
        assert!(done(&h.drain()).iter().all(|(id, _)| *id != third));
    }

    #[test]
    fn withdrawn_request_on_the_wire_finishes_and_its_result_goes_nowhere() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        let b = h.submit(1, ViscaCommand::Home);
        h.sent();
        h.link.withdraw(h.now, [a]);
        assert!(h.drain().is_empty());
        h.rx(Reply::Ack { address: 1, socket: 1 });
        assert_eq!(commands_to(&h.sent(), 1), vec![vec![0x81, 0x01, 0x06, 0x04, 0xFF]], "the queue moves on");
        h.rx(Reply::Ack { address: 1, socket: 2 });
        h.rx(Reply::Completion { address: 1, socket: 1 });
        h.rx(Reply::Completion { address: 1, socket: 2 });
        assert_eq!(done(&h.drain()), vec![(a, Ok(LinkOutcome::Completed)), (b, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn withdrawn_request_without_reply_is_not_resent_and_does_not_mark_offline() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        assert_eq!(commands_to(&h.sent(), 1).len(), 1);
        h.link.withdraw(h.now, [a]);
        h.advance(ACK);
        let outs = h.drain();
        assert!(done(&outs).is_empty(), "no result for a request nobody waits for");
        assert!(!outs.iter().any(|o| matches!(o, Output::Health { .. })), "one missed ACK is not offline");
        let sent = transmitted(&outs);
        assert!(commands_to(&sent, 1).is_empty(), "not resent: {sent:02x?}");
        assert!(sent.contains(&vec![0x81, 0x09, 0x04, 0x00, 0xFF]), "health asked at once instead");
        h.rx(power_on(1));
        assert!(h.drain().is_empty(), "still online, nothing else to do");
        // The link is not wedged: the next request goes at once.
        let b = h.submit(1, ViscaCommand::Home);
        assert_eq!(commands_to(&h.sent(), 1), vec![vec![0x81, 0x01, 0x06, 0x04, 0xFF]]);
        h.rx(Reply::Ack { address: 1, socket: 1 });
        h.rx(Reply::Completion { address: 1, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(b, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn withdrawn_request_without_reply_lets_the_next_one_go() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        let b = h.submit(1, ViscaCommand::Home);
        assert_eq!(commands_to(&h.sent(), 1).len(), 1);
        h.link.withdraw(h.now, [a]);
        h.advance(ACK);
        // Not a resend of a: b, which was next in line.
        assert_eq!(commands_to(&h.sent(), 1), vec![vec![0x81, 0x01, 0x06, 0x04, 0xFF]]);
        h.rx(Reply::Ack { address: 1, socket: 1 });
        h.rx(Reply::Completion { address: 1, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(b, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn withdrawing_several_at_once_never_sends_any_of_them() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        h.sent();
        h.advance(ACK); // a awaits its resend
        let b = h.submit(1, ViscaCommand::Home);
        let c = h.submit(1, ViscaCommand::ZoomDirect(0x1000));
        let d = h.submit(1, ViscaCommand::FocusAuto);
        // Freeing a's slot must not send b before b is withdrawn too.
        h.link.withdraw(h.now, [a, b, c]);
        assert_eq!(commands_to(&h.sent(), 1), vec![vec![0x81, 0x01, 0x04, 0x38, 0x02, 0xFF]], "only d goes");
        h.rx(Reply::Ack { address: 1, socket: 1 });
        h.rx(Reply::Completion { address: 1, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(d, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn withdrawn_request_in_backoff_is_dropped() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        h.sent();
        h.advance(ACK); // no ACK: resend after the backoff
        h.link.withdraw(h.now, [a]);
        for _ in 0..4 {
            h.advance(Duration::from_millis(100));
            assert!(commands_to(&h.sent(), 1).is_empty(), "no resend after withdrawal");
        }
        assert!(done(&h.drain()).is_empty());
    }

    /// Withdrawing one camera's request leaves another camera's alone,
    /// whether that one is waiting to be resent or on the wire.
    #[test]
    fn withdrawing_on_one_camera_leaves_the_others_requests() {
        let mut h = Harness::new(false);
        h.submit(1, RECALL);
        h.sent();
        h.advance(ACK); // camera 1: no ACK, its request waits for its resend
        let b = h.submit(2, RECALL);
        assert_eq!(commands_to(&h.sent(), 2).len(), 1, "b on the wire");
        h.link.withdraw(h.now, [b]);
        assert!(h.resends_within(1, Duration::from_secs(1)), "camera 1's request is still resent");

        // Camera 1's request on the wire when camera 2's is withdrawn: a
        // missing ACK still gets it resent (a withdrawn one would not be).
        let mut h = Harness::new(false);
        h.submit(1, RECALL);
        let c = h.submit(2, RECALL);
        h.sent();
        h.link.withdraw(h.now, [c]);
        assert!(h.resends_within(1, Duration::from_secs(1)), "camera 1's request on the wire is still resent");
    }

    #[test]
    fn camera_missing_from_chain_is_offline() {
        let now = Instant::now();
        let mut link = Link::new(now, [(addr(1), cfg(false)), (addr(3), cfg(false))], LinkOptions::default());
        link.opened(now);
        link.receive(now, Reply::AddressSet { next: 2 });
        let outs: Vec<_> = std::iter::from_fn(|| link.poll_output()).collect();
        assert!(outs.contains(&Output::Health { address: addr(3), online: false, reason: Some(LinkDown::NotOnChain { found: 1 }) }));
    }

    #[test]
    fn open_means_addressing_or_ready() {
        let now = Instant::now();
        let mut link = Link::new(now, [(addr(1), cfg(false))], LinkOptions::default());
        assert!(!link.is_open(), "not open before the port is");
        link.opened(now);
        assert!(link.is_open(), "addressing counts as open");
        link.receive(now, Reply::AddressSet { next: 2 });
        assert!(link.is_open());
        link.closed(now, LinkDown::NotOpened);
        assert!(!link.is_open());
    }

    #[test]
    fn cancelling_one_request_leaves_the_others() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL); // on the wire
        let b = h.submit(1, ViscaCommand::Home); // queued
        let c = h.submit(1, ViscaCommand::ZoomDirect(0x1000)); // queued
        h.sent();
        h.link.cancel(h.now, b);
        assert_eq!(done(&h.drain()), vec![(b, Err(Failure::Cancelled))], "only b");
        // a was not marked: its ACK sends no Cancel, and c goes on the wire.
        h.rx(Reply::Ack { address: 1, socket: 1 });
        assert_eq!(h.sent(), vec![vec![0x81, 0x01, 0x04, 0x47, 0x01, 0x00, 0x00, 0x00, 0xFF]]);
        // Cancelling c (awaiting its ACK) sends nothing for a, executing.
        h.link.cancel(h.now, c);
        assert!(h.sent().is_empty(), "no Cancel for a's socket");
        h.rx(Reply::Completion { address: 1, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(a, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn cancel_camera_stops_everything_on_that_camera_only() {
        let mut h = Harness::new(false);
        let running = h.submit(1, RECALL);
        h.sent();
        h.rx(Reply::Ack { address: 1, socket: 1 });
        let on_wire = h.submit(1, ViscaCommand::Home);
        let queued = h.submit(1, ViscaCommand::ZoomDirect(0x1000));
        let other = h.submit(2, RECALL);
        h.sent();
        h.link.cancel_camera(h.now, addr(1));
        let outs = h.drain();
        assert_eq!(done(&outs), vec![(queued, Err(Failure::Cancelled))]);
        assert_eq!(transmitted(&outs), vec![vec![0x81, 0x21, 0xFF]], "Cancel for the running command's socket");
        // The one awaiting its ACK is cancelled once its socket is known.
        h.rx(Reply::Ack { address: 1, socket: 2 });
        assert_eq!(h.sent(), vec![vec![0x81, 0x22, 0xFF]]);
        h.rx(Reply::Error { address: 1, socket: 1, code: ViscaErrorCode::Cancelled });
        h.rx(Reply::Error { address: 1, socket: 2, code: ViscaErrorCode::Cancelled });
        assert_eq!(done(&h.drain()), vec![(running, Err(Failure::Cancelled)), (on_wire, Err(Failure::Cancelled))]);
        // Camera 2's request runs its course.
        h.rx(Reply::Ack { address: 2, socket: 1 });
        h.rx(Reply::Completion { address: 2, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(other, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn an_answer_while_a_command_awaits_its_ack_is_ignored() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        h.sent();
        h.rx(power_on(1)); // stray: no inquiry outstanding
        assert!(done(&h.drain()).is_empty());
        h.rx(Reply::Ack { address: 1, socket: 1 });
        h.rx(Reply::Completion { address: 1, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(a, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn unanswered_address_set_waits_its_time_then_probes_and_keeps_who_spoke() {
        let now = Instant::now();
        let opts = LinkOptions::default();
        let mut link = Link::new(now, [(addr(1), cfg(false)), (addr(2), cfg(false))], opts);
        link.opened(now);
        let _ = std::iter::from_fn(|| link.poll_output()).count();
        // Camera 1 speaks (a stray completion) while the chain is being numbered.
        link.receive(now, Reply::Completion { address: 1, socket: 1 });
        let outs: Vec<_> = std::iter::from_fn(|| link.poll_output()).collect();
        assert_eq!(outs, vec![Output::Health { address: addr(1), online: true, reason: None }]);
        // Nothing is sent before the AddressSet timeout.
        let almost = now + opts.address_timeout - Duration::from_millis(1);
        link.handle_timeout(almost);
        assert_eq!(std::iter::from_fn(|| link.poll_output()).count(), 0, "still addressing");
        link.handle_timeout(now + opts.address_timeout);
        let outs: Vec<_> = std::iter::from_fn(|| link.poll_output()).collect();
        let health: Vec<_> = outs.iter().filter(|o| matches!(o, Output::Health { .. })).collect();
        let why = LinkDown::NotAddressed { after: opts.address_timeout };
        assert_eq!(health, vec![&Output::Health { address: addr(2), online: false, reason: Some(why) }], "camera 1 stays online");
        assert!(outs.iter().any(|o| matches!(o, Output::Transmit(b) if b[..] == [0x82, 0x09, 0x04, 0x00, 0xFF])), "probes start");
    }

    #[test]
    fn cancel_reaches_a_request_waiting_for_its_resend_and_only_that_one() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        let b = h.submit(2, RECALL);
        h.sent();
        h.advance(ACK); // no ACK from either: both wait for their resend
        assert!(done(&h.drain()).is_empty());
        h.link.cancel(h.now, a);
        assert_eq!(done(&h.drain()), vec![(a, Err(Failure::Cancelled))], "a cancelled, b not");
        // b is still resent and runs; a never goes on the wire again.
        let mut resent = Vec::new();
        for _ in 0..2 {
            // the backoff is 100 ms; the resent ACK wait is 200 ms
            h.advance(Duration::from_millis(100));
            resent.extend(h.sent());
        }
        assert!(commands_to(&resent, 1).is_empty(), "a resent after its cancel: {resent:?}");
        assert!(!commands_to(&resent, 2).is_empty(), "b resent: {resent:?}");
        h.rx(Reply::Ack { address: 2, socket: 1 });
        h.rx(Reply::Completion { address: 2, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(b, Ok(LinkOutcome::Completed))]);
        // cancel_camera also reaches one in backoff.
        let c = h.submit(2, RECALL);
        h.sent();
        h.advance(ACK);
        h.link.cancel_camera(h.now, addr(2));
        assert_eq!(done(&h.drain()), vec![(c, Err(Failure::Cancelled))]);
    }

    #[test]
    fn no_socket_after_a_cancel_that_raced_the_completion_touches_nothing_else() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        h.sent();
        h.rx(Reply::Ack { address: 1, socket: 1 });
        let b = h.submit(1, ViscaCommand::Home);
        assert_eq!(commands_to(&h.sent(), 1).len(), 1, "b on the wire, awaiting its ACK");
        h.link.cancel(h.now, a);
        assert_eq!(h.sent(), vec![vec![0x81, 0x21, 0xFF]]);
        // a finished before the Cancel arrived: completion, then "no socket".
        h.rx(Reply::Completion { address: 1, socket: 1 });
        h.rx(Reply::Error { address: 1, socket: 1, code: ViscaErrorCode::NoSocket });
        assert_eq!(done(&h.drain()), vec![(a, Ok(LinkOutcome::Completed))], "b is not refused by a's late reply");
        h.rx(Reply::Ack { address: 1, socket: 2 });
        h.rx(Reply::Completion { address: 1, socket: 2 });
        assert_eq!(done(&h.drain()), vec![(b, Ok(LinkOutcome::Completed))]);
    }

    #[test]
    fn stray_ack_or_completion_while_an_inquiry_waits_is_ignored() {
        let mut h = Harness::new(false);
        let id = h.link.submit(h.now, addr(1), Request::Inquiry(Inquiry::Power));
        h.sent();
        h.rx(Reply::Ack { address: 1, socket: 1 });
        h.rx(Reply::Completion { address: 1, socket: 2 });
        assert!(done(&h.drain()).is_empty(), "the inquiry still waits for its answer");
        h.rx(power_on(1));
        assert_eq!(done(&h.drain()), vec![(id, Ok(LinkOutcome::Answer(Answer::Power(PowerState::On))))]);
    }

    #[test]
    fn a_running_command_before_its_deadline_is_left_alone() {
        let mut h = Harness::new(false);
        let id = h.submit(1, RECALL);
        h.sent();
        h.rx(Reply::Ack { address: 1, socket: 1 });
        h.advance(Duration::from_millis(100));
        assert!(done(&h.drain()).is_empty(), "not timed out before its deadline");
        h.rx(Reply::Completion { address: 1, socket: 1 });
        assert_eq!(done(&h.drain()), vec![(id, Ok(LinkOutcome::Completed))]);
        h.advance(Duration::from_secs(60));
        assert!(done(&h.drain()).is_empty(), "reported once");
    }

    #[test]
    fn a_cancel_before_the_ack_that_raced_the_completion_leaves_the_next_command_alone() {
        let mut h = Harness::new(false);
        let a = h.submit(1, RECALL);
        h.sent();
        h.link.cancel(h.now, a);
        h.rx(Reply::Ack { address: 1, socket: 1 });
        assert_eq!(h.sent(), vec![vec![0x81, 0x21, 0xFF]]);
        let b = h.submit(1, ViscaCommand::Home);
        assert_eq!(commands_to(&h.sent(), 1).len(), 1, "b on the wire");
        h.rx(Reply::Completion { address: 1, socket: 1 });
        h.rx(Reply::Error { address: 1, socket: 1, code: ViscaErrorCode::NoSocket });
        assert_eq!(done(&h.drain()), vec![(a, Ok(LinkOutcome::Completed))]);
        // Only one cancel was outstanding: a later "no socket" is b's own refusal.
        h.rx(Reply::Error { address: 1, socket: 1, code: ViscaErrorCode::NoSocket });
        assert_eq!(done(&h.drain()), vec![(b, Err(Failure::Refused(ViscaErrorCode::NoSocket)))]);
    }

    #[test]
    fn a_request_id_is_never_shared_with_a_health_probe() {
        let mut h = Harness::new(false);
        // Both cameras' next probes go out; camera 2 answers, camera 1 not yet.
        h.advance(LinkOptions::default().probe_interval);
        assert_eq!(h.sent().len(), 2, "two probes");
        h.rx(power_on(2));
        let id = h.submit(2, RECALL);
        assert_eq!(commands_to(&h.sent(), 2).len(), 1);
        // Withdrawing the request must not withdraw camera 1's probe instead.
        h.link.withdraw(h.now, [id]);
        assert!(!h.resends_within(2, Duration::from_secs(1)), "the withdrawn request was resent");
    }
}
