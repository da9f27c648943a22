// Which perf events give data addresses on this host. Reads, through FsRoots
// on /sys and /proc, what the kernel exposes:
//   /sys/bus/event_source/devices/{cpu,cpu_core}/{type,caps/pmu_name,caps/max_precise,
//                                                 events/mem-loads*,events/mem-stores,format/*}
//   /sys/bus/event_source/devices/ibs_op/{type,format/*}
//   /proc/cpuinfo (vendor, family, model, stepping), /proc/sys/kernel/osrelease
// and picks from a small table per CPU family:
//   Intel (PEBS with data linear address): MEM_TRANS_RETIRED.LOAD_LATENCY with an
//     ldlat threshold (grouped under mem-loads-aux where the kernel asks for it),
//     MEM_LOAD_L3_MISS_RETIRED.LOCAL_DRAM / REMOTE_DRAM and MEM_LOAD_RETIRED.LOCAL_PMM
//     or LOCAL_CXL_MEM on the server models that have them, and all stores;
//   AMD: IBS op sampling (cnt_ctl=1, l3missonly=1 on Zen 4+).
// Event encodings are applied through the PMU's own format files, so the bits
// land where this kernel says they go.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"

namespace tierd::sampling::perf {

// What a sample of the event says about the access, for the hotness model.
enum class EventKind {
  kLoadLatency,     // any load slower than the ldlat threshold
  kLoadLocalDram,   // load that missed L3 and was served by local DRAM
  kLoadRemoteDram,  // ... by another socket's DRAM
  kLoadPmem,        // ... by local persistent memory
  kLoadCxl,         // ... by local CXL memory
  kStore,           // retired store
  kIbsOp,           // AMD IBS op (loads and stores; DATA_SRC tells which)
  kPageFault,       // software page-fault event: first touches, not hotness
};
std::string_view kindName(EventKind kind);

// One event to open: the perf_event_attr fields the sampler sets.
struct EventSpec {
  std::string name;  // e.g. "MEM_TRANS_RETIRED.LOAD_LATENCY ldlat=64"
  std::string pmu;   // "cpu", "cpu_core", "ibs_op", "software"
  EventKind kind = EventKind::kLoadLatency;
  uint32_t type = 0;  // attr.type (PERF_TYPE_* or the PMU's dynamic type)
  uint64_t config = 0, config1 = 0, config2 = 0;
  uint8_t precise_ip = 0;
  uint64_t sample_type = 0;
  uint64_t sample_period = 0;  // initial period
  uint64_t min_period = 1, max_period = 1ULL << 31;
  uint64_t period_granularity = 1;  // IBS: multiples of 16
  bool exclude_kernel = true;       // IBS cannot filter by privilege level
  bool all_stores = false;          // every sample of this event is a store
  bool per_task = true;             // the PMU accepts per-thread events
  // Set when the kernel wants the event grouped under an auxiliary leader
  // (mem-loads under mem-loads-aux on Sapphire Rapids-class cores): the
  // leader's config on the same PMU type; the leader is not sampled.
  std::optional<uint64_t> aux_leader_config;
};

struct SelectOptions {
  uint32_t ldlat_cycles = 64;       // load-latency threshold (Intel; AMD Zen 5 when >= 128)
  bool load_latency = true;         // MEM_TRANS_RETIRED.LOAD_LATENCY
  bool tier_loads = true;           // L3-miss loads per memory kind, where the model has them
  bool stores = true;               // all stores
  bool physical_addresses = false;  // PERF_SAMPLE_PHYS_ADDR (needs CAP_PERFMON or paranoid <= 1)
};

// The first processor block of /proc/cpuinfo.
struct CpuId {
  std::string vendor;  // "GenuineIntel", "AuthenticAMD", ...
  int family = -1, model = -1, stepping = -1;
};
tier::Result<CpuId> parseCpuinfo(std::string_view text);

// One file of a PMU's format/ directory: "config:0-7", "config1:0-15",
// "config:0-7,32-35" (value bits fill the ranges low to high).
struct FormatField {
  int word = 0;                             // 0 config, 1 config1, 2 config2
  std::vector<std::pair<int, int>> ranges;  // inclusive bit ranges
};
tier::Result<FormatField> parseFormat(std::string_view text);

using PmuFormat = std::map<std::string, FormatField, std::less<>>;
// Applies "event=0xcd,umask=0x1,ldlat=3" (a term without a value is 1) to the
// spec's config words. Unknown terms and values too wide for their field fail.
tier::Result<void> applyTerms(const PmuFormat& format, std::string_view terms, EventSpec& spec);

// The events this host offers for data-address sampling, or an error
// "no data-address sampling PMU on this host: <why>".
tier::Result<std::vector<EventSpec>> selectEvents(const tier::FsRoot& sys, const tier::FsRoot& proc,
                                                  const SelectOptions& options = {});

// Software page faults with PERF_SAMPLE_ADDR: works without a PMU (VMs, the
// lab). With period 1 every fault is a sample; it sees first touches and
// faults after migration or reclaim, not repeated accesses.
EventSpec pageFaultEvent(uint64_t period = 1);

}  // namespace tierd::sampling::perf
