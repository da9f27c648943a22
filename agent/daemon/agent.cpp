#include "daemon/agent.h"

#include <sys/stat.h>
#include <unistd.h>

#include <fmt/format.h>
#include <algorithm>

#include "daemon/log.h"
#include "daemon/self_placement.h"
#include "discovery/discover.h"
#include "discovery/sysfs_reader.h"
#include "metrics/process_metrics.h"
#include "metrics/textfile.h"
#include "parse/parsers.h"
#include "workloads/process.h"

namespace tierd {
namespace {

using control::Json;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kMiB = 1ULL << 20;
constexpr int kPinEnforceTicks = 10;
constexpr auto kProcessMetricsEvery = std::chrono::seconds(60);  // numa_maps walks every page
constexpr int kPolicyLogTicks = 10;
constexpr auto kRediscoverEvery = std::chrono::seconds(30);
// Full discovery (libndctl/libcxl/libdaxctl contexts, each of which loads
// libkmod's configuration) runs when the fingerprint changes, and this often
// regardless; in the lab it was a third of an idle tierd's CPU every 30 s.
constexpr auto kFullDiscoveryEvery = std::chrono::minutes(10);
constexpr int kNodeMemoryTicks = 5;  // free memory for status, when no metrics reader wants it
// Processes come and go on this scale: in the lab a scan each 1 s tick was
// most of an idle tierd's CPU (the policy sees a vanished pid at once anyway).
constexpr int kScanTicks = 2;

std::string_view direction(const tier::Topology& topology, int from, int to) {
  auto from_rank = topology.homeRank(from), to_rank = topology.homeRank(to);
  if (!from_rank || !to_rank || *from_rank == *to_rank) return "lateral";
  return *to_rank < *from_rank ? "promote" : "demote";
}

migrate::EngineOptions engineOptions(const config::MigrationConfig& m) {
  migrate::EngineOptions options;
  options.rate_bytes_per_second = m.rate_limit_mbps * kMiB;
  options.burst_bytes = m.burst_mb * kMiB;
  options.batch_pages = static_cast<size_t>(m.batch_pages);
  options.min_free_bytes = static_cast<uint64_t>(m.min_free_mb * kMiB);
  options.min_free_fraction = m.min_free_percent / 100.0;
  options.pingpong_window = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(m.pingpong_window_s));
  return options;
}

Json moveResultJson(const migrate::MoveResult& result) {
  Json out;
  out["pid"] = result.pid;
  out["target_node"] = result.target_node;
  out["dry_run"] = result.dry_run;
  out["pages_requested"] = result.pages_requested;
  out["pages_moved"] = result.pages_moved;
  out["pages_already_there"] = result.pages_already_there;
  out["bytes_moved"] = result.bytes_moved;
  out["thp_moved"] = result.thp_moved;
  out["pingpong_moves"] = result.pingpong_moves;
  out["seconds"] = result.seconds;
  out["failed"] = Json::object();
  for (const auto& [reason, count] : result.failed)
    out["failed"][reason] = count;
  out["pages_on_target_after"] = result.pages_on_target_after;
  out["pages_present_after"] = result.pages_present_after;
  if (result.stopped) out["stopped"] = result.stopped->message();
  return out;
}

}  // namespace

std::optional<std::vector<int>> allowedCpus(const tier::FsRoot& proc, pid_t pid) {
  auto text = proc.readFile(fmt::format("{}/status", pid));
  if (!text) return std::nullopt;
  constexpr std::string_view kKey = "Cpus_allowed_list:";
  size_t at = text->find(kKey);
  if (at == std::string::npos) return std::nullopt;
  size_t end = text->find('\n', at);
  auto cpus = tier::parseIdList(text->substr(at + kKey.size(), end - at - kKey.size()));
  return cpus ? std::optional(*cpus) : std::nullopt;
}

tier::Result<std::unique_ptr<Agent>> Agent::create(AgentOptions options,
                                                   config::AgentConfig config) {
  auto sys = tier::FsRoot::open(options.sysfs_root);
  if (!sys) return std::unexpected(tier::wrap(sys.error(), "sysfs root"));
  auto proc = tier::FsRoot::open(options.procfs_root);
  if (!proc) return std::unexpected(tier::wrap(proc.error(), "procfs root"));
  std::unique_ptr<Agent> agent(
      new Agent(std::move(options), std::move(config), std::move(*sys), std::move(*proc)));
  if (auto ok = agent->refreshTopology(); !ok) return std::unexpected(ok.error());
  return agent;
}

