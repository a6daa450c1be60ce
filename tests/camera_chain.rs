//! Issue acceptance: a daisy chain of 3 virtual VISCA cameras on one pty,
//! driven through the real serial opener (tokio-serial) and camera link.
//! The simulator (`studiod_sim`) parses bytes on its own, independently of
//! `studiod::visca`, so these tests check the codec from outside.

mod support;

use std::time::{Duration, Instant};

use studiod::camera::{spawn_serial_ports, CameraError, CameraHandle, PortOptions};
use studiod_sim::{ChainOptions, Fault, VirtualChain};
use tokio_util::sync::CancellationToken;

struct Rig {
    _dir: tempfile::TempDir,
    chain: VirtualChain,
    cams: Vec<CameraHandle>,
    cancel: CancellationToken,
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

async fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ttyVISCA0");
    // Moves ten times faster than the EVI-D70-like default, to keep tests short.
    let chain = VirtualChain::spawn(&path, 3, ChainOptions { move_time_scale: 0.1, ..Default::default() }).unwrap();
    let cancel = CancellationToken::new();
    let ports = spawn_serial_ports(&support::chain_cameras(&path, 3), PortOptions::default(), cancel.clone()).unwrap();
    assert_eq!(ports.len(), 1, "three cameras share one port");
    let cams = ports[0].handles().to_vec();
    for c in &cams {
        support::wait_watch(&mut c.health(), Duration::from_secs(5), &format!("{} online", c.name()), |h| h.online).await;
    }
    Rig { _dir: dir, chain, cams, cancel }
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol
}

#[tokio::test]
async fn preset_recall_completes_on_all_three() {
    let r = rig().await;
    // Store preset 3 at a distinct framing on each camera, move away, recall.
    for (i, c) in r.cams.iter().enumerate() {
        c.move_absolute(10.0 * (i as f64 + 1.0), 5.0, None).await.unwrap();
        c.store_preset(3).await.unwrap();
        c.home().await.unwrap();
    }
    let results = futures::future::join_all(r.cams.iter().map(|c| c.recall_preset(3))).await;
    for (i, res) in results.into_iter().enumerate() {
        res.unwrap_or_else(|e| panic!("cam{} recall: {e}", i + 1));
        let st = r.chain.camera_state(i + 1);
        assert_eq!(st.presets_recalled, 1, "cam{} recalled once", i + 1);
        let pos = r.cams[i].position().await.unwrap();
        assert!(close(pos.pan_deg, 10.0 * (i as f64 + 1.0), 0.1) && close(pos.tilt_deg, 5.0, 0.1), "cam{}: {pos:?}", i + 1);
    }
}

#[tokio::test]
async fn absolute_move_reaches_its_position() {
    let r = rig().await;
    let cam = &r.cams[1];
    cam.move_absolute(-45.0, 20.0, Some(4.0)).await.unwrap();
    let pos = cam.position().await.unwrap();
    assert!(close(pos.pan_deg, -45.0, 0.1), "{pos:?}");
    assert!(close(pos.tilt_deg, 20.0, 0.1), "{pos:?}");
    assert!(close(pos.zoom, 4.0, 0.05), "{pos:?}");
    // And the simulator agrees, in VISCA units (generic-visca: 14.4 units/°).
    let st = r.chain.camera_state(2);
    assert_eq!((st.pan, st.tilt), (-648, 288));
}

#[tokio::test]
async fn silent_camera_goes_offline_within_2s_and_the_others_keep_working() {
    let r = rig().await;
    r.chain.set_fault(2, Fault::Silent);
    let t0 = Instant::now();
    let mut health = r.cams[1].health();
    // Meanwhile, the others answer commands.
    let others = async {
        for _ in 0..3 {
            r.cams[0].move_absolute(5.0, 0.0, None).await.unwrap();
            r.cams[2].recall_preset(1).await.unwrap();
            r.cams[0].home().await.unwrap();
        }
    };
    let (h, ()) = tokio::join!(support::wait_watch(&mut health, Duration::from_secs(2), "cam2 offline", |h| !h.online), others);
    assert!(t0.elapsed() <= Duration::from_secs(2));
    assert!(h.reason.as_deref().unwrap_or_default().contains("no "), "reason names the timeout: {h:?}");
    let err = r.cams[1].recall_preset(1).await.unwrap_err();
    assert!(matches!(err, CameraError::Offline { .. } | CameraError::Link(_)), "{err}");
    assert!(r.cams[0].is_online() && r.cams[2].is_online());
    // It comes back when it answers again.
    r.chain.set_fault(2, Fault::None);
    support::wait_watch(&mut r.cams[1].health(), Duration::from_secs(5), "cam2 back", |h| h.online).await;
}

