//! Golden tests for `studiod check`: each folder under tests/check/ holds a
//! config (and scenes) with known mistakes and the exact output expected.
//! Every shipped example must pass.

use std::path::Path;
use std::process::Command;

fn check(config: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_studiod"))
        .args(["check", "--config"])
        .arg(config)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run studiod check");
    (out.status.code().unwrap_or(-1), String::from_utf8(out.stdout).expect("utf-8 output"))
}

#[test]
fn broken_configs_print_every_problem_with_position() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/check");
    let mut cases = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        let expected = std::fs::read_to_string(dir.join("expected.txt")).unwrap();
        let rel = dir.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap().join("studiod.toml");
        let (code, stdout) = check(&rel);
        assert_eq!(code, 1, "{} must exit 1", rel.display());
        assert_eq!(stdout, expected, "output of check on {}", rel.display());
        for line in stdout.lines() {
            let parts: Vec<_> = line.splitn(4, ':').collect();
            assert!(
                parts.len() == 4 && parts[1].parse::<usize>().is_ok() && parts[2].parse::<usize>().is_ok(),
                "not file:line:col: message: {line}"
            );
        }
        cases += 1;
    }
    assert!(cases >= 3, "golden cases missing");
}

#[test]
fn three_mistakes_are_all_reported_at_once() {
    let (code, stdout) = check(Path::new("tests/check/three-mistakes/studiod.toml"));
    assert_eq!(code, 1);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.contains("studiod.toml:11:11: `address` must be 1–7"));
    assert!(stdout.contains("unknown field `adress`"));
    assert!(stdout.contains("overlaps `key`"));
}

#[test]
fn sacn_mistakes_are_reported_with_file_line_and_key() {
    let (code, stdout) = check(Path::new("tests/check/sacn-mistakes/studiod.toml"));
    assert_eq!(code, 1);
    assert_eq!(stdout.lines().count(), 7, "{stdout}");
    assert!(stdout.contains("studiod.toml:20:12: `universe` must be an sACN universe 1–63999, got 0"), "{stdout}");
    assert!(stdout.contains("studiod.toml:21:12: `priority` must be 0–200, got 250"), "{stdout}");
    assert!(stdout.contains("unknown field `multicast`"), "{stdout}");
    assert!(stdout.contains("output `node1` is defined twice"), "{stdout}");
    assert!(stdout.contains("unknown output `nowhere`"), "{stdout}");
    assert!(stdout.contains("sets both `output` and `artnet`"), "{stdout}");
    assert!(stdout.contains("`sacn_sync_universe` must be an sACN universe"), "{stdout}");
}

#[test]
fn shipped_example_passes() {
    let (code, stdout) = check(Path::new("studiod.example.toml"));
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains("6 scenes"), "{stdout}");
}

#[test]
fn one_camera_table_with_three_mistakes_reports_all_three() {
    // An unknown key used to hide every other problem of its table.
    let (code, stdout) = check(Path::new("tests/check/one-camera-three-mistakes/studiod.toml"));
    assert_eq!(code, 1);
    assert_eq!(stdout.lines().count(), 3, "{stdout}");
    assert!(stdout.contains("unknown field `zoom_speed`"), "{stdout}");
    assert!(stdout.contains("unknown camera profile `no-such-camera`"), "{stdout}");
    assert!(stdout.contains("`address` must be 1–7"), "{stdout}");
}

#[test]
fn unconfirmed_profile_values_are_warnings_not_errors() {
    // generic-visca's zoom table and the P600Bi's CCT curve are marked
    // `unconfirmed` in their profiles: one warning per key, exit code 0.
    // The Nova P300c's unconfirmed `cct_range` does not matter in its `rgb`
    // mode (no colour-temperature channel): no warning.
    let (code, stdout) = check(Path::new("tests/check-warnings/studiod.toml"));
    assert_eq!(code, 0, "{stdout}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(lines[0].starts_with("tests/check-warnings/studiod.toml: ok (1 cameras, 2 fixtures"), "{stdout}");
    assert_eq!(
        lines[1],
        "tests/check-warnings/studiod.toml:10:11: warning: camera `front` uses profile `generic-visca` whose `zoom.table` is unconfirmed (verify on hardware)"
    );
    assert_eq!(
        lines[2],
        "tests/check-warnings/studiod.toml:21:11: warning: fixture `key` uses profile `godox-p600bi-hard` whose `cct_range` is unconfirmed (verify on hardware)"
    );
}
