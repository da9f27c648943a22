#!/usr/bin/env bash
# Builds the allocator bench (and the tierd shim when its target exists) and
# runs every allocator in one round-robin run. Usage:
#   bench/alloc/run.sh [--quick] [--repeats N] [--only a,b] [--results FILE]
# BUILD_DIR (default build/) is the CMake build folder to use.
set -euo pipefail
cd "$(dirname "$0")/../.."
build_dir=${BUILD_DIR:-build}
if [[ ! -f "$build_dir/build.ninja" ]]; then
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTIERD_WERROR=ON >/dev/null
fi
targets=(alloc_bench)
# Not grep -q: it would stop reading early, ninja would die of SIGPIPE, and
# under pipefail the test would fail, leaving a stale shim in place.
if ninja -C "$build_dir" -t targets all 2>/dev/null | grep '^tier-preload:' >/dev/null; then
  targets+=(tier-preload)
fi
ninja -C "$build_dir" "${targets[@]}" >/dev/null
exec python3 bench/alloc/run.py --build-dir "$build_dir" --command "bench/alloc/run.sh $*" "$@"
