// DamonSampler on fixture trees: what it writes, in which order, and what it
// reads back. A fixture does not react to writes (the kernel would create
// directories on nr_* and run the kdamond on "on"), so each tree is built with
// the directories the kernel would have made.
#include "sampling/damon/damon_sampler.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <sstream>

#include "unit/temp_tree.h"

namespace tierd::sampling::damon {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

const std::string kK = "kernel/mm/damon/admin/kdamonds";

struct KdamondSpec {
  bool on = false;
  int pid = -1;
  size_t targets = 2;
  size_t schemes = 2;
  bool filters = true;
  std::string avail = "vaddr fvaddr paddr\n";
};

class DamonTree {
 public:
  void kdamonds(size_t nr) const { tree.file(kK + "/nr_kdamonds", std::to_string(nr) + "\n"); }

  void kdamond(size_t k, const KdamondSpec& spec = {}) const {
    std::string d = kK + "/" + std::to_string(k);
    tree.file(d + "/state", spec.on ? "on\n" : "off\n");
    tree.file(d + "/pid", std::to_string(spec.pid) + "\n");
    std::string c = d + "/contexts";
    tree.file(c + "/nr_contexts", "0\n");
    c += "/0";
    if (!spec.avail.empty()) tree.file(c + "/avail_operations", spec.avail);
    tree.file(c + "/operations", "vaddr\n");
    for (auto f : {"intervals/sample_us", "intervals/aggr_us", "intervals/update_us",
                   "nr_regions/min", "nr_regions/max"})
      tree.file(c + "/monitoring_attrs/" + f, "0\n");
    tree.file(c + "/targets/nr_targets", "0\n");
    for (size_t t = 0; t < spec.targets; ++t) {
      std::string td = c + "/targets/" + std::to_string(t);
      tree.file(td + "/pid_target", "0\n");
      tree.file(td + "/regions/nr_regions", "0\n");
      for (size_t r = 0; r < 3; ++r) {
        tree.file(td + "/regions/" + std::to_string(r) + "/start", "0\n");
        tree.file(td + "/regions/" + std::to_string(r) + "/end", "0\n");
      }
    }
    tree.file(c + "/schemes/nr_schemes", "0\n");
    for (size_t s = 0; s < spec.schemes; ++s) {
      std::string sd = c + "/schemes/" + std::to_string(s);
      tree.file(sd + "/action", "stat\n");
      for (auto f : {"sz", "nr_accesses", "age"}) {
        tree.file(sd + "/access_pattern/" + f + "/min", "0\n");
        tree.file(sd + "/access_pattern/" + f + "/max", "0\n");
      }
      if (spec.filters) {
        tree.file(sd + "/filters/nr_filters", "0\n");
        for (auto f : {"type", "damon_target_idx", "matching"})
          tree.file(sd + "/filters/0/" + f, "\n");
      }
      tree.file(sd + "/tried_regions/total_bytes", "0\n");
    }
  }

  // A tried region as update_schemes_tried_regions leaves it.
  void region(size_t k, size_t scheme, size_t index, uint64_t start, uint64_t end,
              uint32_t accesses, uint32_t age) const {
    std::string d = kK + "/" + std::to_string(k) + "/contexts/0/schemes/" + std::to_string(scheme) +
                    "/tried_regions/" + std::to_string(index);
    tree.file(d + "/start", std::to_string(start) + "\n");
    tree.file(d + "/end", std::to_string(end) + "\n");
    tree.file(d + "/nr_accesses", std::to_string(accesses) + "\n");
    tree.file(d + "/age", std::to_string(age) + "\n");
  }

  void memoryBlocks(std::initializer_list<std::pair<int, const char*>> blocks) const {
    tree.file("devices/system/memory/block_size_bytes", "8000000\n");
    tree.file("devices/system/memory/auto_online_blocks", "offline\n");
    for (auto [n, state] : blocks)
      tree.file("devices/system/memory/memory" + std::to_string(n) + "/state",
                std::string(state) + "\n");
  }

