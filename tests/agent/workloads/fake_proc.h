// Fixture /proc trees for the workloads tests: each fake process gets the
// files the watcher reads, in the kernel's own format.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "../../unit/temp_tree.h"

namespace tierd::workloads::test {

inline constexpr uint64_t kUserFlags = 0x400100;     // PF_RANDOMIZE | PF_FORKNOEXEC, as bash's
inline constexpr uint64_t kKthreadFlags = 0x208040;  // kthreadd's: PF_KTHREAD | ...

struct FakeProcess {
  pid_t pid = 100;
  std::string comm = "app";
  uint64_t start_time = 1000;
  char state = 'S';
  pid_t ppid = 1;
  uint64_t flags = kUserFlags;
  std::string exe = "/usr/bin/app";  // "" for no link (a kernel thread, or not permitted)
  std::string cgroup = "/user.slice";
  uid_t uid = 1000;
  std::vector<std::string> cmdline = {"app", "--serve"};
};

inline std::string statText(const FakeProcess& p) {
  // Fields 1-22 and a few more, as a real 6.x kernel prints them.
  return fmt::format(
      "{} ({}) {} {} {} {} 0 -1 {} 1392 0 0 0 12 3 0 0 20 0 1 0 {} 9080832 896 "
      "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
      p.pid, p.comm, p.state, p.ppid, p.pid, p.pid, p.flags, p.start_time);
}

inline std::string statusText(const FakeProcess& p) {
  return fmt::format(
      "Name:\t{0}\nUmask:\t0022\nState:\t{1} (sleeping)\nTgid:\t{2}\nNgid:\t0\nPid:\t{2}\n"
      "PPid:\t{3}\nTracerPid:\t0\nUid:\t{4}\t{4}\t{4}\t{4}\nGid:\t{4}\t{4}\t{4}\t{4}\n"
      "FDSize:\t64\nGroups:\t{4} \nThreads:\t1\nCapInh:\t0000000000000000\n"
      "CapPrm:\t0000000000000000\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n"
      "CapAmb:\t0000000000000000\nNoNewPrivs:\t0\nSeccomp:\t0\n",
      p.comm, p.state, p.pid, p.ppid, p.uid);
}

inline std::string cmdlineText(const std::vector<std::string>& args) {
  std::string text;
  for (const auto& arg : args) {
    text += arg;
    text += '\0';
  }
  return text;
}

inline void addProcess(const tier::test::TempTree& tree, const FakeProcess& p) {
  std::string dir = std::to_string(p.pid);
  std::filesystem::remove_all(tree.root() / dir);
  tree.file(dir + "/stat", statText(p));
  tree.file(dir + "/status", statusText(p));
  tree.file(dir + "/cgroup", "12:memory:/legacy\n0::" + p.cgroup + "\n");
  tree.file(dir + "/cmdline", cmdlineText(p.cmdline));
  if (!p.exe.empty()) tree.link(dir + "/exe", p.exe);
}

inline void removeProcess(const tier::test::TempTree& tree, pid_t pid) {
  std::filesystem::remove_all(tree.root() / std::to_string(pid));
}

}  // namespace tierd::workloads::test
