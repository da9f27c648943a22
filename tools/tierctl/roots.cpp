#include "roots.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <fstream>
#include <sstream>

#include "config/topology_config.h"
#include "discovery/discover.h"

namespace tierctl {
namespace {

bool isDirectory(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

tier::Result<tier::TopologyOptions> loadOptions(const RootOptions& options) {
  constexpr const char* kDefaultConfig = "/etc/tierd/tierd.toml";
  std::string path = options.config_path.value_or(kDefaultConfig);
  std::ifstream file(path);
  if (!file) {
    if (!options.config_path) return tier::TopologyOptions{};  // no config installed
    return tier::fail(errno, "open config " + path);
  }
  std::stringstream text;
  text << file.rdbuf();
  return tier::parseTopologyConfig(text.str(), path);
}

}  // namespace

tier::Result<Roots> openRoots(const RootOptions& options) {
  std::string sys_dir = options.sysfs_root;
  std::optional<std::string> proc_dir = options.procfs_root;
  bool is_tree = !isDirectory(sys_dir + "/devices") && isDirectory(sys_dir + "/sys/devices");
  if (is_tree) {
    if (!proc_dir && isDirectory(sys_dir + "/proc")) proc_dir = sys_dir + "/proc";
    sys_dir += "/sys";
  } else if (!proc_dir && options.sysfs_root == "/sys") {
    proc_dir = "/proc";
  }
  auto sys = tier::FsRoot::open(sys_dir);
  if (!sys) return std::unexpected(tier::wrap(sys.error(), "sysfs root"));
  Roots roots{std::move(*sys), std::nullopt, false};
  roots.live = roots.sys.isLive("/sys");
  if (proc_dir) {
    auto proc = tier::FsRoot::open(*proc_dir);
    if (!proc) return std::unexpected(tier::wrap(proc.error(), "procfs root"));
    roots.proc = std::move(*proc);
  }
  return roots;
}

tier::Result<tier::Topology> loadTopology(const Roots& roots, const RootOptions& options) {
  auto topology_options = loadOptions(options);
  if (!topology_options) return std::unexpected(topology_options.error());
  auto facts = tier::discoverPlatform(roots.sys, roots.proc ? &*roots.proc : nullptr);
  if (!facts) return std::unexpected(facts.error());
  return tier::buildTopology(std::move(*facts), *topology_options);
}

}  // namespace tierctl
