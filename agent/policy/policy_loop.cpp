#include "policy/policy_loop.h"

#include <pthread.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <unordered_set>

#include <fmt/format.h>

#include "parse/parsers.h"

namespace tierd::policy {

namespace {

using Clock = std::chrono::steady_clock;
constexpr unsigned kPageShift = 12;
constexpr auto kTargetsEvery = std::chrono::seconds(1);
// Up to 20 s: a plan costs about 0.1 s of a TCG guest's CPU (placement
// queries, the sweep, classifying every entry), so under a 1.5 % share it
// cannot come more often than every 7-9 s; with hint faults the plans that
// matter come anyway, when a scanner pass finishes.
constexpr auto kMaxPlanInterval = std::chrono::seconds(20);
constexpr auto kMinPlanGap = std::chrono::seconds(1);
constexpr auto kResidentEvery = std::chrono::seconds(30);
// 2 MiB: 31 ms at 64 MiB/s, and what one request may overshoot the CPU budget by.
constexpr uint64_t kPagesPerRequest = 512;
// The CPU governor holds the process at this share of the budget on average,
// so that its burst (and one admitted request) still fits within the budget.
constexpr double kGovernedShare = 0.9;
constexpr double kBurstSeconds = 10;  // of the budget's rate, saved up at most
// A plan is worth its cost only with CPU left for this many moves.
constexpr uint64_t kMinPagesWorthAPlan = 256;
// Before the first move is measured: about what a page costs in a TCG guest.
constexpr double kFirstMoveCostPerPage = 40e-6;

double processCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double wallSeconds(Clock::time_point t) {
  return std::chrono::duration<double>(t.time_since_epoch()).count();
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
      governor_(settings.cpu_budget * kGovernedShare,
                settings.cpu_budget * kGovernedShare * kBurstSeconds),
      move_cost_per_page_(kFirstMoveCostPerPage) {
  sampler_->setCpuBudget(settings_.cpu_budget * kSamplingShare);
  status_.sampler = std::string(sampler_->name());
  status_.plan_interval_s = std::chrono::duration<double>(plan_interval_).count();
}

PolicyLoop::~PolicyLoop() {
  stop();
}

void PolicyLoop::start() {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "tierd-policy");  // top -H, /proc/PID/task/*/comm
    run();
  });
}

