// PerfSampler for real on this host, in software page-fault mode (no PMU is
// needed): the test touches fresh pages of a known buffer and checks that the
// sampled addresses are those pages. A hardware event must fail with a clear
// error instead.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "os/wakeup.h"
#include "sampling/perf/access_sampler.h"
#include "sampling/perf/events.h"
#include "sampling/perf/sampler.h"

namespace tierd::sampling::perf {
namespace {

using ::testing::HasSubstr;

size_t pageSize() {
  return static_cast<size_t>(::sysconf(_SC_PAGESIZE));
}

int paranoid() {
  std::ifstream in("/proc/sys/kernel/perf_event_paranoid");
  int value = 2;
  in >> value;
  return value;
}

// Fresh anonymous pages, never touched, in small pages only.
class Buffer {
 public:
  explicit Buffer(size_t pages) : length_(pages * pageSize()) {
    base_ = static_cast<char*>(
        ::mmap(nullptr, length_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    EXPECT_NE(base_, MAP_FAILED);
    ::madvise(base_, length_, MADV_NOHUGEPAGE);
  }
  ~Buffer() { ::munmap(base_, length_); }
  void touch(size_t first, size_t count) {
    for (size_t i = first; i < first + count; ++i) {
      static_cast<volatile char*>(base_)[i * pageSize()] = 1;
    }
  }
  bool contains(uint64_t address) const {
    auto start = reinterpret_cast<uint64_t>(base_);
    return address >= start && address < start + length_;
  }
  uint64_t pageOf(uint64_t address) const {
    return (address - reinterpret_cast<uint64_t>(base_)) / pageSize();
  }

 private:
  size_t length_;
  char* base_;
};

struct Inside {
  size_t samples = 0;
  std::set<uint64_t> pages;
};
Inside inside(const Buffer& buffer, const std::vector<AccessSample>& samples, pid_t pid) {
  Inside in;
  for (const auto& s : samples) {
    if (s.pid != pid || !buffer.contains(s.address)) continue;
    ++in.samples;
    in.pages.insert(buffer.pageOf(s.address));
  }
  return in;
}

class LiveSampler : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = tier::FsRoot::open("/sys");
    auto p = tier::FsRoot::open("/proc");
    ASSERT_TRUE(s && p);
    sys_.emplace(std::move(*s));
    proc_.emplace(std::move(*p));
    if (::geteuid() != 0 && paranoid() > 2) {
      GTEST_SKIP() << "perf_event_paranoid is " << paranoid() << " and the test is not root";
    }
  }

  // Opens, or skips the test when the kernel refuses perf to this process.
  std::optional<PerfSampler> openOrSkip(SamplerOptions options) {
    auto sampler = PerfSampler::open(std::move(options), *sys_, *proc_);
    if (!sampler && (sampler.error().errnum == EACCES || sampler.error().errnum == EPERM)) {
      skip_reason_ = sampler.error().message();
      return std::nullopt;
    }
    EXPECT_TRUE(sampler) << sampler.error().message();
    if (!sampler) return std::nullopt;
    return std::move(*sampler);
  }

  std::optional<tier::FsRoot> sys_, proc_;
  std::string skip_reason_;
};

TEST_F(LiveSampler, OwnPageFaultsLandInTheTouchedBuffer) {
  constexpr size_t kPages = 256;
  Buffer buffer(kPages);
  SamplerOptions options;
  options.events = {pageFaultEvent(1)};
  options.target = Target::process(0);
  options.ring_pages = 64;
  auto sampler = openOrSkip(options);
  if (!sampler) {
    GTEST_SKIP() << skip_reason_;
  }

  ASSERT_TRUE(sampler->start());
  buffer.touch(0, kPages);
  ASSERT_TRUE(sampler->stop());
  std::vector<AccessSample> out;
  std::vector<uint32_t> event_of;
  auto n = sampler->poll(out, &event_of);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, out.size());
  EXPECT_EQ(event_of.size(), out.size());

