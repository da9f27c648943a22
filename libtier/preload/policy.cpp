#include "preload/policy.h"

#include <algorithm>
#include <charconv>
#include <cstdarg>
#include <cstdio>

namespace tier::preload {
namespace {

std::unexpected<PolicyError> error(const char* format, ...) __attribute__((format(printf, 1, 2)));

std::unexpected<PolicyError> error(const char* format, ...) {
  PolicyError e;
  va_list args;
  va_start(args, format);
  std::vsnprintf(e.message, sizeof e.message, format, args);
  va_end(args);
  return std::unexpected(e);
}

// Prefixes an error with the variable and its value.
std::unexpected<PolicyError> about(std::string_view name, std::string_view value,
                                   const PolicyError& inner) {
  return error("%.*s=\"%.*s\": %s", static_cast<int>(name.size()), name.data(),
               static_cast<int>(std::min<size_t>(value.size(), 120)), value.data(), inner.message);
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

char lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool equalsIgnoringCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower(a[i]) != lower(b[i])) return false;
  return true;
}

bool startsWithIgnoringCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && equalsIgnoringCase(s.substr(0, prefix.size()), prefix);
}

// Splits at the first `separator`; the rest is empty when there is none.
std::pair<std::string_view, std::string_view> cut(std::string_view s, char separator) {
  size_t at = s.find(separator);
  if (at == std::string_view::npos) return {s, {}};
  return {s.substr(0, at), s.substr(at + 1)};
}

template <typename Int>
bool parseInt(std::string_view text, Int& out) {
  if (text.empty()) return false;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

#define SV(s) static_cast<int>((s).size()), (s).data()

std::expected<void, PolicyError> parseRatio(std::string_view text, Policy& policy) {
  policy.share_count = 0;
  uint64_t total = 0;
  std::string_view rest = trim(text);
  if (rest.empty()) return error("expected TIER:WEIGHT[,TIER:WEIGHT...], e.g. fast:1,far:3");
  while (!rest.empty()) {
    auto [item, tail] = cut(rest, ',');
    rest = tail;
    auto [tier_text, weight_text] = cut(trim(item), ':');
    tier_text = trim(tier_text);
    weight_text = trim(weight_text);
    auto tier = parseTarget(tier_text, false);
    if (!tier) return std::unexpected(tier.error());
    if (tier->kind == Target::kNode)
      return error("\"%.*s\": a ratio names tiers (fast, far, rankN), not nodes", SV(tier_text));
    uint32_t weight = 0;
    if (!parseInt(weight_text, weight) || weight > 1000000)
      return error("weight \"%.*s\" of %.*s is not a whole number 0..1000000", SV(weight_text),
                   SV(tier_text));
    if (policy.share_count == kMaxShares) return error("more than %d tiers", kMaxShares);
    for (int i = 0; i < policy.share_count; ++i)
      if (policy.shares[i].tier == *tier) return error("tier \"%.*s\" named twice", SV(tier_text));
    policy.shares[policy.share_count++] = Share{*tier, weight};
    total += weight;
  }
  if (total == 0) return error("every weight is 0");
  return {};
}

std::expected<SizeRule, PolicyError> parseRule(std::string_view text) {
  auto [range, target_text] = cut(trim(text), ':');
  target_text = trim(target_text);
  auto [low_text, high_text] = cut(trim(range), '-');
  if (range.find('-') == std::string_view::npos)
    return error("rule \"%.*s\": expected LOW-HIGH:TARGET, e.g. 4K-1M:far", SV(text));
  SizeRule rule;
  low_text = trim(low_text);
  high_text = trim(high_text);
  if (!low_text.empty()) {
    auto low = parseSize(low_text);
    if (!low) return std::unexpected(low.error());
    rule.low = *low;
  }
  if (!high_text.empty()) {
    auto high = parseSize(high_text);
    if (!high) return std::unexpected(high.error());
    rule.high = *high;
  }
  if (rule.low >= rule.high) return error("rule \"%.*s\": the range is empty", SV(trim(text)));
  if (target_text.empty()) return error("rule \"%.*s\": no target after ':'", SV(trim(text)));
  auto target = parseTarget(target_text, true);
  if (!target) return std::unexpected(target.error());
  rule.target = *target;
  return rule;
}

std::expected<void, PolicyError> parseRules(std::string_view text, Policy& policy) {
  policy.rule_count = 0;
  std::string_view rest = trim(text);
  if (rest.empty()) return error("expected LOW-HIGH:TARGET[;...], e.g. 0-4K:fast;4K-:ratio");
  while (!rest.empty()) {
    auto [item, tail] = cut(rest, ';');
    rest = trim(tail);
    if (trim(item).empty()) continue;  // a trailing ';'
    auto rule = parseRule(item);
    if (!rule) return std::unexpected(rule.error());
    if (policy.rule_count == kMaxRules) return error("more than %d rules", kMaxRules);
    for (int i = 0; i < policy.rule_count; ++i) {
      const SizeRule& other = policy.rules[i];
      if (rule->low < other.high && other.low < rule->high)
        return error("rule \"%.*s\" overlaps an earlier rule", SV(trim(item)));
    }
    policy.rules[policy.rule_count++] = *rule;
  }
  return {};
}

std::expected<bool, PolicyError> parseFlag(std::string_view text) {
  text = trim(text);
  if (text == "1" || equalsIgnoringCase(text, "yes") || equalsIgnoringCase(text, "on") ||
      equalsIgnoringCase(text, "true"))
    return true;
  if (text == "0" || equalsIgnoringCase(text, "no") || equalsIgnoringCase(text, "off") ||
      equalsIgnoringCase(text, "false"))
    return false;
  return error("expected 1 or 0");
}

}  // namespace

