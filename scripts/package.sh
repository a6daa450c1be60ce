#!/usr/bin/env bash
# Build the Debian package (binary, systemd unit, example config, profiles,
# scenes) into target/debian/. Installs cargo-deb once if missing.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
cargo deb --locked "$@"
