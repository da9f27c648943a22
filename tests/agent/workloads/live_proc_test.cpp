// readProcess and ProcessWatcher against the real /proc of this machine: a
// child started under a distinctive name is found with the right identity,
// and reported exited once killed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <string>

#include "../../unit/temp_tree.h"
#include "child_process.h"
#include "workloads/process.h"
#include "workloads/watcher.h"

namespace tierd::workloads {
namespace {

using test::Child;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

tier::FsRoot liveProc() {
  return tier::FsRoot::open("/proc").value();
}

std::vector<WorkloadRule> rules(std::string_view text) {
  toml::table root = toml::parse(text, std::string_view("test.toml"));
  auto parsed = parseWorkloadRules(root, "test.toml");
  EXPECT_TRUE(parsed) << parsed.error().message();
  return parsed.value_or(std::vector<WorkloadRule>{});
}

// "tierd-test-" and 4 characters from our pid: 15 characters, the most a
// comm holds, and distinct between test runs that overlap on this host.
std::string distinctComm() {
  const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  unsigned n = static_cast<unsigned>(::getpid()) % (36 * 36 * 36 * 36);
  std::string suffix;
  for (int i = 0; i < 4; ++i, n /= 36)
    suffix.insert(suffix.begin(), digits[n % 36]);
  return "tierd-test-" + suffix;
}

TEST(LiveProc, ReadProcessOfThisProcess) {
  auto proc = liveProc();
  auto info = readProcess(proc, ::getpid());
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->key.pid, ::getpid());
  EXPECT_GT(info->key.start_time, 0u);
  EXPECT_EQ(info->ppid, ::getppid());
  EXPECT_EQ(info->uid, ::getuid());
  EXPECT_EQ(info->euid, ::geteuid());
  EXPECT_EQ(info->exe, std::filesystem::read_symlink("/proc/self/exe").string());
  EXPECT_FALSE(info->kernel_thread);
  EXPECT_FALSE(info->cmdline.empty());
}

TEST(LiveProc, ReadProcessOfAReapedChildIsEsrch) {
  pid_t pid;
  {
    Child child("/bin/true", {"true"});
    ASSERT_GT(child.pid(), 0) << std::strerror(child.error());
    pid = child.pid();
    child.reap();
  }
  auto proc = liveProc();
  auto info = readProcess(proc, pid);
  ASSERT_FALSE(info) << "pid " << pid << " already reused";
  EXPECT_EQ(info.error().errnum, ESRCH);
  EXPECT_EQ(info.error().context, "read process " + std::to_string(pid));
}

TEST(LiveProc, KthreaddIsAKernelThread) {
  auto proc = liveProc();
  auto info = readProcess(proc, 2);
  if (!info || info->comm != "kthreadd") GTEST_SKIP() << "pid 2 is not kthreadd (a pid namespace?)";
  EXPECT_TRUE(info->kernel_thread);
  EXPECT_TRUE(info->cmdline.empty());
}

TEST(LiveProc, WatcherFindsAChildByCommAndSeesItExit) {
  // exec through a symlink: the kernel takes the comm from the name executed.
  tier::test::TempTree tree;
  const std::string comm = distinctComm();
  const std::string link = (tree.root() / comm).string();
  tree.link(comm, "/bin/sleep");

  const double before = test::bootSeconds();
  Child child(link, {"tierd-test-sleeper", "30"});
  const double after = test::bootSeconds();
  ASSERT_GT(child.pid(), 0) << std::strerror(child.error());

  auto proc = liveProc();
  ProcessWatcher exact(rules(R"([[workloads]]
name = "sleeper"
comm = ")" + comm + R"("
exe = ".*/sleep"
)"));
  ProcessWatcher pattern(rules("[[workloads]]\nname = \"any\"\ncomm = \"tierd-test-.*\"\n"));

  auto found = exact.scan(proc, nullptr);
  ASSERT_TRUE(found) << found.error().message();
  ASSERT_EQ(found->appeared.size(), 1u);
  const ProcessInfo& info = found->appeared[0];
  EXPECT_EQ(info.key.pid, child.pid());
  EXPECT_EQ(info.comm, comm);
  EXPECT_EQ(info.ppid, ::getpid());
  EXPECT_EQ(info.exe, std::filesystem::canonical("/bin/sleep").string());
  EXPECT_THAT(info.cmdline, ElementsAre("tierd-test-sleeper", "30"));
  // The start time (ticks since boot) falls between our clock readings
  // around the fork, give or take a tick of rounding.
  const double tick = 1.0 / static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double started = static_cast<double>(info.key.start_time) * tick;
  EXPECT_GE(started, before - 2 * tick);
  EXPECT_LE(started, after + 2 * tick);
  EXPECT_EQ(exact.managed().at(info.key).rule, "sleeper");

  // The broad pattern finds it too (and perhaps another run's child).
  auto broad = pattern.scan(proc, nullptr);
  ASSERT_TRUE(broad) << broad.error().message();
  EXPECT_EQ(pattern.managed().count(info.key), 1u);
  for (const auto& other : broad->appeared)
    EXPECT_TRUE(other.comm.starts_with("tierd-test-")) << other.comm;

  auto quiet = exact.scan(proc, nullptr);
  ASSERT_TRUE(quiet) << quiet.error().message();
  EXPECT_THAT(quiet->appeared, IsEmpty());
  EXPECT_THAT(quiet->exited, IsEmpty());

  // Killed but not reaped: a zombie, already exited for the watcher.
  child.kill();
  ASSERT_TRUE(child.waitZombie());
  auto zombie = exact.scan(proc, nullptr);
  ASSERT_TRUE(zombie) << zombie.error().message();
  EXPECT_THAT(zombie->exited, ElementsAre(info.key));
  EXPECT_THAT(exact.managed(), IsEmpty());

  child.reap();
  auto gone = exact.scan(proc, nullptr);
  ASSERT_TRUE(gone) << gone.error().message();
  EXPECT_THAT(gone->exited, IsEmpty());
  EXPECT_THAT(gone->appeared, IsEmpty());

  auto broad_gone = pattern.scan(proc, nullptr);
  ASSERT_TRUE(broad_gone) << broad_gone.error().message();
  EXPECT_THAT(broad_gone->exited, testing::Contains(info.key));
}

TEST(LiveProc, AScanOfThisHostIsCheap) {
  auto proc = liveProc();
  ProcessWatcher watcher(rules(R"([[workloads]]
name = "none"
comm = "no-such-comm"
[[workloads]]
name = "exe"
exe = "/no/such/exe"
)"));
  auto first = watcher.scan(proc, nullptr);
  ASSERT_TRUE(first) << first.error().message();
  auto start = std::chrono::steady_clock::now();
  auto steady = watcher.scan(proc, nullptr);
  auto took = std::chrono::steady_clock::now() - start;
  ASSERT_TRUE(steady) << steady.error().message();
  EXPECT_THAT(steady->appeared, IsEmpty());
  size_t processes = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc"))
    processes +=
        std::isdigit(static_cast<unsigned char>(entry.path().filename().string()[0])) ? 1 : 0;
  RecordProperty("processes", static_cast<int>(processes));
  RecordProperty(
      "steady_scan_us",
      static_cast<int>(std::chrono::duration_cast<std::chrono::microseconds>(took).count()));
  // Generous: a steady scan reads one small file per process.
  EXPECT_LT(took, std::chrono::milliseconds(100 + processes / 10));
}

}  // namespace
}  // namespace tierd::workloads
