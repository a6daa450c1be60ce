//! Camera link layer: a sans-IO link state machine per serial port
//! ([`link`]), the port actor that drives it over a real transport
//! ([`port`]), and the [`CameraHandle`] the rest of the daemon uses.

pub mod link;