std::expected<uint64_t, PolicyError> parseSize(std::string_view text) {
  std::string_view original = text;
  text = trim(text);
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  uint64_t number = 0;
  if (digits == 0 || !parseInt(text.substr(0, digits), number))
    return error("size \"%.*s\" is not a number of bytes (e.g. 4096, 64K, 1M, 2G)", SV(original));
  std::string_view unit = text.substr(digits);
  int shift = 0;
  if (!unit.empty() && lower(unit[0]) != 'b') {
    switch (lower(unit[0])) {
      case 'k':
        shift = 10;
        break;
      case 'm':
        shift = 20;
        break;
      case 'g':
        shift = 30;
        break;
      case 't':
        shift = 40;
        break;
      default:
        return error("size \"%.*s\": unknown unit (use K, M, G or T)", SV(original));
    }
    unit.remove_prefix(1);
    if (!unit.empty() && lower(unit[0]) == 'i') unit.remove_prefix(1);
  }
  if (!unit.empty() && lower(unit[0]) == 'b') unit.remove_prefix(1);
  if (!unit.empty()) return error("size \"%.*s\": unknown unit (use K, M, G or T)", SV(original));
  if (shift > 0 && number > (UINT64_MAX >> shift))
    return error("size \"%.*s\" is too large", SV(original));
  return number << shift;
}

std::expected<Target, PolicyError> parseTarget(std::string_view text, bool allow_ratio) {
  text = trim(text);
  if (equalsIgnoringCase(text, "fast")) return Target{Target::kFast, 0};
  if (equalsIgnoringCase(text, "far")) return Target{Target::kFar, 0};
  if (allow_ratio && equalsIgnoringCase(text, "ratio")) return Target{Target::kRatio, 0};
  for (auto [prefix, kind] : {std::pair{std::string_view("rank"), Target::kRank},
                              std::pair{std::string_view("node"), Target::kNode}}) {
    int index = 0;
    if (startsWithIgnoringCase(text, prefix) && parseInt(text.substr(prefix.size()), index) &&
        index >= 0 && index < (kind == Target::kRank ? kMaxRanks : 1024))
      return Target{kind, index};
  }
  return error("tier \"%.*s\" is not fast, far, rankN or nodeN%s", SV(text),
               allow_ratio ? " or ratio" : "");
}

