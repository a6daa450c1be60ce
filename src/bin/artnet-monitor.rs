//! artnet-monitor: print the DMX levels studiod sends, without a lighting node.
//!
//!     artnet-monitor [LISTEN]        # default 127.0.0.1:6454
//!
//! Decodes ArtDmx by hand (Art-Net 4), independently of the encoder studiod
//! uses, and prints a line whenever a universe's data changes (keep-alives
//! of unchanged data are counted, not printed).
#![deny(unsafe_code)]

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};

struct ArtDmx<'a> {
    sequence: u8,
    port_address: u16,
    data: &'a [u8],
}

/// `None` for anything that is not a well-formed ArtDmx (ArtSync, ArtPoll, …).
fn decode(p: &[u8]) -> Option<ArtDmx<'_>> {
    if p.len() < 18 || &p[..8] != b"Art-Net\0" || u16::from_le_bytes([p[8], p[9]]) != 0x5000 {
        return None;
    }
    let length = usize::from(u16::from_be_bytes([p[16], p[17]]));
    let data = p.get(18..18 + length)?;
    Some(ArtDmx {
        sequence: p[12],
        port_address: u16::from(p[15] & 0x7F) << 8 | u16::from(p[14]),
        data,
    })
}

fn main() -> std::io::Result<()> {
    let listen: SocketAddr = match std::env::args().nth(1) {
        Some(a) => a
            .parse()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        None => SocketAddr::from(([127, 0, 0, 1], 6454)),
    };
    let sock = UdpSocket::bind(listen)?;
    println!("listening for ArtDmx on {}", sock.local_addr()?);
    let mut last: HashMap<u16, (Vec<u8>, u64)> = HashMap::new();
    let mut buf = [0u8; 1024];
    loop {
        let (n, from) = sock.recv_from(&mut buf)?;
        let Some(dmx) = decode(&buf[..n]) else {
            continue;
        };
        let entry = last
            .entry(dmx.port_address)
            .or_insert_with(|| (Vec::new(), 0));
        if entry.0 == dmx.data {
            entry.1 += 1;
            continue;
        }
        let levels: Vec<String> = dmx
            .data
            .iter()
            .enumerate()
            .filter(|(_, &v)| v != 0)
            .map(|(i, v)| format!("{}={}", i + 1, v))
            .collect();
        println!(
            "{from} universe {:#06x} seq {:>3} (+{} unchanged) {}",
            dmx.port_address,
            dmx.sequence,
            entry.1,
            if levels.is_empty() {
                "all zero".to_string()
            } else {
                levels.join(" ")
            }
        );
        *entry = (dmx.data.to_vec(), 0);
    }
}
