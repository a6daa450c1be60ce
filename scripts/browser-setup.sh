#!/usr/bin/env bash
# Idempotent set-up for the browser tests (tests/browser): Debian's Chromium
# (never a browser downloaded by Playwright) and the Node test project.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /usr/bin/chromium ]; then
  echo "browser-setup: installing chromium (Debian package)" >&2
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi

command -v node >/dev/null || { echo "browser-setup: node (20+) and npm are required" >&2; exit 1; }

# playwright-core only: it never downloads a browser. The env var is belt and braces.
# axe-core: the accessibility checks of tests/browser/checks.mjs.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
cd tests/browser
if [ ! -d node_modules/playwright-core ] || [ ! -f node_modules/axe-core/axe.min.js ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --loglevel=error
fi
