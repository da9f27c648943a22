#!/usr/bin/env bash
# One evaluation run inside the lab guest (bench/tiering/run.sh boots one
# guest per run): constrain the fast node, set up one policy, run the
# workload, measure what the mover cost. Writes to $LAB_OUT:
#   samples.jsonl (the workload's per-second lines), run.json (costs),
#   setup.txt (every knob written, in order), tierd.log.
#   guest_run.sh PATTERN POLICY SECONDS TABLE_MIB BUILD_DIR
# POLICY: none | nb (NUMA balancing tiering) | damos (DAMOS migrate_hot/cold) | tierd
# Budget for every mover: TIERING_RATE_MBPS (default 64) MiB/s.
# tierd: TIERD_BENCH_NO_POLICY=1 leaves out the [policy] section;
# TIERD_BENCH_CONFIG=FILE replaces the generated configuration;
# TIERD_BENCH_VERBOSE=1 runs tierd with -v (a debug line per plan in tierd.log);
# TIERD_BENCH_PERF=1 records tierd's threads with perf (call graphs, kernel
# included) while the workload runs: perf.data and kallsyms in $LAB_OUT, read
# with perf report -i perf.data --kallsyms kallsyms (it costs the guest CPU:
# the run's numbers are not comparable).
set -euo pipefail
pattern=$1 policy=$2 seconds=$3 table_mib=$4 build=$5
out=${LAB_OUT:?run inside the lab}
rate=${TIERING_RATE_MBPS:-64}
node_sys=/sys/devices/system/node
setup=$out/setup.txt
: > "$setup"

say() { echo "guest_run [$(cut -d" " -f1 /proc/uptime)]: $*" >&2; }
# Writes a kernel knob and records it, so the doc can show the exact setup.
knob() {
  echo "echo $2 > $1" >> "$setup"
  echo "$2" > "$1"
}
first_id() { sed 's/[,-].*//' "$1"; }

