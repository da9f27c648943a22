// How long the policy loop sleeps before it polls the sampler again. Every
// wakeup costs CPU whether or not the rings hold anything (in the lab about as
// much as draining a few thousand samples), so while the sampler's buffers
// come back nearly empty the wait doubles, up to kLongest; the first poll that
// finds them a quarter full (or losing records) brings it back to the
// configured interval. Doubling only below an eighth keeps the expected fill
// of the longer wait under a quarter. Pure: durations and a fill in.
#pragma once

#include <algorithm>
#include <chrono>

namespace tierd::policy {

struct PollWait {
  static constexpr std::chrono::milliseconds kLongest{1000};
  static constexpr double kBusy = 0.25;   // of a buffer, at one poll
  static constexpr double kQuiet = 0.125;

  // `current` is the wait that led to a poll whose fullest buffer was
  // `fill` (0-1) full; `base` is the configured interval.
  static std::chrono::milliseconds next(std::chrono::milliseconds current,
                                        std::chrono::milliseconds base, double fill) {
    if (fill >= kBusy) return base;
    if (fill >= kQuiet) return std::max(current, base);
    return std::clamp(current * 2, base, std::max(base, kLongest));
  }
};

}  // namespace tierd::policy
