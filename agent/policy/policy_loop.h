// The policy loop: one thread that drains the sampler into a heat map per
// initiator, and every plan interval turns the heat into moves:
//   1. where the tracked pages are (move_pages status, kept in the heat map);
//   2. a rolling sweep of each process's memory on the fast tier for pages
//      the heat map does not track (cold by definition: never sampled, or
//      evicted as the coldest);
//   3. HeatMap::classify: capacity-fitted hot threshold, warm band, benefit
//      margin, demotion only under the low watermark or to make room;
//   4. demotions, then promotions, through the MigrationEngine (its rate
//      limit, headroom and ping-pong back-off apply: respect_backoff).
// CPU: the whole process is held under cpu_budget by a CpuGovernor (plans
// wait, and moves stop, while it is spent); the sampler paces itself to
// kSamplingShare of the budget, and a costly plan stretches the plan interval
// so that planning stays near kPlanningShare. Moves get the rest.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "fs/fs_root.h"
#include "hotness/heat_map.h"
#include "migrate/engine.h"
#include "policy/cpu_governor.h"
#include "policy/placement.h"
#include "policy/planner.h"
#include "sampling/sampler.h"

namespace tierd::policy {

// Shares of PolicySettings::cpu_budget the sampler and the planning aim at.
inline constexpr double kSamplingShare = 0.35;
inline constexpr double kPlanningShare = 0.25;

struct PolicySettings {
  std::chrono::milliseconds sample_interval{250};
  std::chrono::milliseconds plan_interval{2000};
  double cpu_budget = 0.03;              // of one core: the whole process
  double low_watermark_fraction = 0.01;  // of the fast tier: demote cold pages below it
  double benefit_margin = 2.0;
  double cold_divisor = 4.0;
  double min_hot_fraction = 0.01;  // of the hottest page's heat
  double fast_half_life_s = 5.0;
  double slow_half_life_s = 20.0;
  double heat_map_fraction = 0.001;   // of the memory of all tiers
  uint64_t sweep_pages = 4096;        // per process per plan
  uint64_t placement_queries = 8192;  // pages asked about per plan, at most
  bool dry_run = false;
};

struct ProcessInfo {
  pid_t pid = 0;
  std::string label;  // workload rule name or cgroup, for per-label hot bytes
  std::optional<int> initiator;
};

// What the loop asks the daemon for; called from the loop thread.
struct PolicyEnvironment {
  std::function<std::vector<ProcessInfo>()> processes;
  std::function<std::vector<TierView>()> tiers;  // fresh node memory
  std::function<RoomSettings()> room;            // headroom and rate from [migration]
  std::function<std::map<int, uint64_t>(pid_t)> resident_bytes_by_node;  // numa_maps
};

struct PolicyStatus {
  std::string sampler;
  sampling::SamplerStats sampler_stats;
  std::string sampler_detail;
  uint64_t plans = 0;
  uint64_t pages_promoted = 0, pages_demoted = 0, pages_failed = 0;
  std::map<std::string, uint64_t>
      failed_by_reason;  // the engine's reasons: target_full, backoff, EBUSY, ...
  uint64_t pages_planned_promote = 0, pages_planned_demote = 0;
  uint64_t pingpong_moves = 0;
  double hot_threshold = 0;
  uint64_t hot_pages = 0;
  uint64_t heat_entries = 0, heat_bytes = 0, heat_max_entries = 0;
  uint64_t heat_rejected = 0;  // samples of new pages the full map turned away
  uint64_t placement_queries = 0, swept_pages = 0;
  double cpu_seconds = 0;  // the loop thread, moves included
  // Where the loop's CPU went: sampler poll + heat map, placement queries,
  // sweep, classify, moves.
  double cpu_sampling = 0, cpu_placement = 0, cpu_sweep = 0, cpu_classify = 0, cpu_moves = 0;
  double plan_interval_s = 0;
  double process_cpu_seconds = 0;       // the whole process, as the governor last saw it
  double cpu_available_s = 0;           // the governor's bucket (negative: in debt)
  uint64_t plans_waited_for_cpu = 0;    // times a due plan waited for the CPU budget
  uint64_t pages_deferred_for_cpu = 0;  // planned moves left for a later plan (budget spent)
  double move_cpu_per_page_s = 0;       // measured: CPU per page moved (kernel time included)
  std::map<pid_t, uint64_t> hot_bytes_by_pid;
  std::map<std::string, uint64_t> hot_bytes_by_label;
  std::string last_error;
};

class PolicyLoop {
 public:
  PolicyLoop(PolicySettings settings, std::unique_ptr<sampling::Sampler> sampler,
             migrate::MigrationEngine& engine, migrate::PageOps& page_ops, const tier::FsRoot& proc,
             PolicyEnvironment env);
  ~PolicyLoop();

