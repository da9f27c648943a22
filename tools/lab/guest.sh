#!/bin/bash
# Runs inside the lab guest, in the chroot (host root read-only + overlay), with the host's own bash,
# ndctl, daxctl, cxl and numactl. Copied per run into the control share, seen here as /run/lab.
# 1. sysctls, 2. the preset's device setup, 3. the command (run) or an interactive shell (shell).
# A failed setup step writes its name to /run/lab/setup-failed; the host then exits 125.
set -uo pipefail
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CTL=/run/lab
# shellcheck source=/dev/null
. $CTL/config
STEP=start

# Helpers use bash builtins where they can: every exec reads its binary and libraries over 9p (slow).
say() {
  local up _ line
  read -r up _ </proc/uptime
  line="lab-setup: [$up] $*"
  echo "$line" >>$CTL/setup.log
  echo "$line" >/dev/console
}
step() { STEP=$1; say "step: $STEP"; }
fail() {
  say "FAILED at '$STEP': $*"
  echo "$STEP${*:+: $*}" >$CTL/setup-failed
  exit 1
}
# Runs a command, its output into setup.log; fails the current step if it fails.
do_cmd() {
  echo "+ $*" >>$CTL/setup.log
  "$@" >>$CTL/setup.log 2>&1 || fail "'$*' exited $?"
}
wait_for() { # PATH SECONDS
  local i
  for ((i = 0; i < $2 * 10; i++)); do [[ -e $1 ]] && return 0; sleep 0.1; done
  fail "$1 did not appear within $2 s"
}
node_mem_kb() { # "Node 0 MemTotal:  1031928 kB"
  local key val _
  while read -r _ _ key val _; do [[ $key == MemTotal: ]] && { echo "$val"; return; }; done \
    </sys/devices/system/node/node"$1"/meminfo 2>/dev/null
  echo 0
}
node_cpus() { local c=""; read -r c </sys/devices/system/node/node"$1"/cpulist 2>/dev/null; echo "$c"; }
expect_memory_node() { # NODE WITH_CPUS(yes|no)
  local kb
  kb=$(node_mem_kb "$1")
  [[ -d /sys/devices/system/node/node$1 ]] || fail "node$1 does not exist"
  ((kb > 0)) || fail "node$1 has no memory"
  if [[ $2 == no && -n $(node_cpus "$1") ]]; then fail "node$1 should be CPU-less but has CPUs $(node_cpus "$1")"; fi
  if [[ $2 == yes && -z $(node_cpus "$1") ]]; then fail "node$1 should have CPUs but has none"; fi
  say "node$1: $((kb / 1024)) MiB, cpus '$(node_cpus "$1")'"
}
json_field() { grep -o "\"$1\":\"[^\"]*\"" | head -n1 | cut -d'"' -f4; }

setup_sysctls() {
  step "sysctls (numa_balancing=$LAB_NUMA_BALANCING, demotion off)"
  # The default numa_balancing=1 migrates test pages behind the tests' backs.
  echo "$LAB_NUMA_BALANCING" >/proc/sys/kernel/numa_balancing || fail "cannot set numa_balancing"
  # No demotion onto the (slow, MMIO-emulated) CXL node or any other by reclaim.
  echo false >/sys/kernel/mm/numa/demotion_enabled || fail "cannot set demotion_enabled"
  # debugfs where systemd mounts it on a host: the scheduler's NUMA scan knobs live there.
  mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug ||
    say "debugfs not mounted: the NUMA scan knobs are unavailable"
}

# Under TCG with two vCPUs, a static key flipped while the other vCPU runs the
# code it patches now and then leaves that vCPU a half-patched jump: a panic on
# int3 in do_user_addr_fault, at the page-fault perf hook. tierd's samplers
# open and close page-fault software events, and the first one opened or the
# last one closed flips that key. One event held from here to power-off keeps
# it on, so the kernel never patches it while a command runs.
hold_page_fault_key() {
  step "hold a page-fault perf event (keeps its static key from being patched at run time)"
  setsid perf stat -e page-faults -p 1 -o /dev/null </dev/null >/dev/null 2>&1 &
}

# The NFIT NVDIMM's nd region -> devdax namespace -> dax device onlined as system RAM (kmem, movable).
setup_nvdimm() {
  local r region="" out dax node
  step "nvdimm: wait for the NFIT region"
  for ((r = 0; r < 300; r++)); do
    for d in /sys/bus/nd/devices/region*; do
      [[ -e $d ]] || continue
      [[ $(<"$d/../provider") == ACPI.NFIT ]] 2>/dev/null && region=$(basename "$d")
    done
    [[ -n $region ]] && break
    sleep 0.1
  done
  [[ -n $region ]] || fail "no nd region on the ACPI.NFIT bus within 30 s"
  step "nvdimm: ndctl create-namespace on $region (devdax, align 2M)"
  echo "+ ndctl create-namespace -f -e namespace${region#region}.0 -m devdax -a 2M" >>$CTL/setup.log
  out=$(ndctl create-namespace -f -e "namespace${region#region}.0" -m devdax -a 2M 2>>$CTL/setup.log) ||
    fail "ndctl create-namespace failed"
  echo "$out" >>$CTL/setup.log
  dax=$(json_field chardev <<<"$out")
  [[ -n $dax ]] || fail "ndctl create-namespace made no dax device"
  step "nvdimm: daxctl reconfigure-device --mode=system-ram $dax"
  do_cmd daxctl reconfigure-device --mode=system-ram "$dax"
  node=$(</sys/bus/dax/devices/"$dax"/target_node)
  expect_memory_node "$node" no
  echo "export LAB_PMEM_NODE=$node" >>$CTL/env
}

