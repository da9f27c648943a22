#include "policy/policy_loop.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <unordered_set>

#include <fmt/format.h>

#include "parse/parsers.h"

namespace tierd::policy {

namespace {

using Clock = std::chrono::steady_clock;
constexpr unsigned kPageShift = 12;
constexpr auto kTargetsEvery = std::chrono::seconds(1);
// Up to 20 s: a plan costs 0.05-0.1 s of a TCG guest's CPU (placement
// queries, the sweep, classifying 40 000 entries), so under a 0.6 % share it
// cannot come more often than every 10-15 s; with hint faults the plans that
// matter come anyway, when a scanner pass finishes.
constexpr auto kMaxPlanInterval = std::chrono::seconds(20);
constexpr auto kMinPlanGap = std::chrono::seconds(1);
// A plan moving at most this many pages (or 1 % of the hot pages) is quiet.
constexpr uint64_t kSettledPages = 64;
constexpr int kSettledPlans = 2;        // quiet plans in a row: settled
constexpr double kPlanningShare = 0.2;  // of cpu_budget, for placement, sweep and classify
constexpr auto kResidentEvery = std::chrono::seconds(30);
constexpr uint64_t kPagesPerRequest = 2048;  // 8 MiB: 125 ms at 64 MiB/s

double processCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double threadCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

uint64_t nanos(Clock::time_point t) {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

// Private anonymous memory: what a policy may move (file pages and shared
// mappings belong to everybody).
bool movable(const tier::MapsEntry& m) {
  if (m.perms.size() < 4 || m.perms[0] != 'r' || m.perms[1] != 'w' || m.perms[3] != 'p')
    return false;
  return m.path.empty() || m.path == "[heap]" || m.path.starts_with("[anon:");
}

}  // namespace

PolicyLoop::PolicyLoop(PolicySettings settings, std::unique_ptr<sampling::Sampler> sampler,
                       migrate::MigrationEngine& engine, migrate::PageOps& page_ops,
                       const tier::FsRoot& proc, PolicyEnvironment env)
    : settings_(settings),
      sampler_(std::move(sampler)),
      engine_(engine),
      page_ops_(page_ops),
      proc_(proc),
      env_(std::move(env)),
      plan_interval_(settings.plan_interval),
      poll_wait_(settings.sample_interval),
      sampling_share_(settings.cpu_budget) {
  sampling_budget_ = SamplingShare::kCeiling * settings_.cpu_budget;
  sampler_->setCpuBudget(sampling_budget_);
  status_.sampling_budget = sampling_budget_;
  status_.sampler = std::string(sampler_->name());
  status_.plan_interval_s = std::chrono::duration<double>(plan_interval_).count();
}

PolicyLoop::~PolicyLoop() {
  stop();
}

void PolicyLoop::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  started_ = Clock::now();
  if (auto wakeup = tier::Wakeup::create()) {
    wakeup_.emplace(std::move(*wakeup));
  } else {
    setError(wakeup.error().message());
  }
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "tierd-policy");  // top -H, /proc/PID/task/*/comm
    run();
  });
}

void PolicyLoop::stop() {
  stopping_ = true;
  if (wakeup_) wakeup_->wake();
  if (thread_.joinable()) thread_.join();
  if (sampler_started_) {
    if (auto ok = sampler_->stop(); !ok) setError(ok.error().message());
    sampler_started_ = false;
  }
}

PolicyStatus PolicyLoop::status() const {
  std::lock_guard lock(status_mutex_);
  return status_;
}

void PolicyLoop::setError(const std::string& error) {
  std::lock_guard lock(status_mutex_);
  status_.last_error = error;
}

void PolicyLoop::run() {
  while (!stopping_) {
    const double cpu0 = threadCpuSeconds();
    step(Clock::now());
    {
      std::lock_guard lock(status_mutex_);
      status_.cpu_seconds += threadCpuSeconds() - cpu0;
    }
    poll_wait_ = PollWait::next(poll_wait_, settings_.sample_interval, sampler_->bufferFill());
    if (wakeup_) {
      wakeup_->wait(sampler_->readyFds(), poll_wait_);
    } else {
      std::this_thread::sleep_for(settings_.sample_interval);  // no eventfd: poll on the timer
    }
  }
}

