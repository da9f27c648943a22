// SoftDirtySampler on this kernel's /proc (run as root; also inside the lab
// guest as lab.softdirty). A child writes a known subset of its pages in each
// window and only reads the others; the sampler must report exactly the
// written ones. Skipped, with the probe's reason, where the kernel keeps no
// soft-dirty bits; the probe itself is checked against the kernel's config.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "os/pages.h"
#include "sampling/softdirty/soft_dirty_sampler.h"

namespace tierd::sampling::softdirty {
namespace {

using ::testing::HasSubstr;

constexpr int64_t kMs = 1'000'000;

// The running kernel's config text, from /proc/config.gz or /boot.
std::optional<std::string> kernelConfig() {
  std::string text;
  if (FILE* pipe = ::popen("gzip -dc /proc/config.gz 2>/dev/null", "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof(buf), pipe)) > 0)
      text.append(buf, n);
    ::pclose(pipe);
  }
  if (!text.empty()) return text;
  utsname name{};
  if (::uname(&name) != 0) return std::nullopt;
  std::vector<std::string> places{std::string("/boot/config-") + name.release};
  // In the lab guest (which sees the host's filesystem) the kernel package is
  // unpacked in the lab's cache.
  if (std::getenv("LAB_PRESET")) {
    const char* cache = std::getenv("TIERD_LAB_CACHE");
    places.push_back(std::string(cache ? cache : "/var/cache/tierd-lab") + "/linux/boot/config-" +
                     name.release);
  }
  for (const auto& place : places) {
    std::ifstream file(place);
    if (!file) continue;
    std::stringstream all;
    all << file.rdbuf();
    return all.str();
  }
  return std::nullopt;
}

tier::Result<void> probeLive() {
  auto proc = tier::FsRoot::open("/proc");
  auto writer = tier::FsWriter::open("/proc");
  if (!proc) return std::unexpected(proc.error());
  if (!writer) return std::unexpected(writer.error());
  return probeSoftDirty(*proc, *writer);
}

TEST(SoftDirtyLive, ProbeAgreesWithTheKernelConfig) {
  auto config = kernelConfig();
  if (!config) GTEST_SKIP() << "the kernel's config is not readable (/proc/config.gz, /boot)";
  bool configured = config->find("\nCONFIG_MEM_SOFT_DIRTY=y") != std::string::npos;
  auto probed = probeLive();
  if (configured) {
    EXPECT_TRUE(probed) << probed.error().message();
  } else {
    ASSERT_FALSE(probed) << "the probe saw soft-dirty bits on a kernel without "
                            "CONFIG_MEM_SOFT_DIRTY";
    EXPECT_EQ(probed.error().errnum, EOPNOTSUPP);
    EXPECT_THAT(probed.error().message(), HasSubstr("kernel lacks soft-dirty"));
  }
}

// A child with `pages` private pages (no THP: a huge page would be dirty as a
// whole), all written once. On command it writes the pages with
// index % 4 == round % 4 and reads every other one (kAll: writes them all,
// kIdle: touches nothing), and answers with the time its loop took.
class WriterChild {
 public:
  static constexpr unsigned char kAll = 0xff, kIdle = 0xfe;
  explicit WriterChild(size_t pages) : pages_(pages) {
    int to_child[2], to_parent[2];
    if (::pipe(to_child) != 0 || ::pipe(to_parent) != 0) return;
    const size_t page = tier::pageSize();
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(to_child[1]);
      ::close(to_parent[0]);
      void* mapped =
          ::mmap(nullptr, pages * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
      if (mapped == MAP_FAILED) ::_exit(1);
      ::madvise(mapped, pages * page, MADV_NOHUGEPAGE);
      auto* bytes = static_cast<volatile char*>(mapped);
      for (size_t i = 0; i < pages; ++i)
        bytes[i * page] = 1;
      uint64_t address = reinterpret_cast<uint64_t>(mapped);
      if (::write(to_parent[1], &address, sizeof(address)) != sizeof(address)) ::_exit(1);
      unsigned char round;
      while (::read(to_child[0], &round, 1) == 1) {
        timespec begin{}, end{};
        ::clock_gettime(CLOCK_MONOTONIC, &begin);
        int sum = 0;
        for (size_t i = 0; i < pages && round != kIdle; ++i) {
          if (round == kAll || i % 4 == round % 4)
            bytes[i * page] = static_cast<char>(round);
          else
            sum += bytes[i * page];
        }
        ::clock_gettime(CLOCK_MONOTONIC, &end);
        uint64_t took = static_cast<uint64_t>((end.tv_sec - begin.tv_sec) * 1'000'000'000 +
                                              (end.tv_nsec - begin.tv_nsec)) +
                        static_cast<uint64_t>(sum & 0);
        if (::write(to_parent[1], &took, sizeof(took)) != sizeof(took)) ::_exit(1);
      }
      ::_exit(0);
    }
    ::close(to_child[0]);
    ::close(to_parent[1]);
    command_ = to_child[1];
    answer_ = to_parent[0];
    if (::read(answer_, &base_, sizeof(base_)) != sizeof(base_)) base_ = 0;
  }
  ~WriterChild() {
    if (command_ >= 0) ::close(command_);
    if (answer_ >= 0) ::close(answer_);
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // The child's loop time in ns, or nullopt when it did not answer.
  std::optional<uint64_t> round(unsigned char r) const {
    uint64_t took = 0;
    if (::write(command_, &r, 1) != 1 || ::read(answer_, &took, sizeof(took)) != sizeof(took))
      return std::nullopt;
    return took;
  }
  pid_t pid() const { return pid_; }
  uint64_t base() const { return base_; }
  // Page indexes of this child's region among the samples.
  std::set<size_t> pagesIn(const SampleBatch& batch) const {
    std::set<size_t> out;
    const uint64_t page = tier::pageSize();
    for (const auto& s : batch.accesses)
      if (s.pid == pid_ && s.address >= base_ && s.address < base_ + pages_ * page)
        out.insert((s.address - base_) / page);
    return out;
  }

 private:
  size_t pages_;
  pid_t pid_ = -1;
  int command_ = -1, answer_ = -1;
  uint64_t base_ = 0;
};

TEST(SoftDirtyLive, ReportsTheWrittenPagesAndNoneOfTheReadOnes) {
  if (auto probed = probeLive(); !probed) GTEST_SKIP() << probed.error().message();
  constexpr size_t kPages = 256;
  WriterChild child(kPages);
  ASSERT_GT(child.pid(), 0);
  ASSERT_NE(child.base(), 0u);

  // Real /proc and CPU clock; the window's end is decided by this test's clock.
  int64_t now = 0;
  Clocks clocks = Clocks::system();
  clocks.monotonic_ns = [&now] { return now; };
  auto sampler = SoftDirtySampler::open("/proc", {}, clocks);
  ASSERT_TRUE(sampler) << sampler.error().message();
  sampler->setCpuBudget(1.0);
  ASSERT_TRUE(sampler->setTargets({child.pid()}));
  ASSERT_TRUE(sampler->start());

  for (unsigned char r = 0; r < 4; ++r) {
    SCOPED_TRACE("round " + std::to_string(r));
    SampleBatch batch;
    now = sampler->nextPollAt();
    ASSERT_TRUE(sampler->poll(batch));
    ASSERT_TRUE(sampler->windowOpen());
    ASSERT_TRUE(child.round(r));
    now += sampler->window().count();
    ASSERT_TRUE(sampler->poll(batch));
    ASSERT_FALSE(sampler->windowOpen());
    std::set<size_t> expected;
    for (size_t i = r % 4; i < kPages; i += 4)
      expected.insert(i);
    EXPECT_EQ(child.pagesIn(batch), expected);
    for (const auto& s : batch.accesses)
      EXPECT_TRUE(s.write);
  }
  const auto& sd = sampler->softDirtyStats();
  EXPECT_EQ(sd.windows, 4u);
  EXPECT_EQ(sampler->stats().lost, 0u);
  EXPECT_GT(sampler->stats().cpu_seconds, 0);
  std::printf("soft-dirty live: %zu pages, last window %" PRIu64 " dirty of %" PRIu64
              " present (all mappings), CPU %.3f ms per cycle, %.3f ms total over 4 windows\n",
              kPages, sd.last_dirty_pages, sd.last_present_pages, sd.last_cycle_cpu_seconds * 1e3,
              sampler->stats().cpu_seconds * 1e3);
}

// Needs no soft-dirty support: clear_refs "4" is accepted either way.
TEST(SoftDirtyLive, AnExitedChildIsDroppedAndNamed) {
  pid_t child = ::fork();
  if (child == 0) {
    ::pause();
    ::_exit(0);
  }
  ASSERT_GT(child, 0);
  int64_t now = 0;
  Clocks clocks = Clocks::system();
  clocks.monotonic_ns = [&now] { return now; };
  SoftDirtyOptions options;
  options.probe_kernel = false;
  auto sampler = SoftDirtySampler::open("/proc", options, clocks);
  ASSERT_TRUE(sampler);
  ASSERT_TRUE(sampler->setTargets({child, ::getpid()}));
  ASSERT_TRUE(sampler->start());
  SampleBatch batch;
  ASSERT_TRUE(sampler->poll(batch));
  ASSERT_TRUE(sampler->windowOpen());

  ::kill(child, SIGKILL);  // a zombie until reaped: its maps are empty
  siginfo_t info{};
  ASSERT_EQ(::waitid(P_PID, static_cast<id_t>(child), &info, WEXITED | WNOWAIT), 0);
  now += sampler->window().count();
  ASSERT_TRUE(sampler->poll(batch));
  EXPECT_THAT(sampler->targets(), ::testing::ElementsAre(::getpid()));
  EXPECT_EQ(sampler->softDirtyStats().vanished, 1u);
  EXPECT_EQ(sampler->stats().lost, 0u);
  // Our own huge mappings (a sanitizer's shadow) may be reported too.
  std::vector<tier::Error> exited;
  for (auto& problem : sampler->takeProblems())
    if (problem.errnum != EFBIG) exited.push_back(problem);
  ASSERT_EQ(exited.size(), 1u);
  EXPECT_EQ(exited[0].errnum, ESRCH);
  EXPECT_THAT(exited[0].message(), HasSubstr("pid " + std::to_string(child) + " exited"));

  ::waitpid(child, nullptr, 0);  // reaped: its /proc directory is gone
  ASSERT_TRUE(sampler->setTargets({child, ::getpid()}));
  EXPECT_THAT(sampler->targets(), ::testing::ElementsAre(::getpid()));
  EXPECT_EQ(sampler->softDirtyStats().vanished, 2u);
}

// As an unprivileged user, another user's process (init) is refused by name.
TEST(SoftDirtyLive, AnotherUsersProcessIsRefusedByPid) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to become another user";
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0)
          std::_Exit(2);
        // setresuid made us non-dumpable, which hands our own /proc files to root.
        ::prctl(PR_SET_DUMPABLE, 1);
        SoftDirtyOptions options;
        options.probe_kernel = false;
        auto sampler = SoftDirtySampler::open("/proc", options);
        if (!sampler) std::_Exit(3);
        auto refused = sampler->setTargets({1, ::getpid()});
        if (refused) std::_Exit(4);
        std::fprintf(stderr, "%s\n", refused.error().message().c_str());
        bool named = refused.error().message().find("pid 1 (") != std::string::npos;
        bool permission = refused.error().errnum == EACCES || refused.error().errnum == EPERM;
        bool own_kept = sampler->targets() == std::vector<pid_t>{::getpid()};
        std::_Exit(named && permission && own_kept ? 0 : 5);
      },
      ::testing::ExitedWithCode(0), "may not read the page tables of pid 1 ");
}

