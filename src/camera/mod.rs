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
//!
//! Requests are bounded end to end: a bounded channel per port, then a
//! bounded queue per camera ([`LinkOptions::queue_capacity`]); a request
//! that does not fit is refused at once as [`CameraError::Busy`]. Dropping
//! a request's future withdraws it: if it has not gone on the wire, nothing
//! is ever sent for it.

mod error;
mod handle;
pub mod ip;
pub mod link;
pub mod link_ip;
pub mod port;
pub mod profile;

pub use error::{AxisName, BadAnswer, CameraError, Failure, InvalidRequest, LinkDown, PortIoError, Waited};
#[cfg(test)]
pub(crate) use handle::Msg;
pub use handle::{CameraHandle, Health, Position};
pub use ip::{TcpOpener, UdpOpener};
pub use link::{LinkOptions, DEFAULT_QUEUE_CAPACITY};
pub use link_ip::UdpOptions;
pub use port::{spawn_camera_ports, spawn_port, spawn_serial_ports, Opener, Port, PortOptions, SerialOpener, SpawnError};
pub use profile::{CameraUrl, IpForm};
