#include "policy/planner.h"

#include <algorithm>
#include <limits>

namespace tierd::policy {

namespace {

int roomiest(const std::vector<NodeMemory>& nodes) {
  const auto it = std::max_element(nodes.begin(), nodes.end(), [](const auto& a, const auto& b) {
    return a.free_bytes < b.free_bytes || (a.free_bytes == b.free_bytes && a.node > b.node);
  });
  return it == nodes.end() ? -1 : it->node;
}

// Sorted pages of one pid -> [start, end) ranges of consecutive pages.
std::vector<migrate::Range> coalesce(std::vector<hotness::PageRef> refs, unsigned page_shift) {
  std::sort(refs.begin(), refs.end(), [](const auto& a, const auto& b) { return a.page < b.page; });
  std::vector<migrate::Range> ranges;
  for (const auto& r : refs) {
    const uint64_t start = r.page << page_shift;
    const uint64_t end = (r.page + r.pages) << page_shift;
    if (!ranges.empty() && ranges.back().end == start) {
      ranges.back().end = end;
    } else {
      ranges.push_back({start, end});
    }
  }
  return ranges;
}

std::vector<migrate::MoveRequest> requests(const std::vector<hotness::PageRef>& refs, int node,
                                           unsigned page_shift, uint64_t max_pages,
                                           uint64_t& pages) {
  std::map<pid_t, std::vector<hotness::PageRef>> by_pid;
  for (const auto& r : refs) {
    by_pid[r.pid].push_back(r);
    pages += r.pages;
  }
  std::vector<migrate::MoveRequest> out;
  if (node < 0) return out;
  for (auto& [pid, list] : by_pid) {
    // Keep the plan's order (hottest or coldest first) across the pieces.
    for (size_t at = 0; at < list.size();) {
      std::vector<hotness::PageRef> piece;
      uint64_t in_piece = 0;
      while (at < list.size() && (piece.empty() || in_piece + list[at].pages <= max_pages)) {
        in_piece += list[at].pages;
        piece.push_back(list[at++]);
      }
      migrate::MoveRequest request;
      request.pid = pid;
      request.ranges = coalesce(std::move(piece), page_shift);
      request.target_node = node;
      request.respect_backoff = true;
      request.pages_known_present = true;  // placement queries found them
      request.read_back = false;           // the results count what moved
      out.push_back(std::move(request));
    }
  }
  return out;
}

}  // namespace

bool TierView::isFast(int node) const {
  return std::any_of(fast.begin(), fast.end(), [node](const auto& n) { return n.node == node; });
}

hotness::ClassifyInput classifyInput(const TierView& view, const RoomSettings& settings,
                                     uint64_t pages_on_fast) {
  const uint64_t page = uint64_t{1} << settings.page_shift;
  hotness::ClassifyInput in;
  uint64_t free_bytes = 0, headroom_bytes = 0, per_cpu_bytes = 0;
  for (const auto& n : view.fast) {
    free_bytes += n.free_bytes;
    per_cpu_bytes += n.per_cpu_free_bytes;
    headroom_bytes += std::max(settings.headroom_bytes, n.kernel_reserve_bytes);
  }
  if (view.fast.empty()) headroom_bytes = settings.headroom_bytes;
  in.fast_free_pages = free_bytes / page;
  in.per_cpu_free_pages = per_cpu_bytes / page;
  in.capacity_pages = in.fast_free_pages + pages_on_fast;
  in.headroom_pages = headroom_bytes / page;
  in.low_watermark_pages =
      settings.low_watermark_bytes * std::max<size_t>(1, view.fast.size()) / page;
  if (settings.rate_bytes_per_second > 0) {
    const double budget = settings.rate_bytes_per_second * settings.plan_seconds / double(page);
    in.promote_budget_pages = std::max<uint64_t>(1, static_cast<uint64_t>(budget));
    in.demote_budget_pages = in.promote_budget_pages;
  } else {
    in.promote_budget_pages = in.demote_budget_pages = std::numeric_limits<uint64_t>::max();
  }
  return in;
}

MovePlan toMoveRequests(const hotness::Plan& plan, const TierView& view, unsigned page_shift,
                        uint64_t max_pages) {
  MovePlan out;
  out.demote =
      requests(plan.demote, roomiest(view.slower), page_shift, max_pages, out.demote_pages);
  out.promote =
      requests(plan.promote, roomiest(view.fast), page_shift, max_pages, out.promote_pages);
  return out;
}

std::optional<int> initiatorOf(const std::vector<int>& allowed_cpus,
                               const std::map<int, std::vector<int>>& cpus_by_node) {
  for (const auto& [node, cpus] : cpus_by_node) {
    for (int cpu : allowed_cpus)
      if (std::find(cpus.begin(), cpus.end(), cpu) != cpus.end()) return node;
  }
  return std::nullopt;
}

}  // namespace tierd::policy
