// tiering_load: the evaluation's workload. It knows the access probability of
// every page of its table, so it can say how much of its access mass sits on
// the fast tier, and how far that is from the best any placement could do.
//   tiering_load --pattern zipf|gups|shift [--table-mib 384] [--seconds 100]
//                [--json FILE] [--seed 1] [--far-node N]
// The table is first-touched on a far node; then a worker thread does lookups
// while a monitor thread reads every page's node back once a second with
// move_pages(2) and writes one JSON line per second, and a summary at the end.
#include <fcntl.h>
#include <numa.h>
#include <numaif.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "model.h"

namespace {

using tier::bench::AliasSampler;
using tier::bench::Rng;
using tier::bench::Sample;
using Clock = std::chrono::steady_clock;
constexpr size_t kPage = 4096;
constexpr size_t kLine = 64;

enum class Pattern { kZipf, kGups, kShift };

struct Options {
  Pattern pattern = Pattern::kZipf;
  std::string pattern_name = "zipf";
  size_t table_mib = 384;
  double seconds = 100;
  double shift_at = -1;  // default: half way
  double theta = 0.99;
  double hot_fraction = 0.125;  // gups hot set, shift window
  double hot_share = 0.9;       // gups: updates that go to the hot set
  uint64_t seed = 1;
  int far_node = -1;
  std::string json_path;
  std::string ready_path;  // touched once the table is in place
  std::string go_path;     // if set, the clock starts only once this file exists
};

[[noreturn]] void usage(const std::string& problem) {
  std::fprintf(stderr,
               "tiering_load: %s\nusage: tiering_load --pattern zipf|gups|shift [--table-mib N] "
               "[--seconds S] [--shift-at S] [--theta X] [--hot-fraction F] [--hot-share F] "
               "[--seed N] [--far-node N] [--json FILE] [--ready FILE] [--wait-for FILE]\n",
               problem.c_str());
  std::exit(2);
}

double parseNumber(const std::string& flag, const char* text) {
  char* end = nullptr;
  errno = 0;
  double value = std::strtod(text, &end);
  if (errno != 0 || end == text || *end != '\0' || value < 0)
    usage(flag + ": not a non-negative number: '" + text + "'");
  return value;
}

Options parseOptions(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) usage(flag + " needs a value");
    const char* value = argv[++i];
    if (flag == "--pattern") {
      o.pattern_name = value;
      if (o.pattern_name == "zipf")
        o.pattern = Pattern::kZipf;
      else if (o.pattern_name == "gups")
        o.pattern = Pattern::kGups;
      else if (o.pattern_name == "shift")
        o.pattern = Pattern::kShift;
      else
        usage("--pattern: '" + o.pattern_name + "' is not zipf, gups or shift");
    } else if (flag == "--table-mib") {
      o.table_mib = static_cast<size_t>(parseNumber(flag, value));
    } else if (flag == "--seconds") {
      o.seconds = parseNumber(flag, value);
    } else if (flag == "--shift-at") {
      o.shift_at = parseNumber(flag, value);
    } else if (flag == "--theta") {
      o.theta = parseNumber(flag, value);
    } else if (flag == "--hot-fraction") {
      o.hot_fraction = parseNumber(flag, value);
    } else if (flag == "--hot-share") {
      o.hot_share = parseNumber(flag, value);
    } else if (flag == "--seed") {
      o.seed = static_cast<uint64_t>(parseNumber(flag, value));
    } else if (flag == "--far-node") {
      o.far_node = static_cast<int>(parseNumber(flag, value));
    } else if (flag == "--json") {
      o.json_path = value;
    } else if (flag == "--ready") {
      o.ready_path = value;
    } else if (flag == "--wait-for") {
      o.go_path = value;
    } else {
      usage("unknown option " + flag);
    }
  }
  if (o.table_mib == 0) usage("--table-mib must be positive");
  if (o.hot_fraction <= 0 || o.hot_fraction > 0.5) usage("--hot-fraction must be in (0, 0.5]");
  if (o.hot_share > 1) usage("--hot-share must be in [0, 1]");
  if (o.shift_at < 0) o.shift_at = o.seconds / 2;
  return o;
}

// Fast nodes are the nodes with CPUs (the workload runs there); the far node
// is the CPU-less memory node with the most free memory, unless given.
struct Nodes {
  std::vector<uint8_t> is_fast;  // indexed by node id
  int far = -1;
};

