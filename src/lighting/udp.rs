//! The one UDP socket per output target that the sACN sender sends through,
//! and the Art-Net sender too while its Art-Net port cannot be bound:
//! opened the same way, sent on the same way.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use tokio::net::UdpSocket;
use tokio::time::Duration;

#[derive(Debug)]
pub(crate) struct TargetSocket {
    pub target: SocketAddr,
    socket: UdpSocket,
    /// Only a connected UDP socket hears about an ICMP port unreachable (the
    /// next send fails with ECONNREFUSED), so a closed port shows up in the
    /// send errors instead of vanishing.
    connected: bool,
}

impl TargetSocket {
    /// An ephemeral socket for `target`: on loopback for a loopback target
    /// (tests, demo), else on all interfaces of its address family. Never
    /// broadcast.
    pub async fn open(target: SocketAddr) -> io::Result<TargetSocket> {
        let local: SocketAddr = match (target.is_ipv4(), target.ip().is_loopback()) {
            (true, true) => (Ipv4Addr::LOCALHOST, 0).into(),
            (true, false) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            (false, true) => (Ipv6Addr::LOCALHOST, 0).into(),
            (false, false) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await?;
        // A target the kernel will not connect to (e.g. port 0) is still sent
        // to unconnected; its sends then fail and are counted like any other.
        let connected = socket.connect(target).await.is_ok();
        // tokio's try_send only sends once the reactor has seen the socket
        // writable; without this the very first frame is dropped as WouldBlock.
        let _ = tokio::time::timeout(Duration::from_millis(100), socket.writable()).await;
        Ok(TargetSocket { target, socket, connected })
    }

    pub fn try_send(&self, packet: &[u8]) -> io::Result<usize> {
        if self.connected {
            self.socket.try_send(packet)
        } else {
            self.socket.try_send_to(packet, self.target)
        }
    }

    /// A datagram waiting on the socket, and who sent it.
    pub fn try_recv(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        if self.connected {
            self.socket.try_recv(buf).map(|n| (n, self.target))
        } else {
            self.socket.try_recv_from(buf)
        }
    }
}
