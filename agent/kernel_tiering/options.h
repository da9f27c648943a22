// What the `kernel` mode asks of the kernel's own tiering machinery: the
// [kernel] section of tierd.toml (parsed in agent/config), applied by
// KernelTiering. Plain data, no dependencies, so the config module can hold it.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace tierd::kernel_tiering {

enum class Machinery {
  // NUMA balancing in tiering mode (numa_balancing bit 2): hint faults promote
  // hot pages at the promotion rate limit, reclaim demotes (demotion_enabled).
  NumaBalancing,
  // DAMOS: per node a kdamond with migrate_cold (fast nodes) or migrate_hot
  // (slow nodes), bounded by quotas and watermarks.
  Damos,
  // NUMA balancing promotes (per page), DAMOS migrate_cold demotes cold ranges
  // before reclaim has to.
  Both,
};
std::string_view machineryName(Machinery machinery);
std::optional<Machinery> machineryByName(std::string_view name);

struct KernelTieringOptions {
  Machinery machinery = Machinery::NumaBalancing;

  // NUMA balancing.
  uint64_t promote_rate_limit_mbps = 256;    // the kernel's default is 65536: effectively none
  std::optional<uint64_t> hot_threshold_ms;  // debugfs; unset: the kernel's (1000 ms)
  bool demotion_enabled = true;              // reclaim demotes to the next tier

  // DAMOS. nr_accesses counts samples per aggregation interval that found the
  // region accessed: at most damos_aggr_us / damos_sample_us (20 by default).
  uint32_t damos_hot_min_accesses = 5;
  double damos_cold_min_age_s = 5;  // no access for this long
  uint64_t damos_quota_ms = 100;    // kdamond time for the action per reset interval
  double damos_quota_mbps = 128;    // bytes migrated per second, per scheme
  uint64_t damos_quota_reset_ms = 1000;
  // Watermarks on the system's free-memory rate (DAMOS has no per-node metric
  // before quota goals in 6.16): demotion runs while free memory is below
  // damos_demote_free_percent (100: always); neither scheme runs below
  // damos_low_watermark_percent (reclaim is in charge then).
  double damos_demote_free_percent = 100;
  double damos_low_watermark_percent = 5;
  uint64_t damos_sample_us = 5'000;
  uint64_t damos_aggr_us = 100'000;

  bool operator==(const KernelTieringOptions&) const = default;
};

inline std::string_view machineryName(Machinery machinery) {
  switch (machinery) {
    case Machinery::NumaBalancing:
      return "numa_balancing";
    case Machinery::Damos:
      return "damos";
    case Machinery::Both:
      return "both";
  }
  return "numa_balancing";
}

inline std::optional<Machinery> machineryByName(std::string_view name) {
  for (Machinery m : {Machinery::NumaBalancing, Machinery::Damos, Machinery::Both})
    if (machineryName(m) == name) return m;
  return std::nullopt;
}

}  // namespace tierd::kernel_tiering
