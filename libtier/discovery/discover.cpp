#include "discovery/discover.h"

#include "discovery/library_reader.h"
#include "discovery/sysfs_reader.h"

namespace tier {

Result<PlatformFacts> discoverPlatform(const FsRoot& sys, const FsRoot* proc) {
  auto facts = readPlatformFacts(sys, proc);
  if (!facts) return facts;
  // libcxl & co. read the host's /sys whatever our root is: only ask them
  // when they describe the same kernel.
  if (sys.isLive("/sys")) {
    for (auto& disagreement : mergeLibraryFacts(*facts, readLibraryFacts()))
      facts->notes.push_back("libraries vs sysfs: " + std::move(disagreement));
  }
  return facts;
}

}  // namespace tier
