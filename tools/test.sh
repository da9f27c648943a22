#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): installs what is needed,
# builds three times (warnings as errors; ASan + UBSan; libFuzzer) and runs
# every test, including the lab tests that boot QEMU guests.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
tools/lab/lab fetch

tools/build.sh
tools/build.sh --sanitize
tools/build.sh --fuzz

jobs=$(nproc)
echo "== host tests under ASan/UBSan"
ctest --test-dir build-sanitize --output-on-failure -j "$jobs"
echo "== fuzzing the parsers and the control protocol (libFuzzer, 20 s each)"
for target in tests/fuzz/parsers_fuzz:tests/fuzz/corpus \
              tests/agent/control/control_request_fuzz:tests/agent/control/corpus; do
  scratch=$(mktemp -d)
  if ! "build-fuzz/${target%%:*}" -max_total_time=20 "$scratch" "${target#*:}" > "$scratch.log" 2>&1; then
    tail -40 "$scratch.log"; echo "fuzzing ${target%%:*} found a crash"; exit 1
  fi
  tail -1 "$scratch.log"; rm -rf "$scratch" "$scratch.log"
done
echo "== host tests and lab tests (plain build)"
ctest --test-dir build --output-on-failure -j "$jobs" -LE lab
ctest --test-dir build --output-on-failure -L lab
