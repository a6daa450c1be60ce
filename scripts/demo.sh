#!/usr/bin/env bash
# Set up (idempotently) and run the demo booth: simulated cameras on ptys,
# an Art-Net/OSC monitor, loopback only. Ctrl-C to stop.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec cargo run --locked --release --bin studiod -- demo "$@"
