#!/usr/bin/env bash
# The whole test suite: unit, property, integration (ptys, loopback UDP,
# private Mosquitto brokers), golden `studiod check` output, systemd unit
# checks, a compile-and-smoke run of the benchmarks, the Debian package, and the browser tests
# (Debian's Chromium driven by playwright-core).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
scripts/browser-setup.sh
# The workspace: the daemon (studiod) and the simulator (crates/studiod-sim).
cargo build --locked --workspace --bins --examples
# The README's demo command runs the release binary (tests/demo.rs drives it
# in a terminal); built here so that test does not wait for a compiler.
cargo build --locked --release --bin studiod
cargo test --locked --workspace
# Benches compile and run one short round each (no timing claims here).
cargo test --locked --workspace --benches
# The Debian package builds and carries binary, unit, config, profiles, scenes.
scripts/check-package.sh
(cd tests/browser && STUDIOD_BIN="$PWD/../../target/debug/studiod" STUDIOD_HTTP_FAKE="$PWD/../../target/debug/examples/http_fake" STUDIOD_BOOTH="$PWD/../../target/debug/examples/booth" npm test)
