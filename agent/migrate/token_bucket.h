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
  // Takes `bytes` now and returns how long to wait before using them. The
  // bucket goes into debt, so concurrent takers queue behind each other.
  Clock::duration acquire(double bytes, Clock::time_point now);
  double rate() const;

 private:
  void refill(Clock::time_point now);

  mutable std::mutex mutex_;
  double rate_, burst_, tokens_;
  Clock::time_point last_;
};

}  // namespace tierd::migrate
