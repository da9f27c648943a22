#include "os/pages.h"

#include <numaif.h>
#include <unistd.h>

#include <string>

namespace tier {
namespace {

std::string describe(const char* what, pid_t pid, size_t count) {
  return std::string(what) + " of " + std::to_string(count) + " pages in process " +
         std::to_string(pid);
}

}  // namespace

Result<void> queryPageNodes(pid_t pid, std::span<void* const> pages, std::span<int> status) {
  if (status.size() < pages.size()) return fail(EINVAL, "status array shorter than the pages");
  if (pages.empty()) return {};
  long rc = move_pages(pid, pages.size(), const_cast<void**>(pages.data()), nullptr,
                       status.data(), 0);
  if (rc < 0) return fail(errno, describe("query placement", pid, pages.size()));
  return {};
}

Result<void> movePages(pid_t pid, std::span<void* const> pages, std::span<const int> nodes,
                       std::span<int> status) {
  if (status.size() < pages.size() || nodes.size() < pages.size())
    return fail(EINVAL, "node or status array shorter than the pages");
  if (pages.empty()) return {};
  // A positive return counts pages not migrated; status[] says why for each.
  long rc = move_pages(pid, pages.size(), const_cast<void**>(pages.data()), nodes.data(),
                       status.data(), MPOL_MF_MOVE);
  if (rc < 0) return fail(errno, describe("move", pid, pages.size()));
  return {};
}

size_t pageSize() {
  static const size_t size = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  return size;
}

}  // namespace tier
