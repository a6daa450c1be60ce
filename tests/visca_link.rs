//! Camera link over `tokio::io::duplex` against a scripted fake camera
//! chain that speaks real VISCA bytes. Time is paused: timeouts, retries and
//! backoff run on tokio's virtual clock, so timings are asserted exactly.

mod support;

use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use studiod::camera::{spawn_port, CameraError, CameraHandle, Failure, Health, Opener, Port, PortOptions, SerialOpener};
use studiod::config::model::Camera;
use studiod::visca::{Version, ViscaErrorCode as ErrorCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

/// Upper bound for waiting on an event; virtual time, so it costs nothing.
const WAIT: Duration = Duration::from_secs(30);

fn camera(name: &str, address: u8) -> Camera {
    Camera { name: name.into(), profile: support::test_camera_profile(), port: "/dev/fake0".into(), baud: 9600, address, url: None }
}

/// An opener handing out fresh duplex pipes; the test gets the camera ends.
fn duplex_opener() -> (impl Opener, mpsc::UnboundedReceiver<DuplexStream>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let opener = move || {
        let tx = tx.clone();
        async move {
            let (ours, theirs) = tokio::io::duplex(4096);
            tx.send(theirs).map_err(|_| io::Error::other("test finished"))?;
            Ok(ours)
        }
    };
    (opener, rx)
}

/// A fake chain: logs every packet it receives, answers with `script`.
struct Fake {
    log: mpsc::UnboundedReceiver<Vec<u8>>,
    task: JoinHandle<()>,
}

impl Fake {
    fn spawn(
        mut io: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
        mut script: impl FnMut(&[u8]) -> Vec<u8> + Send + 'static,
    ) -> Fake {
        let (tx, log) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 256];
            loop {
                let n = match io.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                buf.extend_from_slice(&chunk[..n]);
                for packet in support::take_packets(&mut buf) {
                    // Log before answering: once the caller has its result, the packet is in the log.
                    let _ = tx.send(packet.clone());
                    let out = script(&packet);
                    if io.write_all(&out).await.is_err() {
                        return;
                    }
                }
            }
        });
        Fake { log, task }
    }

    /// Everything received so far.
    fn received(&mut self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.log.try_recv().ok()).collect()
    }
}

/// A well-behaved chain of `cams` cameras at pan -432, tilt 72 units, zoom 0x1000.
fn standard(cams: u8, p: &[u8]) -> Vec<u8> {
    let x = p[0] & 0x0F;
    let z = (x + 8) << 4;
    match p {
        [0x88, 0x30, 0x01, 0xFF] => vec![0x88, 0x30, cams + 1, 0xFF],
        [0x88, 0x01, 0x00, 0x01, 0xFF] => p.to_vec(),
        _ if x == 0 || x > cams => vec![],
        [_, 0x09, 0x04, 0x00, 0xFF] => vec![z, 0x50, 0x02, 0xFF],
        [_, 0x09, 0x04, 0x47, 0xFF] => vec![z, 0x50, 0x01, 0x00, 0x00, 0x00, 0xFF],
        [_, 0x09, 0x06, 0x12, 0xFF] => vec![z, 0x50, 0x0F, 0x0E, 0x05, 0x00, 0x00, 0x00, 0x04, 0x08, 0xFF],
        [_, 0x09, 0x00, 0x02, 0xFF] => vec![z, 0x50, 0x00, 0x01, 0x05, 0x19, 0x01, 0x00, 0x02, 0xFF],
        [_, 0x01, ..] => vec![z, 0x41, 0xFF, z, 0x51, 0xFF],
        [_, y, 0xFF] if y & 0xF0 == 0x20 => vec![z, 0x60 | (y & 0x0F), 0x05, 0xFF],
        _ => vec![z, 0x60, 0x02, 0xFF],
    }
}

const RECALL_3: [u8; 7] = [0x81, 0x01, 0x04, 0x3F, 0x02, 0x02, 0xFF];

fn start(cameras: &[Camera]) -> (Port, mpsc::UnboundedReceiver<DuplexStream>, CancellationToken) {
    let (opener, pipes) = duplex_opener();
    let cancel = CancellationToken::new();
    let port = spawn_port("fake0", cameras, opener, PortOptions::default(), cancel.clone()).unwrap();
    (port, pipes, cancel)
}

