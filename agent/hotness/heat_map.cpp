#include "hotness/heat_map.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <numbers>
#include <utility>

namespace tierd::hotness {

namespace {

// Histogram: kPerOctave buckets per doubling, heats from 2^kMinExp to 2^kMaxExp.
// A bucket is read off the double's bits (the exponent, then the top three
// bits of the mantissa: eight equal steps within each octave), not with
// log2: classify buckets every entry, and under emulation (the lab's TCG
// guest) each floating-point operation is a call into a soft-float helper.
constexpr int kMantissaBits = 3;
constexpr int kPerOctave = 1 << kMantissaBits;
constexpr int kMinExp = -30;
constexpr int kMaxExp = 40;
constexpr int kBuckets = (kMaxExp - kMinExp) * kPerOctave;

int bucketOf(double heat) {
  if (!(heat > 0)) return 0;
  const auto bits = std::bit_cast<uint64_t>(heat);
  const int exponent = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  const int step = static_cast<int>((bits >> (52 - kMantissaBits)) & (kPerOctave - 1));
  const int b = (exponent - kMinExp) * kPerOctave + step;
  return std::clamp(b, 0, kBuckets - 1);
}

double bucketLow(int b) {
  const int exponent = kMinExp + b / kPerOctave;
  const double step = 1.0 + static_cast<double>(b % kPerOctave) / kPerOctave;
  return std::ldexp(step, exponent);
}

// A non-negative double's bits order as the double does: sorting on them
// compares integers, not floating point (see bucketOf).
uint64_t heatKey(double heat) {
  return std::bit_cast<uint64_t>(std::max(0.0, heat));
}

// Sorts by heat (ascending or descending), ties by (pid, page): deterministic.
void sortRefs(std::vector<PageRef>& refs, bool descending) {
  struct Keyed {
    uint64_t heat;
    pid_t pid;
    uint64_t page;
    size_t index;
  };
  std::vector<Keyed> keyed(refs.size());
  for (size_t i = 0; i < refs.size(); ++i)
    keyed[i] = {heatKey(refs[i].heat), refs[i].pid, refs[i].page, i};
  std::sort(keyed.begin(), keyed.end(), [descending](const Keyed& a, const Keyed& b) {
    if (a.heat != b.heat) return descending ? a.heat > b.heat : a.heat < b.heat;
    if (a.pid != b.pid) return a.pid < b.pid;
    return a.page < b.page;
  });
  std::vector<PageRef> sorted(refs.size());
  for (size_t i = 0; i < keyed.size(); ++i)
    sorted[i] = refs[keyed[i].index];
  refs = std::move(sorted);
}

}  // namespace

size_t HeatMap::hashOf(const Key& k) {
  uint64_t x =
      k.page * 0x9e3779b97f4a7c15ULL ^ (static_cast<uint64_t>(static_cast<uint32_t>(k.pid)) << 1);
  x ^= x >> 29;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 32;
  return static_cast<size_t>(x);
}

size_t HeatMap::findSlot(const Key& key) const {
  const size_t mask = slots_.size() - 1;
  const size_t hash = hashOf(key);
  const uint32_t tag = tagOf(hash);
  for (size_t s = hash & mask;; s = (s + 1) & mask) {
    const uint32_t v = slots_[s];
    // The tag turns away nearly every other key without reading its entry:
    // under the lab's TCG each entry read is a guest TLB miss.
    if (v == 0 || ((v & ~index_mask_) == tag && entries_[entryOf(v)].key() == key)) return s;
  }
}

void HeatMap::insertSlot(uint32_t index) {
  if ((entries_.size() + 1) * 2 > slots_.size()) growSlots();
  const Key key = entries_[index].key();
  slots_[findSlot(key)] = tagOf(hashOf(key)) | (index + 1);
}

void HeatMap::growSlots() {
  slots_.assign(slots_.size() * 2, 0);
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    const Key key = entries_[i].key();
    slots_[findSlot(key)] = tagOf(hashOf(key)) | (i + 1);
  }
}

