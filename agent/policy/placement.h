// Where pages are: move_pages(2) status queries. The policy keeps the answers
// in the heat map's entries (HeatMap::setNode), so a plan does not ask the
// kernel about every tracked page every time.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <vector>

#include "migrate/page_ops.h"

namespace tierd::policy {

// move_pages(2) status of each page (its node, or -errno when not present),
// asked in chunks. False when the process is gone or not ours to see.
bool queryNodes(migrate::PageOps& ops, pid_t pid, const std::vector<uint64_t>& pages,
                unsigned page_shift, std::vector<int>& status);

}  // namespace tierd::policy
