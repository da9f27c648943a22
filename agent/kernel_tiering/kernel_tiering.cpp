#include "kernel_tiering/kernel_tiering.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>

#include "parse/parsers.h"

namespace tierd::kernel_tiering {
namespace {

bool usesNumaBalancing(Machinery machinery) {
  return machinery == Machinery::NumaBalancing || machinery == Machinery::Both;
}
bool usesDamos(Machinery machinery) {
  return machinery == Machinery::Damos || machinery == Machinery::Both;
}

}  // namespace

std::map<std::string, uint64_t> vmstatDeltas(const std::map<std::string, uint64_t>& then,
                                             const std::map<std::string, uint64_t>& now) {
  std::map<std::string, uint64_t> out;
  for (std::string_view name : kReportedVmstat) {
    auto before = then.find(std::string(name));
    auto after = now.find(std::string(name));
    if (before == then.end() || after == now.end()) continue;
    out[std::string(name)] = after->second >= before->second ? after->second - before->second : 0;
  }
  return out;
}

nlohmann::ordered_json reportJson(const KernelTieringReport& report) {
  nlohmann::ordered_json out;
  out["applied"] = report.applied;
  out["machinery"] = report.machinery;
  out["seconds_since_apply"] = report.seconds_since_apply;
  nlohmann::ordered_json knobs = nlohmann::ordered_json::object();
  for (const auto& knob : report.knobs) {
    nlohmann::ordered_json entry;
    entry["present"] = knob.value.has_value();
    if (knob.value) entry["value"] = *knob.value;
    entry["set_by_tierd"] = knob.written.has_value();
    if (knob.original) entry["original"] = *knob.original;
    knobs[std::string(knobInfo(knob.knob).name)] = entry;
  }
  out["knobs"] = knobs;
  nlohmann::ordered_json schemes = nlohmann::ordered_json::array();
  for (const auto& scheme : report.schemes) {
    schemes.push_back({{"node", scheme.entry.node},
                       {"target_node", scheme.entry.target_node},
                       {"action", std::string(damosActionName(scheme.entry.action))},
                       {"kdamond", scheme.kdamond},
                       {"running", scheme.running},
                       {"nr_tried", scheme.stats.nr_tried},
                       {"sz_tried", scheme.stats.sz_tried},
                       {"nr_applied", scheme.stats.nr_applied},
                       {"sz_applied", scheme.stats.sz_applied},
                       {"qt_exceeds", scheme.stats.qt_exceeds}});
  }
  out["damos_schemes"] = schemes;
  out["vmstat_since_apply"] = report.vmstat_deltas;
  out["notes"] = report.notes;
  return out;
}

std::string describeApplied(const KernelTieringReport& report) {
  std::string text = "kernel tiering (" + report.machinery + "):";
  for (const auto& knob : report.knobs)
    if (knob.written && knob.original)
      text +=
          fmt::format(" {} {} -> {}", knobInfo(knob.knob).name,
                      formatKnob(knob.knob, *knob.original), formatKnob(knob.knob, *knob.written));
  for (const auto& scheme : report.schemes)
    text +=
        fmt::format("; DAMOS {} node {} -> {} (kdamond {})", damosActionName(scheme.entry.action),
                    scheme.entry.node, scheme.entry.target_node, scheme.kdamond);
  return text;
}

tier::Result<std::unique_ptr<KernelTiering>> KernelTiering::open(const std::string& sysfs_dir,
                                                                 const std::string& procfs_dir) {
  auto knobs = KernelKnobs::open(sysfs_dir, procfs_dir);
  if (!knobs) return std::unexpected(knobs.error());
  auto damos = DamosTiering::open(sysfs_dir);
  if (!damos) return std::unexpected(damos.error());
  auto proc = tier::FsRoot::open(procfs_dir);
  if (!proc) return std::unexpected(proc.error());
  return std::make_unique<KernelTiering>(std::move(*knobs), std::move(*damos), std::move(*proc));
}

KernelTiering::KernelTiering(KernelKnobs knobs, DamosTiering damos, tier::FsRoot proc)
    : knobs_(std::move(knobs)), damos_(std::move(damos)), proc_(std::move(proc)) {}

KernelTiering::~KernelTiering() {
  std::lock_guard lock(mutex_);
  (void)restoreLocked();
}

void KernelTiering::note(std::string text) {
  if (std::find(notes_.begin(), notes_.end(), text) == notes_.end())
    notes_.push_back(std::move(text));
}

std::map<std::string, uint64_t> KernelTiering::readVmstat() const {
  auto text = proc_.readFile("vmstat");
  if (!text) return {};
  auto counters = tier::parseCounters(*text);
  return counters ? *counters : std::map<std::string, uint64_t>{};
}

bool KernelTiering::applied() const {
  std::lock_guard lock(mutex_);
  return options_.has_value();
}

std::optional<KernelTieringOptions> KernelTiering::options() const {
  std::lock_guard lock(mutex_);
  return options_;
}

tier::Result<void> KernelTiering::apply(const tier::Topology& topology,
                                        const KernelTieringOptions& options) {
  std::lock_guard lock(mutex_);
  (void)restoreLocked();
  notes_.clear();
  auto ok = applyLocked(topology, options);
  if (!ok) {
    (void)restoreLocked();
    return ok;
  }
  options_ = options;
  applied_at_ = std::chrono::steady_clock::now();
  return {};
}

tier::Result<void> KernelTiering::applyLocked(const tier::Topology& topology,
                                              const KernelTieringOptions& options) {
  vmstat_at_apply_ = readVmstat();
  if (usesNumaBalancing(options.machinery)) {
    auto mode = knobs_.read(Knob::NumaBalancing);
    if (!mode) return std::unexpected(mode.error());
    if (!*mode)
      return tier::fail(ENOENT,
                        "kernel lacks NUMA balancing (no /proc/sys/kernel/numa_balancing): "
                        "machinery \"numa_balancing\" or \"both\" cannot work");
    if (auto r = knobs_.setNumaBalancing(**mode | kNumaBalancingMemoryTiering,
                                         options.promote_rate_limit_mbps);
        !r)
      return r;
    if (options.hot_threshold_ms) {
      if (knobs_.present(Knob::HotThreshold)) {
        auto r = knobs_.set(Knob::HotThreshold, static_cast<int64_t>(*options.hot_threshold_ms));
        if (!r) return r;
      } else {
        note(
            "hot_threshold_ms not set: the kernel's NUMA-balancing debugfs files are absent "
            "(is debugfs mounted on /sys/kernel/debug?)");
      }
    }
    if (knobs_.present(Knob::DemotionEnabled)) {
      if (auto r = knobs_.set(Knob::DemotionEnabled, options.demotion_enabled ? 1 : 0); !r)
        return r;
    } else {
      note("kernel lacks demotion on reclaim (no /sys/kernel/mm/numa/demotion_enabled)");
    }
  }
  if (usesDamos(options.machinery)) {
    bool promote = options.machinery == Machinery::Damos;
    if (auto r = damos_.apply(topology, options, promote, /*demote=*/true); !r) return r;
  }
  return {};
}

std::vector<std::string> KernelTiering::restore() {
  std::lock_guard lock(mutex_);
  return restoreLocked();
}

std::vector<std::string> KernelTiering::restoreLocked() {
  std::vector<std::string> left;
  if (auto r = damos_.stop(); !r) left.push_back("DAMOS: " + r.error().message());
  for (const auto& outcome : knobs_.restore())
    if (!outcome.restored) left.push_back(outcome.note);
  for (const auto& text : left)
    note(text);
  options_.reset();
  return left;
}

KernelTieringReport KernelTiering::report() {
  std::lock_guard lock(mutex_);
  KernelTieringReport out;
  out.applied = options_.has_value();
  if (options_) {
    out.machinery = std::string(machineryName(options_->machinery));
    out.seconds_since_apply =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - applied_at_).count();
    if (damos_.running())
      if (auto r = damos_.refreshStats(); !r) note("DAMOS stats not read: " + r.error().message());
    out.vmstat_deltas = vmstatDeltas(vmstat_at_apply_, readVmstat());
  }
  out.knobs = knobs_.states();
  out.schemes = damos_.schemes();
  out.notes = notes_;
  for (const auto& text : damos_.notes())
    if (std::find(out.notes.begin(), out.notes.end(), text) == out.notes.end())
      out.notes.push_back(text);
  return out;
}

}  // namespace tierd::kernel_tiering