Nodes findNodes(int far_override) {
  Nodes nodes;
  int max_node = numa_max_node();
  nodes.is_fast.assign(static_cast<size_t>(max_node) + 1, 0);
  long long best_free = -1;
  for (int node = 0; node <= max_node; ++node) {
    long long free_bytes = 0;
    if (numa_node_size64(node, &free_bytes) <= 0) continue;
    bitmask* cpus = numa_allocate_cpumask();
    bool has_cpus = numa_node_to_cpus(node, cpus) == 0 && numa_bitmask_weight(cpus) > 0;
    numa_free_cpumask(cpus);
    if (has_cpus) {
      nodes.is_fast[static_cast<size_t>(node)] = 1;
    } else if (free_bytes > best_free) {
      best_free = free_bytes;
      nodes.far = node;
    }
  }
  if (far_override >= 0) nodes.far = far_override;
  return nodes;
}

// Pages of a node that user allocations can take: MemFree less the zones'
// min watermarks, below which migrations into the node fail with ENOMEM.
long long minWatermarkPages(int node) {
  std::ifstream zoneinfo("/proc/zoneinfo");
  std::string line;
  bool in_node = false;
  long long pages = 0;
  while (std::getline(zoneinfo, line)) {
    int zone_node = -1;
    if (std::sscanf(line.c_str(), "Node %d, zone", &zone_node) == 1) {
      in_node = zone_node == node;
      continue;
    }
    long long value = 0;
    if (in_node && std::sscanf(line.c_str(), " min %lld", &value) == 1) pages += value;
  }
  return pages;
}

long long fastCapacityPages(const Nodes& nodes) {
  long long pages = 0;
  for (size_t node = 0; node < nodes.is_fast.size(); ++node) {
    if (!nodes.is_fast[node]) continue;
    long long free_bytes = 0;
    numa_node_size64(static_cast<int>(node), &free_bytes);
    pages += free_bytes / static_cast<long long>(kPage) - minWatermarkPages(static_cast<int>(node));
  }
  return std::max(pages, 0LL);
}

// What the worker draws from: a sampler over "slots" and the slot -> page map.
struct AccessModel {
  std::vector<double> page_probability;  // per table page, sums to 1
  AliasSampler sampler;
  std::vector<uint32_t> slot_page;  // sampler slot -> table page
};

AccessModel zipfModel(size_t pages, const Options& o) {
  auto rank_probability = tier::bench::zipfProbabilities(pages, o.theta);
  auto rank_page = tier::bench::shuffledIndices(pages, o.seed);
  std::vector<double> page_probability(pages);
  for (size_t rank = 0; rank < pages; ++rank)
    page_probability[rank_page[rank]] = rank_probability[rank];
  return {std::move(page_probability), AliasSampler(rank_probability), std::move(rank_page)};
}

// A contiguous hot range [hot_start, hot_start + hot_pages) taking hot_share
// of the accesses; the rest spread uniformly over the whole table.
AccessModel hotRangeModel(size_t pages, size_t hot_start, size_t hot_pages, double hot_share) {
  std::vector<double> p(pages, (1.0 - hot_share) / static_cast<double>(pages));
  for (size_t i = hot_start; i < hot_start + hot_pages; ++i)
    p[i] += hot_share / static_cast<double>(hot_pages);
  std::vector<uint32_t> identity(pages);
  for (size_t i = 0; i < pages; ++i)
    identity[i] = static_cast<uint32_t>(i);
  AliasSampler sampler(p);
  return {std::move(p), std::move(sampler), std::move(identity)};
}

// Where the hot range sits before and after the shift: seeded, page aligned,
// the two disjoint.
std::pair<size_t, size_t> hotStarts(size_t pages, size_t hot_pages, uint64_t seed) {
  Rng rng(seed ^ 0x5eedULL);
  size_t slots = pages / hot_pages;  // disjoint window positions
  size_t first = rng.below(slots);
  size_t second = (first + 1 + rng.below(slots - 1)) % slots;
  return {first * hot_pages, second * hot_pages};
}

struct Table {
  char* data = nullptr;
  size_t bytes = 0;
  size_t pages() const { return bytes / kPage; }
};

// First touch on the far node, then the default policy again, so the kernel
// and every mover are free to place pages anywhere afterwards.
Table allocateTable(size_t bytes, int far_node) {
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) {
    std::perror("tiering_load: mmap table");
    std::exit(1);
  }
  madvise(mem, bytes, MADV_NOHUGEPAGE);  // placement per 4 KiB page, as each row has its own heat
  unsigned long mask = 1UL << far_node;
  if (mbind(mem, bytes, MPOL_BIND, &mask, sizeof(mask) * 8, 0) != 0) {
    std::fprintf(stderr, "tiering_load: mbind to far node %d: %s\n", far_node,
                 std::strerror(errno));
    std::exit(1);
  }
  auto* data = static_cast<char*>(mem);
  for (size_t offset = 0; offset < bytes; offset += kPage)
    std::memset(data + offset, 1, kPage);
  mbind(mem, bytes, MPOL_DEFAULT, nullptr, 0, 0);
  return {data, bytes};
}

