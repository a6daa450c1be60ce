//! What the controller sends: commands, inquiries and the few link-level
//! packets (AddressSet, IF_Clear, Cancel), and their byte encoding.
//!
//! Every value is masked or clamped into its legal range while encoding, so
//! an encoded packet is always well formed: `8x … FF`, at most 16 bytes and
//! no `FF` before the terminator. Range checks that deserve an error message
//! (degrees, preset numbers) belong to the camera layer, which knows the profile.

use bytes::{BufMut, BytesMut};

/// Largest VISCA packet, header and terminator included.
pub const MAX_PACKET: usize = 16;
/// Packet terminator.
pub const TERMINATOR: u8 = 0xFF;

/// A camera address on a daisy chain, 1–7.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(u8);

impl Address {
    /// `None` unless `n` is 1–7.
    pub fn new(n: u8) -> Option<Address> {
        (1..=7).contains(&n).then_some(Address(n))
    }
    pub fn get(self) -> u8 {
        self.0
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a packet goes: one camera or every camera on the chain (`88`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Destination {
    Camera(Address),
    Broadcast,
}

impl Destination {
    /// Header byte: sender is the controller (address 0), so `8x`.
    fn header(self) -> u8 {
        match self {
            Destination::Camera(a) => 0x80 | a.0,
            Destination::Broadcast => 0x88,
        }
    }
}

/// Pan-tilt drive direction (`8x 01 06 01 VV WW XX YY FF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Up,
    Down,
    Left,
    Right,
    UpLeft,
    UpRight,
    DownLeft,
    DownRight,
    Stop,
}

impl Direction {
    /// The `XX YY` bytes: 01 = left/up, 02 = right/down, 03 = stop on that axis.
    fn bytes(self) -> [u8; 2] {
        match self {
            Direction::Up => [0x03, 0x01],
            Direction::Down => [0x03, 0x02],
            Direction::Left => [0x01, 0x03],
            Direction::Right => [0x02, 0x03],
            Direction::UpLeft => [0x01, 0x01],
            Direction::UpRight => [0x02, 0x01],
            Direction::DownLeft => [0x01, 0x02],
            Direction::DownRight => [0x02, 0x02],
            Direction::Stop => [0x03, 0x03],
        }
    }
}

/// Pan speed byte limits (Sony: 01–18h).
pub const PAN_SPEED_MAX: u8 = 0x18;
/// Tilt speed byte limits (Sony: 01–17h; many models stop at 14h).
pub const TILT_SPEED_MAX: u8 = 0x17;

/// Width of the signed pan position field, in nibbles (4 or 5); see
/// [`Nibbles::tilt_count`] for tilt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Nibbles {
    Four,
    Five,
}

impl Nibbles {
    /// From the profile's `pan_tilt_nibbles`; anything but 5 means 4.
    pub fn from_profile(n: u8) -> Nibbles {
        if n == 5 {
            Nibbles::Five
        } else {
            Nibbles::Four
        }
    }
    pub fn count(self) -> usize {
        match self {
            Nibbles::Four => 4,
            Nibbles::Five => 5,
        }
    }
    /// Nibbles of the tilt field. With 5-nibble pan, tilt stays at 4: a
    /// 5+5 absolute command would be 17 bytes, over the packet limit (Sony
    /// SRG/BRC manuals use `0Y×5 0Z×4` for the same reason).
    pub fn tilt_count(self) -> usize {
        4
    }
    /// Signed pan range representable in two's complement.
    pub fn pan_range(self) -> std::ops::RangeInclusive<i32> {
        signed_range(self.count())
    }
    /// Signed tilt range representable in two's complement.
    pub fn tilt_range(self) -> std::ops::RangeInclusive<i32> {
        signed_range(self.tilt_count())
    }
}

fn signed_range(nibbles: usize) -> std::ops::RangeInclusive<i32> {
    let bits = 4 * nibbles as u32;
    -(1 << (bits - 1))..=(1 << (bits - 1)) - 1
}

/// Preset memory operation (`8x 01 04 3F 0p pp FF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MemoryOp {
    Reset,
    Set,
    Recall,
}

/// Zoom drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ZoomDrive {
    Stop,
    Tele,
    Wide,
    /// Variable speed 0 (slow) – 7 (fast).
    TeleVariable(u8),
    WideVariable(u8),
}

