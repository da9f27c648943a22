// PerfSampler: opens data-address sampling events with perf_event_open(2),
// maps one ring buffer per event and CPU, and drains them into AccessSamples.
//
// Targets:
//   system   one event per online CPU (pid -1): needs CAP_PERFMON or paranoid <= 0;
//   process  every thread of a process on every CPU (pid = tid, inherit = 1, so
//            threads and children created later are followed), all threads'
//            events of one CPU writing into that CPU's ring (PERF_EVENT_IOC_SET_OUTPUT);
//   cgroup   one event per CPU filtered by a cgroup v2 directory (PERF_FLAG_PID_CGROUP).
// Budget: setBudget(max samples per second) divides the budget evenly over
// the events; after each poll every event's observed rate (samples, dropped
// samples and lost records) moves its period within [min_period, max_period]
// through PERF_EVENT_IOC_PERIOD. A THROTTLE record doubles the period.
//
// Not thread-safe: one thread drives open/start/poll/stop.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"
#include "sampling/perf/events.h"
#include "sampling/perf/ring_buffer.h"
#include "sampling/sample.h"

namespace tierd::sampling::perf {

struct Target {
  enum class Kind { kSystem, kProcess, kCgroup };
  Kind kind = Kind::kSystem;
  pid_t pid = 0;           // kProcess; 0 is this process
  std::string cgroup_dir;  // kCgroup: the cgroup v2 directory, e.g. /sys/fs/cgroup/llm.slice

  static Target system() { return Target{}; }
  static Target process(pid_t pid) { return Target{Kind::kProcess, pid, {}}; }
  static Target cgroup(std::string dir) { return Target{Kind::kCgroup, 0, std::move(dir)}; }
  std::string describe() const;
};

struct SamplerOptions {
  std::vector<EventSpec> events;
  Target target;
  size_t ring_pages = 16;             // data pages per ring; a power of two
  std::vector<int> cpus;              // empty: devices/system/cpu/online
  double max_samples_per_second = 0;  // 0: no budget (periods stay as given)
  // Drop an event that fails to open (it is listed in skipped()) instead of
  // failing, as long as one event opens.
  bool skip_failed_events = false;
};

// Moves one event's sample period toward a rate budget. Rates are judged over
// windows of at least 0.2 s (short polls accumulate); above the budget the
// period grows to aim at 80 % of it (at most 8x per step), below half the
// budget it shrinks (at most 4x per step).
class PeriodController {
 public:
  PeriodController(uint64_t period, uint64_t min_period, uint64_t max_period,
                   uint64_t granularity = 1);
  void setBudget(double samples_per_second);
  // Samples seen (including dropped and lost ones) and THROTTLE records since
  // the last call, over `seconds`. Returns the new period when it changes.
  std::optional<uint64_t> update(uint64_t samples, uint64_t throttles, double seconds);
  uint64_t period() const { return period_; }
  double budget() const { return budget_; }
  double lastRate() const { return last_rate_; }

 private:
  uint64_t fit(double period) const;

  uint64_t period_, min_, max_, granularity_;
  double budget_ = 0;
  double last_rate_ = 0;
  uint64_t window_samples_ = 0, window_throttles_ = 0;
  double window_seconds_ = 0;
};

// Why perf_event_open failed, in words: "perf_event_paranoid is 4: needs
// CAP_PERFMON", "no such PMU or event on this host", ...
std::string explainOpenError(int err, const EventSpec& spec, const Target& target, int paranoid,
                             bool privileged);

class PerfSampler {
 public:
  // Opens every event on every CPU (and thread) of the target and maps the
  // rings. Events start disabled. `sys` and `proc` are FsRoots on /sys and
  // /proc (perf_event_paranoid, capabilities, online CPUs, threads).
  static tier::Result<PerfSampler> open(SamplerOptions options, const tier::FsRoot& sys,
                                        const tier::FsRoot& proc);

  PerfSampler(PerfSampler&&) noexcept;
  PerfSampler& operator=(PerfSampler&&) noexcept;
  ~PerfSampler();

  tier::Result<void> start();
  tier::Result<void> stop();

  // Drains every ring, appending samples to `out` (and, when given, the index
  // of the event in events() for each sample to `event_of`), then adapts the
  // periods to the budget. Returns the number of samples appended.
  tier::Result<size_t> poll(std::vector<AccessSample>& out,
                            std::vector<uint32_t>* event_of = nullptr);

  void setBudget(double max_samples_per_second);

  SamplerStats stats() const;
  // The fullest ring's share of its capacity that the last poll consumed
  // (1 when records were lost).
  double lastFill() const;
  // One descriptor per ring: readable once its ring is a quarter full.
  std::vector<int> ringFds() const;

  struct EventStatus {
    EventSpec spec;  // as opened (precise_ip may be lower than asked)
    uint64_t period = 0;
    double rate = 0;  // samples per second over the last judged window
    uint64_t samples = 0, lost = 0, throttled = 0, malformed = 0, dropped = 0;
    size_t rings = 0, fds = 0;
  };
  std::vector<EventStatus> status() const;
  // One event's current sample period (0 for no such event), without
  // copying every event's status: asked at every poll.
  uint64_t period(size_t event) const;
  const std::vector<EventSpec>& events() const;
  // Events dropped by skip_failed_events, with the reason.
  const std::vector<tier::Error>& skipped() const;

 private:
  struct Impl;
  explicit PerfSampler(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tierd::sampling::perf
