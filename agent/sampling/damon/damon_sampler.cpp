#include "sampling/damon/damon_sampler.h"

#include <time.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <optional>
#include <utility>

#include "parse/parsers.h"

namespace tierd::sampling::damon {
namespace {

constexpr std::string_view kMemory = "devices/system/memory";
constexpr std::string_view kMatchAll = "18446744073709551615";  // ULONG_MAX: sz/max
constexpr std::string_view kUintMax = "4294967295";             // nr_accesses/max, age/max

std::string str(uint64_t value) {
  return std::to_string(value);
}

std::string path(std::string_view a, std::string_view b) {
  return tier::joinPath(a, b);
}

double threadCpuSeconds() {
  timespec ts{};
  if (::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts) != 0) return 0;
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

double secondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::vector<pid_t> withoutDuplicates(const std::vector<pid_t>& pids) {
  std::vector<pid_t> out;
  for (pid_t pid : pids)
    if (std::find(out.begin(), out.end(), pid) == out.end()) out.push_back(pid);
  return out;
}

}  // namespace

tier::Result<DamonSampler> DamonSampler::open(const std::string& sysfs_dir, DamonOptions options) {
  auto sys = tier::FsRoot::open(sysfs_dir);
  if (!sys) return std::unexpected(sys.error());
  auto writer = tier::FsWriter::open(sysfs_dir);
  if (!writer) return std::unexpected(writer.error());
  return DamonSampler(std::move(*sys), std::move(*writer), std::move(options));
}

DamonSampler::DamonSampler(tier::FsRoot sys, tier::FsWriter writer, DamonOptions options)
    : sys_(std::move(sys)), writer_(std::move(writer)), options_(std::move(options)) {
  options_.pids = withoutDuplicates(options_.pids);
  targets_ = options_.pids;
}

DamonSampler::DamonSampler(DamonSampler&& other) noexcept
    : sys_(std::move(other.sys_)),
      writer_(std::move(other.writer_)),
      options_(std::move(other.options_)),
      targets_(std::move(other.targets_)),
      ops_in_use_(std::move(other.ops_in_use_)),
      kdamond_(std::exchange(other.kdamond_, -1)),
      claim_(std::exchange(other.claim_, {})),
      running_(std::exchange(other.running_, false)),
      per_target_schemes_(other.per_target_schemes_),
      nr_schemes_(other.nr_schemes_),
      notes_(std::move(other.notes_)),
      stats_(other.stats_),
      damon_stats_(other.damon_stats_) {}

DamonSampler::~DamonSampler() {
  if (kdamond_ >= 0) (void)stop();
}

uint32_t DamonSampler::maxAccesses() const {
  if (options_.sample_us == 0) return 0;
  return static_cast<uint32_t>(options_.aggr_us / options_.sample_us);
}

std::string DamonSampler::kdamondDir() const {
  return damon::kdamondDir(kdamond_);
}
std::string DamonSampler::contextDir() const {
  return path(kdamondDir(), "contexts/0");
}

tier::Result<std::string> DamonSampler::read(const std::string& relpath) const {
  return sys_.readFile(relpath);
}

tier::Result<void> DamonSampler::write(const std::string& relpath, std::string_view value) const {
  return writer_.write(relpath, value);
}

void DamonSampler::note(std::string text) {
  if (std::find(notes_.begin(), notes_.end(), text) == notes_.end())
    notes_.push_back(std::move(text));
}

tier::Result<pid_t> DamonSampler::kdamondPid() const {
  return damon::kdamondPid(sys_, kdamond_);
}

tier::Result<void> DamonSampler::claim() {
  auto claimed = claimKdamonds(sys_, writer_, 1);
  if (!claimed) return std::unexpected(claimed.error());
  claim_ = std::move(*claimed);
  kdamond_ = claim_.kdamonds.front();
  return {};
}

// Gives back what claim() took.
void DamonSampler::release() {
  if (kdamond_ < 0) return;
  if (auto left = releaseKdamonds(sys_, writer_, claim_)) note(std::move(*left));
  kdamond_ = -1;
  claim_ = {};
}

tier::Result<void> DamonSampler::start() {
  if (running_) return {};
  if (options_.operations == Operations::kVaddr && targets_.empty())
    return tier::fail(EINVAL, "DAMON vaddr monitoring needs at least one target pid");
  // A kdamond we hold but which is off (it stopped by itself) is ours to reuse
  // only while it is still off.
  if (kdamond_ >= 0) {
    if (kdamondIsOn(sys_, kdamond_).value_or(true)) {
      kdamond_ = -1;
      claim_ = {};
    }
  }
  if (kdamond_ < 0)
    if (auto claimed = claim(); !claimed) return claimed;
  auto ready = configure();
  if (ready) ready = turnOn();
  if (!ready) {
    release();
    return ready;
  }
  running_ = true;
  return {};
}

tier::Result<void> DamonSampler::configure() {
  std::string contexts = path(kdamondDir(), "contexts");
  if (auto r = write(path(contexts, "nr_contexts"), "1"); !r) return r;
  std::string ctx = contextDir();

  bool want_vaddr = options_.operations == Operations::kVaddr;
  bool has_vaddr = true;
  std::string avail_path = path(ctx, "avail_operations");
  if (sys_.exists(avail_path)) {
    auto text = read(avail_path);
    if (!text) return std::unexpected(text.error());
    auto avail = parseAvailableOperations(*text);
    if (!avail) return std::unexpected(tier::wrap(avail.error(), path(sys_.dir(), avail_path)));
    has_vaddr = avail->vaddr;
    if (!avail->paddr && (!want_vaddr || !has_vaddr))
      return tier::fail(EOPNOTSUPP,
                        "kernel's DAMON offers neither vaddr nor paddr (avail_operations: " +
                            std::string(tier::trim(*text)) + ")");
    if (want_vaddr && !has_vaddr)
      note("kernel's DAMON lacks vaddr (avail_operations: " + std::string(tier::trim(*text)) +
           "): monitoring physical addresses (paddr) instead");
  } else {
    note("no " + avail_path + " (kernel before 6.2?): assuming vaddr and paddr");
  }
  ops_in_use_ = want_vaddr && has_vaddr ? "vaddr" : "paddr";
  if (auto r = write(path(ctx, "operations"), ops_in_use_); !r) return r;

  std::string attrs = path(ctx, "monitoring_attrs");
  if (auto r = write(path(attrs, "intervals/sample_us"), str(options_.sample_us)); !r) return r;
  if (auto r = write(path(attrs, "intervals/aggr_us"), str(options_.aggr_us)); !r) return r;
  if (auto r = write(path(attrs, "intervals/update_us"), str(options_.update_us)); !r) return r;
  if (auto r = write(path(attrs, "nr_regions/min"), str(options_.min_regions)); !r) return r;
  if (auto r = write(path(attrs, "nr_regions/max"), str(options_.max_regions)); !r) return r;
  if (auto r = writeTargets(); !r) return r;
  return writeSchemes();
}

tier::Result<std::vector<AddressRange>> DamonSampler::physicalRanges() const {
  if (!options_.paddr_ranges.empty()) return options_.paddr_ranges;
  auto what = [](tier::Error e) {
    return std::unexpected(tier::wrap(std::move(e), "find the physical memory to monitor"));
  };
  auto size_text = read(path(kMemory, "block_size_bytes"));
  if (!size_text) return what(size_text.error());
  auto block_size = parseBlockSize(*size_text);
  if (!block_size) return what(block_size.error());
  auto entries = sys_.listDir(kMemory);
  if (!entries) return what(entries.error());
  std::vector<uint64_t> online;
  for (const auto& name : *entries) {
    auto block = parseMemoryBlockName(name);
    if (!block) continue;
    auto state = read(path(path(kMemory, name), "state"));
    if (state && tier::trim(*state) == "online") online.push_back(*block);
  }
  auto ranges = memoryBlockRanges(std::move(online), *block_size);
  if (ranges.empty())
    return what(tier::Error{ENOENT, "no online memory block in " + std::string(kMemory)});
  return ranges;
}

tier::Result<void> DamonSampler::writeTargets() {
  std::string targets = path(contextDir(), "targets");
  if (ops_in_use_ == "vaddr") {
    if (auto r = write(path(targets, "nr_targets"), str(targets_.size())); !r) return r;
    for (size_t i = 0; i < targets_.size(); ++i) {
      std::string pid = std::to_string(targets_[i]);
      if (auto r = write(path(targets, str(i) + "/pid_target"), pid); !r) return r;
    }
    return {};
  }
  auto ranges = physicalRanges();
  if (!ranges) return std::unexpected(ranges.error());
  if (auto r = write(path(targets, "nr_targets"), "1"); !r) return r;
  std::string regions = path(targets, "0/regions");
  if (auto r = write(path(regions, "nr_regions"), str(ranges->size())); !r) return r;
  for (size_t i = 0; i < ranges->size(); ++i) {
    std::string dir = path(regions, str(i));
    if (auto r = write(path(dir, "start"), str((*ranges)[i].start)); !r) return r;
    if (auto r = write(path(dir, "end"), str((*ranges)[i].end)); !r) return r;
  }
  return {};
}

// One `stat` scheme per vaddr target, each with a "target" filter, when there
// are several targets and the kernel has the filter; else one scheme.
tier::Result<void> DamonSampler::writeSchemes() {
  std::string schemes = path(contextDir(), "schemes");
  per_target_schemes_ = ops_in_use_ == "vaddr" && targets_.size() > 1;
  nr_schemes_ = per_target_schemes_ ? targets_.size() : 1;
  if (auto r = write(path(schemes, "nr_schemes"), str(nr_schemes_)); !r) return r;
  if (!sys_.isDir(path(schemes, "0/tried_regions")))
    return tier::fail(EOPNOTSUPP, "kernel's DAMON lacks schemes/tried_regions (Linux 6.2+): no " +
                                      path(sys_.dir(), path(schemes, "0/tried_regions")));
  if (per_target_schemes_ && !sys_.isDir(path(schemes, "0/filters"))) {
    note(
        "kernel's DAMOS has no filters: regions of several targets are told apart by address "
        "order");
    per_target_schemes_ = false;
  }
  if (per_target_schemes_) {
    for (size_t i = 0; i < nr_schemes_; ++i) {
      auto r = writeScheme(i, static_cast<int>(i));
      if (r) continue;
      if (r.error().errnum != EINVAL || i > 0) return r;
      // The kernel knows filters but not the "target" type (before 6.5).
      note(
          "kernel's DAMOS lacks the target filter: regions of several targets are told apart by "
          "address order");
      per_target_schemes_ = false;
      break;
    }
    if (per_target_schemes_) return {};
  }
  if (nr_schemes_ != 1) {
    nr_schemes_ = 1;
    if (auto r = write(path(schemes, "nr_schemes"), "1"); !r) return r;
  }
  return writeScheme(0, -1);
}

tier::Result<void> DamonSampler::writeScheme(size_t index, int filter_target) {
  std::string dir = path(path(contextDir(), "schemes"), str(index));
  const std::pair<std::string_view, std::string_view> settings[] = {
      {"action", "stat"},
      {"access_pattern/sz/min", "0"},
      {"access_pattern/sz/max", kMatchAll},
      {"access_pattern/nr_accesses/min", "0"},
      {"access_pattern/nr_accesses/max", kUintMax},
      {"access_pattern/age/min", "0"},
      {"access_pattern/age/max", kUintMax},
  };
  for (const auto& [file, value] : settings)
    if (auto r = write(path(dir, file), value); !r) return r;
  if (filter_target < 0) return {};
  std::string filters = path(dir, "filters");
  if (auto r = write(path(filters, "nr_filters"), "1"); !r) return r;
  if (auto r = write(path(filters, "0/type"), "target"); !r) return r;
  if (auto r = write(path(filters, "0/damon_target_idx"), std::to_string(filter_target)); !r)
    return r;
  // "matching N": filter out what is not this target's.
  return write(path(filters, "0/matching"), "N");
}

tier::Result<void> DamonSampler::turnOn() {
  auto r = turnKdamondOn(writer_, kdamond_);
  if (!r && r.error().errnum == EINVAL && ops_in_use_ == "vaddr")
    return std::unexpected(tier::wrap(r.error(), "start DAMON (is every target pid alive?)"));
  return r;
}

tier::Result<void> DamonSampler::turnOff() {
  return turnKdamondOff(sys_, writer_, kdamond_);
}

tier::Error DamonSampler::kdamondStoppedOrError(tier::Error error) {
  auto state = read(path(kdamondDir(), "state"));
  if (state && !parseKdamondState(*state).value_or(true)) {
    running_ = false;
    return tier::Error{ESRCH, "DAMON kdamond " + std::to_string(kdamond_) +
                                  " stopped by itself (every target exited?)"};
  }
  return error;
}

tier::Result<void> DamonSampler::refresh(std::vector<RegionSample>& out) {
  out.clear();
  if (!running_) {
    if (options_.operations == Operations::kVaddr && targets_.empty()) return {};
    return tier::fail(ESRCH, "DAMON sampler is not running");
  }
  double cpu_start = threadCpuSeconds();
  auto wall_start = std::chrono::steady_clock::now();
  if (auto r = write(path(kdamondDir(), "state"), "update_schemes_tried_regions"); !r)
    return std::unexpected(kdamondStoppedOrError(r.error()));
  double update_seconds = secondsSince(wall_start);
  auto read_start = std::chrono::steady_clock::now();

  uint32_t max_accesses = maxAccesses();
  for (size_t s = 0; s < nr_schemes_; ++s) {
    std::string dir = path(path(contextDir(), "schemes"), str(s) + "/tried_regions");
    auto listing = sys_.listDir(dir);
    if (!listing) return std::unexpected(listing.error());
    pid_t pid = per_target_schemes_ ? targets_[s] : 0;
    size_t first = out.size();
    for (uint64_t index : triedRegionIndices(*listing)) {
      std::string region = path(dir, str(index));
      TriedRegionText text{.index = index};
      std::pair<std::string*, std::string_view> files[] = {{&text.start, "start"},
                                                           {&text.end, "end"},
                                                           {&text.nr_accesses, "nr_accesses"},
                                                           {&text.age, "age"}};
      bool vanished = false;
      for (auto& [field, name] : files) {
        auto content = read(path(region, name));
        if (!content) {
          // Another writer of update_schemes_tried_regions can remove the
          // directories under us.
          if (content.error().errnum != ENOENT) return std::unexpected(content.error());
          vanished = true;
          break;
        }
        *field = std::move(*content);
      }
      if (vanished) {
        ++stats_.lost;
        continue;
      }
      auto sample = parseTriedRegion(text, pid, max_accesses);
      if (!sample) {
        ++stats_.malformed;
        continue;
      }
      out.push_back(*sample);
    }
    std::span<RegionSample> mine(out.begin() + static_cast<std::ptrdiff_t>(first), out.end());
    if (ops_in_use_ == "vaddr" && !per_target_schemes_ && targets_.size() == 1) {
      for (auto& region : mine)
        region.pid = targets_[0];
    } else if (ops_in_use_ == "vaddr" && !per_target_schemes_ && !mine.empty()) {
      if (auto r = attributeByAddressOrder(mine, targets_); !r) {
        stats_.lost += mine.size();
        out.resize(first);
        note(r.error().context + " (regions dropped)");
      }
    }
  }
  double read_seconds = secondsSince(read_start);

  stats_.samples += out.size();
  double cpu = threadCpuSeconds() - cpu_start;
  stats_.cpu_seconds += cpu;
  damon_stats_.cpu_seconds += cpu;
  ++damon_stats_.refreshes;
  if (out.empty()) ++damon_stats_.empty_refreshes;
  damon_stats_.last_regions = out.size();
  damon_stats_.update_seconds += update_seconds;
  damon_stats_.read_seconds += read_seconds;
  damon_stats_.last_update_seconds = update_seconds;
  damon_stats_.last_read_seconds = read_seconds;
  return {};
}

tier::Result<void> DamonSampler::updateTargets(std::vector<pid_t> pids) {
  pids = withoutDuplicates(pids);
  options_.pids = pids;
  if (options_.operations == Operations::kPaddr || (running_ && ops_in_use_ == "paddr")) {
    targets_ = std::move(pids);
    return {};
  }
  if (pids.empty()) {
    targets_.clear();
    return stop();
  }
  if (!running_) {
    targets_ = std::move(pids);
    return start();
  }
  if (pids == targets_) return {};
  bool append_only =
      pids.size() > targets_.size() && std::equal(targets_.begin(), targets_.end(), pids.begin());
  std::vector<pid_t> previous = std::exchange(targets_, std::move(pids));
  std::optional<tier::Error> commit_error;
  if (append_only) {
    auto r = writeTargets();
    if (r) r = writeSchemes();
    if (r) r = write(path(kdamondDir(), "state"), "commit");
    if (r) return {};
    // The sysfs files no longer match what runs: set everything up afresh.
    commit_error = kdamondStoppedOrError(r.error());
  }
  // Restart with the new list: indices of the remaining targets shift, and a
  // commit would leave each index with its previous target's regions.
  if (running_) {
    if (auto r = turnOff(); !r) {
      targets_ = std::move(previous);
      return r;
    }
    running_ = false;
  }
  auto started = start();
  if (!started && commit_error)
    return std::unexpected(tier::wrap(
        started.error(), "commit failed (" + commit_error->message() + "), and so did a restart"));
  return started;
}

tier::Result<void> DamonSampler::stop() {
  if (kdamond_ < 0) return {};
  if (running_) {
    if (auto r = turnOff(); !r) return r;
    running_ = false;
  }
  release();
  return {};
}

}  // namespace tierd::sampling::damon
