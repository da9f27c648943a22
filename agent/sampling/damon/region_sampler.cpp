#include "sampling/damon/region_sampler.h"

#include <algorithm>
#include <cerrno>

namespace tierd::sampling::damon {

tier::Result<std::unique_ptr<DamonRegionSampler>> DamonRegionSampler::open(
    const std::string& sysfs_dir, DamonOptions options) {
  auto sampler = DamonSampler::open(sysfs_dir, std::move(options));
  if (!sampler) return std::unexpected(sampler.error());
  return std::make_unique<DamonRegionSampler>(std::move(*sampler));
}

DamonRegionSampler::DamonRegionSampler(DamonSampler sampler) : sampler_(std::move(sampler)) {}

tier::Result<void> DamonRegionSampler::setTargets(const std::vector<pid_t>& pids) {
  pending_targets_ = pids;
  if (!started_) return {};
  if (pids == sampler_.targets()) return {};
  return sampler_.updateTargets(pids);
}

tier::Result<void> DamonRegionSampler::start() {
  started_ = true;
  // vaddr needs targets; without any yet, start with the first setTargets.
  if (pending_targets_.empty()) return {};
  if (auto ok = sampler_.updateTargets(pending_targets_); !ok) return ok;
  name_ = sampler_.operations() == "paddr" ? "damon_paddr" : "damon_vaddr";
  return {};
}

tier::Result<void> DamonRegionSampler::poll(SampleBatch& out) {
  if (!started_ || !sampler_.running()) {
    if (started_ && !pending_targets_.empty() && !sampler_.running()) return start();
    return {};
  }
  const Clock::time_point now = Clock::now();
  if (now < next_refresh_) return {};
  const double cpu_before = sampler_.stats().cpu_seconds;
  std::vector<RegionSample> regions;
  auto ok = sampler_.refresh(regions);
  if (!ok) {
    // Every target exited: the kdamond stopped itself; new targets restart it.
    if (ok.error().errnum == ESRCH) return {};
    return ok;
  }
  const double spent = sampler_.stats().cpu_seconds - cpu_before;
  // Rest long enough that refresh cost stays within the budget.
  const double rest = cpu_budget_ > 0 ? spent / cpu_budget_ : 1.0;
  next_refresh_ = now + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(std::clamp(rest, 0.0, 60.0)));
  out.regions.insert(out.regions.end(), regions.begin(), regions.end());
  return {};
}

tier::Result<void> DamonRegionSampler::stop() {
  started_ = false;
  return sampler_.stop();
}

}  // namespace tierd::sampling::damon
