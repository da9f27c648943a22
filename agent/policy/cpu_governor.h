// The agent's CPU budget, held over the whole process: every thread's time
// (draining the sampler, planning, the moves' kernel work, the main loop's
// /proc scan) drains one token bucket that fills at the budget's rate. The
// policy loop spends what is left on plans and moves, and waits when the
// bucket is empty; sampling is paced separately (its share of the budget), so
// what it overspends is taken from the moves.
//
// Over any span of T seconds the process then uses at most rate * T + burst
// seconds, plus the one piece of work (a move request) that was admitted
// last. Plain arithmetic on the clocks it is given: no OS calls.
#pragma once

#include <algorithm>
#include <cmath>

namespace tierd::policy {

class CpuGovernor {
 public:
  // `rate`: CPU seconds per wall second (0.03 = 3 % of one core). `burst`:
  // CPU seconds saved up at most while idle. The bucket starts empty.
  CpuGovernor(double rate, double burst) : rate_(std::max(0.0, rate)), burst_(burst) {}

  // The process's CPU seconds and a wall clock in seconds, as they stand.
  void update(double cpu_s, double wall_s) {
    if (std::isnan(last_cpu_)) {
      last_cpu_ = cpu_s;
      last_wall_ = wall_s;
      return;
    }
    const double earned = rate_ * std::max(0.0, wall_s - last_wall_);
    const double spent = std::max(0.0, cpu_s - last_cpu_);
    tokens_ = std::min(burst_, tokens_ + earned - spent);
    last_cpu_ = cpu_s;
    last_wall_ = wall_s;
  }

  // CPU seconds that may be spent now; negative while in debt.
  double available() const { return tokens_; }

  // Wall seconds until `cpu_s` is available (0 if it is).
  double secondsUntil(double cpu_s) const {
    if (tokens_ >= cpu_s) return 0;
    return rate_ > 0 ? (cpu_s - tokens_) / rate_ : INFINITY;
  }

  double rate() const { return rate_; }

 private:
  double rate_, burst_;
  double tokens_ = 0;
  double last_cpu_ = NAN, last_wall_ = 0;
};

}  // namespace tierd::policy
