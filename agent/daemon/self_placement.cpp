#include "daemon/self_placement.h"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace tierd {

namespace {

constexpr int kMpolPreferred = 1;
constexpr int kMpolPreferredMany = 5;  // Linux 5.15
constexpr unsigned long kMaxNode = 1024;
using NodeMask = unsigned long[kMaxNode / (8 * sizeof(unsigned long))];

bool toMask(const std::vector<int>& nodes, NodeMask& mask) {
  for (auto& word : mask)
    word = 0;
  for (int node : nodes) {
    if (node < 0 || static_cast<unsigned long>(node) >= kMaxNode) return false;
    mask[node / (8 * sizeof(unsigned long))] |= 1UL << (node % (8 * sizeof(unsigned long)));
  }
  return true;
}

}  // namespace

tier::Result<SelfPlacement> placeSelfOn(const std::vector<int>& slower,
                                        const std::vector<int>& fast) {
  NodeMask to{}, from{};
  if (slower.empty() || !toMask(slower, to) || !toMask(fast, from))
    return tier::fail(EINVAL, fmt::format("no usable slower nodes ({})", fmt::join(slower, ",")));
  // Several slower nodes: any of them (PREFERRED_MANY); a kernel before 5.15
  // knows only one preferred node.
  long rc = syscall(SYS_set_mempolicy, kMpolPreferredMany, to, kMaxNode + 1);
  if (rc != 0 && errno == EINVAL) {
    NodeMask first{};
    toMask({slower.front()}, first);
    rc = syscall(SYS_set_mempolicy, kMpolPreferred, first, kMaxNode + 1);
  }
  if (rc != 0)
    return tier::fail(errno, fmt::format("set_mempolicy(preferred {})", fmt::join(slower, ",")));
  SelfPlacement placed{slower, 0};
  rc = syscall(SYS_migrate_pages, 0, kMaxNode + 1, from, to);
  if (rc < 0)
    return tier::fail(errno, fmt::format("migrate_pages({} -> {})", fmt::join(fast, ","),
                                         fmt::join(slower, ",")));
  placed.pages_left = static_cast<uint64_t>(rc);
  return placed;
}

}  // namespace tierd
