#!/usr/bin/env bash
# The whole test suite: unit, property, integration (ptys, loopback UDP),
# golden `studiod check` output, and a compile check of the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cargo build --locked --benches
cargo test --locked --all-features
