// The kernel moves pages itself through DAMOS (DAMON-based operation schemes,
// migrate_hot/migrate_cold with target_nid: Linux 6.11+), configured through
// DAMON's sysfs interface. One kdamond per node, monitoring the node's
// physical memory (paddr over its online memory blocks), with one scheme:
//
//   a fast node (rank 0 for its home initiator): migrate_cold to the node of
//     the next tier with the most free memory; regions with no access for
//     cold_min_age; runs while the system's free-memory rate is below the
//     demotion watermark;
//   a slower node: migrate_hot to the tier-0 node (of its home initiator) with
//     the most free memory; regions with nr_accesses >= hot_min_accesses;
//     runs while free memory is above the low watermark.
//
// A DAMOS "young" filter makes each page's own accessed bit count too:
// migrate_cold skips pages accessed since the last check, migrate_hot takes
// only those. Each scheme is bounded by a time quota (ms per reset interval) and a size
// quota (the MiB/s budget times the reset interval). The kdamonds are taken
// politely (sampling/damon/admin.h): free ones, or new ones while none runs.
// Not thread-safe: one owner drives it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"
#include "fs/fs_writer.h"
#include "kernel_tiering/options.h"
#include "sampling/damon/admin.h"
#include "sampling/damon/parse.h"
#include "topology/topology.h"

namespace tierd::kernel_tiering {

enum class DamosAction { MigrateCold, MigrateHot };
std::string_view damosActionName(DamosAction action);  // the kernel's word

// One node's scheme, as planned from the topology.
struct DamosPlanEntry {
  int node = -1;         // monitored
  int target_node = -1;  // where the action moves pages
  DamosAction action = DamosAction::MigrateCold;
  bool operator==(const DamosPlanEntry&) const = default;
};

// Pure: for every memory node, the scheme it gets (`demote`: fast nodes get
// migrate_cold; `promote`: slower nodes get migrate_hot). A node's tiers are
// those of its home initiator (its own CPUs, else the initiator HMAT names
// for it, else the closest by SLIT distance), as Topology::homeRank sees it.
std::vector<DamosPlanEntry> planDamosTiering(const tier::Topology& topology, bool promote,
                                             bool demote);

// DAMOS's own counters for one scheme (schemes/<N>/stats/).
struct DamosSchemeStats {
  uint64_t nr_tried = 0, sz_tried = 0, nr_applied = 0, sz_applied = 0, qt_exceeds = 0;
  bool operator==(const DamosSchemeStats&) const = default;
};
// The five files' text, as read.
struct DamosStatsText {
  std::string nr_tried, sz_tried, nr_applied, sz_applied, qt_exceeds;
};
tier::Result<DamosSchemeStats> parseDamosStats(const DamosStatsText& text);

// The values written for one scheme, computed from the options (pure, so the
// arithmetic is tested on its own).
struct DamosSchemeSettings {
  std::string action;
  int target_nid = -1;
  uint64_t nr_accesses_min = 0, nr_accesses_max = 0;
  uint64_t age_min = 0, age_max = 0;  // in aggregation intervals
  uint64_t quota_ms = 0, quota_bytes = 0, quota_reset_ms = 0;
  uint64_t wmark_high = 0, wmark_mid = 0, wmark_low = 0;  // permil of free memory
};
DamosSchemeSettings schemeSettings(const DamosPlanEntry& entry,
                                   const KernelTieringOptions& options);

struct DamosSchemeState {
  DamosPlanEntry entry;
  int kdamond = -1;
  std::vector<sampling::damon::AddressRange> ranges;  // monitored physical memory
  DamosSchemeStats stats;
  bool running = false;
};

class DamosTiering {
 public:
  static tier::Result<DamosTiering> open(const std::string& sysfs_dir);
  DamosTiering(tier::FsRoot sys, tier::FsWriter writer);
  DamosTiering(DamosTiering&& other) noexcept;
  DamosTiering& operator=(DamosTiering&&) = delete;
  DamosTiering(const DamosTiering&) = delete;
  DamosTiering& operator=(const DamosTiering&) = delete;
  ~DamosTiering();  // stop(), errors ignored

  // Plans from the topology, claims one kdamond per scheme, configures and
  // turns them on. A plan with no scheme (one tier) is no error: nothing runs
  // and a note says why. Errors: ENOENT without DAMON's sysfs interface,
  // EOPNOTSUPP without migrate actions (before 6.11) or paddr, EBUSY when too
  // few kdamonds are free, the failing write otherwise; then nothing is held.
  // Applying again stops what runs first.
  tier::Result<void> apply(const tier::Topology& topology, const KernelTieringOptions& options,
                           bool promote, bool demote);

  // Asks each kdamond to update its schemes' stats files and reads them.
  // A kdamond that stopped by itself is marked not running (and noted).
  tier::Result<void> refreshStats();

  // Turns our kdamonds off and gives them back.
  tier::Result<void> stop();

  bool running() const { return !schemes_.empty(); }
  const std::vector<DamosSchemeState>& schemes() const { return schemes_; }
  const std::vector<std::string>& notes() const { return notes_; }

 private:
  tier::Result<std::vector<sampling::damon::AddressRange>> nodeRanges(
      const tier::Topology& topology, int node) const;
  tier::Result<void> configure(const DamosSchemeState& scheme, const KernelTieringOptions& options);
  tier::Result<void> writeYoungFilter(const std::string& dir, DamosAction action);
  tier::Result<void> write(const std::string& relpath, std::string_view value) const;
  void note(std::string text);
  void releaseAll();

  tier::FsRoot sys_;
  tier::FsWriter writer_;
  sampling::damon::KdamondClaim claim_;
  bool holding_ = false;
  std::vector<DamosSchemeState> schemes_;
  std::vector<std::string> notes_;
  std::string young_filter_missing_;  // set by configure(), noted by apply()
};

}  // namespace tierd::kernel_tiering
