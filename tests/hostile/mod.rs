//! Raw-socket attackers for the HTTP tests on a hostile network (issue #15),
//! shared by `http_hostile.rs` (fake engine) and `http_booth.rs` (real
//! daemon). Attackers use many source addresses: all of 127.0.0.0/8 is loopback.
#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};

pub fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A raw socket to the server from `from`.
pub async fn raw(server: SocketAddr, from: IpAddr) -> TcpStream {
    let s = TcpSocket::new_v4().unwrap();
    s.bind(SocketAddr::new(from, 0)).unwrap();
    s.connect(server).await.unwrap()
}

/// Tests hold thousands of sockets (both ends in this process): make sure the
/// soft open-file limit allows it, raising it to the hard limit if needed.
pub fn enough_files(n: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < n {
        assert!(hard >= n, "this test needs {n} open files; the hard limit is {hard}");
        setrlimit(Resource::RLIMIT_NOFILE, n, hard).unwrap();
    }
}

/// `n` sockets from 40 addresses `127.0.<subnet>.1–40`, a third each silent,
/// with half a request head, or with a head and the start of a body that
/// never comes. Held open until dropped.
pub async fn idle_and_slow_sockets(server: SocketAddr, n: usize, subnet: u8) -> Vec<TcpStream> {
    let mut held = Vec::with_capacity(n);
    for i in 0..n {
        let mut s = raw(server, ip(&format!("127.0.{subnet}.{}", 1 + i % 40))).await;
        match i % 3 {
            0 => {}
            1 => s.write_all(b"GET /api/state HTTP/1.1\r\nHost: booth\r\n").await.unwrap(),
            _ => s
                .write_all(
                    b"POST /api/commands HTTP/1.1\r\nHost: booth\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{\"act",
                )
                .await
                .unwrap(),
        }
        held.push(s);
    }
    held
}
