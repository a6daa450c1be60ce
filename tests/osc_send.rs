//! OscSender over real UDP on 127.0.0.1: the exact bytes on the wire,
//! checked against hand-written OSC 1.0 encodings (not against rosc).

use std::time::Duration;

use studiod::config::model::OscTarget;
use studiod::osc::{OscArg, OscError, OscMessage, OscSender};
use tokio::net::UdpSocket;

async fn listener() -> (UdpSocket, OscTarget) {
    let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let target = OscTarget { name: "console".into(), target: sock.local_addr().unwrap() };
    (sock, target)
}

async fn recv(sock: &UdpSocket) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_secs(5), sock.recv_from(&mut buf)).await.expect("no OSC packet within 5 s").unwrap();
    buf[..n].to_vec()
}

fn cue() -> OscMessage {
    OscMessage {
        address: "/scene/go".into(),
        args: vec![OscArg::Int(-2), OscArg::Float(0.5), OscArg::String("flash".into()), OscArg::Bool(true), OscArg::Bool(false)],
    }
}

/// OSC 1.0: address and type-tag string NUL-terminated and padded to 4;
/// int32 and float32 big-endian; T/F carry no data.
fn cue_bytes() -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(b"/scene/go\0\0\0"); // 9 chars + 3 NUL = 12
    b.extend_from_slice(b",ifsTF\0\0"); // 6 chars + 2 NUL = 8
    b.extend_from_slice(&(-2i32).to_be_bytes());
    b.extend_from_slice(&0.5f32.to_be_bytes()); // 0x3F000000
    b.extend_from_slice(b"flash\0\0\0"); // 5 chars + 3 NUL = 8
    b
}

#[tokio::test]
async fn message_bytes_on_the_wire() {
    let (sock, target) = listener().await;
    let sender = OscSender::bind(&[target]).await.unwrap();
    sender.send("console", &cue()).await.unwrap();
    let got = recv(&sock).await;
    assert_eq!(got, cue_bytes());
    assert_eq!(&got[24..28], &[0x3F, 0, 0, 0]);
}

#[tokio::test]
async fn bundle_bytes_on_the_wire() {
    let (sock, target) = listener().await;
    let sender = OscSender::bind(&[target]).await.unwrap();
    let second = OscMessage { address: "/x".into(), args: vec![] };
    sender.send_bundle("console", &[cue(), second]).await.unwrap();
    let got = recv(&sock).await;

    let mut want = Vec::new();
    want.extend_from_slice(b"#bundle\0");
    want.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]); // timetag: immediately
    let first = cue_bytes();
    want.extend_from_slice(&(first.len() as i32).to_be_bytes());
    want.extend_from_slice(&first);
    let second = b"/x\0\0,\0\0\0"; // address, then an empty type-tag string ","
    want.extend_from_slice(&(second.len() as i32).to_be_bytes());
    want.extend_from_slice(second);
    assert_eq!(got, want);
}

#[tokio::test]
async fn errors_are_returned() {
    let (_sock, target) = listener().await;
    let sender = OscSender::bind(&[target]).await.unwrap();
    assert!(matches!(sender.send("nope", &cue()).await, Err(OscError::UnknownTarget(_))));
    let bad = OscMessage { address: "no-slash".into(), args: vec![] };
    assert!(matches!(sender.send("console", &bad).await, Err(OscError::InvalidAddress(_))));
}
