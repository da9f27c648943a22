// Parsers for the per-process files of procfs that tell which process is
// which: /proc/PID/stat, status, cgroup and cmdline. Like libtier/parse, they
// take text, never paths; malformed text is an error naming the field, line
// or token at fault.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"

namespace tierd::workloads {

// PF_KTHREAD in the flags field of /proc/PID/stat (include/linux/sched.h).
inline constexpr uint64_t kPfKthread = 0x00200000;

// The fields of /proc/PID/stat that identify a process.
struct ProcStat {
  pid_t pid = 0;            // field 1
  std::string comm;         // field 2, without the parentheses; may hold spaces and ')'
  char state = '?';         // field 3: R, S, D, Z, X, ...
  pid_t ppid = 0;           // field 4
  uint64_t flags = 0;       // field 9: PF_* bits
  uint64_t start_time = 0;  // field 22: clock ticks from boot to the process's start

  bool kernelThread() const { return (flags & kPfKthread) != 0; }
  // Zombie or dead: the pid is still listed, but the memory is gone.
  bool exited() const { return state == 'Z' || state == 'X' || state == 'x'; }
};

// "1234 (comm) S 1 ...". The comm ends at the LAST ')' of the text, because a
// process may name itself "a) b (c" with prctl(PR_SET_NAME).
tier::Result<ProcStat> parseProcStat(std::string_view text);

// The lines of /proc/PID/status tierd needs.
struct ProcStatus {
  uid_t uid = 0;         // "Uid:" real
  uid_t euid = 0;        // "Uid:" effective
  uint64_t cap_eff = 0;  // "CapEff:" in hex
};
tier::Result<ProcStatus> parseProcStatus(std::string_view text);

// The cgroup v2 path from /proc/PID/cgroup: the "0::/path" line. Lines of v1
// hierarchies ("4:memory:/x") are checked for form and otherwise ignored. A
// process outside any v2 hierarchy (a v1-only host) gives "".
tier::Result<std::string> parseProcCgroup(std::string_view text);

// /proc/PID/cmdline: NUL-separated arguments; a final NUL is optional (a
// process that rewrote its argv may leave none). Empty text (kernel threads,
// zombies) gives no arguments. Never fails: any bytes are an argument.
std::vector<std::string> parseCmdline(std::string_view text);

// cgroup.procs of a cgroup v2 directory: one pid per line.
tier::Result<std::vector<pid_t>> parseCgroupProcs(std::string_view text);

}  // namespace tierd::workloads
