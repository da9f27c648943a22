// Remembers where each page of a process was last moved (a transparent huge
// page by its head), so that a page sent back and forth within a window is
// counted and then held back with exponential back-off. Per page, not per
// 2 MiB: a policy moving scattered 4 KiB pages would otherwise see every
// chunk "reversed" by some neighbour and block everything. Memory is bounded
// by max_entries.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <mutex>
#include <unordered_map>

namespace tierd::migrate {

class PingPongTracker {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr unsigned kChunkShift = 12;  // the unit tracked: one 4 KiB page

  PingPongTracker(Clock::duration window, size_t max_entries);

  // False while the chunk holding `address` is backing off.
  bool allowed(pid_t pid, uint64_t address, Clock::time_point now) const;
  // True while moving the chunk back could still count as a reversal (it
  // moved within the window, plus a margin: a twentieth of it, at least 2 s)
  // or it is backing off: a policy leaves it be. The margin keeps a move just
  // past the window from reading as a reversal to a clock that saw the first
  // move a little late (in the lab bench, read back once a second, 1398 pages
  // demoted 60 s after their promotion counted as round trips). It was a
  // quarter; then a hot set that moved within 75 s of its promotion waited
  // that long for room (the bench's shift recovered in 31 s, all of it the
  // hold).
  bool held(pid_t pid, uint64_t address, Clock::time_point now) const;
  // Records a move to `node`; returns true when it reverses a recent move.
  bool recordMove(pid_t pid, uint64_t address, int node, Clock::time_point now);
  void forgetProcess(pid_t pid);
  size_t size() const;

 private:
  struct Key {
    pid_t pid;
    uint64_t chunk;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& key) const {
      return std::hash<uint64_t>()(key.chunk * 0x9e3779b97f4a7c15ULL ^
                                   static_cast<uint64_t>(key.pid));
    }
  };
  struct Entry {
    int node = -1;
    Clock::time_point moved_at;
    unsigned reversals = 0;
    Clock::time_point backoff_until;
  };
  void evict(Clock::time_point now);
  Clock::duration holdFor() const;

  mutable std::mutex mutex_;
  Clock::duration window_;
  size_t max_entries_;
  std::unordered_map<Key, Entry, KeyHash> entries_;
};

}  // namespace tierd::migrate
