#include "policy/placement.h"

#include <algorithm>
#include <map>
#include <unordered_set>

namespace tierd::policy {

namespace {
constexpr size_t kQueryChunk = 4096;
}

void PlacementCache::query(pid_t pid, const std::vector<uint64_t>& pages) {
  std::vector<void*> addresses;
  std::vector<int> status;
  for (size_t at = 0; at < pages.size(); at += kQueryChunk) {
    const size_t n = std::min(kQueryChunk, pages.size() - at);
    addresses.resize(n);
    status.assign(n, 0);
    for (size_t i = 0; i < n; ++i)
      addresses[i] = reinterpret_cast<void*>(pages[at + i] << page_shift_);
    queried_ += n;
    if (!ops_.query(pid, addresses, status)) {
      // The process is gone or not ours to see: its entries go stale and the
      // heat map forgets it when the watcher says so.
      return;
    }
    for (size_t i = 0; i < n; ++i)
      nodes_[Key{pid, pages[at + i]}] = status[i];
  }
}

void PlacementCache::refresh(const std::vector<hotness::PageRef>& pages, double recheck_fraction,
                             uint64_t max_queries) {
  const uint64_t slices = recheck_fraction > 0
                              ? std::max<uint64_t>(1, static_cast<uint64_t>(1.0 / recheck_fraction))
                              : 0;
  std::map<pid_t, std::vector<uint64_t>> ask;
  uint64_t asked = 0;
  for (const auto& ref : pages) {
    if (asked >= max_queries) break;
    const bool known = nodes_.contains(Key{ref.pid, ref.page});
    const bool recheck = slices > 0 && (ref.page + rotation_) % slices == 0;
    if (!known || recheck) {
      ask[ref.pid].push_back(ref.page);
      ++asked;
    }
  }
  ++rotation_;
  for (auto& [pid, list] : ask) {
    std::sort(list.begin(), list.end());
    query(pid, list);
  }
}

std::optional<int> PlacementCache::node(pid_t pid, uint64_t page) const {
  const auto it = nodes_.find(Key{pid, page});
  if (it == nodes_.end() || it->second < 0) return std::nullopt;
  return it->second;
}

void PlacementCache::forget(pid_t pid, uint64_t page) {
  nodes_.erase(Key{pid, page});
}

void PlacementCache::forgetProcess(pid_t pid) {
  std::erase_if(nodes_, [pid](const auto& kv) { return kv.first.pid == pid; });
}

void PlacementCache::retainOnly(const std::vector<hotness::PageRef>& pages) {
  if (nodes_.size() <= pages.size() * 2) return;  // amortised: sweep when twice too big
  std::unordered_set<Key, KeyHash> keep;
  keep.reserve(pages.size());
  for (const auto& ref : pages)
    keep.insert(Key{ref.pid, ref.page});
  std::erase_if(nodes_, [&](const auto& kv) { return !keep.contains(kv.first); });
}

}  // namespace tierd::policy
