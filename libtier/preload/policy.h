// The shim's placement policies: LIBTIER_* text in, a fixed-size Policy out,
// and the decisions (which target a size gets, which tier the ratio balancer
// picks). No OS calls, and nothing here allocates: the shim parses inside the
// process's first malloc, before any heap exists. Errors are values with a
// one-line message in fixed storage (tier::Error would allocate).
#pragma once

#include <cstddef>
#include <cstdint>
#include <expected>
#include <string_view>

namespace tier::preload {

inline constexpr int kMaxRules = 16;
inline constexpr int kMaxShares = 8;  // tiers named in LIBTIER_RATIO
inline constexpr int kMaxRanks = 64;  // ranks the balancer can map back to a share
inline constexpr uint64_t kNoLimit = UINT64_MAX;

// Where a block goes. kRatio: wherever the ratio balancer says.
struct Target {
  enum Kind : uint8_t { kFast, kFar, kRank, kNode, kRatio };
  Kind kind = kFast;
  int index = 0;  // the rank for kRank, the node for kNode
  bool operator==(const Target&) const = default;
};

// Blocks of [low, high) bytes go to `target`.
struct SizeRule {
  uint64_t low = 0;
  uint64_t high = kNoLimit;
  Target target;
};

// One tier of LIBTIER_RATIO and its byte weight.
struct Share {
  Target tier;  // kFast, kFar or kRank
  uint32_t weight = 0;
};

enum class AgentMode : uint8_t { kAuto, kOff, kOn };

struct Policy {
  Share shares[kMaxShares];
  int share_count = 0;
  uint64_t threshold = kNoLimit;  // blocks of at least this many bytes go to the far tier
  SizeRule rules[kMaxRules];
  int rule_count = 0;
  bool debug = false;
  AgentMode agent = AgentMode::kAuto;
  char agent_socket[108] = {};  // sun_path; empty: the agent's default

  // Whether anything differs from the default placement (fast tier first).
  bool placesBlocks() const { return share_count > 0 || threshold != kNoLimit || rule_count > 0; }
  // The threshold first, then the rules, then the ratio when one is set, else the fast tier.
  Target targetFor(uint64_t size) const;
};

struct PolicyError {
  char message[320] = {};
};
using Status = std::expected<void, PolicyError>;

// "4096", "4K", "64k", "1M", "1MiB", "2G", "1T", "512B": binary units.
std::expected<uint64_t, PolicyError> parseSize(std::string_view text);
// "fast", "far", "rankN", "nodeN", and "ratio" when allowed.
std::expected<Target, PolicyError> parseTarget(std::string_view text, bool allow_ratio);

// One setting by its variable name (LIBTIER_RATIO, LIBTIER_THRESHOLD,
// LIBTIER_RULES, LIBTIER_DEBUG, LIBTIER_AGENT, LIBTIER_TIERD_SOCKET), replacing
// what `policy` had for it. Names the variable and the value on error.
// Unknown names are not an error here (other parts of libtier read LIBTIER_*).
Status applySetting(std::string_view name, std::string_view value, Policy& policy);
bool isPolicySetting(std::string_view name);

// A LIBTIER_CONFIG file: "key = value" lines (key: a setting's name without
// "LIBTIER_", any case), '#' comments, blank lines. Errors name path:line.
Status applyConfigText(std::string_view text, std::string_view path, Policy& policy);

// Checks across settings (a "ratio" rule needs LIBTIER_RATIO).
Status validate(const Policy& policy);

// The shares resolved to tier ranks for a host with `tier_count` tiers:
// "far" is rank 1, ranks that do not exist are served by the last one
// (as the engine spills), shares on the same rank merge. One slot per rank.
struct Slots {
  int count = 0;
  int rank[kMaxShares] = {};
  uint32_t weight[kMaxShares] = {};
  int slotOfRank(int r) const {
    for (int i = 0; i < count; ++i)
      if (rank[i] == r) return i;
    return -1;
  }
};
Slots resolveShares(const Policy& policy, int tier_count);

// The slot whose live bytes, with `size` added, stay lowest relative to its
// weight: a running byte balancer whose error is at most one block.
int pickSlot(const Slots& slots, uint64_t size, const int64_t* live_bytes);

// One line describing the policy ("ratio fast:1,far:3 threshold 1M rules ..."),
// NUL-terminated, truncated to `capacity`. Returns the length written.
size_t describe(const Policy& policy, char* out, size_t capacity);

}  // namespace tier::preload
