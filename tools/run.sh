#!/usr/bin/env bash
# The main job: installs what is needed, builds, boots the lab's `cxl` preset
# (DRAM, a far-memory node, an NVDIMM node and a CXL type-3 expander onlined
# as NUMA nodes), shows what tierd sees there with `tierctl topology`, then
# starts the agent and has it move a workload from far memory to DRAM.
# Any other preset or command: tools/run.sh --preset far -- tierctl topology -j
set -euo pipefail
cd "$(dirname "$0")/.."

preset=cxl
if [[ "${1:-}" == "--preset" ]]; then preset=$2; shift 2; fi
[[ "${1:-}" == "--" ]] && shift

tools/install-deps.sh
tools/build.sh >/dev/null
ninja -C build tierd_test_workload >/dev/null
tierctl=$PWD/build/tools/tierctl/tierctl
if (($#)); then
  [[ "$1" == tierctl ]] && set -- "$tierctl" "${@:2}"
  exec tools/lab/lab run --preset "$preset" -- "$@"
fi
exec tools/lab/lab run --preset "$preset" -- tools/demo.sh "$PWD/build"
