#include "engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <thread>

#include "discovery/sysfs_reader.h"
#include "os/pages.h"
#include "parse/parsers.h"

namespace tierd::migrate {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint64_t kPagemapPresent = 1ULL << 63;
constexpr uint64_t kPagemapFrameMask = (1ULL << 55) - 1;
// Mappings whose pages move_pages cannot or must not move.
constexpr std::string_view kSpecialMappings[] = {"[vsyscall]", "[vvar]", "[vdso]", "[vvar_vclock]"};

bool isSpecial(const tier::MapsEntry& entry) {
  return std::find(std::begin(kSpecialMappings), std::end(kSpecialMappings), entry.path) !=
             std::end(kSpecialMappings) ||
         entry.perms.starts_with("---");  // guard pages: nothing to move
}

std::vector<void*> asPointers(std::span<const uint64_t> pages) {
  std::vector<void*> pointers(pages.size());
  for (size_t i = 0; i < pages.size(); ++i)
    pointers[i] = reinterpret_cast<void*>(pages[i]);
  return pointers;
}

// A batch goes through the bucket whole: a burst smaller than a batch would
// make every batch wait longer than its bytes are worth, and the mover would
// fall below the rate.
double effectiveBurst(const EngineOptions& options) {
  return std::max(options.burst_bytes, static_cast<double>(options.batch_pages * tier::pageSize()));
}

// A batch never ends inside a 2 MiB chunk: move_pages moves a transparent
// huge page whole with its first address, so a THP split across two batches
// would move 2 MiB while the first batch paid the rate limit for less.
constexpr unsigned kHugeShift = 21;  // 2 MiB

size_t batchEnd(const std::vector<uint64_t>& pages, size_t first, size_t batch_pages) {
  size_t end = std::min(pages.size(), first + batch_pages);
  while (end < pages.size() && end > first &&
         pages[end] >> kHugeShift == pages[end - 1] >> kHugeShift)
    ++end;
  return end;
}

}  // namespace

std::string errnoName(int errnum) {
  const char* name = strerrorname_np(errnum);
  return name ? name : fmt::format("errno{}", errnum);
}

tier::Result<void> KernelPageOps::query(pid_t pid, std::span<void* const> pages,
                                        std::span<int> status) {
  return tier::queryPageNodes(pid, pages, status);
}

tier::Result<void> KernelPageOps::move(pid_t pid, std::span<void* const> pages,
                                       std::span<const int> nodes, std::span<int> status) {
  return tier::movePages(pid, pages, nodes, status);
}

MigrationEngine::MigrationEngine(const tier::FsRoot& proc, const tier::FsRoot& sys, PageOps& ops,
                                 EngineOptions options)
    : proc_(proc),
      sys_(sys),
      ops_(ops),
      options_(options),
      bucket_(options.rate_bytes_per_second, effectiveBurst(options), Clock::now()),
      pingpong_(options.pingpong_window, options.pingpong_max_entries) {}

void MigrationEngine::setOptions(const EngineOptions& options) {
  std::lock_guard lock(options_mutex_);
  options_ = options;
  bucket_.setRate(options.rate_bytes_per_second, effectiveBurst(options), Clock::now());
}

EngineStats MigrationEngine::stats() const {
  std::lock_guard lock(stats_mutex_);
  return stats_;
}

// The mappings of the process clipped to the wanted ranges, page-aligned.
tier::Result<std::vector<Range>> MigrationEngine::mappedRanges(
    pid_t pid, const std::vector<Range>& wanted) const {
  auto text = proc_.readFile(fmt::format("{}/maps", pid));
  if (!text) {
    if (text.error().errnum == ENOENT) return tier::fail(ESRCH, fmt::format("process {}", pid));
    return std::unexpected(text.error());
  }
  auto maps = tier::parseMaps(*text);
  if (!maps) return std::unexpected(tier::wrap(maps.error(), fmt::format("/proc/{}/maps", pid)));
  uint64_t page = tier::pageSize();
  std::vector<Range> ranges;
  for (const auto& entry : *maps) {
    if (isSpecial(entry)) continue;
    if (wanted.empty()) {
      ranges.push_back({entry.start, entry.end});
      continue;
    }
    for (const auto& range : wanted) {
      uint64_t start = std::max(entry.start, range.start / page * page);
      uint64_t end = std::min(entry.end, (range.end + page - 1) / page * page);
      if (start < end) ranges.push_back({start, end});
    }
  }
  return ranges;
}

