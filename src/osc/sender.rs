//! [`OscSender`]: encodes with rosc and sends to named `[[osc]]` targets.

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use rosc::{OscBundle, OscPacket, OscTime, OscType};
use tokio::net::UdpSocket;

use super::OscTarget;
use super::{OscArg, OscMessage};

/// OSC 1.0 timetag "immediately": seconds 0, fraction 1.
const IMMEDIATELY: OscTime = OscTime { seconds: 0, fractional: 1 };

#[derive(Debug, thiserror::Error)]
pub enum OscError {
    #[error("unknown OSC target {0:?}")]
    UnknownTarget(String),
    #[error("OSC address {0:?} must start with '/' and contain no NUL or spaces")]
    InvalidAddress(String),
    #[error("OSC string argument contains a NUL byte")]
    NulInString,
    #[error("an OSC bundle needs at least one message")]
    EmptyBundle,
    #[error("OSC encoding failed: {0}")]
    Encode(String),
    #[error("binding the OSC socket: {0}")]
    Bind(#[source] io::Error),
    #[error("sending OSC to {target}: {source}")]
    Send { target: SocketAddr, source: io::Error },
}

fn to_rosc(msg: &OscMessage) -> Result<rosc::OscMessage, OscError> {
    // rosc writes whatever it is given; a NUL would truncate the string on
    // the receiver and shift every following argument, so refuse it here.
    let a = &msg.address;
    if !a.starts_with('/') || a.contains('\0') || a.contains(' ') {
        return Err(OscError::InvalidAddress(a.clone()));
    }
    let args = msg
        .args
        .iter()
        .map(|arg| match arg {
            OscArg::Int(i) => Ok(OscType::Int(*i)),
            OscArg::Float(f) => Ok(OscType::Float(*f)),
            OscArg::String(s) if s.contains('\0') => Err(OscError::NulInString),
            OscArg::String(s) => Ok(OscType::String(s.clone())),
            // rosc encodes Bool as the argument-less type tags T / F.
            OscArg::Bool(b) => Ok(OscType::Bool(*b)),
        })
        .collect::<Result<_, _>>()?;
    Ok(rosc::OscMessage { addr: a.clone(), args })
}

/// Encode one message.
pub fn encode_message(msg: &OscMessage) -> Result<Vec<u8>, OscError> {
    rosc::encoder::encode(&OscPacket::Message(to_rosc(msg)?)).map_err(|e| OscError::Encode(e.to_string()))
}

/// Encode several messages as one bundle with the "immediately" timetag, so
/// the receiver applies them together.
pub fn encode_bundle(msgs: &[OscMessage]) -> Result<Vec<u8>, OscError> {
    if msgs.is_empty() {
        return Err(OscError::EmptyBundle);
    }
    let content = msgs.iter().map(|m| to_rosc(m).map(OscPacket::Message)).collect::<Result<_, _>>()?;
    rosc::encoder::encode(&OscPacket::Bundle(OscBundle { timetag: IMMEDIATELY, content })).map_err(|e| OscError::Encode(e.to_string()))
}

/// One UDP socket sending OSC to the configured targets by name.
///
/// Shared by reference (`Arc<OscSender>`): sending needs only `&self`.
#[derive(Debug)]
pub struct OscSender {
    socket: UdpSocket,
    targets: HashMap<String, SocketAddr>,
}

impl OscSender {
    /// Bind one ephemeral port: 127.0.0.1 when every target is loopback,
    /// else all interfaces; IPv6 when any target is IPv6 (v4 targets are then
    /// reached through v4-mapped addresses on the dual-stack socket).
    pub async fn bind(targets: &[OscTarget]) -> Result<OscSender, OscError> {
        let any_v6 = targets.iter().any(|t| t.target.is_ipv6());
        let all_loopback = targets.iter().all(|t| t.target.ip().is_loopback());
        let local: SocketAddr = match (any_v6, all_loopback) {
            (false, true) => (Ipv4Addr::LOCALHOST, 0).into(),
            (false, false) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            (true, _) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(local).await.map_err(OscError::Bind)?;
        let targets = targets
            .iter()
            .map(|t| {
                let addr = match (any_v6, t.target) {
                    (true, SocketAddr::V4(v4)) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
                    (_, a) => a,
                };
                (t.name.clone(), addr)
            })
            .collect();
        Ok(OscSender { socket, targets })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Send one message to the target named `to`.
    pub async fn send(&self, to: &str, msg: &OscMessage) -> Result<(), OscError> {
        let packet = encode_message(msg)?;
        self.send_packet(to, &packet).await
    }

    /// Send several messages to `to` as one bundle (timetag: immediately).
    pub async fn send_bundle(&self, to: &str, msgs: &[OscMessage]) -> Result<(), OscError> {
        let packet = encode_bundle(msgs)?;
        self.send_packet(to, &packet).await
    }

    async fn send_packet(&self, to: &str, packet: &[u8]) -> Result<(), OscError> {
        let target = *self.targets.get(to).ok_or_else(|| OscError::UnknownTarget(to.to_string()))?;
        self.socket.send_to(packet, target).await.map(|_| ()).map_err(|source| OscError::Send { target, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(address: &str, args: Vec<OscArg>) -> OscMessage {
        OscMessage { address: address.into(), args }
    }

    #[test]
    fn invalid_input_is_an_error() {
        assert!(matches!(encode_message(&msg("scene", vec![])), Err(OscError::InvalidAddress(_))));
        assert!(matches!(encode_message(&msg("/a", vec![OscArg::String("x\0y".into())])), Err(OscError::NulInString)));
        assert!(matches!(encode_bundle(&[]), Err(OscError::EmptyBundle)));
    }

    #[test]
    fn bool_is_a_type_tag_without_payload() {
        let b = encode_message(&msg("/b", vec![OscArg::Bool(true), OscArg::Bool(false)])).unwrap();
        assert_eq!(b, b"/b\0\0,TF\0");
    }
}
