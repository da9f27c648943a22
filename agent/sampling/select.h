// Picks the hotness sampler from what the host offers. "auto" tries, in
// order: hardware data-address sampling (PEBS, IBS), NUMA hint faults,
// DAMON, soft-dirty bits; a named sampler is that one or an error. Every
// sampler skipped on the way is listed with the reason, for the log.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"
#include "sampling/perf/access_sampler.h"
#include "sampling/sampler.h"

namespace tierd::sampling {

struct SelectOptions {
  std::string preference = "auto";  // auto, pebs, ibs, hint_faults, damon, soft_dirty
  std::string sysfs_dir = "/sys";
  std::string procfs_dir = "/proc";
  perf::ScanningHooks hint_fault_hooks;  // how to turn the kernel's scanner on and back
  double cpu_budget = 0.03;
};

struct Selection {
  std::unique_ptr<Sampler> sampler;
  std::vector<std::string> skipped;  // "pebs: no data-address sampling PMU on this host: ..."
};

tier::Result<Selection> selectSampler(const SelectOptions& options, const tier::FsRoot& sys,
                                      const tier::FsRoot& proc);

}  // namespace tierd::sampling
