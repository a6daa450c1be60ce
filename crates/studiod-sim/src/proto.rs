//! VISCA byte-level parsing and encoding, written from the Sony VISCA tables
//! independently of studiod's `visca` codec, so the simulator checks that
//! codec from the outside.

/// Packet terminator.
pub const TERM: u8 = 0xFF;
/// Longest legal VISCA packet, terminator included.
pub const MAX_PACKET: usize = 16;

/// Reply error codes (third byte of `z0 6y ee FF`).
pub mod err {
    pub const LENGTH: u8 = 0x01;
    pub const SYNTAX: u8 = 0x02;
    pub const BUFFER_FULL: u8 = 0x03;
    pub const CANCELLED: u8 = 0x04;
    pub const NO_SOCKET: u8 = 0x05;
    pub const NOT_EXECUTABLE: u8 = 0x41;
}

/// Direction of a continuous drive on one axis.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dir {
    Neg,
    Pos,
    Stop,
}

/// A decoded controller → camera command body (between header and `FF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cmd {
    IfClear,
    Cancel {
        socket: u8,
    },
    Power(bool),
    /// `speed` is 0–7; `None` = stop.
    ZoomDrive {
        dir: Dir,
        speed: u8,
    },
    ZoomDirect(u16),
    FocusDrive {
        dir: Dir,
        speed: u8,
    },
    FocusAuto(Option<bool>), // None = toggle
    FocusDirect(u16),
    MemoryReset(u8),
    MemorySet(u8),
    MemoryRecall(u8),
    PanTiltDrive {
        pan_speed: u8,
        tilt_speed: u8,
        pan: Dir,
        tilt: Dir,
    },
    PanTiltAbsolute {
        pan_speed: u8,
        tilt_speed: u8,
        pan: i32,
        tilt: i32,
    },
    PanTiltRelative {
        pan_speed: u8,
        tilt_speed: u8,
        pan: i32,
        tilt: i32,
    },
    PanTiltHome,
    PanTiltReset,
    InqPower,
    InqZoom,
    InqFocusMode,
    InqFocus,
    InqPanTilt,
    InqVersion,
}

impl Cmd {
    pub fn is_inquiry(&self) -> bool {
        matches!(self, Cmd::InqPower | Cmd::InqZoom | Cmd::InqFocusMode | Cmd::InqFocus | Cmd::InqPanTilt | Cmd::InqVersion)
    }
}

/// Encodes `value` as `nibbles` bytes `0p 0q …`, most significant first,
/// two's complement truncated to `4 * nibbles` bits (so negatives work).
pub fn encode_nibbles(value: i32, nibbles: usize) -> Vec<u8> {
    (0..nibbles).rev().map(|i| ((value >> (4 * i)) & 0x0F) as u8).collect()
}

/// Decodes `0p 0q …`; `None` if any byte has a high nibble set.
pub fn decode_unsigned(bytes: &[u8]) -> Option<u32> {
    bytes.iter().try_fold(0u32, |acc, &b| (b <= 0x0F).then_some((acc << 4) | u32::from(b)))
}

/// Decodes `0p 0q …` as a signed two's complement number of `4 * len` bits.
pub fn decode_signed(bytes: &[u8]) -> Option<i32> {
    let raw = decode_unsigned(bytes)? as i32;
    let bits = 4 * bytes.len() as u32;
    let sign = 1i32 << (bits - 1);
    Some(if raw & sign != 0 { raw - (1 << bits) } else { raw })
}

fn dir_of(b: u8) -> Option<Dir> {
    // Pan: 01 left, 02 right; tilt: 01 up, 02 down. We map 01 → Neg for pan
    // (left) and 01 → Pos for tilt (up) in the caller.
    match b {
        0x01 => Some(Dir::Neg),
        0x02 => Some(Dir::Pos),
        0x03 => Some(Dir::Stop),
        _ => None,
    }
}

fn flip(d: Dir) -> Dir {
    match d {
        Dir::Neg => Dir::Pos,
        Dir::Pos => Dir::Neg,
        Dir::Stop => Dir::Stop,
    }
}

