// SoftDirtySampler on fixture /proc trees: a maps file and a binary pagemap
// written by the test, clear_refs as a plain file whose writes a WriteLog
// records. Time and CPU time come from fake clocks, so windows, rests and
// budgets are exact.
#include "sampling/softdirty/soft_dirty_sampler.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>

#include "os/pages.h"
#include "unit/temp_tree.h"

namespace tierd::sampling::softdirty {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr uint64_t kPresent = 1ULL << 63;
constexpr uint64_t kSwapped = 1ULL << 62;
constexpr uint64_t kDirty = 1ULL << 55;
constexpr int64_t kMs = 1'000'000;

const uint64_t P = tier::pageSize();

std::string hex(uint64_t value) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%08" PRIx64, value);
  return buf;
}

// One /proc/PID/maps line for pages [first, first + pages).
std::string mapsLine(uint64_t first_page, uint64_t pages, std::string_view perms,
                     std::string_view path = "", uint64_t inode = 0) {
  std::string line = hex(first_page * P) + "-" + hex((first_page + pages) * P) + " " +
                     std::string(perms) + " 00000000 00:00 " + std::to_string(inode);
  if (!path.empty()) line += "                          " + std::string(path);
  return line + "\n";
}

class ProcTree {
 public:
  void process(pid_t pid, const std::string& maps) const {
    tree.file(dir(pid) + "/maps", maps);
    tree.file(dir(pid) + "/clear_refs", "");
    tree.file(dir(pid) + "/pagemap", "");
  }
  // The pagemap entry of the page at page number `page` (address / page size).
  void entry(pid_t pid, uint64_t page, uint64_t value) const {
    std::string path = (tree.root() / dir(pid) / "pagemap").string();
    int fd = ::open(path.c_str(), O_WRONLY);
    ASSERT_GE(fd, 0) << path;
    ASSERT_EQ(::pwrite(fd, &value, sizeof(value), static_cast<off_t>(page * sizeof(value))),
              static_cast<ssize_t>(sizeof(value)));
    ::close(fd);
  }
  // `present` present pages from `first`, the first `dirty` of them soft-dirty.
  void pages(pid_t pid, uint64_t first, uint64_t present, uint64_t dirty) const {
    for (uint64_t i = 0; i < present; ++i)
      entry(pid, first + i, kPresent | (i < dirty ? kDirty : 0));
  }
  void remove(pid_t pid) const { std::filesystem::remove_all(tree.root() / dir(pid)); }
  std::string root() const { return tree.root().string(); }

  tier::test::TempTree tree;

 private:
  static std::string dir(pid_t pid) { return std::to_string(pid); }
};

// Wall time set by the test; CPU time advancing by `cpu_step_ns` at every
// reading, so each measured stretch of work costs exactly one step.
struct FakeClocks {
  int64_t now = 1'000 * kMs;
  int64_t cpu = 0;
  int64_t cpu_step_ns = 0;
  Clocks clocks() {
    return Clocks{[this] { return now; },
                  [this] {
                    cpu += cpu_step_ns;
                    return cpu;
                  }};
  }
};

struct Fixture {
  ProcTree proc;
  FakeClocks time;
  std::shared_ptr<tier::WriteLog> writes = std::make_shared<tier::WriteLog>();

  SoftDirtySampler sampler(SoftDirtyOptions options = {}) {
    auto root = tier::FsRoot::open(proc.root());
    auto writer = tier::FsWriter::open(proc.root());
    EXPECT_TRUE(root && writer);
    writer->setWriteLog(writes);
    return SoftDirtySampler(std::move(*root), std::move(*writer), options, time.clocks());
  }
  std::vector<std::string> clearedPids() const {
    std::vector<std::string> pids;
    for (const auto& w : writes->writes()) {
      EXPECT_EQ(w.value, "4");
      pids.push_back(w.path.substr(0, w.path.find('/')));
    }
    return pids;
  }
};

std::vector<uint64_t> addressesOf(const SampleBatch& batch, pid_t pid) {
  std::vector<uint64_t> out;
  for (const auto& s : batch.accesses)
    if (s.pid == pid) out.push_back(s.address);
  std::sort(out.begin(), out.end());
  return out;
}