  Inside in = inside(buffer, out, ::getpid());
  EXPECT_GE(in.pages.size(), kPages * 95 / 100) << "of " << out.size() << " samples";
  EXPECT_LE(in.samples, kPages + kPages / 10);
  EXPECT_GE(in.samples * 2, out.size()) << "most sampled addresses are the buffer's";
  for (const auto& s : out) {
    if (!buffer.contains(s.address)) continue;
    EXPECT_EQ(s.tid, static_cast<pid_t>(::gettid()));
    EXPECT_GE(s.cpu, 0);
    EXPECT_GT(s.time_ns, 0u);
    EXPECT_FALSE(s.write);  // a software event says nothing about the access kind
  }
  SamplerStats stats = sampler->stats();
  EXPECT_EQ(stats.samples, out.size());
  EXPECT_EQ(stats.lost, 0u);
  EXPECT_EQ(stats.malformed, 0u);
  EXPECT_GE(stats.cpu_seconds, 0.0);
  auto status = sampler->status();
  ASSERT_EQ(status.size(), 1u);
  EXPECT_GE(status[0].rings, 1u);
  EXPECT_EQ(status[0].period, 1u);
}

TEST_F(LiveSampler, ChildProcessIsSampledByPid) {
  constexpr size_t kPages = 200;
  Buffer buffer(kPages);  // mapped before fork: the child sees it at the same address
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c;
    ::close(go[1]);
    if (::read(go[0], &c, 1) != 1) ::_exit(2);
    buffer.touch(0, kPages);
    ::_exit(0);
  }
  ::close(go[0]);

