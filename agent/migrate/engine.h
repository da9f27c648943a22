// The page-migration engine: moves the present pages of address ranges of a
// process to a node with move_pages(2), in batches, under a shared byte-rate
// budget, never pushing the target node below its free-memory headroom, and
// reads back where every page landed. Outcomes are counted per reason.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_set>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"
#include "page_ops.h"
#include "pingpong.h"
#include "token_bucket.h"

namespace tierd::migrate {

struct Range {
  uint64_t start = 0, end = 0;  // [start, end)
};

struct EngineOptions {
  double rate_bytes_per_second = 128.0 * (1 << 20);  // 0: unlimited
  double burst_bytes = 8.0 * (1 << 20);
  size_t batch_pages = 512;
  // A target node keeps at least max(min_free_bytes, min_free_fraction * size) free.
  uint64_t min_free_bytes = 64ULL << 20;
  double min_free_fraction = 0.02;
  std::chrono::steady_clock::duration pingpong_window = std::chrono::seconds(60);
  size_t pingpong_max_entries = 1 << 18;  // pages moved within the window
};

struct MoveRequest {
  pid_t pid = 0;
  std::vector<Range> ranges;  // empty: every mapping of the process
  int target_node = -1;
  bool dry_run = false;
  bool respect_backoff = false;  // policy moves honour ping-pong back-off; manual ones do not
  // The caller found every page of `ranges` present just before (a policy,
  // from move_pages status): the pagemap is not read, which for scattered
  // pages is a pread each, and THPs are not told apart.
  bool pages_known_present = false;
  // Ask where every page is once the request is done (pages_*_after). A
  // policy counts what moved from move_pages' status and skips it: the
  // query walks every page again.
  bool read_back = true;
  // Bytes the caller just freed on the target node (a plan's demotions before
  // its promotions). The kernel keeps freed pages in per-CPU lists, which
  // MemFree leaves out: up to this much of the node's per-CPU free memory
  // counts as room. Without it, promotions after displacements found no
  // room (1500 pages demoted for nothing in one lab plan).
  uint64_t freed_on_target_bytes = 0;
  std::function<bool()> cancelled;
};

struct MoveResult {
  pid_t pid = 0;
  int target_node = -1;
  bool dry_run = false;
  uint64_t pages_requested = 0;  // present pages in the ranges
  uint64_t pages_moved = 0;
  uint64_t pages_already_there = 0;
  uint64_t bytes_moved = 0;
  uint64_t pingpong_moves = 0;
  uint64_t thp_moved = 0;    // transparent huge pages moved, each one 2 MiB unit
  bool thp_visible = false;  // frame numbers were readable, so THPs could be told apart
  std::map<std::string, uint64_t> failed;  // "EBUSY", "ENOMEM", "target_full", "backoff", ...
  uint64_t pages_on_target_after = 0;
  uint64_t pages_present_after = 0;
  double seconds = 0;
  std::optional<tier::Error> stopped;  // why the move ended early, if it did
};

// Totals since start, for status and metrics.
struct EngineStats {
  std::map<std::pair<int, int>, uint64_t> pages_moved;  // (from node, to node)
  std::map<std::string, uint64_t> pages_failed;         // by reason
  uint64_t bytes_moved = 0;
  uint64_t pingpong_moves = 0;
  uint64_t requests = 0, requests_stopped = 0;
};

class MigrationEngine {
 public:
  MigrationEngine(const tier::FsRoot& proc, const tier::FsRoot& sys, PageOps& ops,
                  EngineOptions options);

  // Thread-safe; concurrent moves share the rate budget.
  MoveResult move(const MoveRequest& request);
  void setOptions(const EngineOptions& options);
  EngineStats stats() const;
  void forgetProcess(pid_t pid) { pingpong_.forgetProcess(pid); }
  // Whether the page at `address` moved within the ping-pong window (or is
  // backing off): a policy that moved it back now would make a round trip.
  bool recentlyMoved(pid_t pid, uint64_t address) const {
    return pingpong_.held(pid, address, std::chrono::steady_clock::now());
  }

 private:
  struct Batch;
  tier::Result<std::vector<Range>> mappedRanges(pid_t pid, const std::vector<Range>& wanted) const;
  struct PageSet {
    std::vector<uint64_t> pages;
    std::unordered_set<uint64_t> thp_heads;
    bool frames_visible = false;
  };
  tier::Result<void> presentPages(pid_t pid, const std::vector<Range>& ranges, PageSet& out) const;
  bool isThpHead(uint64_t frame) const;
  std::optional<uint64_t> headroomBytes(int node, uint64_t freed_bytes) const;
  uint64_t moverFloorBytes(int node) const;
  void moveBatch(const MoveRequest& request, std::vector<uint64_t>& pages,
                 const std::unordered_set<uint64_t>& thp_heads, MoveResult& result);
  void recheckUnmoved(const MoveRequest& request, std::span<void* const> pages,
                      std::vector<int>& landed);
  void readBack(const MoveRequest& request, const std::vector<uint64_t>& pages, MoveResult& result);
  bool waitForBudget(uint64_t bytes, const MoveRequest& request);
  tier::Error explainFailure(pid_t pid, tier::Error error) const;
  void account(const MoveResult& result);

  const tier::FsRoot& proc_;
  const tier::FsRoot& sys_;
  PageOps& ops_;
  mutable std::mutex options_mutex_;
  EngineOptions options_;
  TokenBucket bucket_;
  PingPongTracker pingpong_;
  mutable std::mutex stats_mutex_;
  EngineStats stats_;
  // Each node's mover floor (NodeWatermarkBytes), read again at most once a second: zoneinfo
  // lists every CPU's pagesets (hundreds of KiB on a large host), and moves
  // check the headroom once per batch.
  struct CachedWatermark {
    uint64_t bytes = 0;
    std::chrono::steady_clock::time_point read_at;
  };
  mutable std::mutex watermarks_mutex_;
  mutable std::map<int, CachedWatermark> watermarks_;
};

std::string errnoName(int errnum);

}  // namespace tierd::migrate