// Pages that are in memory, from the pagemap's present bit: unpopulated and
// swapped-out pages never reach move_pages. Where the pagemap shows frame
// numbers (CAP_SYS_ADMIN), /proc/kpageflags tells which 2 MiB-aligned pages
// head a transparent huge page, so a THP is counted as one 2 MiB unit.
// Ranges (sorted) that lie close together are read as one span: a policy
// asks for thousands of scattered single pages, and one pread of 4096
// entries costs less than a dozen of one entry.
tier::Result<void> MigrationEngine::presentPages(pid_t pid, const std::vector<Range>& ranges,
                                                 PageSet& out) const {
  const uint64_t page = tier::pageSize();
  constexpr size_t kEntriesPerRead = 4096;
  constexpr uint64_t kHugeSize = 2ULL << 20;
  const uint64_t max_gap = 64 * page;
  std::vector<uint64_t> entries(kEntriesPerRead);
  const std::string path = fmt::format("{}/pagemap", pid);
  size_t next = 0;  // first range not yet read
  while (next < ranges.size()) {
    // One span: ranges whose gaps are at most max_gap.
    size_t last = next;
    while (last + 1 < ranges.size() && ranges[last + 1].start <= ranges[last].end + max_gap &&
           ranges[last + 1].end - ranges[next].start <= kEntriesPerRead * page)
      ++last;
    const uint64_t span_start = ranges[next].start, span_end = ranges[last].end;
    const size_t count = (span_end - span_start) / page;
    std::span<char> bytes(reinterpret_cast<char*>(entries.data()), count * sizeof(uint64_t));
    auto got = proc_.readAt(path, span_start / page * sizeof(uint64_t), bytes);
    if (!got) {
      if (got.error().errnum == ENOENT) return tier::fail(ESRCH, fmt::format("process {}", pid));
      return std::unexpected(got.error());
    }
    const size_t read_entries = *got / sizeof(uint64_t);
    for (size_t r = next; r <= last; ++r) {
      for (uint64_t here = ranges[r].start; here < ranges[r].end; here += page) {
        const size_t i = (here - span_start) / page;
        if (i >= read_entries || !(entries[i] & kPagemapPresent)) continue;
        out.pages.push_back(here);
        const uint64_t frame = entries[i] & kPagemapFrameMask;
        if (frame != 0) out.frames_visible = true;
        if (frame != 0 && here % kHugeSize == 0 && isThpHead(frame)) out.thp_heads.insert(here);
      }
    }
    next = last + 1;
  }
  return {};
}

// Splits ranges into pieces of at most `max_pages` pages, so that every
// pagemap read fits one buffer.
std::vector<Range> splitRanges(const std::vector<Range>& ranges, uint64_t page, size_t max_pages) {
  std::vector<Range> out;
  for (const Range& r : ranges)
    for (uint64_t start = r.start; start < r.end; start += max_pages * page)
      out.push_back({start, std::min(r.end, start + max_pages * page)});
  return out;
}

bool MigrationEngine::isThpHead(uint64_t frame) const {
  constexpr uint64_t kCompoundHead = 1ULL << 15, kThp = 1ULL << 22;
  uint64_t flags = 0;
  std::span<char> bytes(reinterpret_cast<char*>(&flags), sizeof(flags));
  auto got = proc_.readAt("kpageflags", frame * sizeof(uint64_t), bytes);
  return got && *got == sizeof(flags) && (flags & kThp) && (flags & kCompoundHead);
}

// Bytes that may still go to the node before it reaches its headroom;
// `freed_bytes` the caller freed there, which may still sit in per-CPU lists.
std::optional<uint64_t> MigrationEngine::headroomBytes(int node, uint64_t freed_bytes) const {
  auto memory = tier::readNodeMemory(sys_, node);
  if (!memory) return std::nullopt;
  EngineOptions options;
  {
    std::lock_guard lock(options_mutex_);
    options = options_;
  }
  auto total = static_cast<double>(memory->total_bytes);
  // Filling a node below its low watermark wakes kswapd, and below min every
  // move reclaims in the agent's own time (measured in the lab: 420 instead
  // of 43 microseconds a page): the mover floor, above low, is a floor.
  const uint64_t reserve =
      std::max({options.min_free_bytes, static_cast<uint64_t>(total * options.min_free_fraction),
                moverFloorBytes(node)});
  uint64_t free = memory->free_bytes;
  // Read now, not cached: what the lists hold changes with every allocation.
  if (freed_bytes > 0)
    if (auto marks = tier::readNodeWatermarks(proc_, node))
      free += std::min(freed_bytes, marks->per_cpu_free);
  return free > reserve ? free - reserve : 0;
}

