//! systemd's notify protocol (`Type=notify`, `WatchdogSec=`), by hand: it is
//! one datagram to `$NOTIFY_SOCKET`, not worth a dependency. Without
//! `$NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn send(state: &str) {
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    // Abstract sockets ("@name") are not supported by std without unsafe; systemd
    // uses a filesystem path for services by default.
    if path.to_string_lossy().starts_with('@') {
        return;
    }
    if let Ok(sock) = UnixDatagram::unbound() {
        if let Err(e) = sock.send_to(state.as_bytes(), &path) {
            tracing::debug!(error = %e, "sd_notify failed");
        }
    }
}

/// Config loaded and devices being opened: systemd may consider us started.
pub fn ready() {
    send("READY=1");
}

pub fn stopping() {
    send("STOPPING=1");
}

pub fn reloading() {
    send("RELOADING=1");
}

pub fn status(s: &str) {
    send(&format!("STATUS={s}"));
}

pub fn watchdog() {
    send("WATCHDOG=1");
}

/// Half the watchdog interval systemd asked for, if any.
pub fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok()) {
        if pid != std::process::id() {
            return None;
        }
    }
    Some(Duration::from_micros(usec / 2))
}
