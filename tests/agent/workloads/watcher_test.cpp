// ProcessWatcher and readProcess on fixture /proc (and cgroup2) trees:
// processes appear, exit, reuse pids, vanish mid-scan, and turn into
// something else with execve; kernel threads and zombies are never managed;
// and a scan reads no more than it must.
#include "workloads/watcher.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <map>
#include <memory>
#include <string>

#include "fake_proc.h"

namespace tierd::workloads {
namespace {

using test::addProcess;
using test::FakeProcess;
using test::removeProcess;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using tier::test::TempTree;

std::vector<WorkloadRule> rules(std::string_view text) {
  toml::table root = toml::parse(text, std::string_view("test.toml"));
  auto parsed = parseWorkloadRules(root, "test.toml");
  EXPECT_TRUE(parsed) << parsed.error().message();
  return parsed.value_or(std::vector<WorkloadRule>{});
}

std::vector<pid_t> pidsOf(const std::vector<ProcessInfo>& processes) {
  std::vector<pid_t> pids;
  for (const auto& p : processes)
    pids.push_back(p.key.pid);
  return pids;
}

std::vector<pid_t> managedPids(const ProcessWatcher& watcher) {
  std::vector<pid_t> pids;
  for (const auto& [key, process] : watcher.managed())
    pids.push_back(key.pid);
  return pids;
}

class WatcherTest : public ::testing::Test {
 protected:
  WatcherTest() : proc_(tier::FsRoot::open(tree_.root().string()).value()) {
    addProcess(tree_, {.pid = 1,
                       .comm = "systemd",
                       .ppid = 0,
                       .exe = "/usr/lib/systemd/systemd",
                       .cgroup = "/init.scope",
                       .uid = 0,
                       .cmdline = {"/sbin/init"}});
    addProcess(tree_, {.pid = 2,
                       .comm = "kthreadd",
                       .ppid = 0,
                       .flags = test::kKthreadFlags,
                       .exe = "",
                       .cgroup = "/",
                       .uid = 0,
                       .cmdline = {}});
    tree_.file("self", "");  // not a pid: ignored
  }

  ProcessWatcher::ScanResult scan(ProcessWatcher& watcher, const tier::FsRoot* cgroupfs = nullptr) {
    auto result = watcher.scan(proc_, cgroupfs);
    EXPECT_TRUE(result) << result.error().message();
    return result.value_or(ProcessWatcher::ScanResult{});
  }

