#include "sampling/perf/access_sampler.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>

#include <unistd.h>

#include <fmt/format.h>

#include "parse/parsers.h"
#include "sampling/perf/events.h"

namespace tierd::sampling::perf {

namespace {

std::string hardwareName(const std::vector<EventSpec>& specs) {
  for (const EventSpec& spec : specs)
    if (spec.pmu == "ibs_op") return "ibs";
  return "pebs";
}

constexpr size_t kHintFaultRingPages = 512;                  // 2 MiB: ~40k fault records per CPU
constexpr Sampler::HalfLives kHintFaultHalfLives{120, 120};  // see minimumHalfLives

}  // namespace

std::vector<uint64_t> WindowClock::weigh(const std::vector<Fault>& faults) {
  std::vector<uint64_t> weights;
  weights.reserve(faults.size());
  for (const Fault& f : faults)
    weights.push_back(weigh(f));
  return weights;
}

uint64_t WindowClock::weigh(Fault f) {
  constexpr unsigned kPageBits = kWindowShift - 12;
  if (f.page >> kPageBits != last_key_) {
    last_key_ = f.page >> kPageBits;
    last_ = &windows_[last_key_];
  }
  Window& w = *last_;
  const uint64_t slot = f.page & (kPagesPerWindow - 1);
  uint64_t& word = w.seen[slot / 64];
  const uint64_t bit = 1ULL << (slot % 64);
  if (w.pass_start_ns == 0 || (word & bit)) {  // first fault, or the scanner came round
    if (w.pass_start_ns != 0) ++passes_;
    w.seen.fill(0);
    w.pass_start_ns = f.time_ns;
  }
  word |= bit;
  // kLatencyScale / (L ms + 10) in integers (no floating point per fault:
  // under the lab's emulation each such operation is a helper call).
  constexpr auto kScaleUs = static_cast<uint64_t>(kLatencyScale) * 1000;
  constexpr uint64_t kOffsetUs = 10 * 1000;
  const uint64_t latency_us =
      f.time_ns > w.pass_start_ns ? (f.time_ns - w.pass_start_ns) / 1000 : 0;
  return std::max<uint64_t>(1, kScaleUs / (latency_us + kOffsetUs));
}

PerfAccessSampler::PerfAccessSampler(std::string name, std::optional<PerfSampler> sampler,
                                     ScanningHooks hooks, AccessSamplerOptions options,
                                     const tier::FsRoot* sys, const tier::FsRoot* proc)
    : name_(std::move(name)),
      system_(std::move(sampler)),
      sys_(sys),
      proc_(proc),
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
  return openSystemWide(std::move(*specs), sys, proc, options);
}

tier::Result<std::unique_ptr<PerfAccessSampler>> PerfAccessSampler::openSystemWide(
    std::vector<EventSpec> events, const tier::FsRoot& sys, const tier::FsRoot& proc,
    AccessSamplerOptions options, std::string name) {
  SamplerOptions o{.events = std::move(events),
                   .target = Target::system(),
                   .ring_pages = options.ring_pages,
                   .skip_failed_events = true};
  auto sampler = PerfSampler::open(std::move(o), sys, proc);
  if (!sampler) return std::unexpected(sampler.error());
  if (name.empty()) name = hardwareName(sampler->events());
  return std::unique_ptr<PerfAccessSampler>(
      new PerfAccessSampler(std::move(name), std::move(*sampler), {}, options, nullptr, nullptr));
}

tier::Result<std::unique_ptr<PerfAccessSampler>> PerfAccessSampler::openHintFaults(
    const tier::FsRoot& sys, const tier::FsRoot& proc, ScanningHooks hooks,
    AccessSamplerOptions options) {
  if (!proc.exists("sys/kernel/numa_balancing"))
    return tier::fail(ENOENT, "kernel lacks NUMA balancing (no /proc/sys/kernel/numa_balancing)");
  if (hooks.usable)
    if (auto ok = hooks.usable(); !ok) return std::unexpected(ok.error());
  // Probe that software page-fault sampling opens here (perf_event_paranoid,
  // CONFIG_PERF_EVENTS), on this process, before promising anything.
  SamplerOptions probe{
      .events = {pageFaultEvent(1)}, .target = Target::process(getpid()), .ring_pages = 1};
  if (auto opened = PerfSampler::open(std::move(probe), sys, proc); !opened)
    return std::unexpected(opened.error());
  return std::unique_ptr<PerfAccessSampler>(
      new PerfAccessSampler("hint_faults", std::nullopt, std::move(hooks), options, &sys, &proc));
}