void PolicyLoop::step(Clock::time_point now) {
  if (now >= next_targets_) {
    next_targets_ = now + kTargetsEvery;
    refreshTargets();
    shareBudget(now);
  }
  if (!sampler_started_) return;
  sampleOnce(now);
  // A finished scanner pass is fresh evidence: plan on it without waiting
  // out an interval the CPU budget stretched (passes themselves are paced by
  // that budget), but never twice within kMinPlanGap. Holding such plans to
  // half the interval cost the lab's shift bench its recovery (0.66 of the
  // oracle 50 s after the shift, against 1.0 within 27 s).
  const bool pass_due = pass_finished_ && now >= last_plan_ + kMinPlanGap;
  if (now < next_plan_ && !pass_due) return;
  pass_finished_ = false;
  last_plan_ = now;
  const double cpu0 = threadCpuSeconds();
  move_cpu_ = 0;
  sampling_during_moves_ = 0;
  planNow();
  // Moves are paced by the migration rate limit and sampling by its share;
  // the plan interval scales planning alone.
  adaptInterval(threadCpuSeconds() - cpu0 - move_cpu_ - sampling_during_moves_,
                std::chrono::duration<double>(plan_interval_).count());
  next_plan_ = Clock::now() + plan_interval_;
}

void PolicyLoop::sampleOnce(Clock::time_point now) {
  batch_.clear();
  const double cpu0 = threadCpuSeconds();
  if (auto ok = sampler_->poll(batch_); !ok) setError(ok.error().message());
  feed(batch_, nanos(now));
  std::lock_guard lock(status_mutex_);
  status_.cpu_sampling += threadCpuSeconds() - cpu0;
}

hotness::Config PolicyLoop::heatConfig(const TierView& view) const {
  uint64_t managed = 0;
  for (const auto& n : view.fast)
    managed += n.total_bytes;
  for (const auto& n : view.slower)
    managed += n.total_bytes;
  hotness::Config config;
  config.page_shift = kPageShift;
  const sampling::Sampler::HalfLives floor = sampler_->minimumHalfLives();
  config.fast_half_life_s = std::max(settings_.fast_half_life_s, floor.fast_s);
  config.slow_half_life_s = std::max(settings_.slow_half_life_s, floor.slow_s);
  const double bytes = settings_.heat_map_fraction * static_cast<double>(managed);
  config.max_entries = std::max<uint64_t>(
      4096, static_cast<uint64_t>(bytes / static_cast<double>(hotness::HeatMap::bytesPerEntry())));
  return config;
}

PolicyLoop::Group& PolicyLoop::groupFor(int initiator) {
  auto it = groups_.find(initiator);
  if (it != groups_.end()) return *it->second;
  TierView view;
  for (const TierView& v : env_.tiers())
    if (v.initiator == initiator || initiator < 0) {
      view = v;
      break;
    }
  auto group = std::make_unique<Group>(heatConfig(view));
  group->view = view;
  {
    std::lock_guard lock(status_mutex_);
    status_.heat_max_entries += group->heat.config().max_entries;
  }
  return *groups_.emplace(initiator, std::move(group)).first->second;
}

void PolicyLoop::refreshTargets() {
  const std::vector<ProcessInfo> processes = env_.processes();
  std::vector<pid_t> pids;
  std::unordered_set<pid_t> alive;
  for (const ProcessInfo& p : processes) {
    pids.push_back(p.pid);
    alive.insert(p.pid);
    const int initiator = p.initiator.value_or(-1);
    initiator_of_[p.pid] = initiator;
    groupFor(initiator).heat.setLabel(p.pid, p.label);
  }
  for (auto it = initiator_of_.begin(); it != initiator_of_.end();) {
    if (alive.contains(it->first)) {
      ++it;
      continue;
    }
    if (auto g = groups_.find(it->second); g != groups_.end())
      g->second->heat.forgetProcess(it->first);
    passes_of_.erase(it->first);
    sweep_cursor_.erase(it->first);
    it = initiator_of_.erase(it);
  }
  std::sort(pids.begin(), pids.end());
  if (pids == targets_ && sampler_started_) return;
  targets_ = pids;
  if (auto ok = sampler_->setTargets(pids); !ok) setError(ok.error().message());
  if (!sampler_started_ && !pids.empty()) {
    if (auto ok = sampler_->start(); !ok) {
      setError(fmt::format("starting the {} sampler: {}", sampler_->name(), ok.error().message()));
      return;
    }
    sampler_started_ = true;
    next_plan_ = Clock::now() + plan_interval_;
  }
}

