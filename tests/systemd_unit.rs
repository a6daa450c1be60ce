//! The shipped systemd unit passes `systemd-analyze verify` and its
//! `systemd-analyze security` exposure is at most 2.0.

use std::process::Command;

fn unit_with_built_binary(dir: &std::path::Path) -> std::path::PathBuf {
    let unit = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/studiod.service")).unwrap();
    assert!(unit.contains("ExecStart=/usr/bin/studiod run"));
    // verify checks that ExecStart exists: point it at the binary under test.
    let path = dir.join("studiod.service");
    std::fs::write(&path, unit.replace("/usr/bin/studiod", env!("CARGO_BIN_EXE_studiod"))).unwrap();
    path
}

#[test]
fn unit_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_with_built_binary(dir.path());
    let out = Command::new("systemd-analyze").arg("verify").arg(&unit).output().expect("systemd-analyze (scripts/setup.sh installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify: {stderr}");
}

#[test]
fn unit_is_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_with_built_binary(dir.path());
    let out =
        Command::new("systemd-analyze").args(["security", "--offline=true", "--no-pager"]).arg(&unit).output().expect("systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_else(|| panic!("no exposure line in: {text}"));
    let level: f64 = line
        .split("studiod.service:")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("cannot read: {line}"));
    assert!(level <= 2.0, "exposure {level} > 2.0:\n{text}");
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    for key in [
        "Type=notify",
        "WatchdogSec=",
        "Restart=on-failure",
        "SupplementaryGroups=dialout",
        "StateDirectory=studiod",
        "ConfigurationDirectory=studiod",
        "NoNewPrivileges=yes",
        "CapabilityBoundingSet=\n",
    ] {
        assert!(unit_text.contains(key), "unit lacks {key:?}");
    }
}
