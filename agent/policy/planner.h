// The pure half of the policy loop: how much room the fast tier has, what
// the heat map's plan means as move requests. No OS calls.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "hotness/heat_map.h"
#include "migrate/engine.h"

namespace tierd::policy {

struct NodeMemory {
  int node = -1;
  uint64_t total_bytes = 0;
  uint64_t free_bytes = 0;
  uint64_t kernel_reserve_bytes = 0;  // the node's mover floor (watermarks): never filled below it
  uint64_t per_cpu_free_bytes = 0;    // free in per-CPU lists, outside free_bytes
};

// The tiers as one initiator (a node with CPUs) sees them.
struct TierView {
  int initiator = -1;
  std::vector<NodeMemory> fast;    // rank 0
  std::vector<NodeMemory> slower;  // the next rank down: where demotions go
  bool isFast(int node) const;
};

struct RoomSettings {
  unsigned page_shift = 12;
  uint64_t headroom_bytes = 0;       // per fast node (or its kernel reserve, if larger)
  uint64_t low_watermark_bytes = 0;  // demote cold pages only while free is below this
  double rate_bytes_per_second = 0;  // the migration budget (0: unlimited)
  double plan_seconds = 2;           // until the next plan
};

// ClassifyInput for one initiator's heat map: capacity = free fast memory
// plus the managed pages already on it (`pages_on_fast`); budgets = what the
// migration rate allows until the next plan.
hotness::ClassifyInput classifyInput(const TierView& view, const RoomSettings& settings,
                                     uint64_t pages_on_fast);

// Page lists as move requests: one per (pid, target node), consecutive pages
// merged into ranges. Promotions go to the fast node with the most free
// memory, demotions to the slower node with the most.
struct MovePlan {
  std::vector<migrate::MoveRequest> demote;  // run first: they make room
  std::vector<migrate::MoveRequest> promote;
  uint64_t demote_pages = 0, promote_pages = 0;
};
// Requests hold at most `max_pages` pages each, so the caller can keep
// sampling between them.
MovePlan toMoveRequests(const hotness::Plan& plan, const TierView& view, unsigned page_shift,
                        uint64_t max_pages = UINT64_MAX);

// Which initiator a process belongs to: the one whose CPUs it may run on
// (the first, by node id, holding any of its allowed CPUs).
std::optional<int> initiatorOf(const std::vector<int>& allowed_cpus,
                               const std::map<int, std::vector<int>>& cpus_by_node);

}  // namespace tierd::policy
