// The perf-based samplers behind the common Sampler interface:
//
//   hardware     PEBS / IBS data-address events from selectEvents(), one per
//                CPU system-wide, samples kept for the target pids.
//   hint_faults  NUMA hint faults as a per-page access signal. The kernel's
//                NUMA-balancing scanner (kernel.numa_balancing with the
//                memory-tiering bit) unmaps pages in passes; the next access
//                to each page faults once per pass, and a software page-fault
//                event with PERF_SAMPLE_ADDR gives tierd that address. With
//                the promote rate limit at 0 the kernel decides nothing: it
//                only scans. tierd sets and restores those knobs through the
//                hooks (ScanningHooks), so the sampler stays free of policy.
//                Hot pages fault early in a pass and in every pass; cold pages
//                late or never. Counting passes alone saturates (a busy
//                workload touches nearly every page once per pass), so each
//                fault weighs by how early in its pass it came: WindowClock
//                times each 2 MiB window's pass from its first fault.
//
// hardware runs one event per online CPU with a pid filter in user space;
// hint_faults opens one process target (every thread, inherited) per target
// pid, so other processes' page faults never reach the rings. A sample
// weighs its event's current period: it stands for that many events, so
// heat stays comparable while the budget moves periods.
#pragma once

#include <sys/types.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"
#include "sampling/perf/sampler.h"
#include "sampling/sampler.h"

namespace tierd::sampling::perf {

// Weighs hint faults by their latency since the scanner armed their 2 MiB
// window, which needs no burst to find a pass: once the scanner arms a window, its pages fault in
// roughly the order of how often they are used, each at most once, and the first fault comes within
// milliseconds (any of 512 pages in use will do). A page that faults again shows the scanner came
// round: the window's next pass begins there. A fault L ms into its window's pass weighs
// kLatencyScale / (L + 10). Where the scanner arms 256 MB slices continuously, one pass start per
// process (found from bursts of faults) is wrong for most windows; a start per window is not. About
// 100 bytes per 2 MiB window that faulted (0.005 %). Pure: faults in,
// weights out.
class WindowClock {
 public:
  static constexpr double kLatencyScale = 10'000;
  static constexpr unsigned kWindowShift = 21;  // 2 MiB
  WindowClock() = default;
  WindowClock(const WindowClock&) = delete;  // holds a pointer into its own map
  WindowClock& operator=(const WindowClock&) = delete;
  struct Fault {
    uint64_t page;     // address >> 12
    uint64_t time_ns;  // ascending
  };
  std::vector<uint64_t> weigh(const std::vector<Fault>& faults);
  uint64_t weigh(Fault fault);  // one at a time, in time order
  uint64_t passes() const { return passes_; }
  size_t windows() const { return windows_.size(); }

 private:
  static constexpr unsigned kPagesPerWindow = 1u << (kWindowShift - 12);
  struct Window {
    std::array<uint64_t, kPagesPerWindow / 64> seen{};
    uint64_t pass_start_ns = 0;
  };
  std::unordered_map<uint64_t, Window> windows_;
  // The last window looked up (elements of an unordered_map stay put): a
  // pass arms windows in order, so faults come in runs per window.
  uint64_t last_key_ = ~0ULL;
  Window* last_ = nullptr;
  uint64_t passes_ = 0;
};

// Turns the kernel's hint-fault scanning on (and promotion off) and back.
struct ScanningHooks {
  // Whether hint faults can come at all (e.g. the kernel already scans when
  // tierd may not touch its knobs); checked when the sampler is chosen, so
  // "auto" moves on to the next sampler instead of one that cannot start.
  std::function<tier::Result<void>()> usable;
  std::function<tier::Result<void>()> enable;
  std::function<void()> restore;
  // Caps the scanner's period between passes (scan_period_max_ms) and returns
  // the cap now in force (never above the kernel's own). Unset, or failing
  // (no debugfs): the kernel paces the scanner alone.
  std::function<tier::Result<int64_t>(int64_t ms)> cap_scan_period;
};

struct AccessSamplerOptions {
  size_t ring_pages = 256;        // per CPU; hint faults come in bursts at each pass
  double cpu_budget = 0.03;       // of one core, for draining the rings
  double cost_per_sample = 2e-6;  // CPU seconds per sample until measured
};

// The scanner's pace for hint faults: a single-threaded workload's faults are
// all private, so the kernel doubles its scan period up to scan_period_max_ms
// (60 s) and passes stop coming (in the lab 5 passes in 100 s, none in the
// last 40). Pacing caps that period so passes come as fast as the sampling
// budget pays for: a pass costs one sample per page in use, so a workload
// touching its whole table each pass gets slow passes and one with a small
// hot set fast ones. Pure: sample counts and times in, the cap out.
class ScanPacer {
 public:
  static constexpr int64_t kMinCapMs = 1000;  // the kernel's scan_period_min_ms
  // Slower passes save little and cost evidence: in the lab, capped at 60 s
  // GUPS ended at 0.78 of the oracle, at 30 s at 0.97.
  static constexpr int64_t kMaxCapMs = 30000;
  // Start fast: the first passes decide the first promotions (a page needs
  // two), and an expensive workload doubles the cap within seconds.
  static constexpr int64_t kStartCapMs = kMinCapMs;
  static constexpr int64_t kSettleFromMs = 6000;
  static constexpr int64_t kSettleFactor = 2;  // a settled cap: this times the budget's
  // `samples_total` and `now_ns` as they stand; `affordable` samples per
  // second. Returns the cap to set, or 0 to leave it (`cap_ms` is the one in
  // force). Judges a span of at least two periods, so one pass's burst of
  // faults is averaged with the quiet that follows it.
  int64_t next(uint64_t samples_total, uint64_t now_ns, double affordable, int64_t cap_ms);