  std::string content(const std::string& relpath) const {
    std::ifstream in(tree.root() / relpath);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  void set(const std::string& relpath, const std::string& text) const { tree.file(relpath, text); }

  DamonSampler sampler(DamonOptions options) {
    auto s = DamonSampler::open(tree.root().string(), std::move(options));
    EXPECT_TRUE(s) << s.error().message();
    return std::move(*s);
  }
  // A sampler whose writes land in `log`.
  DamonSampler sampler(DamonOptions options, const std::shared_ptr<tier::WriteLog>& log) {
    auto sys = tier::FsRoot::open(tree.root().string());
    auto writer = tier::FsWriter::open(tree.root().string());
    EXPECT_TRUE(sys && writer);
    writer->setWriteLog(log);
    return DamonSampler(std::move(*sys), std::move(*writer), std::move(options));
  }

  tier::test::TempTree tree;
};

std::vector<tier::WriteRecord> schemeWrites(const std::string& dir) {
  return {{dir + "/action", "stat"},
          {dir + "/access_pattern/sz/min", "0"},
          {dir + "/access_pattern/sz/max", "18446744073709551615"},
          {dir + "/access_pattern/nr_accesses/min", "0"},
          {dir + "/access_pattern/nr_accesses/max", "4294967295"},
          {dir + "/access_pattern/age/min", "0"},
          {dir + "/access_pattern/age/max", "4294967295"}};
}

void append(std::vector<tier::WriteRecord>& to, const std::vector<tier::WriteRecord>& more) {
  to.insert(to.end(), more.begin(), more.end());
}

// --- the writer seam ---------------------------------------------------------

TEST(FsWriter, ReplacesFileContentOnAFixture) {
  tier::test::TempTree tree;
  tree.file("kernel/x/value", "a much longer old value\n");
  auto writer = tier::FsWriter::open(tree.root().string());
  ASSERT_TRUE(writer);
  auto log = std::make_shared<tier::WriteLog>();
  writer->setWriteLog(log);
  ASSERT_TRUE(writer->write("kernel/x/value", "on"));
  std::ifstream in(tree.root() / "kernel/x/value");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text, "on");
  EXPECT_THAT(log->writes(), ElementsAre(tier::WriteRecord{"kernel/x/value", "on"}));
}

TEST(FsWriter, NeverCreatesAndNamesPathAndValue) {
  tier::test::TempTree tree;
  auto writer = tier::FsWriter::open(tree.root().string());
  ASSERT_TRUE(writer);
  auto r = writer->write("kernel/missing", "42");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, ENOENT);
  EXPECT_THAT(r.error().context,
              HasSubstr("write '42' to " + tree.root().string() + "/kernel/missing"));
  EXPECT_FALSE(std::filesystem::exists(tree.root() / "kernel/missing"));
  EXPECT_FALSE(tier::FsWriter::open(tree.root().string() + "/nope"));
}

// --- setup -------------------------------------------------------------------

TEST(DamonSampler, VaddrSetupWritesTheRightFilesInOrder) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0);
  auto log = std::make_shared<tier::WriteLog>();
  DamonOptions options{.pids = {101},
                       .sample_us = 5000,
                       .aggr_us = 100000,
                       .update_us = 2000000,
                       .min_regions = 10,
                       .max_regions = 500};
  auto sampler = t.sampler(options, log);
  auto started = sampler.start();
  ASSERT_TRUE(started) << started.error().message();
  EXPECT_TRUE(sampler.running());
  EXPECT_EQ(sampler.kdamond(), 0);
  EXPECT_EQ(sampler.operations(), "vaddr");
  EXPECT_EQ(sampler.maxAccesses(), 20u);

  const std::string c = kK + "/0/contexts/0";
  std::vector<tier::WriteRecord> expected{
      {kK + "/nr_kdamonds", "1"},
      {kK + "/0/contexts/nr_contexts", "1"},
      {c + "/operations", "vaddr"},
      {c + "/monitoring_attrs/intervals/sample_us", "5000"},
      {c + "/monitoring_attrs/intervals/aggr_us", "100000"},
      {c + "/monitoring_attrs/intervals/update_us", "2000000"},
      {c + "/monitoring_attrs/nr_regions/min", "10"},
      {c + "/monitoring_attrs/nr_regions/max", "500"},
      {c + "/targets/nr_targets", "1"},
      {c + "/targets/0/pid_target", "101"},
      {c + "/schemes/nr_schemes", "1"},
  };
  append(expected, schemeWrites(c + "/schemes/0"));
  expected.push_back({kK + "/0/state", "on"});
  EXPECT_EQ(log->writes(), expected);

  log->clear();
  ASSERT_TRUE(sampler.stop());
  EXPECT_FALSE(sampler.running());
  EXPECT_EQ(sampler.kdamond(), -1);
  EXPECT_THAT(log->writes(), ElementsAre(tier::WriteRecord{kK + "/0/state", "off"},
                                         tier::WriteRecord{kK + "/nr_kdamonds", "0"}));
}