#[tokio::test]
async fn garbage_on_the_line_is_survived() {
    let r = rig().await;
    r.chain.set_fault(1, Fault::Garbage);
    for i in 0..5 {
        r.chain.inject_garbage(&[0x00, 0x13, 0x7f, 0x90, 0x41, 0xff, 0x22]);
        r.cams[0].move_absolute(i as f64, 0.0, None).await.unwrap();
        r.cams[2].store_preset(2).await.unwrap();
        let pos = r.cams[0].position().await.unwrap();
        assert!(close(pos.pan_deg, i as f64, 0.1), "{pos:?}");
    }
    assert!(r.cams.iter().all(|c| c.is_online()));
}

#[tokio::test]
async fn error_reply_is_a_refusal_and_is_not_retried() {
    let r = rig().await;
    r.chain.set_fault(3, Fault::ErrorReply(0x41));
    let before = r.chain.packets(3).len();
    let err = r.cams[2].recall_preset(5).await.unwrap_err();
    assert!(matches!(err, CameraError::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains("not executable"), "{err}");
    let recalls: Vec<_> =
        r.chain.packets(3)[before..].iter().filter(|p| p.len() >= 5 && p[1..5] == [0x01, 0x04, 0x3f, 0x02]).cloned().collect();
    assert_eq!(recalls.len(), 1, "the refused recall was sent exactly once: {recalls:02x?}");
}

#[tokio::test]
async fn unplugged_port_comes_back_at_the_same_path() {
    let r = rig().await;
    r.chain.unplug().await;
    for c in &r.cams {
        support::wait_watch(&mut c.health(), Duration::from_secs(3), "offline after unplug", |h| !h.online).await;
    }
    r.chain.replug().await.unwrap();
    for c in &r.cams {
        support::wait_watch(&mut c.health(), Duration::from_secs(10), "online after replug", |h| h.online).await;
    }
    // Re-addressed chain: every camera answers again, without restarting anything.
    for (i, c) in r.cams.iter().enumerate() {
        c.move_absolute(3.0 * i as f64, 1.0, None).await.unwrap();
        assert_eq!(r.chain.camera_state(i + 1).address, Some(i as u8 + 1));
    }
}

/// Issue #14 item 5, against the independent simulator: a caller that gives
/// up while its recall waits in the queue withdraws it, and the camera never
/// recalls that preset later.
#[tokio::test]
async fn abandoned_recall_is_never_sent_to_the_camera() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ttyVISCA0");
    let chain = VirtualChain::spawn(&path, 1, ChainOptions { instant_moves: true, ..Default::default() }).unwrap();
    let mut cams = support::chain_cameras(&path, 1);
    // A slow ACK (2 s) that the link waits for without resending, so the
    // next request surely waits in the queue while its caller gives up.
    cams[0].profile.timing.ack = Duration::from_secs(5);
    let cancel = CancellationToken::new();
    let _stop = cancel.clone().drop_guard();
    let ports = spawn_serial_ports(&cams, PortOptions::default(), cancel.clone()).unwrap();
    let cam = ports[0].handles()[0].clone();
    support::wait_watch(&mut cam.health(), Duration::from_secs(5), "cam1 online", |h| h.online).await;

    chain.set_fault(1, Fault::SlowAck(Duration::from_secs(2)));
    let first =
        cam.submit(studiod::visca::ViscaCommand::Memory { op: studiod::visca::MemoryOp::Recall, memory: cam.memory_byte(1).unwrap() });
    let first = first.await.unwrap();
    let gave_up = tokio::time::timeout(Duration::from_millis(200), cam.recall_preset(2)).await;
    assert!(gave_up.is_err(), "still queued behind the slow recall: {gave_up:?}");
    first.await.unwrap();
    chain.set_fault(1, Fault::None);
    cam.recall_preset(3).await.unwrap();

    let abandoned = cam.memory_byte(2).unwrap();
    let recalls: Vec<u8> = chain.packets(1).iter().filter(|p| p.len() == 7 && p[1..5] == [0x01, 0x04, 0x3F, 0x02]).map(|p| p[5]).collect();
    assert_eq!(recalls, vec![cam.memory_byte(1).unwrap(), cam.memory_byte(3).unwrap()], "memory {abandoned} never recalled");
    assert_eq!(chain.camera_state(1).presets_recalled, 2);
}