  void start();
  void stop();  // joins; stops the sampler
  PolicyStatus status() const;

  // One sampling step and, when due, one plan: what the thread does per
  // interval. Public for tests that drive the loop without the thread.
  void step(std::chrono::steady_clock::time_point now);
  void planNow();

 private:
  struct Group {
    explicit Group(const hotness::Config& config) : heat(config) {}
    hotness::HeatMap heat;
    TierView view;
    std::chrono::steady_clock::time_point resident_read{};
    uint64_t resident_on_fast = 0;  // pages, from numa_maps at resident_read
    int64_t moved_since_read = 0;   // promoted - demoted since
    MovePlan pending;               // the last plan's moves; drain() carries them out
    size_t demote_at = 0, promote_at = 0;
    struct Executed {
      uint64_t promoted = 0, demoted = 0;
      uint64_t promotions_target_full = 0;
    } done;  // of the last plan, so far
  };

  void run();
  void refreshTargets();
  void sampleOnce(std::chrono::steady_clock::time_point now);
  void feed(const sampling::SampleBatch& batch, uint64_t now_ns);
  void plan(Group& group, uint64_t now_ns);
  void learnPlacement(Group& group, uint64_t now_ns);
  void noteSampling();
  std::vector<hotness::PageRef> sweepUntracked(const Group& group, uint64_t now_ns);
  void drain(Group& group);
  static uint64_t pendingPages(const Group& group);
  uint64_t pagesOnFast(Group& group);
  void adaptInterval(double cpu_spent, double wall_spent);
  void learnMoveCost(double cpu_seconds, const migrate::MoveResult& result);
  Group& groupFor(int initiator);
  hotness::Config heatConfig(const TierView& view) const;
  void setError(const std::string& error);

  PolicySettings settings_;
  std::unique_ptr<sampling::Sampler> sampler_;
  migrate::MigrationEngine& engine_;
  migrate::PageOps& page_ops_;
  const tier::FsRoot& proc_;
  PolicyEnvironment env_;
  uint64_t placement_rotation_ = 0;
  uint64_t placement_queries_ = 0;  // pages asked about, in total

  std::map<int, std::unique_ptr<Group>> groups_;  // by initiator
  std::map<pid_t, int> initiator_of_;
  std::map<pid_t, uint64_t> sweep_cursor_;
  std::vector<pid_t> targets_;
  std::chrono::steady_clock::time_point next_plan_{}, next_targets_{}, last_plan_{};
  std::map<pid_t, uint64_t> passes_of_;  // scanner passes last reported, per target
  bool pass_finished_ = false;           // a target's scanner finished a pass since the last plan
  std::chrono::milliseconds plan_interval_;
  sampling::SampleBatch batch_;
  bool sampler_started_ = false;
  double move_cpu_ = 0;  // CPU seconds of the last plan's moves
  CpuGovernor governor_;
  double plan_cost_ = 0;  // CPU seconds of the last plan, moves left out
  double move_cost_per_page_;
  bool moves_measured_ = false;
  bool waiting_for_cpu_ = false;
  bool sampler_squeezed_ = false;  // its budget halved while the process is in debt
  std::chrono::steady_clock::time_point next_sampling_note_{};

  mutable std::mutex status_mutex_;
  PolicyStatus status_;

  std::mutex wake_mutex_;
  std::condition_variable wake_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace tierd::policy
