//! VISCA protocol core, sans-IO: packet types, encoding and a resynchronising
//! reply decoder. Nothing here touches a port or a clock; the camera link
//! layer (`crate::camera`) drives it.
//!
//! Wire summary (controller is address 0, cameras 1–7, broadcast 8):
//! - command `8x 01 … FF` → ACK `z0 4y FF`, then completion `z0 5y FF`
//!   (z = 8 + camera address, y = command socket 1 or 2), or error `z0 6y ee FF`;
//! - inquiry `8x 09 … FF` → answer `z0 50 … FF` (no ACK);
//! - `88 30 01 FF` AddressSet → `88 30 0w FF`; `88 01 00 01 FF` IF_Clear.

pub mod codec;
pub mod command;
pub mod ip;
pub mod reply;

pub use codec::{decode, encode, parse, DecodeError};
pub use command::{
    Address, CommandKind, Destination, Direction, FocusDrive, Inquiry, MemoryOp, Nibbles, Packet, ViscaCommand, ZoomDrive, MAX_PACKET,
    PAN_SPEED_MAX, TILT_SPEED_MAX,
};
pub use reply::{Answer, AnswerError, FocusMode, PowerState, Raw, Reply, Version, ViscaErrorCode};