# Fast node: the first node with CPUs. Far node: the first memory node without.
fast=$(first_id $node_sys/has_cpu)
far=""
for n in $node_sys/node[0-9]*; do
  id=${n##*node}
  [[ -z "$(cat "$n/cpulist")" ]] && awk '/MemTotal/ {exit !($4 > 0)}' "$n/meminfo" &&
    { far=$id; break; }
done
[[ -n "$far" ]] || { say "no CPU-less node: use the far preset"; exit 77; }

node_free_kib() { awk '/MemFree/ {print $4}' $node_sys/node$1/meminfo; }
# The zones' min watermarks of a node, in KiB: memory no mover can fill.
node_min_kib() {
  awk -v node="$1" '$1 == "Node" {n = $2 + 0} n == node && $1 == "min" {s += $2} END {print s * 4}' \
    /proc/zoneinfo
}

# 1. The ballast: a hugetlb pool on the fast node. Unlike locked anonymous
# memory it is on no LRU list, so neither reclaim, demotion, NUMA balancing,
# DAMOS nor compaction moves it; the fast node keeps table/4 free for the
# movers above its min watermark.
sync
echo 3 > /proc/sys/vm/drop_caches
target_kib=$(( table_mib * 1024 / 4 + $(node_min_kib "$fast") ))
pool=$node_sys/node$fast/hugepages/hugepages-2048kB/nr_hugepages
for _ in 1 2 3; do
  extra_kib=$(( $(node_free_kib "$fast") - target_kib ))
  (( extra_kib / 2048 == 0 )) && break
  echo $(( $(cat "$pool") + extra_kib / 2048 )) > "$pool"
done
echo "# ballast: $(cat "$pool") x 2 MiB hugetlb pages on node $fast" >> "$setup"
say "node $fast: $(( $(node_free_kib "$fast") / 1024 )) MiB free after the ballast (target $(( target_kib / 1024 )))"

# 2. The workload builds its table on the far node, then waits for "go" so
# that every policy starts from the same placement at t = 0.
sync_dir=$(mktemp -d)
"$build/bench/tiering/tiering_load" --pattern "$pattern" --seconds "$seconds" \
  --table-mib "$table_mib" --far-node "$far" --json "$out/samples.jsonl" \
  --ready "$sync_dir/ready" --wait-for "$sync_dir/go" &
workload_pid=$!
until [[ -e $sync_dir/ready ]]; do
  kill -0 $workload_pid 2>/dev/null || { say "the workload exited before its table was ready"; exit 1; }
  sleep 0.2
done
say "table in place on node $far"

# 3. The policy.
mover_pids=()
tierd_pid=""
case $policy in
  none)
    knob /proc/sys/kernel/numa_balancing 0
    knob /sys/kernel/mm/numa/demotion_enabled false
    ;;
  nb)
    knob /proc/sys/kernel/numa_balancing 2
    knob /proc/sys/kernel/numa_balancing_promote_rate_limit_MBps "$rate"
    knob /sys/kernel/mm/numa/demotion_enabled true
    ;;
  damos)
    knob /proc/sys/kernel/numa_balancing 0
    knob /sys/kernel/mm/numa/demotion_enabled false
    admin=/sys/kernel/mm/damon/admin
    block=$(( 16#$(cat /sys/devices/system/memory/block_size_bytes) ))
    # A node's physical address range, from its memory blocks.
    node_range() {
      local ids
      ids=$(ls -d $node_sys/node$1/memory[0-9]* | sed 's/.*memory//' | sort -n)
      echo "$(( $(head -1 <<< "$ids") * block )) $(( ($(tail -1 <<< "$ids") + 1) * block ))"
    }
    knob $admin/kdamonds/nr_kdamonds 2
    # kdamond 0 watches the fast node and demotes what went cold there;
    # kdamond 1 watches the far node and promotes what is hot there.
    for k in 0 1; do
      if (( k == 0 )); then node=$fast action=migrate_cold dest=$far acc_min=0 acc_max=0 age_min=10 young=Y
      else node=$far action=migrate_hot dest=$fast acc_min=1 acc_max=20 age_min=0 young=N; fi
      ctx=$admin/kdamonds/$k/contexts/0
      knob $admin/kdamonds/$k/contexts/nr_contexts 1
      knob $ctx/operations paddr
      knob $ctx/monitoring_attrs/intervals/sample_us 5000
      knob $ctx/monitoring_attrs/intervals/aggr_us 100000
      knob $ctx/monitoring_attrs/intervals/update_us 1000000
      knob $ctx/monitoring_attrs/nr_regions/min 10
      knob $ctx/monitoring_attrs/nr_regions/max 1000
      knob $ctx/targets/nr_targets 1
      knob $ctx/targets/0/regions/nr_regions 1
      read -r start end <<< "$(node_range "$node")"
      knob $ctx/targets/0/regions/0/start "$start"
      knob $ctx/targets/0/regions/0/end "$end"
      knob $ctx/schemes/nr_schemes 1
      s=$ctx/schemes/0
      knob $s/action $action
      knob $s/target_nid "$dest"
      # Every range defaults to [0, 0]: set both ends.
      knob $s/access_pattern/sz/min 4096
      knob $s/access_pattern/sz/max $(( 1 << 40 ))
      knob $s/access_pattern/nr_accesses/min $acc_min
      knob $s/access_pattern/nr_accesses/max $acc_max
      knob $s/access_pattern/age/min $age_min
      knob $s/access_pattern/age/max 4294967295
      knob $s/quotas/bytes $(( rate << 20 ))
      knob $s/quotas/reset_interval_ms 1000
      knob $s/quotas/weights/sz_permil 0
      knob $s/quotas/weights/nr_accesses_permil 500
      knob $s/quotas/weights/age_permil 500
      # Demote only pages not accessed since the last check; promote only
      # pages that were (the "young" filter; matching=Y filters out matches).
      knob $s/filters/nr_filters 1
      knob $s/filters/0/type young
      knob $s/filters/0/matching $young
      knob $s/watermarks/metric none
    done
    knob $admin/kdamonds/0/state on
    knob $admin/kdamonds/1/state on
    mover_pids=("$(cat $admin/kdamonds/0/pid)" "$(cat $admin/kdamonds/1/pid)")
    ;;
  tierd)
    dir=$(mktemp -d)
    {
      printf '[agent]\nmode = "takeover"\ninterval_ms = 1000\n'
      # Headroom as small as the kernel modes' (they keep only the zone watermarks).
      printf '[migration]\nrate_limit_mbps = %s\nmin_free_mb = 8\nmin_free_percent = 0\n' "$rate"
      printf '[control]\nsocket = "%s/tierd.sock"\n[metrics]\nlisten = ""\n' "$dir"
      [[ -n "${TIERD_BENCH_NO_POLICY:-}" ]] || printf '[policy]\nenabled = true\nsampler = "auto"\n'
      printf '[[workloads]]\nname = "bench"\ncomm = "tiering_load"\n'
    } > "$dir/tierd.toml"
    [[ -z "${TIERD_BENCH_CONFIG:-}" ]] || cp "$TIERD_BENCH_CONFIG" "$dir/tierd.toml"
    # Until tierd has a [policy] section it rejects one: run without it, and
    # say so in run.json (the report marks the row).
    policy_section=true
    if [[ -n "${TIERD_BENCH_NO_POLICY:-}" ]]; then
      policy_section=false
    elif ! "$build/agent/daemon/tierd" --check-config -c "$dir/tierd.toml" > "$out/check-config.txt" 2>&1; then
      say "tierd rejects its configuration, running without [policy]: $(cat "$out/check-config.txt")"
      sed -i '/^\[policy\]/,/^\[\[workloads\]\]/{/^\[\[workloads\]\]/!d}' "$dir/tierd.toml"
      policy_section=false
    fi
    { echo "# tierd -c tierd.toml:"; cat "$dir/tierd.toml"; } >> "$setup"
    "$build/agent/daemon/tierd" ${TIERD_BENCH_VERBOSE:+-v} -c "$dir/tierd.toml" 2> "$out/tierd.log" &
    tierd_pid=$!
    for _ in $(seq 50); do
      [[ -S "$dir/tierd.sock" ]] && break
      kill -0 "$tierd_pid" 2>/dev/null || { say "tierd exited; its log:"; cat "$out/tierd.log" >&2; exit 1; }
      sleep 0.2
    done
    mover_pids=("$tierd_pid")
    ;;
  *) say "unknown policy '$policy' (none, nb, damos, tierd)"; exit 2 ;;