void PolicyLoop::stop() {
  {
    std::lock_guard lock(wake_mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
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
    std::unique_lock lock(wake_mutex_);
    wake_.wait_for(lock, settings_.sample_interval, [this] { return stopping_.load(); });
  }
}

void PolicyLoop::step(Clock::time_point now) {
  const double process_cpu = processCpuSeconds();
  governor_.update(process_cpu, wallSeconds(now));
  {
    std::lock_guard lock(status_mutex_);
    status_.process_cpu_seconds = process_cpu;
    status_.cpu_available_s = governor_.available();
  }
  if (now >= next_targets_) {
    next_targets_ = now + kTargetsEvery;
    refreshTargets();
  }
  if (!sampler_started_) return;
  sampleOnce(now);
  if (now >= next_sampling_note_) {
    next_sampling_note_ = now + kTargetsEvery;
    noteSampling();
  }
  for (auto& [initiator, group] : groups_)
    drain(*group);
  // A finished scanner pass is fresh evidence: plan on it without waiting
  // out an interval the CPU budget stretched (passes themselves are paced by
  // that budget), but never twice within kMinPlanGap.
  const bool pass_due = pass_finished_ && now >= last_plan_ + kMinPlanGap;
  if (now < next_plan_ && !pass_due) return;
  // Planning is only worth it with CPU left to carry some of it out.
  if (governor_.available() < plan_cost_ + kMinPagesWorthAPlan * move_cost_per_page_) {
    if (!waiting_for_cpu_) {
      waiting_for_cpu_ = true;
      std::lock_guard lock(status_mutex_);
      ++status_.plans_waited_for_cpu;
    }
    return;
  }
  waiting_for_cpu_ = false;
  pass_finished_ = false;
  last_plan_ = now;
  const double cpu0 = threadCpuSeconds();
  move_cpu_ = 0;
  planNow();
  // Moves are paced by the migration rate limit and the governor; planning's
  // own cost also stretches the plan interval.
  plan_cost_ = threadCpuSeconds() - cpu0 - move_cpu_;
  adaptInterval(plan_cost_, std::chrono::duration<double>(plan_interval_).count());
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
  for (auto& [initiator, group] : groups_) {
    for (const TierView& v : views)
      if (v.initiator == initiator || (initiator < 0 && !views.empty())) {
        group->view = v;
        break;
      }
    if (group->view.fast.empty() || group->view.slower.empty()) continue;  // nothing to tier
    plan(*group, now_ns);
  }
  noteSampling();
  std::lock_guard lock(status_mutex_);
  ++status_.plans;
  status_.placement_queries = placement_queries_;
}

// Tells the sampler what its samples cost beyond its own work (feeding the
// heat map), and how much of the budget it may pace itself to: its share,
// a quarter of it while the process is in debt (sampling is the one cost the loop
// cannot stop; everything else waits).
void PolicyLoop::noteSampling() {
  const sampling::SamplerStats sampled = sampler_->stats();
  const bool in_debt = governor_.available() < 0;
  if (in_debt != sampler_squeezed_) {
    sampler_squeezed_ = in_debt;
    sampler_->setCpuBudget(settings_.cpu_budget * kSamplingShare * (in_debt ? 0.25 : 1.0));
  }
  std::lock_guard lock(status_mutex_);
  if (sampled.samples > 10'000) {
    const double feeding = std::max(0.0, status_.cpu_sampling - sampled.cpu_seconds);
    sampler_->setConsumerCost(feeding / static_cast<double>(sampled.samples));
  }
  status_.sampler_stats = sampled;
  status_.sampler_detail = sampler_->detail();
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
    // Walk the movable pages from the cursor, wrapping around once.
    uint64_t index = 0;
    for (const auto& m : *maps) {
      if (!movable(m)) continue;
      const uint64_t first = m.start >> kPageShift, n = (m.end - m.start) >> kPageShift;
      for (uint64_t i = 0; i < n; ++i, ++index) {
        const uint64_t rel = (index + total - cursor) % total;
        if (rel < want) pages.push_back(first + i);
      }
    }
    cursor = (cursor + want) % total;
    std::vector<hotness::PageRef> refs;
    refs.reserve(pages.size());
    for (uint64_t page : pages)
      refs.push_back({pid, page, 1, 0});
    // Placement of swept pages is asked for once and not kept.
    PlacementCache once(page_ops_, kPageShift);
    once.refresh(refs, 0);
    {
      std::lock_guard lock(status_mutex_);
      status_.swept_pages += pages.size();
      placement_queries_ += once.queried();
    }
    for (uint64_t page : pages) {
      const auto node = once.node(pid, page);
      if (node && group.view.isFast(*node) && group.heat.heat(pid, page, now_ns) == 0)
        found.push_back({pid, page, 1, 0});
    }
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

// Where the tracked pages are: asked of the kernel for pages the map has not
// placed yet and for a rotating sixteenth of the rest, the hottest first.
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
    if (!queryNodes(page_ops_, pid, pages, kPageShift, status)) continue;
    for (size_t i = 0; i < pages.size(); ++i)
      group.heat.setNode(pid, pages[i], status[i]);
  }
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
  // Displacements whose promotions then failed for room freed pages that
  // MemFree does not show yet: wait a plan for the kernel to drain them.
  in.displace = !(group.done.promotions_target_full > 0 && group.done.demoted > 0);
  in.cold_divisor = settings_.cold_divisor;
  in.min_hot_fraction_of_max = settings_.min_hot_fraction;
  // No more moves than the CPU affords until the next plan: what is left now
  // and, at a guess, half of what the budget brings meanwhile (a
  // displacement is two moves).
  governor_.update(processCpuSeconds(), wallSeconds(Clock::now()));
  const double cpu_for_moves =
      std::max(0.0, governor_.available()) + 0.5 * governor_.rate() * room.plan_seconds;
  const auto affordable =
      static_cast<uint64_t>(cpu_for_moves / std::max(1e-9, move_cost_per_page_));
  in.promote_budget_pages = std::min(in.promote_budget_pages, affordable);
  in.demote_budget_pages = std::min(in.demote_budget_pages, affordable);
  // Untracked fast pages matter only to demotions: under pressure, or when
  // this plan's promotions could outgrow the room above the keep-free line.
  const uint64_t keep_free = std::max(in.low_watermark_pages, in.headroom_pages);
  const uint64_t room_pages = in.fast_free_pages > keep_free ? in.fast_free_pages - keep_free : 0;
  if (in.fast_free_pages + in.per_cpu_free_pages < keep_free ||
      room_pages < in.promote_budget_pages)
    in.untracked_fast = sweepUntracked(group, now_ns);
  lap(&PolicyStatus::cpu_sweep);

  const TierView& view = group.view;
  const auto onFast = [&](pid_t pid, uint64_t page) {
    const int node = group.heat.node(pid, page);
    return node >= 0 && view.isFast(node);
  };
  // Pages moved within the ping-pong window stay where they are: moving one
  // back would be a round trip, the costliest move there is.
  const auto held = [&](pid_t pid, uint64_t page) {
    return engine_.recentlyMoved(pid, page << kPageShift);
  };
  const hotness::Plan plan = group.heat.classify(in, onFast, now_ns, held);
  const MovePlan moves = toMoveRequests(plan, view, kPageShift, kPagesPerRequest);
  lap(&PolicyStatus::cpu_classify);
  if (const uint64_t left = pendingPages(group); left > 0) {
    std::lock_guard lock(status_mutex_);
    status_.pages_deferred_for_cpu += left;  // the last plan's, never carried out
  }
  {
    std::lock_guard lock(status_mutex_);
    status_.hot_threshold = plan.hot_threshold;
    status_.hot_pages = plan.hot_pages;
    status_.heat_entries = group.heat.entries();
    status_.heat_bytes = group.heat.bytes();
    status_.heat_rejected = group.heat.rejected();
    status_.pages_planned_promote += moves.promote_pages;
    status_.pages_planned_demote += moves.demote_pages;
    status_.hot_bytes_by_pid.clear();
    for (const auto& p : plan.per_process)
      status_.hot_bytes_by_pid[p.pid] = p.hot_bytes;
    status_.hot_bytes_by_label = plan.hot_bytes_by_label;
  }
  for (const auto* list : {&plan.promote, &plan.demote})
    for (const auto& ref : *list)
      group.heat.setNode(ref.pid, ref.page, hotness::HeatMap::kNodeUnknown);
  group.pending = moves;
  group.demote_at = group.promote_at = 0;
  group.done = {};
  drain(group);
}