TEST(SoftDirtyMappings, OnlyPrivateWritableOnesAreRead) {
  auto entry = [](std::string perms, std::string path) {
    return tier::MapsEntry{0x1000, 0x2000, std::move(perms), 0, 0, std::move(path)};
  };
  EXPECT_TRUE(isSampledMapping(entry("rw-p", "")));
  EXPECT_TRUE(isSampledMapping(entry("rw-p", "[heap]")));
  EXPECT_TRUE(isSampledMapping(entry("rw-p", "[stack]")));
  EXPECT_TRUE(isSampledMapping(entry("rw-p", "/usr/lib/libc.so.6")));  // .data, copied on write
  EXPECT_FALSE(isSampledMapping(entry("r--p", "/usr/lib/libc.so.6")));
  EXPECT_FALSE(isSampledMapping(entry("r-xp", "/usr/bin/cat")));
  EXPECT_FALSE(isSampledMapping(entry("rw-s", "/dev/shm/segment")));
  EXPECT_FALSE(isSampledMapping(entry("---p", "")));
  EXPECT_FALSE(isSampledMapping(entry("rw-p", "[vvar]")));
  EXPECT_FALSE(isSampledMapping(entry("--xp", "[vsyscall]")));
  EXPECT_FALSE(isSampledMapping(entry("rw", "")));
}

TEST(SoftDirtyErrors, ClearRefsFailuresAreExplained) {
  auto einval = explainClearRefsError(42, {EINVAL, "write '4' to /proc/42/clear_refs"});
  EXPECT_EQ(einval.errnum, EOPNOTSUPP);
  EXPECT_THAT(einval.message(), HasSubstr("kernel lacks soft-dirty"));
  EXPECT_THAT(einval.message(), HasSubstr("/proc/42/clear_refs"));

  auto gone = explainClearRefsError(42, {ENOENT, "write '4' to /proc/42/clear_refs"});
  EXPECT_EQ(gone.errnum, ESRCH);
  EXPECT_THAT(gone.message(), HasSubstr("pid 42 exited"));

  auto refused = explainClearRefsError(42, {EACCES, "write '4' to /proc/42/clear_refs"});
  EXPECT_EQ(refused.errnum, EACCES);
  EXPECT_THAT(refused.message(), HasSubstr("pid 42"));
}

// Exactly the present, soft-dirty pages of private writable mappings come out,
// at their addresses, for every pagemap chunk size.
TEST(SoftDirtySampler, DeliversExactlyDirtyPresentPages) {
  for (size_t chunk : {size_t{1}, size_t{3}, size_t{64 * 1024}}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    Fixture f;
    constexpr pid_t kPid = 100;
    constexpr uint64_t kStackPage = 0x7ffd0;  // a high address: a sparse pagemap offset
    f.proc.process(
        kPid, mapsLine(0x10, 8, "rw-p") + mapsLine(0x20, 2, "r-xp", "/usr/lib/libfoo.so", 1234) +
                  mapsLine(0x30, 2, "rw-p", "/usr/lib/libfoo.so", 1234) +
                  mapsLine(0x40, 1, "---p") + mapsLine(0x50, 2, "rw-s", "/dev/shm/segment", 77) +
                  mapsLine(kStackPage, 2, "rw-p", "[stack]"));
    f.proc.entry(kPid, 0x10, kPresent | kDirty);            // yes
    f.proc.entry(kPid, 0x11, kPresent);                     // clean
    f.proc.entry(kPid, 0x12, kDirty);                       // not present (new VMA)
    f.proc.entry(kPid, 0x13, kSwapped | kDirty);            // swapped out
    f.proc.entry(kPid, 0x14, kPresent | kDirty | 0x1234);   // yes, with its frame
    f.proc.entry(kPid, 0x17, kPresent | kDirty);            // yes, the mapping's last page
    f.proc.entry(kPid, 0x18, kPresent | kDirty);            // just past the mapping
    f.proc.entry(kPid, 0x20, kPresent | kDirty);            // read-only text
    f.proc.entry(kPid, 0x30, kPresent | kDirty);            // yes: private writable file data
    f.proc.entry(kPid, 0x50, kPresent | kDirty);            // shared
    f.proc.entry(kPid, kStackPage + 1, kPresent | kDirty);  // yes

    SoftDirtyOptions options;
    options.pagemap_chunk_entries = chunk;
    auto sampler = f.sampler(options);
    ASSERT_TRUE(sampler.setTargets({kPid}));
    ASSERT_TRUE(sampler.start());
    EXPECT_EQ(sampler.name(), "soft_dirty");

    SampleBatch batch;
    ASSERT_TRUE(sampler.poll(batch));
    EXPECT_TRUE(sampler.windowOpen());
    EXPECT_THAT(f.clearedPids(), ElementsAre("100"));
    EXPECT_TRUE(batch.empty());

    f.time.now += 249 * kMs;
    ASSERT_TRUE(sampler.poll(batch));
    EXPECT_TRUE(batch.empty()) << "read before the window ended";

    f.time.now += 1 * kMs;
    ASSERT_TRUE(sampler.poll(batch));
    EXPECT_FALSE(sampler.windowOpen());
    EXPECT_THAT(addressesOf(batch, kPid),
                ElementsAre(0x10 * P, 0x14 * P, 0x17 * P, 0x30 * P, (kStackPage + 1) * P));
    ASSERT_EQ(batch.accesses.size(), 5u);
    for (const auto& s : batch.accesses) {
      EXPECT_TRUE(s.write);
      EXPECT_EQ(s.weight, 1u);
      EXPECT_EQ(s.time_ns, static_cast<uint64_t>(f.time.now));
      EXPECT_EQ(s.physical, s.address == 0x14 * P ? 0x1234 * P : 0);
    }
    EXPECT_EQ(sampler.stats().samples, 5u);
    EXPECT_EQ(sampler.stats().lost, 0u);
    EXPECT_EQ(sampler.softDirtyStats().windows, 1u);
    EXPECT_TRUE(sampler.takeProblems().empty());
  }
}