void PolicyLoop::feed(const sampling::SampleBatch& batch, uint64_t now_ns) {
  // Passes first: the batch's accesses came no later than these counts, so
  // stamping them with these errs toward "seen recently".
  for (const auto& p : batch.passes) {
    const auto it = initiator_of_.find(p.pid);
    if (it == initiator_of_.end()) continue;
    groupFor(it->second).heat.setScanPasses(p.pid, p.passes);
    auto [last, fresh] = passes_of_.try_emplace(p.pid, p.passes);
    if (!fresh && last->second != p.passes) pass_finished_ = true;
    last->second = p.passes;
  }
  // A batch comes mostly from one process: look its group up once per run.
  pid_t last_pid = -1;
  hotness::HeatMap* heat = nullptr;
  for (const auto& a : batch.accesses) {
    if (a.pid != last_pid) {
      last_pid = a.pid;
      const auto it = initiator_of_.find(a.pid);
      heat = it == initiator_of_.end() ? nullptr : &groupFor(it->second).heat;
    }
    if (heat) heat->addAccess(a.pid, a.address, a.weight, now_ns);
  }
  for (const auto& r : batch.regions) {
    const auto it = initiator_of_.find(r.pid);
    if (it == initiator_of_.end()) continue;
    groupFor(it->second)
        .heat.addRegion(r.pid, r.start, r.end, r.nr_accesses, r.max_accesses, now_ns);
  }
}

void PolicyLoop::planNow() {
  const std::vector<TierView> views = env_.tiers();
  const uint64_t now_ns = nanos(Clock::now());
  round_planned_pages_ = round_hot_pages_ = 0;
  for (auto& [initiator, group] : groups_) {
    for (const TierView& v : views)
      if (v.initiator == initiator || (initiator < 0 && !views.empty())) {
        group->view = v;
        break;
      }
    if (group->view.fast.empty() || group->view.slower.empty()) continue;  // nothing to tier
    plan(*group, now_ns);
  }
  noteSettling();
  const sampling::SamplerStats sampled = sampler_->stats();
  std::lock_guard lock(status_mutex_);
  if (sampled.samples > 10'000) {
    // What feeding the heat map costs per sample, beyond the sampler's own work.
    const double feeding = std::max(0.0, status_.cpu_sampling - sampled.cpu_seconds);
    sampler_->setConsumerCost(feeding / static_cast<double>(sampled.samples));
  }
  ++status_.plans;
  status_.sampler_stats = sampled;
  status_.sampler_detail = sampler_->detail();
  status_.placement_queries = placement_queries_;
}

std::vector<hotness::PageRef> PolicyLoop::sweepUntracked(const Group& group, uint64_t now_ns) {
  std::vector<hotness::PageRef> found;
  for (const auto& [pid, initiator] : initiator_of_) {
    if (groups_.at(initiator).get() != &group) continue;
    auto text = proc_.readFile(fmt::format("{}/maps", pid));
    if (!text) continue;
    auto maps = tier::parseMaps(*text);
    if (!maps) continue;
    std::vector<uint64_t> pages;  // all movable pages, in address order
    uint64_t total = 0;
    for (const auto& m : *maps)
      if (movable(m)) total += (m.end - m.start) >> kPageShift;
    if (total == 0) continue;
    uint64_t& cursor = sweep_cursor_[pid];
    cursor %= total;
    const uint64_t want = std::min<uint64_t>(settings_.sweep_pages, total);
    // The movable pages from the cursor on, wrapping around once: indices
    // [cursor, cursor + want) modulo total, listed in address order.
    const uint64_t end = cursor + want;
    const std::pair<uint64_t, uint64_t> spans[2] = {{0, end > total ? end - total : 0},
                                                    {cursor, std::min(end, total)}};
    uint64_t index = 0;
    for (const auto& m : *maps) {
      if (!movable(m)) continue;
      const uint64_t first = m.start >> kPageShift, n = (m.end - m.start) >> kPageShift;
      for (const auto& [lo, hi] : spans)
        for (uint64_t i = std::max(lo, index); i < std::min(hi, index + n); ++i)
          pages.push_back(first + (i - index));
      index += n;
    }
    cursor = (cursor + want) % total;
    // Placement of swept pages is asked for once and not kept.
    std::vector<int> status;
    placement_queries_ += pages.size();
    {
      std::lock_guard lock(status_mutex_);
      status_.swept_pages += pages.size();
    }
    if (!queryNodes(page_ops_, pid, pages, kPageShift, status)) continue;
    for (size_t i = 0; i < pages.size(); ++i)
      if (status[i] >= 0 && group.view.isFast(status[i]) &&
          group.heat.heat(pid, pages[i], now_ns) == 0)
        found.push_back({pid, pages[i], 1, 0});
  }
  return found;
}