uint64_t PolicyLoop::pendingPages(const Group& group) {
  uint64_t pages = 0;
  const auto count = [&](const std::vector<migrate::MoveRequest>& list, size_t from) {
    for (size_t i = from; i < list.size(); ++i)
      for (const auto& r : list[i].ranges)
        pages += (r.end - r.start) >> kPageShift;
  };
  count(group.pending.demote, group.demote_at);
  count(group.pending.promote, group.promote_at);
  return pages;
}

// Carries out the group's plan while the CPU budget lasts; what is left runs
// in later steps as the budget refills, until the next plan replaces it.
// Demotions and promotions alternate, so that running out midway has not
// demoted for promotions that never came.
void PolicyLoop::drain(Group& group) {
  MovePlan& moves = group.pending;
  bool demote_last = false;
  while (!stopping_) {
    const bool demotes_left = group.demote_at < moves.demote.size();
    const bool promotes_left = group.promote_at < moves.promote.size();
    if (!demotes_left && !promotes_left) return;
    governor_.update(processCpuSeconds(), wallSeconds(Clock::now()));
    if (governor_.available() <= 0) return;
    const bool promote = promotes_left && (!demotes_left || demote_last);
    migrate::MoveRequest request =
        promote ? moves.promote[group.promote_at++] : moves.demote[group.demote_at++];
    demote_last = !promote;
    request.dry_run = settings_.dry_run;
    request.cancelled = [this] { return stopping_.load(); };
    const double cpu_before = threadCpuSeconds();
    const migrate::MoveResult result = engine_.move(request);
    const double cpu_spent = threadCpuSeconds() - cpu_before;
    move_cpu_ += cpu_spent;
    learnMoveCost(cpu_spent, result);
    Group::Executed& done = group.done;
    (promote ? done.promoted : done.demoted) += result.pages_moved;
    group.moved_since_read += promote ? static_cast<int64_t>(result.pages_moved)
                                      : -static_cast<int64_t>(result.pages_moved);
    if (promote)
      if (const auto it = result.failed.find("target_full"); it != result.failed.end())
        done.promotions_target_full += it->second;
    {
      uint64_t failed = 0;
      for (const auto& [reason, count] : result.failed)
        failed += count;
      std::lock_guard lock(status_mutex_);
      status_.cpu_moves += cpu_spent;
      for (const auto& [reason, count] : result.failed)
        status_.failed_by_reason[reason] += count;
      (promote ? status_.pages_promoted : status_.pages_demoted) += result.pages_moved;
      status_.pages_failed += failed;
      status_.pingpong_moves += result.pingpong_moves;
    }
    sampleOnce(Clock::now());  // moves take seconds under the rate limit: keep draining
  }
}

void PolicyLoop::learnMoveCost(double cpu_seconds, const migrate::MoveResult& result) {
  uint64_t pages = result.pages_moved;
  for (const auto& [reason, count] : result.failed)
    if (reason != "backoff" && reason != "target_full") pages += count;  // tried, then failed
  if (pages < 32 || settings_.dry_run) return;                           // too few to judge by
  const double per_page = cpu_seconds / static_cast<double>(pages);
  move_cost_per_page_ = moves_measured_ ? 0.7 * move_cost_per_page_ + 0.3 * per_page : per_page;
  moves_measured_ = true;
  std::lock_guard lock(status_mutex_);
  status_.move_cpu_per_page_s = move_cost_per_page_;
}

void PolicyLoop::adaptInterval(double cpu_spent, double interval_s) {
  // Planning (moves included) above its half of the budget: plan less often;
  // well under it: back toward the configured interval.
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