// pagemap costs 8 bytes per page of address space: a mapping larger than
// max_mapping_bytes is skipped, and said so once.
TEST(SoftDirtySampler, MappingsLargerThanTheLimitAreSkippedAndNamedOnce) {
  Fixture f;
  f.proc.process(100, mapsLine(0x10, 16, "rw-p") + mapsLine(0x100, 17, "rw-p"));
  f.proc.pages(100, 0x10, 16, 16);
  f.proc.pages(100, 0x100, 17, 17);
  SoftDirtyOptions options;
  options.max_mapping_bytes = 16 * P;
  auto sampler = f.sampler(options);
  ASSERT_TRUE(sampler.setTargets({100}));
  ASSERT_TRUE(sampler.start());
  for (int window = 0; window < 2; ++window) {
    SampleBatch batch;
    f.time.now = sampler.nextPollAt();
    ASSERT_TRUE(sampler.poll(batch));
    f.time.now += 250 * kMs;
    ASSERT_TRUE(sampler.poll(batch));
    auto addresses = addressesOf(batch, 100);
    ASSERT_EQ(addresses.size(), 16u);
    EXPECT_EQ(addresses.back(), 0x1f * P);
  }
  EXPECT_EQ(sampler.softDirtyStats().skipped_mappings, 2u);
  EXPECT_EQ(sampler.stats().lost, 0u);
  auto problems = sampler.takeProblems();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_EQ(problems[0].errnum, EFBIG);
  EXPECT_THAT(problems[0].message(),
              HasSubstr("pid 100: mapping 0x" +
                        hex(0x100 * P).substr(hex(0x100 * P).find_first_not_of('0'))));
}

TEST(SoftDirtySampler, PollBeforeStartIsAnErrorAndNoTargetsOpenNothing) {
  Fixture f;
  auto sampler = f.sampler();
  SampleBatch batch;
  auto early = sampler.poll(batch);
  ASSERT_FALSE(early);
  EXPECT_THAT(early.error().message(), HasSubstr("not started"));

  auto bad = sampler.setTargets({0});
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().errnum, EINVAL);
  EXPECT_THAT(bad.error().message(), HasSubstr("pid 0"));

  ASSERT_TRUE(sampler.start());  // a fixture root is not /proc: no probe
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(sampler.poll(batch));
    f.time.now += 300 * kMs;
  }
  EXPECT_TRUE(f.writes->writes().empty());
  EXPECT_FALSE(sampler.windowOpen());
}

