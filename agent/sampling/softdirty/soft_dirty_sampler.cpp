#include "sampling/softdirty/soft_dirty_sampler.h"

#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cinttypes>
#include <climits>
#include <cmath>
#include <cstdio>
#include <optional>
#include <span>
#include <utility>

#include "os/pages.h"

namespace tierd::sampling::softdirty {
namespace {

constexpr uint64_t kPresent = 1ULL << 63;
constexpr uint64_t kSoftDirty = 1ULL << 55;
constexpr uint64_t kFrameMask = (1ULL << 55) - 1;
constexpr std::string_view kClearSoftDirty = "4";
constexpr std::string_view kSpecialMappings[] = {"[vsyscall]", "[vvar]", "[vdso]", "[vvar_vclock]"};

int64_t readClock(clockid_t clock) {
  timespec ts{};
  if (::clock_gettime(clock, &ts) != 0) return 0;
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

std::string procPath(pid_t pid, std::string_view file) {
  return std::to_string(pid) + "/" + std::string(file);
}

bool isGone(int errnum) {
  return errnum == ENOENT || errnum == ESRCH;
}
bool isRefusal(int errnum) {
  return errnum == EPERM || errnum == EACCES;
}

tier::Error gone(pid_t pid) {
  return tier::Error{ESRCH, "soft-dirty target pid " + std::to_string(pid) + " exited"};
}

// A read error about one pid, worded for the log.
tier::Error aboutPid(pid_t pid, const tier::Error& error) {
  if (isGone(error.errnum)) return gone(pid);
  return tier::wrap(error, "soft-dirty target pid " + std::to_string(pid));
}

std::string hexAddress(uint64_t value) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "0x%" PRIx64, value);
  return buf;
}

tier::Error tooBig(pid_t pid, const tier::MapsEntry& mapping, uint64_t limit) {
  return tier::Error{EFBIG, "soft-dirty target pid " + std::to_string(pid) + ": mapping " +
                                hexAddress(mapping.start) + "-" + hexAddress(mapping.end) + " (" +
                                std::to_string((mapping.end - mapping.start) >> 20) +
                                " MiB of address space) is larger than " +
                                std::to_string(limit >> 20) + " MiB: not read"};
}

double toSeconds(std::chrono::nanoseconds ns) {
  return std::chrono::duration<double>(ns).count();
}

}  // namespace

Clocks Clocks::system() {
  return Clocks{[] { return readClock(CLOCK_MONOTONIC); },
                [] { return readClock(CLOCK_THREAD_CPUTIME_ID); }};
}

bool isSampledMapping(const tier::MapsEntry& entry) {
  if (entry.perms.size() != 4 || entry.perms[1] != 'w' || entry.perms[3] != 'p') return false;
  return std::find(std::begin(kSpecialMappings), std::end(kSpecialMappings), entry.path) ==
         std::end(kSpecialMappings);
}

tier::Error explainClearRefsError(pid_t pid, const tier::Error& error) {
  if (error.errnum == EINVAL)
    return tier::Error{EOPNOTSUPP, "kernel lacks soft-dirty tracking: " + error.message()};
  return aboutPid(pid, error);
}

tier::Result<void> probeSoftDirty(const tier::FsRoot& proc, const tier::FsWriter& writer) {
  const size_t page = tier::pageSize();
  void* mapped = ::mmap(nullptr, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) return tier::fail(errno, "soft-dirty probe: mmap one page");
  auto* byte = static_cast<volatile char*>(mapped);
  *byte = 1;
  pid_t self = ::getpid();
  auto entry = [&]() -> tier::Result<uint64_t> {
    uint64_t value = 0;
    std::span<char> bytes(reinterpret_cast<char*>(&value), sizeof(value));
    auto got = proc.readAt(procPath(self, "pagemap"),
                           reinterpret_cast<uint64_t>(mapped) / page * sizeof(uint64_t), bytes);
    if (!got) return std::unexpected(got.error());
    if (*got != sizeof(value)) return tier::fail(EIO, "soft-dirty probe: short pagemap read");
    return value;
  };
  auto verdict = [&]() -> tier::Result<void> {
    if (auto cleared = writer.write(procPath(self, "clear_refs"), kClearSoftDirty); !cleared)
      return std::unexpected(explainClearRefsError(self, cleared.error()));
    auto after_clear = entry();
    if (!after_clear) return std::unexpected(after_clear.error());
    *byte = 2;
    auto after_write = entry();
    if (!after_write) return std::unexpected(after_write.error());
    if (!(*after_write & kPresent))
      return tier::fail(EIO, "soft-dirty probe: the page written is not present in pagemap");
    if (*after_clear & kSoftDirty)
      return tier::fail(EOPNOTSUPP,
                        "kernel lacks soft-dirty tracking: clear_refs \"4\" left pagemap bit 55 "
                        "set");
    if (!(*after_write & kSoftDirty))
      return tier::fail(EOPNOTSUPP,
                        "kernel lacks soft-dirty tracking (CONFIG_MEM_SOFT_DIRTY): pagemap bit 55 "
                        "stayed clear after a write that followed clear_refs \"4\"");
    return {};
  };
  auto result = verdict();
  ::munmap(mapped, page);
  return result;
}

