//! artnet-monitor: print the DMX levels studiod sends, without a lighting node.
//!
//!     artnet-monitor [LISTEN] [--reply-port PORT]   # default 127.0.0.1:6454, 6454
//!
//! Decodes ArtDmx by hand (`studiod_sim::monitor`, independent of the encoder
//! studiod uses) and prints a line whenever a universe's data changes
//! (keep-alives of unchanged data are counted, not printed). Answers ArtPoll
//! like a real node: to the poller's IP at `--reply-port` (6454). On the
//! same computer as studiod, which binds the Art-Net port itself, give
//! studiod `artnet_bind = "127.0.0.2:6454"`: two hosts on loopback.
#![deny(unsafe_code)]

use std::collections::HashMap;
use std::net::SocketAddr;

use studiod_sim::monitor::{ArtNetMonitor, NodeOptions, ReplyTo, ART_NET_PORT};

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, e);
    let mut listen = SocketAddr::from(([127, 0, 0, 1], ART_NET_PORT));
    let mut reply_port = ART_NET_PORT;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--reply-port" {
            let p = args.next().ok_or_else(|| invalid("--reply-port needs a port".into()))?;
            reply_port = p.parse().map_err(|e| invalid(format!("--reply-port {p}: {e}")))?;
        } else {
            listen = a.parse().map_err(|e| invalid(format!("{a}: {e}")))?;
        }
    }
    let mon = ArtNetMonitor::bind_with(listen, NodeOptions { reply_to: ReplyTo::Port(reply_port), ..NodeOptions::default() }).await?;
    println!("listening for ArtDmx on {}; answering ArtPoll to the poller's port {reply_port}", mon.local_addr()?);
    let mut last: HashMap<u16, (Vec<u8>, u64)> = HashMap::new();
    loop {
        let dmx = mon.next().await?;
        let entry = last.entry(dmx.port_address).or_insert_with(|| (Vec::new(), 0));
        if entry.0 == dmx.data {
            entry.1 += 1;
            continue;
        }
        let levels: Vec<String> = dmx.data.iter().enumerate().filter(|(_, &v)| v != 0).map(|(i, v)| format!("{}={}", i + 1, v)).collect();
        println!(
            "{} universe {:#06x} seq {:>3} (+{} unchanged) {}",
            dmx.from,
            dmx.port_address,
            dmx.sequence,
            entry.1,
            if levels.is_empty() { "all zero".to_string() } else { levels.join(" ") }
        );
        *entry = (dmx.data, 0);
    }
}
