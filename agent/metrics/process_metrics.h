// Metrics the agent takes from procfs text: its own CPU time and the
// kernel's tiering counters. Text in, values out (the daemon reads the files),
// plus helpers that publish the values into a Registry under fixed names.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "base/result.h"
#include "metrics/registry.h"

namespace tierd::metrics {

// tierd_agent_cpu_seconds_total{mode="user"|"system"}: CPU time of the agent
// process, as node_exporter's node_cpu_seconds_total splits it by `mode`.
inline constexpr std::string_view kAgentCpuFamily = "tierd_agent_cpu_seconds_total";

// tierd_kernel_vmstat_total{counter="<field>"}: the kernel's promotion,
// demotion and NUMA-balancing counters from /proc/vmstat.
//
// One family with the field name as a label, rather than one family per field
// (node_exporter's node_vmstat_<field>), because the set of fields depends on
// the kernel version and config (pgdemote_proactive is new, pgpromote_* needs
// CONFIG_NUMA_BALANCING): the family and its HELP stay the same everywhere and
// a new kernel field shows up without an agent change. The label values are
// the kernel's own field names, so they match node_vmstat_<field> and the
// kernel documentation one to one. All of them only ever increase, hence
// `_total` and type counter. Their units differ (pgpromote_*/pgdemote_*/
// pgmigrate_*/numa_pages_migrated count pages, numa_hint_faults* count
// faults), so sum over the family is meaningless: select by `counter`.
inline constexpr std::string_view kKernelVmstatFamily = "tierd_kernel_vmstat_total";

struct AgentCpu {
  double user_seconds = 0;
  double system_seconds = 0;
};

// Fields 14 (utime) and 15 (stime) of /proc/PID/stat, in clock ticks, turned
// into seconds with `clock_ticks_per_second` (sysconf(_SC_CLK_TCK)). The comm
// field (2) is parenthesized but may itself hold spaces and parentheses, so
// the fields are counted after the LAST ')'. Malformed text, or a
// non-positive tick rate, is an EINVAL error naming what was wrong.
tier::Result<AgentCpu> parseSelfStatCpu(std::string_view proc_pid_stat_text,
                                        long clock_ticks_per_second);

// From /proc/vmstat text (parsed with tier::parseCounters, so a malformed line
// is an error), only the tiering counters present: pgpromote_*, pgdemote_*,
// pgmigrate_success, pgmigrate_fail, numa_pages_migrated, numa_hint_faults,
// numa_hint_faults_local. Absent ones are simply not in the map (older
// kernels, CONFIG_NUMA_BALANCING=n).
tier::Result<std::map<std::string, uint64_t>> kernelTieringCounters(
    std::string_view proc_vmstat_text);

// Describe the family (idempotent) and set its series. The values are kernel
// or process totals, so counters are set, not added.
void publishAgentCpu(Registry& registry, const AgentCpu& cpu);
void publishKernelTieringCounters(Registry& registry,
                                  const std::map<std::string, uint64_t>& counters);

}  // namespace tierd::metrics