Agent::Agent(AgentOptions options, config::AgentConfig config, tier::FsRoot sys, tier::FsRoot proc)
    : options_(std::move(options)),
      sys_(std::move(sys)),
      proc_(std::move(proc)),
      config_(std::move(config)),
      watcher_(config_.workloads) {
  // The cgroup2 mount gives cgroup members without reading every process.
  if (auto root = tier::FsRoot::open(options_.sysfs_root + "/fs/cgroup");
      root && root->exists("cgroup.procs"))
    cgroupfs_ = std::move(*root);
  engine_ = std::make_unique<migrate::MigrationEngine>(proc_, sys_, page_ops_,
                                                       engineOptions(config_.migration));
  applyConfig();
  registry_.describe("tierd_build_info", metrics::Type::Gauge, "tierd's version, as a label");
  registry_.set("tierd_build_info", {{"version", TIERD_VERSION}}, 1);
}

Agent::~Agent() {
  stop();
}

bool Agent::dryRun() const {
  return options_.dry_run || config_dry_run_.load();
}

// The settings request threads read without the state lock.
void Agent::applyConfig() {
  mode_ = config_.mode;
  config_dry_run_ = config_.dry_run;
  engine_->setOptions(engineOptions(config_.migration));
}

std::chrono::milliseconds Agent::interval() const {
  std::shared_lock lock(state_mutex_);
  return config_.interval;
}

namespace {
// What changes when memory is onlined, offlined or hot-added, a node is
// retiered, or a CXL/NVDIMM device comes or goes: a few small sysfs reads.
std::string platformFingerprint(const tier::FsRoot& sys) {
  std::string out;
  for (const char* file : {"devices/system/node/online", "devices/system/node/has_memory",
                           "devices/system/node/has_cpu"})
    out += sys.readFile(file).value_or("-") + "|";
  if (auto tiers = sys.listDir("devices/virtual/memory_tiering"))
    for (const auto& name : *tiers)
      out += name + "=" +
             sys.readFile("devices/virtual/memory_tiering/" + name + "/nodelist").value_or("") +
             "|";
  for (const char* bus : {"bus/cxl/devices", "bus/nd/devices", "bus/dax/devices"})
    if (auto names = sys.listDir(bus)) out += fmt::format("{}|", fmt::join(*names, ","));
  return out;
}
}  // namespace

tier::Result<void> Agent::refreshTopology() {
  last_fingerprint_ = platformFingerprint(sys_);
  last_full_discovery_ = Clock::now();
  auto facts = tier::discoverPlatform(sys_, &proc_);
  if (!facts) return std::unexpected(tier::wrap(facts.error(), "discover memory topology"));
  auto topology = tier::buildTopology(std::move(*facts), config_.topology);
  auto others = detectOtherManagers(sys_, proc_);
  std::unique_lock lock(state_mutex_);
  topology_ = std::move(topology);
  others_ = std::move(others);
  last_discovery_ = Clock::now();
  return {};
}

// Before any thread starts: they inherit the calling thread's memory policy.
void Agent::placeOwnMemory() {
  if (!config_.own_memory_on_slower_tier || options_.sysfs_root != "/sys") return;
  std::map<int, std::vector<int>> cpus_by_node;
  for (const auto& node : topology_.facts.nodes)
    if (!node.cpus.empty()) cpus_by_node[node.id] = node.cpus;
  const auto cpus = allowedCpus(proc_, getpid());
  const auto initiator = cpus ? policy::initiatorOf(*cpus, cpus_by_node) : std::nullopt;
  std::vector<int> fast, slower;
  for (const auto& view : topology_.initiators) {
    if (!initiator || view.initiator != *initiator) continue;
    for (const auto& tier : view.tiers) {
      // The next tier down, not the slowest: that may be far slower still.
      if (tier.rank == 0) fast.insert(fast.end(), tier.nodes.begin(), tier.nodes.end());
      if (tier.rank == 1) slower.insert(slower.end(), tier.nodes.begin(), tier.nodes.end());
    }
  }
  if (slower.empty()) return;  // one tier: nowhere better to be
  if (auto placed = placeSelfOn(slower, fast)) {
    log(Priority::Info, "own memory on node(s) {} ({} pages could not leave node(s) {})",
        fmt::join(placed->nodes, ","), placed->pages_left, fmt::join(fast, ","));
  } else {
    log(Priority::Info, "own memory left where the kernel puts it: {}", placed.error().message());
  }
}