  // While the policy's plans move nothing, more passes only confirm what it
  // knows: the cap goes to kSettleFactor times the budget's (at most
  // kMaxCapMs). When a plan moves pages again, it goes back to where the
  // budget had it, and pacing by the budget resumes. Only a scanner the
  // budget already slowed to kSettleFromMs settles: cheap passes (a small hot
  // set) are kept for what they show first when the hot set moves. Not
  // further than twice: the kernel takes a lower cap only once the pass under
  // way ends, and a page is idle only after three passes, so a settled
  // scanner is slow to see the hot set move (in the lab's shift bench, one
  // settled at 30 s from 4-8 s before the shift had not recovered 50 s
  // after it). Returns the cap to set, or 0 to leave it, as next() does.
  int64_t settle(bool settled, int64_t cap_ms);
  bool settled() const { return settled_; }

  // A process's first passes decide its first promotions (a page needs two
  // sightings, and the third pass sees what the first two missed): while a
  // target is warming up, next() never raises the cap, so those passes come
  // at the pace they started at. In the lab's Zipf runs the budget had
  // slowed passes two and three to 4-6 s apart, and 90 % of the oracle took
  // 12-15 s. Bounded by kWarmupMaxNs, so a target that sleeps (and makes no
  // passes) cannot keep the scanner fast.
  static constexpr uint64_t kWarmupPasses = 3;
  static constexpr uint64_t kWarmupMaxNs = 15'000'000'000ULL;
  void setWarming(bool warming) { warming_ = warming; }

 private:
  uint64_t since_ns_ = 0, samples_since_ = 0;
  bool started_ = false;
  bool settled_ = false;
  bool warming_ = false;
  int64_t resume_cap_ms_ = 0;  // the budget's cap when the plans settled
};

class PerfAccessSampler : public Sampler {
 public:
  // PEBS or IBS, whichever selectEvents() finds. ENODEV (no PMU with data
  // addresses) or the perf_event_open error otherwise.
  static tier::Result<std::unique_ptr<PerfAccessSampler>> openHardware(
      const tier::FsRoot& sys, const tier::FsRoot& proc, AccessSamplerOptions options = {});
  // What openHardware does with the events it selects, for any events: one
  // per online CPU system-wide, samples kept for the target pids. Named
  // `name`, or "pebs"/"ibs" after the events when empty. The tests use it
  // with software page faults, which every host has.
  static tier::Result<std::unique_ptr<PerfAccessSampler>> openSystemWide(
      std::vector<EventSpec> events, const tier::FsRoot& sys, const tier::FsRoot& proc,
      AccessSamplerOptions options = {}, std::string name = {});
  // ENOENT when the kernel lacks NUMA balancing (no kernel/numa_balancing).
  static tier::Result<std::unique_ptr<PerfAccessSampler>> openHintFaults(
      const tier::FsRoot& sys, const tier::FsRoot& proc, ScanningHooks hooks,
      AccessSamplerOptions options = {});

  ~PerfAccessSampler() override;

  std::string_view name() const override { return name_; }
  HalfLives minimumHalfLives() const override;
  tier::Result<void> setTargets(const std::vector<pid_t>& pids) override;
  tier::Result<void> start() override;
  tier::Result<void> poll(SampleBatch& out) override;
  tier::Result<void> stop() override;
  void setCpuBudget(double fraction) override;
  void setConsumerCost(double cpu_seconds_per_sample) override {
    consumer_cost_ = cpu_seconds_per_sample;
  }
  void setSettled(bool settled) override;
  SamplerStats stats() const override;
  double bufferFill() const override;
  std::vector<int> readyFds() const override;
  std::string detail() const override;

  uint64_t filteredOut() const { return filtered_out_; }  // samples of other processes

 private:
  PerfAccessSampler(std::string name, std::optional<PerfSampler> sampler, ScanningHooks hooks,
                    AccessSamplerOptions options, const tier::FsRoot* sys,
                    const tier::FsRoot* proc);
  tier::Result<void> pollOne(PerfSampler& sampler, SampleBatch& out);
  std::vector<PerfSampler*> samplers();
  void applyBudget();
  void weighByLatency(std::vector<AccessSample>& samples, size_t from);
  void readScanPasses(SampleBatch& out);
  void paceScanner();
  void setScanCap(int64_t want_ms);

  std::string name_;
  std::optional<PerfSampler> system_;     // hardware: one system-wide sampler
  std::map<pid_t, PerfSampler> per_pid_;  // hint_faults: one process target each
  std::map<pid_t, tier::HeldFile> sched_files_;  // /proc/PID/sched, read at every poll
  struct FirstPass {
    uint64_t passes = 0;  // numa_scan_seq when first read
    uint64_t since_ns = 0;
  };
  std::map<pid_t, FirstPass> first_passes_;  // for the pacer's warm-up
  const tier::FsRoot* sys_ = nullptr;     // for opening per-pid samplers
  const tier::FsRoot* proc_ = nullptr;
  SamplerStats retired_;  // stats of per-pid samplers whose process left
  ScanningHooks hooks_;
  AccessSamplerOptions options_;
  std::unordered_set<pid_t> targets_;
  std::unordered_map<pid_t, WindowClock> window_clocks_;  // hint_faults only
  std::vector<AccessSample> scratch_;
  std::vector<uint32_t> event_of_;
  bool running_ = false;
  bool scanning_enabled_ = false;
  uint64_t filtered_out_ = 0;
  double last_budget_ = 0;
  ScanPacer pacer_;
  int64_t scan_cap_ms_ = 0;   // 0: not pacing
  double consumer_cost_ = 0;  // the caller's CPU per sample
  std::string pace_error_;
};

}  // namespace tierd::sampling::perf