// The managed pages on the fast tier: numa_maps walks every page of a
// process, so it is read every kResidentEvery and kept current in between
// with what the policy itself moved.
uint64_t PolicyLoop::pagesOnFast(Group& group) {
  const Clock::time_point now = Clock::now();
  if (now - group.resident_read >= kResidentEvery) {
    group.resident_read = now;
    group.resident_on_fast = 0;
    for (const auto& [pid, initiator] : initiator_of_) {
      if (groups_.at(initiator).get() != &group) continue;
      for (const auto& [node, bytes] : env_.resident_bytes_by_node(pid))
        if (group.view.isFast(node)) group.resident_on_fast += bytes >> kPageShift;
    }
    group.moved_since_read = 0;
  }
  const int64_t pages = static_cast<int64_t>(group.resident_on_fast) + group.moved_since_read;
  return static_cast<uint64_t>(std::max<int64_t>(0, pages));
}

void PolicyLoop::plan(Group& group, uint64_t now_ns) {
  double cpu = threadCpuSeconds();
  const auto lap = [&](double PolicyStatus::*field) {
    const double now_cpu = threadCpuSeconds();
    std::lock_guard lock(status_mutex_);
    status_.*field += now_cpu - cpu;
    cpu = now_cpu;
  };
  learnPlacement(group, now_ns);
  lap(&PolicyStatus::cpu_placement);

  RoomSettings room = env_.room();
  room.page_shift = kPageShift;
  room.plan_seconds = std::chrono::duration<double>(plan_interval_).count();
  if (room.low_watermark_bytes == 0) {
    uint64_t fast_total = 0;
    for (const auto& n : group.view.fast)
      fast_total += n.total_bytes;
    room.low_watermark_bytes =
        static_cast<uint64_t>(settings_.low_watermark_fraction * static_cast<double>(fast_total) /
                              static_cast<double>(std::max<size_t>(1, group.view.fast.size())));
  }
  const uint64_t on_fast = pagesOnFast(group);
  hotness::ClassifyInput in = classifyInput(group.view, room, on_fast);
  in.benefit_margin = settings_.benefit_margin;
  in.displace = !group.promotions_found_no_room;
  in.cold_divisor = settings_.cold_divisor;
  in.min_hot_fraction_of_max = settings_.min_hot_fraction;
  const TierView& view = group.view;
  for (const auto& node : view.fast)
    in.fast_nodes.push_back(node.node);
  const auto onFast = [&](pid_t pid, uint64_t page) {
    const int node = group.heat.node(pid, page);
    return node >= 0 && view.isFast(node);
  };
  // Pages moved within the ping-pong window (and a margin) stay put: moving one
  // back would be a round trip, the costliest move there is.
  const auto held = [&](pid_t pid, uint64_t page) {
    return engine_.recentlyMoved(pid, page << kPageShift);
  };
  // Untracked fast pages are the first to leave, so they matter only to a
  // plan that demotes: under pressure, or one whose promotions displace,
  // which the last plan foretells (classifying twice to find out cost more
  // than the sweep saved: in the lab's Zipf run 0.60 s against 0.20).
  // Other plans skip the sweep: a maps read and a placement query of
  // sweep_pages pages.
  if (in.pressure() || (in.displace && group.last_plan_displaced)) {
    in.untracked_fast = sweepUntracked(group, now_ns);
    lap(&PolicyStatus::cpu_sweep);
  }
  const hotness::Plan plan = group.heat.classify(in, onFast, now_ns, held);
  // A plan that waits for freed pages (no displacing) tells nothing about
  // the next: the one before it still does.
  if (in.displace) group.last_plan_displaced = plan.displacing;
  const MovePlan moves = toMoveRequests(plan, view, kPageShift, kPagesPerRequest);
  round_planned_pages_ += moves.promote_pages + moves.demote_pages;
  round_hot_pages_ += plan.hot_pages;
  lap(&PolicyStatus::cpu_classify);
  {
    std::lock_guard lock(status_mutex_);
    status_.hot_threshold = plan.hot_threshold;
    status_.hot_pages = plan.hot_pages;
    status_.heat_entries = group.heat.entries();
    status_.heat_bytes = group.heat.bytes();
    status_.pages_planned_promote += moves.promote_pages;
    status_.pages_planned_demote += moves.demote_pages;
    status_.hot_bytes_by_pid.clear();
    for (const auto& p : plan.per_process)
      status_.hot_bytes_by_pid[p.pid] = p.hot_bytes;
    status_.hot_bytes_by_label = plan.hot_bytes_by_label;
  }
  const double sampled_before = sampling_during_moves_;
  const Executed done = execute(moves);
  // The rings drained between requests count as sampling, not as moves.
  cpu += sampling_during_moves_ - sampled_before;
  lap(&PolicyStatus::cpu_moves);
  group.moved_since_read +=
      static_cast<int64_t>(done.promoted) - static_cast<int64_t>(done.demoted);
  if (env_.plan_log) logPlan(group, in, plan, done, on_fast);
  // Displacements whose promotions then failed for room freed pages that
  // MemFree does not show yet: wait a plan for the kernel to drain them.
  group.promotions_found_no_room = done.promotions_target_full > 0 && done.demoted > 0;
  // Moved, or tried: asked again at the next plan.
  for (const auto* list : {&plan.promote, &plan.demote})
    for (const auto& ref : *list)
      group.heat.setNode(ref.pid, ref.page, hotness::HeatMap::kNodeUnknown);
}

