#include "pingpong.h"

#include <algorithm>
#include <vector>

namespace tierd::migrate {

PingPongTracker::PingPongTracker(Clock::duration window, size_t max_entries)
    : window_(window), max_entries_(std::max<size_t>(max_entries, 1)) {}

bool PingPongTracker::allowed(pid_t pid, uint64_t address, Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(Key{pid, address >> kChunkShift});
  return it == entries_.end() || now >= it->second.backoff_until;
}

bool PingPongTracker::held(pid_t pid, uint64_t address, Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  auto it = entries_.find(Key{pid, address >> kChunkShift});
  return it != entries_.end() &&
         (now - it->second.moved_at < holdFor() || now < it->second.backoff_until);
}

PingPongTracker::Clock::duration PingPongTracker::holdFor() const {
  return window_ + std::max<Clock::duration>(window_ / 20, std::chrono::seconds(2));
}

bool PingPongTracker::recordMove(pid_t pid, uint64_t address, int node, Clock::time_point now) {
  std::lock_guard lock(mutex_);
  Key key{pid, address >> kChunkShift};
  auto [it, fresh] = entries_.try_emplace(key);
  Entry& entry = it->second;
  bool reversal = !fresh && entry.node != node && now - entry.moved_at < window_;
  if (reversal) {
    ++entry.reversals;
    // 1, 2, 4 ... 64 windows: a chunk that keeps flipping soon stays put.
    entry.backoff_until = now + window_ * (1u << std::min(entry.reversals - 1, 6u));
  }
  entry.node = node;
  entry.moved_at = now;
  if (entries_.size() > max_entries_) evict(now);
  return reversal;
}

void PingPongTracker::forgetProcess(pid_t pid) {
  std::lock_guard lock(mutex_);
  std::erase_if(entries_, [pid](const auto& item) { return item.first.pid == pid; });
}

size_t PingPongTracker::size() const {
  std::lock_guard lock(mutex_);
  return entries_.size();
}

void PingPongTracker::evict(Clock::time_point now) {
  // Entries past their window (and hold) and back-off carry no information any more.
  std::erase_if(entries_, [&](const auto& item) {
    return now - item.second.moved_at >= holdFor() && now >= item.second.backoff_until;
  });
  // Still too many: drop the oldest half.
  if (entries_.size() <= max_entries_) return;
  std::vector<Clock::time_point> times;
  times.reserve(entries_.size());
  for (const auto& item : entries_)
    times.push_back(item.second.moved_at);
  auto middle = times.begin() + static_cast<std::ptrdiff_t>(times.size() / 2);
  std::nth_element(times.begin(), middle, times.end());
  Clock::time_point cutoff = *middle;
  std::erase_if(entries_, [&](const auto& item) { return item.second.moved_at <= cutoff; });
}

}  // namespace tierd::migrate