/// Zoom/focus drive byte: `00` stop, `02`/`03` standard, `2p`/`3p` variable.
/// Standard speed is reported as `None` so the caller picks its default.
fn drive_byte(b: u8) -> Option<(Dir, Option<u8>)> {
    match b {
        0x00 => Some((Dir::Stop, Some(0))),
        0x02 => Some((Dir::Pos, None)),
        0x03 => Some((Dir::Neg, None)),
        0x20..=0x27 => Some((Dir::Pos, Some(b & 0x07))),
        0x30..=0x37 => Some((Dir::Neg, Some(b & 0x07))),
        _ => None,
    }
}

/// Standard (non-variable) zoom/focus speed, on the 0–7 variable scale.
pub const STANDARD_SPEED: u8 = 3;

/// Parses a command body. `pt_nibbles` is the width of pan/tilt fields (4/5).
/// `None` means syntax error.
pub fn parse(body: &[u8], pt_nibbles: usize) -> Option<Cmd> {
    let n = pt_nibbles;
    let cmd = match body {
        [0x01, 0x00, 0x01] => Cmd::IfClear,
        [b] if (0x21..=0x22).contains(b) => Cmd::Cancel { socket: b & 0x0F },
        [0x01, 0x04, 0x00, 0x02] => Cmd::Power(true),
        [0x01, 0x04, 0x00, 0x03] => Cmd::Power(false),
        [0x01, 0x04, 0x07, b] => {
            let (dir, speed) = drive_byte(*b)?;
            Cmd::ZoomDrive { dir, speed: speed.unwrap_or(STANDARD_SPEED) }
        }
        [0x01, 0x04, 0x47, rest @ ..] if rest.len() == 4 => Cmd::ZoomDirect(decode_unsigned(rest)? as u16),
        [0x01, 0x04, 0x08, b] => {
            // Focus: 02 far (Pos), 03 near (Neg).
            let (dir, speed) = drive_byte(*b)?;
            Cmd::FocusDrive { dir, speed: speed.unwrap_or(STANDARD_SPEED) }
        }
        [0x01, 0x04, 0x38, 0x02] => Cmd::FocusAuto(Some(true)),
        [0x01, 0x04, 0x38, 0x03] => Cmd::FocusAuto(Some(false)),
        [0x01, 0x04, 0x38, 0x10] => Cmd::FocusAuto(None),
        [0x01, 0x04, 0x48, rest @ ..] if rest.len() == 4 => Cmd::FocusDirect(decode_unsigned(rest)? as u16),
        [0x01, 0x04, 0x3F, op, mem] if *mem <= 0x7F => match op {
            0x00 => Cmd::MemoryReset(*mem),
            0x01 => Cmd::MemorySet(*mem),
            0x02 => Cmd::MemoryRecall(*mem),
            _ => return None,
        },
        [0x01, 0x06, 0x01, vv, ww, x, y] => Cmd::PanTiltDrive {
            pan_speed: *vv,
            tilt_speed: *ww,
            pan: dir_of(*x)?,
            // Tilt 01 is "up", which we model as positive.
            tilt: flip(dir_of(*y)?),
        },
        [0x01, 0x06, kind @ (0x02 | 0x03), vv, ww, rest @ ..] if rest.len() == 2 * n => {
            let pan = decode_signed(&rest[..n])?;
            let tilt = decode_signed(&rest[n..])?;
            let (pan_speed, tilt_speed) = (*vv, *ww);
            if *kind == 0x02 {
                Cmd::PanTiltAbsolute { pan_speed, tilt_speed, pan, tilt }
            } else {
                Cmd::PanTiltRelative { pan_speed, tilt_speed, pan, tilt }
            }
        }
        [0x01, 0x06, 0x04] => Cmd::PanTiltHome,
        [0x01, 0x06, 0x05] => Cmd::PanTiltReset,
        [0x09, 0x04, 0x00] => Cmd::InqPower,
        [0x09, 0x04, 0x47] => Cmd::InqZoom,
        [0x09, 0x04, 0x38] => Cmd::InqFocusMode,
        [0x09, 0x04, 0x48] => Cmd::InqFocus,
        [0x09, 0x06, 0x12] => Cmd::InqPanTilt,
        [0x09, 0x00, 0x02] => Cmd::InqVersion,
        _ => return None,
    };
    Some(cmd)
}