uint64_t MigrationEngine::moverFloorBytes(int node) const {
  const auto now = Clock::now();
  std::lock_guard lock(watermarks_mutex_);
  auto it = watermarks_.find(node);
  if (it != watermarks_.end() && now - it->second.read_at < std::chrono::seconds(1))
    return it->second.bytes;
  const auto marks = tier::readNodeWatermarks(proc_, node);
  const uint64_t bytes = marks ? marks->moverFloor() : 0;
  watermarks_[node] = CachedWatermark{bytes, now};
  return bytes;
}

bool MigrationEngine::waitForBudget(uint64_t bytes, const MoveRequest& request) {
  auto deadline = Clock::now() + bucket_.acquire(static_cast<double>(bytes), Clock::now());
  // Sleep in slices so a cancelled request stops promptly.
  while (Clock::now() < deadline) {
    if (request.cancelled && request.cancelled()) return false;
    std::this_thread::sleep_for(
        std::min<Clock::duration>(deadline - Clock::now(), std::chrono::milliseconds(50)));
  }
  return true;
}

// A process that is exiting has no mm any more, and move_pages says EINVAL
// for it; report what happened instead.
tier::Error MigrationEngine::explainFailure(pid_t pid, tier::Error error) const {
  if (error.errnum == ESRCH) return error;
  // An exiting process loses its mm before it turns zombie: its status then
  // has no VmSize line.
  auto status = proc_.readFile(fmt::format("{}/status", pid));
  bool gone = !status || status->find("\nVmSize:") == std::string::npos ||
              status->find("\nState:\tZ") != std::string::npos ||
              status->find("\nState:\tX") != std::string::npos;
  if (gone) return tier::Error{ESRCH, fmt::format("process {} exited during the move", pid)};
  return error;
}

struct MigrationEngine::Batch {
  std::vector<uint64_t> pages;
  std::vector<int> from;
};

void MigrationEngine::moveBatch(const MoveRequest& request, std::vector<uint64_t>& pages,
                                const std::unordered_set<uint64_t>& thp_heads, MoveResult& result) {
  uint64_t page = tier::pageSize();
  auto pointers = asPointers(pages);
  std::vector<int> status(pages.size());
  if (auto ok = ops_.query(request.pid, pointers, status); !ok) {
    result.stopped = explainFailure(request.pid, ok.error());
    return;
  }
  Batch batch;
  auto now = Clock::now();
  for (size_t i = 0; i < pages.size(); ++i) {
    if (status[i] == request.target_node) {
      ++result.pages_already_there;
    } else if (status[i] < 0) {
      ++result.failed[errnoName(-status[i])];  // gone since the pagemap read
    } else if (request.respect_backoff && !pingpong_.allowed(request.pid, pages[i], now)) {
      ++result.failed["backoff"];
    } else {
      batch.pages.push_back(pages[i]);
      batch.from.push_back(status[i]);
    }
  }
  if (batch.pages.empty()) return;
  const uint64_t freed = request.freed_on_target_bytes > result.bytes_moved
                             ? request.freed_on_target_bytes - result.bytes_moved
                             : 0;
  if (auto room = headroomBytes(request.target_node, freed)) {
    size_t fits = static_cast<size_t>(*room / page);
    if (fits < batch.pages.size()) {
      result.failed["target_full"] += batch.pages.size() - fits;
      batch.pages.resize(fits);
      batch.from.resize(fits);
      if (fits == 0) {
        result.stopped = tier::Error{
            ENOSPC, fmt::format("node {} reached its free-memory headroom", request.target_node)};
        return;
      }
    }
  }
  if (request.dry_run) {
    result.pages_moved += batch.pages.size();  // would move
    return;
  }
  if (!waitForBudget(batch.pages.size() * page, request)) {
    result.stopped = tier::Error{ECANCELED, "migration cancelled"};
    return;
  }
  auto batch_pointers = asPointers(batch.pages);
  std::vector<int> targets(batch.pages.size(), request.target_node);
  std::vector<int> landed(batch.pages.size());
  if (auto ok = ops_.move(request.pid, batch_pointers, targets, landed); !ok) {
    result.stopped = explainFailure(request.pid, ok.error());
    return;
  }
  recheckUnmoved(request, batch_pointers, landed);
  std::map<std::pair<int, int>, uint64_t> moved;
  now = Clock::now();
  // Ping-pong is tracked per page (PingPongTracker::kChunkShift).
  uint64_t chunk = ~0ULL, chunk_pages = 0;
  auto closeChunk = [&] {
    if (chunk_pages > 0 && pingpong_.recordMove(request.pid, chunk << PingPongTracker::kChunkShift,
                                                request.target_node, now))
      result.pingpong_moves += chunk_pages;
    chunk_pages = 0;
  };
  for (size_t i = 0; i < batch.pages.size(); ++i) {
    if (landed[i] == request.target_node) {
      ++result.pages_moved;
      result.bytes_moved += page;
      ++moved[{batch.from[i], request.target_node}];
      if (thp_heads.contains(batch.pages[i])) ++result.thp_moved;
      if (batch.pages[i] >> PingPongTracker::kChunkShift != chunk) {
        closeChunk();
        chunk = batch.pages[i] >> PingPongTracker::kChunkShift;
      }
      ++chunk_pages;
    } else {
      ++result.failed[landed[i] < 0 ? errnoName(-landed[i]) : "moved_elsewhere"];
    }
  }
  closeChunk();
  std::lock_guard lock(stats_mutex_);
  for (const auto& [pair, count] : moved)
    stats_.pages_moved[pair] += count;
}

