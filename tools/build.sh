#!/usr/bin/env bash
# Configures and builds tierd into a build folder.
#   tools/build.sh                 -> build/          (warnings are errors)
#   tools/build.sh --sanitize      -> build-sanitize/ (ASan + UBSan)
#   tools/build.sh --fuzz          -> build-fuzz/     (the libFuzzer targets, clang 16)
set -euo pipefail
cd "$(dirname "$0")/.."

build_dir=build
cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTIERD_WERROR=ON)
if [[ "${1:-}" == "--fuzz" ]]; then
  # libFuzzer targets with clang 16. libstdc++ 12 enables <expected> only
  # for compilers announcing C++20 concepts in full; clang 16 implements them
  # (P0848) but still announces 201907, hence the define.
  build_dir=build-fuzz
  cmake_args=(-G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTIERD_LAB_TESTS=OFF
    -DCMAKE_C_COMPILER=clang-16 -DCMAKE_CXX_COMPILER=clang++-16
    "-DCMAKE_CXX_FLAGS=-U__cpp_concepts -D__cpp_concepts=202002L")
  cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
  exec ninja -C "$build_dir" parsers_fuzz control_request_fuzz
elif [[ "${1:-}" == "--sanitize" ]]; then
  build_dir=build-sanitize
  # The lab boots are covered by the plain build; sanitizers check the host tests.
  cmake_args+=(-DTIERD_SANITIZE=ON -DTIERD_LAB_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug)
fi
cmake -S . -B "$build_dir" "${cmake_args[@]}" >/dev/null
ninja -C "$build_dir"
