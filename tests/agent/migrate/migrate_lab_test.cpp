// Runs inside the lab guest (far or pmem preset): real pages on a real far
// node, moved by the engine with move_pages and read back from the kernel.
// The bytes are checked, also while another thread keeps writing.
#include <gtest/gtest.h>
#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "../../support/far_node.h"
#include "migrate/engine.h"

namespace tierd::migrate {
namespace {

constexpr size_t kPage = 4096;

using tier::test::farNode;

struct FarBuffer {
  FarBuffer(size_t bytes, int node) : size(bytes) {
    data = static_cast<uint64_t*>(
        mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    unsigned long mask = 1UL << node;
    mbind(data, size, MPOL_BIND, &mask, sizeof(mask) * 8, 0);
    for (size_t i = 0; i < size / sizeof(uint64_t); ++i)
      data[i] = pattern(i);
    // Placement policy no longer needed: let the pages move freely.
    mbind(data, size, MPOL_DEFAULT, nullptr, 0, 0);
  }
  ~FarBuffer() { munmap(data, size); }
  static uint64_t pattern(size_t i) { return i * 0x9e3779b97f4a7c15ULL + 17; }
  Range range() const {
    auto start = reinterpret_cast<uint64_t>(data);
    return {start, start + size};
  }
  size_t countOn(int node) const {
    std::vector<void*> pages;
    for (size_t off = 0; off < size; off += kPage)
      pages.push_back(reinterpret_cast<char*>(data) + off);
    std::vector<int> status(pages.size());
    move_pages(0, pages.size(), pages.data(), nullptr, status.data(), 0);
    return static_cast<size_t>(std::count(status.begin(), status.end(), node));
  }
  uint64_t* data;
  size_t size;
};

class MigrateLab : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(numa_available(), 0);
    far_ = farNode();
    ASSERT_GE(far_, 0) << "no CPU-less node: run in the lab (far or pmem preset)";
  }
  int far_ = -1;
  tier::FsRoot proc_ = *tier::FsRoot::open("/proc");
  tier::FsRoot sys_ = *tier::FsRoot::open("/sys");
  KernelPageOps kernel_;
};

TEST_F(MigrateLab, MovesEveryPageFromFarToDramWithBytesIntact) {
  FarBuffer buffer(32 << 20, far_);
  ASSERT_EQ(buffer.countOn(far_), buffer.size / kPage);
  MigrationEngine engine(proc_, sys_, kernel_, {});
  MoveRequest request{.pid = getpid(), .ranges = {buffer.range()}, .target_node = 0};
  auto result = engine.move(request);
  ASSERT_FALSE(result.stopped) << result.stopped->message();
  EXPECT_GE(result.pages_on_target_after * 100, result.pages_requested * 99);
  EXPECT_GE(buffer.countOn(0) * 100, buffer.size / kPage * 99);
  for (size_t i = 0; i < buffer.size / sizeof(uint64_t); ++i)
    ASSERT_EQ(buffer.data[i], FarBuffer::pattern(i)) << "word " << i;
}

TEST_F(MigrateLab, NoWriteIsLostWhileTheOwnerKeepsWriting) {
  FarBuffer buffer(16 << 20, far_);
  size_t words = buffer.size / sizeof(uint64_t);
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> rounds{0};
  // The writer bumps one word per page, round after round.
  std::thread writer([&] {
    while (!stop.load()) {
      for (size_t w = 0; w < words; w += kPage / sizeof(uint64_t))
        buffer.data[w] += 1;
      rounds.fetch_add(1);
    }
  });
  while (rounds.load() < 2)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  MigrationEngine engine(proc_, sys_, kernel_, {});
  auto result = engine.move({.pid = getpid(), .ranges = {buffer.range()}, .target_node = 0});
  stop = true;
  writer.join();
  ASSERT_FALSE(result.stopped) << result.stopped->message();
  uint64_t total_rounds = rounds.load();
  for (size_t w = 0; w < words; ++w) {
    bool bumped = w % (kPage / sizeof(uint64_t)) == 0;
    if (!bumped) {
      ASSERT_EQ(buffer.data[w], FarBuffer::pattern(w)) << "word " << w;
      continue;
    }
    // Each round adds one to every bumped word; the last round may be partial.
    uint64_t added = buffer.data[w] - FarBuffer::pattern(w);
    ASSERT_TRUE(added == total_rounds || added == total_rounds + 1)
        << "word " << w << " added " << added << " rounds " << total_rounds;
  }
  EXPECT_GE(buffer.countOn(0) * 100, buffer.size / kPage * 99);
}

TEST_F(MigrateLab, RateLimitHoldsOnRealMoves) {
  FarBuffer buffer(32 << 20, far_);
  EngineOptions options;
  options.rate_bytes_per_second = 16.0 * (1 << 20);
  options.burst_bytes = 1.0 * (1 << 20);
  options.batch_pages = 256;  // 1 MiB: the burst is never below one batch
  MigrationEngine engine(proc_, sys_, kernel_, options);
  auto result = engine.move({.pid = getpid(), .ranges = {buffer.range()}, .target_node = 0});
  ASSERT_FALSE(result.stopped) << result.stopped->message();
  EXPECT_GE(result.seconds, (32.0 - 1.0) / 16.0);
  double rate = static_cast<double>(result.bytes_moved) / result.seconds / (1 << 20);
  EXPECT_NEAR(rate, 16.0, 1.6) << "MiB/s";
}

TEST_F(MigrateLab, TransparentHugePagesMoveWholeAndCountAsTwoMegabyteUnits) {
  constexpr size_t kHuge = 2 << 20, kSize = 8 << 20;
  char* raw = static_cast<char*>(
      mmap(nullptr, kSize + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  char* data =
      reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(raw) + kHuge - 1) & ~(kHuge - 1));
  ASSERT_EQ(madvise(data, kSize, MADV_HUGEPAGE), 0);
  unsigned long mask = 1UL << far_;
  mbind(data, kSize, MPOL_BIND, &mask, sizeof(mask) * 8, 0);
  for (size_t i = 0; i < kSize; ++i)
    data[i] = static_cast<char>(i * 7);
  mbind(data, kSize, MPOL_DEFAULT, nullptr, 0, 0);
  MigrationEngine engine(proc_, sys_, kernel_, {});
  auto start = reinterpret_cast<uint64_t>(data);
  auto result =
      engine.move({.pid = getpid(), .ranges = {{start, start + kSize}}, .target_node = 0});
  ASSERT_FALSE(result.stopped) << result.stopped->message();
  ASSERT_TRUE(result.thp_visible) << "the lab runs as root: frame numbers must be readable";
  EXPECT_EQ(result.thp_moved, kSize / kHuge);
  EXPECT_EQ(result.pages_moved, kSize / kPage);
  EXPECT_EQ(result.bytes_moved, kSize);
  EXPECT_TRUE(result.failed.empty()) << result.failed.begin()->first;
  EXPECT_EQ(result.pages_on_target_after, kSize / kPage);
  for (size_t i = 0; i < kSize; ++i)
    ASSERT_EQ(data[i], static_cast<char>(i * 7)) << i;
  munmap(raw, kSize + kHuge);
}

}  // namespace
}  // namespace tierd::migrate
