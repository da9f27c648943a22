// The sampler's share of the CPU budget. `cpu_budget_percent` is for the
// whole agent (bench and users measure the process), but only the sampler's
// spending is elastic: the main loop, planning and moves cost what they
// cost. So the sampler gets what the rest of the process left over a trailing
// window, within a floor (evidence keeps coming) and a ceiling (a quiet
// agent does not sample without bound). Pure: times and CPU seconds in.
#pragma once

#include <algorithm>
#include <deque>

namespace tierd::policy {

class SamplingShare {
 public:
  // Of the budget: the rest is slack. The trailing window lags a burst of
  // moves, and a guest's CPU clock runs on while the host holds its vCPU: in
  // the lab, aiming at 0.9 ended 100 s runs at 1.03-1.1 of the budget.
  static constexpr double kTarget = 0.8;
  static constexpr double kFloor = 0.25;   // of the budget, whatever the rest spends
  static constexpr double kCeiling = 0.4;  // of the budget
  static constexpr double kWindowS = 60;   // trailing
  static constexpr double kMinSpanS = 10;  // before that: the ceiling

  explicit SamplingShare(double budget) : budget_(budget) {}

  // Cumulative process CPU and sampling CPU (seconds) at now_s; returns the
  // sampler's share of one core.
  double update(double now_s, double process_cpu_s, double sampling_cpu_s) {
    points_.push_back({now_s, process_cpu_s, sampling_cpu_s});
    while (points_.size() > 2 && now_s - points_[1].t >= kWindowS)
      points_.pop_front();
    const Point& from = points_.front();
    const double span = now_s - from.t;
    if (span < kMinSpanS) return kCeiling * budget_;
    const double rest =
        std::max(0.0, (process_cpu_s - from.process) - (sampling_cpu_s - from.sampling)) / span;
    return std::clamp(kTarget * budget_ - rest, kFloor * budget_, kCeiling * budget_);
  }

 private:
  struct Point {
    double t, process, sampling;
  };
  double budget_;
  std::deque<Point> points_;
};

}  // namespace tierd::policy