TEST(DamonSampler, SeveralPidsGetOneSchemeEachWithATargetFilter) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 2, .schemes = 2});
  auto log = std::make_shared<tier::WriteLog>();
  auto sampler = t.sampler({.pids = {101, 202, 101}}, log);
  ASSERT_TRUE(sampler.start());
  EXPECT_EQ(sampler.targets(), (std::vector<pid_t>{101, 202}));

  const std::string c = kK + "/0/contexts/0";
  auto& w = log->writes();
  auto at = [&](const tier::WriteRecord& record) {
    return std::find(w.begin(), w.end(), record) - w.begin();
  };
  EXPECT_LT(at({c + "/targets/nr_targets", "2"}), at({c + "/targets/0/pid_target", "101"}));
  EXPECT_LT(at({c + "/targets/0/pid_target", "101"}), at({c + "/targets/1/pid_target", "202"}));
  std::vector<tier::WriteRecord> schemes{{c + "/schemes/nr_schemes", "2"}};
  for (int s : {0, 1}) {
    std::string d = c + "/schemes/" + std::to_string(s);
    append(schemes, schemeWrites(d));
    append(schemes, {{d + "/filters/nr_filters", "1"},
                     {d + "/filters/0/type", "target"},
                     {d + "/filters/0/damon_target_idx", std::to_string(s)},
                     {d + "/filters/0/matching", "N"}});
  }
  schemes.push_back({kK + "/0/state", "on"});
  ASSERT_GE(w.size(), schemes.size());
  EXPECT_EQ(std::vector<tier::WriteRecord>(w.end() - static_cast<long>(schemes.size()), w.end()),
            schemes);
  EXPECT_EQ(t.content(c + "/schemes/1/filters/0/damon_target_idx"), "1");
}

TEST(DamonSampler, PaddrMonitorsEveryOnlineMemoryBlock) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 1, .schemes = 1});
  t.memoryBlocks({{0, "online"}, {1, "online"}, {2, "offline"}, {3, "online"}});
  auto log = std::make_shared<tier::WriteLog>();
  auto sampler = t.sampler({.operations = Operations::kPaddr}, log);
  auto started = sampler.start();
  ASSERT_TRUE(started) << started.error().message();
  EXPECT_EQ(sampler.operations(), "paddr");

  const std::string c = kK + "/0/contexts/0";
  const std::string r = c + "/targets/0/regions";
  std::vector<tier::WriteRecord> expected{
      {c + "/targets/nr_targets", "1"},
      {r + "/nr_regions", "2"},
      {r + "/0/start", "0"},
      {r + "/0/end", std::to_string(2 * 0x8000000ull)},
      {r + "/1/start", std::to_string(3 * 0x8000000ull)},
      {r + "/1/end", std::to_string(4 * 0x8000000ull)},
      {c + "/schemes/nr_schemes", "1"},
  };
  auto& w = log->writes();
  auto first = std::find(w.begin(), w.end(), expected.front());
  ASSERT_NE(first, w.end());
  ASSERT_GE(w.end() - first, static_cast<long>(expected.size()));
  EXPECT_EQ(std::vector<tier::WriteRecord>(first, first + static_cast<long>(expected.size())),
            expected);
  EXPECT_EQ(t.content(c + "/operations"), "paddr");
  EXPECT_EQ(w.back(), (tier::WriteRecord{kK + "/0/state", "on"}));
}