void PolicyLoop::logPlan(const Group& group, const hotness::ClassifyInput& in,
                         const hotness::Plan& plan, const Executed& done, uint64_t on_fast) const {
  std::string passes;
  for (const auto& [pid, count] : passes_of_)
    if (const auto it = initiator_of_.find(pid);
        it != initiator_of_.end() && groups_.at(it->second).get() == &group)
      passes += fmt::format("{}{}:{}", passes.empty() ? "" : ",", pid, count);
  env_.plan_log(fmt::format(
      "plan: {} hot pages (threshold {:.3g}), {} on the fast tier, {} free (keep {}), scan passes "
      "{}; planned promote {} demote {}{}; moved {} up, {} down ({} found no room, {} already "
      "there); {:.1f} s after start",
      plan.hot_pages, plan.hot_threshold, on_fast, in.fast_free_pages, in.keepFreePages(),
      passes.empty() ? "-" : passes, plan.promote.size(), plan.demote.size(),
      in.displace ? "" : " (no displacing)", done.promoted, done.demoted,
      done.promotions_target_full, done.already_there,
      std::chrono::duration<double>(Clock::now() - started_).count()));
}

// Plans that move (next to) nothing twice running: the placement follows the
// heat, and the sampler may slow down until a plan moves pages again.
void PolicyLoop::noteSettling() {
  const uint64_t quiet = std::max<uint64_t>(kSettledPages, round_hot_pages_ / 100);
  quiet_plans_ = round_planned_pages_ <= quiet ? quiet_plans_ + 1 : 0;
  sampler_->setSettled(quiet_plans_ >= kSettledPlans);
}

// Where the tracked pages are, kept in their heat-map entries: asked for pages
// not placed yet and for a rotating sixteenth of the rest (pages move on their
// own too), the hottest first when there are more than the query budget.
void PolicyLoop::learnPlacement(Group& group, uint64_t now_ns) {
  const std::vector<hotness::PageRef> ask =
      group.heat.placementQueries(settings_.placement_queries, 16, placement_rotation_++, now_ns);
  std::map<pid_t, std::vector<uint64_t>> by_pid;
  for (const auto& ref : ask)
    by_pid[ref.pid].push_back(ref.page);
  std::vector<int> status;
  for (auto& [pid, pages] : by_pid) {
    std::sort(pages.begin(), pages.end());
    placement_queries_ += pages.size();
    // A process gone or not ours to see: the watcher says so and its
    // entries go.
    if (!queryNodes(page_ops_, pid, pages, kPageShift, status)) continue;
    for (size_t i = 0; i < pages.size(); ++i)
      group.heat.setNode(pid, pages[i], status[i]);
  }
}

