//! Issue #14 item 5: the camera queue is bounded end to end, and a caller
//! that goes away withdraws its request. A port task over
//! `tokio::io::duplex` against a fake camera the test can hold back; time
//! is paused, so timeouts run on tokio's virtual clock.

mod support;

use std::io;
use std::time::Duration;

use studiod::camera::{spawn_port, CameraError, CameraHandle, Port, PortOptions, DEFAULT_QUEUE_CAPACITY};
use studiod::config::model::Camera;
use studiod::visca::{MemoryOp, ViscaCommand as Command};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::mpsc;
use tokio::time::{timeout, Instant};
use tokio_util::sync::CancellationToken;

/// Upper bound for waiting on an event; virtual time, so it costs nothing.
const WAIT: Duration = Duration::from_secs(30);

fn camera() -> Camera {
    Camera { name: "front".into(), profile: support::test_camera_profile(), port: "/dev/fake0".into(), baud: 9600, address: 1, url: None }
}

/// `81 01 04 3F 02 mm FF`: recall of memory `mm` (preset `mm + 1`).
fn recall(memory: u8) -> Vec<u8> {
    vec![0x81, 0x01, 0x04, 0x3F, 0x02, memory, 0xFF]
}

const HOME: [u8; 5] = [0x81, 0x01, 0x06, 0x04, 0xFF];
/// ACK in socket 1, then its completion.
const ACK_AND_DONE: [u8; 6] = [0x90, 0x41, 0xFF, 0x90, 0x51, 0xFF];

/// One well-behaved camera, except that it never answers what `held`
/// picks; the test answers those itself through `inject`.
struct Fake {
    log: mpsc::UnboundedReceiver<Vec<u8>>,
    inject: mpsc::UnboundedSender<Vec<u8>>,
}

impl Fake {
    fn spawn(io: DuplexStream, held: impl Fn(&[u8]) -> bool + Send + 'static) -> Fake {
        let (log_tx, log) = mpsc::unbounded_channel();
        let (inject, mut injected) = mpsc::unbounded_channel::<Vec<u8>>();
        let (mut rd, mut wr) = tokio::io::split(io);
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 256];
            loop {
                tokio::select! {
                    n = rd.read(&mut chunk) => {
                        let n = match n {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        for packet in support::take_packets(&mut buf) {
                            let _ = log_tx.send(packet.clone());
                            let out = if held(&packet) { vec![] } else { answer(&packet) };
                            if wr.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                    }
                    Some(bytes) = injected.recv() => {
                        if wr.write_all(&bytes).await.is_err() {
                            return;
                        }
                    }
                }
            }
        });
        Fake { log, inject }
    }

    /// Waits until the camera has received `packet`.
    async fn wait_for(&mut self, packet: &[u8]) {
        timeout(WAIT, async {
            while let Some(p) = self.log.recv().await {
                if p == packet {
                    return;
                }
            }
            panic!("fake camera gone");
        })
        .await
        .unwrap_or_else(|_| panic!("{packet:02x?} never sent"));
    }

    /// Commands (not inquiries or broadcasts) received so far.
    fn commands(&mut self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.log.try_recv().ok()).filter(|p| p[0] == 0x81 && p[1] == 0x01).collect()
    }
}

/// Camera 1 alone on the chain.
fn answer(p: &[u8]) -> Vec<u8> {
    match p {
        [0x88, 0x30, 0x01, 0xFF] => vec![0x88, 0x30, 0x02, 0xFF],
        [0x88, 0x01, 0x00, 0x01, 0xFF] => p.to_vec(),
        [0x81, 0x09, 0x04, 0x00, 0xFF] => vec![0x90, 0x50, 0x02, 0xFF],
        [0x81, 0x01, ..] => ACK_AND_DONE.to_vec(),
        [0x81, y, 0xFF] if y & 0xF0 == 0x20 => vec![0x90, 0x60 | (y & 0x0F), 0x05, 0xFF],
        _ => vec![0x90, 0x60, 0x02, 0xFF],
    }
}

struct Rig {
    port: Port,
    fake: Fake,
    _cancel: CancellationToken,
}

