// Page writes seen through the page table's soft-dirty bits, for hosts with
// neither a data-address PMU nor DAMON (and as a per-page signal where DAMON's
// regions are too coarse).
//
// A window per cycle: writing "4" to /proc/<pid>/clear_refs clears every
// soft-dirty bit of the process and write-protects its PTEs; a write to a page
// during the window takes one fault and sets the bit again. When the window
// has lasted its length, /proc/<pid>/pagemap is read (bit 55 soft-dirty, bit 63
// present) over the process's private writable mappings, one pread per chunk,
// and every soft-dirty present page becomes one AccessSample (write = true).
// Reads are invisible: this sampler sees writes only.
//
// poll() never sleeps: it is a state machine on the injected monotonic clock.
// A window that has lasted `window` is read and closed; a rest period that has
// passed opens the next window. The rest period keeps two limits:
//   open fraction  window / (window + rest) <= max_open_fraction, because every
//                  first write to a page in an open window faults (the lab saw
//                  the workload run 3-4x slower with windows always open);
//   CPU budget     (CPU spent in clear_refs + pagemap reads of the last cycle)
//                  / (window + rest) <= the budget (setCpuBudget), measured on
//                  this thread's CPU clock.
// The window adapts to saturation: when more than saturated_fraction of a
// mapping's present pages came back dirty, the next window is halved (down to
// min_window), when every mapping stayed below sparse_fraction it grows by half
// (up to max_window). Mappings with fewer than saturation_min_pages present
// pages (stacks, library data) do not vote.
//
// Pids join at the next window opening; a pid that exited is dropped (counted
// in SoftDirtyStats::vanished); a pid this process may not inspect (EPERM,
// EACCES) is refused by setTargets or, when it becomes so later, dropped with
// an error naming it in takeProblems(). One thread drives it.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"
#include "fs/fs_writer.h"
#include "parse/parsers.h"
#include "sampling/sampler.h"

namespace tierd::sampling::softdirty {

// Where time comes from. Both return nanoseconds; tests inject fakes.
struct Clocks {
  std::function<int64_t()> monotonic_ns;   // default: CLOCK_MONOTONIC
  std::function<int64_t()> thread_cpu_ns;  // default: CLOCK_THREAD_CPUTIME_ID
  static Clocks system();
};

struct SoftDirtyOptions {
  std::chrono::nanoseconds window = std::chrono::milliseconds(250);
  std::chrono::nanoseconds min_window = std::chrono::milliseconds(50);
  std::chrono::nanoseconds max_window = std::chrono::seconds(1);
  double max_open_fraction = 0.25;
  double cpu_budget = 0.03;  // of one core; setCpuBudget changes it
  double saturated_fraction = 0.80;
  double sparse_fraction = 0.05;
  uint64_t saturation_min_pages = 64;
  size_t pagemap_chunk_entries = 64 * 1024;  // 512 KiB of pagemap per pread
  // pagemap costs 8 bytes per page of address space, populated or not: a
  // mapping larger than this (sanitizer shadows, allocator or GPU address
  // reservations of terabytes) is not read, and takeProblems() says so once.
  uint64_t max_mapping_bytes = 64ULL << 30;
  // start() checks that the kernel tracks soft-dirty bits (probeSoftDirty on
  // this process) when the root is the live /proc. Off for fixture trees.
  bool probe_kernel = true;
};

struct SoftDirtyStats {
  uint64_t windows = 0;         // windows opened and read
  uint64_t target_windows = 0;  // pid x window pairs read
  uint64_t vanished = 0;        // pids dropped because they exited
  uint64_t refused = 0;         // pids dropped on EPERM/EACCES
  uint64_t saturated_windows = 0, sparse_windows = 0;
  uint64_t skipped_mappings = 0;  // mapping x window not read: larger than max_mapping_bytes
  uint64_t late_windows = 0;      // read more than 1.5 windows after opening (poll came late)
  uint64_t last_dirty_pages = 0, last_present_pages = 0;  // over every target, last window
  double window_seconds = 0;                              // the next window's length
  double last_rest_seconds = 0;                           // rest before the next window
  double last_cycle_cpu_seconds = 0;                      // clear_refs + reads of the last window
  double open_seconds = 0;                                // total time windows were open
};

// Whether pagemap bit 55 is worth reading in /proc/<pid>/maps entry `entry`:
// private and writable, not [vsyscall]/[vdso]/[vvar].
bool isSampledMapping(const tier::MapsEntry& entry);

// What a failed write of "4" to /proc/<pid>/clear_refs means: EINVAL is a
// kernel without soft-dirty support (EOPNOTSUPP, said in words), ENOENT/ESRCH
// an exited process (ESRCH), EPERM/EACCES a refusal naming the pid.
tier::Error explainClearRefsError(pid_t pid, const tier::Error& error);

// Checks on this process that the kernel keeps soft-dirty bits: writes a
// page, clears the bits (clear_refs "4" on our own pid, which also costs this
// process one write fault per page it writes next), writes the page again and
// expects pagemap bit 55. EOPNOTSUPP naming the reason when it does not.
// `proc` and `writer` must be the live /proc.
tier::Result<void> probeSoftDirty(const tier::FsRoot& proc, const tier::FsWriter& writer);

class SoftDirtySampler final : public Sampler {
 public:
  // Opens `proc_dir` ("/proc", or a fixture tree) to read and write.
  static tier::Result<SoftDirtySampler> open(const std::string& proc_dir,
                                             SoftDirtyOptions options = {},
                                             Clocks clocks = Clocks::system());
  SoftDirtySampler(tier::FsRoot proc, tier::FsWriter writer, SoftDirtyOptions options = {},
                   Clocks clocks = Clocks::system());