/// What the receive framer produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete packet, header through `FF`.
    Packet(Vec<u8>),
    /// A packet that exceeded [`MAX_PACKET`] before its `FF`; carries the header.
    TooLong(u8),
}

/// Splits the controller's byte stream into packets. Bytes outside a packet
/// that are not a header (bit 7 clear) are dropped, as a camera would.
#[derive(Debug, Default)]
pub struct Framer {
    buf: Vec<u8>,
    overflow: bool,
}

impl Framer {
    pub fn push(&mut self, b: u8) -> Option<Frame> {
        if self.buf.is_empty() && !self.overflow && b & 0x80 == 0 {
            return None;
        }
        if b == TERM {
            if self.overflow {
                self.overflow = false;
                let hdr = self.buf[0];
                self.buf.clear();
                return Some(Frame::TooLong(hdr));
            }
            if self.buf.is_empty() {
                return None; // stray terminator
            }
            self.buf.push(b);
            return Some(Frame::Packet(std::mem::take(&mut self.buf)));
        }
        if self.overflow {
            return None;
        }
        self.buf.push(b);
        if self.buf.len() >= MAX_PACKET {
            // No room left for the terminator: keep only the header and
            // swallow bytes until the next FF.
            self.buf.truncate(1);
            self.overflow = true;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nibbles_roundtrip_signed() {
        assert_eq!(encode_nibbles(-1, 4), vec![0x0F, 0x0F, 0x0F, 0x0F]);
        assert_eq!(encode_nibbles(0x1234, 4), vec![1, 2, 3, 4]);
        for v in [-0x8000, -300, -1, 0, 1, 0x7FFF] {
            assert_eq!(decode_signed(&encode_nibbles(v, 4)), Some(v));
        }
        for v in [-0x80000, -1, 0x7FFFF] {
            assert_eq!(decode_signed(&encode_nibbles(v, 5)), Some(v));
        }
        assert_eq!(decode_unsigned(&[0x10]), None);
    }

    #[test]
    fn parses_core_commands() {
        assert_eq!(
            parse(&[0x01, 0x06, 0x02, 0x18, 0x14, 0, 1, 0, 0, 0x0F, 0x0F, 0x0F, 0x0F], 4),
            Some(Cmd::PanTiltAbsolute { pan_speed: 0x18, tilt_speed: 0x14, pan: 0x100, tilt: -1 })
        );
        assert_eq!(parse(&[0x01, 0x04, 0x3F, 0x02, 0x05], 4), Some(Cmd::MemoryRecall(5)));
        assert_eq!(parse(&[0x01, 0x04, 0x3F, 0x02, 0x80], 4), None);
        assert_eq!(parse(&[0x01, 0x04, 0x07, 0x25], 4), Some(Cmd::ZoomDrive { dir: Dir::Pos, speed: 5 }));
        assert_eq!(parse(&[0x22], 4), Some(Cmd::Cancel { socket: 2 }));
        assert_eq!(parse(&[0x09, 0x06, 0x12], 4), Some(Cmd::InqPanTilt));
        assert_eq!(parse(&[0x01, 0x06], 4), None);
        // A 4-nibble absolute move is a syntax error on a 5-nibble chain.
        assert_eq!(parse(&[0x01, 0x06, 0x02, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0], 5), None);
    }

    #[test]
    fn framer_resyncs_and_flags_long_packets() {
        let mut f = Framer::default();
        let mut out = vec![];
        for b in [0x00, 0x12, 0xFF, 0x81, 0x09, 0x04, 0x00, 0xFF] {
            out.extend(f.push(b));
        }
        assert_eq!(out, vec![Frame::Packet(vec![0x81, 0x09, 0x04, 0x00, 0xFF])]);
        let mut out = vec![];
        for b in std::iter::once(0x81).chain([0x01; 20]).chain([0xFF]) {
            out.extend(f.push(b));
        }
        assert_eq!(out, vec![Frame::TooLong(0x81)]);
        // The framer is usable again afterwards.
        assert_eq!(f.push(0x82), None);
        assert_eq!(f.push(0x30), None);
        assert_eq!(f.push(0xFF), Some(Frame::Packet(vec![0x82, 0x30, 0xFF])));
    }
}
