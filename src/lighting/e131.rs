//! ANSI E1.31 (sACN) encoding, by hand: a pure, sans-IO codec.
//!
//! No crate fitted: `sacn` (the one maintained E1.31 crate) brings its own
//! sockets, threads and multicast joins; we need only two fixed layouts,
//! unicast, from our own socket. Layout per ANSI E1.31-2016 (Table 4-1 data
//! packet, Table 4-3 synchronization packet), all fields big-endian:
//!
//! ```text
//! data (638 bytes for 512 slots)          sync (49 bytes)
//!   0 preamble size 0x0010                  0..38 root layer as for data, but
//!   2 postamble size 0x0000                       vector 0x00000008 (EXTENDED)
//!   4 "ASC-E1.17\0\0\0"                    38 flags|length 0x7000 | 11
//!  16 flags|length 0x7000 | (len-16)        40 vector 0x00000001 (SYNCHRONIZATION)
//!  18 vector 0x00000004 (ROOT_E131_DATA)    44 sequence number
//!  22 CID (16 bytes)                        45 synchronization address
//!  38 flags|length 0x7000 | (len-38)        47 reserved (0)
//!  40 vector 0x00000002 (E131_DATA_PACKET)
//!  44 source name (64 bytes, NUL-terminated UTF-8)
//! 108 priority 0–200
//! 109 synchronization address (0: none)
//! 111 sequence number
//! 112 options (0x40 stream terminated, 0x20 force sync, 0x80 preview)
//! 113 universe 1–63999
//! 115 flags|length 0x7000 | (len-115)
//! 117 DMP vector 0x02, 118 address & data type 0xa1,
//! 119 first property address 0, 121 address increment 1,
//! 123 property value count (1 + slots), 125 START code 0, 126 slots
//! ```
//!
//! Nothing here does I/O; the sender is in [`super::sacn`].

/// The default sACN port (ACN SDT multicast port, used for unicast too).
pub const PORT: u16 = 5568;
/// Bytes before the DMX slots in a data packet.
pub const HEADER_LEN: usize = 126;
/// A data packet with a full universe.
pub const MAX_DATA_LEN: usize = HEADER_LEN + 512;
/// A universe synchronization packet.
pub const SYNC_LEN: usize = 49;
/// Universes a source may send data on (E1.31 §9.1.1).
pub const UNIVERSES: std::ops::RangeInclusive<u16> = 1..=63999;
/// Highest priority (E1.31 §6.2.3).
pub const MAX_PRIORITY: u8 = 200;
pub const DEFAULT_PRIORITY: u8 = 100;

/// Options bit: the source stops sending this universe (E1.31 §6.2.6).
pub const OPT_STREAM_TERMINATED: u8 = 0x40;

const ACN_ID: [u8; 12] = *b"ASC-E1.17\0\0\0";
const VECTOR_ROOT_E131_DATA: u32 = 0x0000_0004;
const VECTOR_ROOT_E131_EXTENDED: u32 = 0x0000_0008;
const VECTOR_E131_DATA_PACKET: u32 = 0x0000_0002;
const VECTOR_E131_EXTENDED_SYNCHRONIZATION: u32 = 0x0000_0001;
const VECTOR_DMP_SET_PROPERTY: u8 = 0x02;

/// Component identifier: 16 bytes, a UUID, stable for one source.
pub type Cid = [u8; 16];

/// The fields of one data packet besides the slots.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataHeader<'a> {
    pub cid: &'a Cid,
    pub source_name: &'a str,
    pub priority: u8,
    /// Universe whose sync packet releases this data (0: act at once).
    pub sync_address: u16,
    pub sequence: u8,
    pub options: u8,
    pub universe: u16,
}

fn flags_length(len: usize) -> [u8; 2] {
    (0x7000 | (len as u16 & 0x0FFF)).to_be_bytes()
}