/// Focus drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FocusDrive {
    Stop,
    Far,
    Near,
    FarVariable(u8),
    NearVariable(u8),
}

/// How long the camera may take to report completion; the link picks the
/// matching timeout from the profile's `CameraTiming`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    Short,
    Move,
    Power,
}

/// A VISCA command (answered by ACK then completion, or an error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ViscaCommand {
    Power(bool),
    Zoom(ZoomDrive),
    /// Zoom position 0x0000 (wide) upwards, in 4 nibbles.
    ZoomDirect(u16),
    Focus(FocusDrive),
    FocusDirect(u16),
    FocusAuto,
    FocusManual,
    FocusOnePush,
    PanTiltDrive {
        direction: Direction,
        pan_speed: u8,
        tilt_speed: u8,
    },
    /// Absolute position in signed VISCA units. A `tilt_speed` of 0 is sent
    /// as `00`, as Sony's SRG-X/BRC-X command lists prescribe for this
    /// command (`8x 01 06 02 vv 00 …`); other speeds are clamped to 1..=max.
    PanTiltAbsolute {
        pan_speed: u8,
        tilt_speed: u8,
        pan: i32,
        tilt: i32,
        nibbles: Nibbles,
    },
    /// Relative move in signed VISCA units.
    PanTiltRelative {
        pan_speed: u8,
        tilt_speed: u8,
        pan: i32,
        tilt: i32,
        nibbles: Nibbles,
    },
    Home,
    PanTiltReset,
    /// Preset memory operation with the raw memory byte (0x00–0x7F).
    Memory {
        op: MemoryOp,
        memory: u8,
    },
    /// `8x 01 00 01 FF`: clears the camera's command buffers.
    IfClear,
}

impl ViscaCommand {
    pub fn kind(&self) -> CommandKind {
        match self {
            ViscaCommand::Power(_) => CommandKind::Power,
            ViscaCommand::ZoomDirect(_)
            | ViscaCommand::FocusDirect(_)
            | ViscaCommand::PanTiltAbsolute { .. }
            | ViscaCommand::PanTiltRelative { .. }
            | ViscaCommand::Home
            | ViscaCommand::PanTiltReset
            | ViscaCommand::Memory { op: MemoryOp::Recall, .. } => CommandKind::Move,
            _ => CommandKind::Short,
        }
    }
}

/// A VISCA inquiry (answered directly by `z0 50 … FF`, no ACK).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Inquiry {
    Power,
    ZoomPosition,
    FocusPosition,
    FocusMode,
    PanTiltPosition,
    Version,
}

impl Inquiry {
    fn body(self) -> &'static [u8] {
        match self {
            Inquiry::Power => &[0x09, 0x04, 0x00],
            Inquiry::ZoomPosition => &[0x09, 0x04, 0x47],
            Inquiry::FocusPosition => &[0x09, 0x04, 0x48],
            Inquiry::FocusMode => &[0x09, 0x04, 0x38],
            Inquiry::PanTiltPosition => &[0x09, 0x06, 0x12],
            Inquiry::Version => &[0x09, 0x00, 0x02],
        }
    }
}

/// Anything the controller can put on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Packet {
    ViscaCommand {
        to: Destination,
        command: ViscaCommand,
    },
    Inquiry {
        to: Address,
        inquiry: Inquiry,
    },
    /// `8x 2y FF`: cancel the command executing in socket `y` (1 or 2).
    Cancel {
        to: Address,
        socket: u8,
    },
    /// `88 30 01 FF`: number the chain from 1.
    AddressSet,
}

impl Packet {
    /// The IF_Clear broadcast sent when a port opens.
    pub const IF_CLEAR_BROADCAST: Packet = Packet::ViscaCommand { to: Destination::Broadcast, command: ViscaCommand::IfClear };

    pub fn command(to: Address, command: ViscaCommand) -> Packet {
        Packet::ViscaCommand { to: Destination::Camera(to), command }
    }
    pub fn inquiry(to: Address, inquiry: Inquiry) -> Packet {
        Packet::Inquiry { to, inquiry }
    }
}