tier::Result<void> Agent::start() {
  placeOwnMemory();
  std::string socket = options_.socket_path.value_or(config_.socket_path);
  control::ServerOptions server_options;
  server_options.max_connections = static_cast<size_t>(config_.max_connections);
  auto server = control::Server::start(socket, *this, proc_, server_options);
  if (!server) return std::unexpected(tier::wrap(server.error(), "control socket"));
  server_ = std::move(*server);
  std::string listen = options_.metrics_listen.value_or(config_.metrics_listen);
  if (!listen.empty()) {
    auto exporter = metrics::HttpExporter::start(listen, [this] { return registry_.renderText(); });
    if (!exporter) return std::unexpected(tier::wrap(exporter.error(), "metrics listener"));
    exporter_ = std::move(*exporter);
    log(Priority::Info, "metrics on http://{}/metrics", exporter_->address());
  }
  if (config_.mode == config::Mode::Takeover && !dryRun()) {
    if (auto old = disableKernelPromotion(proc_)) {
      saved_numa_balancing_ = *old;
      if (*old & 2) log(Priority::Notice, "took over: numa_balancing {} -> {}", *old, *old & ~2);
    } else {
      log(Priority::Warning, "Failed to turn off the kernel's promotion, ignoring: {}",
          old.error().message());
    }
  }
  startKernelTiering();
  for (const auto& conflict : others_.conflicts())
    log(Priority::Warning, "another manager is active: {} (mode {})", conflict,
        config::modeName(config_.mode));
  startPolicy();
  log(Priority::Info, "listening on {} (mode {}{})", socket, config::modeName(config_.mode),
      dryRun() ? ", dry run" : "");
  return {};
}

void Agent::stop() {
  stopPolicy();  // first: it restores the knobs it set before takeover's are put back
  if (server_) {
    if (auto ok = server_->stop(); !ok) log(Priority::Warning, "{}", ok.error().message());
    server_.reset();
  }
  exporter_.reset();
  if (saved_numa_balancing_) {
    if (auto ok = restoreNumaBalancing(proc_, *saved_numa_balancing_); !ok)
      log(Priority::Err, "Failed to restore numa_balancing: {}", ok.error().message());
    saved_numa_balancing_.reset();
  }
  stopKernelTiering();
}

tier::Result<void> Agent::reload() {
  auto fresh = config::loadConfig(options_.config_path, options_.config_required);
  if (!fresh) {
    std::string joined;
    for (const auto& error : fresh.error())
      joined += (joined.empty() ? "" : "; ") + error;
    return tier::fail(EINVAL, "configuration rejected, keeping the old one: " + joined);
  }
  std::lock_guard reloading(reload_mutex_);  // SIGHUP and `tierctl config reload` at once
  std::vector<workloads::WorkloadRule> rules = fresh->workloads;
  const bool policy_changed = !(fresh->policy == config_.policy) || fresh->mode != config_.mode;
  if (policy_changed) stopPolicy();
  {
    std::unique_lock lock(state_mutex_);
    config_ = std::move(*fresh);
    applyConfig();
  }
  {
    std::lock_guard lock(watcher_mutex_);
    watcher_.setRules(std::move(rules));
  }
  if (auto ok = refreshTopology(); !ok) return ok;
  reloadKernelTiering();
  if (policy_changed) startPolicy();
  std::shared_lock lock(state_mutex_);
  log(Priority::Info, "configuration reloaded from {}", fmt::join(config_.sources, ", "));
  return {};
}

// Free memory costs one file per node: read for a metrics reader, else every
// kNodeMemoryTicks (status shows it). The whole topology only changes with
// hotplug: every kRediscoverEvery its fingerprint is checked (and the scan
// for other managers redone), and a change brings a full discovery.
void Agent::refreshNodeMemory() {
  std::unique_lock lock(state_mutex_);
  for (auto& node : topology_.facts.nodes) {
    if (auto memory = tier::readNodeMemory(sys_, node.id)) {
      node.total_bytes = memory->total_bytes;
      node.free_bytes = memory->free_bytes;
    }
  }
}

