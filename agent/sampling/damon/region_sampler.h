// DamonSampler behind the common Sampler interface: region heat for the
// target processes (vaddr), or for all memory (paddr) where the kernel lacks
// vaddr. refresh() blocks for one or two aggregation intervals and costs CPU
// per region read, so poll() refreshes only as often as the CPU budget allows
// (it measures its own cost) and returns nothing in between.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "sampling/damon/damon_sampler.h"
#include "sampling/sampler.h"

namespace tierd::sampling::damon {

class DamonRegionSampler : public Sampler {
 public:
  using Clock = std::chrono::steady_clock;
  // ENOENT when the kernel lacks DAMON's sysfs interface.
  static tier::Result<std::unique_ptr<DamonRegionSampler>> open(const std::string& sysfs_dir,
                                                                DamonOptions options);
  explicit DamonRegionSampler(DamonSampler sampler);

  std::string_view name() const override { return name_; }
  tier::Result<void> setTargets(const std::vector<pid_t>& pids) override;
  tier::Result<void> start() override;
  tier::Result<void> poll(SampleBatch& out) override;
  tier::Result<void> stop() override;
  void setCpuBudget(double fraction) override { cpu_budget_ = fraction; }
  SamplerStats stats() const override { return sampler_.stats(); }

 private:
  DamonSampler sampler_;
  std::string name_ = "damon_vaddr";
  std::vector<pid_t> pending_targets_;
  bool started_ = false;
  double cpu_budget_ = 0.03;
  Clock::time_point next_refresh_{};
};

}  // namespace tierd::sampling::damon