tier::Result<SoftDirtySampler> SoftDirtySampler::open(const std::string& proc_dir,
                                                      SoftDirtyOptions options, Clocks clocks) {
  auto proc = tier::FsRoot::open(proc_dir);
  if (!proc) return std::unexpected(proc.error());
  auto writer = tier::FsWriter::open(proc_dir);
  if (!writer) return std::unexpected(writer.error());
  return SoftDirtySampler(std::move(*proc), std::move(*writer), options, std::move(clocks));
}

SoftDirtySampler::SoftDirtySampler(tier::FsRoot proc, tier::FsWriter writer,
                                   SoftDirtyOptions options, Clocks clocks)
    : proc_(std::move(proc)),
      writer_(std::move(writer)),
      options_(options),
      clocks_(std::move(clocks)),
      window_(std::clamp(options.window, options.min_window, options.max_window)) {
  options_.pagemap_chunk_entries = std::max<size_t>(1, options_.pagemap_chunk_entries);
  options_.max_open_fraction = std::clamp(options_.max_open_fraction, 0.01, 1.0);
  setCpuBudget(options_.cpu_budget);
  sd_stats_.window_seconds = toSeconds(window_);
}

void SoftDirtySampler::setCpuBudget(double fraction) {
  // A zero budget would mean never opening a window again; keep a floor.
  options_.cpu_budget = std::isfinite(fraction) ? std::clamp(fraction, 0.001, 1.0) : 0.03;
}

double SoftDirtySampler::cpuSeconds() const {
  return static_cast<double>(clocks_.thread_cpu_ns()) * 1e-9;
}

std::vector<pid_t> SoftDirtySampler::targets() const {
  std::vector<pid_t> pids;
  for (const auto& [pid, target] : targets_)
    pids.push_back(pid);
  return pids;
}

std::vector<tier::Error> SoftDirtySampler::takeProblems() {
  return std::exchange(problems_, {});
}

int64_t SoftDirtySampler::nextPollAt() const {
  switch (state_) {
    case State::kOpen:
      return opened_at_ + window_.count();
    case State::kResting:
      return next_open_at_;
    case State::kStopped:
      break;
  }
  return INT64_MAX;
}

void SoftDirtySampler::drop(pid_t pid, const tier::Error& why) {
  targets_.erase(pid);
  if (isGone(why.errnum)) {
    ++sd_stats_.vanished;
  } else if (isRefusal(why.errnum)) {
    ++sd_stats_.refused;
  }
  problems_.push_back(why);
}

tier::Result<void> SoftDirtySampler::setTargets(const std::vector<pid_t>& pids) {
  for (pid_t pid : pids)
    if (pid <= 0)
      return tier::fail(EINVAL,
                        "soft-dirty target pid " + std::to_string(pid) + " is not a process id");
  std::map<pid_t, Target> next;
  std::string refused;
  int refusal = 0;
  for (pid_t pid : pids) {
    if (next.contains(pid)) continue;
    if (auto kept = targets_.find(pid); kept != targets_.end()) {
      next.emplace(pid, kept->second);
      continue;
    }
    // Opening pagemap asks the same ptrace permission the reads will need.
    auto opened = proc_.readAt(procPath(pid, "pagemap"), 0, {});
    if (opened) {
      next.emplace(pid, Target{});
    } else if (isGone(opened.error().errnum)) {
      ++sd_stats_.vanished;
    } else {
      if (isRefusal(opened.error().errnum)) ++sd_stats_.refused;
      if (refusal == 0) refusal = opened.error().errnum;
      refused += (refused.empty() ? "" : ", ") + std::to_string(pid) + " (" +
                 opened.error().message() + ")";
    }
  }
  targets_ = std::move(next);
  if (!refused.empty())
    return tier::fail(refusal,
                      "soft-dirty sampling may not read the page tables of pid " + refused);
  return {};
}