void Agent::tick() {
  ++ticks_;
  if (Clock::now() - last_discovery_ >= kRediscoverEvery) {
    if (Clock::now() - last_full_discovery_ >= kFullDiscoveryEvery ||
        platformFingerprint(sys_) != last_fingerprint_) {
      if (auto ok = refreshTopology(); !ok)
        log(Priority::Warning, "Failed to refresh the topology, ignoring: {}",
            ok.error().message());
    } else {
      auto others = detectOtherManagers(sys_, proc_);
      std::unique_lock lock(state_mutex_);
      others_ = std::move(others);
      last_discovery_ = Clock::now();
    }
  }
  std::vector<workloads::ProcessKey> exited;
  if (ticks_ % kScanTicks == 1 % kScanTicks) {
    std::lock_guard lock(watcher_mutex_);
    auto scan = watcher_.scan(proc_, cgroupfs_ ? &*cgroupfs_ : nullptr);
    if (!scan) {
      log(Priority::Warning, "Failed to scan processes, ignoring: {}", scan.error().message());
    } else {
      for (const auto& process : scan->appeared)
        log(Priority::Info, "managing {} ({})", workloads::describe(process.key), process.comm);
      exited = std::move(scan->exited);
    }
  }
  // Lock order everywhere: state_mutex_ before watcher_mutex_, never after.
  for (const auto& key : exited) {
    log(Priority::Info, "{} left", workloads::describe(key));
    engine_->forgetProcess(key.pid);
    std::unique_lock state(state_mutex_);
    std::erase_if(pins_, [&](const Pin& pin) { return pin.key == key; });
  }
  dropExitedLibtier();
  if (ticks_ % kPinEnforceTicks == 0) enforcePins();
  if (ticks_ % kPolicyLogTicks == 0) logPolicySummary();
  std::string textfile_dir;
  std::chrono::seconds textfile_interval;
  {
    std::shared_lock lock(state_mutex_);
    textfile_dir = config_.textfile_dir;
    textfile_interval = config_.textfile_interval;
  }
  const bool textfile_due =
      !textfile_dir.empty() && Clock::now() - last_textfile_ >= textfile_interval;
  // Metrics cost reads of their own (vmstat, numa_maps): gathered only for a
  // reader, each tick while an exporter serves them, else for the textfile.
  if (exporter_ || textfile_due || ticks_ % kNodeMemoryTicks == 0) refreshNodeMemory();
  if (exporter_ || textfile_due) {
    publishMetrics();
    publishKernelTieringMetrics();
    publishPolicyMetrics();
  }
  if ((exporter_ || textfile_due) && Clock::now() - last_process_metrics_ >= kProcessMetricsEvery) {
    last_process_metrics_ = Clock::now();
    publishProcessMetrics();
  }
  if (textfile_due) {
    last_textfile_ = Clock::now();
    if (auto ok = metrics::writeTextfile(textfile_dir, "tierd", registry_.renderText()); !ok)
      log(Priority::Warning, "Failed to write the metrics textfile, ignoring: {}",
          ok.error().message());
  }
}

std::string Agent::statusLine() const {
  std::shared_lock lock(state_mutex_);
  auto stats = engine_->stats();
  std::lock_guard watcher(watcher_mutex_);
  return fmt::format("{} mode, {} managed processes, {} MiB moved", config::modeName(config_.mode),
                     watcher_.managed().size(), stats.bytes_moved / kMiB);
}

// --- target resolution and moves ------------------------------------------

tier::Result<int> Agent::targetNode(pid_t pid, std::optional<int> node,
                                    std::optional<int> tier) const {
  std::shared_lock lock(state_mutex_);
  if (node) {
    const tier::NodeClass* target = topology_.nodeClass(*node);
    if (!target) return tier::fail(ENODEV, fmt::format("node {} is not online", *node));
    if (target->kind == tier::MemoryKind::None)
      return tier::fail(ENODEV, fmt::format("node {} has no memory", *node));
    return *node;
  }
  // A tier is seen from the CPUs the process may run on.
  auto cpus = allowedCpus(proc_, pid);
  if (!cpus) return tier::fail(ESRCH, fmt::format("process {}", pid));
  const tier::InitiatorTiers* view = nullptr;
  for (const auto& order : topology_.initiators) {
    const auto& initiator_cpus = topology_.nodeFacts(order.initiator)->cpus;
    bool runs_here = std::any_of(cpus->begin(), cpus->end(), [&](int cpu) {
      return std::find(initiator_cpus.begin(), initiator_cpus.end(), cpu) != initiator_cpus.end();
    });
    if (runs_here) {
      view = &order;
      break;
    }
  }
  if (!view) return tier::fail(ENODEV, "no tiers: no node with CPUs");
  if (*tier < 0 || *tier >= static_cast<int>(view->tiers.size()))
    return tier::fail(EINVAL, fmt::format("tier {} does not exist; node {} sees tiers 0-{}", *tier,
                                          view->initiator, view->tiers.size() - 1));
  // Within the tier, the node with the most free memory.
  int best = -1;
  uint64_t best_free = 0;
  for (int candidate : view->tiers[static_cast<size_t>(*tier)].nodes) {
    uint64_t free = topology_.nodeFacts(candidate)->free_bytes.value_or(0);
    if (best < 0 || free > best_free) best = candidate, best_free = free;
  }
  return best;
}

