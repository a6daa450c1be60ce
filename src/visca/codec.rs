//! Reply decoding with resynchronisation.
//!
//! Serial lines deliver noise: half packets after a reconnect, bytes from a
//! camera booting, line glitches. The decoder never gives up: it drops bytes
//! until a plausible reply header, takes everything up to the next `FF`
//! (within the 16-byte limit) and, if that is not a reply it recognises,
//! drops just the header byte and looks again, so a good packet right after
//! junk is still found.

use bytes::{Buf, BytesMut};

pub use super::command::encode;
use super::command::{MAX_PACKET, TERMINATOR};
use super::reply::{Raw, Reply, ViscaErrorCode};

/// Bytes the decoder threw away. The buffer has already been advanced past
/// them: log it and call [`decode`] again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("discarded {discarded} byte(s) of garbage from the serial line")]
pub struct DecodeError {
    pub discarded: usize,
}

/// A byte that can start a reply: `z0` with z = 9..F (camera 1–7 talking to
/// the controller) or `88` (a broadcast coming back round the chain).
/// Requiring the low nibble to be 0 is stricter than "any 8x–FE" and makes
/// resynchronisation much less likely to lock onto a payload byte.
fn is_header(b: u8) -> bool {
    b == 0x88 || (b >= 0x90 && b != TERMINATOR && b & 0x0F == 0)
}

/// Takes one reply off the front of `src`.
///
/// - `Ok(Some(reply))`: a reply was consumed.
/// - `Ok(None)`: no complete packet yet; read more bytes and call again.
/// - `Err(DecodeError)`: garbage was dropped (nothing else consumed); call again.
pub fn decode(src: &mut BytesMut) -> Result<Option<Reply>, DecodeError> {
    let mut discarded = 0;
    loop {
        match src.iter().position(|&b| is_header(b)) {
            Some(i) => {
                src.advance(i);
                discarded += i;
            }
            None => {
                discarded += src.len();
                src.clear();
                return if discarded > 0 { Err(DecodeError { discarded }) } else { Ok(None) };
            }
        }
        let window = &src[..src.len().min(MAX_PACKET)];
        match window.iter().position(|&b| b == TERMINATOR) {
            Some(end) => {
                if let Some(reply) = parse(&src[..=end]) {
                    // Report the garbage first and leave the packet for the next call,
                    // so each call has exactly one outcome.
                    if discarded > 0 {
                        return Err(DecodeError { discarded });
                    }
                    src.advance(end + 1);
                    return Ok(Some(reply));
                }
            }
            None if src.len() < MAX_PACKET => {
                return if discarded > 0 { Err(DecodeError { discarded }) } else { Ok(None) };
            }
            // 16 bytes without a terminator: this header cannot start a packet.
            None => {}
        }
        src.advance(1);
        discarded += 1;
    }
}

