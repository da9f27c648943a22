// The hotness model: heat per (pid, page) on two time scales, and the
// capacity-fitted classification that turns heat into a promote/demote plan.
// Pure: no OS calls; every time is passed in (nanoseconds, any monotonic clock).
//
// Heat. Each entry keeps two exponentially cooled scores (value *
// 2^(-dt / half_life)), stored scaled to one shared epoch so that cooling is
// one factor for the whole map, not an exp per entry. An access of weight w adds
// w * ln2 / half_life to each score, so a score estimates the access rate
// (weight per second) over its half-life: a steady rate r gives r on both
// scales, a short burst is large on the fast scale only. The combined heat is
// max(fast, slow): the fast scale reacts to a page turning hot within seconds,
// the slow scale keeps a steadily used page warm through short pauses.
//
// Granularity. A "page" is address >> page_shift (12: 4 KiB, 21: 2 MiB);
// every page count in this API is in those units.
//
// DAMON regions. A region of at most max_region_pages pages spreads its heat
// over per-page entries (each page gets nr_accesses). A larger region keeps
// one entry keyed by (pid, first page) that spans all its pages: touching
// millions of pages per aggregation window would cost more than the region
// tells (DAMON's resolution is the region). Such an entry is classified and
// moved as a whole (PageRef::pages > 1); when DAMON later splits or merges the
// region, the old entry simply cools and is evicted.
//
// Memory bound. At most max_entries entries. When a new key arrives at the
// cap, eviction samples eviction_samples entries (deterministic PRNG) and
// drops the coldest of them (approximate coldest-first, as Redis does for
// LRU): O(1) per insert, and a hot entry is evicted only if every sampled
// entry is hotter, which is vanishingly rare when the hot set is a small part
// of the cap. Size the cap from managed memory, e.g. 0.1 % of it divided by
// bytesPerEntry(): 1 TiB managed -> 1 GiB -> ~13M entries.
//
// Admission. At the cap a new key is admitted only if its sample is at least
// as hot as the last entry evicted (that heat cooling at the fast half-life),
// or a small table of hashed counters of keys turned away (a quarter of the
// cap, aged by halving) has seen it before. A process larger than the cap
// that is scanned whole each pass would otherwise churn: in the lab 98 000
// pages through 43 000 entries cost 130 ns a sample natively against 47 ns
// without evictions, and 2-3 µs under TCG.
//
// Idle pages. A sampler that sees every page once per pass of its own (NUMA
// hint faults: the scanner arms each page once per pass, the first access
// after that faults) reports each process's completed passes
// (setScanPasses). A page that has not been seen for idle_passes passes was
// armed and then left alone for at least a whole pass: whatever heat it
// built up before, it is not in use now, and classification treats it as
// heat 0 (the heat itself still cools at its own pace). Without pass counts
// (DAMON, hardware sampling) no page is ever called idle.
//
// One pass's sample is a single latency, and a cold page's lucky short one
// outranks a hot page's typical one: in the lab's GUPS run, about 3000 of
// 86 000 cold pages beat a typical hot page after one pass, about 140 after
// two. So a page is promoted only once it was seen in min_seen_passes passes.
//
// Until a process's sampler has made one whole pass while tierd watched
// (two, if it was already scanning when tierd came), its pages are not
// promoted: the heat then covers only the part scanned so far, and the
// hottest of that part may be cold next to the rest (and moves are held for
// the ping-pong window, so a wrong one stays a minute).
//
// Held pages. A Locator `held` (optional) names pages a mover moved recently:
// they are neither promoted nor demoted, since moving one back now would
// undo a move the ping-pong window still remembers.
//
// Classification. A histogram of heats (8 equal steps within each octave,
// weighted by pages) fits the hot threshold so the pages at or above it fill
// capacity - headroom of the fast tier. Then, for pages where `onFast` says:
//   - on a slow node, heat >= threshold -> promote into the room above the
//     keep-free line, the larger of the low watermark and the headroom (a
//     headroom that large is the kernel's own reserve, already a band above
//     the point where reclaim starts); beyond that room, a candidate displaces (demotes)
//     the coldest not-hot fast page only when its heat is at least
//     benefit_margin times that page's heat (the benefit margin);
//   - on the fast node, heat < threshold / cold_divisor -> demote, only while
//     fast free memory is under the keep-free line, and only as much as
//     brings it back there;
//   - the warm band [threshold / cold_divisor, threshold) never moves on its
//     own (hysteresis); it leaves only when displaced by the margin rule.
// Promotions are ordered by heat descending, demotions ascending (ties by
// pid, page), each list capped by its page budget.
#pragma once

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace tierd::hotness {

struct Config {
  unsigned page_shift = 12;            // 12: 4 KiB pages, 21: 2 MiB
  double fast_half_life_s = 2.0;       // fast scale
  double slow_half_life_s = 60.0;      // slow scale
  uint64_t max_entries = 1u << 20;     // hard cap on entries
  uint64_t max_region_pages = 512;     // larger DAMON regions keep one spanning entry
  unsigned eviction_samples = 8;       // entries sampled per eviction
  unsigned idle_passes = 3;            // passes unseen before a page counts as idle (0: never)
  unsigned min_seen_passes = 2;        // passes a page was seen in before it is promoted
  uint64_t seed = 0x9e3779b97f4a7c15;  // eviction sampling (determinism)
};

// One page (pages == 1) or one spanning region entry (pages > 1).
struct PageRef {
  pid_t pid = 0;
  uint64_t page = 0;  // first page (address >> page_shift)
  uint64_t pages = 1;
  double heat = 0;  // combined heat when the plan was made
  bool operator==(const PageRef&) const = default;
};

struct ClassifyInput {
  uint64_t capacity_pages = 0;   // fast tier size usable by the managed workloads
  uint64_t headroom_pages = 0;   // kept free on the fast tier
  uint64_t fast_free_pages = 0;  // free on the fast tier now
  // Free too, but in per-CPU lists (MemFree leaves them out): counted for
  // pressure only. A demotion's freed pages land there, and without them
  // every plan would see the same shortfall and demote again; promotions
  // are not let into them (other CPUs' lists are not the mover's to take).
  uint64_t per_cpu_free_pages = 0;
  uint64_t low_watermark_pages = 0;  // demote cold pages while free is below this (or the headroom)
  uint64_t promote_budget_pages = UINT64_MAX;
  uint64_t demote_budget_pages = UINT64_MAX;
  double benefit_margin = 1.25;  // promote only at threshold * margin or above
  // False when the last plan's promotions found no room after its
  // displacements: the pages those freed sit in per-CPU lists until the
  // kernel drains them, and displacing more would only demote.
  bool displace = true;
  double cold_divisor = 4.0;   // cold threshold = threshold / cold_divisor
  double min_hot_heat = 1e-3;  // never call a page hotter than this "hot" by default
  // ... nor one cooler than this fraction of the hottest page's heat: when
  // fewer pages are tracked than fit, a page seen once, late, is not hot yet.
  double min_hot_fraction_of_max = 0;
  // Pages found on the fast tier that the map does not track (never sampled,
  // or evicted as coldest): cold with heat 0, first to leave.
  std::vector<PageRef> untracked_fast;
  // When set, where a page is comes from its entry (setNode) and the
  // locator is not asked: one test per entry instead of a lookup. A page
  // whose node is not known then is not promoted.
  std::vector<int> fast_nodes;
  // Free memory below this is pressure: the larger of the low watermark and the headroom.
  uint64_t keepFreePages() const { return std::max(low_watermark_pages, headroom_pages); }
  bool pressure() const { return fast_free_pages + per_cpu_free_pages < keepFreePages(); }
};

struct ProcessHot {
  pid_t pid = 0;
  uint64_t hot_pages = 0;
  uint64_t hot_bytes = 0;
  bool operator==(const ProcessHot&) const = default;
};

struct Plan {
  std::vector<PageRef> promote;         // heat descending
  std::vector<PageRef> demote;          // heat ascending
  double hot_threshold = 0;             // heat at or above which a page is hot
  double warm_band = 0;                 // lower edge of the warm band (the cold threshold)
  uint64_t hot_pages = 0;               // pages at or above hot_threshold
  // A candidate found no room above the keep-free line while displacing was
  // allowed: pages on the fast tier that the map does not track
  // (ClassifyInput::untracked_fast, heat 0) would have been the first to go.
  bool displacing = false;
  std::vector<ProcessHot> per_process;  // by pid
  std::map<std::string, uint64_t> hot_bytes_by_label;  // pids without a label are left out
};

// Where a page is now: true when on the fast tier.
using Locator = std::function<bool(pid_t pid, uint64_t page)>;

class HeatMap {
 public:
  explicit HeatMap(Config config = {});

  void addAccess(pid_t pid, uint64_t address, uint64_t weight, uint64_t now_ns);
  void addRegion(pid_t pid, uint64_t start, uint64_t end, uint32_t nr_accesses,
                 uint32_t max_accesses, uint64_t now_ns);

  // Heat at now_ns of the entry holding (pid, page); 0 when unknown.
  double fastHeat(pid_t pid, uint64_t page, uint64_t now_ns) const;
  double slowHeat(pid_t pid, uint64_t page, uint64_t now_ns) const;
  double heat(pid_t pid, uint64_t page, uint64_t now_ns) const;

  // Completed sampler passes over the process (see "Idle pages"); pages seen
  // from now on are stamped with it.
  void setScanPasses(pid_t pid, uint64_t passes);
  // True when the entry holding (pid, page) has gone idle_passes passes unseen.
  bool idle(pid_t pid, uint64_t page) const;

  // Label (e.g. cgroup path) used for per-label hot bytes.
  void setLabel(pid_t pid, std::string label);
  void forgetProcess(pid_t pid);  // process exited: drops its entries and label

  Plan classify(const ClassifyInput& in, const Locator& onFast, uint64_t now_ns,
                const Locator& held = {}) const;

  // Every entry with its heat at now_ns, in no particular order.
  std::vector<PageRef> snapshot(uint64_t now_ns) const;

  // Where each tracked page is, as the caller last learned it (move_pages
  // status: a node, or -errno when not present), kept in the entry itself so
  // that classify's locator costs one probe and no second table.
  static constexpr int kNodeUnknown = INT16_MIN;
  void setNode(pid_t pid, uint64_t page, int node);
  int node(pid_t pid, uint64_t page) const;  // kNodeUnknown when untracked or never learned
  // The pages to ask about: those whose node is unknown, and the entries of
  // one rotating slice in every `recheck_slices` (`rotation` picks it;
  // pages move on their own too). At most `max` of them, the hottest first.
  std::vector<PageRef> placementQueries(uint64_t max, uint64_t recheck_slices, uint64_t rotation,
                                        uint64_t now_ns) const;

  uint64_t entries() const { return entries_.size(); }
  uint64_t evictions() const { return evictions_; }
  uint64_t rejected() const { return rejected_; }  // samples of keys not admitted at the cap
  uint64_t bytes() const;                          // memory held by the map, estimated
  static uint64_t bytesPerEntry();                 // for sizing max_entries
  const Config& config() const { return config_; }

 private:
  struct Key {
    pid_t pid;
    uint64_t page;
    bool operator==(const Key&) const = default;
  };
  // 32 bytes; scores as float (7 digits are plenty for heat, and the shared
  // epoch is rebased long before a scaled score could overflow).
  struct Entry {
    uint64_t page;
    pid_t pid;
    uint32_t pages;
    float fast;  // scaled to epoch_ns_ (see scaleAt)
    float slow;
    uint32_t seen_pass;    // the process's scan passes when last seen
    uint16_t seen_passes;  // in how many passes it was seen (saturating)
    int16_t node;          // see setNode(); in what was padding
    Key key() const { return Key{pid, page}; }
  };
  struct Scale {
    uint64_t now_ns = 0;
    double fast = 1, slow = 1;  // 2^((now - epoch) / half-life) per scale
    bool valid = false;
    // Derived once per time, so that a sample costs multiplications only:
    // 1 / fast and 1 / slow (stored score -> heat), lambda * scale (weight
    // -> stored score).
    double inv_fast = 1, inv_slow = 1, fast_gain = 0, slow_gain = 0;
    float fast_gain_f = 0;  // fast_gain for the single-scale sample path
  };

  Entry& touch(Key key, uint64_t pages);
  double admitFloorAt(uint64_t now_ns);  // admit_floor_ cooled to now_ns
  void markSeen(Entry& e, uint32_t seen_pass, uint64_t pages);
  Entry& insert(Key key, uint64_t pages, uint32_t seen_pass);  // a new key, evicting at the cap
  bool isIdle(const Entry& e) const;
  bool promotable(const Entry& e) const;
  static size_t hashOf(const Key& key);
  size_t findSlot(const Key& key) const;  // slot holding key, or an empty slot
  void insertSlot(uint32_t index);
  void eraseSlot(size_t slot);
  void growSlots();
  Scale scaleAt(uint64_t now_ns) const;
  // scaleAt, rebasing first when factors grow large; the reference is to
  // scale_cache_. Inline for the hit: every sample of a batch asks at one time.
  const Scale& growthAt(uint64_t now_ns) {
    if (scale_cache_.valid && now_ns == scale_cache_.now_ns && !entries_.empty()) [[likely]]
      return scale_cache_;
    return growthAtNewTime(now_ns);
  }
  const Scale& growthAtNewTime(uint64_t now_ns);
  void rebase(uint64_t now_ns);
  const Entry* find(pid_t pid, uint64_t page) const;
  double evictOne();  // the evicted entry's heat
  bool admit(const Key& key, double heat, uint64_t now_ns);
  void erase(size_t index);
  uint64_t nextRandom();

  Config config_;
  double fast_lambda_;  // ln2 / half-life, per second
  double slow_lambda_;
  double max_lambda_;
  // Both half-lives equal (hint faults): slow == fast in every entry, and
  // the per-sample paths work on one float score.
  bool single_scale_ = false;
  std::vector<Entry> entries_;  // dense, for sampling eviction
  // Open addressing (linear probing, load <= 1/2): entry index + 1 in the low
  // bits (index_mask_), a tag from the key's hash in the bits above them; 0 =
  // empty. A map of up to 2^16 entries keeps a 16-bit tag.
  std::vector<uint32_t> slots_ = std::vector<uint32_t>(1024, 0);
  uint32_t index_mask_ = UINT32_MAX;
  uint32_t tagOf(size_t hash) const { return static_cast<uint32_t>(hash >> 32) & ~index_mask_; }
  size_t entryOf(uint32_t slot) const { return (slot & index_mask_) - 1; }
  std::unordered_map<pid_t, std::string> labels_;
  struct Passes {
    uint32_t now = 0;
    uint32_t first = 0;  // when first reported
  };
  std::unordered_map<pid_t, Passes> passes_;  // only for pids whose sampler counts passes
  // The last pid looked up in passes_: nearly every lookup is for the same
  // process, and classify() asks once per entry.
  struct PassesCache {
    pid_t pid = -1;
    bool known = false;   // the pid's sampler counts passes
    bool covered = true;  // a whole pass seen since (or none counted)
    uint32_t passes = 0;
  };
  mutable PassesCache passes_cache_;
  // Inline for the hit: every sample and every entry classify() looks at asks.
  const PassesCache& passesOf(pid_t pid) const {
    return pid == passes_cache_.pid ? passes_cache_ : refreshPassesCache(pid);
  }
  const PassesCache& refreshPassesCache(pid_t pid) const;
  uint64_t rng_;
  uint64_t epoch_ns_ = 0;
  mutable Scale scale_cache_;
  uint64_t evictions_ = 0;
  uint64_t rejected_ = 0;
  std::vector<uint16_t> ghosts_;  // tag << 8 | count, by hash
  uint64_t ghost_touches_ = 0;    // since they were last halved
  double admit_floor_ = 0;        // heat of the last evicted entry, at admit_floor_ns_
  uint64_t admit_floor_ns_ = 0;
  double admit_floor_cooled_ = 0;  // admit_floor_ at admit_floor_cooled_ns_
  uint64_t admit_floor_cooled_ns_ = 0;
  bool admit_floor_cooled_valid_ = false;
};

}  // namespace tierd::hotness