struct Shared {
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> lookups{0};
  std::atomic<uint64_t> sink{0};
};

double secondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// The hot loop: one cache line of one row per lookup; reads for zipf and
// shift, read-modify-write for gups. Switches model at the shift.
void worker(const Table& table, const AccessModel& before, const AccessModel* after,
            double shift_at, bool update, Clock::time_point start, uint64_t seed, Shared& shared) {
  Rng rng(seed * 0x2545f4914f6cdd1dULL + 7);
  const AccessModel* model = &before;
  uint64_t sum = 0, done = 0;
  while (!shared.stop.load(std::memory_order_relaxed)) {
    for (int i = 0; i < 4096; ++i) {
      size_t page = model->slot_page[model->sampler.draw(rng)];
      char* line = table.data + page * kPage + rng.below(kPage / kLine) * kLine;
      auto* cell = reinterpret_cast<volatile uint64_t*>(line);
      if (update)
        *cell = *cell + 1;
      else
        sum += *cell;
    }
    done += 4096;
    shared.lookups.store(done, std::memory_order_relaxed);
    if (after && model == &before && secondsSince(start) >= shift_at) model = after;
  }
  shared.sink.store(sum);
}

struct Reading {
  std::vector<uint8_t> on_fast;
  size_t pages_fast = 0;
  size_t pages_unknown = 0;  // negative status (not present, ...)
};

bool readPlacement(const std::vector<void*>& addresses, const Nodes& nodes,
                   std::vector<int>& status, Reading& out) {
  if (move_pages(0, addresses.size(), const_cast<void**>(addresses.data()), nullptr, status.data(),
                 0) != 0) {
    std::fprintf(stderr, "tiering_load: move_pages (query): %s\n", std::strerror(errno));
    return false;
  }
  auto counts = tier::bench::updatePlacement(status, nodes.is_fast, out.on_fast);
  out.pages_fast = counts.fast;
  out.pages_unknown = counts.unknown;
  return true;
}

std::string fmtDouble(double value, int digits = 4) {
  char buffer[64];
  std::snprintf(buffer, sizeof(buffer), "%.*f", digits, value);
  return buffer;
}

