//! One simulated camera: motion model, sockets and command execution.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::proto::{self, err, Cmd, Dir};
use super::{CameraState, ChainOptions, Fault, Preset};

/// Pan/tilt speed: VISCA units per second per speed step (EVI-D70-like:
/// speed 0x18 ≈ 1440 units/s ≈ 100°/s).
pub const PAN_TILT_UNITS_PER_STEP: f64 = 60.0;
/// Zoom/focus speed: units per second per (p + 1), p = 0–7 (p = 7 sweeps
/// the full 0x4000 zoom range in 1 s).
pub const ZOOM_UNITS_PER_STEP: f64 = 2048.0;
pub const MAX_PAN_SPEED: u8 = 0x18;
pub const MAX_TILT_SPEED: u8 = 0x14;
pub const ZOOM_MAX: f64 = 0x4000 as f64;
pub const FOCUS_MIN: f64 = 0x1000 as f64;
pub const FOCUS_MAX: f64 = 0xC000 as f64;
/// Direct zoom/focus and preset recall run at the top variable speed.
const DIRECT_SPEED: u8 = 7;

// Motion channels a socket job may own; a new job on an owned channel
// cancels the old one.
const CH_PT: u8 = 1;
const CH_ZOOM: u8 = 2;
const CH_FOCUS: u8 = 4;

/// Linear motion of one axis from `from` (at `t0`) to `to` (at `t1`).
#[derive(Debug, Clone, Copy)]
struct Axis {
    from: f64,
    to: f64,
    t0: Instant,
    t1: Instant,
}

impl Axis {
    fn still(v: f64, now: Instant) -> Self {
        Axis { from: v, to: v, t0: now, t1: now }
    }
    fn at(&self, now: Instant) -> f64 {
        if now >= self.t1 {
            return self.to;
        }
        let span = (self.t1 - self.t0).as_secs_f64();
        let done = (now.saturating_duration_since(self.t0)).as_secs_f64();
        self.from + (self.to - self.from) * (done / span)
    }
    fn moving(&self, now: Instant) -> bool {
        now < self.t1 && self.from != self.to
    }
    fn stop(&mut self, now: Instant) {
        *self = Axis::still(self.at(now), now);
    }
    /// Starts a move to `target` at `rate` units/s; returns its end time.
    fn go(&mut self, now: Instant, target: f64, rate: f64, opts: &ChainOptions) -> Instant {
        let cur = self.at(now);
        let secs = if opts.instant_moves || rate <= 0.0 {
            0.0
        } else {
            // Cap so that Instant arithmetic can never overflow.
            ((target - cur).abs() / rate * opts.move_time_scale).clamp(0.0, 86_400.0)
        };
        let end = now + Duration::from_secs_f64(secs);
        *self = Axis { from: cur, to: target, t0: now, t1: end };
        end
    }
}

#[derive(Debug, Clone)]
struct Job {
    socket: u8,
    channels: u8,
    /// When the ACK is due; `None` once sent (or skipped).
    ack_at: Option<Instant>,
    done_at: Instant,
    /// Broadcast commands execute without any reply.
    quiet: bool,
}

/// Replies waiting for the writer, plus the junk generator for `Garbage`.
#[derive(Debug)]
pub struct Outbox {
    pub packets: Vec<Vec<u8>>,
    rng: u64,
}

impl Outbox {
    pub fn new(seed: u64) -> Self {
        Outbox { packets: Vec::new(), rng: seed | 1 }
    }
    fn next(&mut self) -> u64 {
        // xorshift64: deterministic per seed, no extra crate needed.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        self.rng
    }
    /// Junk never has bit 7 set (so it cannot look like a header) except
    /// for a closing `FF` on bursts, which forces the reader to resync.
    fn junk(&mut self, n: usize, terminate: bool) -> Vec<u8> {
        let mut v: Vec<u8> = (0..n).map(|_| (self.next() & 0x7F) as u8).collect();
        if terminate {
            v.push(proto::TERM);
        }
        v
    }
    fn send(&mut self, packet: Vec<u8>, garbage: bool) {
        if garbage {
            let r = self.next();
            if r & 1 == 0 {
                let n = 1 + (r >> 8) as usize % 4;
                let j = self.junk(n, false);
                self.packets.push(j);
            }
            self.packets.push(packet);
            if (r >> 4) & 7 == 0 {
                let n = 8 + (r >> 16) as usize % 17;
                let j = self.junk(n, true);
                self.packets.push(j);
            }
        } else {
            self.packets.push(packet);
        }
    }
}