/// Appends the wire form of `packet` to `dst`.
pub fn encode(packet: &Packet, dst: &mut BytesMut) {
    dst.reserve(MAX_PACKET);
    match *packet {
        Packet::ViscaCommand { to, command } => {
            dst.put_u8(to.header());
            encode_command(&command, dst);
        }
        Packet::Inquiry { to, inquiry } => {
            dst.put_u8(Destination::Camera(to).header());
            dst.put_slice(inquiry.body());
        }
        Packet::Cancel { to, socket } => {
            dst.put_u8(Destination::Camera(to).header());
            dst.put_u8(0x20 | (socket & 0x0F));
        }
        Packet::AddressSet => dst.put_slice(&[0x88, 0x30, 0x01]),
    }
    dst.put_u8(TERMINATOR);
}

/// The command body, after the header and before the terminator.
fn encode_command(command: &ViscaCommand, dst: &mut BytesMut) {
    match *command {
        ViscaCommand::Power(on) => dst.put_slice(&[0x01, 0x04, 0x00, if on { 0x02 } else { 0x03 }]),
        ViscaCommand::Zoom(drive) => {
            let p = match drive {
                ZoomDrive::Stop => 0x00,
                ZoomDrive::Tele => 0x02,
                ZoomDrive::Wide => 0x03,
                ZoomDrive::TeleVariable(s) => 0x20 | (s & 0x07),
                ZoomDrive::WideVariable(s) => 0x30 | (s & 0x07),
            };
            dst.put_slice(&[0x01, 0x04, 0x07, p]);
        }
        ViscaCommand::ZoomDirect(pos) => {
            dst.put_slice(&[0x01, 0x04, 0x47]);
            put_nibbles(dst, pos as u32, 4);
        }
        ViscaCommand::Focus(drive) => {
            let p = match drive {
                FocusDrive::Stop => 0x00,
                FocusDrive::Far => 0x02,
                FocusDrive::Near => 0x03,
                FocusDrive::FarVariable(s) => 0x20 | (s & 0x07),
                FocusDrive::NearVariable(s) => 0x30 | (s & 0x07),
            };
            dst.put_slice(&[0x01, 0x04, 0x08, p]);
        }
        ViscaCommand::FocusDirect(pos) => {
            dst.put_slice(&[0x01, 0x04, 0x48]);
            put_nibbles(dst, pos as u32, 4);
        }
        ViscaCommand::FocusAuto => dst.put_slice(&[0x01, 0x04, 0x38, 0x02]),
        ViscaCommand::FocusManual => dst.put_slice(&[0x01, 0x04, 0x38, 0x03]),
        ViscaCommand::FocusOnePush => dst.put_slice(&[0x01, 0x04, 0x18, 0x01]),
        ViscaCommand::PanTiltDrive { direction, pan_speed, tilt_speed } => {
            let [x, y] = direction.bytes();
            dst.put_slice(&[0x01, 0x06, 0x01, pan_speed_byte(pan_speed), tilt_speed_byte(tilt_speed), x, y]);
        }
        ViscaCommand::PanTiltAbsolute { pan_speed, tilt_speed, pan, tilt, nibbles } => {
            let tilt_byte = if tilt_speed == 0 { 0 } else { tilt_speed_byte(tilt_speed) };
            dst.put_slice(&[0x01, 0x06, 0x02, pan_speed_byte(pan_speed), tilt_byte]);
            put_nibbles(dst, pan as u32, nibbles.count());
            put_nibbles(dst, tilt as u32, nibbles.tilt_count());
        }
        ViscaCommand::PanTiltRelative { pan_speed, tilt_speed, pan, tilt, nibbles } => {
            dst.put_slice(&[0x01, 0x06, 0x03, pan_speed_byte(pan_speed), tilt_speed_byte(tilt_speed)]);
            put_nibbles(dst, pan as u32, nibbles.count());
            put_nibbles(dst, tilt as u32, nibbles.tilt_count());
        }
        ViscaCommand::Home => dst.put_slice(&[0x01, 0x06, 0x04]),
        ViscaCommand::PanTiltReset => dst.put_slice(&[0x01, 0x06, 0x05]),
        ViscaCommand::Memory { op, memory } => {
            let p = match op {
                MemoryOp::Reset => 0x00,
                MemoryOp::Set => 0x01,
                MemoryOp::Recall => 0x02,
            };
            // Memory numbers are 7-bit on every model we know; masking keeps FF out.
            dst.put_slice(&[0x01, 0x04, 0x3F, p, memory & 0x7F]);
        }
        ViscaCommand::IfClear => dst.put_slice(&[0x01, 0x00, 0x01]),
    }
}

