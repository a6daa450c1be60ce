//! Loopback monitors for what studiod sends: an Art-Net receiver that decodes
//! ArtDmx by hand (Art-Net 4, independently of the encoder studiod uses) and
//! an OSC receiver. Used by the demo, the `artnet-monitor` tool and tests.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::UdpSocket;

/// One decoded ArtDmx packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtDmx {
    pub from: SocketAddr,
    pub sequence: u8,
    pub physical: u8,
    /// 15-bit port-address: Net (7 bits) : Sub-Net (4) : Universe (4).
    pub port_address: u16,
    pub data: Vec<u8>,
}

/// Decode an ArtDmx packet; `None` for anything else (ArtSync, ArtPoll, junk).
///
/// Layout (Art-Net 4): "Art-Net\0", OpCode 0x5000 little-endian, ProtVer 14
/// big-endian, Sequence, Physical, SubUni, Net, Length big-endian (2–512, even), data.
pub fn decode_artdmx(p: &[u8], from: SocketAddr) -> Option<ArtDmx> {
    if p.len() < 18 || &p[..8] != b"Art-Net\0" || u16::from_le_bytes([p[8], p[9]]) != 0x5000 {
        return None;
    }
    if u16::from_be_bytes([p[10], p[11]]) < 14 {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([p[16], p[17]]));
    let data = p.get(18..18 + length)?;
    Some(ArtDmx {
        from,
        sequence: p[12],
        physical: p[13],
        port_address: (u16::from(p[15] & 0x7F) << 8) | u16::from(p[14]),
        data: data.to_vec(),
    })
}

/// A UDP receiver on loopback that yields ArtDmx packets.
pub struct ArtNetMonitor {
    sock: UdpSocket,
    /// Every packet received is also copied here, unchanged (the demo's
    /// `--artnet-copy`, so an outside tool sees the wire bytes).
    forward: Option<SocketAddr>,
}

impl ArtNetMonitor {
    /// Bind, e.g. on `127.0.0.1:0` for a free port.
    pub async fn bind(addr: SocketAddr) -> io::Result<ArtNetMonitor> {
        Ok(ArtNetMonitor { sock: UdpSocket::bind(addr).await?, forward: None })
    }

    /// Also copy every received packet, as received, to `to`.
    pub fn forward_to(mut self, to: Option<SocketAddr>) -> ArtNetMonitor {
        self.forward = to;
        self
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The next ArtDmx packet (other Art-Net packets are skipped).
    pub async fn next(&self) -> io::Result<ArtDmx> {
        let mut buf = [0u8; 1024];
        loop {
            let (n, from) = self.sock.recv_from(&mut buf).await?;
            if let Some(to) = self.forward {
                // Best effort, like Art-Net itself: a missing receiver is not our problem.
                let _ = self.sock.send_to(&buf[..n], to).await;
            }
            if let Some(d) = decode_artdmx(&buf[..n], from) {
                return Ok(d);
            }
        }
    }

    /// The first packet for which `pred` holds, or `None` after `limit`.
    pub async fn wait_for(&self, limit: Duration, mut pred: impl FnMut(&ArtDmx) -> bool) -> Option<ArtDmx> {
        tokio::time::timeout(limit, async {
            loop {
                match self.next().await {
                    Ok(d) if pred(&d) => return Some(d),
                    Ok(_) => {}
                    Err(_) => return None,
                }
            }
        })
        .await
        .ok()
        .flatten()
    }
}

/// A UDP receiver on loopback that yields OSC packets.
pub struct OscMonitor {
    sock: UdpSocket,
}

impl OscMonitor {
    pub async fn bind(addr: SocketAddr) -> io::Result<OscMonitor> {
        Ok(OscMonitor { sock: UdpSocket::bind(addr).await? })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The next well-formed OSC packet.
    pub async fn next(&self) -> io::Result<rosc::OscPacket> {
        let mut buf = [0u8; 65536];
        loop {
            let (n, _) = self.sock.recv_from(&mut buf).await?;
            if let Ok((_, p)) = rosc::decoder::decode_udp(&buf[..n]) {
                return Ok(p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_port_address_and_data() {
        let mut p = b"Art-Net\0".to_vec();
        p.extend_from_slice(&[0x00, 0x50, 0, 14, 7, 0, 0x34, 0x12, 0, 2, 9, 8]);
        let d = decode_artdmx(&p, "127.0.0.1:1".parse().unwrap()).unwrap();
        assert_eq!((d.sequence, d.port_address, d.data), (7, 0x1234, vec![9, 8]));
        assert!(decode_artdmx(&p[..17], "127.0.0.1:1".parse().unwrap()).is_none());
    }
}