#[derive(Debug)]
pub struct Camera {
    pub index: usize,
    pub address: Option<u8>,
    pub fault: Fault,
    power: bool,
    pan: Axis,
    tilt: Axis,
    zoom: Axis,
    focus: Axis,
    focus_auto: bool,
    presets: BTreeMap<u8, Preset>,
    recalls: u64,
    pub log: Vec<Vec<u8>>,
    jobs: [Option<Job>; 2],
    /// Set while executing a broadcast: suppresses replies.
    quiet: bool,
    /// Socket (1–2) the last command took; the IP forms read it to number
    /// the ACK and completion that come later.
    pub taken: Option<u8>,
}

impl Camera {
    pub fn new(index: usize, now: Instant) -> Self {
        Camera {
            index,
            address: None,
            fault: Fault::None,
            power: true,
            pan: Axis::still(0.0, now),
            tilt: Axis::still(0.0, now),
            zoom: Axis::still(0.0, now),
            focus: Axis::still(FOCUS_MIN, now),
            focus_auto: true,
            presets: BTreeMap::new(),
            recalls: 0,
            log: Vec::new(),
            jobs: [None, None],
            quiet: false,
            taken: None,
        }
    }

    pub fn state(&self, now: Instant) -> CameraState {
        CameraState {
            index: self.index,
            address: self.address,
            fault: self.fault.clone(),
            power: self.power,
            pan: self.pan.at(now).round() as i32,
            tilt: self.tilt.at(now).round() as i32,
            zoom: self.zoom.at(now).round() as u16,
            focus: self.focus.at(now).round() as u16,
            focus_auto: self.focus_auto,
            moving: [&self.pan, &self.tilt, &self.zoom, &self.focus].iter().any(|a| a.moving(now)),
            busy_sockets: [self.jobs[0].is_some(), self.jobs[1].is_some()],
            presets: self.presets.clone(),
            presets_recalled: self.recalls,
            last_command: self.log.last().cloned(),
        }
    }

    /// Hold `preset` in memory `memory`, as if stored earlier (a camera's
    /// presets survive power cycles).
    pub fn remember(&mut self, memory: u8, preset: Preset) {
        self.presets.insert(memory, preset);
    }

    /// Forget the address and any in-flight work (replug); keep positions.
    pub fn reset_link(&mut self, now: Instant) {
        self.address = None;
        self.jobs = [None, None];
        self.stop_all(now);
    }

    fn stop_all(&mut self, now: Instant) {
        for a in [&mut self.pan, &mut self.tilt, &mut self.zoom, &mut self.focus] {
            a.stop(now);
        }
    }

    fn header(&self) -> Option<u8> {
        self.address.map(|a| 0x80 + (a << 4))
    }

    fn emit(&mut self, out: &mut Outbox, body: &[u8]) {
        if self.quiet || self.fault == Fault::Silent {
            return;
        }
        let Some(h) = self.header() else { return };
        let mut p = Vec::with_capacity(body.len() + 2);
        p.push(h);
        p.extend_from_slice(body);
        p.push(proto::TERM);
        out.send(p, self.fault == Fault::Garbage);
    }

    fn error(&mut self, out: &mut Outbox, socket: u8, code: u8) {
        self.emit(out, &[0x60 | socket, code]);
    }

    /// Emits network change `z0 38 FF` (device added/removed).
    pub fn network_change(&mut self, out: &mut Outbox) {
        self.emit(out, &[0x38]);
    }

    pub fn length_error(&mut self, out: &mut Outbox) {
        if matches!(self.fault, Fault::ErrorReply(_)) {
            return self.handle_fault_reply(out);
        }
        self.error(out, 0, err::LENGTH);
    }

    fn handle_fault_reply(&mut self, out: &mut Outbox) {
        if let Fault::ErrorReply(code) = self.fault {
            self.error(out, 0, code);
        }
    }

    /// IF_Clear: drop every pending job without reply and stop all motion.
    pub fn if_clear(&mut self, now: Instant) {
        self.jobs = [None, None];
        self.stop_all(now);
    }

