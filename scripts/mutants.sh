#!/usr/bin/env bash
# Mutation testing of the modules where a bug hurts a booth most (issue #17).
# Not part of .ci/run: ~1 000 mutants take hours on a 2-core machine. Run it
# when one of these modules changes and record the figures in TESTING.md.
#
#   scripts/mutants.sh                 every listed module, unit tests (-- --lib)
#   scripts/mutants.sh src/visca       only the given files or folders
#   MUTANTS_TESTS=all scripts/mutants.sh src/adapters/idempotency.rs
#                                      with the integration tests too (slower)
#
# Installs cargo-mutants (pinned) if it is missing; idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=27.1.0
if ! cargo mutants --version 2>/dev/null | grep -q "$VERSION"; then
  cargo install --locked cargo-mutants --version "$VERSION"
fi
MODULES=(
  'src/visca/*.rs'
  src/camera/link.rs
  src/camera/link_ip.rs
  src/lighting/fade.rs
  src/lighting/patch.rs
  src/adapters/idempotency.rs
  src/command.rs
  'src/engine/*.rs'
  src/adapters/http/auth.rs
)
[ $# -gt 0 ] && MODULES=("$@")
args=()
for m in "${MODULES[@]}"; do
  if [ -d "$m" ]; then m="$m/*.rs"; fi
  args+=(-f "$m")
done
# Unit tests only by default: `-C --lib` builds and runs the library's tests
# alone (building every integration test binary per mutant takes minutes).
lib=(-C --lib)
[ "${MUTANTS_TESTS:-lib}" = all ] && lib=()
# Two copies build side by side (each its own target dir); a mutant whose
# tests hang is a timeout, not a failure of the run (the library's tests take
# about a second, so 30 s is ample). `--profile mutants` (Cargo.toml) builds
# without debug info. MUTANTS_ARGS passes more, e.g. "--iterate".
# shellcheck disable=SC2086
exec cargo mutants --jobs "${MUTANTS_JOBS:-2}" --timeout "${MUTANTS_TIMEOUT:-30}" \
  --profile mutants "${lib[@]}" "${args[@]}" --output target/mutation ${MUTANTS_ARGS:-}