TEST(SoftDirtySampler, VanishedPidsAreDroppedCountedAndNamed) {
  Fixture f;
  for (pid_t pid : {100, 200, 300}) {
    f.proc.process(pid, mapsLine(0x10, 4, "rw-p"));
    f.proc.pages(pid, 0x10, 4, 2);
  }
  auto sampler = f.sampler();
  ASSERT_TRUE(sampler.setTargets({100, 200, 300, 400}));  // 400 never existed
  EXPECT_THAT(sampler.targets(), ElementsAre(100, 200, 300));
  EXPECT_EQ(sampler.softDirtyStats().vanished, 1u);
  ASSERT_TRUE(sampler.start());
  SampleBatch batch;
  ASSERT_TRUE(sampler.poll(batch));  // opens: all three cleared
  EXPECT_THAT(f.clearedPids(), ElementsAre("100", "200", "300"));

  f.proc.remove(200);       // exited and reaped
  f.proc.process(300, "");  // a zombie: no mappings
  f.time.now += 250 * kMs;
  ASSERT_TRUE(sampler.poll(batch));
  EXPECT_THAT(addressesOf(batch, 100), ElementsAre(0x10 * P, 0x11 * P));
  EXPECT_TRUE(addressesOf(batch, 200).empty());
  EXPECT_THAT(sampler.targets(), ElementsAre(100));
  EXPECT_EQ(sampler.softDirtyStats().vanished, 3u);
  EXPECT_EQ(sampler.stats().lost, 0u);
  auto problems = sampler.takeProblems();
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_EQ(problems[0].errnum, ESRCH);
  EXPECT_THAT(problems[0].message(), HasSubstr("pid 200 exited"));
  EXPECT_THAT(problems[1].message(), HasSubstr("pid 300 exited"));

  // Gone before the next opening: clear_refs is missing.
  f.writes->clear();
  f.proc.remove(100);
  f.time.now = sampler.nextPollAt();
  ASSERT_TRUE(sampler.poll(batch));
  EXPECT_THAT(f.clearedPids(), ElementsAre("100"));
  EXPECT_TRUE(sampler.targets().empty());
  EXPECT_FALSE(sampler.windowOpen());
  EXPECT_EQ(sampler.softDirtyStats().vanished, 4u);
  EXPECT_THAT(sampler.takeProblems(), ElementsAre(::testing::Field(&tier::Error::errnum, ESRCH)));
}

TEST(SoftDirtySampler, MalformedMapsLosesThatWindowOnly) {
  Fixture f;
  f.proc.process(100, "this is not a maps line\n");
  f.proc.process(200, mapsLine(0x10, 2, "rw-p"));
  f.proc.pages(200, 0x10, 2, 1);
  auto sampler = f.sampler();
  ASSERT_TRUE(sampler.setTargets({100, 200}));
  ASSERT_TRUE(sampler.start());
  SampleBatch batch;
  ASSERT_TRUE(sampler.poll(batch));
  f.time.now += 250 * kMs;
  ASSERT_TRUE(sampler.poll(batch));
  EXPECT_THAT(addressesOf(batch, 200), ElementsAre(0x10 * P));
  EXPECT_EQ(sampler.stats().lost, 1u);
  EXPECT_EQ(sampler.stats().malformed, 1u);
  EXPECT_THAT(sampler.targets(), ElementsAre(100, 200));  // kept: the next window may parse
  auto problems = sampler.takeProblems();
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_THAT(problems[0].message(), HasSubstr("pid 100"));
  EXPECT_THAT(problems[0].message(), HasSubstr("/proc/100/maps"));
}

// A pid added while a window is open was not cleared with the others: it is
// first read after the next opening.
TEST(SoftDirtySampler, NewTargetsJoinAtTheNextWindow) {
  Fixture f;
  for (pid_t pid : {100, 200}) {
    f.proc.process(pid, mapsLine(0x10, 2, "rw-p"));
    f.proc.pages(pid, 0x10, 2, 2);
  }
  auto sampler = f.sampler();
  ASSERT_TRUE(sampler.setTargets({100}));
  ASSERT_TRUE(sampler.start());
  SampleBatch batch;
  ASSERT_TRUE(sampler.poll(batch));
  ASSERT_TRUE(sampler.setTargets({100, 200, 100}));
  EXPECT_THAT(sampler.targets(), ElementsAre(100, 200));
  f.time.now += 250 * kMs;
  ASSERT_TRUE(sampler.poll(batch));
  EXPECT_EQ(addressesOf(batch, 100).size(), 2u);
  EXPECT_TRUE(addressesOf(batch, 200).empty());

  batch.clear();
  f.writes->clear();
  f.time.now = sampler.nextPollAt();
  ASSERT_TRUE(sampler.poll(batch));
  EXPECT_THAT(f.clearedPids(), ElementsAre("100", "200"));
  ASSERT_TRUE(sampler.setTargets({200}));  // 100 removed while open: not read
  f.time.now += 250 * kMs;
  ASSERT_TRUE(sampler.poll(batch));
  EXPECT_TRUE(addressesOf(batch, 100).empty());
  EXPECT_EQ(addressesOf(batch, 200).size(), 2u);
}