  SoftDirtySampler(SoftDirtySampler&&) noexcept = default;
  SoftDirtySampler& operator=(SoftDirtySampler&&) noexcept = default;

  std::string_view name() const override { return "soft_dirty"; }

  // Replaces the target list. Duplicates are merged; pid <= 0 is EINVAL naming
  // it. Pids that do not exist are dropped quietly; pids whose pagemap this
  // process may not open are left out and the error names them (the others
  // are kept). New pids join at the next window.
  tier::Result<void> setTargets(const std::vector<pid_t>& pids) override;

  // Probes the kernel (see probe_kernel); the first poll opens a window.
  tier::Result<void> start() override;

  // Reads the window when it has lasted its length, opens the next one when
  // the rest is over. Never sleeps. Errors: not started (EINVAL), the kernel
  // refused clear_refs "4" (EOPNOTSUPP). Per-pid trouble does not fail poll:
  // see takeProblems().
  tier::Result<void> poll(SampleBatch& out) override;

  // Ends the open window unread. Bits and write protection stay as they are
  // (each page costs the process one more write fault at most).
  tier::Result<void> stop() override;

  void setCpuBudget(double fraction) override;

  // samples: pages delivered; lost: pid x window pairs that could not be read
  // (other than the pid exiting); malformed: maps that did not parse;
  // cpu_seconds: this thread's CPU in clear_refs and pagemap reads.
  SamplerStats stats() const override { return stats_; }
  const SoftDirtyStats& softDirtyStats() const { return sd_stats_; }

  // Per-pid errors since the last call (dropped pids, lost windows), each
  // naming its pid, for the caller to log once.
  std::vector<tier::Error> takeProblems();

  // The monotonic time (ns) of the next state change, so the caller can poll
  // then; INT64_MAX when stopped.
  int64_t nextPollAt() const;
  std::chrono::nanoseconds window() const { return window_; }
  bool windowOpen() const { return state_ == State::kOpen; }
  std::vector<pid_t> targets() const;

 private:
  enum class State { kStopped, kResting, kOpen };
  struct Target {
    bool in_window = false;           // cleared at the current window's opening
    std::set<uint64_t> told_too_big;  // starts of mappings skipped and reported
  };
  struct WindowCounts {
    bool any_saturated = false;
    bool any_voter = false;
    bool all_sparse = true;
    uint64_t dirty = 0, present = 0;
  };
  enum class ReadOutcome { kRead, kDropped, kLost };

  tier::Result<void> openWindow();
  void closeWindow(int64_t now, SampleBatch& out);
  ReadOutcome readTarget(pid_t pid, Target& target, int64_t now, SampleBatch& out,
                         WindowCounts& counts, tier::Error& why);
  tier::Result<void> readMapping(pid_t pid, const tier::MapsEntry& mapping, int64_t now,
                                 SampleBatch& out, WindowCounts& counts);
  void adaptWindow(const WindowCounts& counts);
  void scheduleRest(int64_t now, std::chrono::nanoseconds was_open, double cycle_cpu_seconds);
  void drop(pid_t pid, const tier::Error& why);
  double cpuSeconds() const;

  tier::FsRoot proc_;
  tier::FsWriter writer_;
  SoftDirtyOptions options_;
  Clocks clocks_;
  std::map<pid_t, Target> targets_;
  State state_ = State::kStopped;
  std::chrono::nanoseconds window_;
  int64_t opened_at_ = 0, next_open_at_ = 0;
  double open_cpu_seconds_ = 0;
  std::vector<uint64_t> entries_;  // pagemap chunk buffer
  std::vector<tier::Error> problems_;
  SamplerStats stats_;
  SoftDirtyStats sd_stats_;
};

}  // namespace tierd::sampling::softdirty
