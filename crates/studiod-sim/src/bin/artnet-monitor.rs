//! artnet-monitor: print the DMX levels studiod sends, without a lighting node.
//!
//!     artnet-monitor [LISTEN]        # default 127.0.0.1:6454
//!
//! Decodes ArtDmx by hand (`studiod_sim::monitor`, independent of the encoder
//! studiod uses) and prints a line whenever a universe's data changes
//! (keep-alives of unchanged data are counted, not printed).
#![deny(unsafe_code)]

use std::collections::HashMap;
use std::net::SocketAddr;

use studiod_sim::monitor::ArtNetMonitor;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::io::Result<()> {
    let listen: SocketAddr = match std::env::args().nth(1) {
        Some(a) => a.parse().map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        None => SocketAddr::from(([127, 0, 0, 1], 6454)),
    };
    let mon = ArtNetMonitor::bind(listen).await?;
    println!("listening for ArtDmx on {}", mon.local_addr()?);
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