// Runs one window with `dirty` of 100 present pages soft-dirty and returns
// its length as seen through the clock: polled every millisecond, the first
// poll that reads it. The read adapts the window after it.
int64_t windowMs(Fixture& f, SoftDirtySampler& sampler, uint64_t dirty) {
  f.proc.pages(100, 0x100, 100, dirty);
  SampleBatch batch;
  f.time.now = sampler.nextPollAt();
  EXPECT_TRUE(sampler.poll(batch));
  EXPECT_TRUE(sampler.windowOpen());
  int64_t opened = f.time.now;
  while (batch.empty() && f.time.now - opened < 5'000 * kMs) {
    f.time.now += kMs;
    EXPECT_TRUE(sampler.poll(batch));
  }
  EXPECT_FALSE(sampler.windowOpen());
  EXPECT_EQ(addressesOf(batch, 100).size(), dirty + 3);  // plus the small stack, all dirty
  return (f.time.now - opened) / kMs;
}

TEST(SoftDirtySampler, SaturationShortensAndSparsenessLengthensTheWindow) {
  Fixture f;
  f.proc.process(100, mapsLine(0x100, 100, "rw-p") + mapsLine(0x300, 3, "rw-p", "[stack]"));
  f.proc.pages(100, 0x300, 3, 3);  // too small to vote, always saturated
  auto sampler = f.sampler();
  ASSERT_TRUE(sampler.setTargets({100}));
  ASSERT_TRUE(sampler.start());
  // 90 % dirty: halve, down to 50 ms.
  EXPECT_EQ(windowMs(f, sampler, 90), 250);
  EXPECT_EQ(windowMs(f, sampler, 90), 125);
  EXPECT_EQ(windowMs(f, sampler, 90), 63);  // 62.5
  EXPECT_EQ(windowMs(f, sampler, 90), 50);
  EXPECT_EQ(sampler.softDirtyStats().saturated_windows, 4u);
  // Between 5 % and 80 %: the window stays.
  EXPECT_EQ(windowMs(f, sampler, 50), 50);
  EXPECT_EQ(windowMs(f, sampler, 2), 50);
  // Under 5 %: x1.5, up to 1 s.
  EXPECT_EQ(windowMs(f, sampler, 2), 75);
  EXPECT_EQ(windowMs(f, sampler, 0), 113);  // 112.5
  EXPECT_EQ(windowMs(f, sampler, 0), 169);
  EXPECT_EQ(windowMs(f, sampler, 0), 254);
  EXPECT_EQ(windowMs(f, sampler, 0), 380);
  EXPECT_EQ(windowMs(f, sampler, 0), 570);
  EXPECT_EQ(windowMs(f, sampler, 0), 855);
  EXPECT_EQ(windowMs(f, sampler, 0), 1000);
  EXPECT_EQ(windowMs(f, sampler, 0), 1000);
  EXPECT_EQ(sampler.softDirtyStats().sparse_windows, 10u);
  EXPECT_EQ(sampler.softDirtyStats().saturated_windows, 4u);
}

TEST(SoftDirtySampler, OpenFractionCapsWindowsWhenCpuIsFree) {
  Fixture f;
  f.proc.process(100, mapsLine(0x10, 4, "rw-p"));
  auto sampler = f.sampler();
  ASSERT_TRUE(sampler.setTargets({100}));
  ASSERT_TRUE(sampler.start());
  SampleBatch batch;
  ASSERT_TRUE(sampler.poll(batch));
  f.time.now += 250 * kMs;
  ASSERT_TRUE(sampler.poll(batch));
  int64_t closed = f.time.now;
  // 25 % open at most: 750 ms of rest after a 250 ms window.
  EXPECT_EQ(sampler.nextPollAt() - closed, 750 * kMs);
  // A window read late (the caller polled after 400 ms) rests longer.
  f.time.now = sampler.nextPollAt();
  ASSERT_TRUE(sampler.poll(batch));
  f.time.now += 400 * kMs;
  ASSERT_TRUE(sampler.poll(batch));
  EXPECT_EQ(sampler.nextPollAt() - f.time.now, 1200 * kMs);
  EXPECT_EQ(sampler.softDirtyStats().late_windows, 1u);
}

