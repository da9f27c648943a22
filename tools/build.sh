#!/usr/bin/env bash
# Configures and builds tierd into a build folder.
#   tools/build.sh                 -> build/          (warnings are errors)
#   tools/build.sh --sanitize      -> build-sanitize/ (ASan + UBSan)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTIERD_WERROR=ON)
if [[ "${1:-}" == "--sanitize" ]]; then
  build_dir=build-sanitize
  # The lab boots are covered by the plain build; sanitizers check the host tests.
  cmake_args+=(-DTIERD_SANITIZE=ON -DTIERD_LAB_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug)
fi
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
ninja -C "$build_dir"
