//! The camera layer's errors, typed so callers can tell a link failure
//! (timeout, unplugged, port closed: retry later, check the cable) from a
//! device refusal (a VISCA error reply: retrying will not help).
//!
//! The `Display` texts are part of the contract: they reach MQTT replies,
//! device results and health as they are, and tests assert them.

use std::fmt;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::visca::{Address, Answer, AnswerError, ViscaErrorCode};

/// Which reply did not come in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waited {
    Ack,
    Answer,
    Completion,
}

impl fmt::Display for Waited {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Waited::Ack => "ACK",
            Waited::Answer => "answer",
            Waited::Completion => "completion",
        })
    }
}

/// An OS error from the serial port. Shared so that a [`LinkDown`] can be
/// cloned to every caller it fails; compared by kind and text, which is all
/// an `io::Error` offers.
#[derive(Debug, Clone)]
pub struct PortIoError(Arc<io::Error>);

impl PortIoError {
    pub fn kind(&self) -> io::ErrorKind {
        self.0.kind()
    }
}

impl From<io::Error> for PortIoError {
    fn from(e: io::Error) -> Self {
        PortIoError(Arc::new(e))
    }
}

impl PartialEq for PortIoError {
    fn eq(&self, other: &Self) -> bool {
        self.0.kind() == other.0.kind() && self.0.to_string() == other.0.to_string()
    }
}

impl fmt::Display for PortIoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Why a camera cannot be reached. Always a link problem, never a refusal:
/// the port is down or the camera is silent. Its text is also the health
/// `reason`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkDown {
    #[error("serial port not opened yet")]
    NotOpened,
    #[error("cannot open {} {port}: {error}", port_kind(port))]
    OpenFailed { port: String, error: PortIoError },
    /// End of file on read: what an unplugged USB adapter looks like.
    #[error("{} {port} closed{}", port_kind(port), if port_kind(port) == "serial port" { " (unplugged?)" } else { "" })]
    Unplugged { port: String },
    #[error("{} {port} read failed: {error}", port_kind(port))]
    ReadFailed { port: String, error: PortIoError },
    #[error("{} {port} write failed: {error}", port_kind(port))]
    WriteFailed { port: String, error: PortIoError },
    #[error("{} {port} write timed out", port_kind(port))]
    WriteTimedOut { port: String },
    /// The port task is ending (daemon shutting down).
    #[error("camera link stopped")]
    Stopped,
    /// The camera did not reply in time (its last request or health probe).
    #[error("no {waited} within {} ms", after.as_millis())]
    Silent { waited: Waited, after: Duration },
    #[error("no reply to AddressSet within {} ms", after.as_millis())]
    NotAddressed { after: Duration },
    #[error("not on the chain (AddressSet found {found} camera(s))")]
    NotOnChain { found: u8 },
    #[error("no camera at address {0} on this port")]
    NoSuchCamera(Address),
}

/// How a port is named in messages: an IP camera's "port" is its URL.
fn port_kind(port: &str) -> &'static str {
    if port.starts_with("visca-udp://") || port.starts_with("visca-tcp://") {
        "connection"
    } else {
        "serial port"
    }
}

impl LinkDown {
    /// Whether the reason's text mentions `text`; keeps `reason.contains(..)`
    /// working for callers written when the reason was a `String`.
    pub fn contains(&self, text: &str) -> bool {
        self.to_string().contains(text)
    }
}

/// Why a request failed, as the link state machine reports it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Failure {
    /// The camera answered with a VISCA error: a refusal, never retried.
    #[error("camera refused: {0}")]
    Refused(ViscaErrorCode),
    /// No reply in time, after `attempts` sends.
    #[error("no {waited} within {} ms{}", after.as_millis(), attempts_note(*attempts))]
    Timeout { waited: Waited, after: Duration, attempts: u32 },
    /// The serial port closed while the request was pending.
    #[error("{0}")]
    PortClosed(LinkDown),
    /// The camera was already offline (the reason) and did not answer now either.
    #[error("camera offline: {0}")]
    Offline(LinkDown),
    /// The camera's queue is full: refused at once, nothing sent.
    #[error("camera busy: {queued} requests queued")]
    Busy { queued: usize },
    /// Cancelled on request ([`crate::camera::CameraHandle::cancel`]).
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    BadAnswer(AnswerError),
    /// The camera reported a new command in a socket we thought busy; the
    /// earlier command's fate is unknown.
    #[error("completion lost: camera reused socket {0}")]
    Lost(u8),
}