tier::Result<Json> Agent::runMove(const control::Caller& caller, pid_t pid,
                                  std::vector<migrate::Range> ranges, int node) {
  if (mode_.load() == config::Mode::Observe)
    return tier::fail(EOPNOTSUPP,
                      "tierd runs in observe mode ([agent] mode = \"observe\"): it moves no pages");
  if (mode_.load() == config::Mode::Kernel)
    return tier::fail(EOPNOTSUPP,
                      "tierd runs in kernel mode ([agent] mode = \"kernel\"): the kernel's own "
                      "tiering moves pages, tierd moves none");
  migrate::MoveRequest request;
  request.pid = pid;
  request.ranges = std::move(ranges);
  request.target_node = node;
  request.dry_run = dryRun();
  std::stop_token stop = caller.stop;
  request.cancelled = [stop] { return stop.stop_requested(); };
  auto result = engine_->move(request);
  log(Priority::Info, "moved {} of {} pages of process {} to node {} in {:.2f} s{}",
      result.pages_moved, result.pages_requested, pid, node, result.seconds,
      result.stopped ? " (stopped: " + result.stopped->message() + ")" : "");
  // A process that left, or a move refused as a whole, is an error for the
  // caller; partial per-page failures are in the result.
  if (result.stopped && result.pages_moved == 0 && result.stopped->errnum != ENOSPC)
    return std::unexpected(*result.stopped);
  return moveResultJson(result);
}

tier::Result<Json> Agent::migrate(const control::Caller& caller,
                                  const control::MigrateRequest& request) {
  auto node = targetNode(request.pid, request.to_node, request.to_tier);
  if (!node) return std::unexpected(node.error());
  std::vector<migrate::Range> ranges;
  if (request.range) ranges.push_back({request.range->start, request.range->end});
  return runMove(caller, request.pid, std::move(ranges), *node);
}

tier::Result<Json> Agent::pin(const control::Caller& caller, const control::PinRequest& request) {
  auto node = targetNode(request.pid, std::nullopt, request.tier);
  if (!node) return std::unexpected(node.error());
  auto stat = workloads::readStat(proc_, request.pid);
  if (!stat) return std::unexpected(stat.error());
  auto moved = runMove(caller, request.pid, {{request.range.start, request.range.end}}, *node);
  if (!moved) return moved;
  std::unique_lock lock(state_mutex_);
  std::erase_if(pins_, [&](const Pin& pin) {
    return pin.key.pid == request.pid && pin.range.start == request.range.start &&
           pin.range.end == request.range.end;
  });
  pins_.push_back(Pin{{request.pid, stat->start_time}, request.range, request.tier, *node});
  Json out;
  out["pinned"] = true;
  out["node"] = *node;
  out["move"] = *moved;
  return out;
}

tier::Result<Json> Agent::unpin(const control::Caller&, const control::UnpinRequest& request) {
  std::unique_lock lock(state_mutex_);
  size_t removed = std::erase_if(pins_, [&](const Pin& pin) {
    return pin.key.pid == request.pid && pin.range.start == request.range.start &&
           pin.range.end == request.range.end;
  });
  if (removed == 0)
    return tier::fail(ENOENT, fmt::format("no pin on {:#x}-{:#x} of process {}",
                                          request.range.start, request.range.end, request.pid));
  return Json{{"unpinned", true}};
}

void Agent::enforcePins() {
  std::vector<Pin> pins;
  {
    std::shared_lock lock(state_mutex_);
    pins = pins_;
  }
  for (const auto& pin : pins) {
    auto stat = workloads::readStat(proc_, pin.key.pid);
    if (!stat || stat->start_time != pin.key.start_time) continue;  // gone: the scan drops it
    (void)runMove(control::Caller{}, pin.key.pid, {{pin.range.start, pin.range.end}}, pin.node);
  }
}

// --- status, ps, config ----------------------------------------------------

bool Agent::visibleTo(const control::Caller& caller, pid_t pid) const {
  if (caller.privileged) return true;
  auto info = workloads::readProcess(proc_, pid);
  return info && info->uid == caller.uid;
}

std::map<int, uint64_t> Agent::residentBytesByNode(pid_t pid) const {
  std::map<int, uint64_t> bytes;
  auto text = proc_.readFile(fmt::format("{}/numa_maps", pid));
  if (!text) return bytes;
  auto entries = tier::parseNumaMaps(*text);
  if (!entries) return bytes;
  for (const auto& entry : *entries)
    for (const auto& [node, pages] : entry.pages_on_node)
      bytes[node] += pages * entry.page_size;
  return bytes;
}

