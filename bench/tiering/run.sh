#!/usr/bin/env bash
# The tiering evaluation, one command: builds what it needs, runs every
# (workload, policy) pair in its own lab guest, prints the table, and writes
# docs/tiering-eval.md and docs/tiering-eval.png.
#   bench/tiering/run.sh [--quick] [--out DIR] [--build DIR] [--no-build] [--no-docs]
#                        [--workloads "zipf gups shift"] [--policies "none nb damos tierd"]
#                        [--seconds S] [--table-mib N]
# --quick: 30 s runs of a 192 MiB table, no docs written (a smoke test).
# Raw data (per-second JSON lines, setups, logs) stays in --out
# (default BUILD/tiering-eval), not in git.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd -P)

build=build out="" quick=false do_build=true docs=true
workloads="zipf gups shift" policies="none nb damos tierd"
seconds=100 table_mib=384
command_line="bench/tiering/run.sh $*"
while (( $# )); do
  case $1 in
    --quick) quick=true; seconds=30; table_mib=192; docs=false ;;
    --out) out=$2; shift ;;
    --build) build=$2; shift ;;
    --no-build) do_build=false ;;
    --no-docs) docs=false ;;
    --workloads) workloads=$2; shift ;;
    --policies) policies=$2; shift ;;
    --seconds) seconds=$2; shift ;;
    --table-mib) table_mib=$2; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
  shift
done
out=${out:-$build/tiering-eval}
[[ $out = /* ]] || out=$root/$out
[[ $build = /* ]] || build=$root/$build

if $do_build; then
  # The same configuration as tools/build.sh, but only the targets the bench runs.
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTIERD_WERROR=ON >/dev/null
  ninja -C "$build" tiering_load tierd
fi
for binary in "$build/bench/tiering/tiering_load" "$build/agent/daemon/tierd"; do
  [[ -x $binary ]] || { echo "run.sh: $binary is missing (drop --no-build)" >&2; exit 1; }
done

mkdir -p "$out"
started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
revision=$(git describe --always --dirty 2>/dev/null || echo unknown)
failed=0
for workload in $workloads; do
  for policy in $policies; do
    dir=$out/$workload-$policy
    rm -rf "$dir" "$dir.panicked"
    echo "== $workload under $policy ($seconds s)" >&2
    # One clean boot per run: no policy inherits another's placement or knobs.
    # A guest kernel panic is the emulator's fault (TCG sometimes runs stale
    # code while the guest patches a static key: NUMA balancing or perf
    # switched on), not the policy's: that run is made once more.
    for attempt in 1 2; do
      tools/lab/lab run --preset far --smp 2 --timeout $(( seconds * 3 + 240 )) --out "$dir" -- \
        bench/tiering/guest_run.sh "$workload" "$policy" "$seconds" "$table_mib" "$build" && break
      if (( attempt == 1 )) && grep -q "Kernel panic" "$dir/console.log" 2>/dev/null; then
        echo "run.sh: the guest kernel panicked (an emulator fault); running $workload under $policy again" >&2
        mv "$dir" "$dir.panicked"
        continue
      fi
      echo "run.sh: $workload under $policy failed; see $dir" >&2
      failed=$((failed + 1))
      break
    done
  done
done

report_args=("$out" --started "$started" --command "$command_line" --revision "$revision")
$docs && report_args+=(--markdown docs/tiering-eval.md --png docs/tiering-eval.png)
$quick && report_args+=(--png "$out/tiering-eval.png")
# Debian's python3 has matplotlib (python3-matplotlib); a pyenv python3 on PATH may not.
/usr/bin/python3 bench/tiering/report.py "${report_args[@]}"
echo "raw data: $out" >&2
exit $(( failed > 0 ))
