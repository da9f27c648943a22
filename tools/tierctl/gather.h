// `tierctl gather FILE.tar`: a tarball of every sysfs/procfs file discovery
// reads (with the symlinks it follows), laid out as sys/... and proc/..., for
// bug reports and test fixtures. `--sysfs-root` accepts the unpacked tree.
#pragma once

#include <string>

#include "base/result.h"
#include "roots.h"

namespace tierctl {

struct GatherSummary {
  size_t files = 0, links = 0, dirs = 0;
};

// Runs discovery with access logging on the given roots, then writes the tar.
tier::Result<GatherSummary> gatherTopology(Roots& roots, const RootOptions& options,
                                           const std::string& tar_path);

}  // namespace tierctl
