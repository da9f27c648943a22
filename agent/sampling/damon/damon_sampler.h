// Region heat from DAMON through its sysfs interface
// (/sys/kernel/mm/damon/admin, Linux 6.2+ for tried_regions).
//
// The sampler takes one kdamond: a free one (state "off") if there is one, else
// it adds one when none runs (nr_kdamonds only changes while every kdamond is
// off). It never touches a kdamond that is on and that it did not start. It
// sets up one context: `vaddr` with one target per pid, or `paddr` over every
// online memory block (also the fallback when the kernel lacks vaddr), and
// DAMOS schemes with the action `stat` and an access pattern that matches
// everything. refresh() asks the kdamond for the regions the schemes tried
// (update_schemes_tried_regions) and reads them back: each region's address
// range, nr_accesses in the last aggregation window and age.
//
// With several vaddr targets each gets its own scheme with a DAMOS "target"
// filter (6.5+), so every region is attributed to its pid exactly. On kernels
// without that filter one scheme serves all targets and regions are split by
// address order (see attributeByAddressOrder).
//
// Cost: refresh() blocks while the kdamond collects the regions (one to two
// aggregation intervals: 0.1-0.23 s at aggr 100 ms in the lab), then reads
// four files per region (1-5 ms per region in the TCG lab guest, most of it
// CPU). Call it from a thread that may block. Not thread-safe: one owner
// thread drives it. If the process dies, its kdamond stays on (the kernel
// does not know who started it) until someone writes "off" to its state.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"
#include "fs/fs_writer.h"
#include "sampling/damon/admin.h"
#include "sampling/damon/parse.h"
#include "sampling/sample.h"

namespace tierd::sampling::damon {

enum class Operations {
  kVaddr,  // per process; falls back to paddr (with a note) when the kernel lacks vaddr
  kPaddr,  // physical address space; RegionSample.pid is 0
};

struct DamonOptions {
  Operations operations = Operations::kVaddr;
  std::vector<pid_t> pids;  // vaddr targets, one each (duplicates dropped)
  uint64_t sample_us = 5'000;
  uint64_t aggr_us = 100'000;
  uint64_t update_us = 1'000'000;  // how often vaddr re-reads the targets' mappings
  uint64_t min_regions = 10;       // per target; the kernel wants at least 3
  uint64_t max_regions = 1'000;
  // paddr: the ranges to monitor. Empty: every online memory block
  // (devices/system/memory), adjacent blocks merged.
  std::vector<AddressRange> paddr_ranges;
};

struct DamonStats {
  uint64_t refreshes = 0;        // successful refresh() calls
  uint64_t empty_refreshes = 0;  // ... after which the kernel had left tried_regions empty
  uint64_t last_regions = 0;     // regions delivered by the last refresh
  double update_seconds = 0;     // wall time in the update_schemes_tried_regions write, total
  double read_seconds = 0;       // wall time reading the region files, total
  double cpu_seconds = 0;        // this thread's CPU time in refresh(), total
  double last_update_seconds = 0, last_read_seconds = 0;
};

class DamonSampler {
 public:
  // Opens `sysfs_dir` ("/sys", or a fixture tree) for reading and writing.
  static tier::Result<DamonSampler> open(const std::string& sysfs_dir, DamonOptions options);
  DamonSampler(tier::FsRoot sys, tier::FsWriter writer, DamonOptions options);

  DamonSampler(DamonSampler&& other) noexcept;
  DamonSampler& operator=(DamonSampler&&) = delete;
  DamonSampler(const DamonSampler&) = delete;
  DamonSampler& operator=(const DamonSampler&) = delete;
  ~DamonSampler();  // stop(), errors ignored

  // Claims a kdamond, configures it and turns it on. Errors: ENOENT "kernel
  // lacks DAMON's sysfs interface"; EBUSY naming the running kdamonds when
  // none is free; EINVAL for vaddr without pids; the failing write otherwise
  // (whatever was claimed is released again). A no-op when running.
  tier::Result<void> start();

  // Replaces `out` with the regions DAMON reports now. Returns an empty list
  // (and counts it in DamonStats::empty_refreshes) when the kernel left
  // tried_regions empty. ESRCH when the kdamond stopped by itself (vaddr: every
  // target exited); updateTargets() with live pids starts it again.
  tier::Result<void> refresh(std::vector<RegionSample>& out);

  // New vaddr target list. Pids only added at the end: written and committed
  // while running (the others keep their regions and ages). Any pid removed
  // or reordered: the kdamond is turned off, set up again and turned on (region
  // history restarts). Empty: stop(). Not running: start(). paddr: stored only.
  tier::Result<void> updateTargets(std::vector<pid_t> pids);

  // Turns our kdamond off and, if start() added it, sets nr_kdamonds back
  // (when every kdamond is off; else a note says why it stays).
  tier::Result<void> stop();

  bool running() const { return running_; }
  int kdamond() const { return kdamond_; }  // our index, -1 when none is claimed
  // "vaddr" or "paddr" as configured by the last start(); empty before.
  const std::string& operations() const { return ops_in_use_; }
  const std::vector<pid_t>& targets() const { return targets_; }
  uint32_t maxAccesses() const;  // aggr_us / sample_us: nr_accesses' ceiling
  // Things worth telling the admin once (fallbacks, what stop() left behind).
  const std::vector<std::string>& notes() const { return notes_; }
  // samples: regions delivered; lost: regions that vanished while read or
  // could not be attributed; malformed: unparsable; cpu_seconds: CPU time of
  // this thread in refresh() (the kdamond's own CPU is in /proc/<kdamondPid()>).
  SamplerStats stats() const { return stats_; }
  const DamonStats& damonStats() const { return damon_stats_; }
  // The kdamond kernel thread's pid, for its CPU time in /proc.
  tier::Result<pid_t> kdamondPid() const;

 private:
  std::string kdamondDir() const;
  std::string contextDir() const;
  tier::Result<std::string> read(const std::string& relpath) const;
  tier::Result<void> write(const std::string& relpath, std::string_view value) const;
  tier::Result<void> claim();
  void release();
  tier::Result<void> configure();
  tier::Result<void> writeTargets();
  tier::Result<void> writeSchemes();
  tier::Result<void> writeScheme(size_t index, int filter_target);
  tier::Result<std::vector<AddressRange>> physicalRanges() const;
  tier::Result<void> turnOn();
  tier::Result<void> turnOff();
  void note(std::string text);
  tier::Error kdamondStoppedOrError(tier::Error error);

  tier::FsRoot sys_;
  tier::FsWriter writer_;
  DamonOptions options_;
  std::vector<pid_t> targets_;
  std::string ops_in_use_;
  int kdamond_ = -1;  // claimed index
  KdamondClaim claim_;
  bool running_ = false;
  bool per_target_schemes_ = false;
  size_t nr_schemes_ = 0;
  std::vector<std::string> notes_;
  SamplerStats stats_;
  DamonStats damon_stats_;
};

}  // namespace tierd::sampling::damon
