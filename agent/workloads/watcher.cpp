#include "workloads/watcher.h"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <limits>
#include <utility>

#include "workloads/proc_parsers.h"

namespace tierd::workloads {
namespace {

constexpr int kMaxCgroupDepth = 64;

// Adds the pids of the cgroup `dir` (relative to the cgroupfs root) and of its
// descendants. False when the tree cannot be read; a cgroup that does not
// exist (yet, or any more) just has no members.
bool collectMembers(const tier::FsRoot& fs, const std::string& dir, std::unordered_set<pid_t>& pids,
                    int depth) {
  auto procs = fs.readFile(tier::joinPath(dir, "cgroup.procs"));
  if (!procs) return procs.error().errnum == ENOENT || procs.error().errnum == ENODEV;
  auto listed = parseCgroupProcs(*procs);
  if (!listed) return false;
  pids.insert(listed->begin(), listed->end());
  if (depth >= kMaxCgroupDepth) return true;
  auto names = fs.listDir(dir);
  if (!names) return names.error().errnum == ENOENT || names.error().errnum == ENODEV;
  for (const auto& name : *names) {
    std::string child = tier::joinPath(dir, name);
    if (fs.isDir(child) && !collectMembers(fs, child, pids, depth + 1)) return false;
  }
  return true;
}

}  // namespace

ProcessWatcher::ProcessWatcher(std::vector<WorkloadRule> rules, unsigned recheck_every)
    : rules_(std::move(rules)), recheck_every_(std::max(1u, recheck_every)) {}

void ProcessWatcher::setRules(std::vector<WorkloadRule> rules) {
  rules_ = std::move(rules);
  recheck_ = true;
}

ProcessWatcher::CgroupMembers ProcessWatcher::readCgroupMembers(
    const tier::FsRoot* cgroupfs) const {
  CgroupMembers members(rules_.size());
  // Only a cgroup2 root has cgroup.controllers; v1 mounts keep other paths.
  if (cgroupfs == nullptr || !cgroupfs->exists("cgroup.controllers")) return members;
  std::map<std::string, std::optional<std::unordered_set<pid_t>>, std::less<>> by_path;
  for (size_t i = 0; i < rules_.size(); ++i) {
    const auto& cgroup = rules_[i].cgroup;
    if (!cgroup) continue;
    auto it = by_path.find(*cgroup);
    if (it == by_path.end()) {
      std::unordered_set<pid_t> pids;
      bool ok = collectMembers(*cgroupfs, tier::normalizePath(*cgroup), pids, 0);
      it = by_path.emplace(*cgroup, ok ? std::optional(std::move(pids)) : std::nullopt).first;
    }
    members[i] = it->second;
  }
  return members;
}

ProcessWatcher::Verdict ProcessWatcher::decide(const tier::FsRoot& proc, const ProcStat& stat,
                                               const CgroupMembers& members,
                                               const std::vector<uint32_t>& in_rule_cgroups,
                                               ManagedProcess& out) const {
  if (stat.kernelThread()) return Verdict::kNotSelected;
  // Each rule is tried with what stat gives first; the exe link and the
  // cgroup file are read only when a rule still depends on them, and once.
  std::optional<std::string> exe, cgroup;
  const WorkloadRule* chosen = nullptr;
  for (uint32_t i = 0; i < rules_.size() && chosen == nullptr; ++i) {
    const WorkloadRule& rule = rules_[i];
    if (!rule.pids.empty() && !std::binary_search(rule.pids.begin(), rule.pids.end(), stat.pid))
      continue;
    if (rule.comm && !rule.comm->fullMatch(stat.comm)) continue;
    if (rule.cgroup) {
      if (members[i]) {
        if (std::find(in_rule_cgroups.begin(), in_rule_cgroups.end(), i) == in_rule_cgroups.end())
          continue;
      } else {
        if (!cgroup) {
          auto read = readCgroup(proc, stat.pid);
          if (!read) return Verdict::kSkipped;
          cgroup = std::move(*read);
        }
        if (!cgroupContains(*rule.cgroup, *cgroup)) continue;
      }
    }
    if (rule.exe) {
      if (!exe) exe = readExe(proc, stat.pid);
      if (exe->empty() || !rule.exe->fullMatch(*exe)) continue;
    }
    chosen = &rule;
  }
  if (chosen == nullptr) return Verdict::kNotSelected;
  auto info = completeProcess(proc, stat, std::move(exe), std::move(cgroup));
  if (!info) return Verdict::kSkipped;
  if (info->kernel_thread) return Verdict::kNotSelected;
  out = ManagedProcess{std::move(*info), chosen->name};
  return Verdict::kSelected;
}

tier::Result<ProcessWatcher::ScanResult> ProcessWatcher::scan(const tier::FsRoot& proc,
                                                              const tier::FsRoot* cgroupfs) {
  auto numbers = proc.listNumbered("");
  if (!numbers) return std::unexpected(tier::wrap(numbers.error(), "list processes"));
  std::vector<pid_t> pids;
  pids.reserve(numbers->size());
  for (uint64_t n : *numbers)
    if (n > 0 && n <= static_cast<uint64_t>(std::numeric_limits<pid_t>::max()))
      pids.push_back(static_cast<pid_t>(n));

  const CgroupMembers members = readCgroupMembers(cgroupfs);
  ScanResult result;
  std::map<ProcessKey, ManagedProcess> still;
  std::unordered_map<pid_t, Seen> next_seen;
  next_seen.reserve(pids.size());
  std::vector<uint32_t> in_rule_cgroups;

  ++scans_;
  for (pid_t pid : pids) {
    in_rule_cgroups.clear();
    for (uint32_t i = 0; i < members.size(); ++i)
      if (members[i] && members[i]->contains(pid)) in_rule_cgroups.push_back(i);
    auto prev = seen_.find(pid);
    // A process judged unselected is read again only on its turn (or when
    // its rule cgroups change): its stat is most of a scan's cost.
    if (!recheck_ && prev != seen_.end() && !prev->second.selected &&
        prev->second.in_rule_cgroups == in_rule_cgroups &&
        (static_cast<uint64_t>(pid) + scans_) % recheck_every_ != 0) {
      next_seen.emplace(pid, std::move(prev->second));
      continue;
    }
    auto stat = readStat(proc, pid);
    if (!stat || stat->exited()) continue;  // vanished, unreadable, or a zombie
    const ProcessKey key{pid, stat->start_time};
    if (!recheck_ && prev != seen_.end() && prev->second.start_time == key.start_time &&
        prev->second.comm == stat->comm && prev->second.in_rule_cgroups == in_rule_cgroups) {
      bool kept = true;
      if (prev->second.selected) {
        auto node = managed_.extract(key);
        kept = !node.empty();
        if (kept) still.insert(std::move(node));
      }
      if (kept) {
        next_seen.emplace(pid, std::move(prev->second));
        continue;
      }
    }

    ManagedProcess chosen;
    Verdict verdict = decide(proc, *stat, members, in_rule_cgroups, chosen);
    if (verdict == Verdict::kSkipped) {
      // Unreadable for now: keep what we had and decide again next scan. A
      // process that is really gone is not listed then, and exits.
      if (auto node = managed_.extract(key); !node.empty()) still.insert(std::move(node));
      continue;
    }
    bool selected = verdict == Verdict::kSelected;
    if (selected) {
      if (managed_.extract(key).empty()) result.appeared.push_back(chosen.process);
      still.emplace(key, std::move(chosen));
    }
    next_seen.emplace(pid, Seen{key.start_time, stat->comm, in_rule_cgroups, selected});
  }

  for (const auto& [key, process] : managed_)
    result.exited.push_back(key);
  managed_ = std::move(still);
  seen_ = std::move(next_seen);
  recheck_ = false;
  return result;
}

}  // namespace tierd::workloads