    /// Earliest time something is due on this camera.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.jobs.iter().flatten().map(|j| j.ack_at.unwrap_or(j.done_at)).min()
    }

    /// Emits ACKs and completions that are due.
    pub fn poll(&mut self, now: Instant, out: &mut Outbox) {
        for i in 0..2 {
            let Some(job) = self.jobs[i].clone() else { continue };
            self.quiet = job.quiet;
            let mut job = job;
            if let Some(at) = job.ack_at {
                if at > now {
                    self.quiet = false;
                    continue;
                }
                self.emit(out, &[0x40 | job.socket]);
                job.ack_at = None;
            }
            if job.done_at <= now {
                self.emit(out, &[0x50 | job.socket]);
                self.jobs[i] = None;
            } else {
                self.jobs[i] = Some(job);
            }
            self.quiet = false;
        }
    }

    /// Handles one packet addressed to this camera (or broadcast to all, with
    /// `quiet`). `body` excludes header and terminator.
    pub fn handle(&mut self, now: Instant, packet: &[u8], quiet: bool, opts: &ChainOptions, out: &mut Outbox) {
        self.log.push(packet.to_vec());
        match self.fault {
            Fault::Silent => return,
            Fault::ErrorReply(_) if !quiet => return self.handle_fault_reply(out),
            _ => {}
        }
        self.quiet = quiet;
        let body = &packet[1..packet.len() - 1];
        match proto::parse(body, opts.pan_tilt_nibbles) {
            Some(cmd) => self.execute(now, cmd, opts, out),
            None => self.error(out, 0, err::SYNTAX),
        }
        self.quiet = false;
    }

    /// Takes a socket for a command owning `channels`: older jobs on those
    /// channels are cancelled (`z0 6y 04 FF`) first, so a retarget never
    /// hits buffer-full. Returns the socket, or emits buffer-full.
    fn acquire(&mut self, now: Instant, channels: u8, out: &mut Outbox) -> Option<usize> {
        let conflicting = |j: &Option<Job>| j.as_ref().is_some_and(|j| j.channels & channels != 0);
        let free = self.jobs.iter().any(|j| j.is_none());
        if !free && !self.jobs.iter().any(conflicting) {
            self.error(out, 0, err::BUFFER_FULL);
            return None;
        }
        for i in 0..2 {
            if conflicting(&self.jobs[i]) {
                self.jobs[i] = None;
                self.error(out, i as u8 + 1, err::CANCELLED);
            }
        }
        let i = self.jobs.iter().position(|j| j.is_none())?;
        let ack_at = match self.fault {
            Fault::CompletionWithoutAck => None,
            Fault::SlowAck(d) => Some(now + d.min(Duration::from_secs(86_400))),
            _ => Some(now),
        };
        self.jobs[i] = Some(Job { socket: i as u8 + 1, channels, ack_at, done_at: now, quiet: self.quiet });
        self.taken = Some(i as u8 + 1);
        Some(i)
    }

    fn finish_at(&mut self, slot: usize, at: Instant) {
        if let Some(j) = self.jobs[slot].as_mut() {
            j.done_at = at;
        }
    }

    fn execute(&mut self, now: Instant, cmd: Cmd, opts: &ChainOptions, out: &mut Outbox) {
        if cmd.is_inquiry() {
            return self.inquiry(now, cmd, opts, out);
        }
        match cmd {
            Cmd::IfClear => {
                self.if_clear(now);
                self.emit(out, &[0x50]);
                return;
            }
            Cmd::Cancel { socket } => {
                let i = socket as usize - 1;
                match self.jobs[i].take() {
                    Some(job) => {
                        self.stop_channels(now, job.channels);
                        self.error(out, socket, err::CANCELLED);
                    }
                    None => self.error(out, socket, err::NO_SOCKET),
                }
                return;
            }
            _ => {}
        }
        if !self.power && !matches!(cmd, Cmd::Power(_)) {
            return self.error(out, 0, err::NOT_EXECUTABLE);
        }
        let scale = |speed: u8| f64::from(speed.min(7) + 1) * ZOOM_UNITS_PER_STEP;
        let pt_rates = |vv: u8, ww: u8| {
            (
                f64::from(vv.clamp(1, MAX_PAN_SPEED)) * PAN_TILT_UNITS_PER_STEP,
                f64::from(ww.clamp(1, MAX_TILT_SPEED)) * PAN_TILT_UNITS_PER_STEP,
            )
        };
        let (pmin, pmax) = (f64::from(opts.pan_limits.0), f64::from(opts.pan_limits.1));
        let (tmin, tmax) = (f64::from(opts.tilt_limits.0), f64::from(opts.tilt_limits.1));
        match cmd {
            Cmd::Power(on) => {
                let Some(_) = self.acquire(now, 0, out) else { return };
                if !on {
                    // Powering down aborts whatever else was running.
                    self.stop_all(now);
                    for i in 0..2 {
                        if self.jobs[i].as_ref().is_some_and(|j| j.channels != 0) {
                            self.jobs[i] = None;
                            self.error(out, i as u8 + 1, err::CANCELLED);
                        }
                    }
                }
                self.power = on;
            }
            Cmd::ZoomDrive { dir, speed } => {
                let Some(_) = self.acquire(now, CH_ZOOM, out) else { return };
                drive(&mut self.zoom, now, dir, 0.0, ZOOM_MAX, scale(speed), opts);
            }
            Cmd::FocusDrive { dir, speed } => {
                let Some(_) = self.acquire(now, CH_FOCUS, out) else { return };
                drive(&mut self.focus, now, dir, FOCUS_MIN, FOCUS_MAX, scale(speed), opts);
            }
            Cmd::ZoomDirect(z) => {
                let Some(s) = self.acquire(now, CH_ZOOM, out) else { return };
                let end = self.zoom.go(now, f64::from(z).min(ZOOM_MAX), scale(DIRECT_SPEED), opts);
                self.finish_at(s, end);
            }
            Cmd::FocusDirect(f) => {
                let Some(s) = self.acquire(now, CH_FOCUS, out) else { return };
                let target = f64::from(f).clamp(FOCUS_MIN, FOCUS_MAX);
                let end = self.focus.go(now, target, scale(DIRECT_SPEED), opts);
                self.finish_at(s, end);
            }
            Cmd::FocusAuto(mode) => {
                let Some(_) = self.acquire(now, 0, out) else { return };
                self.focus_auto = mode.unwrap_or(!self.focus_auto);
            }
            Cmd::MemoryReset(m) => {
                let Some(_) = self.acquire(now, 0, out) else { return };
                self.presets.remove(&m);
            }
            Cmd::MemorySet(m) => {
                let Some(_) = self.acquire(now, 0, out) else { return };
                let p = Preset {
                    pan: self.pan.at(now).round() as i32,
                    tilt: self.tilt.at(now).round() as i32,
                    zoom: self.zoom.at(now).round() as u16,
                };
                self.presets.insert(m, p);
            }
            Cmd::MemoryRecall(m) => {
                let Some(s) = self.acquire(now, CH_PT | CH_ZOOM, out) else { return };
                // An unset memory recalls the home position, as Sony cameras do.
                let p = self.presets.get(&m).copied().unwrap_or_default();
                self.recalls += 1;
                let (pr, tr) = pt_rates(MAX_PAN_SPEED, MAX_TILT_SPEED);
                let end = [
                    self.pan.go(now, f64::from(p.pan).clamp(pmin, pmax), pr, opts),
                    self.tilt.go(now, f64::from(p.tilt).clamp(tmin, tmax), tr, opts),
                    self.zoom.go(now, f64::from(p.zoom).min(ZOOM_MAX), scale(DIRECT_SPEED), opts),
                ]
                .into_iter()
                .max()
                .unwrap_or(now);
                self.finish_at(s, end);
            }
            Cmd::PanTiltDrive { pan_speed, tilt_speed, pan, tilt } => {
                let Some(_) = self.acquire(now, CH_PT, out) else { return };
                let (pr, tr) = pt_rates(pan_speed, tilt_speed);
                drive(&mut self.pan, now, pan, pmin, pmax, pr, opts);
                drive(&mut self.tilt, now, tilt, tmin, tmax, tr, opts);
            }
            Cmd::PanTiltAbsolute { pan_speed, tilt_speed, pan, tilt } => {
                let (pr, tr) = pt_rates(pan_speed, tilt_speed);
                self.pan_tilt_to(now, f64::from(pan), f64::from(tilt), pr, tr, opts, out);
            }
            Cmd::PanTiltRelative { pan_speed, tilt_speed, pan, tilt } => {
                let (pr, tr) = pt_rates(pan_speed, tilt_speed);
                let p = self.pan.at(now) + f64::from(pan);
                let t = self.tilt.at(now) + f64::from(tilt);
                self.pan_tilt_to(now, p, t, pr, tr, opts, out);
            }
            Cmd::PanTiltHome | Cmd::PanTiltReset => {
                // Reset is modelled as a home move at top speed (no
                // end-stop calibration sweep).
                let (pr, tr) = pt_rates(MAX_PAN_SPEED, MAX_TILT_SPEED);
                self.pan_tilt_to(now, 0.0, 0.0, pr, tr, opts, out);
            }
            Cmd::IfClear | Cmd::Cancel { .. } => unreachable!("handled above"),
            _ => unreachable!("inquiries handled above"),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn pan_tilt_to(&mut self, now: Instant, p: f64, t: f64, pr: f64, tr: f64, opts: &ChainOptions, out: &mut Outbox) {
        let Some(s) = self.acquire(now, CH_PT, out) else { return };
        // Out-of-range targets are clamped to the mechanical limits.
        let p = p.clamp(f64::from(opts.pan_limits.0), f64::from(opts.pan_limits.1));
        let t = t.clamp(f64::from(opts.tilt_limits.0), f64::from(opts.tilt_limits.1));
        let end = self.pan.go(now, p, pr, opts).max(self.tilt.go(now, t, tr, opts));
        self.finish_at(s, end);
    }

    fn stop_channels(&mut self, now: Instant, channels: u8) {
        if channels & CH_PT != 0 {
            self.pan.stop(now);
            self.tilt.stop(now);
        }
        if channels & CH_ZOOM != 0 {
            self.zoom.stop(now);
        }
        if channels & CH_FOCUS != 0 {
            self.focus.stop(now);
        }
    }

    fn inquiry(&mut self, now: Instant, cmd: Cmd, opts: &ChainOptions, out: &mut Outbox) {
        let mut body = vec![0x50];
        match cmd {
            Cmd::InqPower => body.push(if self.power { 0x02 } else { 0x03 }),
            Cmd::InqZoom => body.extend(proto::encode_nibbles(self.zoom.at(now).round() as i32, 4)),
            Cmd::InqFocus => body.extend(proto::encode_nibbles(self.focus.at(now).round() as i32, 4)),
            Cmd::InqFocusMode => body.push(if self.focus_auto { 0x02 } else { 0x03 }),
            Cmd::InqPanTilt => {
                let n = opts.pan_tilt_nibbles;
                body.extend(proto::encode_nibbles(self.pan.at(now).round() as i32, n));
                body.extend(proto::encode_nibbles(self.tilt.at(now).round() as i32, n));
            }
            Cmd::InqVersion => {
                // Vendor 0001 (Sony), model code, ROM version, socket count.
                let [m1, m2] = opts.model_code.to_be_bytes();
                let [r1, r2] = opts.rom_version.to_be_bytes();
                body.extend([0x00, 0x01, m1, m2, r1, r2, 0x02]);
            }
            _ => unreachable!("not an inquiry"),
        }
        self.emit(out, &body);
    }
}

/// Continuous drive toward a limit at `rate`; `Dir::Stop` freezes the axis.
fn drive(axis: &mut Axis, now: Instant, dir: Dir, min: f64, max: f64, rate: f64, opts: &ChainOptions) {
    match dir {
        Dir::Stop => axis.stop(now),
        Dir::Neg => {
            axis.go(now, min, rate, opts);
        }
        Dir::Pos => {
            axis.go(now, max, rate, opts);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> ChainOptions {
        ChainOptions::default()
    }

    fn pkt(bytes: &[u8]) -> Vec<u8> {
        let mut v = vec![0x81];
        v.extend_from_slice(bytes);
        v.push(0xFF);
        v
    }

    fn cam(now: Instant) -> Camera {
        let mut c = Camera::new(1, now);
        c.address = Some(1);
        c
    }

    #[test]
    fn absolute_move_interpolates_and_completes() {
        let o = opts();
        let t0 = Instant::now();
        let mut c = cam(t0);
        let mut out = Outbox::new(1);
        // Pan to 0x05A0 (1440) at speed 0x18 (1440 units/s) → 1 s.
        c.handle(t0, &pkt(&[0x01, 0x06, 0x02, 0x18, 0x14, 0, 5, 0xA, 0, 0, 0, 0, 0]), false, &o, &mut out);
        c.poll(t0, &mut out);
        assert_eq!(out.packets, vec![vec![0x90, 0x41, 0xFF]]);
        let mid = t0 + Duration::from_millis(500);
        assert_eq!(c.state(mid).pan, 720);
        assert_eq!(c.next_deadline(), Some(t0 + Duration::from_secs(1)));
        out.packets.clear();
        c.poll(t0 + Duration::from_secs(1), &mut out);
        assert_eq!(out.packets, vec![vec![0x90, 0x51, 0xFF]]);
        assert_eq!(c.state(t0 + Duration::from_secs(2)).pan, 1440);
    }

    #[test]
    fn retarget_cancels_old_socket_and_third_kind_is_buffer_full() {
        let o = opts();
        let t0 = Instant::now();
        let mut c = cam(t0);
        let mut out = Outbox::new(1);
        let abs = pkt(&[0x01, 0x06, 0x02, 0x01, 0x01, 0, 1, 0, 0, 0, 1, 0, 0]);
        c.handle(t0, &abs, false, &o, &mut out);
        c.handle(t0, &pkt(&[0x01, 0x04, 0x47, 4, 0, 0, 0]), false, &o, &mut out);
        c.handle(t0, &pkt(&[0x01, 0x04, 0x48, 8, 0, 0, 0]), false, &o, &mut out);
        assert_eq!(out.packets, vec![vec![0x90, 0x60, 0x03, 0xFF]]);
        out.packets.clear();
        c.handle(t0, &abs, false, &o, &mut out);
        c.poll(t0, &mut out);
        assert_eq!(out.packets[0], vec![0x90, 0x61, 0x04, 0xFF]);
        assert!(out.packets.contains(&vec![0x90, 0x41, 0xFF]));
    }

    #[test]
    fn five_nibble_chain_encodes_wide_positions() {
        let o = ChainOptions { pan_tilt_nibbles: 5, pan_limits: (-0x10000, 0x10000), instant_moves: true, ..opts() };
        let t0 = Instant::now();
        let mut c = cam(t0);
        let mut out = Outbox::new(1);
        let mut abs = vec![0x01, 0x06, 0x02, 0x18, 0x14];
        abs.extend(proto::encode_nibbles(0x0F000, 5));
        abs.extend(proto::encode_nibbles(-2, 5));
        c.handle(t0, &pkt(&abs), false, &o, &mut out);
        c.poll(t0, &mut out);
        out.packets.clear();
        c.handle(t0, &pkt(&[0x09, 0x06, 0x12]), false, &o, &mut out);
        let want = [0x90, 0x50, 0, 0xF, 0, 0, 0, 0xF, 0xF, 0xF, 0xF, 0xE, 0xFF];
        assert_eq!(out.packets, vec![want.to_vec()]);
    }

    #[test]
    fn unaddressed_camera_never_emits() {
        let t0 = Instant::now();
        let mut c = Camera::new(1, t0);
        let mut out = Outbox::new(1);
        c.handle(t0, &pkt(&[0x09, 0x04, 0x00]), false, &opts(), &mut out);
        assert!(out.packets.is_empty());
    }

    #[test]
    fn drives_run_until_stopped_and_complete_at_once() {
        let o = opts();
        let t0 = Instant::now();
        let mut c = cam(t0);
        let mut out = Outbox::new(1);
        // Pan right at 0x18 (1440 units/s), tilt stopped.
        c.handle(t0, &pkt(&[0x01, 0x06, 0x01, 0x18, 0x14, 0x02, 0x03]), false, &o, &mut out);
        c.poll(t0, &mut out);
        assert_eq!(out.packets, vec![vec![0x90, 0x41, 0xFF], vec![0x90, 0x51, 0xFF]]);
        let t1 = t0 + Duration::from_millis(500);
        c.handle(t1, &pkt(&[0x01, 0x06, 0x01, 0x18, 0x14, 0x03, 0x03]), false, &o, &mut out);
        assert_eq!(c.state(t1 + Duration::from_secs(5)).pan, 720);
        // Zoom tele (variable 7: 16384 units/s) hits the 0x4000 end stop.
        c.handle(t1, &pkt(&[0x01, 0x04, 0x07, 0x27]), false, &o, &mut out);
        assert_eq!(c.state(t1 + Duration::from_millis(500)).zoom, 0x2000);
        assert_eq!(c.state(t1 + Duration::from_secs(5)).zoom, 0x4000);
    }
}
