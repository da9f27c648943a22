#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): installs what is needed,
# builds twice (warnings as errors; ASan + UBSan) and runs every test,
# including the lab tests that boot QEMU guests.
set -euo pipefail
cd "$(dirname "$0")/.."

tools/install-deps.sh
tools/lab/lab fetch

tools/build.sh
tools/build.sh --sanitize

jobs=$(nproc)
echo "== host tests under ASan/UBSan"
ctest --test-dir build-sanitize --output-on-failure -j "$jobs"
echo "== host tests and lab tests (plain build)"
ctest --test-dir build --output-on-failure -j "$jobs" -LE lab
ctest --test-dir build --output-on-failure -L lab
