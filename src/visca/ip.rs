//! VISCA over IP framing (Sony's UDP form), sans-IO.
//!
//! Every message is an 8-byte header and a payload:
//!
//! ```text
//! payload type  u16 BE   0x0100 VISCA command, 0x0110 VISCA inquiry,
//!                        0x0111 VISCA reply, 0x0120 device setting,
//!                        0x0200 control command, 0x0201 control reply
//! payload len   u16 BE   1–16
//! sequence      u32 BE   echoed by the camera in its replies
//! payload       …        a VISCA packet (`8x … FF` / `y0 … FF`), or for
//!                        control: `01` RESET (reply `01` ACK),
//!                        `0F 01` sequence-number error, `0F 02` message error
//! ```
//!
//! [`decode_ip`] takes one message off the front of a buffer and
//! resynchronises on garbage (an unknown type or an impossible length drops
//! one byte and looks again), so the same decoder serves a datagram (one
//! message, leftovers discarded) and a byte stream. Nothing here does I/O.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Header length.
pub const IP_HEADER_LEN: usize = 8;
/// Largest payload a message may carry (a VISCA packet's limit).
pub const IP_MAX_PAYLOAD: usize = 16;
/// Sony's port for VISCA over IP (UDP).
pub const VISCA_UDP_PORT: u16 = 52381;
/// The port most raw-VISCA-over-TCP cameras (PTZOptics and similar) listen on.
pub const VISCA_TCP_PORT: u16 = 5678;

/// Payload type of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadType {
    Command,
    Inquiry,
    Reply,
    DeviceSetting,
    Control,
    ControlReply,
}

impl PayloadType {
    pub fn code(self) -> u16 {
        match self {
            PayloadType::Command => 0x0100,
            PayloadType::Inquiry => 0x0110,
            PayloadType::Reply => 0x0111,
            PayloadType::DeviceSetting => 0x0120,
            PayloadType::Control => 0x0200,
            PayloadType::ControlReply => 0x0201,
        }
    }
    pub fn from_code(c: u16) -> Option<PayloadType> {
        Some(match c {
            0x0100 => PayloadType::Command,
            0x0110 => PayloadType::Inquiry,
            0x0111 => PayloadType::Reply,
            0x0120 => PayloadType::DeviceSetting,
            0x0200 => PayloadType::Control,
            0x0201 => PayloadType::ControlReply,
            _ => return None,
        })
    }
    /// The type of a VISCA packet sent by the controller: `8x 09 …` is an
    /// inquiry, everything else a command.
    pub fn of_packet(packet: &[u8]) -> PayloadType {
        if packet.get(1) == Some(&0x09) {
            PayloadType::Inquiry
        } else {
            PayloadType::Command
        }
    }
}

/// Control payloads.
pub const CONTROL_RESET: &[u8] = &[0x01];
pub const CONTROL_ACK: &[u8] = &[0x01];
pub const CONTROL_SEQUENCE_ERROR: &[u8] = &[0x0F, 0x01];
pub const CONTROL_MESSAGE_ERROR: &[u8] = &[0x0F, 0x02];

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpMessage {
    pub kind: PayloadType,
    pub seq: u32,
    pub payload: Bytes,
}

/// Bytes [`decode_ip`] threw away (already consumed): log it and call again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("discarded {discarded} byte(s) that were no VISCA-over-IP header")]
pub struct IpDecodeError {
    pub discarded: usize,
}

/// Appends one message to `dst`.
pub fn encode_ip(kind: PayloadType, seq: u32, payload: &[u8], dst: &mut BytesMut) {
    debug_assert!((1..=IP_MAX_PAYLOAD).contains(&payload.len()));
    dst.reserve(IP_HEADER_LEN + payload.len());
    dst.put_u16(kind.code());
    dst.put_u16(payload.len() as u16);
    dst.put_u32(seq);
    dst.put_slice(payload);
}

/// A plausible header at the front of `b` (needs 4 bytes): known type, length 1–16.
fn header_ok(b: &[u8]) -> bool {
    let kind = u16::from_be_bytes([b[0], b[1]]);
    let len = u16::from_be_bytes([b[2], b[3]]) as usize;
    PayloadType::from_code(kind).is_some() && (1..=IP_MAX_PAYLOAD).contains(&len)
}

/// Takes one message off the front of `src`.
///
/// - `Ok(Some(msg))`: consumed one message;
/// - `Ok(None)`: not enough bytes yet;
/// - `Err(IpDecodeError)`: garbage dropped (nothing else consumed); call again.
pub fn decode_ip(src: &mut BytesMut) -> Result<Option<IpMessage>, IpDecodeError> {
    let mut discarded = 0;
    while src.len() >= 4 && !header_ok(&src[..4]) {
        src.advance(1);
        discarded += 1;
    }
    if discarded > 0 {
        return Err(IpDecodeError { discarded });
    }
    if src.len() < IP_HEADER_LEN {
        return Ok(None);
    }
    let len = u16::from_be_bytes([src[2], src[3]]) as usize;
    if src.len() < IP_HEADER_LEN + len {
        return Ok(None);
    }
    let kind = PayloadType::from_code(u16::from_be_bytes([src[0], src[1]])).expect("checked");
    let seq = u32::from_be_bytes([src[4], src[5], src[6], src[7]]);
    src.advance(IP_HEADER_LEN);
    let payload = src.split_to(len).freeze();
    Ok(Some(IpMessage { kind, seq, payload }))
}

/// Decodes one datagram: its first well-formed message (a datagram carries
/// one), `None` if it holds none.
pub fn decode_datagram(datagram: &[u8]) -> Option<IpMessage> {
    let mut buf = BytesMut::from(datagram);
    loop {
        match decode_ip(&mut buf) {
            Ok(m) => return m,
            Err(_) => continue,
        }
    }
}

