#include "kernel_tiering/knobs.h"

#include <algorithm>
#include <cerrno>
#include <utility>

#include "parse/parsers.h"

namespace tierd::kernel_tiering {
namespace {

constexpr KnobInfo kKnobs[] = {
    {"numa_balancing", KnobRoot::Proc, "sys/kernel/numa_balancing", false},
    {"promote_rate_limit_mbps", KnobRoot::Proc, "sys/kernel/numa_balancing_promote_rate_limit_MBps",
     false},
    {"demotion_enabled", KnobRoot::Sys, "kernel/mm/numa/demotion_enabled", true},
    {"hot_threshold_ms", KnobRoot::Sys, "kernel/debug/sched/numa_balancing/hot_threshold_ms",
     false},
    {"scan_period_min_ms", KnobRoot::Sys, "kernel/debug/sched/numa_balancing/scan_period_min_ms",
     false},
    {"scan_period_max_ms", KnobRoot::Sys, "kernel/debug/sched/numa_balancing/scan_period_max_ms",
     false},
    {"scan_size_mb", KnobRoot::Sys, "kernel/debug/sched/numa_balancing/scan_size_mb", false},
    {"scan_delay_ms", KnobRoot::Sys, "kernel/debug/sched/numa_balancing/scan_delay_ms", false},
};

std::string where(const tier::FsRoot& root, const KnobInfo& info) {
  return tier::joinPath(root.dir(), info.path);
}

}  // namespace

const KnobInfo& knobInfo(Knob knob) {
  return kKnobs[static_cast<size_t>(knob)];
}

std::optional<Knob> knobByName(std::string_view name) {
  for (Knob knob : kAllKnobs)
    if (knobInfo(knob).name == name) return knob;
  return std::nullopt;
}

tier::Result<int64_t> parseKnob(Knob knob, std::string_view text) {
  const KnobInfo& info = knobInfo(knob);
  if (info.boolean) {
    auto flag = tier::parseBool(text);
    if (!flag) return std::unexpected(tier::wrap(flag.error(), std::string(info.name)));
    return *flag ? 1 : 0;
  }
  auto value = tier::parseI64(text);
  if (!value) return std::unexpected(tier::wrap(value.error(), std::string(info.name)));
  return *value;
}

std::string formatKnob(Knob knob, int64_t value) {
  if (knobInfo(knob).boolean) return value != 0 ? "true" : "false";
  return std::to_string(value);
}

tier::Result<KernelKnobs> KernelKnobs::open(const std::string& sysfs_dir,
                                            const std::string& procfs_dir) {
  auto sys = tier::FsRoot::open(sysfs_dir);
  if (!sys) return std::unexpected(sys.error());
  auto sys_writer = tier::FsWriter::open(sysfs_dir);
  if (!sys_writer) return std::unexpected(sys_writer.error());
  auto proc = tier::FsRoot::open(procfs_dir);
  if (!proc) return std::unexpected(proc.error());
  auto proc_writer = tier::FsWriter::open(procfs_dir);
  if (!proc_writer) return std::unexpected(proc_writer.error());
  return KernelKnobs(std::move(*sys), std::move(*sys_writer), std::move(*proc),
                     std::move(*proc_writer));
}

KernelKnobs::KernelKnobs(tier::FsRoot sys, tier::FsWriter sys_writer, tier::FsRoot proc,
                         tier::FsWriter proc_writer)
    : sys_(std::move(sys)),
      sys_writer_(std::move(sys_writer)),
      proc_(std::move(proc)),
      proc_writer_(std::move(proc_writer)) {}

const tier::FsRoot& KernelKnobs::rootOf(Knob knob) const {
  return knobInfo(knob).root == KnobRoot::Proc ? proc_ : sys_;
}
const tier::FsWriter& KernelKnobs::writerOf(Knob knob) const {
  return knobInfo(knob).root == KnobRoot::Proc ? proc_writer_ : sys_writer_;
}

bool KernelKnobs::present(Knob knob) const {
  return rootOf(knob).exists(knobInfo(knob).path);
}

tier::Result<std::optional<int64_t>> KernelKnobs::read(Knob knob) const {
  const KnobInfo& info = knobInfo(knob);
  const tier::FsRoot& root = rootOf(knob);
  auto text = root.readFile(info.path);
  if (!text) {
    if (text.error().errnum == ENOENT) return std::nullopt;
    return std::unexpected(text.error());
  }
  auto value = parseKnob(knob, *text);
  if (!value) return std::unexpected(tier::wrap(value.error(), where(root, info)));
  return *value;
}

std::vector<KnobState> KernelKnobs::states() const {
  std::vector<KnobState> out;
  for (Knob knob : kAllKnobs) {
    KnobState state{.knob = knob};
    if (auto value = read(knob)) state.value = *value;
    if (const Change* change = findChange(knob)) {
      state.original = change->original;
      state.written = change->written;
    }
    out.push_back(state);
  }
  return out;
}

KernelKnobs::Change* KernelKnobs::findChange(Knob knob) {
  auto it = std::find_if(changes_.begin(), changes_.end(),
                         [&](const Change& change) { return change.knob == knob; });
  return it == changes_.end() ? nullptr : &*it;
}
const KernelKnobs::Change* KernelKnobs::findChange(Knob knob) const {
  return const_cast<KernelKnobs*>(this)->findChange(knob);
}

tier::Result<void> KernelKnobs::write(Knob knob, int64_t value) const {
  return writerOf(knob).write(knobInfo(knob).path, formatKnob(knob, value));
}

tier::Result<void> KernelKnobs::set(Knob knob, int64_t value) {
  const KnobInfo& info = knobInfo(knob);
  auto now = read(knob);
  if (!now) return std::unexpected(now.error());
  if (!*now)
    return tier::fail(ENOENT, "kernel lacks " + std::string(info.name) + " (no " +
                                  where(rootOf(knob), info) + ")");
  Change* change = findChange(knob);
  if (**now == value) {
    if (change) change->written = value;
    return {};
  }
  if (auto ok = write(knob, value); !ok) return ok;
  if (change)
    change->written = value;
  else
    changes_.push_back({knob, **now, value});
  return {};
}

tier::Result<void> KernelKnobs::setNumaBalancing(int64_t mode,
                                                 std::optional<uint64_t> promote_rate_limit_mbps) {
  // The rate limit first: with the tiering bit already set the kernel would
  // promote at the old limit in between.
  if (promote_rate_limit_mbps)
    if (auto ok = set(Knob::PromoteRateLimit, static_cast<int64_t>(*promote_rate_limit_mbps)); !ok)
      return ok;
  return set(Knob::NumaBalancing, mode);
}

std::vector<RestoreOutcome> KernelKnobs::restore() {
  std::vector<RestoreOutcome> out;
  for (auto it = changes_.rbegin(); it != changes_.rend(); ++it) {
    RestoreOutcome outcome{.knob = it->knob};
    const KnobInfo& info = knobInfo(it->knob);
    auto now = read(it->knob);
    if (!now) {
      outcome.note =
          "cannot read " + std::string(info.name) + ", left as is: " + now.error().message();
    } else if (!*now) {
      outcome.note = std::string(info.name) + " has gone (" + where(rootOf(it->knob), info) + ")";
    } else if (**now != it->written) {
      outcome.note = std::string(info.name) + " is " + formatKnob(it->knob, **now) + ", not the " +
                     formatKnob(it->knob, it->written) +
                     " tierd wrote: someone else changed it since, so it stays (tierd would have "
                     "restored " +
                     formatKnob(it->knob, it->original) + ")";
    } else if (auto ok = write(it->knob, it->original); !ok) {
      outcome.note = "cannot restore " + std::string(info.name) + ": " + ok.error().message();
    } else {
      outcome.restored = true;
    }
    out.push_back(std::move(outcome));
  }
  changes_.clear();
  return out;
}

std::vector<Knob> KernelKnobs::changed() const {
  std::vector<Knob> out;
  for (const auto& change : changes_)
    out.push_back(change.knob);
  return out;
}

tier::Result<int64_t> ScanPacing::cap(KernelKnobs& knobs, int64_t ms) {
  if (!own_) {
    Own own;
    for (auto [knob, value] :
         {std::pair{Knob::ScanPeriodMax, &own.max}, std::pair{Knob::ScanPeriodMin, &own.min}}) {
      auto now = knobs.read(knob);
      if (!now) return std::unexpected(now.error());
      if (!*now)
        return tier::fail(ENOENT,
                          "no " + std::string(knobInfo(knob).name) + " (debugfs not mounted?)");
      *value = **now;
    }
    auto delay = knobs.read(Knob::ScanDelay);
    own.delay = delay && *delay ? **delay : 0;
    own_ = own;
  }
  const int64_t cap = std::min(ms, own_->max);
  const int64_t least = std::clamp(cap / 2, own_->min, cap);
  // Lowering: the minimum first; raising: the maximum first, so that
  // min <= max holds between the two writes.
  const auto min_now = knobs.read(Knob::ScanPeriodMin);
  const bool lowering = min_now && *min_now && least < **min_now;
  const auto setMin = [&] { return knobs.set(Knob::ScanPeriodMin, least); };
  const auto setMax = [&] { return knobs.set(Knob::ScanPeriodMax, cap); };
  if (auto ok = lowering ? setMin() : setMax(); !ok) return std::unexpected(ok.error());
  if (auto ok = lowering ? setMax() : setMin(); !ok) return std::unexpected(ok.error());
  if (own_->delay > 0)
    if (auto ok = knobs.set(Knob::ScanDelay, std::max(own_->delay, cap / 4)); !ok)
      return std::unexpected(ok.error());
  return cap;
}

}  // namespace tierd::kernel_tiering