TEST(DamonSampler, PaddrTakesGivenRanges) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 1, .schemes = 1});
  auto sampler =
      t.sampler({.operations = Operations::kPaddr, .paddr_ranges = {{0x100000, 0x40000000}}});
  ASSERT_TRUE(sampler.start());
  const std::string r = kK + "/0/contexts/0/targets/0/regions";
  EXPECT_EQ(t.content(r + "/nr_regions"), "1");
  EXPECT_EQ(t.content(r + "/0/start"), std::to_string(0x100000));
  EXPECT_EQ(t.content(r + "/0/end"), std::to_string(0x40000000));
}

TEST(DamonSampler, WithoutVaddrFallsBackToPaddrWithANote) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 1, .schemes = 1, .avail = "paddr\n"});
  t.memoryBlocks({{0, "online"}});
  auto sampler = t.sampler({.pids = {101}});
  auto started = sampler.start();
  ASSERT_TRUE(started) << started.error().message();
  EXPECT_EQ(sampler.operations(), "paddr");
  EXPECT_EQ(t.content(kK + "/0/contexts/0/operations"), "paddr");
  ASSERT_EQ(sampler.notes().size(), 1u);
  EXPECT_THAT(sampler.notes()[0], HasSubstr("lacks vaddr"));
  // Pids mean nothing to paddr: updating them changes nothing in sysfs.
  EXPECT_TRUE(sampler.updateTargets({101, 202}));
  EXPECT_EQ(t.content(kK + "/0/contexts/0/targets/nr_targets"), "1");
}

TEST(DamonSampler, ReusesAFreeKdamondAndLeavesTheRunningOneAlone) {
  DamonTree t;
  t.kdamonds(2);
  t.kdamond(0, {.on = true, .pid = 77});
  t.kdamond(1);
  auto log = std::make_shared<tier::WriteLog>();
  {
    auto sampler = t.sampler({.pids = {101}}, log);
    ASSERT_TRUE(sampler.start());
    EXPECT_EQ(sampler.kdamond(), 1);
  }  // the destructor stops it
  for (const auto& w : log->writes()) {
    EXPECT_EQ(w.path.find(kK + "/0/"), std::string::npos) << w.path;
    EXPECT_NE(w.path, kK + "/nr_kdamonds");
  }
  EXPECT_EQ(log->writes().back(), (tier::WriteRecord{kK + "/1/state", "off"}));
  EXPECT_EQ(t.content(kK + "/0/state"), "on\n");
}

TEST(DamonSampler, RefusesToTakeARunningKdamond) {
  DamonTree t;
  t.kdamonds(2);
  t.kdamond(0, {.on = true, .pid = 77});
  t.kdamond(1, {.on = true, .pid = 78});
  auto log = std::make_shared<tier::WriteLog>();
  auto sampler = t.sampler({.pids = {101}}, log);
  auto started = sampler.start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().errnum, EBUSY);
  EXPECT_THAT(started.error().context, HasSubstr("kdamond 0 (pid 77), kdamond 1 (pid 78)"));
  EXPECT_TRUE(log->writes().empty());
  EXPECT_EQ(sampler.kdamond(), -1);
}

TEST(DamonSampler, MissingDamon) {
  DamonTree t;
  t.set("kernel/mm/transparent_hugepage/enabled", "always\n");
  auto sampler = t.sampler({.pids = {101}});
  auto started = sampler.start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().errnum, ENOENT);
  EXPECT_THAT(started.error().context, HasSubstr("kernel lacks DAMON's sysfs interface"));
}

TEST(DamonSampler, VaddrWithoutPidsIsAnError) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0);
  auto sampler = t.sampler({});
  auto started = sampler.start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().errnum, EINVAL);
  std::vector<RegionSample> out{{}};
  EXPECT_TRUE(sampler.refresh(out));  // nothing to monitor, nothing to report
  EXPECT_TRUE(out.empty());
}

