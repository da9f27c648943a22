// What every hotness sampler delivers: a stream of observed accesses (perf
// PEBS/IBS or software events) or of region heat (DAMON), plus its own
// accounting. The hotness model (issue 4) consumes these; samplers know
// nothing about policy.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "base/result.h"

namespace tierd::sampling {

// One sampled memory access (perf).
struct AccessSample {
  pid_t pid = 0;
  pid_t tid = 0;
  uint64_t address = 0;   // virtual data address (PERF_SAMPLE_ADDR)
  uint64_t physical = 0;  // physical address when the PMU gives it (PERF_SAMPLE_PHYS_ADDR), else 0
  uint64_t weight = 1;    // latency in cycles for load-latency events, else 1
  uint64_t time_ns = 0;   // perf clock (CLOCK_MONOTONIC when use_clockid)
  int cpu = -1;
  bool write = false;
};

// Heat of an address range over DAMON's last aggregation window.
struct RegionSample {
  pid_t pid = 0;  // 0 for physical-address monitoring (paddr)
  uint64_t start = 0, end = 0;
  uint32_t nr_accesses = 0;   // accesses seen in the window (0..max per aggregation)
  uint32_t max_accesses = 0;  // aggregation interval / sampling interval
  uint32_t age = 0;           // aggregation windows the region kept its access pattern
};

// How many full passes a sampler that sees each page once per pass (NUMA hint
// faults: the scanner's mm->numa_scan_seq) has made over a process. A page
// unseen for a few passes was not used since the scanner armed it.
struct ScanPasses {
  pid_t pid = 0;
  uint64_t passes = 0;
};

struct SamplerStats {
  uint64_t samples = 0;    // delivered
  uint64_t lost = 0;       // records the kernel dropped (PERF_RECORD_LOST)
  uint64_t throttled = 0;  // PERF_RECORD_THROTTLE events
  uint64_t malformed = 0;  // records that did not parse and were skipped
  double cpu_seconds = 0;  // spent by the sampler in this process, when it measures it
};

}  // namespace tierd::sampling