esac

# CPU seconds (utime + stime) of the movers, and vmstat, around the run.
cpu_ticks() {
  local total=0 pid
  for pid in "$@"; do
    [[ -r /proc/$pid/stat ]] || continue
    total=$(( total + $(sed 's/.*) //' /proc/$pid/stat | awk '{print $12 + $13}') ))
  done
  echo $total
}
# Where tierd's CPU went, thread by thread: "comm utime+stime" in clock ticks.
tierd_threads() {
  local task stat comm fields
  for task in /proc/$tierd_pid/task/*; do
    read -r comm < "$task/comm" 2>/dev/null || continue
    read -r stat < "$task/stat" 2>/dev/null || continue
    read -r -a fields <<< "${stat##*) }"
    echo "$comm $(( fields[11] + fields[12] ))"
  done
}
ticks_before=$(cpu_ticks "${mover_pids[@]}")
[[ -z "$tierd_pid" ]] || tierd_threads > "$out/tierd_threads_start.txt"
# The fast node's free memory once a second, beside its zones' watermarks (a
# mover that fills it below the low watermark pays for reclaim in its own
# time), and how many full passes the NUMA scanner has made over the workload.
awk -v node="$fast" '$1 == "Node" {n = $2 + 0} n == node && ($1 == "min" || $1 == "low" || $1 == "high") {w[$1] += $2} \
  END {printf "# node %d watermarks KiB: min %d low %d high %d\n", node, w["min"] * 4, w["low"] * 4, w["high"] * 4}' \
  /proc/zoneinfo > "$out/fast_free.txt"
( while sleep 1; do
    cp /proc/$workload_pid/sched "$out/sched.txt" 2>/dev/null || true  # the last one stays
    echo "$(cut -d" " -f1 /proc/uptime) $(node_free_kib "$fast") $(awk '/numa_scan_seq/ {print $3}' "$out/sched.txt") $(awk '/AnonPages|FilePages|Slab:/ {printf "%s=%s ", $3, $4}' $node_sys/node$fast/meminfo)"
  done >> "$out/fast_free.txt" ) &
free_logger=$!
vm_start=$(cat /proc/vmstat)
t0=$(date +%s.%N)

perf_pid=""
if [[ -n "${TIERD_BENCH_PERF:-}" && -n "$tierd_pid" ]]; then
  cp /proc/kallsyms "$out/kallsyms"
  perf record -q -g -p "$tierd_pid" -o "$out/perf.data" 2> "$out/perf.log" &
  perf_pid=$!
fi

# 4. Go.
say "$policy in place; the workload starts"
touch "$sync_dir/go"
workload_rc=0
wait $workload_pid || workload_rc=$?
(( workload_rc == 0 )) || say "the workload failed (exit $workload_rc)"

t1=$(date +%s.%N)
kill "$free_logger" 2>/dev/null || true
if [[ -n "$perf_pid" ]]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
ticks_after=$(cpu_ticks "${mover_pids[@]}")
[[ -z "$tierd_pid" ]] || tierd_threads > "$out/tierd_threads.txt"
vm_end=$(cat /proc/vmstat)

if [[ -n "$tierd_pid" ]]; then
  kill -0 "$tierd_pid" 2>/dev/null || say "tierd died during the run"
  kill -TERM "$tierd_pid" 2>/dev/null || true
  wait "$tierd_pid" 2>/dev/null || true
fi
damos_stats=null
if [[ $policy == damos ]]; then
  # What each scheme tried and applied (bytes), and how often its quota ran out.
  damos_stats="{"
  for k in 0 1; do
    kd=/sys/kernel/mm/damon/admin/kdamonds/$k
    echo update_schemes_stats > $kd/state
    st=$kd/contexts/0/schemes/0/stats
    damos_stats+="\"$(cat $kd/contexts/0/schemes/0/action)\":{"
    for f in nr_tried sz_tried nr_applied sz_applied qt_exceeds; do damos_stats+="\"$f\":$(cat $st/$f),"; done
    damos_stats="${damos_stats%,}},"
    echo off > $kd/state
  done
  damos_stats="${damos_stats%,}}"
fi

vm_delta() {
  local name=$1
  echo $(( $(awk -v n="$name" '$1 == n {print $2}' <<< "$vm_end") \
         - $(awk -v n="$name" '$1 == n {print $2}' <<< "$vm_start") ))
}
counters=""
for c in pgmigrate_success pgmigrate_fail pgpromote_success pgdemote_kswapd pgdemote_direct \
         numa_hint_faults numa_pages_migrated allocstall_dma32 allocstall_normal allocstall_movable \
         pgscan_kswapd pgscan_direct compact_stall; do
  counters+="\"$c\":$(vm_delta $c),"
done
hz=$(getconf CLK_TCK)
cat > "$out/run.json" <<EOF
{"pattern":"$pattern","policy":"$policy","rate_mbps":$rate,"fast_node":$fast,"far_node":$far,
 "wall_s":$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}'),
 "mover_cpu_s":$(awk -v d=$(( ticks_after - ticks_before )) -v hz="$hz" 'BEGIN {print d / hz}'),
 "mover_pids":"${mover_pids[*]}",
 "tierd_policy_section":${policy_section:-null},
 "damos_stats":$damos_stats,
 "vmstat":{${counters%,}},
 "fast_free_mib_after":$(( $(node_free_kib "$fast") / 1024 )),
 "hugetlb_pages":$(cat "$pool")}
EOF
exit $workload_rc
