//! What cameras send back, and how an inquiry answer's payload is read.

use std::fmt;

use super::command::{Inquiry, MAX_PACKET};

/// Up to 16 bytes kept inline: replies are tiny and decoding them must not
/// allocate (the decode loop runs on every byte the chain sends).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Raw {
    len: u8,
    bytes: [u8; MAX_PACKET],
}

impl Raw {
    /// `None` if `bytes` is longer than a packet.
    pub fn new(bytes: &[u8]) -> Option<Raw> {
        if bytes.len() > MAX_PACKET {
            return None;
        }
        let mut raw = Raw { len: bytes.len() as u8, bytes: [0; MAX_PACKET] };
        raw.bytes[..bytes.len()].copy_from_slice(bytes);
        Some(raw)
    }
    pub fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl fmt::Debug for Raw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, b) in self.as_slice().iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02X}")?;
        }
        f.write_str("]")
    }
}

/// A VISCA error code (`z0 6y ee FF`). Unknown codes are kept, not dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViscaErrorCode {
    MessageLength,
    Syntax,
    BufferFull,
    Cancelled,
    NoSocket,
    NotExecutable,
    Other(u8),
}

impl ViscaErrorCode {
    pub fn from_byte(b: u8) -> ViscaErrorCode {
        match b {
            0x01 => ViscaErrorCode::MessageLength,
            0x02 => ViscaErrorCode::Syntax,
            0x03 => ViscaErrorCode::BufferFull,
            0x04 => ViscaErrorCode::Cancelled,
            0x05 => ViscaErrorCode::NoSocket,
            0x41 => ViscaErrorCode::NotExecutable,
            other => ViscaErrorCode::Other(other),
        }
    }
    pub fn byte(self) -> u8 {
        match self {
            ViscaErrorCode::MessageLength => 0x01,
            ViscaErrorCode::Syntax => 0x02,
            ViscaErrorCode::BufferFull => 0x03,
            ViscaErrorCode::Cancelled => 0x04,
            ViscaErrorCode::NoSocket => 0x05,
            ViscaErrorCode::NotExecutable => 0x41,
            ViscaErrorCode::Other(b) => b,
        }
    }
}

impl fmt::Display for ViscaErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ViscaErrorCode::MessageLength => f.write_str("message length error"),
            ViscaErrorCode::Syntax => f.write_str("syntax error"),
            ViscaErrorCode::BufferFull => f.write_str("command buffer full"),
            ViscaErrorCode::Cancelled => f.write_str("command cancelled"),
            ViscaErrorCode::NoSocket => f.write_str("no such socket"),
            ViscaErrorCode::NotExecutable => f.write_str("not executable"),
            ViscaErrorCode::Other(b) => write!(f, "error code {b:02X}h"),
        }
    }
}

/// One decoded packet from the chain. `address` is the camera that spoke (1–7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reply {
    /// `z0 4y FF`: command accepted into socket `y`.
    Ack { address: u8, socket: u8 },
    /// `z0 5y FF`: the command in socket `y` finished (`y` = 0 for commands
    /// answered without a socket, e.g. IF_Clear).
    Completion { address: u8, socket: u8 },
    /// `z0 50 … FF`: answer to the outstanding inquiry; read it with
    /// [`Inquiry::interpret`].
    Answer { address: u8, payload: Raw },
    /// `z0 6y ee FF`.
    Error { address: u8, socket: u8, code: ViscaErrorCode },
    /// `88 30 0w FF`: AddressSet came back round the chain; `next` is the
    /// address the next (absent) camera would get, so `next - 1` cameras answered.
    AddressSet { next: u8 },
    /// `88 01 00 01 FF`: the IF_Clear broadcast came back round the chain.
    IfClearBroadcast,
    /// `x0 38 FF`: a camera was plugged into or out of the chain.
    NetworkChange { address: u8 },
}

