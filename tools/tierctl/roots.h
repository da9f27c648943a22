// Where tierctl reads the kernel from: --sysfs-root / --procfs-root.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "base/result.h"
#include "fs/fs_root.h"
#include "topology/topology.h"

namespace tierctl {

struct RootOptions {
  std::string sysfs_root = "/sys";
  std::optional<std::string> procfs_root;  // default: /proc, or <tree>/proc
  std::optional<std::string> config_path;  // default: /etc/tierd/tierd.toml if present
};

struct Roots {
  tier::FsRoot sys;
  std::optional<tier::FsRoot> proc;
  bool live = false;  // sys is the running kernel's /sys
};

// Accepts either a sysfs mount (holding devices/, bus/ ...) or a captured
// tree holding sys/ and proc/ (what `tierctl gather` writes), so that
// `--sysfs-root tests/fixtures/NAME` works without a second flag.
tier::Result<Roots> openRoots(const RootOptions& options);

// Discovery plus classification, with the [topology] config applied.
tier::Result<tier::Topology> loadTopology(const Roots& roots, const RootOptions& options);

}  // namespace tierctl
