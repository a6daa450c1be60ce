//! Loopback monitors for what studiod sends: an Art-Net node that decodes
//! ArtDmx by hand (Art-Net 4, independently of the encoder studiod uses) and
//! answers ArtPoll as a real node does (to the poller's IP at port 6454, or
//! where told), an sACN receiver with its own E1.31 decoder, and an OSC
//! receiver. Used by the demo, the `artnet-monitor` tool and tests.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::sync::mpsc;

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

/// What the simulated node answers to ArtPoll.
pub const NODE_SHORT_NAME: &str = "sim-node";
pub const NODE_LONG_NAME: &str = "studiod-sim Art-Net node (loopback)";
/// VersInfo of the simulated node: firmware 1.7.
pub const NODE_FIRMWARE: u16 = 0x0107;

/// Is this an ArtPoll (OpCode 0x2000)? Art-Net 4: at least ID, OpCode,
/// ProtVer, Flags, DiagPriority (14 bytes).
pub fn is_artpoll(p: &[u8]) -> bool {
    p.len() >= 14 && &p[..8] == b"Art-Net\0" && u16::from_le_bytes([p[8], p[9]]) == 0x2000
}

/// An ArtPollReply (OpCode 0x2100), written field by field from the
/// Art-Net 4 spec: IP, Port 0x1936 (LE), VersInfo (BE), NetSwitch,
/// SubSwitch, Oem, Ubea, Status1, EstaMan, ShortName[18], LongName[64],
/// NodeReport[64], NumPorts (BE) = 1, PortTypes (port 1: DMX output 0x80),
/// GoodInput, GoodOutputA, SwIn, SwOut, … Style 0 (StNode); 239 bytes.
pub fn artpollreply(ip: [u8; 4], short_name: &str, long_name: &str, firmware: u16) -> Vec<u8> {
    artpollreply_for(ip, short_name, long_name, firmware, 0)
}

/// [`artpollreply`] for a node whose output port has `port_address`:
/// NetSwitch (7 bits) at 18, SubSwitch (4) at 19, SwOut of port 1 (4) at 190.
pub fn artpollreply_for(ip: [u8; 4], short_name: &str, long_name: &str, firmware: u16, port_address: u16) -> Vec<u8> {
    let mut p = vec![0u8; 239];
    p[..8].copy_from_slice(b"Art-Net\0");
    p[8] = 0x00;
    p[9] = 0x21;
    p[10..14].copy_from_slice(&ip);
    p[14] = 0x36;
    p[15] = 0x19;
    p[16] = (firmware >> 8) as u8;
    p[17] = firmware as u8;
    let put = |p: &mut [u8], at: usize, len: usize, text: &str| {
        let b = text.as_bytes();
        let n = b.len().min(len - 1);
        p[at..at + n].copy_from_slice(&b[..n]);
    };
    put(&mut p, 26, 18, short_name);
    put(&mut p, 44, 64, long_name);
    put(&mut p, 108, 64, "#0001 [0000] sim ok");
    p[18] = ((port_address >> 8) & 0x7F) as u8;
    p[19] = ((port_address >> 4) & 0x0F) as u8;
    p[173] = 1;
    p[174] = 0x80;
    p[182] = 0x80;
    p[190] = (port_address & 0x0F) as u8;
    p
}

/// The Art-Net port: a real node listens on it, replies from it, and sends
/// its ArtPollReply to the poller's IP at it.
pub const ART_NET_PORT: u16 = 6454;

/// Where the simulated node sends its ArtPollReply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyTo {
    /// As the Art-Net spec says and real nodes do: the poller's IP at this
    /// port (6454 on a real network), whatever port the poll came from.
    Port(u16),
    /// As many cheap nodes do: back to the poll's source address.
    Source,
    /// Nowhere yet: polls are counted, not answered. A simulated booth's node
    /// exists before the daemon has bound its Art-Net port, and a loopback
    /// test must not send to 127.0.0.1:6454.
    Unset,
}