/// Splits a byte run written by the link into VISCA packets (each ending in
/// `FF`). Bytes before a header byte (bit 7 set) are dropped; an unfinished
/// tail is returned as the last element's remainder in `rest`.
pub fn split_packets(bytes: &[u8], rest: &mut Vec<u8>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for &b in bytes {
        if rest.is_empty() && b & 0x80 == 0 {
            continue;
        }
        rest.push(b);
        if b == 0xFF {
            out.push(std::mem::take(rest));
        } else if rest.len() > IP_MAX_PAYLOAD {
            rest.clear();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_sony_header() {
        let mut b = BytesMut::new();
        encode_ip(PayloadType::Command, 0x0102_0304, &[0x81, 0x01, 0x04, 0x3F, 0x02, 0x03, 0xFF], &mut b);
        assert_eq!(&b[..], &[0x01, 0x00, 0x00, 0x07, 0x01, 0x02, 0x03, 0x04, 0x81, 0x01, 0x04, 0x3F, 0x02, 0x03, 0xFF]);
        let mut r = BytesMut::new();
        encode_ip(PayloadType::Control, 0, CONTROL_RESET, &mut r);
        assert_eq!(&r[..], &[0x02, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0x01]);
    }

    /// Every payload type round-trips through its code; a header cut off
    /// inside its payload waits, and a message followed by more bytes
    /// leaves them for the next call.
    #[test]
    fn every_payload_type_and_message_boundaries() {
        use PayloadType::*;
        for kind in [Command, Inquiry, Reply, DeviceSetting, Control, ControlReply] {
            assert_eq!(PayloadType::from_code(kind.code()), Some(kind));
            let mut b = BytesMut::new();
            encode_ip(kind, 9, &[0x01, 0x02], &mut b);
            assert_eq!(decode_ip(&mut b).unwrap().map(|m| m.kind), Some(kind), "{kind:?}");
        }
        let mut b = BytesMut::new();
        encode_ip(PayloadType::Reply, 1, &[0x90, 0x41, 0xFF], &mut b);
        encode_ip(PayloadType::Reply, 2, &[0x90, 0x51, 0xFF], &mut b);
        let whole = b.clone();
        let mut part = BytesMut::from(&whole[..IP_HEADER_LEN + 1]);
        assert_eq!(decode_ip(&mut part), Ok(None), "header and 1 of 3 payload bytes");
        assert_eq!(part.len(), IP_HEADER_LEN + 1);
        assert_eq!(decode_ip(&mut b).unwrap().map(|m| m.seq), Some(1));
        assert_eq!(decode_ip(&mut b).unwrap().map(|m| m.seq), Some(2));
        assert!(b.is_empty());
    }

    #[test]
    fn round_trips_and_waits_for_more() {
        let mut b = BytesMut::new();
        encode_ip(PayloadType::Reply, 7, &[0x90, 0x41, 0xFF], &mut b);
        let full = b.clone();
        let mut part = BytesMut::from(&full[..5]);
        assert_eq!(decode_ip(&mut part), Ok(None));
        part.extend_from_slice(&full[5..]);
        let m = decode_ip(&mut part).unwrap().unwrap();
        assert_eq!(m, IpMessage { kind: PayloadType::Reply, seq: 7, payload: Bytes::from_static(&[0x90, 0x41, 0xFF]) });
        assert!(part.is_empty());
    }

    #[test]
    fn resynchronises_after_garbage() {
        let mut b = BytesMut::from(&[0x55, 0xFF, 0x00, 0x99, 0x01][..]);
        encode_ip(PayloadType::Reply, 1, &[0x90, 0x51, 0xFF], &mut b);
        let mut discarded = 0;
        let m = loop {
            match decode_ip(&mut b) {
                Ok(Some(m)) => break m,
                Ok(None) => panic!("message lost"),
                Err(e) => discarded += e.discarded,
            }
        };
        assert_eq!(discarded, 5);
        assert_eq!(m.seq, 1);
        assert_eq!(&m.payload[..], &[0x90, 0x51, 0xFF]);
    }

    #[test]
    fn rejects_impossible_lengths_and_types() {
        // length 0 and length 17 are no header; nor is type 0x0300.
        for bad in [[0x01u8, 0x11, 0x00, 0x00], [0x01, 0x11, 0x00, 0x11], [0x03, 0x00, 0x00, 0x03]] {
            let mut b = BytesMut::from(&bad[..]);
            b.extend_from_slice(&[0; 20]);
            assert!(decode_ip(&mut b).is_err());
        }
        assert_eq!(decode_datagram(&[0x01, 0x11, 0x00]), None);
    }

    #[test]
    fn splits_link_output_into_packets() {
        let mut rest = Vec::new();
        let p = split_packets(&[0x88, 0x30, 0x01, 0xFF, 0x81, 0x09], &mut rest);
        assert_eq!(p, vec![vec![0x88, 0x30, 0x01, 0xFF]]);
        let p = split_packets(&[0x00, 0x02, 0xFF, 0x12, 0x81, 0xFF], &mut rest);
        assert_eq!(p, vec![vec![0x81, 0x09, 0x00, 0x02, 0xFF], vec![0x81, 0xFF]]);
        assert_eq!(PayloadType::of_packet(&[0x81, 0x09, 0x04, 0x47, 0xFF]), PayloadType::Inquiry);
        assert_eq!(PayloadType::of_packet(&[0x81, 0x01, 0x04, 0x47, 0xFF]), PayloadType::Command);
    }
}