std::vector<PerfSampler*> PerfAccessSampler::samplers() {
  std::vector<PerfSampler*> out;
  if (system_) out.push_back(&*system_);
  for (auto& [pid, sampler] : per_pid_)
    out.push_back(&sampler);
  return out;
}

tier::Result<void> PerfAccessSampler::setTargets(const std::vector<pid_t>& pids) {
  targets_ = std::unordered_set<pid_t>(pids.begin(), pids.end());
  std::erase_if(window_clocks_, [&](const auto& kv) { return !targets_.contains(kv.first); });
  if (system_) return {};
  for (auto it = per_pid_.begin(); it != per_pid_.end();) {
    if (targets_.contains(it->first)) {
      ++it;
      continue;
    }
    const SamplerStats gone = it->second.stats();
    retired_.samples += gone.samples;
    retired_.lost += gone.lost;
    retired_.throttled += gone.throttled;
    retired_.malformed += gone.malformed;
    retired_.cpu_seconds += gone.cpu_seconds;
    sched_files_.erase(it->first);
    first_passes_.erase(it->first);
    it = per_pid_.erase(it);
  }
  std::string refused;
  for (pid_t pid : pids) {
    if (per_pid_.contains(pid)) continue;
    SamplerOptions o{.events = {pageFaultEvent(1)},
                     .target = Target::process(pid),
                     .ring_pages = std::max<size_t>(options_.ring_pages, kHintFaultRingPages)};
    auto sampler = PerfSampler::open(std::move(o), *sys_, *proc_);
    if (!sampler) {
      // Gone already: nothing to watch. Anything else is worth saying.
      if (sampler.error().errnum != ESRCH)
        refused += fmt::format("{}pid {}: {}", refused.empty() ? "" : "; ", pid,
                               sampler.error().message());
      continue;
    }
    if (running_) (void)sampler->start();
    per_pid_.emplace(pid, std::move(*sampler));
  }
  last_budget_ = 0;
  applyBudget();
  if (!refused.empty()) return tier::fail(EPERM, "hint-fault sampling: " + refused);
  return {};
}

tier::Result<void> PerfAccessSampler::start() {
  if (running_) return {};
  if (hooks_.enable && !scanning_enabled_) {
    if (auto ok = hooks_.enable(); !ok)
      return std::unexpected(tier::wrap(ok.error(), "turning on NUMA hint-fault scanning"));
    scanning_enabled_ = true;
  }
  for (PerfSampler* sampler : samplers()) {
    if (auto ok = sampler->start(); !ok) {
      if (scanning_enabled_ && hooks_.restore) hooks_.restore();
      scanning_enabled_ = false;
      return ok;
    }
  }
  running_ = true;
  if (scanning_enabled_ && hooks_.cap_scan_period) setScanCap(ScanPacer::kStartCapMs);
  return {};
}

// The kernel may round or clamp the cap; keep what it took. A refusal is
// kept for the status line and the cap stays as it was.
void PerfAccessSampler::setScanCap(int64_t want_ms) {
  auto cap = hooks_.cap_scan_period(want_ms);
  if (!cap) {
    pace_error_ = cap.error().message();
    return;
  }
  scan_cap_ms_ = *cap;
}

int64_t ScanPacer::settle(bool settled, int64_t cap_ms) {
  if (settled && !settled_ && cap_ms < kSettleFromMs) return 0;
  if (settled == settled_) return 0;
  settled_ = settled;
  started_ = false;  // the next budget span starts afresh
  if (settled) {
    resume_cap_ms_ = cap_ms;
    const int64_t slower = std::min(kMaxCapMs, kSettleFactor * cap_ms);
    return slower == cap_ms ? 0 : slower;
  }
  return resume_cap_ms_ == cap_ms || resume_cap_ms_ == 0 ? 0 : resume_cap_ms_;
}