async fn next_pipe(pipes: &mut mpsc::UnboundedReceiver<DuplexStream>) -> DuplexStream {
    timeout(WAIT, pipes.recv()).await.expect("port opened").expect("opener alive")
}

async fn wait_health(h: &CameraHandle, what: &str, pred: impl FnMut(&Health) -> bool) -> Health {
    let mut rx = h.health();
    let got = timeout(WAIT, rx.wait_for(pred)).await;
    let health = got.unwrap_or_else(|_| panic!("{} never became {what}", h.name())).expect("port task alive").clone();
    health
}

async fn wait_online(h: &CameraHandle) -> Health {
    wait_health(h, "online", |h| h.online).await
}

fn count(log: &[Vec<u8>], packet: &[u8]) -> usize {
    log.iter().filter(|p| p.as_slice() == packet).count()
}

#[tokio::test(start_paused = true)]
async fn ack_then_completion() {
    let (port, mut pipes, cancel) = start(&[camera("front", 1)]);
    let mut fake = Fake::spawn(next_pipe(&mut pipes).await, |p| standard(1, p));
    let front = port.handle("front").unwrap();
    wait_online(front).await;

    front.recall_preset(3).await.unwrap();
    let log = fake.received();
    assert_eq!(log[0], [0x88, 0x30, 0x01, 0xFF], "AddressSet first");
    assert_eq!(log[1], [0x88, 0x01, 0x00, 0x01, 0xFF], "then IF_Clear broadcast");
    assert_eq!(count(&log, &RECALL_3), 1);
    assert_eq!(front.version().await.unwrap(), Version { vendor: 1, model: 0x0519, rom: 0x0100, sockets: 2 });
    cancel.cancel();
    port.join().await;
}

#[tokio::test(start_paused = true)]
async fn error_reply_is_a_refusal_and_is_not_retried() {
    let (port, mut pipes, _cancel) = start(&[camera("front", 1)]);
    let mut fake = Fake::spawn(next_pipe(&mut pipes).await, |p| if p == RECALL_3 { vec![0x90, 0x61, 0x41, 0xFF] } else { standard(1, p) });
    let front = port.handle("front").unwrap();
    wait_online(front).await;

    let err = front.recall_preset(3).await.unwrap_err();
    assert_eq!(err, CameraError::Refused { code: ErrorCode::NotExecutable });
    assert_eq!(err.to_string(), "camera refused the command: not executable");
    // Let virtual time run well past every retry window; a retry would show up in the log.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(count(&fake.received(), &RECALL_3), 1, "a refusal is never resent");
    assert!(front.is_online(), "a refusal is an answer: the camera is fine");
    assert_eq!(front.health().borrow().last_error.as_deref(), Some("camera refused: not executable"));
}

#[tokio::test(start_paused = true)]
async fn ack_timeout_is_retried_then_reported_as_link_failure() {
    let (port, mut pipes, _cancel) = start(&[camera("front", 1)]);
    let mut fake = Fake::spawn(next_pipe(&mut pipes).await, |p| if p == RECALL_3 { vec![] } else { standard(1, p) });
    let front = port.handle("front").unwrap();
    wait_online(front).await;

    let t0 = Instant::now();
    let err = front.recall_preset(3).await.unwrap_err();
    let elapsed = t0.elapsed();
    assert!(matches!(err, CameraError::Link(Failure::Timeout { attempts: 3, .. })), "{err:?}");
    assert_eq!(err.to_string(), "link failure: no ACK within 200 ms (3 attempts)");
    // 200 ack + 100 backoff + 200 + 200 backoff + 200.
    assert!(elapsed >= Duration::from_millis(900) && elapsed < Duration::from_millis(950), "{elapsed:?}");
    assert_eq!(count(&fake.received(), &RECALL_3), 3);
    let h = wait_health(front, "offline", |h| !h.online).await;
    assert_eq!(h.reason.as_deref(), Some("no ACK within 200 ms"));

    // While offline a command is tried once and reported as the contract says.
    let err = front.recall_preset(3).await.unwrap_err();
    assert_eq!(err.to_string(), "camera offline: no ACK within 200 ms");
    // The camera still answers its health probe, so it comes back.
    wait_online(front).await;
}

