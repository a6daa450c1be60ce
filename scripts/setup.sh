#!/usr/bin/env bash
# Idempotent set-up of everything studiod's demo and tests need on a fresh
# Debian machine. Safe to run again: it only installs what is missing.
set -euo pipefail

need_apt=()
command -v cargo >/dev/null || { echo "setup: cargo (Rust toolchain) is required: https://rustup.rs" >&2; exit 1; }
# Real MQTT broker for the MQTT tests (tests start their own private brokers).
command -v mosquitto >/dev/null || [ -x /usr/sbin/mosquitto ] || need_apt+=(mosquitto)
command -v mosquitto_pub >/dev/null || need_apt+=(mosquitto-clients)
# systemd-analyze checks the shipped unit (tests/systemd_unit.rs).
command -v systemd-analyze >/dev/null || need_apt+=(systemd)

if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
