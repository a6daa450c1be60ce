//! OSC cues to consoles and media servers, over UDP (rosc).

use std::net::SocketAddr;

mod sender;

pub use sender::{encode_bundle, encode_message, OscError, OscSender};

/// One OSC argument as a scene can write it.
#[derive(Debug, Clone, PartialEq)]
pub enum OscArg {
    Int(i32),
    Float(f32),
    String(String),
    Bool(bool),
}

/// One OSC message: address pattern and arguments.
#[derive(Debug, Clone, PartialEq)]
pub struct OscMessage {
    pub address: String,
    pub args: Vec<OscArg>,
}

/// A configured OSC peer: a name scenes use and its UDP address.
#[derive(Debug, Clone, PartialEq)]
pub struct OscTarget {
    pub name: String,
    pub target: SocketAddr,
}