impl Reply {
    /// The wire form (used by tests, benches and fakes).
    pub fn to_bytes(&self) -> Raw {
        let z = |a: u8| (0x08 + (a & 0x07)) << 4;
        let mut v = [0u8; MAX_PACKET];
        let n = match *self {
            Reply::Ack { address, socket } => {
                v[..3].copy_from_slice(&[z(address), 0x40 | (socket & 0x0F), 0xFF]);
                3
            }
            Reply::Completion { address, socket } => {
                v[..3].copy_from_slice(&[z(address), 0x50 | (socket & 0x0F), 0xFF]);
                3
            }
            Reply::Answer { address, payload } => {
                let p = payload.as_slice();
                let p = &p[..p.len().min(MAX_PACKET - 3)];
                v[0] = z(address);
                v[1] = 0x50;
                v[2..2 + p.len()].copy_from_slice(p);
                v[2 + p.len()] = 0xFF;
                3 + p.len()
            }
            Reply::Error { address, socket, code } => {
                v[..4].copy_from_slice(&[z(address), 0x60 | (socket & 0x0F), code.byte(), 0xFF]);
                4
            }
            Reply::AddressSet { next } => {
                v[..4].copy_from_slice(&[0x88, 0x30, next & 0x0F, 0xFF]);
                4
            }
            Reply::IfClearBroadcast => {
                v[..5].copy_from_slice(&[0x88, 0x01, 0x00, 0x01, 0xFF]);
                5
            }
            Reply::NetworkChange { address } => {
                v[..3].copy_from_slice(&[z(address), 0x38, 0xFF]);
                3
            }
        };
        Raw::new(&v[..n]).expect("replies are at most 16 bytes")
    }
}

/// Camera power as reported by the power inquiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PowerState {
    On,
    Standby,
    /// `04` on Sony: internal power circuit error.
    Fault,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FocusMode {
    Auto,
    Manual,
}

/// The version inquiry answer (`y0 50 GG GG HH HH JJ JJ KK FF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Version {
    pub vendor: u16,
    pub model: u16,
    pub rom: u16,
    /// Maximum number of command sockets.
    pub sockets: u8,
}

/// A decoded inquiry answer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Answer {
    Power(PowerState),
    ZoomPosition(u16),
    FocusPosition(u16),
    FocusMode(FocusMode),
    /// Signed VISCA units.
    PanTiltPosition {
        pan: i32,
        tilt: i32,
    },
    Version(Version),
}

/// An answer payload that does not fit the inquiry it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected answer {payload:?} to {inquiry:?} inquiry")]
pub struct AnswerError {
    pub inquiry: Inquiry,
    pub payload: Raw,
}

impl Inquiry {
    /// Reads the payload of `z0 50 <payload> FF` as the answer to this inquiry.
    /// Replies carry no inquiry id, so the caller must know which inquiry is
    /// outstanding for that camera.
    pub fn interpret(&self, payload: &[u8]) -> Result<Answer, AnswerError> {
        let bad = || AnswerError { inquiry: *self, payload: Raw::new(payload).unwrap_or_default() };
        let nibbles = |p: &[u8]| -> Option<u32> { p.iter().try_fold(0u32, |acc, &b| (b <= 0x0F).then_some((acc << 4) | b as u32)) };
        match (self, payload) {
            (Inquiry::Power, [0x02]) => Ok(Answer::Power(PowerState::On)),
            (Inquiry::Power, [0x03]) => Ok(Answer::Power(PowerState::Standby)),
            (Inquiry::Power, [0x04]) => Ok(Answer::Power(PowerState::Fault)),
            (Inquiry::FocusMode, [0x02]) => Ok(Answer::FocusMode(FocusMode::Auto)),
            (Inquiry::FocusMode, [0x03]) => Ok(Answer::FocusMode(FocusMode::Manual)),
            (Inquiry::ZoomPosition, p) if p.len() == 4 => nibbles(p).map(|v| Answer::ZoomPosition(v as u16)).ok_or_else(bad),
            (Inquiry::FocusPosition, p) if p.len() == 4 => nibbles(p).map(|v| Answer::FocusPosition(v as u16)).ok_or_else(bad),
            (Inquiry::PanTiltPosition, p) => {
                // The answer's length tells the field widths: 4+4, 5+4 (Sony
                // SRG/BRC pan) or 5+5 nibbles.
                let (pan_n, tilt_n) = match p.len() {
                    8 => (4, 4),
                    9 => (5, 4),
                    10 => (5, 5),
                    _ => return Err(bad()),
                };
                let pan = nibbles(&p[..pan_n]).ok_or_else(bad)?;
                let tilt = nibbles(&p[pan_n..pan_n + tilt_n]).ok_or_else(bad)?;
                Ok(Answer::PanTiltPosition { pan: sign_extend(pan, pan_n), tilt: sign_extend(tilt, tilt_n) })
            }
            (Inquiry::Version, [g1, g2, h1, h2, j1, j2, k]) => Ok(Answer::Version(Version {
                vendor: u16::from_be_bytes([*g1, *g2]),
                model: u16::from_be_bytes([*h1, *h2]),
                rom: u16::from_be_bytes([*j1, *j2]),
                sockets: *k,
            })),
            _ => Err(bad()),
        }
    }
}

