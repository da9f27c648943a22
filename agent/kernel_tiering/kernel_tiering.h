// The `kernel` mode: tierd configures the kernel's own tiering machinery and
// reports what it does; it moves no pages itself.
//
//   numa_balancing: numa_balancing gets the MEMORY_TIERING bit (the NORMAL bit
//     stays as it was), the promotion rate limit, the hot threshold (debugfs,
//     when set and mounted) and demotion_enabled;
//   damos: DamosTiering (migrate_cold on fast nodes, migrate_hot on slower ones);
//   both: NUMA balancing promotes, DAMOS migrate_cold demotes.
//
// restore() undoes everything apply() changed (KernelKnobs::restore's rules:
// only what tierd changed and still holds tierd's value) and gives the
// kdamonds back. report() reads the knobs, the DAMOS stats and the kernel's
// vmstat counters as deltas since apply(). Thread-safe: status requests call
// report() from worker threads while the main thread may re-apply.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "fs/fs_root.h"
#include "kernel_tiering/damos.h"
#include "kernel_tiering/knobs.h"
#include "kernel_tiering/options.h"
#include "topology/topology.h"

namespace tierd::kernel_tiering {

// The vmstat counters report() follows, as deltas since apply().
inline constexpr std::string_view kReportedVmstat[] = {
    "pgpromote_success",   "pgpromote_candidate", "pgdemote_kswapd",  "pgdemote_direct",
    "pgdemote_khugepaged", "pgmigrate_success",   "numa_hint_faults",
};

// Pure: the counters of kReportedVmstat present in both, now - then (0 when a
// counter went backwards, which only a reboot or a wrap does).
std::map<std::string, uint64_t> vmstatDeltas(const std::map<std::string, uint64_t>& then,
                                             const std::map<std::string, uint64_t>& now);

struct KernelTieringReport {
  bool applied = false;
  std::string machinery;
  double seconds_since_apply = 0;
  std::vector<KnobState> knobs;  // every knob; absent ones without a value
  std::vector<DamosSchemeState> schemes;
  std::map<std::string, uint64_t> vmstat_deltas;
  std::vector<std::string> notes;
};
nlohmann::ordered_json reportJson(const KernelTieringReport& report);

// What apply() set, one line for the log.
std::string describeApplied(const KernelTieringReport& report);

class KernelTiering {
 public:
  static tier::Result<std::unique_ptr<KernelTiering>> open(const std::string& sysfs_dir,
                                                           const std::string& procfs_dir);
  KernelTiering(KernelKnobs knobs, DamosTiering damos, tier::FsRoot proc);
  ~KernelTiering();  // restore(), outcome dropped

  // Configures the kernel. Applying again (a reload) restores first, then
  // applies the new options. On error whatever was set is restored again.
  tier::Result<void> apply(const tier::Topology& topology, const KernelTieringOptions& options);
  // Undoes apply(); one sentence per thing left as it was (also in notes).
  std::vector<std::string> restore();
  KernelTieringReport report();

  bool applied() const;
  std::optional<KernelTieringOptions> options() const;

 private:
  tier::Result<void> applyLocked(const tier::Topology& topology,
                                 const KernelTieringOptions& options);
  std::vector<std::string> restoreLocked();
  std::map<std::string, uint64_t> readVmstat() const;
  void note(std::string text);

  mutable std::mutex mutex_;
  KernelKnobs knobs_;
  DamosTiering damos_;
  tier::FsRoot proc_;
  std::optional<KernelTieringOptions> options_;
  std::map<std::string, uint64_t> vmstat_at_apply_;
  std::chrono::steady_clock::time_point applied_at_{};
  std::vector<std::string> notes_;
};

}  // namespace tierd::kernel_tiering