PolicyLoop::Executed PolicyLoop::execute(const MovePlan& moves) {
  Executed done;
  const uint64_t page_bytes = uint64_t{1} << kPageShift;
  const auto run = [&](const std::vector<migrate::MoveRequest>& requests, bool promote) {
    for (migrate::MoveRequest request : requests) {
      if (stopping_) return;
      request.dry_run = settings_.dry_run;
      // What the demotions freed and the promotions so far did not take.
      if (promote && done.demoted > done.promoted)
        request.freed_on_target_bytes = (done.demoted - done.promoted) * page_bytes;
      request.cancelled = [this] { return stopping_.load(); };
      const migrate::MoveResult result = engine_.move(request);
      const double sampling0 = threadCpuSeconds();
      sampleOnce(Clock::now());  // moves take seconds under the rate limit: keep draining
      sampling_during_moves_ += threadCpuSeconds() - sampling0;
      uint64_t failed = 0;
      for (const auto& [reason, count] : result.failed)
        failed += count;
      (promote ? done.promoted : done.demoted) += result.pages_moved;
      done.already_there += result.pages_already_there;
      if (promote)
        if (const auto it = result.failed.find("target_full"); it != result.failed.end())
          done.promotions_target_full += it->second;
      std::lock_guard lock(status_mutex_);
      for (const auto& [reason, count] : result.failed)
        status_.failed_by_reason[reason] += count;
      (promote ? status_.pages_promoted : status_.pages_demoted) += result.pages_moved;
      status_.pages_failed += failed;
      status_.pingpong_moves += result.pingpong_moves;
    }
  };
  const double cpu0 = threadCpuSeconds();
  const double sampled_before = sampling_during_moves_;
  run(moves.demote, false);
  run(moves.promote, true);
  move_cpu_ += threadCpuSeconds() - cpu0 - (sampling_during_moves_ - sampled_before);
  return done;
}

// The budget is the whole agent's: the sampler gets what the main loop,
// planning and moves left of it (SamplingShare).
void PolicyLoop::shareBudget(Clock::time_point now) {
  double sampling_cpu = 0;
  {
    std::lock_guard lock(status_mutex_);
    sampling_cpu = status_.cpu_sampling;
  }
  const double share =
      sampling_share_.update(std::chrono::duration<double>(now.time_since_epoch()).count(),
                             processCpuSeconds(), sampling_cpu);
  if (std::abs(share - sampling_budget_) < 0.05 * sampling_budget_) return;
  sampling_budget_ = share;
  sampler_->setCpuBudget(share);
  std::lock_guard lock(status_mutex_);
  status_.sampling_budget = share;
}

void PolicyLoop::adaptInterval(double cpu_spent, double interval_s) {
  // Planning (moves excluded) above its fifth of the budget: plan less often;
  // well under it: back toward the configured interval. A fifth: the main
  // loop and the moves take theirs, and the sampler what is left.
  const double fraction = interval_s > 0 ? cpu_spent / interval_s : 0;
  const double budget = settings_.cpu_budget * kPlanningShare;
  auto next = plan_interval_;
  if (fraction > budget) {
    next = std::chrono::duration_cast<std::chrono::milliseconds>(plan_interval_ * 3 / 2);
  } else if (fraction < budget / 2) {
    next = std::chrono::duration_cast<std::chrono::milliseconds>(plan_interval_ * 4 / 5);
  }
  next = std::clamp<std::chrono::milliseconds>(
      next, settings_.plan_interval,
      std::chrono::duration_cast<std::chrono::milliseconds>(kMaxPlanInterval));
  plan_interval_ = next;
  std::lock_guard lock(status_mutex_);
  status_.plan_interval_s = std::chrono::duration<double>(plan_interval_).count();
}

}  // namespace tierd::policy