fn sign_extend(v: u32, nibbles: usize) -> i32 {
    let shift = 32 - 4 * nibbles as u32;
    ((v << shift) as i32) >> shift
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every answer form the inquiries accept, and the lengths they refuse.
    #[test]
    fn every_answer_form_and_wrong_lengths() {
        assert_eq!(Inquiry::Power.interpret(&[0x04]), Ok(Answer::Power(PowerState::Fault)));
        assert_eq!(Inquiry::FocusMode.interpret(&[0x02]), Ok(Answer::FocusMode(FocusMode::Auto)));
        assert_eq!(Inquiry::FocusPosition.interpret(&[0x01, 0x02, 0x03, 0x04]), Ok(Answer::FocusPosition(0x1234)));
        for inquiry in [Inquiry::ZoomPosition, Inquiry::FocusPosition] {
            for p in [&[0x01, 0x02, 0x03][..], &[0x01, 0x02, 0x03, 0x04, 0x05]] {
                assert!(inquiry.interpret(p).is_err(), "{inquiry:?} {p:?}");
            }
        }
        // 5 + 5 nibbles (wide pan and tilt fields).
        let p = [0x0F, 0x0F, 0x0F, 0x0F, 0x0E, 0x00, 0x00, 0x00, 0x01, 0x00];
        assert_eq!(Inquiry::PanTiltPosition.interpret(&p), Ok(Answer::PanTiltPosition { pan: -2, tilt: 0x10 }));
        assert!(Inquiry::PanTiltPosition.interpret(&p[..7]).is_err());
    }

    /// How an answer's bytes read in logs and in a technician's error text.
    #[test]
    fn raw_bytes_print_as_spaced_hex() {
        assert_eq!(format!("{:?}", Raw::new(&[0x01, 0xAB, 0x00]).unwrap()), "[01 AB 00]");
        assert_eq!(format!("{:?}", Raw::new(&[0x7F]).unwrap()), "[7F]");
    }

    #[test]
    fn interpret_answers() {
        assert_eq!(Inquiry::Power.interpret(&[0x02]), Ok(Answer::Power(PowerState::On)));
        assert_eq!(Inquiry::Power.interpret(&[0x03]), Ok(Answer::Power(PowerState::Standby)));
        assert_eq!(Inquiry::ZoomPosition.interpret(&[0x04, 0x00, 0x0A, 0x01]), Ok(Answer::ZoomPosition(0x40A1)));
        assert_eq!(Inquiry::FocusMode.interpret(&[0x03]), Ok(Answer::FocusMode(FocusMode::Manual)));
        assert_eq!(
            Inquiry::PanTiltPosition.interpret(&[0x0F, 0x0F, 0x0F, 0x0E, 0x00, 0x00, 0x01, 0x00]),
            Ok(Answer::PanTiltPosition { pan: -2, tilt: 0x10 })
        );
        assert_eq!(
            Inquiry::PanTiltPosition.interpret(&[0x0F, 0x0F, 0x0F, 0x0F, 0x0F, 0x00, 0x00, 0x00, 0x05]),
            Ok(Answer::PanTiltPosition { pan: -1, tilt: 5 })
        );
        assert_eq!(
            Inquiry::Version.interpret(&[0x00, 0x01, 0x05, 0x19, 0x01, 0x23, 0x02]),
            Ok(Answer::Version(Version { vendor: 1, model: 0x0519, rom: 0x0123, sockets: 2 }))
        );
        assert!(Inquiry::Power.interpret(&[0x07]).is_err());
        assert!(Inquiry::ZoomPosition.interpret(&[0x10, 0, 0, 0]).is_err());
        assert!(Inquiry::PanTiltPosition.interpret(&[0; 3]).is_err());
    }

    #[test]
    fn error_codes_round_trip_and_read_plainly() {
        for b in 0..=255u8 {
            assert_eq!(ViscaErrorCode::from_byte(b).byte(), b);
        }
        assert_eq!(ViscaErrorCode::from_byte(0x41).to_string(), "not executable");
        assert_eq!(ViscaErrorCode::from_byte(0x7A).to_string(), "error code 7Ah");
    }
}