TEST(DamonSampler, AMissingFileFailsNamingItAndGivesTheKdamondBack) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 1, .schemes = 1});
  auto log = std::make_shared<tier::WriteLog>();
  auto sampler = t.sampler({.pids = {101, 202}}, log);  // no targets/1 in the tree
  auto started = sampler.start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().errnum, ENOENT);
  EXPECT_THAT(started.error().context, HasSubstr("write '202' to " + t.tree.root().string() + "/" +
                                                 kK + "/0/contexts/0/targets/1/pid_target"));
  EXPECT_EQ(log->writes().back(), (tier::WriteRecord{kK + "/nr_kdamonds", "0"}));
  EXPECT_EQ(sampler.kdamond(), -1);
  EXPECT_FALSE(sampler.running());
}

TEST(DamonSampler, AKernelWithoutTriedRegionsIsNotSupported) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 1, .schemes = 1});
  std::filesystem::remove_all(t.tree.root() / kK / "0/contexts/0/schemes/0/tried_regions");
  auto sampler = t.sampler({.pids = {101}});
  auto started = sampler.start();
  ASSERT_FALSE(started);
  EXPECT_EQ(started.error().errnum, EOPNOTSUPP);
  EXPECT_THAT(started.error().context, HasSubstr("tried_regions"));
}

TEST(DamonSampler, NoAvailOperationsFileAssumesVaddr) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 1, .schemes = 1, .avail = ""});
  auto sampler = t.sampler({.pids = {101}});
  ASSERT_TRUE(sampler.start());
  EXPECT_EQ(sampler.operations(), "vaddr");
  ASSERT_EQ(sampler.notes().size(), 1u);
  EXPECT_THAT(sampler.notes()[0], HasSubstr("avail_operations"));
}

// --- refresh -----------------------------------------------------------------

TEST(DamonSampler, RefreshReadsEachTargetsTriedRegions) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0);
  auto log = std::make_shared<tier::WriteLog>();
  auto sampler = t.sampler({.pids = {101, 202}}, log);
  ASSERT_TRUE(sampler.start());
  // The kernel numbers regions across the schemes of a context.
  t.region(0, 0, 0, 0x1000, 0x3000, 3, 5);
  t.region(0, 0, 1, 0x3000, 0x9000, 18, 2);
  t.region(0, 1, 2, 0x7000, 0x8000, 0, 40);
  t.region(0, 1, 10, 0xa000, 0xb000, 1, 1);
  t.region(0, 1, 9, 0x9000, 0xa000, 7, 1);

  log->clear();
  std::vector<RegionSample> out;
  auto r = sampler.refresh(out);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_THAT(log->writes(),
              ElementsAre(tier::WriteRecord{kK + "/0/state", "update_schemes_tried_regions"}));
  ASSERT_EQ(out.size(), 5u);
  EXPECT_EQ(out[0].pid, 101);
  EXPECT_EQ(out[0].start, 0x1000u);
  EXPECT_EQ(out[0].end, 0x3000u);
  EXPECT_EQ(out[0].nr_accesses, 3u);
  EXPECT_EQ(out[0].age, 5u);
  EXPECT_EQ(out[0].max_accesses, 20u);
  EXPECT_EQ(out[1].nr_accesses, 18u);
  EXPECT_EQ(out[2].pid, 202);
  EXPECT_EQ(out[2].age, 40u);
  EXPECT_EQ(out[3].start, 0x9000u);  // numeric order: 9 before 10
  EXPECT_EQ(out[4].start, 0xa000u);
  EXPECT_EQ(sampler.stats().samples, 5u);
  EXPECT_EQ(sampler.damonStats().refreshes, 1u);
  EXPECT_EQ(sampler.damonStats().last_regions, 5u);
  EXPECT_GE(sampler.stats().cpu_seconds, 0.0);
}

