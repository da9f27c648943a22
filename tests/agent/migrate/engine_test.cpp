// The engine against the real kernel where this one-node host allows it
// (pages read back with move_pages, a dead process, an offline node), and
// with injected per-page outcomes for what the kernel cannot be made to do.
#include "migrate/engine.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "../../unit/temp_tree.h"
#include "discovery/sysfs_reader.h"

namespace tierd::migrate {
namespace {

constexpr size_t kPage = 4096;

// Pages start on `initial_node`; moves succeed unless a failure is injected.
class FakePageOps : public PageOps {
 public:
  explicit FakePageOps(int initial_node) : initial_node_(initial_node) {}
  std::map<uint64_t, int> node_of;
  std::map<uint64_t, int> fail_with;  // page -> errno on move
  size_t move_calls = 0;
  size_t pages_queried = 0;

  tier::Result<void> query(pid_t, std::span<void* const> pages, std::span<int> status) override {
    pages_queried += pages.size();
    for (size_t i = 0; i < pages.size(); ++i)
      status[i] = nodeOf(pages[i]);
    return {};
  }
  tier::Result<void> move(pid_t, std::span<void* const> pages, std::span<const int> nodes,
                          std::span<int> status) override {
    ++move_calls;
    for (size_t i = 0; i < pages.size(); ++i) {
      auto address = reinterpret_cast<uint64_t>(pages[i]);
      if (auto it = fail_with.find(address); it != fail_with.end()) {
        status[i] = -it->second;
        continue;
      }
      node_of[address] = nodes[i];
      status[i] = nodes[i];
    }
    return {};
  }

