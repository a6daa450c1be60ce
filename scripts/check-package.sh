#!/usr/bin/env bash
# Build the Debian package and check it carries what a booth needs: the
# binaries, the systemd unit, the example config, profiles and scenes, and the
# maintainer script that creates the service user; and that its daemon is
# built without the demo (ARCHITECTURE.md).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/package.sh >/dev/null
deb=$(ls -t target/debian/studiod_*.deb | head -n1)
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
missing=0
for path in ./usr/bin/studiod ./usr/bin/visca-sim ./usr/bin/artnet-monitor ./usr/lib/systemd/system/studiod.service ./etc/studiod/studiod.toml \
            ./usr/share/doc/studiod/mosquitto-acl.conf \
            ./etc/studiod/scenes/house.toml ./etc/studiod/scenes/flash-sale.toml \
            ./etc/studiod/device-profiles/cameras/generic-visca.toml \
            ./etc/studiod/device-profiles/fixtures/generic-dimmer-16bit.toml; do
  grep -qxF "$path" <<<"$contents" || { echo "package lacks $path" >&2; missing=1; }
done
dpkg-deb -I "$deb" postinst >/dev/null || { echo "package lacks postinst" >&2; missing=1; }
# The packaged config must validate with the packaged profiles and scenes.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
# The booth's daemon has no demo: no simulator, no embedded broker.
if "$tmp/usr/bin/studiod" demo --help >/dev/null 2>&1; then
  echo "packaged studiod has the demo subcommand (build it with default-features = false)" >&2; missing=1
fi
"$tmp/usr/bin/studiod" check --config "$tmp/etc/studiod/studiod.toml"
[ "$missing" -eq 0 ] && echo "package: 1 passed, 0 failed"
