// Where pages are: a cache of move_pages(2) status queries, so a plan does
// not ask the kernel about every tracked page every time. Unknown pages are
// asked about at once; known ones are re-asked in a rolling slice per plan
// (the kernel, reclaim or another mover may have moved them); pages tierd
// moved are forgotten and asked about again.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "hotness/heat_map.h"
#include "migrate/page_ops.h"

namespace tierd::policy {

class PlacementCache {
 public:
  PlacementCache(migrate::PageOps& ops, unsigned page_shift) : ops_(ops), page_shift_(page_shift) {}

  // Asks the kernel about the pages of `pages` not known yet, and about a
  // `recheck_fraction` of the known ones (a rotating slice), at most
  // `max_queries` pages, taken in the order given.
  void refresh(const std::vector<hotness::PageRef>& pages, double recheck_fraction,
               uint64_t max_queries = UINT64_MAX);
  // The node of the page's first 4 KiB, or nullopt when not known or not present.
  std::optional<int> node(pid_t pid, uint64_t page) const;
  void forget(pid_t pid, uint64_t page);
  void forgetProcess(pid_t pid);
  void retainOnly(const std::vector<hotness::PageRef>& pages);  // drop what the heat map dropped
  uint64_t queried() const { return queried_; }                 // pages asked about, total
  size_t size() const { return nodes_.size(); }

 private:
  struct Key {
    pid_t pid;
    uint64_t page;
    bool operator==(const Key&) const = default;
  };
  struct KeyHash {
    size_t operator()(const Key& k) const noexcept {
      return std::hash<uint64_t>{}(k.page * 0x9e3779b97f4a7c15ULL ^ static_cast<uint64_t>(k.pid));
    }
  };
  void query(pid_t pid, const std::vector<uint64_t>& pages);

  migrate::PageOps& ops_;
  unsigned page_shift_;
  std::unordered_map<Key, int, KeyHash> nodes_;  // node, or -errno (not present, ...)
  uint64_t rotation_ = 0;
  uint64_t queried_ = 0;
};

}  // namespace tierd::policy