 private:
  int nodeOf(void* page) {
    auto it = node_of.find(reinterpret_cast<uint64_t>(page));
    return it == node_of.end() ? initial_node_ : it->second;
  }
  int initial_node_;
};

struct Buffer {
  explicit Buffer(size_t pages) : size(pages * kPage) {
    data = static_cast<char*>(
        mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    madvise(data, size, MADV_NOHUGEPAGE);  // count 4 KiB pages exactly
  }
  ~Buffer() { munmap(data, size); }
  Range range() const {
    return {reinterpret_cast<uint64_t>(data), reinterpret_cast<uint64_t>(data) + size};
  }
  void touchAll() const { std::memset(data, 0x5a, size); }
  char* data;
  size_t size;
};

class EngineTest : public ::testing::Test {
 protected:
  EngineTest() : proc_(*tier::FsRoot::open("/proc")), sys_(*tier::FsRoot::open("/sys")) {}
  MoveRequest request(const Buffer& buffer, int node) {
    MoveRequest r;
    r.pid = getpid();
    r.ranges = {buffer.range()};
    r.target_node = node;
    return r;
  }
  tier::FsRoot proc_, sys_;
  KernelPageOps kernel_;
};

TEST_F(EngineTest, CountsOnlyPresentPagesAndReadsBackTheirNode) {
  Buffer buffer(64);
  for (size_t i = 0; i < 64; i += 2)
    buffer.data[i * kPage] = 1;  // touch every other page
  MigrationEngine engine(proc_, sys_, kernel_, {});
  auto result = engine.move(request(buffer, 0));
  ASSERT_FALSE(result.stopped) << result.stopped->message();
  EXPECT_EQ(result.pages_requested, 32u);
  EXPECT_EQ(result.pages_already_there, 32u);  // this host has node 0 only
  EXPECT_EQ(result.pages_present_after, 32u);
  EXPECT_EQ(result.pages_on_target_after, 32u);
  EXPECT_TRUE(result.failed.empty());
}

TEST_F(EngineTest, AnOfflineTargetNodeStopsTheMoveAndLeavesDataIntact) {
  Buffer buffer(16);
  buffer.touchAll();
  MigrationEngine engine(proc_, sys_, kernel_, {});
  auto result = engine.move(request(buffer, 63));
  ASSERT_TRUE(result.stopped);
  EXPECT_EQ(result.stopped->errnum, ENODEV) << result.stopped->message();
  EXPECT_EQ(result.pages_moved, 0u);
  for (size_t i = 0; i < buffer.size; ++i)
    ASSERT_EQ(buffer.data[i], 0x5a);
  EXPECT_EQ(engine.stats().requests_stopped, 1u);
}

TEST_F(EngineTest, AVanishedProcessIsESRCH) {
  pid_t child = fork();
  if (child == 0) _exit(0);
  waitpid(child, nullptr, 0);
  MigrationEngine engine(proc_, sys_, kernel_, {});
  MoveRequest r;
  r.pid = child;
  r.target_node = 0;
  auto result = engine.move(r);
  ASSERT_TRUE(result.stopped);
  EXPECT_EQ(result.stopped->errnum, ESRCH) << result.stopped->message();
}

TEST_F(EngineTest, PerPageFailuresAreCountedByReasonWithoutStopping) {
  Buffer buffer(8);
  buffer.touchAll();
  FakePageOps fake(1);
  auto base = reinterpret_cast<uint64_t>(buffer.data);
  fake.fail_with[base + 1 * kPage] = EBUSY;
  fake.fail_with[base + 2 * kPage] = EBUSY;
  fake.fail_with[base + 3 * kPage] = ENOMEM;
  fake.fail_with[base + 4 * kPage] = EACCES;
  MigrationEngine engine(proc_, sys_, fake, {});
  auto result = engine.move(request(buffer, 0));
  EXPECT_FALSE(result.stopped);
  EXPECT_EQ(result.pages_moved, 4u);
  EXPECT_EQ(result.bytes_moved, 4 * kPage);
  EXPECT_EQ(result.failed,
            (std::map<std::string, uint64_t>{{"EACCES", 1}, {"EBUSY", 2}, {"ENOMEM", 1}}));
  EXPECT_EQ(result.pages_on_target_after, 4u);
  auto stats = engine.stats();
  EXPECT_EQ((stats.pages_moved[{1, 0}]), 4u);
  EXPECT_EQ(stats.pages_failed["EBUSY"], 2u);
}

TEST_F(EngineTest, NeverFillsTheTargetPastItsHeadroom) {
  tier::test::TempTree tree;
  // The headroom is the default 64 MiB or this host's mover floor for node 0
  // (halfway from its low to its high watermark in the real /proc/zoneinfo),
  // whichever is larger; 6 MiB more than that is free, so 6 MiB may come.
  const uint64_t reserve_kib = std::max<uint64_t>(
      64 << 10,
      tier::readNodeWatermarks(proc_, 0).value_or(tier::NodeWatermarkBytes{}).moverFloor() >> 10);
  tree.file("devices/system/node/node0/meminfo",
            fmt::format("Node 0 MemTotal: {} kB\nNode 0 MemFree: {} kB\n", 4 * reserve_kib,
                        reserve_kib + (6 << 10)));
  auto sys = tier::FsRoot::open(tree.root());
  Buffer buffer(2048);  // 8 MiB
  buffer.touchAll();
  FakePageOps fake(1);
  EngineOptions options;
  options.batch_pages = 4096;  // one batch: the static meminfo is read once
  MigrationEngine engine(proc_, *sys, fake, options);
  auto result = engine.move(request(buffer, 0));
  EXPECT_EQ(result.pages_moved, 1536u);
  EXPECT_EQ(result.failed["target_full"], 512u);
  EXPECT_EQ(result.pages_on_target_after, 1536u);
}

TEST_F(EngineTest, PagesTheCallerFreedCountAsRoomWhileInPerCpuLists) {
  // Node 0's MemFree is at its mover floor (low + (high - low) / 2 = 250
  // pages), and its per-CPU lists hold `listed` free pages. A plan that just
  // demoted 512 pages from it may promote up to that many more, as far as the
  // lists hold them; without that credit, none.
  const auto moved = [&](uint64_t listed, uint64_t freed_pages) {
    tier::test::TempTree sys_tree, proc_tree;
    sys_tree.file("devices/system/node/node0/meminfo",
                  "Node 0 MemTotal: 1048576 kB\nNode 0 MemFree: 1000 kB\n");
    proc_tree.file("zoneinfo", fmt::format("Node 0, zone   Normal\n  pages free     250\n"
                                           "        min      100\n        low      200\n"
                                           "        high     300\n  pagesets\n    cpu: 0\n"
                                           "              count: {}\n",
                                           listed));
    Buffer buffer(512);
    buffer.touchAll();
    const Range mapped = buffer.range();
    proc_tree.file(fmt::format("{}/maps", getpid()),
                   fmt::format("{:x}-{:x} rw-p 00000000 00:00 0\n", mapped.start, mapped.end));
    auto sys = tier::FsRoot::open(sys_tree.root());
    auto proc = tier::FsRoot::open(proc_tree.root());
    FakePageOps fake(1);
    EngineOptions options;
    options.min_free_bytes = 0;
    options.min_free_fraction = 0;
    MigrationEngine engine(*proc, *sys, fake, options);
    MoveRequest r = request(buffer, 0);
    r.pages_known_present = true;
    r.read_back = false;
    r.freed_on_target_bytes = freed_pages * kPage;
    MoveResult result = engine.move(r);
    EXPECT_EQ(result.pages_moved + result.failed["target_full"], 512u);
    return result.pages_moved;
  };
  EXPECT_EQ(moved(1024, 0), 0u);
  EXPECT_EQ(moved(1024, 512), 512u);
  EXPECT_EQ(moved(100, 512), 100u);
  EXPECT_EQ(moved(1024, 300), 300u);
}

TEST_F(EngineTest, WithoutReadBackOnlyTheBatchesAreQueriedAndMovesStillCount) {
  Buffer buffer(64);
  buffer.touchAll();
  FakePageOps fake(1);
  MigrationEngine engine(proc_, sys_, fake, {});
  MoveRequest r = request(buffer, 0);
  r.read_back = false;
  auto result = engine.move(r);
  ASSERT_FALSE(result.stopped) << result.stopped->message();
  EXPECT_EQ(result.pages_moved, 64u);
  EXPECT_EQ(fake.pages_queried, 64u);  // once before the move, none after
  EXPECT_EQ(result.pages_on_target_after, 0u);
  EXPECT_EQ(result.pages_present_after, 0u);
  std::vector<int> status(64);
  std::vector<void*> pages;
  for (size_t i = 0; i < 64; ++i)
    pages.push_back(buffer.data + i * kPage);
  ASSERT_TRUE(fake.query(getpid(), pages, status));
  EXPECT_EQ(std::count(status.begin(), status.end(), 0), 64);
}

TEST_F(EngineTest, AFullTargetStopsTheMoveAtOnce) {
  tier::test::TempTree tree;
  tree.file("devices/system/node/node0/meminfo",
            "Node 0 MemTotal:        1048576 kB\nNode 0 MemFree:           32768 kB\n");
  auto sys = tier::FsRoot::open(tree.root());
  Buffer buffer(1024);
  buffer.touchAll();
  FakePageOps fake(1);
  MigrationEngine engine(proc_, *sys, fake, {});
  auto result = engine.move(request(buffer, 0));
  EXPECT_EQ(result.pages_moved, 0u);
  EXPECT_EQ(fake.move_calls, 0u);
  ASSERT_TRUE(result.stopped);
  EXPECT_EQ(result.stopped->errnum, ENOSPC);
  EXPECT_NE(result.stopped->message().find("node 0"), std::string::npos);
}

TEST_F(EngineTest, TheRateLimitIsALowerBoundOnTime) {
  Buffer buffer(2048);  // 8 MiB
  buffer.touchAll();
  FakePageOps fake(1);
  EngineOptions options;
  options.rate_bytes_per_second = 4.0 * (1 << 20);
  options.burst_bytes = 1.0 * (1 << 20);
  options.batch_pages = 256;  // 1 MiB: the burst is never below one batch
  MigrationEngine engine(proc_, sys_, fake, options);
  auto result = engine.move(request(buffer, 0));
  EXPECT_EQ(result.pages_moved, 2048u);
  EXPECT_GE(result.seconds, (8.0 - 1.0) / 4.0 - 0.05);
}

TEST_F(EngineTest, DryRunMovesNothing) {
  Buffer buffer(16);
  buffer.touchAll();
  FakePageOps fake(1);
  MigrationEngine engine(proc_, sys_, fake, {});
  auto r = request(buffer, 0);
  r.dry_run = true;
  auto result = engine.move(r);
  EXPECT_EQ(result.pages_moved, 16u);
  EXPECT_EQ(fake.move_calls, 0u);
}

TEST_F(EngineTest, PingPongIsCountedAndPolicyMovesBackOff) {
  Buffer buffer(4);
  buffer.touchAll();
  FakePageOps fake(1);
  MigrationEngine engine(proc_, sys_, fake, {});
  EXPECT_EQ(engine.move(request(buffer, 0)).pingpong_moves, 0u);
  EXPECT_EQ(engine.move(request(buffer, 1)).pingpong_moves, 4u);  // straight back
  auto policy = request(buffer, 0);
  policy.respect_backoff = true;
  auto held = engine.move(policy);
  EXPECT_EQ(held.pages_moved, 0u);
  EXPECT_EQ(held.failed["backoff"], 4u);
  EXPECT_EQ(engine.move(request(buffer, 0)).pages_moved, 4u);  // a person still may
}

TEST_F(EngineTest, CancellationStopsBetweenBatches) {
  Buffer buffer(2048);
  buffer.touchAll();
  FakePageOps fake(1);
  EngineOptions options;
  options.batch_pages = 64;
  MigrationEngine engine(proc_, sys_, fake, options);
  auto r = request(buffer, 0);
  int batches = 0;
  r.cancelled = [&] { return ++batches > 3; };
  auto result = engine.move(r);
  ASSERT_TRUE(result.stopped);
  EXPECT_EQ(result.stopped->errnum, ECANCELED);
  // Three batches went; each ends at a 2 MiB boundary (never inside a THP).
  EXPECT_GT(result.pages_moved, 0u);
  EXPECT_LT(result.pages_moved, 2048u);
  EXPECT_EQ(fake.move_calls, 3u);
}

}  // namespace
}  // namespace tierd::migrate