TEST(DamonSampler, EmptyTriedRegionsAreCounted) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 1, .schemes = 1});
  auto sampler = t.sampler({.pids = {101}});
  ASSERT_TRUE(sampler.start());
  std::vector<RegionSample> out{{}};
  ASSERT_TRUE(sampler.refresh(out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(sampler.damonStats().empty_refreshes, 1u);
  EXPECT_TRUE(sampler.notes().empty());
}

TEST(DamonSampler, MalformedAndVanishedRegionsAreSkippedAndCounted) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 1, .schemes = 1});
  auto sampler = t.sampler({.pids = {101}});
  ASSERT_TRUE(sampler.start());
  t.region(0, 0, 0, 0x1000, 0x2000, 1, 1);
  t.region(0, 0, 1, 0x2000, 0x3000, 1, 1);
  t.set(kK + "/0/contexts/0/schemes/0/tried_regions/1/nr_accesses", "lots\n");
  t.region(0, 0, 2, 0x3000, 0x4000, 1, 1);
  std::filesystem::remove(t.tree.root() / kK / "0/contexts/0/schemes/0/tried_regions/2/age");
  std::vector<RegionSample> out;
  ASSERT_TRUE(sampler.refresh(out));
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(out[0].pid, 101);
  EXPECT_EQ(sampler.stats().malformed, 1u);
  EXPECT_EQ(sampler.stats().lost, 1u);
}

TEST(DamonSampler, WithoutFiltersRegionsAreSplitByAddressOrder) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 2, .schemes = 1, .filters = false});
  auto sampler = t.sampler({.pids = {101, 202}});
  ASSERT_TRUE(sampler.start());
  EXPECT_EQ(t.content(kK + "/0/contexts/0/schemes/nr_schemes"), "1");
  ASSERT_EQ(sampler.notes().size(), 1u);
  EXPECT_THAT(sampler.notes()[0], HasSubstr("address order"));
  t.region(0, 0, 0, 0x5000, 0x6000, 1, 1);
  t.region(0, 0, 1, 0x7000, 0x8000, 2, 1);
  t.region(0, 0, 2, 0x4000, 0x5000, 3, 1);
  std::vector<RegionSample> out;
  ASSERT_TRUE(sampler.refresh(out));
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].pid, 101);
  EXPECT_EQ(out[1].pid, 101);
  EXPECT_EQ(out[2].pid, 202);

  // One ascending run for two targets: no guessing.
  std::filesystem::remove_all(t.tree.root() / kK / "0/contexts/0/schemes/0/tried_regions/2");
  ASSERT_TRUE(sampler.refresh(out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(sampler.stats().lost, 2u);
}

TEST(DamonSampler, KdamondPid) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0);
  auto sampler = t.sampler({.pids = {101}});
  EXPECT_FALSE(sampler.kdamondPid());
  ASSERT_TRUE(sampler.start());
  EXPECT_EQ(sampler.kdamondPid().error().errnum, ESRCH);  // the fixture says -1
  t.set(kK + "/0/pid", "4321\n");
  EXPECT_EQ(sampler.kdamondPid(), 4321);
}

TEST(DamonSampler, RefreshBeforeStartIsAnError) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0);
  auto sampler = t.sampler({.pids = {101}});
  std::vector<RegionSample> out;
  auto r = sampler.refresh(out);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().errnum, ESRCH);
}

// --- target updates ----------------------------------------------------------

TEST(DamonSampler, AddedPidsAreCommitted) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 3, .schemes = 3});
  auto log = std::make_shared<tier::WriteLog>();
  auto sampler = t.sampler({.pids = {101}}, log);
  ASSERT_TRUE(sampler.start());
  log->clear();
  ASSERT_TRUE(sampler.updateTargets({101, 202}));
  EXPECT_TRUE(sampler.running());
  const std::string c = kK + "/0/contexts/0";
  auto& w = log->writes();
  ASSERT_FALSE(w.empty());
  EXPECT_EQ(w.front(), (tier::WriteRecord{c + "/targets/nr_targets", "2"}));
  EXPECT_EQ(w.back(), (tier::WriteRecord{kK + "/0/state", "commit"}));
  EXPECT_EQ(std::count(w.begin(), w.end(), tier::WriteRecord{kK + "/0/state", "off"}), 0);
  EXPECT_EQ(t.content(c + "/targets/1/pid_target"), "202");
  EXPECT_EQ(t.content(c + "/schemes/nr_schemes"), "2");
  // The same list again: nothing to do.
  log->clear();
  ASSERT_TRUE(sampler.updateTargets({101, 202}));
  EXPECT_TRUE(w.empty());
}

