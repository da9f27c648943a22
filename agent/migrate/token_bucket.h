// A byte budget over time. Callers take what they are about to move and wait
// for as long as the bucket says: over any span T, at most burst + rate * T
// bytes go through. Thread-safe; time is passed in so tests control it.
#pragma once

#include <chrono>
#include <mutex>

namespace tierd::migrate {

class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;

  // rate 0 means unlimited.
  TokenBucket(double bytes_per_second, double burst_bytes, Clock::time_point now);

  void setRate(double bytes_per_second, double burst_bytes, Clock::time_point now);
  // Takes `bytes` now and returns how long to wait before using them.
  // Concurrent takers queue behind each other.
  Clock::duration acquire(double bytes, Clock::time_point now);
  double rate() const;

 private:
  mutable std::mutex mutex_;
  double rate_, burst_;
  Clock::time_point ready_at_;
};

}  // namespace tierd::migrate
