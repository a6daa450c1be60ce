//! What a camera is: its place on a chain and its model's profile (ranges,
//! unit conversions, timing, quirks). Read from `device-profiles/cameras/`
//! by the config loader; the camera layer never sees TOML.

use std::path::PathBuf;
use std::time::Duration;

use super::error::InvalidRequest;

/// One PTZ camera on a VISCA chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Camera {
    pub name: String,
    pub profile: CameraProfile,
    /// Serial device path; several cameras may share one port (daisy chain).
    pub port: PathBuf,
    pub baud: u32,
    /// VISCA address 1–7.
    pub address: u8,
    /// An IP camera (`[[camera]] url`): then `port` is the URL's text,
    /// `address` 1 and `baud` unused.
    pub url: Option<CameraUrl>,
}

/// Which VISCA-over-IP form a camera speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpForm {
    /// Sony's framing on UDP (8-byte header, sequence numbers): `visca-udp://`.
    Udp,
    /// Raw VISCA bytes on one TCP connection: `visca-tcp://`.
    Tcp,
}

/// `visca-udp://HOST[:PORT]` or `visca-tcp://HOST[:PORT]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraUrl {
    pub form: IpForm,
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    pub port: u16,
}

impl CameraUrl {
    /// Parses a camera URL; the error says what is wrong, for config messages.
    pub fn parse(s: &str) -> Result<CameraUrl, String> {
        let (form, rest, default) = if let Some(r) = s.strip_prefix("visca-udp://") {
            (IpForm::Udp, r, crate::visca::ip::VISCA_UDP_PORT)
        } else if let Some(r) = s.strip_prefix("visca-tcp://") {
            (IpForm::Tcp, r, crate::visca::ip::VISCA_TCP_PORT)
        } else {
            return Err(format!("`url` must start with visca-udp:// or visca-tcp://, got `{s}`"));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.is_empty() || rest.contains(['/', '?', '#', '@', ' ']) {
            return Err(format!("`url` must be visca-udp://HOST[:PORT] or visca-tcp://HOST[:PORT] (no path, user or query), got `{s}`"));
        }
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(|| format!("`url` has an unclosed `[` in `{s}`"))?;
            match after {
                "" => (h.to_string(), None),
                p if p.starts_with(':') => (h.to_string(), Some(&p[1..])),
                _ => return Err(format!("`url` has junk after the IPv6 address in `{s}`")),
            }
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (rest.to_string(), None),
            }
        };
        if host.is_empty() {
            return Err(format!("`url` has no host in `{s}`"));
        }
        let port = match port {
            None => default,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(format!("`url` port must be 1–65535, got `{p}` in `{s}`")),
            },
        };
        Ok(CameraUrl { form, host, port })
    }

    pub fn scheme(&self) -> &'static str {
        match self.form {
            IpForm::Udp => "visca-udp",
            IpForm::Tcp => "visca-tcp",
        }
    }
}

impl std::fmt::Display for CameraUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "{}://[{}]:{}", self.scheme(), self.host, self.port)
        } else {
            write!(f, "{}://{}:{}", self.scheme(), self.host, self.port)
        }
    }
}

/// A camera model: VISCA ranges, unit conversions and quirks.
#[derive(Debug, Clone, PartialEq)]
pub struct CameraProfile {
    /// File stem, e.g. `generic-visca`.
    pub id: String,
    pub label: String,
    /// Number of presets as the user numbers them (1..=preset_count).
    pub preset_count: u8,
    /// Memory byte sent for user preset 1 (Sony: 0x00, so preset 1 → `00`).
    pub preset_memory_offset: u8,
    pub pan: Axis,
    pub tilt: Axis,
    pub zoom: Zoom,
    /// Nibbles per pan/tilt position field (4 on most Sony, 5 on some).
    pub pan_tilt_nibbles: u8,
    /// Maximum VISCA pan speed byte (e.g. 0x18) and tilt speed byte (e.g. 0x14/0x17).
    pub max_pan_speed: u8,
    pub max_tilt_speed: u8,
    /// Quirk: the byte sent as tilt speed in Pan-tiltDrive AbsolutePosition
    /// when it is not `max_tilt_speed` (Sony's SRG-X/BRC-X lists fix it at 00).
    pub absolute_tilt_speed: Option<u8>,
    pub timing: CameraTiming,
    /// Quirk: camera may send completion without a preceding ACK.
    pub completion_without_ack: bool,
    /// Transports the model supports (`serial`, `visca-udp`, `visca-tcp`);
    /// informational, empty when the profile does not say.
    pub transports: Vec<String>,
    /// The CAM_VersionInq ids this profile fits (`studiod discover`); `None`
    /// when no source gives them.
    pub identity: Option<CameraIdentity>,
    /// Dotted keys of the profile file whose values no source confirms
    /// (`studiod check` warns about them).
    pub unconfirmed: Vec<String>,
}