impl Failure {
    /// Timeouts and port loss are link failures; the rest are answers from the camera or from us.
    pub fn is_link(&self) -> bool {
        matches!(self, Failure::Timeout { .. } | Failure::PortClosed(_) | Failure::Lost(_))
    }

    /// The camera answered with a VISCA error.
    pub fn is_refusal(&self) -> bool {
        matches!(self, Failure::Refused(_))
    }
}

fn attempts_note(n: u32) -> String {
    if n > 1 {
        format!(" ({n} attempts)")
    } else {
        String::new()
    }
}

/// A request rejected before anything was sent: it does not fit the profile.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InvalidRequest {
    #[error("preset {preset} outside 1–{count}")]
    PresetOutOfRange { preset: u8, count: u8 },
    #[error("preset {preset} has no memory byte in profile {profile}")]
    NoMemoryByte { preset: u8, profile: String },
    #[error("{axis} {value}° outside {min}…{max}°")]
    AxisOutOfRange { axis: AxisName, value: f64, min: f64, max: f64 },
    #[error("zoom {value}× outside {min}…{max}×")]
    ZoomOutOfRange { value: f64, min: f64, max: f64 },
    #[error("relative move {pan}°, {tilt}° larger than the camera's range")]
    RelativeTooLarge { pan: f64, tilt: f64 },
    #[error("position {pan},{tilt} units does not fit the VISCA field")]
    UnitsOverflow { pan: i32, tilt: i32 },
}

/// A pan/tilt axis, in [`InvalidRequest`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AxisName {
    Pan,
    Tilt,
}

impl fmt::Display for AxisName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            AxisName::Pan => "pan",
            AxisName::Tilt => "tilt",
        })
    }
}

/// The camera answered, but not with what the request calls for.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BadAnswer {
    /// An inquiry's answer that does not parse.
    #[error("{0}")]
    Malformed(AnswerError),
    /// An answer of another kind than the inquiry asks for.
    #[error("{0:?}")]
    Unexpected(Answer),
    #[error("{0:?} to a command")]
    AnswerToCommand(Answer),
    #[error("completion to an inquiry")]
    CompletionToInquiry,
}

/// Why a camera request failed: what [`crate::camera::CameraHandle`] returns.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CameraError {
    /// The camera is known to be unreachable (port gone, or silent): a link failure.
    #[error("camera offline: {reason}")]
    Offline { reason: LinkDown },
    /// The link lost this request: timeout or port closed while pending.
    #[error("link failure: {0}")]
    Link(Failure),
    /// The camera answered with a VISCA error; retrying will not help.
    #[error("camera refused the command: {code}")]
    Refused { code: ViscaErrorCode },
    /// The camera's queue is full; refused at once without sending. Try
    /// again when earlier requests have finished.
    #[error("camera busy: {queued} requests queued")]
    Busy { queued: usize },
    #[error("cancelled")]
    Cancelled,
    /// Rejected before sending: out of the profile's range.
    #[error("invalid request: {0}")]
    Invalid(InvalidRequest),
    #[error("unexpected answer from the camera: {0}")]
    BadAnswer(BadAnswer),
    /// The port task is gone (daemon shutting down).
    #[error("camera link stopped")]
    Stopped,
}

impl CameraError {
    /// A link failure: the camera could not be reached or did not reply.
    pub fn is_link(&self) -> bool {
        matches!(self, CameraError::Offline { .. } | CameraError::Link(_))
    }

    /// A device refusal: the camera replied with a VISCA error.
    pub fn is_refusal(&self) -> bool {
        matches!(self, CameraError::Refused { .. })
    }
}