#[tokio::test(start_paused = true)]
async fn completion_without_ack_is_accepted() {
    let (port, mut pipes, _cancel) = start(&[camera("front", 1)]);
    let _fake =
        Fake::spawn(next_pipe(&mut pipes).await, |p| if p[1] == 0x01 && p[0] != 0x88 { vec![0x90, 0x51, 0xFF] } else { standard(1, p) });
    let front = port.handle("front").unwrap();
    wait_online(front).await;
    front.recall_preset(3).await.unwrap();
    front.home().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn garbage_interleaved_with_replies_is_skipped() {
    let (port, mut pipes, _cancel) = start(&[camera("front", 1)]);
    let _fake = Fake::spawn(next_pipe(&mut pipes).await, |p| {
        let mut out = vec![0x00, 0x13, 0x90, 0x37, 0xFF, 0xA0, 0x7F]; // noise, a bogus packet, a dangling header
        let good = standard(1, p);
        // Split the good reply in two with junk in the middle when it has two packets.
        match good.iter().position(|&b| b == 0xFF) {
            Some(end) if end + 1 < good.len() => {
                out.extend_from_slice(&good[..=end]);
                out.extend_from_slice(&[0x55, 0xFF, 0x12]);
                out.extend_from_slice(&good[end + 1..]);
            }
            _ => out.extend_from_slice(&good),
        }
        out.extend_from_slice(&[0xC3, 0x01]);
        out
    });
    let front = port.handle("front").unwrap();
    wait_online(front).await;
    front.recall_preset(3).await.unwrap();
    let pos = front.position().await.unwrap();
    assert!((pos.pan_deg - -30.0).abs() < 1e-9, "{pos:?}");
    assert!((pos.tilt_deg - 5.0).abs() < 1e-9, "{pos:?}");
    assert!((pos.zoom - 2.0).abs() < 1e-9, "{pos:?}");
}

#[tokio::test(start_paused = true)]
async fn absolute_move_is_converted_with_the_profile() {
    let (port, mut pipes, _cancel) = start(&[camera("front", 1)]);
    let mut fake = Fake::spawn(next_pipe(&mut pipes).await, |p| standard(1, p));
    let front = port.handle("front").unwrap();
    wait_online(front).await;
    front.move_absolute(-30.0, 5.0, Some(2.0)).await.unwrap();
    let log = fake.received();
    // pan -30° × 14.4 = -432 = FE50h, tilt 5° × 14.4 = 72 = 0048h, top speeds 18h/14h.
    assert_eq!(count(&log, &[0x81, 0x01, 0x06, 0x02, 0x18, 0x14, 0x0F, 0x0E, 0x05, 0x00, 0x00, 0x00, 0x04, 0x08, 0xFF]), 1);
    assert_eq!(count(&log, &[0x81, 0x01, 0x04, 0x47, 0x01, 0x00, 0x00, 0x00, 0xFF]), 1, "zoom 2× = 1000h");

    let err = front.move_absolute(200.0, 0.0, None).await.unwrap_err();
    assert!(matches!(err, CameraError::Invalid(_)), "{err}");
    assert!(front.recall_preset(17).await.is_err());
    assert!(fake.received().iter().all(|p| p[1] == 0x09), "nothing but probes sent after invalid requests");
}

#[tokio::test(start_paused = true)]
async fn transport_eof_goes_offline_then_reopens_and_readdresses() {
    let (port, mut pipes, _cancel) = start(&[camera("front", 1)]);
    let fake = Fake::spawn(next_pipe(&mut pipes).await, |p| standard(1, p));
    let front = port.handle("front").unwrap();
    wait_online(front).await;

    // Unplug: the camera side of the pipe goes away.
    fake.task.abort();
    let t_unplug = Instant::now();
    let h = wait_health(front, "offline", |h| !h.online).await;
    assert!(h.reason.as_deref().unwrap_or("").contains("closed"), "{h:?}");

    // Requests while the port is down fail fast with the reason.
    let err = front.recall_preset(3).await.unwrap_err();
    assert!(matches!(&err, CameraError::Offline { reason } if reason.contains("closed")), "{err:?}");

    // The port task reopens after its backoff and re-addresses the chain.
    let pipe = next_pipe(&mut pipes).await;
    assert!(t_unplug.elapsed() >= Duration::from_millis(250), "reopened after backoff");
    let mut fake2 = Fake::spawn(pipe, |p| standard(1, p));
    wait_online(front).await;
    front.recall_preset(3).await.unwrap();
    let log = fake2.received();
    assert_eq!(log[0], [0x88, 0x30, 0x01, 0xFF]);
    assert_eq!(count(&log, &RECALL_3), 1);
}

#[tokio::test(start_paused = true)]
async fn open_failures_back_off_exponentially() {
    let attempts = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let (tx, mut pipes) = mpsc::unbounded_channel();
    let log = attempts.clone();
    let opener = move || {
        let log = log.clone();
        let tx = tx.clone();
        async move {
            let n = {
                let mut l = log.lock().unwrap();
                l.push(Instant::now());
                l.len()
            };
            if n <= 4 {
                return Err(io::Error::new(io::ErrorKind::NotFound, "no such device"));
            }
            let (ours, theirs) = tokio::io::duplex(4096);
            tx.send(theirs).map_err(|_| io::Error::other("test finished"))?;
            Ok(ours)
        }
    };
    let port = spawn_port("/dev/ttyUSB9", &[camera("front", 1)], opener, PortOptions::default(), CancellationToken::new()).unwrap();
    let front = port.handle("front").unwrap();
    let h = wait_health(front, "unable to open", |h| h.reason.as_deref().unwrap_or("").contains("cannot open")).await;
    assert_eq!(h.reason.as_deref(), Some("cannot open serial port /dev/ttyUSB9: no such device"));

    let _fake = Fake::spawn(next_pipe(&mut pipes).await, |p| standard(1, p));
    wait_online(front).await;
    let t = attempts.lock().unwrap().clone();
    let gaps: Vec<u128> = t.windows(2).map(|w| (w[1] - w[0]).as_millis()).collect();
    assert_eq!(gaps, vec![250, 500, 1000, 2000]);
}

#[tokio::test(start_paused = true)]
async fn a_silent_camera_is_detected_and_does_not_block_its_neighbour() {
    let silent = Arc::new(AtomicBool::new(false));
    let sent_to_2 = Arc::new(AtomicUsize::new(0));
    let (port, mut pipes, _cancel) = start(&[camera("front", 1), camera("side", 2)]);
    let (s, n) = (silent.clone(), sent_to_2.clone());
    let _fake = Fake::spawn(next_pipe(&mut pipes).await, move |p| {
        if p[0] == 0x82 {
            n.fetch_add(1, Ordering::SeqCst);
            if s.load(Ordering::SeqCst) {
                return vec![];
            }
        }
        standard(2, p)
    });
    let front = port.handle("front").unwrap().clone();
    let side = port.handle("side").unwrap().clone();
    wait_online(&front).await;
    wait_online(&side).await;
    let front_since = front.health().borrow().since;

    silent.store(true, Ordering::SeqCst);
    let t0 = Instant::now();
    // A command to the silent camera is in flight (and will time out)…
    let side2 = side.clone();
    let stuck = tokio::spawn(async move { side2.recall_preset(1).await });
    tokio::task::yield_now().await;
    // …while the neighbour answers at once.
    front.recall_preset(3).await.unwrap();
    front.home().await.unwrap();
    assert_eq!(t0.elapsed(), Duration::ZERO, "the silent camera's timeouts did not delay camera 1");

    let h = wait_health(&side, "offline", |h| !h.online).await;
    assert!(h.since - t0 <= Duration::from_secs(2), "offline after {:?}", h.since - t0);
    assert!(matches!(stuck.await.unwrap(), Err(CameraError::Link(_))));
    assert!(sent_to_2.load(Ordering::SeqCst) >= 3);

    // Health probes go on; when it answers again it is back.
    silent.store(false, Ordering::SeqCst);
    wait_online(&side).await;
    let fh = front.health().borrow().clone();
    assert!(fh.online && fh.since == front_since, "camera 1 never flapped: {fh:?}");
}

#[tokio::test(start_paused = true)]
async fn cancellation_stops_the_task_and_fails_callers() {
    let (port, mut pipes, cancel) = start(&[camera("front", 1)]);
    let _fake = Fake::spawn(next_pipe(&mut pipes).await, |p| standard(1, p));
    let front = port.handle("front").unwrap().clone();
    wait_online(&front).await;
    cancel.cancel();
    port.join().await;
    assert_eq!(front.recall_preset(3).await.unwrap_err(), CameraError::Stopped);
    assert!(!front.health().borrow().online);
}

#[tokio::test(start_paused = true)]
async fn cancel_stops_a_running_command() {
    let (port, mut pipes, _cancel) = start(&[camera("front", 1)]);
    let mut fake = Fake::spawn(next_pipe(&mut pipes).await, |p| match p {
        // The drive is accepted and runs until cancelled.
        [0x81, 0x01, 0x06, 0x01, ..] => vec![0x90, 0x41, 0xFF],
        [0x81, 0x21, 0xFF] => vec![0x90, 0x61, 0x04, 0xFF],
        _ => standard(1, p),
    });
    let front = port.handle("front").unwrap().clone();
    wait_online(&front).await;
    let f = front.clone();
    let drive = tokio::spawn(async move { f.drive(studiod::visca::Direction::Left, 5, 5).await });
    loop {
        let p = timeout(WAIT, fake.log.recv()).await.expect("drive sent").unwrap();
        if p.starts_with(&[0x81, 0x01, 0x06, 0x01]) {
            break;
        }
    }
    front.cancel().await.unwrap();
    assert_eq!(timeout(WAIT, drive).await.unwrap().unwrap(), Err(CameraError::Cancelled));
    assert_eq!(count(&fake.received(), &[0x81, 0x21, 0xFF]), 1, "VISCA Cancel for socket 1");
}

#[tokio::test(start_paused = true)]
async fn quirky_camera_completing_late_without_ack_is_not_resent() {
    let mut quirky = camera("front", 1);
    quirky.profile.completion_without_ack = true;
    let owed = Arc::new(AtomicBool::new(false));
    let (port, mut pipes, _cancel) = start(&[quirky, camera("side", 2)]);
    let o = owed.clone();
    let mut fake = Fake::spawn(next_pipe(&mut pipes).await, move |p| {
        if p == RECALL_3 {
            // No ACK now; the completion comes later, with the next traffic on the chain.
            o.store(true, Ordering::SeqCst);
            return vec![];
        }
        let mut out = standard(2, p);
        if p[0] == 0x82 && o.swap(false, Ordering::SeqCst) {
            out.extend_from_slice(&[0x90, 0x51, 0xFF]);
        }
        out
    });
    let front = port.handle("front").unwrap();
    wait_online(front).await;
    let t0 = Instant::now();
    front.recall_preset(3).await.unwrap();
    assert!(t0.elapsed() > Duration::from_millis(200), "completed after the ACK timeout: {:?}", t0.elapsed());
    assert_eq!(count(&fake.received(), &RECALL_3), 1, "no resend while waiting for the completion");
    assert!(front.is_online());
}

/// The production opener on a pseudo-terminal: real time, real termios.
#[tokio::test]
async fn serial_opener_drives_a_camera_on_a_pty() {
    use tokio_serial::SerialPort;
    let (master, slave) = tokio_serial::SerialStream::pair().expect("pty pair");
    let path = slave.name().expect("pty has a name");
    // The pair's slave is opened exclusively; close it so the opener can take the path.
    drop(slave);
    let mut fake = Fake::spawn(master, |p| standard(1, p));
    let opener = SerialOpener { path: path.clone(), baud: 9600 };
    let cancel = CancellationToken::new();
    let port = spawn_port(path, &[camera("front", 1)], opener, PortOptions::default(), cancel.clone()).unwrap();
    let front = port.handle("front").unwrap();
    let real_wait = Duration::from_secs(10);
    timeout(real_wait, front.health().wait_for(|h| h.online)).await.expect("online over the pty").unwrap();
    timeout(real_wait, front.recall_preset(3)).await.unwrap().unwrap();
    assert_eq!(count(&fake.received(), &RECALL_3), 1);
    cancel.cancel();
    port.join().await;
}