impl Rig {
    async fn start(held: impl Fn(&[u8]) -> bool + Send + 'static) -> Rig {
        let (pipes_tx, mut pipes) = mpsc::unbounded_channel();
        let opener = move || {
            let tx = pipes_tx.clone();
            async move {
                let (ours, theirs) = tokio::io::duplex(4096);
                tx.send(theirs).map_err(|_| io::Error::other("test finished"))?;
                Ok(ours)
            }
        };
        let cancel = CancellationToken::new();
        let port = spawn_port("fake0", &[camera()], opener, PortOptions::default(), cancel.clone()).unwrap();
        let pipe = timeout(WAIT, pipes.recv()).await.expect("port opened").expect("opener alive");
        let fake = Fake::spawn(pipe, held);
        timeout(WAIT, port.handle("front").unwrap().health().wait_for(|h| h.online)).await.expect("online").unwrap();
        Rig { port, fake, _cancel: cancel }
    }

    fn front(&self) -> CameraHandle {
        self.port.handle("front").unwrap().clone()
    }
}

fn recall_cmd(memory: u8) -> Command {
    Command::Memory { op: MemoryOp::Recall, memory }
}

fn held_recall_0(p: &[u8]) -> bool {
    p == recall(0).as_slice()
}

/// (a) A full queue refuses the next request at once, with a typed error,
/// and takes it back in once places free up.
#[tokio::test(start_paused = true)]
async fn full_queue_refuses_at_once_with_a_typed_busy_error() {
    let mut rig = Rig::start(held_recall_0).await;
    let front = rig.front();
    // Awaiting its ACK, so everything after it waits in the queue.
    let first = front.submit(recall_cmd(0)).await.unwrap();
    rig.fake.wait_for(&recall(0)).await;
    let mut queued = Vec::new();
    for _ in 0..DEFAULT_QUEUE_CAPACITY {
        queued.push(front.submit(Command::Home).await.unwrap());
    }

    let t0 = Instant::now();
    let err = front.submit(Command::Home).await.unwrap().await.unwrap_err();
    assert_eq!(Instant::now(), t0, "refused at once, no waiting");
    assert_eq!(err, CameraError::Busy { queued: DEFAULT_QUEUE_CAPACITY });
    assert_eq!(err.to_string(), format!("camera busy: {DEFAULT_QUEUE_CAPACITY} requests queued"));
    assert!(!err.is_link() && !err.is_refusal(), "busy is neither the cable nor the camera");
    // Same for the convenience methods.
    assert!(matches!(front.home().await, Err(CameraError::Busy { .. })));
    assert!(front.is_online(), "back-pressure says nothing about the camera's health");
    assert_eq!(front.health().borrow().last_error, None);

    // The held recall completes; the queue drains in order.
    rig.fake.inject.send(ACK_AND_DONE.to_vec()).unwrap();
    timeout(WAIT, first).await.unwrap().unwrap();
    for r in futures::future::join_all(queued).await {
        r.unwrap();
    }
    assert_eq!(rig.fake.commands().iter().filter(|p| **p == HOME).count(), DEFAULT_QUEUE_CAPACITY, "the refused ones were never sent");
    // And it takes requests again.
    front.home().await.unwrap();
}

/// (b) A caller that times out while its request waits in the queue: the
/// request is withdrawn, and the camera never gets it.
#[tokio::test(start_paused = true)]
async fn caller_timing_out_before_its_request_is_sent_never_moves_the_camera() {
    let mut rig = Rig::start(held_recall_0).await;
    let front = rig.front();
    let f = front.clone();
    let first = tokio::spawn(async move { f.recall_preset(1).await });
    rig.fake.wait_for(&recall(0)).await;

    // Queued behind the recall awaiting its ACK; the caller gives up.
    assert!(timeout(Duration::from_millis(100), front.recall_preset(2)).await.is_err());

    rig.fake.inject.send(ACK_AND_DONE.to_vec()).unwrap();
    timeout(WAIT, first).await.unwrap().unwrap().unwrap();
    // Had the abandoned recall stayed queued, it would go before this one.
    front.recall_preset(3).await.unwrap();
    assert_eq!(rig.fake.commands(), vec![recall(2)], "preset 2 (memory 1) was never sent");
    assert!(front.is_online());
}

