//! A camera profile's scale is what reaches the wire: the Sony SRG-300H (and SRG-X family)
//! profile, driven through the real serial opener and camera link to the
//! independent simulator (its own VISCA parser), puts the manual's position
//! values on the line for the angles asked (issue: 14.4 instead of 51.2
//! units/degree once sent every move to ~28 % of its angle, silently).

mod support;

use std::time::Duration;

use studiod::camera::{spawn_serial_ports, PortOptions};
use studiod::config::model::Camera;
use studiod_sim::{ChainOptions, VirtualChain};
use tokio_util::sync::CancellationToken;

/// The position nibbles of an absolute pan/tilt command (`8x 01 06 02 VV WW
/// 0p 0p 0p 0p 0t 0t 0t 0t FF`), decoded here by hand.
fn absolute_position(packet: &[u8]) -> Option<(i16, i16)> {
    if packet.len() != 15 || packet[1..4] != [0x01, 0x06, 0x02] {
        return None;
    }
    let word = |b: &[u8]| b.iter().fold(0u16, |acc, n| (acc << 4) | u16::from(n & 0x0F)) as i16;
    Some((word(&packet[6..10]), word(&packet[10..14])))
}

#[tokio::test]
async fn srg_300h_moves_to_the_documented_positions() {
    moves_to_the_documented_positions("sony-srg-300h", (0x18, 0x17)).await;
}

/// The SRG-X400 family (SRG-X400, BRC-X400, SRG-X120, SRG-X40UH) publishes the
/// same Pan/Tilt Position table as the SRG-300H (pan DE00-2200 = +-170 deg,
/// tilt FC00-1200 = -20..+90 deg, IMG Flip off) in its command lists, and
/// documents the absolute command's speed bytes as `vv 00`.
#[tokio::test]
async fn srg_x_family_moves_to_the_documented_positions() {
    for id in ["sony-srg-x400", "sony-brc-x400", "sony-srg-x120", "sony-srg-x40uh"] {
        moves_to_the_documented_positions(id, (0x18, 0x00)).await;
    }
}

async fn moves_to_the_documented_positions(profile: &str, speeds: (u8, u8)) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ttyVISCA0");
    // The mechanical limits, per the manuals (pan DE00–2200, tilt FC00–1200).
    let opts = ChainOptions { instant_moves: true, pan_limits: (-0x2200, 0x2200), tilt_limits: (-0x0400, 0x1200), ..Default::default() };
    let chain = VirtualChain::spawn(&path, 1, opts).unwrap();
    let cancel = CancellationToken::new();
    let cam =
        Camera { name: "front".into(), profile: support::camera_profile(profile), port: path.clone(), baud: 9600, address: 1, url: None };
    let ports = spawn_serial_ports(&[cam], PortOptions::default(), cancel.clone()).unwrap();
    let front = ports[0].handles()[0].clone();
    support::wait_watch(&mut front.health(), Duration::from_secs(5), "front online", |h| h.online).await;

    for (pan, tilt, want) in [(170.0, 90.0, (0x2200, 0x1200)), (-170.0, -20.0, (-0x2200, -0x0400)), (45.0, 10.0, (0x0900, 0x0200))] {
        front.move_absolute(pan, tilt, None).await.unwrap_or_else(|e| panic!("move to {pan}°/{tilt}°: {e}"));
        let sent = chain.packets(1).iter().rev().find_map(|p| absolute_position(p)).expect("an absolute move on the wire");
        assert_eq!(sent, want, "{profile}: {pan}°/{tilt}° on the wire (simulator's view)");
        let packet = chain.packets(1).into_iter().rev().find(|p| absolute_position(p).is_some()).unwrap();
        assert_eq!((packet[4], packet[5]), speeds, "{profile}: the speed bytes its command list prescribes");
        let st = chain.camera_state(1);
        assert_eq!((st.pan, st.tilt), (i32::from(want.0), i32::from(want.1)), "{profile}: the camera ends where the manual says");
    }
    cancel.cancel();
    chain.shutdown().await;
}