tier::Result<Json> Agent::status(const control::Caller& caller) {
  Json libtier = libtierJson(caller);  // before state_mutex_: visibleTo reads /proc only
  auto stats = engine_->stats();
  std::shared_lock lock(state_mutex_);
  Json out;
  out["version"] = TIERD_VERSION;
  out["uptime_seconds"] =
      std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count();
  out["mode"] = std::string(config::modeName(config_.mode));
  out["dry_run"] = dryRun();
  if (auto kernel = kernelTieringJson()) out["kernel_tiering"] = std::move(*kernel);
  out["policy"] = policyJson();
  {
    std::lock_guard watcher(watcher_mutex_);
    out["managed_processes"] = watcher_.managed().size();
    Json workloads = Json::object();
    for (const auto& rule : watcher_.rules())
      workloads[rule.name] = 0;
    for (const auto& [key, managed] : watcher_.managed())
      workloads[managed.rule] = workloads[managed.rule].get<int>() + 1;
    out["workloads"] = workloads;
  }
  Json migration;
  uint64_t moved = 0;
  Json by_direction = Json::object();
  for (const auto& [pair, count] : stats.pages_moved) {
    moved += count;
    std::string way(direction(topology_, pair.first, pair.second));
    by_direction[way] = by_direction.value(way, 0ULL) + count;
  }
  migration["pages_moved"] = moved;
  migration["bytes_moved"] = stats.bytes_moved;
  migration["by_direction"] = by_direction;
  migration["pingpong_moves"] = stats.pingpong_moves;
  migration["requests"] = stats.requests;
  migration["requests_stopped"] = stats.requests_stopped;
  migration["failed"] = Json::object();
  for (const auto& [reason, count] : stats.pages_failed)
    migration["failed"][reason] = count;
  migration["rate_limit_mbps"] = config_.migration.rate_limit_mbps;
  out["migration"] = migration;
  Json others;
  if (others_.numa_balancing) others["numa_balancing"] = *others_.numa_balancing;
  if (others_.demotion_enabled) others["demotion_enabled"] = *others_.demotion_enabled;
  others["kdamonds_running"] = others_.kdamonds_running;
  others["numad"] = others_.numad;
  others["memtierd"] = others_.memtierd;
  others["conflicts"] = others_.conflicts();
  out["other_managers"] = others;
  Json nodes = Json::array();
  for (const auto& node : topology_.nodes) {
    if (node.kind == tier::MemoryKind::None) continue;
    const auto* facts = topology_.nodeFacts(node.node);
    Json entry;
    entry["node"] = node.node;
    entry["kind"] = std::string(tier::kindName(node.kind));
    if (auto rank = topology_.homeRank(node.node)) entry["tier"] = *rank;
    entry["size"] = facts->total_bytes.value_or(0);
    entry["free"] = facts->free_bytes.value_or(0);
    nodes.push_back(entry);
  }
  out["nodes"] = nodes;
  out["pins"] = pins_.size();
  out["libtier"] = std::move(libtier);
  if (server_) {
    Json requests = Json::object();
    for (const auto& [name, outcomes] : server_->stats().requests)
      for (const auto& [outcome, count] : outcomes)
        requests[name][outcome] = count;
    out["control_requests"] = requests;
  }
  return out;
}

tier::Result<Json> Agent::ps(const control::Caller& caller, const control::PsRequest& request) {
  std::vector<std::tuple<pid_t, std::string, std::string>> processes;  // pid, comm, workload
  if (request.pid) {
    auto info = workloads::readProcess(proc_, *request.pid);
    if (!info) return std::unexpected(info.error());
    std::string workload;
    std::lock_guard watcher(watcher_mutex_);
    for (const auto& [key, managed] : watcher_.managed())
      if (key.pid == *request.pid) workload = managed.rule;
    processes.emplace_back(*request.pid, info->comm, workload);
  } else {
    std::lock_guard watcher(watcher_mutex_);
    for (const auto& [key, managed] : watcher_.managed())
      processes.emplace_back(key.pid, managed.process.comm, managed.rule);
  }
  Json list = Json::array();
  for (const auto& [pid, comm, workload] : processes) {
    if (!visibleTo(caller, pid)) continue;
    Json entry;
    entry["pid"] = pid;
    entry["comm"] = comm;
    entry["workload"] = workload;
    Json nodes = Json::object();
    uint64_t total = 0;
    for (const auto& [node, bytes] : residentBytesByNode(pid)) {
      nodes["node" + std::to_string(node)] = bytes;
      total += bytes;
    }
    entry["nodes"] = nodes;
    entry["total"] = total;
    list.push_back(entry);
  }
  return Json{{"processes", list}};
}

