// The one interface every hotness sampler offers the policy loop: a stream of
// accesses (AccessSample) and/or region heat (RegionSample) for a set of
// target processes, under a CPU budget. Implementations live one per folder:
//   perf/       hardware data-address sampling (PEBS, IBS) and NUMA hint faults
//               seen as software page-fault events
//   damon/      DAMON region heat (vaddr per process, paddr otherwise)
//   softdirty/  page-table soft-dirty bits read in short windows (writes only)
// select.h picks one from what the host offers.
//
// One thread drives a sampler (setTargets/start/poll/stop); stats() may be
// called from that thread only, callers copy what they publish.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "sampling/sample.h"

namespace tierd::sampling {

struct SampleBatch {
  std::vector<AccessSample> accesses;
  std::vector<RegionSample> regions;
  std::vector<ScanPasses> passes;  // as of this poll, after the accesses above
  void clear() {
    accesses.clear();
    regions.clear();
    passes.clear();
  }
  bool empty() const { return accesses.empty() && regions.empty(); }
};

class Sampler {
 public:
  virtual ~Sampler() = default;

  // A short stable name for logs, status and metrics labels:
  // "pebs", "ibs", "hint_faults", "damon_vaddr", "damon_paddr", "soft_dirty".
  virtual std::string_view name() const = 0;

  // The processes to watch. A system-wide sampler uses it as a filter; a
  // per-process one (DAMON vaddr, soft-dirty) follows the list. Pids that
  // vanished are dropped quietly (their samples just stop).
  virtual tier::Result<void> setTargets(const std::vector<pid_t>& pids) = 0;

  virtual tier::Result<void> start() = 0;

  // Appends what was observed since the last call to `out`. May block for a
  // short while (DAMON: one or two aggregation intervals; soft-dirty: none,
  // it reads the window that ended). Call it about once per policy interval.
  virtual tier::Result<void> poll(SampleBatch& out) = 0;

  virtual tier::Result<void> stop() = 0;

  // At most `fraction` of one core for the sampler's own work in this process
  // (0.03 = 3 %); each sampler adapts its period, window or region count.
  virtual void setCpuBudget(double fraction) = 0;

  virtual SamplerStats stats() const = 0;
  // How full the sampler's buffers were at the last poll, 0 to 1: while they
  // stay nearly empty the caller may poll less often (each wakeup costs CPU
  // whether or not it finds anything). 1, the default: poll at the
  // configured interval.
  virtual double bufferFill() const { return 1.0; }
  // Descriptors that turn readable when a buffer is worth draining before the
  // caller's wait is over (a perf ring a quarter full): the caller sleeps on
  // them, so a burst is drained before it overflows however long the wait.
  // Empty, the default: the sampler has nothing to wake anyone with.
  virtual std::vector<int> readyFds() const { return {}; }

  // The caller's own CPU per delivered sample (the heat map's upkeep, say):
  // a sampler that paces itself by its budget counts it on top of its own.
  virtual void setConsumerCost(double /*cpu_seconds_per_sample*/) {}
  // The policy's plans have stopped moving pages (true), or moved some again
  // (false). A sampler whose evidence costs by the pass (hint faults) may
  // slow down while settled.
  virtual void setSettled(bool /*settled*/) {}

  // The shortest heat half-lives that suit how often this sampler can see a
  // page at all; the policy raises shorter configured ones to these. Zero:
  // no floor.
  struct HalfLives {
    double fast_s = 0, slow_s = 0;
  };
  virtual HalfLives minimumHalfLives() const { return {}; }

  // Anything else worth a status line ("42 scanner passes seen"), or "".
  virtual std::string detail() const { return {}; }
};

}  // namespace tierd::sampling