// Backward-shift deletion keeps every probe chain unbroken without tombstones.
void HeatMap::eraseSlot(size_t hole) {
  const size_t mask = slots_.size() - 1;
  for (size_t j = (hole + 1) & mask; slots_[j] != 0; j = (j + 1) & mask) {
    const size_t home = hashOf(entries_[entryOf(slots_[j])].key()) & mask;
    // Move j into the hole unless its home lies cyclically in (hole, j].
    const bool stays = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (stays) continue;
    slots_[hole] = slots_[j];
    hole = j;
  }
  slots_[hole] = 0;
}

HeatMap::HeatMap(Config config)
    : config_(config),
      fast_lambda_(std::numbers::ln2 / config.fast_half_life_s),
      slow_lambda_(std::numbers::ln2 / config.slow_half_life_s),
      max_lambda_(std::max(fast_lambda_, slow_lambda_)),
      rng_(config.seed) {
  if (config_.max_entries == 0) config_.max_entries = 1;
  if (config_.eviction_samples == 0) config_.eviction_samples = 1;
  if (config_.max_region_pages == 0) config_.max_region_pages = 1;
  single_scale_ = config_.fast_half_life_s == config_.slow_half_life_s;
  const auto index_bits =
      static_cast<int>(std::bit_width(std::min<uint64_t>(config_.max_entries, UINT32_MAX - 1) + 1));
  index_mask_ = index_bits >= 32 ? UINT32_MAX : (uint32_t{1} << index_bits) - 1;
}