  SamplerOptions options;
  options.events = {pageFaultEvent(1)};
  options.target = Target::process(child);
  options.ring_pages = 64;
  auto sampler = openOrSkip(options);
  if (sampler) {
    EXPECT_TRUE(sampler->start());
  }
  EXPECT_EQ(::write(go[1], "g", 1), 1);
  ::close(go[1]);
  int status = 0;
  ASSERT_EQ(::waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  if (!sampler) {
    GTEST_SKIP() << skip_reason_;
  }

  std::vector<AccessSample> out;
  ASSERT_TRUE(sampler->poll(out));
  Inside in = inside(buffer, out, child);
  EXPECT_GE(in.pages.size(), kPages * 95 / 100) << "of " << out.size() << " samples";
  EXPECT_EQ(inside(buffer, out, ::getpid()).samples, 0u);  // the parent never touched them
}

TEST_F(LiveSampler, SystemWideSeesThisProcess) {
  constexpr size_t kPages = 256;
  Buffer buffer(kPages);
  SamplerOptions options;
  options.events = {pageFaultEvent(1)};
  options.target = Target::system();
  options.ring_pages = 256;
  auto sampler = openOrSkip(options);
  if (!sampler) {
    GTEST_SKIP() << skip_reason_;
  }
  ASSERT_TRUE(sampler->start());
  buffer.touch(0, kPages);
  ASSERT_TRUE(sampler->stop());
  std::vector<AccessSample> out;
  ASSERT_TRUE(sampler->poll(out));
  Inside in = inside(buffer, out, ::getpid());
  if (sampler->stats().lost > 0) {
    EXPECT_GT(in.pages.size(), 0u);  // a busy host filled the rings
  } else {
    EXPECT_GE(in.pages.size(), kPages * 95 / 100);
  }
  EXPECT_EQ(sampler->status()[0].rings, sampler->status()[0].fds);  // one per CPU
}

TEST_F(LiveSampler, ASystemWideAccessSamplerKeepsItsTargetsSamplesPollAfterPoll) {
  // The hardware samplers' path (one event per CPU, samples of other
  // processes filtered out), with software page faults: each poll brings
  // this process's new pages, however many the poll before brought.
  AccessSamplerOptions options;
  options.cpu_budget = 1.0;  // the period stays 1: every fault is a sample
  auto sampler =
      PerfAccessSampler::openSystemWide({pageFaultEvent(1)}, *sys_, *proc_, options, "system");
  if (!sampler && (sampler.error().errnum == EACCES || sampler.error().errnum == EPERM))
    GTEST_SKIP() << sampler.error().message();
  ASSERT_TRUE(sampler) << sampler.error().message();
  EXPECT_EQ((*sampler)->name(), "system");
  ASSERT_TRUE((*sampler)->setTargets({::getpid()}));
  ASSERT_TRUE((*sampler)->start());
  Buffer first(200), second(40);
  SampleBatch batch;
  first.touch(0, 200);
  ASSERT_TRUE((*sampler)->poll(batch));
  const Inside got_first = inside(first, batch.accesses, ::getpid());
  SampleBatch next;
  second.touch(0, 40);
  ASSERT_TRUE((*sampler)->poll(next));
  const Inside got_second = inside(second, next.accesses, ::getpid());
  ASSERT_TRUE((*sampler)->stop());
  if ((*sampler)->stats().lost > 0) GTEST_SKIP() << "a busy host filled the rings";
  EXPECT_GE(got_first.pages.size(), 190u);
  EXPECT_GE(got_second.pages.size(), 38u);
  for (const SampleBatch* b : {&batch, &next})
    for (const AccessSample& s : b->accesses) {
      EXPECT_EQ(s.pid, ::getpid());
      EXPECT_EQ(s.weight, 1u);
    }
}

TEST_F(LiveSampler, BudgetRaisesThePeriodThroughTheKernel) {
  Buffer buffer(2048 + 4096);
  SamplerOptions options;
  options.events = {pageFaultEvent(1)};
  options.target = Target::process(0);
  options.ring_pages = 64;
  options.max_samples_per_second = 100;
  auto sampler = openOrSkip(options);
  if (!sampler) {
    GTEST_SKIP() << skip_reason_;
  }
  ASSERT_TRUE(sampler->start());

  buffer.touch(0, 2048);  // thousands of faults per second against a budget of 100
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<AccessSample> out;
  ASSERT_TRUE(sampler->poll(out));
  const uint64_t period = sampler->status()[0].period;
  EXPECT_EQ(period, 8u) << "rate " << sampler->status()[0].rate;  // at most 8x per step

  out.clear();
  buffer.touch(2048, 4096);
  ASSERT_TRUE(sampler->stop());
  ASSERT_TRUE(sampler->poll(out));
  Inside in = inside(buffer, out, ::getpid());
  const double expected = 4096.0 / static_cast<double>(period);
  EXPECT_GE(static_cast<double>(in.samples), expected * 0.5) << in.samples;
  EXPECT_LE(static_cast<double>(in.samples), expected * 1.5) << in.samples;
}

TEST_F(LiveSampler, SmallRingOverflowsIntoLostRecords) {
  constexpr size_t kPages = 2048;
  Buffer buffer(kPages);
  SamplerOptions options;
  options.events = {pageFaultEvent(1)};
  options.target = Target::process(0);
  options.ring_pages = 1;  // room for about 70 samples
  auto sampler = openOrSkip(options);
  if (!sampler) {
    GTEST_SKIP() << skip_reason_;
  }
  ASSERT_TRUE(sampler->start());
  buffer.touch(0, kPages - 16);
  std::vector<AccessSample> out;
  ASSERT_TRUE(sampler->poll(out));  // makes room: the kernel reports what it dropped
  buffer.touch(kPages - 16, 16);    // in a LOST record before its next sample
  ASSERT_TRUE(sampler->stop());
  ASSERT_TRUE(sampler->poll(out));
  EXPECT_EQ(sampler->lastFill(), 1.0) << "a ring that lost records was full";
  SamplerStats stats = sampler->stats();
  EXPECT_GT(stats.lost, 0u);
  EXPECT_LT(out.size(), kPages);
  EXPECT_GE(static_cast<double>(inside(buffer, out, ::getpid()).samples + stats.lost),
            0.9 * kPages);
  EXPECT_EQ(stats.malformed, 0u);
}

// The policy loop polls less often while rings come back nearly empty: the
// fill a poll reports is the share of the ring it consumed, 1 when records
// were lost, near 0 when nothing came.
TEST_F(LiveSampler, LastFillIsTheShareOfTheRingAPollConsumed) {
  constexpr size_t kPages = 1024;
  Buffer buffer(kPages * 2);
  SamplerOptions options;
  options.events = {pageFaultEvent(1)};
  options.target = Target::process(0);
  options.ring_pages = 128;  // 512 KiB: about 9000 records
  auto sampler = openOrSkip(options);
  if (!sampler) {
    GTEST_SKIP() << skip_reason_;
  }
  std::vector<AccessSample> out;
  out.reserve(4 * kPages);  // growing it would fault pages of its own into the ring
  ASSERT_TRUE(sampler->start());
  buffer.touch(0, kPages);
  ASSERT_TRUE(sampler->poll(out));
  const double one = sampler->lastFill();
  const size_t first_samples = out.size();
  EXPECT_GT(one, 0.0);
  EXPECT_LT(one, 0.5);
  ASSERT_TRUE(sampler->poll(out));
  // Only this process's own stray faults (a sanitizer's bookkeeping, say) came since.
  EXPECT_LT(sampler->lastFill(), one / 4);
  buffer.touch(kPages, kPages);
  ASSERT_TRUE(sampler->stop());
  const size_t before = out.size();
  ASSERT_TRUE(sampler->poll(out));
  // About as many faults as the first time: about the same share.
  EXPECT_GT(sampler->lastFill(), one * 0.5) << out.size() - before << " samples, then " << first_samples;
  EXPECT_LT(sampler->lastFill(), one * 2);
}

// The policy loop sleeps on the rings' descriptors: one turns readable once
// its ring is a quarter full, not before.
TEST_F(LiveSampler, ARingAQuarterFullWakesItsReader) {
  constexpr size_t kPages = 2048;
  Buffer buffer(kPages);
  SamplerOptions options;
  options.events = {pageFaultEvent(1)};
  options.target = Target::process(0);
  options.ring_pages = 16;  // 64 KiB: a quarter is a few hundred records
  auto sampler = openOrSkip(options);
  if (!sampler) {
    GTEST_SKIP() << skip_reason_;
  }
  auto wakeup = tier::Wakeup::create();
  ASSERT_TRUE(wakeup);
  ASSERT_TRUE(sampler->start());
  const std::vector<int> fds = sampler->ringFds();
  ASSERT_FALSE(fds.empty());
  EXPECT_EQ(wakeup->wait(fds, std::chrono::milliseconds(50)), tier::Wakeup::Why::kTimeout);
  buffer.touch(0, 16);  // a few records: far below the watermark
  EXPECT_EQ(wakeup->wait(fds, std::chrono::milliseconds(50)), tier::Wakeup::Why::kTimeout);
  buffer.touch(16, kPages - 16);
  EXPECT_EQ(wakeup->wait(fds, std::chrono::seconds(10)), tier::Wakeup::Why::kReady);
  ASSERT_TRUE(sampler->stop());
}

TEST_F(LiveSampler, CgroupTargetSamplesItsMembers) {
  const std::filesystem::path root = "/sys/fs/cgroup/unified";
  const std::filesystem::path v2 =
      std::filesystem::exists("/sys/fs/cgroup/cgroup.controllers") ? "/sys/fs/cgroup" : root;
  if (!std::filesystem::exists(v2 / "cgroup.procs")) {
    GTEST_SKIP() << "no cgroup v2 mount";
  }
  const auto dir = v2 / ("tierd-perf-test-" + std::to_string(::getpid()));
  std::error_code ec;
  if (!std::filesystem::create_directory(dir, ec)) {
    GTEST_SKIP() << "cannot create a cgroup: " << ec.message();
  }
  constexpr size_t kPages = 128;
  Buffer buffer(kPages);
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char c;
    ::close(go[1]);
    if (::read(go[0], &c, 1) != 1) ::_exit(2);
    buffer.touch(0, kPages);
    ::_exit(0);
  }
  ::close(go[0]);
  bool moved = static_cast<bool>(std::ofstream(dir / "cgroup.procs") << child << std::endl);