impl CameraProfile {
    /// The VISCA memory byte for a user preset number (1-based, as on remotes).
    pub fn memory_byte(&self, preset: u8) -> Result<u8, InvalidRequest> {
        if preset == 0 || preset > self.preset_count {
            return Err(InvalidRequest::PresetOutOfRange { preset, count: self.preset_count });
        }
        self.preset_memory_offset
            .checked_add(preset - 1)
            .filter(|m| *m <= 0x7F)
            .ok_or_else(|| InvalidRequest::NoMemoryByte { preset, profile: self.id.clone() })
    }

    /// The (pan, tilt) speed bytes of an absolute move: as fast as the
    /// model goes, with the tilt byte its command list prescribes.
    pub fn absolute_speeds(&self) -> (u8, u8) {
        (self.max_pan_speed, self.absolute_tilt_speed.unwrap_or(self.max_tilt_speed))
    }
}

/// Vendor and model ids as a camera reports them (`y0 50 GG GG HH HH …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraIdentity {
    pub vendor: u16,
    pub models: Vec<u16>,
}

/// A linear axis: degrees ↔ signed VISCA position units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Axis {
    pub min_deg: f64,
    pub max_deg: f64,
    /// VISCA units per degree (e.g. 14.4 for pan on the SRG-300H family).
    pub units_per_degree: f64,
}

impl Axis {
    pub fn to_units(&self, deg: f64) -> i32 {
        (deg.clamp(self.min_deg, self.max_deg) * self.units_per_degree).round() as i32
    }
    pub fn to_degrees(&self, units: i32) -> f64 {
        units as f64 / self.units_per_degree
    }
    pub fn contains(&self, deg: f64) -> bool {
        deg >= self.min_deg && deg <= self.max_deg
    }
}

/// Zoom: optical magnification ↔ VISCA zoom position (0x0000 = wide).
/// `table` holds (magnification, position) points, increasing, interpolated linearly.
#[derive(Debug, Clone, PartialEq)]
pub struct Zoom {
    pub table: Vec<(f64, u16)>,
}

impl Zoom {
    pub fn max_magnification(&self) -> f64 {
        self.table.last().map(|p| p.0).unwrap_or(1.0)
    }
    pub fn contains(&self, mag: f64) -> bool {
        mag >= self.table[0].0 && mag <= self.max_magnification()
    }
    pub fn to_position(&self, mag: f64) -> u16 {
        let t = &self.table;
        let mag = mag.clamp(t[0].0, self.max_magnification());
        for w in t.windows(2) {
            let ((m0, p0), (m1, p1)) = (w[0], w[1]);
            if mag <= m1 {
                let f = if m1 > m0 { (mag - m0) / (m1 - m0) } else { 0.0 };
                return (p0 as f64 + f * (p1 as f64 - p0 as f64)).round() as u16;
            }
        }
        t.last().map(|p| p.1).unwrap_or(0)
    }
    pub fn to_magnification(&self, pos: u16) -> f64 {
        let t = &self.table;
        for w in t.windows(2) {
            let ((m0, p0), (m1, p1)) = (w[0], w[1]);
            if pos <= p1 {
                let f = if p1 > p0 { (pos as f64 - p0 as f64) / (p1 as f64 - p0 as f64) } else { 0.0 };
                return m0 + f.clamp(0.0, 1.0) * (m1 - m0);
            }
        }
        self.max_magnification()
    }
}

/// Link timing for one camera model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraTiming {
    /// Time allowed for the ACK (default 200 ms).
    pub ack: Duration,
    /// Time allowed for the completion of a short command (power inquiry, stop, …).
    pub completion_short: Duration,
    /// Time allowed for the completion of a move or preset recall.
    pub completion_move: Duration,
    /// Time allowed for power on/off completion.
    pub completion_power: Duration,
}

impl Default for CameraTiming {
    fn default() -> Self {
        CameraTiming {
            ack: Duration::from_millis(200),
            completion_short: Duration::from_millis(1000),
            completion_move: Duration::from_secs(10),
            completion_power: Duration::from_secs(30),
        }
    }
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn parses_both_forms_with_default_ports() {
        let u = CameraUrl::parse("visca-udp://127.0.0.1").unwrap();
        assert_eq!(u, CameraUrl { form: IpForm::Udp, host: "127.0.0.1".into(), port: 52381 });
        let t = CameraUrl::parse("visca-tcp://cam-3.local:1259").unwrap();
        assert_eq!(t, CameraUrl { form: IpForm::Tcp, host: "cam-3.local".into(), port: 1259 });
        assert_eq!(CameraUrl::parse("visca-tcp://10.0.0.9").unwrap().port, 5678);
        let v6 = CameraUrl::parse("visca-udp://[::1]:9000").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 9000));
        assert_eq!(v6.to_string(), "visca-udp://[::1]:9000");
        assert_eq!(t.to_string(), "visca-tcp://cam-3.local:1259");
    }

    #[test]
    fn refuses_what_is_not_a_camera_url() {
        for bad in [
            "udp://1.2.3.4",
            "visca-udp://",
            "visca-udp://h:0",
            "visca-udp://h:70000",
            "visca-tcp://h/x",
            "visca-udp://u@h",
            "visca-udp://:5",
        ] {
            assert!(CameraUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
