// The Agent's side of the policy loop: which sampler, what the loop may ask
// the daemon (managed processes, tiers, room), and how it is reported.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "daemon/agent.h"
#include "daemon/log.h"
#include "discovery/sysfs_reader.h"
#include "sampling/select.h"

namespace tierd {

namespace {

constexpr uint64_t kMiB = 1ULL << 20;
// The kernel's scanner on with the memory-tiering bit (so far pages are
// scanned and their hint faults handled by the tiering path) and the normal
// bit (so fast pages are scanned too and their heat is seen); the promote
// rate limit at 0 keeps the kernel from promoting anything itself.
constexpr int64_t kScanningMode = 3;

}  // namespace

policy::PolicySettings Agent::policySettings() const {
  const config::PolicyConfig& p = config_.policy;
  policy::PolicySettings s;
  s.sample_interval = p.sample_interval;
  s.plan_interval = p.interval;
  s.cpu_budget = p.cpu_budget_percent / 100.0;
  s.low_watermark_fraction = p.low_watermark_percent / 100.0;
  s.benefit_margin = p.benefit_margin;
  s.cold_divisor = p.cold_divisor;
  s.fast_half_life_s = p.fast_half_life_s;
  s.slow_half_life_s = p.slow_half_life_s;
  s.heat_map_fraction = p.heat_map_percent / 100.0;
  s.dry_run = dryRun();
  return s;
}

sampling::perf::ScanningHooks Agent::scanningHooks() {
  if (config_.mode == config::Mode::Takeover) {
    auto pacing = std::make_shared<kernel_tiering::ScanPacing>();
    return {.enable = [this]() -> tier::Result<void> {
              if (!knobs_) {
                auto knobs =
                    kernel_tiering::KernelKnobs::open(options_.sysfs_root, options_.procfs_root);
                if (!knobs) return std::unexpected(knobs.error());
                knobs_.emplace(std::move(*knobs));
              }
              return knobs_->setNumaBalancing(kScanningMode, 0);
            },
            .restore =
                [this, pacing] {
                  pacing->reset();
                  if (!knobs_) return;
                  for (const auto& outcome : knobs_->restore())
                    if (!outcome.restored && !outcome.note.empty())
                      log(Priority::Warning, "{}", outcome.note);
                },
            .cap_scan_period = [this, pacing](int64_t ms) -> tier::Result<int64_t> {
              if (!knobs_) return tier::fail(ENOENT, "kernel knobs not open");
              return pacing->cap(*knobs_, ms);
            }};
  }
  // coexist: kernel knobs are not ours; hint faults exist only if the kernel scans.
  return {.usable = [this]() -> tier::Result<void> {
            auto text = proc_.readFile("sys/kernel/numa_balancing");
            if (!text) return std::unexpected(text.error());
            if (text->empty() || text->front() == '0')
              return tier::fail(EPERM,
                                "kernel.numa_balancing is 0 and mode coexist leaves kernel knobs "
                                "alone (use mode takeover, or set numa_balancing to 2)");
            return {};
          },
          .enable = []() -> tier::Result<void> { return {}; },
          .restore = [] {}};
}

std::vector<policy::TierView> Agent::tierViews() const {
  std::shared_lock lock(state_mutex_);
  std::vector<policy::TierView> views;
  const auto memory = [this](int node) {
    policy::NodeMemory m{node, 0, 0, 0};
    if (auto read = tier::readNodeMemory(sys_, node)) {
      m.total_bytes = read->total_bytes;
      m.free_bytes = read->free_bytes;
    }
    if (auto marks = tier::readNodeWatermarks(proc_, node)) {
      m.kernel_reserve_bytes = marks->moverFloor();
      m.per_cpu_free_bytes = marks->per_cpu_free;
    }
    return m;
  };
  for (const auto& initiator : topology_.initiators) {
    policy::TierView view;
    view.initiator = initiator.initiator;
    for (const auto& tier : initiator.tiers) {
      if (tier.rank > 1) break;
      for (int node : tier.nodes)
        (tier.rank == 0 ? view.fast : view.slower).push_back(memory(node));
    }
    views.push_back(std::move(view));
  }
  return views;
}

std::vector<policy::ProcessInfo> Agent::policyProcesses() const {
  std::map<int, std::vector<int>> cpus_by_node;
  {
    std::shared_lock lock(state_mutex_);
    for (const auto& node : topology_.facts.nodes)
      if (!node.cpus.empty()) cpus_by_node[node.id] = node.cpus;
  }
  std::vector<policy::ProcessInfo> out;
  std::lock_guard lock(watcher_mutex_);
  for (const auto& [key, managed] : watcher_.managed()) {
    policy::ProcessInfo info;
    info.pid = key.pid;
    info.label = managed.rule;
    if (auto cpus = allowedCpus(proc_, key.pid))
      info.initiator = policy::initiatorOf(*cpus, cpus_by_node);
    out.push_back(std::move(info));
  }
  return out;
}

policy::RoomSettings Agent::policyRoom() const {
  std::shared_lock lock(state_mutex_);
  const auto& m = config_.migration;
  policy::RoomSettings room;
  uint64_t fast_total = 0;
  for (const auto& initiator : topology_.initiators)
    for (const auto& tier : initiator.tiers)
      if (tier.rank == 0)
        for (int node : tier.nodes)
          if (const auto* facts = topology_.nodeFacts(node))
            fast_total = std::max(fast_total, facts->total_bytes.value_or(0));
  room.headroom_bytes =
      std::max(static_cast<uint64_t>(m.min_free_mb * kMiB),
               static_cast<uint64_t>(m.min_free_percent / 100.0 * static_cast<double>(fast_total)));
  room.rate_bytes_per_second = m.rate_limit_mbps * kMiB;
  return room;
}

void Agent::startPolicy() {
  const config::Mode mode = config_.mode;
  // observe moves nothing; kernel leaves the moving to the kernel.
  if (!config_.policy.enabled || mode == config::Mode::Observe || mode == config::Mode::Kernel)
    return;
  sampling::SelectOptions select;
  select.preference = config_.policy.sampler;
  select.sysfs_dir = options_.sysfs_root;
  select.procfs_dir = options_.procfs_root;
  select.hint_fault_hooks = scanningHooks();
  select.cpu_budget = config_.policy.cpu_budget_percent / 100.0 / 2;
  auto selection = sampling::selectSampler(select, sys_, proc_);
  if (!selection) {
    log(Priority::Warning, "Policy off: {}", selection.error().message());
    return;
  }
  for (const auto& skipped : selection->skipped)
    log(Priority::Info, "sampler skipped: {}", skipped);
  log(Priority::Info, "policy on, sampler {}", selection->sampler->name());
  policy::PolicyEnvironment env{
      .processes = [this] { return policyProcesses(); },
      .tiers = [this] { return tierViews(); },
      .room = [this] { return policyRoom(); },
      .resident_bytes_by_node = [this](pid_t pid) { return residentBytesByNode(pid); }};
  if (logs(Priority::Debug))
    env.plan_log = [](const std::string& line) { log(Priority::Debug, "{}", line); };
  policy_ = std::make_unique<policy::PolicyLoop>(policySettings(), std::move(selection->sampler),
                                                 *engine_, page_ops_, proc_, std::move(env));
  policy_->start();
}

void Agent::stopPolicy() {
  if (!policy_) return;
  policy_->stop();
  policy_.reset();
}

control::Json Agent::policyJson() const {
  control::Json out;
  if (!policy_) {
    out["running"] = false;
    return out;
  }
  const policy::PolicyStatus s = policy_->status();
  out["running"] = true;
  out["sampler"] = s.sampler;
  out["samples"] = s.sampler_stats.samples;
  out["samples_lost"] = s.sampler_stats.lost;
  out["samples_throttled"] = s.sampler_stats.throttled;
  out["sampler_cpu_seconds"] = s.sampler_stats.cpu_seconds;
  out["sampling_budget_percent"] = 100.0 * s.sampling_budget;
  out["sampler_detail"] = s.sampler_detail;
  out["plans"] = s.plans;
  out["plan_interval_seconds"] = s.plan_interval_s;
  out["pages_promoted"] = s.pages_promoted;
  out["pages_demoted"] = s.pages_demoted;
  out["pages_failed"] = s.pages_failed;
  out["pages_failed_by_reason"] = s.failed_by_reason;
  out["pingpong_moves"] = s.pingpong_moves;
  out["hot_threshold"] = s.hot_threshold;
  out["hot_pages"] = s.hot_pages;
  out["heat_entries"] = s.heat_entries;
  out["heat_max_entries"] = s.heat_max_entries;
  out["heat_bytes"] = s.heat_bytes;
  out["placement_queries"] = s.placement_queries;
  out["swept_pages"] = s.swept_pages;
  out["cpu_seconds"] = s.cpu_seconds;
  out["hot_bytes"] = control::Json::object();
  for (const auto& [pid, bytes] : s.hot_bytes_by_pid)
    out["hot_bytes"][std::to_string(pid)] = bytes;
  if (!s.last_error.empty()) out["last_error"] = s.last_error;
  return out;
}

namespace {
// " (target_full 12, backoff 3)", or nothing when no page failed.
std::string failedReasons(const std::map<std::string, uint64_t>& reasons) {
  if (reasons.empty()) return "";
  std::vector<std::string> parts;
  for (const auto& [reason, count] : reasons)
    parts.push_back(fmt::format("{} {}", reason, count));
  return fmt::format(" ({})", fmt::join(parts, ", "));
}
}  // namespace

void Agent::logPolicySummary() const {
  if (!policy_) return;
  const policy::PolicyStatus s = policy_->status();
  log(Priority::Info,
      "policy: {} plans (every {:.1f} s), promoted {} demoted {} failed {} pages{}, {} hot pages "
      "(threshold {:.3g}), heat map {}/{} entries; sampler {}: {} samples, {} lost, {:.2f} s CPU "
      "({}), budget {:.2f} %; "
      "loop {:.2f} s CPU (sampling {:.2f}, placement {:.2f}, sweep {:.2f}, classify {:.2f}, moves "
      "{:.2f}), {} placement queries, {} swept{}{}",
      s.plans, s.plan_interval_s, s.pages_promoted, s.pages_demoted, s.pages_failed,
      failedReasons(s.failed_by_reason), s.hot_pages, s.hot_threshold, s.heat_entries,
      s.heat_max_entries, s.sampler, s.sampler_stats.samples, s.sampler_stats.lost,
      s.sampler_stats.cpu_seconds, s.sampler_detail, 100.0 * s.sampling_budget, s.cpu_seconds,
      s.cpu_sampling, s.cpu_placement, s.cpu_sweep, s.cpu_classify, s.cpu_moves,
      s.placement_queries, s.swept_pages,
      s.last_error.empty() ? "" : "; last error: ", s.last_error);
}

void Agent::publishPolicyMetrics() {
  if (!policy_) return;
  const policy::PolicyStatus s = policy_->status();
  auto& r = registry_;
  using metrics::Type;
  r.describe("tierd_policy_samples_total", Type::Counter, "Accesses the sampler delivered.");
  r.describe("tierd_policy_samples_lost_total", Type::Counter, "Samples the kernel dropped.");
  r.describe("tierd_policy_plans_total", Type::Counter, "Plans the policy loop made.");
  r.describe("tierd_policy_pages_total", Type::Counter, "Pages the policy moved, by direction.");
  r.describe("tierd_policy_hot_pages", Type::Gauge, "Pages at or above the hot threshold.");
  r.describe("tierd_policy_heat_map_bytes", Type::Gauge, "Memory held by the heat maps.");
  r.describe("tierd_policy_cpu_seconds_total", Type::Counter, "CPU of the policy loop thread.");
  const metrics::Labels sampler{{"sampler", s.sampler}};
  r.set("tierd_policy_samples_total", sampler, static_cast<double>(s.sampler_stats.samples));
  r.set("tierd_policy_samples_lost_total", sampler, static_cast<double>(s.sampler_stats.lost));
  r.set("tierd_policy_plans_total", {}, static_cast<double>(s.plans));
  r.set("tierd_policy_pages_total", {{"direction", "promote"}},
        static_cast<double>(s.pages_promoted));
  r.set("tierd_policy_pages_total", {{"direction", "demote"}},
        static_cast<double>(s.pages_demoted));
  r.set("tierd_policy_hot_pages", {}, static_cast<double>(s.hot_pages));
  r.set("tierd_policy_heat_map_bytes", {}, static_cast<double>(s.heat_bytes));
  r.set("tierd_policy_cpu_seconds_total", {}, s.cpu_seconds);
}

}  // namespace tierd
