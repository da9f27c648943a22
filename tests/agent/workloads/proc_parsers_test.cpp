// The /proc/PID parsers on text copied from a live 6.x kernel, on the odd
// names processes can give themselves, and on malformed input (whose errors
// must name the field, line or token).
#include "workloads/proc_parsers.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cerrno>
#include <string>
#include <vector>

namespace tierd::workloads {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

using namespace std::string_literals;

// /proc/1/stat and /proc/2/stat of a live host.
constexpr std::string_view kInitStat =
    "1 (systemd) S 0 1 1 0 -1 4194560 53679 27412986 0 2639 171 672 108422 20040 20 0 13 0 25 "
    "43380736 3231 18446744073709551615 1 1 0 0 0 0 671173123 4096 1256 0 0 0 17 1 0 0 0 0 0 0 "
    "0 0 0 0 0 0 0\n";
constexpr std::string_view kKthreaddStat =
    "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 25 0 0 18446744073709551615 0 0 "
    "0 0 0 0 0 2147483647 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n";

std::string statWithComm(const std::string& comm) {
  return "4242 (" + comm +
         ") R 77 4242 4242 34816 4242 4194304 100 0 0 0 0 0 0 0 20 0 1 0 "
         "209780 3133440 360 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n";
}

TEST(ParseProcStat, ReadsTheIdentityFieldsOfARealLine) {
  auto stat = parseProcStat(kInitStat);
  ASSERT_TRUE(stat) << stat.error().message();
  EXPECT_EQ(stat->pid, 1);
  EXPECT_EQ(stat->comm, "systemd");
  EXPECT_EQ(stat->state, 'S');
  EXPECT_EQ(stat->ppid, 0);
  EXPECT_EQ(stat->flags, 4194560u);
  EXPECT_EQ(stat->start_time, 25u);
  EXPECT_FALSE(stat->kernelThread());
  EXPECT_FALSE(stat->exited());
}

TEST(ParseProcStat, FlagsMarkKernelThreads) {
  auto stat = parseProcStat(kKthreaddStat);
  ASSERT_TRUE(stat) << stat.error().message();
  EXPECT_EQ(stat->comm, "kthreadd");
  EXPECT_TRUE(stat->kernelThread());
}

TEST(ParseProcStat, CommEndsAtTheLastParenthesis) {
  for (std::string comm : {"tmux: server", "a) b (c", "x)", "((", ") S 1 2 3", "", "kworker/0:1"}) {
    auto stat = parseProcStat(statWithComm(comm));
    ASSERT_TRUE(stat) << comm << ": " << stat.error().message();
    EXPECT_EQ(stat->comm, comm);
    EXPECT_EQ(stat->state, 'R') << comm;
    EXPECT_EQ(stat->ppid, 77) << comm;
    EXPECT_EQ(stat->start_time, 209780u) << comm;
  }
}

TEST(ParseProcStat, ZombiesAreExited) {
  auto stat = parseProcStat(
      "9 (defunct) Z 1 9 9 0 -1 4227084 0 0 0 0 0 0 0 0 20 0 1 0 77 0 0 "
      "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n");
  ASSERT_TRUE(stat) << stat.error().message();
  EXPECT_TRUE(stat->exited());
}

TEST(ParseProcStat, MalformedTextIsNamed) {
  struct Case {
    std::string text, expected;
  };
  std::vector<Case> cases = {
      {"", "no '(' before the comm"},
      {"12 bash S 1", "no '(' before the comm"},
      {"12 (bash S 1 2 3", "no ')' after the comm"},
      {"x (bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", "field 1 (pid) is not a pid: 'x'"},
      {"0 (bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", "field 1 (pid)"},
      {"12 (bash) S 1 1 1 0 -1 0 0 0 0", "10 fields after the comm, need at least 20"},
      {"12 (bash) SS 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
       "field 3 (state) is not one letter: 'SS'"},
      {"12 (bash) S -1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", "field 4 (ppid) is not a pid: '-1'"},
      {"12 (bash) S 1 1 1 0 -1 0x40 0 0 0 0 0 0 0 0 20 0 1 0 5",
       "field 9 (flags) is not a number: '0x40'"},
      {"12 (bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5s",
       "field 22 (starttime) is not a number: '5s'"},
      {"12 (bash) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999999",
       "field 22 (starttime)"},
  };
  for (const auto& c : cases) {
    auto stat = parseProcStat(c.text);
    ASSERT_FALSE(stat) << c.text;
    EXPECT_EQ(stat.error().errnum, EINVAL);
    EXPECT_THAT(stat.error().context, HasSubstr(c.expected)) << c.text;
  }
}

// /proc/self/status of a root shell on 6.x, abridged only after Cpus_allowed.
constexpr std::string_view kStatus =
    "Name:\tbash\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t2891\nNgid:\t0\nPid:\t2891\n"
    "PPid:\t2890\nTracerPid:\t0\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\nFDSize:\t256\n"
    "Groups:\t \nNStgid:\t2891\nNSpid:\t2891\nNSpgid:\t2891\nNSsid:\t2891\nKthread:\t0\n"
    "VmPeak:\t    8928 kB\nVmSize:\t    8864 kB\nThreads:\t1\nSigQ:\t0/31401\n"
    "SigPnd:\t0000000000000000\nCapInh:\t0000000000000000\nCapPrm:\t000001fffeffffff\n"
    "CapEff:\t000001fffeffffff\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n"
    "NoNewPrivs:\t0\nSeccomp:\t0\nCpus_allowed:\t3\n";

TEST(ParseProcStatus, ReadsUidsAndEffectiveCapabilities) {
  auto status = parseProcStatus(kStatus);
  ASSERT_TRUE(status) << status.error().message();
  EXPECT_EQ(status->uid, 1000u);
  EXPECT_EQ(status->euid, 0u);
  EXPECT_EQ(status->cap_eff, 0x000001fffeffffffu);
}

TEST(ParseProcStatus, MalformedTextIsNamed) {
  struct Case {
    std::string text, expected;
  };
  std::vector<Case> cases = {
      {"", "no 'Uid:' line"},
      {"Name:\tx\nCapEff:\t0000000000000000\n", "no 'Uid:' line"},
      {"Uid:\t0\t0\t0\t0\n", "no 'CapEff:' line"},
      {"Name:\tx\nUid:\t0\t0\n", "status line 2: not 'Uid: real effective saved fs': 'Uid:\t0\t0'"},
      {"Uid:\t0\tme\t0\t0\n", "status line 1: not 'Uid:"},
      {"Uid:\t0\t0\t0\t0\nCapEff:\tzz\n",
       "status line 2: CapEff is not a 64-bit hex mask: 'CapEff:\tzz'"},
      {"Uid:\t0\t0\t0\t0\nCapEff:\t1000001fffeffffff\n", "status line 2: CapEff"},
      {"Uid:\t0\t0\t0\t0\nCapEff:\n", "status line 2: CapEff"},
  };
  for (const auto& c : cases) {
    auto status = parseProcStatus(c.text);
    ASSERT_FALSE(status) << c.text;
    EXPECT_EQ(status.error().errnum, EINVAL);
    EXPECT_THAT(status.error().context, HasSubstr(c.expected)) << c.text;
  }
}

TEST(ParseProcCgroup, TakesTheV2LineOfAHybridHost) {
  auto path = parseProcCgroup(
      "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/b74d4c1e\n1:cpu:/\n0::/\n");
  ASSERT_TRUE(path) << path.error().message();
  EXPECT_EQ(*path, "/");
}

TEST(ParseProcCgroup, TakesTheOnlyLineOfAV2Host) {
  auto path = parseProcCgroup("0::/system.slice/inference.service\n");
  ASSERT_TRUE(path) << path.error().message();
  EXPECT_EQ(*path, "/system.slice/inference.service");
}

TEST(ParseProcCgroup, PathsMayHoldColonsAndSpaces) {
  auto path = parseProcCgroup("0::/user.slice/app-org.gnome.Terminal:1 2.scope\n");
  ASSERT_TRUE(path) << path.error().message();
  EXPECT_EQ(*path, "/user.slice/app-org.gnome.Terminal:1 2.scope");
}

TEST(ParseProcCgroup, AV1OnlyHostHasNoV2Path) {
  auto path = parseProcCgroup("2:cpu,cpuacct:/\n1:name=systemd:/init.scope\n");
  ASSERT_TRUE(path) << path.error().message();
  EXPECT_EQ(*path, "");
  auto empty = parseProcCgroup("");
  ASSERT_TRUE(empty);
  EXPECT_EQ(*empty, "");
}

TEST(ParseProcCgroup, MalformedTextIsNamed) {
  struct Case {
    std::string text, expected;
  };
  std::vector<Case> cases = {
      {"garbage\n", "cgroup line 1: not 'id:controllers:path': 'garbage'"},
      {"0::/\nx:cpu:/\n", "cgroup line 2: not 'id:controllers:path': 'x:cpu:/'"},
      {"0:/\n", "cgroup line 1: not 'id:controllers:path'"},
      {"0::relative\n", "cgroup line 1: path is not absolute: '0::relative'"},
      {"0::/a\n0::/b\n", "cgroup line 2: a second '0::' line"},
  };
  for (const auto& c : cases) {
    auto path = parseProcCgroup(c.text);
    ASSERT_FALSE(path) << c.text;
    EXPECT_EQ(path.error().errnum, EINVAL);
    EXPECT_THAT(path.error().context, HasSubstr(c.expected)) << c.text;
  }
}

TEST(ParseCmdline, SplitsOnNul) {
  EXPECT_THAT(parseCmdline("/usr/bin/python3\0-m\0vllm.entrypoints\0"s),
              ElementsAre("/usr/bin/python3", "-m", "vllm.entrypoints"));
  EXPECT_THAT(parseCmdline("a\0\0b\0"s), ElementsAre("a", "", "b"));
}

TEST(ParseCmdline, ARewrittenArgvMayLackTheFinalNul) {
  EXPECT_THAT(parseCmdline("postgres: checkpointer   "s), ElementsAre("postgres: checkpointer   "));
  EXPECT_THAT(parseCmdline("a\0b"s), ElementsAre("a", "b"));
}

TEST(ParseCmdline, KernelThreadsHaveNone) {
  EXPECT_THAT(parseCmdline(""), IsEmpty());
}

TEST(ParseCgroupProcs, OnePidPerLine) {
  auto pids = parseCgroupProcs("1\n203\n4567\n");
  ASSERT_TRUE(pids) << pids.error().message();
  EXPECT_THAT(*pids, ElementsAre(1, 203, 4567));
  auto none = parseCgroupProcs("");
  ASSERT_TRUE(none);
  EXPECT_THAT(*none, IsEmpty());
  auto bad = parseCgroupProcs("1\nx2\n");
  ASSERT_FALSE(bad);
  EXPECT_THAT(bad.error().context, HasSubstr("cgroup.procs line 2: not a pid: 'x2'"));
}

}  // namespace
}  // namespace tierd::workloads