// A page reported as failed may still have moved: for a transparent huge
// page the kernel moves the whole folio once and answers EBUSY for one of its
// addresses. Ask where such pages are now.
void MigrationEngine::recheckUnmoved(const MoveRequest& request, std::span<void* const> pages,
                                     std::vector<int>& landed) {
  std::vector<void*> again;
  std::vector<size_t> index;
  for (size_t i = 0; i < pages.size(); ++i)
    if (landed[i] != request.target_node) again.push_back(pages[i]), index.push_back(i);
  if (again.empty()) return;
  std::vector<int> now(again.size());
  if (!ops_.query(request.pid, again, now)) return;
  for (size_t j = 0; j < again.size(); ++j)
    if (now[j] == request.target_node) landed[index[j]] = now[j];
}

void MigrationEngine::readBack(const MoveRequest& request, const std::vector<uint64_t>& pages,
                               MoveResult& result) {
  constexpr size_t kQueryBatch = 4096;
  std::vector<int> status;
  for (size_t first = 0; first < pages.size(); first += kQueryBatch) {
    std::span<const uint64_t> chunk(pages.data() + first,
                                    std::min(kQueryBatch, pages.size() - first));
    auto pointers = asPointers(chunk);
    status.assign(chunk.size(), 0);
    if (!ops_.query(request.pid, pointers, status)) return;  // the process left: nothing to count
    for (int node : status) {
      if (node >= 0) ++result.pages_present_after;
      if (node == request.target_node) ++result.pages_on_target_after;
    }
  }
}

void MigrationEngine::account(const MoveResult& result) {
  std::lock_guard lock(stats_mutex_);
  for (const auto& [reason, count] : result.failed)
    stats_.pages_failed[reason] += count;
  if (result.stopped) ++stats_.pages_failed["stopped_" + errnoName(result.stopped->errnum)];
  stats_.bytes_moved += result.bytes_moved;
  stats_.pingpong_moves += result.pingpong_moves;
  ++stats_.requests;
  if (result.stopped) ++stats_.requests_stopped;
}

MoveResult MigrationEngine::move(const MoveRequest& request) {
  auto started = Clock::now();
  MoveResult result;
  result.pid = request.pid;
  result.target_node = request.target_node;
  result.dry_run = request.dry_run;
  size_t batch_pages;
  {
    std::lock_guard lock(options_mutex_);
    batch_pages = std::max<size_t>(options_.batch_pages, 1);
  }
  PageSet present;
  auto ranges = mappedRanges(request.pid, request.ranges);
  if (!ranges) result.stopped = ranges.error();
  if (ranges) {
    std::vector<Range> sorted = splitRanges(*ranges, tier::pageSize(), 4096);
    std::sort(sorted.begin(), sorted.end(),
              [](const Range& a, const Range& b) { return a.start < b.start; });
    if (request.pages_known_present) {
      for (const auto& range : sorted)
        for (uint64_t at = range.start; at < range.end; at += tier::pageSize())
          present.pages.push_back(at);
    } else if (auto ok = presentPages(request.pid, sorted, present); !ok) {
      result.stopped = ok.error();
    }
  }
  const std::vector<uint64_t>& all_pages = present.pages;
  result.thp_visible = present.frames_visible;
  result.pages_requested = all_pages.size();
  for (size_t first = 0, end = 0; first < all_pages.size() && !result.stopped; first = end) {
    if (request.cancelled && request.cancelled()) {
      result.stopped = tier::Error{ECANCELED, "migration cancelled"};
      break;
    }
    end = batchEnd(all_pages, first, batch_pages);
    std::vector<uint64_t> pages(all_pages.begin() + static_cast<std::ptrdiff_t>(first),
                                all_pages.begin() + static_cast<std::ptrdiff_t>(end));
    moveBatch(request, pages, present.thp_heads, result);
  }
  if (!request.dry_run && request.read_back) readBack(request, all_pages, result);
  result.seconds = std::chrono::duration<double>(Clock::now() - started).count();
  account(result);
  return result;
}

}  // namespace tierd::migrate