bool isPolicySetting(std::string_view name) {
  for (std::string_view known : {"LIBTIER_RATIO", "LIBTIER_THRESHOLD", "LIBTIER_RULES",
                                 "LIBTIER_DEBUG", "LIBTIER_AGENT", "LIBTIER_TIERD_SOCKET"})
    if (name == known) return true;
  return false;
}

Status applySetting(std::string_view name, std::string_view value, Policy& policy) {
  Status status;
  if (name == "LIBTIER_RATIO") {
    status = parseRatio(value, policy);
  } else if (name == "LIBTIER_THRESHOLD") {
    auto size = parseSize(value);
    if (size && *size == 0) size = error("0 would send every block far (use LIBTIER_RULES=0-:far)");
    if (size)
      policy.threshold = *size;
    else
      status = std::unexpected(size.error());
  } else if (name == "LIBTIER_RULES") {
    status = parseRules(value, policy);
  } else if (name == "LIBTIER_DEBUG") {
    auto flag = parseFlag(value);
    if (flag)
      policy.debug = *flag;
    else
      status = std::unexpected(flag.error());
  } else if (name == "LIBTIER_AGENT") {
    if (equalsIgnoringCase(trim(value), "auto")) {
      policy.agent = AgentMode::kAuto;
    } else {
      auto flag = parseFlag(value);
      if (flag)
        policy.agent = *flag ? AgentMode::kOn : AgentMode::kOff;
      else
        status = error("expected 1, 0 or auto");
    }
  } else if (name == "LIBTIER_TIERD_SOCKET") {
    std::string_view path = trim(value);
    if (path.empty() || path.size() >= sizeof policy.agent_socket) {
      status = error("expected a socket path of 1..%zu bytes", sizeof policy.agent_socket - 1);
    } else {
      std::copy(path.begin(), path.end(), policy.agent_socket);
      policy.agent_socket[path.size()] = '\0';
    }
  }
  if (!status) return about(name, value, status.error());
  return {};
}

Status applyConfigText(std::string_view text, std::string_view path, Policy& policy) {
  int line_number = 0;
  while (!text.empty()) {
    auto [line, rest] = cut(text, '\n');
    text = rest;
    ++line_number;
    line = trim(cut(line, '#').first);
    if (line.empty()) continue;
    auto [key, value] = cut(line, '=');
    key = trim(key);
    if (line.find('=') == std::string_view::npos)
      return error("%.*s:%d: expected key = value", SV(path), line_number);
    char name[48] = "LIBTIER_";
    size_t length = 8;
    for (char c : key) {
      if (length + 1 >= sizeof name) break;
      name[length++] = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    }
    std::string_view setting(name, length);
    if (!isPolicySetting(setting) || key.size() + 9 > sizeof name)
      return error(
          "%.*s:%d: unknown key \"%.*s\" (ratio, threshold, rules, debug, agent, "
          "tierd_socket)",
          SV(path), line_number, SV(key));
    auto applied = applySetting(setting, trim(value), policy);
    if (!applied) return error("%.*s:%d: %s", SV(path), line_number, applied.error().message);
  }
  return {};
}

Status validate(const Policy& policy) {
  for (int i = 0; i < policy.rule_count; ++i)
    if (policy.rules[i].target.kind == Target::kRatio && policy.share_count == 0)
      return error("LIBTIER_RULES sends blocks to \"ratio\" but LIBTIER_RATIO is not set");
  return {};
}

Target Policy::targetFor(uint64_t size) const {
  if (size >= threshold) return Target{Target::kFar, 0};
  for (int i = 0; i < rule_count; ++i)
    if (size >= rules[i].low && size < rules[i].high) return rules[i].target;
  return share_count > 0 ? Target{Target::kRatio, 0} : Target{Target::kFast, 0};
}

