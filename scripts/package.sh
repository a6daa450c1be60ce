#!/usr/bin/env bash
# Build the Debian package (binary, systemd unit, example config, profiles,
# scenes, the simulator's tools) into target/debian/. Installs cargo-deb once
# if missing. The daemon is built without the `demo` feature
# ([package.metadata.deb] default-features = false; see ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb
# visca-sim and artnet-monitor belong to another workspace package, which
# cargo-deb does not build: build them first, where its assets expect them.
cargo build --release --locked -p studiod-sim --bins
cargo deb --locked -p studiod "$@"