/// How the simulated node answers ArtPoll.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeOptions {
    pub reply_to: ReplyTo,
    /// Send replies from a second socket bound here (port 0: any), like a
    /// node whose own Art-Net port is not the port it was sent to; `None`:
    /// from the socket that received the poll.
    pub reply_from: Option<SocketAddr>,
    /// The port-address its one DMX output port reports (NetSwitch,
    /// SubSwitch, SwOut).
    pub port_address: u16,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions { reply_to: ReplyTo::Port(ART_NET_PORT), reply_from: None, port_address: 0 }
    }
}

/// A simulated Art-Net node on loopback: receives ArtDmx (decoded by hand)
/// and answers each unicast ArtPoll with an ArtPollReply where
/// [`NodeOptions`] say (the poller's IP at port 6454 by default, as a real
/// node does), until told to go silent (and again when told to come back).
///
/// A reader task owns the socket (so polls are answered even when nobody
/// reads frames); it ends when the monitor is dropped.
pub struct ArtNetMonitor {
    addr: SocketAddr,
    reply_addr: SocketAddr,
    frames: tokio::sync::Mutex<mpsc::Receiver<ArtDmx>>,
    answering: Arc<AtomicBool>,
    polls: Arc<AtomicU64>,
    forward: Arc<Mutex<Option<SocketAddr>>>,
    reply_to: Arc<Mutex<ReplyTo>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ArtNetMonitor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ArtNetMonitor {
    /// Bind, e.g. on `127.0.0.1:0` for a free port; replies go to the
    /// poller's IP at port 6454, like a real node's.
    pub async fn bind(addr: SocketAddr) -> io::Result<ArtNetMonitor> {
        ArtNetMonitor::bind_with(addr, NodeOptions::default()).await
    }

    pub async fn bind_with(addr: SocketAddr, options: NodeOptions) -> io::Result<ArtNetMonitor> {
        let sock = Arc::new(UdpSocket::bind(addr).await?);
        let addr = sock.local_addr()?;
        let replier = match options.reply_from {
            Some(from) => Arc::new(UdpSocket::bind(from).await?),
            None => sock.clone(),
        };
        let reply_addr = replier.local_addr()?;
        let (tx, frames) = mpsc::channel(1024);
        let answering = Arc::new(AtomicBool::new(true));
        let polls = Arc::new(AtomicU64::new(0));
        let forward = Arc::new(Mutex::new(None::<SocketAddr>));
        let reply_to = Arc::new(Mutex::new(options.reply_to));
        let (a, n, f, r) = (answering.clone(), polls.clone(), forward.clone(), reply_to.clone());
        let ip = match addr.ip() {
            std::net::IpAddr::V4(v4) => v4.octets(),
            std::net::IpAddr::V6(_) => [0; 4],
        };
        let reply = artpollreply_for(ip, NODE_SHORT_NAME, NODE_LONG_NAME, NODE_FIRMWARE, options.port_address);
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            loop {
                let (len, from) = match sock.recv_from(&mut buf).await {
                    Ok(x) => x,
                    // ICMP errors from our own replies; keep listening.
                    Err(_) => continue,
                };
                let to = *f.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(to) = to {
                    // Best effort, like Art-Net itself: a missing receiver is not our problem.
                    let _ = sock.send_to(&buf[..len], to).await;
                }
                if is_artpoll(&buf[..len]) {
                    n.fetch_add(1, Ordering::Relaxed);
                    let dest = match *r.lock().unwrap_or_else(|e| e.into_inner()) {
                        ReplyTo::Port(port) => Some(SocketAddr::new(from.ip(), port)),
                        ReplyTo::Source => Some(from),
                        ReplyTo::Unset => None,
                    };
                    if let (true, Some(dest)) = (a.load(Ordering::Relaxed), dest) {
                        let _ = replier.send_to(&reply, dest).await;
                    }
                } else if let Some(d) = decode_artdmx(&buf[..len], from) {
                    // Nobody reading: drop the newest, like a full socket buffer.
                    let _ = tx.try_send(d);
                }
            }
        });
        Ok(ArtNetMonitor { addr, reply_addr, frames: tokio::sync::Mutex::new(frames), answering, polls, forward, reply_to, task })
    }

    /// Where ArtPollReplies go from now on (e.g. once the daemon has bound
    /// its Art-Net port and said which).
    pub fn set_reply_to(&self, to: ReplyTo) {
        *self.reply_to.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }

    /// The address the node's replies come from.
    pub fn reply_addr(&self) -> SocketAddr {
        self.reply_addr
    }

    /// Also copy every received packet, as received, to `to`.
    pub fn forward_to(self, to: Option<SocketAddr>) -> ArtNetMonitor {
        *self.forward.lock().unwrap_or_else(|e| e.into_inner()) = to;
        self
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    /// Answer ArtPoll (true, the default) or go silent (false): the node
    /// still takes ArtDmx, as a node whose network stack half-hangs.
    pub fn set_answering(&self, on: bool) {
        self.answering.store(on, Ordering::Relaxed);
    }

    /// ArtPolls received so far (answered or not).
    pub fn polls(&self) -> u64 {
        self.polls.load(Ordering::Relaxed)
    }

    /// The next ArtDmx packet (other Art-Net packets are skipped).
    pub async fn next(&self) -> io::Result<ArtDmx> {
        self.frames.lock().await.recv().await.ok_or_else(|| io::Error::new(io::ErrorKind::BrokenPipe, "Art-Net monitor stopped"))
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

/// One decoded sACN (E1.31) packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sacn {
    Data(SacnData),
    /// A universe synchronization packet (E1.31-2016).
    Sync {
        cid: [u8; 16],
        sequence: u8,
        sync_address: u16,
    },
}

/// One decoded sACN data packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SacnData {
    pub cid: [u8; 16],
    pub source_name: String,
    pub priority: u8,
    pub sync_address: u16,
    pub sequence: u8,
    /// Options byte: 0x40 stream terminated, 0x20 force sync, 0x80 preview.
    pub options: u8,
    pub universe: u16,
    pub start_code: u8,
    /// The DMX slots (after the START code).
    pub slots: Vec<u8>,
}

