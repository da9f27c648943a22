// The policy loop: one thread that drains the sampler into a heat map per
// initiator, and every plan interval turns the heat into moves:
//   1. where the tracked pages are (move_pages status, kept in the heat map's entries);
//   2. a rolling sweep of each process's memory on the fast tier for pages
//      the heat map does not track (cold by definition: never sampled, or
//      evicted as the coldest), only under pressure or after a plan whose
//      promotions displaced;
//   3. HeatMap::classify: capacity-fitted hot threshold, warm band, benefit
//      margin, demotion only under the low watermark or to make room;
//   4. demotions, then promotions, through the MigrationEngine (its rate
//      limit, headroom and ping-pong back-off apply: respect_backoff).
// Its own CPU time (thread clock) is held under a budget by stretching the
// plan interval; the sampler gets the same budget for its own work.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
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
#include "os/wakeup.h"
#include "policy/placement.h"
#include "policy/planner.h"
#include "policy/poll_wait.h"
#include "policy/sampling_share.h"
#include "sampling/sampler.h"

namespace tierd::policy {

struct PolicySettings {
  std::chrono::milliseconds sample_interval{250};
  std::chrono::milliseconds plan_interval{2000};
  double cpu_budget = 0.03;              // of one core, the whole agent (SamplingShare)
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
  // One line per plan: what it saw and did (the agent logs it at debug, and
  // leaves this unset otherwise: the line is not made for nobody).
  std::function<void(const std::string&)> plan_log;
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
  uint64_t placement_queries = 0, swept_pages = 0;
  double cpu_seconds = 0;  // the loop thread, moves included
  // Where the loop's CPU went: sampler poll + heat map, placement queries,
  // sweep, classify, moves.
  double cpu_sampling = 0, cpu_placement = 0, cpu_sweep = 0, cpu_classify = 0, cpu_moves = 0;
  double plan_interval_s = 0;
  double sampling_budget = 0;  // of one core: the sampler's share now (SamplingShare)
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
    uint64_t resident_on_fast = 0;          // pages, from numa_maps at resident_read
    int64_t moved_since_read = 0;           // promoted - demoted since
    bool promotions_found_no_room = false;  // the last plan's, after it displaced pages
    bool last_plan_displaced = false;       // its promotions needed room (Plan::displacing)
  };

  void run();
  void refreshTargets();
  void sampleOnce(std::chrono::steady_clock::time_point now);
  void feed(const sampling::SampleBatch& batch, uint64_t now_ns);
  void plan(Group& group, uint64_t now_ns);
  std::vector<hotness::PageRef> sweepUntracked(const Group& group, uint64_t now_ns);
  void learnPlacement(Group& group, uint64_t now_ns);
  struct Executed {
    uint64_t promoted = 0, demoted = 0;
    uint64_t promotions_target_full = 0;
    uint64_t already_there = 0;  // planned, but found on their target node
  };
  Executed execute(const MovePlan& moves);
  uint64_t pagesOnFast(Group& group);
  void adaptInterval(double cpu_spent, double wall_spent);
  void logPlan(const Group& group, const hotness::ClassifyInput& in, const hotness::Plan& plan,
               const Executed& done, uint64_t on_fast) const;
  void noteSettling();
  Group& groupFor(int initiator);
  hotness::Config heatConfig(const TierView& view) const;
  void setError(const std::string& error);

  PolicySettings settings_;
  std::unique_ptr<sampling::Sampler> sampler_;
  migrate::MigrationEngine& engine_;
  migrate::PageOps& page_ops_;
  const tier::FsRoot& proc_;
  PolicyEnvironment env_;
  uint64_t placement_rotation_ = 0;  // which sixteenth of the placed pages is asked again
  uint64_t placement_queries_ = 0;

  std::map<int, std::unique_ptr<Group>> groups_;  // by initiator
  std::map<pid_t, int> initiator_of_;
  std::chrono::steady_clock::time_point started_{};  // for the plan log
  std::map<pid_t, uint64_t> sweep_cursor_;
  std::vector<pid_t> targets_;
  std::chrono::steady_clock::time_point next_plan_{}, next_targets_{}, last_plan_{};
  std::map<pid_t, uint64_t> passes_of_;  // scanner passes last reported, per target
  bool pass_finished_ = false;           // a target's scanner finished a pass since the last plan
  std::chrono::milliseconds plan_interval_;
  std::chrono::milliseconds poll_wait_;
  uint64_t round_planned_pages_ = 0, round_hot_pages_ = 0;  // of the plan under way
  int quiet_plans_ = 0;  // PollWait: longer while the rings stay empty
  sampling::SampleBatch batch_;
  bool sampler_started_ = false;
  double move_cpu_ = 0;               // CPU seconds of the last plan's moves
  double sampling_during_moves_ = 0;  // this plan's sampleOnce() calls between moves
  SamplingShare sampling_share_;
  double sampling_budget_ = 0;  // last given to the sampler
  void shareBudget(std::chrono::steady_clock::time_point now);

  mutable std::mutex status_mutex_;
  PolicyStatus status_;

  std::optional<tier::Wakeup> wakeup_;  // the wait between polls; stop() ends it
  std::atomic<bool> stopping_{false};
  std::thread thread_;
};

}  // namespace tierd::policy