tier::Result<void> SoftDirtySampler::start() {
  if (state_ != State::kStopped) return {};
  if (options_.probe_kernel && proc_.isLive("/proc"))
    if (auto probed = probeSoftDirty(proc_, writer_); !probed) return probed;
  state_ = State::kResting;
  next_open_at_ = clocks_.monotonic_ns();
  return {};
}

tier::Result<void> SoftDirtySampler::stop() {
  state_ = State::kStopped;
  for (auto& [pid, target] : targets_)
    target.in_window = false;
  return {};
}

tier::Result<void> SoftDirtySampler::poll(SampleBatch& out) {
  if (state_ == State::kStopped) return tier::fail(EINVAL, "soft-dirty sampler is not started");
  int64_t now = clocks_.monotonic_ns();
  if (state_ == State::kOpen && now - opened_at_ >= window_.count()) closeWindow(now, out);
  if (state_ == State::kResting && now >= next_open_at_) return openWindow();
  return {};
}

tier::Result<void> SoftDirtySampler::openWindow() {
  if (targets_.empty()) return {};
  double cpu_start = cpuSeconds();
  size_t cleared = 0;
  std::vector<std::pair<pid_t, tier::Error>> dropped;
  std::optional<tier::Error> unsupported;
  for (auto& [pid, target] : targets_) {
    auto written = writer_.write(procPath(pid, "clear_refs"), kClearSoftDirty);
    if (written) {
      target.in_window = true;
      ++cleared;
      continue;
    }
    tier::Error why = explainClearRefsError(pid, written.error());
    if (why.errnum == EOPNOTSUPP) {
      unsupported = std::move(why);
      break;
    }
    if (isGone(why.errnum) || isRefusal(why.errnum)) {
      dropped.emplace_back(pid, std::move(why));
    } else {
      ++stats_.lost;
      problems_.push_back(std::move(why));
    }
  }
  for (const auto& [pid, why] : dropped)
    drop(pid, why);
  open_cpu_seconds_ = cpuSeconds() - cpu_start;
  stats_.cpu_seconds += open_cpu_seconds_;
  if (unsupported) {
    for (auto& [pid, target] : targets_)
      target.in_window = false;
    return std::unexpected(*unsupported);
  }
  if (cleared == 0) {
    // Nothing to wait for; try again after a window rather than on every poll.
    next_open_at_ = clocks_.monotonic_ns() + window_.count();
    return {};
  }
  opened_at_ = clocks_.monotonic_ns();
  state_ = State::kOpen;
  return {};
}

void SoftDirtySampler::closeWindow(int64_t now, SampleBatch& out) {
  double cpu_start = cpuSeconds();
  WindowCounts counts;
  std::vector<std::pair<pid_t, tier::Error>> dropped;
  for (auto& [pid, target] : targets_) {
    if (!target.in_window) continue;
    target.in_window = false;
    tier::Error why;
    switch (readTarget(pid, target, now, out, counts, why)) {
      case ReadOutcome::kRead:
        ++sd_stats_.target_windows;
        break;
      case ReadOutcome::kDropped:
        dropped.emplace_back(pid, std::move(why));
        break;
      case ReadOutcome::kLost:
        ++stats_.lost;
        problems_.push_back(std::move(why));
        break;
    }
  }
  for (const auto& [pid, why] : dropped)
    drop(pid, why);
  double close_cpu = cpuSeconds() - cpu_start;
  stats_.cpu_seconds += close_cpu;
  ++sd_stats_.windows;
  sd_stats_.last_dirty_pages = counts.dirty;
  sd_stats_.last_present_pages = counts.present;
  auto was_open = std::chrono::nanoseconds(now - opened_at_);
  sd_stats_.open_seconds += toSeconds(was_open);
  if (was_open > window_ * 3 / 2) ++sd_stats_.late_windows;
  adaptWindow(counts);
  scheduleRest(now, was_open, open_cpu_seconds_ + close_cpu);
  state_ = State::kResting;
}

