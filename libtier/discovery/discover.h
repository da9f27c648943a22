// Discovery as the agent and tierctl use it: the sysfs reader on any root,
// plus ndctl's libraries when the root is the live kernel's.
#pragma once

#include "base/result.h"
#include "fs/fs_root.h"
#include "topology/facts.h"

namespace tier {

Result<PlatformFacts> discoverPlatform(const FsRoot& sys, const FsRoot* proc);

}  // namespace tier