# CXL type-3 memdev -> pmem region -> nd region on the CXL bus -> devdax -> kmem.
setup_cxl() {
  local out cxlregion ndregion="" dax node
  step "cxl: wait for mem0 and decoder0.0"
  wait_for /sys/bus/cxl/devices/mem0 30
  wait_for /sys/bus/cxl/devices/decoder0.0 30
  # mem0 is usable once cxl_mem has attached its endpoint port.
  wait_for /sys/bus/cxl/devices/mem0/driver 30
  step "cxl: cxl create-region -m -d decoder0.0 -t pmem -w 1 mem0"
  echo "+ cxl create-region -m -d decoder0.0 -t pmem -w 1 mem0" >>$CTL/setup.log
  out=$(cxl create-region -m -d decoder0.0 -t pmem -w 1 mem0 2>>$CTL/setup.log) || fail "cxl create-region failed"
  echo "$out" >>$CTL/setup.log
  cxlregion=$(json_field region <<<"$out")
  [[ -n $cxlregion ]] || fail "cxl create-region reported no region"
  step "cxl: find the nd region of $cxlregion"
  # The nd region (on the nvdimm-bridge's ndbus) has no sysfs link to the cxl region: match the address.
  local i d want
  want=$(($(</sys/bus/cxl/devices/"$cxlregion"/resource)))
  for ((i = 0; i < 300; i++)); do
    for d in /sys/bus/nd/devices/region*; do
      [[ -e $d/resource ]] && (($(<"$d/resource") == want)) && { ndregion=$(basename "$d"); break 2; }
    done
    sleep 0.1
  done
  [[ -n $ndregion ]] || fail "no nd region appeared for $cxlregion within 30 s"
  step "cxl: ndctl create-namespace -r $ndregion (devdax, align 2M)"
  echo "+ ndctl create-namespace -r $ndregion -m devdax -a 2M" >>$CTL/setup.log
  out=$(ndctl create-namespace -r "$ndregion" -m devdax -a 2M 2>>$CTL/setup.log) || fail "ndctl create-namespace failed"
  echo "$out" >>$CTL/setup.log
  dax=$(json_field chardev <<<"$out")
  [[ -n $dax ]] || fail "ndctl create-namespace made no dax device"
  step "cxl: daxctl reconfigure-device --mode=system-ram $dax"
  do_cmd daxctl reconfigure-device --mode=system-ram "$dax"
  node=$(</sys/bus/dax/devices/"$dax"/target_node)
  expect_memory_node "$node" no
  echo "export LAB_CXL_NODE=$node" >>$CTL/env
}

setup_preset() {
  step "preset $LAB_PRESET: check nodes"
  case $LAB_PRESET in
    far | pmem | cxl) expect_memory_node 0 yes; expect_memory_node 1 no ;;
    2socket) expect_memory_node 0 yes; expect_memory_node 1 yes; expect_memory_node 2 no; expect_memory_node 3 no ;;
    *) fail "unknown preset" ;;
  esac
  [[ $LAB_SETUP == 1 ]] || { say "device setup skipped (--no-setup)"; return 0; }
  case $LAB_PRESET in
    pmem) setup_nvdimm ;;
    cxl) setup_nvdimm; setup_cxl ;;
  esac
}

run_command() {
  step "run command in $LAB_CWD"
  [[ -d $LAB_CWD ]] || fail "working directory $LAB_CWD is not visible in the guest"
  say "LAB-CMD-START"
  # A clean environment: the caller's (from the host) plus LAB_*.
  env -i /bin/bash -c '. /run/lab/env; . /run/lab/cmd; cd "$1" || exit 125; exec "${LAB_CMD[@]}"' lab "$LAB_CWD" \
    </dev/null >$CTL/stdout 2>$CTL/stderr
  local rc=$?
  echo "$rc" >$CTL/rc
  say "LAB-CMD-END rc=$rc"
}

run_shell() {
  local rows cols
  hostname tierd-lab 2>/dev/null
  read -r rows cols <<<"${LAB_TTY_SIZE:-}"
  [[ -n ${rows:-} && -n ${cols:-} ]] && stty -F /dev/ttyS0 rows "$rows" cols "$cols" 2>/dev/null
  say "preset $LAB_PRESET ready; LAB_OUT=$LAB_OUT; exit the shell to power off"
  cd "$LAB_CWD" 2>/dev/null || cd /
  # setsid -c: the shell gets ttyS0 as its controlling terminal, so job control and Ctrl-C work.
  env -i /bin/bash -c '. /run/lab/env; export TERM="$0" PS1="[lab:$LAB_PRESET \w]# "; exec setsid -c -w bash --norc -i' \
    "$LAB_TERM" </dev/ttyS0 >/dev/ttyS0 2>&1
  echo "$?" >$CTL/rc
}

setup_sysctls
hold_page_fault_key
setup_preset
case $LAB_MODE in
  run) run_command ;;
  shell) run_shell ;;
esac
exit 0