int64_t ScanPacer::next(uint64_t samples_total, uint64_t now_ns, double affordable,
                        int64_t cap_ms) {
  if (settled_) return 0;
  if (!started_) {
    started_ = true;
    since_ns_ = now_ns;
    samples_since_ = samples_total;
    return 0;
  }
  const double span_s = static_cast<double>(now_ns - since_ns_) * 1e-9;
  if (span_s < 2.0 * static_cast<double>(std::max<int64_t>(cap_ms, kMinCapMs)) * 1e-3) return 0;
  const double rate = static_cast<double>(samples_total - samples_since_) / span_s;
  since_ns_ = now_ns;
  samples_since_ = samples_total;
  // Proportional, at most halving or doubling per span, with a dead band
  // (60-100 % of what is affordable) so the cap does not hunt. Jumping by
  // the whole load at once (tried: up to 8x) reached the kernel's own 60 s
  // within two passes, and GUPS then stayed at 0.81 of the oracle.
  const double load = affordable > 0 ? rate / affordable : 2.0;
  if (load >= 0.6 && load <= 1.0) return 0;
  const double factor = std::clamp(load, 0.5, 2.0);
  const int64_t want =
      std::clamp(static_cast<int64_t>(static_cast<double>(cap_ms) * factor), kMinCapMs, kMaxCapMs);
  if (warming_ && want > cap_ms) return 0;
  return want == cap_ms ? 0 : want;
}

void PerfAccessSampler::setSettled(bool settled) {
  if (scan_cap_ms_ <= 0) return;
  const int64_t want = pacer_.settle(settled, scan_cap_ms_);
  if (want == 0) return;
  setScanCap(want);
}