// The window adapts to what the kernel reports: every page of a 16 MiB region
// written halves it, a quarter keeps it, nothing written lengthens it. Prints
// the cost: CPU per cycle, and the child's write pass with and without an
// open window (each first write in a window takes a write-protect fault).
TEST(SoftDirtyLive, TheWindowFollowsSaturationAndTheCostIsMeasured) {
  if (auto probed = probeLive(); !probed) GTEST_SKIP() << probed.error().message();
  constexpr size_t kPages = 4096;
  WriterChild child(kPages);
  ASSERT_GT(child.pid(), 0);
  ASSERT_NE(child.base(), 0u);
  int64_t now = 0;
  Clocks clocks = Clocks::system();
  clocks.monotonic_ns = [&now] { return now; };
  auto sampler = SoftDirtySampler::open("/proc", {}, clocks);
  ASSERT_TRUE(sampler) << sampler.error().message();
  ASSERT_TRUE(sampler->setTargets({child.pid()}));
  ASSERT_TRUE(sampler->start());

  auto window = [&](unsigned char what, std::optional<uint64_t>& took) {
    SampleBatch batch;
    now = sampler->nextPollAt();
    EXPECT_TRUE(sampler->poll(batch));
    EXPECT_TRUE(sampler->windowOpen());
    took = child.round(what);
    now += sampler->window().count();
    EXPECT_TRUE(sampler->poll(batch));
    EXPECT_FALSE(sampler->windowOpen());
    return child.pagesIn(batch).size();
  };
  std::optional<uint64_t> open_pass, closed_pass, ignored;
  EXPECT_EQ(sampler->window(), std::chrono::milliseconds(250));
  EXPECT_EQ(window(WriterChild::kAll, open_pass), kPages);
  EXPECT_EQ(sampler->softDirtyStats().saturated_windows, 1u);
  EXPECT_EQ(sampler->window(), std::chrono::milliseconds(125));
  double cycle_cpu = sampler->softDirtyStats().last_cycle_cpu_seconds;
  closed_pass = child.round(WriterChild::kAll);  // no window open: no faults

  EXPECT_EQ(window(0, ignored), kPages / 4);
  EXPECT_EQ(sampler->window(), std::chrono::milliseconds(125));
  EXPECT_EQ(window(WriterChild::kIdle, ignored), 0u);
  EXPECT_GE(sampler->softDirtyStats().sparse_windows, 1u);
  EXPECT_GT(sampler->window(), std::chrono::milliseconds(125));

  ASSERT_TRUE(open_pass && closed_pass);
  std::printf(
      "soft-dirty live: %zu pages all dirty: %.3f ms CPU per cycle (clear_refs + read); "
      "child's write pass %.3f ms in an open window, %.3f ms without (x%.1f)\n",
      kPages, cycle_cpu * 1e3, static_cast<double>(*open_pass) * 1e-6,
      static_cast<double>(*closed_pass) * 1e-6,
      static_cast<double>(*open_pass) / static_cast<double>(std::max<uint64_t>(1, *closed_pass)));
}

}  // namespace
}  // namespace tierd::sampling::softdirty
