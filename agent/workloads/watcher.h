// Which processes are managed right now. The daemon calls scan() once per
// tick; the watcher keeps what it learned between calls and has no threads.
// Not thread-safe: one caller at a time.
//
// Cost of one scan, for N processes in /proc:
//   - one listing of /proc and one read of /proc/PID/stat per process: about
//     10-20 us each on a busy 2-core VM, mostly the kernel formatting stat, so
//     tens of ms for thousands of processes. The stat read is unavoidable: only
//     its start time tells a live process from a new one that reused the pid;
//   - nothing else for processes seen before whose comm (and, with a cgroupfs,
//     cgroup membership) did not change. Verdicts, selected or not, are kept
//     per ProcessKey;
//   - for a new process (or one whose comm changed, as after execve): the
//     rules are tried against stat first (pids, comm, and cgroup membership
//     from the cgroupfs). Only processes still possible read more: the exe
//     link if a rule tests exe, /proc/PID/cgroup if a rule tests cgroup and no
//     cgroupfs was given, and only a selected process reads status, cmdline
//     and stat once more (to check that the pid was not reused meanwhile);
//   - with a cgroupfs and cgroup rules: per rule cgroup, a walk of its subtree
//     (one listing and a stat per entry, one read of cgroup.procs per cgroup).
// So the steady state costs N + 1 reads (and the cgroup walks, if any), and
// unselected processes are only reread every kRecheckEvery scans (a tenth of
// them per scan): a busy 2-core guest spent 1.6 % of a core on the stat reads
// of 70 mostly kernel threads once a second. A managed process and a new pid
// are read every scan. The listing parses pids as it reads (no names sorted).
//
// Membership is decided when a process is first seen and again when its comm
// changes (noticed within kRecheckEvery scans), when (with a cgroupfs) the rule cgroups holding it
// change, and after setRules. Without a cgroupfs, a process moved into a rule's cgroup without an
// exec is not noticed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/result.h"
#include "fs/fs_root.h"
#include "workloads/process.h"
#include "workloads/rules.h"

namespace tierd::workloads {

struct ManagedProcess {
  ProcessInfo process;
  std::string rule;  // name of the first rule it matched
};

class ProcessWatcher {
 public:
  struct ScanResult {
    std::vector<ProcessInfo> appeared;  // newly managed, by pid
    // Left the managed set, by key: the process ended (or is a zombie), its pid
    // now belongs to another process, or after setRules no rule selects it.
    std::vector<ProcessKey> exited;
  };

  // An unselected process is read again every `recheck_every` scans (spread
  // by pid), so an exec into a matching program, or a pid reused by one, is
  // noticed within that many scans; new pids and managed ones every scan.
  static constexpr unsigned kRecheckEvery = 10;
  explicit ProcessWatcher(std::vector<WorkloadRule> rules, unsigned recheck_every = kRecheckEvery);

  // New rules (config reload). The next scan decides every process again: a
  // managed process no rule selects is reported exited, one now selected by
  // another rule keeps its place with the new rule name.
  void setRules(std::vector<WorkloadRule> rules);
  const std::vector<WorkloadRule>& rules() const { return rules_; }

  // `proc`: the procfs root. `cgroupfs`: the cgroup2 mount, whose cgroup.procs
  // files give the members of the rules' cgroups; null to read each candidate's
  // /proc/PID/cgroup instead. A process that vanishes or cannot be read during
  // the scan is skipped (and retried next time); only failing to list `proc` is
  // an error.
  tier::Result<ScanResult> scan(const tier::FsRoot& proc, const tier::FsRoot* cgroupfs);

  const std::map<ProcessKey, ManagedProcess>& managed() const { return managed_; }

 private:
  // What decided a verdict; when it changes, the verdict is made again.
  struct Seen {
    uint64_t start_time = 0;
    std::string comm;
    std::vector<uint32_t> in_rule_cgroups;  // indexes of rules whose cgroup (per cgroupfs) holds it
    bool selected = false;
  };
  // Per rule: the pids in its cgroup subtree, when read from the cgroupfs.
  using CgroupMembers = std::vector<std::optional<std::unordered_set<pid_t>>>;

  CgroupMembers readCgroupMembers(const tier::FsRoot* cgroupfs) const;
  enum class Verdict { kSelected, kNotSelected, kSkipped };
  Verdict decide(const tier::FsRoot& proc, const ProcStat& stat, const CgroupMembers& members,
                 const std::vector<uint32_t>& in_rule_cgroups, ManagedProcess& out) const;

  std::vector<WorkloadRule> rules_;
  std::map<ProcessKey, ManagedProcess> managed_;
  std::unordered_map<pid_t, Seen> seen_;
  bool recheck_ = true;
  unsigned recheck_every_;
  uint64_t scans_ = 0;
};

}  // namespace tierd::workloads