  std::optional<PerfSampler> sampler;
  std::string why;
  if (moved) {
    SamplerOptions options;
    options.events = {pageFaultEvent(1)};
    options.target = Target::cgroup(dir.string());
    options.ring_pages = 64;
    auto opened = PerfSampler::open(options, *sys_, *proc_);
    if (opened) {
      sampler.emplace(std::move(*opened));
      EXPECT_TRUE(sampler->start());
    } else {
      why = opened.error().message();
    }
  }
  EXPECT_EQ(::write(go[1], "g", 1), 1);
  ::close(go[1]);
  int status = 0;
  ::waitpid(child, &status, 0);
  std::vector<AccessSample> out;
  if (sampler) {
    EXPECT_TRUE(sampler->poll(out));
  }
  sampler.reset();
  std::filesystem::remove(dir, ec);
  if (!moved) {
    GTEST_SKIP() << "cannot move a process into " << dir;
  }
  if (!why.empty()) {
    GTEST_SKIP() << "cgroup events unavailable: " << why;
  }
  Inside in = inside(buffer, out, child);
  EXPECT_GE(in.pages.size(), kPages * 95 / 100) << "of " << out.size() << " samples";
  EXPECT_EQ(inside(buffer, out, ::getpid()).samples, 0u);
}

EventSpec hardwareLoadLatency() {
  EventSpec spec;
  spec.name = "MEM_TRANS_RETIRED.LOAD_LATENCY ldlat=64";
  spec.pmu = "cpu";
  spec.type = PERF_TYPE_RAW;
  spec.config = 0x1cd;
  spec.config1 = 64;
  spec.precise_ip = 2;
  spec.sample_type = PERF_SAMPLE_IP | PERF_SAMPLE_TID | PERF_SAMPLE_ADDR | PERF_SAMPLE_WEIGHT |
                     PERF_SAMPLE_DATA_SRC;
  spec.sample_period = 10007;
  spec.min_period = 1000;
  return spec;
}

