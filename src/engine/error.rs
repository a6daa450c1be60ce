//! The engine's typed errors: why a device's part failed, and why the device
//! actors could not be restarted on reload.

use std::time::Duration;

use crate::camera::CameraError;
use crate::command::DeviceResult;
use crate::lighting::LightingError;
use crate::osc::OscError;

/// Why one device's part of a command failed. Its `Display` is the
/// plain-language `error` of that device in the reply.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The output or actor this part needs was not started (or is gone).
    #[error("{0} is not running")]
    NotRunning(&'static str),
    #[error(transparent)]
    Camera(#[from] CameraError),
    #[error(transparent)]
    Lighting(#[from] LightingError),
    #[error(transparent)]
    Osc(#[from] OscError),
    /// The engine's own limit on top of the link's timeouts.
    #[error("no completion within {} ms", .0.as_millis())]
    Timeout(Duration),
}

/// The one place a device's result becomes the reply's per-device entry.
pub(crate) fn device_result<T, E: std::fmt::Display>(r: Result<T, E>) -> DeviceResult {
    match r {
        Ok(_) => DeviceResult::ok(),
        Err(e) => DeviceResult::failed(e),
    }
}

/// Why [`crate::engine::Respawn`] could not bring up the new device set.
#[derive(Debug, thiserror::Error)]
pub enum RespawnError {
    /// Starting the new device actors failed (a port, a socket); the source
    /// chain says which.
    #[error("devices could not be restarted")]
    Start(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `e: cause: cause…`, as one line for a reply's message.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        s.push_str(": ");
        s.push_str(&c.to_string());
        next = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_errors_read_as_before() {
        assert_eq!(DeviceError::NotRunning("lighting output").to_string(), "lighting output is not running");
        assert_eq!(DeviceError::Timeout(Duration::from_millis(2500)).to_string(), "no completion within 2500 ms");
        assert_eq!(DeviceError::from(CameraError::Cancelled).to_string(), "cancelled");
        assert_eq!(device_result(Ok::<_, DeviceError>(())), DeviceResult::ok());
        assert_eq!(device_result::<(), _>(Err(DeviceError::NotRunning("OSC output"))), DeviceResult::failed("OSC output is not running"));
    }

    #[test]
    fn respawn_error_message_keeps_its_causes() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such port");
        let e = RespawnError::Start(Box::new(io));
        assert_eq!(chain(&e), "devices could not be restarted: no such port");
    }
}
