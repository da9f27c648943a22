#include "token_bucket.h"

#include <algorithm>

namespace tierd::migrate {

TokenBucket::TokenBucket(double bytes_per_second, double burst_bytes, Clock::time_point now)
    : rate_(bytes_per_second), burst_(burst_bytes), tokens_(burst_bytes), last_(now) {}

void TokenBucket::setRate(double bytes_per_second, double burst_bytes, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  refill(now);
  rate_ = bytes_per_second;
  burst_ = burst_bytes;
  tokens_ = std::min(tokens_, burst_);
}

double TokenBucket::rate() const {
  std::lock_guard lock(mutex_);
  return rate_;
}

void TokenBucket::refill(Clock::time_point now) {
  if (now <= last_) return;
  double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(burst_, tokens_ + elapsed * rate_);
  last_ = now;
}

TokenBucket::Clock::duration TokenBucket::acquire(double bytes, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (rate_ <= 0) return Clock::duration::zero();
  refill(now);
  tokens_ -= bytes;
  if (tokens_ >= 0) return Clock::duration::zero();
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(-tokens_ / rate_));
}

}  // namespace tierd::migrate
