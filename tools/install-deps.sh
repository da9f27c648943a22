#!/usr/bin/env bash
# Installs every Debian 12 package tierd needs to build, test and run its lab.
# Nothing is fetched from outside Debian's archive. Idempotent; run as root.
set -euo pipefail

build_packages=(
  build-essential cmake ninja-build pkg-config clang clang-format clang-16 libclang-rt-16-dev
  libnuma-dev libcxl-dev libdaxctl-dev libndctl-dev libpmem2-dev libmemkind-dev
  nlohmann-json3-dev libtomlplusplus-dev libcli11-dev libfmt-dev libarchive-dev
  libsystemd-dev libgtest-dev libgmock-dev libbenchmark-dev libcpp-httplib-dev libcap-dev
)
# The lab: QEMU plus the tools the guest runs from the host's root over 9p.
lab_packages=(
  qemu-system-x86 kmod cpio xz-utils gzip time
  ndctl daxctl numactl pciutils util-linux procps
)

# libtier's allocator: the base allocators it is built on and measured against.
alloc_packages=(libmimalloc-dev libjemalloc-dev)
# Benches and the real programs the shim is tested under.
bench_packages=(python3-matplotlib sqlite3 git libpython3.11-testsuite)

need=()
for p in "${build_packages[@]}" "${lab_packages[@]}" "${alloc_packages[@]}" "${bench_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
