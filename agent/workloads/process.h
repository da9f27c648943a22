// A process as the agent knows it: its identity across pid reuse and the
// facts rules select on, read from a procfs root (the live /proc, the lab's,
// or a fixture tree).
#pragma once

#include <sys/types.h>

#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"
#include "workloads/proc_parsers.h"

namespace tierd::workloads {

// The identity of a process. A pid alone is not one: the kernel reuses pids,
// and the same pid with another start time is another process.
struct ProcessKey {
  pid_t pid = 0;
  uint64_t start_time = 0;  // /proc/PID/stat field 22, clock ticks since boot

  friend auto operator<=>(const ProcessKey&, const ProcessKey&) = default;
};

// "pid 1234 (start 5678)", for messages.
std::string describe(const ProcessKey& key);

struct ProcessInfo {
  ProcessKey key;
  pid_t ppid = 0;
  std::string comm;
  std::string exe;     // readlink /proc/PID/exe; "" if not permitted, a kernel thread, or exiting
  std::string cgroup;  // cgroup v2 path ("/system.slice/x.service"); "" outside any v2 hierarchy
  uid_t uid = 0;       // real uid
  uid_t euid = 0;      // effective uid
  std::vector<std::string> cmdline;
  // PF_KTHREAD set, or no command line (a kernel thread, or a process whose
  // memory is already gone). Such processes are never managed.
  bool kernel_thread = false;
};

// Reads /proc/PID/{stat,status,cgroup,cmdline} and the exe link. Errors:
// ESRCH with context "read process PID" when the process is gone (its
// directory is missing, or its pid was reused while reading); other read
// errors and malformed files are wrapped the same way.
tier::Result<ProcessInfo> readProcess(const tier::FsRoot& proc, pid_t pid);

// The steps of readProcess, for readers that look at a process in stages
// (ProcessWatcher reads stat alone first). Gone processes give ESRCH.
tier::Result<ProcStat> readStat(const tier::FsRoot& proc, pid_t pid);
tier::Result<std::string> readCgroup(const tier::FsRoot& proc, pid_t pid);  // "" if no such file
std::string readExe(const tier::FsRoot& proc, pid_t pid);                   // "" if unreadable
// Reads what `stat` and the optional parts do not hold yet, then reads stat
// again: if the start time changed, the pid was reused meanwhile (ESRCH).
tier::Result<ProcessInfo> completeProcess(const tier::FsRoot& proc, const ProcStat& stat,
                                          std::optional<std::string> exe,
                                          std::optional<std::string> cgroup);

}  // namespace tierd::workloads