void PerfAccessSampler::paceScanner() {
  if (scan_cap_ms_ <= 0) return;
  const SamplerStats s = stats();
  double own = 0;
  if (s.samples > 10'000 && s.cpu_seconds > 0) own = s.cpu_seconds / static_cast<double>(s.samples);
  const double cost = std::max(options_.cost_per_sample, own + consumer_cost_);
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  const int64_t want =
      pacer_.next(s.samples, static_cast<uint64_t>(std::chrono::nanoseconds(now).count()),
                  options_.cpu_budget / cost, scan_cap_ms_);
  if (want == 0) return;
  setScanCap(want);
}

tier::Result<void> PerfAccessSampler::pollOne(PerfSampler& sampler, SampleBatch& out) {
  // A per-process ring holds its process's samples only: no filter needed,
  // and they go straight to the batch.
  const bool filter = system_ && &sampler == &*system_;
  scratch_.clear();
  event_of_.clear();
  std::vector<AccessSample>& into = filter ? scratch_ : out.accesses;
  const size_t first = into.size();
  auto got = sampler.poll(into, &event_of_);
  if (!got) return std::unexpected(got.error());
  uint32_t weighed_event = UINT32_MAX;  // events come in runs: ask for a period per run
  uint64_t weight = 1;
  for (size_t i = first; i < into.size(); ++i) {
    AccessSample& sample = into[i];
    if (filter && !targets_.contains(sample.pid)) {
      ++filtered_out_;
      continue;
    }
    const size_t nth = i - first;
    const uint32_t event = nth < event_of_.size() ? event_of_[nth] : 0;
    if (event != weighed_event) {
      weighed_event = event;
      weight = std::max<uint64_t>(1, sampler.period(event));
    }
    sample.weight = weight;
    if (filter) out.accesses.push_back(sample);
  }
  return {};
}

tier::Result<void> PerfAccessSampler::poll(SampleBatch& out) {
  if (!running_) return {};
  const size_t first = out.accesses.size();
  tier::Result<void> result;
  for (PerfSampler* sampler : samplers())
    if (auto ok = pollOne(*sampler, out); !ok && result) result = ok;
  if (name_ == "hint_faults") {
    weighByLatency(out.accesses, first);
    readScanPasses(out);
    paceScanner();
  }
  applyBudget();
  return result;
}

// Read after the rings were drained, so every fault delivered so far came no
// later than the pass count read here: a page is stamped with a pass at
// least as new as its fault's, never older (idle is never called early).
void PerfAccessSampler::readScanPasses(SampleBatch& out) {
  const auto now = static_cast<uint64_t>(
      std::chrono::nanoseconds(std::chrono::steady_clock::now().time_since_epoch()).count());
  bool warming = false;
  for (const auto& [pid, sampler] : per_pid_) {
    auto held = sched_files_.find(pid);
    if (held == sched_files_.end()) {
      auto opened = proc_->hold(fmt::format("{}/sched", pid));
      if (!opened) continue;  // gone, or no CONFIG_SCHED_DEBUG: no idle signal
      held = sched_files_.emplace(pid, std::move(*opened)).first;
    }
    auto text = held->second.read();
    if (!text) {
      sched_files_.erase(held);  // the process left
      continue;
    }
    auto seq = tier::parseNumaScanSeq(*text);
    if (!seq || !seq->has_value()) continue;
    out.passes.push_back({pid, **seq});  // 0 too: none completed yet
    const FirstPass& first = first_passes_.try_emplace(pid, FirstPass{**seq, now}).first->second;
    warming = warming || (**seq - first.passes < ScanPacer::kWarmupPasses &&
                          now - first.since_ns < ScanPacer::kWarmupMaxNs);
  }
  pacer_.setWarming(warming);
}

// A process's samples come ring by ring, one ring per CPU, each in time
// order: merging those few runs is linear, where sorting was a tenth of the
// sampler's CPU in the lab. Many runs (not the rings' order): sort.
namespace {
template <typename Earlier>
void mergeRuns(std::vector<size_t>& indices, const Earlier& earlier) {
  constexpr int kMaxRuns = 8;
  auto merged = std::is_sorted_until(indices.begin(), indices.end(), earlier);
  for (int runs = 1; merged != indices.end(); ++runs) {
    if (runs == kMaxRuns) {
      std::sort(indices.begin(), indices.end(), earlier);
      return;
    }
    const auto run_end = std::is_sorted_until(merged, indices.end(), earlier);
    std::inplace_merge(indices.begin(), merged, run_end, earlier);
    merged = run_end;
  }
}
}  // namespace

void PerfAccessSampler::weighByLatency(std::vector<AccessSample>& samples, size_t from) {
  // Few pids, in runs (one ring per process): a linear search from the last
  // one found, not a hash lookup per sample.
  std::vector<std::pair<pid_t, std::vector<size_t>>> by_pid;
  size_t last = 0;
  for (size_t i = from; i < samples.size(); ++i) {
    const pid_t pid = samples[i].pid;
    if (by_pid.empty() || by_pid[last].first != pid) {
      last = 0;
      while (last < by_pid.size() && by_pid[last].first != pid)
        ++last;
      if (last == by_pid.size()) by_pid.push_back({pid, {}});
    }
    by_pid[last].second.push_back(i);
  }
  for (auto& [pid, indices] : by_pid) {
    const auto earlier = [&](size_t a, size_t b) {
      return samples[a].time_ns < samples[b].time_ns;
    };
    mergeRuns(indices, earlier);
    // The weight so far is the event's period: each sample stands for that
    // many faults, whatever its latency.
    const uint64_t period = std::max<uint64_t>(1, samples[indices.front()].weight);
    WindowClock& clock = window_clocks_[pid];
    for (size_t i : indices)
      samples[i].weight = clock.weigh({samples[i].address >> 12, samples[i].time_ns}) * period;
  }
}

tier::Result<void> PerfAccessSampler::stop() {
  tier::Result<void> result;
  if (running_)
    for (PerfSampler* sampler : samplers())
      if (auto ok = sampler->stop(); !ok && result) result = ok;
  running_ = false;
  if (scanning_enabled_ && hooks_.restore) hooks_.restore();
  scanning_enabled_ = false;
  scan_cap_ms_ = 0;
  pacer_ = {};
  return result;
}

void PerfAccessSampler::setCpuBudget(double fraction) {
  options_.cpu_budget = fraction;
  last_budget_ = 0;
  applyBudget();
}

void PerfAccessSampler::applyBudget() {
  // Samples per second the budget affords. The measured cost covers only
  // draining the rings; the heat map's work per sample comes on top, so
  // never assume less than the configured cost.
  const SamplerStats s = stats();
  double cost = options_.cost_per_sample;
  if (s.samples > 10'000 && s.cpu_seconds > 0)
    cost = std::max(cost, s.cpu_seconds / static_cast<double>(s.samples));
  const auto all = samplers();
  if (all.empty()) return;
  // Hint faults come in bursts (a pass unmaps up to 256 MB at once) and
  // their rate is bounded by the kernel's scan rate, not by the workload: a
  // period chasing the burst rate would sample whole passes at 1 in 10^5 and
  // miss the passes that follow. Their period stays put (1); the ring is
  // sized to hold a pass.
  if (name_ == "hint_faults") return;
  const double budget = std::max(100.0, options_.cpu_budget / cost);
  // setBudget restarts the period controllers' windows: only on real change.
  if (last_budget_ > 0 && std::abs(budget - last_budget_) < 0.1 * last_budget_) return;
  last_budget_ = budget;
  for (PerfSampler* sampler : all)
    sampler->setBudget(budget / static_cast<double>(all.size()));
}

Sampler::HalfLives PerfAccessSampler::minimumHalfLives() const {
  if (name_ != "hint_faults") return {};
  // The NUMA scanner arms a page once per pass, and late in a run passes
  // come tens of seconds apart, one 256 MB slice at a time. Heat that decays
  // faster than that ranks pages by how recently their slice was scanned, not
  // by use. In the lab (100 s runs, bench/tiering) with 5/20 s half-lives
  // a third of tierd's moves undid one made within a minute and Zipf held
  // 0.62-0.72 of the oracle share, GUPS 0.48-0.79; with 30/120 s, 0.82-0.84
  // and 0.62-0.81; with 120/120 s (no short scale at all), 0.89 and 0.88.
  // A page the scanner sees once per pass has no short-term heat to follow.
  return kHintFaultHalfLives;
}

std::string PerfAccessSampler::detail() const {
  uint64_t window_passes = 0, windows = 0;
  for (const auto& [pid, clock] : window_clocks_)
    window_passes += clock.passes(), windows += clock.windows();
  std::string period;
  const auto add = [&](const PerfSampler& sampler) {
    for (const auto& e : sampler.status())
      period += (period.empty() ? "" : ",") + std::to_string(e.period);
  };
  if (system_) add(*system_);
  for (const auto& [pid, sampler] : per_pid_)
    add(sampler);
  return fmt::format(
      "period {}, {} samples of other processes{}", period.empty() ? "-" : period, filtered_out_,
      name_ != "hint_faults" ? std::string()
      : scan_cap_ms_ > 0
          ? fmt::format(", {} window passes over {} windows, scan period cap {} ms{}",
                        window_passes, windows, scan_cap_ms_,
                        pacer_.settled() ? " (plans settled)" : "")
          : fmt::format(", {} window passes over {} windows, scanner paced by the "
                        "kernel{}",
                        window_passes, windows,
                        pace_error_.empty() ? "" : " (" + pace_error_ + ")"));
}

std::vector<int> PerfAccessSampler::readyFds() const {
  std::vector<int> fds;
  if (!running_) return fds;
  if (system_) fds = system_->ringFds();
  for (const auto& [pid, sampler] : per_pid_)
    for (int fd : sampler.ringFds())
      fds.push_back(fd);
  return fds;
}

double PerfAccessSampler::bufferFill() const {
  double fill = 0;
  if (system_) fill = system_->lastFill();
  for (const auto& [pid, sampler] : per_pid_)
    fill = std::max(fill, sampler.lastFill());
  return fill;
}

SamplerStats PerfAccessSampler::stats() const {
  SamplerStats total = retired_;
  const auto add = [&](const PerfSampler& sampler) {
    const SamplerStats s = sampler.stats();
    total.samples += s.samples;
    total.lost += s.lost;
    total.throttled += s.throttled;
    total.malformed += s.malformed;
    total.cpu_seconds += s.cpu_seconds;
  };
  if (system_) add(*system_);
  for (const auto& [pid, sampler] : per_pid_)
    add(sampler);
  return total;
}

}  // namespace tierd::sampling::perf
