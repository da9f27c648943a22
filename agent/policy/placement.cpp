#include "policy/placement.h"

#include <algorithm>

namespace tierd::policy {

namespace {
constexpr size_t kQueryChunk = 4096;
}

bool queryNodes(migrate::PageOps& ops, pid_t pid, const std::vector<uint64_t>& pages,
                unsigned page_shift, std::vector<int>& status) {
  status.assign(pages.size(), 0);
  std::vector<void*> addresses;
  std::vector<int> chunk;
  for (size_t at = 0; at < pages.size(); at += kQueryChunk) {
    const size_t n = std::min(kQueryChunk, pages.size() - at);
    addresses.resize(n);
    chunk.assign(n, 0);
    for (size_t i = 0; i < n; ++i)
      addresses[i] = reinterpret_cast<void*>(pages[at + i] << page_shift);
    if (!ops.query(pid, addresses, chunk)) return false;
    std::copy(chunk.begin(), chunk.end(), status.begin() + static_cast<std::ptrdiff_t>(at));
  }
  return true;
}

}  // namespace tierd::policy