/// Reads one complete packet (`header … FF`), or `None` if it is not a reply shape we know.
pub fn parse(p: &[u8]) -> Option<Reply> {
    let camera = |z: u8| (0x90..=0xF0).contains(&z).then(|| (z >> 4) - 8);
    match *p {
        [0x88, 0x30, w, 0xFF] if w <= 0x0F => Some(Reply::AddressSet { next: w }),
        [0x88, 0x01, 0x00, 0x01, 0xFF] => Some(Reply::IfClearBroadcast),
        [z, 0x38, 0xFF] => camera(z).map(|address| Reply::NetworkChange { address }),
        [z, y, 0xFF] if y & 0xF0 == 0x40 => camera(z).map(|address| Reply::Ack { address, socket: y & 0x0F }),
        [z, y, 0xFF] if y & 0xF0 == 0x50 => camera(z).map(|address| Reply::Completion { address, socket: y & 0x0F }),
        [z, y, e, 0xFF] if y & 0xF0 == 0x60 => {
            camera(z).map(|address| Reply::Error { address, socket: y & 0x0F, code: ViscaErrorCode::from_byte(e) })
        }
        [z, 0x50, ref payload @ .., 0xFF] if !payload.is_empty() => {
            let address = camera(z)?;
            Some(Reply::Answer { address, payload: Raw::new(payload)? })
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visca::command::*;
    use proptest::prelude::*;

    /// Decodes everything in `bytes`, skipping garbage reports.
    fn decode_all(bytes: &[u8]) -> Vec<Reply> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        // Each call consumes at least one byte or returns Ok(None), so this terminates;
        // the bound makes a regression fail instead of hang.
        for _ in 0..=bytes.len() * 2 + 1 {
            match decode(&mut buf) {
                Ok(Some(r)) => out.push(r),
                Ok(None) => return out,
                Err(e) => assert!(e.discarded > 0),
            }
        }
        panic!("decoder made no progress");
    }

    #[test]
    fn decodes_each_reply_kind() {
        let stream = [
            0x90, 0x41, 0xFF, // ack socket 1, camera 1
            0xA0, 0x52, 0xFF, // completion socket 2, camera 2
            0x90, 0x50, 0x02, 0xFF, // answer
            0x90, 0x61, 0x41, 0xFF, // not executable
            0x88, 0x30, 0x03, 0xFF, // address set: two cameras
            0x88, 0x01, 0x00, 0x01, 0xFF, // IF_Clear echo
            0xF0, 0x38, 0xFF, // network change from camera 7
            0x90, 0x62, 0x7A, 0xFF, // unknown error code kept
        ];
        let r = decode_all(&stream);
        assert_eq!(
            r,
            vec![
                Reply::Ack { address: 1, socket: 1 },
                Reply::Completion { address: 2, socket: 2 },
                Reply::Answer { address: 1, payload: Raw::new(&[0x02]).unwrap() },
                Reply::Error { address: 1, socket: 1, code: ViscaErrorCode::NotExecutable },
                Reply::AddressSet { next: 3 },
                Reply::IfClearBroadcast,
                Reply::NetworkChange { address: 7 },
                Reply::Error { address: 1, socket: 2, code: ViscaErrorCode::Other(0x7A) },
            ]
        );
    }

    #[test]
    fn partial_packet_waits_for_more() {
        let mut buf = BytesMut::from(&[0x90, 0x41][..]);
        assert_eq!(decode(&mut buf), Ok(None));
        assert_eq!(buf.len(), 2, "a partial packet is kept");
        buf.extend_from_slice(&[0xFF]);
        assert_eq!(decode(&mut buf), Ok(Some(Reply::Ack { address: 1, socket: 1 })));
        assert!(buf.is_empty());
    }

    #[test]
    fn garbage_is_reported_then_packet_returned() {
        let mut buf = BytesMut::from(&[0x12, 0x34, 0xFF, 0x90, 0x51, 0xFF][..]);
        assert_eq!(decode(&mut buf), Err(DecodeError { discarded: 3 }));
        assert_eq!(decode(&mut buf), Ok(Some(Reply::Completion { address: 1, socket: 1 })));
        assert_eq!(decode(&mut buf), Ok(None));
    }

    #[test]
    fn overlong_run_without_terminator_is_dropped_and_decoding_continues() {
        // 20 bytes starting with a header and no FF, then a good ack.
        let mut stream = vec![0x90];
        stream.extend(std::iter::repeat(0x01).take(19));
        stream.extend([0xB0, 0x41, 0xFF]);
        assert_eq!(decode_all(&stream), vec![Reply::Ack { address: 3, socket: 1 }]);
    }

    /// Each call reports exactly the bytes it threw away (the link logs
    /// and counts them), and keeps what may still become a packet.
    #[test]
    fn garbage_counts_are_exact() {
        let mut buf = BytesMut::from(&[0x01, 0x02, 0x03][..]);
        assert_eq!(decode(&mut buf), Err(DecodeError { discarded: 3 }), "no header at all");
        assert!(buf.is_empty());
        let mut buf = BytesMut::from(&[0x01, 0x90, 0x41][..]);
        assert_eq!(decode(&mut buf), Err(DecodeError { discarded: 1 }), "junk, then a partial packet");
        assert_eq!(&buf[..], [0x90, 0x41], "the partial packet is kept");
        // A header and 15 more bytes with no FF: exactly MAX_PACKET bytes
        // that cannot be a packet. All 16 go now, without waiting for more.
        let mut stream = vec![0x90];
        stream.extend([0x01; 15]);
        let mut buf = BytesMut::from(&stream[..]);
        assert_eq!(decode(&mut buf), Err(DecodeError { discarded: 16 }));
        assert!(buf.is_empty());
    }

    /// Only `88` and `z0` (z = 9–F) start a reply: a byte like `91` is
    /// payload or noise, so `91 41 FF` is not an ACK from camera 1.
    #[test]
    fn only_real_header_bytes_start_a_reply() {
        assert_eq!(decode_all(&[0x91, 0x41, 0xFF]), vec![]);
        let mut buf = BytesMut::from(&[0x91, 0x41, 0xFF][..]);
        assert_eq!(decode(&mut buf), Err(DecodeError { discarded: 3 }));
        // An AddressSet reply names the next address, 1–8: `88 30 10 FF` is not one.
        assert_eq!(parse(&[0x88, 0x30, 0x10, 0xFF]), None);
        assert_eq!(parse(&[0x88, 0x30, 0x08, 0xFF]), Some(Reply::AddressSet { next: 8 }));
    }

    #[test]
    fn junk_header_glued_to_a_good_packet_is_skipped() {
        // `90 90 41 FF` is no reply; the second 90 starts the real one.
        assert_eq!(decode_all(&[0x90, 0x90, 0x41, 0xFF]), vec![Reply::Ack { address: 1, socket: 1 }]);
    }

    fn reply_strategy() -> impl Strategy<Value = Reply> {
        let addr = 1u8..=7;
        let sock = 0u8..=0x0F;
        prop_oneof![
            (addr.clone(), sock.clone()).prop_map(|(address, socket)| Reply::Ack { address, socket }),
            (addr.clone(), sock.clone()).prop_map(|(address, socket)| Reply::Completion { address, socket }),
            (addr.clone(), prop::collection::vec(0u8..=0xFE, 1..=13))
                .prop_map(|(address, p)| Reply::Answer { address, payload: Raw::new(&p).unwrap() }),
            (addr.clone(), sock, 0u8..=0xFE).prop_map(|(address, socket, c)| Reply::Error {
                address,
                socket,
                code: ViscaErrorCode::from_byte(c)
            }),
            (0u8..=0x0F).prop_map(|next| Reply::AddressSet { next }),
            Just(Reply::IfClearBroadcast),
            addr.prop_map(|address| Reply::NetworkChange { address }),
        ]
    }

    fn command_strategy() -> impl Strategy<Value = ViscaCommand> {
        let nib = prop_oneof![Just(Nibbles::Four), Just(Nibbles::Five)];
        let dir = prop_oneof![
            Just(Direction::Up),
            Just(Direction::Down),
            Just(Direction::Left),
            Just(Direction::Right),
            Just(Direction::UpLeft),
            Just(Direction::UpRight),
            Just(Direction::DownLeft),
            Just(Direction::DownRight),
            Just(Direction::Stop),
        ];
        let zoom = prop_oneof![
            Just(ZoomDrive::Stop),
            Just(ZoomDrive::Tele),
            Just(ZoomDrive::Wide),
            any::<u8>().prop_map(ZoomDrive::TeleVariable),
            any::<u8>().prop_map(ZoomDrive::WideVariable),
        ];
        let focus = prop_oneof![
            Just(FocusDrive::Stop),
            Just(FocusDrive::Far),
            Just(FocusDrive::Near),
            any::<u8>().prop_map(FocusDrive::FarVariable),
            any::<u8>().prop_map(FocusDrive::NearVariable),
        ];
        let op = prop_oneof![Just(MemoryOp::Reset), Just(MemoryOp::Set), Just(MemoryOp::Recall)];
        prop_oneof![
            any::<bool>().prop_map(ViscaCommand::Power),
            zoom.prop_map(ViscaCommand::Zoom),
            any::<u16>().prop_map(ViscaCommand::ZoomDirect),
            focus.prop_map(ViscaCommand::Focus),
            any::<u16>().prop_map(ViscaCommand::FocusDirect),
            Just(ViscaCommand::FocusAuto),
            Just(ViscaCommand::FocusManual),
            Just(ViscaCommand::FocusOnePush),
            (dir, any::<u8>(), any::<u8>()).prop_map(|(direction, pan_speed, tilt_speed)| ViscaCommand::PanTiltDrive {
                direction,
                pan_speed,
                tilt_speed
            }),
            (any::<u8>(), any::<u8>(), any::<i32>(), any::<i32>(), nib.clone()).prop_map(|(pan_speed, tilt_speed, pan, tilt, nibbles)| {
                ViscaCommand::PanTiltAbsolute { pan_speed, tilt_speed, pan, tilt, nibbles }
            }),
            (any::<u8>(), any::<u8>(), any::<i32>(), any::<i32>(), nib).prop_map(|(pan_speed, tilt_speed, pan, tilt, nibbles)| {
                ViscaCommand::PanTiltRelative { pan_speed, tilt_speed, pan, tilt, nibbles }
            }),
            Just(ViscaCommand::Home),
            Just(ViscaCommand::PanTiltReset),
            (op, any::<u8>()).prop_map(|(op, memory)| ViscaCommand::Memory { op, memory }),
            Just(ViscaCommand::IfClear),
        ]
    }

    fn packet_strategy() -> impl Strategy<Value = Packet> {
        let addr = (1u8..=7).prop_map(|n| Address::new(n).unwrap());
        let dest = prop_oneof![addr.clone().prop_map(Destination::Camera), Just(Destination::Broadcast)];
        let inq = prop_oneof![
            Just(Inquiry::Power),
            Just(Inquiry::ZoomPosition),
            Just(Inquiry::FocusPosition),
            Just(Inquiry::FocusMode),
            Just(Inquiry::PanTiltPosition),
            Just(Inquiry::Version),
        ];
        prop_oneof![
            (dest, command_strategy()).prop_map(|(to, command)| Packet::ViscaCommand { to, command }),
            (addr.clone(), inq).prop_map(|(to, inquiry)| Packet::Inquiry { to, inquiry }),
            (addr, 1u8..=2).prop_map(|(to, socket)| Packet::Cancel { to, socket }),
            Just(Packet::AddressSet),
        ]
    }

    proptest! {
        #[test]
        fn replies_round_trip(r in reply_strategy()) {
            let raw = r.to_bytes();
            prop_assert!(raw.as_slice().len() <= MAX_PACKET);
            prop_assert_eq!(decode_all(raw.as_slice()), vec![r]);
        }

        #[test]
        fn packets_are_well_formed(p in packet_strategy()) {
            let mut b = BytesMut::new();
            encode(&p, &mut b);
            prop_assert!(b.len() <= MAX_PACKET && b.len() >= 3);
            prop_assert!((0x81..=0x88).contains(&b[0]), "header {:02X}", b[0]);
            prop_assert_eq!(b[b.len() - 1], 0xFF);
            prop_assert!(!b[..b.len() - 1].contains(&0xFF));
        }

        #[test]
        fn arbitrary_bytes_never_panic_nor_yield_oversized_packets(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
            for r in decode_all(&bytes) {
                prop_assert!(r.to_bytes().as_slice().len() <= MAX_PACKET);
            }
        }

        #[test]
        fn arbitrary_bytes_fed_one_at_a_time_match_bulk_decoding(bytes in prop::collection::vec(any::<u8>(), 0..100)) {
            // Serial reads split packets anywhere; the result must not depend on it.
            let mut buf = BytesMut::new();
            let mut got = Vec::new();
            for b in &bytes {
                buf.extend_from_slice(&[*b]);
                loop {
                    match decode(&mut buf) {
                        Ok(Some(r)) => got.push(r),
                        Ok(None) => break,
                        Err(_) => {}
                    }
                }
            }
            prop_assert_eq!(got, decode_all(&bytes));
        }

        #[test]
        fn valid_packet_after_terminated_garbage_is_recovered(
            garbage in prop::collection::vec(any::<u8>(), 0..64),
            r in reply_strategy(),
        ) {
            let mut stream = garbage;
            stream.push(0xFF);
            stream.extend_from_slice(r.to_bytes().as_slice());
            let got = decode_all(&stream);
            prop_assert_eq!(got.last(), Some(&r));
        }

        #[test]
        fn valid_packet_after_headerless_noise_is_recovered(
            garbage in prop::collection::vec(0u8..0x88, 0..64),
            r in reply_strategy(),
        ) {
            let mut stream = garbage;
            stream.extend_from_slice(r.to_bytes().as_slice());
            prop_assert_eq!(decode_all(&stream), vec![r]);
        }
    }
}