fn root_layer(out: &mut [u8], len: usize, vector: u32, cid: &Cid) {
    out[0..2].copy_from_slice(&0x0010u16.to_be_bytes());
    out[2..4].copy_from_slice(&0u16.to_be_bytes());
    out[4..16].copy_from_slice(&ACN_ID);
    out[16..18].copy_from_slice(&flags_length(len - 16));
    out[18..22].copy_from_slice(&vector.to_be_bytes());
    out[22..38].copy_from_slice(cid);
}

/// Encode a data packet into `out` (at least `HEADER_LEN + slots.len()`
/// bytes) and return its length. `slots` is 1–512 bytes (longer is cut at
/// 512). The source name is cut at 63 bytes on a character boundary.
pub fn encode_data(out: &mut [u8], h: &DataHeader<'_>, slots: &[u8]) -> usize {
    let slots = &slots[..slots.len().min(512)];
    let len = HEADER_LEN + slots.len();
    let out = &mut out[..len];
    root_layer(out, len, VECTOR_ROOT_E131_DATA, h.cid);
    out[38..40].copy_from_slice(&flags_length(len - 38));
    out[40..44].copy_from_slice(&VECTOR_E131_DATA_PACKET.to_be_bytes());
    out[44..108].fill(0);
    let mut n = h.source_name.len().min(63);
    while !h.source_name.is_char_boundary(n) {
        n -= 1;
    }
    out[44..44 + n].copy_from_slice(&h.source_name.as_bytes()[..n]);
    out[108] = h.priority.min(MAX_PRIORITY);
    out[109..111].copy_from_slice(&h.sync_address.to_be_bytes());
    out[111] = h.sequence;
    out[112] = h.options;
    out[113..115].copy_from_slice(&h.universe.to_be_bytes());
    out[115..117].copy_from_slice(&flags_length(len - 115));
    out[117] = VECTOR_DMP_SET_PROPERTY;
    out[118] = 0xa1;
    out[119..121].copy_from_slice(&0u16.to_be_bytes());
    out[121..123].copy_from_slice(&1u16.to_be_bytes());
    out[123..125].copy_from_slice(&(1 + slots.len() as u16).to_be_bytes());
    out[125] = 0; // START code: dimmer data
    out[126..].copy_from_slice(slots);
    len
}

/// Encode a universe synchronization packet (E1.31-2016 §6.3).
pub fn encode_sync(cid: &Cid, sequence: u8, sync_address: u16) -> [u8; SYNC_LEN] {
    let mut p = [0u8; SYNC_LEN];
    root_layer(&mut p, SYNC_LEN, VECTOR_ROOT_E131_EXTENDED, cid);
    p[38..40].copy_from_slice(&flags_length(SYNC_LEN - 38));
    p[40..44].copy_from_slice(&VECTOR_E131_EXTENDED_SYNCHRONIZATION.to_be_bytes());
    p[44] = sequence;
    p[45..47].copy_from_slice(&sync_address.to_be_bytes());
    p
}

/// A random (version 4) UUID for a new CID, from `bytes` of entropy.
pub fn cid_from_random(mut bytes: [u8; 16]) -> Cid {
    bytes[6] = (bytes[6] & 0x0F) | 0x40;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    bytes
}