/// (b) The scene engine's way: `submit` now, drop the completion future
/// later (its deadline passed). Dropping it before the port task even read
/// the request, or after it queued it, both withdraw it.
#[tokio::test(start_paused = true)]
async fn dropped_submit_future_withdraws_the_request() {
    let mut rig = Rig::start(held_recall_0).await;
    let front = rig.front();
    let first = front.submit(recall_cmd(0)).await.unwrap();
    rig.fake.wait_for(&recall(0)).await;

    // Still in the port's channel when dropped (nothing has yielded to the port task).
    drop(front.submit(recall_cmd(1)).await.unwrap());
    // Queued in the link when dropped.
    let queued = front.submit(recall_cmd(2)).await.unwrap();
    let kept = front.submit(recall_cmd(3)).await.unwrap();
    tokio::task::yield_now().await;
    drop(queued);

    rig.fake.inject.send(ACK_AND_DONE.to_vec()).unwrap();
    timeout(WAIT, first).await.unwrap().unwrap();
    timeout(WAIT, kept).await.unwrap().unwrap();
    assert_eq!(rig.fake.commands(), vec![recall(3)], "only the request still wanted was sent");
}

/// Abandoned requests give their queue places back: a queue full of them
/// does not make the next caller busy.
#[tokio::test(start_paused = true)]
async fn abandoned_requests_free_their_places() {
    let mut rig = Rig::start(held_recall_0).await;
    let front = rig.front();
    let first = front.submit(recall_cmd(0)).await.unwrap();
    rig.fake.wait_for(&recall(0)).await;
    let abandoned: Vec<_> = {
        let mut v = Vec::new();
        for m in 1..=DEFAULT_QUEUE_CAPACITY as u8 {
            v.push(front.submit(recall_cmd(m)).await.unwrap());
        }
        v
    };
    tokio::task::yield_now().await;
    drop(abandoned);

    let next = front.submit(Command::Home).await.unwrap();
    rig.fake.inject.send(ACK_AND_DONE.to_vec()).unwrap();
    timeout(WAIT, first).await.unwrap().unwrap();
    timeout(WAIT, next).await.unwrap().expect("accepted, not busy");
    assert_eq!(rig.fake.commands(), vec![HOME.to_vec()]);
}

/// (c) The caller goes away while its request is on the wire and the
/// camera answers late: the request finishes, its result goes nowhere,
/// and the queue moves on.
#[tokio::test(start_paused = true)]
async fn request_on_the_wire_whose_caller_left_completes_without_wedging() {
    let mut rig = Rig::start(held_recall_0).await;
    let front = rig.front();
    assert!(timeout(Duration::from_millis(100), front.recall_preset(1)).await.is_err());
    rig.fake.wait_for(&recall(0)).await;

    let f = front.clone();
    let next = tokio::spawn(async move { f.recall_preset(2).await });
    tokio::task::yield_now().await;
    // The ACK comes within the ACK timeout: the camera runs the recall.
    rig.fake.inject.send(ACK_AND_DONE.to_vec()).unwrap();
    timeout(WAIT, next).await.unwrap().unwrap().unwrap();
    front.home().await.unwrap();
    assert_eq!(rig.fake.commands(), vec![recall(1), HOME.to_vec()]);
    assert!(front.is_online());
    assert_eq!(front.health().borrow().last_error, None);
}

/// (c) The caller goes away while its request is on the wire and the
/// camera never answers it: no resend (nobody wants it any more), no
/// offline flap from one missed ACK, and the next request goes.
#[tokio::test(start_paused = true)]
async fn request_on_the_wire_whose_caller_left_is_not_resent_and_does_not_wedge() {
    let mut rig = Rig::start(held_recall_0).await;
    let front = rig.front();
    let since = front.health().borrow().since;
    let t0 = Instant::now();
    assert!(timeout(Duration::from_millis(100), front.recall_preset(1)).await.is_err());

    // Queued behind it; goes once the abandoned one's ACK wait (200 ms) is over.
    front.recall_preset(2).await.unwrap();
    let waited = t0.elapsed();
    assert!(waited >= Duration::from_millis(200) && waited < Duration::from_millis(300), "{waited:?}");
    assert_eq!(rig.fake.commands(), vec![recall(0), recall(1)], "the abandoned recall was sent once, never again");
    let h = front.health().borrow().clone();
    assert!(h.online && h.since == since, "no offline flap: {h:?}");

    // Much later, still nothing more for it.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(rig.fake.commands().is_empty());
}
