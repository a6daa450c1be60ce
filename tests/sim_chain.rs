//! Drives the virtual VISCA chain over a real pty with hand-written bytes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use studiod_sim::{ChainOptions, Fault, VirtualChain};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::timeout;
use tokio_serial::{SerialPortBuilderExt, SerialStream};

const REPLY_TIMEOUT: Duration = Duration::from_secs(3);

/// The controller side of the line, as the daemon would see it.
struct Line {
    port: SerialStream,
    buf: Vec<u8>,
    /// Bytes `clean_packet` threw away.
    junk_seen: usize,
}

impl Line {
    fn open(path: &Path) -> Line {
        let port = tokio_serial::new(path.to_string_lossy(), 9600).open_native_async().expect("open the simulator's port");
        Line { port, buf: Vec::new(), junk_seen: 0 }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.port.write_all(bytes).await.expect("write");
    }

    /// Next packet (through `FF`), failing the test after `REPLY_TIMEOUT`.
    async fn packet(&mut self) -> Vec<u8> {
        timeout(REPLY_TIMEOUT, async {
            loop {
                if let Some(i) = self.buf.iter().position(|&b| b == 0xFF) {
                    return self.buf.drain(..=i).collect::<Vec<u8>>();
                }
                let mut chunk = [0u8; 64];
                let n = self.port.read(&mut chunk).await.expect("read");
                assert!(n > 0, "unexpected EOF");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        })
        .await
        .expect("no reply within timeout")
    }

    /// Next packet that starts with a header byte, skipping junk (junk
    /// bursts ending in FF come out as packets without a header).
    async fn clean_packet(&mut self) -> Vec<u8> {
        for _ in 0..64 {
            let p = self.packet().await;
            let start = p.iter().position(|&b| b & 0x80 != 0).expect("FF at least");
            if p[start] != 0xFF {
                self.junk_seen += start;
                return p[start..].to_vec();
            }
            self.junk_seen += p.len();
        }
        panic!("only junk on the line");
    }

    async fn expect(&mut self, want: &[u8]) {
        assert_eq!(self.packet().await, want, "unexpected reply");
    }

    async fn address_set(&mut self, cameras: u8) {
        self.send(&[0x88, 0x30, 0x01, 0xFF]).await;
        self.expect(&[0x88, 0x30, cameras + 1, 0xFF]).await;
    }
}

fn link(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("visca0")
}

fn opts(scale: f64) -> ChainOptions {
    ChainOptions { move_time_scale: scale, ..ChainOptions::default() }
}

fn nib4(v: i32) -> [u8; 4] {
    [(v >> 12 & 0xF) as u8, (v >> 8 & 0xF) as u8, (v >> 4 & 0xF) as u8, (v & 0xF) as u8]
}

fn abs_move(addr: u8, speed: (u8, u8), pan: i32, tilt: i32) -> Vec<u8> {
    let mut p = vec![0x80 + addr, 0x01, 0x06, 0x02, speed.0, speed.1];
    p.extend(nib4(pan));
    p.extend(nib4(tilt));
    p.push(0xFF);
    p
}

fn pt_reply(addr: u8, pan: i32, tilt: i32) -> Vec<u8> {
    let mut p = vec![0x80 + (addr << 4), 0x50];
    p.extend(nib4(pan));
    p.extend(nib4(tilt));
    p.push(0xFF);
    p
}

const PT_INQ1: [u8; 5] = [0x81, 0x09, 0x06, 0x12, 0xFF];

#[tokio::test]
async fn address_set_reply_for_three_cameras_and_unaddressed_chain_is_mute() {
    let dir = tempfile::tempdir().unwrap();
    // A stale symlink from an earlier run is replaced.
    std::os::unix::fs::symlink("/nonexistent", link(&dir)).unwrap();
    let chain = VirtualChain::spawn(&link(&dir), 3, ChainOptions::default()).unwrap();
    assert_eq!(std::fs::read_link(link(&dir)).unwrap(), chain.device().unwrap());
    let mut line = Line::open(chain.path());
    // Before AddressSet nobody answers: the first reply on the line must be
    // the AddressSet answer, not the power inquiry sent before it.
    line.send(&[0x81, 0x09, 0x04, 0x00, 0xFF]).await;
    line.address_set(3).await;
    assert_eq!(chain.packets(1).len(), 1, "only AddressSet reached camera 1");
    for (cam, hdr) in [(1, 0x90), (2, 0xA0), (3, 0xB0)] {
        line.send(&[0x80 + cam as u8, 0x09, 0x04, 0x00, 0xFF]).await;
        line.expect(&[hdr, 0x50, 0x02, 0xFF]).await;
        assert_eq!(chain.camera_state(cam).address, Some(cam as u8));
    }
    // Address 4 does not exist: ignored; camera 1 answers the next one.
    line.send(&[0x84, 0x09, 0x04, 0x00, 0xFF]).await;
    line.send(&[0x81, 0x09, 0x00, 0x02, 0xFF]).await;
    let v = line.packet().await;
    assert_eq!(&v[..4], &[0x90, 0x50, 0x00, 0x01], "version answer: {v:02X?}");
    assert_eq!(v.len(), 10);
    // IF_Clear broadcast comes back round the chain.
    line.send(&[0x88, 0x01, 0x00, 0x01, 0xFF]).await;
    line.expect(&[0x88, 0x01, 0x00, 0x01, 0xFF]).await;
    // Short and unknown commands are syntax errors.
    line.send(&[0x81, 0x01, 0xFF]).await;
    line.expect(&[0x90, 0x60, 0x02, 0xFF]).await;
    line.send(&[0x82, 0x01, 0x7E, 0x7E, 0xFF]).await;
    line.expect(&[0xA0, 0x60, 0x02, 0xFF]).await;
    // Longer than 16 bytes: length error.
    let mut long = vec![0x81];
    long.extend([0x01; 17]);
    long.push(0xFF);
    line.send(&long).await;
    line.expect(&[0x90, 0x60, 0x01, 0xFF]).await;
    chain.network_change();
    for hdr in [0x90, 0xA0, 0xB0] {
        line.expect(&[hdr, 0x38, 0xFF]).await;
    }
    chain.shutdown().await;
    assert!(!link(&dir).exists(), "symlink removed on shutdown");
}

#[tokio::test]
async fn preset_set_then_recall_completes_on_the_right_socket() {
    let dir = tempfile::tempdir().unwrap();
    let chain = VirtualChain::spawn(&link(&dir), 1, opts(0.1)).unwrap();
    let mut line = Line::open(chain.path());
    line.address_set(1).await;

    line.send(&abs_move(1, (0x18, 0x14), 0x0200, 0x0100)).await;
    line.expect(&[0x90, 0x41, 0xFF]).await;
    line.expect(&[0x90, 0x51, 0xFF]).await;
    // Memory set is quick: ACK and completion at once.
    line.send(&[0x81, 0x01, 0x04, 0x3F, 0x01, 0x05, 0xFF]).await;
    line.expect(&[0x90, 0x41, 0xFF]).await;
    line.expect(&[0x90, 0x51, 0xFF]).await;
    line.send(&[0x81, 0x01, 0x06, 0x04, 0xFF]).await; // home
    line.expect(&[0x90, 0x41, 0xFF]).await;
    line.expect(&[0x90, 0x51, 0xFF]).await;
    line.send(&PT_INQ1).await;
    line.expect(&pt_reply(1, 0, 0)).await;

    // A slow focus move holds socket 1, so the recall must use socket 2.
    line.send(&[0x81, 0x01, 0x04, 0x48, 0x0C, 0x00, 0x00, 0x00, 0xFF]).await;
    line.expect(&[0x90, 0x41, 0xFF]).await;
    line.send(&[0x81, 0x01, 0x04, 0x3F, 0x02, 0x05, 0xFF]).await;
    let got = [line.packet().await, line.packet().await, line.packet().await];
    let pos = |p: &[u8]| got.iter().position(|g| g == p).unwrap_or_else(|| panic!("{p:02X?} missing in {got:02X?}"));
    assert!(pos(&[0x90, 0x42, 0xFF]) < pos(&[0x90, 0x52, 0xFF]), "ACK before completion: {got:02X?}");
    pos(&[0x90, 0x51, 0xFF]);

    line.send(&PT_INQ1).await;
    line.expect(&pt_reply(1, 0x0200, 0x0100)).await;
    let s = chain.camera_state(1);
    assert_eq!(s.presets_recalled, 1);
    assert_eq!(s.presets[&5].pan, 0x0200);
    assert_eq!(s.last_command.as_deref(), Some(&PT_INQ1[..]));
}

#[tokio::test]
async fn absolute_move_takes_time_then_inquiry_shows_target() {
    let dir = tempfile::tempdir().unwrap();
    // 0x05A0 units at speed 0x18 (1440 units/s) take 1 s at scale 1.
    let chain = VirtualChain::spawn(&link(&dir), 2, opts(1.0)).unwrap();
    let mut line = Line::open(chain.path());
    line.address_set(2).await;
    line.send(&abs_move(2, (0x18, 0x14), 0x05A0, -0x0100)).await;
    line.expect(&[0xA0, 0x41, 0xFF]).await;
    line.send(&[0x82, 0x09, 0x06, 0x12, 0xFF]).await;
    let mid = line.packet().await;
    let pan = i32::from(mid[2]) << 12 | i32::from(mid[3]) << 8 | i32::from(mid[4]) << 4 | i32::from(mid[5]);
    assert!(pan < 0x05A0, "still moving when inquired: {mid:02X?}");
    assert!(chain.camera_state(2).moving);
    line.expect(&[0xA0, 0x51, 0xFF]).await;
    line.send(&[0x82, 0x09, 0x06, 0x12, 0xFF]).await;
    line.expect(&pt_reply(2, 0x05A0, -0x0100)).await;
    let s = chain.camera_state(2);
    assert_eq!((s.pan, s.tilt, s.moving), (0x05A0, -0x0100, false));
    assert_eq!(chain.camera_state(1).pan, 0, "the other camera did not move");
}

#[tokio::test]
async fn silent_camera_gives_no_reply_while_another_answers() {
    let dir = tempfile::tempdir().unwrap();
    let chain = VirtualChain::spawn(&link(&dir), 3, ChainOptions::default()).unwrap();
    let mut line = Line::open(chain.path());
    line.address_set(3).await;
    chain.set_fault(2, Fault::Silent);
    // Replies come in order on one line: if camera 2 answered anything, it
    // would show up before camera 1's and camera 3's answers.
    line.send(&[0x82, 0x09, 0x04, 0x00, 0xFF]).await;
    line.send(&[0x82, 0x01, 0x04, 0x3F, 0x01, 0x00, 0xFF]).await;
    line.send(&[0x81, 0x09, 0x04, 0x00, 0xFF]).await;
    line.expect(&[0x90, 0x50, 0x02, 0xFF]).await;
    line.send(&[0x83, 0x09, 0x04, 0x00, 0xFF]).await;
    line.expect(&[0xB0, 0x50, 0x02, 0xFF]).await;
    // It did receive them (so a test can tell "not answered" from "not sent").
    assert_eq!(chain.packets(2).len(), 3);
    assert!(chain.camera_state(2).presets.is_empty(), "silent camera executes nothing");
    // Back to normal.
    chain.set_fault(2, Fault::None);
    line.send(&[0x82, 0x09, 0x04, 0x00, 0xFF]).await;
    line.expect(&[0xA0, 0x50, 0x02, 0xFF]).await;
}

#[tokio::test]
async fn error_reply_mode_answers_without_ack() {
    let dir = tempfile::tempdir().unwrap();
    let chain = VirtualChain::spawn(&link(&dir), 2, ChainOptions::default()).unwrap();
    let mut line = Line::open(chain.path());
    line.address_set(2).await;
    chain.set_fault(1, Fault::ErrorReply(0x41));
    line.send(&[0x81, 0x01, 0x04, 0x3F, 0x01, 0x02, 0xFF]).await;
    line.expect(&[0x90, 0x60, 0x41, 0xFF]).await;
    line.send(&PT_INQ1).await;
    line.expect(&[0x90, 0x60, 0x41, 0xFF]).await;
    // Nothing else from camera 1 (no late ACK/completion) precedes camera 2.
    line.send(&[0x82, 0x09, 0x04, 0x00, 0xFF]).await;
    line.expect(&[0xA0, 0x50, 0x02, 0xFF]).await;
    assert!(chain.camera_state(1).presets.is_empty());
    // Powered off is "not executable" for real.
    chain.set_fault(1, Fault::None);
    line.send(&[0x81, 0x01, 0x04, 0x00, 0x03, 0xFF]).await;
    line.expect(&[0x90, 0x41, 0xFF]).await;
    line.expect(&[0x90, 0x51, 0xFF]).await;
    line.send(&[0x81, 0x01, 0x06, 0x04, 0xFF]).await;
    line.expect(&[0x90, 0x60, 0x41, 0xFF]).await;
    line.send(&[0x81, 0x09, 0x04, 0x00, 0xFF]).await;
    line.expect(&[0x90, 0x50, 0x03, 0xFF]).await;
}

#[tokio::test]
async fn third_concurrent_move_gets_buffer_full_and_cancel_frees_a_socket() {
    let dir = tempfile::tempdir().unwrap();
    let chain = VirtualChain::spawn(&link(&dir), 1, opts(1.0)).unwrap();
    let mut line = Line::open(chain.path());
    line.address_set(1).await;
    // Pan-tilt (slow speed), zoom direct and focus direct: three channels.
    line.send(&abs_move(1, (0x01, 0x01), 0x0400, 0x0000)).await;
    line.expect(&[0x90, 0x41, 0xFF]).await;
    line.send(&[0x81, 0x01, 0x04, 0x47, 0x04, 0x00, 0x00, 0x00, 0xFF]).await;
    line.expect(&[0x90, 0x42, 0xFF]).await;
    line.send(&[0x81, 0x01, 0x04, 0x48, 0x0C, 0x00, 0x00, 0x00, 0xFF]).await;
    line.expect(&[0x90, 0x60, 0x03, 0xFF]).await;
    assert_eq!(chain.camera_state(1).busy_sockets, [true, true]);
    // Cancel socket 1: the pan-tilt move stops where it is.
    line.send(&[0x81, 0x21, 0xFF]).await;
    line.expect(&[0x90, 0x61, 0x04, 0xFF]).await;
    let s = chain.camera_state(1);
    assert!(s.pan < 0x0400 && s.busy_sockets == [false, true], "{s:?}");
    // Cancelling an idle socket: no socket error.
    line.send(&[0x81, 0x21, 0xFF]).await;
    line.expect(&[0x90, 0x61, 0x05, 0xFF]).await;
    // A new zoom move retargets the running one: old socket cancelled.
    line.send(&[0x81, 0x01, 0x04, 0x47, 0x00, 0x00, 0x00, 0x00, 0xFF]).await;
    line.expect(&[0x90, 0x62, 0x04, 0xFF]).await;
    line.expect(&[0x90, 0x41, 0xFF]).await;
    line.expect(&[0x90, 0x51, 0xFF]).await;
}

#[tokio::test]
async fn unplug_then_replug_at_the_same_path_needs_readdressing() {
    let dir = tempfile::tempdir().unwrap();
    let path = link(&dir);
    let chain = VirtualChain::spawn(&path, 2, ChainOptions { instant_moves: true, ..ChainOptions::default() }).unwrap();
    let mut line = Line::open(&path);
    line.address_set(2).await;
    line.send(&abs_move(1, (0x18, 0x14), 0x0123, 0x0045)).await;
    line.expect(&[0x90, 0x41, 0xFF]).await;
    line.expect(&[0x90, 0x51, 0xFF]).await;

    chain.unplug().await;
    assert!(std::fs::symlink_metadata(&path).is_err(), "symlink removed");
    assert!(chain.device().is_none());
    // The open port sees the cable go: EOF or an error, not a hang.
    let mut b = [0u8; 8];
    let r = timeout(REPLY_TIMEOUT, line.port.read(&mut b)).await.expect("port noticed unplug");
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    drop(line);

    chain.replug().await.unwrap();
    let mut line = Line::open(&path);
    // Addresses are forgotten: this inquiry is ignored…
    line.send(&PT_INQ1).await;
    line.address_set(2).await;
    // …but positions are kept.
    line.send(&PT_INQ1).await;
    line.expect(&pt_reply(1, 0x0123, 0x0045)).await;
    // Closing and reopening the daemon side keeps the chain alive.
    drop(line);
    let mut line = Line::open(&path);
    line.send(&PT_INQ1).await;
    line.expect(&pt_reply(1, 0x0123, 0x0045)).await;
    drop(chain);
    assert!(std::fs::symlink_metadata(&path).is_err(), "symlink removed on drop");
}

#[tokio::test]
async fn wire_pacing_at_9600_baud_bounds_a_13_byte_exchange() {
    let dir = tempfile::tempdir().unwrap();
    let chain = VirtualChain::spawn(&link(&dir), 1, ChainOptions { baud: Some(9600), ..ChainOptions::default() }).unwrap();
    let mut line = Line::open(chain.path());
    line.address_set(1).await;
    // 7 bytes out, 3 + 3 back: 13 bytes × 10 bits / 9600 baud = 13.54 ms.
    let start = std::time::Instant::now();
    line.send(&[0x81, 0x01, 0x04, 0x3F, 0x01, 0x00, 0xFF]).await;
    line.expect(&[0x90, 0x41, 0xFF]).await;
    line.expect(&[0x90, 0x51, 0xFF]).await;
    let took = start.elapsed();
    assert!(took >= Duration::from_micros(13_500), "exchange took only {took:?}");
    assert_eq!(studiod_sim::wire_time(13, 9600), Duration::from_secs_f64(13.0 * 10.0 / 9600.0));
}

#[tokio::test]
async fn garbage_mode_still_delivers_every_reply() {
    let dir = tempfile::tempdir().unwrap();
    let chain = VirtualChain::spawn(&link(&dir), 1, ChainOptions::default()).unwrap();
    let mut line = Line::open(chain.path());
    line.address_set(1).await;
    chain.set_fault(1, Fault::Garbage);
    chain.inject_garbage(&[0x01, 0x02, 0xFF]);
    for _ in 0..20 {
        line.send(&[0x81, 0x09, 0x04, 0x00, 0xFF]).await;
        assert_eq!(line.clean_packet().await, [0x90, 0x50, 0x02, 0xFF]);
    }
    // Junk really was emitted (3 injected bytes plus the camera's own).
    assert!(line.junk_seen > 3, "only {} junk bytes", line.junk_seen);
    assert_eq!(chain.packets(1).len(), 21, "AddressSet + 20 inquiries, no retries");
}

#[tokio::test]
async fn slow_ack_and_completion_without_ack() {
    let dir = tempfile::tempdir().unwrap();
    let chain = VirtualChain::spawn(&link(&dir), 1, ChainOptions::default()).unwrap();
    let mut line = Line::open(chain.path());
    line.address_set(1).await;
    chain.set_fault(1, Fault::SlowAck(Duration::from_millis(150)));
    let start = std::time::Instant::now();
    line.send(&[0x81, 0x01, 0x04, 0x3F, 0x01, 0x01, 0xFF]).await;
    line.expect(&[0x90, 0x41, 0xFF]).await;
    assert!(start.elapsed() >= Duration::from_millis(150));
    line.expect(&[0x90, 0x51, 0xFF]).await;
    chain.set_fault(1, Fault::CompletionWithoutAck);
    line.send(&[0x81, 0x01, 0x04, 0x3F, 0x01, 0x02, 0xFF]).await;
    line.expect(&[0x90, 0x51, 0xFF]).await;
    let s = chain.wait_until(1, |s| s.presets.len() == 2, REPLY_TIMEOUT).await.expect("both presets stored");
    assert!(s.presets.contains_key(&1) && s.presets.contains_key(&2));
}

#[tokio::test]
async fn spawn_refuses_to_clobber_a_regular_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(link(&dir), b"keep me").unwrap();
    let r = VirtualChain::spawn(&link(&dir), 1, ChainOptions::default());
    assert_eq!(r.err().map(|e| e.kind()), Some(std::io::ErrorKind::AlreadyExists));
    assert_eq!(std::fs::read(link(&dir)).unwrap(), b"keep me");
}
