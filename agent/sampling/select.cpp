#include "sampling/select.h"

#include <cerrno>
#include <functional>

#include <fmt/format.h>

#include "sampling/damon/region_sampler.h"
#include "sampling/softdirty/soft_dirty_sampler.h"

namespace tierd::sampling {

namespace {

using Opener = std::function<tier::Result<std::unique_ptr<Sampler>>()>;

struct Candidate {
  std::string name;
  Opener open;
};

template <typename T>
tier::Result<std::unique_ptr<Sampler>> upcast(tier::Result<std::unique_ptr<T>> opened) {
  if (!opened) return std::unexpected(opened.error());
  return std::unique_ptr<Sampler>(std::move(*opened));
}

std::vector<Candidate> candidates(const SelectOptions& options, const tier::FsRoot& sys,
                                  const tier::FsRoot& proc) {
  perf::AccessSamplerOptions perf_options;
  perf_options.cpu_budget = options.cpu_budget;
  std::vector<Candidate> list;
  const auto hardware = [&, perf_options] {
    return upcast(perf::PerfAccessSampler::openHardware(sys, proc, perf_options));
  };
  list.push_back({"pebs", hardware});
  list.push_back({"ibs", hardware});
  list.push_back({"hint_faults", [&, perf_options] {
                    return upcast(perf::PerfAccessSampler::openHintFaults(
                        sys, proc, options.hint_fault_hooks, perf_options));
                  }});
  list.push_back({"damon", [&] {
                    damon::DamonOptions damon_options;
                    return upcast(
                        damon::DamonRegionSampler::open(options.sysfs_dir, damon_options));
                  }});
  list.push_back({"soft_dirty", [&]() -> tier::Result<std::unique_ptr<Sampler>> {
                    auto opened = softdirty::SoftDirtySampler::open(options.procfs_dir);
                    if (!opened) return std::unexpected(opened.error());
                    return std::unique_ptr<Sampler>(
                        std::make_unique<softdirty::SoftDirtySampler>(std::move(*opened)));
                  }});
  return list;
}

}  // namespace

tier::Result<Selection> selectSampler(const SelectOptions& options, const tier::FsRoot& sys,
                                      const tier::FsRoot& proc) {
  Selection selection;
  const bool any = options.preference == "auto";
  bool hardware_tried = false;
  for (const Candidate& c : candidates(options, sys, proc)) {
    if (!any && c.name != options.preference) continue;
    const bool hardware = c.name == "pebs" || c.name == "ibs";
    if (any && hardware && hardware_tried) continue;  // one PMU probe serves both names
    hardware_tried |= hardware;
    auto opened = c.open();
    if (opened && (*opened)->name() != c.name && !any && hardware)
      return tier::fail(
          ENODEV, fmt::format("sampler {}: this host's PMU offers {}", c.name, (*opened)->name()));
    if (opened) {
      (*opened)->setCpuBudget(options.cpu_budget);
      selection.sampler = std::move(*opened);
      return selection;
    }
    const std::string label = hardware && any ? "pebs/ibs" : c.name;
    if (!any) return std::unexpected(tier::wrap(opened.error(), "sampler " + label));
    selection.skipped.push_back(fmt::format("{}: {}", label, opened.error().message()));
  }
  std::string why;
  for (const auto& s : selection.skipped)
    why += (why.empty() ? "" : "; ") + s;
  return tier::fail(ENODEV, "no hotness sampler works on this host: " + why);
}

}  // namespace tierd::sampling
