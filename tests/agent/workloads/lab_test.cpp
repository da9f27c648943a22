// Runs inside the lab guest as root (ctest lab.workloads): cgroup selection
// against a real cgroup2 hierarchy, which the host (cgroup v1) lacks. The
// test mounts cgroup2 itself, makes /tierd-lab/inner, moves children into it
// and checks what the watcher selects, with and without the cgroupfs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "child_process.h"
#include "workloads/watcher.h"

namespace tierd::workloads {
namespace {

using test::Child;
using ::testing::ElementsAre;
using ::testing::IsEmpty;

constexpr const char* kMount = "/run/tierd-workloads-cgroup2";

std::vector<WorkloadRule> rules(std::string_view text) {
  toml::table root = toml::parse(text, std::string_view("test.toml"));
  auto parsed = parseWorkloadRules(root, "test.toml");
  EXPECT_TRUE(parsed) << parsed.error().message();
  return parsed.value_or(std::vector<WorkloadRule>{});
}

bool writeFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  out.close();  // cgroup.procs reports a bad write on close
  return static_cast<bool>(out);
}

std::vector<pid_t> pidsOf(const std::vector<ProcessInfo>& processes) {
  std::vector<pid_t> pids;
  for (const auto& p : processes)
    pids.push_back(p.key.pid);
  return pids;
}

class Cgroup2Test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("LAB_PRESET") == nullptr || ::geteuid() != 0)
      GTEST_SKIP() << "runs in the lab guest as root (tools/lab/lab run)";
    ::mkdir(kMount, 0755);
    if (::mount("none", kMount, "cgroup2", 0, nullptr) != 0)
      FAIL() << "mount -t cgroup2 " << kMount << ": " << std::strerror(errno);
    mounted_ = true;
    ASSERT_EQ(::mkdir((std::string(kMount) + "/tierd-lab").c_str(), 0755), 0)
        << std::strerror(errno);
    ASSERT_EQ(::mkdir((std::string(kMount) + "/tierd-lab/inner").c_str(), 0755), 0)
        << std::strerror(errno);
  }
  void TearDown() override {
    if (!mounted_) return;
    ::rmdir((std::string(kMount) + "/tierd-lab/inner").c_str());
    ::rmdir((std::string(kMount) + "/tierd-lab").c_str());
    ::umount(kMount);
  }
  bool mounted_ = false;
};

TEST_F(Cgroup2Test, TheWatcherSelectsTheMembersOfARuleCgroup) {
  Child a("/bin/sleep", {"sleep", "300"});
  Child b("/bin/sleep", {"sleep", "301"});
  ASSERT_GT(a.pid(), 0) << std::strerror(a.error());
  ASSERT_GT(b.pid(), 0) << std::strerror(b.error());
  const std::string lab = std::string(kMount) + "/tierd-lab";
  ASSERT_TRUE(writeFile(lab + "/inner/cgroup.procs", std::to_string(a.pid())));

  auto proc = tier::FsRoot::open("/proc").value();
  auto cgroupfs = tier::FsRoot::open(kMount).value();
  auto own = readProcess(proc, a.pid());
  ASSERT_TRUE(own) << own.error().message();
  EXPECT_EQ(own->cgroup, "/tierd-lab/inner");

  const auto rule = rules("[[workloads]]\nname = \"lab\"\ncgroup = \"/tierd-lab\"\n");
  ProcessWatcher with_fs(rule), without_fs(rule);
  auto first = with_fs.scan(proc, &cgroupfs);
  ASSERT_TRUE(first) << first.error().message();
  EXPECT_THAT(pidsOf(first->appeared), ElementsAre(a.pid()));
  ASSERT_EQ(first->appeared.size(), 1u);
  EXPECT_EQ(first->appeared[0].cgroup, "/tierd-lab/inner");
  auto plain = without_fs.scan(proc, nullptr);
  ASSERT_TRUE(plain) << plain.error().message();
  EXPECT_THAT(pidsOf(plain->appeared), ElementsAre(a.pid()));

  // b moves in without an exec: the cgroupfs shows it.
  ASSERT_TRUE(writeFile(lab + "/cgroup.procs", std::to_string(b.pid())));
  auto moved = with_fs.scan(proc, &cgroupfs);
  ASSERT_TRUE(moved) << moved.error().message();
  EXPECT_THAT(pidsOf(moved->appeared), ElementsAre(b.pid()));

  a.kill();
  a.reap();
  auto exited = with_fs.scan(proc, &cgroupfs);
  ASSERT_TRUE(exited) << exited.error().message();
  EXPECT_THAT(exited->exited, ElementsAre(first->appeared[0].key));
  EXPECT_THAT(exited->appeared, IsEmpty());
  ASSERT_EQ(with_fs.managed().size(), 1u);
  EXPECT_EQ(with_fs.managed().begin()->first.pid, b.pid());
  b.kill();
  b.reap();
}

}  // namespace
}  // namespace tierd::workloads
