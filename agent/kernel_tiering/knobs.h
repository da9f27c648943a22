// The kernel's own tiering knobs, read and written through the filesystem
// seams (FsRoot/FsWriter on /proc and /sys, or fixture trees):
//
//   numa_balancing                     /proc/sys/kernel/numa_balancing (bits: 1 NORMAL, 2
//   MEMORY_TIERING) promote_rate_limit_mbps /proc/sys/kernel/numa_balancing_promote_rate_limit_MBps
//   demotion_enabled                   /sys/kernel/mm/numa/demotion_enabled ("true"/"false")
//   hot_threshold_ms, scan_period_min_ms, scan_period_max_ms, scan_size_mb
//                                      /sys/kernel/debug/sched/numa_balancing/* (debugfs mounted)
//
// A missing file means the kernel (or its mounts) lacks the feature: reads say
// so with an empty value, writes fail with ENOENT naming the knob. KernelKnobs
// remembers the value each knob had before its first change and restore()
// puts back only those, and only where the knob still holds what tierd wrote:
// when someone else changed it since, theirs stays and a note says so.
// Not thread-safe: one owner drives it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"
#include "fs/fs_writer.h"

namespace tierd::kernel_tiering {

enum class Knob {
  NumaBalancing,
  PromoteRateLimit,
  DemotionEnabled,
  HotThreshold,
  ScanPeriodMin,
  ScanPeriodMax,
  ScanSize,
  ScanDelay,
};
inline constexpr Knob kAllKnobs[] = {
    Knob::NumaBalancing, Knob::PromoteRateLimit, Knob::DemotionEnabled, Knob::HotThreshold,
    Knob::ScanPeriodMin, Knob::ScanPeriodMax,    Knob::ScanSize,        Knob::ScanDelay};

// numa_balancing's mode bits.
inline constexpr int64_t kNumaBalancingNormal = 1;
inline constexpr int64_t kNumaBalancingMemoryTiering = 2;

enum class KnobRoot { Proc, Sys };

struct KnobInfo {
  std::string_view name;  // "numa_balancing", "promote_rate_limit_mbps", ...
  KnobRoot root;
  std::string_view path;  // relative to the root
  bool boolean;           // demotion_enabled: "true"/"false" in the file, 1/0 here
};
const KnobInfo& knobInfo(Knob knob);
std::optional<Knob> knobByName(std::string_view name);

// Text in, value out: an integer, or for a boolean knob "true"/"false"/"1"/"0"
// (as 1/0). Malformed text is EINVAL naming the knob.
tier::Result<int64_t> parseKnob(Knob knob, std::string_view text);
// What to write: "true"/"false" for a boolean knob, the decimal number otherwise.
std::string formatKnob(Knob knob, int64_t value);

// One knob as read now. `value` is empty when the kernel lacks it.
struct KnobState {
  Knob knob;
  std::optional<int64_t> value;
  std::optional<int64_t> original;  // its value before tierd's first change, if tierd changed it
  std::optional<int64_t> written;   // what tierd wrote last, if it changed it
};

// What restore() did with one changed knob.
struct RestoreOutcome {
  Knob knob;
  bool restored = false;  // put back to `original`
  std::string note;       // why not, when not
};

class KernelKnobs {
 public:
  // Opens both roots ("/sys" and "/proc", or fixture trees) for reading and writing.
  static tier::Result<KernelKnobs> open(const std::string& sysfs_dir,
                                        const std::string& procfs_dir);
  KernelKnobs(tier::FsRoot sys, tier::FsWriter sys_writer, tier::FsRoot proc,
              tier::FsWriter proc_writer);
  KernelKnobs(KernelKnobs&&) noexcept = default;
  KernelKnobs& operator=(KernelKnobs&&) noexcept = default;

  bool present(Knob knob) const;
  // The knob's value now; empty when the kernel lacks it; an error when the
  // file exists but cannot be read or parsed.
  tier::Result<std::optional<int64_t>> read(Knob knob) const;
  // Every knob (absent and unreadable ones without a value).
  std::vector<KnobState> states() const;

  // Writes the knob, first remembering its current value if tierd has not
  // changed it before. Writing the value it already has is not a change (no
  // write, nothing to restore). ENOENT naming the knob when the kernel lacks it.
  tier::Result<void> set(Knob knob, int64_t value);

  // numa_balancing = `mode` (its bits) and, when given, the promotion rate
  // limit, in one call; restore() undoes both. E.g. the kernel as a per-page
  // hint-fault sampler that never promotes: setNumaBalancing(2, 0).
  tier::Result<void> setNumaBalancing(int64_t mode,
                                      std::optional<uint64_t> promote_rate_limit_mbps);

  // Puts back every changed knob (see the header comment), most recent change
  // first; afterwards nothing is remembered. Never fails as a whole.
  std::vector<RestoreOutcome> restore();

  // Knobs changed and not yet restored.
  std::vector<Knob> changed() const;

 private:
  struct Change {
    Knob knob;
    int64_t original;
    int64_t written;
  };
  const tier::FsRoot& rootOf(Knob knob) const;
  const tier::FsWriter& writerOf(Knob knob) const;
  tier::Result<void> write(Knob knob, int64_t value) const;
  Change* findChange(Knob knob);
  const Change* findChange(Knob knob) const;

  tier::FsRoot sys_;
  tier::FsWriter sys_writer_;
  tier::FsRoot proc_;
  tier::FsWriter proc_writer_;
  std::vector<Change> changes_;  // in order of first change
};

// Paces the NUMA scanner for tierd's hint-fault sampler through three
// debugfs knobs, from the kernel's own values (read at the first call):
//   - scan_period_max_ms = the cap, never above the kernel's own maximum;
//   - scan_period_min_ms = half the cap, never below the kernel's own
//     minimum: the kernel shortens its period while faults look remote, down
//     to the minimum whatever the cap, and passes then come faster than the
//     budget pays for;
//   - scan_delay_ms = a quarter of the cap, never below the kernel's own
//     (where the kernel has it): since 6.4 the scanner skips a VMA its task
//     took no hint fault in over two resets, each 4 x scan_delay_ms apart, so
//     with slower passes a table whose pages all faulted early in a pass
//     looks unused and passes stop (in the lab for 27-80 s;
//     sched:sched_skip_vma_numa showed the table skipped as pid_inactive).
//     It also delays the first scan of a new VMA by as much.
// The knobs' restore() puts all three back.
class ScanPacing {
 public:
  // The cap set (ms clamped to the kernel's maximum); ENOENT when the kernel
  // lacks the period knobs (debugfs not mounted).
  tier::Result<int64_t> cap(KernelKnobs& knobs, int64_t ms);
  void reset() { own_ = {}; }  // after a restore: read the kernel's values again

 private:
  struct Own {
    int64_t max = 0, min = 0, delay = 0;  // delay 0: the kernel lacks it
  };
  std::optional<Own> own_;
};

}  // namespace tierd::kernel_tiering