TEST(SoftDirtySampler, CpuBudgetStretchesTheRestPeriod) {
  Fixture f;
  f.proc.process(100, mapsLine(0x10, 4, "rw-p"));
  f.time.cpu_step_ns = 20 * kMs;  // every measured stretch costs 20 ms of CPU
  auto sampler = f.sampler();     // budget 0.03 of a core
  ASSERT_TRUE(sampler.setTargets({100}));
  ASSERT_TRUE(sampler.start());
  SampleBatch batch;
  ASSERT_TRUE(sampler.poll(batch));
  f.time.now += 250 * kMs;
  ASSERT_TRUE(sampler.poll(batch));
  int64_t closed = f.time.now;
  double cost = sampler.softDirtyStats().last_cycle_cpu_seconds;
  EXPECT_GE(cost, 0.040 - 1e-9);  // clear_refs and the read, 20 ms each at least
  EXPECT_DOUBLE_EQ(cost, sampler.stats().cpu_seconds);
  // cost / (window + rest) = 0.03
  double rest = cost / 0.03 - 0.250;
  EXPECT_GT(rest, 0.750) << "the budget, not the open fraction, must bind here";
  EXPECT_NEAR(sampler.softDirtyStats().last_rest_seconds, rest, 1e-9);
  EXPECT_NEAR(static_cast<double>(sampler.nextPollAt() - closed) * 1e-9, rest, 1e-8);

  f.writes->clear();
  f.time.now = sampler.nextPollAt() - 1;
  ASSERT_TRUE(sampler.poll(batch));
  EXPECT_TRUE(f.writes->writes().empty()) << "opened before the rest was over";
  f.time.now += 1;
  ASSERT_TRUE(sampler.poll(batch));
  EXPECT_THAT(f.clearedPids(), ElementsAre("100"));

  // A generous budget: the open fraction binds again.
  sampler.setCpuBudget(0.5);
  f.time.now += 250 * kMs;
  ASSERT_TRUE(sampler.poll(batch));
  EXPECT_EQ(sampler.nextPollAt() - f.time.now, 750 * kMs);
}

// Over many cycles, polled every 10 ms: the sampler's CPU stays within the
// budget and windows are open at most a quarter of the time, while it still
// uses what it is given.
TEST(SoftDirtySampler, StaysWithinBudgetAndOpenFractionOverTime) {
  for (int64_t step_ms : {0, 5, 20, 60}) {
    SCOPED_TRACE("CPU per stretch " + std::to_string(step_ms) + " ms");
    Fixture f;
    f.proc.process(100, mapsLine(0x10, 100, "rw-p"));
    f.proc.pages(100, 0x10, 100, 30);
    f.time.cpu_step_ns = step_ms * kMs;
    auto sampler = f.sampler();
    ASSERT_TRUE(sampler.setTargets({100}));
    ASSERT_TRUE(sampler.start());
    int64_t begin = f.time.now;
    SampleBatch batch;
    for (int i = 0; i < 6000; ++i) {  // 60 s
      ASSERT_TRUE(sampler.poll(batch));
      f.time.now += 10 * kMs;
    }
    ASSERT_TRUE(sampler.stop());
    double elapsed = static_cast<double>(f.time.now - begin) * 1e-9;
    const auto& sd = sampler.softDirtyStats();
    double cycle = std::max(1.0, 2.0 * static_cast<double>(step_ms) * 1e-3 / 0.03);
    // One cycle of slack: the last window's cost is paid before its rest.
    EXPECT_LE(sampler.stats().cpu_seconds, 0.03 * (elapsed + cycle));
    EXPECT_LE(sd.open_seconds, 0.25 * elapsed + 0.25);
    // And it is not idle: at least 80 % of the windows the limits allow.
    double allowed = elapsed / cycle;
    EXPECT_GE(static_cast<double>(sd.windows), 0.8 * allowed - 1);
    EXPECT_EQ(sampler.stats().samples, sd.windows * 30);
  }
}

}  // namespace
}  // namespace tierd::sampling::softdirty