SoftDirtySampler::ReadOutcome SoftDirtySampler::readTarget(pid_t pid, Target& target, int64_t now,
                                                           SampleBatch& out, WindowCounts& counts,
                                                           tier::Error& why) {
  auto classify = [&](tier::Error error) {
    why = aboutPid(pid, error);
    return isGone(error.errnum) || isRefusal(error.errnum) ? ReadOutcome::kDropped
                                                           : ReadOutcome::kLost;
  };
  auto text = proc_.readFile(procPath(pid, "maps"));
  if (!text) return classify(text.error());
  // An exited process that was not reaped yet (a zombie) has no mappings.
  if (text->empty()) return classify(tier::Error{ESRCH, ""});
  auto maps = tier::parseMaps(*text);
  if (!maps) {
    ++stats_.malformed;
    return classify(tier::wrap(maps.error(), "/proc/" + std::to_string(pid) + "/maps"));
  }
  for (const auto& mapping : *maps) {
    if (!isSampledMapping(mapping)) continue;
    if (mapping.end - mapping.start > options_.max_mapping_bytes) {
      ++sd_stats_.skipped_mappings;
      if (target.told_too_big.insert(mapping.start).second)
        problems_.push_back(tooBig(pid, mapping, options_.max_mapping_bytes));
      continue;
    }
    if (auto read = readMapping(pid, mapping, now, out, counts); !read)
      return classify(read.error());
  }
  return ReadOutcome::kRead;
}

tier::Result<void> SoftDirtySampler::readMapping(pid_t pid, const tier::MapsEntry& mapping,
                                                 int64_t now, SampleBatch& out,
                                                 WindowCounts& counts) {
  const uint64_t page = tier::pageSize();
  const std::string path = procPath(pid, "pagemap");
  entries_.resize(options_.pagemap_chunk_entries);
  uint64_t present = 0, dirty = 0;
  for (uint64_t address = mapping.start; address < mapping.end;) {
    size_t count = std::min<uint64_t>(entries_.size(), (mapping.end - address) / page);
    if (count == 0) break;
    std::span<char> bytes(reinterpret_cast<char*>(entries_.data()), count * sizeof(uint64_t));
    auto got = proc_.readAt(path, address / page * sizeof(uint64_t), bytes);
    if (!got) return std::unexpected(got.error());
    size_t read_entries = *got / sizeof(uint64_t);
    for (size_t i = 0; i < read_entries; ++i) {
      uint64_t entry = entries_[i];
      if (!(entry & kPresent)) continue;
      ++present;
      if (!(entry & kSoftDirty)) continue;
      ++dirty;
      uint64_t frame = entry & kFrameMask;  // zero unless this process has CAP_SYS_ADMIN
      out.accesses.push_back(AccessSample{.pid = pid,
                                          .address = address + i * page,
                                          .physical = frame * page,
                                          .weight = 1,
                                          .time_ns = static_cast<uint64_t>(now),
                                          .write = true});
    }
    if (read_entries < count) break;  // the address space shrank meanwhile
    address += count * page;
  }
  stats_.samples += dirty;
  counts.present += present;
  counts.dirty += dirty;
  if (present >= options_.saturation_min_pages) {
    double share = static_cast<double>(dirty) / static_cast<double>(present);
    counts.any_voter = true;
    if (share > options_.saturated_fraction) counts.any_saturated = true;
    if (share >= options_.sparse_fraction) counts.all_sparse = false;
  }
  return {};
}

void SoftDirtySampler::adaptWindow(const WindowCounts& counts) {
  if (!counts.any_voter) return;
  if (counts.any_saturated) {
    // Saturated bits say nothing about which pages are hotter: look shorter.
    window_ = std::max(options_.min_window, window_ / 2);
    ++sd_stats_.saturated_windows;
  } else if (counts.all_sparse) {
    window_ = std::min(options_.max_window, window_ * 3 / 2);
    ++sd_stats_.sparse_windows;
  }
  sd_stats_.window_seconds = toSeconds(window_);
}

// The cycle from this window's opening to the next one's keeps both limits:
// the window open at most max_open_fraction of it, the cycle's CPU within the
// budget.
void SoftDirtySampler::scheduleRest(int64_t now, std::chrono::nanoseconds was_open,
                                    double cycle_cpu_seconds) {
  double open = toSeconds(was_open);
  double fraction = options_.max_open_fraction;
  double rest_for_writes = open * (1 - fraction) / fraction;
  double rest_for_cpu = cycle_cpu_seconds / options_.cpu_budget - open;
  double rest = std::max({0.0, rest_for_writes, rest_for_cpu});
  next_open_at_ = now + std::llround(rest * 1e9);
  sd_stats_.last_rest_seconds = rest;
  sd_stats_.last_cycle_cpu_seconds = cycle_cpu_seconds;
}

}  // namespace tierd::sampling::softdirty