Slots resolveShares(const Policy& policy, int tier_count) {
  Slots slots;
  int last = std::max(tier_count, 1) - 1;
  for (int i = 0; i < policy.share_count; ++i) {
    const Share& share = policy.shares[i];
    int rank = share.tier.kind == Target::kFast  ? 0
               : share.tier.kind == Target::kFar ? 1
                                                 : share.tier.index;
    rank = std::min(rank, last);
    if (share.weight == 0) continue;
    int slot = slots.slotOfRank(rank);
    if (slot < 0) {
      slot = slots.count++;
      slots.rank[slot] = rank;
    }
    slots.weight[slot] += share.weight;
  }
  return slots;
}

// Bytes (< 2^64) times weights (< 2^23) need more than 64 bits.
__extension__ using Wide = unsigned __int128;

int pickSlot(const Slots& slots, uint64_t size, const int64_t* live_bytes) {
  int best = 0;
  Wide best_load = 0;
  uint32_t best_weight = 1;
  for (int i = 0; i < slots.count; ++i) {
    // Live bytes can dip below 0 in one thread's view (frees of blocks that
    // another thread counted); clamp so a negative view does not win forever.
    Wide load = static_cast<uint64_t>(std::max<int64_t>(live_bytes[i], 0)) + size;
    // load_i / weight_i < best_load / best_weight, without division.
    if (i == 0 || load * best_weight < best_load * slots.weight[i]) {
      best = i;
      best_load = load;
      best_weight = slots.weight[i];
    }
  }
  return best;
}

namespace {

size_t appendf(char* out, size_t capacity, size_t at, const char* format, ...)
    __attribute__((format(printf, 4, 5)));

size_t appendf(char* out, size_t capacity, size_t at, const char* format, ...) {
  if (at + 1 >= capacity) return at;
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(out + at, capacity - at, format, args);
  va_end(args);
  if (n < 0) return at;
  return std::min(at + static_cast<size_t>(n), capacity - 1);
}

size_t appendTarget(char* out, size_t capacity, size_t at, Target target) {
  switch (target.kind) {
    case Target::kFast:
      return appendf(out, capacity, at, "fast");
    case Target::kFar:
      return appendf(out, capacity, at, "far");
    case Target::kRatio:
      return appendf(out, capacity, at, "ratio");
    case Target::kRank:
      return appendf(out, capacity, at, "rank%d", target.index);
    case Target::kNode:
      return appendf(out, capacity, at, "node%d", target.index);
  }
  return at;
}

}  // namespace

size_t describe(const Policy& policy, char* out, size_t capacity) {
  if (capacity == 0) return 0;
  out[0] = '\0';
  size_t at = 0;
  if (!policy.placesBlocks()) return appendf(out, capacity, at, "default (fast tier first)");
  if (policy.share_count > 0) {
    at = appendf(out, capacity, at, "ratio ");
    for (int i = 0; i < policy.share_count; ++i) {
      if (i > 0) at = appendf(out, capacity, at, ",");
      at = appendTarget(out, capacity, at, policy.shares[i].tier);
      at = appendf(out, capacity, at, ":%u", policy.shares[i].weight);
    }
  }
  if (policy.threshold != kNoLimit)
    at = appendf(out, capacity, at, "%sthreshold %llu", at ? " " : "",
                 static_cast<unsigned long long>(policy.threshold));
  if (policy.rule_count > 0) {
    at = appendf(out, capacity, at, "%srules ", at ? " " : "");
    for (int i = 0; i < policy.rule_count; ++i) {
      const SizeRule& rule = policy.rules[i];
      at = appendf(out, capacity, at, "%s%llu-", i ? ";" : "",
                   static_cast<unsigned long long>(rule.low));
      if (rule.high != kNoLimit)
        at = appendf(out, capacity, at, "%llu", static_cast<unsigned long long>(rule.high));
      at = appendf(out, capacity, at, ":");
      at = appendTarget(out, capacity, at, rule.target);
    }
  }
  return at;
}

}  // namespace tier::preload