uint64_t HeatMap::nextRandom() {
  // splitmix64
  uint64_t z = (rng_ += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Scores are kept scaled to a shared epoch: a stored score s means the heat
// s * 2^(-(now - epoch) / half_life) at `now`. Decay is then one factor for
// all entries (no exp per entry), and stored scores compare directly.
HeatMap::Scale HeatMap::scaleAt(uint64_t now_ns) const {
  if (now_ns == scale_cache_.now_ns && scale_cache_.valid) return scale_cache_;
  const double dt = (static_cast<double>(now_ns) - static_cast<double>(epoch_ns_)) * 1e-9;
  Scale scale{now_ns, std::exp2(dt / config_.fast_half_life_s),
              std::exp2(dt / config_.slow_half_life_s), true};
  scale.inv_fast = 1.0 / scale.fast;
  scale.inv_slow = 1.0 / scale.slow;
  scale.fast_gain = fast_lambda_ * scale.fast;
  scale.slow_gain = slow_lambda_ * scale.slow;
  scale.fast_gain_f = static_cast<float>(scale.fast_gain);
  scale_cache_ = scale;
  return scale;
}

void HeatMap::rebase(uint64_t now_ns) {
  // Keeps scale factors far from overflow: move the epoch to now.
  const Scale scale = scaleAt(now_ns);
  for (Entry& e : entries_) {
    e.fast = static_cast<float>(e.fast / scale.fast);
    e.slow = static_cast<float>(e.slow / scale.slow);
  }
  epoch_ns_ = now_ns;
  scale_cache_.valid = false;
}

const HeatMap::Scale& HeatMap::growthAtNewTime(uint64_t now_ns) {
  // A batch of samples shares one time: only its first sample comes here.
  if (entries_.empty()) {
    epoch_ns_ = now_ns;
    scale_cache_.valid = false;
  }
  const Scale scale = scaleAt(now_ns);  // fills scale_cache_
  if (scale.fast > 0x1p64 || scale.slow > 0x1p64) {
    rebase(now_ns);
    (void)scaleAt(now_ns);
  }
  return scale_cache_;
}

void HeatMap::erase(size_t i) {
  eraseSlot(findSlot(entries_[i].key()));
  if (i + 1 != entries_.size()) {
    uint32_t& slot = slots_[findSlot(entries_.back().key())];
    slot = (slot & ~index_mask_) | (static_cast<uint32_t>(i) + 1);
    entries_[i] = entries_.back();
  }
  entries_.pop_back();
}

double HeatMap::evictOne() {
  // The coldest of a few sampled entries; heat compared at each entry's own
  // last update is not enough, so compare at the newest of the sampled times.
  // Stored scores share one epoch, so they compare without decaying.
  const Scale scale = scale_cache_.valid ? scale_cache_ : scaleAt(epoch_ns_);
  size_t best = 0;
  if (single_scale_) {
    // One score per entry, never negative: its bits order as its value
    // does, so the samples compare as integers.
    uint32_t best_key = 0;
    for (unsigned s = 0; s < config_.eviction_samples; ++s) {
      const auto i = static_cast<size_t>(((nextRandom() >> 32) * entries_.size()) >> 32);
      const Entry& e = entries_[i];
      const float score = e.pages > 1 ? e.fast / static_cast<float>(e.pages) : e.fast;
      const uint32_t key = isIdle(e) ? 0 : std::bit_cast<uint32_t>(score);
      if (s == 0 || key < best_key) {
        best = i;
        best_key = key;
      }
    }
    const double best_heat = std::bit_cast<float>(best_key) * scale.inv_fast;
    erase(best);
    ++evictions_;
    return best_heat;
  }
  double best_heat = 0;
  for (unsigned s = 0; s < config_.eviction_samples; ++s) {
    // 32 random bits scaled to the size (entries are indexed by uint32_t):
    // uniform enough, and no division.
    const auto i = static_cast<size_t>(((nextRandom() >> 32) * entries_.size()) >> 32);
    const Entry& e = entries_[i];
    double h = isIdle(e) ? 0.0 : std::max(e.fast * scale.inv_fast, e.slow * scale.inv_slow);
    if (e.pages > 1) h /= static_cast<double>(e.pages);
    if (s == 0 || h < best_heat) {
      best = i;
      best_heat = h;
    }
  }
  erase(best);
  ++evictions_;
  return best_heat;
}

bool HeatMap::admit(const Key& key, double heat, uint64_t now_ns) {
  if (ghosts_.empty()) {
    size_t n = 1024;
    while (n < config_.max_entries / 4)
      n *= 2;
    ghosts_.assign(n, 0);
  }
  const uint64_t h = hashOf(key);
  uint16_t& ghost = ghosts_[h & (ghosts_.size() - 1)];
  const auto tag = static_cast<uint16_t>(((h >> 56) | 1) << 8);  // never 0: empty slots differ
  const uint16_t count = (ghost & 0xff00) == tag ? std::min<uint16_t>(255, (ghost & 0xff) + 1) : 1;
  ghost = static_cast<uint16_t>(tag | count);
  if (++ghost_touches_ >= 8 * ghosts_.size()) {
    // Aging: counts halve, so "seen before" means recently.
    for (uint16_t& g : ghosts_)
      g = static_cast<uint16_t>((g & 0xff00) | ((g & 0xff) >> 1));
    ghost_touches_ = 0;
  }
  if (count >= 2) return true;
  return heat >= admitFloorAt(now_ns);
}

// The last evicted heat, cooled to now_ns at the fast half-life: computed
// once per sample time (a batch shares one), not per sample.
double HeatMap::admitFloorAt(uint64_t now_ns) {
  if (admit_floor_cooled_ns_ != now_ns || !admit_floor_cooled_valid_) {
    const double dt = (static_cast<double>(now_ns) - static_cast<double>(admit_floor_ns_)) * 1e-9;
    admit_floor_cooled_ = admit_floor_ * std::exp2(-std::max(0.0, dt) / config_.fast_half_life_s);
    admit_floor_cooled_ns_ = now_ns;
    admit_floor_cooled_valid_ = true;
  }
  return admit_floor_cooled_;
}

void HeatMap::markSeen(Entry& e, uint32_t seen_pass, uint64_t pages) {
  e.pages = static_cast<uint32_t>(pages);
  if (e.seen_pass != seen_pass && e.seen_passes < UINT16_MAX) ++e.seen_passes;
  e.seen_pass = seen_pass;
}

HeatMap::Entry& HeatMap::insert(Key key, uint64_t pages, uint32_t seen_pass) {
  if (entries_.size() >= config_.max_entries) {
    admit_floor_ = evictOne();
    admit_floor_ns_ = scale_cache_.valid ? scale_cache_.now_ns : admit_floor_ns_;
    admit_floor_cooled_valid_ = false;
  }
  if (entries_.size() == entries_.capacity())  // grow as a vector would, but never past the cap
    entries_.reserve(
        std::min<uint64_t>(config_.max_entries, std::max<uint64_t>(1024, 2 * entries_.capacity())));
  entries_.push_back(Entry{key.page, key.pid, static_cast<uint32_t>(pages), 0.0f, 0.0f, seen_pass,
                           1, static_cast<int16_t>(kNodeUnknown)});
  insertSlot(static_cast<uint32_t>(entries_.size() - 1));  // eviction may have moved slots
  return entries_.back();
}

HeatMap::Entry& HeatMap::touch(Key key, uint64_t pages) {
  const uint32_t seen_pass = passesOf(key.pid).passes;
  if (const uint32_t v = slots_[findSlot(key)]; v != 0) {
    Entry& e = entries_[entryOf(v)];
    markSeen(e, seen_pass, pages);
    return e;
  }
  return insert(key, pages, seen_pass);
}

void HeatMap::addAccess(pid_t pid, uint64_t address, uint64_t weight, uint64_t now_ns) {
  // Copied out: admitting a new page may look at other times.
  const Scale& at_now = growthAt(now_ns);
  const float fast_gain_f = at_now.fast_gain_f;
  const double fast_gain = at_now.fast_gain, slow_gain = at_now.slow_gain;
  const Key key{pid, address >> config_.page_shift};
  const uint32_t seen_pass = passesOf(pid).passes;
  Entry* e = nullptr;
  // One probe for the common case, a page already tracked.
  if (const uint32_t v = slots_[findSlot(key)]; v != 0) {
    e = &entries_[entryOf(v)];
    markSeen(*e, seen_pass, 1);
  } else if (entries_.size() >= config_.max_entries &&
             !admit(key, static_cast<double>(weight) * max_lambda_, now_ns)) {
    ++rejected_;
    return;
  } else {
    e = &insert(key, 1, seen_pass);
  }
  if (single_scale_) {
    // The two scores evolve alike: one multiply-add in float (under the
    // lab's TCG each floating-point operation and conversion is a helper
    // call, and the double path took nine).
    e->fast += static_cast<float>(weight) * fast_gain_f;
    e->slow = e->fast;
    return;
  }
  const double w = static_cast<double>(weight);
  e->fast = static_cast<float>(e->fast + w * fast_gain);
  e->slow = static_cast<float>(e->slow + w * slow_gain);
}

void HeatMap::addRegion(pid_t pid, uint64_t start, uint64_t end, uint32_t nr_accesses,
                        uint32_t /*max_accesses*/, uint64_t now_ns) {
  if (end <= start) return;
  const uint64_t first = start >> config_.page_shift;
  const uint64_t last = (end - 1) >> config_.page_shift;
  const uint64_t pages = last - first + 1;
  const Scale scale = growthAt(now_ns);
  const double w = static_cast<double>(nr_accesses);
  if (pages <= config_.max_region_pages) {
    for (uint64_t p = first; p <= last; ++p) {
      Entry& e = touch(Key{pid, p}, 1);
      e.fast = static_cast<float>(e.fast + w * fast_lambda_ * scale.fast);
      e.slow = static_cast<float>(e.slow + w * slow_lambda_ * scale.slow);
    }
    return;
  }
  // One spanning entry; scores are per page (heat is a per-page rate), the
  // entry's pages count toward capacity.
  Entry& e = touch(Key{pid, first}, pages);
  e.fast = static_cast<float>(e.fast + w * fast_lambda_ * scale.fast);
  e.slow = static_cast<float>(e.slow + w * slow_lambda_ * scale.slow);
}

const HeatMap::Entry* HeatMap::find(pid_t pid, uint64_t page) const {
  const uint32_t v = slots_[findSlot(Key{pid, page})];
  return v == 0 ? nullptr : &entries_[entryOf(v)];
}

double HeatMap::fastHeat(pid_t pid, uint64_t page, uint64_t now_ns) const {
  const Entry* p = find(pid, page);
  return p ? p->fast / scaleAt(now_ns).fast : 0;
}

double HeatMap::slowHeat(pid_t pid, uint64_t page, uint64_t now_ns) const {
  const Entry* p = find(pid, page);
  return p ? p->slow / scaleAt(now_ns).slow : 0;
}

double HeatMap::heat(pid_t pid, uint64_t page, uint64_t now_ns) const {
  return std::max(fastHeat(pid, page, now_ns), slowHeat(pid, page, now_ns));
}

std::vector<PageRef> HeatMap::snapshot(uint64_t now_ns) const {
  const Scale scale = scaleAt(now_ns);
  std::vector<PageRef> out;
  out.reserve(entries_.size());
  for (const Entry& e : entries_)
    out.push_back({e.pid, e.page, e.pages, std::max(e.fast / scale.fast, e.slow / scale.slow)});
  return out;
}

void HeatMap::setNode(pid_t pid, uint64_t page, int node) {
  if (const uint32_t v = slots_[findSlot(Key{pid, page})]; v != 0)
    entries_[entryOf(v)].node = static_cast<int16_t>(std::clamp(node, INT16_MIN + 1, INT16_MAX));
}

int HeatMap::node(pid_t pid, uint64_t page) const {
  const Entry* e = find(pid, page);
  return e ? e->node : kNodeUnknown;
}

std::vector<PageRef> HeatMap::placementQueries(uint64_t max, uint64_t recheck_slices,
                                               uint64_t rotation, uint64_t now_ns) const {
  const Scale scale = scaleAt(now_ns);
  std::vector<PageRef> ask;
  for (const Entry& e : entries_) {
    const bool recheck = recheck_slices > 0 && (e.page + rotation) % recheck_slices == 0;
    if (e.node == kNodeUnknown || recheck)
      ask.push_back({e.pid, e.page, e.pages, std::max(e.fast / scale.fast, e.slow / scale.slow)});
  }
  if (ask.size() > max) {
    // Hottest first: what is left unknown is cold, and classify passes it by.
    const auto hotter = [](const PageRef& a, const PageRef& b) { return a.heat > b.heat; };
    std::nth_element(ask.begin(), ask.begin() + static_cast<std::ptrdiff_t>(max), ask.end(),
                     hotter);
    ask.resize(max);
  }
  return ask;
}

void HeatMap::setScanPasses(pid_t pid, uint64_t passes) {
  const auto [it, fresh] = passes_.try_emplace(pid);
  it->second.now = static_cast<uint32_t>(passes);
  if (fresh) it->second.first = it->second.now;
  passes_cache_ = {};
}

const HeatMap::PassesCache& HeatMap::refreshPassesCache(pid_t pid) const {
  const auto it = passes_.find(pid);
  if (it == passes_.end()) {
    passes_cache_ = {pid, false, true, 0};
  } else {
    // Scanning that started with tierd: its first pass is whole. Already
    // under way: the pass in progress began unwatched, the next is whole.
    const Passes& p = it->second;
    const uint32_t needed = p.first == 0 ? 1 : 2;
    passes_cache_ = {pid, true, p.now - p.first >= needed, p.now};
  }
  return passes_cache_;
}

bool HeatMap::isIdle(const Entry& e) const {
  if (config_.idle_passes == 0) return false;
  const PassesCache& p = passesOf(e.pid);
  // Unsigned difference: a counter that wraps still counts forward.
  return p.known && p.passes - e.seen_pass >= config_.idle_passes;
}

bool HeatMap::promotable(const Entry& e) const {
  const PassesCache& p = passesOf(e.pid);
  return !p.known || (p.covered && e.seen_passes >= config_.min_seen_passes);
}

bool HeatMap::idle(pid_t pid, uint64_t page) const {
  const Entry* e = find(pid, page);
  return e && isIdle(*e);
}

void HeatMap::setLabel(pid_t pid, std::string label) {
  labels_[pid] = std::move(label);
}

void HeatMap::forgetProcess(pid_t pid) {
  labels_.erase(pid);
  passes_.erase(pid);
  passes_cache_ = {};
  for (size_t i = entries_.size(); i-- > 0;) {
    if (entries_[i].pid == pid) erase(i);
  }
}

uint64_t HeatMap::bytesPerEntry() {
  // A dense entry, and at worst 4 slots per entry (load 1/4 right after the
  // slot table doubles); the entry vector never grows past max_entries.
  return sizeof(Entry) + 4 * sizeof(uint32_t) + 1;  // + a quarter ghost (2 bytes) per entry
}

uint64_t HeatMap::bytes() const {
  uint64_t b = entries_.capacity() * sizeof(Entry) + slots_.capacity() * sizeof(uint32_t) +
               ghosts_.capacity() * sizeof(uint16_t);
  for (const auto& [pid, label] : labels_)
    b += sizeof(pid) + label.capacity() + 4 * sizeof(void*);
  return b;
}

Plan HeatMap::classify(const ClassifyInput& in, const Locator& onFast, uint64_t now_ns,
                       const Locator& held) const {
  Plan plan;

  // Heats at now, and the page-weighted histogram.
  std::vector<double> heats(entries_.size());
  std::vector<uint64_t> hist(kBuckets, 0);
  const Scale scale = scaleAt(now_ns);
  const double fast_decay = 1.0 / scale.fast, slow_decay = 1.0 / scale.slow;
  double max_heat = 0;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    heats[i] = isIdle(e)       ? 0.0
               : single_scale_ ? e.fast * fast_decay
                               : std::max(e.fast * fast_decay, e.slow * slow_decay);
    max_heat = std::max(max_heat, heats[i]);
  }
  const double min_hot = std::max(in.min_hot_heat, in.min_hot_fraction_of_max * max_heat);
  for (size_t i = 0; i < entries_.size(); ++i)
    if (heats[i] >= min_hot) hist[static_cast<size_t>(bucketOf(heats[i]))] += entries_[i].pages;

  // Fit: the lowest bucket edge such that pages at or above it fit the target.
  const uint64_t target =
      in.capacity_pages > in.headroom_pages ? in.capacity_pages - in.headroom_pages : 0;
  uint64_t cum = 0;
  int lowest = kBuckets;  // the lowest bucket wholly admitted
  for (int b = kBuckets - 1; b >= 0; --b) {
    const uint64_t n = hist[static_cast<size_t>(b)];
    if (n == 0) continue;
    if (cum + n > target) break;
    cum += n;
    lowest = b;
  }
  double threshold = lowest < kBuckets ? bucketLow(lowest) : bucketLow(kBuckets);
  // Nothing below min_hot_heat is hot, whatever the capacity.
  threshold = std::max(threshold, min_hot);
  plan.hot_threshold = threshold;
  plan.warm_band = threshold / in.cold_divisor;

  // Free memory below the larger of the low watermark and the headroom (at
  // least the kernel's mover floor, above the point where its own reclaim
  // begins) is pressure: cold pages leave, as much as restores that line.
  const uint64_t keep_free = in.keepFreePages();
  const bool pressure = in.pressure();
  std::map<pid_t, uint64_t> hot_by_pid;
  std::vector<PageRef> candidates, cold, warm;
  const auto isOnFast = [&](const Entry& e) {
    if (in.fast_nodes.empty()) return onFast(e.pid, e.page);
    return e.node >= 0 &&
           std::find(in.fast_nodes.begin(), in.fast_nodes.end(), e.node) != in.fast_nodes.end();
  };
  // A page whose node is not known yet (the placement queries ran out of
  // budget, or it moved in the last plan) may well be on the fast tier:
  // planned anyway, its promotion found it there after a displacement had
  // demoted a page for it (the lab's Zipf and GUPS runs: 726 and 1264
  // demoted in one plan, none promoted).
  const auto isOnSlow = [&](const Entry& e) {
    if (in.fast_nodes.empty()) return !onFast(e.pid, e.page);
    return e.node >= 0 && !isOnFast(e);
  };
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    const double h = heats[i];
    if (h >= threshold) {
      plan.hot_pages += e.pages;
      hot_by_pid[e.pid] += e.pages;
    }
    if (h >= threshold) {
      if (isOnSlow(e) && promotable(e)) candidates.push_back({e.pid, e.page, e.pages, h});
    } else if (h < threshold && isOnFast(e)) {
      (h < plan.warm_band ? cold : warm).push_back({e.pid, e.page, e.pages, h});
    }
  }
  sortRefs(candidates, true);
  sortRefs(cold, false);
  std::vector<PageRef> untracked;
  for (const PageRef& r : in.untracked_fast) {
    if (find(r.pid, r.page)) continue;  // tracked after all: judged above
    untracked.push_back(PageRef{r.pid, r.page, r.pages, 0.0});
  }
  cold.insert(cold.begin(), untracked.begin(), untracked.end());
  sortRefs(warm, false);

  // Held pages are skipped only where a page is picked: asking about every
  // entry would cost a lookup each for the few that move.
  const auto isHeld = [&](const PageRef& r) { return held && held(r.pid, r.page); };
  uint64_t demote_budget = in.demote_budget_pages;
  uint64_t free_after = in.fast_free_pages;  // what promotions may fill
  uint64_t free_with_lists = in.fast_free_pages + in.per_cpu_free_pages;
  std::vector<PageRef> displaceable;
  size_t cold_used = 0;
  if (pressure) {
    for (; cold_used < cold.size(); ++cold_used) {
      const PageRef& r = cold[cold_used];
      if (free_with_lists >= keep_free || r.pages > demote_budget) break;
      if (isHeld(r)) continue;
      plan.demote.push_back(r);
      demote_budget -= r.pages;
      free_after += r.pages;
      free_with_lists += r.pages;
    }
  }

  // Promotions fill the room above the keep-free line; beyond it, a
  // candidate displaces the coldest not-hot fast page (cold pages left after
  // the pressure pass first, then the warm band) only if it beats that page's
  // heat by the benefit margin.
  displaceable.assign(cold.begin() + static_cast<std::ptrdiff_t>(cold_used), cold.end());
  displaceable.insert(displaceable.end(), warm.begin(), warm.end());
  sortRefs(displaceable, false);
  // Negative while free memory is under the keep-free line (with per-CPU
  // lists holding the difference, that is no pressure): a displacement then
  // makes room only once the demotions have made up the deficit. Counting
  // from zero instead, each plan in the lab's shift run demoted 230 pages
  // whose promotions all found no room, plan after plan.
  int64_t room = static_cast<int64_t>(free_after) - static_cast<int64_t>(keep_free);
  const auto fits = [&](const PageRef& r) { return static_cast<int64_t>(r.pages) <= room; };
  uint64_t promote_budget = in.promote_budget_pages;
  size_t next_out = 0;
  const auto skipHeld = [&] {
    while (next_out < displaceable.size() && isHeld(displaceable[next_out]))
      ++next_out;
  };
  for (const PageRef& c : candidates) {
    if (c.pages > promote_budget) break;
    if (isHeld(c)) continue;
    skipHeld();
    if (in.displace && !fits(c)) plan.displacing = true;
    // What this candidate displaces, taken back if it still does not fit:
    // a demotion that makes room for no promotion is a wasted move.
    const size_t demoted_before = plan.demote.size(), next_before = next_out;
    const uint64_t budget_before = demote_budget;
    const int64_t room_before = room;
    while (in.displace && !fits(c) && next_out < displaceable.size() &&
           c.heat >= in.benefit_margin * displaceable[next_out].heat &&
           displaceable[next_out].pages <= demote_budget) {
      plan.demote.push_back(displaceable[next_out]);
      demote_budget -= displaceable[next_out].pages;
      room += static_cast<int64_t>(displaceable[next_out].pages);
      ++next_out;
      skipHeld();
    }
    if (!fits(c)) {
      plan.demote.resize(demoted_before);
      next_out = next_before;
      demote_budget = budget_before;
      room = room_before;
      break;
    }
    plan.promote.push_back(c);
    room -= static_cast<int64_t>(c.pages);
    promote_budget -= c.pages;
  }
  sortRefs(plan.demote, false);

  const uint64_t page_bytes = uint64_t{1} << config_.page_shift;
  for (const auto& [pid, pages] : hot_by_pid) {
    plan.per_process.push_back({pid, pages, pages * page_bytes});
    if (auto it = labels_.find(pid); it != labels_.end()) {
      plan.hot_bytes_by_label[it->second] += pages * page_bytes;
    }
  }
  return plan;
}

}  // namespace tierd::hotness
