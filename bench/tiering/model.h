// The pure parts of the tiering evaluation: access distributions whose
// per-page probabilities are known, the oracle (the best share any placement
// can reach), placement change tracking (moves, round trips) and the
// detectors that turn a per-second ratio series into the summary figures.
// No OS calls here; the workload (workload.cpp) feeds it what it reads back.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace tier::bench {

// splitmix64: small, fast and seedable; the workload's hot loop uses it.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
  // Uniform in [0, bound) (bound > 0), by multiply-shift: no division in the hot loop.
  uint64_t below(uint64_t bound) {
    __extension__ using Wide = unsigned __int128;
    return static_cast<uint64_t>((static_cast<Wide>(next()) * bound) >> 64);
  }
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

 private:
  uint64_t state_;
};

// p(rank r) = r^-theta / H(n, theta) for ranks 1..n (index 0 is rank 1).
std::vector<double> zipfProbabilities(size_t n, double theta);

// Walker's alias method: O(1) draws from any discrete distribution.
class AliasSampler {
 public:
  AliasSampler() = default;
  explicit AliasSampler(std::span<const double> probabilities);
  size_t draw(Rng& rng) const {
    size_t slot = rng.below(threshold_.size());
    return rng.unit() < threshold_[slot] ? slot : alias_[slot];
  }
  size_t size() const { return threshold_.size(); }

 private:
  std::vector<double> threshold_;
  std::vector<uint32_t> alias_;
};

// A seeded random permutation of 0..n-1 (Fisher-Yates).
std::vector<uint32_t> shuffledIndices(size_t n, uint64_t seed);

// The sum of the `capacity` largest probabilities: the share of accesses an
// ideal placement serves from a fast tier holding `capacity` pages.
double oracleShare(std::span<const double> page_probability, size_t capacity);

// The share actually served: the sum of p(page) over pages on a fast node.
double fastShare(std::span<const double> page_probability, std::span<const uint8_t> on_fast);

// Turns move_pages(2) statuses (a node id, or a negative errno) into
// per-page fast/slow flags. A page with a negative status (-ENOENT while a
// migration holds it, ...) keeps its last known tier, so a page in transit
// is not counted as a move there and back.
struct PlacementCounts {
  size_t fast = 0;     // pages whose flag is set afterwards
  size_t unknown = 0;  // negative statuses this time
};
PlacementCounts updatePlacement(std::span<const int> status, std::span<const uint8_t> fast_node,
                                std::vector<uint8_t>& on_fast);

// Per-page placement history from once-a-second read-backs. A move is a page
// whose tier (fast/slow) differs from the previous sample; a round trip is a
// move that undoes the page's previous move within `window_s` (seen
// fast->slow->fast or slow->fast->slow).
class PlacementTracker {
 public:
  PlacementTracker(size_t pages, double window_s);
  struct Delta {
    uint64_t moves = 0;
    uint64_t round_trips = 0;
  };
  // The first call records the initial placement and reports no moves.
  Delta observe(std::span<const uint8_t> on_fast, double t);
  uint64_t totalMoves() const { return total_.moves; }
  uint64_t totalRoundTrips() const { return total_.round_trips; }

 private:
  std::vector<uint8_t> state_;
  std::vector<float> last_change_;
  double window_s_;
  bool primed_ = false;
  Delta total_;
};

struct Sample {
  double t = 0;      // seconds since the workload's clock started
  double ratio = 0;  // share / oracle
};

// The time, counted from `from_t`, of the first sample at or after `from_t`
// from which the ratio stays >= threshold for `hold_s` seconds (every sample
// in [t, t + hold_s] at or above it, and the series reaching t + hold_s).
// nullopt: never.
std::optional<double> timeToSustain(std::span<const Sample> series, double from_t, double threshold,
                                    double hold_s);

// Mean ratio of the samples in the last third of [from_t, end_t].
double steadyRatio(std::span<const Sample> series, double from_t, double end_t);

}  // namespace tier::bench
