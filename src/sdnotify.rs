//! systemd's notify protocol (`Type=notify`, `WatchdogSec=`), by hand: it is
//! one datagram to `$NOTIFY_SOCKET`, not worth a dependency. Without
//! `$NOTIFY_SOCKET` (not under systemd) every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

fn send(state: &str) {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::net::SocketAddr;
    let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
    let Ok(sock) = UnixDatagram::unbound() else { return };
    // "@name" is a Linux abstract socket; anything else a filesystem path.
    let sent = match path.as_bytes().strip_prefix(b"@") {
        Some(name) => SocketAddr::from_abstract_name(name).and_then(|a| sock.send_to_addr(state.as_bytes(), &a)),
        None => sock.send_to(state.as_bytes(), &path),
    };
    if let Err(e) = sent {
        tracing::debug!(error = %e, "sd_notify failed");
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