  TempTree tree_;
  tier::FsRoot proc_;
};

TEST_F(WatcherTest, ReadProcessReadsEveryFact) {
  addProcess(tree_, {.pid = 300,
                     .comm = "python3",
                     .start_time = 7777,
                     .ppid = 1,
                     .exe = "/usr/bin/python3.11",
                     .cgroup = "/system.slice/llm.service",
                     .uid = 998,
                     .cmdline = {"python3", "-m", "vllm"}});
  auto info = readProcess(proc_, 300);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_EQ(info->key, (ProcessKey{300, 7777}));
  EXPECT_EQ(info->ppid, 1);
  EXPECT_EQ(info->comm, "python3");
  EXPECT_EQ(info->exe, "/usr/bin/python3.11");
  EXPECT_EQ(info->cgroup, "/system.slice/llm.service");
  EXPECT_EQ(info->uid, 998u);
  EXPECT_EQ(info->euid, 998u);
  EXPECT_THAT(info->cmdline, ElementsAre("python3", "-m", "vllm"));
  EXPECT_FALSE(info->kernel_thread);
}

TEST_F(WatcherTest, ReadProcessMarksKernelThreads) {
  auto info = readProcess(proc_, 2);
  ASSERT_TRUE(info) << info.error().message();
  EXPECT_TRUE(info->kernel_thread);
  EXPECT_EQ(info->exe, "");
}

TEST_F(WatcherTest, ReadProcessOfAGonePidIsEsrch) {
  auto info = readProcess(proc_, 4321);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().errnum, ESRCH);
  EXPECT_EQ(info.error().context, "read process 4321");
  EXPECT_THAT(info.error().message(), HasSubstr("No such process"));
}

TEST_F(WatcherTest, ReadProcessNamesAMalformedFile) {
  addProcess(tree_, {.pid = 300});
  tree_.file("300/status", "Name:\tapp\nUid:\tnobody\n");
  auto info = readProcess(proc_, 300);
  ASSERT_FALSE(info);
  EXPECT_EQ(info.error().errnum, EINVAL);
  EXPECT_THAT(info.error().context, HasSubstr("read process 300: 300/status: status line 2"));
}

TEST_F(WatcherTest, ReadProcessNoticesAPidReusedWhileReading) {
  // stat names another pid than its directory: the tree is inconsistent.
  addProcess(tree_, {.pid = 300});
  tree_.file("300/stat", test::statText({.pid = 301}));
  auto info = readProcess(proc_, 300);
  ASSERT_FALSE(info);
  EXPECT_THAT(info.error().context, HasSubstr("300/stat names pid 301"));
}

TEST_F(WatcherTest, ProcessesAppearAndExit) {
  ProcessWatcher watcher(rules("[[workloads]]\nname = \"llm\"\ncomm = \"python3\"\n"));
  addProcess(tree_, {.pid = 300, .comm = "python3"});
  addProcess(tree_, {.pid = 301, .comm = "bash"});
  addProcess(tree_, {.pid = 1200, .comm = "python3", .start_time = 5000});

  auto first = scan(watcher);
  EXPECT_THAT(pidsOf(first.appeared), ElementsAre(300, 1200));  // by pid, not by name
  EXPECT_THAT(first.exited, IsEmpty());
  ASSERT_EQ(watcher.managed().size(), 2u);
  const ManagedProcess& managed = watcher.managed().at({1200, 5000});
  EXPECT_EQ(managed.rule, "llm");
  EXPECT_EQ(managed.process.exe, "/usr/bin/app");

  auto again = scan(watcher);
  EXPECT_THAT(again.appeared, IsEmpty());
  EXPECT_THAT(again.exited, IsEmpty());

  removeProcess(tree_, 300);
  auto after = scan(watcher);
  EXPECT_THAT(after.appeared, IsEmpty());
  EXPECT_THAT(after.exited, ElementsAre(ProcessKey{300, 1000}));
  EXPECT_THAT(managedPids(watcher), ElementsAre(1200));
}

TEST_F(WatcherTest, AReusedPidIsAnExitAndAnAppearance) {
  ProcessWatcher watcher(rules("[[workloads]]\nname = \"llm\"\ncomm = \"python3\"\n"));
  addProcess(tree_, {.pid = 300, .comm = "python3", .start_time = 1000});
  scan(watcher);
  addProcess(tree_, {.pid = 300, .comm = "python3", .start_time = 2000});
  auto result = scan(watcher);
  EXPECT_THAT(result.exited, ElementsAre(ProcessKey{300, 1000}));
  ASSERT_EQ(result.appeared.size(), 1u);
  EXPECT_EQ(result.appeared[0].key, (ProcessKey{300, 2000}));
  EXPECT_EQ(watcher.managed().count({300, 2000}), 1u);
  EXPECT_EQ(watcher.managed().size(), 1u);
}

TEST_F(WatcherTest, AReusedPidOfAnUnselectedProcessIsDecidedAgain) {
  ProcessWatcher watcher(rules("[[workloads]]\nname = \"llm\"\ncomm = \"python3\"\n"),
                         /*recheck_every=*/1);
  addProcess(tree_, {.pid = 300, .comm = "bash", .start_time = 1000});
  EXPECT_THAT(scan(watcher).appeared, IsEmpty());
  addProcess(tree_, {.pid = 300, .comm = "python3", .start_time = 2000});
  EXPECT_THAT(pidsOf(scan(watcher).appeared), ElementsAre(300));
}

TEST_F(WatcherTest, AProcessVanishingMidScanIsNotAnError) {
  ProcessWatcher watcher(rules("[[workloads]]\nname = \"all\"\ncomm = \".*\"\n"));
  addProcess(tree_, {.pid = 300, .comm = "python3"});
  tree_.dir("400");  // listed, then gone before its stat was read
  addProcess(tree_, {.pid = 500, .comm = "python3"});
  std::filesystem::remove(tree_.root() / "500/status");  // gone after its stat was read
  std::filesystem::remove(tree_.root() / "500/cmdline");

  auto result = scan(watcher);
  EXPECT_THAT(pidsOf(result.appeared), ElementsAre(1, 300));
  EXPECT_THAT(result.exited, IsEmpty());

  // 500 was skipped, not judged: when readable, it is decided after all.
  addProcess(tree_, {.pid = 500, .comm = "python3"});
  EXPECT_THAT(pidsOf(scan(watcher).appeared), ElementsAre(500));
}

TEST_F(WatcherTest, AManagedProcessThatCannotBeReadAfterAnExecStaysUntilItIsGone) {
  ProcessWatcher watcher(rules("[[workloads]]\nname = \"all\"\ncomm = \".*\"\n"));
  addProcess(tree_, {.pid = 300, .comm = "python3"});
  scan(watcher);
  addProcess(tree_, {.pid = 300, .comm = "python3.11"});
  std::filesystem::remove(tree_.root() / "300/status");
  auto result = scan(watcher);
  EXPECT_THAT(result.exited, IsEmpty());
  EXPECT_THAT(managedPids(watcher), ElementsAre(1, 300));
  removeProcess(tree_, 300);
  EXPECT_THAT(scan(watcher).exited, ElementsAre(ProcessKey{300, 1000}));
}

TEST_F(WatcherTest, KernelThreadsAreNeverManaged) {
  ProcessWatcher watcher(rules("[[workloads]]\nname = \"all\"\ncomm = \".*\"\n"));
  addProcess(tree_, {.pid = 30,
                     .comm = "kworker/0:1-events",
                     .flags = test::kKthreadFlags,
                     .exe = "",
                     .cmdline = {}});
  // No PF_KTHREAD, but no command line either: nothing to manage.
  addProcess(tree_, {.pid = 31, .comm = "odd", .exe = "", .cmdline = {}});
  auto result = scan(watcher);
  EXPECT_THAT(pidsOf(result.appeared), ElementsAre(1));
}

TEST_F(WatcherTest, ZombiesExit) {
  ProcessWatcher watcher(rules("[[workloads]]\nname = \"llm\"\ncomm = \"python3\"\n"));
  addProcess(tree_, {.pid = 300, .comm = "python3"});
  addProcess(tree_, {.pid = 301, .comm = "python3", .state = 'Z', .exe = "", .cmdline = {}});
  EXPECT_THAT(pidsOf(scan(watcher).appeared), ElementsAre(300));
  addProcess(tree_, {.pid = 300, .comm = "python3", .state = 'Z', .exe = "", .cmdline = {}});
  auto result = scan(watcher);
  EXPECT_THAT(result.exited, ElementsAre(ProcessKey{300, 1000}));
  EXPECT_THAT(watcher.managed(), IsEmpty());
}

TEST_F(WatcherTest, AnExecIntoAMatchingProgramIsNoticed) {
  // A shell forks (comm "bash"), then the child execs the server: same pid
  // and start time, new comm and exe.
  ProcessWatcher watcher(rules("[[workloads]]\nname = \"llm\"\nexe = \"/opt/llm/.*\"\n"),
                         /*recheck_every=*/1);
  addProcess(tree_, {.pid = 300, .comm = "bash", .exe = "/usr/bin/bash"});
  EXPECT_THAT(scan(watcher).appeared, IsEmpty());
  addProcess(tree_, {.pid = 300, .comm = "server", .exe = "/opt/llm/server"});
  auto result = scan(watcher);
  EXPECT_THAT(pidsOf(result.appeared), ElementsAre(300));
  EXPECT_EQ(result.appeared[0].exe, "/opt/llm/server");
  // And an exec out of it releases it.
  addProcess(tree_, {.pid = 300, .comm = "sh", .exe = "/usr/bin/dash"});
  EXPECT_THAT(scan(watcher).exited, ElementsAre(ProcessKey{300, 1000}));
}

TEST_F(WatcherTest, AnExeThatCannotBeReadMatchesNoExeRule) {
  ProcessWatcher watcher(rules("[[workloads]]\nname = \"any\"\nexe = \".*\"\n"));
  addProcess(tree_, {.pid = 300, .comm = "secret", .exe = ""});
  EXPECT_THAT(pidsOf(scan(watcher).appeared), ElementsAre(1));
}

TEST_F(WatcherTest, TheFirstMatchingRuleNamesTheProcess) {
  ProcessWatcher watcher(rules(R"(
[[workloads]]
name = "first"
pids = [300]
[[workloads]]
name = "second"
comm = "python3"
)"));
  addProcess(tree_, {.pid = 300, .comm = "python3"});
  addProcess(tree_, {.pid = 301, .comm = "python3"});
  scan(watcher);
  EXPECT_EQ(watcher.managed().at({300, 1000}).rule, "first");
  EXPECT_EQ(watcher.managed().at({301, 1000}).rule, "second");
}

TEST_F(WatcherTest, NewRulesDecideEveryProcessAgain) {
  ProcessWatcher watcher(rules(R"(
[[workloads]]
name = "llm"
comm = "python3"
[[workloads]]
name = "db"
comm = "postgres"
)"));
  addProcess(tree_, {.pid = 300, .comm = "python3"});
  addProcess(tree_, {.pid = 301, .comm = "postgres"});
  addProcess(tree_, {.pid = 302, .comm = "redis-server"});
  EXPECT_THAT(pidsOf(scan(watcher).appeared), ElementsAre(300, 301));

  watcher.setRules(rules(R"(
[[workloads]]
name = "python"
comm = "python3"
[[workloads]]
name = "cache"
comm = "redis-server"
)"));
  auto result = scan(watcher);
  EXPECT_THAT(pidsOf(result.appeared), ElementsAre(302));
  EXPECT_THAT(result.exited, ElementsAre(ProcessKey{301, 1000}));
  EXPECT_EQ(watcher.managed().at({300, 1000}).rule, "python");  // kept, renamed
  EXPECT_THAT(managedPids(watcher), ElementsAre(300, 302));
}

TEST_F(WatcherTest, AMalformedProcessIsSkipped) {
  ProcessWatcher watcher(rules("[[workloads]]\nname = \"all\"\ncomm = \".*\"\n"));
  addProcess(tree_, {.pid = 300});
  tree_.file("300/stat", "300 (app S 1\n");
  EXPECT_THAT(pidsOf(scan(watcher).appeared), ElementsAre(1));
}

TEST_F(WatcherTest, CgroupRulesReadProcPidCgroupWithoutACgroupfs) {
  ProcessWatcher watcher(
      rules("[[workloads]]\nname = \"svc\"\ncgroup = \"/system.slice/inference.service\"\n"));
  addProcess(tree_, {.pid = 300, .cgroup = "/system.slice/inference.service"});
  addProcess(tree_, {.pid = 301, .cgroup = "/system.slice/inference.service/worker"});
  addProcess(tree_, {.pid = 302, .cgroup = "/system.slice/inference.service2"});
  addProcess(tree_, {.pid = 303, .cgroup = "/user.slice"});
  auto result = scan(watcher);
  EXPECT_THAT(pidsOf(result.appeared), ElementsAre(300, 301));
  EXPECT_EQ(result.appeared[1].cgroup, "/system.slice/inference.service/worker");
}

class CgroupfsTest : public WatcherTest {
 protected:
  CgroupfsTest() {
    cgtree_.file("cgroup.controllers", "cpuset cpu io memory pids\n");
    cgtree_.file("cgroup.procs", "1\n");
    cgtree_.file("system.slice/cgroup.procs", "");
    cgtree_.file("system.slice/inference.service/cgroup.procs", "300\n");
    cgtree_.file("system.slice/inference.service/memory.max", "max\n");
    cgtree_.file("system.slice/inference.service/worker/cgroup.procs", "301\n");
    cgtree_.file("system.slice/inference.service2/cgroup.procs", "302\n");
    addProcess(tree_, {.pid = 300, .cgroup = "/system.slice/inference.service"});
    addProcess(tree_, {.pid = 301, .cgroup = "/system.slice/inference.service/worker"});
    addProcess(tree_, {.pid = 302, .cgroup = "/system.slice/inference.service2"});
    cgroupfs_ = std::make_unique<tier::FsRoot>(tier::FsRoot::open(cgtree_.root().string()).value());
  }

  TempTree cgtree_;
  std::unique_ptr<tier::FsRoot> cgroupfs_;
};

TEST_F(CgroupfsTest, MembersComeFromCgroupProcsOfTheSubtree) {
  ProcessWatcher watcher(
      rules("[[workloads]]\nname = \"svc\"\ncgroup = \"/system.slice/inference.service\"\n"));
  auto log = std::make_shared<tier::AccessLog>();
  proc_.setAccessLog(log);
  auto result = scan(watcher, cgroupfs_.get());
  EXPECT_THAT(pidsOf(result.appeared), ElementsAre(300, 301));
  EXPECT_EQ(result.appeared[1].cgroup, "/system.slice/inference.service/worker");
  // Non-members were judged by their stat alone.
  EXPECT_EQ(log->paths().count("302/cgroup"), 0u);
  EXPECT_EQ(log->paths().count("1/cgroup"), 0u);
  EXPECT_EQ(log->paths().count("302/stat"), 1u);
}

TEST_F(CgroupfsTest, AProcessMovedInOrOutIsNoticed) {
  ProcessWatcher watcher(
      rules("[[workloads]]\nname = \"svc\"\ncgroup = \"/system.slice/inference.service\"\n"));
  scan(watcher, cgroupfs_.get());
  // echo 302 > inference.service/cgroup.procs: no exec, same comm.
  cgtree_.file("system.slice/inference.service2/cgroup.procs", "");
  cgtree_.file("system.slice/inference.service/cgroup.procs", "300\n302\n");
  addProcess(tree_, {.pid = 302, .cgroup = "/system.slice/inference.service"});
  auto moved_in = scan(watcher, cgroupfs_.get());
  EXPECT_THAT(pidsOf(moved_in.appeared), ElementsAre(302));
  // and 301 out of it
  cgtree_.file("system.slice/inference.service/worker/cgroup.procs", "");
  cgtree_.file("cgroup.procs", "1\n301\n");
  addProcess(tree_, {.pid = 301, .cgroup = "/"});
  auto moved_out = scan(watcher, cgroupfs_.get());
  EXPECT_THAT(moved_out.exited, ElementsAre(ProcessKey{301, 1000}));
  EXPECT_THAT(managedPids(watcher), ElementsAre(300, 302));
}

TEST_F(CgroupfsTest, ACgroupThatDoesNotExistYetHasNoMembers) {
  ProcessWatcher watcher(
      rules("[[workloads]]\nname = \"later\"\ncgroup = \"/system.slice/later.service\"\n"));
  auto log = std::make_shared<tier::AccessLog>();
  proc_.setAccessLog(log);
  EXPECT_THAT(scan(watcher, cgroupfs_.get()).appeared, IsEmpty());
  EXPECT_EQ(log->paths().count("300/cgroup"), 0u);
  cgtree_.file("system.slice/later.service/cgroup.procs", "302\n");
  addProcess(tree_, {.pid = 302, .cgroup = "/system.slice/later.service"});
  EXPECT_THAT(pidsOf(scan(watcher, cgroupfs_.get()).appeared), ElementsAre(302));
}

TEST_F(CgroupfsTest, AV1MountIsNotUsedAsACgroupfs) {
  // A v1 hierarchy has cgroup.procs but no cgroup.controllers, and other paths.
  TempTree v1;
  v1.file("cgroup.procs", "1\n300\n301\n302\n");
  auto v1root = tier::FsRoot::open(v1.root().string()).value();
  ProcessWatcher watcher(
      rules("[[workloads]]\nname = \"svc\"\ncgroup = \"/system.slice/inference.service\"\n"));
  auto result = watcher.scan(proc_, &v1root);
  ASSERT_TRUE(result) << result.error().message();
  EXPECT_THAT(pidsOf(result->appeared), ElementsAre(300, 301));  // from /proc/PID/cgroup
}

TEST_F(WatcherTest, ASteadyScanReadsOnlyStat) {
  ProcessWatcher watcher(rules(R"(
[[workloads]]
name = "llm"
comm = "python3"
exe = "/opt/llm/.*"
)"));
  // Processes judged by stat need no other file (a read of one would fail).
  for (pid_t pid = 1000; pid < 1500; ++pid) {
    if (pid % 100 == 0) {
      addProcess(tree_, {.pid = pid, .comm = "python3"});
    } else {
      tree_.file(std::to_string(pid) + "/stat", test::statText({.pid = pid, .comm = "worker"}));
    }
  }
  addProcess(tree_, {.pid = 5000, .comm = "python3", .exe = "/opt/llm/server"});

  auto log = std::make_shared<tier::AccessLog>();
  proc_.setAccessLog(log);
  auto first = scan(watcher);
  EXPECT_THAT(pidsOf(first.appeared), ElementsAre(5000));
  // New processes: stat; the exe link only where comm matched; the rest only
  // for the selected one.
  for (const auto& path : log->paths()) {
    bool stat = path.ends_with("/stat");
    bool python_exe = path.ends_with("00/exe");
    bool selected = path.starts_with("5000/");
    EXPECT_TRUE(path.empty() || stat || python_exe || selected) << path;
  }

  // Later scans: the managed process every time, the others in turn, so
  // that every one is read once in kRecheckEvery scans.
  std::map<std::string, int> reads;
  for (unsigned n = 0; n < ProcessWatcher::kRecheckEvery; ++n) {
    log = std::make_shared<tier::AccessLog>();
    proc_.setAccessLog(log);
    EXPECT_THAT(scan(watcher).appeared, IsEmpty());
    EXPECT_LE(log->paths().size(), 1u + 1u + 503u / ProcessWatcher::kRecheckEvery + 1u);
    for (const auto& path : log->paths()) {
      EXPECT_TRUE(path.empty() || path.ends_with("/stat")) << path;
      ++reads[path];
    }
  }
  EXPECT_EQ(reads["5000/stat"], static_cast<int>(ProcessWatcher::kRecheckEvery));
  for (pid_t pid = 1000; pid < 1500; ++pid)
    EXPECT_EQ(reads[std::to_string(pid) + "/stat"], 1) << pid;
}

TEST_F(WatcherTest, AnExecIsNoticedWithinTheRecheckScans) {
  ProcessWatcher watcher(rules("[[workloads]]\nname = \"llm\"\ncomm = \"python3\"\n"));
  addProcess(tree_, {.pid = 300, .comm = "bash"});
  EXPECT_THAT(scan(watcher).appeared, IsEmpty());
  addProcess(tree_, {.pid = 300, .comm = "python3"});
  std::vector<pid_t> appeared;
  for (unsigned n = 0; n < ProcessWatcher::kRecheckEvery && appeared.empty(); ++n)
    appeared = pidsOf(scan(watcher).appeared);
  EXPECT_THAT(appeared, ElementsAre(300));
}

}  // namespace
}  // namespace tierd::workloads
