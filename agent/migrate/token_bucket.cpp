#include "migrate/token_bucket.h"

#include <algorithm>

namespace tierd::migrate {

TokenBucket::TokenBucket(double bytes_per_second, double burst_bytes, Clock::time_point now)
    : rate_(bytes_per_second), burst_(burst_bytes), ready_at_(now) {}

void TokenBucket::setRate(double bytes_per_second, double burst_bytes, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  rate_ = bytes_per_second;
  burst_ = burst_bytes;
  ready_at_ = std::max(ready_at_, now);
}

double TokenBucket::rate() const {
  std::lock_guard lock(mutex_);
  return rate_;
}

// A virtual clock rather than a token count: ready_at_ is when everything
// taken so far would have gone through at exactly the rate. A taker may
// start once that moment, after its own bytes, is at most a burst ahead of
// now. Time spent moving is never lost (a token count capped at the burst
// would drop what refills during a move longer than the burst), so a busy
// mover runs at the rate itself, and never faster than burst + rate * T.
TokenBucket::Clock::duration TokenBucket::acquire(double bytes, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (rate_ <= 0) return Clock::duration::zero();
  auto seconds = [](double value) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(value));
  };
  ready_at_ = std::max(ready_at_, now) + seconds(bytes / rate_);
  auto start = ready_at_ - seconds(burst_ / rate_);
  return start > now ? start - now : Clock::duration::zero();
}

}  // namespace tierd::migrate