impl SacnData {
    pub fn terminated(&self) -> bool {
        self.options & 0x40 != 0
    }
}

fn be16(p: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([p[at], p[at + 1]])
}

fn be32(p: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
}

/// Decode an E1.31 packet, checking every fixed field and every PDU length
/// against the datagram's size (ANSI E1.31-2016 §4–§7); `None` for anything
/// malformed or not data/sync (e.g. universe discovery).
pub fn decode_sacn(p: &[u8]) -> Option<Sacn> {
    // Root layer: preamble 0x0010, postamble 0, ACN packet identifier.
    if p.len() < 38 || be16(p, 0) != 0x0010 || be16(p, 2) != 0 || &p[4..16] != b"ASC-E1.17\0\0\0" {
        return None;
    }
    let pdu_len = |at: usize| -> Option<usize> {
        let v = be16(p, at);
        (v >> 12 == 0x7).then_some(usize::from(v & 0x0FFF))
    };
    if pdu_len(16)? != p.len() - 16 {
        return None;
    }
    let mut cid = [0u8; 16];
    cid.copy_from_slice(&p[22..38]);
    match be32(p, 18) {
        0x0000_0004 => {
            // Data: framing layer (77 bytes) + DMP layer.
            if p.len() < 126 || pdu_len(38)? != p.len() - 38 || be32(p, 40) != 0x0000_0002 {
                return None;
            }
            let name = &p[44..108];
            let end = name.iter().position(|&b| b == 0)?; // must be NUL-terminated
            let source_name = String::from_utf8(name[..end].to_vec()).ok()?;
            if pdu_len(115)? != p.len() - 115 || p[117] != 0x02 || p[118] != 0xa1 || be16(p, 119) != 0 || be16(p, 121) != 1 {
                return None;
            }
            let count = usize::from(be16(p, 123));
            if count == 0 || 125 + count != p.len() {
                return None;
            }
            Some(Sacn::Data(SacnData {
                cid,
                source_name,
                priority: p[108],
                sync_address: be16(p, 109),
                sequence: p[111],
                options: p[112],
                universe: be16(p, 113),
                start_code: p[125],
                slots: p[126..].to_vec(),
            }))
        }
        0x0000_0008 => {
            if p.len() != 49 || pdu_len(38)? != 11 || be32(p, 40) != 0x0000_0001 {
                return None;
            }
            Some(Sacn::Sync { cid, sequence: p[44], sync_address: be16(p, 45) })
        }
        _ => None,
    }
}