/// `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, as the CID is kept on disk.
pub fn cid_to_string(cid: &Cid) -> String {
    let hex: String = cid.iter().map(|b| format!("{b:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Parse [`cid_to_string`]'s form (dashes optional, any case).
pub fn cid_from_str(s: &str) -> Option<Cid> {
    let hex: Vec<u8> = s.trim().bytes().filter(|&b| b != b'-').collect();
    if hex.len() != 32 {
        return None;
    }
    let mut cid = [0u8; 16];
    for (i, pair) in hex.chunks(2).enumerate() {
        cid[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
    }
    Some(cid)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CID: Cid = [0xA0, 1, 2, 3, 4, 5, 0x46, 7, 0x88, 9, 10, 11, 12, 13, 14, 15];

    #[test]
    fn data_packet_layout() {
        let data: Vec<u8> = (0..512).map(|i| (i % 251) as u8).collect();
        let mut buf = [0u8; MAX_DATA_LEN];
        let h = DataHeader { cid: &CID, source_name: "la-03", priority: 150, sync_address: 7000, sequence: 42, options: 0, universe: 513 };
        let n = encode_data(&mut buf, &h, &data);
        assert_eq!(n, 638);
        let p = &buf[..n];
        assert_eq!(&p[0..4], &[0x00, 0x10, 0x00, 0x00]);
        assert_eq!(&p[4..16], b"ASC-E1.17\0\0\0");
        assert_eq!(&p[16..18], &[0x72, 0x6e], "root flags|length: 622");
        assert_eq!(&p[18..22], &[0, 0, 0, 4]);
        assert_eq!(&p[22..38], &CID);
        assert_eq!(&p[38..40], &[0x72, 0x58], "framing flags|length: 600");
        assert_eq!(&p[40..44], &[0, 0, 0, 2]);
        assert_eq!(&p[44..49], b"la-03");
        assert!(p[49..108].iter().all(|&b| b == 0));
        assert_eq!(p[108], 150);
        assert_eq!(&p[109..111], &7000u16.to_be_bytes());
        assert_eq!((p[111], p[112]), (42, 0));
        assert_eq!(&p[113..115], &[0x02, 0x01]);
        assert_eq!(&p[115..117], &[0x72, 0x0b], "DMP flags|length: 523");
        assert_eq!(&p[117..126], &[0x02, 0xa1, 0, 0, 0, 1, 0x02, 0x01, 0]);
        assert_eq!(&p[126..], &data[..]);
    }

    #[test]
    fn short_universes_names_and_priorities_are_bounded() {
        let mut buf = [0xEEu8; MAX_DATA_LEN];
        let long = "é".repeat(40); // 80 bytes: cut at 62 (a char boundary), NUL-terminated
        let h = DataHeader {
            cid: &CID,
            source_name: &long,
            priority: 255,
            sync_address: 0,
            sequence: 0,
            options: OPT_STREAM_TERMINATED,
            universe: 1,
        };
        let n = encode_data(&mut buf, &h, &[1, 2, 3]);
        assert_eq!(n, 129);
        assert_eq!(&buf[16..18], &(0x7000u16 | 113).to_be_bytes());
        assert_eq!(&buf[38..40], &(0x7000u16 | 91).to_be_bytes());
        assert_eq!(&buf[115..117], &(0x7000u16 | 14).to_be_bytes());
        assert_eq!(&buf[123..125], &4u16.to_be_bytes());
        assert_eq!(std::str::from_utf8(&buf[44..106]).unwrap(), &long[..62]);
        assert!(buf[106..108].iter().all(|&b| b == 0), "NUL-terminated");
        assert_eq!((buf[108], buf[112]), (200, 0x40), "priority capped at 200; terminated bit");
        assert_eq!(&buf[126..129], &[1, 2, 3]);
    }

    #[test]
    fn sync_packet_layout() {
        let p = encode_sync(&CID, 9, 7000);
        assert_eq!(&p[0..16], b"\x00\x10\x00\x00ASC-E1.17\0\0\0");
        assert_eq!(&p[16..18], &[0x70, 33]);
        assert_eq!(&p[18..22], &[0, 0, 0, 8]);
        assert_eq!(&p[22..38], &CID);
        assert_eq!(&p[38..40], &[0x70, 11]);
        assert_eq!(&p[40..44], &[0, 0, 0, 1]);
        assert_eq!(p[44], 9);
        assert_eq!(&p[45..47], &7000u16.to_be_bytes());
        assert_eq!(&p[47..49], &[0, 0]);
    }

    #[test]
    fn cid_round_trips_as_text_and_is_a_v4_uuid() {
        let cid = cid_from_random([0xFF; 16]);
        assert_eq!(cid[6] >> 4, 4);
        assert_eq!(cid[8] >> 6, 0b10);
        let s = cid_to_string(&cid);
        assert_eq!(s.len(), 36);
        assert_eq!(cid_from_str(&s), Some(cid));
        assert_eq!(cid_from_str(&s.to_uppercase().replace('-', "")), Some(cid));
        assert_eq!(cid_from_str("nope"), None);
        assert_eq!(cid_from_str(&"zz".repeat(16)), None);
    }
}
