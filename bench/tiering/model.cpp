#include "model.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

namespace tier::bench {

std::vector<double> zipfProbabilities(size_t n, double theta) {
  std::vector<double> p(n);
  for (size_t i = 0; i < n; ++i)
    p[i] = std::pow(static_cast<double>(i + 1), -theta);
  // Summed smallest first so the normalization does not lose the tail.
  double total = std::accumulate(p.rbegin(), p.rend(), 0.0);
  for (double& value : p)
    value /= total;
  return p;
}

AliasSampler::AliasSampler(std::span<const double> probabilities)
    : threshold_(probabilities.size()), alias_(probabilities.size()) {
  size_t n = probabilities.size();
  double total = std::accumulate(probabilities.begin(), probabilities.end(), 0.0);
  std::vector<double> scaled(n);
  std::vector<uint32_t> small, large;
  for (size_t i = 0; i < n; ++i) {
    scaled[i] = probabilities[i] / total * static_cast<double>(n);
    (scaled[i] < 1.0 ? small : large).push_back(static_cast<uint32_t>(i));
  }
  while (!small.empty() && !large.empty()) {
    uint32_t less = small.back(), more = large.back();
    small.pop_back();
    threshold_[less] = scaled[less];
    alias_[less] = more;
    scaled[more] -= 1.0 - scaled[less];
    if (scaled[more] < 1.0) {
      large.pop_back();
      small.push_back(more);
    }
  }
  // What is left is 1.0 up to rounding: always itself.
  for (uint32_t i : small)
    threshold_[i] = 1.0, alias_[i] = i;
  for (uint32_t i : large)
    threshold_[i] = 1.0, alias_[i] = i;
}

std::vector<uint32_t> shuffledIndices(size_t n, uint64_t seed) {
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  Rng rng(seed);
  for (size_t i = n; i > 1; --i)
    std::swap(order[i - 1], order[rng.below(i)]);
  return order;
}

double oracleShare(std::span<const double> page_probability, size_t capacity) {
  std::vector<double> sorted(page_probability.begin(), page_probability.end());
  capacity = std::min(capacity, sorted.size());
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(capacity),
                   sorted.end(), std::greater<>());
  return std::accumulate(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(capacity),
                         0.0);
}

double fastShare(std::span<const double> page_probability, std::span<const uint8_t> on_fast) {
  double share = 0;
  for (size_t i = 0; i < page_probability.size() && i < on_fast.size(); ++i)
    if (on_fast[i]) share += page_probability[i];
  return share;
}

PlacementCounts updatePlacement(std::span<const int> status, std::span<const uint8_t> fast_node,
                                std::vector<uint8_t>& on_fast) {
  PlacementCounts counts;
  on_fast.resize(status.size(), 0);
  for (size_t i = 0; i < status.size(); ++i) {
    int node = status[i];
    if (node < 0)
      ++counts.unknown;
    else
      on_fast[i] = static_cast<size_t>(node) < fast_node.size() && fast_node[node];
    counts.fast += on_fast[i];
  }
  return counts;
}

PlacementTracker::PlacementTracker(size_t pages, double window_s)
    : state_(pages, 0),
      last_change_(pages, -std::numeric_limits<float>::infinity()),
      window_s_(window_s) {}

PlacementTracker::Delta PlacementTracker::observe(std::span<const uint8_t> on_fast, double t) {
  Delta delta;
  size_t n = std::min(on_fast.size(), state_.size());
  if (!primed_) {
    std::copy_n(on_fast.begin(), n, state_.begin());
    primed_ = true;
    return delta;
  }
  for (size_t i = 0; i < n; ++i) {
    if (on_fast[i] == state_[i]) continue;
    ++delta.moves;
    // Two tiers: consecutive moves of a page always go opposite ways, so a
    // move soon after the previous one undoes it.
    if (t - last_change_[i] <= window_s_) ++delta.round_trips;
    state_[i] = on_fast[i];
    last_change_[i] = static_cast<float>(t);
  }
  total_.moves += delta.moves;
  total_.round_trips += delta.round_trips;
  return delta;
}

std::optional<double> timeToSustain(std::span<const Sample> series, double from_t, double threshold,
                                    double hold_s) {
  // Walk backwards: `run_start` is where the current unbroken run of good
  // samples begins; the earliest start whose run spans hold_s wins.
  std::optional<double> best;
  std::optional<double> run_end;  // the last good sample of the run being extended
  for (size_t i = series.size(); i-- > 0;) {
    const Sample& s = series[i];
    if (s.t < from_t) break;
    if (s.ratio < threshold) {
      run_end.reset();
      continue;
    }
    if (!run_end) run_end = s.t;
    if (*run_end - s.t >= hold_s) best = s.t - from_t;
  }
  return best;
}

double steadyRatio(std::span<const Sample> series, double from_t, double end_t) {
  double start = end_t - (end_t - from_t) / 3.0;
  double sum = 0;
  size_t count = 0;
  for (const Sample& s : series) {
    if (s.t < start || s.t > end_t) continue;
    sum += s.ratio;
    ++count;
  }
  return count ? sum / static_cast<double>(count) : 0.0;
}

}  // namespace tier::bench