/// A unicast sACN receiver on loopback with its own E1.31 decoder.
pub struct SacnMonitor {
    sock: UdpSocket,
}

impl SacnMonitor {
    pub async fn bind(addr: SocketAddr) -> io::Result<SacnMonitor> {
        Ok(SacnMonitor { sock: UdpSocket::bind(addr).await? })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    /// The next well-formed E1.31 packet, with its arrival instant
    /// (malformed datagrams are counted in `Err` only if the socket fails).
    pub async fn next(&self) -> io::Result<(Sacn, std::time::Instant)> {
        let mut buf = [0u8; 1500];
        loop {
            let (n, _) = self.sock.recv_from(&mut buf).await?;
            let at = std::time::Instant::now();
            if let Some(p) = decode_sacn(&buf[..n]) {
                return Ok((p, at));
            }
        }
    }

    /// The raw next datagram (for tests that check malformed-packet handling).
    pub async fn next_raw(&self) -> io::Result<Vec<u8>> {
        let mut buf = [0u8; 1500];
        let (n, _) = self.sock.recv_from(&mut buf).await?;
        Ok(buf[..n].to_vec())
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

    #[test]
    fn artpollreply_fields() {
        let r = artpollreply([127, 0, 0, 1], "n1", "Node one", 0x0107);
        assert_eq!(r.len(), 239);
        assert_eq!(&r[8..10], &[0x00, 0x21]);
        assert_eq!(&r[16..18], &[1, 7]);
        assert_eq!(&r[26..29], b"n1\0");
        assert_eq!(&r[44..53], b"Node one\0");
        assert!(is_artpoll(b"Art-Net\0\x00\x20\x00\x0e\x00\x00"));
        assert!(!is_artpoll(&r));
        let r = artpollreply_for([127, 0, 0, 1], "n1", "Node one", 0x0107, 0x0123);
        assert_eq!((r[18], r[19], r[190]), (0x01, 0x02, 0x03), "Net, Sub-Net, Universe");
    }

    #[test]
    fn sacn_decoder_checks_lengths_and_vectors() {
        // Built from the spec's Table 4-1, field by field.
        let mut p = vec![0u8; 126 + 2];
        p[0..2].copy_from_slice(&[0x00, 0x10]);
        p[4..16].copy_from_slice(b"ASC-E1.17\0\0\0");
        p[16..18].copy_from_slice(&(0x7000u16 | (128 - 16)).to_be_bytes());
        p[18..22].copy_from_slice(&[0, 0, 0, 4]);
        p[38..40].copy_from_slice(&(0x7000u16 | (128 - 38)).to_be_bytes());
        p[40..44].copy_from_slice(&[0, 0, 0, 2]);
        p[44..47].copy_from_slice(b"abc");
        p[108] = 100;
        p[111] = 5;
        p[113..115].copy_from_slice(&[0, 1]);
        p[115..117].copy_from_slice(&(0x7000u16 | (128 - 115)).to_be_bytes());
        p[117] = 2;
        p[118] = 0xa1;
        p[121..123].copy_from_slice(&[0, 1]);
        p[123..125].copy_from_slice(&[0, 3]);
        p[126..128].copy_from_slice(&[9, 8]);
        match decode_sacn(&p) {
            Some(Sacn::Data(d)) => {
                assert_eq!((d.source_name.as_str(), d.priority, d.sequence, d.universe, d.slots.clone()), ("abc", 100, 5, 1, vec![9, 8]))
            }
            other => panic!("{other:?}"),
        }
        let mut bad = p.clone();
        bad[16] = 0x72; // wrong root length
        assert!(decode_sacn(&bad).is_none());
        assert!(decode_sacn(&p[..127]).is_none());
    }
}