tier::Result<Json> Agent::configShow(const control::Caller&) {
  std::shared_lock lock(state_mutex_);
  Json out;
  out["sources"] = config_.sources;
  out["mode"] = std::string(config::modeName(config_.mode));
  out["interval_ms"] = config_.interval.count();
  out["dry_run"] = dryRun();
  out["migration"] = {{"rate_limit_mbps", config_.migration.rate_limit_mbps},
                      {"burst_mb", config_.migration.burst_mb},
                      {"batch_pages", config_.migration.batch_pages},
                      {"min_free_mb", config_.migration.min_free_mb},
                      {"min_free_percent", config_.migration.min_free_percent},
                      {"pingpong_window_s", config_.migration.pingpong_window_s}};
  out["control"] = {{"socket", options_.socket_path.value_or(config_.socket_path)},
                    {"max_connections", config_.max_connections}};
  out["metrics"] = {{"listen", options_.metrics_listen.value_or(config_.metrics_listen)},
                    {"textfile_dir", config_.textfile_dir},
                    {"textfile_interval_s", config_.textfile_interval.count()}};
  Json workloads = Json::array();
  for (const auto& rule : config_.workloads)
    workloads.push_back(rule.name);
  out["workloads"] = workloads;
  return out;
}

tier::Result<Json> Agent::configReload(const control::Caller&) {
  if (auto ok = reload(); !ok) {
    log(Priority::Err, "{}", ok.error().message());
    return std::unexpected(ok.error());
  }
  return configShow(control::Caller{});
}

// --- metrics ---------------------------------------------------------------

void Agent::publishMetrics() {
  auto& r = registry_;
  using metrics::Type;
  r.describe("tierd_node_capacity_bytes", Type::Gauge, "Memory of the node.");
  r.describe("tierd_node_free_bytes", Type::Gauge, "Free memory of the node.");
  r.describe("tierd_node_used_bytes", Type::Gauge, "Used memory of the node.");
  r.describe("tierd_tier_capacity_bytes", Type::Gauge, "Memory of the tier (nodes by home rank).");
  r.describe("tierd_tier_free_bytes", Type::Gauge, "Free memory of the tier.");
  r.describe("tierd_pages_migrated_total", Type::Counter,
             "Pages tierd moved, by nodes and direction.");
  r.describe("tierd_pages_promoted_total", Type::Counter, "Pages tierd moved to a faster tier.");
  r.describe("tierd_pages_demoted_total", Type::Counter, "Pages tierd moved to a slower tier.");
  r.describe("tierd_pages_failed_total", Type::Counter, "Pages tierd could not move, by reason.");
  r.describe("tierd_migrated_bytes_total", Type::Counter, "Bytes tierd moved.");
  r.describe("tierd_pingpong_pages_total", Type::Counter,
             "Pages moved back within the ping-pong window.");
  r.describe("tierd_managed_processes", Type::Gauge, "Processes selected by the workload rules.");
  r.describe("tierd_other_manager_active", Type::Gauge, "Another tiering manager is active (1).");
  r.describe("tierd_control_requests_total", Type::Counter, "Control socket requests by outcome.");
  auto stats = engine_->stats();
  std::shared_lock lock(state_mutex_);
  std::map<int, std::pair<uint64_t, uint64_t>> per_tier;
  for (const auto& node : topology_.nodes) {
    if (node.kind == tier::MemoryKind::None) continue;
    const auto* facts = topology_.nodeFacts(node.node);
    auto rank = topology_.homeRank(node.node);
    metrics::Labels labels{{"node", std::to_string(node.node)},
                           {"kind", std::string(tier::kindName(node.kind))},
                           {"tier", rank ? std::to_string(*rank) : ""}};
    uint64_t total = facts->total_bytes.value_or(0), free = facts->free_bytes.value_or(0);
    r.set("tierd_node_capacity_bytes", labels, static_cast<double>(total));
    r.set("tierd_node_free_bytes", labels, static_cast<double>(free));
    r.set("tierd_node_used_bytes", labels, static_cast<double>(total - std::min(total, free)));
    if (rank) per_tier[*rank].first += total, per_tier[*rank].second += free;
  }
  for (const auto& [rank, sizes] : per_tier) {
    r.set("tierd_tier_capacity_bytes", {{"tier", std::to_string(rank)}},
          static_cast<double>(sizes.first));
    r.set("tierd_tier_free_bytes", {{"tier", std::to_string(rank)}},
          static_cast<double>(sizes.second));
  }
  std::map<std::string, uint64_t> promoted, demoted;
  for (const auto& [pair, count] : stats.pages_moved) {
    std::string way(direction(topology_, pair.first, pair.second));
    r.set("tierd_pages_migrated_total",
          {{"from_node", std::to_string(pair.first)},
           {"to_node", std::to_string(pair.second)},
           {"direction", way}},
          static_cast<double>(count));
    if (way == "promote") promoted[std::to_string(pair.second)] += count;
    if (way == "demote") demoted[std::to_string(pair.second)] += count;
  }
  for (const auto& [node, count] : promoted)
    r.set("tierd_pages_promoted_total", {{"to_node", node}}, static_cast<double>(count));
  for (const auto& [node, count] : demoted)
    r.set("tierd_pages_demoted_total", {{"to_node", node}}, static_cast<double>(count));
  for (const auto& [reason, count] : stats.pages_failed)
    r.set("tierd_pages_failed_total", {{"reason", reason}}, static_cast<double>(count));
  r.set("tierd_migrated_bytes_total", {}, static_cast<double>(stats.bytes_moved));
  r.set("tierd_pingpong_pages_total", {}, static_cast<double>(stats.pingpong_moves));
  {
    std::lock_guard watcher(watcher_mutex_);
    r.set("tierd_managed_processes", {}, static_cast<double>(watcher_.managed().size()));
  }
  r.set("tierd_other_manager_active", {{"manager", "numa_balancing_tiering"}},
        others_.kernelPromotes() ? 1 : 0);
  r.set("tierd_other_manager_active", {{"manager", "damon"}},
        others_.kdamonds_running.empty() ? 0 : 1);
  r.set("tierd_other_manager_active", {{"manager", "numad"}}, others_.numad.empty() ? 0 : 1);
  r.set("tierd_other_manager_active", {{"manager", "memtierd"}}, others_.memtierd.empty() ? 0 : 1);
  if (server_)
    for (const auto& [name, outcomes] : server_->stats().requests)
      for (const auto& [outcome, count] : outcomes)
        r.set("tierd_control_requests_total", {{"request", name}, {"outcome", outcome}},
              static_cast<double>(count));
  if (auto text = proc_.readFile("self/stat"))
    if (auto cpu = metrics::parseSelfStatCpu(*text, ::sysconf(_SC_CLK_TCK)))
      metrics::publishAgentCpu(r, *cpu);
  if (auto text = proc_.readFile("vmstat"))
    if (auto counters = metrics::kernelTieringCounters(*text))
      metrics::publishKernelTieringCounters(r, *counters);
}