fn pan_speed_byte(s: u8) -> u8 {
    s.clamp(1, PAN_SPEED_MAX)
}

fn tilt_speed_byte(s: u8) -> u8 {
    s.clamp(1, TILT_SPEED_MAX)
}

/// `count` nibbles of `value`, most significant first, each in its own `0n`
/// byte. Signed positions go in as two's complement; out-of-range values
/// wrap, which is why the camera layer checks ranges first.
fn put_nibbles(dst: &mut BytesMut, value: u32, count: usize) {
    for i in (0..count).rev() {
        dst.put_u8(((value >> (4 * i)) & 0x0F) as u8);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(p: Packet) -> Vec<u8> {
        let mut b = BytesMut::new();
        encode(&p, &mut b);
        b.to_vec()
    }

    fn cam(n: u8) -> Address {
        Address::new(n).unwrap()
    }

    /// The `XX YY` bytes of every pan-tilt drive, the variable zoom and
    /// focus speeds (`2p`/`3p`, p = 0–7), as the VISCA command list has them.
    #[test]
    fn drive_directions_and_variable_speeds_match_the_command_list() {
        use Direction::*;
        let table = [
            (Up, [0x03, 0x01]),
            (Down, [0x03, 0x02]),
            (Left, [0x01, 0x03]),
            (Right, [0x02, 0x03]),
            (UpLeft, [0x01, 0x01]),
            (UpRight, [0x02, 0x01]),
            (DownLeft, [0x01, 0x02]),
            (DownRight, [0x02, 0x02]),
            (Stop, [0x03, 0x03]),
        ];
        for (direction, xy) in table {
            let b = bytes(Packet::command(cam(1), ViscaCommand::PanTiltDrive { direction, pan_speed: 1, tilt_speed: 1 }));
            assert_eq!(b[6..8], xy, "{direction:?}");
        }
        for p in 0..=7u8 {
            let last = |c| bytes(Packet::command(cam(1), c))[4];
            assert_eq!(last(ViscaCommand::Zoom(ZoomDrive::TeleVariable(p))), 0x20 | p);
            assert_eq!(last(ViscaCommand::Zoom(ZoomDrive::WideVariable(p))), 0x30 | p);
            assert_eq!(last(ViscaCommand::Focus(FocusDrive::FarVariable(p))), 0x20 | p);
            assert_eq!(last(ViscaCommand::Focus(FocusDrive::NearVariable(p))), 0x30 | p);
        }
    }

    /// Which timeout a command gets: moves wait for the motion, power for
    /// the camera's boot, the rest are short.
    #[test]
    fn each_command_has_its_kind() {
        use ViscaCommand::*;
        let nibbles = Nibbles::Four;
        let moves = [
            ZoomDirect(0),
            FocusDirect(0),
            PanTiltAbsolute { pan_speed: 1, tilt_speed: 1, pan: 0, tilt: 0, nibbles },
            PanTiltRelative { pan_speed: 1, tilt_speed: 1, pan: 0, tilt: 0, nibbles },
            Home,
            PanTiltReset,
            Memory { op: MemoryOp::Recall, memory: 0 },
        ];
        for c in moves {
            assert_eq!(c.kind(), CommandKind::Move, "{c:?}");
        }
        assert_eq!(Power(true).kind(), CommandKind::Power);
        for c in [Memory { op: MemoryOp::Set, memory: 0 }, Zoom(ZoomDrive::Tele), FocusAuto, IfClear] {
            assert_eq!(c.kind(), CommandKind::Short, "{c:?}");
        }
    }

    #[test]
    fn addresses_print_as_their_number_and_profiles_pick_the_nibble_width() {
        assert_eq!(cam(3).to_string(), "3");
        assert_eq!([5, 4, 0].map(Nibbles::from_profile), [Nibbles::Five, Nibbles::Four, Nibbles::Four]);
    }

    #[test]
    fn known_encodings() {
        assert_eq!(bytes(Packet::command(cam(1), ViscaCommand::Power(true))), [0x81, 0x01, 0x04, 0x00, 0x02, 0xFF]);
        assert_eq!(bytes(Packet::command(cam(2), ViscaCommand::Power(false))), [0x82, 0x01, 0x04, 0x00, 0x03, 0xFF]);
        assert_eq!(bytes(Packet::command(cam(1), ViscaCommand::Zoom(ZoomDrive::TeleVariable(5)))), [0x81, 0x01, 0x04, 0x07, 0x25, 0xFF]);
        assert_eq!(
            bytes(Packet::command(cam(1), ViscaCommand::ZoomDirect(0x4000))),
            [0x81, 0x01, 0x04, 0x47, 0x04, 0x00, 0x00, 0x00, 0xFF]
        );
        assert_eq!(bytes(Packet::command(cam(1), ViscaCommand::FocusAuto)), [0x81, 0x01, 0x04, 0x38, 0x02, 0xFF]);
        assert_eq!(
            bytes(Packet::command(cam(1), ViscaCommand::PanTiltDrive { direction: Direction::UpLeft, pan_speed: 0x18, tilt_speed: 0x17 })),
            [0x81, 0x01, 0x06, 0x01, 0x18, 0x17, 0x01, 0x01, 0xFF]
        );
        assert_eq!(
            bytes(Packet::command(
                cam(1),
                ViscaCommand::PanTiltAbsolute { pan_speed: 0x18, tilt_speed: 0x14, pan: -1, tilt: 0x0123, nibbles: Nibbles::Four }
            )),
            [0x81, 0x01, 0x06, 0x02, 0x18, 0x14, 0x0F, 0x0F, 0x0F, 0x0F, 0x00, 0x01, 0x02, 0x03, 0xFF]
        );
        // Sony SRG-X/BRC-X: "8x 01 06 02 vv 00 …"; the drive's tilt speed 0 still clamps to 1.
        assert_eq!(
            bytes(Packet::command(
                cam(1),
                ViscaCommand::PanTiltAbsolute { pan_speed: 0x18, tilt_speed: 0, pan: 0, tilt: 0, nibbles: Nibbles::Four }
            ))[4..6],
            [0x18, 0x00]
        );
        assert_eq!(
            bytes(Packet::command(cam(1), ViscaCommand::PanTiltDrive { direction: Direction::Up, pan_speed: 0, tilt_speed: 0 }))[4..6],
            [0x01, 0x01]
        );
        assert_eq!(
            bytes(Packet::command(
                cam(3),
                ViscaCommand::PanTiltRelative { pan_speed: 1, tilt_speed: 1, pan: -2, tilt: 5, nibbles: Nibbles::Five }
            )),
            [0x83, 0x01, 0x06, 0x03, 0x01, 0x01, 0x0F, 0x0F, 0x0F, 0x0F, 0x0E, 0x00, 0x00, 0x00, 0x05, 0xFF]
        );
        assert_eq!(
            bytes(Packet::command(cam(1), ViscaCommand::Memory { op: MemoryOp::Recall, memory: 2 })),
            [0x81, 0x01, 0x04, 0x3F, 0x02, 0x02, 0xFF]
        );
        assert_eq!(bytes(Packet::IF_CLEAR_BROADCAST), [0x88, 0x01, 0x00, 0x01, 0xFF]);
        assert_eq!(bytes(Packet::command(cam(4), ViscaCommand::IfClear)), [0x84, 0x01, 0x00, 0x01, 0xFF]);
        assert_eq!(bytes(Packet::AddressSet), [0x88, 0x30, 0x01, 0xFF]);
        assert_eq!(bytes(Packet::Cancel { to: cam(1), socket: 2 }), [0x81, 0x22, 0xFF]);
        assert_eq!(bytes(Packet::inquiry(cam(1), Inquiry::Version)), [0x81, 0x09, 0x00, 0x02, 0xFF]);
        assert_eq!(bytes(Packet::inquiry(cam(1), Inquiry::PanTiltPosition)), [0x81, 0x09, 0x06, 0x12, 0xFF]);
    }

    #[test]
    fn speeds_are_clamped_not_wrapped() {
        let b = bytes(Packet::command(cam(1), ViscaCommand::PanTiltDrive { direction: Direction::Stop, pan_speed: 0, tilt_speed: 0xFF }));
        assert_eq!(&b[4..6], &[0x01, 0x17]);
    }

    #[test]
    fn address_range() {
        assert!(Address::new(0).is_none());
        assert!(Address::new(8).is_none());
        assert_eq!(Address::new(7).map(Address::get), Some(7));
        assert_eq!(Nibbles::Four.pan_range(), -32768..=32767);
        assert_eq!(Nibbles::Five.pan_range(), -524288..=524287);
        assert_eq!(Nibbles::Five.tilt_range(), -32768..=32767);
    }
}
