// The two kernel operations the engine needs, behind an interface so that
// unit tests can inject per-page failures the kernel cannot be made to give
// on demand (EBUSY, ENOMEM). Everything else runs on the real kernel.
#pragma once

#include <sys/types.h>

#include <span>

#include "base/result.h"

namespace tierd::migrate {

class PageOps {
 public:
  virtual ~PageOps() = default;
  virtual tier::Result<void> query(pid_t pid, std::span<void* const> pages,
                                   std::span<int> status) = 0;
  virtual tier::Result<void> move(pid_t pid, std::span<void* const> pages,
                                  std::span<const int> nodes, std::span<int> status) = 0;
};

// move_pages(2).
class KernelPageOps : public PageOps {
 public:
  tier::Result<void> query(pid_t pid, std::span<void* const> pages, std::span<int> status) override;
  tier::Result<void> move(pid_t pid, std::span<void* const> pages, std::span<const int> nodes,
                          std::span<int> status) override;
};

}  // namespace tierd::migrate
