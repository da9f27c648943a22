#include "kernel_tiering/damos.h"

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <utility>

#include "parse/parsers.h"

namespace tierd::kernel_tiering {
namespace {

namespace damon = sampling::damon;

constexpr std::string_view kMemory = "devices/system/memory";
constexpr uint64_t kSizeMax = ULONG_MAX;  // access_pattern/sz/max: any size
constexpr uint64_t kUintMax = UINT_MAX;   // nr_accesses/max, age/max
constexpr uint64_t kMiB = 1ULL << 20;

std::string str(uint64_t value) {
  return std::to_string(value);
}
std::string path(std::string_view a, std::string_view b) {
  return tier::joinPath(a, b);
}
std::string contextDir(int kdamond) {
  return path(damon::kdamondDir(kdamond), "contexts/0");
}
std::string schemeDir(int kdamond) {
  return path(contextDir(kdamond), "schemes/0");
}

// As Topology::homeRank picks it: the node's own CPUs, else the initiator HMAT
// names for it, else the closest initiator by SLIT distance.
const tier::InitiatorTiers* homeInitiator(const tier::Topology& topology, int node) {
  const tier::NodeFacts* facts = topology.nodeFacts(node);
  if (!facts) return nullptr;
  std::optional<int> home;
  if (!facts->cpus.empty()) home = node;
  for (const auto* access : {&facts->access1, &facts->access0})
    if (!home && *access && !(*access)->initiators.empty()) home = (*access)->initiators.front();
  const tier::InitiatorTiers* best = nullptr;
  int best_distance = INT_MAX;
  for (const auto& order : topology.initiators) {
    if (home) {
      if (order.initiator == *home) return &order;
      continue;
    }
    const auto& row = topology.nodeFacts(order.initiator)->distance;
    auto it = row.find(node);
    int distance = it == row.end() ? INT_MAX - 1 : it->second;
    if (distance < best_distance) best_distance = distance, best = &order;
  }
  return best;
}

// The node of a tier with the most free memory (ties: the lowest id).
int roomiest(const tier::Topology& topology, const tier::Tier& tier) {
  int best = -1;
  uint64_t best_free = 0;
  for (int node : tier.nodes) {
    const tier::NodeFacts* facts = topology.nodeFacts(node);
    uint64_t free = facts ? facts->free_bytes.value_or(0) : 0;
    if (best < 0 || free > best_free) best = node, best_free = free;
  }
  return best;
}

uint64_t permil(double percent) {
  return static_cast<uint64_t>(std::clamp(std::lround(percent * 10), 0L, 1000L));
}

}  // namespace

std::string_view damosActionName(DamosAction action) {
  return action == DamosAction::MigrateHot ? "migrate_hot" : "migrate_cold";
}

std::vector<DamosPlanEntry> planDamosTiering(const tier::Topology& topology, bool promote,
                                             bool demote) {
  std::vector<DamosPlanEntry> plan;
  for (const auto& node : topology.nodes) {
    if (node.kind == tier::MemoryKind::None) continue;
    const tier::InitiatorTiers* order = homeInitiator(topology, node.node);
    if (!order) continue;
    auto rank = order->rankOf(node.node);
    if (!rank) continue;
    size_t r = static_cast<size_t>(*rank);
    if (r == 0 && demote && order->tiers.size() > 1) {
      int target = roomiest(topology, order->tiers[1]);
      if (target >= 0) plan.push_back({node.node, target, DamosAction::MigrateCold});
    } else if (r > 0 && promote) {
      int target = roomiest(topology, order->tiers[0]);
      if (target >= 0 && target != node.node)
        plan.push_back({node.node, target, DamosAction::MigrateHot});
    }
  }
  return plan;
}

tier::Result<DamosSchemeStats> parseDamosStats(const DamosStatsText& text) {
  DamosSchemeStats stats;
  std::pair<const std::string*, uint64_t*> fields[] = {{&text.nr_tried, &stats.nr_tried},
                                                       {&text.sz_tried, &stats.sz_tried},
                                                       {&text.nr_applied, &stats.nr_applied},
                                                       {&text.sz_applied, &stats.sz_applied},
                                                       {&text.qt_exceeds, &stats.qt_exceeds}};
  const char* names[] = {"nr_tried", "sz_tried", "nr_applied", "sz_applied", "qt_exceeds"};
  for (size_t i = 0; i < std::size(fields); ++i) {
    auto value = tier::parseU64(*fields[i].first);
    if (!value) return std::unexpected(tier::wrap(value.error(), std::string("stats/") + names[i]));
    *fields[i].second = *value;
  }
  return stats;
}

DamosSchemeSettings schemeSettings(const DamosPlanEntry& entry,
                                   const KernelTieringOptions& options) {
  DamosSchemeSettings s;
  s.action = std::string(damosActionName(entry.action));
  s.target_nid = entry.target_node;
  s.age_max = kUintMax;
  s.quota_ms = options.damos_quota_ms;
  s.quota_reset_ms = options.damos_quota_reset_ms;
  s.quota_bytes = static_cast<uint64_t>(
      std::llround(options.damos_quota_mbps * static_cast<double>(kMiB) *
                   static_cast<double>(options.damos_quota_reset_ms) / 1000.0));
  s.wmark_low = permil(options.damos_low_watermark_percent);
  if (entry.action == DamosAction::MigrateCold) {
    s.nr_accesses_min = 0;
    s.nr_accesses_max = 0;
    uint64_t aggr_us = std::max<uint64_t>(options.damos_aggr_us, 1);
    s.age_min = static_cast<uint64_t>(
        std::ceil(options.damos_cold_min_age_s * 1e6 / static_cast<double>(aggr_us)));
    s.wmark_high = permil(options.damos_demote_free_percent);
  } else {
    s.nr_accesses_min = options.damos_hot_min_accesses;
    s.nr_accesses_max = kUintMax;
    s.wmark_high = 1000;
  }
  // The kernel activates a scheme once the metric falls below mid and keeps it
  // active between low and high; mid = high gives no hysteresis band, which
  // the free-memory rate (a slow metric) does not need.
  s.wmark_mid = s.wmark_high;
  return s;
}

tier::Result<DamosTiering> DamosTiering::open(const std::string& sysfs_dir) {
  auto sys = tier::FsRoot::open(sysfs_dir);
  if (!sys) return std::unexpected(sys.error());
  auto writer = tier::FsWriter::open(sysfs_dir);
  if (!writer) return std::unexpected(writer.error());
  return DamosTiering(std::move(*sys), std::move(*writer));
}

DamosTiering::DamosTiering(tier::FsRoot sys, tier::FsWriter writer)
    : sys_(std::move(sys)), writer_(std::move(writer)) {}

DamosTiering::DamosTiering(DamosTiering&& other) noexcept
    : sys_(std::move(other.sys_)),
      writer_(std::move(other.writer_)),
      claim_(std::exchange(other.claim_, {})),
      holding_(std::exchange(other.holding_, false)),
      schemes_(std::exchange(other.schemes_, {})),
      notes_(std::move(other.notes_)) {}

DamosTiering::~DamosTiering() {
  if (holding_) (void)stop();
}

void DamosTiering::note(std::string text) {
  if (std::find(notes_.begin(), notes_.end(), text) == notes_.end())
    notes_.push_back(std::move(text));
}

tier::Result<void> DamosTiering::write(const std::string& relpath, std::string_view value) const {
  return writer_.write(relpath, value);
}

tier::Result<std::vector<damon::AddressRange>> DamosTiering::nodeRanges(
    const tier::Topology& topology, int node) const {
  const tier::NodeFacts* facts = topology.nodeFacts(node);
  if (!facts) return tier::fail(ENODEV, "node " + std::to_string(node) + " is not online");
  uint64_t block_size = topology.facts.memory_block_size.value_or(0);
  if (block_size == 0) {
    auto text = sys_.readFile(path(kMemory, "block_size_bytes"));
    if (!text) return std::unexpected(text.error());
    auto size = damon::parseBlockSize(*text);
    if (!size) return std::unexpected(size.error());
    block_size = *size;
  }
  std::vector<uint64_t> online;
  for (uint64_t block : facts->memory_blocks) {
    auto state = sys_.readFile(path(kMemory, "memory" + str(block) + "/state"));
    if (state && tier::trim(*state) == "online") online.push_back(block);
  }
  auto ranges = damon::memoryBlockRanges(std::move(online), block_size);
  if (ranges.empty())
    return tier::fail(ENOENT, "node " + std::to_string(node) + " has no online memory block in " +
                                  path(sys_.dir(), kMemory));
  return ranges;
}

tier::Result<void> DamosTiering::configure(const DamosSchemeState& scheme,
                                           const KernelTieringOptions& options) {
  int k = scheme.kdamond;
  std::string ctx = contextDir(k);
  if (auto r = write(path(damon::kdamondDir(k), "contexts/nr_contexts"), "1"); !r) return r;
  if (std::string avail = path(ctx, "avail_operations"); sys_.exists(avail)) {
    auto text = sys_.readFile(avail);
    if (!text) return std::unexpected(text.error());
    auto ops = damon::parseAvailableOperations(*text);
    if (!ops) return std::unexpected(tier::wrap(ops.error(), path(sys_.dir(), avail)));
    if (!ops->paddr)
      return tier::fail(EOPNOTSUPP, "kernel's DAMON lacks paddr (avail_operations: " +
                                        std::string(tier::trim(*text)) + ")");
  }
  if (auto r = write(path(ctx, "operations"), "paddr"); !r) return r;
  std::string attrs = path(ctx, "monitoring_attrs");
  const std::pair<std::string_view, uint64_t> monitoring[] = {
      {"intervals/sample_us", options.damos_sample_us},
      {"intervals/aggr_us", options.damos_aggr_us},
      {"intervals/update_us", 1'000'000},
      {"nr_regions/min", 10},
      {"nr_regions/max", 1'000},
  };
  for (const auto& [file, value] : monitoring)
    if (auto r = write(path(attrs, file), str(value)); !r) return r;

  std::string targets = path(ctx, "targets");
  if (auto r = write(path(targets, "nr_targets"), "1"); !r) return r;
  std::string regions = path(targets, "0/regions");
  if (auto r = write(path(regions, "nr_regions"), str(scheme.ranges.size())); !r) return r;
  for (size_t i = 0; i < scheme.ranges.size(); ++i) {
    std::string dir = path(regions, str(i));
    if (auto r = write(path(dir, "start"), str(scheme.ranges[i].start)); !r) return r;
    if (auto r = write(path(dir, "end"), str(scheme.ranges[i].end)); !r) return r;
  }

  if (auto r = write(path(ctx, "schemes/nr_schemes"), "1"); !r) return r;
  std::string dir = schemeDir(k);
  if (!sys_.exists(path(dir, "target_nid")))
    return tier::fail(EOPNOTSUPP, "kernel's DAMOS lacks the migrate actions (Linux 6.11+): no " +
                                      path(sys_.dir(), path(dir, "target_nid")));
  DamosSchemeSettings s = schemeSettings(scheme.entry, options);
  const std::pair<std::string_view, std::string> settings[] = {
      {"action", s.action},
      {"target_nid", std::to_string(s.target_nid)},
      {"access_pattern/sz/min", "0"},
      {"access_pattern/sz/max", str(kSizeMax)},
      {"access_pattern/nr_accesses/min", str(s.nr_accesses_min)},
      {"access_pattern/nr_accesses/max", str(s.nr_accesses_max)},
      {"access_pattern/age/min", str(s.age_min)},
      {"access_pattern/age/max", str(s.age_max)},
      {"quotas/ms", str(s.quota_ms)},
      {"quotas/bytes", str(s.quota_bytes)},
      {"quotas/reset_interval_ms", str(s.quota_reset_ms)},
      // Within the quota, the kernel takes the coldest (migrate_cold) or the
      // hottest (migrate_hot) regions first by these weights.
      {"quotas/weights/sz_permil", "0"},
      {"quotas/weights/nr_accesses_permil", "500"},
      {"quotas/weights/age_permil", "500"},
      {"watermarks/metric", "free_mem_rate"},
      {"watermarks/interval_us", "1000000"},
      {"watermarks/high", str(s.wmark_high)},
      {"watermarks/mid", str(s.wmark_mid)},
      {"watermarks/low", str(s.wmark_low)},
  };
  for (const auto& [file, value] : settings) {
    auto r = write(path(dir, file), value);
    if (!r && file == "action" && r.error().errnum == EINVAL)
      return std::unexpected(tier::wrap(r.error(), "kernel's DAMOS lacks " + s.action));
    if (!r) return r;
  }
  return writeYoungFilter(dir, scheme.entry.action);
}

// A region's access counts are per region, not per page: pages just promoted
// into a region of the fast node that DAMON still sees as cold would be
// demoted again (seen in the lab: a busy buffer went back and forth). So the
// page's own accessed bit decides as well: migrate_cold skips young pages,
// migrate_hot takes only young ones (as damo's mem_tier recipe does).
tier::Result<void> DamosTiering::writeYoungFilter(const std::string& dir, DamosAction action) {
  std::string filters = path(dir, "filters");
  if (!sys_.exists(path(filters, "nr_filters"))) {
    young_filter_missing_ =
        "kernel's DAMOS has no filters: pages are moved by their region's "
        "access counts alone (a just-promoted page may be demoted again)";
    return {};
  }
  if (auto r = write(path(filters, "nr_filters"), "1"); !r) return r;
  auto typed = write(path(filters, "0/type"), "young");
  if (!typed && typed.error().errnum == EINVAL) {
    young_filter_missing_ =
        "kernel's DAMOS lacks the young filter (6.10+): pages are moved by "
        "their region's access counts alone";
    return write(path(filters, "nr_filters"), "0");
  }
  if (!typed) return typed;
  // In 6.12 a filter filters out what it matches.
  return write(path(filters, "0/matching"), action == DamosAction::MigrateCold ? "Y" : "N");
}

tier::Result<void> DamosTiering::apply(const tier::Topology& topology,
                                       const KernelTieringOptions& options, bool promote,
                                       bool demote) {
  if (holding_)
    if (auto r = stop(); !r) return r;
  auto plan = planDamosTiering(topology, promote, demote);
  if (plan.empty()) {
    note("DAMOS: no scheme to run (one memory tier, or nothing to promote or demote)");
    return {};
  }
  std::vector<DamosSchemeState> schemes;
  for (const auto& entry : plan) {
    auto ranges = nodeRanges(topology, entry.node);
    if (!ranges)
      return std::unexpected(
          tier::wrap(ranges.error(), "DAMOS for node " + std::to_string(entry.node)));
    schemes.push_back({.entry = entry, .ranges = std::move(*ranges)});
  }
  auto claim = damon::claimKdamonds(sys_, writer_, schemes.size());
  if (!claim) return std::unexpected(claim.error());
  claim_ = std::move(*claim);
  holding_ = true;
  for (size_t i = 0; i < schemes.size(); ++i)
    schemes[i].kdamond = claim_.kdamonds[i];
  young_filter_missing_.clear();
  for (auto& scheme : schemes) {
    auto ok = configure(scheme, options);
    if (ok) ok = damon::turnKdamondOn(writer_, scheme.kdamond);
    if (!ok) {
      schemes_ = std::move(schemes);
      auto error = tier::wrap(ok.error(), "DAMOS for node " + std::to_string(scheme.entry.node));
      releaseAll();
      return std::unexpected(std::move(error));
    }
    scheme.running = true;
  }
  schemes_ = std::move(schemes);
  if (!young_filter_missing_.empty()) note(young_filter_missing_);
  return {};
}

tier::Result<void> DamosTiering::refreshStats() {
  for (auto& scheme : schemes_) {
    if (!scheme.running) continue;
    std::string state = path(damon::kdamondDir(scheme.kdamond), "state");
    if (auto r = write(state, "update_schemes_stats"); !r) {
      if (!damon::kdamondIsOn(sys_, scheme.kdamond).value_or(true)) {
        scheme.running = false;
        note("DAMOS kdamond " + std::to_string(scheme.kdamond) + " (node " +
             std::to_string(scheme.entry.node) + ") stopped by itself");
        continue;
      }
      return r;
    }
    std::string stats = path(schemeDir(scheme.kdamond), "stats");
    DamosStatsText text;
    std::pair<std::string*, std::string_view> files[] = {{&text.nr_tried, "nr_tried"},
                                                         {&text.sz_tried, "sz_tried"},
                                                         {&text.nr_applied, "nr_applied"},
                                                         {&text.sz_applied, "sz_applied"},
                                                         {&text.qt_exceeds, "qt_exceeds"}};
    for (auto& [field, name] : files) {
      auto content = sys_.readFile(path(stats, name));
      if (!content) return std::unexpected(content.error());
      *field = std::move(*content);
    }
    auto parsed = parseDamosStats(text);
    if (!parsed) return std::unexpected(tier::wrap(parsed.error(), path(sys_.dir(), stats)));
    scheme.stats = *parsed;
  }
  return {};
}

void DamosTiering::releaseAll() {
  for (auto& scheme : schemes_) {
    if (scheme.kdamond < 0) continue;
    if (auto r = damon::turnKdamondOff(sys_, writer_, scheme.kdamond); !r)
      note("DAMOS kdamond " + std::to_string(scheme.kdamond) +
           " could not be turned off: " + r.error().message());
    scheme.running = false;
  }
  if (holding_)
    if (auto left = damon::releaseKdamonds(sys_, writer_, claim_)) note(std::move(*left));
  holding_ = false;
  claim_ = {};
  schemes_.clear();
}

tier::Result<void> DamosTiering::stop() {
  // Off first, each on its own: one failure must not leave the others running.
  std::optional<tier::Error> first_error;
  for (auto& scheme : schemes_) {
    if (auto r = damon::turnKdamondOff(sys_, writer_, scheme.kdamond); !r) {
      if (!first_error) first_error = r.error();
      continue;
    }
    scheme.running = false;
    scheme.kdamond = -1;
  }
  if (first_error) return std::unexpected(*first_error);
  releaseAll();
  return {};
}

}  // namespace tierd::kernel_tiering