std::string optionalSeconds(const std::optional<double>& value) {
  return value ? fmtDouble(*value, 1) : "null";
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parseOptions(argc, argv);
  prctl(PR_SET_NAME, "tiering_load");
  if (numa_available() != 0) {
    std::fprintf(stderr, "tiering_load: no NUMA support on this kernel\n");
    return 77;
  }
  Nodes nodes = findNodes(o.far_node);
  if (nodes.far < 0 || static_cast<size_t>(nodes.far) >= nodes.is_fast.size() ||
      nodes.is_fast[static_cast<size_t>(nodes.far)]) {
    std::fprintf(stderr,
                 "tiering_load: no CPU-less memory node to start the table on "
                 "(run in the lab: tools/lab/lab run --preset far -- ...)\n");
    return 77;
  }
  FILE* json = o.json_path.empty() ? stdout : std::fopen(o.json_path.c_str(), "w");
  if (!json) {
    std::fprintf(stderr, "tiering_load: open %s: %s\n", o.json_path.c_str(), std::strerror(errno));
    return 1;
  }

  // The capacity is measured before the table exists: what the fast tier can take.
  long long capacity = fastCapacityPages(nodes);
  Table table = allocateTable(o.table_mib << 20, nodes.far);
  size_t pages = table.pages();
  size_t hot_pages =
      std::max<size_t>(1, static_cast<size_t>(o.hot_fraction * static_cast<double>(pages)));

  AccessModel before, after_model;
  bool has_shift = o.pattern == Pattern::kShift;
  auto [hot_before, hot_after] = hotStarts(pages, hot_pages, o.seed);
  if (o.pattern == Pattern::kZipf) before = zipfModel(pages, o);
  if (o.pattern == Pattern::kGups)
    before = hotRangeModel(pages, hot_before, hot_pages, o.hot_share);
  if (has_shift) {
    before = hotRangeModel(pages, hot_before, hot_pages, 1.0);
    after_model = hotRangeModel(pages, hot_after, hot_pages, 1.0);
  }
  double oracle_before =
      tier::bench::oracleShare(before.page_probability, static_cast<size_t>(capacity));
  double oracle_after = has_shift ? tier::bench::oracleShare(after_model.page_probability,
                                                             static_cast<size_t>(capacity))
                                  : oracle_before;

  std::vector<void*> addresses(pages);
  for (size_t i = 0; i < pages; ++i)
    addresses[i] = table.data + i * kPage;
  std::vector<int> status(pages);

  std::fprintf(json,
               "{\"config\":{\"pattern\":\"%s\",\"table_pages\":%zu,\"capacity_pages\":%lld,"
               "\"far_node\":%d,\"hot_pages\":%zu,\"seconds\":%s,\"shift_at\":%s,\"theta\":%s,"
               "\"seed\":%llu,\"oracle\":%s,\"oracle_after_shift\":%s}}\n",
               o.pattern_name.c_str(), pages, capacity, nodes.far,
               o.pattern == Pattern::kZipf ? 0 : hot_pages, fmtDouble(o.seconds, 1).c_str(),
               has_shift ? fmtDouble(o.shift_at, 1).c_str() : "null", fmtDouble(o.theta, 3).c_str(),
               static_cast<unsigned long long>(o.seed), fmtDouble(oracle_before).c_str(),
               fmtDouble(oracle_after).c_str());
  std::fflush(json);
  if (!o.ready_path.empty()) std::ofstream(o.ready_path) << "ready\n";
  // The harness sets the policy up while the table sits still, so every
  // policy starts from the same placement at t = 0.
  for (int waited = 0; !o.go_path.empty() && access(o.go_path.c_str(), F_OK) != 0; ++waited) {
    if (waited == 3000) {
      std::fprintf(stderr, "tiering_load: %s did not appear within 300 s\n", o.go_path.c_str());
      return 1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  Shared shared;
  auto start = Clock::now();
  std::thread work(worker, std::cref(table), std::cref(before), has_shift ? &after_model : nullptr,
                   o.shift_at, o.pattern == Pattern::kGups, start, o.seed, std::ref(shared));

  tier::bench::PlacementTracker tracker(pages, 60.0);
  std::vector<Sample> series;
  Reading reading;
  uint64_t last_lookups = 0;
  bool ok = true;
  for (int tick = 0;; ++tick) {
    auto due = start + std::chrono::milliseconds(1000LL * tick);
    std::this_thread::sleep_until(due);
    double t = secondsSince(start);
    if (t > o.seconds + 0.5 || !ok) break;
    auto probe_start = Clock::now();
    if (!(ok = readPlacement(addresses, nodes, status, reading))) break;
    double probe_ms = secondsSince(probe_start) * 1000;
    bool shifted = has_shift && t >= o.shift_at;
    const AccessModel& model = shifted ? after_model : before;
    double oracle = shifted ? oracle_after : oracle_before;
    double share = tier::bench::fastShare(model.page_probability, reading.on_fast);
    double ratio = oracle > 0 ? share / oracle : 0;
    auto delta = tracker.observe(reading.on_fast, t);
    uint64_t lookups = shared.lookups.load();
    series.push_back({t, ratio});
    std::fprintf(json,
                 "{\"t\":%s,\"share\":%s,\"oracle\":%s,\"ratio\":%s,\"pages_fast\":%zu,"
                 "\"pages_unknown\":%zu,\"moves\":%llu,\"round_trips\":%llu,\"lookups\":%llu,"
                 "\"probe_ms\":%s}\n",
                 fmtDouble(t, 2).c_str(), fmtDouble(share).c_str(), fmtDouble(oracle).c_str(),
                 fmtDouble(ratio).c_str(), reading.pages_fast, reading.pages_unknown,
                 static_cast<unsigned long long>(delta.moves),
                 static_cast<unsigned long long>(delta.round_trips),
                 static_cast<unsigned long long>(lookups - last_lookups),
                 fmtDouble(probe_ms, 1).c_str());
    std::fflush(json);
    last_lookups = lookups;
  }
  shared.stop = true;
  work.join();

  double end_t = series.empty() ? 0 : series.back().t;
  double steady_from = has_shift ? o.shift_at : 0;
  auto to_90 = tier::bench::timeToSustain(series, 0, 0.9, 5);
  std::optional<double> recovery;
  if (has_shift) recovery = tier::bench::timeToSustain(series, o.shift_at, 0.9, 5);
  std::fprintf(json,
               "{\"summary\":{\"steady_ratio\":%s,\"seconds_to_90\":%s,\"recovery_s\":%s,"
               "\"moves\":%llu,\"round_trips\":%llu,\"samples\":%zu,\"lookups\":%llu}}\n",
               fmtDouble(tier::bench::steadyRatio(series, steady_from, end_t)).c_str(),
               optionalSeconds(to_90).c_str(),
               has_shift ? optionalSeconds(recovery).c_str() : "null",
               static_cast<unsigned long long>(tracker.totalMoves()),
               static_cast<unsigned long long>(tracker.totalRoundTrips()), series.size(),
               static_cast<unsigned long long>(shared.lookups.load()));
  if (json != stdout) std::fclose(json);
  return ok ? 0 : 1;
}