TEST(DamonSampler, RemovedPidsRestartTheKdamond) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0, {.targets = 3, .schemes = 3});
  auto log = std::make_shared<tier::WriteLog>();
  auto sampler = t.sampler({.pids = {101, 202, 303}}, log);
  ASSERT_TRUE(sampler.start());
  log->clear();
  ASSERT_TRUE(sampler.updateTargets({303, 101}));
  auto& w = log->writes();
  ASSERT_GE(w.size(), 2u);
  EXPECT_EQ(w.front(), (tier::WriteRecord{kK + "/0/state", "off"}));
  EXPECT_EQ(w.back(), (tier::WriteRecord{kK + "/0/state", "on"}));
  EXPECT_EQ(std::count(w.begin(), w.end(), tier::WriteRecord{kK + "/nr_kdamonds", "1"}), 0);
  EXPECT_EQ(t.content(kK + "/0/contexts/0/targets/0/pid_target"), "303");
  EXPECT_EQ(t.content(kK + "/0/contexts/0/targets/1/pid_target"), "101");
  EXPECT_EQ(sampler.kdamond(), 0);
}

TEST(DamonSampler, NoPidsStopsAndNewPidsStartAgain) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0);
  auto log = std::make_shared<tier::WriteLog>();
  auto sampler = t.sampler({.pids = {101}}, log);
  ASSERT_TRUE(sampler.start());
  ASSERT_TRUE(sampler.updateTargets({}));
  EXPECT_FALSE(sampler.running());
  EXPECT_EQ(sampler.kdamond(), -1);
  EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "0");
  std::vector<RegionSample> out;
  EXPECT_TRUE(sampler.refresh(out));
  log->clear();
  ASSERT_TRUE(sampler.updateTargets({202}));
  EXPECT_TRUE(sampler.running());
  EXPECT_EQ(log->writes().front(), (tier::WriteRecord{kK + "/nr_kdamonds", "1"}));
  EXPECT_EQ(t.content(kK + "/0/contexts/0/targets/0/pid_target"), "202");
}

TEST(DamonSampler, StopLeavesNrKdamondsWhenAnotherKdamondRunsMeanwhile) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0);
  t.kdamond(1);
  auto sampler = t.sampler({.pids = {101}});
  ASSERT_TRUE(sampler.start());
  // Someone else grew nr_kdamonds and started kdamond 1 (the kernel would
  // have refused while ours ran; the fixture lets us stage it).
  t.kdamonds(2);
  t.set(kK + "/1/state", "on\n");
  ASSERT_TRUE(sampler.stop());
  EXPECT_EQ(t.content(kK + "/nr_kdamonds"), "2\n");
  EXPECT_EQ(t.content(kK + "/0/state"), "off");
  ASSERT_EQ(sampler.notes().size(), 1u);
  EXPECT_THAT(sampler.notes()[0], HasSubstr("left nr_kdamonds"));
}

TEST(DamonSampler, MovedFromSamplerDoesNotStop) {
  DamonTree t;
  t.kdamonds(0);
  t.kdamond(0);
  auto first = t.sampler({.pids = {101}});
  ASSERT_TRUE(first.start());
  {
    DamonSampler second(std::move(first));
    EXPECT_TRUE(second.running());
    EXPECT_EQ(t.content(kK + "/0/state"), "on");
  }
  EXPECT_EQ(t.content(kK + "/0/state"), "off");
}

}  // namespace
}  // namespace tierd::sampling::damon
