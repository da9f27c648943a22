#!/bin/sh
# What tools/run.sh shows inside the lab guest: the tiers, then the agent at
# work moving a workload from far memory to DRAM. Arguments: the build dir.
set -eu
build=$1
tierctl=$build/tools/tierctl/tierctl
far=$(for n in /sys/devices/system/node/node[0-9]*; do
        [ -z "$(cat "$n/cpulist")" ] && basename "$n" | tr -d node && break; done)

echo '$ tierctl topology -v'; "$tierctl" topology -v
echo; echo '$ tierctl topology -H'; "$tierctl" topology -H

dir=$(mktemp -d)
printf '[control]\nsocket = "%s/tierd.sock"\n[metrics]\nlisten = ""\n[migration]\nrate_limit_mbps = 64\n[[workloads]]\nname = "demo"\ncomm = "tierd_test_wor.*"\n' "$dir" > "$dir/tierd.toml"
"$build/agent/daemon/tierd" -c "$dir/tierd.toml" 2> "$dir/tierd.log" &
agent=$!
"$build/tests/agent/daemon/tierd_test_workload" --node "$far" --mib 64 > "$dir/workload.out" &
workload=$!
sleep 2
ctl() { echo; echo "\$ tierctl $*"; "$tierctl" --socket "$dir/tierd.sock" "$@"; }
ctl ps
ctl migrate --pid "$workload" --to-tier 0
ctl ps
ctl status
kill "$workload" "$agent"; wait 2>/dev/null || true
echo; echo "tierd's log:"; cat "$dir/tierd.log"
rm -rf "$dir"
