//! Whether the OS says its clock is synchronised, for `state.clock_synced`
//! (CONTRACT §5): a booth starts a slot at `at` only as well as its clock.
//!
//! Asked with `adjtimex(2)` in read-only mode: the kernel's own view, the
//! same whichever NTP daemon (chrony, systemd-timesyncd, ntpd) disciplines it.

/// `Some(true)` when the kernel clock is synchronised, `Some(false)` when
/// the kernel says it is not, `None` when it cannot be asked.
pub fn synchronized() -> Option<bool> {
    imp::read()
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod imp {
    // Why unsafe (the crate otherwise denies it): adjtimex(2) has no safe
    // wrapper in std, nix or another well-kept crate. The call is read-only
    // (modes = 0, so it needs no privilege), gets a zeroed struct of plain
    // integers borrowed exclusively for the call, and keeps no pointer to it.
    pub fn read() -> Option<bool> {
        // SAFETY: `timex` is plain old data; all-zero is a valid value.
        let mut tx: libc::timex = unsafe { std::mem::zeroed() };
        // SAFETY: a valid, exclusive pointer for the duration of the call.
        let state = unsafe { libc::adjtimex(&mut tx) };
        if state < 0 {
            return None;
        }
        Some(state != libc::TIME_ERROR && tx.status & libc::STA_UNSYNC == 0)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub fn read() -> Option<bool> {
        None
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn linux_answers() {
        // Read-only adjtimex needs no privilege: Linux always answers.
        assert!(super::synchronized().is_some());
    }
}