TEST_F(LiveSampler, HardwareEventFailsWithAClearError) {
  SamplerOptions options;
  options.events = {hardwareLoadLatency()};
  options.target = Target::process(0);
  auto sampler = PerfSampler::open(options, *sys_, *proc_);
  if (sampler) {
    GTEST_SKIP() << "this host has a PMU that accepts " << options.events[0].name;
  }
  const tier::Error& error = sampler.error();
  EXPECT_NE(error.errnum, 0);
  EXPECT_THAT(error.context, HasSubstr("perf_event_open MEM_TRANS_RETIRED.LOAD_LATENCY ldlat=64"));
  EXPECT_THAT(error.message(), HasSubstr(std::strerror(error.errnum)));
  if (error.errnum == ENOENT) {
    EXPECT_THAT(error.context, HasSubstr("no such PMU or event"));
  }

  EventSpec ibs = hardwareLoadLatency();  // a dynamic PMU type nobody registered
  ibs.name = "ibs_op (cnt_ctl=1)";
  ibs.pmu = "ibs_op";
  ibs.type = 0x7ffffff0;
  ibs.precise_ip = 0;
  ibs.exclude_kernel = false;
  options.events = {ibs};
  options.target = Target::system();
  auto ibs_sampler = PerfSampler::open(options, *sys_, *proc_);
  ASSERT_FALSE(ibs_sampler);
  EXPECT_THAT(ibs_sampler.error().context, HasSubstr("perf_event_open ibs_op (cnt_ctl=1)"));
}

TEST_F(LiveSampler, FailedEventsCanBeSkipped) {
  constexpr size_t kPages = 64;
  Buffer buffer(kPages);
  SamplerOptions options;
  options.events = {hardwareLoadLatency(), pageFaultEvent(1)};
  options.target = Target::process(0);
  options.skip_failed_events = true;
  auto sampler = openOrSkip(options);
  if (!sampler) {
    GTEST_SKIP() << skip_reason_;
  }
  if (sampler->events().size() == 2) {
    GTEST_SKIP() << "this host has a PMU";
  }
  ASSERT_EQ(sampler->events().size(), 1u);
  EXPECT_EQ(sampler->events()[0].kind, EventKind::kPageFault);
  ASSERT_EQ(sampler->skipped().size(), 1u);
  EXPECT_THAT(sampler->skipped()[0].context, HasSubstr("MEM_TRANS_RETIRED.LOAD_LATENCY"));
  ASSERT_TRUE(sampler->start());
  buffer.touch(0, kPages);
  ASSERT_TRUE(sampler->stop());
  std::vector<AccessSample> out;
  std::vector<uint32_t> event_of;
  ASSERT_TRUE(sampler->poll(out, &event_of));
  EXPECT_GE(inside(buffer, out, ::getpid()).pages.size(), kPages * 95 / 100);
  for (uint32_t e : event_of)
    EXPECT_EQ(e, 0u);
}

TEST_F(LiveSampler, BadOptionsAndMissingTargets) {
  SamplerOptions options;
  options.target = Target::process(0);
  EXPECT_EQ(PerfSampler::open(options, *sys_, *proc_).error().errnum, EINVAL);  // no events
  options.events = {pageFaultEvent(1)};
  options.ring_pages = 3;
  EXPECT_EQ(PerfSampler::open(options, *sys_, *proc_).error().errnum, EINVAL);
  options.ring_pages = 4;
  options.target = Target::process(0x3ffffff0);
  auto gone = PerfSampler::open(options, *sys_, *proc_);
  ASSERT_FALSE(gone);
  EXPECT_EQ(gone.error().errnum, ESRCH);
  options.target = Target::cgroup("/nonexistent/cgroup");
  EXPECT_EQ(PerfSampler::open(options, *sys_, *proc_).error().errnum, ENOENT);
}

// Hint faults see a page once per scanner pass, tens of seconds apart late in
// a run: their heat must not decay faster than that, whatever the
// configuration says; hardware samplers see pages continuously and keep it.
TEST_F(LiveSampler, HintFaultHeatOutlivesTheScannersPasses) {
  if (!skip_reason_.empty()) GTEST_SKIP() << skip_reason_;
  if (!proc_->exists("sys/kernel/numa_balancing")) GTEST_SKIP() << "no NUMA balancing here";
  auto sampler = PerfAccessSampler::openHintFaults(*sys_, *proc_, ScanningHooks{});
  ASSERT_TRUE(sampler) << sampler.error().message();
  const Sampler::HalfLives floor = (*sampler)->minimumHalfLives();
  EXPECT_GE(floor.fast_s, 30.0);
  EXPECT_GE(floor.slow_s, 60.0);  // the scanner's default longest period
  EXPECT_LE(floor.fast_s, floor.slow_s);
}

}  // namespace
}  // namespace tierd::sampling::perf
