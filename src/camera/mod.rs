//! Camera link layer: a sans-IO link state machine per serial port
//! ([`link`]), the port actor that drives it over a real transport
//! ([`port`]), and the [`CameraHandle`] the rest of the daemon uses.
//!
//! ```ignore
//! let cancel = CancellationToken::new();
//! let ports = camera::spawn_serial_ports(&config.cameras, PortOptions::default(), cancel.clone())?;
//! let front = ports.iter().find_map(|p| p.handle("front")).unwrap();
//! front.recall_preset(3).await?;
//! let mut health = front.health();   // watch::Receiver<Health>
//! ```

mod handle;
pub mod link;
pub mod port;
pub mod profile;

pub use handle::{CameraError, CameraHandle, Health, Position};
pub use link::{Failure, LinkOptions};
pub use port::{spawn_port, spawn_serial_ports, Opener, Port, PortOptions, SerialOpener, SpawnError};