// numa_maps costs a page-table walk per process: done every few ticks.
void Agent::publishProcessMetrics() {
  auto& r = registry_;
  r.describe("tierd_process_resident_bytes", metrics::Type::Gauge,
             "Resident memory of a managed process, by tier.");
  r.describe("tierd_cgroup_resident_bytes", metrics::Type::Gauge,
             "Resident memory of the managed processes of a cgroup, by tier.");
  std::vector<std::tuple<pid_t, std::string, std::string, std::string>> processes;
  {
    std::lock_guard watcher(watcher_mutex_);
    for (const auto& [key, managed] : watcher_.managed())
      processes.emplace_back(key.pid, managed.process.comm, managed.rule, managed.process.cgroup);
  }
  std::vector<std::pair<metrics::Labels, double>> per_process;
  std::map<std::pair<std::string, std::string>, uint64_t> per_cgroup;
  {
    std::shared_lock lock(state_mutex_);
    for (const auto& [pid, comm, workload, cgroup] : processes) {
      std::map<std::string, uint64_t> per_tier;
      for (const auto& [node, bytes] : residentBytesByNode(pid)) {
        auto rank = topology_.homeRank(node);
        per_tier[rank ? std::to_string(*rank) : "unknown"] += bytes;
      }
      for (const auto& [rank, bytes] : per_tier) {
        per_process.push_back(
            {{{"pid", std::to_string(pid)}, {"comm", comm}, {"workload", workload}, {"tier", rank}},
             static_cast<double>(bytes)});
        per_cgroup[{cgroup, rank}] += bytes;
      }
    }
  }
  std::vector<std::pair<metrics::Labels, double>> cgroup_samples;
  for (const auto& [key, bytes] : per_cgroup)
    cgroup_samples.push_back(
        {{{"cgroup", key.first}, {"tier", key.second}}, static_cast<double>(bytes)});
  // Replaced whole, so processes that left disappear and a scrape never sees half.
  r.replaceFamily("tierd_process_resident_bytes", std::move(per_process));
  r.replaceFamily("tierd_cgroup_resident_bytes", std::move(cgroup_samples));
}

}  // namespace tierd
