// libFuzzer target for the kernel-text parsers and the [topology] config
// parser: every input goes to every parser. Beyond "no crash, no UB, no
// hang", it checks what must hold whenever a parser accepts its input.
// Built as `parsers_fuzz` with Clang, and with any compiler as
// `parsers_fuzz_regression`, which replays corpus/ (see regression_main.cpp).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "config/topology_config.h"
#include "parse/parsers.h"

namespace {

// Invariant violations abort so that libFuzzer records the input.
#define FUZZ_CHECK(cond)                                                                \
  do {                                                                                  \
    if (!(cond)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                     \
    }                                                                                   \
  } while (0)

bool isSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

void checkTrim(std::string_view text) {
  std::string_view trimmed = tier::trim(text);
  if (trimmed.empty()) return;
  FUZZ_CHECK(!isSpace(trimmed.front()) && !isSpace(trimmed.back()));
  FUZZ_CHECK(trimmed.data() >= text.data() &&
             trimmed.data() + trimmed.size() <= text.data() + text.size());
}

void checkIdList(std::string_view text) {
  auto ids = tier::parseIdList(text);
  if (!ids) {
    FUZZ_CHECK(!ids.error().context.empty());
    return;
  }
  for (size_t i = 0; i < ids->size(); ++i) {
    FUZZ_CHECK((*ids)[i] >= 0);
    if (i > 0) FUZZ_CHECK((*ids)[i - 1] < (*ids)[i]);  // sorted, no duplicates
  }
  std::string formatted = tier::formatIdList(*ids);
  auto again = tier::parseIdList(formatted);
  FUZZ_CHECK(again.has_value());
  FUZZ_CHECK(*again == *ids);
  FUZZ_CHECK(tier::formatIdList(*again) == formatted);
}

void checkNumbers(std::string_view text) {
  if (auto value = tier::parseU64(text); value) {
    FUZZ_CHECK(tier::parseU64(std::to_string(*value)) == *value);
  }
  if (auto value = tier::parseI64(text); value) {
    FUZZ_CHECK(tier::parseI64(std::to_string(*value)) == *value);
  }
  (void)tier::parseBool(text);
}

void checkLineParsers(std::string_view text) {
  size_t lines = 1;
  for (char c : text)
    lines += c == '\n';
  if (auto row = tier::parseDistanceRow(text); row) FUZZ_CHECK(row->size() <= text.size());
  if (auto fields = tier::parseMeminfo(text); fields) FUZZ_CHECK(fields->size() <= lines);
  if (auto counters = tier::parseCounters(text); counters) FUZZ_CHECK(counters->size() <= lines);
  if (auto nodes = tier::parseZoneWatermarks(text); nodes) FUZZ_CHECK(nodes->size() <= lines);
  if (auto seq = tier::parseNumaScanSeq(text); seq && *seq)
    FUZZ_CHECK(text.find("numa_scan_seq") != std::string_view::npos);
  if (auto entries = tier::parseNumaMaps(text); entries) {
    FUZZ_CHECK(entries->size() <= lines);
    for (const tier::NumaMapsEntry& entry : *entries)
      FUZZ_CHECK(!entry.policy.empty());
  }
}

void checkConfig(std::string_view text) {
  auto options = tier::parseTopologyConfig(text, "fuzz.toml");
  if (!options) {
    FUZZ_CHECK(options.error().context.starts_with("fuzz.toml:"));
    return;
  }
  for (const auto& [node, rank] : options->tier_override) {
    FUZZ_CHECK(node >= 0 && node <= 4095);
    FUZZ_CHECK(rank >= 0 && rank <= 64);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  checkTrim(text);
  checkIdList(text);
  checkNumbers(text);
  checkLineParsers(text);
  checkConfig(text);
  return 0;
}
