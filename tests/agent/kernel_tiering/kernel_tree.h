// A writable sysfs + procfs tree for the kernel_tiering tests: the captured
// lab-far tree (two nodes: node 0 with a CPU, node 1 CPU-less and slower) plus
// fixtures/knobs (the tiering knobs, debugfs, /proc/vmstat), copied into a
// temporary directory. A fixture does not react to writes (the kernel would
// create directories on nr_* and start a kdamond on "on"), so kdamond()
// builds what the kernel would have made.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "discovery/discover.h"
#include "fs/fs_root.h"
#include "topology/topology.h"
#include "unit/temp_tree.h"

namespace tierd::kernel_tiering::test {

inline const std::string kK = "sys/kernel/mm/damon/admin/kdamonds";

struct KdamondSpec {
  bool on = false;
  int pid = -1;
  bool target_nid = true;  // 6.11+: migrate actions
  bool filters = true;
  std::string avail = "vaddr fvaddr paddr\n";
};

class KernelTree {
 public:
  explicit KernelTree(bool debugfs = true) {
    namespace fs = std::filesystem;
    fs::copy(std::string(LAB_FAR_DIR) + "/sys", tree.root() / "sys",
             fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    fs::copy(std::string(KNOBS_DIR), tree.root(),
             fs::copy_options::recursive | fs::copy_options::overwrite_existing);
    fs::remove(tree.root() / "README.md");
    if (!debugfs) fs::remove_all(tree.root() / "sys/kernel/debug");
    for (int block = 0; block < 16; ++block)
      tree.file("sys/devices/system/memory/memory" + std::to_string(block) + "/state", "online\n");
  }

  std::string sys() const { return (tree.root() / "sys").string(); }
  std::string proc() const { return (tree.root() / "proc").string(); }

  std::string content(const std::string& relpath) const {
    std::ifstream in(tree.root() / relpath);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  void set(const std::string& relpath, const std::string& text) const { tree.file(relpath, text); }
  bool exists(const std::string& relpath) const {
    return std::filesystem::exists(tree.root() / relpath);
  }

  void kdamonds(size_t nr) const { set(kK + "/nr_kdamonds", std::to_string(nr) + "\n"); }
  void kdamond(size_t k, const KdamondSpec& spec = {}) const {
    std::string d = kK + "/" + std::to_string(k);
    set(d + "/state", spec.on ? "on\n" : "off\n");
    set(d + "/pid", std::to_string(spec.pid) + "\n");
    set(d + "/contexts/nr_contexts", "0\n");
    std::string c = d + "/contexts/0";
    if (!spec.avail.empty()) set(c + "/avail_operations", spec.avail);
    set(c + "/operations", "vaddr\n");
    for (auto f : {"intervals/sample_us", "intervals/aggr_us", "intervals/update_us",
                   "nr_regions/min", "nr_regions/max"})
      set(c + "/monitoring_attrs/" + f, "0\n");
    set(c + "/targets/nr_targets", "0\n");
    set(c + "/targets/0/regions/nr_regions", "0\n");
    for (auto r : {"0", "1"}) {
      set(c + "/targets/0/regions/" + std::string(r) + "/start", "0\n");
      set(c + "/targets/0/regions/" + std::string(r) + "/end", "0\n");
    }
    set(c + "/schemes/nr_schemes", "0\n");
    std::string s = c + "/schemes/0";
    set(s + "/action", "stat\n");
    if (spec.target_nid) set(s + "/target_nid", "-1\n");
    for (auto f : {"sz", "nr_accesses", "age"}) {
      set(s + "/access_pattern/" + f + "/min", "0\n");
      set(s + "/access_pattern/" + f + "/max", "0\n");
    }
    for (auto f : {"ms", "bytes", "reset_interval_ms", "weights/sz_permil",
                   "weights/nr_accesses_permil", "weights/age_permil"})
      set(s + "/quotas/" + f, "0\n");
    for (auto f : {"metric", "interval_us", "high", "mid", "low"})
      set(s + "/watermarks/" + f, "0\n");
    if (spec.filters) {
      set(s + "/filters/nr_filters", "0\n");
      for (auto f : {"type", "matching"})
        set(s + "/filters/0/" + std::string(f), "\n");
    }
    for (auto f : {"nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds"})
      set(s + "/stats/" + f, "0\n");
  }

  tier::Topology topology() const {
    auto sys_root = tier::FsRoot::open(sys());
    EXPECT_TRUE(sys_root);
    auto facts = tier::discoverPlatform(*sys_root, nullptr);
    EXPECT_TRUE(facts) << facts.error().message();
    return tier::buildTopology(std::move(*facts));
  }

  tier::test::TempTree tree;
};

}  // namespace tierd::kernel_tiering::test
