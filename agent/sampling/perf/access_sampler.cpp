#include "sampling/perf/access_sampler.h"

#include <algorithm>
#include <cerrno>
#include <cmath>

#include <fmt/format.h>

#include "sampling/perf/events.h"

namespace tierd::sampling::perf {

namespace {

std::string hardwareName(const std::vector<EventSpec>& specs) {
  for (const EventSpec& spec : specs)
    if (spec.pmu == "ibs_op") return "ibs";
  return "pebs";
}

constexpr uint64_t kMs = 1'000'000;
constexpr uint64_t kBurstWindow = 10 * kMs;
constexpr uint64_t kBeforeWindow = 200 * kMs;
constexpr uint64_t kMinPassGap = 300 * kMs;

}  // namespace

std::vector<uint64_t> PassClock::weigh(const std::vector<uint64_t>& times) {
  // Times of the previous call's last 200 ms count toward "the rate before".
  std::vector<uint64_t> all = tail_;
  const size_t offset = all.size();
  all.insert(all.end(), times.begin(), times.end());
  std::vector<uint64_t> weights(times.size(), 1);
  size_t burst_end = offset, before_begin = 0;
  for (size_t i = offset; i < all.size(); ++i) {
    const uint64_t t = all[i];
    burst_end = std::max(burst_end, i);
    while (burst_end < all.size() && all[burst_end] <= t + kBurstWindow)
      ++burst_end;
    while (before_begin < i && all[before_begin] + kBeforeWindow < t)
      ++before_begin;
    const uint64_t burst = burst_end - i;
    const uint64_t before = i - before_begin;  // in 200 ms: 20 burst windows
    const bool gap = pass_start_ == 0 || t >= pass_start_ + kMinPassGap;
    if (gap && burst >= burst_min_ && burst * 20 >= 5 * before) {
      pass_start_ = t;
      ++passes_;
    }
    if (pass_start_ != 0 && t >= pass_start_) {
      const double latency_ms = static_cast<double>(t - pass_start_) / kMs;
      weights[i - offset] =
          std::max<uint64_t>(1, static_cast<uint64_t>(kLatencyScale / (latency_ms + 10.0)));
    } else {
      weights[i - offset] =
          static_cast<uint64_t>(kLatencyScale / 1000.0);  // unknown pass: 1 s late
    }
  }
  tail_.clear();
  if (!all.empty()) {
    const uint64_t last = all.back();
    for (uint64_t t : all)
      if (t + kBeforeWindow >= last) tail_.push_back(t);
  }
  return weights;
}

PerfAccessSampler::PerfAccessSampler(std::string name, PerfSampler sampler, ScanningHooks hooks,
                                     AccessSamplerOptions options)
    : name_(std::move(name)),
      sampler_(std::move(sampler)),
      hooks_(std::move(hooks)),
      options_(options) {
  applyBudget();
}

PerfAccessSampler::~PerfAccessSampler() {
  (void)stop();
}

tier::Result<std::unique_ptr<PerfAccessSampler>> PerfAccessSampler::openHardware(
    const tier::FsRoot& sys, const tier::FsRoot& proc, AccessSamplerOptions options) {
  auto specs = selectEvents(sys, proc);
  if (!specs) return std::unexpected(specs.error());
  SamplerOptions o{.events = *specs,
                   .target = Target::system(),
                   .ring_pages = options.ring_pages,
                   .skip_failed_events = true};
  auto sampler = PerfSampler::open(std::move(o), sys, proc);
  if (!sampler) return std::unexpected(sampler.error());
  std::string name = hardwareName(sampler->events());
  return std::unique_ptr<PerfAccessSampler>(
      new PerfAccessSampler(std::move(name), std::move(*sampler), {}, options));
}

tier::Result<std::unique_ptr<PerfAccessSampler>> PerfAccessSampler::openHintFaults(
    const tier::FsRoot& sys, const tier::FsRoot& proc, ScanningHooks hooks,
    AccessSamplerOptions options) {
  if (!proc.exists("sys/kernel/numa_balancing"))
    return tier::fail(ENOENT, "kernel lacks NUMA balancing (no /proc/sys/kernel/numa_balancing)");
  SamplerOptions o{
      .events = {pageFaultEvent(1)}, .target = Target::system(), .ring_pages = options.ring_pages};
  auto sampler = PerfSampler::open(std::move(o), sys, proc);
  if (!sampler) return std::unexpected(sampler.error());
  return std::unique_ptr<PerfAccessSampler>(
      new PerfAccessSampler("hint_faults", std::move(*sampler), std::move(hooks), options));
}

tier::Result<void> PerfAccessSampler::setTargets(const std::vector<pid_t>& pids) {
  targets_ = std::unordered_set<pid_t>(pids.begin(), pids.end());
  std::erase_if(pass_clocks_, [&](const auto& kv) { return !targets_.contains(kv.first); });
  return {};
}

tier::Result<void> PerfAccessSampler::start() {
  if (running_) return {};
  if (hooks_.enable && !scanning_enabled_) {
    if (auto ok = hooks_.enable(); !ok)
      return std::unexpected(tier::wrap(ok.error(), "turning on NUMA hint-fault scanning"));
    scanning_enabled_ = true;
  }
  if (auto ok = sampler_.start(); !ok) {
    if (scanning_enabled_ && hooks_.restore) hooks_.restore();
    scanning_enabled_ = false;
    return ok;
  }
  running_ = true;
  return {};
}

tier::Result<void> PerfAccessSampler::poll(SampleBatch& out) {
  if (!running_) return {};
  scratch_.clear();
  event_of_.clear();
  auto got = sampler_.poll(scratch_, &event_of_);
  if (!got) return std::unexpected(got.error());
  const auto status = sampler_.status();
  const size_t first = out.accesses.size();
  uint64_t fault_period = 1;
  for (size_t i = 0; i < scratch_.size(); ++i) {
    AccessSample& sample = scratch_[i];
    if (!targets_.contains(sample.pid)) {
      ++filtered_out_;
      continue;
    }
    const uint32_t event = i < event_of_.size() ? event_of_[i] : 0;
    const uint64_t period = event < status.size() ? std::max<uint64_t>(1, status[event].period) : 1;
    sample.weight = period;
    fault_period = period;
    out.accesses.push_back(sample);
  }
  if (name_ == "hint_faults") weighByLatency(out.accesses, first, fault_period);
  applyBudget();
  return {};
}

void PerfAccessSampler::weighByLatency(std::vector<AccessSample>& samples, size_t from,
                                       uint64_t period) {
  std::unordered_map<pid_t, std::vector<size_t>> by_pid;
  for (size_t i = from; i < samples.size(); ++i)
    by_pid[samples[i].pid].push_back(i);
  for (auto& [pid, indices] : by_pid) {
    std::sort(indices.begin(), indices.end(),
              [&](size_t a, size_t b) { return samples[a].time_ns < samples[b].time_ns; });
    std::vector<uint64_t> times;
    times.reserve(indices.size());
    for (size_t i : indices)
      times.push_back(samples[i].time_ns);
    PassClock& clock = pass_clocks_[pid];
    // One in `period` faults is sampled: a burst shows that many times fewer.
    clock.setBurstMin(
        static_cast<unsigned>(std::max<uint64_t>(4, 16 / std::max<uint64_t>(1, period))));
    const std::vector<uint64_t> weights = clock.weigh(times);
    for (size_t k = 0; k < indices.size(); ++k)
      samples[indices[k]].weight = weights[k] * period;
  }
}

tier::Result<void> PerfAccessSampler::stop() {
  tier::Result<void> result;
  if (running_) result = sampler_.stop();
  running_ = false;
  if (scanning_enabled_ && hooks_.restore) hooks_.restore();
  scanning_enabled_ = false;
  return result;
}

void PerfAccessSampler::setCpuBudget(double fraction) {
  options_.cpu_budget = fraction;
  applyBudget();
}

void PerfAccessSampler::applyBudget() {
  // Samples per second the budget affords, at the cost measured so far.
  const SamplerStats s = sampler_.stats();
  double cost = options_.cost_per_sample;
  if (s.samples > 10'000 && s.cpu_seconds > 0)
    cost = std::max(2e-7, s.cpu_seconds / static_cast<double>(s.samples));
  const double budget = std::max(100.0, options_.cpu_budget / cost);
  // setBudget restarts the period controllers' windows: only on real change.
  if (last_budget_ > 0 && std::abs(budget - last_budget_) < 0.1 * last_budget_) return;
  last_budget_ = budget;
  sampler_.setBudget(budget);
}

SamplerStats PerfAccessSampler::stats() const {
  return sampler_.stats();
}

}  // namespace tierd::sampling::perf