impl From<Failure> for CameraError {
    fn from(f: Failure) -> Self {
        match f {
            Failure::Refused(code) => CameraError::Refused { code },
            Failure::Offline(reason) => CameraError::Offline { reason },
            Failure::Busy { queued } => CameraError::Busy { queued },
            Failure::Cancelled => CameraError::Cancelled,
            Failure::BadAnswer(e) => CameraError::BadAnswer(BadAnswer::Malformed(e)),
            f @ (Failure::Timeout { .. } | Failure::PortClosed(_) | Failure::Lost(_)) => CameraError::Link(f),
        }
    }
}

impl From<InvalidRequest> for CameraError {
    fn from(e: InvalidRequest) -> Self {
        CameraError::Invalid(e)
    }
}

impl From<BadAnswer> for CameraError {
    fn from(e: BadAnswer) -> Self {
        CameraError::BadAnswer(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// These texts reach MQTT replies, device results and health: they must not drift.
    #[test]
    fn messages_are_the_contract_texts() {
        let port = || "/dev/ttyUSB0".to_string();
        let io = |k, m: &str| PortIoError::from(io::Error::new(k, m.to_string()));
        let silent = LinkDown::Silent { waited: Waited::Ack, after: Duration::from_millis(200) };
        let cases: Vec<(CameraError, &str)> = vec![
            (CameraError::Offline { reason: silent.clone() }, "camera offline: no ACK within 200 ms"),
            (
                Failure::Timeout { waited: Waited::Ack, after: Duration::from_millis(200), attempts: 3 }.into(),
                "link failure: no ACK within 200 ms (3 attempts)",
            ),
            (
                Failure::PortClosed(LinkDown::Unplugged { port: port() }).into(),
                "link failure: serial port /dev/ttyUSB0 closed (unplugged?)",
            ),
            (
                Failure::PortClosed(LinkDown::WriteFailed { port: port(), error: io(io::ErrorKind::Other, "EIO") }).into(),
                "link failure: serial port /dev/ttyUSB0 write failed: EIO",
            ),
            (Failure::Refused(ViscaErrorCode::NotExecutable).into(), "camera refused the command: not executable"),
            (Failure::Busy { queued: 8 }.into(), "camera busy: 8 requests queued"),
            (InvalidRequest::PresetOutOfRange { preset: 17, count: 16 }.into(), "invalid request: preset 17 outside 1–16"),
            (
                InvalidRequest::AxisOutOfRange { axis: AxisName::Pan, value: 200.0, min: -170.0, max: 170.0 }.into(),
                "invalid request: pan 200° outside -170…170°",
            ),
            (BadAnswer::CompletionToInquiry.into(), "unexpected answer from the camera: completion to an inquiry"),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
        let open = LinkDown::OpenFailed { port: port(), error: io(io::ErrorKind::NotFound, "no such device") };
        assert_eq!(open.to_string(), "cannot open serial port /dev/ttyUSB0: no such device");
        assert!(open.contains("cannot open"));
    }

    #[test]
    fn link_failures_and_refusals_are_told_apart() {
        let timeout = Failure::Timeout { waited: Waited::Completion, after: Duration::from_secs(1), attempts: 1 };
        assert!(timeout.is_link() && !timeout.is_refusal());
        assert!(CameraError::from(timeout).is_link());
        let offline = CameraError::from(Failure::Offline(LinkDown::Stopped));
        assert!(offline.is_link() && !offline.is_refusal());
        for code in [
            ViscaErrorCode::Syntax,
            ViscaErrorCode::NotExecutable,
            ViscaErrorCode::BufferFull,
            ViscaErrorCode::Cancelled,
            ViscaErrorCode::NoSocket,
        ] {
            let f = Failure::Refused(code);
            assert!(f.is_refusal() && !f.is_link());
            let e = CameraError::from(f);
            assert!(e.is_refusal() && !e.is_link(), "{e}");
        }
        for e in [CameraError::from(Failure::Busy { queued: 8 }), CameraError::Cancelled] {
            assert!(!e.is_link() && !e.is_refusal(), "{e}");
        }
    }
}
